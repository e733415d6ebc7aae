package admin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/bestofn/bestofn/api"
	"github.com/bestofn/bestofn/jobs"
)

// Client calls a server's /admin/v1 API.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// NewClient returns a client of the server at baseURL (e.g. "http://127.0.0.1:8080"), sending token as the
// bearer token when not empty. hc nil means http.DefaultClient.
func NewClient(baseURL, token string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(baseURL, "/") + Prefix, token: token, hc: hc}
}

// APIError is an error answer of the admin API.
type APIError struct {
	Status  int
	Type    string
	Code    string
	Param   string
	Message string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("admin API: %d %s", e.Status, e.Message)
	if e.Param != "" && !strings.HasPrefix(e.Message, e.Param) {
		s += " (param " + e.Param + ")"
	}
	return s
}

func (c *Client) request(ctx context.Context, method, path string, q url.Values, body io.Reader, contentType string) (*http.Response, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		return nil, readAPIError(resp)
	}
	return resp, nil
}

func readAPIError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var er api.ErrorResponse
	if err := json.Unmarshal(b, &er); err != nil || er.Error.Message == "" {
		return &APIError{Status: resp.StatusCode, Message: strings.TrimSpace(string(b))}
	}
	e := &APIError{Status: resp.StatusCode, Type: er.Error.Type, Message: er.Error.Message}
	if er.Error.Code != nil {
		e.Code = *er.Error.Code
	}
	if er.Error.Param != nil {
		e.Param = *er.Error.Param
	}
	return e
}

// do sends in (JSON-encoded unless nil) and decodes the answer into out (unless nil).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	resp, err := c.request(ctx, method, path, q, body, ct)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("admin API: decoding the answer to %s %s: %w", method, path, err)
	}
	return nil
}

// UploadFile uploads content as a raw body.
func (c *Client) UploadFile(ctx context.Context, filename, purpose string, content io.Reader) (jobs.File, error) {
	var f jobs.File
	resp, err := c.request(ctx, http.MethodPost, "/files", url.Values{"purpose": {purpose}, "filename": {filename}},
		content, "application/octet-stream")
	if err != nil {
		return f, err
	}
	defer resp.Body.Close()
	return f, json.NewDecoder(resp.Body).Decode(&f)
}

// Files lists files; purpose "" means all.
func (c *Client) Files(ctx context.Context, purpose string) ([]jobs.File, error) {
	var out list[jobs.File]
	q := url.Values{}
	if purpose != "" {
		q.Set("purpose", purpose)
	}
	return out.Data, c.do(ctx, http.MethodGet, "/files", q, nil, &out)
}

// File returns a file's metadata.
func (c *Client) File(ctx context.Context, id string) (jobs.File, error) {
	var f jobs.File
	return f, c.do(ctx, http.MethodGet, "/files/"+url.PathEscape(id), nil, nil, &f)
}

// Download writes a file's content to w and returns the sha256 the server states for it.
func (c *Client) Download(ctx context.Context, id string, w io.Writer) (string, error) {
	resp, err := c.request(ctx, http.MethodGet, "/files/"+url.PathEscape(id)+"/content", nil, nil, "")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return "", err
	}
	return resp.Header.Get("X-Bestofn-Sha256"), nil
}

// DeleteFile deletes a file.
func (c *Client) DeleteFile(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/files/"+url.PathEscape(id), nil, nil, nil)
}

// Submit queues a job.
func (c *Client) Submit(ctx context.Context, typ string, params json.RawMessage) (jobs.Job, error) {
	var j jobs.Job
	return j, c.do(ctx, http.MethodPost, "/jobs", nil, SubmitRequest{Type: typ, Params: params}, &j)
}

// Jobs lists jobs.
func (c *Client) Jobs(ctx context.Context, f jobs.JobFilter) ([]jobs.Job, error) {
	var out list[jobs.Job]
	q := url.Values{}
	if f.Type != "" {
		q.Set("type", f.Type)
	}
	if f.Status != "" {
		q.Set("status", string(f.Status))
	}
	return out.Data, c.do(ctx, http.MethodGet, "/jobs", q, nil, &out)
}

// Job returns a job.
func (c *Client) Job(ctx context.Context, id string) (jobs.Job, error) {
	var j jobs.Job
	return j, c.do(ctx, http.MethodGet, "/jobs/"+url.PathEscape(id), nil, nil, &j)
}

// Events returns a job's events with Seq > after, at most limit (0: all).
func (c *Client) Events(ctx context.Context, id string, after int64, limit int) ([]jobs.Event, error) {
	var out eventList
	q := url.Values{"after": {strconv.FormatInt(after, 10)}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return out.Data, c.do(ctx, http.MethodGet, "/jobs/"+url.PathEscape(id)+"/events", q, nil, &out)
}

// StreamEvents follows a job's events (server-sent events) from Seq > after, calling fn for each, until the
// job is finished; it returns the finished job.
func (c *Client) StreamEvents(ctx context.Context, id string, after int64, fn func(jobs.Event) error) (jobs.Job, error) {
	var job jobs.Job
	resp, err := c.request(ctx, http.MethodGet, "/jobs/"+url.PathEscape(id)+"/events",
		url.Values{"stream": {"true"}, "after": {strconv.FormatInt(after, 10)}}, nil, "")
	if err != nil {
		return job, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	event, data := "", ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			switch event {
			case "done":
				return job, json.Unmarshal([]byte(data), &job)
			case "error":
				return job, fmt.Errorf("admin API: event stream: %s", data)
			case "":
				if data != "" {
					var ev jobs.Event
					if err := json.Unmarshal([]byte(data), &ev); err != nil {
						return job, fmt.Errorf("admin API: bad event %q: %w", data, err)
					}
					if err := fn(ev); err != nil {
						return job, err
					}
				}
			}
			event, data = "", ""
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data += strings.TrimPrefix(line, "data: ")
		}
	}
	if err := sc.Err(); err != nil {
		return job, err
	}
	return job, fmt.Errorf("admin API: event stream of job %s ended before the job finished", id)
}

// Cancel cancels a job.
func (c *Client) Cancel(ctx context.Context, id string) (jobs.Job, error) {
	var j jobs.Job
	return j, c.do(ctx, http.MethodPost, "/jobs/"+url.PathEscape(id)+"/cancel", nil, nil, &j)
}

// Retry queues a failed or cancelled job again.
func (c *Client) Retry(ctx context.Context, id string) (jobs.Job, error) {
	var j jobs.Job
	return j, c.do(ctx, http.MethodPost, "/jobs/"+url.PathEscape(id)+"/retry", nil, nil, &j)
}

// Wait polls a job every interval (0: 500 ms), calling onUpdate (when not nil) with each state, until it is
// finished, and returns it. Transient network errors (a restarting server) are retried until ctx is done.
func (c *Client) Wait(ctx context.Context, id string, interval time.Duration, onUpdate func(jobs.Job)) (jobs.Job, error) {
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	for {
		j, err := c.Job(ctx, id)
		if _, isAPI := err.(*APIError); err != nil && (isAPI || ctx.Err() != nil) {
			return j, err
		}
		if err == nil {
			if onUpdate != nil {
				onUpdate(j)
			}
			if j.Status.Finished() {
				return j, nil
			}
		}
		select {
		case <-ctx.Done():
			return j, ctx.Err()
		case <-time.After(interval):
		}
	}
}

// RegisterModel registers a model version.
func (c *Client) RegisterModel(ctx context.Context, spec jobs.ModelSpec) (jobs.ModelVersion, error) {
	var mv jobs.ModelVersion
	return mv, c.do(ctx, http.MethodPost, "/models", nil, spec, &mv)
}

// Models lists registered versions, activations and what serves what.
func (c *Client) Models(ctx context.Context) (ModelList, error) {
	var out ModelList
	return out, c.do(ctx, http.MethodGet, "/models", nil, nil, &out)
}

// Activate swaps a registered version in (hot swap).
func (c *Client) Activate(ctx context.Context, name string, req ActivateRequest) (ActivateResponse, error) {
	var out ActivateResponse
	return out, c.do(ctx, http.MethodPost, "/models/"+url.PathEscape(name)+"/activate", nil, req, &out)
}

// ABReport fetches the live A/B report (GET /ab/report) with the query's params (pipeline.ParseABReportQuery
// names them) and decodes it into out (e.g. a *pipeline.ABReport, or a map).
func (c *Client) ABReport(ctx context.Context, query url.Values, out any) error {
	return c.do(ctx, http.MethodGet, "/ab/report", query, nil, out)
}
