package teacher_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bestofn/bestofn/teacher"
	"github.com/bestofn/bestofn/teacher/teachertest"
)

func ptr[T any](v T) *T { return &v }

// configs returns the same served model as an OpenAI and as an Ollama endpoint of base (a server or a proxy).
func configs(base string) map[string]teacher.Config {
	return map[string]teacher.Config{
		teacher.ProviderOpenAI: {Provider: teacher.ProviderOpenAI, BaseURL: base + "/v1", Model: "llama-gpt4", Seed: 1},
		teacher.ProviderOllama: {Provider: teacher.ProviderOllama, BaseURL: base, Model: "llama-gpt4", Seed: 1},
	}
}

var greedy = teacher.Options{Temperature: ptr(0.0), MaxTokens: 24, Seed: ptr(int64(3))}

// TestBothAPIs asks a real bestofn server the same greedy question over its OpenAI and its Ollama API: both
// answer the same text (one model behind two wire formats), with usage, and the raw body holds that text.
func TestBothAPIs(t *testing.T) {
	srv := teachertest.Serve(t)
	ctx := context.Background()
	texts := map[string]string{}
	for name, cfg := range configs(srv.URL) {
		c, err := teacher.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		r, err := c.Chat(ctx, teacher.User("Tell me a story about a cat."), greedy)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.Text == "" || r.Usage.PromptTokens == 0 || r.Usage.CompletionTokens == 0 || r.Attempts != 1 {
			t.Errorf("%s: response %+v", name, r)
		}
		var raw any
		if err := json.Unmarshal(r.Raw, &raw); err != nil {
			t.Errorf("%s: raw is not JSON: %v: %s", name, err, r.Raw)
		}
		enc, _ := json.Marshal(r.Text)
		if !strings.Contains(string(r.Raw), strings.Trim(string(enc), `"`)) {
			t.Errorf("%s: raw %s does not hold the text %q", name, r.Raw, r.Text)
		}
		st := c.Stats()
		if st.Requests != 1 || st.Succeeded != 1 || st.PromptTokens != r.Usage.PromptTokens || st.CompletionTokens != r.Usage.CompletionTokens {
			t.Errorf("%s: stats %+v", name, st)
		}
		texts[name] = r.Text
	}
	if texts[teacher.ProviderOpenAI] != texts[teacher.ProviderOllama] {
		t.Errorf("greedy answers differ between the APIs:\nopenai: %q\nollama: %q", texts[teacher.ProviderOpenAI], texts[teacher.ProviderOllama])
	}
}

// TestExtraFields sends bestofn's extensions through openai-go (best_of 3, return_candidates, rerank none) and
// finds the three candidates in the raw response.
func TestExtraFields(t *testing.T) {
	srv := teachertest.Serve(t)
	c, err := teacher.New(configs(srv.URL)[teacher.ProviderOpenAI])
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Chat(context.Background(), teacher.User("Once"), teacher.Options{Temperature: ptr(1.0), MaxTokens: 8, Seed: ptr(int64(5)),
		Extra: map[string]any{"best_of": 3, "return_candidates": true, "rerank": "none"}})
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Candidates []struct {
			Index int    `json:"index"`
			Text  string `json:"text"`
		} `json:"candidates"`
	}
	if err := json.Unmarshal(r.Raw, &body); err != nil || len(body.Candidates) != 3 {
		t.Fatalf("candidates %+v (%v) in %s", body.Candidates, err, r.Raw)
	}
	if body.Candidates[0].Text != r.Text {
		t.Errorf("with rerank none the answer is candidate 0: %q vs %q", r.Text, body.Candidates[0].Text)
	}
}

// TestRateLimitRetryAfter puts a proxy answering 429 with Retry-After: 1 in front of the server for the first
// two requests: the call succeeds on the third attempt, after waiting about 2 s, without pausing.
func TestRateLimitRetryAfter(t *testing.T) {
	t.Parallel() // mostly waiting
	srv := teachertest.Serve(t)
	for name := range configs(srv.URL) {
		t.Run(name, func(t *testing.T) {
			proxy := teachertest.NewProxy(t, srv.URL, teachertest.TooManyRequests(2, "1"))
			var events []string
			c, err := teacher.New(configs(proxy.URL)[name], teacher.WithEvents(func(level, msg string, _ map[string]any) {
				events = append(events, msg)
			}))
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			r, err := c.Chat(context.Background(), teacher.User("hi"), greedy)
			if err != nil {
				t.Fatal(err)
			}
			if el := time.Since(start); el < 1900*time.Millisecond {
				t.Errorf("Retry-After not honoured: done in %v", el)
			}
			st := c.Stats()
			if r.Attempts != 3 || st.RateLimited != 2 || st.Pauses != 0 || proxy.Requests.Load() != 3 {
				t.Errorf("attempts %d, stats %+v, proxy saw %d", r.Attempts, st, proxy.Requests.Load())
			}
			if len(events) != 0 {
				t.Errorf("short 429s should not pause: %q", events)
			}
		})
	}
}

// TestLongRateLimitPauses: a Retry-After longer than pause_after_s pauses the whole client: an event says so,
// a request started during the pause is not sent before it ends, and both succeed after it.
func TestLongRateLimitPauses(t *testing.T) {
	t.Parallel() // mostly waiting
	srv := teachertest.Serve(t)
	var mu sync.Mutex
	var sent []time.Time
	proxy := teachertest.NewProxy(t, srv.URL, func(n int64, w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		sent = append(sent, time.Now())
		mu.Unlock()
		return teachertest.TooManyRequests(1, "2")(n, w, r)
	})
	cfg := configs(proxy.URL)[teacher.ProviderOpenAI]
	cfg.PauseAfterSeconds = 0.5
	paused := make(chan struct{})
	var events []string
	var evMu sync.Mutex
	c, err := teacher.New(cfg, teacher.WithEvents(func(level, msg string, data map[string]any) {
		evMu.Lock()
		defer evMu.Unlock()
		events = append(events, level+": "+msg)
		if strings.Contains(msg, "paused") {
			close(paused)
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now()
	errs := make(chan error, 2)
	go func() { _, err := c.Chat(ctx, teacher.User("first"), greedy); errs <- err }()
	<-paused
	go func() { _, err := c.Chat(ctx, teacher.User("second"), greedy); errs <- err }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sent) != 3 {
		t.Fatalf("proxy saw %d requests, want 3 (one 429, then both)", len(sent))
	}
	for _, at := range sent[1:] {
		if at.Sub(start) < 1900*time.Millisecond {
			t.Errorf("a request was sent %v after the start, inside the 2 s pause", at.Sub(start))
		}
	}
	st := c.Stats()
	if st.Pauses != 1 || st.PausedSeconds < 1.5 || st.Succeeded != 2 {
		t.Errorf("stats %+v", st)
	}
	evMu.Lock()
	defer evMu.Unlock()
	if len(events) != 2 || !strings.Contains(events[1], "resumed") {
		t.Errorf("events %q: want a pause and a resumption", events)
	}
}

// TestDroppedConnection: a proxy that cuts the first two answers in half (full Content-Length, half the body,
// then closes) makes both clients retry, and the third attempt's answer is the server's.
func TestDroppedConnection(t *testing.T) {
	t.Parallel() // mostly waiting
	srv := teachertest.Serve(t)
	for name := range configs(srv.URL) {
		t.Run(name, func(t *testing.T) {
			proxy := teachertest.NewProxy(t, srv.URL, teachertest.DropMidResponse(srv.URL, 2))
			cfg := configs(proxy.URL)[name]
			cfg.MaxBackoffSeconds = 0.2
			c, err := teacher.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			r, err := c.Chat(context.Background(), teacher.User("hi"), greedy)
			if err != nil {
				t.Fatal(err)
			}
			direct, err := teacher.New(configs(srv.URL)[name])
			if err != nil {
				t.Fatal(err)
			}
			want, err := direct.Chat(context.Background(), teacher.User("hi"), greedy)
			if err != nil {
				t.Fatal(err)
			}
			if r.Attempts != 3 || c.Stats().Retries != 2 || r.Text != want.Text {
				t.Errorf("attempts %d, stats %+v, text %q want %q", r.Attempts, c.Stats(), r.Text, want.Text)
			}
		})
	}
}

// TestRetriesSpent: with max_retries 1 and every answer cut off, the call fails as transient after 2 attempts.
func TestRetriesSpent(t *testing.T) {
	srv := teachertest.Serve(t)
	proxy := teachertest.NewProxy(t, srv.URL, teachertest.DropMidResponse(srv.URL, 100))
	cfg := configs(proxy.URL)[teacher.ProviderOpenAI]
	cfg.MaxRetries, cfg.MaxBackoffSeconds = 1, 0.1
	c, err := teacher.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Chat(context.Background(), teacher.User("hi"), greedy)
	var e *teacher.Error
	if !errors.As(err, &e) || e.Kind != teacher.KindTransient || e.Attempts != 2 {
		t.Fatalf("err %v (%+v)", err, e)
	}
}

// TestPermanent: an unknown model is a 404, failed at once with the server's body kept.
func TestPermanent(t *testing.T) {
	srv := teachertest.Serve(t)
	for name, cfg := range configs(srv.URL) {
		cfg.Model = "no-such-model"
		c, err := teacher.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Chat(context.Background(), teacher.User("hi"), greedy)
		var e *teacher.Error
		if !errors.As(err, &e) || e.Kind != teacher.KindPermanent || e.StatusCode != 404 || e.Attempts != 1 || !strings.Contains(string(e.Raw), "no-such-model") {
			t.Errorf("%s: err %v (%+v)", name, err, e)
		}
	}
}

// TestTimeout: a proxy slower than timeout_s gives a transient timeout; the caller's cancellation ends a call
// at once with the context's error.
func TestTimeout(t *testing.T) {
	t.Parallel() // mostly waiting
	srv := teachertest.Serve(t)
	proxy := teachertest.NewProxy(t, srv.URL, func(n int64, w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
		return false
	})
	cfg := configs(proxy.URL)[teacher.ProviderOllama]
	cfg.TimeoutSeconds, cfg.MaxRetries, cfg.MaxBackoffSeconds = 0.3, -1, 0.1
	c, err := teacher.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Chat(context.Background(), teacher.User("hi"), greedy)
	if !teacher.IsKind(err, teacher.KindTransient) || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("timeout: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	cfg.TimeoutSeconds = 10
	c, _ = teacher.New(cfg)
	start := time.Now()
	if _, err := c.Chat(ctx, teacher.User("hi"), greedy); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Errorf("cancelled call: %v after %v", err, time.Since(start))
	}
}

// TestAPIKey: the key is read from the named variable and sent as a bearer token on both APIs; a named but
// unset variable is a config error naming api_key_env.
func TestAPIKey(t *testing.T) {
	srv := teachertest.Serve(t)
	t.Setenv("TEACHERTEST_KEY", "sk-test-123")
	for name := range configs(srv.URL) {
		var got string
		proxy := teachertest.NewProxy(t, srv.URL, func(n int64, w http.ResponseWriter, r *http.Request) bool {
			got = r.Header.Get("Authorization")
			return false
		})
		cfg := configs(proxy.URL)[name]
		cfg.APIKeyEnv = "TEACHERTEST_KEY"
		c, err := teacher.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Chat(context.Background(), teacher.User("hi"), greedy); err != nil {
			t.Fatal(err)
		}
		if got != "Bearer sk-test-123" {
			t.Errorf("%s: Authorization %q", name, got)
		}
		if b, _ := json.Marshal(c.Config()); strings.Contains(string(b), "sk-test") {
			t.Errorf("%s: key in config %s", name, b)
		}
	}
	var ce *teacher.ConfigError
	if _, err := teacher.New(teacher.Config{BaseURL: "http://x", Model: "m", APIKeyEnv: "TEACHERTEST_UNSET"}); !errors.As(err, &ce) || ce.Field != "api_key_env" {
		t.Errorf("unset variable: %v", err)
	}
}

// TestRequestsPerMinute: 120 requests per minute (2 per second, burst 2): five requests take at least 1.5 s.
func TestRequestsPerMinute(t *testing.T) {
	t.Parallel() // mostly waiting
	srv := teachertest.Serve(t)
	cfg := configs(srv.URL)[teacher.ProviderOpenAI]
	cfg.RequestsPerMinute = 120
	c, err := teacher.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Chat(context.Background(), teacher.User("hi"), teacher.Options{MaxTokens: 2}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if el := time.Since(start); el < 1400*time.Millisecond {
		t.Errorf("5 requests at 2/s (burst 2) done in %v", el)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := teacher.Config{BaseURL: "http://127.0.0.1:1/v1", Model: "m"}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for field, mod := range map[string]func(*teacher.Config){
		"provider":            func(c *teacher.Config) { c.Provider = "anthropic" },
		"base_url":            func(c *teacher.Config) { c.BaseURL = "ftp://x" },
		"model":               func(c *teacher.Config) { c.Model = "" },
		"api_key_env":         func(c *teacher.Config) { c.APIKeyEnv = "sk-abc def" },
		"requests_per_minute": func(c *teacher.Config) { c.RequestsPerMinute = -1 },
		"concurrency":         func(c *teacher.Config) { c.Concurrency = -2 },
	} {
		c := ok
		mod(&c)
		var ce *teacher.ConfigError
		if err := c.Validate(); !errors.As(err, &ce) || ce.Field != field {
			t.Errorf("%s: %v", field, err)
		}
	}
}

// TestRepeated429Pauses: 429s without Retry-After are waited out with backoff; the third in a row pauses the
// client (one pause, then success).
func TestRepeated429Pauses(t *testing.T) {
	t.Parallel() // mostly waiting
	srv := teachertest.Serve(t)
	proxy := teachertest.NewProxy(t, srv.URL, teachertest.TooManyRequests(3, ""))
	var mu sync.Mutex
	var events []string
	c, err := teacher.New(configs(proxy.URL)[teacher.ProviderOllama], teacher.WithEvents(func(level, msg string, _ map[string]any) {
		mu.Lock()
		events = append(events, msg)
		mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Chat(context.Background(), teacher.User("hi"), greedy)
	if err != nil {
		t.Fatal(err)
	}
	st := c.Stats()
	if r.Attempts != 4 || st.RateLimited != 3 || st.Pauses != 1 || st.Failed != 0 {
		t.Errorf("attempts %d, stats %+v", r.Attempts, st)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 2 || !strings.Contains(events[0], "paused") || !strings.Contains(events[1], "resumed") {
		t.Errorf("events %q", events)
	}
}
