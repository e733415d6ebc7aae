package teacher

import (
	"net/http"
	"testing"
	"time"
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
