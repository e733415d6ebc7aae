package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/bestofn/bestofn/jobs"
)

const testToken = "s3cret-token"

type env struct {
	svc *fakeService
	act *fakeActivator
	srv *httptest.Server
	c   *Client
}

func newTestEnv(t *testing.T, token string, maxBytes int64) *env {
	t.Helper()
	svc := newFakeService(maxBytes)
	act := &fakeActivator{serving: map[string]string{}}
	h, err := New(Config{Service: svc, Activator: act, Token: token, MaxUploadBytes: maxBytes,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{svc: svc, act: act, srv: srv, c: NewClient(srv.URL, token, srv.Client())}
}

// call sends a raw request and decodes an error body if the status is not 2xx.
func (e *env) call(t *testing.T, method, path, contentType string, body io.Reader, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// wantError checks an OpenAI-shaped error body: status, and param when want is not "-".
func wantError(t *testing.T, what string, status int, body []byte, wantStatus int, wantParam string) {
	t.Helper()
	if status != wantStatus {
		t.Errorf("%s: status %d, want %d (body %s)", what, status, wantStatus, body)
		return
	}
	var er struct {
		Error struct {
			Message *string `json:"message"`
			Type    *string `json:"type"`
			Param   *string `json:"param"`
			Code    *string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &er); err != nil || er.Error.Message == nil || *er.Error.Message == "" || er.Error.Type == nil {
		t.Errorf("%s: body %s is not an OpenAI error", what, body)
		return
	}
	if wantParam == "-" {
		return
	}
	got := ""
	if er.Error.Param != nil {
		got = *er.Error.Param
	}
	if got != wantParam {
		t.Errorf("%s: param %q, want %q (%s)", what, got, wantParam, *er.Error.Message)
	}
}

func TestAuth(t *testing.T) {
	e := newTestEnv(t, testToken, 1<<20)
	code, body := e.call(t, "GET", "/admin/v1/jobs", "", nil, "")
	wantError(t, "no token", code, body, 401, "")
	code, body = e.call(t, "GET", "/admin/v1/jobs", "", nil, "wrong")
	wantError(t, "wrong token", code, body, 401, "")
	code, body = e.call(t, "GET", "/admin/v1/jobs", "", nil, testToken+"x")
	wantError(t, "token with a suffix", code, body, 401, "")
	req, _ := http.NewRequest("GET", e.srv.URL+"/admin/v1/jobs", nil)
	req.Header.Set("Authorization", "Basic "+testToken)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("basic auth: status %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if code, body := e.call(t, "GET", "/admin/v1/jobs", "", nil, testToken); code != 200 {
		t.Errorf("right token: %d %s", code, body)
	}
	// Unknown routes answer 401 too before the token is checked: nothing is revealed without it.
	code, body = e.call(t, "GET", "/admin/v1/nope", "", nil, "")
	wantError(t, "unknown route without token", code, body, 401, "")
	code, body = e.call(t, "GET", "/admin/v1/nope", "", nil, testToken)
	wantError(t, "unknown route", code, body, 404, "")

	open := newTestEnv(t, "", 1<<20)
	if code, body := open.call(t, "GET", "/admin/v1/jobs", "", nil, ""); code != 200 {
		t.Errorf("no token configured: %d %s", code, body)
	}

	off := httptest.NewServer(Disabled())
	defer off.Close()
	resp, err = off.Client().Get(off.URL + "/admin/v1/jobs")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantError(t, "disabled", resp.StatusCode, b, 404, "")
}

func multipartBody(t *testing.T, fields [][2]string, filename string, content []byte, fileFirst bool) (string, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	writeFile := func() {
		fw, err := mw.CreateFormFile("file", filename)
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(content)
	}
	if fileFirst {
		writeFile()
	}
	for _, f := range fields {
		mw.WriteField(f[0], f[1])
	}
	if !fileFirst {
		writeFile()
	}
	mw.Close()
	return mw.FormDataContentType(), &buf
}

func TestFiles(t *testing.T) {
	e := newTestEnv(t, testToken, 1000)
	ctx := context.Background()
	data := []byte("{\"a\":1}\n{\"a\":2}\n")
	sum := sha256.Sum256(data)
	f, err := e.c.UploadFile(ctx, "rows.jsonl", "data", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if f.Bytes != int64(len(data)) || f.SHA256 != hex.EncodeToString(sum[:]) || f.Filename != "rows.jsonl" || f.Purpose != "data" {
		t.Fatalf("uploaded file %+v", f)
	}
	var got bytes.Buffer
	sha, err := e.c.Download(ctx, f.ID, &got)
	if err != nil || !bytes.Equal(got.Bytes(), data) || sha != f.SHA256 {
		t.Fatalf("download: %q sha %s err %v", got.Bytes(), sha, err)
	}
	if g, err := e.c.File(ctx, f.ID); err != nil || g != f {
		t.Fatalf("get: %+v %v", g, err)
	}

	for _, fileFirst := range []bool{false, true} {
		ct, body := multipartBody(t, [][2]string{{"purpose", "data"}}, "form.jsonl", data, fileFirst)
		code, b := e.call(t, "POST", "/admin/v1/files", ct, body, testToken)
		var mf jobs.File
		if code != 201 || json.Unmarshal(b, &mf) != nil || mf.SHA256 != f.SHA256 || mf.Filename != "form.jsonl" {
			t.Errorf("multipart (file first %v): %d %s", fileFirst, code, b)
		}
	}
	list, err := e.c.Files(ctx, "data")
	if err != nil || len(list) != 3 {
		t.Fatalf("list: %d files, %v", len(list), err)
	}

	bad := []struct {
		name, query string
		body        string
		status      int
		param       string
	}{
		{"no purpose", "?filename=x.jsonl", "{}", 400, "purpose"},
		{"unknown purpose", "?purpose=nope&filename=x", "{}", 400, "purpose"},
		{"no filename", "?purpose=data", "{}", 400, "filename"},
		{"dot-dot", "?purpose=data&filename=..", "{}", 400, "filename"},
		{"traversal", "?purpose=data&filename=../../etc/passwd", "{}", 400, "filename"},
		{"absolute", "?purpose=data&filename=/etc/passwd", "{}", 400, "filename"},
		{"backslash", "?purpose=data&filename=..%5Cx", "{}", 400, "filename"},
		{"control", "?purpose=data&filename=a%0Ab", "{}", 400, "filename"},
		{"invalid JSONL", "?purpose=data&filename=x.jsonl", "{\"a\":1}\n{oops\n", 400, "file"},
		{"too large", "?purpose=data&filename=x.jsonl", strings.Repeat("{}\n", 400), 413, "-"},
	}
	for _, tc := range bad {
		code, b := e.call(t, "POST", "/admin/v1/files"+tc.query, "application/octet-stream", strings.NewReader(tc.body), testToken)
		wantError(t, tc.name, code, b, tc.status, tc.param)
	}
	// A body without Content-Length (chunked) over the limit is cut off while it streams.
	pr, pw := io.Pipe()
	go func() { pw.Write(bytes.Repeat([]byte("{}\n"), 400)); pw.Close() }()
	code, b := e.call(t, "POST", "/admin/v1/files?purpose=model&filename=big.bin", "application/octet-stream", pr, testToken)
	wantError(t, "chunked too large", code, b, 413, "-")
	ct, body := multipartBody(t, [][2]string{{"purpose", "model"}}, "big.bin", bytes.Repeat([]byte("x"), 2000), false)
	code, b = e.call(t, "POST", "/admin/v1/files", ct, body, testToken)
	wantError(t, "multipart too large", code, b, 413, "-")
	code, b = e.call(t, "POST", "/admin/v1/files?purpose=data&filename=x.jsonl", "application/octet-stream", strings.NewReader("{}\n{oops"), testToken)
	if !strings.Contains(string(b), "line 2") {
		t.Errorf("invalid JSONL message does not name line 2: %s", b)
	}

	if err := e.c.DeleteFile(ctx, f.ID); err != nil {
		t.Fatal(err)
	}
	var ae *APIError
	if _, err := e.c.File(ctx, f.ID); !errors.As(err, &ae) || ae.Status != 404 {
		t.Fatalf("deleted file: %v", err)
	}
	if err := e.c.DeleteFile(ctx, "file-nope"); !errors.As(err, &ae) || ae.Status != 404 {
		t.Fatalf("delete unknown: %v", err)
	}
}

func TestJobs(t *testing.T) {
	e := newTestEnv(t, testToken, 1<<20)
	ctx := context.Background()
	bad := []struct {
		name, body string
		status     int
		param      string
	}{
		{"unknown type", `{"type":"nope","params":{}}`, 400, "type"},
		{"no type", `{"params":{}}`, 400, "type"},
		{"params type", `{"type":"count","params":{"n":"x"}}`, 400, "params.n"},
		{"params value", `{"type":"count","params":{"n":-1}}`, 400, "params.n"},
		{"params unknown field", `{"type":"count","params":{"m":1}}`, 400, "params.m"},
		{"params not an object", `{"type":"count","params":[1]}`, 400, "params"},
		{"unknown body field", `{"type":"count","parms":{}}`, 400, "parms"},
		{"empty body", ``, 400, ""},
		{"bad JSON", `{"type":`, 400, ""},
		{"two values", `{"type":"count"} {}`, 400, ""},
	}
	for _, tc := range bad {
		code, b := e.call(t, "POST", "/admin/v1/jobs", "application/json", strings.NewReader(tc.body), testToken)
		wantError(t, tc.name, code, b, tc.status, tc.param)
	}
	if n := len(e.svc.jobs); n != 0 {
		t.Fatalf("%d jobs queued by bad submissions", n)
	}
	code, b := e.call(t, "POST", "/admin/v1/jobs", "application/json", strings.NewReader(`{"type":"count","params":{"n":3}}`), testToken)
	var j jobs.Job
	if code != 201 || json.Unmarshal(b, &j) != nil || j.Status != jobs.StatusQueued || j.ID == "" {
		t.Fatalf("submit: %d %s", code, b)
	}
	code, b = e.call(t, "GET", "/admin/v1/jobs?status=done", "", nil, testToken)
	wantError(t, "bad status filter", code, b, 400, "status")
	list, err := e.c.Jobs(ctx, jobs.JobFilter{Status: jobs.StatusQueued})
	if err != nil || len(list) != 1 {
		t.Fatalf("list queued: %v %v", list, err)
	}
	if list, _ := e.c.Jobs(ctx, jobs.JobFilter{Type: "sleep"}); len(list) != 0 {
		t.Fatalf("list by type: %v", list)
	}
	code, b = e.call(t, "GET", "/admin/v1/jobs/job-nope", "", nil, testToken)
	wantError(t, "unknown job", code, b, 404, "")

	if j, err = e.c.Cancel(ctx, j.ID); err != nil || j.Status != jobs.StatusCancelled {
		t.Fatalf("cancel: %+v %v", j, err)
	}
	code, b = e.call(t, "POST", "/admin/v1/jobs/"+j.ID+"/cancel", "", nil, testToken)
	wantError(t, "cancel a finished job", code, b, 409, "")
	if j, err = e.c.Retry(ctx, j.ID); err != nil || j.Status != jobs.StatusQueued {
		t.Fatalf("retry: %+v %v", j, err)
	}
	code, b = e.call(t, "POST", "/admin/v1/jobs/"+j.ID+"/retry", "", nil, testToken)
	wantError(t, "retry a queued job", code, b, 409, "")

	evs, err := e.c.Events(ctx, j.ID, 0, 0)
	if err != nil || len(evs) != 2 || evs[0].Message != "cancelled" || evs[1].Seq != 2 {
		t.Fatalf("events: %+v %v", evs, err)
	}
	if evs, _ := e.c.Events(ctx, j.ID, 1, 0); len(evs) != 1 || evs[0].Seq != 2 {
		t.Fatalf("events after 1: %+v", evs)
	}
	code, b = e.call(t, "GET", "/admin/v1/jobs/"+j.ID+"/events?after=-1", "", nil, testToken)
	wantError(t, "negative after", code, b, 400, "after")
	code, b = e.call(t, "GET", "/admin/v1/jobs/"+j.ID+"/events?stream=maybe", "", nil, testToken)
	wantError(t, "bad stream", code, b, 400, "stream")

	// The stream sends what is there, then new events as a worker adds them, and ends when the job finishes.
	go func() {
		time.Sleep(300 * time.Millisecond)
		e.svc.setJob(j.ID, jobs.StatusRunning, "started")
		time.Sleep(300 * time.Millisecond)
		e.svc.setJob(j.ID, jobs.StatusSucceeded, "finished")
	}()
	var seen []string
	final, err := e.c.StreamEvents(ctx, j.ID, 1, func(ev jobs.Event) error { seen = append(seen, ev.Message); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(seen, ",") != "retried,started,finished" || final.Status != jobs.StatusSucceeded {
		t.Fatalf("stream saw %v, final %s", seen, final.Status)
	}
	if _, err := e.c.StreamEvents(ctx, "job-nope", 0, func(jobs.Event) error { return nil }); err == nil {
		t.Fatal("stream of an unknown job succeeded")
	}
}

func TestModels(t *testing.T) {
	e := newTestEnv(t, testToken, 1<<20)
	ctx := context.Background()
	f, err := e.c.UploadFile(ctx, "g.gguf", "model", strings.NewReader("GGUF..."))
	if err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name, body string
		param      string
	}{
		{"no name", `{"kind":"generator","file_id":"` + f.ID + `"}`, "name"},
		{"path name", `{"name":"../x","kind":"generator","file_id":"` + f.ID + `"}`, "name"},
		{"bad kind", `{"name":"g","kind":"llm","file_id":"` + f.ID + `"}`, "kind"},
		{"no source", `{"name":"g","kind":"generator"}`, "file_id"},
		{"both sources", `{"name":"g","kind":"generator","file_id":"x","job_id":"y"}`, "file_id"},
		{"output without job", `{"name":"g","kind":"generator","file_id":"x","output":"o"}`, "output"},
	}
	for _, tc := range bad {
		code, b := e.call(t, "POST", "/admin/v1/models", "application/json", strings.NewReader(tc.body), testToken)
		wantError(t, tc.name, code, b, 400, tc.param)
	}
	code, b := e.call(t, "POST", "/admin/v1/models", "application/json",
		strings.NewReader(`{"name":"g","kind":"generator","file_id":"file-nope"}`), testToken)
	wantError(t, "unknown file", code, b, 404, "")
	for v := 1; v <= 2; v++ {
		mv, err := e.c.RegisterModel(ctx, jobs.ModelSpec{Name: "g", Kind: jobs.KindGenerator, FileID: f.ID})
		if err != nil || mv.Version != v {
			t.Fatalf("register v%d: %+v %v", v, mv, err)
		}
	}
	if _, err := e.c.RegisterModel(ctx, jobs.ModelSpec{Name: "broken", Kind: jobs.KindGenerator, FileID: f.ID}); err != nil {
		t.Fatal(err)
	}

	code, b = e.call(t, "POST", "/admin/v1/models/nope/activate", "application/json", strings.NewReader(`{"version":1}`), testToken)
	wantError(t, "unknown model", code, b, 404, "")
	code, b = e.call(t, "POST", "/admin/v1/models/g/activate", "application/json", strings.NewReader(`{"version":9}`), testToken)
	wantError(t, "unknown version", code, b, 404, "")
	code, b = e.call(t, "POST", "/admin/v1/models/g/activate", "application/json", strings.NewReader(`{"version":-1}`), testToken)
	wantError(t, "negative version", code, b, 400, "version")
	code, b = e.call(t, "POST", "/admin/v1/models/g/activate", "application/json", strings.NewReader(`{"version":1,"serve_as":["other"]}`), testToken)
	wantError(t, "unknown served name", code, b, 400, "serve_as")
	code, b = e.call(t, "POST", "/admin/v1/models/broken/activate", "application/json", strings.NewReader(`{}`), testToken)
	wantError(t, "load failure", code, b, 422, "")

	res, err := e.c.Activate(ctx, "g", ActivateRequest{Version: 2, ServeAs: []string{"m", "m:r1"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Activation.Version != 2 || len(res.Activation.ServeAs) != 2 || res.Serving[0].Generator.Path != "g:2" {
		t.Fatalf("activate: %+v", res)
	}
	if _, err := e.c.Activate(ctx, "g", ActivateRequest{Version: 1}); err != nil { // rollback of "m"
		t.Fatal(err)
	}
	ml, err := e.c.Models(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ml.Data) != 3 || len(ml.Activations) != 2 || ml.Serving[0].Generator.Path != "g:1" || ml.Serving[1].Generator.Path != "g:2" {
		t.Fatalf("models: %+v", ml)
	}
	if len(e.svc.acts) != 2 {
		t.Fatalf("%d activations recorded, want 2 (failed ones are not)", len(e.svc.acts))
	}
}

// Mounted under a parent chi router (as package server does), routes and their URL parameters still resolve.
func TestMountedUnderChi(t *testing.T) {
	svc := newFakeService(1 << 20)
	h, err := New(Config{Service: svc, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := svc.UploadFile(context.Background(), "a.jsonl", "data", strings.NewReader("{}\n"))
	parent := chi.NewRouter()
	parent.Get("/v1/models", func(w http.ResponseWriter, r *http.Request) {})
	parent.Handle("/admin/*", h)
	srv := httptest.NewServer(parent)
	defer srv.Close()
	got, err := NewClient(srv.URL, "", srv.Client()).File(context.Background(), f.ID)
	if err != nil || got.ID != f.ID {
		t.Fatalf("file through a parent router: %+v %v", got, err)
	}
}
