package main

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// kind is one of the daemons compared.
type kind int

const (
	ours kind = iota
	pushgateway
	statsd
)

// target is a daemon binary that takes part in the run.
type target struct {
	kind    kind
	name    string // column header
	short   string // file names
	path    string // as given, for the tables
	exec    string // absolute
	version string
}

// daemon is one started process of a target, fresh for each workload.
type daemon struct {
	t       *target
	cmd     *exec.Cmd
	web     string // 127.0.0.1:port of /metrics
	sock    string // ours: the push stream socket; statsd: the unixgram socket
	args    []string
	logPath string
	done    chan struct{}
	waitErr error
}

func (d *daemon) pid() int { return d.cmd.Process.Pid }

// children holds every process this tool started and has not reaped, so
// that killAll can end them on any exit path.
var children = struct {
	sync.Mutex
	m map[*exec.Cmd]struct{}
}{m: map[*exec.Cmd]struct{}{}}

func track(c *exec.Cmd) {
	children.Lock()
	children.m[c] = struct{}{}
	children.Unlock()
}

func untrack(c *exec.Cmd) {
	children.Lock()
	delete(children.m, c)
	children.Unlock()
}

// killAll sends SIGKILL to the process group of every child still tracked.
func killAll() {
	children.Lock()
	defer children.Unlock()
	for c := range children.m {
		if c.Process != nil {
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		}
		delete(children.m, c)
	}
}

// childAttr puts a child in its own process group (so that a group kill
// takes whatever it forks) and has the kernel kill it if this tool dies.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// args returns the command line of t for one workload. Only ours takes a
// cache size; "" leaves every flag at its default.
func (t *target) args(web, sock, cacheSize string) []string {
	switch t.kind {
	case ours:
		a := []string{"--ingest.socket=" + sock, "--web.listen-address=" + web}
		if cacheSize != "" {
			a = append(a, "--cache.size="+cacheSize)
		}
		return a
	case pushgateway:
		return []string{"--web.listen-address=" + web, "--persistence.file="}
	default:
		return []string{"--web.listen-address=" + web, "--statsd.listen-unixgram=" + sock,
			"--statsd.listen-udp=", "--statsd.listen-tcp="}
	}
}

// flagsNote describes the flags of t in the tables, with placeholders for the
// per-run socket and port.
func (t *target) flagsNote(cacheSize string) string {
	a := t.args("127.0.0.1:PORT", "/tmp/…/X.sock", cacheSize)
	return "`" + strings.Join(a, " ") + "`"
}

// start runs t with the flags for one workload and waits until its HTTP port
// and its socket answer.
func (b *bench) start(ctx context.Context, t *target, cacheSize string) (*daemon, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	b.seq++
	d := &daemon{t: t, web: "127.0.0.1:" + strconv.Itoa(port), done: make(chan struct{})}
	if t.kind != pushgateway {
		d.sock = filepath.Join(b.dir, fmt.Sprintf("%s-%d.sock", t.short, b.seq))
	}
	d.args = t.args(d.web, d.sock, cacheSize)
	d.logPath = filepath.Join(b.dir, fmt.Sprintf("%s-%d.log", t.short, b.seq))
	logf, err := os.Create(d.logPath)
	if err != nil {
		return nil, err
	}
	d.cmd = exec.Command(t.exec, d.args...)
	d.cmd.Dir = b.dir
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = childAttr()
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("%s: %w", t.name, err)
	}
	track(d.cmd)
	go func() {
		d.waitErr = d.cmd.Wait()
		logf.Close()
		close(d.done)
	}()
	if err := d.ready(ctx); err != nil {
		b.stop(d)
		return nil, fmt.Errorf("%s %s: %w\n%s", t.name, strings.Join(d.args, " "), err, logTail(d.logPath))
	}
	return d, nil
}

// ready polls the daemon's TCP port and socket for at most 10 seconds.
func (d *daemon) ready(ctx context.Context) error {
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; i < 1000; i++ {
		select {
		case <-d.done:
			return fmt.Errorf("exited at start: %v", d.waitErr)
		default:
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			break
		}
		if d.probe() {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("not ready within 10s")
}

func (d *daemon) probe() bool {
	c, err := net.DialTimeout("tcp", d.web, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	switch d.t.kind {
	case ours:
		c, err := net.DialTimeout("unix", d.sock, time.Second)
		if err != nil {
			return false
		}
		c.Close()
	case statsd:
		fi, err := os.Stat(d.sock)
		if err != nil || fi.Mode()&os.ModeSocket == 0 {
			return false
		}
	}
	return true
}

// stop ends the daemon: SIGTERM to its group, SIGKILL after 3 seconds.
func (b *bench) stop(d *daemon) {
	pg := d.pid()
	_ = syscall.Kill(-pg, syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(3 * time.Second):
		_ = syscall.Kill(-pg, syscall.SIGKILL)
		select {
		case <-d.done:
		case <-time.After(3 * time.Second):
		}
	}
	untrack(d.cmd)
	if d.sock != "" {
		os.Remove(d.sock)
	}
	b.client.CloseIdleConnections()
}

func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// readMem reads /proc/PID/status.
func readMem(pid int) (memStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return memStat{}, err
	}
	return parseStatus(b)
}

// readTicks reads utime+stime of /proc/PID/stat, in clock ticks.
func readTicks(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStatTicks(b)
}

// clockTicks is `getconf CLK_TCK`, or 100 when getconf is missing.
func clockTicks(ctx context.Context) int64 {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "getconf", "CLK_TCK").Output()
	if err == nil {
		if v, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && v > 0 {
			return v
		}
	}
	return 100
}

// binaryVersion asks the binary's --version for "version X"; Go's build
// information fills in for a `go install`ed binary that has no stamp.
func binaryVersion(ctx context.Context, path string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "--version")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, _ := cmd.CombinedOutput()
	first, _, _ := strings.Cut(string(out), "\n")
	if _, rest, ok := strings.Cut(first, "version "); ok {
		if v, _, _ := strings.Cut(rest, " "); v != "" {
			return v
		}
	}
	if bi, err := buildinfo.ReadFile(path); err == nil && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "unknown"
}

// scrape fetches http://web/metrics.
func (b *bench) scrape(ctx context.Context, d *daemon) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.web+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return body, nil
}

// ingestCounter is the daemon's own count of samples it has applied: ours
// counts lines, statsd_exporter gauge events. The Pushgateway answers each
// push synchronously and needs none.
func (b *bench) ingestCounter(ctx context.Context, d *daemon) (float64, error) {
	body, err := b.scrape(ctx, d)
	if err != nil {
		return 0, err
	}
	var v float64
	var ok bool
	switch d.t.kind {
	case ours:
		v, ok = sampleSum(body, "push_gateway_ingest_lines_total", "")
	case statsd:
		v, ok = sampleSum(body, "statsd_exporter_events_total", `type="gauge"`)
		if !ok {
			v, ok = 0, true // no gauge event yet
		}
	default:
		return 0, nil
	}
	if !ok {
		return 0, errors.New("ingest counter missing from /metrics")
	}
	return v, nil
}

// waitSeries polls /metrics until at least want series whose names start
// with prefix are exposed, for at most limit; it returns the last count.
func (b *bench) waitSeries(ctx context.Context, d *daemon, prefix string, want int, limit time.Duration) (int, error) {
	deadline := time.Now().Add(limit)
	n := 0
	for i := 0; i < 10000; i++ {
		body, err := b.scrape(ctx, d)
		if err != nil {
			return n, err
		}
		n = countSeries(body, prefix)
		if n >= want || time.Now().After(deadline) {
			return n, nil
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return n, err
		}
	}
	return n, nil
}

// waitCounter polls the ingest counter until it reaches want or stops
// moving for a second, for at most limit.
func (b *bench) waitCounter(ctx context.Context, d *daemon, want float64, limit time.Duration) (float64, error) {
	deadline := time.Now().Add(limit)
	last, lastChange := -1.0, time.Now()
	for i := 0; i < 10000; i++ {
		v, err := b.ingestCounter(ctx, d)
		if err != nil {
			return v, err
		}
		if v >= want || time.Now().After(deadline) {
			return v, nil
		}
		if v != last {
			last, lastChange = v, time.Now()
		} else if time.Since(lastChange) > time.Second {
			return v, nil
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return v, err
		}
	}
	return last, nil
}

// runWrk runs `wrk -t1 -c4 -d<dur> --latency` on the daemon's /metrics.
func runWrk(ctx context.Context, wrk string, d *daemon, dur time.Duration) (wrkResult, error) {
	secs := int((dur + time.Second - 1) / time.Second)
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, wrk, "-t1", "-c4", fmt.Sprintf("-d%ds", secs), "--latency", "http://"+d.web+"/metrics")
	cmd.SysProcAttr = childAttr()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return wrkResult{}, err
	}
	track(cmd)
	err := cmd.Wait()
	untrack(cmd)
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %w\n%s", err, out.String())
	}
	return parseWrk(out.String())
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sampler reads /proc/PID/status every interval, for at most limit, and
// keeps VmRSS over time and the largest RssAnon seen.
type sampler struct {
	start   time.Time
	once    sync.Once
	stopc   chan struct{}
	done    chan struct{}
	points  []rssPoint
	maxAnon int64
}

type rssPoint struct {
	at  time.Duration
	rss int64
}

func startSampler(pid int, every, limit time.Duration) *sampler {
	s := &sampler{start: time.Now(), stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		n := int(limit/every) + 1
		for i := 0; i < n; i++ {
			if m, err := readMem(pid); err == nil {
				s.points = append(s.points, rssPoint{time.Since(s.start), m.RSS})
				s.maxAnon = max(s.maxAnon, m.Anon)
			}
			select {
			case <-s.stopc:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// stop ends the sampling and waits for the sampler's goroutine; calling it
// again does nothing.
func (s *sampler) stop() {
	s.once.Do(func() { close(s.stopc) })
	<-s.done
}

// at returns the first VmRSS sampled at or after t (the last one if none).
func (s *sampler) at(t time.Duration) int64 {
	for _, p := range s.points {
		if p.at >= t {
			return p.rss
		}
	}
	if len(s.points) == 0 {
		return 0
	}
	return s.points[len(s.points)-1].rss
}
