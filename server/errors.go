package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/bestofn/bestofn/api"
	"github.com/bestofn/bestofn/engine"
)

// httpError is an error with the status and wire fields it maps to. Message is shown to the client; Err, the
// internal cause, is only logged.
type httpError struct {
	Status  int
	Type    string // OpenAI error type
	Code    string // OpenAI error code; "" for none
	Param   string // offending request field; "" for none
	Message string
	Err     error
}

func (e *httpError) Error() string {
	if e.Err != nil {
		return "server: " + e.Message + ": " + e.Err.Error()
	}
	return "server: " + e.Message
}

func (e *httpError) Unwrap() error { return e.Err }

// badParam reports an invalid request field (400).
func badParam(param, format string, args ...any) *httpError {
	return &httpError{Status: http.StatusBadRequest, Type: api.ErrorTypeInvalidRequest, Code: "invalid_value",
		Param: param, Message: fmt.Sprintf(format, args...)}
}

// statusClientClosed is logged (never seen by a client) when the client went away, as nginx does.
const statusClientClosed = 499

// classify maps any error to the httpError the client sees. Unknown errors are 500s whose cause is only logged.
func (s *Server) classify(r *http.Request, err error) *httpError {
	var he *httpError
	var maxBytes *http.MaxBytesError
	var ctxLen *engine.ContextLengthError
	var backend *engine.BackendError
	var kv *engine.KVBudgetError
	switch {
	case errors.As(err, &he):
		return he
	case errors.As(err, &maxBytes):
		return &httpError{Status: http.StatusRequestEntityTooLarge, Type: api.ErrorTypeInvalidRequest,
			Code: "request_too_large", Message: fmt.Sprintf("request body is larger than %d bytes", maxBytes.Limit), Err: err}
	case errors.As(err, &ctxLen):
		param := "prompt"
		if strings.HasSuffix(r.URL.Path, "/chat/completions") || r.URL.Path == "/api/chat" {
			param = "messages"
		}
		return &httpError{Status: http.StatusBadRequest, Type: api.ErrorTypeInvalidRequest, Code: "context_length_exceeded",
			Param: param, Message: fmt.Sprintf("this model's maximum context length is %d tokens, but the request needs %d prompt tokens plus %d to generate",
				ctxLen.ContextLen, ctxLen.PromptTokens, ctxLen.MaxTokens), Err: err}
	case errors.As(err, &kv):
		return kvBudgetError(r, kv)
	case errors.Is(err, engine.ErrBadRequest), errors.Is(err, engine.ErrTooLarge):
		// The engine's validation messages describe the request, not the server: safe to show.
		return &httpError{Status: http.StatusBadRequest, Type: api.ErrorTypeInvalidRequest, Code: "invalid_request",
			Message: err.Error(), Err: err}
	case errors.Is(err, engine.ErrQueueFull):
		return &httpError{Status: http.StatusTooManyRequests, Type: api.ErrorTypeRateLimit, Code: "rate_limit_exceeded",
			Message: "the server is overloaded; retry later", Err: err}
	case errors.Is(err, engine.ErrClosed):
		return &httpError{Status: http.StatusServiceUnavailable, Type: api.ErrorTypeUnavailable, Code: "shutting_down",
			Message: "the server is shutting down", Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &httpError{Status: http.StatusGatewayTimeout, Type: api.ErrorTypeTimeout, Code: "timeout",
			Message: fmt.Sprintf("the request took longer than %s", s.limits.RequestTimeout), Err: err}
	case errors.Is(err, context.Canceled):
		return &httpError{Status: statusClientClosed, Type: api.ErrorTypeInvalidRequest, Code: "cancelled",
			Message: "the request was cancelled", Err: err}
	case errors.As(err, &backend):
		return &httpError{Status: http.StatusBadGateway, Type: api.ErrorTypeServer, Code: "backend_error",
			Message: fmt.Sprintf("backend %q: %s", backend.Backend, backend.Message), Err: err}
	}
	return &httpError{Status: http.StatusInternalServerError, Type: api.ErrorTypeServer, Message: "internal error", Err: err}
}

// kvBudgetError is the 400 of a request whose candidates can never fit the KV cache: it names the length
// parameter and the most that fits, or, when not one token fits, the number of candidates.
func kvBudgetError(r *http.Request, kv *engine.KVBudgetError) *httpError {
	length, cands := "max_tokens", "best_of"
	if isOllama(r) {
		length, cands = "options.num_predict", "options.best_of"
	}
	he := &httpError{Status: http.StatusBadRequest, Type: api.ErrorTypeInvalidRequest, Code: "invalid_value", Err: kv}
	if kv.MaxFit < 1 {
		he.Param = cands
		he.Message = fmt.Sprintf("%d candidates after a prompt of %d tokens do not fit this server's KV cache: ask for fewer candidates (%s)",
			kv.N, kv.PromptTokens, cands)
		return he
	}
	he.Param = length
	he.Message = fmt.Sprintf("%d candidates of %d tokens after a prompt of %d tokens do not fit this server's KV cache: at most %d tokens fit for %d candidates (%s), or ask for fewer candidates (%s)",
		kv.N, kv.MaxTokens, kv.PromptTokens, kv.MaxFit, kv.N, length, cands)
	return he
}

// isOllama says whether r is on the Ollama API, whose errors have Ollama's shape.
func isOllama(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/api/") }

// writeError is the one place errors become responses: it picks the status, writes the API's error shape and
// logs the internal cause with the request id. It returns the status.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) int {
	reqID := middleware.GetReqID(r.Context())
	var se *streamedError
	if errors.As(err, &se) {
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "stream failed", slog.String("request_id", reqID),
			slog.Int("status", se.status), slog.Any("cause", se.err))
		return se.status
	}
	he := s.classify(r, err)
	level := slog.LevelInfo
	if he.Status >= 500 {
		level = slog.LevelError
	}
	s.log.LogAttrs(r.Context(), level, "request failed", slog.String("request_id", reqID),
		slog.Int("status", he.Status), slog.String("message", he.Message), slog.Any("cause", he.Err))
	if he.Status == statusClientClosed {
		return he.Status // nobody is listening
	}
	msg := he.Message
	if he.Status == http.StatusInternalServerError && reqID != "" {
		msg += " (request id " + reqID + ")"
	}
	if he.Status == http.StatusTooManyRequests {
		secs := int(s.limits.RetryAfter.Seconds() + 0.999)
		if secs < 1 {
			secs = 1
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	if isOllama(r) {
		writeJSON(w, he.Status, map[string]string{"error": msg})
		return he.Status
	}
	body := api.ErrorResponse{Error: api.Error{Message: msg, Type: he.Type}}
	if he.Param != "" {
		p := he.Param
		body.Error.Param = &p
	}
	if he.Code != "" {
		c := he.Code
		body.Error.Code = &c
	}
	writeJSON(w, he.Status, body)
	return he.Status
}

// writeJSON writes v as the JSON body with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v) // a write error means the client went away
}

// decodeJSON reads one JSON value from the body into v, mapping malformed input to a 400 naming the field.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		var maxBytes *http.MaxBytesError
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &maxBytes):
			return err
		case errors.Is(err, io.EOF):
			return &httpError{Status: http.StatusBadRequest, Type: api.ErrorTypeInvalidRequest, Code: "invalid_json",
				Message: "request body is empty; expected a JSON object"}
		case errors.Is(err, io.ErrUnexpectedEOF):
			return &httpError{Status: http.StatusBadRequest, Type: api.ErrorTypeInvalidRequest, Code: "invalid_json",
				Message: "invalid JSON: unexpected end of the body", Err: err}
		case errors.As(err, &syntax):
			return &httpError{Status: http.StatusBadRequest, Type: api.ErrorTypeInvalidRequest, Code: "invalid_json",
				Message: fmt.Sprintf("invalid JSON at byte %d: %v", syntax.Offset, syntax), Err: err}
		case errors.As(err, &typ) && typ.Field == "":
			return &httpError{Status: http.StatusBadRequest, Type: api.ErrorTypeInvalidRequest, Code: "invalid_json",
				Message: "the request body must be a JSON object, not JSON " + typ.Value, Err: err}
		case errors.As(err, &typ):
			field := wireField(typ.Field)
			return &httpError{Status: http.StatusBadRequest, Type: api.ErrorTypeInvalidRequest, Code: "invalid_type",
				Param: field, Message: fmt.Sprintf("field %q must be of type %s, not JSON %s", field, typ.Type, typ.Value), Err: err}
		}
		return &httpError{Status: http.StatusBadRequest, Type: api.ErrorTypeInvalidRequest, Code: "invalid_json",
			Message: "invalid request body: " + err.Error(), Err: err}
	}
	if dec.More() {
		return &httpError{Status: http.StatusBadRequest, Type: api.ErrorTypeInvalidRequest, Code: "invalid_json",
			Message: "request body holds more than one JSON value"}
	}
	return nil
}

// wireField turns the path of a json.UnmarshalTypeError into the request field's name: the names of embedded
// Go structs (capitalized; every JSON key here is lower case) are dropped.
func wireField(path string) string {
	parts := strings.Split(path, ".")
	out := parts[:0]
	for _, p := range parts {
		if p != "" && (p[0] < 'A' || p[0] > 'Z') {
			out = append(out, p)
		}
	}
	return strings.Join(out, ".")
}

// reqInfo carries what a handler learned about a request (its model and variant) back to handle, which counts
// the request once with its final status; start is when the handler began (the body already read), from which
// latencies are measured.
type reqInfo struct {
	model, variant, endpoint string
	start                    time.Time
	lease                    *lease // what the request pinned (swap.go)
}

type reqInfoKey struct{}

func infoFrom(ctx context.Context) *reqInfo {
	if ri, ok := ctx.Value(reqInfoKey{}).(*reqInfo); ok {
		return ri
	}
	return &reqInfo{}
}

// handlerFunc is a handler that returns its error instead of writing it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle adapts a handlerFunc: errors go through writeError, and every request is counted by status.
func (s *Server) handle(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ri := &reqInfo{endpoint: routeLabel(r), start: time.Now()}
		r = r.WithContext(context.WithValue(r.Context(), reqInfoKey{}, ri))
		status := http.StatusOK
		if err := h(w, r); err != nil {
			status = s.writeError(w, r, err)
		}
		s.unpin(ri)
		s.metrics.countRequest(ri, status)
	}
}

// routeLabel is the low-cardinality endpoint label of r.
func routeLabel(r *http.Request) string {
	switch p := r.URL.Path; p {
	case "/v1/chat/completions", "/v1/completions", "/v1/models", "/api/chat", "/api/generate", "/api/tags",
		"/api/show", "/api/version", "/api/ps":
		return p
	}
	if strings.HasPrefix(r.URL.Path, "/v1/models/") {
		return "/v1/models/{model}"
	}
	return "other"
}
