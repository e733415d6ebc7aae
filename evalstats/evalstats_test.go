package evalstats

import (
	"encoding/json"
	"math"
	"os"
	"slices"
	"testing"
)

// reference is testdata/reference.json, written by scripts/evalstats_reference.py.
type reference struct {
	Paper []struct {
		Model, Opponent, Ratio float64
		Percent                string
	}
	Paired []struct {
		Name        string
		Model       []float64
		Opponent    []float64
		Categories  []string
		Relative    Relative
		WinTieLoss  WinTieLoss `json:"win_tie_loss"`
		ByCategory  []Category `json:"by_category"`
		Bootstrap95 struct {
			Low, High float64
			Resamples int
		} `json:"bootstrap_95"`
	}
	Quantiles []struct {
		Sorted   []float64
		Q, Value float64
	}
	Rouge []struct {
		Reference, Prediction string
		ReferenceTokens       []string `json:"reference_tokens"`
		PredictionTokens      []string `json:"prediction_tokens"`
		Precision, Recall, F  float64
	}
	Buckets struct {
		References  []string
		Predictions []string
		Buckets     []Bucket
		MeanF       float64 `json:"mean_f"`
	}
}

func loadReference(t *testing.T) reference {
	t.Helper()
	b, err := os.ReadFile("testdata/reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Paired) == 0 || len(ref.Rouge) == 0 || len(ref.Quantiles) == 0 || len(ref.Paper) == 0 {
		t.Fatal("reference.json is missing cases")
	}
	return ref
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// The paper's published sums: LLaMA-GPT4 R1 624 : 667 = 94% of ChatGPT, and 606 : 726.5 = 83%.
func TestPaperSums(t *testing.T) {
	for _, p := range loadReference(t).Paper {
		r, err := RelativeScore([]float64{p.Model}, []float64{p.Opponent})
		if err != nil {
			t.Fatal(err)
		}
		if !near(float64(r.Ratio), p.Ratio, 1e-15) || FormatPercent(float64(r.Ratio)) != p.Percent {
			t.Errorf("%v : %v = %v (%s), want %v (%s)", p.Model, p.Opponent, r.Ratio, FormatPercent(float64(r.Ratio)), p.Ratio, p.Percent)
		}
	}
	r, _ := RelativeScore([]float64{300, 306}, []float64{363, 363.5})
	if got, want := r.String(), "606 : 726.5 = 83%"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestPairedAgainstPython(t *testing.T) {
	for _, c := range loadReference(t).Paired {
		t.Run(c.Name, func(t *testing.T) {
			r, err := RelativeScore(c.Model, c.Opponent)
			if err != nil {
				t.Fatal(err)
			}
			if r.N != c.Relative.N || !near(r.Model, c.Relative.Model, 1e-9) || !near(r.Opponent, c.Relative.Opponent, 1e-9) ||
				!near(float64(r.Ratio), float64(c.Relative.Ratio), 1e-12) {
				t.Errorf("relative %+v, python %+v", r, c.Relative)
			}
			w, _ := CountWinTieLoss(c.Model, c.Opponent)
			if w != c.WinTieLoss {
				t.Errorf("win/tie/loss %+v, python %+v", w, c.WinTieLoss)
			}
			cats, err := ByCategory(c.Categories, c.Model, c.Opponent)
			if err != nil {
				t.Fatal(err)
			}
			if len(cats) != len(c.ByCategory) {
				t.Fatalf("%d categories, python %d", len(cats), len(c.ByCategory))
			}
			for i, g := range cats {
				p := c.ByCategory[i]
				if g.Category != p.Category || g.WinTieLoss != p.WinTieLoss || g.Relative.N != p.Relative.N ||
					!near(float64(g.Relative.Ratio), float64(p.Relative.Ratio), 1e-12) {
					t.Errorf("category %+v, python %+v", g, p)
				}
			}
			// Different random streams: the Go interval (20,000 resamples) must agree with Python's (100,000)
			// within Monte Carlo error (about 0.0006 in the ratio at 20,000 resamples for these data).
			iv, err := BootstrapRatio(c.Model, c.Opponent, BootstrapOptions{Resamples: 20000, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			tol := 0.003
			if len(c.Model) < 20 {
				tol = 0.008
			}
			if !near(float64(iv.Low), c.Bootstrap95.Low, tol) || !near(float64(iv.High), c.Bootstrap95.High, tol) {
				t.Errorf("95%% interval [%.4f, %.4f], python [%.4f, %.4f]", iv.Low, iv.High, c.Bootstrap95.Low, c.Bootstrap95.High)
			}
			if iv.Low > r.Ratio || iv.High < r.Ratio {
				t.Errorf("interval [%v, %v] does not hold the point estimate %v", iv.Low, iv.High, r.Ratio)
			}
			again, _ := BootstrapRatio(c.Model, c.Opponent, BootstrapOptions{Resamples: 20000, Seed: 1})
			if again != iv {
				t.Errorf("same seed gave %+v then %+v", iv, again)
			}
		})
	}
}

func TestQuantileAgainstPython(t *testing.T) {
	for _, c := range loadReference(t).Quantiles {
		if got := Quantile(c.Sorted, c.Q); !near(got, c.Value, 1e-12) {
			t.Errorf("Quantile(n=%d, %v) = %v, python %v", len(c.Sorted), c.Q, got, c.Value)
		}
	}
}

func TestRougeLAgainstPython(t *testing.T) {
	ref := loadReference(t)
	for _, c := range ref.Rouge {
		if got := RougeTokens(c.Reference); !slices.Equal(got, c.ReferenceTokens) && len(got)+len(c.ReferenceTokens) > 0 {
			t.Errorf("RougeTokens(%q) = %q, python %q", c.Reference, got, c.ReferenceTokens)
		}
		if got := RougeTokens(c.Prediction); !slices.Equal(got, c.PredictionTokens) && len(got)+len(c.PredictionTokens) > 0 {
			t.Errorf("RougeTokens(%q) = %q, python %q", c.Prediction, got, c.PredictionTokens)
		}
		s := RougeL(c.Reference, c.Prediction)
		if !near(s.Precision, c.Precision, 1e-12) || !near(s.Recall, c.Recall, 1e-12) || !near(s.F, c.F, 1e-12) {
			t.Errorf("RougeL(%q, %q) = %+v, python %v %v %v", c.Reference, c.Prediction, s, c.Precision, c.Recall, c.F)
		}
	}
	// rouge-score's README publishes this one: rougeL precision 0.625, recall 0.5556, fmeasure 0.5882.
	s := RougeL("The quick brown fox jumps over the lazy dog", "The quick brown dog jumps on the log.")
	if !near(s.Precision, 0.625, 1e-12) || !near(s.Recall, 0.5556, 5e-5) || !near(s.F, 0.5882, 5e-5) {
		t.Errorf("README example: %+v", s)
	}

	b := ref.Buckets
	buckets, mean, items, err := RougeLBuckets(b.References, b.Predictions, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != len(b.References) || !near(mean, b.MeanF, 1e-12) {
		t.Errorf("mean F %v over %d items, python %v", mean, len(items), b.MeanF)
	}
	if len(buckets) != len(b.Buckets) {
		t.Fatalf("%d buckets, python %d", len(buckets), len(b.Buckets))
	}
	for i := range buckets {
		if buckets[i].Bucket != b.Buckets[i].Bucket || buckets[i].N != b.Buckets[i].N || !near(buckets[i].MeanF, b.Buckets[i].MeanF, 1e-12) {
			t.Errorf("bucket %+v, python %+v", buckets[i], b.Buckets[i])
		}
	}
}

func TestUnicodeTokens(t *testing.T) {
	got := UnicodeTokens("北京是中国的首都, Café au-lait 42!")
	want := []string{"北", "京", "是", "中", "国", "的", "首", "都", "café", "au", "lait", "42"}
	if !slices.Equal(got, want) {
		t.Errorf("UnicodeTokens = %q, want %q", got, want)
	}
	// rouge-score sees nothing in Chinese; the Unicode tokenizer does.
	if s := RougeL("北京是中国的首都", "北京是首都"); s.F != 0 {
		t.Errorf("rouge-score tokens of Chinese: F %v, want 0", s.F)
	}
	s := RougeLTokens(UnicodeTokens("北京是中国的首都"), UnicodeTokens("北京是首都"))
	if !near(s.Precision, 1, 1e-12) || !near(s.Recall, 5.0/8, 1e-12) {
		t.Errorf("Chinese characters: %+v, want precision 1, recall 5/8", s)
	}
}

func TestEdgeCases(t *testing.T) {
	if _, err := RelativeScore([]float64{1}, nil); err == nil {
		t.Error("RelativeScore of unequal lengths: no error")
	}
	if _, err := BootstrapRatio(nil, nil, BootstrapOptions{}); err == nil {
		t.Error("BootstrapRatio of nothing: no error")
	}
	if _, err := BootstrapRatio([]float64{0}, []float64{0}, BootstrapOptions{}); err == nil {
		t.Error("BootstrapRatio of all zeros: no error")
	}
	if _, err := BootstrapRatio([]float64{1}, []float64{1}, BootstrapOptions{Level: 1.5}); err == nil {
		t.Error("level 1.5: no error")
	}
	r, _ := RelativeScore([]float64{3}, []float64{0})
	if b, err := json.Marshal(r); err != nil || string(b) != `{"n":1,"model":3,"opponent":0,"ratio":null}` {
		t.Errorf("json of an infinite ratio: %s, %v", b, err)
	}
	// A model with all the points: the interval excludes parity.
	m := []float64{9, 8, 9, 10, 9, 8, 9, 9, 10, 9}
	o := []float64{5, 6, 4, 5, 6, 5, 4, 6, 5, 5}
	iv, err := BootstrapRatio(m, o, BootstrapOptions{Seed: 3})
	if err != nil || !iv.Excludes(1) || iv.Low < 1.5 {
		t.Errorf("clear win: %+v, %v", iv, err)
	}
	for n, want := range map[int]string{0: "0-2", 2: "0-2", 3: "3-5", 5: "3-5", 6: "6-10", 10: "6-10", 11: ">10"} {
		if got := BucketOf(n); got != want {
			t.Errorf("BucketOf(%d) = %s, want %s", n, got, want)
		}
	}
}
