package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// `bestofn models register --file PATH` uploads, then registers: when the server refuses the registration
// (not a GGUF, not a reward model directory), the file it just uploaded is deleted again rather than left
// behind, unnamed, in the store.
func TestProcessRegisterRefusedLeavesNoFile(t *testing.T) {
	bin := bestofnBinary(t)
	p := startServe(t, t.TempDir(), tokenEnv)
	notGGUF := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(notGGUF, []byte("not a model\n"), 0o644)
	notRM := t.TempDir()
	os.WriteFile(filepath.Join(notRM, "config.json"), []byte("{}"), 0o644)
	for _, args := range [][]string{
		{"models", "register", "--name", "g", "--kind", "generator", "--file", notGGUF},
		{"models", "register", "--name", "r", "--kind", "reward", "--file", notGGUF},
		{"models", "register", "--name", "r", "--kind", "reward", "--file", notRM},
	} {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "BESTOFN_ADMIN_TOKEN="+testAdminToken, "BESTOFN_SERVER="+p.url)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err == nil {
			t.Errorf("%v: registered", args)
		} else if !bytes.Contains(stderr.Bytes(), []byte("400")) {
			t.Errorf("%v: %s", args, stderr.Bytes())
		}
	}
	files, err := p.client().Files(context.Background(), "")
	if err != nil || len(files) != 0 {
		t.Errorf("refused registrations left %d files (%v): %+v", len(files), err, files)
	}
}
