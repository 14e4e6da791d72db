package main

// Integration tests of the real binary: TestMain builds it once, each test
// starts its own daemon on a fresh socket and 127.0.0.1:0, reads the bound
// address from the start-up log line, pushes over the real Unix socket,
// scrapes over real TCP and stops the daemon with SIGTERM, checking that it
// exits 0 within 5 seconds and removes its socket file.
//
// When the test binary is built with -race, so is the daemon (without the
// race runtime's one-second sleep at exit), and a race report on its stderr
// fails the test that started it.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// binary is the daemon built by TestMain.
var binary string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "push-gateway-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "push-gateway")
	args := []string{"build", "-o", binary}
	if raceEnabled() {
		args = append(args, "-race")
	}
	args = append(args, ".")
	// GOFLAGS and the rest of the environment are inherited.
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "cannot build the daemon: go %s: %v\n", strings.Join(args, " "), err)
		return 1
	}
	return m.Run()
}

// raceEnabled reports whether this test binary was built with -race.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" && s.Value == "true" {
			return true
		}
	}
	return false
}

const wantContentType = "text/plain; version=0.0.4; charset=utf-8"

// ---------------------------------------------------------------------------
// The daemon under test.

type daemon struct {
	t         *testing.T
	cmd       *exec.Cmd
	socket    string // from the start-up line
	addr      string // host:port of the web server, from the start-up line
	stderr    logLines
	exited    chan struct{} // closed once the process has exited and its stderr is read
	state     *os.ProcessState
	tcp, unix *http.Client
	stopped   bool
}

// logLines collects the daemon's stderr.
type logLines struct {
	mu sync.Mutex
	l  []string
}

func (b *logLines) add(s string) {
	b.mu.Lock()
	b.l = append(b.l, s)
	b.mu.Unlock()
}

func (b *logLines) all() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.l)
}

func (b *logLines) String() string { return strings.Join(b.all(), "\n") }

// shortTempDir returns a fresh directory with a short path: a Unix socket
// path must fit in 108 bytes, and t.TempDir embeds the test's name.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// cleanEnv is the test's environment without anything that would configure
// the daemon behind the test's back.
func cleanEnv() []string {
	var env []string
	gorace := ""
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PUSH_GATEWAY_") || strings.HasPrefix(kv, "LISTEN_") {
			continue
		}
		if v, ok := strings.CutPrefix(kv, "GORACE="); ok {
			gorace = v + " "
			continue
		}
		env = append(env, kv)
	}
	// A -race binary sleeps a second at exit by default; the exit deadline
	// is the daemon's, not the race runtime's.
	return append(env, "GORACE="+gorace+"atexit_sleep_ms=0")
}

// startDaemon starts the daemon on a fresh socket and 127.0.0.1:0, with
// extra flags after those.
func startDaemon(t *testing.T, extra ...string) *daemon {
	t.Helper()
	sock := filepath.Join(shortTempDir(t), "p.sock")
	args := append([]string{"--ingest.socket=" + sock, "--web.listen-address=127.0.0.1:0"}, extra...)
	return launch(t, nil, args...)
}

// launch starts the daemon with exactly these flags and extra environment,
// and waits (10 s at most) for its start-up line. A cleanup stops it with
// SIGTERM and checks how it exits.
func launch(t *testing.T, env []string, args ...string) *daemon {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, exited: make(chan struct{})}
	d.cmd = exec.Command(binary, args...)
	d.cmd.Env = append(cleanEnv(), env...)
	d.cmd.Stderr = w
	if err := d.cmd.Start(); err != nil {
		r.Close()
		w.Close()
		t.Fatalf("cannot start %s: %v", binary, err)
	}
	w.Close()
	started := make(chan startLine, 1)
	drained := make(chan struct{})
	go d.readStderr(r, started, drained)
	go func() {
		d.cmd.Wait() // the exit status is in ProcessState
		<-drained
		d.state = d.cmd.ProcessState
		close(d.exited)
	}()
	t.Cleanup(d.cleanup)

	select {
	case s := <-started:
		d.socket, d.addr = s.socket, s.addr
	case <-d.exited:
		d.stopped = true
		t.Fatalf("push-gateway %s exited (%v) before logging its start-up line; stderr:\n%s",
			strings.Join(args, " "), d.state, d.stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("push-gateway %s logged no start-up line (msg=\"starting ...\" with socket= and address=) within 10s; stderr:\n%s",
			strings.Join(args, " "), d.stderr.String())
	}
	if _, port, err := net.SplitHostPort(d.addr); err != nil || port == "0" || port == "" {
		t.Fatalf("start-up line gives address %q, want host:port with the bound port", d.addr)
	}
	d.tcp = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	d.unix = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var nd net.Dialer
			return nd.DialContext(ctx, "unix", d.socket)
		},
	}}
	return d
}

type startLine struct{ socket, addr string }

func (d *daemon) readStderr(r *os.File, started chan<- startLine, drained chan<- struct{}) {
	defer close(drained)
	defer r.Close()
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line = strings.TrimRight(line, "\n"); line != "" {
			d.stderr.add(line)
			if s, ok := parseStartLine(line); ok {
				select {
				case started <- s:
				default:
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// parseStartLine reads the start-up info line, in logfmt or JSON.
func parseStartLine(line string) (startLine, bool) {
	f := logFields(line)
	if !strings.HasPrefix(f["msg"], "starting") || f["socket"] == "" || f["address"] == "" {
		return startLine{}, false
	}
	return startLine{socket: f["socket"], addr: f["address"]}, true
}

// logFields splits a log line, logfmt or JSON, into its string fields.
func logFields(line string) map[string]string {
	f := map[string]string{}
	if strings.HasPrefix(line, "{") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			for k, v := range m {
				if s, ok := v.(string); ok {
					f[k] = s
				}
			}
		}
		return f
	}
	for i := 0; i < len(line); {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		j := i
		for j < len(line) && line[j] != '=' && line[j] != ' ' {
			j++
		}
		key := line[i:j]
		if j == len(line) || line[j] != '=' {
			i = j
			continue
		}
		j++ // past '='
		if j < len(line) && line[j] == '"' {
			k := j + 1
			for k < len(line) && line[k] != '"' {
				if line[k] == '\\' {
					k++
				}
				k++
			}
			end := min(k+1, len(line))
			v, err := strconv.Unquote(line[j:end])
			if err != nil {
				v = line[j:end]
			}
			f[key], i = v, end
			continue
		}
		k := j
		for k < len(line) && line[k] != ' ' {
			k++
		}
		f[key], i = line[j:k], k
	}
	return f
}

func (d *daemon) cleanup() {
	d.stop(syscall.SIGTERM)
	if d.tcp != nil {
		d.tcp.CloseIdleConnections()
		d.unix.CloseIdleConnections()
	}
	log := d.stderr.String()
	switch {
	case strings.Contains(log, "WARNING: DATA RACE"), strings.Contains(log, "panic:"), strings.Contains(log, "fatal error:"):
		d.t.Errorf("the daemon reported a race or crashed; stderr:\n%s", log)
	case d.t.Failed():
		d.t.Logf("daemon stderr:\n%s", log)
	}
}

// stop sends sig and checks the daemon's exit: status 0 within 5 s, socket
// file removed. It returns how long the exit took. Only the first call acts.
func (d *daemon) stop(sig os.Signal) time.Duration {
	t := d.t
	t.Helper()
	if d.stopped {
		return 0
	}
	d.stopped = true
	select {
	case <-d.exited:
		t.Errorf("the daemon had exited (%v) before it was sent %v", d.state, sig)
		return 0
	default:
	}
	start := time.Now()
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Errorf("cannot send %v: %v", sig, err)
	}
	select {
	case <-d.exited:
	case <-time.After(5 * time.Second):
		t.Errorf("the daemon is still running 5s after %v", sig)
		d.cmd.Process.Kill()
		<-d.exited
		return time.Since(start)
	}
	took := time.Since(start)
	if c := d.state.ExitCode(); c != 0 {
		t.Errorf("exit after %v: %v, want status 0", sig, d.state)
	}
	if _, err := os.Lstat(d.socket); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file %s still there after exit on %v (lstat: %v)", d.socket, sig, err)
	}
	return took
}

// dial opens a raw connection to the push socket, closed at cleanup.
func (d *daemon) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("unix", d.socket, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", d.socket, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func writeConn(t *testing.T, c net.Conn, s string) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatalf("write to push socket: %v", err)
	}
}

// push writes data on a fresh raw connection and closes it.
func (d *daemon) push(t *testing.T, data string) {
	t.Helper()
	c, err := net.DialTimeout("unix", d.socket, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", d.socket, err)
	}
	writeConn(t, c, data)
	if err := c.Close(); err != nil {
		t.Fatalf("close push connection: %v", err)
	}
}

// request sends an HTTP request over TCP or, with viaSocket, over the push
// socket, and returns the response with its body read.
func (d *daemon) request(t *testing.T, viaSocket bool, method, path, contentType, body string) (*http.Response, string) {
	t.Helper()
	c, url := d.tcp, "http://"+d.addr+path
	if viaSocket {
		c, url = d.unix, "http://push-gateway"+path
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp, string(b)
}

// ---------------------------------------------------------------------------
// Scrapes.

type exposition struct {
	body string
	fams map[string]*dto.MetricFamily
}

// scrape GETs /metrics over TCP, checks status, Content-Type, that expfmt
// parses it and that it is well formed (checkExposition).
func (d *daemon) scrape(t *testing.T) *exposition {
	t.Helper()
	return d.scrapePath(t, false, "/metrics")
}

func (d *daemon) scrapePath(t *testing.T, viaSocket bool, path string) *exposition {
	t.Helper()
	resp, body := d.request(t, viaSocket, http.MethodGet, path, "", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200; body:\n%s", path, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != wantContentType {
		t.Fatalf("GET %s: Content-Type %q, want %q", path, ct, wantContentType)
	}
	return parseExposition(t, body)
}

func parseExposition(t *testing.T, body string) *exposition {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("the scrape does not parse with expfmt: %v\n--- body ---\n%s", err, body)
	}
	checkExposition(t, body)
	return &exposition{body: body, fams: fams}
}

// metric returns the metric of family name with exactly these labels
// (name, value pairs), or nil.
func (e *exposition) metric(name string, labels ...string) *dto.Metric {
	f := e.fams[name]
	if f == nil {
		return nil
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, m := range f.Metric {
		if sameLabels(m, want) {
			return m
		}
	}
	return nil
}

func labelMap(m *dto.Metric) map[string]string {
	got := map[string]string{}
	for _, l := range m.Label {
		got[l.GetName()] = l.GetValue()
	}
	return got
}

func sameLabels(m *dto.Metric, want map[string]string) bool {
	got := labelMap(m)
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			return false
		}
	}
	return true
}

// value returns the value of a counter, gauge or untyped series.
func (e *exposition) value(name string, labels ...string) (float64, bool) {
	m := e.metric(name, labels...)
	switch {
	case m == nil:
		return 0, false
	case m.Counter != nil:
		return m.Counter.GetValue(), true
	case m.Gauge != nil:
		return m.Gauge.GetValue(), true
	case m.Untyped != nil:
		return m.Untyped.GetValue(), true
	}
	return 0, false
}

func (e *exposition) mustValue(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	v, ok := e.value(name, labels...)
	if !ok {
		t.Fatalf("no series %s%v in the scrape:\n%s", name, labels, e.body)
	}
	return v
}

// pushed returns the names of the families that are not self-metrics.
func (e *exposition) pushed() []string {
	var n []string
	for name := range e.fams {
		if !strings.HasPrefix(name, "push_gateway_") {
			n = append(n, name)
		}
	}
	sort.Strings(n)
	return n
}

// sampleLines counts the sample lines of families that are not self-metrics.
func (e *exposition) sampleLines() int {
	n := 0
	for _, l := range strings.Split(e.body, "\n") {
		if l != "" && !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "push_gateway_") {
			n++
		}
	}
	return n
}

// sum adds up every series of a counter, gauge or untyped family; ok is
// false when the family is missing.
func (e *exposition) sum(name string) (total float64, ok bool) {
	f := e.fams[name]
	if f == nil {
		return 0, false
	}
	for _, m := range f.Metric {
		total += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
	}
	return total, true
}

// rejected returns push_gateway_ingest_lines_rejected_total by reason.
func (e *exposition) rejected() map[string]float64 {
	r := map[string]float64{}
	if f := e.fams["push_gateway_ingest_lines_rejected_total"]; f != nil {
		for _, m := range f.Metric {
			r[labelMap(m)["reason"]] += m.GetCounter().GetValue()
		}
	}
	return r
}

// eventually calls cond until it reports true, failing the test with cond's
// last description after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	delay := 5 * time.Millisecond
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last seen:\n%s", what, timeout, last)
		}
		time.Sleep(delay)
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// waitValue scrapes until series name{labels} has value want.
func (d *daemon) waitValue(t *testing.T, timeout time.Duration, want float64, name string, labels ...string) *exposition {
	t.Helper()
	var e *exposition
	eventually(t, timeout, fmt.Sprintf("%s%v == %v", name, labels, want), func() (bool, string) {
		e = d.scrape(t)
		v, ok := e.value(name, labels...)
		return ok && (v == want || math.IsNaN(v) && math.IsNaN(want)), e.body
	})
	return e
}

// ---------------------------------------------------------------------------
// A structural check of the text format beyond what expfmt enforces: one
// HELP (optional) and TYPE per family, families sorted by name, every sample
// inside its family, no timestamps, no empty label values, no series twice,
// and the lines of each histogram or summary series together, buckets or
// quantiles ascending, then _sum, then _count.

func checkExposition(t *testing.T, body string) {
	t.Helper()
	if body == "" {
		return
	}
	if !strings.HasSuffix(body, "\n") {
		t.Errorf("exposition does not end with a newline")
	}
	var (
		fam, typ, prev, helpFor string
		seenFam                 = map[string]bool{}
		seenSeries              = map[string]bool{}
		doneSeries              map[string]bool
		cur                     string
		curSet                  bool
		phase                   int
		last                    float64
	)
	for i, line := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		bad := func(format string, args ...any) {
			t.Errorf("exposition line %d %q: %s", i+1, line, fmt.Sprintf(format, args...))
		}
		if helpFor != "" && !strings.HasPrefix(line, "# TYPE "+helpFor+" ") {
			bad("HELP of %s is not followed by its TYPE", helpFor)
		}
		switch {
		case strings.HasPrefix(line, "# HELP "):
			name, _, _ := strings.Cut(line[len("# HELP "):], " ")
			helpFor = name
			continue
		case strings.HasPrefix(line, "# TYPE "):
			helpFor = ""
			f := strings.Fields(line[len("# TYPE "):])
			if len(f) != 2 {
				bad("malformed TYPE line")
				continue
			}
			if seenFam[f[0]] {
				bad("family %s appears twice", f[0])
			}
			if f[0] <= prev {
				bad("families not sorted by name: %s after %s", f[0], prev)
			}
			seenFam[f[0]] = true
			fam, typ, prev = f[0], f[1], f[0]
			doneSeries, curSet = map[string]bool{}, false
			continue
		case line == "" || strings.HasPrefix(line, "#"):
			bad("blank line or stray comment")
			continue
		}
		name, labels, value, ok := splitSample(line)
		if !ok {
			bad("not a sample line")
			continue
		}
		if strings.ContainsAny(value, " \t") {
			bad("more than a value after the labels (timestamps are to be dropped)")
		}
		if _, err := strconv.ParseFloat(value, 64); err != nil {
			bad("value %q is not a float", value)
		}
		pairs, ok := splitLabels(labels)
		if !ok {
			bad("malformed labels")
			continue
		}
		for _, p := range pairs {
			if p[1] == "" {
				bad("label %s has an empty value, which means no such label", p[0])
			}
		}
		canon := slices.Clone(pairs)
		slices.SortFunc(canon, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
		if k := name + fmt.Sprint(canon); seenSeries[k] {
			bad("series exposed twice")
		} else {
			seenSeries[k] = true
		}
		suffix, ok := sampleSuffix(name, fam, typ)
		if !ok {
			bad("sample %s is outside its family %s (%s)", name, fam, typ)
			continue
		}
		if typ != "histogram" && typ != "summary" {
			continue
		}
		extra := "le"
		if typ == "summary" {
			extra = "quantile"
		}
		isExtra := (typ == "histogram" && suffix == "_bucket") || (typ == "summary" && suffix == "")
		var key []string
		bound := ""
		hasBound := false
		for _, p := range canon {
			if isExtra && p[0] == extra {
				bound, hasBound = p[1], true
				continue
			}
			key = append(key, p[0]+"="+p[1])
		}
		if k := strings.Join(key, ","); !curSet || k != cur {
			if doneSeries[k] {
				bad("lines of series {%s} of %s are not together", k, fam)
			}
			if curSet {
				doneSeries[cur] = true
			}
			cur, curSet, phase, last = k, true, 0, math.Inf(-1)
		}
		switch {
		case isExtra:
			if !hasBound {
				bad("no %s label", extra)
				continue
			}
			b, err := strconv.ParseFloat(bound, 64)
			if err != nil {
				bad("%s=%q is not a number", extra, bound)
				continue
			}
			if phase > 0 {
				bad("%s line after _sum or _count", extra)
			}
			if b <= last {
				bad("%s=%q not in ascending order", extra, bound)
			}
			last = b
		case suffix == "_sum":
			if phase >= 1 {
				bad("_sum after _sum or _count")
			}
			phase = 1
		case suffix == "_count":
			if phase >= 2 {
				bad("_count twice")
			}
			phase = 2
		}
	}
	if helpFor != "" {
		t.Errorf("exposition ends with the HELP of %s, without its TYPE", helpFor)
	}
}

// sampleSuffix tells which line of family fam of type typ the sample name
// is: "" for the family's own name, or _bucket, _sum, _count.
func sampleSuffix(name, fam, typ string) (string, bool) {
	if name == fam {
		return "", typ != "histogram"
	}
	s, ok := strings.CutPrefix(name, fam)
	if !ok {
		return "", false
	}
	switch {
	case typ == "histogram" && (s == "_bucket" || s == "_sum" || s == "_count"):
		return s, true
	case typ == "summary" && (s == "_sum" || s == "_count"):
		return s, true
	}
	return "", false
}

// splitSample splits a sample line into name, the text between the braces
// and what follows the labels after one blank.
func splitSample(line string) (name, labels, rest string, ok bool) {
	i := strings.IndexAny(line, "{ ")
	if i <= 0 {
		return "", "", "", false
	}
	name = line[:i]
	if line[i] == '{' {
		j, inq := i+1, false
		for ; j < len(line); j++ {
			c := line[j]
			if inq {
				if c == '\\' {
					j++
				} else if c == '"' {
					inq = false
				}
				continue
			}
			if c == '"' {
				inq = true
			} else if c == '}' {
				break
			}
		}
		if j >= len(line) {
			return "", "", "", false
		}
		labels, line = line[i+1:j], line[j+1:]
	} else {
		line = line[i:]
	}
	rest, ok = strings.CutPrefix(line, " ")
	return name, labels, rest, ok && rest != ""
}

// splitLabels splits name="value",... into pairs, values still escaped.
func splitLabels(s string) ([][2]string, bool) {
	var out [][2]string
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			return nil, false
		}
		name := s[:eq]
		j := eq + 2
		for j < len(s) && s[j] != '"' {
			if s[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(s) {
			return nil, false
		}
		out = append(out, [2]string{name, s[eq+2 : j]})
		s = s[j+1:]
		if s != "" {
			if s[0] != ',' {
				return nil, false
			}
			s = s[1:]
		}
	}
	return out, true
}

// ---------------------------------------------------------------------------
// 1. One batch over the raw stream, every feature of the format at once.

func TestRawStreamBatch(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	batch := []string{
		`# A free-form comment: ignored.`,
		``,
		`# HELP http_requests_total Requests served.\nSecond line, with a backslash: \\.`,
		`# TYPE http_requests_total counter`,
		`http_requests_total{method="GET",code="200"} 1027 1395066363000`,
		`http_requests_total{code="400",method="POST"} 3`,
		`bad_syntax{a="b" 1`, // rejected: syntax
		`http_requests_total{code="200",method="GET"} 1030`, // the first series: label order does not matter
		`dup_label{a="1",a="2"} 1`,                          // rejected: duplicate label
		`# TYPE temperature_celsius gauge`,
		`temperature_celsius{sensor="a",zone=""} 21.5`,
		`temperature_celsius{sensor="a"} 22.25`, // the same series: an empty label is no label
		`temperature_celsius{zone="",sensor="b"} -3`,
		`bad_timestamp 1 12:00`, // rejected: timestamp
		`escaped_info{path="C:\\dir\\file",quote="say \"hi\"",nl="line1\nline2"} 1`,
		"bad_utf8{v=\"\xff\xfe\"} 1", // rejected: not UTF-8
		`# TYPE weird_values gauge`,
		`weird_values{kind="nan"} NaN`,
		`weird_values{kind="pinf"} +Inf`,
		`weird_values{kind="ninf"} -Inf`,
		`# TYPE rpc_duration_seconds histogram`,
		`# HELP rpc_duration_seconds RPC latency.`,
		`rpc_duration_seconds_count{service="a"} 144320`,
		`rpc_duration_seconds_bucket{le="+Inf",service="a"} 144320`,
		`rpc_duration_seconds_bucket{service="a",le="0.5"} 129389`,
		`rpc_duration_seconds_bucket{le="oops",service="a"} 5`, // rejected: le not a number
		`rpc_duration_seconds_sum{service="a"} 53423`,
		`rpc_duration_seconds_bucket{le="0.05",service="a"} 24054`,
		`rpc_duration_seconds_bucket{service="a",le="1"} 133988`,
		`rpc_duration_seconds_bucket{le="0.1",service="a"} 33444`,
		`# TYPE rpc_latency_seconds summary`,
		`rpc_latency_seconds{quantile="0.99"} 0.8`,
		`rpc_latency_seconds_sum 17.5`,
		`rpc_latency_seconds{quantile="0.5"} 0.2`,
		`rpc_latency_seconds_count 42`,
		`no_type_metric 7`,
		`last_line_metric{at="eof"} 42`, // sent without a newline
	}
	d.push(t, strings.Join(batch, "\n"))
	e := d.waitValue(t, 2*time.Second, 42, "last_line_metric", "at", "eof")

	wantFams := []string{"escaped_info", "http_requests_total", "last_line_metric", "no_type_metric",
		"rpc_duration_seconds", "rpc_latency_seconds", "temperature_celsius", "weird_values"}
	if got := e.pushed(); !slices.Equal(got, wantFams) {
		t.Errorf("families: got %v, want %v", got, wantFams)
	}

	checkFamily := func(name string, typ dto.MetricType, help *string, n int) *dto.MetricFamily {
		t.Helper()
		f := e.fams[name]
		if f == nil {
			t.Fatalf("family %s missing", name)
		}
		if f.GetType() != typ {
			t.Errorf("%s: type %v, want %v", name, f.GetType(), typ)
		}
		switch {
		case help == nil && f.Help != nil:
			t.Errorf("%s: HELP %q, but no client gave one", name, f.GetHelp())
		case help != nil && f.GetHelp() != *help:
			t.Errorf("%s: HELP %q, want %q", name, f.GetHelp(), *help)
		}
		if len(f.Metric) != n {
			t.Errorf("%s: %d series, want %d", name, len(f.Metric), n)
		}
		for _, m := range f.Metric {
			if m.TimestampMs != nil {
				t.Errorf("%s%v: timestamp %d exposed; pushed timestamps are dropped", name, labelMap(m), m.GetTimestampMs())
			}
		}
		return f
	}
	str := func(s string) *string { return &s }
	wantValue := func(want float64, name string, labels ...string) {
		t.Helper()
		got, ok := e.value(name, labels...)
		switch {
		case !ok:
			t.Errorf("series %s%v missing", name, labels)
		case math.IsNaN(want) && !math.IsNaN(got), !math.IsNaN(want) && got != want:
			t.Errorf("%s%v = %v, want %v", name, labels, got, want)
		}
	}

	checkFamily("http_requests_total", dto.MetricType_COUNTER, str("Requests served.\nSecond line, with a backslash: \\."), 2)
	wantValue(1030, "http_requests_total", "code", "200", "method", "GET")
	wantValue(3, "http_requests_total", "code", "400", "method", "POST")

	checkFamily("temperature_celsius", dto.MetricType_GAUGE, nil, 2)
	wantValue(22.25, "temperature_celsius", "sensor", "a")
	wantValue(-3, "temperature_celsius", "sensor", "b")

	checkFamily("escaped_info", dto.MetricType_UNTYPED, nil, 1)
	wantValue(1, "escaped_info", "path", `C:\dir\file`, "quote", `say "hi"`, "nl", "line1\nline2")

	checkFamily("weird_values", dto.MetricType_GAUGE, nil, 3)
	wantValue(math.NaN(), "weird_values", "kind", "nan")
	wantValue(math.Inf(1), "weird_values", "kind", "pinf")
	wantValue(math.Inf(-1), "weird_values", "kind", "ninf")

	checkFamily("no_type_metric", dto.MetricType_UNTYPED, nil, 1)
	wantValue(7, "no_type_metric")
	checkFamily("last_line_metric", dto.MetricType_UNTYPED, nil, 1)

	checkFamily("rpc_duration_seconds", dto.MetricType_HISTOGRAM, str("RPC latency."), 1)
	if m := e.metric("rpc_duration_seconds", "service", "a"); m == nil {
		t.Errorf("histogram series {service=a} missing")
	} else {
		h := m.GetHistogram()
		if h.GetSampleCount() != 144320 || h.GetSampleSum() != 53423 {
			t.Errorf("histogram count %d sum %v, want 144320 and 53423", h.GetSampleCount(), h.GetSampleSum())
		}
		var got []string
		for _, b := range h.Bucket {
			got = append(got, fmt.Sprintf("%v:%d", b.GetUpperBound(), b.GetCumulativeCount()))
		}
		want := []string{"0.05:24054", "0.1:33444", "0.5:129389", "1:133988", "+Inf:144320"}
		if !slices.Equal(got, want) {
			t.Errorf("histogram buckets %v, want %v", got, want)
		}
	}

	checkFamily("rpc_latency_seconds", dto.MetricType_SUMMARY, nil, 1)
	if m := e.metric("rpc_latency_seconds"); m == nil {
		t.Errorf("summary series {} missing")
	} else {
		s := m.GetSummary()
		if s.GetSampleCount() != 42 || s.GetSampleSum() != 17.5 {
			t.Errorf("summary count %d sum %v, want 42 and 17.5", s.GetSampleCount(), s.GetSampleSum())
		}
		var got []string
		for _, q := range s.Quantile {
			got = append(got, fmt.Sprintf("%v:%v", q.GetQuantile(), q.GetValue()))
		}
		if want := []string{"0.5:0.2", "0.99:0.8"}; !slices.Equal(got, want) {
			t.Errorf("summary quantiles %v, want %v", got, want)
		}
	}

	// Self-metrics.
	rej := e.rejected()
	for reason, want := range map[string]float64{
		"syntax": 1, "duplicate_label": 1, "invalid_timestamp": 1, "invalid_utf8": 1, "invalid_bucket_label": 1,
	} {
		if rej[reason] != want {
			t.Errorf("push_gateway_ingest_lines_rejected_total{reason=%q} = %v, want %v", reason, rej[reason], want)
		}
	}
	total := 0.0
	for _, v := range rej {
		total += v
	}
	if total != 5 {
		t.Errorf("push_gateway_ingest_lines_rejected_total sums to %v over all reasons, want 5: %v", total, rej)
	}
	// 2 + 2 + 1 + 3 + histogram (5 buckets, _sum, _count) + summary (2 quantiles, _sum, _count) + 1 + 1.
	const wantSeries = 21
	if got := e.mustValue(t, "push_gateway_cache_series"); got != wantSeries {
		t.Errorf("push_gateway_cache_series = %v, want %d", got, wantSeries)
	}
	if got := e.sampleLines(); got != wantSeries {
		t.Errorf("%d sample lines of pushed families, want %d", got, wantSeries)
	}
	// 23 good sample lines, and 7 HELP and TYPE lines which may or may not count.
	if got := e.mustValue(t, "push_gateway_ingest_lines_total"); got < 23 || got > 30 {
		t.Errorf("push_gateway_ingest_lines_total = %v, want 23 samples (plus at most 7 HELP/TYPE lines)", got)
	}
	if b, budget := e.mustValue(t, "push_gateway_cache_bytes"), e.mustValue(t, "push_gateway_cache_budget_bytes"); budget != 10<<10 || b <= 0 || b > budget {
		t.Errorf("push_gateway_cache_bytes = %v, budget %v: want 0 < bytes <= budget = 10240", b, budget)
	}
}

// ---------------------------------------------------------------------------
// 2. A connection that stays open: each line applies when its newline comes.

func TestLinesAppliedAsTheyArrive(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	c := d.dial(t)
	writeConn(t, c, "# TYPE live_gauge gauge\nlive_gauge 1\n")
	d.waitValue(t, 2*time.Second, 1, "live_gauge")
	writeConn(t, c, "live_gauge 2\n")
	d.waitValue(t, 2*time.Second, 2, "live_gauge")

	// Half a line is not a line: it waits for its newline.
	writeConn(t, c, "live_gauge 3")
	d.push(t, "live_marker 1\n")
	e := d.waitValue(t, 2*time.Second, 1, "live_marker")
	if v := e.mustValue(t, "live_gauge"); v != 2 {
		t.Errorf("live_gauge = %v after a line without its newline, want 2 still", v)
	}
	writeConn(t, c, "\n")
	d.waitValue(t, 2*time.Second, 3, "live_gauge")

	// A line split over many writes, one byte each.
	for _, b := range []byte("live_split{a=\"b\"} 4\n") {
		writeConn(t, c, string([]byte{b}))
	}
	e = d.waitValue(t, 2*time.Second, 4, "live_split", "a", "b")
	if n := e.mustValue(t, "push_gateway_ingest_connections"); n != 1 {
		t.Errorf("push_gateway_ingest_connections = %v with one connection open, want 1", n)
	}
}

// ---------------------------------------------------------------------------
// 3. TTL: a series disappears a TTL after its last update, not before, and
// updates keep it alive.

func TestTTL(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "--cache.ttl=1s")
	t0 := time.Now()
	d.push(t, "ttl_once 1\n")
	kept := d.dial(t)
	writeConn(t, kept, "# HELP ttl_kept Kept alive.\n# TYPE ttl_kept gauge\nttl_kept 0\n")
	d.waitValue(t, 2*time.Second, 0, "ttl_kept")
	d.waitValue(t, 2*time.Second, 1, "ttl_once")

	var gone time.Duration
	i := 0
	eventually(t, 5*time.Second, "ttl_once expires", func() (bool, string) {
		i++
		writeConn(t, kept, fmt.Sprintf("ttl_kept %d\n", i))
		time.Sleep(50 * time.Millisecond)
		e := d.scrape(t)
		if _, ok := e.value("ttl_kept"); !ok {
			t.Fatalf("ttl_kept expired although it was updated every 50ms:\n%s", e.body)
		}
		if _, ok := e.value("ttl_once"); ok {
			return false, e.body
		}
		gone = time.Since(t0)
		return true, ""
	})
	if gone < 990*time.Millisecond {
		t.Errorf("ttl_once expired %v after it was pushed, before the 1s TTL", gone)
	}

	// Once updates stop, ttl_kept goes too, HELP and TYPE with it.
	var e *exposition
	eventually(t, 5*time.Second, "ttl_kept expires after its updates stop", func() (bool, string) {
		e = d.scrape(t)
		return !strings.Contains(e.body, "ttl_"), e.body
	})
	if n := e.mustValue(t, "push_gateway_cache_evictions_total", "reason", "expired"); n < 2 {
		t.Errorf("push_gateway_cache_evictions_total{reason=\"expired\"} = %v, want >= 2", n)
	}
	if n := e.mustValue(t, "push_gateway_cache_series"); n != 0 {
		t.Errorf("push_gateway_cache_series = %v after everything expired, want 0", n)
	}
}

// ---------------------------------------------------------------------------
// 4. Budget: more series than fit; the newest stay, the bytes stay within the
// budget, the family keeps HELP and TYPE, and the evictions add up.

func TestBudget(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "--cache.size=2KiB")
	var b strings.Builder
	b.WriteString("# HELP budget_series Many series.\n# TYPE budget_series gauge\n")
	for i := range 190 {
		fmt.Fprintf(&b, "budget_series{i=\"%03d\"} %d\n", i, i)
	}
	d.push(t, b.String())
	d.waitValue(t, 2*time.Second, 189, "budget_series", "i", "189")
	// No pause: updates within one 10ms tick are ordered too.
	b.Reset()
	for i := 190; i < 200; i++ {
		fmt.Fprintf(&b, "budget_series{i=\"%03d\"} %d\n", i, i)
	}
	d.push(t, b.String())
	e := d.waitValue(t, 2*time.Second, 199, "budget_series", "i", "199")

	for i := 190; i < 200; i++ {
		if v, ok := e.value("budget_series", "i", fmt.Sprintf("%03d", i)); !ok || v != float64(i) {
			t.Errorf("newest series budget_series{i=\"%03d\"} = %v (present %v), want %d", i, v, ok, i)
		}
	}
	if used := e.mustValue(t, "push_gateway_cache_bytes"); used > 2048 || used <= 0 {
		t.Errorf("push_gateway_cache_bytes = %v, want 0 < bytes <= 2048", used)
	}
	if budget := e.mustValue(t, "push_gateway_cache_budget_bytes"); budget != 2048 {
		t.Errorf("push_gateway_cache_budget_bytes = %v, want 2048", budget)
	}
	f := e.fams["budget_series"]
	if f.GetType() != dto.MetricType_GAUGE || f.GetHelp() != "Many series." {
		t.Errorf("budget_series lost its TYPE or HELP under eviction: type %v help %q", f.GetType(), f.GetHelp())
	}
	kept := len(f.Metric)
	evicted := e.mustValue(t, "push_gateway_cache_evictions_total", "reason", "budget")
	if evicted <= 0 {
		t.Errorf("push_gateway_cache_evictions_total{reason=\"budget\"} = %v, want > 0", evicted)
	}
	if int(evicted)+kept != 200 {
		t.Errorf("%d series kept + %v evicted for the budget != 200 pushed", kept, evicted)
	}
	if n := e.mustValue(t, "push_gateway_cache_series"); int(n) != kept {
		t.Errorf("push_gateway_cache_series = %v, but %d series are exposed", n, kept)
	}
	if n := e.mustValue(t, "push_gateway_cache_evictions_total", "reason", "too_large"); n != 0 {
		t.Errorf("push_gateway_cache_evictions_total{reason=\"too_large\"} = %v, want 0", n)
	}
}

// ---------------------------------------------------------------------------
// 5. HTTP on the socket: the Pushgateway API, and GET /metrics as on TCP.

func TestHTTPOnSocket(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	const textType = "text/plain; version=0.0.4; charset=utf-8"
	body := "# TYPE http_pushed_total counter\nhttp_pushed_total{job=\"from-body\",kind=\"a\"} 5\n"
	resp, msg := d.request(t, true, http.MethodPut, "/metrics/job/x/instance/i1", textType, body)
	if resp.StatusCode == http.StatusNotImplemented {
		t.Fatalf("PUT /metrics/job/x/instance/i1 on the socket: 501 (%s); PRODUCT.md wants the Pushgateway API: 200", strings.TrimSpace(msg))
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT /metrics/job/x/instance/i1 on the socket: status %d (%s), want 200", resp.StatusCode, strings.TrimSpace(msg))
	}
	before := time.Now()
	e := d.scrape(t)
	// The grouping labels win over the body's.
	if v, ok := e.value("http_pushed_total", "job", "x", "instance", "i1", "kind", "a"); !ok || v != 5 {
		t.Errorf("http_pushed_total{instance=\"i1\",job=\"x\",kind=\"a\"} = %v (present %v), want 5:\n%s", v, ok, e.body)
	}
	if pt, ok := e.value("push_time_seconds", "job", "x", "instance", "i1"); !ok {
		t.Errorf("push_time_seconds{job=\"x\",instance=\"i1\"} missing after a successful push")
	} else if age := before.Sub(time.Unix(0, int64(pt*1e9))); age < -time.Second || age > time.Minute {
		t.Errorf("push_time_seconds = %v, not about now (%v)", pt, before.Unix())
	}

	// A bad body changes nothing and says why.
	resp, msg = d.request(t, true, http.MethodPut, "/metrics/job/x/instance/i1", textType, "http_pushed_total{kind=\"a\" 6\n")
	if resp.StatusCode != http.StatusBadRequest || strings.TrimSpace(msg) == "" {
		t.Errorf("PUT with a broken body: status %d body %q, want 400 with a reason", resp.StatusCode, msg)
	}
	// An empty job is an invalid grouping key.
	resp, _ = d.request(t, true, http.MethodPut, "/metrics/job/", textType, body)
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("PUT /metrics/job/ (empty job): status %d, want 400", resp.StatusCode)
	}
	e = d.scrape(t)
	if v, _ := e.value("http_pushed_total", "job", "x", "instance", "i1", "kind", "a"); v != 5 {
		t.Errorf("after failed pushes http_pushed_total = %v, want 5 unchanged", v)
	}

	// GET /metrics on the socket answers as TCP does (a keep-alive client
	// on each side, twice).
	for range 2 {
		viaTCP := d.scrape(t)
		viaSock := d.scrapePath(t, true, "/metrics")
		if a, b := slices.Sorted(maps.Keys(viaTCP.fams)), slices.Sorted(maps.Keys(viaSock.fams)); !slices.Equal(a, b) {
			t.Errorf("families over TCP %v, over the socket %v", a, b)
		}
		for _, name := range viaTCP.pushed() {
			if a, b := viaTCP.fams[name].String(), viaSock.fams[name].String(); a != b {
				t.Errorf("family %s differs:\nTCP:    %s\nsocket: %s", name, a, b)
			}
		}
	}

	resp, _ = d.request(t, true, http.MethodDelete, "/metrics/job/x/instance/i1", "", "")
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("DELETE /metrics/job/x/instance/i1: status %d, want 202", resp.StatusCode)
	}
	e = d.scrape(t)
	if _, ok := e.value("http_pushed_total", "job", "x", "instance", "i1", "kind", "a"); ok {
		t.Errorf("http_pushed_total still there after DELETE of its group:\n%s", e.body)
	}
	// The raw stream still works next to HTTP.
	d.push(t, "raw_after_http 1\n")
	d.waitValue(t, 2*time.Second, 1, "raw_after_http")
}

// ---------------------------------------------------------------------------
// 6. TCP is read-only.

func TestTCPIsReadOnly(t *testing.T) {
	t.Parallel()
	t.Run("default", func(t *testing.T) {
		t.Parallel()
		d := startDaemon(t)
		d.push(t, "tcp_before 1\n")
		d.waitValue(t, 2*time.Second, 1, "tcp_before")
		for _, tc := range []struct {
			method, path string
			want         int
		}{
			{http.MethodPost, "/metrics", 405},
			{http.MethodPut, "/metrics", 405},
			{http.MethodDelete, "/metrics", 405},
			{http.MethodPatch, "/metrics", 405},
			{http.MethodPut, "/metrics/job/x", 405},
			{http.MethodPost, "/metrics/job/x", 405},
			{http.MethodDelete, "/metrics/job/x", 405},
			{http.MethodGet, "/nope", 404},
			{http.MethodGet, "/metrics/job/x", 404},
			{http.MethodGet, "/-/healthy", 200},
			{http.MethodGet, "/-/ready", 200},
			{http.MethodHead, "/metrics", 200},
		} {
			resp, _ := d.request(t, false, tc.method, tc.path, "text/plain", "tcp_write_attempt 1\n")
			if resp.StatusCode != tc.want {
				t.Errorf("%s %s over TCP: status %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
			}
		}
		resp, body := d.request(t, false, http.MethodHead, "/metrics", "", "")
		if ct := resp.Header.Get("Content-Type"); ct != wantContentType || body != "" {
			t.Errorf("HEAD /metrics: Content-Type %q body %q, want %q and no body", ct, body, wantContentType)
		}
		resp, body = d.request(t, false, http.MethodGet, "/", "", "")
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, `href="/metrics"`) {
			t.Errorf("GET /: status %d, Content-Type %q, want 200 HTML linking /metrics; body:\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		e := d.scrape(t)
		if _, ok := e.value("tcp_write_attempt"); ok {
			t.Errorf("a write over TCP reached the cache:\n%s", e.body)
		}
		if got := e.pushed(); !slices.Equal(got, []string{"tcp_before"}) {
			t.Errorf("families %v after writes over TCP, want [tcp_before]", got)
		}
	})
	t.Run("telemetry-path", func(t *testing.T) {
		t.Parallel()
		d := startDaemon(t, "--web.telemetry-path=/custom/path", "--web.disable-exporter-metrics")
		d.push(t, "custom_path 1\n")
		var e *exposition
		eventually(t, 2*time.Second, "custom_path on /custom/path", func() (bool, string) {
			e = d.scrapePath(t, false, "/custom/path")
			_, ok := e.value("custom_path")
			return ok, e.body
		})
		for name := range e.fams {
			if strings.HasPrefix(name, "push_gateway_") {
				t.Errorf("self-metric %s exposed with --web.disable-exporter-metrics", name)
			}
		}
		if resp, _ := d.request(t, false, http.MethodGet, "/metrics", "", ""); resp.StatusCode != 404 {
			t.Errorf("GET /metrics with --web.telemetry-path=/custom/path: status %d, want 404", resp.StatusCode)
		}
		if _, body := d.request(t, false, http.MethodGet, "/", "", ""); !strings.Contains(body, `href="/custom/path"`) {
			t.Errorf("landing page does not link /custom/path:\n%s", body)
		}
	})
}

// ---------------------------------------------------------------------------
// 7. Many clients: 300 connections open and idle (some with half a line or
// half a request line) do not hold up a fresh one.

func TestManyClients(t *testing.T) {
	t.Parallel()
	const n = 300
	d := startDaemon(t, "--cache.size=64KiB", "--ingest.first-byte-timeout=5m")
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		c, err := net.DialTimeout("unix", d.socket, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		switch i % 3 {
		case 1:
			writeConn(t, c, "GE") // might still become "GET /"
		case 2:
			writeConn(t, c, fmt.Sprintf("many_partial{conn=\"%d\"} 1", i)) // no newline yet
		}
	}
	eventually(t, 5*time.Second, fmt.Sprintf("%d connections served at once", n), func() (bool, string) {
		e := d.scrape(t)
		v, _ := e.value("push_gateway_ingest_connections")
		return v == n, fmt.Sprintf("push_gateway_ingest_connections %v", v)
	})

	start := time.Now()
	d.push(t, "many_fresh 1\n")
	d.waitValue(t, 2*time.Second, 1, "many_fresh")
	t.Logf("a fresh push was scraped %v after it was sent, with %d idle connections", time.Since(start), n)
	// HTTP on the socket is not held up either.
	d.scrapePath(t, true, "/metrics")
	d.unix.CloseIdleConnections()

	for _, c := range conns {
		c.Close()
	}
	conns = conns[:0]
	// At end of stream the half lines are lines; the half request lines
	// are bad lines.
	var e *exposition
	eventually(t, 5*time.Second, "all connections closed and applied", func() (bool, string) {
		e = d.scrape(t)
		v, _ := e.value("push_gateway_ingest_connections")
		return v == 0 && len(e.fams["many_partial"].GetMetric()) == n/3, e.body
	})
	if r := e.rejected()["syntax"]; r != n/3 {
		t.Errorf("push_gateway_ingest_lines_rejected_total{reason=\"syntax\"} = %v, want %d (one per \"GE\" stream)", r, n/3)
	}
	if r, ok := e.sum("push_gateway_ingest_connections_refused_total"); !ok || r != 0 {
		t.Errorf("push_gateway_ingest_connections_refused_total sums to %v (present %v), want 0", r, ok)
	}
}

// Over --ingest.max-connections, with no connection idle (each holds part
// of a line), a connection is closed at once and counted; the others keep
// working.
func TestMaxConnections(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "--ingest.max-connections=3")
	held := []net.Conn{d.dial(t), d.dial(t), d.dial(t)}
	for _, c := range held {
		writeConn(t, c, "max_conn_ok")
	}
	eventually(t, 2*time.Second, "3 connections open", func() (bool, string) {
		v, _ := d.scrape(t).value("push_gateway_ingest_connections")
		return v == 3, fmt.Sprint(v)
	})
	extra := d.dial(t)
	extra.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := extra.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a 4th connection over --ingest.max-connections=3 was not closed: read error %v", err)
	}
	e := d.scrape(t)
	if r, ok := e.sum("push_gateway_ingest_connections_refused_total"); !ok || r != 1 {
		t.Errorf("push_gateway_ingest_connections_refused_total sums to %v (present %v), want 1", r, ok)
	}
	if r, ok := e.value("push_gateway_ingest_connections_refused_total", "reason", "max_connections"); ok && r != 1 {
		t.Errorf("push_gateway_ingest_connections_refused_total{reason=\"max_connections\"} = %v, want 1", r)
	}
	writeConn(t, held[0], " 1\n")
	d.waitValue(t, 2*time.Second, 1, "max_conn_ok")
}

// --ingest.allowed-uids: a process of another user id is turned away at
// accept and counted; one of an allowed id pushes as usual.
func TestAllowedUIDs(t *testing.T) {
	t.Parallel()
	me := os.Getuid()
	other := strconv.Itoa(me + 4242)
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		d := startDaemon(t, "--ingest.allowed-uids="+other)
		c := d.dial(t)
		// The daemon may already have closed the connection: a write error
		// (broken pipe) is as good an answer as the read error below.
		c.Write([]byte("uid_refused 1\n"))
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("a connection of uid %d with --ingest.allowed-uids=%s was not closed: read error %v", me, other, err)
		}
		e := d.scrape(t)
		if _, ok := e.value("uid_refused"); ok {
			t.Errorf("a process of a user id not allowed pushed a series")
		}
		if r, ok := e.value("push_gateway_ingest_connections_refused_total", "reason", "peer_uid"); !ok || r != 1 {
			t.Errorf("push_gateway_ingest_connections_refused_total{reason=\"peer_uid\"} = %v (present %v), want 1", r, ok)
		}
	})
	t.Run("allowed", func(t *testing.T) {
		t.Parallel()
		d := startDaemon(t, "--ingest.allowed-uids="+other+","+strconv.Itoa(me))
		d.push(t, "uid_allowed 1\n")
		d.waitValue(t, 2*time.Second, 1, "uid_allowed")
	})
}

// An idle connection is closed after --ingest.idle-timeout.
func TestIdleTimeout(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "--ingest.idle-timeout=200ms")
	c := d.dial(t)
	writeConn(t, c, "idle_before 1\n")
	d.waitValue(t, 2*time.Second, 1, "idle_before")
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	start := time.Now()
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("idle connection not closed within 3s of --ingest.idle-timeout=200ms: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("idle connection closed after %v, want about 200ms", took)
	}
	eventually(t, 2*time.Second, "no connections left", func() (bool, string) {
		v, _ := d.scrape(t).value("push_gateway_ingest_connections")
		return v == 0, fmt.Sprint(v)
	})
}

// ---------------------------------------------------------------------------
// 8. Shutdown with idle, half-written and keep-alive connections open.

func TestShutdown(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.dial(t) // idle
	half := d.dial(t)
	writeConn(t, half, "# TYPE shutdown_complete gauge\nshutdown_complete 1\nshutdown_partial 2")
	halfHTTP := d.dial(t)
	writeConn(t, halfHTTP, "GET /metrics HTTP/1.1\r\nHost: x\r\n") // headers not finished
	// Keep-alive HTTP connections on both sides.
	d.scrapePath(t, true, "/metrics")
	e := d.waitValue(t, 2*time.Second, 1, "shutdown_complete")
	if _, ok := e.value("shutdown_partial"); ok {
		t.Errorf("a line without its newline was applied while its connection is open")
	}
	tcpHalf, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer tcpHalf.Close()
	writeConn(t, tcpHalf, "GET /metr")
	eventually(t, 2*time.Second, "4 connections open on the socket", func() (bool, string) {
		v, _ := d.scrape(t).value("push_gateway_ingest_connections")
		return v == 4, fmt.Sprint(v)
	})

	took := d.stop(syscall.SIGTERM)
	t.Logf("exit %v after SIGTERM", took)
	if !slices.ContainsFunc(d.stderr.all(), func(l string) bool { return strings.Contains(l, "shutting down") }) {
		t.Errorf("no \"shutting down\" log line")
	}
}

// With --cache.snapshot-file what the daemon held at SIGTERM can be seen
// after a restart: the lines scraped before the signal, and also every
// complete line a client had written before it. A write on a Unix stream
// socket returns once the bytes are queued at the receiving socket, so all
// of them had reached the daemon ("finish the lines already received").
func TestShutdownKeepsReceivedLines(t *testing.T) {
	t.Parallel()
	snap := filepath.Join(shortTempDir(t), "cache.snap")
	args := []string{"--cache.snapshot-file=" + snap, "--cache.size=1MiB"}
	d := startDaemon(t, args...)
	d.push(t, "# TYPE snap_scraped gauge\nsnap_scraped 1\n")
	d.waitValue(t, 2*time.Second, 1, "snap_scraped")

	const n = 3000
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "snap_series{i=\"%d\"} %d\n", i, i)
	}
	c := d.dial(t)
	writeConn(t, c, b.String())
	writeConn(t, d.dial(t), "snap_partial 1") // half a line, never finished
	d.stop(syscall.SIGTERM)
	if t.Failed() {
		return
	}

	d2 := startDaemon(t, args...)
	e := d2.scrape(t)
	if v, ok := e.value("snap_scraped"); !ok || v != 1 || e.fams["snap_scraped"].GetType() != dto.MetricType_GAUGE {
		t.Fatalf("snap_scraped, scraped before SIGTERM, is not back after a restart with --cache.snapshot-file:\n%s", e.body)
	}
	if got := len(e.fams["snap_series"].GetMetric()); got != n {
		t.Errorf("after SIGTERM and a restart with --cache.snapshot-file, %d of the %d complete lines written before the signal are there; "+
			"the others were in the daemon's socket buffer but never read", got, n)
	}
}

func TestShutdownOnSIGINT(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.dial(t)
	if took := d.stop(syscall.SIGINT); took > 2*time.Second {
		t.Errorf("exit took %v after SIGINT with one idle connection", took)
	}
}

// ---------------------------------------------------------------------------
// 9. The socket file at start.

func TestStaleSocketIsReplaced(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(shortTempDir(t), "p.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	if fi, err := os.Lstat(sock); err != nil || fi.Mode()&fs.ModeSocket == 0 {
		t.Fatalf("no stale socket file left behind: %v", err)
	}
	d := launch(t, nil, "--ingest.socket="+sock, "--web.listen-address=127.0.0.1:0")
	d.push(t, "stale_replaced 1\n")
	d.waitValue(t, 2*time.Second, 1, "stale_replaced")
}

func TestSocketInUse(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.push(t, "first_daemon 1\n")
	d.waitValue(t, 2*time.Second, 1, "first_daemon")

	r := runBinary(t, nil, "--ingest.socket="+d.socket, "--web.listen-address=127.0.0.1:0")
	if r.code != 1 || !strings.Contains(r.stderr, "--ingest.socket") {
		t.Errorf("second daemon on a live socket: status %d, stderr %q; want 1 and a line naming --ingest.socket", r.code, r.stderr)
	}
	if fi, err := os.Lstat(d.socket); err != nil || fi.Mode()&fs.ModeSocket == 0 {
		t.Fatalf("the live daemon's socket file is gone after a second daemon tried it: %v", err)
	}
	d.push(t, "first_daemon 2\n")
	d.waitValue(t, 2*time.Second, 2, "first_daemon")

	// A path that is not a socket is not removed either.
	file := filepath.Join(shortTempDir(t), "not-a-socket")
	if err := os.WriteFile(file, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = runBinary(t, nil, "--ingest.socket="+file, "--web.listen-address=127.0.0.1:0")
	if r.code != 1 || !strings.Contains(r.stderr, "--ingest.socket") {
		t.Errorf("socket path is a regular file: status %d, stderr %q; want 1 and a line naming --ingest.socket", r.code, r.stderr)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "keep me" {
		t.Errorf("the regular file at the socket path was changed: %q, %v", b, err)
	}
}

// ---------------------------------------------------------------------------
// 10. The command line.

type runResult struct {
	code           int
	stdout, stderr string
}

// runBinary runs the daemon to its exit, 5 s at most.
func runBinary(t *testing.T, env []string, args ...string) runResult {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(cleanEnv(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		t.Fatalf("push-gateway %s %s: still running after 5s, want it to exit; stderr:\n%s",
			strings.Join(env, " "), strings.Join(args, " "), errb.String())
	}
	return runResult{cmd.ProcessState.ExitCode(), out.String(), errb.String()}
}

func TestBadFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		flag string // the one line on stderr names it
	}{
		{"negative ttl", nil, []string{"--cache.ttl=-1s"}, "--cache.ttl"},
		{"ttl not a duration", nil, []string{"--cache.ttl=soon"}, "--cache.ttl"},
		{"size ten", nil, []string{"--cache.size=ten"}, "--cache.size"},
		{"listen address", nil, []string{"--web.listen-address=nonsense"}, "--web.listen-address"},
		{"socket directory", nil, []string{"--ingest.socket=/nonexistent/dir/p.sock"}, "--ingest.socket"},
		{"unknown flag", nil, []string{"--no-such-flag"}, "--no-such-flag"},
		{"log level", nil, []string{"--log.level=verbose"}, "--log.level"},
		{"log format", nil, []string{"--log.format=xml"}, "--log.format"},
		{"first-byte timeout", nil, []string{"--ingest.first-byte-timeout=0s"}, "--ingest.first-byte-timeout"},
		{"body timeout", nil, []string{"--ingest.body-timeout=-1s"}, "--ingest.body-timeout"},
		{"env ttl", []string{"PUSH_GATEWAY_CACHE_TTL=-1s"}, nil, "cache.ttl"},
		{"env size", []string{"PUSH_GATEWAY_CACHE_SIZE=ten"}, nil, "cache.size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sock := filepath.Join(shortTempDir(t), "p.sock")
			args := tc.args
			if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--ingest.socket") }) {
				args = append([]string{"--ingest.socket=" + sock}, args...)
			}
			if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--web.listen-address") }) {
				args = append([]string{"--web.listen-address=127.0.0.1:0"}, args...)
			}
			r := runBinary(t, tc.env, args...)
			if r.code != 2 {
				t.Errorf("status %d, want 2 (usage error); stderr:\n%s", r.code, r.stderr)
			}
			if l := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n"); len(l) != 1 || !strings.Contains(l[0], tc.flag) {
				t.Errorf("stderr %q: want exactly one line naming %s", r.stderr, tc.flag)
			}
			if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a socket file was left behind at %s", sock)
			}
		})
	}

	t.Run("help", func(t *testing.T) {
		t.Parallel()
		r := runBinary(t, nil, "--help")
		if r.code != 0 {
			t.Errorf("--help: status %d, want 0", r.code)
		}
		for _, f := range []string{"--ingest.socket", "--web.listen-address", "--web.telemetry-path",
			"--cache.ttl", "--cache.size", "--log.level", "--log.format", "--version", "PUSH_GATEWAY_CACHE_TTL"} {
			if !strings.Contains(r.stdout, f) {
				t.Errorf("--help does not mention %s:\n%s", f, r.stdout)
			}
		}
	})
	t.Run("version", func(t *testing.T) {
		t.Parallel()
		r := runBinary(t, nil, "--version")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "push-gateway, version") || !strings.Contains(r.stdout, "go version") {
			t.Errorf("--version: status %d, stdout %q; want 0 and \"push-gateway, version ...\" with the Go version", r.code, r.stdout)
		}
	})
	t.Run("address in use", func(t *testing.T) {
		t.Parallel()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		sock := filepath.Join(shortTempDir(t), "p.sock")
		r := runBinary(t, nil, "--ingest.socket="+sock, "--web.listen-address="+l.Addr().String())
		if r.code != 1 || !strings.Contains(r.stderr, "--web.listen-address") {
			t.Errorf("address in use: status %d, stderr %q; want 1 and a line naming --web.listen-address", r.code, r.stderr)
		}
		if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a socket file was left behind at %s", sock)
		}
	})
	t.Run("environment", func(t *testing.T) {
		t.Parallel()
		sock := filepath.Join(shortTempDir(t), "env.sock")
		d := launch(t, []string{"PUSH_GATEWAY_WEB_LISTEN_ADDRESS=127.0.0.1:0", "PUSH_GATEWAY_INGEST_SOCKET=" + sock, "PUSH_GATEWAY_CACHE_SIZE=4KiB"})
		if host, _, _ := net.SplitHostPort(d.addr); host != "127.0.0.1" || d.socket != sock {
			t.Errorf("start-up line: address %s socket %s; want 127.0.0.1:<port> and %s from the environment", d.addr, d.socket, sock)
		}
		e := d.scrape(t)
		if v := e.mustValue(t, "push_gateway_cache_budget_bytes"); v != 4096 {
			t.Errorf("push_gateway_cache_budget_bytes = %v with PUSH_GATEWAY_CACHE_SIZE=4KiB, want 4096", v)
		}
	})
}

// The start-up line, in both log formats, and the socket's file mode.
func TestStartupLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		mode fs.FileMode
	}{
		{"logfmt", nil, 0o660},
		{"json", []string{"--log.format=json", "--ingest.socket-mode=0600"}, 0o600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := startDaemon(t, tc.args...)
			var start map[string]string
			for _, l := range d.stderr.all() {
				if _, ok := parseStartLine(l); ok {
					start = logFields(l)
				}
			}
			if start["version"] == "" || !strings.EqualFold(start["level"], "info") {
				t.Errorf("start-up line %v: want level info and the version", start)
			}
			fi, err := os.Lstat(d.socket)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode()&fs.ModeSocket == 0 || fi.Mode().Perm() != tc.mode {
				t.Errorf("socket file mode %v, want a socket with %v", fi.Mode(), tc.mode)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// 11. promtool check metrics on a scrape of a varied batch.

// variedBatch has a bit of everything, clashes and mistakes included.
var variedBatch = []string{
	`# HELP promtool_requests_total Requests, with "quotes", a \\ backslash and a\nnewline.`,
	`# TYPE promtool_requests_total counter`,
	`promtool_requests_total{path="/a\\b",q="say \"x\"",nl="1\n2",empty=""} 1 1700000000000`,
	`promtool_requests_total{path="/c"} 2`,
	`# HELP promtool_latency_seconds Latency.`,
	`# TYPE promtool_latency_seconds histogram`,
	`promtool_latency_seconds_sum{op="r"} 1.5`,
	`promtool_latency_seconds_bucket{op="r",le="+Inf"} 3`,
	`promtool_latency_seconds_bucket{op="r",le="0.1"} 1`,
	`promtool_latency_seconds_count{op="r"} 3`,
	`promtool_latency_seconds_bucket{le="1",op="r"} 2`,
	`promtool_latency_seconds_bucket{le="+Inf",op="w"} 1`,
	`promtool_latency_seconds_count{op="w"} 1`,
	`promtool_latency_seconds_sum{op="w"} 0.5`,
	`# HELP promtool_rtt_seconds Round trips.`,
	`# TYPE promtool_rtt_seconds summary`,
	`promtool_rtt_seconds_count 10`,
	`promtool_rtt_seconds{quantile="0.9"} NaN`,
	`promtool_rtt_seconds{quantile="0.1"} 0.01`,
	`promtool_rtt_seconds_sum 0.3`,
	`# HELP promtool_temp_celsius Temperature.`,
	`# TYPE promtool_temp_celsius gauge`,
	`promtool_temp_celsius{zone="x"} -Inf`,
	`promtool_temp_celsius{zone="y"} +Inf`,
	`promtool_temp_celsius{zone="z"} NaN`,
	`promtool_untyped 1e-300`,
	`promtool:colon:name 1`,
	`promtool_label_chars{a="}",b="{",c=",",d="=",e=" "} 1`,
	// A self-metric's name: must not make the family appear twice.
	`# TYPE push_gateway_cache_series counter`,
	`push_gateway_cache_series 99`,
	// Series that clash with a histogram: dropped or refused.
	`promtool_clash_bucket{le="1"} 1`,
	`# TYPE promtool_clash histogram`,
	`promtool_clash_bucket{le="1"} 2`,
	`promtool_clash_bucket{le="+Inf"} 3`,
	`promtool_clash_sum 1`,
	`promtool_clash_count 3`,
	`# TYPE promtool_clash_sum gauge`,
	`promtool_clash 5`,
	// A summary does not own _bucket.
	`# TYPE promtool_sum summary`,
	`promtool_sum 5`,
	`promtool_sum_bucket 1`,
	`promtool_sum{quantile="0.5"} 1`,
	// Type changes.
	`# TYPE promtool_flip gauge`,
	`promtool_flip 1`,
	`# TYPE promtool_flip histogram`,
	`promtool_flip_bucket{le="1"} 1`,
	`promtool_flip_bucket{le="+Inf"} 1`,
	`promtool_flip 2`,
	`# TYPE promtool_twice counter`,
	`# TYPE promtool_twice gauge`,
	`promtool_twice 1`,
	`# HELP promtool_help_only No samples.`,
	`# TYPE promtool_type_only counter`,
	`# TYPE promtool_bad type word`,
	`promtool_hex 0x1p3`,
	"promtool_tab\t3",
	`promtool_le_elsewhere{le="x",quantile="y"} 1`,
	`promtool_end 1`,
}

func TestPromtool(t *testing.T) {
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed: apt-get install prometheus")
	}
	// promtool itself: a parse error is status 1 and "error while linting";
	// lint findings are status 3. Make sure that is still how it tells them
	// apart.
	if out, code := runPromtool(t, promtool, "foo{a=\"b\" 1\n"); code != 1 || !strings.Contains(out, "parsing error") {
		t.Fatalf("promtool on a broken exposition: status %d, output %q; this test cannot tell parse errors from lint", code, out)
	}
	d := startDaemon(t)
	d.push(t, strings.Join(variedBatch, "\n")+"\n")
	e := d.waitValue(t, 2*time.Second, 1, "promtool_end")
	out, code := runPromtool(t, promtool, e.body)
	if (code != 0 && code != 3) || strings.Contains(out, "error while linting") || strings.Contains(out, "parsing error") {
		t.Errorf("promtool check metrics: status %d (0 or 3 for lint findings only):\n%s\n--- scrape ---\n%s", code, out, e.body)
	} else if out != "" {
		t.Logf("promtool lint findings (tolerated):\n%s", out)
	}
}

func runPromtool(t *testing.T, promtool, input string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(input)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("promtool: %v", err)
	}
	return string(out), cmd.ProcessState.ExitCode()
}

// The varied batch, checked with expfmt and the structure check, with what
// each tricky line should have done.
func TestVariedBatch(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.push(t, strings.Join(variedBatch, "\n")+"\n")
	e := d.waitValue(t, 2*time.Second, 1, "promtool_end")

	if f := e.fams["push_gateway_cache_series"]; f.GetType() != dto.MetricType_GAUGE || len(f.Metric) != 1 || f.Metric[0].GetGauge().GetValue() == 99 {
		t.Errorf("push_gateway_cache_series: a pushed family of the same name leaked into the self-metric: %v", f)
	}
	for _, name := range []string{"promtool_clash_bucket", "promtool_clash_sum", "promtool_help_only", "promtool_type_only", "promtool_hex", "promtool_bad"} {
		if f := e.fams[name]; f != nil {
			t.Errorf("family %s exposed: %v", name, f)
		}
	}
	if m := e.metric("promtool_clash"); m == nil || m.GetHistogram().GetSampleCount() != 3 || len(m.GetHistogram().Bucket) != 2 {
		t.Errorf("histogram promtool_clash: %v, want count 3 and 2 buckets", m)
	}
	if v, ok := e.value("promtool_sum_bucket"); !ok || v != 1 {
		t.Errorf("promtool_sum_bucket (not part of summary promtool_sum) = %v, %v; want 1", v, ok)
	}
	if f := e.fams["promtool_flip"]; f.GetType() != dto.MetricType_HISTOGRAM || len(f.Metric) != 1 {
		t.Errorf("promtool_flip after a type change to histogram: %v", f)
	}
	if f := e.fams["promtool_twice"]; f.GetType() != dto.MetricType_GAUGE {
		t.Errorf("promtool_twice: the last TYPE is gauge, got %v", f.GetType())
	}
	if v, _ := e.value("promtool_tab"); v != 3 {
		t.Errorf("promtool_tab (tab before the value) = %v, want 3", v)
	}
	if v, _ := e.value("promtool_requests_total", "path", `/a\b`, "q", `say "x"`, "nl", "1\n2"); v != 1 {
		t.Errorf("promtool_requests_total with escapes = %v, want 1:\n%s", v, e.body)
	}
	if got := e.fams["promtool_requests_total"].GetHelp(); got != "Requests, with \"quotes\", a \\ backslash and a\nnewline." {
		t.Errorf("HELP of promtool_requests_total: %q", got)
	}
}

// ---------------------------------------------------------------------------
// Whatever clients push, /metrics stays valid.

// Lines that a histogram or summary family accepts in the text format but
// that expfmt cannot read back: an le (histogram) or quantile (summary)
// label on a _sum or _count line, which expfmt takes as the bucket or
// quantile, and a negative histogram count or bucket. Each case pushes a
// valid series first, then the odd line; the odd line must be refused (or
// dropped from the output), and /metrics must still parse with expfmt and
// show the valid series as pushed.
func TestOddCompoundLinesKeepExpositionValid(t *testing.T) {
	t.Parallel()
	const hist = "# TYPE odd histogram\nodd_bucket{le=\"1\"} 1\nodd_bucket{le=\"+Inf\"} 2\nodd_sum 1.5\nodd_count 2\n"
	const summ = "# TYPE odd summary\nodd{quantile=\"0.5\"} 1\nodd_sum 1.5\nodd_count 2\n"
	for _, tc := range []struct{ name, valid, odd string }{
		{"histogram _sum with le not a number", hist, `odd_sum{le="abc"} 3`},
		{"histogram _count with le not a number", hist, `odd_count{le="abc"} 3`},
		{"histogram _sum with a numeric le", hist, `odd_sum{le="0.5"} 3`},
		{"summary _count with quantile not a number", summ, `odd_count{quantile="x"} 4`},
		{"summary _sum with a numeric quantile", summ, `odd_sum{quantile="0.5"} 3`},
		{"negative histogram count", hist, `odd_count{x="neg"} -1`},
		{"negative histogram bucket", hist, `odd_bucket{x="neg",le="1"} -1`},
		{"-Inf histogram bucket", hist, `odd_bucket{x="neg",le="+Inf"} -Inf`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := startDaemon(t)
			d.push(t, tc.valid+tc.odd+"\nodd_end 1\n")
			var body string
			eventually(t, 2*time.Second, "odd_end pushed", func() (bool, string) {
				_, body = d.request(t, false, http.MethodGet, "/metrics", "", "")
				return strings.Contains(body, "odd_end 1"), body
			})
			var lines []string
			for _, l := range strings.Split(body, "\n") {
				if strings.HasPrefix(l, "odd") || strings.HasPrefix(l, "# TYPE odd") {
					lines = append(lines, l)
				}
			}
			p := expfmt.NewTextParser(model.LegacyValidation)
			fams, err := p.TextToMetricFamilies(strings.NewReader(body))
			if err != nil {
				t.Fatalf("after the line %q, /metrics no longer parses with expfmt: %v\nthe family as exposed:\n%s",
					tc.odd, err, strings.Join(lines, "\n"))
			}
			checkExposition(t, body)
			f := fams["odd"]
			if f == nil || len(f.Metric) == 0 {
				t.Fatalf("family odd missing:\n%s", strings.Join(lines, "\n"))
			}
			var m *dto.Metric
			for _, x := range f.Metric {
				if len(x.Label) == 0 {
					m = x
				}
			}
			var sum float64
			var count uint64
			if h := m.GetHistogram(); h != nil {
				sum, count = h.GetSampleSum(), h.GetSampleCount()
			} else {
				sum, count = m.GetSummary().GetSampleSum(), m.GetSummary().GetSampleCount()
			}
			if sum != 1.5 || count != 2 {
				t.Errorf("after the line %q, expfmt reads the valid series as sum %v count %v, want 1.5 and 2 as pushed:\n%s",
					tc.odd, sum, count, strings.Join(lines, "\n"))
			}
		})
	}
}

// A HELP text larger than the whole budget is refused, and changes nothing:
// the family keeps its TYPE and HELP.
func TestOversizedHelpChangesNothing(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "--cache.size=10KiB")
	d.push(t, "# HELP big_help_total A counter.\n# TYPE big_help_total counter\nbig_help_total 5\n")
	d.waitValue(t, 2*time.Second, 5, "big_help_total")
	d.push(t, "# HELP big_help_total "+strings.Repeat("x", 12<<10)+"\nbig_help_marker 1\n")
	e := d.waitValue(t, 2*time.Second, 1, "big_help_marker")
	if r := e.rejected()["too_large"]; r != 1 {
		t.Errorf("push_gateway_ingest_lines_rejected_total{reason=\"too_large\"} = %v, want 1 for the 12KiB HELP", r)
	}
	f := e.fams["big_help_total"]
	if f.GetType() != dto.MetricType_COUNTER || f.GetHelp() != "A counter." {
		t.Errorf("after a refused 12KiB HELP line, big_help_total is type %v with HELP %q; want COUNTER and \"A counter.\" unchanged\n%s",
			f.GetType(), f.GetHelp(), e.body)
	}
}

// Lines longer than --ingest.max-line-length are skipped and counted; the
// lines after them apply.
func TestMaxLineLength(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		limit string
		long  int // bytes of the long line
	}{
		{"1KiB", 5000},
		{"1KiB", 1500},
		{"4KiB", 4500},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.limit, tc.long), func(t *testing.T) {
			t.Parallel()
			d := startDaemon(t, "--ingest.max-line-length="+tc.limit)
			prefix := `long_line{v="`
			suffix := `"} 1`
			long := prefix + strings.Repeat("y", tc.long-len(prefix)-len(suffix)) + suffix
			d.push(t, "before_long 1\n"+long+"\nafter_long 1\n")
			e := d.waitValue(t, 2*time.Second, 1, "after_long")
			if _, ok := e.value("before_long"); !ok {
				t.Errorf("the line before the long one is missing")
			}
			if f := e.fams["long_line"]; f != nil {
				t.Errorf("a %d-byte line was applied with --ingest.max-line-length=%s", len(long), tc.limit)
			}
			if r := e.rejected()["too_long"]; r != 1 {
				t.Errorf("push_gateway_ingest_lines_rejected_total{reason=\"too_long\"} = %v, want 1", r)
			}
		})
	}
}

// Random lines over a handful of names that can clash (m, m_sum, m_count,
// m_bucket, ...), under a small budget, from several connections at once,
// scraped all along: every scrape must be valid.
func TestRandomStreamsKeepExpositionValid(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "--cache.size=2KiB")
	names := []string{"m", "m_sum", "m_count", "m_bucket", "n", "n_total", "n_sum", "n_bucket", "m_bucket_count"}
	types := []string{"counter", "gauge", "histogram", "summary", "untyped"}
	labelVals := map[string][]string{
		"le":       {"0.1", "1", "+Inf", "x", "", "NaN"},
		"quantile": {"0.5", "0.9", "x", "", "+Inf"},
		"x":        {"a", "b", "", `q\"`},
	}
	values := []string{"1", "2.5", "NaN", "+Inf", "-1", "0"}
	gen := func(r *rand.Rand) string {
		pick := func(s []string) string { return s[r.IntN(len(s))] }
		name := pick(names)
		switch r.IntN(10) {
		case 0:
			return "# TYPE " + name + " " + pick(types)
		case 1:
			return "# HELP " + name + " help of " + name
		}
		var ls []string
		for _, ln := range []string{"le", "quantile", "x"} {
			if r.IntN(2) == 0 {
				ls = append(ls, ln+`="`+pick(labelVals[ln])+`"`)
			}
		}
		return name + "{" + strings.Join(ls, ",") + "} " + pick(values)
	}
	const writers, perWriter = 4, 400
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 42))
			c, err := net.Dial("unix", d.socket)
			if err != nil {
				errc <- err
				return
			}
			defer c.Close()
			bw := bufio.NewWriterSize(c, 256)
			for range perWriter {
				if _, err := bw.WriteString(gen(r) + "\n"); err != nil {
					errc <- err
					return
				}
			}
			if err := bw.Flush(); err != nil {
				errc <- err
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	scrapes := 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		d.scrape(t) // fails the test on an invalid exposition
		scrapes++
	}
	close(errc)
	for err := range errc {
		t.Fatalf("writer: %v", err)
	}
	// Every line is applied or rejected, once. A connection not yet
	// accepted is not counted open, so count lines rather than wait for
	// no open connection.
	eventually(t, 5*time.Second, "every line applied or rejected", func() (bool, string) {
		e := d.scrape(t)
		n := e.mustValue(t, "push_gateway_ingest_lines_total")
		for _, r := range e.rejected() {
			n += r
		}
		return n == writers*perWriter, fmt.Sprintf("%v of %d lines counted:\n%s", n, writers*perWriter, e.body)
	})
	// The scrape that counted the last line copied the cache before it read
	// the self-metrics, so the line may have come in between: judge the
	// next one.
	e := d.scrape(t)
	if n := e.mustValue(t, "push_gateway_cache_series"); int(n) != e.sampleLines() {
		t.Errorf("push_gateway_cache_series = %v, but %d sample lines are exposed:\n%s", n, e.sampleLines(), e.body)
	}
	if used := e.mustValue(t, "push_gateway_cache_bytes"); used > 2048 {
		t.Errorf("push_gateway_cache_bytes = %v over the 2KiB budget", used)
	}
	t.Logf("%d scrapes while %d writers pushed %d lines each", scrapes, writers, perWriter)
	if promtool, err := exec.LookPath("promtool"); err == nil {
		if out, code := runPromtool(t, promtool, e.body); code != 0 && code != 3 {
			t.Errorf("promtool check metrics: status %d:\n%s\n--- scrape ---\n%s", code, out, e.body)
		}
	}
}

// Writers and scrapers at once; the final values are the last written.
func TestConcurrentWritersAndScrapes(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	const writers, updates = 8, 300
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("unix", d.socket)
			if err != nil {
				errc <- err
				return
			}
			defer c.Close()
			for i := range updates {
				if _, err := fmt.Fprintf(c, "conc_gauge{w=\"%d\"} %d\n", w, i); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	// Scrapes over TCP and over the socket, in parallel with the writers.
	var sw sync.WaitGroup
	stop := make(chan struct{})
	serr := make(chan string, 2)
	for _, viaSocket := range []bool{false, true} {
		sw.Add(1)
		go func() {
			defer sw.Done()
			c, url := d.tcp, "http://"+d.addr+"/metrics"
			if viaSocket {
				c, url = d.unix, "http://push-gateway/metrics"
			}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Get(url)
				if err != nil {
					serr <- err.Error()
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				p := expfmt.NewTextParser(model.LegacyValidation)
				if _, perr := p.TextToMetricFamilies(bytes.NewReader(b)); err != nil || perr != nil {
					serr <- fmt.Sprintf("%v %v\n%s", err, perr, b)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	sw.Wait()
	close(errc)
	close(serr)
	for err := range errc {
		t.Errorf("writer: %v", err)
	}
	for s := range serr {
		t.Errorf("concurrent scrape: %s", s)
	}
	for w := range writers {
		d.waitValue(t, 2*time.Second, updates-1, "conc_gauge", "w", strconv.Itoa(w))
	}
}

// A snapshot file cut at any byte is reported and ignored: the daemon still
// starts, serves, and takes pushes. (The cache's own test also flips every
// byte; this one proves it on the binary.)
func TestSnapshotTruncatedEverywhere(t *testing.T) {
	t.Parallel()
	dir := shortTempDir(t)
	snap := filepath.Join(dir, "cache.snap")
	d := startDaemon(t, "--cache.snapshot-file="+snap)
	d.push(t, "# TYPE kept gauge\nkept{a=\"b\"} 1\n")
	d.waitValue(t, 2*time.Second, 1, "kept", "a", "b")
	d.stop(syscall.SIGTERM)
	whole, err := os.ReadFile(snap)
	if err != nil || len(whole) == 0 {
		t.Fatalf("no snapshot written: %v", err)
	}
	for cut := 0; cut < len(whole); cut++ {
		if err := os.WriteFile(snap, whole[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		d := startDaemon(t, "--cache.snapshot-file="+snap)
		if !strings.Contains(d.stderr.String(), "ignoring cache snapshot") && cut > 0 {
			t.Errorf("cut at %d of %d: no warning about the damaged snapshot", cut, len(whole))
		}
		d.push(t, "after_damage 1\n")
		d.waitValue(t, 2*time.Second, 1, "after_damage")
		if _, ok := d.scrape(t).value("kept", "a", "b"); ok {
			t.Errorf("cut at %d of %d: a damaged snapshot was loaded", cut, len(whole))
		}
		d.stop(syscall.SIGTERM)
	}
	os.WriteFile(snap, whole, 0o600)
	d = startDaemon(t, "--cache.snapshot-file="+snap)
	d.waitValue(t, 2*time.Second, 1, "kept", "a", "b")
}
