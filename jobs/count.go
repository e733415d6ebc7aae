package jobs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Count is the built-in job type "count", for tests and demos of the platform: it does Steps steps of StepMS
// milliseconds each, appending one row per step to its output "rows" and checkpointing after each, then
// publishes "count-results.jsonl" (purpose "results": the rows in step order, bytes that depend only on Steps)
// and sets the result {"steps", "sum"}. Interrupted, it resumes at the step after its checkpoint, skipping rows
// already appended, so the results file is the same whatever happened on the way.
type Count struct{}

// CountParams are the params of a "count" job.
type CountParams struct {
	// Steps is the number of steps; 0 means 10, at most 1,000,000.
	Steps int `json:"steps"`
	// StepMS is the time one step takes, in milliseconds; 0 means none, at most 60,000.
	StepMS int `json:"step_ms"`
	// FailAt, when > 0, makes the job fail (code "simulated_failure") on reaching this step for the first
	// time; a retry resumes past it.
	FailAt int `json:"fail_at,omitempty"`
}

// CountRow is one row of a count job's output and results file.
type CountRow struct {
	Step   int    `json:"step"`
	Value  int64  `json:"value"`
	Digest string `json:"digest"`
}

// countCheckpoint is what a count job saves after each step.
type countCheckpoint struct {
	Next   int  `json:"next"`
	Failed bool `json:"failed,omitempty"` // FailAt has been hit once
}

func (Count) Name() string { return "count" }

func (Count) Validate(ctx context.Context, params json.RawMessage, files FileChecker) error {
	_, err := countParams(params)
	return err
}

func countParams(params json.RawMessage) (CountParams, error) {
	var p CountParams
	if err := DecodeParams(params, &p); err != nil {
		return p, err
	}
	switch {
	case p.Steps < 0 || p.Steps > 1_000_000:
		return p, &ParamError{Field: "steps", Message: "must be between 0 and 1000000"}
	case p.StepMS < 0 || p.StepMS > 60_000:
		return p, &ParamError{Field: "step_ms", Message: "must be between 0 and 60000"}
	case p.FailAt < 0:
		return p, &ParamError{Field: "fail_at", Message: "must not be negative"}
	}
	if p.Steps == 0 {
		p.Steps = 10
	}
	return p, nil
}

// CountValue is step i's row: a value and a digest that depend only on i.
func CountValue(i int) CountRow {
	sum := sha256.Sum256([]byte("count-" + strconv.Itoa(i)))
	return CountRow{Step: i, Value: int64(i) * int64(i), Digest: hex.EncodeToString(sum[:8])}
}

func (Count) Run(ctx context.Context, run *Run) error {
	p, err := countParams(run.Job().Params)
	if err != nil {
		return err
	}
	var ck countCheckpoint
	if c := run.Checkpoint(); c != nil {
		if err := json.Unmarshal(c, &ck); err != nil {
			return fmt.Errorf("count: checkpoint: %w", err)
		}
	}
	rows, err := run.Output("rows")
	if err != nil {
		return err
	}
	run.Progress(int64(ck.Next), int64(p.Steps), "steps")
	for i := ck.Next; i < p.Steps; i++ {
		if p.FailAt > 0 && i == p.FailAt && !ck.Failed {
			ck.Failed = true
			if err := run.SaveCheckpoint(ctx, ck); err != nil {
				return err
			}
			return &JobError{Code: "simulated_failure", Message: fmt.Sprintf("fail_at %d reached", i)}
		}
		key := strconv.Itoa(i)
		row := CountValue(i)
		if !rows.Has(key) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(p.StepMS) * time.Millisecond):
			}
			if err := rows.Append(key, row); err != nil {
				return err
			}
		}
		run.Progress(int64(i+1), int64(p.Steps), "steps")
		run.Metrics(int64(i+1), map[string]float64{"value": float64(row.Value)})
		ck.Next = i + 1
		if err := run.SaveCheckpoint(ctx, ck); err != nil {
			return err
		}
	}
	var results bytes.Buffer
	var sum int64
	for i := 0; i < p.Steps; i++ {
		raw, ok := rows.Get(strconv.Itoa(i))
		if !ok {
			return fmt.Errorf("count: row %d is missing from the output", i)
		}
		var row CountRow
		if err := json.Unmarshal(raw, &row); err != nil {
			return fmt.Errorf("count: row %d: %w", i, err)
		}
		sum += row.Value
		results.Write(raw)
		results.WriteByte('\n')
	}
	if _, err := run.PublishFile(ctx, "count-results.jsonl", PurposeResults, &results); err != nil {
		return err
	}
	return run.SetResult(map[string]int64{"steps": int64(p.Steps), "sum": sum})
}
