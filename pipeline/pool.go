package pipeline

import (
	"context"
	"strconv"
	"sync"
)

// runPool calls fn(ctx, i) for i in [0, n) on workers goroutines, in order of i. It stops early when ctx ends
// or fn returns an error, and returns that error (ctx's error when ctx ended), nil when all ran.
func runPool(ctx context.Context, workers, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(1, min(workers, n)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return context.Cause(ctx)
}

// appendFailure appends row under key, or under key#2, key#3, ... when an earlier attempt failed the same item
// (output keys are unique; every failure is kept).
func appendFailure(out RowStore, key string, row any) error {
	k := key
	for n := 2; out.Has(k); n++ {
		k = key + "#" + strconv.Itoa(n)
	}
	return out.Append(k, row)
}
