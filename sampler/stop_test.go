package sampler

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// naiveStop is the reference: concatenate everything, find the first stop string to complete (try every
// end position in order, and at that end every start, earliest first), cut there.
func naiveStop(pieces, stops []string) (string, bool) {
	full := strings.Join(pieces, "")
	for end := 0; end <= len(full); end++ {
		for start := 0; start < end; start++ {
			for _, s := range stops {
				if full[start:end] == s {
					return full[:start], true
				}
			}
		}
	}
	return full, false
}

// runMatcher feeds the pieces and checks the invariants at every step: the held text is always a proper
// prefix of some stop string, and emitted text is never retracted.
func runMatcher(t *testing.T, pieces, stops []string) (string, bool) {
	t.Helper()
	m, err := NewStopMatcher(stops)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	stopped := false
	for _, p := range pieces {
		emit, st := m.Feed(p)
		out.WriteString(emit)
		if st {
			stopped = true
			break
		}
		if h := m.held; h != "" {
			ok := false
			for _, s := range stops {
				if len(h) < len(s) && strings.HasPrefix(s, h) {
					ok = true
				}
			}
			if !ok {
				t.Fatalf("held %q is not a proper prefix of any stop string %q", h, stops)
			}
		}
	}
	if !stopped {
		out.WriteString(m.Flush())
	}
	return out.String(), stopped
}

func splitRandom(r *rand.Rand, s string) []string {
	var pieces []string
	for len(s) > 0 {
		n := 1 + r.IntN(min(len(s), 6))
		if r.IntN(8) == 0 {
			pieces = append(pieces, "") // empty pieces happen (e.g. a byte token mid-character)
		}
		pieces = append(pieces, s[:n])
		s = s[n:]
	}
	return pieces
}

func TestStopMatcherCases(t *testing.T) {
	cases := []struct {
		pieces, stops []string
		want          string
		stopped       bool
	}{
		{[]string{"Hello", " wor", "ld"}, nil, "Hello world", false},
		{[]string{"Hello ### Instr", "uction: more"}, []string{"### Instruction:"}, "Hello ", true},
		{[]string{"a", "b", "c", "d"}, []string{"bc"}, "a", true},
		{[]string{"ab", "ab", "ac"}, []string{"abac"}, "ab", true},
		{[]string{"x</", "s", "x"}, []string{"</s>"}, "x</sx", false},
		{[]string{"USER", ":"}, []string{"USER:", "SER"}, "U", true}, // the first to complete wins
		{[]string{"abcd"}, []string{"abcd", "bc"}, "a", true},        // even inside one piece
		{[]string{"xabc"}, []string{"bc", "abc"}, "x", true},         // same end: earliest start
		{[]string{"中文", "回答", "。"}, []string{"回答"}, "中文", true},
		{[]string{"stop"}, []string{"stop"}, "", true},
	}
	for i, c := range cases {
		got, stopped := runMatcher(t, c.pieces, c.stops)
		if got != c.want || stopped != c.stopped {
			t.Errorf("case %d: %q %v, want %q %v", i, got, stopped, c.want, c.stopped)
		}
	}
	// Nothing that could start a stop string is emitted early.
	m, _ := NewStopMatcher([]string{"\n\n### "})
	if emit, _ := m.Feed("answer.\n"); emit != "answer." {
		t.Errorf("emitted %q, want the newline held back", emit)
	}
	if emit, _ := m.Feed("\n#"); emit != "" {
		t.Errorf("emitted %q, want everything held back", emit)
	}
	if emit, _ := m.Feed("x"); emit != "\n\n#x" {
		t.Errorf("emitted %q, want the held text released", emit)
	}
}

func TestStopMatcherRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	alphabet := []string{"a", "b", "c", "#", "\n", "é"}
	word := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		return b.String()
	}
	for c := range 3000 {
		text := word(r.IntN(40))
		stops := make([]string, 1+r.IntN(3))
		for i := range stops {
			stops[i] = word(1 + r.IntN(4))
		}
		pieces := splitRandom(r, text)
		want, wantStop := naiveStop(pieces, stops)
		got, gotStop := runMatcher(t, pieces, stops)
		if got != want || gotStop != wantStop {
			t.Fatalf("case %d: pieces %q stops %q: got %q %v, want %q %v", c, pieces, stops, got, gotStop, want, wantStop)
		}
	}
}

func FuzzStopMatcher(f *testing.F) {
	f.Add("Hello ### Instruction: x", "### Instruction:", "</s>", uint64(1))
	f.Add("aaaaab", "aab", "b", uint64(2))
	f.Add("no stop here", "zz", "yy", uint64(3))
	f.Add("中文回答。", "回答", "答。", uint64(4))
	f.Fuzz(func(t *testing.T, text, stop1, stop2 string, seed uint64) {
		var stops []string
		for _, s := range []string{stop1, stop2} {
			if s != "" && len(s) <= MaxStopLen {
				stops = append(stops, s)
			}
		}
		pieces := splitRandom(rand.New(rand.NewPCG(seed, 0)), text)
		want, wantStop := naiveStop(pieces, stops)
		got, gotStop := runMatcher(t, pieces, stops)
		if got != want || gotStop != wantStop {
			t.Fatalf("pieces %q stops %q: got %q %v, want %q %v", pieces, stops, got, gotStop, want, wantStop)
		}
	})
}

func TestStopMatcherErrors(t *testing.T) {
	for _, stops := range [][]string{{""}, {strings.Repeat("x", MaxStopLen+1)}, make([]string, MaxStopStrings+1)} {
		if _, err := NewStopMatcher(stops); err == nil || !strings.HasPrefix(err.Error(), "sampler: ") {
			t.Errorf("%d stop strings: error %v", len(stops), err)
		}
	}
}

func TestStopMatcherFeedAllocatesNothing(t *testing.T) {
	m, _ := NewStopMatcher([]string{"### Instruction:", "</s>"})
	allocs := testing.AllocsPerRun(100, func() {
		if _, stopped := m.Feed(" token"); stopped {
			t.Fatal("stopped")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per Feed", allocs)
	}
}
