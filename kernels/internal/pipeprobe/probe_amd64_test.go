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
	cycle := secondsPerCycle()
	b.Logf("clock %.2f GHz (a chain of dependent ADDs)", 1/cycle/1e9)
	for _, c := range []struct {
		name string
		fn   func(int)
	}{{"vpmaddwd", vpmaddwd12}, {"vpmaddubsw", vpmaddubsw12}, {"vpsignb", vpsignb12}, {"vpaddd", vpaddd12}, {"vfmadd231ps", vfmadd231ps12}} {
		b.Run(c.name, func(b *testing.B) {
			const steps = 1_000_000
			var d time.Duration
			for b.Loop() {
				t := time.Now()
				c.fn(steps)
				d += time.Since(t)
			}
			b.ReportMetric(float64(12*steps*b.N)*cycle/d.Seconds(), "per-cycle")
		})
	}
	for _, c := range []struct {
		name  string
		fn    func(int)
		pairs int // (block, row) pairs per copy of the sequence
	}{{"q8SignTrick", q8SignTrick, 5}, {"q8Int16", q8Int16, 5}, {"q4Int16Sums", q4Int16Sums, 10}} {
		b.Run(c.name, func(b *testing.B) {
			const steps = 1_000_000
			var d time.Duration
			for b.Loop() {
				t := time.Now()
				c.fn(steps)
				d += time.Since(t)
			}
			b.ReportMetric(d.Seconds()/cycle/float64(4*c.pairs*steps*b.N), "cycles/pair")
		})
	}
}

// secondsPerCycle times a chain of dependent 64-bit ADDs, one a cycle on every x86-64 core of the last decade.
func secondsPerCycle() float64 {
	const chain = 20_000_000
	t0 := time.Now()
	addChain(chain)
	return time.Since(t0).Seconds() / (8 * chain)
}
