package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bestofn/bestofn/api"
)

// APIs a Scorer speaks (ScorerConfig.API).
const (
	// ScoreVLLMClassify: vLLM's POST /classify {"model", "input": [texts]} -> {"data": [{"index", "probs": [...]}]}
	// (a reward model served with --task classify; SGLang's /v1/classify has the same shape).
	ScoreVLLMClassify = "vllm-classify"
	// ScoreVLLMPooling: vLLM's POST /pooling {"model", "input": [texts], "task": "classify"} ->
	// {"data": [{"index", "data": [...]}]}.
	ScoreVLLMPooling = "vllm-pooling"
	// ScoreTEI: Text Embeddings Inference's POST /predict {"inputs": [texts], "raw_scores": true} ->
	// [[{"score", "label"}, ...], ...] (one list per input).
	ScoreTEI = "tei"
	// ScoreOpenRLHF: OpenRLHF's serve_rm POST /get_reward {"query": [texts]} -> {"rewards": [...]}.
	ScoreOpenRLHF = "openrlhf"
)

// DefaultTemplate joins a prompt and an answer into the text a remote reward model scores: the HH-RLHF dialogue
// format of the local reward models (reward.DefaultTemplate).
const DefaultTemplate = "\n\nHuman: {prompt}\n\nAssistant: {response}"

// ScorerConfig configures a Scorer. Zero fields take the defaults documented on each.
type ScorerConfig struct {
	// Name names the backend in errors, /readyz and metrics. Required.
	Name string
	// API is ScoreVLLMClassify, ScoreVLLMPooling, ScoreTEI or ScoreOpenRLHF. Required.
	API string
	// URL is the server's root (e.g. "http://rm:8000"); the API's path (/classify, /pooling, /predict,
	// /get_reward) is appended unless URL already ends with it. Required.
	URL string
	// Model is sent as "model" to vLLM; "" lets the server pick its only model.
	Model string
	// APIKeyEnv names the environment variable holding a bearer token; "" means none.
	APIKeyEnv string
	// Template joins prompt and answer: "{response}" once, optionally "{prompt}" before it. "" means
	// DefaultTemplate.
	Template string
	// Label picks the score of a model with several outputs: for vLLM an index into probs (pooling: data), for
	// TEI a label name. "" means the only output; a model with several outputs then needs it.
	Label string
	// MaxInFlight caps the requests in flight; 0 means 64. MaxWaiting bounds those waiting; 0 means no bound.
	MaxInFlight, MaxWaiting int
	// ConnectTimeout bounds each connect; 0 means 5 s.
	ConnectTimeout time.Duration
	// Breaker opens the circuit after consecutive failures (BreakerConfig); an open circuit fails Score at once,
	// so reranked requests degrade to their first sample without waiting.
	Breaker BreakerConfig
}

// Scorer scores candidates with a reward model served by another server (vLLM, TEI, OpenRLHF); it satisfies
// engine.Scorer and server.BackendReporter. A failure is an error: the generator then answers unranked and
// marks the response degraded, as with a local reward model. Safe for concurrent use.
type Scorer struct {
	cfg    ScorerConfig
	be     *backend
	url    string
	before string // template text before {response}, holding {prompt}
	after  string
	label  int // vLLM label index; -1: the only output
}

// NewScorer checks cfg and builds a Scorer; it sends nothing.
func NewScorer(cfg ScorerConfig) (*Scorer, error) {
	if cfg.Name == "" {
		return nil, &ConfigError{"name", "is required"}
	}
	path := map[string]string{ScoreVLLMClassify: "/classify", ScoreVLLMPooling: "/pooling", ScoreTEI: "/predict",
		ScoreOpenRLHF: "/get_reward"}[cfg.API]
	if path == "" {
		return nil, &ConfigError{"api", fmt.Sprintf("must be %q, %q, %q or %q, not %q", ScoreVLLMClassify, ScoreVLLMPooling,
			ScoreTEI, ScoreOpenRLHF, cfg.API)}
	}
	tmpl := cfg.Template
	if tmpl == "" {
		tmpl = DefaultTemplate
	}
	before, after, ok := strings.Cut(tmpl, "{response}")
	if !ok || strings.Contains(after, "{response}") || strings.Contains(after, "{prompt}") || strings.Count(before, "{prompt}") > 1 {
		return nil, &ConfigError{"template", "must hold {response} once and at most one {prompt} before it"}
	}
	s := &Scorer{cfg: cfg, before: before, after: after, label: -1}
	if cfg.Label != "" && cfg.API != ScoreTEI {
		i, err := strconv.Atoi(cfg.Label)
		if err != nil || i < 0 {
			return nil, &ConfigError{"label", "must be an output index (0, 1, ...) for vLLM, not " + strconv.Quote(cfg.Label)}
		}
		s.label = i
	}
	key, err := readKey(cfg.APIKeyEnv)
	if err != nil {
		return nil, err
	}
	if s.be, err = newBackend(cfg.Name, "scorer", cfg.API, cfg.URL, cfg.Model, key, cfg.MaxInFlight, cfg.MaxWaiting,
		cfg.ConnectTimeout, 0, cfg.Breaker); err != nil {
		return nil, err
	}
	s.url = strings.TrimRight(cfg.URL, "/")
	if !strings.HasSuffix(s.url, path) {
		s.url += path
	}
	return s, nil
}

// Name is the backend's configured name.
func (s *Scorer) Name() string { return s.cfg.Name }

// BackendStatus reports the backend's circuit breaker and requests in flight.
func (s *Scorer) BackendStatus() api.BackendStatus { return s.be.status() }

// Text is the input the reward model scores for one answer.
func (s *Scorer) Text(prompt, answer string) string {
	return strings.Replace(s.before, "{prompt}", prompt, 1) + answer + s.after
}

// Score implements engine.Scorer: one request with every candidate.
func (s *Scorer) Score(ctx context.Context, prompt string, candidates []string) ([]float32, error) {
	if len(candidates) == 0 {
		return nil, nil
	}
	texts := make([]string, len(candidates))
	for i, c := range candidates {
		texts[i] = s.Text(prompt, c)
	}
	var body any
	switch s.cfg.API {
	case ScoreVLLMClassify:
		body = map[string]any{"model": s.cfg.Model, "input": texts}
	case ScoreVLLMPooling:
		body = map[string]any{"model": s.cfg.Model, "input": texts, "task": "classify"}
	case ScoreTEI:
		body = map[string]any{"inputs": texts, "raw_scores": true, "truncate": true}
	case ScoreOpenRLHF:
		body = map[string]any{"query": texts}
	}
	var scores []float32
	_, err := s.be.do(ctx, func(ctx context.Context) error {
		raw, err := s.post(ctx, body)
		if err != nil {
			return err
		}
		scores, err = s.parse(raw, len(texts))
		return err
	})
	if err != nil {
		return nil, err
	}
	return scores, nil
}

func (s *Scorer) post(ctx context.Context, body any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.be.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, incomplete(err)
	}
	if resp.StatusCode >= 400 {
		return nil, httpFailure(resp.StatusCode, errorMessage(raw), nil)
	}
	return raw, nil
}

// errorMessage reads the message of an error body: OpenAI's {"error": {"message"}}, vLLM's {"message"}, TEI's
// {"error"}, FastAPI's {"detail"}, else the body itself.
func errorMessage(raw []byte) string {
	var e struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Detail  any             `json:"detail"`
	}
	if json.Unmarshal(raw, &e) == nil {
		var inner struct {
			Message string `json:"message"`
		}
		var str string
		switch {
		case json.Unmarshal(e.Error, &inner) == nil && inner.Message != "":
			return inner.Message
		case json.Unmarshal(e.Error, &str) == nil && str != "":
			return str
		case e.Message != "":
			return e.Message
		case e.Detail != nil:
			return fmt.Sprint(e.Detail)
		}
	}
	return strings.TrimSpace(string(raw))
}

// parse reads the scores of n inputs from a response body.
func (s *Scorer) parse(raw []byte, n int) ([]float32, error) {
	scores := make([]float32, n)
	switch s.cfg.API {
	case ScoreVLLMClassify, ScoreVLLMPooling:
		var out struct {
			Data []struct {
				Index *int      `json:"index"`
				Probs []float64 `json:"probs"`
				Data  []float64 `json:"data"`
			} `json:"data"`
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			return nil, malformed("not a vLLM response", err)
		}
		if len(out.Data) != n {
			return nil, malformed(fmt.Sprintf("%d results for %d inputs", len(out.Data), n), nil)
		}
		seen := make([]bool, n)
		for k, d := range out.Data {
			i := k
			if d.Index != nil {
				i = *d.Index
			}
			vals := d.Probs
			if s.cfg.API == ScoreVLLMPooling {
				vals = d.Data
			}
			if i < 0 || i >= n || seen[i] {
				return nil, malformed(fmt.Sprintf("result index %d", i), nil)
			}
			seen[i] = true
			v, err := s.pick(vals)
			if err != nil {
				return nil, err
			}
			scores[i] = float32(v)
		}
	case ScoreTEI:
		var out [][]struct {
			Score float64 `json:"score"`
			Label string  `json:"label"`
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			return nil, malformed("not a TEI /predict response", err)
		}
		if len(out) != n {
			return nil, malformed(fmt.Sprintf("%d results for %d inputs", len(out), n), nil)
		}
		for i, preds := range out {
			found := false
			for _, p := range preds {
				if s.cfg.Label == "" && len(preds) == 1 || p.Label == s.cfg.Label {
					scores[i], found = float32(p.Score), true
					break
				}
			}
			if !found {
				return nil, &failure{msg: fmt.Sprintf("no score for label %q among %d labels (set label)", s.cfg.Label, len(preds))}
			}
		}
	case ScoreOpenRLHF:
		var out struct {
			Rewards []float64 `json:"rewards"`
		}
		if err := json.Unmarshal(raw, &out); err != nil {
			return nil, malformed("not an OpenRLHF /get_reward response", err)
		}
		if len(out.Rewards) != n {
			return nil, malformed(fmt.Sprintf("%d rewards for %d inputs", len(out.Rewards), n), nil)
		}
		for i, v := range out.Rewards {
			scores[i] = float32(v)
		}
	}
	return scores, nil
}

// pick is the configured output of a vLLM result.
func (s *Scorer) pick(vals []float64) (float64, error) {
	switch {
	case s.label >= 0 && s.label < len(vals):
		return vals[s.label], nil
	case s.label < 0 && len(vals) == 1:
		return vals[0], nil
	case s.label < 0:
		return 0, &failure{msg: fmt.Sprintf("the model has %d outputs; set label to the index of the reward", len(vals))}
	}
	return 0, &failure{msg: fmt.Sprintf("label %d is outside the model's %d outputs", s.label, len(vals))}
}
