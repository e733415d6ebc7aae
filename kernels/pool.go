package kernels

import (
	"runtime"
	"sync"
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
// one goroutine). Use one Pool per concurrent caller. Dispatch allocates nothing: the work description lives in
// the Pool and workers are woken through per-worker channels.
type Pool struct {
	threads int
	wake    []chan struct{} // one per started goroutine; closed by Close
	wg      sync.WaitGroup
	closed  bool

	// The job being run: items [0, n) handed out grain at a time from next.
	task  Task
	n     int
	grain int
	next  atomic.Int64

	asm   bool    // use the assembly kernels (CPU has AVX2, FMA and F16C)
	mat   matJob  // MatMul's task, reused across calls
	quant scratch // quantized activations, grown on demand
}

// NewPool starts a pool of threads workers (threads <= 0 means runtime.NumCPU()). Close it when done.
func NewPool(threads int) *Pool {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	p := &Pool{threads: threads, asm: haveASM()}
	p.mat.p = p
	p.wake = make([]chan struct{}, threads-1)
	for i := range p.wake {
		ch := make(chan struct{}, 1)
		p.wake[i] = ch
		go p.worker(ch, i+1)
	}
	return p
}

// Threads returns the number of threads the pool splits work across, the caller's included.
func (p *Pool) Threads() int { return p.threads }

// Close stops the worker goroutines. The Pool must not be used afterwards; Close is idempotent.
func (p *Pool) Close() {
	if p.closed {
		return
	}
	p.closed = true
	for _, ch := range p.wake {
		close(ch)
	}
}

func (p *Pool) worker(wake chan struct{}, id int) {
	for range wake {
		p.work(id)
		p.wg.Done()
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
	if p.threads == 1 || n <= grain || p.closed {
		t.Run(0, n, 0)
		return
	}
	p.task, p.n, p.grain = t, n, grain
	p.next.Store(0)
	workers := min(len(p.wake), (n+grain-1)/grain-1)
	p.wg.Add(workers)
	for _, ch := range p.wake[:workers] {
		ch <- struct{}{}
	}
	p.work(0)
	p.wg.Wait()
	p.task = nil
}
