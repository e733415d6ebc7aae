package kernels

import (
	"fmt"
	"strings"
)

// Layout chooses the form Interleave gives Q8_0 and Q4_0 matrices for the AVX-512 ISAs: the panels of 16 rows
// (panels.go) or the groups of 8 blocks the other ISAs read. Which one is faster depends on the CPU, not only
// on its ISA: on an AMD EPYC Zen 4 the panels decode a 1.1B model's step in 0.73-0.92x the groups' time at
// batch 1 and 5, on an Intel Xeon with AMX (family 6 model 167 as its VM reports it) the groups take
// 0.78-0.80x the panels' time for Q8_0 at batch 5 and 0.91x for Q4_0 at batch 1 (`go test ./kernels -run XXX
// -bench PanelRatio`).
type Layout uint8

const (
	// LayoutAuto is panels on AMD CPUs and groups on the others (see Layout).
	LayoutAuto Layout = iota
	// LayoutGroups keeps the groups of 8 blocks on every ISA.
	LayoutGroups
	// LayoutPanels puts matrices of a multiple of 16 rows into panels on the AVX-512 ISAs (the others have no
	// panel kernels and keep the groups).
	LayoutPanels
)

var layoutNames = [...]string{LayoutAuto: "auto", LayoutGroups: "groups", LayoutPanels: "panels"}

// String returns the layout's name as ParseLayout reads it: auto, groups or panels.
func (l Layout) String() string {
	if int(l) < len(layoutNames) {
		return layoutNames[l]
	}
	return fmt.Sprintf("Layout(%d)", uint8(l))
}

// ParseLayout reads a layout name (see String), case-insensitively; "" is auto.
func ParseLayout(s string) (Layout, error) {
	if s == "" {
		return LayoutAuto, nil
	}
	for i, n := range layoutNames {
		if strings.EqualFold(s, n) {
			return Layout(i), nil
		}
	}
	return 0, fmt.Errorf("kernels: unknown layout %q (want one of %s)", s, strings.Join(layoutNames[:], ", "))
}

// resolve returns the layout LayoutAuto stands for on this CPU, and l otherwise.
func (l Layout) resolve() Layout {
	if l != LayoutAuto {
		return l
	}
	if cpuVendor() == "AuthenticAMD" {
		return LayoutPanels
	}
	return LayoutGroups
}
