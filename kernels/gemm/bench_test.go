package gemm

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bestofn/bestofn/kernels"
)

// benchShape is one product of the trainer at the shapes (tokens = batch 4 x 256).
type benchShape struct {
	name           string
	transA, transB bool
	m, n, k        int
	beta           float32
}

var benchShapes = []benchShape{
	// 15M model: dim 288, hidden 768, vocab 32000, 1024 tokens.
	{"lmhead-fwd-NT", false, true, 1024, 32000, 288, 0},
	{"lmhead-dx-NN", false, false, 1024, 288, 32000, 0},
	{"lmhead-dw-TN", true, false, 32000, 288, 1024, 1},
	{"ffn-fwd-NT", false, true, 1024, 768, 288, 0},
	{"ffn-dx-NN", false, false, 1024, 288, 768, 0},
	{"ffn-dw-TN", true, false, 768, 288, 1024, 1},
	{"qkv-fwd-NT", false, true, 1024, 288, 288, 0},
	// the LM head in chunks of 512 rows (16M logits), as package train runs it.
	{"lmhead512-fwd-NT", false, true, 512, 32000, 288, 0},
	{"lmhead512-dx-NN", false, false, 512, 288, 32000, 0},
	{"lmhead512-dw-TN", true, false, 32000, 288, 512, 1},
	// attention per head (head dim 48, 256 positions): scores, scores x V, and their gradients.
	{"att-qk-NT", false, true, 256, 256, 48, 0},
	{"att-v-NN", false, false, 256, 48, 256, 0},
	{"att-dv-TN", true, false, 256, 48, 256, 0},
	// causal attention in blocks of 64 query rows (the last block of 256 positions).
	{"att64-qk-NT", false, true, 64, 256, 48, 0},
	{"att64-v-NN", false, false, 64, 48, 256, 0},
	{"att64-dv-TN", true, false, 256, 48, 64, 1},
	// small models: dim 64/128, vocab 512.
	{"d128-lmhead-NT", false, true, 1024, 512, 128, 0},
	{"d128-dw-TN", true, false, 512, 128, 1024, 1},
	{"d64-fwd-NT", false, true, 1024, 64, 64, 0},
}

// cpuModel returns /proc/cpuinfo's model name, or GOARCH's "unknown".
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if name, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
		}
	}
	return "unknown"
}

// peakNow returns PeakFLOPS for threads, the best of three short probes, and the probes' best FLOPs per
// CPU-second of the process. On a shared machine other processes only ever lower the first, and measuring it
// just before a benchmark gives that benchmark's share of what the machine offered at the time; the second
// leaves out the time the machine gave to others.
func peakNow(threads int) (wall, perCPU float64) {
	for range 3 {
		c0 := cpuSeconds()
		f := PeakFLOPS(threads, 30*time.Millisecond)
		wall = max(wall, f)
		perCPU = max(perCPU, f*0.03/(cpuSeconds()-c0))
	}
	return wall, perCPU
}

// cpuSeconds returns the user and system CPU time of the process so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// BenchmarkPeak reports the FMA peak probe for 1 and 2 threads.
func BenchmarkPeak(b *testing.B) {
	fmt.Printf("gemm: cpu %q, kernels %s\n", cpuModel(), ISA())
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("t%d", threads), func(b *testing.B) {
			var f float64
			for b.Loop() {
				f = PeakFLOPS(threads, 100*time.Millisecond)
			}
			b.ReportMetric(f/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkSgemm runs the trainer's products with each micro-kernel set (and the pure-Go loops on the small
// shapes) on 1 and 2 threads, reporting GFLOP/s and the share of the FMA peak of as many threads, measured
// just before (peak-GFLOP/s); %peak-cpu is the same share in FLOPs per CPU-second of the process (the probe's
// and the product's), which time taken by other processes on a shared machine does not lower (their use of
// the caches still does; idle pool workers spin, so their waiting counts against it).
func BenchmarkSgemm(b *testing.B) {
	fmt.Printf("gemm: cpu %q, kernels %s\n", cpuModel(), ISA())
	for _, sh := range benchShapes {
		b.Run(sh.name, func(b *testing.B) { benchShape1(b, sh) })
	}
}

// uniformMatrix returns a rows x cols matrix of uniform values in [-1, 1).
func uniformMatrix(rng *rand.Rand, rows, cols int) []float32 {
	x := make([]float32, rows*cols)
	for i := range x {
		x[i] = 2*rng.Float32() - 1
	}
	return x
}

func benchShape1(b *testing.B, sh benchShape) {
	rng := rand.New(rand.NewPCG(1, 2))
	ar, ac := sh.m, sh.k
	if sh.transA {
		ar, ac = sh.k, sh.m
	}
	br, bc := sh.k, sh.n
	if sh.transB {
		br, bc = sh.n, sh.k
	}
	a, bm, c := uniformMatrix(rng, ar, ac), uniformMatrix(rng, br, bc), uniformMatrix(rng, sh.m, sh.n)
	flops := 2 * float64(sh.m) * float64(sh.n) * float64(sh.k)
	impls := supportedISAs()
	if flops < 1e9 {
		impls = append(impls, nil)
	}
	for _, s := range impls {
		name := "go"
		if s != nil {
			name = s.name
		}
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/t%d", name, threads), func(b *testing.B) {
				p := kernels.NewPool(threads)
				defer p.Close()
				pk, pkCPU := peakNow(threads)
				c0 := cpuSeconds()
				for b.Loop() {
					sgemm(s, p, sh.transA, sh.transB, sh.m, sh.n, sh.k, 1, a, ac, bm, bc, sh.beta, c, sh.n)
				}
				gf := flops * float64(b.N) / b.Elapsed().Seconds()
				perCPU := flops * float64(b.N) / (cpuSeconds() - c0)
				b.ReportMetric(gf/1e9, "GFLOP/s")
				b.ReportMetric(100*gf/pk, "%peak")
				b.ReportMetric(pk/1e9, "peak-GFLOP/s")
				b.ReportMetric(100*perCPU/pkCPU, "%peak-cpu")
			})
		}
	}
}
