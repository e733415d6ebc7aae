//go:build amd64

package pipeprobe

import (
	"testing"
	"time"

	"golang.org/x/sys/cpu"
)

// BenchmarkPipes prints this CPU's throughput of the AVX2 kernels' instructions, per cycle, and the cycles per
// (block, row) pair of their 5-row sequences; see the package comment.
func BenchmarkPipes(b *testing.B) {
	if !cpu.X86.HasAVX2 || !cpu.X86.HasFMA {
		b.Skip("no AVX2/FMA")
	}
	b.Logf("clock %.2f GHz (a chain of dependent ADDs)", 1/secondsPerCycle()/1e9)
	for _, c := range []struct {
		name string
		fn   func(int)
	}{{"vpmaddwd", vpmaddwd12}, {"vpmaddubsw", vpmaddubsw12}, {"vpsignb", vpsignb12}, {"vpaddd", vpaddd12},
		{"vfmadd231ps", vfmadd231ps12}, {"vpmaddubsw+vfmadd231ps", maddubswFMA12}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportMetric(12/cyclesPerStep(b, c.fn), "per-cycle")
		})
	}
	for _, c := range []struct {
		name  string
		fn    func(int)
		pairs int // (block, row) pairs per copy of the sequence
	}{{"q8SignTrick", q8SignTrick, 5}, {"q8Int16", q8Int16, 5}, {"q4Int16Sums", q4Int16Sums, 10}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportMetric(cyclesPerStep(b, c.fn)/float64(4*c.pairs), "cycles/pair")
		})
	}
}

// cyclesPerStep runs fn's loop of a million steps b.N times and returns the cycles one step takes.
func cyclesPerStep(b *testing.B, fn func(int)) float64 {
	const steps = 1_000_000
	cycle := secondsPerCycle()
	var d time.Duration
	for b.Loop() {
		t := time.Now()
		fn(steps)
		d += time.Since(t)
	}
	return d.Seconds() / cycle / float64(steps*b.N)
}

// secondsPerCycle times a chain of dependent 64-bit ADDs, one a cycle on every x86-64 core of the last decade.
func secondsPerCycle() float64 {
	const chain = 20_000_000
	t0 := time.Now()
	addChain(chain)
	return time.Since(t0).Seconds() / (8 * chain)
}
