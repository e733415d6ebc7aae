package kernels

import (
	"bufio"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/bestofn/bestofn/weights"
)

// TestParseLayout checks that every layout's name reads back as that layout and that other names are refused.
func TestParseLayout(t *testing.T) {
	for _, l := range []Layout{LayoutAuto, LayoutGroups, LayoutPanels} {
		got, err := ParseLayout(strings.ToUpper(l.String()))
		if err != nil || got != l {
			t.Fatalf("ParseLayout(%q) = %v, %v", l.String(), got, err)
		}
	}
	if l, err := ParseLayout(""); err != nil || l != LayoutAuto {
		t.Fatalf(`ParseLayout("") = %v, %v; want auto`, l, err)
	}
	if _, err := ParseLayout("rows"); err == nil || !strings.Contains(err.Error(), "groups") {
		t.Fatalf(`ParseLayout("rows") = %v; want an error naming the layouts`, err)
	}
}

// TestLayoutAuto checks the vendor that LayoutAuto goes by against /proc/cpuinfo's vendor_id, and that
// Interleave puts the matrices of 16 rows into panels on the AVX-512 ISAs exactly on AMD CPUs.
func TestLayoutAuto(t *testing.T) {
	if runtime.GOARCH != "amd64" || runtime.GOOS != "linux" {
		t.Skip("reads /proc/cpuinfo of an x86-64 Linux machine")
	}
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vendor string
	for sc := bufio.NewScanner(f); sc.Scan() && vendor == ""; {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "vendor_id" {
			vendor = strings.TrimSpace(v)
		}
	}
	if got := cpuVendor(); got != vendor {
		t.Fatalf("cpuVendor() = %q, /proc/cpuinfo says %q", got, vendor)
	}
	if !ISAAVX512VNNI.Supported() {
		t.Skip("no AVX-512 VNNI: the layouts are the same here")
	}
	m := randomMatrix(rand.New(rand.NewPCG(5, 6)), weights.TypeQ4_0, 32, 256)
	mi, err := Interleave(m, ISAAVX512VNNI)
	if err != nil {
		t.Fatal(err)
	}
	if want := vendor == "AuthenticAMD"; mi.Panels != want {
		t.Fatalf("on a %s CPU Interleave gave panels %v, want %v", vendor, mi.Panels, want)
	}
}
