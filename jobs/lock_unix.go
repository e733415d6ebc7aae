//go:build unix

package jobs

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// lockFile takes an exclusive flock on f, waiting up to timeout: a worker that lost its lease but still runs
// keeps its output files locked until its attempt ends, so the worker that took the job over never appends
// beside it. The kernel drops the lock when a process dies.
func lockFile(f *os.File, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %s, after waiting %s", errOutputBusy, f.Name(), timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
