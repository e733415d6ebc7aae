package trainjobs

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"slices"

	"github.com/bestofn/bestofn/export"
	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/reward"
	"github.com/bestofn/bestofn/tokenizer"
	"github.com/bestofn/bestofn/train"
)

// TypeReward is the name of the reward-model training job type.
const TypeReward = "train-reward"

// Reward is the train-reward job type: a LLaMA backbone with a scalar head on the last token (or the mean over
// the tokens, "pooling": "mean") trained on
// preference pairs with -log sigmoid(r_chosen - r_rejected - margin) (package train), held out, evaluated,
// checkpointed each epoch (a killed job resumes from its last checkpoint), then exported as an ONNX reward model
// directory (export.WriteRewardModel, with the reward mean and std for normalization), checked by scoring with
// package reward, published (purpose "reward-model") and registered (kind reward).
type Reward struct {
	// External, when set, is the command a job with "trainer": "external" runs instead of package train.
	External *External
}

func (Reward) Name() string { return TypeReward }

func (t Reward) Validate(ctx context.Context, params json.RawMessage, files jobs.FileChecker) error {
	_, _, err := decodeReward(ctx, params, files, t.External != nil)
	return err
}

// RewardResult is a train-reward job's result.
type RewardResult struct {
	Trainer string         `json:"trainer"`
	Base    map[string]any `json:"base"`
	// Rows is the number of data rows read; Pairs the comparisons made of them; SkippedRows the rows that made
	// none, by reason (see the Reason constants).
	Rows        int            `json:"rows"`
	Pairs       int            `json:"pairs"`
	SkippedRows map[string]int `json:"skipped_rows"`
	// TruncatedInputs counts pair sides longer than MaxLength (prompt tokens dropped from the left).
	TruncatedInputs int `json:"truncated_inputs"`
	MaxLength       int `json:"max_length"`
	TrainPairs      int `json:"train_pairs,omitempty"`
	EvalPairs       int `json:"eval_pairs,omitempty"`
	// Heldout holds the held-out metrics of the final weights (TRL's names: loss, accuracy, margin,
	// chosen_reward, rejected_reward) and accuracy_ci95_low / accuracy_ci95_high, the 95% Wilson score interval
	// of the accuracy (AccuracyCIMethod).
	Heldout          map[string]float64 `json:"heldout,omitempty"`
	AccuracyCIMethod string             `json:"accuracy_ci_method,omitempty"`
	// RewardMean and RewardStd are the model's score statistics over the training responses, saved in the
	// model's config.json (reward_mean, reward_std) for normalization.
	RewardMean   float64 `json:"reward_mean"`
	RewardStd    float64 `json:"reward_std"`
	Steps        int     `json:"steps,omitempty"`
	BestStep     int     `json:"best_step,omitempty"`
	StoppedEarly bool    `json:"stopped_early,omitempty"`
	Tokens       int64   `json:"tokens,omitempty"`
	// External is what an external trainer printed as its result.
	External map[string]any `json:"external,omitempty"`
	Model    *ModelRef      `json:"model,omitempty"`
}

// ModelRef names the registered model a job produced.
type ModelRef struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
	FileID  string `json:"file_id"`
}

// rewardData is a job's preference data, tokenized for the trainer.
type rewardData struct {
	pairs     []train.Pair
	texts     []textPair // the same pairs as texts (for the external trainer and the export check)
	rows      int
	skipped   map[string]int
	truncated int
}

func (t Reward) Run(ctx context.Context, run *jobs.Run) error {
	p, tmpl, err := decodeReward(nil, run.Job().Params, nil, t.External != nil)
	if err != nil {
		return err
	}
	var st jobState
	if raw := run.Checkpoint(); raw != nil {
		if err := json.Unmarshal(raw, &st); err != nil {
			return fmt.Errorf("trainjobs: job checkpoint: %w", err)
		}
	}
	if st.Phase == phaseRegistred {
		return run.SetResult(st.Result)
	}
	b, err := loadBase(ctx, run, p.Params)
	if err != nil {
		return err
	}
	defer b.close()
	maxLen, err := p.maxLength(b.cfg)
	if err != nil {
		return err
	}
	data, err := readPreferences(ctx, run, p, tmpl, b.tok, maxLen)
	if err != nil {
		return err
	}
	res := &RewardResult{Trainer: TrainerBuiltin, Base: b.desc, Rows: data.rows, Pairs: len(data.pairs),
		SkippedRows: data.skipped, TruncatedInputs: data.truncated, MaxLength: maxLen}
	run.Event("info", fmt.Sprintf("%d rows: %d pairs, skipped %v, %d inputs truncated to %d tokens", data.rows,
		len(data.pairs), data.skipped, data.truncated, maxLen), nil)

	dir := filepath.Join(run.Dir(), "reward-model")
	if p.Trainer == TrainerExternal {
		res.Trainer = TrainerExternal
		if res.External, err = t.runExternal(ctx, run, p, b, data, dir); err != nil {
			return err
		}
		if err := checkRewardDir(dir, data.texts); err != nil {
			return &jobs.JobError{Code: "external_trainer_failed", Message: err.Error()}
		}
	} else if err := trainReward(ctx, run, p, b, data, maxLen, dir, res); err != nil {
		return err
	}

	f, err := run.PublishDir(ctx, "reward-model", jobs.PurposeRewardModel, dir)
	if err != nil {
		return err
	}
	meta := map[string]any{"trainer": res.Trainer, "pairs": res.Pairs, "max_length": maxLen, "template": p.Template}
	if acc, ok := res.Heldout["accuracy"]; ok {
		meta["heldout_accuracy"] = acc
	}
	mv, err := run.RegisterModel(ctx, jobs.ModelSpec{Name: p.ModelName, Kind: jobs.KindReward, FileID: f.ID, Metadata: meta})
	if err != nil {
		return err
	}
	res.Model = &ModelRef{Name: mv.Name, Version: mv.Version, FileID: f.ID}
	var resMap map[string]any
	if b, err := json.Marshal(res); err == nil {
		_ = json.Unmarshal(b, &resMap)
	}
	if err := run.SaveCheckpoint(ctx, jobState{Phase: phaseRegistred, Result: resMap, FileID: f.ID, Version: mv.Version}); err != nil {
		return err
	}
	return run.SetResult(res)
}

// readPreferences reads and tokenizes the job's preference rows.
func readPreferences(ctx context.Context, run *jobs.Run, p RewardParams, tmpl rmTemplate, tok *tokenizer.Tokenizer, maxLen int) (*rewardData, error) {
	d := &rewardData{skipped: map[string]int{}}
	encode := rewardEncoder(tok, tmpl, maxLen, p.AppendEOS)
	pol := rowPolicy{skipBad: p.SkipBadRows, skipped: d.skipped}
	var err error
	d.rows, err = readRows(ctx, run, p.TrainingFiles, p.MaxRows, func(file string, line int, data []byte) error {
		pref, rerr := ParsePreference(data)
		if rerr != nil {
			return pol.bad(file, line, rerr)
		}
		pairs, rerr := pref.pairs(tmpl, p.UseMargin)
		if rerr != nil {
			pol.unusable(rerr)
			return nil
		}
		for _, tp := range pairs {
			tp.margin *= p.MarginScale
			c, ct := encode(tp.prompt, tp.chosen)
			r, rt := encode(tp.prompt, tp.rejected)
			if slices.Equal(c, r) { // the responses differ only past the truncation
				pol.unusable(rowErr(ReasonIdentical, "chosen and rejected tokenize alike"))
				continue
			}
			for _, tr := range []bool{ct, rt} {
				if tr {
					d.truncated++
				}
			}
			d.pairs = append(d.pairs, train.Pair{Chosen: c, Rejected: r, Margin: tp.margin})
			d.texts = append(d.texts, tp)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(d.pairs) == 0 {
		return nil, invalid("no preference pairs in %d rows (skipped: %v)", d.rows, d.skipped)
	}
	return d, nil
}

// trainReward trains with package train and exports the model into dir.
func trainReward(ctx context.Context, run *jobs.Run, p RewardParams, b *base, data *rewardData, maxLen int, dir string, res *RewardResult) error {
	vocab, err := export.VocabFromMetadata(b.tokMD)
	if err != nil {
		return invalid("the reward model's tokenizer.json: %v", err)
	}
	vocab.AddEOS = p.AppendEOS
	pool := train.PoolLast
	if p.Pooling == "mean" {
		pool = train.PoolMean
	}
	m, err := b.newModel(p.Params, train.HeadReward, pool, run.Threads(), maxLen)
	if err != nil {
		return err
	}
	cfg := p.trainConfig(filepath.Join(run.Dir(), TypeReward+".ckpt"), 1e-4)
	tr, err := train.TrainReward(ctx, m, data.pairs, cfg, hooks(ctx, run))
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("trainjobs: %w", err)
	}
	res.TrainPairs, res.EvalPairs = tr.TrainPairs, tr.EvalPairs
	res.Steps, res.BestStep, res.StoppedEarly, res.Tokens = tr.Steps, tr.BestStep, tr.StoppedEarly, tr.Tokens
	res.RewardMean, res.RewardStd = tr.RewardMean, tr.RewardStd
	if len(tr.Eval) > 0 {
		res.Heldout = map[string]float64(tr.Eval)
		res.AccuracyCIMethod = "wilson"
	}

	hw, hb := m.ScoreHead()
	extra := map[string]any{"bestofn_training": map[string]any{"pairs": len(data.pairs),
		"train_pairs": tr.TrainPairs, "eval_pairs": tr.EvalPairs, "steps": tr.Steps, "seed": p.Seed}}
	if acc, ok := tr.Eval["accuracy"]; ok {
		extra["heldout_pairwise_accuracy"] = acc
	}
	if err := emptyDir(dir); err != nil {
		return err
	}
	if err := export.WriteRewardModel(dir, export.RewardModel{Weights: weightsOf(m), Head: export.Head{Weight: hw, Bias: hb, Mean: pool == train.PoolMean},
		Vocab: vocab, MaxPositions: maxLen, Template: p.Template, RewardMean: tr.RewardMean, RewardStd: tr.RewardStd,
		Extra: extra}); err != nil {
		return err
	}
	return checkExport(ctx, dir, m, data)
}

// exportTolerance bounds how far the exported model's scores may be from the trainer's.
const exportTolerance = 1e-3

// checkExport scores the first pairs with the exported model (package reward, Go runtime) and with the trainer,
// and fails when they differ: a broken export never gets registered.
func checkExport(ctx context.Context, dir string, m *train.Model, data *rewardData) error {
	n := min(4, len(data.pairs))
	rm, err := reward.Load(dir, reward.Options{Runtime: reward.RuntimeGo, BatchSize: 1})
	if err != nil {
		return fmt.Errorf("trainjobs: the exported reward model does not load: %w", err)
	}
	defer rm.Close()
	seqs := make([][]int32, n)
	for i := range seqs {
		seqs[i] = data.pairs[i].Chosen
	}
	want := make([]float32, n)
	if err := m.Scores(seqs, want); err != nil {
		return err
	}
	for i := range n {
		got, err := rm.Score(ctx, data.texts[i].prompt, []string{data.texts[i].chosen})
		if err != nil {
			return fmt.Errorf("trainjobs: scoring with the exported model: %w", err)
		}
		if d := math.Abs(float64(got[0] - want[i])); !(d <= exportTolerance) {
			return fmt.Errorf("trainjobs: the exported model scores pair %d's chosen response %g, the trainer %g", i, got[0], want[i])
		}
	}
	return nil
}

// checkRewardDir checks that dir holds a reward model package reward loads and that it scores the first pairs
// with finite numbers.
func checkRewardDir(dir string, texts []textPair) error {
	rm, err := reward.Load(dir, reward.Options{Runtime: reward.RuntimeGo})
	if err != nil {
		return fmt.Errorf("the trainer's output is not a reward model package reward loads: %w", err)
	}
	defer rm.Close()
	for _, tp := range texts[:min(2, len(texts))] {
		s, err := rm.Score(context.Background(), tp.prompt, []string{tp.chosen, tp.rejected})
		if err != nil {
			return fmt.Errorf("scoring with the trainer's reward model: %w", err)
		}
		for _, v := range s {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("the trainer's reward model scores %v", s)
			}
		}
	}
	return nil
}
