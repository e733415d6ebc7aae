package teacher

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	ollama "github.com/ollama/ollama/api"
	"github.com/openai/openai-go"
)

// Kind classifies a failed request.
type Kind int

// Kinds of Error.
const (
	// KindTransient: a connection error, a timeout, 408, 409, 5xx or an incomplete response; worth retrying.
	KindTransient Kind = iota
	// KindRateLimited: 429; RetryAfter says how long the server asked to wait (0: it did not say).
	KindRateLimited
	// KindPermanent: any other 4xx or a response that cannot be understood; retrying will not help.
	KindPermanent
)

func (k Kind) String() string {
	switch k {
	case KindTransient:
		return "transient"
	case KindRateLimited:
		return "rate_limited"
	case KindPermanent:
		return "permanent"
	}
	return "unknown"
}

// Error is a failed request. The job types record Kind, StatusCode and Message as a failure's reason and Raw
// as what the endpoint said.
type Error struct {
	Kind Kind
	// StatusCode is the HTTP status; 0 when no response came.
	StatusCode int
	// RetryAfter is the server's Retry-After (or retry-after-ms); 0 when absent.
	RetryAfter time.Duration
	// Message says what went wrong.
	Message string
	// Raw is the response body, when there was one.
	Raw []byte
	// Attempts is the number of requests sent.
	Attempts int
	// Err is the underlying error.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("teacher: ")
	b.WriteString(e.Kind.String())
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.StatusCode)
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	b.WriteString(": ")
	b.WriteString(e.Message)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// IsKind reports whether err is an *Error of kind k.
func IsKind(err error, k Kind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == k
}

// kindOfStatus classifies an HTTP status as openai-go and the OpenAI docs do.
func kindOfStatus(code int) Kind {
	switch {
	case code == http.StatusTooManyRequests:
		return KindRateLimited
	case code == http.StatusRequestTimeout, code == http.StatusConflict, code >= 500:
		return KindTransient
	}
	return KindPermanent
}

// retryAfter reads retry-after-ms (OpenAI's) or Retry-After (seconds or an HTTP date).
func retryAfter(h http.Header, now time.Time) time.Duration {
	if h == nil {
		return 0
	}
	if v := h.Get("Retry-After-Ms"); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s > 0 {
			return time.Duration(s * float64(time.Second))
		}
		return 0
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// classify turns the error of one attempt into an *Error, with what the capture saw of the response.
func classify(err error, cap *capture) *Error {
	e := &Error{Err: err, Message: err.Error(), Kind: KindTransient}
	if cap != nil {
		e.StatusCode = cap.status
		e.Raw = cap.body.Bytes()
		e.RetryAfter = retryAfter(cap.header, time.Now())
	}
	var oe *openai.Error
	var se ollama.StatusError
	var ae ollama.AuthorizationError
	switch {
	case errors.As(err, &oe):
		e.StatusCode = oe.StatusCode
		e.Kind = kindOfStatus(oe.StatusCode)
		e.Message = strings.TrimSpace(http.StatusText(oe.StatusCode) + ": " + oe.Message)
		if oe.Response != nil {
			e.RetryAfter = retryAfter(oe.Response.Header, time.Now())
		}
	case errors.As(err, &se):
		e.StatusCode = se.StatusCode
		e.Kind = kindOfStatus(se.StatusCode)
		e.Message = se.Error()
	case errors.As(err, &ae):
		e.StatusCode = ae.StatusCode
		e.Kind = KindPermanent
		e.Message = "unauthorized"
	case errors.Is(err, context.DeadlineExceeded):
		e.Message = "request timed out"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, errIncomplete):
		e.Message = "connection closed before the response was complete: " + err.Error()
	case isNetError(err):
	case errors.Is(err, errMalformed):
		e.Kind = KindPermanent
	case e.StatusCode != 0:
		e.Kind = kindOfStatus(e.StatusCode)
	}
	if cap != nil && cap.readErr != nil && e.Kind == KindPermanent && e.StatusCode < 400 {
		// A body cut off by the connection reads as malformed JSON: it is a transport failure.
		e.Kind = KindTransient
		e.Message = "connection broke while reading the response: " + cap.readErr.Error()
	}
	return e
}

func isNetError(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe) || strings.Contains(err.Error(), "connection reset") ||
		strings.Contains(err.Error(), "broken pipe")
}

var (
	errIncomplete = errors.New("incomplete response")
	errMalformed  = errors.New("malformed response")
)
