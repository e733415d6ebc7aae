package gemm

import "github.com/bestofn/bestofn/kernels"

// kernelFunc is a micro-kernel: see kernel_amd64.go (and tileRef for the same loop in Go).
type kernelFunc func(kc int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, alpha, beta float32,
	rows, cols int)

// isa is one set of micro-kernels with the blocking that suits its caches.
type isa struct {
	name   string
	mr, nr int // the register tile of C
	kcMax  int // longest k block: an mr x kc panel of A stays in L1
	bBytes int // bytes of packed B (kc x nc) per block, sized to stay in L2
	cBytes int // bytes of a C block (mc x nc) when k takes several blocks, to stay in L2 beside B

	packed, rows kernelFunc // A packed k-major, or op(A) read in place from a row-major A
	// masked kernels store partial tiles themselves; packedHalf and rowsHalf (nil for none) compute tiles of
	// at most nr/2 columns.
	masked               bool
	packedHalf, rowsHalf kernelFunc

	// packCopy and packTrans fill panels (see kernel_amd64.go); packTrans takes transCols columns a group.
	packCopy  func(kc int, src *float32, lds int, dst *float32, w, width int)
	packTrans func(groups int, src *float32, lds int, dst *float32)
	transCols int

	peak      func(n int) // the FMA peak probe: n iterations of peakFLOPs
	peakFLOPs int

	// Softmax's row kernels (see kernel_amd64.go), on multiples of rowVec values.
	rowVec      int
	maxF32      func(x *float32, n int) float32
	expShiftSum func(x *float32, n int, shift float32) float32
	scaleF32    func(x *float32, n int, s float32)
}

// job is one Sgemm call split into blocks of C: mb x nb blocks of mc x nc. A block runs through k in kc
// steps: it packs op(B)[kk0:kk0+kc, cols] into nr-column k-major panels (L2; whole panels of a row-major B are
// read in place), then for each mr-row panel of op(A) (read in place when A is row-major, else packed into an
// L1 panel) calls the kernel on every B panel.
//
// The Task items are the blocks, or, for a small C and a long k (split), chunks of the k blocks: each chunk's
// product over all of C goes into its own partial C, and reduce adds the partials in chunk order, so that A
// and B are read once in all instead of once per block of C. How many chunks there are, and where they start,
// depends on the shape alone, so C gets the same bits whichever worker ran which chunk, and on any number of
// threads.
type job struct {
	s              *isa
	transA, transB bool
	m, n, k        int
	alpha, beta    float32
	a, b, c        []float32
	lda, ldb, ldc  int

	mc, nc, kc int
	mb, nb     int
	nkb        int // k blocks
	split      int // k chunks (Task items) when splitting k, else 0
	pool       *kernels.Pool
	buf        []float32 // scratch when pool is nil
	partials   []float32 // when splitting: the chunks' partial Cs, split x m x n
}

// plan picks the block sizes for threads workers: kc splits k evenly in blocks of at most kcMax; nc is as
// wide as bBytes of packed B allow; mc splits m so that, when k takes several blocks (each pass reads and
// writes the C block again), the C block stays in L2 too. With fewer than splitMaxBlocks blocks and k of
// splitMinK or more, it splits k instead (whatever threads is: the chunks fix the order of the sums);
// otherwise it cuts m further so that there are a few blocks per thread (which changes no sum: blocks start
// on whole tiles).
func (j *job) plan(threads int) {
	s := j.s
	j.nkb = ceilDiv(j.k, s.kcMax)
	j.kc = ceilDiv(j.k, j.nkb)
	ncMax := max(s.nr, s.bBytes/(4*j.kc)/s.nr*s.nr)
	j.nb = ceilDiv(j.n, ncMax)
	j.nc = roundUp(ceilDiv(j.n, j.nb), s.nr)
	j.nb = ceilDiv(j.n, j.nc)
	mcMax := 4096
	if j.nkb > 1 {
		mcMax = max(s.mr, s.cBytes/(4*j.nc))
	}
	j.mb = ceilDiv(j.m, mcMax)
	switch {
	case j.k >= splitMinK && j.mb*j.nb < splitMaxBlocks:
		j.split = min(j.nkb, splitChunks)
	case threads > 1:
		j.mb = max(j.mb, min(ceilDiv(j.m, s.mr), ceilDiv(3*threads, j.nb)))
	}
	j.mc = roundUp(ceilDiv(j.m, j.mb), s.mr)
	j.mb = ceilDiv(j.m, j.mc)
}

// splitMinK is the shortest k that plan splits: there the products of a chunk outweigh summing partial Cs.
// splitMaxBlocks is the number of C blocks from which it does not (then the blocks keep 2 threads busy), and
// splitChunks the most chunks it splits k into: enough for the workers to balance their load, few enough
// that the partial Cs stay small beside A and B.
const (
	splitMinK      = 4096
	splitMaxBlocks = 4
	splitChunks    = 8
)

// tasks is the number of Task items.
func (j *job) tasks() int {
	if j.split > 0 {
		return j.split
	}
	return j.mb * j.nb
}

// scratchLen is the number of floats a worker needs: packed B, an A panel and an edge tile.
func (j *job) scratchLen() int {
	return j.kc*j.nc + j.kc*j.s.mr + j.s.mr*j.s.nr
}

func (j *job) Run(lo, hi, worker int) {
	buf := j.buf
	if j.pool != nil {
		buf = j.pool.Scratch(worker, j.scratchLen())
	}
	if j.split == 0 {
		for t := lo; t < hi; t++ {
			j.block(t%j.mb, t/j.mb, 0, j.nkb, j.c, j.ldc, j.alpha, j.beta, buf)
		}
		return
	}
	mn := j.m * j.n
	for t := lo; t < hi; t++ {
		kb0, kb1 := t*j.nkb/j.split, (t+1)*j.nkb/j.split
		part := j.partials[t*mn : (t+1)*mn]
		for jb := range j.nb {
			for ib := range j.mb {
				j.block(ib, jb, kb0, kb1, part, j.n, 1, 0, buf)
			}
		}
	}
}

// reduce sets C = alpha*(sum of the partials, added in chunk order) + beta*C (C not read when beta is 0),
// rows [lo, hi). The sums build up in the first partial, a few rows at a time so that they stay in L1.
type reduce struct{ *job }

func (r reduce) Run(lo, hi, _ int) {
	j := r.job
	mn, n := j.m*j.n, j.n
	step := max(1, 2048/n)
	for r0 := lo; r0 < hi; r0 += step {
		r1 := min(hi, r0+step)
		sum := j.partials[r0*n : r1*n]
		for t := 1; t < j.split; t++ {
			kernels.AxpyF32(1, j.partials[t*mn+r0*n:t*mn+r1*n], sum) // y + 1*x: one rounding, as y + x
		}
		for i := r0; i < r1; i++ {
			crow, srow := j.c[i*j.ldc:i*j.ldc+n], sum[(i-r0)*n:(i-r0+1)*n]
			if j.beta == 0 {
				for v, x := range srow {
					crow[v] = j.alpha * x
				}
			} else {
				for v, x := range srow {
					crow[v] = j.alpha*x + j.beta*crow[v]
				}
			}
		}
	}
}

// block computes the block (ib, jb) of out (row stride ldc) over k blocks [kb0, kb1): out = alpha*product +
// beta*out for the first k block (out not read when beta is 0), then adds alpha*product.
func (j *job) block(ib, jb, kb0, kb1 int, out []float32, ldc int, alpha, beta float32, buf []float32) {
	s := j.s
	mr, nr := s.mr, s.nr
	i0, i1 := ib*j.mc, min(j.m, (ib+1)*j.mc)
	j0, j1 := jb*j.nc, min(j.n, (jb+1)*j.nc)
	bp := buf[:j.kc*j.nc]
	ap := buf[j.kc*j.nc : j.kc*j.nc+j.kc*mr]
	tile := buf[j.kc*j.nc+j.kc*mr : j.kc*j.nc+j.kc*mr+mr*nr]
	for k0 := kb0 * j.kc; k0 < min(j.k, kb1*j.kc); k0 += j.kc {
		kc := min(j.kc, j.k-k0)
		j.packB(bp, k0, kc, j0, j1)
		for i := i0; i < i1; i += mr {
			rows := min(mr, i1-i)
			kern, half, a, lda := s.rows, s.rowsHalf, (*float32)(nil), 4*j.lda
			if !j.transA && rows == mr {
				a = &j.a[i*j.lda+k0]
			} else {
				j.packA(ap, k0, kc, i, rows)
				kern, half, a, lda = s.packed, s.packedHalf, &ap[0], 0
			}
			for jp, col := 0, j0; col < j1; jp, col = jp+1, col+nr {
				cols := min(nr, j1-col)
				b, ldb := &bp[jp*kc*nr], 4*nr
				if !j.transB && cols == nr {
					b, ldb = &j.b[k0*j.ldb+col], 4*j.ldb // in place (packB skipped it)
				}
				c := &out[i*ldc+col]
				switch {
				case half != nil && cols <= nr/2:
					half(kc, a, lda, b, ldb, c, 4*ldc, alpha, beta, rows, cols)
				case s.masked || rows == mr && cols == nr:
					kern(kc, a, lda, b, ldb, c, 4*ldc, alpha, beta, rows, cols)
				default:
					kern(kc, a, lda, b, ldb, &tile[0], 4*nr, 1, 0, mr, nr)
					merge(tile, nr, out[i*ldc+col:], ldc, rows, cols, alpha, beta)
				}
			}
		}
		beta = 1
	}
}

// merge sets c[r*ldc+v] = alpha*tile[r*nr+v] + beta*c[r*ldc+v] (beta 0: not read) for r < rows, v < cols:
// the edge tiles of kernels that store only whole tiles.
func merge(tile []float32, nr int, c []float32, ldc, rows, cols int, alpha, beta float32) {
	for r := range rows {
		crow := c[r*ldc : r*ldc+cols]
		trow := tile[r*nr : r*nr+cols]
		if beta == 0 {
			for v, t := range trow {
				crow[v] = alpha * t
			}
		} else {
			for v, t := range trow {
				crow[v] = alpha*t + beta*crow[v]
			}
		}
	}
}

// packB writes op(B)[k0:k0+kc, j0:j1] into dst as panels of nr columns, each k-major (panel p, row kk,
// column v at dst[p*kc*nr + kk*nr + v]), zero-padded past j1. Whole panels of a row-major B are already
// k-major: the kernels read them in place, and packB skips them.
func (j *job) packB(dst []float32, k0, kc, j0, j1 int) {
	s := j.s
	nr := s.nr
	for p, col := 0, j0; col < j1; p, col = p+1, col+nr {
		cols := min(nr, j1-col)
		panel := dst[p*kc*nr : (p+1)*kc*nr]
		if !j.transB {
			if cols < nr {
				s.packCopy(kc, &j.b[k0*j.ldb+col], 4*j.ldb, &panel[0], cols, nr)
			}
			continue
		}
		src := j.b[col*j.ldb+k0:]
		switch {
		case cols == nr:
			done := kc / s.transCols * s.transCols
			if done > 0 {
				s.packTrans(done/s.transCols, &src[0], 4*j.ldb, &panel[0])
			}
			packTransRef(kc-done, src[done:], j.ldb, panel[done*nr:], nr, nr)
		default:
			clear(panel)
			packTransRef(kc, src, j.ldb, panel, cols, nr)
		}
	}
}

// packA writes op(A)[i0:i0+rows, k0:k0+kc] into dst k-major (row r, column kk at dst[kk*mr + r]),
// zero-padded past rows.
func (j *job) packA(dst []float32, k0, kc, i0, rows int) {
	mr := j.s.mr
	dst = dst[:kc*mr]
	if j.transA {
		j.s.packCopy(kc, &j.a[k0*j.lda+i0], 4*j.lda, &dst[0], rows, mr)
		return
	}
	if rows < mr {
		clear(dst)
	}
	packTransRef(kc, j.a[i0*j.lda+k0:], j.lda, dst, rows, mr)
}

// packTransRef sets dst[kk*width + v] = src[v*lds + kk] for kk < kc, v < w: w rows of src, transposed.
func packTransRef(kc int, src []float32, lds int, dst []float32, w, width int) {
	for v := range w {
		row := src[v*lds : v*lds+kc]
		for kk, x := range row {
			dst[kk*width+v] = x
		}
	}
}

// packCopyRef is packCopy in Go: dst[kk*width + v] = src[kk*lds + v] for v < w, 0 for w <= v < width.
func packCopyRef(kc int, src []float32, lds int, dst []float32, w, width int) {
	for kk := range kc {
		row := dst[kk*width : (kk+1)*width]
		copy(row, src[kk*lds:kk*lds+w])
		clear(row[w:])
	}
}

// sgemmFast runs Sgemm's blocked algorithm with the micro-kernels of s (after Sgemm's argument handling:
// m, n, k > 0 and alpha != 0). On a Pool the job record and the partial Cs are the Pool's (poolState).
func sgemmFast(s *isa, p *kernels.Pool, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int,
	b []float32, ldb int, beta float32, c []float32, ldc int) {
	var st *poolState
	var j *job
	if p != nil {
		st = statePool(p)
		j = &st.job
	} else {
		j = new(job)
	}
	*j = job{s: s, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, beta: beta, a: a, b: b,
		c: c, lda: lda, ldb: ldb, ldc: ldc, pool: p}
	defer func() { *j = job{} }() // hold on to none of the caller's matrices
	threads := 1
	if p != nil && float64(m)*float64(n)*float64(k) >= parallelMin {
		threads = p.Threads()
	}
	j.plan(threads)
	if j.split > 0 {
		if st != nil {
			st.partials = grow(st.partials, j.split*m*n)
			j.partials = st.partials
		} else {
			j.partials = make([]float32, j.split*m*n)
		}
	}
	if threads == 1 {
		if p == nil {
			j.buf = make([]float32, j.scratchLen())
		}
		j.Run(0, j.tasks(), 0)
		if j.split > 0 {
			reduce{j}.Run(0, m, 0)
		}
		return
	}
	p.Run(j.tasks(), 1, j)
	if j.split > 0 {
		p.Run(j.m, 0, reduce{j})
	}
}

// poolState is what Sgemm keeps in a Pool (kernels.Pool.Local) between calls, so that they allocate nothing:
// the job record, the pure-Go loops' task and the partial Cs of split products, grown on demand.
type poolState struct {
	job      job
	ref      refTask
	partials []float32
}

// poolStateKey is the kernels.Pool.Local key of poolState.
type poolStateKey struct{}

// statePool returns p's poolState, made on first use.
func statePool(p *kernels.Pool) *poolState {
	return p.Local(poolStateKey{}, func() any { return new(poolState) }).(*poolState)
}

// grow returns s with length n, reallocated only when it is too short (its contents are then lost).
func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// parallelMin is the number of multiply-adds (m*n*k) below which Sgemm runs on the calling goroutine even when
// given a Pool: about 10 microseconds of one core, where waking the other workers costs as much as it saves.
const parallelMin = 1 << 20

func ceilDiv(a, b int) int { return (a + b - 1) / b }
func roundUp(a, b int) int { return ceilDiv(a, b) * b }
