package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"

	"github.com/bestofn/bestofn/teacher/teachertest"
)

// TestFreshCloneServesEmbeddedDefaults is a new user's first command: this repository's HEAD, cloned into a
// temporary directory with nothing beside it (no ../shared), built there, and `bestofn serve` started in it
// with no model flags on a loopback port. It must serve the embedded defaults, written on this first run into
// a fresh user cache: B answers, R1 answers with five scored candidates, the A/B experiment routes to both,
// all through the openai-go client; `bestofn score` and `bestofn generate` work without model flags too.
//
// It tests what is committed (uncommitted changes are not in the clone). The clone lives in a directory named
// after this worktree, so that the Go build cache, which keys packages by directory, is reused from one run to
// the next (a few seconds to link; the first run compiles the repository's packages once).
func TestFreshCloneServesEmbeddedDefaults(t *testing.T) {
	if testing.Short() {
		t.Skip("clones the repository, builds and runs bestofn")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	root := teachertest.RepoRoot(t)
	if err := exec.Command("git", "-C", root, "rev-parse", "--git-dir").Run(); err != nil {
		t.Skip("not a git checkout: ", err)
	}
	sum := sha256.Sum256([]byte(root))
	base := filepath.Join(os.TempDir(), "bestofn-freshclone-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(base+".lock", os.O_CREATE|os.O_RDWR, 0o644) // one run of this worktree's test at a time
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() }) // the last cleanup: after the server is killed and base removed
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })

	start := time.Now()
	clone, bin := filepath.Join(base, "bestofn"), filepath.Join(base, "bin", "bestofn")
	for _, p := range []string{clone, filepath.Join(base, "bin"), filepath.Join(base, "cache"), filepath.Join(base, "data")} {
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
	runIn(t, "", nil, "git", "clone", "--quiet", root, clone)
	if _, err := os.Stat(filepath.Join(base, "shared")); err == nil {
		t.Fatalf("%s has a shared directory beside the clone", base)
	}
	head := strings.TrimSpace(runIn(t, clone, nil, "git", "rev-parse", "--short", "HEAD"))
	runIn(t, clone, []string{"GOWORK=off"}, "go", "build", "-o", bin, "./cmd/bestofn")
	t.Logf("cloned %s and built it in %v", head, time.Since(start).Round(time.Millisecond))

	// A user cache of the test's own, empty: the first run writes the defaults.
	cache := filepath.Join(base, "cache")
	env := []string{"XDG_CACHE_HOME=" + cache}
	p, err := launchIn(t, clone, bin, "", env, []string{"serve", "--addr", "127.0.0.1:0", "--threads", "1",
		"--data-dir", filepath.Join(base, "data"), "--max-tokens", "64"})
	if err != nil {
		t.Fatal(err)
	}
	// `bestofn defaults` finds what the server wrote into the user cache.
	var where struct {
		Dir        string `json:"dir"`
		Generator  string `json:"generator"`
		WrittenNow bool   `json:"written_now"`
	}
	if err := json.Unmarshal([]byte(runIn(t, clone, env, bin, "defaults")), &where); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(where.Generator); err != nil || where.WrittenNow || filepath.Dir(where.Dir) != filepath.Join(cache, "bestofn", "defaults") {
		t.Errorf("bestofn defaults after the server's start: %+v (%v)", where, err)
	}
	for _, want := range []string{"generator: embedded default", "reward model: embedded default", "written_now=true"} {
		if !strings.Contains(p.stderr.String(), want) {
			t.Errorf("the server's log lacks %q:\n%s", want, p.stderr)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	client := openai.NewClient(option.WithBaseURL(p.url+"/v1"), option.WithAPIKey("none"), option.WithMaxRetries(0))
	models, err := client.Models.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range models.Data {
		ids = append(ids, m.ID)
	}
	if strings.Join(ids, ",") != "llama-gpt4,llama-gpt4:r1,llama-gpt4:ab" {
		t.Errorf("models %v", ids)
	}
	msgs := []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Write a short story about a cat named Tom.")}
	type answer struct {
		Variant    string `json:"variant"`
		Degraded   any    `json:"degraded"`
		Candidates []struct {
			Index int      `json:"index"`
			Text  string   `json:"text"`
			Score *float64 `json:"score"`
		} `json:"candidates"`
	}
	ask := func(model string, opts ...option.RequestOption) (string, answer) {
		t.Helper()
		cc, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: model, Messages: msgs,
			Seed: openai.Int(3), MaxTokens: openai.Int(48)}, append(opts, option.WithJSONSet("return_candidates", true))...)
		if err != nil {
			t.Fatalf("%s: %v", model, err)
		}
		var a answer
		if err := json.Unmarshal([]byte(cc.RawJSON()), &a); err != nil {
			t.Fatal(err)
		}
		text := cc.Choices[0].Message.Content
		if strings.TrimSpace(text) == "" {
			t.Errorf("%s answered nothing: %s", model, cc.RawJSON())
		}
		if a.Degraded != nil && a.Degraded != false {
			t.Errorf("%s degraded: %v", model, a.Degraded)
		}
		return text, a
	}

	b, _ := ask("llama-gpt4")
	r1, a := ask("llama-gpt4:r1")
	if len(a.Candidates) != 5 {
		t.Fatalf("R1: %d candidates, want 5", len(a.Candidates))
	}
	best := a.Candidates[0]
	for _, c := range a.Candidates {
		if c.Score == nil {
			t.Fatalf("R1 candidate %d has no reward score", c.Index)
		}
		if *c.Score > *best.Score {
			best = c
		}
	}
	if r1 != best.Text {
		t.Errorf("R1 answered %q, not its best-scored candidate %q (%v)", r1, best.Text, *best.Score)
	}
	t.Logf("B: %q", b)
	t.Logf("R1 (reward %.3f): %q", *best.Score, r1)
	for _, v := range []string{"B", "R1"} {
		var resp *http.Response
		_, a := ask("llama-gpt4:ab", option.WithHeader("X-Bestofn-Variant", v), option.WithResponseInto(&resp))
		if a.Variant != v || resp.Header.Get("X-Bestofn-Variant") != v {
			t.Errorf("A/B forced to %s: variant %q, header %q", v, a.Variant, resp.Header.Get("X-Bestofn-Variant"))
		}
	}

	// score and generate, without model flags, from the same cache (nothing written again).
	out := runIn(t, clone, env, bin, "score", "--prompt", "How do I make tea?", "Boil water and pour it over the leaves.", "No.")
	if n := strings.Count(strings.TrimSpace(out), "\n") + 1; n != 2 || !strings.Contains(out, `"score"`) {
		t.Errorf("score printed %q", out)
	}
	gen := exec.Command(bin, "generate", "--max-tokens", "16", "--seed", "1", "--threads", "1", "Write a haiku about rain.")
	gen.Dir, gen.Env = clone, append(os.Environ(), env...)
	var gout, gerr bytes.Buffer
	gen.Stdout, gen.Stderr = &gout, &gerr
	if err := gen.Run(); err != nil || !strings.Contains(gerr.String(), "generator: embedded default") ||
		len(strings.TrimSpace(strings.TrimPrefix(gout.String(), "Write a haiku about rain."))) == 0 {
		t.Errorf("generate: %v, stdout %q, stderr %q", err, gout.String(), gerr.String())
	}
	t.Logf("whole check in %v", time.Since(start).Round(time.Millisecond))
}

// runIn runs a command in dir with env added and returns its stdout; it fails the test on error.
func runIn(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// No non-test Go file points into ../shared (a fresh clone has nothing beside it).
func TestNoSharedPathsInCode(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	cmd := exec.Command("git", "grep", "-n", `"\.\./shared`, "--", "*.go", ":!*_test.go")
	cmd.Dir = teachertest.RepoRoot(t)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 && len(out) == 0 {
		return // git grep found nothing
	}
	t.Errorf("git grep: %v\n%s", err, out)
}
