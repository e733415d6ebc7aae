package gemm

import (
	"runtime"
	"sync"
	"time"
)

// ISA names the micro-kernels Sgemm runs on this CPU: "avx512", "avx2", or "go" (the pure-Go loops).
func ISA() string {
	if fastest == nil {
		return "go"
	}
	return fastest.name
}

// PeakFLOPS measures the machine's float32 FMA peak in FLOP/s (an FMA counts 2 per lane) on the widest vector
// unit Sgemm uses (AVX-512 or AVX2): threads goroutines, each locked to an OS thread, run independent FMA
// chains in registers for about d, and the result is their total FLOPs over the wall time. It reports 0 when
// Sgemm has no vector kernels (ISA() == "go").
func PeakFLOPS(threads int, d time.Duration) float64 {
	if fastest == nil || threads < 1 {
		return 0
	}
	return peakFLOPS(fastest, threads, d)
}

// peakIters is how many probe iterations a worker runs between clock reads (about 0.1 ms).
const peakIters = 1 << 13

func peakFLOPS(s *isa, threads int, d time.Duration) float64 {
	var wg sync.WaitGroup
	iters := make([]int, threads)
	start := make(chan struct{})
	for w := range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			<-start
			t0 := time.Now()
			for time.Since(t0) < d {
				s.peak(peakIters)
				iters[w] += peakIters
			}
		}()
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	el := time.Since(t0).Seconds()
	total := 0
	for _, n := range iters {
		total += n
	}
	return float64(total) * float64(s.peakFLOPs) / el
}
