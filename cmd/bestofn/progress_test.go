package main

import (
	"strings"
	"testing"
	"time"

	"github.com/bestofn/bestofn/jobs"
)

// On a terminal, a job without a total yet shows a spinner; once the total is known the spinner gives way
// to a bar and is never drawn again (progressbar's spinner renders on its own timer, which its Exit does
// not stop: the bar and the spinner used to alternate on the line until the job ended).
func TestProgressSpinnerGivesWayToBar(t *testing.T) {
	var out syncBuffer
	p := &progressView{w: &out, tty: true, every: time.Second}
	p.update(jobs.Job{ID: "job-1", Status: jobs.StatusQueued})
	time.Sleep(250 * time.Millisecond)
	p.update(jobs.Job{ID: "job-1", Status: jobs.StatusRunning, Progress: jobs.Progress{Done: 1, Total: 10, Unit: "steps"}})
	mark := len(out.String())
	time.Sleep(500 * time.Millisecond)
	p.update(jobs.Job{ID: "job-1", Status: jobs.StatusRunning, Progress: jobs.Progress{Done: 5, Total: 10, Unit: "steps"}})
	time.Sleep(300 * time.Millisecond)
	p.update(jobs.Job{ID: "job-1", Status: jobs.StatusSucceeded, Progress: jobs.Progress{Done: 10, Total: 10, Unit: "steps"}})
	time.Sleep(300 * time.Millisecond)
	all := out.String()
	if !strings.Contains(all[:mark], "job-1 queued") {
		t.Errorf("no spinner before the total was known: %q", all[:mark])
	}
	if after := all[mark:]; strings.Contains(after, "queued") || strings.Contains(after, "/-") {
		t.Errorf("the spinner is still drawn after the bar replaced it: %q", after)
	}
	if !strings.Contains(all, "job-1 succeeded 10/10 steps (100%)") {
		t.Errorf("no final status line: %q", all)
	}
}
