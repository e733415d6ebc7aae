package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/bestofn/bestofn/jobs"
)

// progressView shows a job's progress: a progress bar on a terminal, plain lines otherwise (one per status
// change, and at most one every few seconds while it runs).
type progressView struct {
	w        io.Writer
	tty      bool
	bar      *progressbar.ProgressBar
	total    int64
	last     jobs.Job
	lastLine time.Time
	every    time.Duration
}

// newProgressView writes to w; it draws a bar when w is a terminal.
func newProgressView(w io.Writer) *progressView {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	return &progressView{w: w, tty: tty, every: 2 * time.Second}
}

// update shows j's state.
func (p *progressView) update(j jobs.Job) {
	defer func() { p.last = j }()
	if p.tty {
		p.drawBar(j)
		return
	}
	changed := j.Status != p.last.Status || j.ID != p.last.ID
	if !changed && (j.Progress.Done == p.last.Progress.Done || time.Since(p.lastLine) < p.every) {
		return
	}
	fmt.Fprintln(p.w, jobStatusLine(j))
	p.lastLine = time.Now()
}

func (p *progressView) drawBar(j jobs.Job) {
	total := j.Progress.Total
	if total <= 0 {
		total = -1 // a spinner
	}
	if p.bar == nil || total != p.total {
		if p.bar != nil {
			p.bar.Exit()
		}
		unit := j.Progress.Unit
		if unit == "" {
			unit = "it"
		}
		p.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetDescription(j.ID),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString(unit),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.w) }),
			// No timer of its own: a spinner's timer keeps drawing after Exit, over the bar that replaces it.
			// The spinner turns with each update instead.
			progressbar.OptionSetSpinnerChangeInterval(0),
		)
		p.total = total
	}
	p.bar.Describe(fmt.Sprintf("%s %s", j.ID, j.Status))
	_ = p.bar.Set64(j.Progress.Done)
	if j.Status.Finished() {
		if j.Status == jobs.StatusSucceeded && total > 0 {
			_ = p.bar.Finish()
		} else {
			_ = p.bar.Exit()
			fmt.Fprintln(p.w)
		}
		fmt.Fprintln(p.w, jobStatusLine(j))
	}
}

// jobStatusLine is one plain line: "job-1 running 4/10 steps (40%) eta 3s".
func jobStatusLine(j jobs.Job) string {
	s := fmt.Sprintf("%s %s", j.ID, j.Status)
	pr := j.Progress
	if pr.Total > 0 {
		s += fmt.Sprintf(" %d/%d %s (%.0f%%)", pr.Done, pr.Total, pr.Unit, 100*float64(pr.Done)/float64(pr.Total))
	} else if pr.Done > 0 {
		s += fmt.Sprintf(" %d %s", pr.Done, pr.Unit)
	}
	if pr.ETASeconds != nil && !j.Status.Finished() {
		s += fmt.Sprintf(" eta %s", (time.Duration(*pr.ETASeconds) * time.Second).String())
	}
	if j.Error != nil {
		s += fmt.Sprintf(": %s: %s", j.Error.Code, j.Error.Message)
	}
	return s
}
