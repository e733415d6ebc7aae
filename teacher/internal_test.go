package teacher

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/bestofn/bestofn/teacher/teachertest"
)

func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		h    http.Header
		want time.Duration
	}{
		{http.Header{"Retry-After": {"7"}}, 7 * time.Second},
		{http.Header{"Retry-After": {"1.5"}}, 1500 * time.Millisecond},
		{http.Header{"Retry-After": {"Tue, 01 Dec 2026 10:00:20 GMT"}}, 20 * time.Second},
		{http.Header{"Retry-After": {"Tue, 01 Dec 2026 09:00:00 GMT"}}, 0},
		{http.Header{"Retry-After-Ms": {"250"}, "Retry-After": {"9"}}, 250 * time.Millisecond},
		{http.Header{"Retry-After": {"soon"}}, 0},
		{http.Header{"Retry-After": {"-3"}}, 0},
		{nil, 0},
	} {
		if got := retryAfter(c.h, now); got != c.want {
			t.Errorf("%v: %v, want %v", c.h, got, c.want)
		}
	}
}

// TestBackoff: the waits double from 0.5 s, are capped, stay within [d/2, d], and repeat for a seed.
func TestBackoff(t *testing.T) {
	a, err := New(Config{BaseURL: "http://127.0.0.1:1", Model: "m", Seed: 42, MaxBackoffSeconds: 4})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := New(Config{BaseURL: "http://127.0.0.1:1", Model: "m", Seed: 42, MaxBackoffSeconds: 4})
	other, _ := New(Config{BaseURL: "http://127.0.0.1:1", Model: "m", Seed: 43, MaxBackoffSeconds: 4})
	same := true
	for k := range 8 {
		d := min(4*time.Second, 500*time.Millisecond<<k)
		x, y, z := a.backoff(k), b.backoff(k), other.backoff(k)
		if x < d/2 || x > d {
			t.Errorf("backoff(%d) = %v outside [%v, %v]", k, x, d/2, d)
		}
		if x != y {
			t.Errorf("backoff(%d) differs for one seed: %v vs %v", k, x, y)
		}
		same = same && x == z
	}
	if same {
		t.Error("another seed gave the same jitter")
	}
}

func TestKindOfStatus(t *testing.T) {
	for code, want := range map[int]Kind{429: KindRateLimited, 408: KindTransient, 409: KindTransient, 500: KindTransient,
		503: KindTransient, 400: KindPermanent, 401: KindPermanent, 404: KindPermanent, 422: KindPermanent} {
		if got := kindOfStatus(code); got != want {
			t.Errorf("%d: %v, want %v", code, got, want)
		}
	}
}

// TestTokensPerMinute: the token bucket holds a minute's tokens and refills at TPM/60 per second; each request
// takes its estimate (len(prompt)/4 + 4 + max_tokens) before it is sent, so a third request of 210 tokens
// against 600 per minute waits until 630 tokens have accrued: 3 s after the client was made.
func TestTokensPerMinute(t *testing.T) {
	t.Parallel() // mostly waiting
	srv := teachertest.Serve(t)
	start := time.Now()
	c, err := New(Config{BaseURL: srv.URL + "/v1", Model: "llama-gpt4", TokensPerMinute: 600})
	if err != nil {
		t.Fatal(err)
	}
	if c.tokLimit.Burst() != 600 || float64(c.tokLimit.Limit()) != 10 {
		t.Fatalf("bucket %d tokens at %v/s", c.tokLimit.Burst(), c.tokLimit.Limit())
	}
	msgs := User("hi")
	opts := Options{MaxTokens: 206, Stop: []string{"."}}
	if est := estimateTokens(msgs, opts); est != 210 {
		t.Fatalf("estimate %d", est)
	}
	for i := range 3 {
		if _, err := c.Chat(context.Background(), msgs, opts); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); i < 2 && el > 2500*time.Millisecond {
			t.Logf("slow machine: request %d done after %v", i, el)
		}
	}
	if el := time.Since(start); el < 2900*time.Millisecond {
		t.Errorf("three requests of 210 tokens at 600 per minute done after %v, want at least 3 s", el)
	}
}
