package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bestofn/bestofn/api"
	"github.com/bestofn/bestofn/engine"
)

// Generator samples candidates for a request and optionally ranks them; *engine.Engine satisfies it.
type Generator interface {
	Generate(ctx context.Context, req engine.Request) (*engine.Result, error)
}

// Message is one chat message as the server hands it to a Template. Role is "system", "user" or "assistant".
type Message struct {
	Role    string
	Content string
}

// Template renders a conversation into the generator's prompt, ending with the assistant's generation prompt.
// The prompt comes in parts: the template's own text (Special: its control tokens written as text are parsed)
// and text from the messages that must stay plain text (see engine.Request.PromptParts). cmd/bestofn adapts a
// chat.Template to it.
type Template interface {
	Render(msgs []Message) ([]engine.PromptPart, error)
}

// TemplateFunc adapts a function to Template.
type TemplateFunc func(msgs []Message) ([]engine.PromptPart, error)

// Render calls f(msgs).
func (f TemplateFunc) Render(msgs []Message) ([]engine.PromptPart, error) { return f(msgs) }

// Model is one served model: a generator, a prompt template and its best-of-N defaults. The same Generator may
// serve several Models (e.g. "llama-gpt4" with N=1 and "llama-gpt4:r1" with N=5 and reranking).
type Model struct {
	// Name is the public model name, e.g. "llama-gpt4:r1".
	Name string
	// Generator runs the requests; required.
	Generator Generator
	// Template renders chat messages; required for the chat endpoints (nil makes them answer 400) unless the
	// generator applies its own template (ChatTemplater).
	Template Template
	// N is the default number of candidates; 0 means 1.
	N int
	// Rerank is the default of the rerank extension: rank candidates by the reward model.
	Rerank bool
	// CanRerank says whether the generator has a reward model; without one, requests asking for
	// rerank "reward" get a 400. Rerank implies CanRerank.
	CanRerank bool
	// Info describes the model on /api/tags and /api/show.
	Info ModelInfo
	// Scorer, when not nil, ranks this model's reranked requests instead of the generator's own scorer
	// (engine.Request.Scorer); Swap replaces it.
	Scorer engine.Scorer
}

// ModelInfo is what the server tells clients about a model. Zero fields are omitted.
type ModelInfo struct {
	Family            string // e.g. "llama"
	Format            string // e.g. "gguf"
	ParameterSize     string // e.g. "260K", "6.7B"
	QuantizationLevel string // e.g. "F32", "Q4_0"
	ContextLength     int
	Size              int64  // bytes of weights
	Digest            string // e.g. "sha256:..."
	VocabSize         int    // tokens of the vocabulary; when set, logit_bias ids are checked against it
	ModifiedAt        time.Time
	TemplateName      string         // chat template name
	RewardModel       string         // reward model path or name
	Backend           string         // the remote backend the generator forwards to (metrics' backend label); "" = local
	Metadata          map[string]any // a summary of the checkpoint's metadata, shown as /api/show model_info
}

// Experiment splits the traffic sent to its Name between variants, each served by a Model. A request is
// assigned by hashing (experiment name, sticky key), so a key always gets the same variant while the weights
// stay the same.
type Experiment struct {
	// Name is the model name clients ask for; it must not collide with a Model's name.
	Name string
	// Variants share the traffic in proportion to their weights.
	Variants []Variant
}

// Variant is one arm of an Experiment.
type Variant struct {
	// Name labels metrics, the X-Bestofn-Variant header and the response body, e.g. "B" or "R1".
	Name string
	// Model is the name of the Model that serves this variant.
	Model string
	// Weight is the variant's share of traffic relative to the other variants; must be > 0.
	Weight float64
}

// Limits bound what a request may ask for. Zero fields take the defaults noted.
type Limits struct {
	// MaxBodyBytes caps request bodies (413 beyond); 0 means 1 MiB.
	MaxBodyBytes int64
	// MaxTokens caps max_tokens / num_predict and is the default when a request sets none; 0 means no cap
	// beyond the context length.
	MaxTokens int
	// MaxN caps n and best_of; 0 means engine.DefaultMaxN. The generators must accept as many candidates
	// (engine.Config.MaxN and MaxActiveSeqs). Stop strings are bounded by package sampler's limits.
	MaxN int
	// RequestTimeout bounds each generation request (504 beyond); 0 means 10 minutes.
	RequestTimeout time.Duration
	// BodyReadTimeout bounds the reading of a generation request's body (408 beyond), which is read and
	// decoded before the request takes a slot of MaxConcurrent; 0 means 30 seconds. The http.Server's
	// ReadHeaderTimeout bounds the headers.
	BodyReadTimeout time.Duration
	// MaxConcurrent caps generations in flight (a request holds a slot from the end of its validation to the
	// end of its generation); more get 429 with Retry-After. 0 means 64.
	MaxConcurrent int
	// RetryAfter is the Retry-After hint of 429 answers; 0 means 1 second.
	RetryAfter time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = 1 << 20
	}
	if l.MaxN <= 0 {
		l.MaxN = engine.DefaultMaxN
	}
	if l.RequestTimeout <= 0 {
		l.RequestTimeout = 10 * time.Minute
	}
	if l.BodyReadTimeout <= 0 {
		l.BodyReadTimeout = 30 * time.Second
	}
	if l.MaxConcurrent <= 0 {
		l.MaxConcurrent = 64
	}
	if l.RetryAfter <= 0 {
		l.RetryAfter = time.Second
	}
	return l
}

// Config configures a Server.
type Config struct {
	Models      []Model
	Experiments []Experiment
	Limits      Limits
	// Logger receives request logs and internal error causes; nil means slog.Default().
	Logger *slog.Logger
	// Metrics records the server's metrics; nil means metrics registered on a private registry.
	Metrics *Metrics
	// Gatherer serves GET /metrics; nil means the route answers 404.
	Gatherer prometheus.Gatherer
	// ABLog, when not nil, receives one record per generation request.
	ABLog *ABLog
	// Seed seeds the source of seeds for requests that set none.
	Seed uint64
	// Version is bestofn's semantic version (e.g. "0.1.0"), reported by /api/version, whose clients parse it,
	// and as system_fingerprint "bestofn-VERSION"; "" means "0.0.0-dev".
	Version string
	// UserHeader is the header holding the sticky A/B key when the body has no user; "" means
	// "X-Bestofn-User".
	UserHeader string
	// Admin, when not nil, serves /admin/ (package admin's handler, or admin.Disabled()); nil leaves those
	// paths to the 404 of unknown routes.
	Admin http.Handler
}

// Header names.
const (
	// HeaderVariant carries the chosen variant on responses, and overrides the choice on requests.
	HeaderVariant = "X-Bestofn-Variant"
	// HeaderUser is the default sticky-key header.
	HeaderUser = "X-Bestofn-User"
)

// Server serves the OpenAI- and Ollama-compatible APIs. Create it with New and serve Handler().
type Server struct {
	cfg         Config
	limits      Limits
	log         *slog.Logger
	metrics     *Metrics
	models      map[string]*Model
	experiments map[string]*experiment
	names       []string // models then experiments, in configuration order
	sem         chan struct{}
	draining    atomic.Bool
	created     time.Time

	seedMu sync.Mutex
	seeds  *rand.Rand

	swap *swapState // hot swap (swap.go)
}

// New validates cfg and builds a Server.
func New(cfg Config) (*Server, error) {
	s := &Server{
		cfg:         cfg,
		limits:      cfg.Limits.withDefaults(),
		log:         cfg.Logger,
		metrics:     cfg.Metrics,
		models:      make(map[string]*Model),
		experiments: make(map[string]*experiment),
		created:     time.Now(),
		seeds:       rand.New(rand.NewPCG(cfg.Seed, 0x6265_7374_6f66_6e00)),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.metrics == nil {
		s.metrics = NewMetrics(prometheus.NewRegistry())
	}
	if s.cfg.Version == "" {
		s.cfg.Version = "0.0.0-dev"
	}
	if s.cfg.UserHeader == "" {
		s.cfg.UserHeader = HeaderUser
	}
	if len(cfg.Models) == 0 {
		return nil, errors.New("server: no models configured")
	}
	for i := range cfg.Models {
		m := cfg.Models[i]
		if m.Name == "" {
			return nil, fmt.Errorf("server: model %d has no name", i)
		}
		if m.Generator == nil {
			return nil, fmt.Errorf("server: model %q has no generator", m.Name)
		}
		if _, dup := s.models[m.Name]; dup {
			return nil, fmt.Errorf("server: model %q configured twice", m.Name)
		}
		if m.N < 0 || m.N > s.limits.MaxN {
			return nil, fmt.Errorf("server: model %q: n=%d out of range [1, %d]", m.Name, m.N, s.limits.MaxN)
		}
		if m.N == 0 {
			m.N = 1
		}
		if m.Rerank {
			m.CanRerank = true
		}
		s.models[m.Name] = &m
		s.names = append(s.names, m.Name)
	}
	for _, e := range cfg.Experiments {
		if _, dup := s.models[e.Name]; dup {
			return nil, fmt.Errorf("server: experiment %q has the name of a model", e.Name)
		}
		if _, dup := s.experiments[e.Name]; dup {
			return nil, fmt.Errorf("server: experiment %q configured twice", e.Name)
		}
		x, err := newExperiment(e, s.models)
		if err != nil {
			return nil, err
		}
		s.experiments[e.Name] = x
		s.names = append(s.names, e.Name)
	}
	s.sem = make(chan struct{}, s.limits.MaxConcurrent)
	s.initSwap()
	statuses := s.backendStatuses
	s.metrics.backends.source.Store(&statuses)
	return s, nil
}

// Gatherer is the registry /metrics serves (Config.Gatherer); nil when there is none.
func (s *Server) Gatherer() prometheus.Gatherer { return s.cfg.Gatherer }

// Handler returns the server's routes with their middleware. All routing is here.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.RequestID, echoRequestID, middleware.RealIP, s.logRequests, s.recoverer)
	r.NotFound(s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return &httpError{Status: http.StatusNotFound, Type: api.ErrorTypeNotFound, Message: "no route for " + r.Method + " " + r.URL.Path}
	}))
	r.MethodNotAllowed(s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return &httpError{Status: http.StatusMethodNotAllowed, Type: api.ErrorTypeInvalidRequest, Message: "method " + r.Method + " not allowed on " + r.URL.Path}
	}))

	r.Get("/", s.root)
	r.Head("/", s.root)
	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	if s.cfg.Gatherer != nil {
		r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{}))
	}

	if s.cfg.Admin != nil {
		r.Handle("/admin/*", s.cfg.Admin)
	}

	// Generation routes: bounded bodies read in full under a deadline, then a deadline on the request. The cap
	// on generations in flight is taken in run, once the request is decoded and valid.
	gen := chi.Chain(s.limitBody, s.readBody, s.timeout)

	r.Route("/v1", func(r chi.Router) {
		r.With(gen...).Post("/chat/completions", s.handle(s.chatCompletions))
		r.With(gen...).Post("/completions", s.handle(s.completions))
		r.Get("/models", s.handle(s.listModels))
		r.Get("/models/{model}", s.handle(s.getModel))
	})
	r.Route("/api", func(r chi.Router) {
		r.With(gen...).Post("/chat", s.handle(s.ollamaChat))
		r.With(gen...).Post("/generate", s.handle(s.ollamaGenerate))
		r.Get("/tags", s.handle(s.ollamaTags))
		r.Get("/ps", s.handle(s.ollamaPs))
		r.With(s.limitBody).Post("/show", s.handle(s.ollamaShow))
		r.Get("/version", s.handle(s.ollamaVersion))
		r.Head("/version", s.handle(s.ollamaVersion))
	})
	return r
}

// BeginShutdown makes /readyz answer 503 so load balancers stop sending traffic; in-flight requests continue.
// Call it before http.Server.Shutdown, which drains them.
func (s *Server) BeginShutdown() { s.draining.Store(true) }

// root answers Ollama clients' heartbeat (HEAD /).
func (s *Server) root(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte("bestofn is running\n"))
	}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
		return
	}
	names := make([]string, len(s.names))
	copy(names, s.names)
	sort.Strings(names)
	body := map[string]any{"status": "ready", "models": names}
	if b := s.backendStatuses(); len(b) > 0 {
		body["backends"] = b // reported, not required: replicas share their backends (see BackendReporter)
	}
	writeJSON(w, http.StatusOK, body)
}

// nextSeed returns a seed for a request that set none.
func (s *Server) nextSeed() uint64 {
	s.seedMu.Lock()
	defer s.seedMu.Unlock()
	return s.seeds.Uint64()
}
