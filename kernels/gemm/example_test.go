package gemm_test

import (
	"fmt"

	"github.com/bestofn/bestofn/kernels"
	"github.com/bestofn/bestofn/kernels/gemm"
)

// A linear layer's forward pass, Y = X W^T, and its weight gradient, dW += dY^T X.
func ExampleSgemm() {
	x := []float32{ // 2 tokens x 3 inputs
		1, 2, 3,
		4, 5, 6,
	}
	w := []float32{ // 2 outputs x 3 inputs
		1, 0, -1,
		0.5, 0.5, 0.5,
	}
	p := kernels.NewPool(2)
	defer p.Close()

	y := make([]float32, 2*2) // 2 tokens x 2 outputs
	gemm.Sgemm(p, false, true, 2, 2, 3, 1, x, 3, w, 3, 0, y, 2)
	fmt.Println("y:", y)

	dy := []float32{1, 0, 0, 1}
	dw := make([]float32, 2*3)
	gemm.Sgemm(p, true, false, 2, 3, 2, 1, dy, 2, x, 3, 1, dw, 3)
	fmt.Println("dw:", dw)
	// Output:
	// y: [-2 3 -2 7.5]
	// dw: [1 2 3 4 5 6]
}
