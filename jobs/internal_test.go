package jobs

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func neverDead() bool { return false }

var bytes0Time = time.Unix(1e9, 0)

func TestOutputFileTornLine(t *testing.T) {
	dir := t.TempDir()
	o, err := openOutputFile(dir, "rows.jsonl", neverDead, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for i, row := range []any{map[string]any{"a": 1, "row": "x"}, []int{1, 2}, "s\n\"q"} {
		if err := o.appendRow(string(rune('a'+i)), row); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.appendRow("a", 1); err == nil {
		t.Error("appending a key twice succeeded")
	}
	o.close()
	path := filepath.Join(dir, "rows.jsonl")
	intact, _ := os.ReadFile(path)
	// A crash in the middle of an Append leaves part of a line.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"key":"d","row":{"half`)
	f.Close()

	o, err = openOutputFile(dir, "rows.jsonl", neverDead, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer o.close()
	if got, _ := os.ReadFile(path); !bytes.Equal(got, intact) {
		t.Errorf("after reopening the file is\n%s\nwant\n%s", got, intact)
	}
	if keys := strings.Join(o.keys(), ","); keys != "a,b,c" || o.has("d") {
		t.Errorf("keys %s", keys)
	}
	for key, want := range map[string]string{"a": `{"a":1,"row":"x"}`, "b": `[1,2]`, "c": `"s\n\"q"`} {
		if got, ok := o.get(key); !ok || string(got) != want {
			t.Errorf("row %s: %s, want %s", key, got, want)
		}
	}
	if err := o.appendRow("d", 4); err != nil {
		t.Fatal(err)
	}
	if got, ok := o.get("d"); !ok || string(got) != "4" {
		t.Errorf("row d after reopening: %s", got)
	}
	lines := strings.Split(strings.TrimSpace(readString(t, path)), "\n")
	for _, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Errorf("line %q is not JSON", l)
		}
	}
	if len(lines) != 4 {
		t.Errorf("%d lines, want 4", len(lines))
	}
}

func TestOutputFileCorruptLine(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "rows.jsonl"), []byte("{\"key\":\"a\",\"row\":1}\nnot json\n{\"key\":\"b\",\"row\":2}\n"), 0o644)
	if _, err := openOutputFile(dir, "rows.jsonl", neverDead, time.Second); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("corrupt line 2: %v", err)
	}
}

func readString(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestExtractTarStaysInside checks the extractor itself (registration refuses such tars earlier): no entry is
// written outside the directory.
func TestExtractTarStaysInside(t *testing.T) {
	for name, hdrs := range map[string][]tar.Header{
		"dotdot":   {{Name: "ok.txt", Typeflag: tar.TypeReg}, {Name: "../escaped.txt", Typeflag: tar.TypeReg}},
		"nested":   {{Name: "a/b/../../../escaped.txt", Typeflag: tar.TypeReg}},
		"absolute": {{Name: "/escaped.txt", Typeflag: tar.TypeReg}},
		"symlink":  {{Name: "link", Typeflag: tar.TypeSymlink, Linkname: ".."}, {Name: "link/escaped.txt", Typeflag: tar.TypeReg}},
	} {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, h := range hdrs {
			if h.Typeflag == tar.TypeReg {
				h.Size = 1
			}
			tw.WriteHeader(&h)
			if h.Typeflag == tar.TypeReg {
				tw.Write([]byte("x"))
			}
		}
		tw.Close()
		root := t.TempDir()
		dest := filepath.Join(root, "a", "b", "dest")
		os.MkdirAll(dest, 0o755)
		if err := extractTar(&b, dest); err == nil {
			t.Errorf("%s: extracted", name)
		}
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if d != nil && d.Name() == "escaped.txt" {
				t.Errorf("%s: wrote %s", name, p)
			}
			return nil
		})
		if _, err := os.Stat("/escaped.txt"); err == nil {
			t.Errorf("%s: wrote /escaped.txt", name)
		}
	}
}

func TestWriteTarIsDeterministic(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sub"), 0o700)
	os.WriteFile(filepath.Join(dir, "b.txt"), []byte("bb"), 0o600)
	os.WriteFile(filepath.Join(dir, "sub", "a.txt"), []byte("a"), 0o755)
	var first bytes.Buffer
	if err := writeTar(&first, dir); err != nil {
		t.Fatal(err)
	}
	// Other times and modes, same names and contents: the same bytes.
	os.Chtimes(filepath.Join(dir, "b.txt"), bytes0Time, bytes0Time)
	os.Chmod(filepath.Join(dir, "sub", "a.txt"), 0o600)
	var second bytes.Buffer
	if err := writeTar(&second, dir); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Bytes(), second.Bytes()) {
		t.Error("the tar of the same directory differs")
	}
	out := t.TempDir()
	if err := extractTar(bytes.NewReader(first.Bytes()), out); err != nil {
		t.Fatal(err)
	}
	if readString(t, filepath.Join(out, "sub", "a.txt")) != "a" || readString(t, filepath.Join(out, "b.txt")) != "bb" {
		t.Error("round trip lost content")
	}
}

func TestOutputFileLocked(t *testing.T) {
	dir := t.TempDir()
	first, err := openOutputFile(dir, "rows.jsonl", neverDead, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openOutputFile(dir, "rows.jsonl", neverDead, 50*time.Millisecond); err == nil {
		t.Error("a second open of a locked output succeeded")
	}
	first.close()
	second, err := openOutputFile(dir, "rows.jsonl", neverDead, 50*time.Millisecond)
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	second.close()
}
