// Package teachertest starts real endpoints for tests of the teacher client and the job types that use it: a
// bestofn server built from this repository and run as a subprocess on a loopback port (its OpenAI API at
// URL+"/v1", its Ollama API at URL), and fault-injecting proxies in front of it.
package teachertest

import (
	"bufio"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// RepoRoot is the module root (the directory holding go.mod), found from the working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("teachertest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// SharedModel is the path of the tiny stories260K GGUF in ../shared; tests skip without it.
func SharedModel(t testing.TB) string {
	t.Helper()
	p := filepath.Join(RepoRoot(t), "..", "shared", "models", "stories260K", "stories260K.gguf")
	if _, err := os.Stat(p); err != nil {
		t.Skip("teachertest: shared model missing: ", err)
	}
	return p
}

var build struct {
	once sync.Once
	path string
	err  error
}

// Main runs a package's tests and then removes the binary Binary built: call it from TestMain,
//
//	func TestMain(m *testing.M) { os.Exit(teachertest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if build.path != "" {
		os.RemoveAll(filepath.Dir(build.path))
	}
	return code
}

// Binary builds cmd/bestofn once per test binary (in a temporary directory that Main removes) and returns its
// path.
func Binary(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "teachertest-bin-")
		if err != nil {
			build.err = err
			return
		}
		build.path = filepath.Join(dir, "bestofn")
		cmd := exec.Command("go", "build", "-o", build.path, "./cmd/bestofn")
		cmd.Dir = RepoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build ./cmd/bestofn: %v\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// Server is a running bestofn subprocess.
type Server struct {
	// URL is the server's root, e.g. "http://127.0.0.1:41234"; the OpenAI API is URL+"/v1".
	URL  string
	cmd  *exec.Cmd
	done chan struct{}
}

// Serve starts `bestofn serve` on the shared stories260K model and the repository's tiny reward model (so
// llama-gpt4, llama-gpt4:r1 and the experiment llama-gpt4:ab are served) on a free loopback port, with extra
// flags appended; the process is killed when the test ends.
func Serve(t testing.TB, extra ...string) *Server {
	t.Helper()
	model := SharedModel(t)
	bin := Binary(t)
	args := append([]string{"serve", "--model", model, "--reward-model", filepath.Join(RepoRoot(t), "reward", "testdata", "tiny-rm"),
		"--addr", "127.0.0.1:0", "--threads", "1", "--seed", "7"}, extra...)
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &lockedWriter{w: &stderr}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &Server{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(s.done) }()
	t.Cleanup(s.Kill)
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		lines <- line
		io.Copy(io.Discard, r)
	}()
	select {
	case line := <-lines:
		addr := strings.TrimSpace(strings.TrimPrefix(line, "bestofn: listening on "))
		if addr == "" || strings.Contains(addr, " ") {
			t.Fatalf("teachertest: bestofn serve: no listening line (%q); stderr:\n%s", line, stderr.String())
		}
		s.URL = "http://" + addr
	case <-time.After(60 * time.Second):
		t.Fatalf("teachertest: bestofn serve did not start; stderr:\n%s", stderr.String())
	}
	return s
}

// Kill stops the server (SIGKILL) and waits for it.
func (s *Server) Kill() {
	if s.cmd.Process != nil {
		s.cmd.Process.Kill()
	}
	<-s.done
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Proxy is a reverse proxy in front of a server that injects faults into its first requests.
type Proxy struct {
	// URL is the proxy's root.
	URL string
	// Requests counts requests that reached the proxy; Faults those it answered with a fault.
	Requests, Faults atomic.Int64
}

// Fault decides what to do with the n-th request (1-based): return true after writing a response (or after
// breaking the connection) to stop it from reaching the server.
type Fault func(n int64, w http.ResponseWriter, r *http.Request) bool

// NewProxy starts a proxy to target that calls fault on every request first; it stops when the test ends.
func NewProxy(t testing.TB, target string, fault Fault) *Proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0) // aborted requests are the point of some tests
	p := &Proxy{}
	srv := newLoopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := p.Requests.Add(1)
		if fault != nil && fault(n, w, r) {
			p.Faults.Add(1)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	p.URL = srv
	return p
}

// TooManyRequests answers the first k requests with 429 and a Retry-After of retryAfter (seconds, as sent;
// "" for none), in OpenAI's error shape.
func TooManyRequests(k int64, retryAfter string) Fault {
	return func(n int64, w http.ResponseWriter, r *http.Request) bool {
		if n > k {
			return false
		}
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}`)
		return true
	}
}

// DropMidResponse lets the first k requests reach the server, then sends only the first half of the
// server's answer (status, headers with the full Content-Length, half the body) and closes the connection.
func DropMidResponse(target string, k int64) Fault {
	return func(n int64, w http.ResponseWriter, r *http.Request) bool {
		if n > k {
			return false
		}
		req, err := http.NewRequestWithContext(r.Context(), r.Method, strings.TrimRight(target, "/")+r.URL.RequestURI(), r.Body)
		if err != nil {
			panic(err)
		}
		req.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic(http.ErrAbortHandler)
		}
		conn, buf, err := hj.Hijack()
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		defer conn.Close()
		fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", resp.StatusCode,
			http.StatusText(resp.StatusCode), resp.Header.Get("Content-Type"), len(body))
		buf.Write(body[:len(body)/2])
		buf.Flush()
		return true
	}
}

// Flaky is the fault the pipeline's fault tests put in front of a teacher or judge: 429 with Retry-After 1 to
// requests 1 and 2, then requests 3 and 4 cut off mid-response (DropMidResponse), then everything passes.
func Flaky(target string) Fault {
	tooMany := TooManyRequests(2, "1")
	drop := DropMidResponse(target, 4)
	return func(n int64, w http.ResponseWriter, r *http.Request) bool {
		if n <= 2 {
			return tooMany(n, w, r)
		}
		return drop(n, w, r)
	}
}
