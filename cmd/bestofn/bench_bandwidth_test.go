package main

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/bestofn/bestofn/kernels"
)

// TestBenchBandwidth runs `bestofn bench --json` on the stories model with each ISA this CPU runs and checks
// the machine report: the CPU, the kernels asked for, a positive read bandwidth from the passes made, the
// weight bytes per token, and a share of the limit that is decode tok/s over bandwidth/bytes.
func TestBenchBandwidth(t *testing.T) {
	for _, isa := range kernels.SupportedISAs() {
		var out, errOut bytes.Buffer
		args := []string{"bench", "--model", storiesGGUFPath, "--prompt-tokens", "4", "--gen-tokens", "20", "--threads", "2",
			"--bandwidth-mib", "8", "--kernels", isa.String(), "--json"}
		if code := run(context.Background(), args, &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d: %s", isa, code, errOut.String())
		}
		var res benchResult
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("%v: %v: %q", isa, err, out.String())
		}
		if res.CPU == "" || res.ISA != isa.String() || res.BandwidthLimit == nil {
			t.Fatalf("%v: report %+v", isa, res)
		}
		l := res.BandwidthLimit
		if l.BandwidthPass != 5 || l.BandwidthMiB != 8 || !(l.BestShare > 0) || !(l.BandwidthGBs > 0) || !(l.Bandwidth1GBs > 0) ||
			l.WeightBytes < 1_000_000 || l.WeightBytes > 1_100_000 {
			t.Errorf("%v: limit %+v", isa, *l)
		}
		want := res.DecodeTokS / (l.BandwidthGBs * 1e9 / float64(l.WeightBytes))
		if d := l.ShareOfLimit - want; d > 1e-9*want || d < -1e-9*want {
			t.Errorf("%v: share of limit %g, want %g", isa, l.ShareOfLimit, want)
		}
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"bench", "--model", storiesGGUFPath, "--kernels", "sse9"}, &out, &errOut); code == 0 {
		t.Error("an unknown ISA was accepted")
	}
	out.Reset()
	if code := run(context.Background(), []string{"bench", "--model", storiesGGUFPath, "--gen-tokens", "3", "--bandwidth=false", "--json"}, &out, &errOut); code != 0 {
		t.Fatalf("--bandwidth=false: exit %d: %s", code, errOut.String())
	}
	if bytes.Contains(out.Bytes(), []byte("read_bandwidth")) {
		t.Errorf("--bandwidth=false still measured: %s", out.String())
	}
}

// TestBenchBestOfNRepeat checks --repeat: as many ratios as pairs, the first the reported decode ratio, and
// their median; and the CPU and kernels fields of the best-of-N report.
func TestBenchBestOfNRepeat(t *testing.T) {
	var out, errOut bytes.Buffer
	args := []string{"--model", storiesGGUFPath, "--prompt-tokens", "8", "--gen-tokens", "6", "--n", "3", "--repeat", "3",
		"--threads", "1", "--json"}
	if err := runBench(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("%v (stderr %s)", err, errOut.String())
	}
	var res benchNResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("%v: %q", err, out.String())
	}
	if len(res.DecodeRatios) != 3 || res.DecodeRatios[0] != res.DecodeRatio || res.CPU == "" || res.ISA == "" {
		t.Fatalf("report %+v", res)
	}
	sorted := append([]float64(nil), res.DecodeRatios...)
	slices.Sort(sorted)
	if res.DecodeRatioMedian != sorted[1] {
		t.Errorf("median %g of %v", res.DecodeRatioMedian, res.DecodeRatios)
	}
	if err := runBench(context.Background(), []string{"--model", storiesGGUFPath, "--n", "2", "--repeat", "0"}, &out, &errOut); err == nil {
		t.Error("--repeat 0 accepted")
	}
}

// TestBenchLayout runs `bestofn bench --layout` on a small synthesized Q4_0 model: with the AVX-512 kernels
// each forced layout is the one reported, and auto is panels exactly on AMD CPUs; with other kernels the
// matrices stay in groups whatever is asked; an unknown layout is refused.
func TestBenchLayout(t *testing.T) {
	model := t.TempDir() + "/q4.gguf"
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"synth", "--type", "Q4_0", "--dim", "256", "--ffn", "512", "--layers", "1",
		"--heads", "4", "--kv-heads", "4", "--vocab", "512", model}, &out, &errOut); code != 0 {
		t.Fatalf("synth: exit %d: %s", code, errOut.String())
	}
	for _, isa := range kernels.SupportedISAs() {
		for _, layout := range []string{"auto", "groups", "panels"} {
			out.Reset()
			args := []string{"--model", model, "--prompt-tokens", "2", "--gen-tokens", "2", "--threads", "1",
				"--bandwidth=false", "--kernels", isa.String(), "--layout", layout, "--json"}
			if err := runBench(context.Background(), args, &out, &errOut); err != nil {
				t.Fatalf("%v %s: %v (stderr %s)", isa, layout, err, errOut.String())
			}
			var res benchResult
			if err := json.Unmarshal(out.Bytes(), &res); err != nil {
				t.Fatalf("%v %s: %v: %q", isa, layout, err, out.String())
			}
			avx512 := isa == kernels.ISAAVX512VNNI || isa == kernels.ISAAMX
			want := "groups"
			if avx512 && (layout == "panels" || layout == "auto" && cpuInfoField("vendor_id") == "AuthenticAMD") {
				want = "panels"
			}
			if res.Layout != want || res.ISA != isa.String() {
				t.Errorf("--kernels %v --layout %s: kernels %q, layout %q, want %q", isa, layout, res.ISA, res.Layout, want)
			}
		}
	}
	if err := runBench(context.Background(), []string{"--model", model, "--layout", "rows"}, &out, &errOut); err == nil {
		t.Error("an unknown layout was accepted")
	}
}
