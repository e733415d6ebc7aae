package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/bestofn/bestofn/api"
)

// echoRequestID returns the request id (from the client's X-Request-Id or generated) in the X-Request-Id
// response header, so a client can quote it when reporting a problem.
func echoRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(middleware.RequestIDHeader, middleware.GetReqID(r.Context()))
		next.ServeHTTP(w, r)
	})
}

// logRequests logs one line per request with its id, status, size and duration.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		status := ww.Status()
		if status == 0 {
			status = statusClientClosed
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "http request",
			slog.String("request_id", middleware.GetReqID(r.Context())),
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.String("remote", r.RemoteAddr), slog.Int("status", status),
			slog.Int("bytes", ww.BytesWritten()), slog.Duration("duration", time.Since(start)))
	})
}

// recoverer turns a panic in a handler into a logged 500 in the API's error shape. http.ErrAbortHandler is
// re-panicked, as net/http expects.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic in handler", "request_id", middleware.GetReqID(r.Context()),
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			s.writeError(w, r, fmt.Errorf("server: panic: %v", v))
		}()
		next.ServeHTTP(w, r)
	})
}

// limitBody caps the request body at Limits.MaxBodyBytes; reading past it fails with *http.MaxBytesError (413).
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.limits.MaxBodyBytes {
			s.writeError(w, r, &http.MaxBytesError{Limit: s.limits.MaxBodyBytes})
			s.metrics.countRequest(&reqInfo{endpoint: routeLabel(r)}, http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.limits.MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// timeout gives the request context a deadline of Limits.RequestTimeout; generation stops at the deadline
// and the request answers 504 (or ends its stream).
func (s *Server) timeout(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), s.limits.RequestTimeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// readBody reads the whole body (bounded by limitBody) within Limits.BodyReadTimeout, before the handler
// decodes it and long before the request takes a generation slot, so a client that sends its body slowly
// holds nothing but its connection. Beyond the timeout it answers 408.
func (s *Server) readBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		deadline := rc.SetReadDeadline(time.Now().Add(s.limits.BodyReadTimeout)) == nil
		body, err := io.ReadAll(r.Body)
		var ne net.Error
		switch {
		case err == nil && deadline:
			_ = rc.SetReadDeadline(time.Time{}) // the generation may take long; reading is over
		case errors.As(err, &ne) && ne.Timeout():
			// The deadline stays, so that net/http's drain of the rest of the body fails at once too.
			w.Header().Set("Connection", "close")
			err = &httpError{Status: http.StatusRequestTimeout, Type: api.ErrorTypeTimeout, Code: "body_timeout",
				Message: fmt.Sprintf("the request body did not arrive within %s", s.limits.BodyReadTimeout), Err: err}
		case err != nil && !errors.As(err, new(*http.MaxBytesError)):
			err = &httpError{Status: http.StatusBadRequest, Type: api.ErrorTypeInvalidRequest, Code: "invalid_body",
				Message: "the request body could not be read", Err: err}
		}
		if err != nil {
			status := s.writeError(w, r, err)
			s.metrics.countRequest(&reqInfo{endpoint: routeLabel(r)}, status)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// errTooManyInFlight is the 429 of the concurrency limit.
var errTooManyInFlight = errors.New("server: too many requests in flight")

// acquireSlot takes one of Limits.MaxConcurrent generation slots, or fails with a 429 (Retry-After). Call
// release when the generation is over.
func (s *Server) acquireSlot() (release func(), err error) {
	select {
	case s.sem <- struct{}{}:
	default:
		return nil, &httpError{Status: http.StatusTooManyRequests, Type: api.ErrorTypeRateLimit, Code: "rate_limit_exceeded",
			Message: fmt.Sprintf("more than %d requests in flight; retry later", s.limits.MaxConcurrent), Err: errTooManyInFlight}
	}
	s.metrics.inFlight.Inc()
	return func() {
		s.metrics.inFlight.Dec()
		<-s.sem
	}, nil
}
