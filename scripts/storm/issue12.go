package main

// The attacks of issue 12, one at a time (-attack=NAME): resource
// exhaustion through the web port and the push socket. Each starts the
// daemon, runs its hostile clients for -duration while probes check every
// -probe-every that a scrape, an HTTP push and a raw line still get
// through, then reports peak memory and what the probes saw. The exit
// status is 0 when the run completed (whatever the probes saw: the "before"
// figures are failures by design), 1 when the daemon died, 2 when the run
// could not be set up.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var attackNames = []string{"tcp-flood", "slow-scrape", "stall-push", "idle-dialers"}

// attackDefaults fills in what an attack wants unless the flag was given.
func attackDefaults(c *config, set map[string]bool) error {
	if !slices.Contains(attackNames, c.attack) {
		return fmt.Errorf("-attack=%q: want one of %s", c.attack, strings.Join(attackNames, ", "))
	}
	def := func(name string, f func()) {
		if !set[name] {
			f()
		}
	}
	def("duration", func() { c.duration = 30 * time.Second })
	// Only the attack's own clients run, and the daemon's idle timeout is
	// its default (5m) unless -idle-timeout is given.
	def("idle", func() { c.idle = 0 })
	def("idle-timeout", func() { c.idleTimeout = 5 * time.Minute })
	switch c.attack {
	case "tcp-flood":
		def("daemon-nofile", func() { c.nofile = 1024 })
	case "slow-scrape":
		def("duration", func() { c.duration = 60 * time.Second })
		def("cache-size", func() { c.cacheSize = "16MiB" })
	case "idle-dialers":
		def("idle", func() { c.idle = 200 })
		def("max-connections", func() { c.maxConns = 64; c.maxConnsSet = true })
		def("redial-min", func() { c.redialMin = 5 * time.Millisecond })
		def("redial-max", func() { c.redialMax = 25 * time.Millisecond })
	}
	return nil
}

// probe counts the outcomes of one kind of probe.
type probe struct {
	ok, fail atomic.Int64
	mu       sync.Mutex
	lat      []time.Duration // of the successes
	worst    time.Duration   // of every attempt, failed ones included
	why      map[string]int  // failures by kind
}

func (p *probe) record(took time.Duration, failure string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.worst = max(p.worst, took)
	if failure == "" {
		p.ok.Add(1)
		p.lat = append(p.lat, took)
		return
	}
	p.fail.Add(1)
	if p.why == nil {
		p.why = map[string]int{}
	}
	p.why[failure]++
}

// String is "ok / failed (kinds); latency of the successes p50 / max;
// worst attempt".
func (p *probe) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := fmt.Sprintf("**%d / %d**", p.ok.Load(), p.fail.Load())
	if len(p.why) > 0 {
		var k []string
		for w, n := range p.why {
			k = append(k, fmt.Sprintf("%d× %s", n, w))
		}
		sort.Strings(k)
		s += " (" + strings.Join(k, ", ") + ")"
	}
	if len(p.lat) > 0 {
		l := slices.Clone(p.lat)
		slices.Sort(l)
		s += fmt.Sprintf("; ok ones p50 / max %s / %s", ms(l[len(l)/2]), ms(l[len(l)-1]))
	}
	return s + fmt.Sprintf("; worst attempt %s", ms(p.worst))
}

// failureKind names an error briefly.
func failureKind(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), strings.Contains(err.Error(), "EOF"):
		return "closed without an answer"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

// rawProbes remembers when each raw probe line was written and when a
// scrape first showed it.
type rawProbes struct {
	mu      sync.Mutex
	sent    map[int]time.Time
	seen    map[int]time.Time
	writeKO map[string]int // the dial or the write failed
}

var rawMark = []byte(`storm_probe_raw{n="`)

// look records the raw probe lines that body shows.
func (r *rawProbes) look(body []byte, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		i := bytes.Index(body, rawMark)
		if i < 0 {
			return
		}
		body = body[i+len(rawMark):]
		j := bytes.IndexByte(body, '"')
		if j < 0 {
			return
		}
		if n, err := strconv.Atoi(string(body[:j])); err == nil {
			if _, ok := r.seen[n]; !ok {
				r.seen[n] = at
			}
		}
	}
}

// tally splits the lines written into those seen within limit of their
// write, before end; those seen only later; and those never seen.
func (r *rawProbes) tally(limit time.Duration, end time.Time) (soon, late, never int, worst time.Duration, failed string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var lost []int
	for n, t := range r.sent {
		s, ok := r.seen[n]
		switch {
		case !ok:
			never++
			lost = append(lost, n)
		case s.Sub(t) <= limit && !s.After(end):
			soon++
			worst = max(worst, s.Sub(t))
		default:
			late++
		}
	}
	var k []string
	for w, n := range r.writeKO {
		k = append(k, fmt.Sprintf("%d× %s", n, w))
	}
	if len(lost) > 0 && len(lost) <= 5 {
		slices.Sort(lost)
		k = append(k, fmt.Sprintf("never seen: n=%v of 0–%d", lost, len(r.sent)-1))
	}
	sort.Strings(k)
	return soon, late, never, worst, strings.Join(k, ", ")
}

// probes run the three checks of an attack.
type probes struct {
	scrape, push probe
	raw          rawProbes
	scrapeCodes  sync.Map // status -> *atomic.Int64
}

// run probes every cfg.probeEvery until the storm ends: each kind in its
// own goroutine, one attempt after another, each on a new connection.
func (p *probes) run(s *storm, addr string) {
	c := s.cfg
	p.raw.sent, p.raw.seen, p.raw.writeKO = map[int]time.Time{}, map[int]time.Time{}, map[string]int{}
	web := &http.Client{Timeout: c.probeTimeout, Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true}}
	sock := &http.Client{Timeout: c.probeTimeout, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", s.sock)
		},
	}}
	every := func(f func(i int)) {
		s.goRun(func() {
			t := time.NewTicker(c.probeEvery)
			defer t.Stop()
			for i := 0; s.ctx.Err() == nil; i++ {
				f(i)
				select {
				case <-s.ctx.Done():
				case <-t.C:
				}
			}
		})
	}
	every(func(int) {
		t0 := time.Now()
		body, code, err := get(s.ctx, web, "http://"+addr+"/metrics")
		took := time.Since(t0)
		if s.ctx.Err() != nil {
			return // cut by the end of the attack: not counted
		}
		if code != 0 {
			v, _ := p.scrapeCodes.LoadOrStore(code, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
		}
		switch {
		case err != nil:
			p.scrape.record(took, failureKind(err))
		case code != http.StatusOK:
			p.scrape.record(took, "status "+strconv.Itoa(code))
		default:
			p.scrape.record(took, "")
			p.raw.look(body, time.Now())
		}
	})
	every(func(i int) {
		t0 := time.Now()
		req, _ := http.NewRequestWithContext(s.ctx, http.MethodPut, "http://localhost/metrics/job/storm_probe",
			strings.NewReader(fmt.Sprintf("# TYPE storm_probe_push gauge\nstorm_probe_push %d\n", i)))
		req.Header.Set("Content-Type", "text/plain; version=0.0.4")
		resp, err := sock.Do(req)
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		took := time.Since(t0)
		if s.ctx.Err() != nil {
			return
		}
		switch {
		case err != nil:
			p.push.record(took, failureKind(err))
		case resp.StatusCode/100 != 2:
			p.push.record(took, "status "+strconv.Itoa(resp.StatusCode))
		default:
			p.push.record(took, "")
		}
	})
	every(func(i int) {
		d := net.Dialer{Timeout: c.probeTimeout}
		conn, err := d.DialContext(s.ctx, "unix", s.sock)
		if err == nil {
			conn.SetWriteDeadline(time.Now().Add(c.probeTimeout))
			_, err = fmt.Fprintf(conn, "storm_probe_raw{n=\"%d\"} 1\n", i)
			conn.Close()
		}
		if s.ctx.Err() != nil {
			return
		}
		p.raw.mu.Lock()
		if err != nil {
			p.raw.writeKO["dial or write failed: "+failureKind(err)]++
		} else {
			p.raw.sent[i] = time.Now()
		}
		p.raw.mu.Unlock()
	})
}

// get fetches url and reads the whole body.
func get(ctx context.Context, client *http.Client, url string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	return body, resp.StatusCode, err
}

// tcpSock is a row of /proc/net/tcp.
type tcpSock struct {
	state   int // 1 ESTABLISHED, 8 CLOSE_WAIT, ...
	txQueue int64
	inode   int64 // 0: no file holds it (not accepted yet, or closed and orphaned)
}

// serverSockets returns the daemon's side of the TCP connections to port,
// by the client's port.
func serverSockets(port int) map[int]tcpSock {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return nil
	}
	m := map[int]tcpSock{}
	for _, l := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) < 10 {
			continue
		}
		_, lp, _ := strings.Cut(f[1], ":")
		_, rp, _ := strings.Cut(f[2], ":")
		lport, _ := strconv.ParseInt(lp, 16, 32)
		rport, _ := strconv.ParseInt(rp, 16, 32)
		if int(lport) != port || rport == 0 {
			continue
		}
		st, _ := strconv.ParseInt(f[3], 16, 32)
		tx, _, _ := strings.Cut(f[4], ":")
		txq, _ := strconv.ParseInt(tx, 16, 64)
		ino, _ := strconv.ParseInt(f[9], 10, 64)
		m[int(rport)] = tcpSock{state: int(st), txQueue: txq, inode: ino}
	}
	return m
}

// attackStats12 count what the attacks of issue 12 did.
type attackStats12 struct {
	// tcp-flood
	tcpDials     atomic.Int64
	tcpDialErrs  atomic.Int64
	tcpAnswered  atomic.Int64 // connections that got an answer to their first request
	tcpOpen      atomic.Int64 // answered and still open now
	tcpMaxOpen   atomic.Int64
	tcpClosed    atomic.Int64 // answered, later closed by the daemon
	tcpWaiting   atomic.Int64 // connected, no answer yet
	tcpMaxWait   atomic.Int64
	tcpRequests  atomic.Int64 // answered requests in all
	kernelHeld   atomic.Int64 // most daemon-side sockets with a file (accepted), from /proc/net/tcp
	kernelQueued atomic.Int64 // most daemon-side sockets without one (in the accept queue)

	// slow-scrape
	fillBytes    atomic.Int64 // size of /metrics after the fill
	fillSeries   atomic.Int64
	slowDials    atomic.Int64
	slowNot200   atomic.Int64 // answered with another status than 200 at once
	slowReleased atomic.Int64 // slow connections the daemon let go (closed its socket)
	slowMinHold  atomic.Int64 // ns
	slowMaxHold  atomic.Int64 // ns
	slowHeldEnd  atomic.Int64 // still held by the daemon at the end
	slowMaxTx    atomic.Int64 // most bytes queued in the kernel for one slow reader

	// stall-push
	stallDials    atomic.Int64
	stallAnswered atomic.Int64 // the daemon answered (or closed) a stalled push
	stallMinHold  atomic.Int64 // ns
	stallMaxHold  atomic.Int64
	stallOpenEnd  atomic.Int64
	stallCodes    sync.Map // status or "closed" -> *atomic.Int64
}

func countIn(m *sync.Map, k any) {
	v, _ := m.LoadOrStore(k, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

func mapString(m *sync.Map) string {
	var s []string
	m.Range(func(k, v any) bool {
		s = append(s, fmt.Sprintf("%v: %d", k, v.(*atomic.Int64).Load()))
		return true
	})
	sort.Strings(s)
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// tcpFloodConn holds one keep-alive connection to the web port: a GET
// /-/healthy, then another every -tcp-keepalive; when the daemon closes it,
// it dials again after -redial-min to -redial-max.
func (s *storm) tcpFloodConn(addr string, a *attackStats12) {
	req := []byte("GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: storm\r\n\r\n")
	for s.ctx.Err() == nil {
		a.tcpDials.Add(1)
		d := net.Dialer{Timeout: 2 * time.Second}
		c, err := d.DialContext(s.ctx, "tcp", addr)
		if err != nil {
			if s.ctx.Err() == nil {
				a.tcpDialErrs.Add(1)
			}
			if !s.sleep(jitter(s.cfg.redialMin, s.cfg.redialMax)) {
				return
			}
			continue
		}
		if !s.conns.add(c) {
			return
		}
		br := bufio.NewReader(c)
		answered := false
		storeMax(&a.tcpMaxWait, a.tcpWaiting.Add(1))
		for s.ctx.Err() == nil {
			c.SetDeadline(s.end.Add(time.Second))
			if _, err = c.Write(req); err != nil {
				break
			}
			var resp *http.Response
			if resp, err = http.ReadResponse(br, nil); err != nil {
				break
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			a.tcpRequests.Add(1)
			if !answered {
				answered = true
				a.tcpWaiting.Add(-1)
				a.tcpAnswered.Add(1)
				storeMax(&a.tcpMaxOpen, a.tcpOpen.Add(1))
			}
			if resp.Close || !s.sleep(s.cfg.tcpKeepAlive) {
				break
			}
		}
		s.conns.remove(c)
		if answered {
			a.tcpOpen.Add(-1)
			if s.ctx.Err() == nil {
				a.tcpClosed.Add(1)
			}
		} else {
			a.tcpWaiting.Add(-1)
		}
		if !s.sleep(jitter(s.cfg.redialMin, s.cfg.redialMax)) {
			return
		}
	}
}

// slowReader requests /metrics on a connection with a tiny receive buffer
// and never reads; it watches the daemon's side of it in /proc/net/tcp and,
// when the daemon lets it go, dials again after -redial-min to -redial-max.
func (s *storm) slowReader(addr string, port int, a *attackStats12, watch *sockWatch) {
	rcv := s.cfg.slowRcvBuf
	d := net.Dialer{Timeout: 2 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcv)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	for s.ctx.Err() == nil {
		c, err := d.DialContext(s.ctx, "tcp", addr)
		if err != nil {
			if !s.sleep(jitter(s.cfg.redialMin, s.cfg.redialMax)) {
				return
			}
			continue
		}
		if !s.conns.add(c) {
			return
		}
		a.slowDials.Add(1)
		t0 := time.Now()
		lport := c.LocalAddr().(*net.TCPAddr).Port
		c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		c.Write([]byte("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: storm-slow\r\n\r\n"))
		// The status line only: a 503 (the in-flight limit was reached,
		// by a probe's scrape or another slow reader) is given up and
		// asked again, as an attacker would.
		var status [12]byte
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, _ := io.ReadFull(c, status[:]); n == len(status) && !bytes.HasSuffix(status[:], []byte(" 200")) {
			a.slowNot200.Add(1)
			s.conns.remove(c)
			if !s.sleep(jitter(s.cfg.redialMin, s.cfg.redialMax)) {
				return
			}
			continue
		}
		released := watch.released(s.ctx, lport)
		if released {
			hold := time.Since(t0)
			a.slowReleased.Add(1)
			storeMin(&a.slowMinHold, int64(hold))
			storeMax(&a.slowMaxHold, int64(hold))
		} else {
			a.slowHeldEnd.Add(1)
		}
		s.conns.remove(c)
		if !released || !s.sleep(jitter(s.cfg.redialMin, s.cfg.redialMax)) {
			return
		}
	}
}

// sockWatch polls /proc/net/tcp every 250 ms for the daemon's side of the
// connections to its web port.
type sockWatch struct {
	port int
	mu   sync.Mutex
	now  map[int]tcpSock
	tick chan struct{} // closed and replaced at each poll
}

func (w *sockWatch) run(ctx context.Context, a *attackStats12) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		m := serverSockets(w.port)
		var held, queued int64
		for _, v := range m {
			if v.inode != 0 {
				held++
			} else if v.state == 1 {
				queued++
			}
		}
		storeMax(&a.kernelHeld, held)
		storeMax(&a.kernelQueued, queued)
		w.mu.Lock()
		w.now = m
		close(w.tick)
		w.tick = make(chan struct{})
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// released waits until the daemon has taken the connection from client
// port lport (its socket has a file) and then let it go (no file any
// more: closed, maybe with data still queued). False if ctx ended first.
func (w *sockWatch) released(ctx context.Context, lport int) bool {
	held := false
	for {
		w.mu.Lock()
		v, ok := w.now[lport]
		tick := w.tick
		w.mu.Unlock()
		switch {
		case ok && v.inode != 0:
			held = true
		case held:
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick:
		}
	}
}

// txMax records the most bytes queued towards one slow reader.
func (w *sockWatch) txMax(a *attackStats12) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, v := range w.now {
		storeMax(&a.slowMaxTx, v.txQueue)
	}
}

// stalledPush sends the head of a push with Content-Length: 100, one byte of
// the body, and waits for the daemon to answer or close; then dials again.
func (s *storm) stalledPush(a *attackStats12) {
	head := []byte("PUT /metrics/job/stall HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: 100\r\n\r\ns")
	for s.ctx.Err() == nil {
		c, err := s.dial()
		if err != nil {
			if !s.sleep(jitter(s.cfg.redialMin, s.cfg.redialMax)) {
				return
			}
			continue
		}
		a.stallDials.Add(1)
		t0 := time.Now()
		c.SetDeadline(s.end.Add(time.Second))
		_, err = c.Write(head)
		var resp *http.Response
		if err == nil {
			resp, err = http.ReadResponse(bufio.NewReader(c), nil)
		}
		s.conns.remove(c)
		if s.ctx.Err() != nil {
			a.stallOpenEnd.Add(1)
			return
		}
		hold := time.Since(t0)
		a.stallAnswered.Add(1)
		storeMin(&a.stallMinHold, int64(hold))
		storeMax(&a.stallMaxHold, int64(hold))
		if err != nil {
			countIn(&a.stallCodes, "closed: "+failureKind(err))
		} else {
			resp.Body.Close()
			countIn(&a.stallCodes, strconv.Itoa(resp.StatusCode))
		}
		if !s.sleep(jitter(s.cfg.redialMin, s.cfg.redialMax)) {
			return
		}
	}
}

// fill pushes n series over one raw connection and waits until the cache
// holds them; it returns the size of /metrics then.
func fill(sock, addr string, n int, a *attackStats12) error {
	c, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	var buf []byte
	for i := range n {
		buf = fmt.Appendf(buf, "storm_fill{i=\"%06d\",pad=\"abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\"} %d\n", i, i)
		if len(buf) > 32<<10 || i == n-1 {
			if _, err := c.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	client := &http.Client{Timeout: 10 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		body, code, err := get(context.Background(), client, "http://"+addr+"/metrics")
		if err == nil && code == http.StatusOK {
			got := bytes.Count(body, []byte("\nstorm_fill{"))
			if got >= n || time.Now().After(deadline) {
				a.fillBytes.Store(int64(len(body)))
				a.fillSeries.Store(int64(got))
				if got < n {
					fmt.Fprintf(os.Stderr, "storm: the cache holds %d of the %d fill series\n", got, n)
				}
				return nil
			}
		} else if time.Now().After(deadline) {
			return fmt.Errorf("scrape after the fill: %d %v", code, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// runAttack runs c.attack and prints its report.
func runAttack(parent context.Context, c *config) int {
	started := time.Now()
	version := "?"
	if out, err := exec12(c.bin); err == nil {
		version = out
	} else {
		fmt.Fprintf(os.Stderr, "storm: %s --version: %v\n", c.bin, err)
		return 2
	}
	dir, err := os.MkdirTemp("", "storm-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "storm: %v\n", err)
		return 2
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "push.sock")
	port, err := freePort()
	if err != nil {
		fmt.Fprintf(os.Stderr, "storm: %v\n", err)
		return 2
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := []string{
		"--ingest.socket=" + sock,
		"--web.listen-address=" + addr,
		"--cache.size=" + c.cacheSize,
		"--cache.ttl=10m", // no series of the attack ages out during it
	}
	if c.idleTimeoutSet {
		args = append(args, "--ingest.idle-timeout="+c.idleTimeout.String())
	}
	if c.maxConnsSet {
		args = append(args, "--ingest.max-connections="+strconv.Itoa(c.maxConns))
	}
	args = append(args, strings.Fields(c.extra)...)
	d, err := startDaemon(c.bin, sock, addr, args, c.nofile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "storm: %v\n", err)
		return 2
	}
	defer func() {
		if !d.dead() {
			d.stop(time.Second)
		}
	}()
	openFiles := maxOpenFiles(d.pid)
	fmt.Fprintf(os.Stderr, "storm: %s: daemon pid %d (open files %s): %s %s\n", c.attack, d.pid, openFiles, c.bin, strings.Join(args, " "))

	a := &attackStats12{}
	if c.attack == "slow-scrape" && c.fillSeries > 0 {
		t0 := time.Now()
		if err := fill(sock, addr, c.fillSeries, a); err != nil {
			fmt.Fprintf(os.Stderr, "storm: fill: %v\n", err)
			return 2
		}
		fmt.Fprintf(os.Stderr, "storm: filled %d series in %s, /metrics is %.2f MiB\n", a.fillSeries.Load(), secs(time.Since(t0)), float64(a.fillBytes.Load())/(1<<20))
	}
	time.Sleep(500 * time.Millisecond) // settle
	pre, err := readProc(d.pid)
	if err != nil {
		fmt.Fprintf(os.Stderr, "storm: %v\n", err)
		return 2
	}

	smp, stopSampler := startSampler(d.pid)
	defer stopSampler()
	start := smp.start
	end := start.Add(c.duration)

	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	s := &storm{cfg: c, sock: sock, ctx: ctx, end: end}
	var pushers []*pusher
	watch := &sockWatch{port: port, tick: make(chan struct{})}
	s.goRun(func() { watch.run(ctx, a) })

	// The real pushers connect first, then the probes start, then the
	// attack from 0.5 s on, spread over a second.
	if c.attack == "idle-dialers" {
		for i := range c.pushers {
			p := &pusher{id: i, series: c.series}
			pushers = append(pushers, p)
			s.goRun(func() { p.run(s) })
		}
	}
	pr := &probes{}
	pr.run(s, addr)
	spread := func(n int, f func()) {
		s.goRun(func() {
			if !s.sleep(500 * time.Millisecond) {
				return
			}
			for i := range n {
				if i%50 == 0 && i > 0 && !s.sleep(time.Second*50/time.Duration(max(n, 1))) {
					return
				}
				s.goRun(f)
			}
		})
	}
	switch c.attack {
	case "tcp-flood":
		spread(c.tcpConns, func() { s.tcpFloodConn(addr, a) })
	case "slow-scrape":
		spread(c.slowReaders, func() { s.slowReader(addr, port, a, watch) })
		s.goRun(func() {
			for s.sleep(250 * time.Millisecond) {
				watch.txMax(a)
			}
		})
	case "stall-push":
		spread(c.stallConns, func() { s.stalledPush(a) })
	case "idle-dialers":
		spread(c.idle, s.idleConn)
	}

	crashed, interrupted := false, false
	progress := time.NewTicker(5 * time.Second)
	defer progress.Stop()
	timer := time.NewTimer(time.Until(end))
	defer timer.Stop()
wait:
	for {
		select {
		case <-timer.C:
			break wait
		case <-d.exited:
			crashed = true
			break wait
		case <-parent.Done():
			interrupted = true
			break wait
		case <-progress.C:
			m, _ := readProc(d.pid)
			fmt.Fprintf(os.Stderr, "storm: %4.0fs  rss %s kB  hwm %s kB  fds %d  scrapes %d/%d  pushes %d/%d  (ok/failed)\n",
				time.Since(start).Seconds(), commas(m.rssKB), commas(m.hwmKB), m.fds,
				pr.scrape.ok.Load(), pr.scrape.fail.Load(), pr.push.ok.Load(), pr.push.fail.Load())
		}
	}
	endSample, _ := smp.sample()
	took := time.Since(start)
	attackEnd := time.Now()
	cancel()
	s.conns.closeAll()
	stuck := false
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		stuck = true
	}

	// A last scrape, once the attack has gone, for the raw probe lines
	// applied late and for the self-metrics.
	var self map[string]float64
	var selfErr error
	if !d.dead() {
		time.Sleep(500 * time.Millisecond) // the last raw lines are read and applied
		client := &http.Client{Timeout: 10 * time.Second}
		for try := 0; try < 5; try++ {
			body, code, err := get(context.Background(), client, "http://"+addr+"/metrics")
			if err == nil && code == http.StatusOK {
				pr.raw.look(body, time.Now())
				self, selfErr = selfMetrics12(body), nil
				break
			}
			selfErr = fmt.Errorf("status %d, %v", code, err)
			time.Sleep(time.Second)
		}
	}
	stopSampler()
	var shutdown time.Duration
	killed := false
	if !crashed {
		shutdown, killed = d.stop(8 * time.Second)
	}

	// The report.
	w := os.Stdout
	row := func(k, format string, args ...any) { fmt.Fprintf(w, "| %s | %s |\n", k, fmt.Sprintf(format, args...)) }
	var hwm, peakFDs, peakThreads int64
	for _, m := range smp.samples() {
		hwm = max(hwm, m.hwmKB)
		peakFDs = max(peakFDs, m.fds)
		peakThreads = max(peakThreads, m.threads)
	}
	var shown []string
	for _, x := range args {
		switch {
		case strings.HasPrefix(x, "--ingest.socket="):
			x = "--ingest.socket=$TMP/push.sock"
		case strings.HasPrefix(x, "--web.listen-address="):
			x = "--web.listen-address=127.0.0.1:$PORT"
		}
		shown = append(shown, x)
	}
	fmt.Fprintf(w, "\nAttack %s, %s, against %s (%s), %s, started %s.\n\n", c.attack, secs(took), c.bin, version, machine(),
		started.UTC().Format("2006-01-02 15:04:05 UTC"))
	fmt.Fprintln(w, "| | |")
	fmt.Fprintln(w, "|---|---|")
	row("command", "`%s`", strings.Join(os.Args, " "))
	row("daemon flags", "`%s`", strings.Join(shown, " "))
	nofile := "inherited"
	if c.nofile > 0 {
		nofile = "ulimit -n " + strconv.Itoa(c.nofile)
	}
	row("daemon RLIMIT_NOFILE", "%s (%s)", openFiles, nofile)
	row("RSS before the attack", "%s", mib(pre.rssKB))
	row("**peak RSS (VmHWM)**", "**%s**", mib(hwm))
	row("RSS at the end of the attack", "%s", mib(endSample.rssKB))
	row("daemon descriptors / threads, peak", "%d / %d", peakFDs, peakThreads)
	row("probe: scrape (TCP GET /metrics, new connection, every "+c.probeEvery.String()+", "+c.probeTimeout.String()+" timeout) ok / failed", "%s; statuses %s", pr.scrape.String(), mapString(&pr.scrapeCodes))
	row("probe: HTTP push (socket PUT /metrics/job/storm_probe, new connection) ok / failed", "%s", pr.push.String())
	soon, late, never, worst, writeKO := pr.raw.tally(c.probeTimeout, attackEnd)
	rawNote := ""
	if writeKO != "" {
		rawNote = "; " + writeKO
	}
	row("probe: raw line (socket, new connection)", "**%d** seen in a scrape within %s of the write (worst %s), %d seen only later, %d never%s",
		soon, c.probeTimeout, ms(worst), late, never, rawNote)
	var notes string
	switch c.attack {
	case "tcp-flood":
		row("TCP flood", "%d clients, GET /-/healthy every %s on each: %s dials (%d failed); answered: %s connections (most open at once %s), %s requests; closed by the daemon after an answer: %s; connected and never answered, most at once: %s",
			c.tcpConns, c.tcpKeepAlive, commas(a.tcpDials.Load()), a.tcpDialErrs.Load(), commas(a.tcpAnswered.Load()), commas(a.tcpMaxOpen.Load()),
			commas(a.tcpRequests.Load()), commas(a.tcpClosed.Load()), commas(a.tcpMaxWait.Load()))
		row("daemon side, /proc/net/tcp", "most sockets accepted (with a file) at once: %s; most waiting in the accept queue: %s", commas(a.kernelHeld.Load()), commas(a.kernelQueued.Load()))
		notes = fmt.Sprintf("%s of %d connections answered, %s most open at once; %s accepted at once (kernel)",
			commas(a.tcpAnswered.Load()), c.tcpConns, commas(a.tcpMaxOpen.Load()), commas(a.kernelHeld.Load()))
	case "slow-scrape":
		row("fill", "%s series, /metrics %.2f MiB", commas(a.fillSeries.Load()), float64(a.fillBytes.Load())/(1<<20))
		row("slow readers", "%d clients with SO_RCVBUF %d, reading the status line only: %d requests, %d of them not 200 (asked again); the daemon let go of %d, held for %s – %s; still held at the end: %d; most bytes queued in the kernel for one: %s",
			c.slowReaders, c.slowRcvBuf, a.slowDials.Load(), a.slowNot200.Load(), a.slowReleased.Load(),
			secs(time.Duration(a.slowMinHold.Load())), secs(time.Duration(a.slowMaxHold.Load())), a.slowHeldEnd.Load(), commas(a.slowMaxTx.Load()))
		held := fmt.Sprintf("%d still held at the end (%s)", a.slowHeldEnd.Load(), secs(took))
		if a.slowReleased.Load() > 0 {
			held = fmt.Sprintf("let go after %s – %s, %d still held at the end", secs(time.Duration(a.slowMinHold.Load())), secs(time.Duration(a.slowMaxHold.Load())), a.slowHeldEnd.Load())
		}
		notes = fmt.Sprintf("/metrics %.1f MiB; slow readers %s", float64(a.fillBytes.Load())/(1<<20), held)
	case "stall-push":
		row("stalled pushes", "%d clients: %d pushes stalled after 1 of 100 body bytes; the daemon answered or closed %d, after %s – %s (%s); still stalled at the end: %d",
			c.stallConns, a.stallDials.Load(), a.stallAnswered.Load(), secs(time.Duration(a.stallMinHold.Load())), secs(time.Duration(a.stallMaxHold.Load())),
			mapString(&a.stallCodes), a.stallOpenEnd.Load())
		notes = fmt.Sprintf("%d stalled pushes; %d cut by the daemon; %d still stalled at the end", a.stallDials.Load(), a.stallAnswered.Load(), a.stallOpenEnd.Load())
	case "idle-dialers":
		st := &s.a
		row("idle dialers", "%d clients, dialling again %s – %s after the daemon closes them: %s dials (%d failed); closed at accept: %s; closed by the idle timeout: %s",
			c.idle, c.redialMin, c.redialMax, commas(st.idleDials.Load()), st.idleDialErrs.Load(), commas(st.idleRefused.Load()), commas(st.idleReaped.Load()))
		var written, perrs, redials int64
		var gap time.Duration
		for _, p := range pushers {
			n, g := p.written()
			written += n
			gap = max(gap, g)
			perrs += p.errs.Load()
			redials += p.redials.Load()
		}
		row("real pushers (connected before the attack)", "%d × %d series every 100 ms: %s batches, %d write errors, %d failed dials; longest gap %s",
			c.pushers, c.series, commas(written), perrs, redials, ms(gap))
		notes = fmt.Sprintf("%s dials of %d idle clients, %s closed at accept", commas(st.idleDials.Load()), c.idle, commas(st.idleRefused.Load()))
	}
	if self != nil {
		v := func(k string) string {
			if x, ok := self[k]; ok && x >= 0 {
				return commas(int64(x))
			}
			return "absent"
		}
		row("self: scrapes refused (503) / socket connections refused / idle closed / pushes", "%s / %s / %s / %s",
			v("web_refused"), v("refused"), v("idle_closed"), v("pushes"))
	} else {
		row("self-metrics", "the last scrape failed: %v", selfErr)
	}
	switch {
	case crashed:
		row("daemon", "**exited during the attack** (status %d)", d.exitCode())
	default:
		row("shutdown (SIGTERM)", "exit status %d after %s%s", d.exitCode(), secs(shutdown), map[bool]string{true: ", **killed after 8 s**"}[killed])
	}
	lv := []string{}
	for k, n := range d.log.logLevels() {
		lv = append(lv, k+" "+strconv.Itoa(n))
	}
	sort.Strings(lv)
	row("daemon log", "%d lines (%s)", d.log.lineCount(), strings.Join(lv, ", "))
	fmt.Fprintf(w, "\nSummary row: | %s | %s | %d / %d | %d / %d | %d / %d / %d | %s |\n", c.attack, mib(hwm),
		pr.scrape.ok.Load(), pr.scrape.fail.Load(), pr.push.ok.Load(), pr.push.fail.Load(), soon, late, never, notes)
	if tail := d.log.String(); crashed || killed || d.log.lineCount() > 2 {
		if len(tail) > 2048 {
			tail = tail[len(tail)-2048:]
		}
		fmt.Fprintf(w, "\nEnd of the daemon's log:\n\n```\n%s\n```\n", strings.TrimSpace(tail))
	}
	if stuck {
		fmt.Fprintln(os.Stderr, "storm: goroutines of the attack did not stop")
	}
	switch {
	case crashed:
		fmt.Fprintln(os.Stderr, "storm: the daemon exited during the attack")
		return 1
	case interrupted:
		fmt.Fprintln(os.Stderr, "storm: interrupted")
		return 1
	}
	return 0
}

func exec12(bin string) (string, error) {
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%v: %s", err, out)
	}
	v, _, _ := strings.Cut(string(out), "\n")
	return v, nil
}

// selfMetrics12 picks the self-metrics an attack report shows from a
// scrape's body, without parsing the whole of a large one.
func selfMetrics12(body []byte) map[string]float64 {
	sum := func(prefix string, need string) float64 {
		v, found := 0.0, false
		for _, l := range strings.Split(string(body), "\n") {
			if !strings.HasPrefix(l, prefix) || (need != "" && !strings.Contains(l, need)) {
				continue
			}
			rest := l[len(prefix):]
			if rest != "" && rest[0] != ' ' && rest[0] != '{' {
				continue // another family with a longer name
			}
			f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
			if len(f) == 0 {
				continue
			}
			if x, err := strconv.ParseFloat(f[0], 64); err == nil {
				v, found = v+x, true
			}
		}
		if !found {
			return -1
		}
		return v
	}
	return map[string]float64{
		"web_refused": sum("push_gateway_web_requests_refused_total", ""),
		"refused":     sum("push_gateway_ingest_connections_refused_total", ""),
		"idle_closed": sum("push_gateway_ingest_idle_closed_total", ""),
		"pushes":      sum("push_gateway_ingest_pushes_total", ""),
	}
}
