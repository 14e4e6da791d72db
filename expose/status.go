package expose

import (
	"bytes"
	"math"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/push-gateway/push-gateway/cache"
)

// The status page at /: what a person opening a tunnel to a device wants to
// see. Plain HTML with a style element; no script, no external asset, and
// every text that came from outside the daemon escaped. It is rendered from
// one snapshot of the cache (a scrape's, from the same pool) into one
// buffer whose size is bounded whatever the cache holds: the largest
// families and the first groups are listed, the rest counted.

// StatusSection is a table of the status page that the daemon fills with
// figures the expose package does not know of (ingest's counters, the
// remote-write state). Rows is called once per page and adds its rows to t.
type StatusSection struct {
	Title string
	Rows  func(t *StatusTable)
}

// StatusTable receives the rows of a StatusSection. Its methods append one
// row each to the page, escaped; it is valid only during the Rows call.
type StatusTable struct {
	buf []byte
	now time.Time
}

// Limits of the page.
const (
	statusFamilies = 50  // families listed, largest first
	statusGroups   = 100 // groups listed, in label order
	statusCut      = 200 // bytes shown of a name, label value or text row
	statusLabels   = 512 // bytes shown of a group's labels
	// statusPageMax bounds the page for the scrape memory budget: 100
	// groups of at most ~700 bytes, 50 families of ~350, the rest a few KiB
	// (TestStatusPageBounded).
	statusPageMax = 128 << 10
)

// statusScratch is what a page needs beside a scrape's snapshot and buffer;
// it is kept with them in the handler's pool.
type statusScratch struct {
	rank  famRanks
	table StatusTable
}

type famRank struct {
	fam    int // index in the snapshot
	series int
}

// famRanks sorts largest first, equal ones in name order (the snapshot's).
// It is for sort.Sort, whose code the daemon links already: an instance of
// slices.SortStableFunc cost 3.5 KB of binary.
type famRanks []famRank

func (r famRanks) Len() int      { return len(r) }
func (r famRanks) Swap(i, j int) { r[i], r[j] = r[j], r[i] }
func (r famRanks) Less(i, j int) bool {
	return r[i].series > r[j].series || r[i].series == r[j].series && r[i].fam < r[j].fam
}

func (h *Handler) serveStatus(w *Response, r *Request) {
	s, need := h.startCopy(w, r, "text/html; charset=utf-8", statusPageMax)
	if s == nil {
		return
	}
	defer h.endCopy(w, s, need)
	s.buf = h.appendStatus(s.buf[:0], s, time.Now())
	w.SetContentLength(int64(len(s.buf)))
	w.Write(s.buf)
}

// appendStatus appends the page, taking a snapshot into s.snap.
func (h *Handler) appendStatus(dst []byte, s *scrape, now time.Time) []byte {
	snap := &s.snap
	h.o.Cache.Snapshot(snap)
	// The budget's figures, read just after the snapshot (a copy of a few
	// counters under the lock): the snapshot holds records, not the index.
	st := h.o.Cache.Stats()
	if s.status == nil {
		s.status = new(statusScratch)
	}
	sc := s.status

	dst = str(dst, statusHead)
	dst = str(dst, `<p>`)
	if h.o.Version != "" {
		dst = appendHTML(dst, h.o.Version, false)
		dst = str(dst, " · ")
	}
	dst = str(dst, `up <span id="uptime">`)
	dst = appendDuration(dst, now.Sub(h.o.Start))
	dst = str(dst, `</span> · <a href="`)
	dst = appendHTML(dst, h.o.TelemetryPath, false)
	dst = str(dst, `">`)
	dst = appendHTML(dst, h.o.TelemetryPath, false)
	dst = str(dst, "</a> · <a href=\"/-/healthy\">/-/healthy</a> · <a href=\"/-/ready\">/-/ready</a></p>\n")

	dst = appendBudget(dst, st)
	dst = appendGroups(dst, snap, now)
	dst = appendFamilies(dst, snap, &sc.rank)

	t := &sc.table
	for _, sec := range h.o.Status {
		dst = str(dst, "<h2>")
		dst = appendHTML(dst, sec.Title, false)
		dst = str(dst, "</h2>\n<table>\n")
		t.buf, t.now = dst, now
		sec.Rows(t)
		dst, t.buf = t.buf, nil
		dst = str(dst, "</table>\n")
	}
	return str(dst, "</body></html>\n")
}

const statusHead = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>push-gateway</title>
<meta name="viewport" content="width=device-width">
<style>
body{font:14px/1.45 sans-serif;margin:1em 2em;color:#222;max-width:60em}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.15em;margin:1.2em 0 .3em}
table{border-collapse:collapse}
th,td{text-align:left;padding:2px 14px 2px 0;border-bottom:1px solid #ddd;vertical-align:top}
th,td+td{white-space:nowrap}
td.n{text-align:right;font-variant-numeric:tabular-nums}
code{font-size:.95em;word-break:break-all}
.bar{width:24em;height:1em;border:1px solid #888;background:#eee}
.bar div{height:100%;background:#3a7}.bar.hi div{background:#c33}
.more{color:#666}
</style></head><body>
<h1>push-gateway</h1>
`

// appendBudget appends the cache's section: bytes of the budget in use,
// as a number and as a bar whose width is the share used.
func appendBudget(dst []byte, st cache.Stats) []byte {
	permille := 0
	if st.Budget > 0 {
		permille = int(min(int64(st.Bytes)*1000/int64(st.Budget), 1000))
	}
	dst = str(dst, "<h2>Cache</h2>\n<div class=\"bar")
	if permille >= 900 {
		dst = str(dst, " hi")
	}
	dst = str(dst, `" id="budget"><div style="width:`)
	dst = appendTenths(dst, permille)
	dst = str(dst, `%"></div></div>`+"\n<p>Budget: ")
	dst = appendBytes(dst, int64(st.Bytes))
	dst = str(dst, " of ")
	dst = appendBytes(dst, int64(st.Budget))
	dst = str(dst, " in use: ")
	dst = appendTenths(dst, permille)
	dst = str(dst, " %</p>\n<table id=\"cache\">\n")
	dst = appendRow(dst, "Series", int64(st.Series))
	dst = appendRow(dst, "Expired", int64(st.Expired))
	dst = appendRow(dst, "Evicted to make room", int64(st.Evicted))
	dst = appendRow(dst, "Refused: larger than the budget", int64(st.TooLarge))
	return str(dst, "</table>\n")
}

// appendGroups appends a row for each group pushed through the Pushgateway
// API: its grouping labels, its push_time_seconds and
// push_failure_time_seconds, and how long it has before it expires (its
// push_time_seconds, updated by every push and failure, is the last of its
// series to go).
func appendGroups(dst []byte, snap *cache.Snapshot, now time.Time) []byte {
	dst = str(dst, "<h2>Groups</h2>\n")
	pushed, failed := findFamily(snap, cache.PushTimeName), findFamily(snap, cache.PushFailureTimeName)
	total := 0
	k := 0 // the failure series at or after the group's labels
	for i := 0; pushed != nil && i < pushed.Len(); i++ {
		se, ok := pushed.Series(i)
		if !ok || !se.Pushed() {
			continue
		}
		total++
		if total > statusGroups {
			continue
		}
		if total == 1 {
			dst = str(dst, "<table id=\"groups\">\n<tr><th>Grouping labels</th><th>Last push</th><th>Last failure</th><th>TTL left</th></tr>\n")
		}
		labels := se.Labels()
		failure := 0.0
		for failed != nil && k < failed.Len() {
			fs, ok := failed.Series(k)
			c := 1
			if ok {
				c = bytes.Compare(fs.Labels(), labels)
			}
			if c > 0 {
				break
			}
			k++
			if c == 0 {
				failure = fs.Value()
				break
			}
		}
		dst = str(dst, "<tr><td><code>")
		dst = appendLabels(dst, labels)
		dst = str(dst, "</code></td><td>")
		dst = appendUnixTime(dst, se.Value(), now)
		dst = str(dst, "</td><td>")
		dst = appendUnixTime(dst, failure, now)
		dst = str(dst, "</td><td>")
		if left, ok := snap.TTLLeft(se); ok {
			dst = appendDuration(dst, left)
		} else {
			dst = str(dst, "never (no TTL)")
		}
		dst = str(dst, "</td></tr>\n")
	}
	switch {
	case total == 0:
		return str(dst, "<p>None: nothing was pushed through the Pushgateway API, or it has expired.</p>\n")
	case total > statusGroups:
		dst = str(dst, "</table>\n<p class=\"more\">and ")
		dst = strconv.AppendInt(dst, int64(total-statusGroups), 10)
		return str(dst, " more groups</p>\n")
	}
	return str(dst, "</table>\n")
}

// appendFamilies appends the families with the most series, largest
// first, and counts the others. ranks is scratch, kept for reuse.
func appendFamilies(dst []byte, snap *cache.Snapshot, ranks *famRanks) []byte {
	rank := (*ranks)[:0]
	for i := 0; i < snap.Len(); i++ {
		f := snap.Family(i)
		n := 0
		for j := 0; j < f.Len(); j++ {
			if se, ok := f.Series(j); ok {
				n += se.Lines()
			}
		}
		rank = append(rank, famRank{fam: i, series: n})
	}
	*ranks = rank
	sort.Sort(ranks)
	dst = str(dst, "<h2>Series per family</h2>\n")
	if len(rank) == 0 {
		return str(dst, "<p>None: the cache is empty.</p>\n")
	}
	dst = str(dst, "<table id=\"families\">\n<tr><th>Family</th><th>Type</th><th>Series</th></tr>\n")
	for _, r := range rank[:min(len(rank), statusFamilies)] {
		f := snap.Family(r.fam)
		dst = str(dst, "<tr><td><code>")
		dst = appendHTML(dst, f.Name, false)
		dst = str(dst, "</code></td><td>")
		dst = str(dst, f.Type.String())
		dst = str(dst, `</td><td class="n">`)
		dst = strconv.AppendInt(dst, int64(r.series), 10)
		dst = str(dst, "</td></tr>\n")
	}
	dst = str(dst, "</table>\n")
	if rest := rank[min(len(rank), statusFamilies):]; len(rest) > 0 {
		n := 0
		for _, r := range rest {
			n += r.series
		}
		dst = str(dst, `<p class="more" id="families-rest">and `)
		dst = strconv.AppendInt(dst, int64(len(rest)), 10)
		dst = str(dst, " more families with ")
		dst = strconv.AppendInt(dst, int64(n), 10)
		dst = str(dst, " series</p>\n")
	}
	return dst
}

// findFamily returns the snapshot's family called name, or nil.
func findFamily(snap *cache.Snapshot, name string) *cache.Family {
	lo, hi := 0, snap.Len()
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if string(snap.Family(m).Name) < name {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo < snap.Len() && string(snap.Family(lo).Name) == name {
		return snap.Family(lo)
	}
	return nil
}

// appendLabels appends an encoded label set as name="value", ... with the
// values escaped as in the text format, then for HTML; past statusLabels
// bytes the rest is cut.
func appendLabels(dst, labels []byte) []byte {
	start := len(dst)
	for first := true; ; first = false {
		name, value, rest, ok := cache.NextLabel(labels)
		if !ok {
			return dst
		}
		if len(dst)-start > statusLabels {
			return str(dst, ", …")
		}
		if !first {
			dst = str(dst, ", ")
		}
		dst = appendHTML(dst, name, false)
		dst = str(dst, `=&#34;`)
		dst = appendHTML(dst, value, true)
		dst = str(dst, `&#34;`)
		labels = rest
	}
}

// appendHTML appends s escaped for HTML text or a quoted attribute, cut
// at statusCut bytes (on a character boundary) with an ellipsis. With
// label set, it first escapes as the text format does a label value
// (backslash, double quote, newline), so that a value reads as in the
// exposition.
func appendHTML[T string | []byte](dst []byte, s T, label bool) []byte {
	cut := len(s) > statusCut
	if cut {
		// Back to the start of the character at the cut: at most 3 bytes,
		// also in bytes that are not UTF-8.
		n := statusCut
		for n > statusCut-utf8.UTFMax+1 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '&':
			dst = str(dst, "&amp;")
		case c == '<':
			dst = str(dst, "&lt;")
		case c == '>':
			dst = str(dst, "&gt;")
		case c == '"' && label:
			dst = str(dst, `\&#34;`)
		case c == '"':
			dst = str(dst, "&#34;")
		case c == '\'':
			dst = str(dst, "&#39;")
		case c == '\\' && label:
			dst = str(dst, `\\`)
		case c == '\n' && label:
			dst = str(dst, `\n`)
		default:
			dst = append(dst, c)
		}
	}
	if cut {
		dst = str(dst, "…")
	}
	return dst
}

// str is append(dst, s...) as a call: the page appends some eighty
// strings, and each inlined append costs about 60 bytes of binary more.
//
//go:noinline
func str(dst []byte, s string) []byte { return append(dst, s...) }

func appendRow(dst []byte, name string, v int64) []byte {
	dst = str(dst, "<tr><th>")
	dst = appendHTML(dst, name, false)
	dst = str(dst, `</th><td class="n">`)
	dst = strconv.AppendInt(dst, v, 10)
	return str(dst, "</td></tr>\n")
}

// appendTenths appends p tenths with one decimal: 425 is 42.5.
func appendTenths(dst []byte, p int) []byte {
	dst = strconv.AppendInt(dst, int64(p/10), 10)
	return append(dst, '.', byte('0'+p%10))
}

// appendBytes appends n in bytes, with KiB or MiB beside it from 1 KiB on.
func appendBytes(dst []byte, n int64) []byte {
	dst = strconv.AppendInt(dst, n, 10)
	dst = str(dst, " B")
	unit, div := " MiB)", int64(1<<20)
	switch {
	case n < 1<<10:
		return dst
	case n < 1<<20:
		unit, div = " KiB)", 1<<10
	}
	dst = str(dst, " (")
	dst = appendTenths(dst, int(n*10/div))
	return str(dst, unit)
}

// appendDuration appends d rounded down to the second in its two largest
// units: 45s, 3m05s, 2h03m, 4d02h.
func appendDuration(dst []byte, d time.Duration) []byte {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	two := func(dst []byte, v int64, unit byte) []byte {
		if v < 10 {
			dst = append(dst, '0')
		}
		return append(strconv.AppendInt(dst, v, 10), unit)
	}
	switch {
	case s < 60:
		return append(strconv.AppendInt(dst, s, 10), 's')
	case s < 3600:
		return two(append(strconv.AppendInt(dst, s/60, 10), 'm'), s%60, 's')
	case s < 86400:
		return two(append(strconv.AppendInt(dst, s/3600, 10), 'h'), s/60%60, 'm')
	}
	return two(append(strconv.AppendInt(dst, s/86400, 10), 'd'), s/3600%24, 'h')
}

// appendUnixTime appends a time given in Unix seconds (a push_time_seconds
// value) in UTC and how long ago it was; 0 is never.
func appendUnixTime(dst []byte, sec float64, now time.Time) []byte {
	if sec <= 0 || math.IsNaN(sec) || sec > 1e11 {
		return str(dst, "never")
	}
	return appendTime(dst, time.UnixMilli(int64(sec*1000)), now)
}

func appendTime(dst []byte, t, now time.Time) []byte {
	dst = t.UTC().AppendFormat(dst, "2006-01-02 15:04:05 UTC")
	dst = str(dst, " (")
	if d := now.Sub(t); d >= 0 {
		dst = appendDuration(dst, d)
		dst = str(dst, " ago")
	} else {
		dst = str(dst, "in ")
		dst = appendDuration(dst, -d)
	}
	return append(dst, ')')
}

// Text adds a row whose value is text, such as the last error.
func (t *StatusTable) Text(name, value string) {
	t.buf = str(t.buf, "<tr><th>")
	t.buf = appendHTML(t.buf, name, false)
	t.buf = str(t.buf, "</th><td>")
	t.buf = appendHTML(t.buf, value, false)
	t.buf = str(t.buf, "</td></tr>\n")
}

// Int adds a row whose value is a count or a gauge.
func (t *StatusTable) Int(name string, v int64) { t.buf = appendRow(t.buf, name, v) }

// Uint adds a row whose value is a counter.
func (t *StatusTable) Uint(name string, v uint64) {
	t.buf = appendRow(t.buf, name, int64(min(v, math.MaxInt64)))
}

// Bytes adds a row whose value is a size in bytes.
func (t *StatusTable) Bytes(name string, n int64) {
	t.buf = str(t.buf, "<tr><th>")
	t.buf = appendHTML(t.buf, name, false)
	t.buf = str(t.buf, `</th><td class="n">`)
	t.buf = appendBytes(t.buf, n)
	t.buf = str(t.buf, "</td></tr>\n")
}

// Time adds a row whose value is a moment, shown in UTC with how long ago
// it was; the zero Time is shown as never.
func (t *StatusTable) Time(name string, at time.Time) {
	t.buf = str(t.buf, "<tr><th>")
	t.buf = appendHTML(t.buf, name, false)
	t.buf = str(t.buf, "</th><td>")
	if at.IsZero() {
		t.buf = str(t.buf, "never")
	} else {
		t.buf = appendTime(t.buf, at, t.now)
	}
	t.buf = str(t.buf, "</td></tr>\n")
}
