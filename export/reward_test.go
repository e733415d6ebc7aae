package export

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bestofn/bestofn/model"
	"github.com/bestofn/bestofn/reward"
	"github.com/bestofn/bestofn/tokenizer"
	"github.com/bestofn/bestofn/weights"
)

const stories260K = "../../shared/models/stories260K/stories260K.gguf"

// scoreTolerance is how far an exported reward model's scores may be from the reference forward pass.
const scoreTolerance = 1e-4

// ortRuntime returns reward.Options for ONNX Runtime, skipping the test when its library is not installed.
func ortOptions(t *testing.T) reward.Options {
	t.Helper()
	lib := os.Getenv("BESTOFN_ORT_LIB")
	if lib == "" {
		for _, p := range []string{"../.cache/ort/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1"} {
			if _, err := os.Stat(p); err == nil {
				lib, _ = filepath.Abs(p)
			}
		}
	}
	if lib == "" {
		t.Skip("onnx runtime library not found: set BESTOFN_ORT_LIB or run `npm install --prefix .cache/ort --ignore-scripts onnxruntime-node@1.30.0` in the repo root")
	}
	return reward.Options{Runtime: reward.RuntimeORT, ORTLibrary: lib}
}

// forEachRuntime runs f for hugot's Go runtime and for ONNX Runtime.
func forEachRuntime(t *testing.T, f func(t *testing.T, opts reward.Options)) {
	t.Run(reward.RuntimeGo, func(t *testing.T) { f(t, reward.Options{Runtime: reward.RuntimeGo}) })
	t.Run(reward.RuntimeORT, func(t *testing.T) { f(t, ortOptions(t)) })
}

// openModel opens a GGUF with package model.
func openModel(t *testing.T, path string) (*weights.Checkpoint, *model.Model) {
	t.Helper()
	ck, err := weights.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	m, err := model.Load(ck, model.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return ck, m
}

// lastLogits runs ids through m from an empty cache and returns the logits after the last token.
func lastLogits(t *testing.T, m *model.Model, ids []int32) []float32 {
	t.Helper()
	cache, err := model.NewKVCache(m.Config(), model.CacheOptions{MaxTokens: len(ids) + 16})
	if err != nil {
		t.Fatal(err)
	}
	seq, err := cache.NewSeq()
	if err != nil {
		t.Fatal(err)
	}
	seqs := make([]model.SeqID, len(ids))
	for i := range seqs {
		seqs[i] = seq
	}
	logits := make([]float32, m.Config().VocabSize)
	if err := m.Forward(cache, model.Batch{Tokens: ids, Seqs: seqs}, logits); err != nil {
		t.Fatal(err)
	}
	return logits
}

// scoreBatch loads the reward model in dir and scores the candidates in one batch (padded to the longest);
// it returns the scores and the token ids each input was.
func scoreBatch(t *testing.T, dir string, opts reward.Options, prompt string, candidates []string) ([]float32, [][]int32) {
	t.Helper()
	opts.BatchSize = len(candidates)
	rm, err := reward.Load(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer rm.Close()
	scores, err := rm.Score(context.Background(), prompt, candidates)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([][]int32, len(candidates))
	for i, c := range candidates {
		ids[i], _ = rm.Encode(prompt, c)
	}
	return scores, ids
}

// outputRowHead returns row j of the output matrix (the tied embedding when there is none) as a head: the
// reward model's score is then model.Forward's logit j at the last position.
func outputRowHead(t *testing.T, w *Weights, j int) Head {
	t.Helper()
	name := "output.weight"
	if w.Config.TiedOutput {
		name = "token_embd.weight"
	}
	out, err := w.tensor(name, w.Config.VocabSize, w.Config.Dim)
	if err != nil {
		t.Fatal(err)
	}
	return Head{Weight: out[j*w.Config.Dim : (j+1)*w.Config.Dim]}
}

// TestRewardONNXMatchesForward exports reward models whose head is row j of a model's output matrix, with the
// model's final norm, so that the score must be model.Forward's logit j at the last position: stories260K (8 heads
// in 4 kv groups, untied) and a random model written by WriteGGUF (9 heads in 3 groups of 3, tied embeddings,
// rope theta 5e5). Candidates of different lengths share one batch, padded on the right (the Go runtime pads
// further, to its shape buckets); both runtimes must agree with model.Forward within scoreTolerance.
func TestRewardONNXMatchesForward(t *testing.T) {
	gqaPath := writeGGUFFile(t, randomWeights(gqaConfig, 3), GGUFOptions{Tokenizer: storiesMetadata(t)})
	prompt := "Lily wanted to play in the park."
	candidates := []string{
		"Once upon a time, there was a little girl named Lily.",
		"No.",
		"She saw a big dog and they ran to the tree together, laughing, until the sun went down and it was time to go home.",
		"Tim",
	}
	for _, c := range []struct {
		name, path string
		j          int
	}{{"stories260K", stories260K, 371}, {"gqa", gqaPath, 45}} {
		t.Run(c.name, func(t *testing.T) {
			ck, m := openModel(t, c.path)
			w, err := FromCheckpoint(ck)
			if err != nil {
				t.Fatal(err)
			}
			vocab, err := VocabFromMetadata(ck.Metadata)
			if err != nil {
				t.Fatal(err)
			}
			spm, err := tokenizer.FromMetadata(ck.Metadata)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if err := WriteRewardModel(dir, RewardModel{Weights: w, Head: outputRowHead(t, w, c.j), Vocab: vocab, MaxPositions: 256}); err != nil {
				t.Fatal(err)
			}
			forEachRuntime(t, func(t *testing.T, opts reward.Options) {
				got, inputs := scoreBatch(t, dir, opts, prompt, candidates)
				lo, hi := got[0], got[0]
				for i, cand := range candidates {
					lo, hi = min(lo, got[i]), max(hi, got[i])
					ids := inputs[i]
					// The trainer feeds BOS and the rendered template, tokenized by package tokenizer.
					text := strings.NewReplacer("{prompt}", prompt, "{response}", cand).Replace(reward.DefaultTemplate)
					if fed := spm.Encode(text, true, false); !slices.Equal(ids, fed) {
						t.Errorf("candidate %d: reward model sees %v, the trainer feeds %v", i, ids, fed)
					}
					want := lastLogits(t, m, ids)[c.j]
					if d := math.Abs(float64(got[i] - want)); !(d <= scoreTolerance) {
						t.Errorf("candidate %d (%d tokens): score %.6f, model.Forward's logit %d is %.6f (off by %.2g)",
							i, len(ids), got[i], c.j, want, d)
					}
				}
				if hi-lo < 0.1 {
					t.Errorf("scores %v barely differ: the comparison says little", got)
				}
			})
		})
	}
}

func TestWriteRewardModelErrors(t *testing.T) {
	md := storiesMetadata(t)
	vocab, err := VocabFromMetadata(md)
	if err != nil {
		t.Fatal(err)
	}
	w := randomWeights(gqaConfig, 1)
	head := Head{Weight: make([]float32, gqaConfig.Dim)}
	small := randomWeights(model.Config{Arch: "llama", Dim: 16, HiddenDim: 32, NLayers: 1, NHeads: 2, NKVHeads: 1,
		HeadDim: 8, VocabSize: 300, ContextLen: 32, NormEps: 1e-5, RopeTheta: 10000, TiedOutput: true}, 1)
	for _, c := range []struct {
		name string
		rm   RewardModel
	}{
		{"no vocabulary", RewardModel{Weights: w, Head: head}},
		{"head size", RewardModel{Weights: w, Head: Head{Weight: make([]float32, 3)}, Vocab: vocab}},
		{"vocabulary size", RewardModel{Weights: small, Head: Head{Weight: make([]float32, 16)}, Vocab: vocab}},
		{"missing tensor", RewardModel{Weights: &Weights{Config: gqaConfig, Tensors: w.Tensors[:5]}, Head: head, Vocab: vocab}},
		{"extra key clash", RewardModel{Weights: w, Head: head, Vocab: vocab, Extra: map[string]any{"num_labels": 2}}},
	} {
		dir := t.TempDir()
		if err := WriteRewardModel(dir, c.rm); err == nil {
			t.Errorf("%s: no error", c.name)
		} else if entries, _ := os.ReadDir(dir); len(entries) > 0 {
			t.Errorf("%s: %v, but %d files written", c.name, err, len(entries))
		}
	}
}
