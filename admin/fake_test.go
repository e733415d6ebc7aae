package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/bestofn/bestofn/jobs"
)

// fakeService is an in-memory Service for the HTTP layer's parsing, auth and error mapping; the platform
// itself is tested with the real jobs.Service (admin_e2e_test.go and cmd/bestofn's process tests).
type fakeService struct {
	mu       sync.Mutex
	files    map[string]jobs.File
	content  map[string][]byte
	jobs     map[string]jobs.Job
	events   map[string][]jobs.Event
	models   []jobs.ModelVersion
	acts     []jobs.Activation
	maxBytes int64
	n        int
}

func newFakeService(maxBytes int64) *fakeService {
	return &fakeService{files: map[string]jobs.File{}, content: map[string][]byte{}, jobs: map[string]jobs.Job{},
		events: map[string][]jobs.Event{}, maxBytes: maxBytes}
}

func (f *fakeService) id(prefix string) string { f.n++; return fmt.Sprintf("%s-%d", prefix, f.n) }

func (f *fakeService) Types() []string { return []string{"sleep", "count"} }

func (f *fakeService) UploadFile(ctx context.Context, filename, purpose string, content io.Reader) (jobs.File, error) {
	if purpose != "data" && purpose != "model" {
		return jobs.File{}, &jobs.ParamError{Field: "purpose", Message: "unknown purpose"}
	}
	b, err := io.ReadAll(io.LimitReader(content, f.maxBytes+1))
	if err != nil {
		return jobs.File{}, fmt.Errorf("jobs: reading upload: %w", err)
	}
	if int64(len(b)) > f.maxBytes {
		return jobs.File{}, jobs.ErrTooLarge
	}
	if purpose == "data" {
		for i, line := range bytes.Split(b, []byte("\n")) {
			if len(bytes.TrimSpace(line)) > 0 && !json.Valid(line) {
				return jobs.File{}, &jobs.ParamError{Field: "file", Line: i + 1, Message: "not a JSON object"}
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	sum := sha256.Sum256(b)
	file := jobs.File{ID: f.id("file"), Object: "file", Bytes: int64(len(b)), Filename: filename, Purpose: purpose,
		SHA256: hex.EncodeToString(sum[:])}
	f.files[file.ID], f.content[file.ID] = file, b
	return file, nil
}

func (f *fakeService) File(ctx context.Context, id string) (jobs.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	file, ok := f.files[id]
	if !ok {
		return file, fmt.Errorf("%w: file %s", jobs.ErrNotFound, id)
	}
	return file, nil
}

func (f *fakeService) Files(ctx context.Context, purpose string) ([]jobs.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []jobs.File
	for _, file := range f.files {
		if purpose == "" || file.Purpose == purpose {
			out = append(out, file)
		}
	}
	return out, nil
}

func (f *fakeService) OpenFile(ctx context.Context, id string) (io.ReadCloser, jobs.File, error) {
	file, err := f.File(ctx, id)
	if err != nil {
		return nil, file, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return io.NopCloser(bytes.NewReader(f.content[id])), file, nil
}

func (f *fakeService) DeleteFile(ctx context.Context, id string) error {
	if _, err := f.File(ctx, id); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.models {
		if m.FileID == id {
			return fmt.Errorf("%w: file %s is model %s v%d", jobs.ErrConflict, id, m.Name, m.Version)
		}
	}
	delete(f.files, id)
	return nil
}

func (f *fakeService) Submit(ctx context.Context, typ string, params json.RawMessage) (jobs.Job, error) {
	if typ != "sleep" && typ != "count" {
		return jobs.Job{}, fmt.Errorf("%w %q", jobs.ErrUnknownType, typ)
	}
	var p struct {
		N int `json:"n"`
	}
	if err := jobs.DecodeParams(params, &p); err != nil {
		var pe *jobs.ParamError
		if errors.As(err, &pe) {
			pe.Field = "params." + pe.Field
		}
		return jobs.Job{}, err
	}
	if p.N < 0 {
		return jobs.Job{}, &jobs.ParamError{Field: "params.n", Message: "must be >= 0"}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	j := jobs.Job{ID: f.id("job"), Object: "job", Type: typ, Status: jobs.StatusQueued, Params: params}
	f.jobs[j.ID] = j
	return j, nil
}

func (f *fakeService) Job(ctx context.Context, id string) (jobs.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j, ok := f.jobs[id]
	if !ok {
		return j, fmt.Errorf("%w: job %s", jobs.ErrNotFound, id)
	}
	return j, nil
}

func (f *fakeService) Jobs(ctx context.Context, fl jobs.JobFilter) ([]jobs.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []jobs.Job
	for _, j := range f.jobs {
		if (fl.Type == "" || j.Type == fl.Type) && (fl.Status == "" || j.Status == fl.Status) {
			out = append(out, j)
		}
	}
	return out, nil
}

// setJob changes a job and appends an event, as a worker would.
func (f *fakeService) setJob(id string, status jobs.Status, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.jobs[id]
	j.Status = status
	f.jobs[id] = j
	evs := f.events[id]
	f.events[id] = append(evs, jobs.Event{Seq: int64(len(evs) + 1), JobID: id, Level: "info", Message: msg})
}

func (f *fakeService) Events(ctx context.Context, id string, after int64, limit int) ([]jobs.Event, error) {
	if _, err := f.Job(ctx, id); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []jobs.Event
	for _, ev := range f.events[id] {
		if ev.Seq > after && (limit == 0 || len(out) < limit) {
			out = append(out, ev)
		}
	}
	return out, nil
}

func (f *fakeService) Cancel(ctx context.Context, id string) (jobs.Job, error) {
	j, err := f.Job(ctx, id)
	if err != nil {
		return j, err
	}
	if j.Status.Finished() {
		return j, fmt.Errorf("%w: job %s is %s", jobs.ErrConflict, id, j.Status)
	}
	f.setJob(id, jobs.StatusCancelled, "cancelled")
	return f.Job(ctx, id)
}

func (f *fakeService) Retry(ctx context.Context, id string) (jobs.Job, error) {
	j, err := f.Job(ctx, id)
	if err != nil {
		return j, err
	}
	if j.Status != jobs.StatusFailed && j.Status != jobs.StatusCancelled {
		return j, fmt.Errorf("%w: job %s is %s", jobs.ErrConflict, id, j.Status)
	}
	f.setJob(id, jobs.StatusQueued, "retried")
	return f.Job(ctx, id)
}

func (f *fakeService) RegisterModel(ctx context.Context, spec jobs.ModelSpec) (jobs.ModelVersion, error) {
	file, err := f.File(ctx, spec.FileID)
	if err != nil {
		return jobs.ModelVersion{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	v := 1
	for _, m := range f.models {
		if m.Name == spec.Name {
			v = m.Version + 1
		}
	}
	mv := jobs.ModelVersion{Name: spec.Name, Kind: spec.Kind, Version: v, FileID: file.ID, SHA256: file.SHA256}
	f.models = append(f.models, mv)
	return mv, nil
}

func (f *fakeService) Models(ctx context.Context) ([]jobs.ModelVersion, []jobs.Activation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]jobs.ModelVersion(nil), f.models...), append([]jobs.Activation(nil), f.acts...), nil
}

func (f *fakeService) ModelPath(ctx context.Context, name string, version int) (string, jobs.ModelVersion, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var found *jobs.ModelVersion
	for i, m := range f.models {
		if m.Name == name && (version == 0 || m.Version == version) {
			found = &f.models[i]
		}
	}
	if found == nil {
		return "", jobs.ModelVersion{}, fmt.Errorf("%w: model %s version %d", jobs.ErrNotFound, name, version)
	}
	return "/models/" + found.FileID, *found, nil
}

func (f *fakeService) RecordActivation(ctx context.Context, a jobs.Activation) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.acts = append(f.acts, a)
	return nil
}

// fakeActivator accepts served names "m" and "m:r1" and fails to load paths containing "broken".
type fakeActivator struct {
	mu      sync.Mutex
	serving map[string]string
}

func (a *fakeActivator) Activate(ctx context.Context, mv jobs.ModelVersion, path string, serveAs []string) ([]string, error) {
	if len(serveAs) == 0 {
		serveAs = []string{"m"}
	}
	for _, n := range serveAs {
		if n != "m" && n != "m:r1" {
			return nil, &jobs.ParamError{Field: "serve_as", Message: "no served model " + n}
		}
	}
	if strings.Contains(mv.Name, "broken") {
		return nil, fmt.Errorf("%w: %s: bad magic", ErrLoad, path)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, n := range serveAs {
		a.serving[n] = fmt.Sprintf("%s:%d", mv.Name, mv.Version)
	}
	return serveAs, nil
}

func (a *fakeActivator) Serving() []Served {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Served
	for _, n := range []string{"m", "m:r1"} {
		out = append(out, Served{Name: n, Generator: ServedModel{Path: a.serving[n]}})
	}
	return out
}
