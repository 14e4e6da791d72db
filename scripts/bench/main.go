// Command bench runs push-gateway, the Prometheus Pushgateway and
// statsd_exporter side by side on the same workloads (idle, ingest, scrape,
// ingest and scrape together, churn) and prints one Markdown table per
// workload with ratios. It builds nothing: `make bench-compare` builds our
// daemon, installs statsd_exporter into .bench/bin and runs
//
//	go run ./scripts/bench -ours ./push-gateway \
//	    -pushgateway /usr/bin/prometheus-pushgateway \
//	    -statsd .bench/bin/statsd_exporter -out .bench/compare.md
//
// A daemon whose binary is missing is left out; without wrk the scrape
// workloads are. Every daemon listens on 127.0.0.1 and on sockets in a
// temporary directory, starts fresh for each workload (so VmHWM is that
// workload's peak) and is killed on every way out of this program.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/atomic"
)

type config struct {
	ours, pushgateway, statsd, wrk, out string
	idleWait, ingestDur, scrapeDur      time.Duration
	churnDur, timeout                   time.Duration
	churnRate                           int
	scrapeCache                         string
	workloads                           map[string]bool
}

const writers = 4

var allWorkloads = []string{"idle", "ingest", "scrape", "mixed", "churn"}

func main() {
	var cfg config
	var workloads string
	flag.StringVar(&cfg.ours, "ours", "./push-gateway", "our daemon's binary (build it with make build)")
	flag.StringVar(&cfg.pushgateway, "pushgateway", "/usr/bin/prometheus-pushgateway", "the Prometheus Pushgateway's binary; empty or missing leaves it out")
	flag.StringVar(&cfg.statsd, "statsd", ".bench/bin/statsd_exporter", "statsd_exporter's binary; empty or missing leaves it out")
	flag.StringVar(&cfg.wrk, "wrk", "wrk", "wrk, for the scrape workloads; missing leaves them out")
	flag.StringVar(&cfg.out, "out", "", "also write the tables to this file")
	flag.DurationVar(&cfg.idleWait, "idle-wait", 2*time.Second, "idle: time between start and the memory reading")
	flag.DurationVar(&cfg.ingestDur, "ingest-duration", 5*time.Second, "ingest: how long the writers push (also ingest+scrape)")
	flag.DurationVar(&cfg.scrapeDur, "scrape-duration", 5*time.Second, "scrape: wrk's -d, in whole seconds")
	flag.DurationVar(&cfg.churnDur, "churn-duration", 10*time.Second, "churn: how long never-seen series are pushed")
	flag.IntVar(&cfg.churnRate, "churn-rate", 2000, "churn: never-seen series per second")
	flag.StringVar(&cfg.scrapeCache, "scrape-cache-size", "2MiB", "our --cache.size for the 10,000-series scrape")
	flag.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "give up after this long")
	flag.StringVar(&workloads, "workloads", strings.Join(allWorkloads, ","), "workloads to run, comma-separated")
	flag.Parse()
	cfg.workloads = map[string]bool{}
	for _, w := range strings.Split(workloads, ",") {
		w = strings.TrimSpace(w)
		if w == "" {
			continue
		}
		if !contains(allWorkloads, w) {
			fmt.Fprintf(os.Stderr, "bench: unknown workload %q (have %s)\n", w, strings.Join(allWorkloads, ", "))
			os.Exit(2)
		}
		cfg.workloads[w] = true
	}
	if cfg.ingestDur <= 0 || cfg.scrapeDur <= 0 || cfg.churnDur <= 0 || cfg.churnRate <= 0 || cfg.idleWait < 0 {
		fmt.Fprintln(os.Stderr, "bench: durations and the churn rate must be positive")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, cfg)
	stop()
	os.Exit(code)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// bench is one run.
type bench struct {
	cfg     config
	dir     string
	seq     int
	clk     int64
	client  *http.Client
	targets []*target
	tables  []*table
	notes   []string
	failed  bool

	// For the issue-5 targets.
	oursHWM, oursAnon map[string]int64 // by workload, at default flags
	ingestCPU         map[kind]float64 // ns per sample
	scrape10kCPU      map[kind]float64 // ns per scrape
	churnDrift        *int64           // kB
}

func run(ctx context.Context, cfg config) (code int) {
	defer killAll()
	defer func() {
		if r := recover(); r != nil {
			killAll()
			panic(r)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()

	dir, err := os.MkdirTemp("", "bench-compare-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer os.RemoveAll(dir)

	b := &bench{
		cfg: cfg, dir: dir, clk: clockTicks(ctx),
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: 2, DisableCompression: true,
		}},
		oursHWM: map[string]int64{}, oursAnon: map[string]int64{},
		ingestCPU: map[kind]float64{}, scrape10kCPU: map[kind]float64{},
	}
	if err := b.findTargets(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if cfg.workloads["scrape"] || cfg.workloads["mixed"] {
		if p, err := exec.LookPath(cfg.wrk); err != nil {
			b.note("wrk not found (" + cfg.wrk + "): the scrape and ingest+scrape workloads are left out; `apt-get install wrk`.")
			delete(cfg.workloads, "scrape")
			delete(cfg.workloads, "mixed")
			b.cfg = cfg
		} else {
			b.cfg.wrk = p
		}
	}

	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"idle", b.idle},
		{"ingest", func(ctx context.Context) error { return b.ingest(ctx, false) }},
		{"scrape", b.scrapeAll},
		{"mixed", func(ctx context.Context) error { return b.ingest(ctx, true) }},
		{"churn", b.churn},
	}
	for _, s := range steps {
		if !b.cfg.workloads[s.name] {
			continue
		}
		fmt.Fprintf(os.Stderr, "bench: %s\n", s.name)
		if err := s.fn(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n", s.name, err)
			b.failed = true
			if ctx.Err() != nil {
				break
			}
		}
	}

	report := b.report()
	fmt.Print(report)
	if cfg.out != "" {
		if err := os.WriteFile(cfg.out, []byte(report), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
	}
	if b.failed || ctx.Err() != nil {
		return 1
	}
	return 0
}

func (b *bench) note(s string) {
	b.notes = append(b.notes, s)
	fmt.Fprintln(os.Stderr, "bench:", s)
}

// fail records a daemon's failure in a workload; the run goes on.
func (b *bench) fail(tb *table, t *target, err error) {
	b.failed = true
	fmt.Fprintf(os.Stderr, "bench: %s: %s: %v\n", tb.title, t.name, err)
	tb.text("error", t.kind, "error (see stderr)")
}

func (b *bench) findTargets(ctx context.Context) error {
	cands := []*target{
		{kind: ours, name: "push-gateway", short: "ours", path: b.cfg.ours},
		{kind: pushgateway, name: "Pushgateway", short: "pushgateway", path: b.cfg.pushgateway},
		{kind: statsd, name: "statsd_exporter", short: "statsd", path: b.cfg.statsd},
	}
	for _, t := range cands {
		fi, err := os.Stat(t.path)
		if t.path == "" || err != nil || fi.IsDir() {
			if t.kind == ours {
				return fmt.Errorf("our daemon %q not found: run make build", t.path)
			}
			b.note(fmt.Sprintf("%s not found at %q: left out.", t.name, t.path))
			continue
		}
		t.version = binaryVersion(ctx, t.path)
		// The daemons run in the temporary directory: resolve the path.
		if t.exec, err = filepath.Abs(t.path); err != nil {
			return err
		}
		b.targets = append(b.targets, t)
	}
	return nil
}

func (b *bench) target(k kind) *target {
	for _, t := range b.targets {
		if t.kind == k {
			return t
		}
	}
	return nil
}

func (b *bench) ticksToNs(ticks int64) float64 { return float64(ticks) * 1e9 / float64(b.clk) }

// idle: each daemon at its default flags, memory after cfg.idleWait.
func (b *bench) idle(ctx context.Context) error {
	tb := b.newTable("Idle", fmt.Sprintf("Memory %v after start (`/proc/PID/status`), every daemon at its default flags.", b.cfg.idleWait))
	for _, t := range b.targets {
		d, err := b.start(ctx, t, "")
		if err != nil {
			b.fail(tb, t, err)
			continue
		}
		err = sleep(ctx, b.cfg.idleWait)
		m, merr := readMem(d.pid())
		b.stop(d)
		if err = errors.Join(err, merr); err != nil {
			b.fail(tb, t, err)
			continue
		}
		tb.set("VmRSS", t.kind, float64(m.RSS), fmtKB(m.RSS))
		tb.set("VmHWM", t.kind, float64(m.HWM), fmtKB(m.HWM))
		tb.set("RssAnon", t.kind, float64(m.Anon), fmtKB(m.Anon))
		tb.set("RssFile", t.kind, float64(m.File), fmtKB(m.File))
	}
	return ctx.Err()
}

// ingest: 4 writers push their 25 series as fast as they can for
// cfg.ingestDur; with withWrk, wrk scrapes /metrics all the while.
func (b *bench) ingest(ctx context.Context, withWrk bool) error {
	title := "Ingest"
	name := "ingest"
	if withWrk {
		title, name = "Ingest and scrape together", "mixed"
	}
	notes := []string{
		fmt.Sprintf("%d writers × %d series of ~80 bytes, as fast as they can for %v; every daemon at its default flags. "+
			"push-gateway: a Unix stream connection per writer, %d lines per write; "+
			"Pushgateway: keep-alive `POST /metrics/job/w<N>` of the writer's %d series; "+
			"statsd_exporter: a unixgram socket per writer, %d DogStatsD gauge lines per datagram.",
			writers, batchSize, b.cfg.ingestDur, perPayload(ours), batchSize, statsdLines),
		"Samples/s and CPU count what the daemon applied within the window (its own counter: " +
			"`push_gateway_ingest_lines_total`, `statsd_exporter_events_total{type=\"gauge\"}`; " +
			"the Pushgateway's 200 answers); CPU is utime+stime from `/proc/PID/stat`.",
	}
	if withWrk {
		notes = append(notes, fmt.Sprintf("Meanwhile `wrk -t1 -c4 -d%v --latency` scrapes `/metrics`.", b.cfg.ingestDur.Round(time.Second)))
	}
	tb := b.newTable(title, notes...)
	for _, t := range b.targets {
		if err := b.ingestOne(ctx, tb, t, name, withWrk); err != nil {
			b.fail(tb, t, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

func (b *bench) ingestOne(ctx context.Context, tb *table, t *target, name string, withWrk bool) error {
	d, err := b.start(ctx, t, "")
	if err != nil {
		return err
	}
	defer b.stop(d)
	pid := d.pid()

	per := perPayload(t.kind)
	senders := make([]*sender, writers)
	chunks := make([][][]byte, writers)
	for w := range writers {
		s, err := newSender(d)
		if err != nil {
			return err
		}
		senders[w] = s
		defer s.close()
		ss := ingestSeries(w)
		var rep []series
		for range per / batchSize {
			rep = append(rep, ss...)
		}
		for v := range 8 {
			chunks[w] = append(chunks[w], encode(t.kind, rep, int64(v)*1000, per)[0])
		}
	}

	c0, err := b.ingestCounter(ctx, d)
	if err != nil {
		return err
	}
	t0, err := readTicks(pid)
	if err != nil {
		return err
	}
	smp := startSampler(pid, 250*time.Millisecond, b.cfg.ingestDur+30*time.Second)
	defer smp.stop()
	start := time.Now()
	deadline := start.Add(b.cfg.ingestDur)

	var wrkRes wrkResult
	var wrkErr error
	wrkDone := make(chan struct{})
	if withWrk {
		go func() {
			defer close(wrkDone)
			wrkRes, wrkErr = runWrk(ctx, b.cfg.wrk, d, b.cfg.ingestDur)
		}()
	} else {
		close(wrkDone)
	}

	var sent atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, writers)
	const maxSends = 100_000_000
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := fmt.Sprintf("/metrics/job/w%d", w)
			for i := 0; i < maxSends && ctx.Err() == nil && time.Now().Before(deadline); i++ {
				if err := senders[w].send(ctx, http.MethodPost, path, chunks[w][i%len(chunks[w])]); err != nil {
					errs[w] = err
					return
				}
				sent.Add(int64(per))
			}
		}()
	}

	serr := sleep(ctx, time.Until(deadline))
	t1, terr := readTicks(pid)
	window := time.Since(start)
	var inWindow float64
	if t.kind == pushgateway {
		inWindow = float64(sent.Load())
	} else if c1, err := b.ingestCounter(ctx, d); err == nil {
		inWindow = c1 - c0
	} else {
		terr = errors.Join(terr, err)
	}
	wg.Wait()
	for _, s := range senders {
		s.close() // ours applies the last lines at EOF
	}
	<-wrkDone
	if err := errors.Join(serr, terr, wrkErr, errors.Join(errs...)); err != nil {
		return err
	}

	total := float64(sent.Load())
	applied := total
	if t.kind != pushgateway {
		v, err := b.waitCounter(ctx, d, c0+total, 10*time.Second)
		if err != nil {
			return err
		}
		applied = v - c0
	}
	want := writers * batchSize
	found, err := b.waitSeries(ctx, d, seriesPrefix, want, 5*time.Second)
	if err != nil {
		return err
	}
	smp.stop()
	m, err := readMem(pid)
	if err != nil {
		return err
	}
	if inWindow <= 0 {
		return errors.New("no sample applied")
	}

	cpuNs := b.ticksToNs(t1 - t0)
	perSample := cpuNs / inWindow
	tb.set("samples/s", t.kind, inWindow/window.Seconds(), fmtRate(inWindow/window.Seconds()))
	cpuLabel := "daemon CPU per sample"
	if withWrk {
		cpuLabel += " (scrapes included)"
	}
	tb.set(cpuLabel, t.kind, perSample, fmtNs(perSample))
	tb.set("daemon CPU (cores busy)", t.kind, cpuNs/1e9/window.Seconds(), fmt.Sprintf("%.2f", cpuNs/1e9/window.Seconds()))
	if withWrk {
		tb.set("scrapes/s (wrk)", t.kind, wrkRes.RPS, fmtRate(wrkRes.RPS))
		tb.set("scrape p99 (wrk)", t.kind, float64(wrkRes.P99), fmtLatency(wrkRes.P99))
	}
	tb.set("peak RSS (VmHWM)", t.kind, float64(m.HWM), fmtKB(m.HWM))
	tb.set("largest RssAnon sampled", t.kind, float64(smp.maxAnon), fmtKB(smp.maxAnon))
	tb.set("VmRSS at the end", t.kind, float64(m.RSS), fmtKB(m.RSS))
	tb.text("samples applied / sent", t.kind, fmt.Sprintf("%s / %s", fmtInt(int64(applied)), fmtInt(int64(total))))
	tb.text("series exposed after", t.kind, fmt.Sprintf("%d of %d", found, want))
	if withWrk && wrkRes.Errors > 0 {
		tb.text("wrk errors", t.kind, fmtInt(wrkRes.Errors))
	}
	if t.kind == ours {
		b.oursHWM[name] = m.HWM
		b.oursAnon[name] = smp.maxAnon
	}
	if !withWrk {
		b.ingestCPU[t.kind] = perSample
	}
	return nil
}

// scrapeAll: 100 and 10,000 series loaded, then wrk on /metrics.
func (b *bench) scrapeAll(ctx context.Context) error {
	for _, n := range []int{100, 10000} {
		cache := ""
		flags := "default flags"
		if n > 100 {
			cache = b.cfg.scrapeCache
			flags = "`--cache.size=" + cache + "`"
		}
		tb := b.newTable(fmt.Sprintf("Scrape, %s series", fmtInt(int64(n))),
			fmt.Sprintf("%s series of ~80 bytes (%d per family) loaded once (push-gateway: one stream connection; "+
				"Pushgateway: `PUT` groups of %d; statsd_exporter: datagrams of %d gauges), then "+
				"`wrk -t1 -c4 -d%v --latency http://127.0.0.1:PORT/metrics`. push-gateway at %s, the others at their defaults. "+
				"Peak RSS includes the loading.", fmtInt(int64(n)), 25, pgGroup, statsdLines, b.cfg.scrapeDur.Round(time.Second), flags))
		for _, t := range b.targets {
			if err := b.scrapeOne(ctx, tb, t, n, cache); err != nil {
				b.fail(tb, t, err)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	return nil
}

func (b *bench) scrapeOne(ctx context.Context, tb *table, t *target, n int, cache string) error {
	if t.kind != ours {
		cache = ""
	}
	d, err := b.start(ctx, t, cache)
	if err != nil {
		return err
	}
	defer b.stop(d)
	pid := d.pid()
	if err := load(ctx, d, loadSeries(n)); err != nil {
		return err
	}
	found, err := b.waitSeries(ctx, d, seriesPrefix, n, 30*time.Second)
	if err != nil {
		return err
	}
	body, err := b.scrape(ctx, d)
	if err != nil {
		return err
	}
	before, err := readMem(pid)
	if err != nil {
		return err
	}
	smp := startSampler(pid, 250*time.Millisecond, b.cfg.scrapeDur+30*time.Second)
	defer smp.stop()
	t0, err := readTicks(pid)
	if err != nil {
		return err
	}
	wr, err := runWrk(ctx, b.cfg.wrk, d, b.cfg.scrapeDur)
	if err != nil {
		return err
	}
	t1, err := readTicks(pid)
	if err != nil {
		return err
	}
	smp.stop()
	m, err := readMem(pid)
	if err != nil {
		return err
	}
	if wr.Requests <= 0 {
		return errors.New("wrk made no request")
	}
	perScrape := b.ticksToNs(t1-t0) / float64(wr.Requests)
	tb.set("requests/s", t.kind, wr.RPS, fmtRate(wr.RPS))
	tb.set("p99 latency", t.kind, float64(wr.P99), fmtLatency(wr.P99))
	tb.set("daemon CPU per scrape", t.kind, perScrape, fmtNs(perScrape))
	tb.set("response size", t.kind, float64(len(body)), fmtInt(int64(len(body)))+" B")
	tb.set("VmRSS loaded, before wrk", t.kind, float64(before.RSS), fmtKB(before.RSS))
	tb.set("peak RSS (VmHWM)", t.kind, float64(m.HWM), fmtKB(m.HWM))
	tb.set("largest RssAnon sampled", t.kind, float64(smp.maxAnon), fmtKB(smp.maxAnon))
	tb.text("series exposed", t.kind, fmt.Sprintf("%s of %s", fmtInt(int64(found)), fmtInt(int64(n))))
	if wr.Errors > 0 {
		tb.text("wrk errors", t.kind, fmtInt(wr.Errors))
	}
	if t.kind == ours && cache == "" {
		b.oursHWM[fmt.Sprintf("scrape of %d", n)] = m.HWM
		b.oursAnon[fmt.Sprintf("scrape of %d", n)] = smp.maxAnon
	}
	if n == 10000 {
		b.scrape10kCPU[t.kind] = perScrape
	}
	return nil
}

// churn: never-seen series at cfg.churnRate for cfg.churnDur, VmRSS every
// 250 ms.
func (b *bench) churn(ctx context.Context) error {
	half := max((b.cfg.churnDur / 2).Round(time.Second), time.Second)
	tb := b.newTable("Churn",
		fmt.Sprintf("%s never-seen series per second for %v (a unique `path` label per series; "+
			"push-gateway: one stream connection; Pushgateway: a `PUT` to a new group every 100 ms; "+
			"statsd_exporter: datagrams of up to %d gauges), every daemon at its default flags. "+
			"VmRSS sampled every 250 ms; drift is the end minus the value at 1 s.",
			fmtInt(int64(b.cfg.churnRate)), b.cfg.churnDur, statsdLines))
	for _, t := range b.targets {
		if err := b.churnOne(ctx, tb, t, half); err != nil {
			b.fail(tb, t, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

func (b *bench) churnOne(ctx context.Context, tb *table, t *target, half time.Duration) error {
	d, err := b.start(ctx, t, "")
	if err != nil {
		return err
	}
	defer b.stop(d)
	pid := d.pid()
	s, err := newSender(d)
	if err != nil {
		return err
	}
	defer s.close()

	const tick = 100 * time.Millisecond
	dur := b.cfg.churnDur
	smp := startSampler(pid, 250*time.Millisecond, dur+10*time.Second)
	defer smp.stop()
	start := time.Now()
	next := 0
	for k := 1; k <= int(dur/tick); k++ {
		if time.Since(start) >= dur {
			break
		}
		due := int(int64(b.cfg.churnRate) * int64(k) * int64(tick) / int64(time.Second))
		if due > next {
			ss := make([]series, due-next)
			for i := range ss {
				ss[i] = churnSeries(next + i)
			}
			per := len(ss)
			if t.kind == statsd {
				per = statsdLines
			}
			for _, p := range encode(t.kind, ss, 1, per) {
				if err := s.send(ctx, http.MethodPut, fmt.Sprintf("/metrics/job/churn/batch/b%d", k), p); err != nil {
					return err
				}
			}
			next = due
		}
		if err := sleep(ctx, time.Until(start.Add(time.Duration(k)*tick))); err != nil {
			return err
		}
	}
	elapsed := time.Since(start)
	// Let the daemon take in what is queued before the last reading.
	s.close()
	if t.kind != pushgateway {
		if _, err := b.waitCounter(ctx, d, float64(next), 5*time.Second); err != nil {
			return err
		}
	}
	smp.stop()
	m, err := readMem(pid)
	if err != nil {
		return err
	}
	body, err := b.scrape(ctx, d)
	if err != nil {
		return err
	}
	at1 := smp.at(time.Second)
	drift := m.RSS - at1
	peak := m.RSS
	for _, p := range smp.points {
		peak = max(peak, p.rss)
	}
	tb.text("series pushed", t.kind, fmt.Sprintf("%s in %.1f s", fmtInt(int64(next)), elapsed.Seconds()))
	tb.text("series exposed at the end", t.kind, fmtInt(int64(countSeries(body, churnName))))
	tb.set("VmRSS at 1 s", t.kind, float64(at1), fmtKB(at1))
	tb.set(fmt.Sprintf("VmRSS at %.0f s", half.Seconds()), t.kind, float64(smp.at(half)), fmtKB(smp.at(half)))
	tb.set("VmRSS at the end", t.kind, float64(m.RSS), fmtKB(m.RSS))
	tb.set("drift (end − 1 s)", t.kind, float64(drift), fmtSignedKB(drift))
	tb.set("largest VmRSS sampled", t.kind, float64(peak), fmtKB(peak))
	tb.set("RssAnon at the end", t.kind, float64(m.Anon), fmtKB(m.Anon))
	if t.kind == ours {
		b.churnDrift = &drift
	}
	return nil
}

// report renders the header, every table and the issue-5 targets.
func (b *bench) report() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "Run %s on %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), machine())
	for _, t := range b.targets {
		fmt.Fprintf(&sb, "- %s %s (`%s`)\n", t.name, t.version, t.path)
	}
	fmt.Fprintf(&sb, "- flags: push-gateway %s (the 10,000-series scrape adds `--cache.size=%s`); Pushgateway %s; statsd_exporter %s\n",
		b.target(ours).flagsNote(""), b.cfg.scrapeCache, (&target{kind: pushgateway}).flagsNote(""), (&target{kind: statsd}).flagsNote(""))
	fmt.Fprintf(&sb, "- CPU from utime+stime at CLK_TCK=%d; the load generators run in the benchmark process on the same cores.\n", b.clk)
	for _, n := range b.notes {
		fmt.Fprintf(&sb, "- %s\n", n)
	}
	sb.WriteString("\nRatios are push-gateway ÷ the other daemon: below 1 is better for memory, CPU and latency, above 1 for rates.\n\n")
	for _, t := range b.tables {
		sb.WriteString(t.markdown(b.targets))
		sb.WriteString("\n")
	}
	sb.WriteString(b.targetsTable())
	return sb.String()
}

// targetsTable checks the issue-5 targets against this run's figures.
func (b *bench) targetsTable() string {
	var sb strings.Builder
	sb.WriteString("### Issue 5 targets\n\n| target | this run | holds |\n|---|---|---|\n")
	verdict := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "**no**"
	}
	worst := func(m map[string]int64) (int64, string) {
		var v int64
		var where []string
		for _, w := range []string{"ingest", "scrape of 100", "mixed"} {
			x, ok := m[w]
			if !ok {
				continue
			}
			if x > v {
				v = x
			}
			where = append(where, fmt.Sprintf("%s %s", strings.Replace(w, "mixed", "ingest+scrape", 1), fmtKB(x)))
		}
		return v, strings.Join(where, ", ")
	}
	if len(b.oursHWM) > 0 {
		v, where := worst(b.oursHWM)
		fmt.Fprintf(&sb, "| VmHWM ≤ 8 MiB (8,192 kB) at default flags, ingest and scrape | %s | %s |\n", where, verdict(v <= 8192))
		v, where = worst(b.oursAnon)
		fmt.Fprintf(&sb, "| RssAnon ≤ 3 MiB (3,072 kB) at default flags, ingest and scrape (largest sampled) | %s | %s |\n", where, verdict(v <= 3072))
	}
	if b.churnDrift != nil {
		fmt.Fprintf(&sb, "| churn: VmRSS drift < 512 KiB after the first second | %s | %s |\n", fmtSignedKB(*b.churnDrift), verdict(*b.churnDrift < 512))
	}
	ratio := func(label string, m map[kind]float64, k kind, limit float64) {
		o, ok1 := m[ours]
		x, ok2 := m[k]
		if !ok1 || !ok2 || x <= 0 {
			return
		}
		fmt.Fprintf(&sb, "| %s | %s vs %s = %s | %s |\n", label, fmtNs(o), fmtNs(x), fmtRatio(o/x), verdict(o/x <= limit))
	}
	ratio("CPU per ingested sample ≤ 1/10 of statsd_exporter's", b.ingestCPU, statsd, 0.1)
	ratio("CPU per ingested sample ≤ 1/30 of the Pushgateway's", b.ingestCPU, pushgateway, 1.0/30)
	ratio("scrape CPU for 10,000 series ≤ 1/10 of the Pushgateway's", b.scrape10kCPU, pushgateway, 0.1)
	return sb.String()
}

// machine describes the host in one line: CPUs, model, memory, kernel.
func machine() string {
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if _, rest, ok := strings.Cut(string(b), "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				var kb int64
				fmt.Sscan(f[0], &kb)
				mem = fmt.Sprintf(", %.0f GiB", float64(kb)/(1<<20))
			}
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%d CPUs (%s)%s%s, %s/%s, tool built with %s", runtime.NumCPU(), model, mem, kernel, runtime.GOOS, runtime.GOARCH, runtime.Version())
}
