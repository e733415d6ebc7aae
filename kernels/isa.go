package kernels

import (
	"fmt"
	"strings"
)

// ISA names a set of kernels. A Pool runs the kernels of one ISA, chosen by NewPool from the CPU's features
// (BestISA) or forced with NewPoolISA; each ISA falls back to the next narrower one for the matrix types and
// layouts it has no kernels of, down to the pure-Go loops, so every ISA computes every MatMul.
type ISA uint8

const (
	// ISAAuto stands for BestISA() where an ISA is asked for.
	ISAAuto ISA = iota
	// ISAGo is the pure-Go loops of dot.go and interleave.go: the reference of the tests, and what CPUs
	// without AVX2 run.
	ISAGo
	// ISAAVX2 is the AVX2/FMA/F16C assembly of matmul_amd64.s (needs all three).
	ISAAVX2
	// ISAAVXVNNI adds the VEX-encoded VPDPBUSD of AVX-VNNI (256-bit registers, CPUs without AVX-512 such
	// as Alder Lake) for interleaved Q8_0 and Q4_0 weights; AVX2 for the rest.
	ISAAVXVNNI
	// ISAAVX512VNNI runs interleaved Q8_0 and Q4_0 weights through AVX-512 VNNI (VPDPBUSD on 512-bit
	// registers; needs AVX-512 F, BW, VL and VNNI); AVX2 for the rest.
	ISAAVX512VNNI
	// ISAAMX is ISAAVX512VNNI with the tile unit of AMX-INT8 (Sapphire Rapids and later Xeons) for batches
	// of amxMinBatch rows and more (prefill) of Q8_0 and Q4_0 weights: TDPBSSD multiplies 16 weight rows by
	// 16 activation rows per 32-value block in one instruction. It reads the file's layout of the weights
	// (Matrix.File) and needs the kernel's permission for AMX state (Linux 5.16 or later).
	ISAAMX
)

var isaNames = [...]string{ISAAuto: "auto", ISAGo: "go", ISAAVX2: "avx2", ISAAVXVNNI: "avxvnni", ISAAVX512VNNI: "avx512vnni", ISAAMX: "amx"}

// String returns the ISA's name as ParseISA reads it: auto, go, avx2, avxvnni, avx512vnni or amx.
func (i ISA) String() string {
	if int(i) < len(isaNames) {
		return isaNames[i]
	}
	return fmt.Sprintf("ISA(%d)", uint8(i))
}

// ParseISA reads an ISA name (see String), case-insensitively; "" is auto.
func ParseISA(s string) (ISA, error) {
	if s == "" {
		return ISAAuto, nil
	}
	for i, n := range isaNames {
		if strings.EqualFold(s, n) {
			return ISA(i), nil
		}
	}
	return 0, fmt.Errorf("kernels: unknown ISA %q (want one of %s)", s, strings.Join(isaNames[:], ", "))
}

// Supported reports whether this CPU runs the ISA's kernels. ISAAuto and ISAGo are always supported.
func (i ISA) Supported() bool {
	switch i {
	case ISAAuto, ISAGo:
		return true
	case ISAAVX2:
		return haveASM()
	case ISAAVXVNNI:
		return haveASM() && haveAVXVNNI()
	case ISAAVX512VNNI:
		return haveASM() && haveAVX512VNNI()
	case ISAAMX:
		return haveASM() && haveAVX512VNNI() && haveAMX()
	}
	return false
}

// BestISA returns the widest ISA this CPU runs: amx, avx512vnni, avxvnni, avx2 or go, in that order.
func BestISA() ISA {
	for _, i := range []ISA{ISAAMX, ISAAVX512VNNI, ISAAVXVNNI, ISAAVX2} {
		if i.Supported() {
			return i
		}
	}
	return ISAGo
}

// SupportedISAs lists the ISAs this CPU runs, widest first, ISAGo last.
func SupportedISAs() []ISA {
	var s []ISA
	for _, i := range []ISA{ISAAMX, ISAAVX512VNNI, ISAAVXVNNI, ISAAVX2, ISAGo} {
		if i.Supported() {
			s = append(s, i)
		}
	}
	return s
}

// resolve returns BestISA for ISAAuto and i otherwise.
func (i ISA) resolve() ISA {
	if i == ISAAuto {
		return BestISA()
	}
	return i
}

// vnni reports whether the ISA multiplies interleaved Q8_0 and Q4_0 weights with VPDPBUSD, which wants
// Q8_0 weights biased to unsigned bytes (see Interleave).
func (i ISA) vnni() bool { return i == ISAAVXVNNI || i.avx512() }

// avx512 reports whether the ISA runs the AVX-512 VNNI kernels (512-bit tiles of 2 weight rows).
func (i ISA) avx512() bool { return i == ISAAVX512VNNI || i == ISAAMX }
