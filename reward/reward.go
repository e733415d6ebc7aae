package reward

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// DefaultTemplate joins a prompt and a response the way Anthropic's HH-RLHF dialogues (and reward models trained
// on them) are written.
const DefaultTemplate = "\n\nHuman: {prompt}\n\nAssistant: {response}"

// Runtime names accepted by Options.Runtime.
const (
	RuntimeGo   = "go"   // hugot's pure-Go backend (GoMLX simplego); needs no system library
	RuntimeORT  = "ort"  // ONNX Runtime through github.com/yalue/onnxruntime_go; needs libonnxruntime.so
	RuntimeAuto = "auto" // ONNX Runtime when its library is found (one that fails to load is an error), else pure Go
)

// ErrClosed is returned by Score after Close.
var ErrClosed = errors.New("reward: model is closed")

// Options configure Load. The zero value is usable.
type Options struct {
	// Runtime is RuntimeGo, RuntimeORT or RuntimeAuto; "" means RuntimeAuto.
	Runtime string
	// ORTLibrary is the path of libonnxruntime.so; "" means the BESTOFN_ORT_LIB environment variable, then
	// .cache/ort/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1 under the working
	// directory or its parent (where `npm install --prefix .cache/ort onnxruntime-node@1.30.0` puts it).
	ORTLibrary string
	// BatchSize is the most candidates run through the model at once; 0 means 8.
	BatchSize int
	// MaxLength is the most tokens per (prompt, candidate) input, special tokens included; 0 means the model's
	// max_position_embeddings from config.json (512 if absent). Longer inputs are truncated (see ScoreDetails).
	MaxLength int
	// Template joins prompt and response; it must contain "{response}" once and may contain "{prompt}" once,
	// before it. "" means config.json's "reward_template", else DefaultTemplate.
	Template string
	// Threads is ONNX Runtime's intra-op thread count; 0 means ONNX Runtime's default. The Go runtime ignores it.
	Threads int
}

// Scored is the result for one candidate.
type Scored struct {
	Score     float32 // the model's raw scalar output (higher is better)
	Tokens    int     // tokens fed to the model, special tokens included
	Truncated bool    // the input was longer than MaxLength: prompt tokens were dropped from the left first, then response tokens from the end
}

// Model is a loaded reward model. It is safe for concurrent use; forward passes are serialized.
type Model struct {
	runtime   string
	tok       *rmTokenizer
	before    string // template text before {response}, still holding {prompt}
	after     string // template text after {response}
	maxLen    int
	batchSize int
	padID     int32

	mu     sync.Mutex // guards run and closed
	run    runner
	closed bool
}

// runner runs the ONNX model on one padded batch: ids, mask and types are [batch*seq] row-major, the result has one
// score per row.
type runner interface {
	run(ids, mask, types []int64, batch, seq int) ([]float32, error)
	close() error
}

// rmConfig is the part of config.json Load reads.
type rmConfig struct {
	NumLabels      *int              `json:"num_labels"`
	ID2Label       map[string]string `json:"id2label"`
	MaxPositions   int               `json:"max_position_embeddings"`
	PadTokenID     *int              `json:"pad_token_id"`
	RewardTemplate string            `json:"reward_template"`
}

// Load reads a reward model directory: config.json (num_labels must be 1), tokenizer.json and model.onnx (inputs
// input_ids and attention_mask, optionally token_type_ids; output logits of shape [batch, 1]). Errors name the
// file and the problem.
func Load(dir string, opts Options) (*Model, error) {
	m, err := newModel(dir, opts)
	if err != nil {
		return nil, err
	}
	onnxPath := filepath.Join(dir, "model.onnx")
	switch opts.Runtime {
	case RuntimeGo:
	case RuntimeORT, RuntimeAuto, "":
		lib, found, err := findORTLibrary(opts.ORTLibrary)
		if err != nil {
			return nil, err
		}
		if found {
			m.runtime = RuntimeORT
			if m.run, err = newORTRunner(onnxPath, lib, opts.Threads); err != nil {
				return nil, err
			}
			return m, nil
		}
		if opts.Runtime == RuntimeORT {
			return nil, fmt.Errorf("reward: onnx runtime library not found (set Options.ORTLibrary or BESTOFN_ORT_LIB, or run `npm install --prefix .cache/ort --ignore-scripts onnxruntime-node@1.30.0`)")
		}
	default:
		return nil, fmt.Errorf("reward: unknown runtime %q (want %q, %q or %q)", opts.Runtime, RuntimeGo, RuntimeORT, RuntimeAuto)
	}
	m.runtime = RuntimeGo
	if m.run, err = newGoRunner(dir, onnxPath); err != nil {
		return nil, err
	}
	return m, nil
}

// newModel reads config.json and tokenizer.json and checks model.onnx exists: everything but the runtime.
func newModel(dir string, opts Options) (*Model, error) {
	cfg, err := readConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	tok, err := loadTokenizer(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		return nil, err
	}
	onnxPath := filepath.Join(dir, "model.onnx")
	if st, err := os.Stat(onnxPath); err != nil {
		return nil, fmt.Errorf("reward: %w", err)
	} else if st.IsDir() {
		return nil, fmt.Errorf("reward: %s: is a directory", onnxPath)
	}

	m := &Model{tok: tok, maxLen: opts.MaxLength, batchSize: opts.BatchSize}
	if m.batchSize < 0 {
		return nil, fmt.Errorf("reward: batch size %d is negative", m.batchSize)
	}
	if m.batchSize == 0 {
		m.batchSize = 8
	}
	if m.maxLen == 0 {
		m.maxLen = cfg.MaxPositions
	}
	if m.maxLen == 0 {
		m.maxLen = 512
	}
	if m.maxLen <= len(tok.prefix)+len(tok.suffix) || (cfg.MaxPositions > 0 && m.maxLen > cfg.MaxPositions) {
		return nil, fmt.Errorf("reward: max length %d outside (%d, %d] (special tokens, config.json max_position_embeddings)",
			m.maxLen, len(tok.prefix)+len(tok.suffix), cfg.MaxPositions)
	}
	if cfg.PadTokenID != nil && *cfg.PadTokenID > 0 && *cfg.PadTokenID <= math.MaxInt32 {
		m.padID = int32(*cfg.PadTokenID) // padded positions are masked; a missing or negative id pads with 0
	}
	tmpl := opts.Template
	if tmpl == "" {
		tmpl = cfg.RewardTemplate
	}
	if tmpl == "" {
		tmpl = DefaultTemplate
	}
	if m.before, m.after, err = splitTemplate(tmpl); err != nil {
		return nil, err
	}

	return m, nil
}

func readConfig(path string) (rmConfig, error) {
	var cfg rmConfig
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("reward: %w", err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return cfg, fmt.Errorf("reward: %s: %w", path, err)
	}
	labels := 2 // transformers' default when neither key is present
	if cfg.NumLabels != nil {
		labels = *cfg.NumLabels
	} else if len(cfg.ID2Label) > 0 {
		labels = len(cfg.ID2Label)
	}
	if labels != 1 {
		return cfg, fmt.Errorf("reward: %s: num_labels is %d, a reward model has 1", path, labels)
	}
	if cfg.MaxPositions < 0 {
		return cfg, fmt.Errorf("reward: %s: max_position_embeddings %d is negative", path, cfg.MaxPositions)
	}
	return cfg, nil
}

// splitTemplate checks a template and returns its text before and after "{response}".
func splitTemplate(t string) (before, after string, err error) {
	if strings.Count(t, "{response}") != 1 || strings.Count(t, "{prompt}") > 1 {
		return "", "", fmt.Errorf("reward: template %q must contain {response} once and {prompt} at most once", t)
	}
	before, after, _ = strings.Cut(t, "{response}")
	if strings.Contains(after, "{prompt}") {
		return "", "", fmt.Errorf("reward: template %q has {prompt} after {response}", t)
	}
	return before, after, nil
}

// Runtime returns the runtime in use: RuntimeGo or RuntimeORT.
func (m *Model) Runtime() string { return m.runtime }

// Score returns one reward per candidate for the same prompt (higher is better). It satisfies engine.Scorer.
func (m *Model) Score(ctx context.Context, prompt string, candidates []string) ([]float32, error) {
	det, err := m.ScoreDetails(ctx, prompt, candidates)
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(det))
	for i, d := range det {
		out[i] = d.Score
	}
	return out, nil
}

// Encode returns the token ids the model sees for (prompt, response), special tokens included, and whether the
// input was truncated to MaxLength. An input that fits is the tokenization of the whole rendered template. One that
// does not is cut at the token boundary where the template's text before "{response}" (minus trailing spaces)
// ends: prompt tokens are dropped from the left first, then response tokens from the end, so the response's start
// is kept. (If tokenizing that prefix alone does not give a prefix of the whole, the two parts are tokenized
// separately.)
func (m *Model) Encode(prompt, response string) ([]int32, bool) {
	prefix := strings.Replace(m.before, "{prompt}", prompt, 1)
	full := m.tok.enc.Encode(prefix + response + m.after)
	budget := m.maxLen - len(m.tok.prefix) - len(m.tok.suffix)
	truncated := len(full) > budget
	p, r := full, []int32(nil)
	if truncated {
		cut := len(strings.TrimRight(prefix, " "))
		p = m.tok.enc.Encode(prefix[:cut])
		if len(p) <= len(full) && slices.Equal(full[:len(p)], p) {
			r = full[len(p):]
		} else {
			r = m.tok.enc.Encode(prefix[cut:] + response + m.after)
		}
		keep := max(0, budget-len(r))
		p = p[len(p)-min(keep, len(p)):]
		r = r[:min(len(r), budget-len(p))]
	}
	ids := make([]int32, 0, len(m.tok.prefix)+len(p)+len(r)+len(m.tok.suffix))
	ids = append(ids, m.tok.prefix...)
	ids = append(ids, p...)
	ids = append(ids, r...)
	ids = append(ids, m.tok.suffix...)
	return ids, truncated
}

// ScoreDetails is Score with token counts and truncation flags. Candidates run in batches of Options.BatchSize,
// padded on the right to the longest; ctx is checked between batches.
func (m *Model) ScoreDetails(ctx context.Context, prompt string, candidates []string) ([]Scored, error) {
	out := make([]Scored, len(candidates))
	seqs := make([][]int32, len(candidates))
	for i, c := range candidates {
		seqs[i], out[i].Truncated = m.Encode(prompt, c)
		out[i].Tokens = len(seqs[i])
	}
	for lo := 0; lo < len(seqs); lo += m.batchSize {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("reward: %w", err)
		}
		hi := min(lo+m.batchSize, len(seqs))
		scores, err := m.forward(seqs[lo:hi])
		if err != nil {
			return nil, err
		}
		for i, s := range scores {
			out[lo+i].Score = s
		}
	}
	return out, nil
}

// forward pads one batch and runs it.
func (m *Model) forward(seqs [][]int32) ([]float32, error) {
	seq := 0
	for _, s := range seqs {
		seq = max(seq, len(s))
	}
	if m.runtime == RuntimeGo {
		seq = bucket(seq, m.maxLen) // the Go backend compiles one program per shape: limit the shapes
	}
	n := len(seqs) * seq
	ids, mask, types := make([]int64, n), make([]int64, n), make([]int64, n)
	for b, s := range seqs {
		row := b * seq
		for j := range seq {
			if j < len(s) {
				ids[row+j], mask[row+j] = int64(s[j]), 1
			} else {
				ids[row+j] = int64(m.padID)
			}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	return m.run.run(ids, mask, types, len(seqs), seq)
}

// bucket rounds a sequence length up to 16, 32, 64, ... (then multiples of 128), at most limit.
func bucket(n, limit int) int {
	b := 16
	for b < n && b < 128 {
		b *= 2
	}
	if b < n {
		b = (n + 127) / 128 * 128
	}
	return max(min(b, limit), n)
}

// Close releases the runtime session. Score calls after Close return ErrClosed.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	return m.run.close()
}

// checkLogitsShape checks that a model output has the shape [batch, 1] (dims < 0 are symbolic).
func checkLogitsShape(path string, dims []int64) error {
	if len(dims) != 2 || dims[1] != 1 {
		return fmt.Errorf("reward: %s: output logits has shape %v, want [batch, 1] (one scalar reward per input)", path, dims)
	}
	return nil
}

// findORTLibrary returns the ONNX Runtime library to use and whether it was found. A library named by explicit or
// BESTOFN_ORT_LIB that does not exist is an error.
func findORTLibrary(explicit string) (string, bool, error) {
	named := explicit
	if named == "" {
		named = os.Getenv("BESTOFN_ORT_LIB")
	}
	if named != "" {
		if !fileExists(named) {
			return "", false, fmt.Errorf("reward: onnx runtime library %s: not found", named)
		}
		return named, true, nil
	}
	const rel = ".cache/ort/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1"
	for _, p := range []string{rel, filepath.Join("..", rel)} {
		if fileExists(p) {
			if abs, err := filepath.Abs(p); err == nil {
				p = abs
			}
			return p, true, nil
		}
	}
	return "", false, nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
