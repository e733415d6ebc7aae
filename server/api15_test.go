package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	ollama "github.com/ollama/ollama/api"

	"github.com/openai/openai-go"
	"github.com/openai/openai-go/option"
	"github.com/openai/openai-go/shared"

	"github.com/bestofn/bestofn/api"
	"github.com/bestofn/bestofn/engine"
)

// TestChatAnswersTrimLeadingSpace checks that chat answers (OpenAI chat, Ollama chat and templated generate,
// streamed or not) drop the white space a continuation of the template starts with, while completions keep it.
func TestChatAnswersTrimLeadingSpace(t *testing.T) {
	e := newEnv(t, nil)
	e.gen.lead = " \n"
	want := fakeText("", 3, 0)
	msgs := `"messages":[{"role":"user","content":"hi"}]`
	resp := decode[api.ChatCompletionResponse](t, e.do(t, "POST", "/v1/chat/completions", `{"model":"base","seed":3,`+msgs+`}`))
	if got := string(resp.Choices[0].Message.Content); got != want {
		t.Errorf("chat answer %q, want %q", got, want)
	}
	w := e.do(t, "POST", "/v1/chat/completions", `{"model":"base","seed":3,"stream":true,`+msgs+`}`)
	var streamed string
	for _, ev := range sseEvents(t, w.Body.String()) {
		var ch api.ChatCompletionChunk
		if err := json.Unmarshal([]byte(ev), &ch); err != nil {
			t.Fatal(err)
		}
		for _, c := range ch.Choices {
			streamed += c.Delta.Content
		}
	}
	if streamed != want {
		t.Errorf("streamed chat answer %q, want %q", streamed, want)
	}
	var ollamaText string
	for _, l := range ndjson[ollamaChatResponse](t, e.do(t, "POST", "/api/chat", `{"model":"base","options":{"seed":3},`+msgs+`}`).Body.String()) {
		ollamaText += l.Message.Content
	}
	if ollamaText != want {
		t.Errorf("ollama chat answer %q, want %q", ollamaText, want)
	}
	gen := decode[ollamaGenerateResponse](t, e.do(t, "POST", "/api/generate", `{"model":"base","prompt":"hi","stream":false,"options":{"seed":3}}`))
	if gen.Response != want {
		t.Errorf("ollama templated generate %q, want %q", gen.Response, want)
	}
	raw := decode[ollamaGenerateResponse](t, e.do(t, "POST", "/api/generate", `{"model":"raw","prompt":"hi","raw":true,"stream":false,"options":{"seed":3}}`))
	comp := decode[api.CompletionResponse](t, e.do(t, "POST", "/v1/completions", `{"model":"raw","prompt":"hi","seed":3}`))
	if raw.Response != " \n"+want || comp.Choices[0].Text != " \n"+want {
		t.Errorf("completions must keep the leading space: raw generate %q, completion %q", raw.Response, comp.Choices[0].Text)
	}
}

// trimmedPieces is a helper for the streaming filter: what a choice streams after dropping leading space.
func trimmedPieces(pieces ...string) string {
	var tr answerTrimmer
	var b strings.Builder
	for _, p := range pieces {
		b.WriteString(tr.next(p))
	}
	return b.String()
}

func TestAnswerTrimmer(t *testing.T) {
	for _, c := range [][]string{{" ", "\n", " a", " b"}, {"", "  ", "a b"}, {"a", " b"}} {
		if got, want := trimmedPieces(c...), strings.TrimLeft(strings.Join(c, ""), " \t\r\n"); got != want {
			t.Errorf("%q: %q, want %q", c, got, want)
		}
	}
}

// TestBestOfWithoutRerankByLogprob checks that best_of > n without reranking returns the candidates with the
// highest mean log-probability per token, as OpenAI's best_of does, streamed or not, and through openai-go.
func TestBestOfWithoutRerankByLogprob(t *testing.T) {
	e := newEnv(t, nil)
	// Seed 1: candidate i has mean logprob -(1+(1+i)%3), so the order is 2, 0, 1 (then 5, 3, 4 for more).
	w := e.do(t, "POST", "/v1/chat/completions", `{"model":"base","seed":1,"n":2,"best_of":3,"rerank":"none","return_candidates":true,
		"messages":[{"role":"user","content":"hi"}]}`)
	resp := decode[api.ChatCompletionResponse](t, w)
	if len(resp.Choices) != 2 || string(resp.Choices[0].Message.Content) != fakeText("", 1, 2) ||
		string(resp.Choices[1].Message.Content) != fakeText("", 1, 0) {
		t.Fatalf("choices %+v, want candidates 2 then 0", resp.Choices)
	}
	if len(resp.Candidates) != 3 || resp.Candidates[0].Index != 2 || resp.Candidates[0].Rank != 1 || resp.Candidates[0].MeanLogprob == nil ||
		*resp.Candidates[0].MeanLogprob != -1 || resp.Candidates[2].Index != 1 {
		t.Errorf("candidates %+v", resp.Candidates)
	}
	if resp.Usage.CompletionTokens != 2+3+4 { // billed: every candidate (2, 3 and 4 words)
		t.Errorf("usage %+v, want every candidate's tokens", resp.Usage)
	}

	ts := httptest.NewServer(e.h)
	defer ts.Close()
	client := openai.NewClient(option.WithBaseURL(ts.URL+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
	params := openai.CompletionNewParams{Model: "raw", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("x")},
		BestOf: openai.Int(6), Seed: openai.Int(1)}
	comp, err := client.Completions.New(context.Background(), params, option.WithJSONSet("rerank", "none"))
	if err != nil {
		t.Fatal(err)
	}
	if comp.Choices[0].Text != fakeText("", 1, 2) {
		t.Errorf("completion %q, want candidate 2 %q", comp.Choices[0].Text, fakeText("", 1, 2))
	}
	stream := client.Completions.NewStreaming(context.Background(), params, option.WithJSONSet("rerank", "none"))
	var streamed string
	for stream.Next() {
		for _, ch := range stream.Current().Choices {
			streamed += ch.Text
		}
	}
	if err := stream.Err(); err != nil || streamed != fakeText("", 1, 2) {
		t.Errorf("streamed %q (%v), want candidate 2 %q", streamed, err, fakeText("", 1, 2))
	}
}

// TestValidationAtTheEdge checks that every out-of-range parameter is a 400 naming it, before the generator is
// called: the limits the sampler and the engine enforce are the server's too.
func TestValidationAtTheEdge(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Models[0].Info.VocabSize = 512 })
	chat := func(extra string) string {
		return `{"model":"base","messages":[{"role":"user","content":"hi"}]` + extra + `}`
	}
	gen := func(opts string) string {
		return `{"model":"base","prompt":"x","stream":false,"options":{` + opts + `}}`
	}
	long := `"` + strings.Repeat("s", 257) + `"`
	many := `[` + strings.Repeat(`"a",`, 16) + `"b"]`
	for _, c := range []struct {
		path, body, param string
	}{
		{"/v1/chat/completions", chat(`,"max_tokens":-5`), "max_tokens"},
		{"/v1/chat/completions", chat(`,"max_completion_tokens":0`), "max_completion_tokens"},
		{"/v1/chat/completions", chat(`,"min_p":1`), "min_p"},
		{"/v1/chat/completions", chat(`,"min_p":-0.1`), "min_p"},
		{"/v1/chat/completions", chat(`,"temperature":2.5`), "temperature"},
		{"/v1/chat/completions", chat(`,"top_p":1.5`), "top_p"},
		{"/v1/chat/completions", chat(`,"top_k":-1`), "top_k"},
		{"/v1/chat/completions", chat(`,"logit_bias":{"512":1}`), "logit_bias"},
		{"/v1/chat/completions", chat(`,"logit_bias":{"-1":1}`), "logit_bias"},
		{"/v1/chat/completions", chat(`,"logit_bias":{"7":101}`), "logit_bias"},
		{"/v1/chat/completions", chat(`,"top_logprobs":2`), "top_logprobs"},
		{"/v1/chat/completions", chat(`,"logprobs":true,"top_logprobs":21`), "top_logprobs"},
		{"/v1/chat/completions", chat(`,"stop":` + long), "stop"},
		{"/v1/chat/completions", chat(`,"stop":` + many), "stop"},
		{"/v1/chat/completions", chat(`,"stop":[""]`), "stop"},
		{"/v1/chat/completions", chat(`,"n":0`), "n"},
		{"/v1/chat/completions", chat(`,"n":9`), "n"},
		{"/v1/chat/completions", chat(`,"best_of":9`), "best_of"},
		{"/v1/chat/completions", chat(`,"n":3,"best_of":2`), "best_of"},
		{"/v1/chat/completions", chat(`,"presence_penalty":3`), "presence_penalty"},
		{"/v1/completions", `{"model":"base","prompt":"x","logprobs":6}`, "logprobs"},
		{"/v1/completions", `{"model":"base","prompt":"x","logit_bias":{"x":1}}`, "logit_bias"},
		{"/api/generate", gen(`"min_p":1`), "options.min_p"},
		{"/api/generate", gen(`"repeat_last_n":-2`), "options.repeat_last_n"},
		{"/api/generate", gen(`"repeat_last_n":70000`), "options.repeat_last_n"},
		{"/api/generate", gen(`"stop":[` + long + `]`), "options.stop"},
		{"/api/generate", gen(`"best_of":9`), "options.best_of"},
		{"/api/generate", gen(`"temperature":-1`), "options.temperature"},
	} {
		calls := e.gen.calls()
		w := e.do(t, "POST", c.path, c.body)
		var msg, param string
		if strings.HasPrefix(c.path, "/api/") {
			msg = decode[map[string]string](t, w)["error"]
			param = c.param
			if !strings.Contains(msg, strings.TrimPrefix(c.param, "options.")) {
				param = ""
			}
		} else {
			er := decode[api.ErrorResponse](t, w)
			msg = er.Error.Message
			if er.Error.Param != nil {
				param = *er.Error.Param
			}
		}
		if w.Code != 400 || param != c.param || strings.Contains(msg, "sampler:") || strings.Contains(msg, "engine:") {
			t.Errorf("%s %s: status %d param %q message %q, want 400 naming %q", c.path, c.body, w.Code, param, msg, c.param)
		}
		if e.gen.calls() != calls {
			t.Errorf("%s %s: reached the generator", c.path, c.body)
		}
	}
	// The edges are accepted.
	if w := e.do(t, "POST", "/v1/chat/completions", chat(`,"min_p":0.99,"top_k":0,"logit_bias":{"511":-100},"logprobs":true,"top_logprobs":20,"stop":`+many[:len(many)-5]+`]`)); w.Code != 200 {
		t.Errorf("edge values: status %d: %s", w.Code, w.Body)
	}
	// Ollama's repeat_last_n: -1 is the whole context (512 here), 0 turns the repetition penalty off.
	if w := e.do(t, "POST", "/api/generate", gen(`"repeat_last_n":-1,"repeat_penalty":1.3`)); w.Code != 200 || e.gen.last().Sampling.RepeatLastN != 512 {
		t.Errorf("repeat_last_n -1: status %d, window %d: %s", w.Code, e.gen.last().Sampling.RepeatLastN, w.Body)
	}
	if w := e.do(t, "POST", "/api/generate", gen(`"repeat_last_n":0,"repeat_penalty":1.3`)); w.Code != 200 || e.gen.last().Sampling.RepeatPenalty != 1 {
		t.Errorf("repeat_last_n 0: status %d, repeat penalty %v: %s", w.Code, e.gen.last().Sampling.RepeatPenalty, w.Body)
	}
}

// TestUnsupportedFeaturesRefused checks that request fields that would change the answer and that bestofn
// does not implement are 400s naming the field, on both APIs, while JSON mode reaches the engine.
func TestUnsupportedFeaturesRefused(t *testing.T) {
	e := newEnv(t, nil)
	msgs := `"messages":[{"role":"user","content":"hi"}]`
	for _, c := range []struct{ path, body, param string }{
		{"/v1/chat/completions", `{"model":"base",` + msgs + `,"tools":[{"type":"function","function":{"name":"f"}}]}`, "tools"},
		{"/v1/chat/completions", `{"model":"base",` + msgs + `,"tool_choice":"required"}`, "tool_choice"},
		{"/v1/chat/completions", `{"model":"base",` + msgs + `,"tool_choice":{"type":"function","function":{"name":"f"}}}`, "tool_choice"},
		{"/v1/chat/completions", `{"model":"base",` + msgs + `,"functions":[{"name":"f"}]}`, "functions"},
		{"/v1/chat/completions", `{"model":"base",` + msgs + `,"function_call":{"name":"f"}}`, "function_call"},
		{"/v1/chat/completions", `{"model":"base",` + msgs + `,"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{}}}}`, "response_format"},
		{"/v1/chat/completions", `{"model":"base",` + msgs + `,"response_format":{"type":"yaml"}}`, "response_format"},
		{"/v1/chat/completions", `{"model":"base",` + msgs + `,"audio":{"voice":"alloy","format":"mp3"},"modalities":["text","audio"]}`, "audio"},
		{"/v1/chat/completions", `{"model":"base",` + msgs + `,"modalities":["audio"]}`, "modalities"},
		{"/v1/chat/completions", `{"model":"base",` + msgs + `,"web_search_options":{"search_context_size":"low"}}`, "web_search_options"},
		{"/v1/chat/completions", `{"model":"base","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":null,"tool_calls":[{"id":"1"}]},{"role":"user","content":"x"}]}`, "messages[1].tool_calls"},
		{"/v1/completions", `{"model":"base","prompt":"x","suffix":"y"}`, "suffix"},
		{"/v1/completions", `{"model":"base","prompt":"x","response_format":{"type":"json_schema"}}`, "response_format"},
	} {
		calls := e.gen.calls()
		w := e.do(t, "POST", c.path, c.body)
		er := decode[api.ErrorResponse](t, w)
		if w.Code != 400 || er.Error.Param == nil || *er.Error.Param != c.param || e.gen.calls() != calls {
			t.Errorf("%s: status %d %s, want 400 naming %q before generating", c.body, w.Code, w.Body, c.param)
		}
	}
	for _, c := range []struct{ path, body, contains string }{
		{"/api/generate", `{"model":"base","prompt":"x","format":{"type":"object"}}`, "format"},
		{"/api/generate", `{"model":"base","prompt":"x","format":"yaml"}`, "format"},
		{"/api/generate", `{"model":"base","prompt":"x","think":true}`, "does not support thinking"},
		{"/api/chat", `{"model":"base",` + msgs + `,"think":"high"}`, "does not support thinking"},
	} {
		w := e.do(t, "POST", c.path, c.body)
		if msg := decode[map[string]string](t, w)["error"]; w.Code != 400 || !strings.Contains(msg, c.contains) {
			t.Errorf("%s: status %d %q", c.body, w.Code, msg)
		}
	}
	// Plain text choices are fine; JSON mode reaches the engine, from openai-go's own encoding and Ollama's.
	for _, body := range []string{`{"model":"base",` + msgs + `,"tool_choice":"none","function_call":"auto","modalities":["text"],"response_format":{"type":"text"}}`} {
		if w := e.do(t, "POST", "/v1/chat/completions", body); w.Code != 200 || e.gen.last().Sampling.JSON {
			t.Errorf("%s: status %d (JSON %v): %s", body, w.Code, e.gen.last().Sampling.JSON, w.Body)
		}
	}
	ts := httptest.NewServer(e.h)
	defer ts.Close()
	client := openai.NewClient(option.WithBaseURL(ts.URL+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
	jsonObject := shared.ResponseFormatJSONObjectParam{}
	_, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{Model: "base",
		Messages:       []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
		ResponseFormat: openai.ChatCompletionNewParamsResponseFormatUnion{OfJSONObject: &jsonObject}})
	if err != nil || !e.gen.last().Sampling.JSON {
		t.Errorf("response_format json_object from openai-go: %v, JSON %v", err, e.gen.last().Sampling.JSON)
	}
	if w := e.do(t, "POST", "/api/chat", `{"model":"base",`+msgs+`,"format":"json","stream":false}`); w.Code != 200 || !e.gen.last().Sampling.JSON {
		t.Errorf("ollama format json: status %d, JSON %v", w.Code, e.gen.last().Sampling.JSON)
	}
}

// TestOllamaV0174Behaviour checks, with Ollama's own client, what Ollama v0.17.4 (server/routes.go,
// api/types.go) does and bestofn did differently: load and unload requests, unknown options, the eval rate of
// best-of-N, degraded_reason, /api/ps expiry and a semantic version.
func TestOllamaV0174Behaviour(t *testing.T) {
	var logs strings.Builder
	e := newEnv(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		c.Version = "0.3.1"
	})
	ts := httptest.NewServer(e.h)
	defer ts.Close()
	u, _ := url.Parse(ts.URL)
	client := ollama.NewClient(u, ts.Client())
	ctx := context.Background()

	zero := &ollama.Duration{Duration: 0}
	for _, c := range []struct {
		keepAlive *ollama.Duration
		want      string
	}{{nil, "load"}, {&ollama.Duration{Duration: time.Minute}, "load"}, {zero, "unload"}} {
		var chat ollama.ChatResponse
		if err := client.Chat(ctx, &ollama.ChatRequest{Model: "base", KeepAlive: c.keepAlive}, func(r ollama.ChatResponse) error {
			chat = r
			return nil
		}); err != nil || !chat.Done || chat.DoneReason != c.want || chat.Message.Role != "assistant" {
			t.Errorf("chat without messages, keep_alive %v: %+v %v, want done_reason %q", c.keepAlive, chat, err, c.want)
		}
		var gen ollama.GenerateResponse
		if err := client.Generate(ctx, &ollama.GenerateRequest{Model: "base", System: "sys", KeepAlive: c.keepAlive}, func(r ollama.GenerateResponse) error {
			gen = r
			return nil
		}); err != nil || !gen.Done || gen.DoneReason != c.want {
			t.Errorf("generate without a prompt, keep_alive %v: %+v %v, want done_reason %q", c.keepAlive, gen, err, c.want)
		}
	}
	if e.gen.calls() != 0 {
		t.Errorf("load requests generated %d times", e.gen.calls())
	}

	// Unknown options are ignored with a warning; a wrong type is still an error.
	var text string
	err := client.Generate(ctx, &ollama.GenerateRequest{Model: "base", Prompt: "x", Options: map[string]any{"temprature": 0.1, "seed": 1}},
		func(r ollama.GenerateResponse) error { text += r.Response; return nil })
	if err != nil || text != fakeText("", 1, 0) || !strings.Contains(logs.String(), "temprature") {
		t.Errorf("unknown option: %q %v; log %q", text, err, logs.String())
	}
	if err := client.Generate(ctx, &ollama.GenerateRequest{Model: "base", Prompt: "x", Options: map[string]any{"top_k": "many"}},
		func(ollama.GenerateResponse) error { return nil }); err == nil {
		t.Error("option of the wrong type accepted")
	}
	// raw mode cannot take a system prompt (Ollama's 400).
	if err := client.Generate(ctx, &ollama.GenerateRequest{Model: "base", Prompt: "x", Raw: true, System: "s"},
		func(ollama.GenerateResponse) error { return nil }); err == nil {
		t.Error("raw with system accepted")
	}

	// Best of 5: eval_count counts every candidate's tokens, which eval_duration covers.
	var final ollama.ChatResponse
	if err := client.Chat(ctx, &ollama.ChatRequest{Model: "base:r1", Messages: []ollama.Message{{Role: "user", Content: "hi"}},
		Options: map[string]any{"seed": 1}}, func(r ollama.ChatResponse) error { final = r; return nil }); err != nil {
		t.Fatal(err)
	}
	if want := 2 + 3 + 4 + 1 + 2; final.EvalCount != want { // seed 1: candidates of 2, 3, 4, 1 and 2 words
		t.Errorf("eval_count %d, want %d (all candidates)", final.EvalCount, want)
	}

	// degraded_reason reaches Ollama clients too.
	e.gen.degrade = true
	w := e.do(t, "POST", "/api/chat", `{"model":"base:r1","stream":false,"messages":[{"role":"user","content":"hi"}]}`)
	if resp := decode[ollamaChatResponse](t, w); !resp.Degraded || resp.DegradedReason != "scorer timed out" {
		t.Errorf("degraded %v reason %q", resp.Degraded, resp.DegradedReason)
	}

	ps, err := client.ListRunning(ctx)
	if err != nil || len(ps.Models) == 0 || time.Until(ps.Models[0].ExpiresAt) < 100*365*24*time.Hour {
		t.Errorf("ps %+v %v: loaded models never expire, so expires_at should be far ahead (Ollama's keep_alive -1)", ps, err)
	}
	if v, err := client.Version(ctx); err != nil || !semverRE.MatchString(v) {
		t.Errorf("version %q %v, want a semantic version", v, err)
	}
	if w := e.do(t, "HEAD", "/api/version", ""); w.Code != 200 {
		t.Errorf("HEAD /api/version: %d", w.Code)
	}
}

// semverRE is semver.org's suggested regular expression for a version (without a leading "v").
var semverRE = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

func TestDefaultVersionIsSemver(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Version = "" })
	if v := decode[map[string]string](t, e.do(t, "GET", "/api/version", ""))["version"]; !semverRE.MatchString(v) {
		t.Errorf("default version %q", v)
	}
}

// TestCompletionStreamUsageAndOffsets checks streamed /v1/completions as OpenAI sends it and openai-go reads
// it: with include_usage, usage comes in a last chunk of its own with no choices; and text_offset counts
// characters (not bytes) from the start of the choice's text, past the echoed prompt, streamed or not.
func TestCompletionStreamUsageAndOffsets(t *testing.T) {
	e := newEnv(t, nil)
	ts := httptest.NewServer(e.h)
	defer ts.Close()
	client := openai.NewClient(option.WithBaseURL(ts.URL+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
	const prompt = "héllo, 世界"
	params := openai.CompletionNewParams{Model: "raw", Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String(prompt)},
		Seed: openai.Int(2), Echo: openai.Bool(true), Logprobs: openai.Int(1), N: openai.Int(2),
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}}
	stream := client.Completions.NewStreaming(context.Background(), params)
	var chunks []openai.Completion
	for stream.Next() {
		chunks = append(chunks, stream.Current())
	}
	if err := stream.Err(); err != nil || len(chunks) < 3 {
		t.Fatalf("%d chunks, %v", len(chunks), err)
	}
	last := chunks[len(chunks)-1]
	if len(last.Choices) != 0 || last.Usage.TotalTokens == 0 || last.Usage.CompletionTokens != 3+4 { // seed 2: candidates of 3 and 4 words
		t.Errorf("last chunk %+v: want usage alone", last)
	}
	for _, ch := range chunks[:len(chunks)-1] {
		if ch.Usage.TotalTokens != 0 || len(ch.Choices) != 1 {
			t.Errorf("chunk %+v: usage or choices misplaced", ch)
		}
	}
	var streamed []openai.CompletionChoiceLogprobs
	for _, ch := range chunks {
		for _, c := range ch.Choices {
			if len(c.Logprobs.TextOffset) > 0 {
				streamed = append(streamed, c.Logprobs)
			}
		}
	}
	comp, err := client.Completions.New(context.Background(), params)
	if err != nil {
		t.Fatal(err)
	}
	runes := int64(utf8.RuneCountInString(prompt))
	for j, lp := range append([]openai.CompletionChoiceLogprobs{comp.Choices[0].Logprobs}, streamed...) {
		text := prompt
		for i, off := range lp.TextOffset {
			if want := int64(utf8.RuneCountInString(text)); off != want || i == 0 && off != runes {
				t.Errorf("logprobs %d, token %d: text_offset %d, want %d characters", j, i, off, want)
			}
			text += lp.Tokens[i]
		}
	}
	if len(streamed) != 2 {
		t.Errorf("%d streamed choices carried logprobs, want 2", len(streamed))
	}
}

func TestTextOffsetsSplitCharacters(t *testing.T) {
	// "é" split over two byte tokens: the second starts inside the character, at its index.
	lps := []engine.TokenLogprob{{Text: "a"}, {Text: "\xc3"}, {Text: "\xa9"}, {Text: "b"}}
	if got := textOffsets("日", lps); fmt.Sprint(got) != "[1 2 2 3]" {
		t.Errorf("offsets %v, want [1 2 2 3]", got)
	}
}

// TestSlowBodyHoldsNoSlot checks that a client sending its body slowly takes no generation slot: with one
// slot, a socket that sent half a body does not make other requests 429, and it is answered 408 once the
// body-read timeout passes. A generation longer than that timeout is not cut by it.
func TestSlowBodyHoldsNoSlot(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Limits.MaxConcurrent = 1
		c.Limits.BodyReadTimeout = 300 * time.Millisecond
	})
	ts := httptest.NewServer(e.h)
	defer ts.Close()
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"model":"raw","prompt":"x"}`
	fmt.Fprintf(conn, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		len(body), body[:10])
	time.Sleep(50 * time.Millisecond) // the server has read the headers and waits for the body
	for i := 0; i < 3; i++ {
		resp, err := http.Post(ts.URL+"/v1/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d beside a slow body: status %d, want 200", i, resp.StatusCode)
		}
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.Contains(status, "408") {
		t.Errorf("slow body: %q %v, want a 408 after the body-read timeout", status, err)
	}

	// A generation that outlasts the body-read timeout completes.
	e.gen.release = make(chan struct{})
	go func() { time.Sleep(600 * time.Millisecond); close(e.gen.release) }()
	resp, err := http.Post(ts.URL+"/v1/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("long generation: status %d", resp.StatusCode)
	}
}

// TestTTFTAsTheClientSees checks that time_to_first_token is the time until the client gets the first answer
// text: for R1 after ranking (here a scorer taking 150 ms), for a streamed baseline as its first token goes
// out; the engine's own figure (admission to first sampled token) has its own name.
func TestTTFTAsTheClientSees(t *testing.T) {
	e := newEnv(t, nil)
	e.gen.scoreDelay = 150 * time.Millisecond
	for _, stream := range []string{"false", "true"} {
		e.do(t, "POST", "/v1/chat/completions", `{"model":"ab","stream":`+stream+`,"messages":[{"role":"user","content":"hi"}]}`, HeaderVariant, "R1")
	}
	e.do(t, "POST", "/v1/chat/completions", `{"model":"ab","stream":true,"messages":[{"role":"user","content":"hi"}]}`, HeaderVariant, "B")
	r1 := map[string]string{"model": "ab", "variant": "R1"}
	b := map[string]string{"model": "ab", "variant": "B"}
	if n, sum := histStats(t, e.reg, "bestofn:time_to_first_token_seconds", r1); n != 2 || sum < 2*0.150 {
		t.Errorf("R1 time to first token: %d samples summing %.3fs, want 2 of at least the 150 ms of ranking", n, sum)
	}
	if n, sum := histStats(t, e.reg, "bestofn:time_to_first_token_seconds", b); n != 1 || sum >= 0.150 {
		t.Errorf("B time to first token: %d samples summing %.3fs, want 1 well under 150 ms", n, sum)
	}
	// The fake engine reports queue 1 ms + first token 2 ms.
	if n, sum := histStats(t, e.reg, "bestofn:engine_time_to_first_token_seconds", r1); n != 2 || math.Abs(sum-2*0.003) > 1e-9 {
		t.Errorf("R1 engine time to first token: %d samples summing %.4fs, want 2 of 3 ms", n, sum)
	}
}
