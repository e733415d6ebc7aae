package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestABLogRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ab.jsonl")
	l, err := OpenABLog(path, ABLogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config) { c.ABLog = l })
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := []string{"B", "R1"}[i%2]
			e.do(t, "POST", "/v1/chat/completions", `{"model":"ab","messages":[{"role":"user","content":"question"}]}`, HeaderVariant, v)
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Write(ABRecord{}); err == nil {
		t.Error("write after close succeeded")
	}
	count := map[string]int{}
	for _, rec := range readABLog(t, path) {
		count[rec.Variant]++
		if rec.Prompt != "question" || rec.RequestID == "" || rec.Answer == "" || rec.Model != "ab" {
			t.Errorf("record %+v", rec)
		}
		switch rec.Variant {
		case "R1":
			if len(rec.Scores) != 5 || rec.N != 5 || rec.Scores[rec.Chosen] != maxf(rec.Scores) {
				t.Errorf("R1 record: chosen %d scores %v", rec.Chosen, rec.Scores)
			}
		case "B":
			if len(rec.Scores) != 0 || rec.N != 1 {
				t.Errorf("B record %+v", rec)
			}
		}
	}
	if count["B"] != 10 || count["R1"] != 10 {
		t.Errorf("records per variant %v", count)
	}
}

func readABLog(t *testing.T, path string) []ABRecord {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []ABRecord
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var rec ABRecord
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

func maxf(xs []float32) float32 {
	m := xs[0]
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

// slowFile is an A/B log file whose fsync takes delay, as a busy disk's does, and counts its calls.
type slowFile struct {
	*os.File
	delay         time.Duration
	syncs, writes atomic.Int64
}

func (f *slowFile) Write(b []byte) (int, error) { f.writes.Add(1); return f.File.Write(b) }
func (f *slowFile) Sync() error {
	f.syncs.Add(1)
	time.Sleep(f.delay)
	return f.File.Sync()
}

// TestABLogOffRequestPath checks that disk latency does not reach the requests: with an fsync of 200 ms, 40
// concurrent requests all answer well before one fsync could have passed for each, the records are group-
// committed (far fewer writes and fsyncs than records), and Close writes every one of them.
func TestABLogOffRequestPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ab.jsonl")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	sf := &slowFile{File: f, delay: 200 * time.Millisecond}
	l := newABLog(sf, ABLogOptions{})
	e := newEnv(t, func(c *Config) { c.ABLog = l })
	const n = 40
	start := time.Now()
	var wg sync.WaitGroup
	var slowest atomic.Int64
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			if w := e.do(t, "POST", "/v1/completions", `{"model":"raw","prompt":"q`+strconv.Itoa(i)+`"}`); w.Code != 200 {
				t.Errorf("status %d", w.Code)
			}
			if d := int64(time.Since(t0)); d > slowest.Load() {
				slowest.Store(d)
			}
		}()
	}
	wg.Wait()
	if d := time.Duration(slowest.Load()); d >= sf.delay {
		t.Errorf("slowest request took %v: it waited for the disk (fsync %v)", d, sf.delay)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	recs := readABLog(t, path)
	if len(recs) != n {
		t.Fatalf("%d records after Close, want %d", len(recs), n)
	}
	if w, s := sf.writes.Load(), sf.syncs.Load(); w >= n/2 || s >= n/2 {
		t.Errorf("%d writes and %d fsyncs for %d records: not group-committed", w, s, n)
	}
	t.Logf("%d records in %d writes, %d fsyncs, %v", n, sf.writes.Load(), sf.syncs.Load(), time.Since(start))
}

// TestABLogReopenAppends checks that reopening appends after the existing lines and that a bad path fails.
func TestABLogReopenAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ab.jsonl")
	for _, ids := range []string{"abc", "de"} {
		l, err := OpenABLog(path, ABLogOptions{QueueSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if err := l.Write(ABRecord{RequestID: string(id)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	var ids string
	for _, rec := range readABLog(t, path) {
		ids += rec.RequestID
	}
	if ids != "abcde" {
		t.Errorf("records %q", ids)
	}
	if _, err := OpenABLog(filepath.Join(t.TempDir(), "missing", "ab.jsonl"), ABLogOptions{}); err == nil || !strings.HasPrefix(err.Error(), "server: ") {
		t.Errorf("bad path: %v", err)
	}
}

// TestABLogKill9 runs a process that logs records, waits until Flush says 100 are on disk, then kills it
// with SIGKILL while it keeps logging: the file holds at least those 100, and every line is a whole record.
func TestABLogKill9(t *testing.T) {
	if os.Getenv("BESTOFN_ABLOG_CHILD") != "" {
		abLogChild()
		return
	}
	path := filepath.Join(t.TempDir(), "ab.jsonl")
	cmd := exec.Command(os.Args[0], "-test.run=^TestABLogKill9$")
	cmd.Env = append(os.Environ(), "BESTOFN_ABLOG_CHILD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	flushed := false
	for sc.Scan() {
		if sc.Text() == "flushed 100" {
			flushed = true
			break
		}
	}
	time.Sleep(20 * time.Millisecond) // more records on their way
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if !flushed {
		t.Fatal("the child never flushed")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(b, []byte("\n"))
	complete := 0
	for i, line := range lines {
		var rec ABRecord
		switch err := json.Unmarshal(line, &rec); {
		case err == nil:
			if rec.RequestID != fmt.Sprint(complete) {
				t.Fatalf("line %d is record %q, want %d", i, rec.RequestID, complete)
			}
			complete++
		case i == len(lines)-1 && len(line) == 0:
		default:
			t.Errorf("line %d is not a whole record: %q", i, line)
		}
	}
	if complete < 100 {
		t.Errorf("%d records survived, want at least the 100 flushed", complete)
	}
	t.Logf("%d records survived the kill", complete)
}

func abLogChild() {
	l, err := OpenABLog(os.Getenv("BESTOFN_ABLOG_CHILD"), ABLogOptions{})
	if err != nil {
		panic(err)
	}
	for i := 0; ; i++ {
		if err := l.Write(ABRecord{RequestID: fmt.Sprint(i), Prompt: strings.Repeat("p", 100)}); err != nil {
			panic(err)
		}
		if i == 99 {
			if err := l.Flush(); err != nil {
				panic(err)
			}
			fmt.Println("flushed 100")
		}
		if i > 99 {
			time.Sleep(100 * time.Microsecond)
		}
	}
}
