package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	ollama "github.com/ollama/ollama/api"

	"github.com/bestofn/bestofn/api"
	"github.com/bestofn/bestofn/engine"
)

func decode[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, w.Body.String())
	}
	return v
}

func TestChatCompletionBaseline(t *testing.T) {
	e := newEnv(t, nil)
	w := e.do(t, "POST", "/v1/chat/completions", `{"model":"base","seed":7,"temperature":0.5,"top_p":0.9,"max_tokens":20,
		"stop":"x","messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"hi"}]}]}`)
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if w.Header().Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id")
	}
	if got := w.Header().Get(HeaderVariant); got != "base" {
		t.Errorf("variant header %q", got)
	}
	resp := decode[api.ChatCompletionResponse](t, w)
	want := fakeText("", 7, 0)
	if len(resp.Choices) != 1 || string(resp.Choices[0].Message.Content) != want || resp.Choices[0].FinishReason != "stop" {
		t.Fatalf("choices %+v, want text %q", resp.Choices, want)
	}
	if resp.Object != api.ObjectChatCompletion || resp.Model != "base" || resp.Variant != "base" || !strings.HasPrefix(resp.ID, "chatcmpl-") {
		t.Errorf("envelope %+v", resp)
	}
	req := e.gen.last()
	if req.N != 1 || req.Rerank || req.Sampling.Seed != 7 || req.Sampling.Temperature != 0.5 || req.Sampling.TopP != float32(0.9) ||
		req.MaxTokens != 20 || len(req.Stop) != 1 || req.Stop[0] != "x" {
		t.Errorf("engine request %+v", req)
	}
	if req.Prompt != "system: be brief\nuser: hi\nassistant:" || req.RewardPrompt != "hi" {
		t.Errorf("prompt %q reward prompt %q", req.Prompt, req.RewardPrompt)
	}
	if resp.Usage.CompletionTokens != len(strings.Fields(want)) || resp.Usage.TotalTokens != resp.Usage.PromptTokens+resp.Usage.CompletionTokens {
		t.Errorf("usage %+v", resp.Usage)
	}
}

func TestChatCompletionR1Ranked(t *testing.T) {
	e := newEnv(t, nil)
	w := e.do(t, "POST", "/v1/chat/completions", `{"model":"base:r1","seed":1,"n":2,"return_candidates":true,"logprobs":true,"top_logprobs":2,
		"messages":[{"role":"user","content":"hi"}]}`)
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	resp := decode[api.ChatCompletionResponse](t, w)
	req := e.gen.last()
	if req.N != 5 || !req.Rerank || !req.Logprobs || req.TopLogprobs != 2 {
		t.Fatalf("engine request N=%d rerank=%v", req.N, req.Rerank)
	}
	if len(resp.Candidates) != 5 || len(resp.Choices) != 2 {
		t.Fatalf("%d candidates, %d choices", len(resp.Candidates), len(resp.Choices))
	}
	// Choices are the two best-scored candidates, in rank order.
	for j, ch := range resp.Choices {
		c := resp.Candidates[j]
		if c.Rank != j+1 || string(ch.Message.Content) != c.Text || c.Score == nil {
			t.Errorf("choice %d %q vs candidate %+v", j, ch.Message.Content, c)
		}
		if ch.Logprobs == nil || len(ch.Logprobs.Content) != len(strings.Fields(c.Text)) || len(ch.Logprobs.Content[0].TopLogprobs) != 2 {
			t.Errorf("choice %d logprobs %+v", j, ch.Logprobs)
		}
	}
	for i := 1; i < len(resp.Candidates); i++ {
		if *resp.Candidates[i].Score > *resp.Candidates[i-1].Score {
			t.Errorf("candidates not sorted by score: %+v", resp.Candidates)
		}
	}
	if resp.Usage.CompletionTokens <= len(strings.Fields(string(resp.Choices[0].Message.Content))) {
		t.Errorf("usage should count all 5 candidates: %+v", resp.Usage)
	}
	// rerank none ranks by mean logprob instead (candidate 2 for seed 1) and best_of overrides the model's N.
	w = e.do(t, "POST", "/v1/chat/completions", `{"model":"base:r1","seed":1,"best_of":3,"rerank":"none","messages":[{"role":"user","content":"hi"}]}`)
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if req := e.gen.last(); req.N != 3 || req.Rerank {
		t.Errorf("engine request N=%d rerank=%v", req.N, req.Rerank)
	}
	resp = decode[api.ChatCompletionResponse](t, w)
	if got, want := string(resp.Choices[0].Message.Content), fakeText("", 1, 2); got != want {
		t.Errorf("choice %q, want the likeliest candidate %q", got, want)
	}
}

func TestChatCompletionDegraded(t *testing.T) {
	e := newEnv(t, nil)
	e.gen.degrade = true
	w := e.do(t, "POST", "/v1/chat/completions", `{"model":"base:r1","messages":[{"role":"user","content":"hi"}]}`)
	resp := decode[api.ChatCompletionResponse](t, w)
	if w.Code != 200 || !resp.Degraded || resp.DegradedReason == "" {
		t.Fatalf("status %d degraded=%v %q", w.Code, resp.Degraded, resp.DegradedReason)
	}
	if got := counterValue(t, e.reg, "bestofn:degraded_reranks_total", map[string]string{"variant": "base:r1"}); got != 1 {
		t.Errorf("degraded counter %v", got)
	}
}

// sseEvents reads an SSE body into its data payloads; it fails unless the stream ends with [DONE].
func sseEvents(t *testing.T, body string) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("not an SSE data line: %q", line)
		}
		out = append(out, data)
	}
	if len(out) == 0 || out[len(out)-1] != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]: %q", body)
	}
	return out[:len(out)-1]
}

func TestChatCompletionStream(t *testing.T) {
	for _, model := range []string{"base", "base:r1"} {
		t.Run(model, func(t *testing.T) {
			e := newEnv(t, nil)
			w := e.do(t, "POST", "/v1/chat/completions", `{"model":"`+model+`","seed":3,"n":2,"stream":true,"stream_options":{"include_usage":true},
				"return_candidates":true,"messages":[{"role":"user","content":"hi"}]}`)
			if w.Code != 200 || w.Header().Get("Content-Type") != "text/event-stream" {
				t.Fatalf("status %d type %q: %s", w.Code, w.Header().Get("Content-Type"), w.Body)
			}
			texts := make([]string, 2)
			finished := make([]string, 2)
			var usage *api.Usage
			var cands []api.Candidate
			contentChunks := 0
			for _, ev := range sseEvents(t, w.Body.String()) {
				var ch api.ChatCompletionChunk
				if err := json.Unmarshal([]byte(ev), &ch); err != nil {
					t.Fatal(err)
				}
				if ch.Object != api.ObjectChatCompletionChunk || ch.Variant != model {
					t.Errorf("chunk envelope %+v", ch)
				}
				if ch.Usage != nil {
					usage = ch.Usage
				}
				if ch.Candidates != nil {
					cands = ch.Candidates
				}
				for _, c := range ch.Choices {
					if finished[c.Index] != "" {
						t.Errorf("content after finish on choice %d", c.Index)
					}
					texts[c.Index] += c.Delta.Content
					if c.Delta.Content != "" {
						contentChunks++
					}
					if c.FinishReason != nil {
						finished[c.Index] = *c.FinishReason
					}
				}
			}
			req := e.gen.last()
			for j := 0; j < 2; j++ {
				if finished[j] != "stop" {
					t.Errorf("choice %d finish %q", j, finished[j])
				}
				if len(cands) < 2 || texts[j] != cands[j].Text {
					t.Errorf("choice %d streamed %q, candidates %+v", j, texts[j], cands)
				}
			}
			if !req.Rerank {
				if texts[0] != fakeText("", 3, 0) || texts[1] != fakeText("", 3, 1) {
					t.Errorf("streamed %q", texts)
				}
				if want := len(strings.Fields(texts[0] + " " + texts[1])); contentChunks != want {
					t.Errorf("%d content chunks, want one per word (%d): not streamed live", contentChunks, want)
				}
			}
			if usage == nil || usage.CompletionTokens == 0 {
				t.Errorf("usage chunk %+v", usage)
			}
		})
	}
}

func TestCompletions(t *testing.T) {
	e := newEnv(t, nil)
	w := e.do(t, "POST", "/v1/completions", `{"model":"raw","prompt":"Once","seed":2,"echo":true,"logprobs":1,"max_tokens":5}`)
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	resp := decode[api.CompletionResponse](t, w)
	want := "Once" + fakeText("", 2, 0)
	if len(resp.Choices) != 1 || resp.Choices[0].Text != want || resp.Choices[0].Logprobs == nil ||
		len(resp.Choices[0].Logprobs.Tokens) != len(strings.Fields(fakeText("", 2, 0))) || resp.Choices[0].Logprobs.TextOffset[0] != 4 {
		t.Fatalf("choices %+v, want %q", resp.Choices, want)
	}
	if e.gen.last().Prompt != "Once" || resp.Object != api.ObjectTextCompletion {
		t.Errorf("prompt %q object %q", e.gen.last().Prompt, resp.Object)
	}
	w = e.do(t, "POST", "/v1/completions", `{"model":"raw","prompt":["Once"],"seed":2,"stream":true}`)
	var got string
	for _, ev := range sseEvents(t, w.Body.String()) {
		var ch api.CompletionResponse
		if err := json.Unmarshal([]byte(ev), &ch); err != nil {
			t.Fatal(err)
		}
		for _, c := range ch.Choices {
			got += c.Text
		}
	}
	if got != fakeText("", 2, 0) {
		t.Errorf("streamed %q", got)
	}
}

func TestListModels(t *testing.T) {
	e := newEnv(t, nil)
	w := e.do(t, "GET", "/v1/models", "")
	resp := decode[api.ModelList](t, w)
	var ids []string
	for _, m := range resp.Data {
		ids = append(ids, m.ID)
	}
	if w.Code != 200 || strings.Join(ids, ",") != "base,base:r1,norm,raw,ab" {
		t.Fatalf("status %d ids %v", w.Code, ids)
	}
}

func ndjson[T any](t *testing.T, body string) []T {
	t.Helper()
	var out []T
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		var v T
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out = append(out, v)
	}
	return out
}

func TestOllamaChat(t *testing.T) {
	e := newEnv(t, nil)
	body := `{"model":"base","messages":[{"role":"User","content":"hi"}],"options":{"seed":5,"temperature":0.2,"top_k":3,"num_predict":9,"stop":["q"],"repeat_penalty":1.3,"num_ctx":4096}}`
	w := e.do(t, "POST", "/api/chat", body)
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	lines := ndjson[ollamaChatResponse](t, w.Body.String())
	var text string
	for i, l := range lines {
		text += l.Message.Content
		if l.Done != (i == len(lines)-1) {
			t.Errorf("line %d done=%v", i, l.Done)
		}
	}
	final := lines[len(lines)-1]
	if text != fakeText("", 5, 0) || final.DoneReason != "stop" || final.EvalCount != len(strings.Fields(text)) || final.Variant != "base" {
		t.Errorf("text %q final %+v", text, final)
	}
	req := e.gen.last()
	sp := req.Sampling
	if sp.Seed != 5 || sp.Temperature != float32(0.2) || sp.TopK != 3 || req.MaxTokens != 9 || sp.RepeatPenalty != float32(1.3) ||
		sp.TopP != float32(0.9) || sp.RepeatLastN != 64 || len(req.Stop) != 1 {
		t.Errorf("engine request %+v", req)
	}
	w = e.do(t, "POST", "/api/chat", `{"model":"base:r1","stream":false,"messages":[{"role":"user","content":"hi"}]}`)
	resp := decode[ollamaChatResponse](t, w)
	if w.Code != 200 || !resp.Done || len(resp.Candidates) != 5 || resp.Message.Content != resp.Candidates[0].Text || resp.Candidates[0].Rank != 1 {
		t.Errorf("status %d resp %+v", w.Code, resp)
	}
}

func TestOllamaGenerate(t *testing.T) {
	e := newEnv(t, nil)
	w := e.do(t, "POST", "/api/generate", `{"model":"base","prompt":"hi","system":"sys","options":{"seed":1}}`)
	lines := ndjson[ollamaGenerateResponse](t, w.Body.String())
	var text string
	for _, l := range lines {
		text += l.Response
	}
	if w.Code != 200 || text != fakeText("", 1, 0) || !lines[len(lines)-1].Done {
		t.Fatalf("status %d text %q", w.Code, text)
	}
	if req := e.gen.last(); req.Prompt != "system: sys\nuser: hi\nassistant:" || req.RewardPrompt != "hi" {
		t.Errorf("prompt %q", req.Prompt)
	}
	w = e.do(t, "POST", "/api/generate", `{"model":"raw","prompt":"Once","raw":true,"stream":false}`)
	resp := decode[ollamaGenerateResponse](t, w)
	if w.Code != 200 || !resp.Done || e.gen.last().Prompt != "Once" {
		t.Errorf("raw: status %d %+v prompt %q", w.Code, resp, e.gen.last().Prompt)
	}
	calls := e.gen.calls()
	w = e.do(t, "POST", "/api/generate", `{"model":"base"}`)
	resp = decode[ollamaGenerateResponse](t, w)
	if w.Code != 200 || !resp.Done || resp.DoneReason != "load" || e.gen.calls() != calls {
		t.Errorf("load request: %d %+v", w.Code, resp)
	}
}

func TestOllamaInfoRoutes(t *testing.T) {
	e := newEnv(t, nil)
	w := e.do(t, "GET", "/api/tags", "")
	tags := decode[ollama.ListResponse](t, w)
	if w.Code != 200 || len(tags.Models) != 5 || tags.Models[0].Name != "base" || tags.Models[0].Details.ParameterSize != "260K" {
		t.Fatalf("tags %+v", tags)
	}
	w = e.do(t, "POST", "/api/show", `{"model":"ab"}`)
	show := decode[ollama.ShowResponse](t, w)
	if w.Code != 200 || show.Details.Family != "llama" || show.Template != "alpaca" || !strings.Contains(show.Parameters, "variant R1 base:r1 1") {
		t.Fatalf("show %+v", show)
	}
	w = e.do(t, "GET", "/api/version", "")
	if v := decode[map[string]string](t, w); v["version"] != "test-1" {
		t.Fatalf("version %v", v)
	}
	if w := e.do(t, "GET", "/v1/models/base:r1", ""); w.Code != 200 || decode[api.Model](t, w).ID != "base:r1" {
		t.Errorf("GET /v1/models/base:r1: %d %s", w.Code, w.Body)
	}
	if w := e.do(t, "GET", "/v1/models/nope", ""); w.Code != 404 {
		t.Errorf("GET /v1/models/nope: %d", w.Code)
	}
	if ps := decode[ollama.ProcessResponse](t, e.do(t, "GET", "/api/ps", "")); len(ps.Models) != 5 || ps.Models[0].ContextLength != 512 {
		t.Errorf("ps %+v", ps)
	}
	if w := e.do(t, "HEAD", "/", ""); w.Code != 200 {
		t.Errorf("HEAD /: %d", w.Code)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if w := e.do(t, "GET", p, ""); w.Code != 200 {
			t.Errorf("%s: %d", p, w.Code)
		}
	}
	e.srv.BeginShutdown()
	if w := e.do(t, "GET", "/readyz", ""); w.Code != 503 {
		t.Errorf("readyz while draining: %d", w.Code)
	}
}

// TestErrors checks every error path: status, API shape, and that the internal cause is not leaked.
func TestErrors(t *testing.T) {
	chat := func(extra string) string {
		return `{"model":"base","messages":[{"role":"user","content":"hi"}]` + extra + `}`
	}
	cases := []struct {
		name       string
		path, body string
		status     int
		code       string
		param      string
	}{
		{"bad json", "/v1/chat/completions", `{"model":`, 400, "invalid_json", ""},
		{"empty body", "/v1/chat/completions", ``, 400, "invalid_json", ""},
		{"two values", "/v1/chat/completions", `{} {}`, 400, "invalid_json", ""},
		{"wrong type", "/v1/chat/completions", `{"model":"base","n":"two","messages":[]}`, 400, "invalid_type", "n"},
		{"no model", "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`, 400, "invalid_value", "model"},
		{"unknown model", "/v1/chat/completions", `{"model":"gpt-9","messages":[{"role":"user","content":"hi"}]}`, 404, "model_not_found", "model"},
		{"empty messages", "/v1/chat/completions", `{"model":"base","messages":[]}`, 400, "invalid_value", "messages"},
		{"bad role", "/v1/chat/completions", `{"model":"base","messages":[{"role":"tool","content":"x"}]}`, 400, "invalid_value", "messages[0].role"},
		{"image part", "/v1/chat/completions", `{"model":"base","messages":[{"role":"user","content":[{"type":"image_url"}]}]}`, 400, "invalid_json", ""},
		{"template refuses", "/v1/chat/completions", `{"model":"base","messages":[{"role":"user","content":"FAIL"}]}`, 400, "invalid_messages", "messages"},
		{"no template", "/v1/chat/completions", `{"model":"raw","messages":[{"role":"user","content":"hi"}]}`, 400, "no_template", "model"},
		{"temperature", "/v1/chat/completions", chat(`,"temperature":2.5`), 400, "invalid_value", "temperature"},
		{"top_p", "/v1/chat/completions", chat(`,"top_p":-0.1`), 400, "invalid_value", "top_p"},
		{"presence", "/v1/chat/completions", chat(`,"presence_penalty":3`), 400, "invalid_value", "presence_penalty"},
		{"top_k", "/v1/chat/completions", chat(`,"top_k":-1`), 400, "invalid_value", "top_k"},
		{"max_tokens zero", "/v1/chat/completions", chat(`,"max_tokens":0`), 400, "invalid_value", "max_tokens"},
		{"max_tokens over limit", "/v1/chat/completions", chat(`,"max_completion_tokens":101`), 400, "invalid_value", "max_completion_tokens"},
		{"n zero", "/v1/chat/completions", chat(`,"n":0`), 400, "invalid_value", "n"},
		{"n over limit", "/v1/chat/completions", chat(`,"n":9`), 400, "invalid_value", "n"},
		{"best_of below n", "/v1/chat/completions", chat(`,"n":3,"best_of":2`), 400, "invalid_value", "best_of"},
		{"rerank value", "/v1/chat/completions", chat(`,"rerank":"gpt4"`), 400, "invalid_value", "rerank"},
		{"rerank without reward", "/v1/chat/completions", `{"model":"norm","rerank":"reward","messages":[{"role":"user","content":"hi"}]}`, 400, "invalid_value", "rerank"},
		{"too many stops", "/v1/chat/completions", chat(`,"stop":["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17"]`), 400, "invalid_value", "stop"},
		{"empty stop", "/v1/chat/completions", chat(`,"stop":""`), 400, "invalid_value", "stop"},
		{"logit bias key", "/v1/chat/completions", chat(`,"logit_bias":{"abc":1}`), 400, "invalid_value", "logit_bias"},
		{"logit bias value", "/v1/chat/completions", chat(`,"logit_bias":{"5":101}`), 400, "invalid_value", "logit_bias"},
		{"top_logprobs", "/v1/chat/completions", chat(`,"logprobs":true,"top_logprobs":21`), 400, "invalid_value", "top_logprobs"},
		{"two prompts", "/v1/completions", `{"model":"raw","prompt":["a","b"]}`, 400, "invalid_value", "prompt"},
		{"completion logprobs", "/v1/completions", `{"model":"raw","prompt":"a","logprobs":6}`, 400, "invalid_value", "logprobs"},
		{"context length", "/v1/chat/completions", chat(``), 400, "context_length_exceeded", "messages"},
		{"context length completion", "/v1/completions", `{"model":"raw","prompt":"a"}`, 400, "context_length_exceeded", "prompt"},
		{"queue full", "/v1/chat/completions", chat(``), 429, "rate_limit_exceeded", ""},
		{"closed", "/v1/chat/completions", chat(``), 503, "shutting_down", ""},
		{"deadline", "/v1/completions", `{"model":"raw","prompt":"a"}`, 504, "timeout", ""},
		{"internal", "/v1/chat/completions", chat(``), 500, "", ""},
		{"engine validation", "/v1/chat/completions", chat(``), 400, "invalid_request", ""},
		{"kv too large", "/v1/chat/completions", chat(``), 400, "invalid_request", ""},
		{"unknown route", "/v1/embeddings", `{}`, 404, "", ""},
		{"wrong method", "/v1/chat/completions", ``, 405, "", ""},
		{"body too large", "/v1/chat/completions", `{"model":"base","messages":[{"role":"user","content":"` + strings.Repeat("x", 2000) + `"}]}`, 413, "request_too_large", ""},
	}
	genErrs := map[string]error{
		"context length":            fmt.Errorf("wrapped: %w", &engine.ContextLengthError{PromptTokens: 600, MaxTokens: 10, ContextLen: 512}),
		"queue full":                fmt.Errorf("wrapped: %w", engine.ErrQueueFull),
		"context length completion": &engine.ContextLengthError{PromptTokens: 600, ContextLen: 512},
		"closed":                    engine.ErrClosed,
		"deadline":                  context.DeadlineExceeded,
		"internal":                  errors.New("secret internal cause"),
		"engine validation":         fmt.Errorf("%w: N=40 > MaxActiveSeqs", engine.ErrBadRequest),
		"kv too large":              fmt.Errorf("%w: needs 9000 tokens", engine.ErrTooLarge),
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, func(cfg *Config) { cfg.Limits.MaxBodyBytes = 1000 })
			e.gen.err = genErrs[c.name]
			method := "POST"
			if c.name == "wrong method" {
				method = "PUT"
			}
			w := e.do(t, method, c.path, c.body)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d: %s", w.Code, c.status, w.Body)
			}
			resp := decode[api.ErrorResponse](t, w)
			if resp.Error.Message == "" || resp.Error.Type == "" {
				t.Errorf("error shape %s", w.Body)
			}
			if strings.Contains(w.Body.String(), "secret") {
				t.Errorf("internal cause leaked: %s", w.Body)
			}
			gotCode, gotParam := "", ""
			if resp.Error.Code != nil {
				gotCode = *resp.Error.Code
			}
			if resp.Error.Param != nil {
				gotParam = *resp.Error.Param
			}
			if c.code != "" && gotCode != c.code || gotParam != c.param {
				t.Errorf("code %q param %q, want %q %q: %s", gotCode, gotParam, c.code, c.param, w.Body)
			}
			if c.status == 429 && w.Header().Get("Retry-After") != "1" {
				t.Errorf("Retry-After %q", w.Header().Get("Retry-After"))
			}
		})
	}
}

func TestOllamaErrors(t *testing.T) {
	cases := []struct {
		name, path, body string
		genErr           error
		status           int
		contains         string
	}{
		{"bad json", "/api/chat", `{`, nil, 400, "invalid JSON"},
		{"unknown model", "/api/chat", `{"model":"nope","messages":[{"role":"user","content":"hi"}]}`, nil, 404, `"nope" not found`},
		{"bad role", "/api/chat", `{"model":"base","messages":[{"role":"user","content":"hi"},{"role":"bot","content":"x"}]}`, nil, 400, "role"},
		{"option type", "/api/generate", `{"model":"base","prompt":"x","options":{"top_k":"many"}}`, nil, 400, `"top_k" must be an integer`},
		{"option fraction", "/api/generate", `{"model":"base","prompt":"x","options":{"seed":1.5}}`, nil, 400, `"seed" must be an integer`},
		{"option range", "/api/generate", `{"model":"base","prompt":"x","options":{"temperature":9}}`, nil, 400, "temperature must be in"},
		{"stop type", "/api/generate", `{"model":"base","prompt":"x","options":{"stop":[1]}}`, nil, 400, "array of strings"},
		{"tools", "/api/chat", `{"model":"base","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function"}]}`, nil, 400, "not supported"},
		{"images", "/api/generate", `{"model":"base","prompt":"x","images":["aGk="]}`, nil, 400, "not supported"},
		{"format", "/api/generate", `{"model":"base","prompt":"x","format":{"type":"object"}}`, nil, 400, "not supported"},
		{"show unknown", "/api/show", `{"model":"nope"}`, nil, 404, "not found"},
		{"queue full", "/api/generate", `{"model":"base","prompt":"x"}`, engine.ErrQueueFull, 429, "overloaded"},
		{"context", "/api/chat", `{"model":"base","messages":[{"role":"user","content":"hi"}]}`, &engine.ContextLengthError{PromptTokens: 9, ContextLen: 4}, 400, "context length"},
		{"internal", "/api/generate", `{"model":"base","prompt":"x","stream":false}`, errors.New("secret"), 500, "internal error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.gen.err = c.genErr
			w := e.do(t, "POST", c.path, c.body)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d: %s", w.Code, c.status, w.Body)
			}
			var resp map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || len(resp) != 1 {
				t.Fatalf("not Ollama's error shape: %s", w.Body)
			}
			msg, _ := resp["error"].(string)
			if !strings.Contains(msg, c.contains) || strings.Contains(msg, "secret") {
				t.Errorf("error %q, want it to contain %q", msg, c.contains)
			}
		})
	}
}

func TestPanicIs500(t *testing.T) {
	e := newEnv(t, nil)
	e.gen.panicMsg = "boom"
	for _, stream := range []string{"false", "true"} {
		w := e.do(t, "POST", "/api/generate", `{"model":"base","prompt":"x","stream":`+stream+`}`)
		if w.Code != 500 || !strings.Contains(w.Body.String(), "internal error") || strings.Contains(w.Body.String(), "boom") {
			t.Fatalf("stream %s: status %d: %s", stream, w.Code, w.Body)
		}
	}
}

// TestStreamErrorBeforeFirstEvent checks that a stream failing before any output still gets a real status.
func TestStreamErrorBeforeFirstEvent(t *testing.T) {
	e := newEnv(t, nil)
	e.gen.err = engine.ErrQueueFull
	w := e.do(t, "POST", "/v1/chat/completions", `{"model":"base","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	if w.Code != 429 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Limits.MaxConcurrent = 1 })
	e.gen.started = make(chan struct{})
	e.gen.release = make(chan struct{})
	started := e.gen.started
	done := make(chan int)
	go func() {
		done <- e.do(t, "POST", "/api/generate", `{"model":"base","prompt":"x","stream":false}`).Code
	}()
	<-started
	w := e.do(t, "POST", "/v1/completions", `{"model":"raw","prompt":"x"}`)
	if w.Code != 429 || w.Header().Get("Retry-After") == "" {
		t.Errorf("second request: %d %s", w.Code, w.Body)
	}
	if w := e.do(t, "GET", "/v1/models", ""); w.Code != 200 {
		t.Errorf("listing models is not limited, got %d", w.Code)
	}
	close(e.gen.release)
	if code := <-done; code != 200 {
		t.Errorf("first request: %d", code)
	}
}

// TestClientDisconnectCancels checks that a client going away cancels the generation's context.
func TestClientDisconnectCancels(t *testing.T) {
	for _, body := range []string{
		`{"model":"base","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"base","stream":true,"messages":[{"role":"user","content":"hi"}]}`,
	} {
		e := newEnv(t, nil)
		e.gen.block = true
		e.gen.started = make(chan struct{})
		e.gen.cancelled = make(chan error, 1)
		started := e.gen.started
		ts := httptest.NewServer(e.h)
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/chat/completions", strings.NewReader(body))
		errc := make(chan error, 1)
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			errc <- err
		}()
		<-started
		cancel()
		select {
		case err := <-e.gen.cancelled:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("generation ended with %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("generation was not cancelled")
		}
		<-errc
		ts.Close()
	}
}

// TestGracefulShutdown checks that Shutdown waits for an in-flight request, which completes normally.
func TestGracefulShutdown(t *testing.T) {
	e := newEnv(t, nil)
	e.gen.started = make(chan struct{})
	e.gen.release = make(chan struct{})
	started := e.gen.started
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: e.h}
	go hs.Serve(ln)
	type result struct {
		code int
		body string
		err  error
	}
	resc := make(chan result, 1)
	go func() {
		resp, err := http.Post("http://"+ln.Addr().String()+"/v1/completions", "application/json", strings.NewReader(`{"model":"raw","prompt":"x","seed":4}`))
		if err != nil {
			resc <- result{err: err}
			return
		}
		defer resp.Body.Close()
		var cr api.CompletionResponse
		err = json.NewDecoder(resp.Body).Decode(&cr)
		text := ""
		if len(cr.Choices) > 0 {
			text = cr.Choices[0].Text
		}
		resc <- result{resp.StatusCode, text, err}
	}()
	<-started
	e.srv.BeginShutdown()
	shut := make(chan error, 1)
	go func() { shut <- hs.Shutdown(context.Background()) }()
	select {
	case <-shut:
		t.Fatal("Shutdown returned while a request was in flight")
	case <-time.After(100 * time.Millisecond):
	}
	close(e.gen.release)
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	r := <-resc
	if r.err != nil || r.code != 200 || r.body != fakeText("", 4, 0) {
		t.Fatalf("in-flight request: %+v", r)
	}
}

func TestNewValidates(t *testing.T) {
	gen := &fakeGen{}
	bad := []Config{
		{},
		{Models: []Model{{Name: "a"}}},
		{Models: []Model{{Name: "a", Generator: gen}, {Name: "a", Generator: gen}}},
		{Models: []Model{{Name: "a", Generator: gen}}, Experiments: []Experiment{{Name: "a", Variants: []Variant{{Name: "x", Model: "a", Weight: 1}}}}},
		{Models: []Model{{Name: "a", Generator: gen}}, Experiments: []Experiment{{Name: "e"}}},
		{Models: []Model{{Name: "a", Generator: gen}}, Experiments: []Experiment{{Name: "e", Variants: []Variant{{Name: "x", Model: "b", Weight: 1}}}}},
		{Models: []Model{{Name: "a", Generator: gen}}, Experiments: []Experiment{{Name: "e", Variants: []Variant{{Name: "x", Model: "a", Weight: 0}}}}},
		{Models: []Model{{Name: "a", Generator: gen}}, Experiments: []Experiment{{Name: "e", Variants: []Variant{{Name: "x", Model: "a", Weight: 1}, {Name: "x", Model: "a", Weight: 1}}}}},
	}
	for i, cfg := range bad {
		if _, err := New(cfg); err == nil || !strings.HasPrefix(err.Error(), "server: ") {
			t.Errorf("config %d: err %v", i, err)
		}
	}
}

// TestMaxTokens checks how each API's length field reaches the engine: unset (and Ollama's 0, -1 and -2) asks
// for as many tokens as fit, bounded by the server's limit; a value is a demand, within the limit.
func TestMaxTokens(t *testing.T) {
	e := newEnv(t, nil)
	for _, c := range []struct {
		path, body   string
		status       int
		maxTokens    int
		defaultLimit int
	}{
		{"/v1/completions", `{"model":"base","prompt":"x"}`, 200, 0, 100},
		{"/v1/completions", `{"model":"base","prompt":"x","max_tokens":60}`, 200, 60, 100},
		{"/v1/chat/completions", `{"model":"base","max_completion_tokens":7,"max_tokens":9,"messages":[{"role":"user","content":"hi"}]}`, 200, 7, 100},
		{"/v1/completions", `{"model":"base","prompt":"x","max_tokens":101}`, 400, 0, 0},
		{"/v1/completions", `{"model":"base","prompt":"x","max_tokens":0}`, 400, 0, 0},
		{"/v1/completions", `{"model":"base","prompt":"x","max_tokens":-5}`, 400, 0, 0},
		{"/api/generate", `{"model":"base","prompt":"x","stream":false,"options":{"num_predict":7}}`, 200, 7, 100},
		{"/api/generate", `{"model":"base","prompt":"x","stream":false,"options":{"num_predict":0}}`, 200, 0, 100},
		{"/api/generate", `{"model":"base","prompt":"x","stream":false,"options":{"num_predict":-1}}`, 200, 0, 100},
		{"/api/generate", `{"model":"base","prompt":"x","stream":false,"options":{"num_predict":-2}}`, 200, 0, 100},
		{"/api/generate", `{"model":"base","prompt":"x","stream":false,"options":{"num_predict":101}}`, 400, 0, 0},
	} {
		calls := e.gen.calls()
		w := e.do(t, "POST", c.path, c.body)
		if w.Code != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.body, w.Code, c.status, w.Body)
			continue
		}
		if c.status != 200 {
			if e.gen.calls() != calls {
				t.Errorf("%s: rejected after reaching the generator", c.body)
			}
			continue
		}
		if req := e.gen.last(); req.MaxTokens != c.maxTokens || req.DefaultMaxTokens != c.defaultLimit {
			t.Errorf("%s: engine MaxTokens %d DefaultMaxTokens %d, want %d %d", c.body, req.MaxTokens, req.DefaultMaxTokens, c.maxTokens, c.defaultLimit)
		}
	}
}

// TestRequestTimeout checks the deadline middleware: a generation still running at Limits.RequestTimeout is
// cancelled and answered 504.
func TestRequestTimeout(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Limits.RequestTimeout = 50 * time.Millisecond })
	e.gen.block = true
	e.gen.cancelled = make(chan error, 1)
	w := e.do(t, "POST", "/api/chat", `{"model":"base","stream":false,"messages":[{"role":"user","content":"hi"}]}`)
	if w.Code != 504 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if err := <-e.gen.cancelled; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("generation ended with %v", err)
	}
}

// FuzzEndpoints posts arbitrary bodies to every POST route: the answer is never a 500 and always the API's
// error shape when it is an error.
func FuzzEndpoints(f *testing.F) {
	for _, s := range []string{
		`{"model":"base","messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"ab","n":3,"best_of":4,"stream":true,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`,
		`{"model":"raw","prompt":["a"],"logprobs":2,"echo":true,"logit_bias":{"1":5}}`,
		`{"model":"base","prompt":"x","options":{"seed":-1,"num_predict":-2,"stop":"a","rerank":true}}`,
		`{"model":"base:r1","messages":[],"options":{"best_of":1e300}}`,
		`[]`, `null`, `"x"`, `{"model":1}`,
	} {
		for path := 0; path < 5; path++ {
			f.Add(path, s)
		}
	}
	e := newEnv(f, nil)
	paths := []string{"/v1/chat/completions", "/v1/completions", "/api/chat", "/api/generate", "/api/show"}
	f.Fuzz(func(t *testing.T, path int, body string) {
		p := paths[(path%len(paths)+len(paths))%len(paths)]
		w := e.do(t, "POST", p, body)
		if w.Code >= 500 {
			t.Fatalf("%s %q: status %d: %s", p, body, w.Code, w.Body)
		}
		if w.Code >= 400 {
			var m map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil || m["error"] == nil {
				t.Fatalf("%s %q: error body %s", p, body, w.Body)
			}
		}
	})
}

// TestScoredBaselineStreams checks that a single candidate that is only scored (rerank with N=1) still streams
// live and reports its score.
func TestScoredBaselineStreams(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Models[0].Rerank = true })
	w := e.do(t, "POST", "/v1/chat/completions", `{"model":"base","seed":2,"stream":true,"return_candidates":true,"messages":[{"role":"user","content":"hi"}]}`)
	chunks, text := 0, ""
	var cands []api.Candidate
	for _, ev := range sseEvents(t, w.Body.String()) {
		var ch api.ChatCompletionChunk
		if err := json.Unmarshal([]byte(ev), &ch); err != nil {
			t.Fatal(err)
		}
		for _, c := range ch.Choices {
			if c.Delta.Content != "" {
				chunks++
				text += c.Delta.Content
			}
		}
		if ch.Candidates != nil {
			cands = ch.Candidates
		}
	}
	if req := e.gen.last(); !req.Rerank || req.N != 1 || req.OnEvent == nil {
		t.Errorf("engine request rerank=%v N=%d", req.Rerank, req.N)
	}
	if want := fakeText("", 2, 0); text != want || chunks != len(strings.Fields(want)) {
		t.Errorf("streamed %q in %d chunks", text, chunks)
	}
	if len(cands) != 1 || cands[0].Score == nil {
		t.Errorf("candidates %+v", cands)
	}
	if got := histCount(t, e.reg, "bestofn:reward_score", map[string]string{"variant": "base"}); got != 1 {
		t.Errorf("baseline score not recorded: %d", got)
	}
}
