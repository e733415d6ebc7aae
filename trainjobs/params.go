package trainjobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"

	"github.com/bestofn/bestofn/chat"
	"github.com/bestofn/bestofn/jobs"
	"github.com/bestofn/bestofn/weights"
)

// Trainer names for the "trainer" param.
const (
	TrainerBuiltin  = "builtin"  // package train, in this process
	TrainerExternal = "external" // the configured External command
)

// BaseScratch is the base_model value that trains from freshly initialized weights of the "scratch" shape.
const BaseScratch = "scratch"

// Params are the params both training job types take. Zero values mean the defaults given.
type Params struct {
	// BaseModel is a registered generator's name (BaseModelVersion: 0 means its latest version), or "scratch"
	// for new weights of the Scratch shape. Exactly one of BaseModel and BaseFile is given.
	BaseModel        string `json:"base_model"`
	BaseModelVersion int    `json:"base_model_version"`
	// BaseFile is an uploaded checkpoint: a GGUF or a llama2.c .bin.
	BaseFile string `json:"base_file"`
	// Scratch is the shape of a model trained from scratch.
	Scratch *ScratchConfig `json:"scratch"`
	// TokenizerFile is an uploaded tokenizer (a GGUF with tokenizer.ggml.* keys, a SentencePiece tokenizer.model,
	// or a llama2.c tokenizer.bin); needed when the base has none (scratch, llama2.c). It replaces the base's.
	TokenizerFile string `json:"tokenizer_file"`
	// TrainingFiles are the ids of the uploaded JSONL data files, read in order.
	TrainingFiles []string `json:"training_files"`
	// SkipBadRows skips malformed rows, counting them by reason in the result, instead of failing the job on the
	// first one.
	SkipBadRows bool `json:"skip_bad_rows"`
	// MaxRows uses only the first MaxRows rows of the data (0: all).
	MaxRows int `json:"max_rows"`

	// Epochs over the training examples (default 1); MaxSteps stops earlier when > 0.
	Epochs   int `json:"epochs"`
	MaxSteps int `json:"max_steps"`
	// BatchSize is the number of examples (pairs for train-reward) per optimizer step (default 32).
	BatchSize int `json:"batch_size"`
	// LearningRate is the peak learning rate (default 1e-4 for train-reward, 5e-5 for sft), reached after
	// WarmupSteps (default 10) and decayed by a half cosine to MinLRRatio (default 0.1) of it.
	LearningRate float64  `json:"learning_rate"`
	WarmupSteps  *int     `json:"warmup_steps"`
	MinLRRatio   *float64 `json:"min_lr_ratio"`
	// WeightDecay is AdamW's decoupled weight decay (default 0.1).
	WeightDecay *float64 `json:"weight_decay"`
	// MaxGradNorm clips the global gradient norm (default 1; 0 disables).
	MaxGradNorm *float64 `json:"max_grad_norm"`
	// MaxLength is the longest token sequence (default 512, at most the base's context length); the reward model
	// serves with this maximum.
	MaxLength int `json:"max_length"`
	// Seed fixes initialization, the held-out split and the data order.
	Seed uint64 `json:"seed"`
	// EvalFraction is the seeded share of examples held out (default 0.2; 0 disables evaluation).
	EvalFraction *float64 `json:"eval_fraction"`
	// EvalSteps evaluates every this many steps (default: each epoch); the run always ends with one.
	EvalSteps int `json:"eval_steps"`
	// EarlyStoppingPatience stops after this many evaluations without improvement (held-out accuracy for
	// train-reward, loss for sft) and keeps the best weights (default 3; 0 disables).
	EarlyStoppingPatience *int `json:"early_stopping_patience"`
	// CheckpointSteps also checkpoints every this many steps (it always does at each epoch's end).
	CheckpointSteps int `json:"checkpoint_steps"`

	// ModelName is the name the model is registered under (default "reward" for train-reward, "sft" for sft).
	ModelName string `json:"model_name"`
	// Trainer is "builtin" (default) or "external" (the server's configured command for this job type).
	Trainer string `json:"trainer"`
	// TrainerArgs are passed to an external trainer in its params file.
	TrainerArgs map[string]any `json:"trainer_args"`
}

// ScratchConfig is the shape of a model trained from scratch; the vocabulary is the tokenizer's.
type ScratchConfig struct {
	Dim           int     `json:"dim"`
	Layers        int     `json:"layers"`
	Heads         int     `json:"heads"`
	KVHeads       int     `json:"kv_heads"`       // default Heads
	HiddenDim     int     `json:"hidden_dim"`     // default the LLaMA rule: 2/3 of 4*dim, rounded up to a multiple of 32
	ContextLength int     `json:"context_length"` // default 512
	RopeTheta     float64 `json:"rope_theta"`     // default 10000
	NormEps       float64 `json:"norm_eps"`       // default 1e-5
}

// RewardParams are train-reward's params.
type RewardParams struct {
	Params
	// Template joins prompt and response (default DefaultRewardTemplate, HH-RLHF's); it is saved with the model,
	// which serves with it.
	Template string `json:"template"`
	// UseMargin trains with TRL's margin column and comparison rows' score gaps as margins,
	// -log sigmoid(r_c - r_r - margin).
	UseMargin bool `json:"use_margin"`
	// MarginScale multiplies comparison rows' score gaps (default 1).
	MarginScale float64 `json:"margin_scale"`
	// AppendEOS ends every input with EOS and reads the score there (OpenRLHF's convention); the exported
	// tokenizer.json appends it too, so the served model sees the same inputs.
	AppendEOS bool `json:"append_eos"`
	// Pooling is what the head reads: "last" (default; the last token's hidden state, as HF's
	// LlamaForSequenceClassification) or "mean" (the mean over every token's, which trains better on little
	// data). The exported graph pools the same way.
	Pooling string `json:"pooling"`
}

// SFTParams are sft's params.
type SFTParams struct {
	Params
	// Template renders conversations: a built-in chat template name (default "alpaca", the paper's Algorithm 1).
	Template string `json:"template"`
	// Packing packs examples back to back into sequences of MaxLength tokens.
	Packing bool `json:"packing"`
	// GGUFType is the type of the exported matrices: F32 (default), F16, BF16, Q8_0 or Q4_0.
	GGUFType string `json:"gguf_type"`
}

// modelNameRE is the registry's rule for model names.
var modelNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)

// ggufTypes maps gguf_type names to weights types.
var ggufTypes = map[string]weights.Type{"F32": weights.TypeF32, "F16": weights.TypeF16, "BF16": weights.TypeBF16,
	"Q8_0": weights.TypeQ8_0, "Q4_0": weights.TypeQ4_0}

func paramErr(field, format string, args ...any) error {
	return &jobs.ParamError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// check validates the shared params; external says whether an external trainer is configured for the type.
func (p *Params) check(ctx context.Context, files jobs.FileChecker, external bool) error {
	switch {
	case p.BaseModel == "" && p.BaseFile == "":
		return paramErr("base_model", "give base_model (a registered generator, or %q) or base_file", BaseScratch)
	case p.BaseModel != "" && p.BaseFile != "":
		return paramErr("base_file", "give base_model or base_file, not both")
	case p.BaseModel == BaseScratch && p.Scratch == nil:
		return paramErr("scratch", "base_model %q needs the scratch shape {dim, layers, heads, ...}", BaseScratch)
	case p.BaseModel != BaseScratch && p.Scratch != nil:
		return paramErr("scratch", "only with base_model %q", BaseScratch)
	case p.BaseModel == BaseScratch && p.TokenizerFile == "":
		return paramErr("tokenizer_file", "a model trained from scratch needs a tokenizer file")
	case p.BaseModel != "" && p.BaseModel != BaseScratch && !modelNameRE.MatchString(p.BaseModel):
		return paramErr("base_model", "%q is not a model name", p.BaseModel)
	case p.BaseModelVersion < 0:
		return paramErr("base_model_version", "must not be negative")
	case p.BaseModelVersion > 0 && (p.BaseModel == "" || p.BaseModel == BaseScratch):
		return paramErr("base_model_version", "only with a registered base_model")
	case len(p.TrainingFiles) == 0:
		return paramErr("training_files", "give at least one data file id")
	case p.MaxRows < 0:
		return paramErr("max_rows", "must not be negative")
	case p.Epochs < 0 || p.Epochs > 10000:
		return paramErr("epochs", "must be between 0 and 10000")
	case p.MaxSteps < 0:
		return paramErr("max_steps", "must not be negative")
	case p.BatchSize < 0 || p.BatchSize > 1<<16:
		return paramErr("batch_size", "must be between 0 and 65536")
	case p.LearningRate < 0 || math.IsNaN(p.LearningRate) || p.LearningRate > 1:
		return paramErr("learning_rate", "must be in [0, 1]")
	case p.WarmupSteps != nil && *p.WarmupSteps < 0:
		return paramErr("warmup_steps", "must not be negative")
	case p.MinLRRatio != nil && !(*p.MinLRRatio >= 0 && *p.MinLRRatio <= 1):
		return paramErr("min_lr_ratio", "must be in [0, 1]")
	case p.WeightDecay != nil && !(*p.WeightDecay >= 0 && *p.WeightDecay < 1):
		return paramErr("weight_decay", "must be in [0, 1)")
	case p.MaxGradNorm != nil && !(*p.MaxGradNorm >= 0 && !math.IsInf(*p.MaxGradNorm, 0)):
		return paramErr("max_grad_norm", "must be a number >= 0")
	case p.MaxLength != 0 && (p.MaxLength < 8 || p.MaxLength > 1<<16):
		return paramErr("max_length", "must be between 8 and 65536")
	case p.EvalFraction != nil && !(*p.EvalFraction >= 0 && *p.EvalFraction < 1):
		return paramErr("eval_fraction", "must be in [0, 1)")
	case p.EvalSteps < 0:
		return paramErr("eval_steps", "must not be negative")
	case p.EarlyStoppingPatience != nil && *p.EarlyStoppingPatience < 0:
		return paramErr("early_stopping_patience", "must not be negative")
	case p.CheckpointSteps < 0:
		return paramErr("checkpoint_steps", "must not be negative")
	case p.ModelName != "" && !modelNameRE.MatchString(p.ModelName):
		return paramErr("model_name", "want 1-128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit")
	case p.Trainer != "" && p.Trainer != TrainerBuiltin && p.Trainer != TrainerExternal:
		return paramErr("trainer", "must be %q or %q", TrainerBuiltin, TrainerExternal)
	case p.Trainer == TrainerExternal && !external:
		return paramErr("trainer", "no external trainer command is configured on this server for this job type")
	case p.TrainerArgs != nil && p.Trainer != TrainerExternal:
		return paramErr("trainer_args", "only with trainer %q", TrainerExternal)
	}
	if s := p.Scratch; s != nil {
		switch {
		case s.Dim <= 0 || s.Dim > 1<<15:
			return paramErr("scratch.dim", "must be between 1 and 32768")
		case s.Layers <= 0 || s.Layers > 1024:
			return paramErr("scratch.layers", "must be between 1 and 1024")
		case s.Heads <= 0 || s.Dim%s.Heads != 0 || (s.Dim/s.Heads)%2 != 0:
			return paramErr("scratch.heads", "must divide dim into heads of an even width")
		case s.KVHeads < 0 || (s.KVHeads > 0 && s.Heads%s.KVHeads != 0):
			return paramErr("scratch.kv_heads", "must divide heads")
		case s.HiddenDim < 0 || s.HiddenDim > 1<<17:
			return paramErr("scratch.hidden_dim", "must be between 0 and 131072")
		case s.ContextLength < 0 || s.ContextLength > 1<<16:
			return paramErr("scratch.context_length", "must be between 0 and 65536")
		case s.RopeTheta != 0 && !(s.RopeTheta > 1 && s.RopeTheta < 1e9):
			return paramErr("scratch.rope_theta", "must be in (1, 1e9)")
		case s.NormEps != 0 && !(s.NormEps > 0 && s.NormEps < 1):
			return paramErr("scratch.norm_eps", "must be in (0, 1)")
		}
	}
	if ctx == nil || files == nil {
		return nil
	}
	check := func(field, id string) error {
		if _, err := files.File(ctx, id); err != nil {
			if errors.Is(err, jobs.ErrNotFound) {
				return paramErr(field, "no file %q", id)
			}
			return err
		}
		return nil
	}
	if p.BaseFile != "" {
		if err := check("base_file", p.BaseFile); err != nil {
			return err
		}
	}
	if p.TokenizerFile != "" {
		if err := check("tokenizer_file", p.TokenizerFile); err != nil {
			return err
		}
	}
	for i, id := range p.TrainingFiles {
		if err := check(fmt.Sprintf("training_files[%d]", i), id); err != nil {
			return err
		}
	}
	return nil
}

// decodeParams is jobs.DecodeParams with the embedded Params' name kept out of type errors' field paths.
func decodeParams(raw json.RawMessage, v any) error {
	err := jobs.DecodeParams(raw, v)
	var pe *jobs.ParamError
	if errors.As(err, &pe) {
		pe.Field = strings.TrimPrefix(pe.Field, "Params.")
	}
	return err
}

// decodeReward decodes and checks train-reward's params, filling defaults.
func decodeReward(ctx context.Context, raw json.RawMessage, files jobs.FileChecker, external bool) (RewardParams, rmTemplate, error) {
	var p RewardParams
	if err := decodeParams(raw, &p); err != nil {
		return p, rmTemplate{}, err
	}
	if err := p.check(ctx, files, external); err != nil {
		return p, rmTemplate{}, err
	}
	if p.Template == "" {
		p.Template = DefaultRewardTemplate
	}
	t, err := parseRMTemplate(p.Template)
	if err != nil {
		return p, t, paramErr("template", "%v", err)
	}
	if p.MarginScale < 0 || math.IsNaN(p.MarginScale) || math.IsInf(p.MarginScale, 0) {
		return p, t, paramErr("margin_scale", "must be a number >= 0")
	}
	if p.MarginScale == 0 {
		p.MarginScale = 1
	}
	switch p.Pooling {
	case "":
		p.Pooling = "last"
	case "last", "mean":
	default:
		return p, t, paramErr("pooling", "must be \"last\" or \"mean\"")
	}
	if p.ModelName == "" {
		p.ModelName = "reward"
	}
	return p, t, nil
}

// decodeSFT decodes and checks sft's params, filling defaults.
func decodeSFT(ctx context.Context, raw json.RawMessage, files jobs.FileChecker, external bool) (SFTParams, chat.Template, weights.Type, error) {
	var p SFTParams
	if err := decodeParams(raw, &p); err != nil {
		return p, nil, 0, err
	}
	if err := p.check(ctx, files, external); err != nil {
		return p, nil, 0, err
	}
	if p.Template == "" {
		p.Template = "alpaca"
	}
	tmpl, err := chat.Lookup(p.Template)
	if err != nil {
		return p, nil, 0, paramErr("template", "%v", err)
	}
	if p.GGUFType == "" {
		p.GGUFType = "F32"
	}
	typ, ok := ggufTypes[strings.ToUpper(p.GGUFType)]
	if !ok {
		return p, nil, 0, paramErr("gguf_type", "must be F32, F16, BF16, Q8_0 or Q4_0")
	}
	if p.ModelName == "" {
		p.ModelName = "sft"
	}
	return p, tmpl, typ, nil
}
