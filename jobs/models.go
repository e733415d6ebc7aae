package jobs

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

var modelName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// RegisterModel registers a new version of spec.Name from a file or a job output. Errors: *ParamError,
// ErrNotFound, ErrConflict (the job has not succeeded; the name is registered with another kind).
// Registering the same file under the same name again returns the version it already is.
func (s *Service) RegisterModel(ctx context.Context, spec ModelSpec) (ModelVersion, error) {
	return s.registerModel(ctx, spec, "")
}

// registerModel registers spec; runningJob is the job calling it through Run.RegisterModel, if any.
func (s *Service) registerModel(ctx context.Context, spec ModelSpec, runningJob string) (ModelVersion, error) {
	if !modelName.MatchString(spec.Name) {
		return ModelVersion{}, &ParamError{Field: "name", Message: "want 1-128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit"}
	}
	if spec.Kind != KindGenerator && spec.Kind != KindReward {
		return ModelVersion{}, &ParamError{Field: "kind", Message: fmt.Sprintf("must be %q or %q", KindGenerator, KindReward)}
	}
	var f File
	var err error
	switch {
	case spec.FileID != "" && spec.JobID != "" && runningJob == "":
		return ModelVersion{}, &ParamError{Field: "file_id", Message: "give file_id or job_id, not both"}
	case spec.FileID != "":
		if f, err = s.store.File(ctx, spec.FileID); err != nil {
			return ModelVersion{}, err
		}
	case spec.JobID != "":
		if f, err = s.jobModelOutput(ctx, spec); err != nil {
			return ModelVersion{}, err
		}
	default:
		return ModelVersion{}, &ParamError{Field: "file_id", Message: "file_id or job_id is required"}
	}
	if err := s.checkModelContent(f, spec.Kind); err != nil {
		return ModelVersion{}, err
	}
	jobID := f.JobID
	if runningJob != "" {
		jobID = runningJob
	}
	v, err := s.store.CreateModelVersion(ctx, ModelVersion{
		Name:      spec.Name,
		Kind:      spec.Kind,
		FileID:    f.ID,
		JobID:     jobID,
		SHA256:    f.SHA256,
		CreatedAt: time.Now().Unix(),
		Metadata:  spec.Metadata,
	})
	if err != nil {
		return v, fmt.Errorf("jobs: register model %s: %w", spec.Name, err)
	}
	return v, nil
}

// jobModelOutput picks the output of a succeeded job that spec names.
func (s *Service) jobModelOutput(ctx context.Context, spec ModelSpec) (File, error) {
	j, err := s.store.Job(ctx, spec.JobID)
	if err != nil {
		return File{}, err
	}
	if j.Status != StatusSucceeded {
		return File{}, fmt.Errorf("%w: job %s is %s; register its output once it has succeeded", ErrConflict, j.ID, j.Status)
	}
	purpose := PurposeModel
	if spec.Kind == KindReward {
		purpose = PurposeRewardModel
	}
	var found []File
	var names []string
	for _, id := range j.Outputs {
		f, err := s.store.File(ctx, id)
		if err != nil {
			return File{}, err
		}
		names = append(names, f.Filename)
		if (spec.Output != "" && f.Filename == spec.Output) || (spec.Output == "" && f.Purpose == purpose) {
			found = append(found, f)
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case spec.Output != "":
		return File{}, &ParamError{Field: "output", Message: fmt.Sprintf("job %s has no output %q (it has %s)", j.ID, spec.Output, strings.Join(names, ", "))}
	case len(found) == 0:
		return File{}, &ParamError{Field: "output", Message: fmt.Sprintf("job %s has no output of purpose %q; name one of %s", j.ID, purpose, strings.Join(names, ", "))}
	default:
		return File{}, &ParamError{Field: "output", Message: fmt.Sprintf("job %s has several outputs of purpose %q; name one", j.ID, purpose)}
	}
}

// checkModelContent checks that a file is what kind says: a GGUF file, or a tar of a reward model directory.
func (s *Service) checkModelContent(f File, kind ModelKind) error {
	r, err := os.Open(s.contentPath(f.ID))
	if err != nil {
		return fmt.Errorf("jobs: model file %s: %w", f.ID, err)
	}
	defer r.Close()
	if kind == KindGenerator {
		magic := make([]byte, 4)
		if _, err := io.ReadFull(r, magic); err != nil || !bytes.Equal(magic, []byte("GGUF")) {
			return &ParamError{Field: "file_id", Message: fmt.Sprintf("file %s (%s) is not a GGUF file", f.ID, f.Filename)}
		}
		return nil
	}
	var names []string
	if err := walkTar(r, func(h *tar.Header, name string, _ io.Reader) error {
		if h.Typeflag != tar.TypeDir {
			names = append(names, name)
		}
		return nil
	}); err != nil {
		return &ParamError{Field: "file_id", Message: fmt.Sprintf("file %s (%s): %v", f.ID, f.Filename, err)}
	}
	if modelRootIn(names) == "" {
		return &ParamError{Field: "file_id", Message: fmt.Sprintf("file %s (%s) is not a reward model tar: no model.onnx at its top (or in its one top directory)", f.ID, f.Filename)}
	}
	return nil
}

// modelRootIn returns the directory holding model.onnx among a tar's file names: "." or its one top directory;
// "" if neither.
func modelRootIn(names []string) string {
	for _, n := range names {
		if n == "model.onnx" {
			return "."
		}
	}
	for _, n := range names {
		if dir, file := path.Split(n); file == "model.onnx" && strings.Count(dir, "/") == 1 {
			return strings.TrimSuffix(dir, "/")
		}
	}
	return ""
}

// Models lists every registered version and the current activations.
func (s *Service) Models(ctx context.Context) ([]ModelVersion, []Activation, error) {
	versions, err := s.store.ModelVersions(ctx)
	if err != nil {
		return nil, nil, err
	}
	acts, err := s.Activations(ctx)
	return versions, acts, err
}

// ModelPath returns the local path of a version (version 0: the latest): the GGUF file of a generator, the
// extracted directory of a reward model (extracted once, atomically, on first use).
func (s *Service) ModelPath(ctx context.Context, name string, version int) (string, ModelVersion, error) {
	v, err := s.store.ModelVersion(ctx, name, version)
	if err != nil {
		return "", v, err
	}
	if v.Kind == KindGenerator {
		p := s.contentPath(v.FileID)
		if _, err := os.Stat(p); err != nil {
			return "", v, fmt.Errorf("jobs: model %s version %d: %w", name, v.Version, err)
		}
		return p, v, nil
	}
	dir, err := s.extractModel(v.FileID)
	if err != nil {
		return "", v, fmt.Errorf("jobs: model %s version %d: %w", name, v.Version, err)
	}
	return dir, v, nil
}

// extractModel extracts a reward model tar into the data directory once: into a temporary directory, fsynced,
// then renamed into place, so a crash never leaves a half-extracted model where one is looked for.
func (s *Service) extractModel(fileID string) (string, error) {
	s.extracts.Lock()
	defer s.extracts.Unlock()
	dest := filepath.Join(s.dirs.models, filepath.Base(fileID))
	if _, err := os.Stat(dest); err != nil {
		if err := s.extractTo(fileID, dest); err != nil {
			return "", err
		}
	}
	var names []string
	err := filepath.WalkDir(dest, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dest, p)
			names = append(names, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		return "", err
	}
	root := modelRootIn(names)
	if root == "" {
		return "", fmt.Errorf("%s has no model.onnx", dest)
	}
	return filepath.Join(dest, root), nil
}

func (s *Service) extractTo(fileID, dest string) error {
	src, err := os.Open(s.contentPath(fileID))
	if err != nil {
		return err
	}
	defer src.Close()
	tmp, err := os.MkdirTemp(s.dirs.models, ".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := extractTar(src, tmp); err != nil {
		return fmt.Errorf("extract %s: %w", fileID, err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		if _, statErr := os.Stat(dest); statErr == nil {
			return nil // another replica extracted it first
		}
		return err
	}
	return syncDir(s.dirs.models)
}

// walkTar calls f on each entry of a tar with its cleaned name, rejecting entries that would escape the
// directory they are extracted into (absolute names, "..") and anything but regular files and directories
// (links could point anywhere).
func walkTar(r io.Reader, f func(h *tar.Header, name string, content io.Reader) error) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("not a valid tar file: %w", err)
		}
		name := strings.TrimSuffix(path.Clean(strings.TrimPrefix(h.Name, "./")), "/")
		if name == "." {
			continue
		}
		if !filepath.IsLocal(filepath.FromSlash(name)) || strings.Contains(h.Name, `\`) {
			return fmt.Errorf("tar entry %q escapes the directory", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeDir:
		default:
			return fmt.Errorf("tar entry %q: only regular files and directories are allowed", h.Name)
		}
		if err := f(h, name, tr); err != nil {
			return err
		}
	}
}

// extractTar extracts a tar into dir (which exists), fsyncing every file and directory.
func extractTar(r io.Reader, dir string) error {
	dirs := []string{dir}
	err := walkTar(r, func(h *tar.Header, name string, content io.Reader) error {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeDir {
			dirs = append(dirs, p)
			return os.MkdirAll(p, 0o755)
		}
		dirs = append(dirs, filepath.Dir(p))
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, content); err != nil {
			f.Close()
			return err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
	if err != nil {
		return err
	}
	for _, d := range dirs {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	return nil
}

// writeTar writes dir as a tar whose bytes depend only on the names and contents of its files (sorted names,
// no times, owners or modes beyond 0644/0755), so publishing the same directory twice gives the same sha256.
func writeTar(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: time.Unix(0, 0), Format: tar.FormatUSTAR}
		switch {
		case d.IsDir():
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, h.Name+"/", 0o755
		case info.Mode().IsRegular():
			h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, info.Size()
		default:
			return fmt.Errorf("%s: only regular files and directories can be published", p)
		}
		if len(h.Name) > 100 {
			h.Format = tar.FormatPAX
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeDir {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := io.CopyN(tw, f, h.Size); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("jobs: tar %s: %w", dir, err)
	}
	return tw.Close()
}

// RecordActivation remembers that version serves as serveAs (after the caller has loaded it successfully).
func (s *Service) RecordActivation(ctx context.Context, a Activation) error {
	if _, err := s.store.ModelVersion(ctx, a.Model, a.Version); err != nil {
		return err
	}
	if a.Version <= 0 {
		return &ParamError{Field: "version", Message: "must be a registered version number"}
	}
	if len(a.ServeAs) == 0 {
		return &ParamError{Field: "serve_as", Message: "name at least one served model"}
	}
	for _, name := range a.ServeAs {
		if name == "" {
			return &ParamError{Field: "serve_as", Message: "served model names must not be empty"}
		}
	}
	if a.ActivatedAt == 0 {
		a.ActivatedAt = time.Now().Unix()
	}
	return s.store.AddActivation(ctx, a)
}

// Activations returns the latest activation of each served name, for re-applying them at start-up: each
// recorded activation, oldest first, with ServeAs cut to the names no later activation took over (activations
// left with none are dropped).
func (s *Service) Activations(ctx context.Context) ([]Activation, error) {
	all, err := s.store.Activations(ctx)
	if err != nil {
		return nil, err
	}
	latest := map[string]int{} // served name -> index in all
	for i, a := range all {
		for _, name := range a.ServeAs {
			latest[name] = i
		}
	}
	out := []Activation{}
	for i, a := range all {
		var names []string
		for _, name := range a.ServeAs {
			if latest[name] == i && !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
		if len(names) > 0 {
			a.ServeAs = names
			out = append(out, a)
		}
	}
	return out, nil
}
