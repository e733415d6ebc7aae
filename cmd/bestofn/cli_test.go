package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"

	"github.com/bestofn/bestofn/jobs"
)

// The admin CLI against a real server: everything a user does over HTTP works from the command line.
func TestProcessCLI(t *testing.T) {
	bin := bestofnBinary(t)
	p := startServe(t, t.TempDir(), tokenEnv)
	cli := func(args ...string) (string, string, error) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "BESTOFN_ADMIN_TOKEN="+testAdminToken, "BESTOFN_SERVER="+p.url)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	dir := t.TempDir()
	rows := filepath.Join(dir, "rows.jsonl")
	os.WriteFile(rows, []byte("{\"instruction\":\"a\"}\n{\"instruction\":\"b\"}\n"), 0o644)
	out, errOut, err := cli("files", "upload", rows, "--purpose", "jsonl")
	var f jobs.File
	if err != nil || json.Unmarshal([]byte(out), &f) != nil || f.Filename != "rows.jsonl" || f.Bytes != 40 {
		t.Fatalf("files upload: %v %s %s", err, out, errOut)
	}
	back := filepath.Join(dir, "back.jsonl")
	if _, errOut, err := cli("files", "download", f.ID, "-o", back); err != nil {
		t.Fatalf("files download: %v %s", err, errOut)
	}
	if a, b := mustRead(t, rows), mustRead(t, back); !bytes.Equal(a, b) {
		t.Fatalf("downloaded %q, uploaded %q", b, a)
	}
	if out, _, err := cli("files", "list"); err != nil || !strings.Contains(out, f.ID) {
		t.Errorf("files list: %v\n%s", err, out)
	}

	out, errOut, err = cli("job", "submit", "count", "--params", `{"steps":3,"step_ms":100}`, "--wait")
	var j jobs.Job
	if err != nil || json.Unmarshal([]byte(out), &j) != nil || j.Status != jobs.StatusSucceeded {
		t.Fatalf("job submit --wait: %v\n%s\n%s", err, out, errOut)
	}
	if !strings.Contains(errOut, j.ID+" succeeded 3/3 steps (100%)") {
		t.Errorf("no plain progress line on stderr:\n%s", errOut)
	}
	if out, _, err := cli("job", "list", "--status", "succeeded"); err != nil || !strings.Contains(out, j.ID) {
		t.Errorf("job list: %v\n%s", err, out)
	}
	if out, _, err := cli("job", "events", j.ID); err != nil || !strings.Contains(out, "metrics") {
		t.Errorf("job events: %v\n%s", err, out)
	}
	if out, _, err := cli("job", "events", j.ID, "--follow"); err != nil || !strings.Contains(out, "metrics") {
		t.Errorf("job events --follow: %v\n%s", err, out)
	}
	if _, errOut, err := cli("job", "submit", "count", "--params", `{"steps":-1}`); err == nil || !strings.Contains(errOut, "params.steps") {
		t.Errorf("bad params: %v\n%s", err, errOut)
	}
	if _, errOut, err := cli("job", "show", "job-nope"); err == nil || !strings.Contains(errOut, "404") {
		t.Errorf("unknown job: %v\n%s", err, errOut)
	}

	out, errOut, err = cli("models", "register", "--name", "g", "--kind", "generator", "--file", serveTestModel)
	var mv jobs.ModelVersion
	if err != nil || json.Unmarshal([]byte(out), &mv) != nil || mv.Version != 1 {
		t.Fatalf("models register: %v\n%s\n%s", err, out, errOut)
	}
	if _, errOut, err := cli("models", "activate", "g", "--version", "1", "--serve-as", "llama-gpt4"); err != nil {
		t.Fatalf("models activate: %v\n%s", err, errOut)
	}
	if out, _, err := cli("models", "list"); err != nil || !strings.Contains(out, "g v1") {
		t.Errorf("models list: %v\n%s", err, out)
	}

	cmd := exec.Command(bin, "job", "list", "--server", p.url)
	cmd.Env = append(os.Environ(), "BESTOFN_ADMIN_TOKEN=wrong")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "401") {
		t.Errorf("wrong token: %v %s", err, out)
	}
	if out, err := exec.Command(bin, "job", "run", "no-such-type", "--data-dir", t.TempDir()).CombinedOutput(); err == nil || !strings.Contains(string(out), "unknown job type") {
		t.Errorf("job run of an unknown type: %v %s", err, out)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// OpenAI's own Go client uploads, lists, reads and deletes files through /admin/v1 (multipart, file part first).
func TestProcessOpenAIFilesClient(t *testing.T) {
	p := startServe(t, t.TempDir(), tokenEnv)
	client := openai.NewClient(option.WithBaseURL(p.url+"/admin/v1/"), option.WithAPIKey(testAdminToken), option.WithMaxRetries(0))
	ctx := context.Background()
	content := "{\"prompt\":\"a\"}\n{\"prompt\":\"b\"}\n"
	f, err := client.Files.New(ctx, openai.FileNewParams{
		File:    openai.File(strings.NewReader(content), "rows.jsonl", "application/jsonl"),
		Purpose: openai.FilePurpose("jsonl"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if f.Filename != "rows.jsonl" || f.Bytes != int64(len(content)) || string(f.Purpose) != "jsonl" {
		t.Fatalf("uploaded %+v", f)
	}
	list, err := client.Files.List(ctx, openai.FileListParams{})
	if err != nil || len(list.Data) != 1 || list.Data[0].ID != f.ID {
		t.Fatalf("list: %v %+v", err, list)
	}
	resp, err := client.Files.Content(ctx, f.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(got) != content {
		t.Fatalf("content %q", got)
	}
	if del, err := client.Files.Delete(ctx, f.ID); err != nil || !del.Deleted {
		t.Fatalf("delete: %+v %v", del, err)
	}
	_, err = client.Files.New(ctx, openai.FileNewParams{
		File:    openai.File(strings.NewReader("not json\n"), "bad.jsonl", "application/jsonl"),
		Purpose: openai.FilePurpose("jsonl"),
	})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Param != "file" {
		t.Fatalf("bad JSONL through openai-go: %v", err)
	}
}
