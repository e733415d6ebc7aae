package evaluate

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// fileEnv is an evaluation environment on a directory: outputs are JSONL files appended and fsynced (so a
// second run on the same directory resumes, as on the job platform), inputs are files by id, published files
// land in dir/published. The end-to-end test through the job platform itself is TestJobPlatform.
type fileEnv struct {
	t     testing.TB
	dir   string
	files map[string]string // id -> path

	mu                          sync.Mutex
	outputs                     map[string]*fileRows
	events                      []string
	progressDone, progressTotal int64
	result                      json.RawMessage
}

func newFileEnv(t testing.TB, dir string, files map[string]string) *fileEnv {
	return &fileEnv{t: t, dir: dir, files: files, outputs: map[string]*fileRows{}}
}

func (e *fileEnv) rows(name string) (rowStore, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.outputs[name]; ok {
		return r, nil
	}
	r, err := openFileRows(filepath.Join(e.dir, name+".rows"))
	if err != nil {
		return nil, err
	}
	e.outputs[name] = r
	return r, nil
}

func (e *fileEnv) openFile(_ context.Context, id string) (io.ReadCloser, error) {
	p, ok := e.files[id]
	if !ok {
		return nil, fmt.Errorf("no file %q", id)
	}
	return os.Open(p)
}

func (e *fileEnv) rewardModelDir(_ context.Context, ref RewardModelRef) (string, error) {
	if ref.Path == "" {
		return "", errors.New("the test env has no model registry")
	}
	return ref.Path, nil
}

func (e *fileEnv) progress(done, total int64, _ string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.progressDone, e.progressTotal = done, total
}

func (e *fileEnv) event(level, msg string, _ any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events = append(e.events, level+": "+msg)
}

func (e *fileEnv) publish(_ context.Context, name, _ string, content []byte) error {
	d := filepath.Join(e.dir, "published")
	if err := os.MkdirAll(d, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(d, name), content, 0o644)
}

func (e *fileEnv) setResult(v any) error {
	b, err := json.Marshal(v)
	e.result = b
	return err
}

func (e *fileEnv) close() {
	for _, r := range e.outputs {
		r.f.Close()
	}
}

// fileRows is a rowStore in one JSONL file of {"key", "row"} lines.
type fileRows struct {
	mu   sync.Mutex
	f    *os.File
	keys []string
	rows map[string]json.RawMessage
}

func openFileRows(path string) (*fileRows, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	r := &fileRows{f: f, rows: map[string]json.RawMessage{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var line struct {
			Key string          `json:"key"`
			Row json.RawMessage `json:"row"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		r.keys = append(r.keys, line.Key)
		r.rows[line.Key] = line.Row
	}
	return r, sc.Err()
}

func (r *fileRows) Has(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.rows[key]
	return ok
}

func (r *fileRows) Get(key string) (json.RawMessage, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.rows[key]
	return v, ok
}

func (r *fileRows) Keys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.keys...)
}

func (r *fileRows) Append(key string, row any) error {
	b, err := json.Marshal(row)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.rows[key]; ok {
		return fmt.Errorf("duplicate key %q", key)
	}
	line, _ := json.Marshal(struct {
		Key string          `json:"key"`
		Row json.RawMessage `json:"row"`
	}{key, b})
	if _, err := r.f.Write(append(line, '\n')); err != nil {
		return err
	}
	if err := r.f.Sync(); err != nil {
		return err
	}
	r.keys = append(r.keys, key)
	r.rows[key] = bytes.Clone(b)
	return nil
}
