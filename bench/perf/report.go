package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// goalKind says what a goal bounds: the figure itself, or its ratio to the baseline.
type goalKind int

const (
	noGoal   goalKind = iota
	atLeast           // figure ≥ limit
	atMost            // figure ≤ limit
	ratioMin          // figure / baseline ≥ limit
)

// goal is one target of the issue.
type goal struct {
	kind  goalKind
	limit float64
	text  string // as printed, e.g. "≥ 1000/s", "≤ 5 ms at 1M"
}

// metric is one figure of a scenario, measured once per run, with the baseline measured in the
// same run when it has one.
type metric struct {
	group    string // the scenario and its size, e.g. "backlog drain n=2000"
	name     string // what is measured, e.g. "deliveries/s"
	unit     string // "/s", "%", "MB", "ms", "s", "×"
	values   []float64
	baseName string
	base     []float64 // per run, same length as values when set
	goal     goal
	notes    []string
}

// report collects the metrics in the order they are first measured.
type report struct {
	metrics []*metric
	byKey   map[string]*metric
}

// add records one run's figure (and baseline, if base is not NaN) of a metric, creating the
// metric on first use with g and baseName.
func (r *report) add(group, name, unit string, v float64, baseName string, base float64, g goal) *metric {
	if r.byKey == nil {
		r.byKey = map[string]*metric{}
	}
	k := group + "\x00" + name
	m := r.byKey[k]
	if m == nil {
		m = &metric{group: group, name: name, unit: unit, baseName: baseName, goal: g}
		r.byKey[k] = m
		r.metrics = append(r.metrics, m)
	}
	m.values = append(m.values, v)
	if !math.IsNaN(base) {
		m.base = append(m.base, base)
	}
	return m
}

// note attaches a remark (a partial run, errors) to a metric.
func (m *metric) note(format string, args ...any) {
	m.notes = append(m.notes, fmt.Sprintf(format, args...))
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ratios are the per-run ratios of the figure to its baseline.
func (m *metric) ratios() []float64 {
	var out []float64
	for i, v := range m.values {
		if i < len(m.base) && m.base[i] > 0 {
			out = append(out, v/m.base[i])
		}
	}
	return out
}

// verdict says whether the median meets the goal.
func (m *metric) verdict() string {
	var v float64
	switch m.goal.kind {
	case noGoal:
		return ""
	case ratioMin:
		v = median(m.ratios())
	default:
		v = median(m.values)
	}
	if math.IsNaN(v) {
		return "n/a"
	}
	ok := false
	switch m.goal.kind {
	case atLeast, ratioMin:
		ok = v >= m.goal.limit
	case atMost:
		ok = v <= m.goal.limit
	}
	if ok {
		return "met"
	}
	return "MISSED"
}

// format writes a figure with its unit.
func format(v float64, unit string) string {
	if math.IsNaN(v) {
		return "-"
	}
	switch unit {
	case "/s":
		if v >= 100 {
			return fmt.Sprintf("%.0f/s", v)
		}
		return fmt.Sprintf("%.1f/s", v)
	case "%":
		return fmt.Sprintf("%.2f%%", v)
	case "MB":
		return fmt.Sprintf("%.0f MB", v)
	case "ms":
		if v >= 100 {
			return fmt.Sprintf("%.0f ms", v)
		}
		return fmt.Sprintf("%.2f ms", v)
	case "s":
		return fmt.Sprintf("%.1f s", v)
	case "×":
		if v != 0 && math.Abs(v) < 0.1 {
			return fmt.Sprintf("%.2g×", v)
		}
		return fmt.Sprintf("%.2f×", v)
	}
	return fmt.Sprintf("%.3g%s", v, unit)
}

// runsText lists the per-run figures.
func runsText(xs []float64, unit string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strings.TrimSuffix(strings.TrimSuffix(format(x, unit), "/s"), " ms")
	}
	return strings.Join(parts, " ")
}

// print writes the summary table: median, runs, baseline, ratio, goal and verdict per metric,
// then the notes.
func (r *report) print(w io.Writer) {
	rows := [][]string{{"scenario", "metric", "median", "runs", "baseline (median)", "ratio", "goal", ""}}
	for _, m := range r.metrics {
		base, ratio := "", ""
		if len(m.base) > 0 {
			base = m.baseName + " " + format(median(m.base), m.unit)
			ratio = format(median(m.ratios()), "×")
		}
		rows = append(rows, []string{m.group, m.name, format(median(m.values), m.unit), runsText(m.values, m.unit),
			base, ratio, m.goal.text, m.verdict()})
	}
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	for ri, row := range rows {
		var b strings.Builder
		for i, c := range row {
			b.WriteString(c)
			if i < len(row)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-len([]rune(c))+2))
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
		if ri == 0 {
			total := 0
			for _, wd := range widths {
				total += wd + 2
			}
			fmt.Fprintln(w, strings.Repeat("─", total-2))
		}
	}
	for _, m := range r.metrics {
		for _, n := range m.notes {
			fmt.Fprintf(w, "  note: %s, %s: %s\n", m.group, m.name, n)
		}
	}
}
