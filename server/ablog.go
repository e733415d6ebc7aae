package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// ABRecord is one line of the A/B log: what was asked, which variant answered, what it answered and how the
// reward model scored every candidate, for offline judging (e.g. by GPT-4 or humans, as in the paper).
type ABRecord struct {
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id"`
	// Model is the requested model or experiment name; Variant the variant that served it.
	Model    string `json:"model"`
	Variant  string `json:"variant"`
	Endpoint string `json:"endpoint"`
	// Prompt is the user's instruction (the reward model's prompt).
	Prompt string `json:"prompt"`
	// Answer is the chosen answer (the first choice).
	Answer string `json:"answer"`
	// Scores are the reward scores of the candidates in sampling order; empty when not reranked.
	Scores []float32 `json:"scores,omitempty"`
	// Chosen is the sampling index of the answer.
	Chosen   int  `json:"chosen"`
	N        int  `json:"n"`
	Degraded bool `json:"degraded,omitempty"`
}

// ABLog appends ABRecords as JSON lines to a file. Each record is one write(2) of a whole line to a file
// opened with O_APPEND, so lines never interleave; durability is controlled by SyncEvery: with 1 every line is
// fsynced before Write returns (a record acknowledged is a record on disk), with k > 1 every k-th line and on
// Close (at most k-1 records lost on a crash). It is safe for concurrent use.
type ABLog struct {
	mu        sync.Mutex
	f         *os.File
	syncEvery int
	pending   int
	closed    bool
}

// OpenABLog opens (creating if needed) the JSONL file at path for appending. syncEvery <= 0 means 1.
func OpenABLog(path string, syncEvery int) (*ABLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("server: open A/B log: %w", err)
	}
	if syncEvery <= 0 {
		syncEvery = 1
	}
	return &ABLog{f: f, syncEvery: syncEvery}, nil
}

// errABLogClosed is returned by Write after Close.
var errABLogClosed = errors.New("server: A/B log is closed")

// Write appends rec as one line.
func (l *ABLog) Write(rec ABRecord) error {
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("server: encode A/B record: %w", err)
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errABLogClosed
	}
	if _, err := l.f.Write(line); err != nil {
		return fmt.Errorf("server: write A/B log: %w", err)
	}
	l.pending++
	if l.pending >= l.syncEvery {
		l.pending = 0
		if err := l.f.Sync(); err != nil {
			return fmt.Errorf("server: sync A/B log: %w", err)
		}
	}
	return nil
}

// Close syncs and closes the file.
func (l *ABLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	serr := l.f.Sync()
	cerr := l.f.Close()
	if err := errors.Join(serr, cerr); err != nil {
		return fmt.Errorf("server: close A/B log: %w", err)
	}
	return nil
}
