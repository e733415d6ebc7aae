package recipe

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is a running `bestofn serve` subprocess.
type server struct {
	name string
	// URL is its root, e.g. http://127.0.0.1:41234 (OpenAI API at URL+"/v1").
	URL  string
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// startServer runs `bin serve ARGS --addr 127.0.0.1:0` with its stderr in logPath, and returns once it listens
// and answers /readyz.
func startServer(ctx context.Context, bin, name, logPath string, args ...string) (*server, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	full := append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)
	cmd := exec.Command(bin, full...)
	cmd.Stderr = lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		lf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s server: %w", name, err)
	}
	s := &server{name: name, cmd: cmd, done: make(chan struct{}), log: lf}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		found := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(lf, "stdout:", line)
			if a, ok := strings.CutPrefix(line, "bestofn: listening on "); ok && !found {
				found = true
				addr <- strings.TrimSpace(a)
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() { cmd.Wait(); close(s.done) }()
	select {
	case a := <-addr:
		s.URL = "http://" + a
	case <-s.done:
		lf.Close()
		return nil, fmt.Errorf("%s server exited before listening (log %s): %s", name, logPath, tail(logPath))
	case <-time.After(2 * time.Minute):
		s.stop()
		return nil, fmt.Errorf("%s server did not start within 2 minutes (log %s)", name, logPath)
	case <-ctx.Done():
		s.stop()
		return nil, ctx.Err()
	}
	for deadline := time.Now().Add(time.Minute); ; {
		resp, err := http.Get(s.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("%s server at %s not ready (log %s)", name, s.URL, logPath)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop sends SIGTERM (a clean drain), then SIGKILL after 20 s, and waits for the process.
func (s *server) stop() {
	if s == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.log.Close()
}

// tail is the end of a log file, for error messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// servers stops every server it holds, once.
type servers struct {
	mu   sync.Mutex
	list []*server
}

func (ss *servers) add(s *server) *server {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.list = append(ss.list, s)
	return s
}

// stop stops s (and forgets it).
func (ss *servers) stop(s *server) {
	ss.mu.Lock()
	for i, x := range ss.list {
		if x == s {
			ss.list = append(ss.list[:i], ss.list[i+1:]...)
			break
		}
	}
	ss.mu.Unlock()
	s.stop()
}

func (ss *servers) stopAll() {
	ss.mu.Lock()
	list := ss.list
	ss.list = nil
	ss.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].stop()
	}
}
