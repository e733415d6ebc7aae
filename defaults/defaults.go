package defaults

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// embedded is the tree of default models. The patterns name the files, so a missing default fails the build.
//
//go:embed generator.gguf reward-model
var embedded embed.FS

const (
	// GeneratorFile is the generator's path in the tree (and in a materialized directory).
	GeneratorFile = "generator.gguf"
	// RewardModelDir is the reward model directory's path in the tree.
	RewardModelDir = "reward-model"
)

// File is one embedded file.
type File struct {
	// Path is slash-separated, relative to the tree's root (generator.gguf, reward-model/model.onnx).
	Path string
	Size int64
	// SHA256 is the hex sha256 of the content.
	SHA256 string
}

// Paths are the default models written out by Materialize.
type Paths struct {
	// Dir is the materialized tree, <cacheDir>/<Digest>.
	Dir string
	// Generator is the generator GGUF and RewardModel the reward model directory, inside Dir.
	Generator   string
	RewardModel string
	// Digest is the tree's content address (see Digest).
	Digest string
	// Created is true when this call wrote the tree, false when it was there already.
	Created bool
}

// FS is the embedded tree, read-only.
func FS() fs.FS { return embedded }

// Files lists the embedded files sorted by path, with their sizes and sha256s.
func Files() ([]File, error) { return list(embedded) }

// Digest is the embedded tree's content address: the hex sha256 of its manifest, one line "SHA256  PATH\n" per
// file sorted by path, which is what `sha256sum generator.gguf reward-model/*` prints in the source directory
// defaults/ (so piping that into sha256sum reproduces the digest).
func Digest() (string, error) {
	files, err := Files()
	if err != nil {
		return "", err
	}
	return manifestDigest(files), nil
}

// CacheDir is where the defaults are materialized by default: os.UserCacheDir()/bestofn/defaults
// ($XDG_CACHE_HOME/bestofn/defaults, else ~/.cache/bestofn/defaults on Linux).
func CacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("defaults: no cache directory for the embedded default models (%w): set XDG_CACHE_HOME or HOME, or give the models' paths", err)
	}
	return filepath.Join(d, "bestofn", "defaults"), nil
}

// Materialize makes sure <cacheDir>/<Digest> holds the embedded tree and returns its paths. It writes the tree
// only when no complete copy is there: into a temporary directory beside it, synced, then renamed into place,
// so that a process started at the same time (or killed half-way) never sees a partial tree. A tree of that
// name with other content is moved aside, deleted and written again.
func Materialize(cacheDir string) (Paths, error) { return materialize(embedded, cacheDir) }

// materializeAttempts bounds how often a tree that fails its check is replaced in one call.
const materializeAttempts = 3

func materialize(fsys fs.FS, cacheDir string) (Paths, error) {
	if cacheDir == "" {
		return Paths{}, errors.New("defaults: empty cache directory")
	}
	files, err := list(fsys)
	if err != nil {
		return Paths{}, err
	}
	digest := manifestDigest(files)
	final := filepath.Join(cacheDir, digest)
	p := Paths{Dir: final, Generator: filepath.Join(final, GeneratorFile), RewardModel: filepath.Join(final, RewardModelDir), Digest: digest}
	for attempt := 0; ; attempt++ {
		exists, err := verify(final, files)
		if err == nil {
			return p, nil
		}
		if attempt == materializeAttempts {
			return Paths{}, fmt.Errorf("defaults: %s still differs from the embedded models after %d attempts: %w", final, attempt, err)
		}
		if exists {
			// A tree with other content: move it aside in one rename (another process may be doing the same;
			// then one of the renames fails, which is fine), and delete it.
			if err := discard(cacheDir, final); err != nil {
				return Paths{}, err
			}
		}
		created, err := install(fsys, cacheDir, final, files)
		if err != nil {
			return Paths{}, err
		}
		if created {
			p.Created = true
			return p, nil
		}
		// Another process installed a tree first: check it.
	}
}

// list is the regular files of fsys sorted by path, with sizes and digests.
func list(fsys fs.FS) ([]File, error) {
	var files []File
	err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("defaults: %s is not a regular file", path)
		}
		f, err := fsys.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		n, err := io.Copy(h, f)
		if err != nil {
			return fmt.Errorf("defaults: %s: %w", path, err)
		}
		files = append(files, File{Path: path, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, errors.New("defaults: no embedded files")
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

func manifestDigest(files []File) string {
	var b strings.Builder
	for _, f := range files {
		fmt.Fprintf(&b, "%s  %s\n", f.SHA256, f.Path)
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:])
}

// verify checks that dir holds every file with its content; exists says whether dir exists at all.
func verify(dir string, files []File) (exists bool, err error) {
	if _, err := os.Stat(dir); err != nil {
		return !errors.Is(err, fs.ErrNotExist), err
	}
	for _, f := range files {
		path := filepath.Join(dir, filepath.FromSlash(f.Path))
		sum, n, err := fileSHA256(path)
		if err != nil {
			return true, err
		}
		if n != f.Size || sum != f.SHA256 {
			return true, fmt.Errorf("%s: %d bytes with sha256 %s, want %d bytes with sha256 %s", path, n, sum, f.Size, f.SHA256)
		}
	}
	return true, nil
}

func fileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// install writes the tree into a temporary directory in cacheDir and renames it to final. created is false,
// with no error, when final appeared meanwhile (another process's rename came first).
func install(fsys fs.FS, cacheDir, final string, files []File) (created bool, err error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return false, fmt.Errorf("defaults: %w", err)
	}
	tmp, err := os.MkdirTemp(cacheDir, ".tmp-")
	if err != nil {
		return false, fmt.Errorf("defaults: %w", err)
	}
	defer os.RemoveAll(tmp) // gone after a successful rename
	dirs := map[string]bool{tmp: true}
	for _, f := range files {
		dst := filepath.Join(tmp, filepath.FromSlash(f.Path))
		dirs[filepath.Dir(dst)] = true
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return false, fmt.Errorf("defaults: %w", err)
		}
		if err := copyFile(fsys, f.Path, dst); err != nil {
			return false, fmt.Errorf("defaults: writing %s: %w", dst, err)
		}
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return false, fmt.Errorf("defaults: %w", err)
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // MkdirTemp makes it 0700
		return false, fmt.Errorf("defaults: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		if _, serr := os.Stat(final); serr == nil {
			return false, nil // EEXIST or ENOTEMPTY: someone else's tree is in place
		}
		return false, fmt.Errorf("defaults: %w", err)
	}
	if err := syncDir(cacheDir); err != nil {
		return true, fmt.Errorf("defaults: %w", err)
	}
	return true, nil
}

// discard moves a tree with wrong content out of final's place and deletes it.
func discard(cacheDir, final string) error {
	trash, err := os.MkdirTemp(cacheDir, ".old-")
	if err != nil {
		return fmt.Errorf("defaults: %w", err)
	}
	defer os.RemoveAll(trash)
	// The rename is one atomic step (into a name of its own: os.Rename refuses an existing directory); when
	// another process moved the tree first, final no longer exists and there is nothing to do.
	if err := os.Rename(final, filepath.Join(trash, "tree")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(final); serr != nil {
			return nil
		}
		return fmt.Errorf("defaults: moving aside %s: %w", final, err)
	}
	return nil
}

func copyFile(fsys fs.FS, src, dst string) error {
	in, err := fsys.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
