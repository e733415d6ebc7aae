package admin

import (
	"context"
	"net/http"
	"regexp"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/bestofn/bestofn/jobs"
)

// ModelList is the body of GET /admin/v1/models: every registered version, the recorded activations and what
// each served model runs now.
type ModelList struct {
	Object      string              `json:"object"` // "list"
	Data        []jobs.ModelVersion `json:"data"`
	Activations []jobs.Activation   `json:"activations"`
	Serving     []Served            `json:"serving"`
}

// ActivateRequest is the body of POST /admin/v1/models/{name}/activate. Version 0 means the latest; an empty
// ServeAs means the default served names for the model's kind (see Activator).
type ActivateRequest struct {
	Version int      `json:"version"`
	ServeAs []string `json:"serve_as"`
}

// ActivateResponse is its answer.
type ActivateResponse struct {
	Activation jobs.Activation `json:"activation"`
	Serving    []Served        `json:"serving"`
}

// modelName is what a registered model may be called: it appears in URL paths.
var modelName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

func (h *Handler) serving() []Served {
	if h.cfg.Activator == nil {
		return []Served{}
	}
	s := h.cfg.Activator.Serving()
	if s == nil {
		s = []Served{}
	}
	return s
}

func (h *Handler) listModels(w http.ResponseWriter, r *http.Request) error {
	versions, acts, err := h.cfg.Service.Models(r.Context())
	if err != nil {
		return err
	}
	if versions == nil {
		versions = []jobs.ModelVersion{}
	}
	if acts == nil {
		acts = []jobs.Activation{}
	}
	writeJSON(w, http.StatusOK, ModelList{Object: "list", Data: versions, Activations: acts, Serving: h.serving()})
	return nil
}

func (h *Handler) registerModel(w http.ResponseWriter, r *http.Request) error {
	var spec jobs.ModelSpec
	if err := decodeJSON(w, r, &spec); err != nil {
		return err
	}
	switch {
	case spec.Name == "":
		return badParam("name", "name is required")
	case !modelName.MatchString(spec.Name):
		return badParam("name", "name %q must be letters, digits, '.', '_' or '-' (at most 128, starting with a letter or digit)", spec.Name)
	case spec.Kind != jobs.KindGenerator && spec.Kind != jobs.KindReward:
		return badParam("kind", "kind must be %q or %q, got %q", jobs.KindGenerator, jobs.KindReward, spec.Kind)
	case spec.FileID == "" && spec.JobID == "":
		return badParam("file_id", "give file_id (an uploaded file) or job_id (a job's output)")
	case spec.FileID != "" && spec.JobID != "":
		return badParam("file_id", "give file_id or job_id, not both")
	case spec.Output != "" && spec.JobID == "":
		return badParam("output", "output names a job's output file; it needs job_id")
	}
	mv, err := h.cfg.Service.RegisterModel(r.Context(), spec)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, mv)
	return nil
}

// activateModel loads a registered version and swaps it in (Activator), then records the activation so it is
// re-applied at start-up. Activations run one at a time.
func (h *Handler) activateModel(w http.ResponseWriter, r *http.Request) error {
	name := chi.URLParam(r, "name")
	var req ActivateRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.Version < 0 {
		return badParam("version", "version must be >= 1 (or 0 for the latest), got %d", req.Version)
	}
	for _, n := range req.ServeAs {
		if n == "" {
			return badParam("serve_as", "serve_as holds an empty name")
		}
	}
	if h.cfg.Activator == nil {
		return notImplemented("this process serves no models to activate")
	}
	h.activateMu.Lock()
	defer h.activateMu.Unlock()
	path, mv, err := h.cfg.Service.ModelPath(r.Context(), name, req.Version)
	if err != nil {
		return err
	}
	// Loading is not cancellable, and a swap that happened must be recorded even if the client left.
	ctx := context.WithoutCancel(r.Context())
	served, err := h.cfg.Activator.Activate(ctx, mv, path, req.ServeAs)
	if err != nil {
		return err
	}
	a := jobs.Activation{Model: mv.Name, Version: mv.Version, ServeAs: served, ActivatedAt: time.Now().Unix()}
	if err := h.cfg.Service.RecordActivation(ctx, a); err != nil {
		return err
	}
	h.log.Info("admin: model activated", "model", mv.Name, "version", mv.Version, "kind", mv.Kind, "serve_as", served)
	writeJSON(w, http.StatusOK, ActivateResponse{Activation: a, Serving: h.serving()})
	return nil
}
