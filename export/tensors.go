package export

import (
	"errors"
	"fmt"
	"slices"

	"github.com/bestofn/bestofn/model"
	"github.com/bestofn/bestofn/weights"
)

// Tensor is one float32 tensor with its GGUF name, in row-major order: the matrix W of a layer y = W x with
// len(y) = out and len(x) = in has Shape [out, in]; token_embd.weight is [vocab, dim]; norms are [dim]. q and k
// rows are in GGUF's rotary order (consecutive pairs), as package model and package train hold them.
type Tensor struct {
	Name  string
	Shape []int
	Data  []float32
}

// Weights is a LLaMA-architecture model: its hyperparameters and its tensors by GGUF name (token_embd.weight,
// blk.N.attn_norm.weight, blk.N.attn_q/k/v/output.weight, blk.N.ffn_norm.weight, blk.N.ffn_gate/up/down.weight,
// output_norm.weight, and output.weight unless the embedding is tied).
type Weights struct {
	Config  model.Config
	Tensors []Tensor
}

// tensor returns the named tensor's data after checking its shape.
func (w *Weights) tensor(name string, shape ...int) ([]float32, error) {
	for _, t := range w.Tensors {
		if t.Name != name {
			continue
		}
		got := t.Shape
		if len(shape) == 1 && len(got) == 2 && got[0] == 1 { // a vector stored as [1, n]
			got = got[1:]
		}
		n := 1
		for _, d := range shape {
			n *= d
		}
		if !slices.Equal(got, shape) || len(t.Data) != n {
			return nil, fmt.Errorf("export: tensor %s has shape %v and %d values, want %v", name, t.Shape, len(t.Data), shape)
		}
		return t.Data, nil
	}
	return nil, fmt.Errorf("export: missing tensor %s", name)
}

// loader looks tensors up, keeping the first error, so a writer reads as the list of tensors it needs.
type loader struct {
	w   *Weights
	err error
}

func (l *loader) get(name string, shape ...int) []float32 {
	if l.err != nil {
		return nil
	}
	data, err := l.w.tensor(name, shape...)
	l.err = err
	return data
}

// has reports whether the named tensor is present.
func (w *Weights) has(name string) bool {
	for _, t := range w.Tensors {
		if t.Name == name {
			return true
		}
	}
	return false
}

// check validates the configuration the writers rely on.
func (w *Weights) check() error {
	c := w.Config
	switch {
	case c.Dim <= 0 || c.NLayers <= 0 || c.NHeads <= 0 || c.NKVHeads <= 0 || c.HiddenDim <= 0 || c.VocabSize <= 0:
		return fmt.Errorf("export: config has a non-positive size: %+v", c)
	case c.Dim%c.NHeads != 0 || c.NHeads%c.NKVHeads != 0:
		return fmt.Errorf("export: dim %d, %d heads and %d kv heads do not divide", c.Dim, c.NHeads, c.NKVHeads)
	case c.HeadDim != c.Dim/c.NHeads || c.HeadDim%2 != 0:
		return fmt.Errorf("export: head dim %d, want an even dim/heads = %d", c.HeadDim, c.Dim/c.NHeads)
	case !(c.NormEps > 0):
		return fmt.Errorf("export: rms norm epsilon %g", c.NormEps)
	case !(c.RopeTheta > 1):
		return fmt.Errorf("export: rope theta %g", c.RopeTheta)
	}
	return nil
}

// FromCheckpoint reads a LLaMA checkpoint (any format package weights opens, any tensor type) into float32
// Weights. The config is model.ConfigFromMetadata's, with VocabSize from the token embedding when the metadata
// has none and TiedOutput set when there is no output.weight.
func FromCheckpoint(ck *weights.Checkpoint) (*Weights, error) {
	if ck == nil {
		return nil, errors.New("export: nil checkpoint")
	}
	cfg, err := model.ConfigFromMetadata(ck.Metadata)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	w := &Weights{Config: cfg}
	for _, t := range ck.Tensors {
		n := t.NumElements()
		data := make([]float32, n)
		if err := weights.Dequantize(t.Type, t.Data, data); err != nil {
			return nil, fmt.Errorf("export: tensor %s: %w", t.Name, err)
		}
		shape := slices.Clone(t.Shape)
		slices.Reverse(shape) // GGML order (contiguous first) to row-major
		w.Tensors = append(w.Tensors, Tensor{Name: t.Name, Shape: shape, Data: data})
		if t.Name == "token_embd.weight" && w.Config.VocabSize == 0 && len(shape) == 2 {
			w.Config.VocabSize = shape[0]
		}
	}
	w.Config.TiedOutput = !w.has("output.weight")
	if err := w.check(); err != nil {
		return nil, err
	}
	return w, nil
}
