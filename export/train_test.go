package export

import (
	"math"
	"testing"

	"github.com/bestofn/bestofn/reward"
	"github.com/bestofn/bestofn/train"
	"github.com/bestofn/bestofn/weights"
)

// rewardFromTrain returns a train reward model's backbone and head in export's terms (train.Tensor and Tensor
// have the same fields, so one converts to the other).
func rewardFromTrain(m *train.Model) (*Weights, Head) {
	w := &Weights{Config: m.Config()}
	for _, t := range m.Tensors() {
		w.Tensors = append(w.Tensors, Tensor(t))
	}
	hw, hb := m.ScoreHead()
	return w, Head{Weight: hw, Bias: hb, Mean: m.Pooling() == train.PoolMean}
}

// TestRewardONNXMatchesTrain exports reward models of package train (stories260K's weights with a seeded random
// head; the random GQA model's weights, 9 heads in groups of 3, tied, with a head drawn larger so that scores
// spread; the same with a mean-pooled head) and checks that both runtimes score as train's own forward pass does (Model.Scores), within
// scoreTolerance, on a batch of inputs of different lengths.
func TestRewardONNXMatchesTrain(t *testing.T) {
	md := storiesMetadata(t)
	vocab, err := VocabFromMetadata(md)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := weights.Open(stories260K)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	stories, err := train.FromCheckpoint(ck, train.Options{Head: train.HeadReward, Threads: 1, MaxTokens: 2048}, 11)
	if err != nil {
		t.Fatal(err)
	}
	src := randomWeights(gqaConfig, 5)
	gqa, err := train.New(gqaConfig, train.Options{Head: train.HeadReward, Threads: 1, MaxTokens: 2048}, 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, dst := range gqa.Tensors() {
		if dst.Name == train.RewardHeadWeight {
			for i := range dst.Data {
				dst.Data[i] *= 20
			}
			continue
		}
		if dst.Name == train.RewardHeadBias {
			dst.Data[0] = 0.25
			continue
		}
		data, err := src.tensor(dst.Name, dst.Shape...)
		if err != nil {
			t.Fatal(err)
		}
		copy(dst.Data, data)
	}

	// The same GQA model with a mean-pooled head.
	gqaMean, err := train.New(gqaConfig, train.Options{Head: train.HeadReward, Threads: 1, MaxTokens: 2048, Pooling: train.PoolMean}, 5)
	if err != nil {
		t.Fatal(err)
	}
	for i, dst := range gqaMean.Tensors() {
		copy(dst.Data, gqa.Tensors()[i].Data)
	}

	prompt := "Tim and Sue went to the store."
	candidates := []string{"They bought a red apple.", "No!", "The sun was hot and the shop was far, but they sang songs all the way there and back.", "Yes"}
	for _, c := range []struct {
		name string
		m    *train.Model
	}{{"stories260K", stories}, {"gqa", gqa}, {"gqa-mean", gqaMean}} {
		t.Run(c.name, func(t *testing.T) {
			w, head := rewardFromTrain(c.m)
			dir := t.TempDir()
			if err := WriteRewardModel(dir, RewardModel{Weights: w, Head: head, Vocab: vocab, MaxPositions: 256}); err != nil {
				t.Fatal(err)
			}
			forEachRuntime(t, func(t *testing.T, opts reward.Options) {
				got, seqs := scoreBatch(t, dir, opts, prompt, candidates)
				want := make([]float32, len(seqs))
				if err := c.m.Scores(seqs, want); err != nil {
					t.Fatal(err)
				}
				lo, hi := want[0], want[0]
				for i := range want {
					lo, hi = min(lo, want[i]), max(hi, want[i])
					if d := math.Abs(float64(got[i] - want[i])); !(d <= scoreTolerance) {
						t.Errorf("candidate %d (%d tokens): %s scores %.6f, train %.6f (off by %.2g)", i, len(seqs[i]), opts.Runtime, got[i], want[i], d)
					}
				}
				t.Logf("train scores %v, %s %v", want, opts.Runtime, got)
				if hi-lo < 0.05 {
					t.Errorf("train's scores %v barely differ: the comparison says little", want)
				}
			})
		})
	}
}
