package export

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
)

// RewardModel is a reward model to write as a directory package reward loads.
type RewardModel struct {
	// Weights is the backbone; its final norm (output_norm.weight) is applied before the head. An output.weight,
	// if present, is not used.
	Weights *Weights
	Head    Head
	// Vocab is the backbone's tokenizer, written as tokenizer.json (BOS prepended when Vocab.AddBOS is set, as
	// the trainer feeds it).
	Vocab *Vocab
	// MaxPositions is the longest input (config.json max_position_embeddings, which package reward truncates
	// to); 0 means Weights.Config.ContextLen.
	MaxPositions int
	// Template joins prompt and response (config.json reward_template); "" leaves package reward's default,
	// HH-RLHF's "\n\nHuman: {prompt}\n\nAssistant: {response}".
	Template string
	// RewardMean and RewardStd are the mean and standard deviation of the model's scores on its training
	// data, for normalizing (config.json reward_mean, reward_std); both 0 means not recorded.
	RewardMean, RewardStd float64
	// Extra holds more config.json keys (e.g. how the model was trained); they may not replace the keys above.
	Extra map[string]any
}

// Files of a reward model directory.
const (
	RewardONNXFile      = "model.onnx"
	RewardConfigFile    = "config.json"
	RewardTokenizerFile = "tokenizer.json"
)

// WriteRewardModel writes dir/model.onnx, dir/config.json and dir/tokenizer.json (creating dir), each to a
// temporary name, fsynced and renamed.
func WriteRewardModel(dir string, rm RewardModel) error {
	if rm.Weights == nil || rm.Vocab == nil {
		return errors.New("export: reward model needs weights and a vocabulary")
	}
	cfg := rm.Weights.Config
	if len(rm.Vocab.Tokens) != cfg.VocabSize {
		return fmt.Errorf("export: vocabulary has %d tokens, the model %d", len(rm.Vocab.Tokens), cfg.VocabSize)
	}
	maxPos := rm.MaxPositions
	if maxPos <= 0 {
		maxPos = cfg.ContextLen
	}
	g, err := rewardGraph(rm.Weights, rm.Head, maxPos)
	if err != nil {
		return err
	}
	onnx, err := g.model("bestofn-reward", "bestofn")
	if err != nil {
		return err
	}
	tok, err := rm.Vocab.TokenizerJSON()
	if err != nil {
		return err
	}
	conf := map[string]any{
		"architectures":           []string{"LlamaForSequenceClassification"},
		"model_type":              "llama",
		"num_labels":              1,
		"id2label":                map[string]string{"0": "LABEL_0"},
		"label2id":                map[string]int{"LABEL_0": 0},
		"problem_type":            "regression",
		"vocab_size":              cfg.VocabSize,
		"hidden_size":             cfg.Dim,
		"intermediate_size":       cfg.HiddenDim,
		"num_hidden_layers":       cfg.NLayers,
		"num_attention_heads":     cfg.NHeads,
		"num_key_value_heads":     cfg.NKVHeads,
		"max_position_embeddings": maxPos,
		"rms_norm_eps":            cfg.NormEps,
		"rope_theta":              cfg.RopeTheta,
		"hidden_act":              "silu",
		"tie_word_embeddings":     cfg.TiedOutput,
		"pad_token_id":            0,
	}
	if _, ok := rm.Vocab.name(rm.Vocab.BOS); ok {
		conf["bos_token_id"] = rm.Vocab.BOS
	}
	if _, ok := rm.Vocab.name(rm.Vocab.EOS); ok {
		conf["eos_token_id"] = rm.Vocab.EOS
	}
	if rm.Template != "" {
		conf["reward_template"] = rm.Template
	}
	if rm.Head.Mean {
		conf["pooling"] = "mean" // informational: the graph itself pools
	}
	if rm.RewardMean != 0 || rm.RewardStd != 0 {
		conf["reward_mean"], conf["reward_std"] = rm.RewardMean, rm.RewardStd
	}
	for k := range rm.Extra {
		if _, taken := conf[k]; taken {
			return fmt.Errorf("export: extra config key %q is written by the exporter", k)
		}
	}
	maps.Copy(conf, rm.Extra)
	confJSON, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return fmt.Errorf("export: config.json: %w", err)
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{RewardONNXFile, onnx}, {RewardTokenizerFile, tok}, {RewardConfigFile, append(confJSON, '\n')}} {
		if err := WriteFileAtomic(filepath.Join(dir, f.name), func(w io.Writer) error {
			_, err := w.Write(f.data)
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

// WriteFileAtomic writes path through write: to a temporary file beside it, fsynced, renamed over path, and the
// directory fsynced, so that path holds either its old content or the complete new one after a crash.
func WriteFileAtomic(path string, write func(w io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := write(bw); err != nil {
		return fmt.Errorf("export: write %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("export: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("export: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("export: close %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("export: sync %s: %w", filepath.Dir(path), err)
	}
	return nil
}
