package jobstore_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bestofn/bestofn/jobs/jobstest"
	"github.com/bestofn/bestofn/jobs/jobstore"
)

func TestOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, spec := range []string{"", "sqlite", "sqlite:" + filepath.Join(dir, "other.db")} {
		st, err := jobstore.Open(ctx, spec, dir)
		if err != nil {
			t.Fatalf("%q: %v", spec, err)
		}
		st.Close()
	}
	for _, name := range []string{"jobs.db", "other.db"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
	_, err := jobstore.Open(ctx, "mysql://u:secret@h/db", dir)
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("unknown scheme: %v", err)
	}
	pg := jobstest.StartPostgres(t)
	st, err := jobstore.Open(ctx, pg.NewDatabase(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:pw@h:5432/db": "postgres://u:xxxxx@h:5432/db",
		"postgres://u@h/db":         "postgres://u@h/db",
		"sqlite":                    "sqlite",
	} {
		if got := jobstore.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
