// This file holds the statistics (median, percentiles) and the markdown
// table that the program prints.

package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// median returns the median of xs, NaN for none. NaN values are ignored.
func median(xs []float64) float64 {
	return percentile(xs, 50)
}

// percentile returns the p-th percentile of xs (nearest rank), NaN for
// none. NaN values are ignored.
func percentile(xs []float64, p float64) float64 {
	s := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) {
			s = append(s, x)
		}
	}
	if len(s) == 0 {
		return math.NaN()
	}
	slices.Sort(s)
	if p == 50 && len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	rank := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(rank, 0), len(s)-1)]
}

// ms converts a duration to milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// series collects one metric's values per client over the repetitions.
type series [numKinds][]float64

func (s *series) add(k kind, v float64) { s[k] = append(s[k], v) }

// row is one line of the result table: a metric's median per client.
type row struct {
	scenario string
	metric   string
	vals     [numKinds]float64
	format   string // fmt verb for a value, e.g. "%.0f"
	ratio    bool   // print ratios to bare
	// paired, when set, holds the ratios to print instead of the ratio of
	// the medians: medians of per-repetition ratios.
	paired *[numKinds]float64
}

// table is the program's one result table.
type table struct {
	rows []row
}

// add appends a row with the medians of s.
func (t *table) add(scenario, metric, format string, ratio bool, s *series) {
	r := row{scenario: scenario, metric: metric, format: format, ratio: ratio}
	for k := range r.vals {
		r.vals[k] = median(s[k])
	}
	t.rows = append(t.rows, r)
}

// addPaired appends a row with the medians of s, whose ratio columns are
// the medians of the per-repetition ratios to bare: each client's run is
// next in time to bare's, so drift in the machine's load cancels out.
func (t *table) addPaired(scenario, metric, format string, s *series) {
	t.add(scenario, metric, format, true, s)
	r := &t.rows[len(t.rows)-1]
	r.paired = new([numKinds]float64)
	for _, k := range kinds {
		r.paired[k] = pairedRatio(s, k)
	}
}

// pairedRatio is the median over repetitions of s[k][i] / s[bare][i].
func pairedRatio(s *series, k kind) float64 {
	return median(pairedRatios(s, k))
}

// pairedRatios are s[k][i] / s[bare][i] for each repetition i.
func pairedRatios(s *series, k kind) []float64 {
	var ratios []float64
	for i := range min(len(s[k]), len(s[bare])) {
		if s[bare][i] != 0 {
			ratios = append(ratios, s[k][i]/s[bare][i])
		}
	}
	return ratios
}

func (r *row) cell(k kind) string {
	v := r.vals[k]
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf(r.format, v)
}

func (r *row) ratioTo(k kind) string {
	if r.paired != nil {
		if math.IsNaN(r.paired[k]) {
			return "—"
		}
		return fmt.Sprintf("%.3f×", r.paired[k])
	}
	v, b := r.vals[k], r.vals[bare]
	if !r.ratio || math.IsNaN(v) || math.IsNaN(b) || b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", v/b)
}

// write prints t as a markdown table.
func (t *table) write(w io.Writer) {
	fmt.Fprintf(w, "| Scenario | Metric (median) | %s | %s | %s | %s ÷ bare | %s ÷ bare |\n",
		bare, retryable, ours, retryable, ours)
	fmt.Fprintln(w, "|---|---|--:|--:|--:|--:|--:|")
	last := ""
	for _, r := range t.rows {
		scen := r.scenario
		if scen == last {
			scen = ""
		}
		last = r.scenario
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s |\n", scen, r.metric,
			r.cell(bare), r.cell(retryable), r.cell(ours), r.ratioTo(retryable), r.ratioTo(ours))
	}
}

// target is one of the goals for our transport, with the verdict.
type target struct {
	name     string
	measured string
	met      bool
}

func writeTargets(w io.Writer, ts []target) {
	fmt.Fprintln(w, "| Target for neuracraft | Measured (medians) | Result |")
	fmt.Fprintln(w, "|---|---|---|")
	for _, t := range ts {
		verdict := "**missed**"
		if t.met {
			verdict = "met"
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", t.name, strings.ReplaceAll(t.measured, "|", "\\|"), verdict)
	}
}
