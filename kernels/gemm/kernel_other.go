//go:build !amd64

package gemm

// supportedISAs lists no micro-kernels: Sgemm runs the pure-Go loops.
func supportedISAs() []*isa { return nil }
