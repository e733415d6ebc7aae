package trainjobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/bestofn/bestofn/chat"
	"github.com/bestofn/bestofn/export"
	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/model"
	"github.com/bestofn/bestofn/tokenizer"
	"github.com/bestofn/bestofn/train"
	"github.com/bestofn/bestofn/weights"
)

// TypeSFT is the name of the supervised fine-tuning job type.
const TypeSFT = "sft"

// SFT is the sft job type: a generator fine-tuned (package train) on Alpaca or chat rows rendered with a chat
// template (the paper's Alpaca template by default), with the loss on the response tokens and EOS only, held
// out and checkpointed like train-reward, then exported as GGUF (export.WriteGGUF: the base's tokenizer keys),
// checked by loading it with package model, published (purpose "model") and registered (kind generator).
type SFT struct {
	// External, when set, is the command a job with "trainer": "external" runs instead of package train.
	External *External
}

func (SFT) Name() string { return TypeSFT }

func (t SFT) Validate(ctx context.Context, params json.RawMessage, files jobs.FileChecker) error {
	_, _, _, err := decodeSFT(ctx, params, files, t.External != nil)
	return err
}

// SFTResult is an sft job's result.
type SFTResult struct {
	Trainer     string         `json:"trainer"`
	Base        map[string]any `json:"base"`
	Rows        int            `json:"rows"`
	Examples    int            `json:"examples"`
	SkippedRows map[string]int `json:"skipped_rows"`
	// TruncatedExamples counts examples cut to MaxLength (at the end of the response).
	TruncatedExamples int    `json:"truncated_examples"`
	MaxLength         int    `json:"max_length"`
	Template          string `json:"template"`
	GGUFType          string `json:"gguf_type"`
	TrainExamples     int    `json:"train_examples,omitempty"`
	EvalExamples      int    `json:"eval_examples,omitempty"`
	// Heldout holds the held-out loss (mean over response tokens) and perplexity of the final weights.
	Heldout map[string]float64 `json:"heldout,omitempty"`
	// FinalTrainLoss is the last optimizer step's training loss; the whole curve is in the job's metrics events.
	FinalTrainLoss float64        `json:"final_train_loss,omitempty"`
	Steps          int            `json:"steps,omitempty"`
	BestStep       int            `json:"best_step,omitempty"`
	StoppedEarly   bool           `json:"stopped_early,omitempty"`
	Tokens         int64          `json:"tokens,omitempty"`
	External       map[string]any `json:"external,omitempty"`
	Model          *ModelRef      `json:"model,omitempty"`
}

// sftData is a job's SFT data.
type sftData struct {
	conversations []SFTExample
	prompts       []string        // each conversation rendered by the template
	examples      []train.Example // the tokenized examples (built-in trainer)
	rows          int
	skipped       map[string]int
	truncated     int
}

func (t SFT) Run(ctx context.Context, run *jobs.Run) error {
	p, tmpl, typ, err := decodeSFT(nil, run.Job().Params, nil, t.External != nil)
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
	data, err := readSFT(ctx, run, p, tmpl)
	if err != nil {
		return err
	}
	if p.Trainer != TrainerExternal {
		if err := data.tokenize(b.tok, tmpl, maxLen); err != nil {
			return err
		}
	}
	res := &SFTResult{Trainer: TrainerBuiltin, Base: b.desc, Rows: data.rows, Examples: len(data.prompts),
		SkippedRows: data.skipped, TruncatedExamples: data.truncated, MaxLength: maxLen, Template: p.Template, GGUFType: typ.String()}
	if p.Trainer != TrainerExternal {
		res.Examples = len(data.examples)
	}
	run.Event("info", fmt.Sprintf("%d rows: %d examples, skipped %v, %d truncated to %d tokens", data.rows,
		res.Examples, data.skipped, data.truncated, maxLen), nil)

	outDir := filepath.Join(run.Dir(), "sft-model")
	path := filepath.Join(outDir, "model.gguf")
	if p.Trainer == TrainerExternal {
		res.Trainer = TrainerExternal
		r, err := prepareExternal(run, b, outDir, func(enc *json.Encoder) error {
			for i := range data.prompts {
				if err := enc.Encode(map[string]string{"prompt": data.prompts[i], "completion": data.conversations[i].Response}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if res.External, err = runExternalCommand(ctx, run, *t.External, r); err != nil {
			return err
		}
		if err := checkGGUF(path, nil, nil); err != nil {
			return &jobs.JobError{Code: "external_trainer_failed", Message: "the trainer's model.gguf: " + err.Error()}
		}
	} else if err := trainSFT(ctx, run, p, b, data, maxLen, typ, path, res); err != nil {
		return err
	}

	f, err := publishFile(ctx, run, "model.gguf", jobs.PurposeModel, path)
	if err != nil {
		return err
	}
	meta := map[string]any{"trainer": res.Trainer, "examples": res.Examples, "template": p.Template, "max_length": maxLen}
	if loss, ok := res.Heldout["loss"]; ok {
		meta["heldout_loss"] = loss
	}
	mv, err := run.RegisterModel(ctx, jobs.ModelSpec{Name: p.ModelName, Kind: jobs.KindGenerator, FileID: f.ID, Metadata: meta})
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

// readSFT reads the job's SFT rows and renders their prompts.
func readSFT(ctx context.Context, run *jobs.Run, p SFTParams, tmpl chat.Template) (*sftData, error) {
	d := &sftData{skipped: map[string]int{}}
	pol := rowPolicy{skipBad: p.SkipBadRows, skipped: d.skipped}
	var err error
	d.rows, err = readRows(ctx, run, p.TrainingFiles, p.MaxRows, func(file string, line int, data []byte) error {
		ex, rerr := ParseSFT(data)
		if rerr != nil {
			return pol.bad(file, line, rerr)
		}
		prompt, err := tmpl.Render(ex.Messages)
		if err != nil {
			pol.unusable(rowErr(ReasonTemplateMismatch, "%v", err))
			return nil
		}
		d.conversations = append(d.conversations, ex)
		d.prompts = append(d.prompts, prompt)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(d.conversations) == 0 {
		return nil, invalid("no training examples in %d rows (skipped: %v)", d.rows, d.skipped)
	}
	return d, nil
}

// tokenize makes the trainer's examples with package train's SFT preparation (Stanford Alpaca's: the whole
// text, rendered prompt + response with special tokens parsed as the server parses a rendered prompt, then EOS,
// cut to maxLen, the loss on the tokens after the prompt's); examples whose prompt leaves no room for the
// response are skipped and counted.
func (d *sftData) tokenize(tok train.Tokenizer, tmpl chat.Template, maxLen int) error {
	rows := make([]train.Row, len(d.conversations))
	for i, ex := range d.conversations {
		msgs := make([]map[string]string, 0, len(ex.Messages)+1)
		for _, m := range ex.Messages {
			msgs = append(msgs, map[string]string{"role": m.Role, "content": m.Content})
		}
		msgs = append(msgs, map[string]string{"role": chat.RoleAssistant, "content": ex.Response})
		js, err := json.Marshal(map[string]any{"messages": msgs})
		if err != nil {
			return err
		}
		rows[i] = train.Row{N: i + 1, JSON: js}
	}
	examples, st, err := train.SFTExamples(rows, tok, train.PrepOptions{MaxLen: maxLen, SkipBadRows: true, Template: tmpl})
	if err != nil {
		return fmt.Errorf("trainjobs: %w", err)
	}
	for reason, n := range st.Skipped {
		d.skipped[strings.ReplaceAll(reason, " ", "_")] += n
	}
	d.examples, d.truncated = examples, st.Truncated
	if len(examples) == 0 {
		return invalid("no training examples in %d rows (skipped: %v)", d.rows, d.skipped)
	}
	return nil
}

// trainSFT fine-tunes with package train and exports the model to path.
func trainSFT(ctx context.Context, run *jobs.Run, p SFTParams, b *base, data *sftData, maxLen int, typ weights.Type, path string, res *SFTResult) error {
	m, err := b.newModel(p.Params, train.HeadLM, train.PoolLast, run.Threads(), maxLen)
	if err != nil {
		return err
	}
	cfg := p.trainConfig(filepath.Join(run.Dir(), TypeSFT+".ckpt"), 5e-5)
	tr, err := train.TrainSFT(ctx, m, data.examples, cfg, train.SFTOptions{Packing: p.Packing}, hooks(ctx, run))
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("trainjobs: %w", err)
	}
	res.TrainExamples, res.EvalExamples = tr.TrainExamples, tr.EvalExamples
	res.Steps, res.BestStep, res.StoppedEarly, res.Tokens = tr.Steps, tr.BestStep, tr.StoppedEarly, tr.Tokens
	if len(tr.Eval) > 0 {
		res.Heldout = map[string]float64(tr.Eval)
	}
	if n := len(tr.Losses); n > 0 {
		res.FinalTrainLoss = tr.Losses[n-1]
	}
	if err := emptyDir(filepath.Dir(path)); err != nil {
		return err
	}
	if err := export.WriteGGUFFile(path, weightsOf(m), export.GGUFOptions{Type: typ, Name: p.ModelName, Tokenizer: b.tokMD,
		Extra: map[string]any{"bestofn.chat_template": p.Template}}); err != nil {
		return err
	}
	var check *train.Model
	if typ == weights.TypeF32 {
		check = m
	}
	return checkGGUF(path, check, data.examples[0].Tokens)
}

// checkGGUF loads a generator GGUF with package model; with m, it also compares the logits after tokens with
// the trainer's, so a broken export never gets registered.
func checkGGUF(path string, m *train.Model, tokens []int32) error {
	ck, err := weights.Open(path)
	if err != nil {
		return err
	}
	defer ck.Close()
	gm, err := model.Load(ck, model.Options{Threads: 1})
	if err != nil {
		return err
	}
	defer gm.Close()
	if _, err := tokenizer.FromMetadata(ck.Metadata); err != nil {
		return fmt.Errorf("no usable tokenizer: %w", err)
	}
	if m == nil {
		return nil
	}
	tokens = tokens[:min(len(tokens), 64)]
	cache, err := model.NewKVCache(gm.Config(), model.CacheOptions{MaxTokens: len(tokens) + 16})
	if err != nil {
		return err
	}
	seq, err := cache.NewSeq()
	if err != nil {
		return err
	}
	seqs := make([]model.SeqID, len(tokens))
	for i := range seqs {
		seqs[i] = seq
	}
	v := gm.Config().VocabSize
	got := make([]float32, v)
	if err := gm.Forward(cache, model.Batch{Tokens: tokens, Seqs: seqs}, got); err != nil {
		return err
	}
	want := make([]float32, len(tokens)*v)
	if err := m.Logits(tokens, want); err != nil {
		return err
	}
	want = want[(len(tokens)-1)*v:]
	for i := range got {
		if d := math.Abs(float64(got[i] - want[i])); !(d <= exportTolerance) {
			return fmt.Errorf("trainjobs: the exported GGUF's logit %d is %g, the trainer's %g", i, got[i], want[i])
		}
	}
	return nil
}

// publishFile publishes the file at path as the job's output name.
func publishFile(ctx context.Context, run *jobs.Run, name, purpose, path string) (jobs.File, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return jobs.File{}, fmt.Errorf("trainjobs: no %s to publish", path)
		}
		return jobs.File{}, err
	}
	defer f.Close()
	return run.PublishFile(ctx, name, purpose, f)
}
