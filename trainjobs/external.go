package trainjobs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// External is a trainer command configured by the operator (never by a job's params: a job only chooses
// "trainer": "external"). The job runs it once per attempt under this contract:
//
//   - Command[0] is the program, the rest its arguments; "{data}", "{output_dir}", "{params}", "{base_model}" and
//     "{work_dir}" in an argument are replaced by the paths below. The environment adds BESTOFN_JOB_ID,
//     BESTOFN_JOB_TYPE, BESTOFN_DATA, BESTOFN_OUTPUT_DIR, BESTOFN_PARAMS, BESTOFN_BASE_MODEL (empty when training
//     from scratch), BESTOFN_WORK_DIR and BESTOFN_THREADS. The working directory is BESTOFN_WORK_DIR.
//   - BESTOFN_DATA is one JSONL file of the validated training rows, normalized: for train-reward
//     {"prompt", "chosen", "rejected", "margin"} where prompt+chosen and prompt+rejected are the exact texts the
//     served reward model scores (its template applied); for sft {"prompt", "completion"} where prompt is the
//     chat template's rendering (TRL's prompt-completion format). BESTOFN_PARAMS is a JSON file holding the
//     job's params (trainer_args among them).
//   - The command writes its model into BESTOFN_OUTPUT_DIR, emptied before each attempt: for train-reward a
//     reward model directory (model.onnx, config.json, tokenizer.json, as package reward loads), for sft one
//     GGUF file named model.gguf. BESTOFN_WORK_DIR persists across attempts of the job, so a command may keep its
//     own checkpoints there and resume after a crash.
//   - Each stdout line that is a JSON object may hold "progress": {"done", "total", "unit"} (job progress),
//     "metrics": {name: number} with an optional "step" (job metrics, a metrics event), "event" (text, logged at
//     "level" info or warn) and "result": {...} (merged into the job's result). Other lines are ignored; the last
//     lines of stderr are kept for the error message.
//   - Exit status 0 means success; the output is then checked (the reward model loaded and scored, the GGUF
//     loaded) before it is published and registered like an in-process run's. Any other status fails the job
//     (code "external_trainer_failed") with the status and the end of stderr.
//   - Cancellation (the job cancelled, the server shutting down) sends SIGTERM to the command's process group,
//     then SIGKILL after Grace.
type External struct {
	Command []string
	// Env holds extra environment variables ("NAME=value") for the command.
	Env []string
	// Grace is how long the command has to exit after SIGTERM; 0 means 10 s.
	Grace time.Duration
}

// externalRun is one run of an External command: the paths of its contract.
type externalRun struct {
	jobID, jobType                           string
	data, outputDir, params, baseModel, work string
	threads                                  int
}

// reporter is what an external run reports to (a *jobs.Run).
type reporter interface {
	Progress(done, total int64, unit string)
	Metrics(step int64, values map[string]float64)
	Event(level, msg string, data any)
}

// ExternalError is a failed external trainer run.
type ExternalError struct {
	ExitCode int    // -1 when the command did not start or was killed by a signal
	Stderr   string // the last lines of its stderr
	Err      error
}

func (e *ExternalError) Error() string {
	msg := fmt.Sprintf("external trainer: %v", e.Err)
	if e.Stderr != "" {
		msg += "; stderr ends with:\n" + e.Stderr
	}
	return msg
}

func (e *ExternalError) Unwrap() error { return e.Err }

// progressLine is one JSON line of an external trainer's stdout.
type progressLine struct {
	Progress *struct {
		Done  int64  `json:"done"`
		Total int64  `json:"total"`
		Unit  string `json:"unit"`
	} `json:"progress"`
	Metrics map[string]float64 `json:"metrics"`
	Step    *int64             `json:"step"`
	Event   string             `json:"event"`
	Level   string             `json:"level"`
	Result  map[string]any     `json:"result"`
}

// stderrLines is how many of the last stderr lines an ExternalError keeps.
const stderrLines = 20

// run starts the command, relays its progress lines to rep until it exits, and returns the merged "result"
// objects it printed. On ctx's end it stops the command (SIGTERM, then SIGKILL after the grace period) and
// returns ctx's error.
func (x External) run(ctx context.Context, r externalRun, rep reporter) (map[string]any, error) {
	if len(x.Command) == 0 {
		return nil, errors.New("external trainer: no command configured")
	}
	subst := strings.NewReplacer("{data}", r.data, "{output_dir}", r.outputDir, "{params}", r.params,
		"{base_model}", r.baseModel, "{work_dir}", r.work)
	args := make([]string, len(x.Command))
	for i, a := range x.Command {
		args[i] = subst.Replace(a)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = r.work
	cmd.Env = append(os.Environ(), x.Env...)
	cmd.Env = append(cmd.Env,
		"BESTOFN_JOB_ID="+r.jobID, "BESTOFN_JOB_TYPE="+r.jobType, "BESTOFN_DATA="+r.data,
		"BESTOFN_OUTPUT_DIR="+r.outputDir, "BESTOFN_PARAMS="+r.params, "BESTOFN_BASE_MODEL="+r.baseModel,
		"BESTOFN_WORK_DIR="+r.work, "BESTOFN_THREADS="+strconv.Itoa(r.threads))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, &ExternalError{ExitCode: -1, Err: err}
	}
	tail := &lineTail{max: stderrLines}
	cmd.Stderr = tail
	if err := cmd.Start(); err != nil {
		return nil, &ExternalError{ExitCode: -1, Err: err}
	}

	// Stop the process group when ctx ends: SIGTERM, then SIGKILL after the grace period.
	exited := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-exited:
			return
		case <-ctx.Done():
		}
		grace := x.Grace
		if grace <= 0 {
			grace = 10 * time.Second
		}
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(grace):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}()

	result := map[string]any{}
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var pl progressLine
		if json.Unmarshal(line, &pl) != nil {
			continue
		}
		if p := pl.Progress; p != nil {
			unit := p.Unit
			if unit == "" {
				unit = "steps"
			}
			rep.Progress(p.Done, p.Total, unit)
		}
		if len(pl.Metrics) > 0 {
			step := int64(0)
			if pl.Step != nil {
				step = *pl.Step
			} else if pl.Progress != nil {
				step = pl.Progress.Done
			}
			rep.Metrics(step, pl.Metrics)
		}
		if pl.Event != "" {
			level := pl.Level
			if level != "warn" && level != "error" {
				level = "info"
			}
			rep.Event(level, "external trainer: "+pl.Event, nil)
		}
		for k, v := range pl.Result {
			result[k] = v
		}
	}
	_, _ = io.Copy(io.Discard, stdout) // a line over the scanner's limit: drain the rest so the command can exit
	werr := cmd.Wait()
	close(exited)
	<-stopped
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if werr != nil {
		code := -1
		var ee *exec.ExitError
		if errors.As(werr, &ee) {
			code = ee.ExitCode()
		}
		return nil, &ExternalError{ExitCode: code, Stderr: tail.String(), Err: werr}
	}
	return result, nil
}

// lineTail is an io.Writer that keeps the last max lines written to it.
type lineTail struct {
	mu      sync.Mutex
	max     int
	lines   []string
	partial []byte
}

func (t *lineTail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.partial = append(t.partial, p...)
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 {
			break
		}
		t.push(string(t.partial[:i]))
		t.partial = t.partial[i+1:]
	}
	if len(t.partial) > 4096 { // a very long line: keep its start
		t.push(string(t.partial[:4096]))
		t.partial = t.partial[:0]
	}
	return len(p), nil
}

func (t *lineTail) push(s string) {
	t.lines = append(t.lines, s)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

func (t *lineTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := t.lines
	if len(t.partial) > 0 {
		lines = append(lines[:len(lines):len(lines)], string(t.partial))
	}
	return strings.Join(lines, "\n")
}
