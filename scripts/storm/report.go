package main

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// printReport writes the Markdown table.
func printReport(w io.Writer, c *config, r *result) {
	row := func(k, format string, args ...any) {
		fmt.Fprintf(w, "| %s | %s |\n", k, fmt.Sprintf(format, args...))
	}
	self := func(k string) string {
		if r.self == nil {
			return "n/a"
		}
		v, ok := r.self[k]
		if !ok || v < 0 {
			return "absent"
		}
		return commas(int64(v))
	}
	var shown []string
	for _, a := range r.args {
		switch {
		case strings.HasPrefix(a, "--ingest.socket="):
			a = "--ingest.socket=$TMP/push.sock"
		case strings.HasPrefix(a, "--web.listen-address="):
			a = "--web.listen-address=127.0.0.1:$PORT"
		}
		shown = append(shown, a)
	}

	// Memory.
	var at2 memSample
	var minRSS, maxRSS, peakFDs, peakThreads, hwm int64
	found2 := false
	for _, m := range r.samples {
		if !found2 && m.at >= 2*time.Second {
			at2, found2 = m, true
		}
		if m.at >= 2*time.Second {
			if minRSS == 0 || m.rssKB < minRSS {
				minRSS = m.rssKB
			}
			maxRSS = max(maxRSS, m.rssKB)
		}
		peakFDs = max(peakFDs, m.fds)
		peakThreads = max(peakThreads, m.threads)
		hwm = max(hwm, m.hwmKB)
	}
	h1, h2 := halves(r.samples, r.took)
	a, sc := r.a, r.sc
	dur := r.took.Seconds()
	flood := a.floodLines.Load()
	per100 := float64(flood) / dur / 10

	fmt.Fprintf(w, "\nStorm of %s against %s (%s), %s, started %s.\n\n",
		secs(r.took), c.bin, r.version, machine(), r.date.UTC().Format("2006-01-02 15:04:05 UTC"))
	fmt.Fprintln(w, "| | |")
	fmt.Fprintln(w, "|---|---|")
	row("duration", "%s", secs(r.took))
	row("daemon flags", "`%s` (the rest default: --cache.ttl=1m, --ingest.max-line-length=16KiB, --web.max-requests-in-flight=8)", strings.Join(shown, " "))
	row("RSS before the storm (idle)", "%s", mib(r.pre.rssKB))
	row("**peak RSS (VmHWM)**", "**%s**", mib(hwm))
	row("RSS at 2 s", "%s", mib(at2.rssKB))
	row("RSS at the end", "%s", mib(r.endSample.rssKB))
	row("**RSS drift (end − 2 s)**", "**%+d kB**", r.endSample.rssKB-at2.rssKB)
	row("RSS from 2 s to the end", "%s – %s kB (%d samples, every 250 ms); median of the first half %s kB, of the second half %s kB",
		commas(minRSS), commas(maxRSS), len(r.samples), commas(h1), commas(h2))
	row("daemon descriptors / threads, peak", "%d / %d", peakFDs, peakThreads)
	rate := "as fast as the daemon reads"
	if c.floodRate > 0 {
		rate = fmt.Sprintf("paced at %s/s", commas(int64(c.floodRate)))
	}
	row("(a) lines flooded", "%s never-seen series (%s/s, %s) over %d connections, %.1f MiB; the cache held at most %s series, %.1f× what the flood writes per 100 ms",
		commas(flood), commas(int64(float64(flood)/dur)), rate, c.floodConns, float64(a.floodBytes.Load())/(1<<20),
		commas(sc.maxSeries.Load()), float64(sc.maxSeries.Load())/max(per100, 1))
	row("(b) endless line", "%.0f MiB without a newline on one connection; closed by the daemon: %d", float64(a.endlessBytes.Load())/(1<<20), a.endlessClosed.Load())
	idleLife := ""
	if a.idleReaped.Load() > 0 {
		idleLife = fmt.Sprintf(" after %s – %s", secs(time.Duration(a.idleMinLife.Load())), secs(time.Duration(a.idleMaxLife.Load())))
	}
	row("(c) idle connections", "%d clients, each dialling again 0.5–1.5 s after the daemon closes it: %s dials; the daemon's connection gauge at most %d of %d; closed at accept: %s; closed by the idle timeout%s: %s; dial errors: %d",
		c.idle, commas(a.idleDials.Load()), sc.maxConns.Load(), c.maxConns,
		commas(a.idleRefused.Load()), idleLife, commas(a.idleReaped.Load()), a.idleDialErrs.Load())
	row("(d) slow-loris, 1 byte/s", "%d clients; closed by the daemon: %d (%d of them at accept)", c.loris, a.lorisClosed.Load(), a.lorisRefused.Load())
	if c.fatLoris > 0 {
		row("(d′) fat slow-loris", "%d clients that first sent 63 KiB of a line, then 1 byte/s", c.fatLoris)
	}
	row("(e) bodies of 4 × --ingest.max-body-size", "%d client(s); plain: %d sent, %d got 413, %d another status, %d closed without an answer (most refused at accept); gzip bomb (%s): %d sent, %d got 413, %d another status, %d without an answer%s",
		c.huge, a.hugeTries.Load(), a.huge413.Load(), a.hugeOther.Load(), a.hugeNoResp.Load(), "4× inflated",
		a.bombTries.Load(), a.bomb413.Load(), a.bombOther.Load(), a.bombNoResp.Load(), otherCodes(&r.a.otherCodes))
	row("(e) slow headers, 1 byte/s", "%d clients; cut off by the daemon: %d, after at most %s; closed at accept: %d; open at the end: %d",
		c.slowHeaders, a.slowCut.Load(), secs(time.Duration(a.slowMaxLife.Load())), a.slowRefused.Load(), a.slowOpenAtEnd.Load())
	var written, perrs, redials int64
	var gap time.Duration
	for _, p := range r.pushers {
		n, g := p.written()
		written += n
		gap = max(gap, g)
		perrs += p.errs.Load()
		redials += p.redials.Load()
	}
	row("(f) valid pushers", "%d × %d series, every 100 ms: %s batches written, %d write errors, %d failed dials; longest gap between two writes of a pusher: %s",
		c.pushers, c.series, commas(written), perrs, redials, ms(gap))
	p50, p99, pmax := sc.latencies()
	row("(g) **scrapes ok / failed**", "**%s / %d** (%d HTTP or network errors, %d did not parse)", commas(sc.ok.Load()), sc.failed.Load()+sc.unparsable.Load(), sc.failed.Load(), sc.unparsable.Load())
	row("scrape time p50 / p99 / max", "%s / %s / %s (request to last byte, bodies up to %.2f MiB)", ms(p50), ms(p99), ms(pmax), float64(sc.maxBody.Load())/(1<<20))
	row("valid series checked", "%s (%d scrapers × every 200 ms × %d series)", commas(sc.checked.Load()), c.scrapers, c.pushers*c.series)
	row("**valid samples lost**", "**%d** (%d missing after their first appearance, %d went backwards)", r.lost(), sc.missing.Load(), sc.backwards.Load())
	row("valid values stale", "%d older than %s before the scrape, %d never seen; longest a newer value waited: %s",
		sc.stale.Load(), c.staleAfter, sc.neverSeen.Load(), ms(time.Duration(sc.maxLag.Load())))
	row("self: rejected `too_long`", "%s", self("too_long"))
	row("self: connections refused (`max_connections`)", "%s", self("refused"))
	row("self: idle closed", "%s", self("idle_closed"))
	row("self: pushes 413 (other codes)", "%s (%s%s)", self("pushes_413"), self("pushes_other"), func() string {
		if len(r.pushCodes) == 0 {
			return ""
		}
		return "; " + strings.Join(r.pushCodes, ", ")
	}())
	row("self: lines applied / rejected", "%s / %s (%s; a slow-loris's partial line is applied, and rejected, when the storm closes it)", self("lines"), self("rejected"), strings.Join(r.rejected, ", "))
	row("self: cache series, bytes / budget, evictions (budget)", "%s, %s / %s, %s", self("series"), self("bytes"), self("budget"), self("evicted_budget"))
	row("self: scrapes refused (503)", "%s", self("web_refused"))
	if r.crashed {
		row("daemon", "**exited during the storm** (status %d)", r.exitCode)
	} else {
		row("shutdown (SIGTERM)", "exit status %d after %s%s", r.exitCode, secs(r.shutdown), map[bool]string{true: ", **killed after 8 s**"}[r.killed])
	}
	var lv []string
	for k, v := range r.logLevels {
		lv = append(lv, k+" "+strconv.Itoa(v))
	}
	sort.Strings(lv)
	row("daemon log", "%d lines (%s)", r.logLines, strings.Join(lv, ", "))
	if r.selfErr != nil {
		fmt.Fprintf(w, "\nThe final scrape for the self-metrics failed: %v\n", r.selfErr)
	}
	if len(sc.errs) > 0 {
		fmt.Fprintln(w, "\nScrape errors:")
		for k, v := range sc.errs {
			fmt.Fprintf(w, "- %d × %s\n", v, k)
		}
	}
	if r.logTail != "" {
		fmt.Fprintf(w, "\nEnd of the daemon's log:\n\n```\n%s\n```\n", strings.TrimSpace(r.logTail))
	}
	if f := r.failures(); len(f) > 0 {
		fmt.Fprintf(w, "\n**FAILED**: %s.\n", strings.Join(f, "; "))
	} else {
		fmt.Fprintln(w, "\nResult: no valid sample lost, every scrape parsed.")
	}
}

func otherCodes(m interface {
	Range(func(k, v any) bool)
}) string {
	var s []string
	m.Range(func(k, v any) bool {
		s = append(s, fmt.Sprintf("%d×%d", v.(*atomic.Int64).Load(), k.(int)))
		return true
	})
	if len(s) == 0 {
		return ""
	}
	sort.Strings(s)
	return " (other statuses: " + strings.Join(s, ", ") + ")"
}

// halves returns the median RSS of the samples from 2 s to half-time, and
// from half-time to the end: a drift measure less at the mercy of one GC
// cycle than two single samples.
func halves(samples []memSample, took time.Duration) (first, second int64) {
	var a, b []int64
	for _, m := range samples {
		switch {
		case m.at < 2*time.Second || m.at > took:
		case m.at < (took+2*time.Second)/2:
			a = append(a, m.rssKB)
		default:
			b = append(b, m.rssKB)
		}
	}
	med := func(v []int64) int64 {
		if len(v) == 0 {
			return 0
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return med(a), med(b)
}
