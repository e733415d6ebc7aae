package sampler

import (
	"slices"
	"strings"
)

// Limits on stop strings, so that a request cannot make the matcher hold unbounded text.
const (
	// MaxStopStrings is the largest number of stop strings a StopMatcher accepts.
	MaxStopStrings = 16
	// MaxStopLen is the longest stop string, in bytes, a StopMatcher accepts.
	MaxStopLen = 256
)

// StopMatcher finds stop strings in streamed text that arrives in pieces (one decoded token at a time), so
// that a stop string spanning token boundaries is caught and never emitted. Feed returns only text that
// can no longer become part of a stop string; text that might (a suffix that is a prefix of some stop
// string) is held back until the next piece decides it.
type StopMatcher struct {
	stops   []string
	held    string
	stopped bool
}

// CheckStops reports, as a *ParamError for "stop", empty, too many (more than MaxStopStrings) or too long
// (more than MaxStopLen bytes) stop strings: what NewStopMatcher refuses.
func CheckStops(stops []string) error {
	if len(stops) > MaxStopStrings {
		return paramErr("stop", "at most %d stop strings, got %d", MaxStopStrings, len(stops))
	}
	for i, s := range stops {
		if s == "" {
			return paramErr("stop", "stop string %d is empty", i)
		}
		if len(s) > MaxStopLen {
			return paramErr("stop", "stop string %d is %d bytes (at most %d)", i, len(s), MaxStopLen)
		}
	}
	return nil
}

// NewStopMatcher returns a matcher for the given stop strings; CheckStops says which it refuses. With no stop
// strings, Feed passes every piece through unchanged.
func NewStopMatcher(stops []string) (*StopMatcher, error) {
	if err := CheckStops(stops); err != nil {
		return nil, err
	}
	return &StopMatcher{stops: slices.Clone(stops)}, nil
}

// Feed adds the next piece of decoded text. It returns the text that is safe to emit now and whether a stop
// string was found. The match is the occurrence that completes first in the whole stream (the earliest
// end; among equal ends the earliest start), so the result does not depend on how the text was split
// into pieces and generation can stop at the token that completes it. On a match, emit is the text
// before the stop string's start and the matcher is done
// (later calls return "", true). When no stop string is held back, the returned text is a substring of
// piece and Feed allocates nothing.
func (m *StopMatcher) Feed(piece string) (emit string, stopped bool) {
	if m.stopped {
		return "", true
	}
	if len(m.stops) == 0 {
		return piece, false
	}
	text := piece
	if m.held != "" {
		text = m.held + piece
	}
	// The occurrence of a stop string that completes first (the earliest end; among equal ends, the
	// earliest start). Occurrences can only start inside the held part or the new piece: the held part is
	// the longest suffix of earlier text that could begin a stop string.
	first, firstEnd := -1, 0
	for _, s := range m.stops {
		i := strings.Index(text, s)
		if i < 0 {
			continue
		}
		if end := i + len(s); first < 0 || end < firstEnd || end == firstEnd && i < first {
			first, firstEnd = i, end
		}
	}
	if first >= 0 {
		m.stopped = true
		m.held = ""
		return text[:first], true
	}
	keep := partialSuffix(text, m.stops)
	m.held = text[len(text)-keep:]
	return text[:len(text)-keep], false
}

// Flush returns the held-back text at the end of generation (when no stop string matched) and empties the
// matcher.
func (m *StopMatcher) Flush() string {
	h := m.held
	m.held = ""
	return h
}

// partialSuffix returns the length of the longest proper suffix of text that is a prefix of some stop
// string (a full occurrence was already ruled out by the caller).
func partialSuffix(text string, stops []string) int {
	best := 0
	for _, s := range stops {
		n := min(len(s)-1, len(text))
		for l := n; l > best; l-- {
			if text[len(text)-l:] == s[:l] {
				best = l
				break
			}
		}
	}
	return best
}
