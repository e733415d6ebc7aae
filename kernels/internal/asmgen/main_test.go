package main

import (
	"bytes"
	"os"
	"testing"
)

// TestGenerated checks that the committed matmul_amd64.s, vnni_amd64.s and vnni_kernels_amd64.go of package
// kernels are what the generator writes, so an edit of either without the other fails (run
// `go generate ./kernels/`).
func TestGenerated(t *testing.T) {
	for name, want := range map[string][]byte{
		"matmul_amd64.s": matmulFile(), "vnni_amd64.s": vnniFile(), "vnni_kernels_amd64.go": vnniDecls(),
	} {
		have, err := os.ReadFile("../../" + name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(have, want) {
			t.Errorf("kernels/%s differs from the generator's output: run go generate ./kernels/", name)
		}
	}
}
