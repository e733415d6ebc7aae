package server

import (
	"bytes"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	ollama "github.com/ollama/ollama/api"
	ollamamodel "github.com/ollama/ollama/types/model"

	"github.com/bestofn/bestofn/api"
	"github.com/bestofn/bestofn/engine"
)

// ollamaDefaults are Ollama's defaults for unset sampling options.
var ollamaDefaults = engine.SamplingParams{Temperature: 0.8, TopK: 40, TopP: 0.9, RepeatPenalty: 1.1, RepeatLastN: 64}

// ollamaIgnored are Ollama options bestofn accepts and ignores: runner settings fixed at load time and
// sampling methods it does not implement.
var ollamaIgnored = map[string]bool{
	"num_ctx": true, "num_batch": true, "num_gpu": true, "main_gpu": true, "use_mmap": true, "num_thread": true,
	"num_keep": true, "typical_p": true, "mirostat": true, "mirostat_tau": true, "mirostat_eta": true, "tfs_z": true,
	"penalize_newline": true, "numa": true, "low_vram": true, "f16_kv": true, "vocab_only": true, "use_mlock": true,
	"logits_all": true, "embedding_only": true, "rope_frequency_base": true, "rope_frequency_scale": true,
}

func optFloat(key string, v any) (*float64, error) {
	f, ok := v.(float64)
	if !ok {
		return nil, badParam("options."+key, "option %q must be a number", key)
	}
	return &f, nil
}

func optInt(key string, v any) (int64, error) {
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, badParam("options."+key, "option %q must be an integer", key)
	}
	return int64(f), nil
}

// ollamaParams converts Ollama's untyped options, once, into params. Options Ollama has but bestofn does not
// implement are ignored, and so are unknown ones, which it returns for a warning (Ollama's Options.FromMap
// logs "invalid option provided"); a value of the wrong type is an error.
func ollamaParams(opts map[string]any) (params, []string, error) {
	var unknown []string
	p := params{prefix: "options.", maxTokensName: "options.num_predict"}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic error messages
	for _, k := range keys {
		v := opts[k]
		if v == nil || ollamaIgnored[k] {
			continue
		}
		var err error
		var i int64
		switch k {
		case "temperature":
			p.temperature, err = optFloat(k, v)
		case "top_p":
			p.topP, err = optFloat(k, v)
		case "min_p":
			p.minP, err = optFloat(k, v)
		case "repeat_penalty":
			p.repeatPenalty, err = optFloat(k, v)
		case "presence_penalty":
			p.presence, err = optFloat(k, v)
		case "frequency_penalty":
			p.frequency, err = optFloat(k, v)
		case "top_k", "repeat_last_n", "num_predict", "best_of":
			if i, err = optInt(k, v); err == nil {
				if i > math.MaxInt32 || i < math.MinInt32 {
					return p, nil, badParam("options."+k, "option %q is out of range", k)
				}
				n := int(i)
				switch k {
				case "top_k":
					p.topK = &n
				case "repeat_last_n":
					p.repeatLastN = &n
				case "num_predict":
					if n > 0 { // 0 and -1 mean no limit, -2 fill the context: as many as fit
						p.maxTokens = &n
					}
				case "best_of":
					p.bestOf = &n
				}
			}
		case "seed":
			if i, err = optInt(k, v); err == nil {
				p.seed = &i
			}
		case "stop":
			switch s := v.(type) {
			case string:
				p.stop = []string{s}
			case []any:
				for _, e := range s {
					str, ok := e.(string)
					if !ok {
						return p, nil, badParam("options.stop", "option \"stop\" must be an array of strings")
					}
					p.stop = append(p.stop, str)
				}
			default:
				return p, nil, badParam("options.stop", "option \"stop\" must be an array of strings")
			}
		case "rerank":
			switch s := v.(type) {
			case bool:
				p.rerank = api.RerankNone
				if s {
					p.rerank = api.RerankReward
				}
			case string:
				p.rerank = s
			default:
				return p, nil, badParam("options.rerank", "option \"rerank\" must be \"reward\", \"none\" or a boolean")
			}
		default:
			unknown = append(unknown, k)
		}
		if err != nil {
			return p, nil, err
		}
	}
	return p, unknown, nil
}

// ollamaChatResponse is Ollama's chat response with bestofn's extensions (the OpenAI responses' ones), which
// Ollama clients ignore.
type ollamaChatResponse struct {
	ollama.ChatResponse
	api.Extensions
}

// ollamaGenerateResponse is Ollama's generate response with bestofn's extensions.
type ollamaGenerateResponse struct {
	ollama.GenerateResponse
	api.Extensions
}

// ollamaEnd is what the final object of an Ollama response adds to a piece: why it ended, the timings, the
// first candidate's logprobs and the extensions.
type ollamaEnd struct {
	reason   string
	metrics  ollama.Metrics
	logprobs []ollama.Logprob
	ext      api.Extensions
}

// newOllamaEnd builds the final object's fields; every candidate is listed when there were several.
func newOllamaEnd(c *call, res *engine.Result) ollamaEnd {
	cand := &res.Candidates[0]
	return ollamaEnd{reason: finishReason(cand.FinishReason), metrics: ollamaMetrics(c, res),
		logprobs: ollamaLogprobs(cand.Logprobs), ext: resultExt(c.rt, res, c.rt.model.N > 1 || c.plan.req.N > 1)}
}

// loadReason answers Ollama's load and unload requests (no messages, or no prompt): "unload" with keep_alive
// 0, else "load". bestofn's models are loaded at start and stay loaded, so both are acknowledged at once.
func loadReason(keepAlive *ollama.Duration) string {
	if keepAlive != nil && keepAlive.Duration == 0 {
		return "unload"
	}
	return "load"
}

// notThinking is Ollama's answer to think for a model that does not think.
func notThinking(rt route) error {
	return badParam("think", "%q does not support thinking", rt.model.Name)
}

func unsupported(field, what string) error {
	return badParam(field, "%s is not supported by bestofn", what)
}

// hasFormat says whether a request's format field asks for structured output.
func hasFormat(f []byte) bool {
	f = bytes.TrimSpace(f)
	return len(f) > 0 && string(f) != "null" && string(f) != `""`
}

func (s *Server) ollamaChat(w http.ResponseWriter, r *http.Request) error {
	var req ollama.ChatRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	rt, reqID, err := s.begin(w, r, req.Model, "")
	if err != nil {
		return err
	}
	if len(req.Tools) > 0 {
		return unsupported("tools", "tool calling")
	}
	if req.Think.Bool() || req.Think != nil && req.Think.IsString() {
		return notThinking(rt)
	}
	jsonOut, err := ollamaFormat(req.Format)
	if err != nil {
		return err
	}
	if len(req.Messages) == 0 {
		reason := loadReason(req.KeepAlive)
		writeJSON(w, http.StatusOK, ollamaChatResponse{ChatResponse: ollama.ChatResponse{Model: rt.model.Name,
			CreatedAt: time.Now().UTC(), Message: ollama.Message{Role: "assistant"}, Done: true, DoneReason: reason},
			Extensions: api.Extensions{Variant: rt.variant}})
		return nil
	}
	msgs := make([]Message, len(req.Messages))
	for i, m := range req.Messages {
		if len(m.Images) > 0 {
			return unsupported("messages["+strconv.Itoa(i)+"].images", "images")
		}
		msgs[i] = Message{Role: m.Role, Content: m.Content}
	}
	if err := checkMessages(msgs); err != nil {
		return err
	}
	prompt, err := render(rt.model, msgs)
	if err != nil {
		return err
	}
	p, unknown, err := ollamaParams(req.Options)
	if err != nil {
		return err
	}
	if len(unknown) > 0 {
		s.log.Warn("invalid options provided, ignored", "request_id", reqID, "options", unknown)
	}
	p.logprobs, p.topLogprobs, p.json = req.Logprobs, req.TopLogprobs, jsonOut
	pl, err := s.toEngine(rt.model, p, ollamaDefaults)
	if err != nil {
		return err
	}
	pl.req.Prompt, pl.req.PromptParts, pl.req.RewardPrompt = joinParts(prompt), prompt, lastUser(msgs)
	pl.req.Messages = engineMessages(msgs)
	c := &call{rt: rt, plan: pl, endpoint: "/api/chat", reqID: reqID, start: infoFrom(r.Context()).start, chat: true}

	piece := func(text string) ollamaChatResponse {
		return ollamaChatResponse{ChatResponse: ollama.ChatResponse{Model: rt.model.Name, CreatedAt: time.Now().UTC(),
			Message: ollama.Message{Role: "assistant", Content: text}}, Extensions: api.Extensions{Variant: rt.variant}}
	}
	final := func(res *engine.Result, text string) ollamaChatResponse {
		out, end := piece(text), newOllamaEnd(c, res)
		out.Done, out.DoneReason, out.Metrics, out.Logprobs, out.Extensions = true, end.reason, end.metrics, end.logprobs, end.ext
		return out
	}
	return ollamaRespond(s, w, r, c, req.Stream == nil || *req.Stream, piece, final)
}

func (s *Server) ollamaGenerate(w http.ResponseWriter, r *http.Request) error {
	var req ollama.GenerateRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	rt, reqID, err := s.begin(w, r, req.Model, "")
	if err != nil {
		return err
	}
	switch {
	case req.Raw && (req.Template != "" || req.System != "" || len(req.Context) > 0):
		return badParam("raw", "raw mode does not support template, system, or context")
	case req.Template != "":
		return unsupported("template", "a template override")
	case req.Suffix != "":
		return unsupported("suffix", "fill-in-the-middle (suffix)")
	case len(req.Images) > 0:
		return unsupported("images", "images")
	case len(req.Context) > 0:
		return unsupported("context", "a token context")
	case req.Think.Bool() || req.Think != nil && req.Think.IsString():
		return notThinking(rt)
	}
	jsonOut, err := ollamaFormat(req.Format)
	if err != nil {
		return err
	}
	if req.Prompt == "" {
		writeJSON(w, http.StatusOK, ollamaGenerateResponse{GenerateResponse: ollama.GenerateResponse{Model: rt.model.Name,
			CreatedAt: time.Now().UTC(), Done: true, DoneReason: loadReason(req.KeepAlive)}, Extensions: api.Extensions{Variant: rt.variant}})
		return nil
	}
	// A raw prompt is the client's own rendering of a template (Ollama's meaning of raw), so its control-token
	// text is parsed; otherwise the template renders the prompt in parts.
	parts := []engine.PromptPart{{Text: req.Prompt, Special: true}}
	var msgs []Message
	if !req.Raw {
		if req.System != "" {
			msgs = append(msgs, Message{Role: "system", Content: req.System})
		}
		msgs = append(msgs, Message{Role: "user", Content: req.Prompt})
		if parts, err = render(rt.model, msgs); err != nil {
			return err
		}
	}
	p, unknown, err := ollamaParams(req.Options)
	if err != nil {
		return err
	}
	if len(unknown) > 0 {
		s.log.Warn("invalid options provided, ignored", "request_id", reqID, "options", unknown)
	}
	p.logprobs, p.topLogprobs, p.json = req.Logprobs, req.TopLogprobs, jsonOut
	pl, err := s.toEngine(rt.model, p, ollamaDefaults)
	if err != nil {
		return err
	}
	pl.req.Prompt, pl.req.PromptParts, pl.req.RewardPrompt = joinParts(parts), parts, req.Prompt
	pl.req.Messages = engineMessages(msgs)
	c := &call{rt: rt, plan: pl, endpoint: "/api/generate", reqID: reqID, start: infoFrom(r.Context()).start, chat: !req.Raw}

	piece := func(text string) ollamaGenerateResponse {
		return ollamaGenerateResponse{GenerateResponse: ollama.GenerateResponse{Model: rt.model.Name,
			CreatedAt: time.Now().UTC(), Response: text}, Extensions: api.Extensions{Variant: rt.variant}}
	}
	final := func(res *engine.Result, text string) ollamaGenerateResponse {
		out, end := piece(text), newOllamaEnd(c, res)
		out.Done, out.DoneReason, out.Metrics, out.Logprobs, out.Extensions = true, end.reason, end.metrics, end.logprobs, end.ext
		return out
	}
	return ollamaRespond(s, w, r, c, req.Stream == nil || *req.Stream, piece, final)
}

// ollamaRespond runs c and answers in Ollama's way: one JSON object, or (stream) NDJSON pieces of the first
// choice followed by a final object with done set.
func ollamaRespond[T any](s *Server, w http.ResponseWriter, r *http.Request, c *call, stream bool,
	piece func(text string) T, final func(res *engine.Result, text string) T) error {
	if !stream {
		res, _, err := s.run(r.Context(), c, nil)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, final(res, res.Candidates[0].Text))
		return nil
	}
	sw := newStreamWriter(w, false)
	res, streamed, err := s.run(r.Context(), c, func(choice int, text string) error {
		return sw.send(piece(text))
	})
	if err != nil {
		return s.failStream(sw, r, err)
	}
	if rest := remainder(res.Candidates[0].Text, streamed[0]); rest != "" {
		if err := sw.send(piece(rest)); err != nil {
			return s.failStream(sw, r, err)
		}
	}
	if err := sw.send(final(res, "")); err != nil {
		return s.failStream(sw, r, err)
	}
	return nil
}

// ollamaMetrics are a response's counts and timings. EvalCount counts the tokens of every candidate, all of
// which EvalDuration spent decoding, so that the rate clients show (eval_count / eval_duration) is the rate
// of the work done; the answer's own length is its candidate's "tokens" in the candidates extension.
func ollamaMetrics(c *call, res *engine.Result) ollama.Metrics {
	evals := 0
	for _, cand := range res.Candidates {
		evals += cand.NumTokens()
	}
	return ollama.Metrics{
		TotalDuration:      time.Since(c.start),
		PromptEvalCount:    res.PromptTokens,
		PromptEvalDuration: res.Timings.Prefill,
		EvalCount:          evals,
		EvalDuration:       res.Timings.Decode,
	}
}

func ollamaLogprobs(lps []engine.TokenLogprob) []ollama.Logprob {
	if len(lps) == 0 {
		return nil
	}
	out := make([]ollama.Logprob, len(lps))
	for i, lp := range lps {
		out[i].TokenLogprob = ollama.TokenLogprob{Token: lp.Text, Logprob: float64(lp.Logprob), Bytes: byteInts(lp.Text)}
		for _, t := range lp.Top {
			out[i].TopLogprobs = append(out[i].TopLogprobs, ollama.TokenLogprob{Token: t.Text, Logprob: float64(t.Logprob), Bytes: byteInts(t.Text)})
		}
	}
	return out
}

// modelFor returns the model that describes a name: the model itself, or an experiment's first variant.
func (s *Server) modelFor(name string) (*Model, bool) {
	if m, ok := s.models[name]; ok {
		return s.current(m), true
	}
	if x, ok := s.experiments[name]; ok {
		return s.current(x.models[0]), true
	}
	return nil, false
}

func ollamaDetails(m *Model) ollama.ModelDetails {
	fam := m.Info.Family
	var fams []string
	if fam != "" {
		fams = []string{fam}
	}
	return ollama.ModelDetails{Format: m.Info.Format, Family: fam, Families: fams,
		ParameterSize: m.Info.ParameterSize, QuantizationLevel: m.Info.QuantizationLevel}
}

func (s *Server) ollamaTags(w http.ResponseWriter, r *http.Request) error {
	out := ollama.ListResponse{Models: []ollama.ListModelResponse{}}
	for _, name := range s.names {
		m, _ := s.modelFor(name)
		mod := m.Info.ModifiedAt
		if mod.IsZero() {
			mod = s.created
		}
		out.Models = append(out.Models, ollama.ListModelResponse{Name: name, Model: name, ModifiedAt: mod.UTC(),
			Size: m.Info.Size, Digest: m.Info.Digest, Details: ollamaDetails(m)})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// ollamaPs lists the loaded models: all of them, loaded at startup and kept until shutdown. Their expiry is
// what Ollama reports for keep_alive -1 (forever): now plus the longest duration, which its CLI shows as
// "Forever".
func (s *Server) ollamaPs(w http.ResponseWriter, r *http.Request) error {
	out := ollama.ProcessResponse{Models: []ollama.ProcessModelResponse{}}
	forever := time.Now().Add(time.Duration(math.MaxInt64)).UTC()
	for _, name := range s.names {
		m, _ := s.modelFor(name)
		out.Models = append(out.Models, ollama.ProcessModelResponse{Name: name, Model: name, Size: m.Info.Size,
			Digest: m.Info.Digest, Details: ollamaDetails(m), ContextLength: m.Info.ContextLength, ExpiresAt: forever})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) ollamaShow(w http.ResponseWriter, r *http.Request) error {
	var req ollama.ShowRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	name := req.Model
	if name == "" {
		name = req.Name
	}
	if name == "" {
		return badParam("model", "model is required")
	}
	m, ok := s.modelFor(name)
	if !ok {
		return &httpError{Status: http.StatusNotFound, Type: api.ErrorTypeInvalidRequest, Code: "model_not_found",
			Param: "model", Message: fmt.Sprintf("model %q not found", name)}
	}
	info := map[string]any{}
	for k, v := range m.Info.Metadata {
		info[k] = v
	}
	if m.Info.ContextLength > 0 {
		info["bestofn.context_length"] = m.Info.ContextLength
	}
	var params strings.Builder
	fmt.Fprintf(&params, "best_of %d\n", m.N)
	rerank := api.RerankNone
	if m.Rerank {
		rerank = api.RerankReward
	}
	fmt.Fprintf(&params, "rerank %s\n", rerank)
	if m.Info.RewardModel != "" {
		fmt.Fprintf(&params, "reward_model %s\n", m.Info.RewardModel)
	}
	out := ollama.ShowResponse{
		Details:      ollamaDetails(m),
		ModelInfo:    info,
		Template:     m.Info.TemplateName,
		Parameters:   params.String(),
		Capabilities: []ollamamodel.Capability{ollamamodel.CapabilityCompletion},
		ModifiedAt:   m.Info.ModifiedAt,
	}
	if x, ok := s.experiments[name]; ok {
		for i, v := range x.variants {
			fmt.Fprintf(&params, "variant %s %s %g\n", v.Name, x.models[i].Name, v.Weight)
		}
		out.Parameters = params.String()
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) ollamaVersion(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"version": s.cfg.Version})
	return nil
}
