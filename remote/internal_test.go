package remote

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/bestofn/bestofn/api"
)

// TestBreakerStates walks the circuit breaker through its states on a fake clock.
func TestBreakerStates(t *testing.T) {
	br := &breaker{cfg: BreakerConfig{Failures: 3, OpenFor: time.Second, MaxOpenFor: 3 * time.Second}.withDefaults()}
	now := time.Unix(1000, 0)
	state := func() string {
		var st api.BackendStatus
		br.fill(&st, now)
		return st.State
	}
	fail := func() {
		probe, err := br.allow(now)
		if err != nil {
			t.Fatalf("allow: %v", err)
		}
		br.record(failing, probe, "boom", now)
	}
	fail()
	fail()
	br.record(neutral, false, "", now) // a rejected request changes nothing
	if state() != api.BackendClosed {
		t.Fatalf("after 2 failures: %s", state())
	}
	fail()
	if state() != api.BackendOpen || br.check(now) == nil {
		t.Fatalf("after 3 failures: %s", state())
	}
	if _, err := br.allow(now.Add(999 * time.Millisecond)); err == nil || !strings.Contains(err.Error(), "circuit open after 3") {
		t.Fatalf("open: %v", err)
	}
	now = now.Add(time.Second)
	probe, err := br.allow(now)
	if err != nil || !probe || state() != api.BackendHalfOpen {
		t.Fatalf("after the open period: probe %v, %v, %s", probe, err, state())
	}
	if _, err := br.allow(now); err != errProbing {
		t.Fatalf("second request while probing: %v", err)
	}
	br.record(failing, true, "still down", now)
	var st api.BackendStatus
	br.fill(&st, now)
	if st.State != api.BackendOpen || st.RetryAt.Sub(now) != 2*time.Second || st.LastError != "still down" {
		t.Fatalf("failed probe: %+v", st)
	}
	now = now.Add(2 * time.Second)
	probe, _ = br.allow(now)
	br.record(failing, probe, "down", now)
	br.fill(&st, now)
	if st.RetryAt.Sub(now) != 3*time.Second {
		t.Fatalf("open period %v, want the 3s cap", st.RetryAt.Sub(now))
	}
	now = now.Add(3 * time.Second)
	probe, _ = br.allow(now)
	br.record(neutral, probe, "", now) // the probe's client went away: the next request probes
	probe, err = br.allow(now)
	if err != nil || !probe {
		t.Fatalf("after a neutral probe: %v %v", probe, err)
	}
	br.record(healthy, probe, "", now)
	if br.fill(&st, now); st.State != api.BackendClosed || st.ConsecutiveFailures != 0 {
		t.Fatalf("after a good probe: %+v", st)
	}
	disabled := &breaker{cfg: BreakerConfig{Failures: -1}.withDefaults()}
	for i := 0; i < 10; i++ {
		disabled.record(failing, false, "x", now)
	}
	if _, err := disabled.allow(now); err != nil {
		t.Fatalf("disabled breaker: %v", err)
	}
}

// TestLineCheck: the NDJSON checker finds the first line that is not JSON, across read boundaries and at the
// end of a body without a final newline.
func TestLineCheck(t *testing.T) {
	for _, tc := range []struct{ body, bad string }{
		{"{\"a\":1}\n{\"b\":2}\n", ""},
		{"{\"a\":1}\n{\"b\": oops}\n{\"c\":3}\n", "{\"b\": oops}"},
		{"{\"a\":1}\n<html>", "<html>"},
		{"\n\n{\"a\":1}\n", ""},
	} {
		st := &lineState{}
		lc := &lineCheck{rc: io.NopCloser(&slowReader{s: tc.body}), st: st}
		if _, err := io.ReadAll(lc); err != nil {
			t.Fatal(err)
		}
		if bad, _ := st.get(); bad != tc.bad {
			t.Errorf("%q: bad line %q, want %q", tc.body, bad, tc.bad)
		}
	}
}

// slowReader returns 3 bytes per Read.
type slowReader struct{ s string }

func (r *slowReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	n := copy(p[:min(3, len(p))], r.s)
	r.s = r.s[n:]
	return n, nil
}
