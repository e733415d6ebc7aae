package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/go-chi/chi/v5"

	"github.com/bestofn/bestofn/api"
	"github.com/bestofn/bestofn/jobs"
)

// Service is what the admin API needs of the job platform; *jobs.Service implements it.
type Service interface {
	Types() []string
	UploadFile(ctx context.Context, filename, purpose string, content io.Reader) (jobs.File, error)
	File(ctx context.Context, id string) (jobs.File, error)
	Files(ctx context.Context, purpose string) ([]jobs.File, error)
	OpenFile(ctx context.Context, id string) (io.ReadCloser, jobs.File, error)
	DeleteFile(ctx context.Context, id string) error
	Submit(ctx context.Context, typ string, params json.RawMessage) (jobs.Job, error)
	Job(ctx context.Context, id string) (jobs.Job, error)
	Jobs(ctx context.Context, f jobs.JobFilter) ([]jobs.Job, error)
	Events(ctx context.Context, id string, after int64, limit int) ([]jobs.Event, error)
	Cancel(ctx context.Context, id string) (jobs.Job, error)
	Retry(ctx context.Context, id string) (jobs.Job, error)
	RegisterModel(ctx context.Context, spec jobs.ModelSpec) (jobs.ModelVersion, error)
	Models(ctx context.Context) ([]jobs.ModelVersion, []jobs.Activation, error)
	ModelPath(ctx context.Context, name string, version int) (string, jobs.ModelVersion, error)
	RecordActivation(ctx context.Context, a jobs.Activation) error
}

// Activator puts registered model versions into service; cmd/bestofn implements it over the server's hot swap
// and the model loaders.
type Activator interface {
	// Activate loads the version at path (a GGUF file for a generator, a reward model directory for a reward
	// model) and swaps it in for the served model names serveAs (empty: the default names for its kind). It
	// returns the names it switched. A version that fails to load changes nothing and returns an error wrapping
	// ErrLoad; bad names return a *jobs.ParamError with Field "serve_as".
	Activate(ctx context.Context, mv jobs.ModelVersion, path string, serveAs []string) ([]string, error)
	// Serving says what each served model runs now.
	Serving() []Served
}

// ErrLoad marks a model version that could not be loaded (422).
var ErrLoad = errors.New("admin: model failed to load")

// Served says what one served model runs now.
type Served struct {
	// Name is the served model name (as on /v1/models).
	Name      string      `json:"name"`
	Generator ServedModel `json:"generator"`
	// Reward is nil when the model has no reward model.
	Reward *ServedModel `json:"reward"`
}

// ServedModel is the generator or reward model behind a served name: a registered version, or (Model "") the
// one the server started with.
type ServedModel struct {
	Model   string `json:"model,omitempty"`
	Version int    `json:"version,omitempty"`
	Path    string `json:"path"`
}

// Config configures the admin API.
type Config struct {
	// Service is the job platform; required.
	Service Service
	// Activator hot-swaps models; nil makes activate answer 501 (e.g. `bestofn job run`, which serves nothing).
	Activator Activator
	// ABReports serves GET /admin/v1/ab/report; nil makes it answer 501.
	ABReports ABReporter
	// Token is the bearer token every request must carry; "" means no check (see the package doc).
	Token string
	// MaxUploadBytes bounds an upload's content (413 beyond); 0 means 1 GiB. Give jobs.Config.MaxFileBytes the
	// same value.
	MaxUploadBytes int64
	// Logger receives internal error causes; nil means slog.Default().
	Logger *slog.Logger
	// Done, when closed (the server is shutting down), ends the open event streams: they never end by
	// themselves while a job runs, and would hold a graceful shutdown for its whole timeout. A client resumes
	// on the restarted server with Last-Event-ID. nil means never.
	Done <-chan struct{}
}

// Prefix is where Handler's routes live.
const Prefix = "/admin/v1"

// Handler serves the admin API.
type Handler struct {
	cfg      Config
	log      *slog.Logger
	maxBytes int64
	mux      http.Handler

	activateMu sync.Mutex // one activation (load + swap + record) at a time
}

// New builds the admin API's handler; its routes start with Prefix.
func New(cfg Config) (*Handler, error) {
	if cfg.Service == nil {
		return nil, errors.New("admin: no job service")
	}
	h := &Handler{cfg: cfg, log: cfg.Logger, maxBytes: cfg.MaxUploadBytes}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.maxBytes <= 0 {
		h.maxBytes = 1 << 30
	}
	r := chi.NewRouter()
	r.Use(h.auth)
	r.NotFound(h.handle(func(w http.ResponseWriter, r *http.Request) error {
		return &apiError{Status: http.StatusNotFound, Type: api.ErrorTypeNotFound, Code: "not_found",
			Message: "no route for " + r.Method + " " + r.URL.Path}
	}))
	r.MethodNotAllowed(h.handle(func(w http.ResponseWriter, r *http.Request) error {
		return &apiError{Status: http.StatusMethodNotAllowed, Type: api.ErrorTypeInvalidRequest, Code: "method_not_allowed",
			Message: "method " + r.Method + " not allowed on " + r.URL.Path}
	}))
	r.Route(Prefix, func(r chi.Router) {
		r.Post("/files", h.handle(h.uploadFile))
		r.Get("/files", h.handle(h.listFiles))
		r.Get("/files/{id}", h.handle(h.getFile))
		r.Get("/files/{id}/content", h.handle(h.fileContent))
		r.Delete("/files/{id}", h.handle(h.deleteFile))

		r.Post("/jobs", h.handle(h.submitJob))
		r.Get("/jobs", h.handle(h.listJobs))
		r.Get("/jobs/{id}", h.handle(h.jobCall(cfg.Service.Job)))
		r.Get("/jobs/{id}/events", h.handle(h.jobEvents))
		r.Post("/jobs/{id}/cancel", h.handle(h.jobCall(cfg.Service.Cancel)))
		r.Post("/jobs/{id}/retry", h.handle(h.jobCall(cfg.Service.Retry)))

		r.Get("/models", h.handle(h.listModels))
		r.Post("/models", h.handle(h.registerModel))
		r.Post("/models/{name}/activate", h.handle(h.activateModel))

		r.Get("/ab/report", h.handle(h.abReport))
	})
	h.mux = r
	return h, nil
}

// ServeHTTP implements http.Handler. The request is routed on its full path whoever mounted the handler: a
// parent chi router's routing context is set aside.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Context().Value(chi.RouteCtxKey) != nil {
		r = r.WithContext(context.WithValue(r.Context(), chi.RouteCtxKey, nil))
	}
	h.mux.ServeHTTP(w, r)
}

// auth checks the bearer token in constant time.
func (h *Handler) auth(next http.Handler) http.Handler {
	want := []byte(h.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(want) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		got, ok := bearerToken(r.Header.Get("Authorization"))
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="bestofn-admin"`)
			msg := "missing bearer token: send Authorization: Bearer <admin token>"
			if ok {
				msg = "incorrect admin token"
			}
			h.writeError(w, r, &apiError{Status: http.StatusUnauthorized, Type: api.ErrorTypeInvalidRequest,
				Code: "invalid_api_key", Message: msg})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearerToken returns the credentials of an Authorization header of the Bearer scheme, whose name is
// case-insensitive (RFC 9110 section 11.1).
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return token, true
}

// Disabled answers every request with a 404 saying how to turn the admin API on.
func Disabled() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeErrorBody(w, &apiError{Status: http.StatusNotFound, Type: api.ErrorTypeNotFound, Code: "admin_disabled",
			Message: "the admin API is off: start the server with BESTOFN_ADMIN_TOKEN or --admin-token-file"})
	})
}

// handlerFunc is a handler that returns its error instead of writing it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle adapts a handlerFunc: errors (and panics, as 500s) go through writeError.
func (h *Handler) handle(f handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				h.log.Error("admin: panic in handler", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				h.writeError(w, r, fmt.Errorf("admin: panic: %v", v))
			}
		}()
		if err := f(w, r); err != nil {
			h.writeError(w, r, err)
		}
	}
}

// list is the body of every listing, as OpenAI's list objects.
type list[T any] struct {
	Object string `json:"object"` // "list"
	Data   []T    `json:"data"`
}

func newList[T any](items []T) list[T] {
	if items == nil {
		items = []T{}
	}
	return list[T]{Object: "list", Data: items}
}

// writeJSON writes v as the JSON body with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // a write error means the client went away
}
