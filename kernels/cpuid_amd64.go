package kernels

import "encoding/binary"

func cpuidVendor() (ebx, edx, ecx uint32)

// cpuVendor returns the CPU's vendor string from CPUID leaf 0 ("GenuineIntel", "AuthenticAMD", ...).
func cpuVendor() string {
	ebx, edx, ecx := cpuidVendor()
	var b [12]byte
	binary.LittleEndian.PutUint32(b[0:], ebx)
	binary.LittleEndian.PutUint32(b[4:], edx)
	binary.LittleEndian.PutUint32(b[8:], ecx)
	return string(b[:])
}
