package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"gopkg.in/yaml.v3"

	"github.com/bestofn/bestofn/chat"
	"github.com/bestofn/bestofn/engine"
	"github.com/bestofn/bestofn/model"
	"github.com/bestofn/bestofn/remote"
	"github.com/bestofn/bestofn/server"
	"github.com/bestofn/bestofn/tokenizer"
	"github.com/bestofn/bestofn/weights"
)

// serveConfig is the file given to `bestofn serve --config` (YAML, or JSON, which YAML reads too); see
// deploy/bestofn.yaml. Without --config it is built from the flags.
type serveConfig struct {
	// Addr is the listen address, e.g. ":8080".
	Addr string `yaml:"addr"`
	// Seed seeds the seeds of requests that set none.
	Seed uint64 `yaml:"seed"`
	// Threads is the worker threads per generator; 0 means one per CPU.
	Threads int `yaml:"threads"`
	// ShutdownTimeout bounds the drain of in-flight requests on SIGTERM; 0 means 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// Generators are loaded once each; several models may share one.
	Generators []generatorConfig `yaml:"generators"`
	// Models are the served names.
	Models []modelConfig `yaml:"models"`
	// Experiments split traffic between models.
	Experiments []experimentConfig `yaml:"experiments"`
	Limits      limitsConfig       `yaml:"limits"`
	// ABLog, when Path is set, appends one JSON line per generation request (off the request path, group-
	// committed; see server.ABLog for what a crash can lose).
	ABLog struct {
		Path  string `yaml:"path"`
		Queue int    `yaml:"queue"` // records waiting for the writer before requests wait; 0 means 4096
	} `yaml:"ab_log"`

	// admin serves /admin on the main listener when not nil (set by runServe, not the file; see platform.go).
	admin http.Handler
	// onMetrics, when not nil, receives the server's metrics once they exist (the hot swap watches the
	// engines it loads).
	onMetrics func(*server.Metrics)
}

type generatorConfig struct {
	Name string `yaml:"name"`
	// Model is a checkpoint: GGUF, safetensors file or directory, or llama2.c .bin.
	Model string `yaml:"model"`
	// Tokenizer is a tokenizer file; "" means the one inside a GGUF model.
	Tokenizer string `yaml:"tokenizer"`
	// Template is a built-in chat template name; "" means the model's GGUF template, else alpaca.
	Template string `yaml:"template"`
	// RewardModel is a reward model directory (config.json, tokenizer.json, model.onnx); "" means none.
	RewardModel string `yaml:"reward_model"`
	// RewardRuntime is "auto", "go" or "ort".
	RewardRuntime string `yaml:"reward_runtime"`
	// ContextLen caps the context; 0 means the model's.
	ContextLen int `yaml:"context_len"`
	// FileLayout keeps Q8_0 weights in the file's layout instead of an interleaved heap copy that decodes
	// batches (best-of-N, concurrent requests) faster; it saves that copy's memory (model.Options.FileLayout).
	FileLayout bool `yaml:"file_layout"`
	// Remote, when set, makes this a remote generator: candidates come from an OpenAI-compatible or Ollama
	// backend (remote.go); Model, Tokenizer and Template are then unset.
	Remote *remoteConfig `yaml:"remote"`
	// Scorer, when set, is a remote reward model (vLLM, TEI, OpenRLHF) instead of RewardModel.
	Scorer *scorerConfig `yaml:"scorer"`
	// Engine tunes the scheduler (see engine.Config); a remote generator uses only score_timeout.
	Engine struct {
		MaxQueue      int           `yaml:"max_queue"`
		MaxActiveSeqs int           `yaml:"max_active_seqs"`
		KVTokens      int           `yaml:"kv_tokens"`
		ScoreTimeout  time.Duration `yaml:"score_timeout"`
	} `yaml:"engine"`
}

type modelConfig struct {
	Name      string `yaml:"name"`
	Generator string `yaml:"generator"`
	N         int    `yaml:"n"`
	Rerank    bool   `yaml:"rerank"`
}

type experimentConfig struct {
	Name     string          `yaml:"name"`
	Variants []variantConfig `yaml:"variants"`
}

type variantConfig struct {
	Name   string  `yaml:"name"`
	Model  string  `yaml:"model"`
	Weight float64 `yaml:"weight"`
}

type limitsConfig struct {
	MaxBodyBytes    int64         `yaml:"max_body_bytes"`
	MaxTokens       int           `yaml:"max_tokens"`
	MaxN            int           `yaml:"max_n"`
	RequestTimeout  time.Duration `yaml:"request_timeout"`
	BodyReadTimeout time.Duration `yaml:"body_read_timeout"`
	MaxConcurrent   int           `yaml:"max_concurrent"`
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML or JSON config file (see deploy/bestofn.yaml); replaces the model flags")
	modelPath := fs.String("model", embeddedGenerator, "generator checkpoint (GGUF, safetensors, llama2.c .bin); "+embeddedGenerator+" is the default model built into bestofn")
	tokPath := fs.String("tokenizer", "", "tokenizer file (default: the one inside a GGUF model)")
	template := fs.String("template", "", "chat template name (alpaca, llama2, vicuna, chatml); default: the model's, else alpaca")
	rewardDir := fs.String("reward-model", embeddedRewardModel, "reward model directory (config.json, tokenizer.json, model.onnx); "+embeddedRewardModel+" is the default built into bestofn, \"\" serves without one (no NAME:r1)")
	rewardRuntime := fs.String("reward-runtime", "auto", "reward runtime: auto, go or ort")
	name := fs.String("name", "llama-gpt4", "baseline model name; the best-of-N model is NAME:r1 and the A/B experiment NAME:ab")
	n := fs.Int("n", 5, "candidates of the NAME:r1 model")
	abWeight := fs.Float64("ab-r1-percent", 50, "share of NAME:ab traffic sent to NAME:r1, in percent")
	scoreBaseline := fs.Bool("score-baseline", false, "with a reward model, also score the baseline's single answer (same answer; its reward_score then compares with R1's, but B's latency includes one scoring pass)")
	addr := fs.String("addr", ":8080", "listen address")
	threads := fs.Int("threads", 0, "worker threads (0: one per CPU)")
	seed := fs.Uint64("seed", 1, "seed of the seeds of requests that set none")
	abLog := fs.String("ab-log", "", "append one JSON line per request (id, variant, prompt, answer, scores) to this file")
	remoteURL := fs.String("remote", "", "generate on this backend instead of --model: an OpenAI-compatible base URL (http://vllm:8000/v1) or an Ollama root (with --remote-api ollama)")
	remoteAPI := fs.String("remote-api", "openai", "API of the --remote backend: openai or ollama")
	remoteModel := fs.String("remote-model", "", "model name on the --remote backend (default: its only model); also the served NAME unless --name is set")
	var lim limitsConfig
	fs.Int64Var(&lim.MaxBodyBytes, "max-body-bytes", 1<<20, "largest request body")
	fs.IntVar(&lim.MaxTokens, "max-tokens", 1024, "largest max_tokens a request may ask (and the default)")
	fs.IntVar(&lim.MaxN, "max-n", 16, "largest n / best_of")
	fs.DurationVar(&lim.RequestTimeout, "timeout", 10*time.Minute, "deadline of each generation request")
	fs.IntVar(&lim.MaxConcurrent, "max-concurrent", 64, "generation requests in flight before answering 429")
	pf := addPlatformFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var cfg serveConfig
	if *configPath != "" {
		for _, f := range []string{"model", "tokenizer", "template", "reward-model", "name", "n", "ab-r1-percent", "score-baseline",
			"remote", "remote-api", "remote-model"} {
			if set[f] {
				return fmt.Errorf("--%s cannot be combined with --config (set it in the file)", f)
			}
		}
		var err error
		if cfg, err = loadServeConfig(*configPath); err != nil {
			return err
		}
	} else {
		rd := *rewardDir
		if *remoteURL == "" {
			cfg = flagConfig(*modelPath, *tokPath, *template, rd, *rewardRuntime, *name, *n, *abWeight, *scoreBaseline)
		} else {
			var err error
			if cfg, err = remoteFlags(ctx, set, *remoteURL, *remoteAPI, *remoteModel, rd, *rewardRuntime, *name, *n, *abWeight, *scoreBaseline); err != nil {
				return err
			}
		}
	}
	// Flags given explicitly override the file.
	if set["addr"] || cfg.Addr == "" {
		cfg.Addr = *addr
	}
	if set["threads"] {
		cfg.Threads = *threads
	}
	if set["seed"] || *configPath == "" {
		cfg.Seed = *seed
	}
	if set["ab-log"] {
		cfg.ABLog.Path = *abLog
	}
	overrideLimits(&cfg.Limits, lim, set, *configPath == "")

	logger := slog.New(slog.NewTextHandler(stderr, nil))
	if err := resolveEmbedded(&cfg, logger); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	plat, err := openPlatform(ctx, pf, cfg.Addr, cfg, logger)
	if err != nil {
		return err
	}
	defer plat.close()
	if plat.adminAddr == "" {
		cfg.admin = plat.admin
	}
	if plat.act != nil {
		cfg.onMetrics = plat.act.setMetrics
	}
	srv, closeAll, err := buildServer(cfg, logger, reg)
	if err != nil {
		return err
	}
	defer closeAll()
	if err := plat.start(ctx, srv); err != nil {
		return err
	}
	stopAdmin, err := plat.serveAdmin(ctx, stdout, logger)
	if err != nil {
		return err
	}
	defer stopAdmin()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("serving", "addr", ln.Addr().String())
	fmt.Fprintf(stdout, "bestofn: listening on %s\n", ln.Addr())
	return serveUntilDone(ctx, hs, ln, srv, cfg.ShutdownTimeout, logger)
}

// serveUntilDone serves until ctx is cancelled (SIGINT/SIGTERM), then marks the server not ready and drains
// in-flight requests for at most timeout.
func serveUntilDone(ctx context.Context, hs *http.Server, ln net.Listener, srv *server.Server, timeout time.Duration, logger *slog.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	logger.Info("shutting down: draining in-flight requests", "timeout", timeout)
	srv.BeginShutdown()
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		hs.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

func loadServeConfig(path string) (serveConfig, error) {
	var cfg serveConfig
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if len(cfg.Generators) == 0 || len(cfg.Models) == 0 {
		return cfg, fmt.Errorf("config %s: needs at least one generator and one model", path)
	}
	return cfg, nil
}

// flagConfig is the configuration of the flags: one generator, a baseline NAME (N=1), and with a reward model
// NAME:r1 (best of n, reranked) and the experiment NAME:ab between them. scoreBaseline makes the baseline score
// its single answer (rerank with N=1), so both variants report reward scores.
func flagConfig(modelPath, tokPath, template, rewardDir, rewardRuntime, name string, n int, r1Percent float64, scoreBaseline bool) serveConfig {
	cfg := serveConfig{
		Generators: []generatorConfig{{Name: "default", Model: modelPath, Tokenizer: tokPath, Template: template,
			RewardModel: rewardDir, RewardRuntime: rewardRuntime}},
		Models: []modelConfig{{Name: name, Generator: "default", N: 1}},
	}
	if rewardDir != "" {
		cfg.Models[0].Rerank = scoreBaseline // N=1: the answer is unchanged, only scored
		cfg.Models = append(cfg.Models, modelConfig{Name: name + ":r1", Generator: "default", N: n, Rerank: true})
		x := experimentConfig{Name: name + ":ab"}
		x.Variants = []variantConfig{{"B", name, 100 - r1Percent}, {"R1", name + ":r1", r1Percent}}
		cfg.Experiments = append(cfg.Experiments, x)
	}
	return cfg
}

func overrideLimits(dst *limitsConfig, flags limitsConfig, set map[string]bool, all bool) {
	if all || set["max-body-bytes"] {
		dst.MaxBodyBytes = flags.MaxBodyBytes
	}
	if all || set["max-tokens"] {
		dst.MaxTokens = flags.MaxTokens
	}
	if all || set["max-n"] {
		dst.MaxN = flags.MaxN
	}
	if all || set["timeout"] {
		dst.RequestTimeout = flags.RequestTimeout
	}
	if all || set["max-concurrent"] {
		dst.MaxConcurrent = flags.MaxConcurrent
	}
}

// loaded is one loaded generator with what must be closed, in order.
type loaded struct {
	eng *engine.Engine // nil for a remote generator
	// remote and remoteScorer are a remote generator and a remote reward model (remote.go).
	remote       *remote.Generator
	remoteScorer *remote.Scorer
	// gen serves eng and closes it with its model and checkpoint, once (by a hot swap that retires it, or at
	// shutdown); scorer, when the generator has a reward model, closes that once too.
	gen      *closingGenerator
	scorer   *closingScorer
	tmpl     server.Template
	info     server.ModelInfo
	canScore bool
	closers  []func() error
}

// buildServer loads every generator (checkpoint, model, tokenizer, template, reward model, engine) and builds
// the server. closeAll stops the engines and releases everything; call it after the HTTP server has drained.
func buildServer(cfg serveConfig, logger *slog.Logger, reg *prometheus.Registry) (*server.Server, func(), error) {
	var closers []func() error
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			if err := closers[i](); err != nil {
				logger.Warn("close", "err", err)
			}
		}
	}
	metrics := server.NewMetrics(reg)
	if cfg.onMetrics != nil {
		cfg.onMetrics(metrics)
	}
	gens := map[string]*loaded{}
	for _, g := range cfg.Generators {
		if g.Name == "" {
			closeAll()
			return nil, nil, errors.New("config: a generator has no name")
		}
		if _, dup := gens[g.Name]; dup {
			closeAll()
			return nil, nil, fmt.Errorf("config: generator %q listed twice", g.Name)
		}
		l, err := loadAny(g, cfg.Threads, cfg.Limits.MaxN, logger)
		if l != nil {
			if l.scorer != nil {
				closers = append(closers, l.scorer.Close)
			}
			closers = append(closers, l.closers...)
		}
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("generator %q: %w", g.Name, err)
		}
		gens[g.Name] = l
		if eng := l.eng; eng != nil {
			metrics.WatchEngine(g.Name, func() server.EngineStats {
				st := eng.Stats()
				return server.EngineStats{QueueDepth: st.QueueDepth, ActiveRequests: st.ActiveRequests,
					ActiveSequences: st.ActiveSeqs, KVBlocksUsed: st.KVBlocksUsed, KVBlocksTotal: st.KVBlocksTotal}
			})
		}
	}
	scfg := server.Config{
		Limits: server.Limits{MaxBodyBytes: cfg.Limits.MaxBodyBytes, MaxTokens: cfg.Limits.MaxTokens, MaxN: cfg.Limits.MaxN,
			RequestTimeout: cfg.Limits.RequestTimeout, BodyReadTimeout: cfg.Limits.BodyReadTimeout,
			MaxConcurrent: cfg.Limits.MaxConcurrent},
		Logger: logger, Metrics: metrics, Gatherer: reg, Seed: cfg.Seed, Version: "0.1.0", Admin: cfg.admin,
	}
	for _, m := range cfg.Models {
		l, ok := gens[m.Generator]
		if !ok {
			closeAll()
			return nil, nil, fmt.Errorf("config: model %q names unknown generator %q", m.Name, m.Generator)
		}
		if m.Rerank && !l.canScore {
			closeAll()
			return nil, nil, fmt.Errorf("config: model %q reranks but generator %q has no reward_model or scorer", m.Name, m.Generator)
		}
		sm := server.Model{Name: m.Name, Generator: l.gen, Template: l.tmpl, N: m.N,
			Rerank: m.Rerank, CanRerank: l.canScore, Info: l.info}
		if l.remote != nil {
			sm.Generator = l.remote
		}
		if l.scorer != nil {
			sm.Scorer = l.scorer // per request, so that a hot swap of the reward model can drain the old one
		}
		if l.remoteScorer != nil {
			sm.Scorer = l.remoteScorer
		}
		scfg.Models = append(scfg.Models, sm)
	}
	for _, x := range cfg.Experiments {
		e := server.Experiment{Name: x.Name}
		for _, v := range x.Variants {
			e.Variants = append(e.Variants, server.Variant{Name: v.Name, Model: v.Model, Weight: v.Weight})
		}
		scfg.Experiments = append(scfg.Experiments, e)
	}
	if cfg.ABLog.Path != "" {
		abl, err := server.OpenABLog(cfg.ABLog.Path, server.ABLogOptions{QueueSize: cfg.ABLog.Queue, Logger: logger})
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		closers = append(closers, abl.Close)
		scfg.ABLog = abl
	}
	srv, err := server.New(scfg)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return srv, closeAll, nil
}

// loadGenerator loads one generator whose engine runs up to maxN candidates per request (the server's limit;
// 0 means engine.DefaultMaxN). On error the returned loaded (if any) holds what must still be closed: its
// closers and its scorer.
func loadGenerator(g generatorConfig, threads, maxN int, logger *slog.Logger) (*loaded, error) {
	l := &loaded{}
	start := time.Now()
	ck, err := weights.Open(g.Model)
	if err != nil {
		return l, err
	}
	l.closers = append(l.closers, ck.Close)
	m, err := model.Load(ck, model.Options{Threads: threads, ContextLen: g.ContextLen, FileLayout: g.FileLayout})
	if err != nil {
		return l, err
	}
	l.closers = append(l.closers, func() error { m.Close(); return nil })
	var tok *tokenizer.Tokenizer
	if g.Tokenizer != "" {
		tok, err = tokenizer.Load(g.Tokenizer)
	} else if tok, err = tokenizer.FromMetadata(ck.Metadata); err != nil {
		err = fmt.Errorf("%w (set a tokenizer for checkpoints without one)", err)
	}
	if err != nil {
		return l, err
	}
	tmpl, note, err := chatTemplate(g.Template, tok)
	if err != nil {
		return l, err
	}
	if note != "" {
		logger.Info("chat template: alpaca", "generator", g.Name, "why", note)
	}
	l.tmpl = tmpl

	var scorer engine.Scorer
	if g.RewardModel != "" {
		s, owned, err := loadScorer(g) // an ONNX directory, or "rules" (rulesscorer.go)
		if err != nil {
			return l, err
		}
		l.scorer = owned // closed on its own: see loaded; nil for the rules
		scorer, l.canScore = s, true
	}
	// The server's max_n is the engine's, and a request of max_n candidates must fit the decode batch.
	seqs := g.Engine.MaxActiveSeqs
	switch {
	case seqs == 0:
		seqs = max(maxN, engine.DefaultMaxN)
	case seqs < maxN:
		return l, fmt.Errorf("engine.max_active_seqs %d is below limits.max_n %d: such requests could never run", seqs, maxN)
	}
	eng, err := engine.New(m, tok, scorer, engine.Config{MaxQueue: g.Engine.MaxQueue, MaxActiveSeqs: seqs, MaxN: maxN,
		KVTokens: g.Engine.KVTokens, ScoreTimeout: g.Engine.ScoreTimeout})
	if err != nil {
		return l, err
	}
	l.closers = append(l.closers, func() error { eng.Close(); return nil })
	l.eng = eng
	l.gen = &closingGenerator{Engine: eng, closers: l.closers}
	l.closers = []func() error{l.gen.Close}
	l.info = modelInfo(ck, m.Config(), g, tmpl.t.Name())
	l.info.VocabSize = m.Config().VocabSize
	logger.Info("generator loaded", "generator", g.Name, "model", g.Model, "params", l.info.ParameterSize,
		"type", l.info.QuantizationLevel, "template", tmpl.t.Name(), "reward_model", g.RewardModel, "took", time.Since(start))
	return l, nil
}

// chatTemplate is the named built-in chat template or, when name is "", the model's own GGUF template, falling
// back to alpaca (the paper's format); note says why the fallback was used ("" if it was not).
func chatTemplate(name string, tok *tokenizer.Tokenizer) (a templateAdapter, note string, err error) {
	bos, eos := tok.TokenText(tok.BOS()), tok.TokenText(tok.EOS())
	var t chat.Template
	if name != "" {
		t, err = chat.Lookup(name)
	} else {
		t, note, err = chat.Select(tok.ChatTemplate(), "alpaca", bos, eos)
	}
	if err != nil {
		return a, "", err
	}
	return templateAdapter{t: t, bos: bos, addBOS: tok.AddBOSDefault(), control: tok.ControlTexts()}, note, nil
}

// templateAdapter renders with a chat.Template, in parts: the control-token texts of the tokenizer (control)
// typed into messages stay plain text. The engine adds the tokenizer's default BOS itself, so a BOS the
// template writes at the start is removed rather than doubled.
type templateAdapter struct {
	t       chat.Template
	bos     string
	addBOS  bool
	control []string
}

// Render implements server.Template.
func (a templateAdapter) Render(msgs []server.Message) ([]engine.PromptPart, error) {
	cm := make([]chat.Message, len(msgs))
	for i, m := range msgs {
		cm[i] = chat.Message{Role: m.Role, Content: m.Content}
	}
	parts, err := chat.RenderParts(a.t, cm, a.control)
	if err != nil {
		return nil, err
	}
	out := make([]engine.PromptPart, 0, len(parts))
	for i, p := range parts {
		if i == 0 && p.Special && a.addBOS && a.bos != "" && !chat.AddBOS(p.Text, a.bos, a.addBOS) {
			if p.Text = strings.TrimPrefix(p.Text, a.bos); p.Text == "" {
				continue
			}
		}
		out = append(out, engine.PromptPart{Text: p.Text, Special: p.Special})
	}
	return out, nil
}

// modelInfo describes a checkpoint for /api/tags and /api/show.
func modelInfo(ck *weights.Checkpoint, mc model.Config, g generatorConfig, templateName string) server.ModelInfo {
	info := server.ModelInfo{Format: strings.ToLower(ck.Format), ContextLength: mc.ContextLen, TemplateName: templateName,
		RewardModel: g.RewardModel, Metadata: map[string]any{}}
	if arch, ok := ck.Metadata.String("general.architecture"); ok {
		info.Family = arch
	}
	var params int64
	types := map[string]int64{}
	for _, t := range ck.Tensors {
		n := int64(1)
		for _, d := range t.Shape {
			n *= int64(d)
		}
		params += n
		if len(t.Shape) == 2 {
			types[t.Type.String()] += n
		}
	}
	info.ParameterSize = humanCount(params)
	var names []string
	for k := range types {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return types[names[i]] > types[names[j]] })
	if len(names) > 0 {
		info.QuantizationLevel = names[0]
	}
	if st, err := os.Stat(g.Model); err == nil {
		info.ModifiedAt = st.ModTime()
		if !st.IsDir() {
			info.Size = st.Size()
		}
	}
	for _, k := range []string{"general.architecture", "general.name", "llama.context_length", "llama.embedding_length",
		"llama.block_count", "llama.feed_forward_length", "llama.attention.head_count", "llama.attention.head_count_kv",
		"llama.vocab_size", "llama.rope.freq_base"} {
		if v, ok := ck.Metadata.Value(k); ok {
			info.Metadata[k] = v
		}
	}
	info.Metadata["general.parameter_count"] = params
	return info
}

// humanCount formats a parameter count like Ollama: 260K, 6.7B.
func humanCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.0fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
