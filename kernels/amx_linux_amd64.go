package kernels

import (
	"sync"
	"syscall"

	"golang.org/x/sys/cpu"
)

// amxPermission asks Linux, once per process, for the right to use the AMX tile data (arch_prctl
// ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA, Linux 5.16 and later); without it the first tile instruction
// would kill the process.
var amxPermission = sync.OnceValue(func() bool {
	const archReqXcompPerm, xfeatureXtiledata = 0x1023, 18
	_, _, errno := syscall.RawSyscall(syscall.SYS_ARCH_PRCTL, archReqXcompPerm, xfeatureXtiledata, 0)
	return errno == 0
})

// haveAMX reports whether the CPU has AMX-INT8 and the process may use it.
func haveAMX() bool { return cpu.X86.HasAMXTile && cpu.X86.HasAMXInt8 && amxPermission() }
