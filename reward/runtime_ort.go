package reward

import (
	"errors"
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
)

// ortRunner runs the model with ONNX Runtime. The ONNX Runtime environment is process-wide: the first Load
// initializes it with its library and it stays up for the life of the process (sessions are closed by Close).
type ortRunner struct {
	sess   *ort.DynamicAdvancedSession
	inputs []string // model input names, in session order
	int32s bool     // inputs are int32 rather than int64
}

func newORTRunner(onnxPath, lib string, threads int) (*ortRunner, error) {
	if !ort.IsInitialized() {
		ort.SetSharedLibraryPath(lib)
		if err := ort.InitializeEnvironment(); err != nil && !ort.IsInitialized() {
			return nil, fmt.Errorf("reward: onnx runtime %s: %w", lib, err)
		}
	}
	ins, outs, err := ort.GetInputOutputInfo(onnxPath)
	if err != nil {
		return nil, fmt.Errorf("reward: %s: onnx runtime: %w", onnxPath, err)
	}
	found := false
	for _, o := range outs {
		if o.Name == "logits" {
			found = true
			if err := checkLogitsShape(onnxPath, o.Dimensions); err != nil {
				return nil, err
			}
			if o.DataType != ort.TensorElementDataTypeFloat {
				return nil, fmt.Errorf("reward: %s: output logits is %v, want float32", onnxPath, o.DataType)
			}
		}
	}
	if !found {
		return nil, fmt.Errorf("reward: %s: no output named logits", onnxPath)
	}
	r := &ortRunner{}
	for i, in := range ins {
		r.inputs = append(r.inputs, in.Name)
		is32 := in.DataType == ort.TensorElementDataTypeInt32
		if in.DataType != ort.TensorElementDataTypeInt64 && !is32 {
			return nil, fmt.Errorf("reward: %s: input %s is %v, want int64 or int32", onnxPath, in.Name, in.DataType)
		}
		if i > 0 && is32 != r.int32s {
			return nil, fmt.Errorf("reward: %s: inputs mix int32 and int64", onnxPath)
		}
		r.int32s = is32
	}
	if err := checkInputs(onnxPath, r.inputs); err != nil {
		return nil, err
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("reward: onnx runtime: %w", err)
	}
	defer so.Destroy()
	if threads > 0 {
		if err := so.SetIntraOpNumThreads(threads); err != nil {
			return nil, fmt.Errorf("reward: onnx runtime: %w", err)
		}
	}
	r.sess, err = ort.NewDynamicAdvancedSession(onnxPath, r.inputs, []string{"logits"}, so)
	if err != nil {
		return nil, fmt.Errorf("reward: %s: onnx runtime: %w", onnxPath, err)
	}
	return r, nil
}

func (r *ortRunner) run(ids, mask, types []int64, batch, seq int) (scores []float32, err error) {
	shape := ort.NewShape(int64(batch), int64(seq))
	values := make([]ort.Value, len(r.inputs))
	defer func() {
		for _, v := range values {
			if v != nil {
				err = errors.Join(err, v.Destroy())
			}
		}
	}()
	for i, name := range r.inputs {
		data := ids
		switch name {
		case "attention_mask":
			data = mask
		case "token_type_ids":
			data = types
		}
		if r.int32s {
			d32 := make([]int32, len(data))
			for j, v := range data {
				d32[j] = int32(v)
			}
			values[i], err = ort.NewTensor(shape, d32)
		} else {
			values[i], err = ort.NewTensor(shape, data)
		}
		if err != nil {
			return nil, fmt.Errorf("reward: onnx runtime: %w", err)
		}
	}
	out, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(batch), 1))
	if err != nil {
		return nil, fmt.Errorf("reward: onnx runtime: %w", err)
	}
	defer func() { err = errors.Join(err, out.Destroy()) }()
	if err := r.sess.Run(values, []ort.Value{out}); err != nil {
		return nil, fmt.Errorf("reward: onnx runtime: %w", err)
	}
	scores = make([]float32, batch)
	copy(scores, out.GetData())
	return scores, nil
}

func (r *ortRunner) close() error {
	return r.sess.Destroy()
}
