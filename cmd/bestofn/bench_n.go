package main

import (
	"context"
	"errors"
	"io"
)

// benchBestOfN runs `bestofn bench --n N` for N > 1: best-of-N decoding through the engine. Placeholder: the
// engine engineer replaces this file.
func benchBestOfN(ctx context.Context, o benchOptions, stdout, stderr io.Writer) error {
	return errors.New("bench --n > 1 needs the engine (not built yet)")
}
