package train

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bestofn/bestofn/model"
)

// tinyConfig is a small GQA shape for loop tests.
func tinyConfig() model.Config {
	return model.Config{Arch: "llama", Dim: 32, HiddenDim: 48, NLayers: 2, NHeads: 4, NKVHeads: 2, HeadDim: 8,
		VocabSize: 40, ContextLen: 64, NormEps: 1e-5, RopeTheta: 10000, RopeScaling: model.RopeScalingNone,
		RopeScaleFactor: 1}
}

func newTiny(t *testing.T, head Head, threads int) *Model {
	t.Helper()
	m, err := New(tinyConfig(), Options{Head: head, Threads: threads, MaxTokens: 256, MaxSeqLen: 64}, 42)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// synthPairs makes a learnable preference task: the chosen sequence holds token 7 somewhere, the rejected
// one does not; lengths vary from 3 to 20.
func synthPairs(n int, seed uint64) []Pair {
	rng := rand.New(rand.NewPCG(seed, 2))
	seq := func(with bool) []int32 {
		s := make([]int32, 3+rng.IntN(18))
		for i := range s {
			s[i] = int32(8 + rng.IntN(32))
		}
		if with {
			s[rng.IntN(len(s))] = 7
		}
		return s
	}
	ps := make([]Pair, n)
	for i := range ps {
		ps[i] = Pair{Chosen: seq(true), Rejected: seq(false)}
		if i%3 == 0 {
			ps[i].Margin = 0.5
		}
	}
	return ps
}

// synthExamples makes an SFT task: a prompt of random tokens, then a response counting up from the
// prompt's first token.
func synthExamples(n int, seed uint64) []Example {
	rng := rand.New(rand.NewPCG(seed, 3))
	exs := make([]Example, n)
	for i := range exs {
		p, r := 2+rng.IntN(10), 3+rng.IntN(12)
		ex := Example{Tokens: make([]int32, p+r), Loss: make([]bool, p+r)}
		for j := 0; j < p; j++ {
			ex.Tokens[j] = int32(rng.IntN(20))
		}
		for j := 0; j < r; j++ {
			ex.Tokens[p+j] = (ex.Tokens[0] + int32(j)) % 40
			ex.Loss[p+j] = true
		}
		exs[i] = ex
	}
	return exs
}

func testConfig() Config {
	c := DefaultConfig()
	c.Epochs, c.BatchSize, c.LR, c.WarmupSteps, c.EvalFraction, c.Patience, c.Seed = 2, 8, 3e-3, 2, 0.2, 0, 9
	return c
}

func sameParams(a, b *Model) bool {
	for i := range a.flat {
		if math.Float32bits(a.flat[i]) != math.Float32bits(b.flat[i]) {
			return false
		}
	}
	return true
}

func TestRewardLearnsAndIsDeterministic(t *testing.T) {
	pairs := synthPairs(400, 1)
	cfg := testConfig()
	cfg.Epochs, cfg.BatchSize, cfg.LR = 3, 16, 5e-3
	var evals []EvalInfo
	m1 := newTiny(t, HeadReward, 2)
	res, err := TrainReward(context.Background(), m1, pairs, cfg, Hooks{Eval: func(e EvalInfo) { evals = append(evals, e) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("steps %d, held-out %v, reward mean %.3f std %.3f", res.Steps, res.Eval, res.RewardMean, res.RewardStd)
	if res.TrainPairs != 320 || res.EvalPairs != 80 || res.Steps != 3*20 {
		t.Errorf("split %d/%d and %d steps, want 320/80 and 60", res.TrainPairs, res.EvalPairs, res.Steps)
	}
	if len(evals) != 3 {
		t.Errorf("%d evaluations, want one per epoch", len(evals))
	}
	for _, k := range []string{"loss", "accuracy", "margin", "chosen_reward", "rejected_reward"} {
		if _, ok := res.Eval[k]; !ok {
			t.Errorf("held-out metrics lack %q", k)
		}
	}
	if res.Eval["accuracy"] < 0.8 || res.Eval["loss"] > 0.45 {
		t.Errorf("held-out accuracy %.3f, loss %.3f: the model did not learn a trivial preference", res.Eval["accuracy"],
			res.Eval["loss"])
	}
	if !(res.RewardStd > 0) {
		t.Errorf("reward std %g", res.RewardStd)
	}

	// Same seed, other thread count: bit-identical weights. Other seed: different ones.
	cfg.MaxSteps = 12
	m1 = newTiny(t, HeadReward, 2)
	if _, err := TrainReward(context.Background(), m1, pairs, cfg, Hooks{}); err != nil {
		t.Fatal(err)
	}
	m2 := newTiny(t, HeadReward, 1)
	if _, err := TrainReward(context.Background(), m2, pairs, cfg, Hooks{}); err != nil {
		t.Fatal(err)
	}
	if !sameParams(m1, m2) {
		t.Error("two runs with the same seed (2 and 1 threads) gave different weights")
	}
	cfg.Seed++
	m3 := newTiny(t, HeadReward, 2)
	if _, err := TrainReward(context.Background(), m3, pairs, cfg, Hooks{}); err != nil {
		t.Fatal(err)
	}
	if sameParams(m1, m3) {
		t.Error("another seed gave the same weights: the data order ignores the seed")
	}
}

func TestSFTLearns(t *testing.T) {
	exs := synthExamples(100, 2)
	for _, packing := range []bool{false, true} {
		t.Run(fmt.Sprint("packing=", packing), func(t *testing.T) {
			m := newTiny(t, HeadLM, 2)
			cfg := testConfig()
			cfg.Epochs = 6
			if packing {
				cfg.BatchSize = 3 // blocks of about 2.5 examples
			}
			res, err := TrainSFT(context.Background(), m, exs, cfg, SFTOptions{Packing: packing, PackLen: 48}, Hooks{})
			if err != nil {
				t.Fatal(err)
			}
			first, last := res.History[0].Metrics["loss"], res.Eval["loss"]
			t.Logf("%d steps, held-out loss %.3f after the first epoch, %.3f at the end (train %.3f -> %.3f)",
				res.Steps, first, last, res.Losses[0], res.Losses[len(res.Losses)-1])
			if len(res.Losses) != res.Steps {
				t.Errorf("%d losses for %d steps", len(res.Losses), res.Steps)
			}
			if !(last < 0.6*res.Losses[0]) || !(last < first) {
				t.Errorf("held-out loss %.3f did not fall well below the starting training loss %.3f", last, res.Losses[0])
			}
		})
	}
}

// TestResumeAfterCancel stops a run at step 5 (the cancelled context writes a checkpoint), resumes it in a
// fresh model and checks the weights equal an uninterrupted run's, bit for bit.
func TestResumeAfterCancel(t *testing.T) {
	pairs := synthPairs(60, 3)
	cfg := testConfig()
	cfg.Patience = 2 // the best-weights copy is part of the state too
	cfg.EvalEvery = 3
	ref := newTiny(t, HeadReward, 2)
	want, err := TrainReward(context.Background(), ref, pairs, cfg, Hooks{})
	if err != nil {
		t.Fatal(err)
	}

	cfg.CheckpointPath = filepath.Join(t.TempDir(), "rm.ckpt")
	ctx, cancel := context.WithCancel(context.Background())
	m := newTiny(t, HeadReward, 2)
	_, err = TrainReward(ctx, m, pairs, cfg, Hooks{Step: func(s StepInfo) {
		if s.Step == 5 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run returned %v", err)
	}
	resumed := newTiny(t, HeadReward, 2)
	firstStep := 0
	got, err := TrainReward(context.Background(), resumed, pairs, cfg, Hooks{Step: func(s StepInfo) {
		if firstStep == 0 {
			firstStep = s.Step
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if firstStep != 6 {
		t.Errorf("resumed run started at step %d, want 6", firstStep)
	}
	if !sameParams(ref, resumed) || got.Steps != want.Steps || fmt.Sprint(got.Eval) != fmt.Sprint(want.Eval) {
		t.Errorf("resumed run differs from the uninterrupted one: %d vs %d steps, %v vs %v", got.Steps, want.Steps,
			got.Eval, want.Eval)
	}

	// A checkpoint of another run is refused, not silently mixed in.
	other := pairs[:50]
	if _, err := TrainReward(context.Background(), newTiny(t, HeadReward, 2), other, cfg, Hooks{}); !errors.Is(err, ErrCheckpointMismatch) {
		t.Errorf("resuming another data set's checkpoint: %v, want ErrCheckpointMismatch", err)
	}
}

// TestResumeAfterKill runs SFT with checkpoints in a child process, kills it with SIGKILL after its
// second checkpoint, resumes here, and compares with an uninterrupted run.
func TestResumeAfterKill(t *testing.T) {
	if os.Getenv("TRAIN_KILL_CHILD") != "" {
		return // the child's work happens in TestMain
	}
	ckpt := filepath.Join(t.TempDir(), "sft.ckpt")
	cmd := exec.Command(os.Args[0], "-test.run=^TestResumeAfterKill$")
	cmd.Env = append(os.Environ(), "TRAIN_KILL_CHILD="+ckpt)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	seen := 0
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "checkpoint ") {
			seen++
			if seen == 2 {
				cmd.Process.Kill()
				break
			}
		}
	}
	cmd.Wait()
	if seen < 2 {
		t.Fatalf("the child wrote %d checkpoints before ending", seen)
	}
	cfg, exs := killRunConfig(ckpt)
	resumed := newTiny(t, HeadLM, 2)
	if _, err := TrainSFT(context.Background(), resumed, exs, cfg, SFTOptions{}, Hooks{}); err != nil {
		t.Fatal(err)
	}
	cfg.CheckpointPath = ""
	ref := newTiny(t, HeadLM, 2)
	if _, err := TrainSFT(context.Background(), ref, exs, cfg, SFTOptions{}, Hooks{}); err != nil {
		t.Fatal(err)
	}
	if !sameParams(ref, resumed) {
		t.Error("the run resumed after SIGKILL differs from an uninterrupted run")
	}
}

func killRunConfig(ckpt string) (Config, []Example) {
	cfg := testConfig()
	cfg.Epochs, cfg.CheckpointPath, cfg.CheckpointEvery = 3, ckpt, 2
	return cfg, synthExamples(80, 4)
}

// killChild is the child of TestResumeAfterKill: it trains, printing a line after each checkpoint, and
// waits to be killed after the second.
func killChild(ckpt string) {
	cfg, exs := killRunConfig(ckpt)
	m, err := New(tinyConfig(), Options{Threads: 2, MaxTokens: 256, MaxSeqLen: 64}, 42)
	if err != nil {
		panic(err)
	}
	n := 0
	block := make(chan struct{})
	TrainSFT(context.Background(), m, exs, cfg, SFTOptions{}, Hooks{Checkpoint: func(c CheckpointInfo) {
		fmt.Printf("checkpoint %d\n", c.Step)
		n++
		if n == 2 {
			<-block // killed here, after the file is in place
		}
	}})
}

func TestMain(m *testing.M) {
	if ckpt := os.Getenv("TRAIN_KILL_CHILD"); ckpt != "" {
		killChild(ckpt)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestNeighboursChangeNothing checks that a sequence's score, loss and gradient do not depend on the other
// sequences of its micro-batch (the packed layout's padding invariance).
func TestNeighboursChangeNothing(t *testing.T) {
	m := newTiny(t, HeadReward, 2)
	a, b, c := randomTokens(1, 23, 40), randomTokens(2, 64, 40), randomTokens(3, 5, 40)
	alone := make([]float32, 1)
	if err := m.Scores([][]int32{a}, alone); err != nil {
		t.Fatal(err)
	}
	mixed := make([]float32, 3)
	if err := m.Scores([][]int32{b, a, c}, mixed); err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(alone[0]-mixed[1])) > 1e-6 {
		t.Errorf("score alone %g, between two other sequences %g", alone[0], mixed[1])
	}

	// Gradients add up: grad(a) + grad(b) = grad(a, b in one batch).
	lm := newTiny(t, HeadLM, 2)
	seq := func(toks []int32) Sequence {
		s := Sequence{Tokens: toks, Targets: make([]int32, len(toks))}
		for i := range toks {
			s.Targets[i] = -1
			if i+1 < len(toks) {
				s.Targets[i] = toks[i+1]
			}
		}
		return s
	}
	lossOf := func(seqs ...Sequence) (float64, []float32) {
		lm.ZeroGrad()
		sum, _, err := lm.LMLoss(seqs, 1, true)
		if err != nil {
			t.Fatal(err)
		}
		return sum, append([]float32(nil), lm.gradFlat...)
	}
	la, ga := lossOf(seq(a))
	lb, gb := lossOf(seq(b))
	lab, gab := lossOf(seq(b), seq(a))
	if math.Abs(la+lb-lab) > 1e-5*lab {
		t.Errorf("losses %g + %g alone, %g together", la, lb, lab)
	}
	var worst, norm float64
	for i := range gab {
		worst = math.Max(worst, math.Abs(float64(ga[i]+gb[i]-gab[i])))
		norm = math.Max(norm, math.Abs(float64(gab[i])))
	}
	if worst > 1e-5*norm {
		t.Errorf("gradients alone and together differ by %g (largest %g)", worst, norm)
	}
}

func TestBadPairsAndExamples(t *testing.T) {
	rm := newTiny(t, HeadReward, 1)
	pairs := synthPairs(10, 5)
	pairs[3].Rejected = nil
	if _, err := TrainReward(context.Background(), rm, pairs, testConfig(), Hooks{}); err == nil ||
		!strings.Contains(err.Error(), "pair 3") {
		t.Errorf("empty rejected sequence: %v", err)
	}
	pairs = synthPairs(10, 5)
	pairs[6].Chosen = append(pairs[6].Chosen, 99)
	if _, err := TrainReward(context.Background(), rm, pairs, testConfig(), Hooks{}); err == nil ||
		!strings.Contains(err.Error(), "pair 6") {
		t.Errorf("token outside the vocabulary: %v", err)
	}
	lm := newTiny(t, HeadLM, 1)
	exs := synthExamples(10, 6)
	exs[4].Loss = make([]bool, len(exs[4].Tokens))
	if _, err := TrainSFT(context.Background(), lm, exs, testConfig(), SFTOptions{}, Hooks{}); err == nil ||
		!strings.Contains(err.Error(), "example 4") {
		t.Errorf("example without targets: %v", err)
	}
	if _, err := TrainSFT(context.Background(), rm, exs, testConfig(), SFTOptions{}, Hooks{}); !errors.Is(err, ErrHead) {
		t.Errorf("SFT on a reward model: %v", err)
	}
}

// TestEarlyStopping drives the loop with a task whose held-out accuracy peaks at the second evaluation.
func TestEarlyStopping(t *testing.T) {
	m := newTiny(t, HeadReward, 1)
	task := &fakeTask{accs: []float64{0.5, 0.7, 0.6, 0.65, 0.9}}
	cfg := testConfig()
	cfg.Epochs, cfg.BatchSize, cfg.EvalEvery, cfg.Patience = 1, 1, 1, 2
	if err := cfg.fill(); err != nil {
		t.Fatal(err)
	}
	train := make([]int, 10)
	l, err := newLoop(m, cfg, task, Hooks{}, train, true, "fake")
	if err != nil {
		t.Fatal(err)
	}
	// Weight decay moves the weights every step; remember them at step 2.
	var atBest []float32
	l.hooks.Eval = func(e EvalInfo) {
		if e.Step == 2 {
			atBest = append([]float32(nil), m.flat...)
		}
	}
	if err := l.run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !l.st.Stopped || l.st.Step != 4 || l.st.BestStep != 2 {
		t.Errorf("stopped %v at step %d with best step %d, want stopped at 4 with best 2", l.st.Stopped, l.st.Step,
			l.st.BestStep)
	}
	for i := range atBest {
		if m.flat[i] != atBest[i] {
			t.Fatal("the best weights were not restored")
		}
	}
}

type fakeTask struct {
	accs []float64
	n    int
}

func (f *fakeTask) startEpoch(order []int) int          { return len(order) }
func (f *fakeTask) itemTokens(int) int                  { return 1 }
func (f *fakeTask) norm(items []int) float64            { return float64(len(items)) }
func (f *fakeTask) run([]int, float32) (float64, error) { return 1, nil }
func (f *fakeTask) higherIsBetter() bool                { return true }
func (f *fakeTask) bestKey() string                     { return "accuracy" }
func (f *fakeTask) evaluate(context.Context) (Metrics, error) {
	a := f.accs[f.n]
	f.n++
	return Metrics{"accuracy": a}, nil
}

// TestGradientsBitIdentical runs the same batch through models of 2 and 1 threads, twice each, and asks for
// bit-identical gradients. The vocabulary is large enough (k = 5000 in the head's input gradient, a small
// output) for kernels/gemm to split k into chunks and add their partial sums: a reduction whose grouping
// depended on scheduling or on the thread count would break seeded determinism and exact resume.
func TestGradientsBitIdentical(t *testing.T) {
	cfg := tinyConfig()
	cfg.VocabSize, cfg.ContextLen = 5000, 96
	toks := randomTokens(5, 97, cfg.VocabSize)
	seqs := []Sequence{{Tokens: toks[:96], Targets: toks[1:]}}
	var ref []float32
	for _, threads := range []int{2, 2, 1} {
		m, err := New(cfg, Options{Threads: threads, MaxTokens: 128, MaxSeqLen: 96}, 3)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := m.LMLoss(seqs, 1/96.0, true); err != nil {
			t.Fatal(err)
		}
		if ref == nil {
			ref = append([]float32(nil), m.gradFlat...)
		} else {
			for i, g := range m.gradFlat {
				if math.Float32bits(g) != math.Float32bits(ref[i]) {
					t.Fatalf("%d threads: gradient %d is %g, another run gave %g", threads, i, g, ref[i])
				}
			}
		}
		m.Close()
	}
}
