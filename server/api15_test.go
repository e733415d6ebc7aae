package server

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/bestofn/bestofn/api"
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
