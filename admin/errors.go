package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/bestofn/bestofn/api"
	"github.com/bestofn/bestofn/jobs"
)

// apiError is an error with the status and wire fields it maps to. Message is shown to the client; Err, the
// internal cause, is only logged.
type apiError struct {
	Status  int
	Type    string
	Code    string
	Param   string
	Message string
	Err     error
}

func (e *apiError) Error() string {
	if e.Err != nil {
		return "admin: " + e.Message + ": " + e.Err.Error()
	}
	return "admin: " + e.Message
}

func (e *apiError) Unwrap() error { return e.Err }

// badParam reports an invalid request field (400).
func badParam(param, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: api.ErrorTypeInvalidRequest, Code: "invalid_value",
		Param: param, Message: fmt.Sprintf(format, args...)}
}

// classify maps any error to what the client sees; unknown errors are 500s whose cause is only logged.
func (h *Handler) classify(err error) *apiError {
	var ae *apiError
	var pe *jobs.ParamError
	var maxBytes *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &pe):
		msg := pe.Field + ": " + pe.Message
		if pe.Line > 0 {
			msg = fmt.Sprintf("%s line %d: %s", pe.Field, pe.Line, pe.Message)
		}
		return &apiError{Status: http.StatusBadRequest, Type: api.ErrorTypeInvalidRequest, Code: "invalid_value",
			Param: pe.Field, Message: msg, Err: err}
	case errors.Is(err, jobs.ErrUnknownType):
		types := append([]string(nil), h.cfg.Service.Types()...)
		sort.Strings(types)
		return &apiError{Status: http.StatusBadRequest, Type: api.ErrorTypeInvalidRequest, Code: "unknown_job_type",
			Param: "type", Message: "unknown job type; known types: " + strings.Join(types, ", "), Err: err}
	case errors.As(err, &maxBytes):
		return &apiError{Status: http.StatusRequestEntityTooLarge, Type: api.ErrorTypeInvalidRequest, Code: "file_too_large",
			Message: fmt.Sprintf("the body is larger than %d bytes", maxBytes.Limit), Err: err}
	case errors.Is(err, jobs.ErrTooLarge):
		return &apiError{Status: http.StatusRequestEntityTooLarge, Type: api.ErrorTypeInvalidRequest, Code: "file_too_large",
			Message: fmt.Sprintf("the file is larger than the limit of %d bytes", h.maxBytes), Err: err}
	case errors.Is(err, jobs.ErrNotFound):
		return &apiError{Status: http.StatusNotFound, Type: api.ErrorTypeNotFound, Code: "not_found",
			Message: strings.TrimPrefix(err.Error(), "jobs: "), Err: err}
	case errors.Is(err, jobs.ErrConflict):
		return &apiError{Status: http.StatusConflict, Type: api.ErrorTypeInvalidRequest, Code: "conflict",
			Message: strings.TrimPrefix(err.Error(), "jobs: "), Err: err}
	case errors.Is(err, ErrLoad):
		return &apiError{Status: http.StatusUnprocessableEntity, Type: api.ErrorTypeInvalidRequest, Code: "model_load_failed",
			Message: strings.TrimPrefix(err.Error(), "admin: ") + "; the serving model is unchanged", Err: err}
	case errors.Is(err, context.Canceled):
		return &apiError{Status: 499, Type: api.ErrorTypeInvalidRequest, Code: "cancelled", Message: "the request was cancelled", Err: err}
	}
	return &apiError{Status: http.StatusInternalServerError, Type: api.ErrorTypeServer, Code: "internal",
		Message: "internal error", Err: err}
}

// writeError writes err in OpenAI's error shape and logs its cause with the request id.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := h.classify(err)
	reqID := middleware.GetReqID(r.Context())
	level := slog.LevelInfo
	if ae.Status >= 500 {
		level = slog.LevelError
	}
	h.log.LogAttrs(r.Context(), level, "admin request failed", slog.String("request_id", reqID),
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", ae.Status),
		slog.String("message", ae.Message), slog.Any("cause", ae.Err))
	if ae.Status == 499 {
		return // nobody is listening
	}
	if ae.Status == http.StatusInternalServerError && reqID != "" {
		ae.Message += " (request id " + reqID + ")"
	}
	writeErrorBody(w, ae)
}

func writeErrorBody(w http.ResponseWriter, ae *apiError) {
	body := api.ErrorResponse{Error: api.Error{Message: ae.Message, Type: ae.Type}}
	if ae.Param != "" {
		p := ae.Param
		body.Error.Param = &p
	}
	if ae.Code != "" {
		c := ae.Code
		body.Error.Code = &c
	}
	writeJSON(w, ae.Status, body)
}

// maxJSONBody bounds JSON request bodies (jobs, models, activations); uploads have their own limit.
const maxJSONBody = 1 << 20

// decodeJSON reads one JSON object from the body into v strictly (unknown fields are an error), mapping
// malformed input to a 400 naming the field.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var maxBytes *http.MaxBytesError
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &maxBytes):
			return err
		case errors.Is(err, io.EOF):
			return &apiError{Status: http.StatusBadRequest, Type: api.ErrorTypeInvalidRequest, Code: "invalid_json",
				Message: "request body is empty; expected a JSON object"}
		case errors.As(err, &syntax):
			return &apiError{Status: http.StatusBadRequest, Type: api.ErrorTypeInvalidRequest, Code: "invalid_json",
				Message: fmt.Sprintf("invalid JSON at byte %d: %v", syntax.Offset, syntax), Err: err}
		case errors.As(err, &typ) && typ.Field == "":
			return &apiError{Status: http.StatusBadRequest, Type: api.ErrorTypeInvalidRequest, Code: "invalid_json",
				Message: "the request body must be a JSON object, not JSON " + typ.Value, Err: err}
		case errors.As(err, &typ):
			return &apiError{Status: http.StatusBadRequest, Type: api.ErrorTypeInvalidRequest, Code: "invalid_type",
				Param: typ.Field, Message: fmt.Sprintf("field %q must be of type %s, not JSON %s", typ.Field, typ.Type, typ.Value), Err: err}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return &apiError{Status: http.StatusBadRequest, Type: api.ErrorTypeInvalidRequest, Code: "unknown_field",
				Param: field, Message: fmt.Sprintf("unknown field %q", field), Err: err}
		}
		return &apiError{Status: http.StatusBadRequest, Type: api.ErrorTypeInvalidRequest, Code: "invalid_json",
			Message: "invalid request body: " + err.Error(), Err: err}
	}
	if dec.More() {
		return &apiError{Status: http.StatusBadRequest, Type: api.ErrorTypeInvalidRequest, Code: "invalid_json",
			Message: "request body holds more than one JSON value"}
	}
	return nil
}
