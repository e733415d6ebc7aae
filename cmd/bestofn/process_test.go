package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bestofn/bestofn/admin"
	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/jobs/jobstore"
	"github.com/bestofn/bestofn/teacher/teachertest"
)

// Tests of real `bestofn serve` processes: the binary is built once, started on loopback ports with a data
// directory of the test's, killed with SIGKILL where a crash is the point.

const testAdminToken = "test-admin-token"

// bestofnBinary builds this command once for the test run (teachertest's build, shared with the packages
// whose tests run bestofn teachers).
func bestofnBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs bestofn processes")
	}
	if _, err := os.Stat(serveTestModel); err != nil {
		t.Skip("shared model missing: ", err)
	}
	return teachertest.Binary(t)
}

// syncBuffer collects a process's stderr for failure messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a running `bestofn serve`.
type proc struct {
	cmd       *exec.Cmd
	url       string // main listener
	adminURL  string // the admin listener with --admin-addr, else url
	stderr    *syncBuffer
	exited    chan struct{}
	exitErr   error
	startedAt time.Time
	dataDir   string
}

// startServe starts `bestofn serve` on 127.0.0.1:0 with stories260K (and no reward model unless args give
// --reward-model) and the data directory dataDir, and
// waits until it listens. env entries are added to the process's environment (the admin token by default is
// not: pass it). It fails the test if the process exits first.
func startServe(t *testing.T, dataDir string, env []string, args ...string) *proc {
	t.Helper()
	p, err := tryServe(t, dataDir, env, args...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func tryServe(t *testing.T, dataDir string, env []string, args ...string) (*proc, error) {
	t.Helper()
	bin := bestofnBinary(t)
	// No reward model unless args name one (a later flag wins).
	full := append([]string{"serve", "--addr", "127.0.0.1:0", "--model", serveTestModel, "--reward-model", "", "--threads", "1",
		"--data-dir", dataDir, "--job-lease", "2s", "--max-tokens", "64"}, args...)
	return launch(t, bin, dataDir, env, full)
}

// launch runs bin with the full argument list of a serve command and waits until it listens (and its admin
// listener, with --admin-addr).
func launch(t *testing.T, bin, dataDir string, env, full []string) (*proc, error) {
	t.Helper()
	return launchIn(t, "", bin, dataDir, env, full)
}

// launchIn is launch in the working directory dir ("": this package's).
func launchIn(t *testing.T, dir, bin, dataDir string, env, full []string) (*proc, error) {
	t.Helper()
	args := full
	cmd := exec.Command(bin, full...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, stderr: &syncBuffer{}, exited: make(chan struct{}), startedAt: time.Now(), dataDir: dataDir}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { p.kill() })
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	go func() { p.exitErr = cmd.Wait(); close(p.exited) }()
	deadline := time.After(90 * time.Second)
	for p.url == "" || (p.adminURL == "" && hasFlag(args, "--admin-addr")) {
		select {
		case line, ok := <-lines:
			if !ok {
				<-p.exited
				return nil, fmt.Errorf("bestofn serve exited before listening (%v):\n%s", p.exitErr, p.stderr)
			}
			if a, ok := strings.CutPrefix(line, "bestofn: listening on "); ok {
				p.url = "http://" + a
			}
			if a, ok := strings.CutPrefix(line, "bestofn: admin API on "); ok {
				p.adminURL = "http://" + a
			}
		case <-deadline:
			return nil, fmt.Errorf("bestofn serve did not listen within 90 s:\n%s", p.stderr)
		}
	}
	if p.adminURL == "" {
		p.adminURL = p.url
	}
	go func() {
		for range lines {
		}
	}()
	return p, nil
}

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

// kill sends SIGKILL (kill -9) and waits for the process to be gone.
func (p *proc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

func (p *proc) client() *admin.Client { return admin.NewClient(p.adminURL, testAdminToken, nil) }

var tokenEnv = []string{"BESTOFN_ADMIN_TOKEN=" + testAdminToken}

// waitJob polls until the job is finished or the timeout passes.
func waitJobDone(t *testing.T, c *admin.Client, id string, timeout time.Duration) jobs.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	j, err := c.Wait(ctx, id, 100*time.Millisecond, nil)
	if err != nil {
		t.Fatalf("job %s: %v (last %+v)", id, err, j)
	}
	return j
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func downloadFile(t *testing.T, c *admin.Client, id string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	sha, err := c.Download(context.Background(), id, &buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), sha
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checkCountRows checks a count job's results independently of the platform: rows 0..n-1, each once, in
// order, with value i*i.
func checkCountRows(t *testing.T, b []byte, n int) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("%d rows, want %d (duplicated or missing items):\n%s", len(lines), n, b)
	}
	for i, line := range lines {
		var row struct {
			Step  int   `json:"step"`
			Value int64 `json:"value"`
		}
		if err := json.Unmarshal([]byte(line), &row); err != nil || row.Step != i || row.Value != int64(i*i) {
			t.Fatalf("row %d = %q, want step %d value %d", i, line, i, i*i)
		}
	}
}

// A server killed with SIGKILL in the middle of a multi-step job is restarted on the same data directory: the
// job resumes from its checkpoint and finishes with outputs identical (sha256) to an uninterrupted run, with no
// item duplicated. The uninterrupted run is `bestofn job run` in its own data directory.
func TestProcessKill9ResumesJob(t *testing.T) {
	dir := t.TempDir()
	const steps = 30
	params := json.RawMessage(fmt.Sprintf(`{"steps":%d,"step_ms":100}`, steps))
	p1 := startServe(t, dir, tokenEnv)
	c := p1.client()
	ctx := context.Background()
	j, err := c.Submit(ctx, "count", params)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the job to be a third done", 30*time.Second, func() bool {
		j, err = c.Job(ctx, j.ID)
		return err == nil && j.Progress.Done >= steps/3
	})
	p1.kill()
	doneAtKill := j.Progress.Done

	p2 := startServe(t, dir, tokenEnv)
	c = p2.client()
	restarted := time.Now()
	j = waitJobDone(t, c, j.ID, 60*time.Second)
	if j.Status != jobs.StatusSucceeded || len(j.Outputs) != 1 {
		t.Fatalf("after restart: %+v\n%s", j, p2.stderr)
	}
	if j.Attempts < 2 {
		t.Errorf("attempts %d, want >= 2 (the killed one and the resumed one)", j.Attempts)
	}
	t.Logf("killed at %d/%d steps; the restarted server finished in %v", doneAtKill, steps, time.Since(restarted).Round(time.Millisecond))
	got, sha := downloadFile(t, c, j.Outputs[0])
	if sha256Hex(got) != sha {
		t.Fatalf("content sha256 %s, server says %s", sha256Hex(got), sha)
	}
	checkCountRows(t, got, steps)
	evs, err := c.Events(ctx, j.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	metricsSteps := map[string]int{}
	for _, ev := range evs {
		if ev.Level == "metrics" {
			metricsSteps[string(ev.Data)]++
		}
	}
	if len(metricsSteps) < steps {
		t.Errorf("%d distinct metrics events for %d steps", len(metricsSteps), steps)
	}

	// The uninterrupted reference: the same job run in-process by the CLI in another data directory.
	refDir := t.TempDir()
	out, err := exec.Command(bestofnBinary(t), "job", "run", "count", "--params", string(params), "--data-dir", refDir).Output()
	if err != nil {
		t.Fatalf("job run: %v", err)
	}
	var ref jobs.Job
	if err := json.Unmarshal(out, &ref); err != nil || ref.Status != jobs.StatusSucceeded || len(ref.Outputs) != 1 {
		t.Fatalf("job run printed %s (%v)", out, err)
	}
	st, err := jobstore.Open(ctx, "sqlite", refDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f, err := st.File(ctx, ref.Outputs[0])
	if err != nil {
		t.Fatal(err)
	}
	if f.SHA256 != sha {
		t.Errorf("interrupted run's output sha256 %s, uninterrupted %s", sha, f.SHA256)
	}
}

// Cancel reaches a queued job at once and a running one within a few seconds.
func TestProcessCancel(t *testing.T) {
	p := startServe(t, t.TempDir(), tokenEnv, "--job-workers", "1")
	c := p.client()
	ctx := context.Background()
	running, err := c.Submit(ctx, "count", json.RawMessage(`{"steps":1000,"step_ms":50}`))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first job to run", 20*time.Second, func() bool {
		j, err := c.Job(ctx, running.ID)
		return err == nil && j.Status == jobs.StatusRunning && j.Progress.Done > 0
	})
	queued, err := c.Submit(ctx, "count", json.RawMessage(`{"steps":5}`))
	if err != nil {
		t.Fatal(err)
	}
	j, err := c.Cancel(ctx, queued.ID)
	if err != nil || j.Status != jobs.StatusCancelled {
		t.Fatalf("cancel queued: %+v %v", j, err)
	}
	start := time.Now()
	if _, err := c.Cancel(ctx, running.ID); err != nil {
		t.Fatal(err)
	}
	j = waitJobDone(t, c, running.ID, 10*time.Second)
	took := time.Since(start)
	if j.Status != jobs.StatusCancelled || j.Progress.Done >= 1000 {
		t.Fatalf("cancel running: %+v", j)
	}
	if took > 5*time.Second {
		t.Errorf("cancel took %v to reach the running job", took)
	}
	t.Logf("cancel of a running job took %v", took.Round(time.Millisecond))
	var ae *admin.APIError
	if _, err := c.Cancel(ctx, running.ID); !asAPIError(err, &ae) || ae.Status != http.StatusConflict {
		t.Errorf("cancel of a cancelled job: %v, want 409", err)
	}
	if j, err := c.Retry(ctx, queued.ID); err != nil || j.Status != jobs.StatusQueued {
		t.Fatalf("retry: %+v %v", j, err)
	}
	if j := waitJobDone(t, c, queued.ID, 20*time.Second); j.Status != jobs.StatusSucceeded {
		t.Fatalf("retried job: %+v", j)
	}
}

func asAPIError(err error, target **admin.APIError) bool {
	ae, ok := err.(*admin.APIError)
	if ok {
		*target = ae
	}
	return ok
}

// rawCall sends a request and returns the status and body.
func rawCall(t *testing.T, method, url, token, contentType string, body io.Reader) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// wantAPIError checks a status and OpenAI's error shape, and the param unless it is "-".
func wantAPIError(t *testing.T, what string, status int, body []byte, wantStatus int, wantParam string) {
	t.Helper()
	var er struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    *string `json:"code"`
		} `json:"error"`
	}
	if status != wantStatus {
		t.Errorf("%s: status %d, want %d: %s", what, status, wantStatus, body)
		return
	}
	if err := json.Unmarshal(body, &er); err != nil || er.Error.Message == "" || er.Error.Type == "" {
		t.Errorf("%s: not an OpenAI error body: %s", what, body)
		return
	}
	if wantParam != "-" {
		got := ""
		if er.Error.Param != nil {
			got = *er.Error.Param
		}
		if got != wantParam {
			t.Errorf("%s: param %q, want %q: %s", what, got, wantParam, body)
		}
	}
}

// Exposure: a token makes every /admin request need it; without one the API is off (404) unless the server
// listens on loopback only and was told --admin-insecure-loopback; --admin-addr moves it to its own listener.
func TestProcessAdminExposure(t *testing.T) {
	p := startServe(t, t.TempDir(), tokenEnv)
	code, b := rawCall(t, "GET", p.url+"/admin/v1/jobs", "", "", nil)
	wantAPIError(t, "no token", code, b, 401, "-")
	code, b = rawCall(t, "GET", p.url+"/admin/v1/jobs", "wrong", "", nil)
	wantAPIError(t, "wrong token", code, b, 401, "-")
	if code, b := rawCall(t, "GET", p.url+"/admin/v1/jobs", testAdminToken, "", nil); code != 200 {
		t.Errorf("right token: %d %s", code, b)
	}
	p.kill()

	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte("from-a-file\n"), 0o600)
	p = startServe(t, t.TempDir(), nil, "--admin-token-file", tokenFile)
	if code, b := rawCall(t, "GET", p.url+"/admin/v1/files", "from-a-file", "", nil); code != 200 {
		t.Errorf("token from file: %d %s", code, b)
	}
	p.kill()

	off := startServe(t, filepath.Join(t.TempDir(), "absent"), nil)
	code, b = rawCall(t, "GET", off.url+"/admin/v1/jobs", "", "", nil)
	wantAPIError(t, "admin off", code, b, 404, "-")
	if code, _ := rawCall(t, "GET", off.url+"/v1/models", "", "", nil); code != 200 {
		t.Errorf("/v1/models with the admin API off: %d", code)
	}
	off.kill()

	open := startServe(t, t.TempDir(), nil, "--admin-insecure-loopback")
	if code, b := rawCall(t, "GET", open.url+"/admin/v1/jobs", "", "", nil); code != 200 {
		t.Errorf("insecure loopback: %d %s", code, b)
	}
	open.kill()

	if _, err := tryServe(t, t.TempDir(), nil, "--admin-insecure-loopback", "--addr", "0.0.0.0:0"); err == nil ||
		!strings.Contains(err.Error(), "loopback") {
		t.Errorf("insecure admin on all interfaces started: %v", err)
	}

	sep := startServe(t, t.TempDir(), tokenEnv, "--admin-addr", "127.0.0.1:0")
	if sep.adminURL == sep.url {
		t.Fatal("--admin-addr did not start its own listener")
	}
	code, b = rawCall(t, "GET", sep.url+"/admin/v1/jobs", testAdminToken, "", nil)
	wantAPIError(t, "admin on the main listener with --admin-addr", code, b, 404, "-")
	if code, b := rawCall(t, "GET", sep.adminURL+"/admin/v1/jobs", testAdminToken, "", nil); code != 200 {
		t.Errorf("admin listener: %d %s", code, b)
	}
	code, b = rawCall(t, "GET", sep.adminURL+"/admin/v1/jobs", "", "", nil)
	wantAPIError(t, "admin listener without token", code, b, 401, "-")
}

// Bad input to a real server: 4xx in OpenAI's error shape, naming the parameter, and nothing queued.
func TestProcessBadInput(t *testing.T) {
	p := startServe(t, t.TempDir(), tokenEnv, "--max-upload-bytes", "2000")
	u := p.url + "/admin/v1"
	for _, tc := range []struct {
		name, path, ct, body string
		status               int
		param                string
	}{
		{"unknown type", "/jobs", "application/json", `{"type":"no-such-type","params":{}}`, 400, "type"},
		{"bad param type", "/jobs", "application/json", `{"type":"count","params":{"steps":"ten"}}`, 400, "params.steps"},
		{"bad param value", "/jobs", "application/json", `{"type":"count","params":{"steps":-3}}`, 400, "params.steps"},
		{"unknown param", "/jobs", "application/json", `{"type":"count","params":{"stepz":3}}`, 400, "params.stepz"},
		{"params not an object", "/jobs", "application/json", `{"type":"count","params":"x"}`, 400, "params"},
		{"malformed body", "/jobs", "application/json", `{"type":`, 400, "-"},
		{"oversized upload", "/files?purpose=jsonl&filename=big.jsonl", "application/octet-stream", strings.Repeat(`{"a":1}`+"\n", 400), 413, "-"},
		{"invalid JSONL", "/files?purpose=jsonl&filename=rows.jsonl", "application/octet-stream", "{\"a\":1}\nnot json\n", 400, "file"},
		{"JSONL of arrays", "/files?purpose=jsonl&filename=rows.jsonl", "application/octet-stream", "[1,2]\n", 400, "file"},
		{"path-like filename", "/files?purpose=jsonl&filename=../../etc/passwd", "application/octet-stream", "{}\n", 400, "filename"},
		{"absolute filename", "/files?purpose=jsonl&filename=/tmp/x", "application/octet-stream", "{}\n", 400, "filename"},
		{"unknown purpose", "/files?purpose=nope&filename=x", "application/octet-stream", "{}\n", 400, "purpose"},
		{"unknown model file", "/models", "application/json", `{"name":"g","kind":"generator","file_id":"file-nope"}`, 404, "-"},
		{"bad model kind", "/models", "application/json", `{"name":"g","kind":"llm","file_id":"file-nope"}`, 400, "kind"},
		{"unknown job", "/jobs/job-nope", "", "", 404, "-"},
	} {
		method := "POST"
		if tc.body == "" {
			method = "GET"
		}
		code, b := rawCall(t, method, u+tc.path, testAdminToken, tc.ct, strings.NewReader(tc.body))
		wantAPIError(t, tc.name, code, b, tc.status, tc.param)
	}
	code, b := rawCall(t, "POST", u+"/files?purpose=jsonl&filename=rows.jsonl", testAdminToken, "", strings.NewReader("{\"a\":1}\n{oops\n"))
	if code != 400 || !strings.Contains(string(b), "line 2") {
		t.Errorf("invalid JSONL does not name line 2: %d %s", code, b)
	}
	list, err := p.client().Jobs(context.Background(), jobs.JobFilter{})
	if err != nil || len(list) != 0 {
		t.Errorf("bad submissions queued %d jobs (%v)", len(list), err)
	}
	files, err := p.client().Files(context.Background(), "")
	if err != nil || len(files) != 0 {
		t.Errorf("bad uploads stored %d files (%v)", len(files), err)
	}
	// Files in the data directory never take the uploaded name.
	if code, b := rawCall(t, "POST", u+"/files?purpose=jsonl&filename=passwd", testAdminToken, "", strings.NewReader("{}\n")); code != 201 {
		t.Fatalf("good upload: %d %s", code, b)
	}
	filepath.WalkDir(p.dataDir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == "passwd" {
			t.Errorf("the upload's name became a path: %s", path)
		}
		return nil
	})
}
