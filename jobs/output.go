package jobs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// errOutputBusy says that another worker (one that lost its lease but still runs) holds an output file: the
// attempt gives the job back to the queue rather than failing it.
var errOutputBusy = errors.New("jobs: output still in use by another worker")

// outputFile is an Output stored as JSON lines {"key": ..., "row": ...} in one file, appended with O_APPEND and
// fsynced per row. Rows are read back from the file (only their offsets are kept in memory).
type outputFile struct {
	dead func() bool // true once nothing may be written

	mu    sync.Mutex
	f     *os.File
	size  int64
	order []string
	spans map[string]span // where each row's JSON is in the file
}

type span struct{ off, n int64 }

// outputLine is one line of an output file.
type outputLine struct {
	Key string          `json:"key"`
	Row json.RawMessage `json:"row"`
}

// openOutputFile opens (creating) dir/name and indexes its rows. A last line without its newline is what a
// crash in the middle of an Append leaves: it is cut off (that Append never returned). A bad line before the
// last is corruption and an error.
//
// The file is locked (waiting up to lockWait) for as long as it is open.
func openOutputFile(dir, name string, dead func() bool, lockWait time.Duration) (*outputFile, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, name)
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	if err := lockFile(f, lockWait); err != nil {
		f.Close()
		return nil, err
	}
	if errors.Is(statErr, os.ErrNotExist) { // make the new entry durable
		if err := syncDir(dir); err != nil {
			f.Close()
			return nil, err
		}
	}
	o := &outputFile{dead: dead, f: f, spans: map[string]span{}}
	if err := o.index(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return o, nil
}

// index reads the file's rows and cuts off a torn last line.
func (o *outputFile) index() error {
	r := bufio.NewReaderSize(io.NewSectionReader(o.f, 0, 1<<62), 1<<16)
	var off int64
	for lineNo := 1; ; lineNo++ {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			if len(line) > 0 { // torn by a crash: that Append never returned
				if err := o.f.Truncate(off); err != nil {
					return err
				}
				if err := o.f.Sync(); err != nil {
					return err
				}
			}
			o.size = off
			return nil
		}
		if err != nil {
			return err
		}
		var l outputLine
		if err := json.Unmarshal(line, &l); err != nil || l.Row == nil {
			return fmt.Errorf("line %d is corrupt", lineNo)
		}
		if _, dup := o.spans[l.Key]; !dup {
			// The row's JSON is the line minus `{"key":...,"row":` and `}\n`: find it by its length.
			rowOff := off + int64(bytes.LastIndex(line, l.Row))
			o.spans[l.Key] = span{off: rowOff, n: int64(len(l.Row))}
			o.order = append(o.order, l.Key)
		}
		off += int64(len(line))
	}
}

func (o *outputFile) has(key string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.spans[key]
	return ok
}

func (o *outputFile) get(key string) (json.RawMessage, bool) {
	o.mu.Lock()
	sp, ok := o.spans[key]
	o.mu.Unlock()
	if !ok {
		return nil, false
	}
	b := make([]byte, sp.n)
	if _, err := o.f.ReadAt(b, sp.off); err != nil {
		return nil, false
	}
	return b, true
}

func (o *outputFile) keys() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.order...)
}

func (o *outputFile) appendRow(key string, row any) error {
	rowJSON, err := json.Marshal(row)
	if err != nil {
		return fmt.Errorf("jobs: output row %q: %w", key, err)
	}
	keyJSON, _ := json.Marshal(key)
	prefix := `{"key":` + string(keyJSON) + `,"row":`
	line := make([]byte, 0, len(prefix)+len(rowJSON)+2)
	line = append(append(append(line, prefix...), rowJSON...), "}\n"...)
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, dup := o.spans[key]; dup {
		return fmt.Errorf("jobs: output row %q already exists", key)
	}
	if o.dead() {
		return errDead
	}
	if o.f == nil {
		return errors.New("jobs: output used after its job's attempt ended")
	}
	if _, err := o.f.Write(line); err != nil {
		o.f.Truncate(o.size) // drop a partial line
		return fmt.Errorf("jobs: output row %q: %w", key, err)
	}
	if err := o.f.Sync(); err != nil {
		return fmt.Errorf("jobs: output row %q: %w", key, err)
	}
	o.spans[key] = span{off: o.size + int64(len(prefix)), n: int64(len(rowJSON))}
	o.order = append(o.order, key)
	o.size += int64(len(line))
	return nil
}

func (o *outputFile) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f != nil {
		o.f.Close()
		o.f = nil
	}
}
