package pipeline

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// ABRecord is one line of a bestofn server's A/B log (server.ABRecord; read here field by field so that job
// types do not import the server). Latency fields are read when a log carries them.
type ABRecord struct {
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id"`
	Model     string    `json:"model"`
	Variant   string    `json:"variant"`
	Endpoint  string    `json:"endpoint"`
	Prompt    string    `json:"prompt"`
	Answer    string    `json:"answer"`
	Scores    []float32 `json:"scores,omitempty"`
	Chosen    int       `json:"chosen"`
	N         int       `json:"n"`
	Degraded  bool      `json:"degraded,omitempty"`

	LatencySeconds    *float64 `json:"latency_s,omitempty"`
	LatencyMs         *float64 `json:"latency_ms,omitempty"`
	E2ELatencySeconds *float64 `json:"e2e_latency_seconds,omitempty"`
}

// Latency is the record's end-to-end latency in seconds, when the log has one.
func (r ABRecord) Latency() (float64, bool) {
	switch {
	case r.E2ELatencySeconds != nil:
		return *r.E2ELatencySeconds, true
	case r.LatencySeconds != nil:
		return *r.LatencySeconds, true
	case r.LatencyMs != nil:
		return *r.LatencyMs / 1000, true
	}
	return 0, false
}

// ReadABLog reads A/B log lines in order. A line that is not a record (a line torn by a crash, garbage) is
// skipped and counted, not fatal: the log is append-only and written while the server runs.
func ReadABLog(r io.Reader) (recs []ABRecord, skipped int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<16), 64<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var rec ABRecord
		if json.Unmarshal(line, &rec) != nil || rec.Variant == "" {
			skipped++
			continue
		}
		recs = append(recs, rec)
	}
	if err := sc.Err(); err != nil {
		return recs, skipped, fmt.Errorf("pipeline: read A/B log: %w", err)
	}
	return recs, skipped, nil
}

// AnswerRow is a row of an answers file (a feedback source): a prompt and one answer to it.
type AnswerRow struct {
	// Prompt is the instruction with its input, as Instruction.Prompt gives it.
	Prompt string
	Answer string
	Source string
}

// parseAnswerRow reads {instruction, input?, output} (alpaca_gpt4_data rows), {prompt, response},
// {user_input, response} or {question_id?, text, answer}, with an optional "source".
func parseAnswerRow(line []byte) (AnswerRow, error) {
	var r struct {
		Instruction *string `json:"instruction"`
		Input       string  `json:"input"`
		Prompt      *string `json:"prompt"`
		UserInput   *string `json:"user_input"`
		Text        *string `json:"text"`
		Output      *string `json:"output"`
		Response    *string `json:"response"`
		Answer      *string `json:"answer"`
		Source      string  `json:"source"`
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return AnswerRow{}, fmt.Errorf("not an answer row: %v", err)
	}
	var a AnswerRow
	switch {
	case r.Instruction != nil:
		a.Prompt = Instruction{Instruction: *r.Instruction, Input: r.Input}.Prompt()
	case r.Prompt != nil:
		a.Prompt = *r.Prompt
	case r.UserInput != nil:
		a.Prompt = *r.UserInput
	case r.Text != nil:
		a.Prompt = *r.Text
	default:
		return a, errors.New(`no prompt: want "instruction", "prompt", "user_input" or "text"`)
	}
	switch {
	case r.Output != nil:
		a.Answer = *r.Output
	case r.Response != nil:
		a.Answer = *r.Response
	case r.Answer != nil:
		a.Answer = *r.Answer
	default:
		return a, errors.New(`no answer: want "output", "response" or "answer"`)
	}
	if strings.TrimSpace(a.Prompt) == "" {
		return a, errors.New("empty prompt")
	}
	a.Source = r.Source
	return a, nil
}

// ReadAnswers reads an answers file (JSONL or a JSON array).
func ReadAnswers(r io.Reader) ([]AnswerRow, error) {
	var out []AnswerRow
	err := eachRow(r, func(n int, row []byte) error {
		a, err := parseAnswerRow(row)
		if err != nil {
			return err
		}
		out = append(out, a)
		return nil
	})
	return out, err
}

// promptKey matches prompts across files: trimmed text.
func promptKey(s string) string { return strings.TrimSpace(s) }

// ReadABLogFile reads the A/B log at path (see ReadABLog).
func ReadABLogFile(path string) (recs []ABRecord, skipped int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("pipeline: A/B log: %w", err)
	}
	defer f.Close()
	return ReadABLog(f)
}
