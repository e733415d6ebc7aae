package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestABLogRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ab.jsonl")
	l, err := OpenABLog(path, 1)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *Config) { c.ABLog = l })
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := []string{"B", "R1"}[i%2]
			e.do(t, "POST", "/v1/chat/completions", `{"model":"ab","messages":[{"role":"user","content":"question"}]}`, HeaderVariant, v)
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Write(ABRecord{}); err == nil {
		t.Error("write after close succeeded")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	count := map[string]int{}
	for sc.Scan() {
		var rec ABRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		count[rec.Variant]++
		if rec.Prompt != "question" || rec.RequestID == "" || rec.Answer == "" || rec.Model != "ab" {
			t.Errorf("record %+v", rec)
		}
		switch rec.Variant {
		case "R1":
			if len(rec.Scores) != 5 || rec.N != 5 || rec.Scores[rec.Chosen] != maxf(rec.Scores) {
				t.Errorf("R1 record: chosen %d scores %v", rec.Chosen, rec.Scores)
			}
		case "B":
			if len(rec.Scores) != 0 || rec.N != 1 {
				t.Errorf("B record %+v", rec)
			}
		}
	}
	if count["B"] != 10 || count["R1"] != 10 {
		t.Errorf("records per variant %v", count)
	}
}

func maxf(xs []float32) float32 {
	m := xs[0]
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

func TestABLogBatchedSync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ab.jsonl")
	l, err := OpenABLog(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if err := l.Write(ABRecord{RequestID: string(rune('a' + i)), Variant: "B"}); err != nil {
			t.Fatal(err)
		}
	}
	if l.pending != 2 {
		t.Errorf("pending %d after 5 writes with sync every 3", l.pending)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopening appends after the existing lines.
	l, err = OpenABLog(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	l.Write(ABRecord{RequestID: "f"})
	l.Close()
	b, _ := os.ReadFile(path)
	var ids string
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var rec ABRecord
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatal(err)
		}
		ids += rec.RequestID
	}
	if ids != "abcdef" {
		t.Errorf("records %q", ids)
	}
	if _, err := OpenABLog(filepath.Join(t.TempDir(), "missing", "ab.jsonl"), 1); err == nil || !strings.HasPrefix(err.Error(), "server: ") {
		t.Errorf("bad path: %v", err)
	}
}
