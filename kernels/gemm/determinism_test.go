package gemm

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/bestofn/bestofn/kernels"
)

// firstDiff returns the index of the first element where got and want differ in their bits, or -1.
func firstDiff(got, want []float32) int {
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			return i
		}
	}
	return -1
}

// TestSgemmSplitKRepeatable runs products whose k is split into chunks (a small C, a long k) many times on
// pools of 2 and 3 threads and asks for the same bits every time: which worker computes which chunk, and
// in which order they finish, must not show in C. (A reduction of per-worker partial sums, whose grouping
// follows the scheduling, fails this.)
func TestSgemmSplitKRepeatable(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	repeats := 60
	if testing.Short() {
		repeats = 20
	}
	for _, threads := range []int{2, 3} {
		p := kernels.NewPool(threads)
		for i, tr := range transCases {
			m, n, k := 13+5*i, 40-3*i, splitMinK+997*i+123
			pr := newProblem(rng, tr[0], tr[1], m, n, k, 1, 0.75, 0.5)
			for _, impl := range allPaths() {
				want := pr.run(t, p, impl)
				for r := range repeats {
					if d := firstDiff(pr.run(t, p, impl), want); d >= 0 {
						t.Fatalf("%s %v on %d threads: run %d gives C offset %d different bits from run 0",
							impl.name, pr, threads, r+1, d-pr.coff)
					}
				}
			}
		}
		p.Close()
	}
}

// TestSgemmThreadsBitIdentical asks every path for the same bits on no Pool and on Pools of 1, 2 and 3
// threads: blocked products whose C blocks are cut by the thread count, products whose k is split, and
// products too small to run in parallel.
func TestSgemmThreadsBitIdentical(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	shapes := [][3]int{
		{300, 130, 700}, {97, 1100, 61}, {64, 64, 1300}, {1, 513, 400}, // blocks of C
		{5, 9, splitMinK}, {30, 70, splitMinK + 2500}, {7, 300, 2*splitMinK + 1}, // k split
		{17, 33, 100}, // on the calling goroutine
	}
	if testing.Short() {
		shapes = shapes[3:]
	}
	var pools []*kernels.Pool
	for _, threads := range []int{1, 2, 3} {
		pools = append(pools, kernels.NewPool(threads))
	}
	defer func() {
		for _, p := range pools {
			p.Close()
		}
	}()
	paths := append(allPaths(), refPath())
	for i, sh := range shapes {
		tr := transCases[i%4]
		for _, sc := range [][2]float32{{1, 0}, {-0.5, 1.5}} {
			pr := newProblem(rng, tr[0], tr[1], sh[0], sh[1], sh[2], i%3, sc[0], sc[1])
			for _, impl := range paths {
				want := pr.run(t, nil, impl)
				for _, p := range pools {
					if d := firstDiff(pr.run(t, p, impl), want); d >= 0 {
						t.Fatalf("%s %v: %d threads give C offset %d different bits from no Pool", impl.name, pr,
							p.Threads(), d-pr.coff)
					}
				}
			}
		}
	}
}
