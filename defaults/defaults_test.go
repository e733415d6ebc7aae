package defaults

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
)

// The embedded files are the ones in this directory, and Digest is what sha256sum's manifest hashes to (the
// formula the package documents, computed by coreutils rather than by the package).
func TestDigestMatchesSha256sum(t *testing.T) {
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.Path)
		st, err := os.Stat(filepath.FromSlash(f.Path))
		if err != nil || st.Size() != f.Size {
			t.Errorf("%s: embedded %d bytes, on disk %v (%v)", f.Path, f.Size, st, err)
		}
	}
	want := []string{"generator.gguf", "reward-model/config.json", "reward-model/model.onnx", "reward-model/tokenizer.json"}
	for _, w := range want {
		if !strings.Contains(" "+strings.Join(names, " ")+" ", " "+w+" ") {
			t.Errorf("embedded files %v lack %s", names, w)
		}
	}
	if _, err := exec.LookPath("sha256sum"); err != nil {
		t.Skip("no sha256sum")
	}
	manifest, err := exec.Command("sha256sum", names...).Output()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sha256sum")
	cmd.Stdin = bytes.NewReader(manifest)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	d, err := Digest()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(out))[0]; got != d {
		t.Errorf("Digest %s, sha256sum of the manifest %s\n%s", d, got, manifest)
	}
}

func TestMaterialize(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "cache")
	p, err := Materialize(cache)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := Digest()
	if !p.Created || p.Dir != filepath.Join(cache, d) || p.Generator != filepath.Join(p.Dir, "generator.gguf") ||
		p.RewardModel != filepath.Join(p.Dir, "reward-model") || p.Digest != d {
		t.Fatalf("paths %+v (digest %s)", p, d)
	}
	checkTree(t, p.Dir)
	entries, _ := os.ReadDir(cache)
	if len(entries) != 1 {
		t.Errorf("cache holds %d entries, want only the tree", len(entries))
	}

	// Again: nothing written.
	st, _ := os.Stat(p.Generator)
	q, err := Materialize(cache)
	if err != nil || q.Created || q.Dir != p.Dir {
		t.Fatalf("second call: %+v, %v", q, err)
	}
	if st2, _ := os.Stat(p.Generator); !os.SameFile(st, st2) {
		t.Error("second call rewrote the generator")
	}

	// A tree with edited content (same size, and a missing file) is replaced; a temporary directory left by a
	// killed run is harmless.
	cfg := filepath.Join(p.RewardModel, "config.json")
	b, _ := os.ReadFile(cfg)
	b[0] ^= 0xff
	if err := os.WriteFile(cfg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(p.RewardModel, "tokenizer.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(cache, ".tmp-123", "reward-model"), 0o755); err != nil {
		t.Fatal(err)
	}
	q, err = Materialize(cache)
	if err != nil || !q.Created {
		t.Fatalf("after corruption: %+v, %v", q, err)
	}
	checkTree(t, p.Dir)
	if _, err := os.Stat(filepath.Join(cache, ".tmp-123")); err != nil {
		t.Error("removed a temporary directory it did not make")
	}
}

// checkTree compares dir with the embedded files byte for byte.
func checkTree(t *testing.T, dir string) {
	t.Helper()
	err := fs.WalkDir(FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		want, err := fs.ReadFile(FS(), path)
		if err != nil {
			return err
		}
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(path)))
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("%s differs from the embedded file", path)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

func TestMaterializeErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"", filepath.Join(file, "cache")} {
		if p, err := Materialize(dir); err == nil {
			t.Errorf("Materialize(%q) = %+v, want an error", dir, p)
		}
	}
	if _, err := materialize(fstest.MapFS{}, t.TempDir()); err == nil {
		t.Error("an empty tree materialized")
	}
}

// Concurrent first runs: goroutines of this process and other processes all materialize into one empty cache
// at once; every one gets the complete tree, exactly one wrote it, and no temporary directory is left.
func TestMaterializeConcurrent(t *testing.T) {
	if dir := os.Getenv("BESTOFN_DEFAULTS_HELPER"); dir != "" {
		t.Skip("helper process")
	}
	cache := t.TempDir()
	const goroutines, procs = 6, 4
	type outcome struct {
		created bool
		dir     string
		err     error
	}
	results := make(chan outcome, goroutines+procs)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			p, err := Materialize(cache)
			results <- outcome{p.Created, p.Dir, err}
		}()
	}
	for range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMaterializeHelper$", "-test.v")
		cmd.Env = append(os.Environ(), "BESTOFN_DEFAULTS_HELPER="+cache)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out, err := cmd.CombinedOutput()
			o := outcome{err: err}
			if err != nil {
				o.err = fmt.Errorf("%v\n%s", err, out)
			}
			for _, line := range strings.Split(string(out), "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "materialized "); ok {
					f := strings.Fields(v)
					o.created, o.dir = f[0] == "true", f[1]
				}
			}
			if o.dir == "" && o.err == nil {
				o.err = fmt.Errorf("helper printed no result:\n%s", out)
			}
			results <- o
		}()
	}
	close(start)
	wg.Wait()
	close(results)
	created, want := 0, ""
	for r := range results {
		if r.err != nil {
			t.Error(r.err)
			continue
		}
		if want == "" {
			want = r.dir
		}
		if r.dir != want {
			t.Errorf("dirs %s and %s", r.dir, want)
		}
		if r.created {
			created++
		}
	}
	if created != 1 {
		t.Errorf("%d callers wrote the tree, want 1", created)
	}
	checkTree(t, want)
	entries, _ := os.ReadDir(cache)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("cache holds %v, want only the tree", names)
	}
}

// TestMaterializeHelper is TestMaterializeConcurrent's other process.
func TestMaterializeHelper(t *testing.T) {
	dir := os.Getenv("BESTOFN_DEFAULTS_HELPER")
	if dir == "" {
		t.Skip("run by TestMaterializeConcurrent")
	}
	p, err := Materialize(dir)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("materialized %v %s\n", p.Created, p.Dir)
}
