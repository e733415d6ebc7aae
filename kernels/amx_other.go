//go:build !linux || !amd64

package kernels

func haveAMX() bool { return false }
