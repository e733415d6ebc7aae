package kernels

import (
	"fmt"
	"runtime"
	"sync/atomic"
)

// Task is a unit of parallel work for Pool.Run. Run processes the items [lo, hi); worker (0 <= worker <
// Pool.Threads()) names the goroutine calling it, so a task can keep per-worker scratch space.
type Task interface {
	Run(lo, hi, worker int)
}

// Pool is a fixed set of worker goroutines, created once by NewPool, that split the rows of a MatMul (or the
// items of a Run) between them. The calling goroutine works too, so a Pool of n threads starts n-1 goroutines.
//
// Concurrency: a Pool runs one MatMul or Run at a time; calls must not overlap (the forward pass calls it from
// one goroutine). Use one Pool per concurrent caller. Dispatch allocates nothing: the work description lives
// in the Pool and is published by bumping a generation counter.
//
// Workers poll for the next job for a short while after finishing one (calls come back to back in a forward
// pass, and a goroutine woken through a channel may wait for the scheduler long enough to serialize the
// work), then sleep on a channel until woken, so an idle Pool costs no CPU.
type Pool struct {
	threads int
	workers []poolWorker
	closed  atomic.Bool
	locals  []poolLocal // Local's values

	// The job being run: items [0, n) handed out grain at a time from next. gen is bumped once the fields
	// are set; pending counts the workers that have not finished it.
	task    Task
	n       int
	grain   int
	next    atomic.Int64
	gen     atomic.Uint32
	pending atomic.Int32

	isa   ISA     // the kernels MatMul runs (resolved: never ISAAuto)
	asm   bool    // the AVX2 kernels run: isa is ISAAVX2 or wider
	mat   matJob  // MatMul's task, reused across calls
	quant scratch // quantized activations, grown on demand

	perWorker [][]float32  // Scratch's buffers, one per thread
	amx       []amxScratch // the AMX kernels' scratch, one per thread
}

// poolWorker is the sleep state of one worker goroutine: asleep is 1 while it waits on wake (or is about
// to); whoever swaps it back to 0 owes it one token on wake, unless the worker did it itself.
type poolWorker struct {
	asleep atomic.Int32
	wake   chan struct{}
}

// spinRounds is how many times an idle worker checks for a new job (yielding its P each time) before
// sleeping: a few hundred microseconds.
const spinRounds = 2000

// NewPool starts a pool of threads workers (threads <= 0 means runtime.NumCPU()) that runs the kernels of
// BestISA(). Close it when done.
func NewPool(threads int) *Pool {
	p, err := NewPoolISA(threads, ISAAuto)
	if err != nil {
		panic(err) // BestISA is always supported
	}
	return p
}

// NewPoolISA is NewPool with the kernels of isa (ISAAuto: BestISA()); it fails when this CPU does not run
// them.
func NewPoolISA(threads int, isa ISA) (*Pool, error) {
	isa = isa.resolve()
	if !isa.Supported() {
		return nil, fmt.Errorf("kernels: this CPU does not run the %v kernels (it runs %v)", isa, SupportedISAs())
	}
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	p := &Pool{threads: threads, perWorker: make([][]float32, threads), amx: make([]amxScratch, threads)}
	p.quant.pack.s = &p.quant
	p.setISA(isa)
	p.mat.p = p
	p.workers = make([]poolWorker, threads-1)
	for i := range p.workers {
		p.workers[i].wake = make(chan struct{}, 1)
		go p.worker(i)
	}
	return p, nil
}

// setISA switches the pool's kernels (tests force each ISA on one pool).
func (p *Pool) setISA(isa ISA) { p.isa, p.asm = isa, isa >= ISAAVX2 }

// ISA returns the kernels the pool runs.
func (p *Pool) ISA() ISA { return p.isa }

// Scratch returns n float32s that belong to worker (0 <= worker < Threads(), as passed to Task.Run) until
// its next Scratch call, for the scratch space of kernels in other packages (gemm's packing buffers). The
// buffer is kept and grown on demand, so a kernel called repeatedly allocates nothing; its contents are
// undefined. Each worker has its own, so tasks may call it from every worker at once.
func (p *Pool) Scratch(worker, n int) []float32 {
	s := &p.perWorker[worker]
	if cap(*s) < n {
		*s = make([]float32, n)
	}
	return (*s)[:n]
}

// amxScratch returns worker's AMX scratch area.
func (p *Pool) amxScratch(worker int) *amxScratch { return &p.amx[worker] }

// Threads returns the number of threads the pool splits work across, the caller's included.
func (p *Pool) Threads() int { return p.threads }

// Close stops the worker goroutines. The Pool must not be used afterwards; Close is idempotent.
func (p *Pool) Close() {
	if p.closed.Swap(true) {
		return
	}
	p.gen.Add(1)
	p.wakeSleepers()
}

// wakeSleepers hands a token to each worker that is asleep (or committed to sleeping).
func (p *Pool) wakeSleepers() {
	for i := range p.workers {
		w := &p.workers[i]
		if w.asleep.CompareAndSwap(1, 0) {
			w.wake <- struct{}{}
		}
	}
}

func (p *Pool) worker(id int) {
	w := &p.workers[id]
	var seen uint32 // the generation before any job: a Run may bump gen before this goroutine starts
	for {
		for rounds := 0; p.gen.Load() == seen; rounds++ {
			if rounds < spinRounds {
				runtime.Gosched()
				continue
			}
			w.asleep.Store(1)
			if p.gen.Load() != seen && w.asleep.CompareAndSwap(1, 0) {
				break // a job came in before anyone saw us asleep
			}
			<-w.wake // the publisher (or Close) swapped asleep back to 0 and sent this
			rounds = 0
		}
		seen = p.gen.Load()
		if p.closed.Load() {
			return
		}
		p.work(id + 1)
		p.pending.Add(-1)
	}
}

// work takes chunks of the current job until none is left.
func (p *Pool) work(id int) {
	grain := int64(p.grain)
	n := int64(p.n)
	for {
		lo := p.next.Add(grain) - grain
		if lo >= n {
			return
		}
		p.task.Run(int(lo), int(min(lo+grain, n)), id)
	}
}

// Run calls t.Run over [0, n) split into chunks of grain items (grain <= 0 picks one so that each thread gets
// a few chunks), across the pool's threads, and returns when all chunks are done. Chunks are handed out
// dynamically, so a thread slowed by other load takes fewer. With one thread, or when n fits in one chunk, t
// runs on the caller's goroutine only. Run allocates nothing.
func (p *Pool) Run(n, grain int, t Task) {
	if n <= 0 {
		return
	}
	if grain <= 0 {
		grain = max(1, n/(4*p.threads))
	}
	if p.threads == 1 || n <= grain || p.closed.Load() {
		t.Run(0, n, 0)
		return
	}
	p.task, p.n, p.grain = t, n, grain
	p.next.Store(0)
	p.pending.Store(int32(len(p.workers)))
	p.gen.Add(1)
	p.wakeSleepers()
	p.work(0)
	for p.pending.Load() != 0 {
		runtime.Gosched()
	}
	p.task = nil
}
