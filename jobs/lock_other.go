//go:build !unix

package jobs

import (
	"os"
	"time"
)

// lockFile is a no-op where flock is missing: only the lease guards output files there.
func lockFile(f *os.File, timeout time.Duration) error { return nil }
