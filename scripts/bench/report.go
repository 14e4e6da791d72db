package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// table is one workload's Markdown table: a row per measure, a column per
// daemon, and a ratio column (ours ÷ other) per other daemon.
type table struct {
	title string
	notes []string
	rows  []*row
}

type row struct {
	label   string
	cells   map[kind]cell
	noRatio bool
}

type cell struct {
	v    float64
	text string
	ok   bool // v is a number a ratio can use
}

func (b *bench) newTable(title string, notes ...string) *table {
	t := &table{title: title, notes: notes}
	b.tables = append(b.tables, t)
	return t
}

func (t *table) row(label string) *row {
	for _, r := range t.rows {
		if r.label == label {
			return r
		}
	}
	r := &row{label: label, cells: map[kind]cell{}}
	t.rows = append(t.rows, r)
	return r
}

// set records a number and its text; the row has ratios.
func (t *table) set(label string, k kind, v float64, text string) {
	t.row(label).cells[k] = cell{v: v, text: text, ok: true}
}

// text records a cell with no ratio (counts, notes, errors).
func (t *table) text(label string, k kind, text string) {
	r := t.row(label)
	r.noRatio = true
	r.cells[k] = cell{text: text}
}

// markdown renders the table for the targets of the run.
func (t *table) markdown(targets []*target) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "### %s\n\n", t.title)
	for _, n := range t.notes {
		sb.WriteString(n + "\n")
	}
	if len(t.notes) > 0 {
		sb.WriteString("\n")
	}
	sb.WriteString("| |")
	for _, tg := range targets {
		sb.WriteString(" " + tg.name + " |")
	}
	for _, tg := range targets[1:] {
		sb.WriteString(" ours ÷ " + tg.name + " |")
	}
	sb.WriteString("\n|---|")
	for range len(targets)*2 - 1 {
		sb.WriteString("---|")
	}
	sb.WriteString("\n")
	// Error rows go last.
	rows := make([]*row, 0, len(t.rows))
	for _, r := range t.rows {
		if r.label != "error" {
			rows = append(rows, r)
		}
	}
	for _, r := range t.rows {
		if r.label == "error" {
			rows = append(rows, r)
		}
	}
	for _, r := range rows {
		sb.WriteString("| " + r.label + " |")
		for _, tg := range targets {
			c, ok := r.cells[tg.kind]
			if !ok {
				sb.WriteString(" — |")
				continue
			}
			sb.WriteString(" " + c.text + " |")
		}
		o, haveOurs := r.cells[ours]
		for _, tg := range targets[1:] {
			c, ok := r.cells[tg.kind]
			if r.noRatio || !haveOurs || !ok || !o.ok || !c.ok || c.v <= 0 || o.v < 0 {
				sb.WriteString(" |")
				continue
			}
			sb.WriteString(" " + fmtRatio(o.v/c.v) + " |")
		}
		sb.WriteString("\n")
	}
	return sb.String()
}

// fmtInt writes n with thousands separators.
func fmtInt(n int64) string {
	neg := n < 0
	if neg {
		n = -n
	}
	s := strconv.FormatInt(n, 10)
	var sb strings.Builder
	if neg {
		sb.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			sb.WriteByte(',')
		}
		sb.WriteRune(c)
	}
	return sb.String()
}

func fmtKB(kb int64) string { return fmtInt(kb) + " kB" }

// fmtSigned writes a kB difference with its sign.
func fmtSignedKB(kb int64) string {
	if kb > 0 {
		return "+" + fmtKB(kb)
	}
	return fmtKB(kb)
}

func fmtRate(perSec float64) string { return fmtInt(int64(math.Round(perSec))) + "/s" }

func fmtNs(ns float64) string {
	if ns < 100 {
		return fmt.Sprintf("%.1f ns", ns)
	}
	return fmtInt(int64(math.Round(ns))) + " ns"
}

func fmtLatency(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}

// fmtRatio writes ours ÷ other; below 1 also as the fraction 1/N that the
// issue's targets use.
func fmtRatio(r float64) string {
	switch {
	case r >= 10:
		return fmt.Sprintf("%.0f×", r)
	case r >= 1:
		return fmt.Sprintf("%.2f×", r)
	case r >= 0.1:
		return fmt.Sprintf("%.2f× (1/%.1f)", r, 1/r)
	case r >= 0.01:
		return fmt.Sprintf("%.3f× (1/%.0f)", r, 1/r)
	case r > 0:
		return fmt.Sprintf("%.4f× (1/%.0f)", r, 1/r)
	default:
		return "0×"
	}
}
