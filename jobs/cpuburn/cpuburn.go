// Package cpuburn is the job type "cpu-burn": it keeps Run.Threads() CPU threads busy for a while, reporting
// progress each second. It stands in for a training job when checking that the job thread cap
// (`serve --job-threads`) keeps serving latency within bounds. Interrupted, it burns its whole time again.
package cpuburn

import (
	"context"
	"encoding/json"
	"math"
	"sync"
	"time"

	"github.com/bestofn/bestofn/jobs"
)

// Type is the "cpu-burn" job type.
type Type struct{}

// Params are a cpu-burn job's params.
type Params struct {
	// Seconds is how long to burn; 0 means 10, at most 3600.
	Seconds int `json:"seconds"`
}

// Name implements jobs.Type.
func (Type) Name() string { return "cpu-burn" }

func params(raw json.RawMessage) (Params, error) {
	var p Params
	if err := jobs.DecodeParams(raw, &p); err != nil {
		return p, err
	}
	if p.Seconds < 0 || p.Seconds > 3600 {
		return p, &jobs.ParamError{Field: "seconds", Message: "must be between 0 and 3600"}
	}
	if p.Seconds == 0 {
		p.Seconds = 10
	}
	return p, nil
}

// Validate implements jobs.Type.
func (Type) Validate(ctx context.Context, raw json.RawMessage, files jobs.FileChecker) error {
	_, err := params(raw)
	return err
}

// Run implements jobs.Type: Run.Threads() goroutines spin on floating-point work until the time is up or ctx
// is done; the result is the work done per thread.
func (Type) Run(ctx context.Context, run *jobs.Run) error {
	p, err := params(run.Job().Params)
	if err != nil {
		return err
	}
	threads := max(1, run.Threads())
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, time.Duration(p.Seconds)*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	work := make([]float64, threads)
	for i := range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := 1.0
			for ctx.Err() == nil {
				for k := 0; k < 1<<16; k++ {
					x = math.Sqrt(x*1.000001 + 1)
				}
				work[i]++
			}
			_ = x
		}()
	}
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			run.Progress(int64(time.Since(start).Seconds()), int64(p.Seconds), "seconds")
		}
	}
	wg.Wait()
	if err := parent.Err(); err != nil {
		return err // cancelled or shut down
	}
	run.Progress(int64(p.Seconds), int64(p.Seconds), "seconds")
	return run.SetResult(map[string]any{"threads": threads, "work_per_thread": work})
}
