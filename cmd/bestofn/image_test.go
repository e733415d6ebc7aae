//go:build dockerimage

// The image check (a long check, not part of go test ./...): builds the image with scripts/build-image.sh and
// drives containers of it with the openai-go client.
//
//	go test -tags dockerimage -run TestImage -timeout 60m -v ./cmd/bestofn
//
// BESTOFN_IMAGE=TAG checks an image already built instead (and runs the compose check, TestImageCompose). Containers run with --network host and listen on
// 127.0.0.1 only.

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"
)

func docker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// runContainer starts a container of image with the serve args on a free loopback port and waits until it
// answers /readyz; it is removed when the test ends.
func runContainer(t *testing.T, image string, args ...string) (string, string) {
	t.Helper()
	port := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	name := fmt.Sprintf("bestofn-check-%d", port)
	full := append([]string{"run", "-d", "--name", name, "--network", "host", "--health-interval", "2s",
		"-e", "BESTOFN_HEALTH_URL=" + url + "/readyz", image, "serve", "--addr", fmt.Sprintf("127.0.0.1:%d", port)}, args...)
	docker(t, full...)
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", name).Run() })
	waitReady(t, url, func() string {
		logs, _ := exec.Command("docker", "logs", name).CombinedOutput()
		return string(logs)
	})
	return name, url
}

// waitReady waits up to 2 minutes for url's /readyz to answer 200; logs tells why not.
func waitReady(t *testing.T, url string, logs func() string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready:\n%s", url, logs())
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func TestImage(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no docker")
	}
	image := os.Getenv("BESTOFN_IMAGE")
	if image == "" {
		image = "bestofn:check"
		start := time.Now()
		cmd := exec.Command("bash", "scripts/build-image.sh", image)
		cmd.Dir = filepath.Join("..", "..")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("build-image: %v\n%s", err, out)
		}
		t.Logf("built %s in %v", image, time.Since(start).Round(time.Second))
	}
	var inspect []struct {
		Size   int64
		Config struct {
			User        string
			Healthcheck *struct{ Test []string }
			Env         []string
		}
	}
	if err := json.Unmarshal([]byte(docker(t, "image", "inspect", image)), &inspect); err != nil || len(inspect) != 1 {
		t.Fatalf("inspect: %v", err)
	}
	cfg := inspect[0].Config
	t.Logf("%s: %.0f MB", image, float64(inspect[0].Size)/1e6)
	if cfg.User != "10001:10001" || cfg.Healthcheck == nil || !strings.Contains(strings.Join(cfg.Healthcheck.Test, " "), "health") {
		t.Errorf("user %q, healthcheck %+v", cfg.User, cfg.Healthcheck)
	}

	// Nothing mounted: the default models.
	name, url := runContainer(t, image)
	if uid := docker(t, "exec", name, "id", "-u"); uid != "10001" {
		t.Errorf("runs as uid %s", uid)
	}
	client := openai.NewClient(option.WithBaseURL(url+"/v1"), option.WithAPIKey("none"), option.WithMaxRetries(0))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
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
	msgs := []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Tell me a story about a fox.")}
	want := make([]string, 5)
	for i := range want {
		cc, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "llama-gpt4", Messages: msgs,
			Seed: openai.Int(int64(30 + i)), MaxTokens: openai.Int(20)})
		if err != nil {
			t.Fatal(err)
		}
		want[i] = cc.Choices[0].Message.Content
	}
	var r1 struct {
		Candidates []struct {
			Index int      `json:"index"`
			Text  string   `json:"text"`
			Score *float64 `json:"score"`
		} `json:"candidates"`
		Degraded bool `json:"degraded"`
	}
	cc, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "llama-gpt4:r1", Messages: msgs,
		Seed: openai.Int(30), MaxTokens: openai.Int(20)}, option.WithJSONSet("return_candidates", true))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(cc.RawJSON()), &r1); err != nil || len(r1.Candidates) != 5 || r1.Degraded {
		t.Fatalf("R1: %v, %d candidates, degraded %v", err, len(r1.Candidates), r1.Degraded)
	}
	for _, c := range r1.Candidates {
		if c.Score == nil {
			t.Errorf("candidate %d not scored", c.Index)
		}
	}
	stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: "llama-gpt4", Messages: msgs,
		Seed: openai.Int(30), MaxTokens: openai.Int(20)})
	var streamed strings.Builder
	for stream.Next() {
		for _, ch := range stream.Current().Choices {
			streamed.WriteString(ch.Delta.Content)
		}
	}
	if err := stream.Err(); err != nil || streamed.String() != want[0] {
		t.Errorf("streamed %q (%v), want %q", streamed.String(), err, want[0])
	}

	// The server serves the embedded defaults, written out at build time (it writes nothing).
	if logs, _ := exec.Command("docker", "logs", name).CombinedOutput(); !strings.Contains(string(logs), "generator: embedded default") ||
		!strings.Contains(string(logs), "reward model: embedded default") || !strings.Contains(string(logs), "written_now=false") {
		t.Errorf("the server's log does not say it serves the embedded defaults found in the image:\n%s", logs)
	}

	// ONNX Runtime is in the image and scores (the embedded default reward model) as the pure-Go runtime does.
	score := func(runtime string) []float64 {
		out := docker(t, "exec", name, "bestofn", "score", "--runtime", runtime,
			"--prompt", "Tell me a story.", "Once upon a time there was a fox.", "The end.")
		var s []float64
		for _, line := range strings.Split(out, "\n") {
			var v struct{ Score float64 }
			if json.Unmarshal([]byte(line), &v) == nil {
				s = append(s, v.Score)
			}
		}
		return s
	}
	ort, pure := score("ort"), score("go")
	if len(ort) != 2 || len(pure) != 2 || abs(ort[0]-pure[0]) > 1e-4 || abs(ort[1]-pure[1]) > 1e-4 {
		t.Errorf("scores: ort %v, go %v", ort, pure)
	}

	// The health check turns healthy.
	deadline := time.Now().Add(time.Minute)
	for docker(t, "inspect", "-f", "{{.State.Health.Status}}", name) != "healthy" {
		if time.Now().After(deadline) {
			t.Fatalf("health: %s", docker(t, "inspect", "-f", "{{json .State.Health}}", name))
		}
		time.Sleep(time.Second)
	}

	// A second container as the reranking gateway in front of the first: R1's candidates are the first
	// container's answers for seeds seed+i.
	_, gw := runContainer(t, image, "--remote", url+"/v1", "--remote-model", "llama-gpt4")
	gclient := openai.NewClient(option.WithBaseURL(gw+"/v1"), option.WithAPIKey("none"), option.WithMaxRetries(0))
	cc, err = gclient.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "llama-gpt4:r1", Messages: msgs,
		Seed: openai.Int(30), MaxTokens: openai.Int(20)}, option.WithJSONSet("return_candidates", true))
	if err != nil {
		t.Fatal(err)
	}
	r1.Candidates = nil
	if err := json.Unmarshal([]byte(cc.RawJSON()), &r1); err != nil || len(r1.Candidates) != 5 {
		t.Fatalf("gateway R1: %v, %d candidates", err, len(r1.Candidates))
	}
	for _, c := range r1.Candidates {
		if c.Text != want[c.Index] || c.Score == nil {
			t.Errorf("gateway candidate %d: %q (score %v), want %q", c.Index, c.Text, c.Score, want[c.Index])
		}
	}
}

// TestImageCompose runs deploy/compose/docker-compose.test.yaml (docker-compose.yaml's shape, with a bestofn
// container playing vLLM): the gateway starts once the backend is healthy and answers R1.
func TestImageCompose(t *testing.T) {
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Skip("no docker-compose (apt-get install docker-compose)")
	}
	image := os.Getenv("BESTOFN_IMAGE")
	if image == "" {
		t.Skip("set BESTOFN_IMAGE (TestImage builds bestofn:check)")
	}
	backend, gateway := freePort(t), freePort(t)
	env := append(os.Environ(), "IMAGE="+image, fmt.Sprintf("BACKEND_PORT=%d", backend), fmt.Sprintf("GATEWAY_PORT=%d", gateway))
	compose := func(args ...string) string {
		cmd := exec.Command("docker-compose", append([]string{"-f", "../../deploy/compose/docker-compose.test.yaml",
			"-p", fmt.Sprintf("bestofncheck%d", gateway)}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("docker-compose %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	t.Cleanup(func() { compose("down") })
	compose("up", "-d")
	url := fmt.Sprintf("http://127.0.0.1:%d", gateway)
	waitReady(t, url, func() string { return compose("logs") })
	client := openai.NewClient(option.WithBaseURL(url+"/v1"), option.WithAPIKey("none"), option.WithMaxRetries(0))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cc, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "llama-gpt4:r1", MaxTokens: openai.Int(16),
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Tell me a story.")}},
		option.WithJSONSet("return_candidates", true))
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Candidates []struct {
			Score *float64 `json:"score"`
		} `json:"candidates"`
	}
	if err := json.Unmarshal([]byte(cc.RawJSON()), &out); err != nil || len(out.Candidates) != 5 || out.Candidates[0].Score == nil {
		t.Errorf("R1 through the compose gateway: %v, %s", err, cc.RawJSON())
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
