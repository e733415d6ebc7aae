package train

import (
	"encoding/json"
	"math"
	"os"
	"testing"
)

// The whole model against torch: scripts/reference_train.py (torch 1.13, float64 autograd on padded,
// masked batches) wrote testdata/reference_train.json. The Go side runs the same sequences packed, in
// float32. Bounds (float32 against float64, measured errors are 10-100x below them):
//
//	loss                     relative 1e-5
//	logits                   absolute 1e-4
//	each gradient tensor     its L2 norm within 1e-4 relative; each sampled entry within 1e-4 x the norm;
//	                         the projection Σ g_i sin(0.37 i + 0.1) within 1e-4 x norm x sqrt(size)
//	                         (the norm floored at 1e-3 of the global gradient norm)
//	AdamW losses (6 steps)   relative 1e-4, gradient norms before clipping relative 1e-4
const (
	refLossTol = 1e-5
	refGradTol = 1e-4
	refStepTol = 1e-4
)

type refGrad struct {
	Norm float64   `json:"norm"`
	Proj float64   `json:"proj"`
	Idx  []int     `json:"idx"`
	Val  []float64 `json:"val"`
}

type refCase struct {
	Name      string `json:"name"`
	Model     string `json:"model"`
	Head      string `json:"head"`
	Sequences []struct {
		Tokens  []int32 `json:"tokens"`
		Targets []int32 `json:"targets"`
	} `json:"sequences"`
	Pairs []struct {
		Chosen   []int32 `json:"chosen"`
		Rejected []int32 `json:"rejected"`
		Margin   float64 `json:"margin"`
	} `json:"pairs"`
	RMHead struct {
		Weight []float32 `json:"weight"`
		Bias   float32   `json:"bias"`
	} `json:"rm_head"`
	Loss   float64 `json:"loss"`
	Scores []float64
	Logits []struct {
		Seq    int       `json:"seq"`
		Pos    int       `json:"pos"`
		Values []float64 `json:"values"`
	} `json:"logits"`
	Grads map[string]refGrad `json:"grads"`
}

type reference struct {
	Cases []refCase `json:"cases"`
	AdamW struct {
		Case    string `json:"case"`
		HParams struct {
			LR, MinLRRatio, WeightDecay, Beta1, Beta2, Eps, Clip float64
			Warmup, Steps                                        int
		} `json:"hparams"`
		Losses    []float64 `json:"losses"`
		GradNorms []float64 `json:"grad_norms"`
	} `json:"adamw"`
}

func loadTrainReference(t *testing.T) *reference {
	t.Helper()
	raw, err := os.ReadFile("testdata/reference_train.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	// Python's snake_case hyperparameter names.
	var hp struct {
		AdamW struct {
			HParams struct {
				MinLRRatio  float64 `json:"min_lr_ratio"`
				WeightDecay float64 `json:"weight_decay"`
			} `json:"hparams"`
		} `json:"adamw"`
	}
	if err := json.Unmarshal(raw, &hp); err != nil {
		t.Fatal(err)
	}
	ref.AdamW.HParams.MinLRRatio = hp.AdamW.HParams.MinLRRatio
	ref.AdamW.HParams.WeightDecay = hp.AdamW.HParams.WeightDecay
	return &ref
}

func refModelPath(name string) string {
	if name == "random_gqa.bin" {
		return "testdata/random_gqa.bin"
	}
	return storiesDir + name
}

func openRefModel(t *testing.T, c *refCase, threads int) *Model {
	t.Helper()
	opts := Options{Threads: threads, MaxTokens: 512, MaxSeqLen: 128}
	if c.Head == "reward" {
		opts.Head = HeadReward
	}
	m, err := Open(refModelPath(c.Model), opts, 1)
	if err != nil {
		t.Fatal(err)
	}
	if c.Head == "reward" {
		w, _ := m.ScoreHead()
		copy(w, c.RMHead.Weight)
		m.p.rmB[0] = c.RMHead.Bias
	}
	return m
}

func relErr(got, want float64) float64 { return math.Abs(got-want) / math.Max(math.Abs(want), 1e-30) }

func TestAgainstTorch(t *testing.T) {
	ref := loadTrainReference(t)
	for i := range ref.Cases {
		c := &ref.Cases[i]
		t.Run(c.Name, func(t *testing.T) {
			m := openRefModel(t, c, 2)
			defer m.Close()
			var loss float64
			if c.Head == "lm" {
				seqs := make([]Sequence, len(c.Sequences))
				count := 0
				for j, s := range c.Sequences {
					seqs[j] = Sequence{Tokens: s.Tokens, Targets: s.Targets}
					for _, tg := range s.Targets {
						if tg >= 0 {
							count++
						}
					}
				}
				sum, n, err := m.LMLoss(seqs, 1/float32(count), true)
				if err != nil {
					t.Fatal(err)
				}
				if n != count {
					t.Fatalf("LMLoss counted %d targets, want %d", n, count)
				}
				loss = sum / float64(n)
				checkRefLogits(t, m, c)
			} else {
				loss = rewardLossAndBackward(t, m, c)
			}
			t.Logf("loss %.9g, torch %.9g", loss, c.Loss)
			if relErr(loss, c.Loss) > refLossTol {
				t.Errorf("loss %.9g, torch %.9g", loss, c.Loss)
			}
			checkRefGrads(t, m, c.Grads)
		})
	}
}

func checkRefLogits(t *testing.T, m *Model, c *refCase) {
	t.Helper()
	V := m.Config().VocabSize
	worst := 0.0
	for _, row := range c.Logits {
		toks := c.Sequences[row.Seq].Tokens
		out := make([]float32, len(toks)*V)
		if err := m.Logits(toks, out); err != nil {
			t.Fatal(err)
		}
		for j, v := range row.Values {
			worst = math.Max(worst, math.Abs(float64(out[row.Pos*V+j])-v))
		}
	}
	t.Logf("logits: max |difference| %.2g", worst)
	if worst > 1e-4 {
		t.Errorf("logits differ from torch's by %g > 1e-4", worst)
	}
}

// rewardLossAndBackward scores all chosen then all rejected sequences in one micro-batch, as the torch
// script does, and back-propagates the mean pairwise loss.
func rewardLossAndBackward(t *testing.T, m *Model, c *refCase) float64 {
	t.Helper()
	n := len(c.Pairs)
	seqs := make([][]int32, 2*n)
	for j, p := range c.Pairs {
		seqs[j], seqs[n+j] = p.Chosen, p.Rejected
	}
	scores := make([]float32, 2*n)
	if err := m.Scores(seqs, scores); err != nil {
		t.Fatal(err)
	}
	for j, s := range scores {
		if math.Abs(float64(s)-c.Scores[j]) > 1e-4 {
			t.Errorf("score %d: %g, torch %g", j, s, c.Scores[j])
		}
	}
	d := make([]float32, 2*n)
	var loss float64
	for j, p := range c.Pairs {
		l, dc := pairLoss(float64(scores[j]), float64(scores[n+j]), p.Margin)
		loss += l / float64(n)
		d[j], d[n+j] = float32(dc/float64(n)), float32(-dc/float64(n))
	}
	if err := m.BackwardScores(d); err != nil {
		t.Fatal(err)
	}
	return loss
}

func checkRefGrads(t *testing.T, m *Model, want map[string]refGrad) {
	t.Helper()
	grads := m.Grads()
	if len(grads) != len(want) {
		t.Errorf("%d gradient tensors, torch has %d", len(grads), len(want))
	}
	// A tensor whose true gradient vanishes (the reward head's bias: the pairwise loss depends on score
	// differences only) is compared against a floor of 1e-3 of the global gradient norm instead of its own.
	var global float64
	for _, w := range want {
		global += w.Norm * w.Norm
	}
	floor := 1e-3 * math.Sqrt(global)
	worstNorm, worstEntry := 0.0, 0.0
	for _, g := range grads {
		w, ok := want[g.Name]
		if !ok {
			t.Errorf("torch has no gradient for %s", g.Name)
			continue
		}
		scale := math.Max(w.Norm, floor)
		var ss, proj float64
		for i, v := range g.Data {
			ss += float64(v) * float64(v)
			proj += float64(v) * math.Sin(0.37*float64(i)+0.1)
		}
		norm := math.Sqrt(ss)
		if e := math.Abs(norm-w.Norm) / scale; e > refGradTol {
			t.Errorf("%s: gradient norm %.7g, torch %.7g", g.Name, norm, w.Norm)
		} else {
			worstNorm = math.Max(worstNorm, e)
		}
		if math.Abs(proj-w.Proj) > refGradTol*scale*math.Sqrt(float64(len(g.Data))) {
			t.Errorf("%s: gradient projection %.7g, torch %.7g", g.Name, proj, w.Proj)
		}
		for j, idx := range w.Idx {
			e := math.Abs(float64(g.Data[idx])-w.Val[j]) / scale
			worstEntry = math.Max(worstEntry, e)
			if e > refGradTol {
				t.Errorf("%s[%d]: gradient %.7g, torch %.7g", g.Name, idx, g.Data[idx], w.Val[j])
				break
			}
		}
	}
	t.Logf("gradients: worst relative norm error %.2g, worst entry error %.2g of the tensor's norm", worstNorm, worstEntry)
}

// TestAdamWAgainstTorch runs the first optimizer steps of torch.optim.AdamW with the same schedule and
// clipping, the batch split into two micro-batches whose gradients accumulate.
func TestAdamWAgainstTorch(t *testing.T) {
	ref := loadTrainReference(t)
	var c *refCase
	for i := range ref.Cases {
		if ref.Cases[i].Name == ref.AdamW.Case {
			c = &ref.Cases[i]
		}
	}
	m := openRefModel(t, c, 2)
	defer m.Close()
	hp := ref.AdamW.HParams
	opt, err := NewAdamW(m, AdamWConfig{Beta1: hp.Beta1, Beta2: hp.Beta2, Eps: hp.Eps, WeightDecay: hp.WeightDecay})
	if err != nil {
		t.Fatal(err)
	}
	sched := Schedule{LR: hp.LR, Warmup: hp.Warmup, Steps: hp.Steps, MinLRRatio: hp.MinLRRatio}
	seqs := make([]Sequence, len(c.Sequences))
	count := 0
	for j, s := range c.Sequences {
		seqs[j] = Sequence{Tokens: s.Tokens, Targets: s.Targets}
		for _, tg := range s.Targets {
			if tg >= 0 {
				count++
			}
		}
	}
	micro := [][]Sequence{seqs[:1], seqs[1:]}
	for step := 0; step <= hp.Steps; step++ {
		m.ZeroGrad()
		var sum float64
		for _, mb := range micro {
			s, _, err := m.LMLoss(mb, 1/float32(count), step < hp.Steps)
			if err != nil {
				t.Fatal(err)
			}
			sum += s
		}
		loss := sum / float64(count)
		t.Logf("step %d: loss %.7g, torch %.7g", step, loss, ref.AdamW.Losses[step])
		if relErr(loss, ref.AdamW.Losses[step]) > refStepTol {
			t.Errorf("step %d: loss %.7g, torch %.7g", step, loss, ref.AdamW.Losses[step])
		}
		if step == hp.Steps {
			break
		}
		norm := m.ClipGradNorm(hp.Clip)
		if relErr(norm, ref.AdamW.GradNorms[step]) > refStepTol {
			t.Errorf("step %d: gradient norm %.7g, torch %.7g", step, norm, ref.AdamW.GradNorms[step])
		}
		opt.Step(sched.At(step))
	}
}
