package trainjobs

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"

	"github.com/bestofn/bestofn/export"
	"github.com/bestofn/bestofn/jobs"
)

// prepareExternal lays out an external run in the job's directory: the normalized data file (one JSON object
// per row, written by write), the params file, an emptied output directory and a work directory kept across
// attempts.
func prepareExternal(run *jobs.Run, b *base, outputDir string, rows func(enc *json.Encoder) error) (externalRun, error) {
	root := filepath.Join(run.Dir(), "external")
	r := externalRun{jobID: run.Job().ID, jobType: run.Job().Type, data: filepath.Join(root, "data.jsonl"),
		outputDir: outputDir, params: filepath.Join(root, "params.json"), baseModel: b.path,
		work: filepath.Join(root, "work"), threads: run.Threads()}
	if err := os.MkdirAll(r.work, 0o755); err != nil {
		return r, err
	}
	if err := emptyDir(outputDir); err != nil {
		return r, err
	}
	if err := export.WriteFileAtomic(r.data, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		return rows(enc)
	}); err != nil {
		return r, err
	}
	if err := export.WriteFileAtomic(r.params, func(w io.Writer) error {
		_, err := w.Write(run.Job().Params)
		return err
	}); err != nil {
		return r, err
	}
	return r, nil
}

// runExternal runs the external trainer on the preference pairs; the reward model it writes lands in dir.
func (t Reward) runExternal(ctx context.Context, run *jobs.Run, p RewardParams, b *base, data *rewardData, dir string) (map[string]any, error) {
	tmpl, _ := parseRMTemplate(p.Template)
	r, err := prepareExternal(run, b, dir, func(enc *json.Encoder) error {
		for _, tp := range data.texts {
			prefix := tmpl.prefix(tp.prompt)
			if err := enc.Encode(map[string]any{"prompt": prefix, "chosen": tp.chosen + tmpl.after,
				"rejected": tp.rejected + tmpl.after, "margin": tp.margin}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return runExternalCommand(ctx, run, *t.External, r)
}

// runExternalCommand runs x and turns its failure into a job error.
func runExternalCommand(ctx context.Context, run *jobs.Run, x External, r externalRun) (map[string]any, error) {
	res, err := x.run(ctx, r, run)
	var ee *ExternalError
	if errors.As(err, &ee) {
		return nil, &jobs.JobError{Code: "external_trainer_failed", Message: ee.Error()}
	}
	return res, err
}
