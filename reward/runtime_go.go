package reward

import (
	"context"
	"errors"
	"fmt"

	"github.com/knights-analytics/hugot/backends"
	"github.com/knights-analytics/hugot/options"
)

// goRunner runs the model with hugot's pure-Go backend (onnx-gomlx on GoMLX's simplego). It feeds token ids
// directly, bypassing hugot's tokenizer, through the same batch and session calls hugot's pipelines use.
type goRunner struct {
	model    *backends.Model
	pipeline *backends.BasePipeline
	output   int // index of "logits" among the outputs
	cancel   context.CancelFunc
}

func newGoRunner(dir, onnxPath string) (r *goRunner, err error) {
	opts := options.Defaults()
	opts.Backend = "GO"
	model := &backends.Model{ID: dir, Path: dir, OnnxFilename: "model.onnx", Pipelines: map[string]backends.Pipeline{}}
	defer func() {
		// onnx-gomlx panics on some malformed graphs: turn that into an error naming the file.
		if p := recover(); p != nil {
			err = fmt.Errorf("reward: %s: go runtime: %v", onnxPath, p)
		}
	}()
	if err := backends.CreateModelBackend(context.Background(), model, opts); err != nil {
		return nil, fmt.Errorf("reward: %s: go runtime: %w", onnxPath, err)
	}
	r = &goRunner{model: model, output: -1}
	fail := func(e error) (*goRunner, error) {
		model.GoMLXModel.Destroy()
		return nil, e
	}
	for i, o := range model.OutputsMeta {
		if o.Name == "logits" {
			r.output = i
			if err := checkLogitsShape(onnxPath, o.Dimensions); err != nil {
				return fail(err)
			}
		}
	}
	if r.output < 0 {
		return fail(fmt.Errorf("reward: %s: no output named logits (outputs: %v)", onnxPath, backends.GetNames(model.OutputsMeta)))
	}
	if err := checkInputs(onnxPath, backends.GetNames(model.InputsMeta)); err != nil {
		return fail(err)
	}
	sessionCtx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.pipeline = &backends.BasePipeline{Model: model, PipelineName: "reward", Runtime: "GO", SessionContext: sessionCtx}
	return r, nil
}

// checkInputs accepts the inputs a sequence-classification export has.
func checkInputs(path string, names []string) error {
	has := map[string]bool{}
	for _, n := range names {
		switch n {
		case "input_ids", "attention_mask", "token_type_ids":
			has[n] = true
		default:
			return fmt.Errorf("reward: %s: unsupported model input %q (want input_ids, attention_mask, token_type_ids)", path, n)
		}
	}
	if !has["input_ids"] || !has["attention_mask"] {
		return fmt.Errorf("reward: %s: model inputs %v lack input_ids or attention_mask", path, names)
	}
	return nil
}

// run executes one batch. It takes no ctx (nor does the ORT runner), and gives hugot none: on cancellation hugot
// returns while the computation goes on in the background, and the input tensors released here would still be in
// use. ScoreDetails checks cancellation between batches instead.
func (r *goRunner) run(ids, mask, types []int64, batch, seq int) (scores []float32, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("reward: go runtime: %v", p)
		}
	}()
	b := backends.NewBatch(batch)
	b.Input = make([]backends.TokenizedInput, batch)
	for i := range batch {
		in := &b.Input[i]
		in.TokenIDs = make([]uint32, seq)
		in.AttentionMask = make([]uint32, seq)
		in.TypeIDs = make([]uint32, seq)
		for j := range seq {
			in.TokenIDs[j] = uint32(ids[i*seq+j])
			in.AttentionMask[j] = uint32(mask[i*seq+j])
			in.TypeIDs[j] = uint32(types[i*seq+j])
		}
	}
	b.MaxSequenceLength = seq
	defer func() { err = errors.Join(err, b.Destroy()) }()
	if err := backends.CreateInputTensors(b, r.model, "GO"); err != nil {
		return nil, fmt.Errorf("reward: go runtime: %w", err)
	}
	if err := backends.RunSessionOnBatch(context.Background(), b, r.pipeline); err != nil {
		return nil, fmt.Errorf("reward: go runtime: %w", err)
	}
	if r.output >= len(b.OutputValues) {
		return nil, fmt.Errorf("reward: go runtime: %d outputs, want logits at %d", len(b.OutputValues), r.output)
	}
	rows, ok := b.OutputValues[r.output].([][]float32)
	if !ok || len(rows) != batch {
		return nil, fmt.Errorf("reward: go runtime: logits is %T, want [batch][1]float32", b.OutputValues[r.output])
	}
	scores = make([]float32, batch)
	for i, row := range rows {
		if len(row) != 1 {
			return nil, fmt.Errorf("reward: go runtime: logits row has %d values, want 1", len(row))
		}
		scores[i] = row[0]
	}
	return scores, nil
}

func (r *goRunner) close() error {
	r.cancel()
	r.model.GoMLXModel.Destroy()
	return nil
}
