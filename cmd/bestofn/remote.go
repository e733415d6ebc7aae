package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/bestofn/bestofn/remote"
	"github.com/bestofn/bestofn/server"
)

// remoteConfig is a generator's remote backend (generatorConfig.Remote): bestofn then samples candidates on
// the backend (package remote) instead of loading a checkpoint.
type remoteConfig struct {
	// URL is the backend's base URL: OpenAI-compatible servers' URL under which /chat/completions lives
	// (http://vllm:8000/v1), Ollama's root (http://ollama:11434).
	URL string `yaml:"url"`
	// API is "openai" (default) or "ollama".
	API string `yaml:"api"`
	// Model is the model name sent to the backend; "" asks the backend and takes its only model.
	Model string `yaml:"model"`
	// APIKeyEnv names the environment variable holding the backend's key; "" means none.
	APIKeyEnv string `yaml:"api_key_env"`
	// NSupport is "auto" (default: ask with n, fan out if the backend ignores it), "native" or "fanout".
	NSupport string `yaml:"n_support"`
	// MaxInFlight caps the requests in flight to the backend (0: 64); MaxWaiting bounds those waiting for a
	// slot (0: no bound, the request deadline bounds the wait).
	MaxInFlight int `yaml:"max_in_flight"`
	MaxWaiting  int `yaml:"max_waiting"`
	// ConnectTimeout bounds each connect (0: 5s); HeaderTimeout the wait for response headers (0: none).
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	HeaderTimeout  time.Duration `yaml:"header_timeout"`
	Breaker        breakerConfig `yaml:"breaker"`
}

// breakerConfig is remote.BreakerConfig in the file.
type breakerConfig struct {
	Failures   int           `yaml:"failures"`     // consecutive failures that open the circuit; 0: 5, -1: no breaker
	OpenFor    time.Duration `yaml:"open_for"`     // first open period; 0: 5s (doubles while the backend stays down)
	MaxOpenFor time.Duration `yaml:"max_open_for"` // 0: 1m
}

func (b breakerConfig) remote() remote.BreakerConfig {
	return remote.BreakerConfig{Failures: b.Failures, OpenFor: b.OpenFor, MaxOpenFor: b.MaxOpenFor}
}

// scorerConfig is a remote reward model (generatorConfig.Scorer), instead of a local reward_model.
type scorerConfig struct {
	// Name names the backend in /readyz and errors; "" means GENERATOR-scorer.
	Name string `yaml:"name"`
	// API is "vllm-classify", "vllm-pooling", "tei" or "openrlhf".
	API string `yaml:"api"`
	// URL is the server's root; the API's path is appended.
	URL       string `yaml:"url"`
	Model     string `yaml:"model"`
	APIKeyEnv string `yaml:"api_key_env"`
	// Template joins prompt and answer; "" means the HH-RLHF format of the local reward models.
	Template string `yaml:"template"`
	// Label picks the reward among several outputs (vLLM: an index; TEI: a label name).
	Label          string        `yaml:"label"`
	MaxInFlight    int           `yaml:"max_in_flight"`
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	Breaker        breakerConfig `yaml:"breaker"`
}

// loadAny loads a generator: a remote backend when the config names one, else a checkpoint.
func loadAny(g generatorConfig, threads, maxN int, logger *slog.Logger) (*loaded, error) {
	var l *loaded
	var err error
	if g.Remote != nil {
		l, err = loadRemote(g, maxN, logger)
	} else {
		l, err = loadGenerator(g, threads, maxN, logger)
	}
	if err != nil || g.Scorer == nil {
		return l, err
	}
	if g.RewardModel != "" {
		return l, fmt.Errorf("set reward_model or scorer, not both")
	}
	s, err := newRemoteScorer(g)
	if err != nil {
		return l, err
	}
	l.remoteScorer, l.canScore = s, true
	l.info.RewardModel = s.Name() + " (" + g.Scorer.API + " " + g.Scorer.URL + ")"
	return l, nil
}

func newRemoteScorer(g generatorConfig) (*remote.Scorer, error) {
	sc := g.Scorer
	name := sc.Name
	if name == "" {
		name = g.Name + "-scorer"
	}
	s, err := remote.NewScorer(remote.ScorerConfig{Name: name, API: sc.API, URL: sc.URL, Model: sc.Model, APIKeyEnv: sc.APIKeyEnv,
		Template: sc.Template, Label: sc.Label, MaxInFlight: sc.MaxInFlight, ConnectTimeout: sc.ConnectTimeout,
		Breaker: sc.Breaker.remote()})
	if err != nil {
		return nil, fmt.Errorf("scorer: %w", err)
	}
	return s, nil
}

// loadRemote builds a remote generator and, with reward_model, the local reward model that ranks its
// candidates.
func loadRemote(g generatorConfig, maxN int, logger *slog.Logger) (*loaded, error) {
	rc := g.Remote
	if g.Model != "" || g.Tokenizer != "" || g.Template != "" {
		return nil, fmt.Errorf("a remote generator takes no model, tokenizer or template (the backend has its own)")
	}
	l := &loaded{}
	if rc.Model == "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		m, err := discoverModel(ctx, rc)
		if err != nil {
			return l, fmt.Errorf("remote.model is not set and %w", err)
		}
		rc.Model = m
		logger.Info("remote model discovered", "generator", g.Name, "model", m)
	}
	cfg := remote.Config{Name: g.Name, API: rc.API, URL: rc.URL, Model: rc.Model, APIKeyEnv: rc.APIKeyEnv, NSupport: rc.NSupport,
		MaxN: maxN, MaxInFlight: rc.MaxInFlight, MaxWaiting: rc.MaxWaiting, ConnectTimeout: rc.ConnectTimeout,
		HeaderTimeout: rc.HeaderTimeout, Breaker: rc.Breaker.remote(), ScoreTimeout: g.Engine.ScoreTimeout, Logger: logger}
	if g.RewardModel != "" {
		s, owned, err := loadScorer(g)
		if err != nil {
			return l, err
		}
		l.scorer = owned
		l.canScore = true
		cfg.Scorer = s
	}
	gen, err := remote.New(cfg)
	if err != nil {
		return l, err
	}
	l.remote = gen
	api := rc.API
	if api == "" {
		api = remote.APIOpenAI
	}
	u, _ := url.Parse(rc.URL)
	host := ""
	if u != nil {
		host = u.Host
	}
	l.info = server.ModelInfo{Family: "remote", Format: "remote:" + api, Backend: g.Name, TemplateName: "(the backend's own)",
		RewardModel: g.RewardModel, ModifiedAt: time.Now(),
		Metadata: map[string]any{"remote.api": api, "remote.host": host, "remote.model": rc.Model}}
	logger.Info("remote generator", "generator", g.Name, "api", api, "url", gen.BackendStatus().URL, "model", rc.Model,
		"reward_model", g.RewardModel)
	return l, nil
}

// discoverModel asks a backend for its models (OpenAI GET /models, Ollama GET /api/tags) and returns the only
// one.
func discoverModel(ctx context.Context, rc *remoteConfig) (string, error) {
	u := strings.TrimRight(rc.URL, "/") + "/models"
	if rc.API == remote.APIOllama {
		u = strings.TrimRight(rc.URL, "/") + "/api/tags"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("the backend's model list is unreachable: %w", err)
	}
	defer resp.Body.Close()
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
		Models []struct {
			Name string `json:"name"`
		} `json:"models"`
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s answered %s", u, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return "", fmt.Errorf("GET %s: %w", u, err)
	}
	var names []string
	for _, m := range list.Data {
		names = append(names, m.ID)
	}
	for _, m := range list.Models {
		names = append(names, m.Name)
	}
	sort.Strings(names)
	if len(names) != 1 {
		return "", fmt.Errorf("the backend serves %d models %q: set it (--remote-model)", len(names), names)
	}
	return names[0], nil
}

// remoteFlagConfig is flagConfig for `serve --remote URL`: one remote generator serving NAME (B), and with a
// reward model NAME:r1 and NAME:ab.
func remoteFlagConfig(remoteURL, api, remoteModel, rewardDir, rewardRuntime, name string, n int, r1Percent float64, scoreBaseline bool) serveConfig {
	cfg := flagConfig("", "", "", rewardDir, rewardRuntime, name, n, r1Percent, scoreBaseline)
	cfg.Generators[0].Name = "remote"
	cfg.Generators[0].Remote = &remoteConfig{URL: remoteURL, API: api, Model: remoteModel}
	for i := range cfg.Models {
		cfg.Models[i].Generator = "remote"
	}
	return cfg
}

// remoteFlags is the configuration of `serve --remote`: the served NAME is --name when set, else the backend's
// model (--remote-model, or the only model the backend lists).
func remoteFlags(ctx context.Context, set map[string]bool, remoteURL, api, remoteModel, rewardDir, rewardRuntime, name string,
	n int, r1Percent float64, scoreBaseline bool) (serveConfig, error) {
	for _, f := range []string{"model", "tokenizer", "template"} {
		if set[f] {
			return serveConfig{}, fmt.Errorf("--%s cannot be combined with --remote (the backend has its own)", f)
		}
	}
	if api != remote.APIOpenAI && api != remote.APIOllama {
		return serveConfig{}, fmt.Errorf("--remote-api must be %q or %q, not %q", remote.APIOpenAI, remote.APIOllama, api)
	}
	if remoteModel == "" {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		m, err := discoverModel(dctx, &remoteConfig{URL: remoteURL, API: api})
		if err != nil {
			return serveConfig{}, fmt.Errorf("--remote-model is not set and %w", err)
		}
		remoteModel = m
	}
	if !set["name"] {
		name = remoteModel
	}
	return remoteFlagConfig(remoteURL, api, remoteModel, rewardDir, rewardRuntime, name, n, r1Percent, scoreBaseline), nil
}
