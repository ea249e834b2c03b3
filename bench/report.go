// This file holds the one statistics helper (quantiles: median and
// interquartile range) and the markdown table that the program prints.

package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// quantile returns the q-quantile of xs (0 ≤ q ≤ 1), interpolating
// linearly between the two nearest order statistics (R's type 7, the
// default of R and NumPy): the median of an even count is the mean of the
// middle two. NaN values are ignored; with none left it returns NaN.
func quantile(xs []float64, q float64) float64 {
	s := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) {
			s = append(s, x)
		}
	}
	if len(s) == 0 || math.IsNaN(q) {
		return math.NaN()
	}
	slices.Sort(s)
	pos := min(max(q, 0), 1) * float64(len(s)-1)
	lo := int(pos)
	if lo >= len(s)-1 {
		return s[len(s)-1]
	}
	return s[lo] + (pos-float64(lo))*(s[lo+1]-s[lo])
}

// median is quantile(xs, 0.5).
func median(xs []float64) float64 { return quantile(xs, 0.5) }

// summary is a sample's median and interquartile range.
type summary struct {
	median, q1, q3 float64
}

// summarize returns the median and quartiles of xs (see quantile).
func summarize(xs []float64) summary {
	return summary{median: quantile(xs, 0.5), q1: quantile(xs, 0.25), q3: quantile(xs, 0.75)}
}

// ms converts a duration to milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// series collects one metric's values per client over the repetitions.
type series [numKinds][]float64

func (s *series) add(k kind, v float64) { s[k] = append(s[k], v) }

// pairedRatios are s[k][i] / s[bare][i] for each repetition i: each
// client's run is next in time to bare's, so drift in the machine's load
// cancels out.
func pairedRatios(s *series, k kind) []float64 {
	var ratios []float64
	for i := range min(len(s[k]), len(s[bare])) {
		if s[bare][i] != 0 {
			ratios = append(ratios, s[k][i]/s[bare][i])
		}
	}
	return ratios
}

// row is one line of the result table: a metric's cell per client.
type row struct {
	scenario string
	metric   string
	cells    [numKinds]string
}

// table is the program's one result table.
type table struct {
	rows []row
}

// add appends a row with the median of s for each client, printed with
// format (e.g. "%.0f"); "—" where a client has no value.
func (t *table) add(scenario, metric, format string, s *series) {
	r := row{scenario: scenario, metric: metric}
	for _, k := range kinds {
		r.cells[k] = cell(format, median(s[k]))
	}
	t.rows = append(t.rows, r)
}

// addPaired appends a row with, for each client, the median and
// interquartile range of its per-repetition ratios to bare (see
// pairedRatios).
func (t *table) addPaired(scenario, metric string, s *series) {
	r := row{scenario: scenario, metric: metric}
	for _, k := range kinds {
		sum := summarize(pairedRatios(s, k))
		if math.IsNaN(sum.median) {
			r.cells[k] = "—"
			continue
		}
		r.cells[k] = fmt.Sprintf("%.3f (%.3f–%.3f)", sum.median, sum.q1, sum.q3)
	}
	t.rows = append(t.rows, r)
}

func cell(format string, v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	return fmt.Sprintf(format, v)
}

// write prints t as a markdown table, one column per client.
func (t *table) write(w io.Writer) {
	var head, align strings.Builder
	for _, k := range kinds {
		fmt.Fprintf(&head, " %s |", k)
		align.WriteString("--:|")
	}
	fmt.Fprintf(w, "| Scenario | Metric (median) |%s\n", head.String())
	fmt.Fprintf(w, "|---|---|%s\n", align.String())
	last := ""
	for _, r := range t.rows {
		scen := r.scenario
		if scen == last {
			scen = ""
		}
		last = r.scenario
		fmt.Fprintf(w, "| %s | %s |", scen, r.metric)
		for _, k := range kinds {
			fmt.Fprintf(w, " %s |", strings.ReplaceAll(r.cells[k], "|", "\\|"))
		}
		fmt.Fprintln(w)
	}
}
