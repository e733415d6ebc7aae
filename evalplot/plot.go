package evalplot

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Bar is one group's relative score in percent (94 for 94%) with its interval.
type Bar struct {
	Group string
	// Percent is the relative score; Low and High its interval, in percent. NaN values are drawn as missing.
	Percent, Low, High float64
	// Note, when set, is printed under the group's name (e.g. "judged 78/80").
	Note string
}

// Series is one group's values over the Fig. 6 buckets.
type Series struct {
	Group  string
	Values []float64
}

// Figure is a rendered plot in both formats.
type Figure struct {
	SVG, PNG []byte
}

// Size of the figures.
const (
	width  = 16 * vg.Centimeter
	height = 10 * vg.Centimeter
)

// palette is colour-blind safe (Okabe and Ito).
var palette = []color.RGBA{
	{0, 114, 178, 255}, {230, 159, 0, 255}, {0, 158, 115, 255}, {204, 121, 167, 255},
	{86, 180, 233, 255}, {213, 94, 0, 255}, {240, 228, 66, 255}, {0, 0, 0, 255},
}

// RelativeScores draws Fig. 4: one bar per group, whiskers for the interval, a dashed line at 100%.
func RelativeScores(title, opponent string, bars []Bar) (Figure, error) {
	if len(bars) == 0 {
		return Figure{}, errors.New("evalplot: no groups to plot")
	}
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = "relative score vs " + opponent + " (%)"
	p.Add(plotter.NewGrid())
	vals := make(plotter.Values, len(bars))
	errs := errBars{}
	names := make([]string, len(bars))
	top := 100.0
	for i, b := range bars {
		names[i] = b.Group
		if b.Note != "" {
			names[i] += "\n" + b.Note
		}
		vals[i] = finite(b.Percent)
		if !math.IsNaN(b.Low) && !math.IsNaN(b.High) && !math.IsNaN(b.Percent) && !math.IsInf(b.High, 0) {
			errs = append(errs, errBar{x: float64(i), y: b.Percent, low: b.Percent - b.Low, high: b.High - b.Percent})
			top = math.Max(top, b.High)
		}
		top = math.Max(top, vals[i])
	}
	bc, err := plotter.NewBarChart(vals, vg.Points(28))
	if err != nil {
		return Figure{}, fmt.Errorf("evalplot: %w", err)
	}
	bc.Color = palette[0]
	bc.LineStyle.Width = 0
	p.Add(bc)
	if len(errs) > 0 {
		eb, err := plotter.NewYErrorBars(errs)
		if err != nil {
			return Figure{}, fmt.Errorf("evalplot: %w", err)
		}
		eb.LineStyle.Width = vg.Points(1.2)
		eb.CapWidth = vg.Points(10)
		p.Add(eb)
	}
	parity, _ := plotter.NewLine(plotter.XYs{{X: -0.5, Y: 100}, {X: float64(len(bars)) - 0.5, Y: 100}})
	parity.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	parity.Color = color.Gray{Y: 90}
	p.Add(parity)
	labelY := make([]float64, len(bars))
	for i := range labelY {
		labelY[i] = vals[i]
	}
	for _, e := range errs {
		labelY[int(e.x)] = e.y + e.high
	}
	for i, b := range bars {
		label := "n/a"
		if !math.IsNaN(b.Percent) && !math.IsInf(b.Percent, 0) {
			label = fmt.Sprintf("%.0f%%", b.Percent)
		}
		l, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: float64(i), Y: labelY[i]}}, Labels: []string{label}})
		if err == nil {
			l.Offset = vg.Point{X: vg.Points(-3.2 * float64(len(label))), Y: vg.Points(4)}
			p.Add(l)
		}
	}
	p.NominalX(names...)
	p.Y.Min = 0
	p.Y.Max = math.Ceil(top*1.12/10) * 10
	return render(p)
}

// RougeBuckets draws Fig. 6: for each bucket, one bar per group (mean ROUGE-L F, 0-1).
func RougeBuckets(title string, buckets []string, series []Series) (Figure, error) {
	if len(series) == 0 || len(buckets) == 0 {
		return Figure{}, errors.New("evalplot: no ROUGE-L series to plot")
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "reference length (words)"
	p.Add(plotter.NewGrid())
	p.Y.Label.Text = "ROUGE-L F"
	// One more unit on the right holds the legend; each bucket's bars fill 80% of its unit (the data area is
	// about 80% of the figure's width).
	units := float64(len(buckets)) + 1
	w := vg.Length(math.Min(24, float64(width)*0.8/units*0.8/float64(len(series))))
	top := 0.0
	for i, s := range series {
		if len(s.Values) != len(buckets) {
			return Figure{}, fmt.Errorf("evalplot: series %q has %d values for %d buckets", s.Group, len(s.Values), len(buckets))
		}
		vals := make(plotter.Values, len(s.Values))
		for j, v := range s.Values {
			vals[j] = finite(v)
			top = math.Max(top, vals[j])
		}
		bc, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return Figure{}, fmt.Errorf("evalplot: %w", err)
		}
		bc.Color = palette[i%len(palette)]
		bc.LineStyle.Width = 0
		bc.Offset = w * vg.Length(float64(i)-float64(len(series)-1)/2)
		p.Add(bc)
		p.Legend.Add(s.Group, bc)
	}
	p.Legend.Top = true
	p.NominalX(buckets...)
	p.X.Min, p.X.Max = -0.5, units-0.5
	p.Y.Min = 0
	p.Y.Max = math.Max(0.1, math.Ceil(top*1.25*10)/10)
	return render(p)
}

func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}

func render(p *plot.Plot) (Figure, error) {
	var f Figure
	for _, format := range []string{"svg", "png"} {
		wt, err := p.WriterTo(width, height, format)
		if err != nil {
			return Figure{}, fmt.Errorf("evalplot: %s: %w", format, err)
		}
		var buf bytes.Buffer
		if _, err := wt.WriteTo(&buf); err != nil {
			return Figure{}, fmt.Errorf("evalplot: %s: %w", format, err)
		}
		if format == "svg" {
			f.SVG = buf.Bytes()
		} else {
			f.PNG = buf.Bytes()
		}
	}
	return f, nil
}

// errBar is one whisker; errBars implements plotter.XYer and plotter.YErrorer.
type errBar struct{ x, y, low, high float64 }

type errBars []errBar

func (e errBars) Len() int                        { return len(e) }
func (e errBars) XY(i int) (float64, float64)     { return e[i].x, e[i].y }
func (e errBars) YError(i int) (float64, float64) { return e[i].low, e[i].high }
