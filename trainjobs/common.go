package trainjobs

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/bestofn/bestofn/export"
	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/model"
	"github.com/bestofn/bestofn/tokenizer"
	"github.com/bestofn/bestofn/train"
	"github.com/bestofn/bestofn/weights"
)

// defaultMaxLength is the max_length param's default.
const defaultMaxLength = 512

// base is a job's starting point: a checkpoint (nil when training from scratch), the configuration, and the
// tokenizer with its GGUF metadata.
type base struct {
	ck    *weights.Checkpoint
	path  string // the checkpoint's file, "" for scratch
	cfg   model.Config
	tokMD *weights.Metadata // tokenizer.* keys, copied into an exported GGUF
	tok   *tokenizer.Tokenizer
	desc  map[string]any // what the base was, for the result
}

func (b *base) close() {
	if b.ck != nil {
		b.ck.Close()
	}
}

// invalid is a job error for bad input that only shows at run time (a model that does not exist, a file that
// is not a checkpoint, a bad row).
func invalid(format string, args ...any) error {
	return &jobs.JobError{Code: "invalid_input", Message: fmt.Sprintf(format, args...)}
}

// loadBase resolves base_model / base_file / scratch and the tokenizer.
func loadBase(ctx context.Context, run *jobs.Run, p Params) (*base, error) {
	b := &base{desc: map[string]any{}}
	switch {
	case p.BaseModel == BaseScratch:
		s := *p.Scratch
		b.desc["scratch"] = s
	case p.BaseModel != "":
		path, mv, err := run.ModelPath(ctx, p.BaseModel, p.BaseModelVersion)
		if err != nil {
			if errors.Is(err, jobs.ErrNotFound) {
				return nil, invalid("base_model: no registered model %q (version %d)", p.BaseModel, p.BaseModelVersion)
			}
			return nil, err
		}
		if mv.Kind != jobs.KindGenerator {
			return nil, invalid("base_model: %s is a %s model, not a generator", p.BaseModel, mv.Kind)
		}
		b.path = path
		b.desc["model"], b.desc["version"] = mv.Name, mv.Version
	default:
		path, err := run.FilePath(ctx, p.BaseFile)
		if err != nil {
			return nil, err
		}
		b.path = path
		b.desc["file"] = p.BaseFile
	}
	if b.path != "" {
		ck, err := weights.Open(b.path)
		if err != nil {
			return nil, invalid("base model: %v", err)
		}
		b.ck = ck
		cfg, err := model.ConfigFromMetadata(ck.Metadata)
		if err != nil {
			b.close()
			return nil, invalid("base model: %v", err)
		}
		if cfg.VocabSize == 0 {
			if t := ck.Tensor("token_embd.weight"); t != nil && len(t.Shape) == 2 {
				cfg.VocabSize = t.Shape[1]
			}
		}
		b.cfg = cfg
	}

	// The tokenizer: tokenizer_file, else the base GGUF's own.
	switch {
	case p.TokenizerFile != "":
		path, err := run.FilePath(ctx, p.TokenizerFile)
		if err != nil {
			b.close()
			return nil, err
		}
		v, err := export.VocabFromFile(path, b.cfg.VocabSize)
		if err != nil {
			b.close()
			return nil, invalid("tokenizer_file: %v", err)
		}
		b.tokMD = weights.NewMetadata()
		v.SetMetadata(b.tokMD)
	case b.ck != nil:
		if _, ok := b.ck.Metadata.String("tokenizer.ggml.model"); !ok {
			b.close()
			return nil, invalid("the base model has no tokenizer (a llama2.c or safetensors checkpoint): give tokenizer_file")
		}
		b.tokMD = weights.NewMetadata()
		for _, k := range b.ck.Metadata.Keys() {
			if len(k) > len("tokenizer.") && k[:len("tokenizer.")] == "tokenizer." {
				v, _ := b.ck.Metadata.Value(k)
				b.tokMD.Set(k, v)
			}
		}
	}
	tok, err := tokenizer.FromMetadata(b.tokMD)
	if err != nil {
		b.close()
		return nil, invalid("tokenizer: %v", err)
	}
	b.tok = tok
	if b.ck == nil {
		b.cfg = scratchConfig(*p.Scratch, tok.VocabSize())
	} else if tok.VocabSize() != b.cfg.VocabSize {
		b.close()
		return nil, invalid("the tokenizer has %d tokens, the base model %d", tok.VocabSize(), b.cfg.VocabSize)
	}
	return b, nil
}

// scratchConfig fills a scratch shape's defaults.
func scratchConfig(s ScratchConfig, vocab int) model.Config {
	c := model.Config{Arch: "llama", Dim: s.Dim, HiddenDim: s.HiddenDim, NLayers: s.Layers, NHeads: s.Heads,
		NKVHeads: s.KVHeads, VocabSize: vocab, ContextLen: s.ContextLength, NormEps: float32(s.NormEps),
		RopeTheta: float32(s.RopeTheta), RopeScaling: model.RopeScalingNone, RopeScaleFactor: 1, TiedOutput: true}
	if c.NKVHeads == 0 {
		c.NKVHeads = c.NHeads
	}
	if c.HiddenDim == 0 {
		c.HiddenDim = (8*c.Dim/3 + 31) / 32 * 32
	}
	if c.ContextLen == 0 {
		c.ContextLen = defaultMaxLength
	}
	if c.NormEps == 0 {
		c.NormEps = 1e-5
	}
	if c.RopeTheta == 0 {
		c.RopeTheta = 10000
	}
	c.HeadDim = c.Dim / c.NHeads
	return c
}

// maxLength is the sequence length a job trains with.
func (p Params) maxLength(cfg model.Config) (int, error) {
	n := p.MaxLength
	if n == 0 {
		n = min(defaultMaxLength, cfg.ContextLen)
	}
	if n > cfg.ContextLen {
		return 0, invalid("max_length %d is longer than the base model's context length %d", n, cfg.ContextLen)
	}
	return n, nil
}

// newModel builds the train model of the base with the given head, pooling and sequence length.
func (b *base) newModel(p Params, head train.Head, pool train.Pooling, threads, maxLen int) (*train.Model, error) {
	opts := train.Options{Head: head, Threads: threads, MaxTokens: max(4096, 2*maxLen), MaxSeqLen: maxLen, Pooling: pool}
	if b.ck == nil {
		return train.New(b.cfg, opts, p.Seed)
	}
	m, err := train.FromCheckpoint(b.ck, opts, p.Seed)
	if err != nil {
		return nil, invalid("base model: %v", err)
	}
	return m, nil
}

// trainConfig maps the params to the training loop's settings, with its checkpoint file at ckpt.
func (p Params) trainConfig(ckpt string, defaultLR float64) train.Config {
	c := train.DefaultConfig()
	c.Epochs, c.MaxSteps, c.Seed = p.Epochs, p.MaxSteps, p.Seed
	if p.BatchSize > 0 {
		c.BatchSize = p.BatchSize
	}
	c.LR = defaultLR
	if p.LearningRate > 0 {
		c.LR = p.LearningRate
	}
	if p.WarmupSteps != nil {
		c.WarmupSteps = *p.WarmupSteps
	}
	if p.MinLRRatio != nil {
		c.MinLRRatio = *p.MinLRRatio
	}
	if p.WeightDecay != nil {
		c.AdamW.WeightDecay = *p.WeightDecay
	}
	if p.MaxGradNorm != nil {
		c.ClipNorm = *p.MaxGradNorm
	}
	if p.EvalFraction != nil {
		c.EvalFraction = *p.EvalFraction
	}
	c.EvalEvery = p.EvalSteps
	if p.EarlyStoppingPatience != nil {
		c.Patience = *p.EarlyStoppingPatience
	}
	c.CheckpointPath = ckpt
	c.CheckpointEvery = p.CheckpointSteps
	return c
}

// hooks reports the loop's steps and evaluations as job progress and metrics, and its checkpoints as job
// checkpoints.
func hooks(ctx context.Context, run *jobs.Run) train.Hooks {
	return train.Hooks{
		Step: func(s train.StepInfo) {
			run.Progress(int64(s.Step), int64(s.TotalSteps), "steps")
			run.Metrics(int64(s.Step), map[string]float64{"loss": s.Loss, "learning_rate": s.LR, "grad_norm": s.GradNorm,
				"epoch": s.Epoch, "tokens": float64(s.Tokens), "tokens_per_second": s.TokensPerSecond})
		},
		Eval: func(e train.EvalInfo) {
			vals := map[string]float64{}
			for k, v := range e.Metrics {
				if !math.IsNaN(v) && !math.IsInf(v, 0) {
					vals["eval_"+k] = v
				}
			}
			run.Metrics(int64(e.Step), vals)
		},
		Checkpoint: func(c train.CheckpointInfo) {
			if err := run.SaveCheckpoint(ctx, jobState{Phase: phaseTraining, Step: c.Step}); err != nil {
				run.Event("warn", "saving the job checkpoint failed: "+err.Error(), nil)
			}
		},
	}
}

// Job phases, saved in the job's checkpoint.
const (
	phaseTraining  = "training"
	phaseExported  = "exported"
	phaseRegistred = "registered"
)

// jobState is a training job's checkpoint (the loop's own state is in its checkpoint file).
type jobState struct {
	Phase   string         `json:"phase"`
	Step    int            `json:"step,omitempty"`
	Result  map[string]any `json:"result,omitempty"` // the training summary, once trained
	FileID  string         `json:"file_id,omitempty"`
	Version int            `json:"version,omitempty"`
}

// readRows calls fn on each non-empty line of the files, in order, with its file id and 1-based line number,
// until maxRows lines (0: all). It returns the number of lines read.
func readRows(ctx context.Context, run *jobs.Run, ids []string, maxRows int, fn func(file string, line int, data []byte) error) (int, error) {
	n := 0
	for _, id := range ids {
		rc, _, err := run.OpenFile(ctx, id)
		if err != nil {
			return n, err
		}
		sc := bufio.NewScanner(rc)
		sc.Buffer(nil, 64<<20)
		line := 0
		for sc.Scan() {
			line++
			if len(trimSpace(sc.Bytes())) == 0 {
				continue
			}
			if maxRows > 0 && n >= maxRows {
				rc.Close()
				return n, nil
			}
			n++
			if err := fn(id, line, sc.Bytes()); err != nil {
				rc.Close()
				return n, err
			}
		}
		err = sc.Err()
		rc.Close()
		if err != nil {
			return n, invalid("file %s line %d: %v", id, line+1, err)
		}
		if err := ctx.Err(); err != nil {
			return n, err
		}
	}
	return n, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// rowPolicy applies skip_bad_rows to a bad row: nil (skipped and counted) or the error that fails the job.
type rowPolicy struct {
	skipBad bool
	skipped map[string]int
}

// bad handles a malformed row.
func (r *rowPolicy) bad(file string, line int, e *RowError) error {
	e.File, e.Line = file, line
	if !r.skipBad {
		return invalid("%v (set skip_bad_rows to skip such rows)", e)
	}
	r.skipped[e.Reason]++
	return nil
}

// unusable counts a well-formed row that makes no training example.
func (r *rowPolicy) unusable(e *RowError) { r.skipped[e.Reason]++ }

// emptyDir empties (or creates) dir.
func emptyDir(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o755)
}

// weightsOf is a train model's parameters in export's terms.
func weightsOf(m *train.Model) *export.Weights {
	w := &export.Weights{Config: m.Config()}
	for _, t := range m.Tensors() {
		if t.Name != train.RewardHeadWeight && t.Name != train.RewardHeadBias {
			w.Tensors = append(w.Tensors, export.Tensor(t))
		}
	}
	return w
}
