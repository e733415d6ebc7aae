package server

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// streamWriter writes a stream of JSON events: server-sent events ("data: {...}\n\n", OpenAI) or newline-
// delimited JSON (Ollama). Headers are sent with the first event, so an error before it still gets a proper
// status code.
type streamWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	sse     bool
	started bool
	buf     bytes.Buffer
}

func newStreamWriter(w http.ResponseWriter, sse bool) *streamWriter {
	return &streamWriter{w: w, rc: http.NewResponseController(w), sse: sse}
}

func (sw *streamWriter) start() {
	if sw.started {
		return
	}
	sw.started = true
	h := sw.w.Header()
	if sw.sse {
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Accel-Buffering", "no")
	} else {
		h.Set("Content-Type", "application/x-ndjson")
	}
	sw.w.WriteHeader(http.StatusOK)
}

// send writes v as one event and flushes it to the client.
func (sw *streamWriter) send(v any) error {
	sw.start()
	sw.buf.Reset()
	if sw.sse {
		sw.buf.WriteString("data: ")
	}
	enc := json.NewEncoder(&sw.buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil { // Encode appends '\n'
		return err
	}
	if sw.sse {
		sw.buf.WriteByte('\n')
	}
	return sw.write(sw.buf.Bytes())
}

// done writes OpenAI's end-of-stream marker.
func (sw *streamWriter) done() error {
	sw.start()
	return sw.write([]byte("data: [DONE]\n\n"))
}

func (sw *streamWriter) write(b []byte) error {
	if _, err := sw.w.Write(b); err != nil {
		return err
	}
	return sw.rc.Flush()
}

// streamedError is an error that happened after a stream started: it has already been sent as an event, so
// writeError only logs it and reports its status.
type streamedError struct {
	status int
	err    error
}

func (e *streamedError) Error() string { return e.err.Error() }
func (e *streamedError) Unwrap() error { return e.err }

// failStream reports err to the client: as an ordinary error response if nothing was streamed yet, otherwise
// as a last event in the API's error shape.
func (s *Server) failStream(sw *streamWriter, r *http.Request, err error) error {
	if !sw.started {
		return err
	}
	he := s.classify(r, err)
	if he.Status != statusClientClosed {
		if isOllama(r) {
			_ = sw.send(map[string]string{"error": he.Message})
		} else {
			_ = sw.send(map[string]any{"error": map[string]any{"message": he.Message, "type": he.Type, "code": he.Code}})
		}
	}
	return &streamedError{status: he.Status, err: err}
}
