//go:build !amd64

package kernels

import "github.com/bestofn/bestofn/weights"

func haveASM() bool { return false }

func haveAVXVNNI() bool { return false }

func haveAVX512VNNI() bool { return false }

func vnniKernel(isa ISA, typ weights.Type, mr, nr int) vnniFunc {
	panic("kernels: no assembly on this architecture")
}

func panelKernel(typ weights.Type, np, nr int) panelFunc {
	panic("kernels: no assembly on this architecture")
}

func (j *matJob) tileASM(w []byte, b, t, c0, c1 int, res *[tileBatch]float32) bool { return false }

func (j *matJob) rowsASM(lo, hi int) bool { return false }

func dotF32ASM(a, b *float32, n int) float32 { panic("kernels: no assembly on this architecture") }

func axpyF32ASM(alpha float32, x, y *float32, n int) {
	panic("kernels: no assembly on this architecture")
}

func dotRowsF32ASM(out, a *float32, stride, rows int, x *float32, n int) {
	panic("kernels: no assembly on this architecture")
}

func axpyRowsF32ASM(y, a *float32, stride, rows int, w *float32, n int) {
	panic("kernels: no assembly on this architecture")
}

func quantQ8_0ASM(x *float32, q *int8, d, s *float32, nb int) {
	panic("kernels: no assembly on this architecture")
}

func packRecordsASM(rec *byte, q *int8, d *float32, ngroups int, c int32) {
	panic("kernels: no assembly on this architecture")
}

func swigluASM(gate, up *float32, n int) { panic("kernels: no assembly on this architecture") }

func streamReadASM(p *byte, n int) uint64 { panic("kernels: no assembly on this architecture") }

func amxPrepQ8_0(nblocks int, w *byte, rb int, scratch *byte) {
	panic("kernels: no assembly on this architecture")
}

func amxPrepQ4_0(nblocks int, w *byte, rb int, scratch *byte) {
	panic("kernels: no assembly on this architecture")
}

func amxTile(nblocks int, a *byte, astride, ablock int, b *byte, dx *float32, out *float32, ostride, nvalid int, scratch *byte) {
	panic("kernels: no assembly on this architecture")
}

func cpuVendor() string { return "" }

func maxF32ASM(x *float32, n int) float32 { panic("kernels: no assembly on this architecture") }

func expSumASM(x *float32, n int, shift float32) float32 {
	panic("kernels: no assembly on this architecture")
}
