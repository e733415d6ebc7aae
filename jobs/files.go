package jobs

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Built-in file purposes.
const (
	PurposeModel       = "model"        // a generator, one GGUF file
	PurposeRewardModel = "reward-model" // a reward model directory as one tar file
	PurposeResults     = "results"      // anything a job produces for people to read
)

func builtinPurposes() []Purpose {
	return []Purpose{
		{Name: PurposeModel, Description: "a generator model: one GGUF file"},
		{Name: PurposeRewardModel, Description: "a reward model: a tar of its directory (model.onnx, tokenizer.json, config.json)"},
		{Name: PurposeResults, Description: "results a job produced (any content)"},
	}
}

// maxLineBytes bounds one line of an upload whose purpose validates lines.
const maxLineBytes = 16 << 20

// JSONObjectLine returns a Purpose.ValidateLine that accepts a line holding one JSON object with a non-empty
// string in each of the required fields, e.g. JSONObjectLine("instruction", "output").
func JSONObjectLine(required ...string) func(line []byte) error {
	return func(line []byte) error {
		var row map[string]json.RawMessage
		if err := json.Unmarshal(line, &row); err != nil {
			return fmt.Errorf("not a JSON object: %v", err)
		}
		for _, field := range required {
			raw, ok := row[field]
			if !ok {
				return fmt.Errorf("missing field %q", field)
			}
			var s string
			if err := json.Unmarshal(raw, &s); err != nil || s == "" {
				return fmt.Errorf("field %q must be a non-empty string", field)
			}
		}
		return nil
	}
}

// Purposes returns the file purposes this Service accepts, by name.
func (s *Service) Purposes() []Purpose {
	list := make([]Purpose, 0, len(s.purposes))
	for _, p := range s.purposes {
		list = append(list, p)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return list
}

// UploadFile stores an uploaded file. filename is kept as metadata only (never a path); purpose must be known;
// a purpose with a ValidateLine rejects the file with a *ParamError (Field "file", Line set) naming the first
// bad row. Errors: *ParamError, ErrTooLarge.
func (s *Service) UploadFile(ctx context.Context, filename, purpose string, content io.Reader) (File, error) {
	if err := checkFilename("filename", filename); err != nil {
		return File{}, err
	}
	f, path, err := s.storeContent(ctx, "purpose", purpose, content)
	if err != nil {
		return File{}, err
	}
	f.Filename = filename
	if err := s.store.CreateFile(ctx, f); err != nil {
		os.Remove(path)
		return File{}, fmt.Errorf("jobs: upload %q: %w", filename, err)
	}
	return f, nil
}

// File returns a file's metadata (ErrNotFound).
func (s *Service) File(ctx context.Context, id string) (File, error) { return s.store.File(ctx, id) }

// Files lists files, newest first; purpose "" means all.
func (s *Service) Files(ctx context.Context, purpose string) ([]File, error) {
	return s.store.Files(ctx, purpose)
}

// OpenFile opens a file's content.
func (s *Service) OpenFile(ctx context.Context, id string) (io.ReadCloser, File, error) {
	f, err := s.store.File(ctx, id)
	if err != nil {
		return nil, f, err
	}
	r, err := os.Open(s.contentPath(f.ID))
	if err != nil {
		return nil, f, fmt.Errorf("jobs: content of %s: %w", id, err)
	}
	return r, f, nil
}

// FilePath is the local path of a file's content (read only).
func (s *Service) FilePath(ctx context.Context, id string) (string, error) {
	f, err := s.store.File(ctx, id)
	if err != nil {
		return "", err
	}
	return s.contentPath(f.ID), nil
}

// DeleteFile deletes a file (ErrConflict while a queued or running job or a registered model uses it).
func (s *Service) DeleteFile(ctx context.Context, id string) error {
	if err := s.store.DeleteFile(ctx, id); err != nil {
		return err
	}
	s.removeContent(id)
	return nil
}

// removeContent removes a file's content and its extracted model directory, if any.
func (s *Service) removeContent(id string) {
	if err := os.Remove(s.contentPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("jobs: remove file content", "file", id, "err", err)
	}
	os.RemoveAll(filepath.Join(s.dirs.models, id))
}

// contentPath is where a file's content lives; ids are made by this package (checked by the store lookups
// that precede every use), never by users.
func (s *Service) contentPath(id string) string {
	return filepath.Join(s.dirs.files, filepath.Base(id))
}

// storeContent writes content to a new file id under the data directory (temporary name, fsync, rename, fsync
// of the directory) and returns its record (without filename) and path. purposeField names the purpose in
// errors ("purpose" for uploads).
func (s *Service) storeContent(ctx context.Context, purposeField, purpose string, content io.Reader) (File, string, error) {
	p, ok := s.purposes[purpose]
	if !ok {
		names := []string{}
		for _, p := range s.Purposes() {
			names = append(names, p.Name)
		}
		return File{}, "", &ParamError{Field: purposeField, Message: fmt.Sprintf("unknown purpose %q (known: %s)", purpose, strings.Join(names, ", "))}
	}
	tmp, err := os.CreateTemp(s.dirs.files, ".tmp-*")
	if err != nil {
		return File{}, "", fmt.Errorf("jobs: store file: %w", err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	hash := sha256.New()
	sinks := []io.Writer{tmp, hash}
	var lines *lineChecker
	if p.ValidateLine != nil {
		lines = &lineChecker{validate: p.ValidateLine}
		sinks = append(sinks, lines)
	}
	limit := s.cfg.MaxFileBytes
	n, err := io.Copy(io.MultiWriter(sinks...), &io.LimitedReader{R: ctxReader{ctx, content}, N: limit + 1})
	var pe *ParamError
	switch {
	case errors.As(err, &pe):
		return File{}, "", pe
	case err != nil:
		return File{}, "", fmt.Errorf("jobs: store file: %w", err)
	case n > limit:
		return File{}, "", fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	if lines != nil {
		if err := lines.finish(); err != nil {
			return File{}, "", err
		}
	}
	if err := tmp.Sync(); err != nil {
		return File{}, "", fmt.Errorf("jobs: store file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return File{}, "", fmt.Errorf("jobs: store file: %w", err)
	}
	f := File{
		ID:        "file-" + randomString(24),
		Object:    "file",
		Bytes:     n,
		Purpose:   purpose,
		SHA256:    hex.EncodeToString(hash.Sum(nil)),
		CreatedAt: time.Now().Unix(),
	}
	path := s.contentPath(f.ID)
	if err := os.Rename(tmp.Name(), path); err != nil {
		return File{}, "", fmt.Errorf("jobs: store file: %w", err)
	}
	tmp = nil
	if err := syncDir(s.dirs.files); err != nil {
		os.Remove(path)
		return File{}, "", fmt.Errorf("jobs: store file: %w", err)
	}
	return f, path, nil
}

// checkFilename rejects names that are not plain file names: empty, too long, not UTF-8, with control
// characters or path separators, or "." and "..".
func checkFilename(field, name string) error {
	bad := func(msg string) error { return &ParamError{Field: field, Message: msg} }
	switch {
	case name == "":
		return bad("is required")
	case len(name) > 255:
		return bad("is longer than 255 bytes")
	case !utf8.ValidString(name):
		return bad("is not valid UTF-8")
	case name == "." || name == "..":
		return bad("must be a file name, not " + name)
	case strings.ContainsAny(name, `/\`):
		return bad(fmt.Sprintf("must be a file name, not a path: %q", name))
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return bad("must not contain control characters")
	}
	return nil
}

// lineChecker validates each line written to it; the first bad line's *ParamError is its Write error.
type lineChecker struct {
	validate func([]byte) error
	line     int    // lines seen
	partial  []byte // the line being written
}

func (c *lineChecker) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			c.partial = append(c.partial, p...)
			if len(c.partial) > maxLineBytes {
				return 0, &ParamError{Field: "file", Line: c.line + 1, Message: fmt.Sprintf("line is longer than %d bytes", maxLineBytes)}
			}
			break
		}
		c.partial = append(c.partial, p[:i]...)
		if err := c.check(); err != nil {
			return 0, err
		}
		p = p[i+1:]
	}
	return n, nil
}

func (c *lineChecker) check() error {
	c.line++
	line := bytes.TrimSuffix(c.partial, []byte("\r"))
	c.partial = c.partial[:0]
	if len(bytes.TrimSpace(line)) == 0 {
		return nil
	}
	if !utf8.Valid(line) {
		return &ParamError{Field: "file", Line: c.line, Message: "not valid UTF-8"}
	}
	if err := c.validate(line); err != nil {
		return &ParamError{Field: "file", Line: c.line, Message: err.Error()}
	}
	return nil
}

// finish checks a last line without a newline.
func (c *lineChecker) finish() error {
	if len(c.partial) == 0 {
		return nil
	}
	return c.check()
}

// ctxReader stops reading when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// syncDir fsyncs a directory so that a rename or a new entry in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// removeStaleTemps removes temporary files and directories left by a crash. Only old ones: replicas sharing the
// data directory may be writing theirs right now.
func (s *Service) removeStaleTemps() {
	for _, dir := range []string{s.dirs.files, s.dirs.models} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), ".tmp-") {
				continue
			}
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > time.Hour {
				os.RemoveAll(filepath.Join(dir, e.Name()))
			}
		}
	}
}

const idAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// randomString returns n random characters of [0-9A-Za-z] (crypto/rand, unbiased), as OpenAI's ids have.
func randomString(n int) string {
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/2)
	for len(out) < n {
		rand.Read(buf)
		for _, b := range buf {
			if int(b) < 256/len(idAlphabet)*len(idAlphabet) && len(out) < n {
				out = append(out, idAlphabet[int(b)%len(idAlphabet)])
			}
		}
	}
	return string(out)
}
