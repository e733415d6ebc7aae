package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/bestofn/bestofn/teacher/teachertest"
)

// TestMain removes the bestofn binary teachertest builds for this package's process tests, and gives the tests
// (and the processes they start) a user cache of their own, so that the embedded default models they
// materialize never land in the real one. The Go build cache, by default under the user cache too, stays
// where it is (GOCACHE is pinned first), so that the builds the tests run reuse it.
func TestMain(m *testing.M) {
	if os.Getenv("GOCACHE") == "" {
		if out, err := exec.Command("go", "env", "GOCACHE").Output(); err == nil && strings.TrimSpace(string(out)) != "" {
			os.Setenv("GOCACHE", strings.TrimSpace(string(out)))
		}
	}
	cache, err := os.MkdirTemp("", "bestofn-test-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_CACHE_HOME", cache)
	code := teachertest.Main(m)
	os.RemoveAll(cache)
	os.Exit(code)
}
