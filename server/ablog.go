package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
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

// ABLogOptions tune an ABLog. Zero fields take the defaults noted.
type ABLogOptions struct {
	// QueueSize bounds the records waiting for the writer; a Write beyond it waits (nothing is dropped).
	// 0 means 4096.
	QueueSize int
	// Logger receives write and fsync failures, which the writer cannot return to anyone; nil means
	// slog.Default().
	Logger *slog.Logger
}

// abFile is what the log writes to: an *os.File, or a test's stand-in.
type abFile interface {
	io.Writer
	Sync() error
	Close() error
}

// ABLog appends ABRecords as JSON lines to a file, off the request path: Write only queues the encoded line,
// and one writer goroutine commits what has queued up since its last commit in one write(2) and one fsync
// (group commit), so disk latency never adds to a request unless the queue is full. Lines never interleave.
//
// Durability: Close (a clean shutdown) writes and fsyncs every record queued before it; Flush waits until every
// record queued before it is on disk. A crash (kill -9, power loss) loses at most the records still queued or
// in the commit under way (at most QueueSize plus one batch; typically the last few milliseconds' worth), and a
// power loss may leave a partial last line, which readers should skip. It is safe for concurrent use.
type ABLog struct {
	f     abFile
	log   *slog.Logger
	queue chan abItem
	done  chan struct{} // closed when the writer has exited

	mu     sync.RWMutex // held for reading while sending on queue, for writing by Close
	closed bool
	err    error // the writer's first failure, returned by Close
}

// abItem is a queued line, or (flushed != nil) a request to be told when everything before it is on disk.
type abItem struct {
	line    []byte
	flushed chan error
}

// OpenABLog opens (creating if needed) the JSONL file at path for appending and starts its writer.
func OpenABLog(path string, opts ABLogOptions) (*ABLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("server: open A/B log: %w", err)
	}
	return newABLog(f, opts), nil
}

func newABLog(f abFile, opts ABLogOptions) *ABLog {
	if opts.QueueSize <= 0 {
		opts.QueueSize = 4096
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	l := &ABLog{f: f, log: opts.Logger, queue: make(chan abItem, opts.QueueSize), done: make(chan struct{})}
	go l.writer()
	return l
}

// errABLogClosed is returned by Write after Close.
var errABLogClosed = errors.New("server: A/B log is closed")

// Write queues rec as one line. It waits only when QueueSize records are already waiting.
func (l *ABLog) Write(rec ABRecord) error {
	line, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("server: encode A/B record: %w", err)
	}
	return l.send(abItem{line: append(line, '\n')})
}

// Flush returns once every record written before it is on disk (written and fsynced), with the error of
// that commit.
func (l *ABLog) Flush() error {
	ch := make(chan error, 1)
	if err := l.send(abItem{flushed: ch}); err != nil {
		return err
	}
	return <-ch
}

func (l *ABLog) send(it abItem) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return errABLogClosed
	}
	l.queue <- it
	return nil
}

// writer commits batches until the queue is closed and empty.
func (l *ABLog) writer() {
	defer close(l.done)
	var buf []byte
	var waiting []chan error
	for it := range l.queue {
		buf, waiting = buf[:0], waiting[:0]
		for more := true; more; {
			if it.flushed != nil {
				waiting = append(waiting, it.flushed)
			}
			buf = append(buf, it.line...)
			select {
			case it, more = <-l.queue: // takes what else is queued, without waiting
			default:
				more = false
			}
		}
		err := l.commit(buf)
		for _, ch := range waiting {
			ch <- err
		}
	}
}

// commit writes and fsyncs one batch; a failure is logged and kept for Close.
func (l *ABLog) commit(buf []byte) error {
	if len(buf) == 0 {
		return nil
	}
	_, err := l.f.Write(buf)
	if err == nil {
		err = l.f.Sync()
	}
	if err != nil {
		err = fmt.Errorf("server: A/B log: %w", err)
		l.log.Error("A/B log commit failed", "err", err, "bytes", len(buf))
		if l.err == nil {
			l.err = err
		}
	}
	return err
}

// Close stops accepting records, commits every queued one and closes the file. Safe to call twice.
func (l *ABLog) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.done
		return nil
	}
	l.closed = true
	close(l.queue)
	l.mu.Unlock()
	<-l.done
	if err := l.f.Close(); err != nil && l.err == nil {
		l.err = fmt.Errorf("server: close A/B log: %w", err)
	}
	return l.err
}
