package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/bestofn/bestofn/jobs"
)

// SubmitRequest is the body of POST /admin/v1/jobs.
type SubmitRequest struct {
	Type   string          `json:"type"`
	Params json.RawMessage `json:"params,omitempty"`
}

func (h *Handler) submitJob(w http.ResponseWriter, r *http.Request) error {
	var req SubmitRequest
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.Type == "" {
		return badParam("type", "type is required")
	}
	if p := bytes.TrimSpace(req.Params); len(p) > 0 && p[0] != '{' && !bytes.Equal(p, []byte("null")) {
		return badParam("params", "params must be a JSON object")
	}
	if bytes.Equal(bytes.TrimSpace(req.Params), []byte("null")) {
		req.Params = nil
	}
	job, err := h.cfg.Service.Submit(r.Context(), req.Type, req.Params)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, job)
	return nil
}

// statuses is the job status vocabulary, for checking filters.
var statuses = map[jobs.Status]bool{jobs.StatusQueued: true, jobs.StatusRunning: true, jobs.StatusSucceeded: true,
	jobs.StatusFailed: true, jobs.StatusCancelled: true}

func (h *Handler) listJobs(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := jobs.JobFilter{Type: q.Get("type"), Status: jobs.Status(q.Get("status"))}
	if f.Status != "" && !statuses[f.Status] {
		return badParam("status", "status must be one of queued, running, succeeded, failed, cancelled; got %q", f.Status)
	}
	list, err := h.cfg.Service.Jobs(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(list))
	return nil
}

// jobCall answers with the job f returns for the {id} of the path: show, cancel, retry.
func (h *Handler) jobCall(f func(ctx context.Context, id string) (jobs.Job, error)) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		job, err := f(r.Context(), chi.URLParam(r, "id"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, job)
		return nil
	}
}

// eventList is the body of GET .../events: OpenAI's list with has_more.
type eventList struct {
	Object  string       `json:"object"`
	Data    []jobs.Event `json:"data"`
	HasMore bool         `json:"has_more"`
}

// Streaming knobs: how often a stream polls for new events, and how often it sends a keep-alive comment.
const (
	streamPoll      = 250 * time.Millisecond
	streamKeepAlive = 15 * time.Second
)

// jobEvents lists a job's events after ?after= (a sequence number; the Last-Event-ID header on a stream), at
// most ?limit=; with ?stream=true it sends them as server-sent events (id: seq, data: the event) as they come,
// and ends with "event: done" whose data is the finished job.
func (h *Handler) jobEvents(w http.ResponseWriter, r *http.Request) error {
	id := chi.URLParam(r, "id")
	q := r.URL.Query()
	after, err := intParam(q.Get("after"), "after")
	if err != nil {
		return err
	}
	if le := r.Header.Get("Last-Event-ID"); le != "" && q.Get("after") == "" {
		if after, err = intParam(le, "Last-Event-ID"); err != nil {
			return err
		}
	}
	limit, err := intParam(q.Get("limit"), "limit")
	if err != nil {
		return err
	}
	stream := false
	if s := q.Get("stream"); s != "" {
		if stream, err = strconv.ParseBool(s); err != nil {
			return badParam("stream", "stream must be true or false, got %q", s)
		}
	}
	job, err := h.cfg.Service.Job(r.Context(), id)
	if err != nil {
		return err
	}
	if !stream {
		evs, err := h.cfg.Service.Events(r.Context(), id, after, int(limit))
		if err != nil {
			return err
		}
		if evs == nil {
			evs = []jobs.Event{}
		}
		writeJSON(w, http.StatusOK, eventList{Object: "list", Data: evs, HasMore: limit > 0 && len(evs) == int(limit)})
		return nil
	}
	return h.streamEvents(w, r, job, after)
}

func intParam(s, name string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, badParam(name, "%s must be a non-negative integer, got %q", name, s)
	}
	return v, nil
}

func (h *Handler) streamEvents(w http.ResponseWriter, r *http.Request, job jobs.Job, after int64) error {
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	ctx := r.Context()
	tick := time.NewTicker(streamPoll)
	defer tick.Stop()
	lastWrite := time.Now()
	for {
		// The status is read before the events: every event written before the job finished is then sent.
		finished := job.Status.Finished()
		evs, err := h.cfg.Service.Events(ctx, job.ID, after, 0)
		if err != nil {
			return h.endStream(w, flusher, err)
		}
		for _, ev := range evs {
			b, _ := json.Marshal(ev)
			if _, err := fmt.Fprintf(w, "id: %d\ndata: %s\n\n", ev.Seq, b); err != nil {
				return nil // the client went away
			}
			after = ev.Seq
		}
		if len(evs) > 0 {
			lastWrite = time.Now()
		}
		if finished {
			b, _ := json.Marshal(job)
			fmt.Fprintf(w, "event: done\ndata: %s\n\n", b)
			flush(flusher)
			return nil
		}
		if time.Since(lastWrite) >= streamKeepAlive {
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return nil
			}
			lastWrite = time.Now()
		}
		flush(flusher)
		select {
		case <-ctx.Done():
			return nil
		case <-h.cfg.Done:
			return nil // shutting down; the client reconnects with Last-Event-ID
		case <-tick.C:
		}
		if job, err = h.cfg.Service.Job(ctx, job.ID); err != nil {
			return h.endStream(w, flusher, err)
		}
	}
}

// endStream reports an error after the stream's headers went out, as an "error" event.
func (h *Handler) endStream(w http.ResponseWriter, flusher http.Flusher, err error) error {
	ae := h.classify(err)
	if ae.Status == 499 {
		return nil
	}
	h.log.Error("admin: event stream failed", "err", err)
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": ae.Message, "type": ae.Type, "code": ae.Code}})
	fmt.Fprintf(w, "event: error\ndata: %s\n\n", b)
	flush(flusher)
	return nil
}

func flush(f http.Flusher) {
	if f != nil {
		f.Flush()
	}
}
