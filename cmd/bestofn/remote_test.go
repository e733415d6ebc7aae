package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/bestofn/bestofn/api"
)

// postJSON sends body and decodes the answer; it returns the status and the X-Bestofn-Variant header.
func postJSON(t *testing.T, url string, header map[string]string, body, out any) (int, string) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s: %d %q: %v", url, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode, resp.Header.Get("X-Bestofn-Variant")
}

// TestProcessServeRemote runs `bestofn serve --remote` in front of another bestofn process, over the OpenAI
// API and over the Ollama API, with the local reward model: the served names come from the backend's model,
// R1's candidates are the backend's answers for seeds seed+i, ranked and scored; /readyz and /metrics name
// the backend; two gateway replicas assign the same users to the same A/B variants.
func TestProcessServeRemote(t *testing.T) {
	backend := startServe(t, t.TempDir(), nil) // serves llama-gpt4 only (no reward model from this directory)
	bin := bestofnBinary(t)
	rm := "../../reward/testdata/tiny-rm"
	gwOpenAI, err := launch(t, bin, t.TempDir(), nil, []string{"serve", "--addr", "127.0.0.1:0", "--threads", "1",
		"--data-dir", t.TempDir(), "--remote", backend.url + "/v1", "--reward-model", rm})
	if err != nil {
		t.Fatal(err)
	}
	gwOllama, err := launch(t, bin, t.TempDir(), nil, []string{"serve", "--addr", "127.0.0.1:0", "--threads", "1",
		"--data-dir", t.TempDir(), "--remote", backend.url, "--remote-api", "ollama", "--remote-model", "llama-gpt4",
		"--reward-model", rm})
	if err != nil {
		t.Fatal(err)
	}

	var models api.ModelList
	resp, err := http.Get(gwOpenAI.url + "/v1/models")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&models)
	resp.Body.Close()
	var names []string
	for _, m := range models.Data {
		names = append(names, m.ID)
	}
	if strings.Join(names, ",") != "llama-gpt4,llama-gpt4:r1,llama-gpt4:ab" {
		t.Errorf("served %v", names)
	}

	msgs := []map[string]string{{"role": "user", "content": "Tell me a story about a dog."}}
	want := make([]string, 5)
	for i := range want {
		var out api.ChatCompletionResponse
		if status, _ := postJSON(t, backend.url+"/v1/chat/completions", nil, map[string]any{"model": "llama-gpt4",
			"messages": msgs, "seed": 60 + i, "max_tokens": 20}, &out); status != http.StatusOK {
			t.Fatalf("backend: %d", status)
		}
		want[i] = string(out.Choices[0].Message.Content)
	}
	var r1 api.ChatCompletionResponse
	if status, _ := postJSON(t, gwOpenAI.url+"/v1/chat/completions", nil, map[string]any{"model": "llama-gpt4:r1",
		"messages": msgs, "seed": 60, "max_tokens": 20, "return_candidates": true}, &r1); status != http.StatusOK {
		t.Fatalf("gateway: %d", status)
	}
	if len(r1.Candidates) != 5 || r1.Degraded {
		t.Fatalf("%d candidates, degraded %v %q", len(r1.Candidates), r1.Degraded, r1.DegradedReason)
	}
	for k, c := range r1.Candidates {
		if c.Text != want[c.Index] || c.Score == nil || c.Rank != k+1 {
			t.Errorf("rank %d: candidate %d %q (score %v), backend's seed %d: %q", k+1, c.Index, c.Text, c.Score, 60+c.Index, want[c.Index])
		}
	}
	if string(r1.Choices[0].Message.Content) != r1.Candidates[0].Text {
		t.Errorf("answer %q is not the best candidate %q", r1.Choices[0].Message.Content, r1.Candidates[0].Text)
	}

	// Over the Ollama API (fanned out: no n), the same candidates.
	var oll struct {
		Message    struct{ Content string } `json:"message"`
		Candidates []api.Candidate          `json:"candidates"`
	}
	if status, _ := postJSON(t, gwOllama.url+"/api/chat", nil, map[string]any{"model": "llama-gpt4:r1", "stream": false,
		"messages": msgs, "options": map[string]any{"seed": 60, "num_predict": 20, "temperature": 1, "top_p": 1, "top_k": 0,
			"repeat_penalty": 1}}, &oll); status != http.StatusOK {
		t.Fatalf("ollama gateway: %d", status)
	}
	if len(oll.Candidates) != 5 {
		t.Fatalf("ollama gateway: %d candidates", len(oll.Candidates))
	}
	for _, c := range oll.Candidates {
		if c.Text != want[c.Index] {
			t.Errorf("ollama gateway: candidate %d %q, want %q", c.Index, c.Text, want[c.Index])
		}
	}

	// /readyz and /metrics.
	var ready struct {
		Backends []api.BackendStatus `json:"backends"`
	}
	resp, err = http.Get(gwOllama.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&ready)
	resp.Body.Close()
	if len(ready.Backends) != 1 || ready.Backends[0].Name != "remote" || ready.Backends[0].API != "ollama" ||
		ready.Backends[0].State != api.BackendClosed || ready.Backends[0].NSupport != "fanout" {
		t.Errorf("readyz backends %+v", ready.Backends)
	}
	resp, err = http.Get(gwOpenAI.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`bestofn:e2e_request_latency_seconds_count{backend="remote",model="llama-gpt4:r1",variant="llama-gpt4:r1"} 1`,
		`bestofn:time_to_first_token_seconds_count{backend="remote"`, `bestofn:backend_up{backend="remote",kind="generator"} 1`} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// Two replicas, one assignment: the variant is a hash of (experiment, user).
	seen := map[string]int{}
	for u := 0; u < 16; u++ {
		user := fmt.Sprintf("user-%d", u)
		body := map[string]any{"model": "llama-gpt4:ab", "messages": msgs, "max_tokens": 4, "user": user}
		s1, v1 := postJSON(t, gwOpenAI.url+"/v1/chat/completions", nil, body, nil)
		var e2 map[string]any
		s2, v2 := postJSON(t, gwOllama.url+"/v1/chat/completions", nil, body, &e2)
		if s2 != http.StatusOK {
			t.Log(e2)
		}
		if s1 != http.StatusOK || s2 != http.StatusOK || v1 == "" || v1 != v2 {
			t.Errorf("%s: replica 1 %d %q, replica 2 %d %q", user, s1, v1, s2, v2)
		}
		seen[v1]++
	}
	if seen["B"] == 0 || seen["R1"] == 0 {
		t.Errorf("variants %v: want both", seen)
	}
}
