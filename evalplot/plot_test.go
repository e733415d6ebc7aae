package evalplot

import (
	"bytes"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BESTOFN_PLOT_DIR keeps the rendered figures for a look.
func keep(t *testing.T, name string, f Figure) {
	if dir := os.Getenv("BESTOFN_PLOT_DIR"); dir != "" {
		os.WriteFile(filepath.Join(dir, name+".png"), f.PNG, 0o644)
		os.WriteFile(filepath.Join(dir, name+".svg"), f.SVG, 0o644)
	}
}

func checkFigure(t *testing.T, f Figure, texts ...string) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(f.PNG))
	if err != nil {
		t.Fatalf("PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 250 {
		t.Errorf("PNG is %v", b)
	}
	// The PNG is not blank: bars are drawn in colour.
	coloured := 0
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y += 3 {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x += 3 {
			r, g, b, _ := img.At(x, y).RGBA()
			if r != g || g != b {
				coloured++
			}
		}
	}
	if coloured < 100 {
		t.Errorf("only %d coloured pixels sampled", coloured)
	}
	svg := string(f.SVG)
	if !strings.HasPrefix(strings.TrimSpace(svg), "<?xml") || !strings.Contains(svg, "<svg") {
		t.Errorf("SVG starts %q", svg[:min(60, len(svg))])
	}
	for _, s := range texts {
		if !strings.Contains(svg, s) {
			t.Errorf("SVG lacks %q", s)
		}
	}
}

func TestRelativeScores(t *testing.T) {
	bars := []Bar{
		{"B", 91, 88, 94, ""}, {"R1", 94, 91, 97, ""}, {"R2", 92, 89, 95, ""}, {"R3", 90, 86, 93, ""}, {"R4", 88, 85, 91, ""},
		{"R5", 85, 81, 88, ""}, {"broken", math.NaN(), math.NaN(), math.NaN(), "judged 0/80"},
	}
	f, err := RelativeScores("Fig. 4: relative score (LLM judge)", "ChatGPT", bars)
	if err != nil {
		t.Fatal(err)
	}
	keep(t, "relative", f)
	checkFigure(t, f, "R1", "R5", "94%", "n/a", "ChatGPT", "judged 0/80")
	if _, err := RelativeScores("x", "y", nil); err == nil {
		t.Error("no bars: no error")
	}
}

func TestRougeBuckets(t *testing.T) {
	f, err := RougeBuckets("Fig. 6: ROUGE-L", []string{"0-2", "3-5", "6-10", ">10"}, []Series{
		{"B", []float64{0.2, 0.3, 0.35, 0.4}}, {"R1", []float64{0.25, 0.33, 0.38, 0.41}}, {"R2", []float64{0.24, 0.3, 0.36, 0.4}},
		{"R3", []float64{0.22, 0.3, 0.35, 0.39}}, {"R4", []float64{0.2, 0.29, 0.33, 0.38}}, {"R5", []float64{0.19, 0.27, 0.31, 0.37}},
		{"opponent", []float64{0.1, 0.2, 0.3, 0.4}},
	})
	if err != nil {
		t.Fatal(err)
	}
	keep(t, "rouge", f)
	checkFigure(t, f, "6-10", "opponent", "ROUGE-L")
	if _, err := RougeBuckets("x", []string{"a"}, []Series{{"B", []float64{1, 2}}}); err == nil {
		t.Error("mismatched series: no error")
	}
}
