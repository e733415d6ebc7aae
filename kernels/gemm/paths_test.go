package gemm

// allPaths lists the implementations the tests compare: Sgemm as dispatched.
func allPaths() []path {
	return []path{{"Sgemm", Sgemm}}
}
