package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/bestofn/bestofn/jobs"
)

// fileRun drives a job type's logic the way the platform does, with every per-item output in a JSONL file under
// dir (appended and fsynced), so that a second fileRun on the same dir is the job's next attempt after a crash.
type fileRun struct {
	dir     string
	job     jobs.Job
	mu      sync.Mutex
	outputs map[string]*fileRows
	files   map[string][]byte // published, by name
	purpose map[string]string
	result  json.RawMessage
	events  []jobs.Event
	done    int64
	total   int64
}

func newFileRun(t *testing.T, dir string, attempt int, params any) *fileRun {
	t.Helper()
	p, err := json.Marshal(params)
	if err != nil {
		t.Fatal(err)
	}
	return &fileRun{dir: dir, job: jobs.Job{ID: "job-test", Params: p, Attempts: attempt},
		outputs: map[string]*fileRows{}, files: map[string][]byte{}, purpose: map[string]string{}}
}

func (r *fileRun) Job() jobs.Job { return r.job }

func (r *fileRun) Progress(done, total int64, unit string) {
	r.mu.Lock()
	r.done, r.total = done, total
	r.mu.Unlock()
}

func (r *fileRun) Metrics(step int64, values map[string]float64) {
	r.Event("metrics", "", map[string]any{"step": step, "values": values})
}

func (r *fileRun) Event(level, msg string, data any) {
	b, _ := json.Marshal(data)
	r.mu.Lock()
	r.events = append(r.events, jobs.Event{Seq: int64(len(r.events) + 1), Level: level, Message: msg, Data: b})
	r.mu.Unlock()
}

func (r *fileRun) Output(name string) (RowStore, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if o, ok := r.outputs[name]; ok {
		return o, nil
	}
	o, err := openFileRows(filepath.Join(r.dir, name+".rows"))
	if err != nil {
		return nil, err
	}
	r.outputs[name] = o
	return o, nil
}

func (r *fileRun) OpenFile(ctx context.Context, id string) (io.ReadCloser, jobs.File, error) {
	return nil, jobs.File{}, jobs.ErrNotFound
}

func (r *fileRun) PublishFile(ctx context.Context, name, purpose string, content io.Reader) (jobs.File, error) {
	b, err := io.ReadAll(content)
	if err != nil {
		return jobs.File{}, err
	}
	r.mu.Lock()
	r.files[name], r.purpose[name] = b, purpose
	r.mu.Unlock()
	return jobs.File{ID: "file-" + name, Filename: name, Purpose: purpose, Bytes: int64(len(b))}, nil
}

func (r *fileRun) SetResult(v any) error {
	b, err := json.Marshal(v)
	r.mu.Lock()
	r.result = b
	r.mu.Unlock()
	return err
}

func (r *fileRun) ModelPath(ctx context.Context, name string, version int) (string, jobs.ModelVersion, error) {
	return "", jobs.ModelVersion{}, jobs.ErrNotFound
}

// everything is all the job stored or reported, for leak checks.
func (r *fileRun) everything() string {
	var b strings.Builder
	b.Write(r.job.Params)
	for _, e := range r.events {
		b.WriteString(e.Message)
		b.Write(e.Data)
	}
	for _, f := range r.files {
		b.Write(f)
	}
	b.Write(r.result)
	entries, _ := os.ReadDir(r.dir)
	for _, e := range entries {
		c, _ := os.ReadFile(filepath.Join(r.dir, e.Name()))
		b.Write(c)
	}
	return b.String()
}

// fileRows is a RowStore in a JSONL file of {"key", "row"} lines, each appended and fsynced; a torn last line
// is ignored on open.
type fileRows struct {
	mu   sync.Mutex
	f    *os.File
	keys []string
	rows map[string]json.RawMessage
}

func openFileRows(path string) (*fileRows, error) {
	o := &fileRows{rows: map[string]json.RawMessage{}}
	if b, err := os.ReadFile(path); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			var line struct {
				Key string          `json:"key"`
				Row json.RawMessage `json:"row"`
			}
			if json.Unmarshal(sc.Bytes(), &line) != nil {
				continue
			}
			o.keys = append(o.keys, line.Key)
			o.rows[line.Key] = line.Row
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	o.f = f
	return o, nil
}

func (o *fileRows) Has(key string) bool { _, ok := o.Get(key); return ok }

func (o *fileRows) Get(key string) (json.RawMessage, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	r, ok := o.rows[key]
	return r, ok
}

func (o *fileRows) Keys() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.keys...)
}

func (o *fileRows) Len() int { return len(o.Keys()) }

func (o *fileRows) Append(key string, row any) error {
	b, err := json.Marshal(row)
	if err != nil {
		return err
	}
	line, _ := json.Marshal(map[string]any{"key": key, "row": json.RawMessage(b)})
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.rows[key]; ok {
		return fmt.Errorf("row %q exists", key)
	}
	if _, err := o.f.Write(append(line, '\n')); err != nil {
		return err
	}
	if err := o.f.Sync(); err != nil {
		return err
	}
	o.rows[key] = b
	o.keys = append(o.keys, key)
	return nil
}

// lines splits a published JSONL file into decoded rows.
func lines[T any](t *testing.T, b []byte) []T {
	t.Helper()
	var out []T
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var v T
		if err := json.Unmarshal(l, &v); err != nil {
			t.Fatalf("bad line %s: %v", l, err)
		}
		out = append(out, v)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
