package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// result is everything the report needs.
type result struct {
	date        time.Time
	version     string
	args        []string
	took        time.Duration
	pre         memSample // just before the storm
	samples     []memSample
	endSample   memSample
	a           *attackStats
	sc          *scrapeStats
	pushers     []*pusher
	self        map[string]float64
	rejected    []string // reason and count, of the rejected lines
	pushCodes   []string // method, code and count, of the HTTP pushes
	scrapers    int
	selfErr     error
	crashed     bool
	interrupted bool
	stuck       bool // goroutines of the storm did not end in time
	exitCode    int
	shutdown    time.Duration
	killed      bool
	logLines    int
	logLevels   map[string]int
	logTail     string
}

func (r *result) lost() int64 { return r.sc.missing.Load() + r.sc.backwards.Load() }

func (r *result) failures() []string {
	var f []string
	if n := r.lost(); n > 0 {
		f = append(f, fmt.Sprintf("%d valid samples lost", n))
	}
	if n := r.sc.stale.Load() + r.sc.neverSeen.Load(); n > 0 {
		f = append(f, fmt.Sprintf("%d valid samples stale or never seen", n))
	}
	if n := r.sc.failed.Load() + r.sc.unparsable.Load(); n > 0 {
		f = append(f, fmt.Sprintf("%d scrapes failed or did not parse", n))
	}
	if r.sc.ok.Load() == 0 && r.scrapers > 0 {
		f = append(f, "no scrape succeeded")
	}
	if r.crashed {
		f = append(f, "the daemon exited during the storm")
	}
	if !r.crashed && (r.killed || r.exitCode != 0) {
		f = append(f, fmt.Sprintf("the daemon's shutdown: exit status %d, killed %v", r.exitCode, r.killed))
	}
	if r.stuck {
		f = append(f, "goroutines of the storm did not stop")
	}
	if r.interrupted {
		f = append(f, "interrupted")
	}
	return f
}

func (r *result) ok() bool { return len(r.failures()) == 0 }

func runStorm(parent context.Context, c *config) (*result, error) {
	r := &result{date: time.Now(), scrapers: c.scrapers}
	if out, err := exec.Command(c.bin, "--version").CombinedOutput(); err == nil {
		r.version, _, _ = strings.Cut(string(out), "\n")
	} else {
		return nil, fmt.Errorf("%s --version: %v: %s", c.bin, err, out)
	}
	dir, err := os.MkdirTemp("", "storm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "push.sock")
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	r.args = []string{
		"--ingest.socket=" + sock,
		"--web.listen-address=" + addr,
		"--cache.size=" + c.cacheSize,
		"--ingest.idle-timeout=" + c.idleTimeout.String(),
		"--ingest.max-connections=" + strconv.Itoa(c.maxConns),
		"--ingest.max-body-size=" + c.maxBody,
	}
	r.args = append(r.args, strings.Fields(c.extra)...)
	chunk, bomb := hugePayloads(c.maxBodyN)
	d, err := startDaemon(c.bin, sock, addr, r.args, c.nofile)
	if err != nil {
		return nil, err
	}
	defer func() {
		if !d.dead() {
			d.stop(time.Second)
		}
	}()
	fmt.Fprintf(os.Stderr, "storm: daemon pid %d: %s %s\n", d.pid, c.bin, strings.Join(r.args, " "))

	time.Sleep(500 * time.Millisecond) // settle after start
	pre, err := readProc(d.pid)
	if err != nil {
		return nil, err
	}
	r.pre = pre
	smp, stopSampler := startSampler(d.pid)
	defer stopSampler()
	start := smp.start
	end := start.Add(c.duration)

	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	s := &storm{cfg: c, sock: sock, ctx: ctx, end: end}
	r.a = &s.a
	r.sc = &scrapeStats{}

	// The well-behaved clients first, so that they hold their connections
	// before the idle ones fill the daemon up.
	for i := range c.pushers {
		p := &pusher{id: i, series: c.series}
		r.pushers = append(r.pushers, p)
		s.goRun(func() { p.run(s) })
	}
	// Scrapers stop at the end on their own, finishing the scrape they are
	// in; a crash or an interrupt stops them at once.
	scrapeCtx, stopScrapers := context.WithCancel(parent)
	defer stopScrapers()
	var scwg sync.WaitGroup
	for i := range c.scrapers {
		scwg.Add(1)
		go func() {
			defer scwg.Done()
			s.scraper(scrapeCtx, i, "http://"+addr+"/metrics", end, r.pushers, r.sc)
		}()
	}
	for i := range c.floodConns {
		s.goRun(func() { s.flood(i, float64(c.floodRate)/float64(c.floodConns)) })
	}
	if c.endless {
		s.goRun(s.endless)
	}
	for i := range c.loris {
		s.goRun(func() { s.loris(i, 0) })
	}
	for i := range c.fatLoris {
		s.goRun(func() { s.loris(c.loris+i, 63<<10) })
	}
	for range c.slowHeaders {
		s.goRun(s.slowHeaders)
	}
	for range c.huge {
		s.goRun(func() { s.hugeBodies(chunk, bomb) })
	}
	// The idle ones from 0.5 s on, spread over a second.
	s.goRun(func() {
		if !s.sleep(500 * time.Millisecond) {
			return
		}
		for i := range c.idle {
			if i%50 == 0 && !s.sleep(time.Second*50/time.Duration(max(c.idle, 1))) {
				return
			}
			s.goRun(s.idleConn)
		}
	})

	// Wait for the end, a crash or an interrupt.
	var progress <-chan time.Time
	if c.progress > 0 {
		t := time.NewTicker(c.progress)
		defer t.Stop()
		progress = t.C
	}
	timer := time.NewTimer(time.Until(end))
	defer timer.Stop()
wait:
	for {
		select {
		case <-timer.C:
			break wait
		case <-d.exited:
			r.crashed = true
			stopScrapers()
			break wait
		case <-parent.Done():
			r.interrupted = true
			break wait
		case <-progress:
			m, _ := readProc(d.pid)
			fmt.Fprintf(os.Stderr, "storm: %4.0fs  rss %s kB  hwm %s kB  fds %d  flooded %s  scrapes %d ok %d failed  lost %d  stale %d\n",
				time.Since(start).Seconds(), commas(m.rssKB), commas(m.hwmKB), m.fds, commas(s.a.floodLines.Load()),
				r.sc.ok.Load(), r.sc.failed.Load()+r.sc.unparsable.Load(), r.lost(), r.sc.stale.Load())
		}
	}
	if m, ok := smp.sample(); ok {
		r.endSample = m
	}
	r.took = time.Since(start)

	// Scrapers finish the scrape they are in (5 s at most), then the rest
	// stops: cancel, close every connection, wait.
	scwg.Wait()
	cancel()
	s.conns.closeAll()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		r.stuck = true
	}

	if !d.dead() {
		client := &http.Client{Timeout: 10 * time.Second}
		fams, _, _, err := scrape(context.Background(), client, "http://"+addr+"/metrics")
		if err != nil {
			r.selfErr = err
		} else {
			r.self = map[string]float64{
				"too_long":       selfValue(fams, "push_gateway_ingest_lines_rejected_total", "reason", "too_long"),
				"refused":        selfValue(fams, "push_gateway_ingest_connections_refused_total", "reason", "max_connections"),
				"idle_closed":    selfValue(fams, "push_gateway_ingest_idle_closed_total", "", ""),
				"pushes_413":     selfValue(fams, "push_gateway_ingest_pushes_total", "code", "413"),
				"pushes_other":   selfValue(fams, "push_gateway_ingest_pushes_total", "", "") - selfValue(fams, "push_gateway_ingest_pushes_total", "code", "413"),
				"lines":          selfValue(fams, "push_gateway_ingest_lines_total", "", ""),
				"rejected":       selfValue(fams, "push_gateway_ingest_lines_rejected_total", "", ""),
				"series":         selfValue(fams, "push_gateway_cache_series", "", ""),
				"bytes":          selfValue(fams, "push_gateway_cache_bytes", "", ""),
				"budget":         selfValue(fams, "push_gateway_cache_budget_bytes", "", ""),
				"evicted_budget": selfValue(fams, "push_gateway_cache_evictions_total", "reason", "budget"),
				"too_large":      selfValue(fams, "push_gateway_cache_evictions_total", "reason", "too_large"),
				"web_refused":    selfValue(fams, "push_gateway_web_requests_refused_total", "", ""),
				"connections":    selfValue(fams, "push_gateway_ingest_connections", "", ""),
			}
			if r.self["pushes_413"] < 0 { // no push at all: the family has no sample
				r.self["pushes_413"], r.self["pushes_other"] = 0, 0
			}
			if f := fams["push_gateway_ingest_pushes_total"]; f != nil {
				for _, m := range f.Metric {
					var code, method string
					for _, l := range m.Label {
						switch l.GetName() {
						case "code":
							code = l.GetValue()
						case "method":
							method = l.GetValue()
						}
					}
					r.pushCodes = append(r.pushCodes, fmt.Sprintf("%s %s: %s", method, code, commas(int64(value(m)))))
				}
			}
			if f := fams["push_gateway_ingest_lines_rejected_total"]; f != nil {
				for _, m := range f.Metric {
					for _, l := range m.Label {
						if l.GetName() == "reason" && value(m) > 0 {
							r.rejected = append(r.rejected, fmt.Sprintf("%s %s", l.GetValue(), commas(int64(value(m)))))
						}
					}
				}
			}
		}
	}
	stopSampler()
	r.samples = smp.samples()
	if !r.crashed {
		r.shutdown, r.killed = d.stop(8 * time.Second)
	}
	r.exitCode = d.exitCode()
	r.logLines = d.log.lineCount()
	r.logLevels = d.log.logLevels()
	if r.crashed || r.killed || r.exitCode != 0 {
		r.logTail = d.log.String()
		if len(r.logTail) > 4096 {
			r.logTail = r.logTail[len(r.logTail)-4096:]
		}
	}
	return r, nil
}

// commas writes n with thousands separators.
func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, ch := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func mib(kb int64) string { return fmt.Sprintf("%s kB (%.1f MiB)", commas(kb), float64(kb)/1024) }

func machine() string {
	return fmt.Sprintf("%d CPUs, %s/%s, %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
}
