package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestGenerated checks that the committed matmul_amd64.s, vnni_amd64.s and vnni_kernels_amd64.go of package
// kernels are what the generator writes, so an edit of either without the other fails (run
// `go generate ./kernels/`).
func TestGenerated(t *testing.T) {
	for name, want := range map[string][]byte{
		"matmul_amd64.s": matmulFile(), "vnni_amd64.s": vnniFile(), "vnni_kernels_amd64.go": vnniDecls(),
		"amx_amd64.s": amxFile(),
	} {
		have, err := os.ReadFile("../../" + name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(have, want) {
			t.Errorf("kernels/%s differs from the generator's output: run go generate ./kernels/", name)
		}
	}
}

// TestAMXEncodings checks the bytes written for AMX instructions against GNU as's encodings of the same
// instructions (objdump of `as`, binutils 2.40).
func TestAMXEncodings(t *testing.T) {
	for want, emit := range map[string]func(g *gen){
		"c4 e2 78 49 00":    func(g *gen) { g.ldtilecfg("AX") },
		"c4 e2 78 49 02":    func(g *gen) { g.ldtilecfg("DX") },
		"c4 c2 78 49 03":    func(g *gen) { g.ldtilecfg("R11") },
		"c4 e2 78 49 c0":    func(g *gen) { g.tilerelease() },
		"c4 e2 7b 49 c0":    func(g *gen) { g.tilezero(0) },
		"c4 e2 7b 49 d8":    func(g *gen) { g.tilezero(3) },
		"c4 e2 7b 4b 04 1e": func(g *gen) { g.tileloadd(0, "SI", "BX") },
		"c4 a2 7b 4b 0c 07": func(g *gen) { g.tileloadd(1, "DI", "R8") },
		"c4 82 7b 4b 14 11": func(g *gen) { g.tileloadd(2, "R9", "R10") },
		"c4 82 7a 4b 14 13": func(g *gen) { g.tilestored(2, "R11", "R10") },
		"c4 e2 7a 4b 1c 02": func(g *gen) { g.tilestored(3, "DX", "AX") },
		"c4 e2 73 5e d0":    func(g *gen) { g.tdpbssd(2, 0, 1) },
		"c4 e2 53 5e dc":    func(g *gen) { g.tdpbssd(3, 4, 5) },
	} {
		var g gen
		emit(&g)
		var got []string
		for _, f := range bytes.Fields([]byte(strings.SplitN(g.String(), "//", 2)[0])) {
			if s := strings.TrimSuffix(strings.TrimPrefix(string(f), "$0x"), ";"); s != "BYTE" {
				got = append(got, s)
			}
		}
		if strings.Join(got, " ") != want {
			t.Errorf("%s: wrote %q, want %s", g.String(), strings.Join(got, " "), want)
		}
	}
}
