package pipeline

import (
	"bytes"
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/bestofn/bestofn/evalplot"
)

// ABReportPlot draws the report: the win rates (unpaired and, when there are, paired) in percent with their 95%
// intervals and a dashed line at parity (50%) on the left, each variant's p50/p95/p99 latency on the right. It
// returns the figure as SVG and PNG.
func ABReportPlot(rep *ABReport) (evalplot.Figure, error) {
	left, err := winRatePlot(rep)
	if err != nil {
		return evalplot.Figure{}, err
	}
	right, err := latencyPlot(rep)
	if err != nil {
		return evalplot.Figure{}, err
	}
	var fig evalplot.Figure
	const w, h = 24 * vg.Centimeter, 10 * vg.Centimeter
	for _, format := range []string{"svg", "png"} {
		var c vg.CanvasWriterTo
		switch format {
		case "svg":
			c = vgsvg.New(w, h)
		default:
			c = vgimg.PngCanvas{Canvas: vgimg.New(w, h)}
		}
		dc := draw.New(c)
		tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Centimeter, PadTop: vg.Points(4), PadBottom: vg.Points(4)}
		plots := [][]*plot.Plot{{left, right}}
		canvases := plot.Align(plots, tiles, dc)
		left.Draw(canvases[0][0])
		right.Draw(canvases[0][1])
		var buf bytes.Buffer
		if _, err := c.WriteTo(&buf); err != nil {
			return evalplot.Figure{}, fmt.Errorf("pipeline: plot %s: %w", format, err)
		}
		if format == "svg" {
			fig.SVG = buf.Bytes()
		} else {
			fig.PNG = buf.Bytes()
		}
	}
	return fig, nil
}

func winRatePlot(rep *ABReport) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s vs %s: win rate", rep.Treatment, rep.Control)
	p.Y.Label.Text = "win rate (%), 95% CI"
	p.Add(plotter.NewGrid())
	var names []string
	var vals plotter.Values
	var whiskers plotter.YErrors
	var xys plotter.XYs
	for _, w := range []*WinRate{rep.WinRate, rep.Paired} {
		if w == nil {
			continue
		}
		names = append(names, fmt.Sprintf("%s (n=%d)", w.Method, w.N))
		v := 100 * w.Value
		vals = append(vals, v)
		xys = append(xys, plotter.XY{X: float64(len(vals) - 1), Y: v})
		whiskers = append(whiskers, struct{ Low, High float64 }{v - 100*w.CI95[0], 100*w.CI95[1] - v})
	}
	if len(vals) == 0 {
		names, vals = []string{"no judged answers"}, plotter.Values{0}
	}
	bc, err := plotter.NewBarChart(vals, vg.Points(36))
	if err != nil {
		return nil, fmt.Errorf("pipeline: plot: %w", err)
	}
	bc.Color = color.RGBA{0, 114, 178, 255}
	bc.LineStyle.Width = 0
	p.Add(bc)
	if len(xys) > 0 {
		eb, err := plotter.NewYErrorBars(struct {
			plotter.XYs
			plotter.YErrors
		}{xys, whiskers})
		if err != nil {
			return nil, fmt.Errorf("pipeline: plot: %w", err)
		}
		eb.LineStyle.Width = vg.Points(1.2)
		eb.CapWidth = vg.Points(10)
		p.Add(eb)
	}
	parity, _ := plotter.NewLine(plotter.XYs{{X: -0.5, Y: 50}, {X: float64(len(vals)) - 0.5, Y: 50}})
	parity.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	parity.Color = color.Gray{Y: 90}
	p.Add(parity)
	p.NominalX(names...)
	p.Y.Min, p.Y.Max = 0, 100
	return p, nil
}

func latencyPlot(rep *ABReport) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "end-to-end latency"
	p.Y.Label.Text = "seconds"
	p.Add(plotter.NewGrid())
	quantiles := []string{"p50", "p95", "p99"}
	colors := []color.RGBA{{0, 114, 178, 255}, {230, 159, 0, 255}}
	const width = 18
	top := 0.0
	for i, v := range rep.Variants {
		vals := plotter.Values{0, 0, 0}
		if l := v.Latency; l != nil {
			vals = plotter.Values{finiteOr0(l.P50S), finiteOr0(l.P95S), finiteOr0(l.P99S)}
		}
		for _, x := range vals {
			top = math.Max(top, x)
		}
		bc, err := plotter.NewBarChart(vals, vg.Points(width))
		if err != nil {
			return nil, fmt.Errorf("pipeline: plot: %w", err)
		}
		bc.Color = colors[i%len(colors)]
		bc.LineStyle.Width = 0
		bc.Offset = vg.Points(width * (float64(i) - float64(len(rep.Variants)-1)/2))
		p.Add(bc)
		p.Legend.Add(v.Variant, bc)
	}
	p.Legend.Top = true
	p.Legend.Left = true
	p.NominalX(quantiles...)
	p.X.Min, p.X.Max = -0.7, 2.7
	p.Y.Min, p.Y.Max = 0, math.Max(top*1.3, 1e-3) // room for the legend above the bars
	return p, nil
}

func finiteOr0(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}
