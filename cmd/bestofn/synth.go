package main

import (
	"context"
	"errors"
	"io"
)

// TODO(owner): replace this placeholder with the real subcommand.
func runSynth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not built yet")
}
