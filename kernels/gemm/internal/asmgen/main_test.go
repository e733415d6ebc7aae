package main

import (
	"bytes"
	"os"
	"testing"
)

// TestGenerated checks that the committed kernels/gemm/sgemm_amd64.s is what the generator writes, so an
// edit of either without the other fails (run `go generate ./kernels/gemm/`).
func TestGenerated(t *testing.T) {
	have, err := os.ReadFile("../../sgemm_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, generate()) {
		t.Fatal("kernels/gemm/sgemm_amd64.s differs from the generator's output: run go generate ./kernels/gemm/")
	}
}
