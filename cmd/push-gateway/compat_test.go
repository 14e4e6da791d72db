package main_test

// Compatibility with the Prometheus Pushgateway, proved with real clients and
// against the real thing:
//
//   - TestCompatClients pushes with client_golang's push.Pusher (protobuf and
//     text) over the Unix socket and through a socat bridge, with Debian's
//     python3-prometheus-client through the bridge, and with
//     curl --unix-socket, and checks every result on /metrics.
//   - TestCompatPushgateway sends one sequence of pushes both to the daemon
//     and to /usr/bin/prometheus-pushgateway and requires the same status
//     codes and the same scrapes, step by step, except for the differences
//     listed in compatDeliberate.
//   - TestCompatBridgeScript runs scripts/socat-bridge.sh.
//
// The file is an external test package so that its helpers (all named
// compat*) cannot clash with those of main_test.go; it defines no TestMain and
// builds the daemon itself, once, with compatBinary.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"
)

// ---------------------------------------------------------------------------
// Processes.

var compatBuild struct {
	once sync.Once
	path string
	err  error
}

// compatBinary builds the daemon once per test binary, with -race when the
// test binary has it, into a fresh temporary directory. Without a TestMain
// of its own this file cannot remove that directory at exit; instead each
// run removes the ones that earlier runs left behind (older than ten
// minutes, so that a run going on beside it keeps its own).
func compatBinary(t *testing.T) string {
	t.Helper()
	compatBuild.once.Do(func() {
		if old, _ := filepath.Glob(filepath.Join(os.TempDir(), "push-gateway-compat-*")); len(old) > 0 {
			for _, d := range old {
				if fi, err := os.Stat(d); err == nil && time.Since(fi.ModTime()) > 10*time.Minute {
					os.RemoveAll(d)
				}
			}
		}
		dir, err := os.MkdirTemp("", "push-gateway-compat-")
		if err != nil {
			compatBuild.err = err
			return
		}
		path := filepath.Join(dir, "push-gateway")
		args := []string{"build", "-o", path}
		if compatRace() {
			args = append(args, "-race")
		}
		args = append(args, ".")
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			os.RemoveAll(dir)
			compatBuild.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
			return
		}
		compatBuild.path = path
	})
	if compatBuild.err != nil {
		t.Fatalf("cannot build the daemon: %v", compatBuild.err)
	}
	return compatBuild.path
}

func compatRace() bool {
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

// compatProc is a child process in its own process group; its combined
// output is kept (the last 500 lines) and shown when the test fails.
type compatProc struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has been waited for
	drained chan struct{} // closed when its output reached EOF
	mu      sync.Mutex
	lines   []string
	waitErr error
}

func (p *compatProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// compatStart starts a process and waits (bounded) for a line of its output
// that ready matches; it returns the first submatch of that line. A cleanup
// stops the whole process group with SIGTERM, then SIGKILL after 5 s.
func compatStart(t *testing.T, name string, ready *regexp.Regexp, bin string, args ...string) (*compatProc, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PUSH_GATEWAY_") && !strings.HasPrefix(kv, "LISTEN_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	w.Close()
	p := &compatProc{name: name, cmd: cmd, done: make(chan struct{}), drained: make(chan struct{})}
	found := make(chan string, 1)
	go func() {
		defer close(p.drained)
		defer r.Close()
		var buf []byte
		chunk := make([]byte, 4096)
		for {
			n, err := r.Read(chunk)
			buf = append(buf, chunk[:n]...)
			for {
				i := bytes.IndexByte(buf, '\n')
				if i < 0 {
					break
				}
				line := string(buf[:i])
				buf = buf[i+1:]
				p.mu.Lock()
				p.lines = append(p.lines, line)
				if len(p.lines) > 500 {
					p.lines = p.lines[len(p.lines)-500:]
				}
				p.mu.Unlock()
				if m := ready.FindStringSubmatch(line); m != nil {
					select {
					case found <- m[1]:
					default:
					}
				}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })
	select {
	case v := <-found:
		return p, v
	case <-p.done:
		<-p.drained
		t.Fatalf("%s exited before it was ready: %v\n%s", name, p.waitErr, p.output())
	case <-time.After(10 * time.Second):
		t.Fatalf("%s not ready within 10 s:\n%s", name, p.output())
	}
	return nil, ""
}

func (p *compatProc) stop(t *testing.T) {
	pgid := p.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		t.Errorf("%s did not exit within 5 s of SIGTERM; killing it", p.name)
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	// Children of socat's fork may hold the pipe a little longer.
	syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-p.drained:
	case <-time.After(2 * time.Second):
	}
	out := p.output()
	if strings.Contains(out, "WARNING: DATA RACE") {
		t.Errorf("%s reported a data race:\n%s", p.name, out)
	} else if t.Failed() {
		t.Logf("output of %s:\n%s", p.name, out)
	}
}

// compatDir is a temporary directory short enough for a socket path.
func compatDir(t *testing.T) string {
	dir := t.TempDir()
	if len(dir) < 80 {
		return dir
	}
	dir, err := os.MkdirTemp("", "pgc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// compatDaemon starts our daemon with a cache large and long enough for the
// tests; it returns the socket path and the TCP address it serves.
func compatDaemon(t *testing.T) (sock, web string) {
	t.Helper()
	sock = filepath.Join(compatDir(t), "pg.sock")
	_, web = compatStart(t, "push-gateway", regexp.MustCompile(`msg="starting push-gateway".* address=(\S+)`),
		compatBinary(t), "--ingest.socket="+sock, "--web.listen-address=127.0.0.1:0",
		"--cache.size=1MiB", "--cache.ttl=10m")
	return sock, web
}

const compatPushgatewayBin = "/usr/bin/prometheus-pushgateway"

// compatPushgateway starts the real Pushgateway on 127.0.0.1:0, without
// persistence, and waits for /-/ready; it returns its base URL.
func compatPushgateway(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(compatPushgatewayBin); err != nil {
		t.Skipf("the Prometheus Pushgateway is not installed (%v): apt-get install prometheus-pushgateway", err)
	}
	_, addr := compatStart(t, "prometheus-pushgateway", regexp.MustCompile(`msg="Listening on" address=(\S+)`),
		compatPushgatewayBin, "--web.listen-address=127.0.0.1:0", "--persistence.file=", "--log.level=info")
	base := "http://" + addr
	compatPoll(t, 10*time.Second, "the Pushgateway to be ready", func() bool {
		resp, err := compatHTTP.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return base
}

// compatSocat starts a socat bridge from 127.0.0.1:<a free port> to sock; it
// returns the address.
func compatSocat(t *testing.T, sock string) string {
	t.Helper()
	bin, err := exec.LookPath("socat")
	if err != nil {
		t.Skip("socat is not installed: apt-get install socat")
	}
	_, port := compatStart(t, "socat", regexp.MustCompile(`listening on AF=2 127\.0\.0\.1:(\d+)`),
		bin, "-d", "-d", "TCP-LISTEN:0,bind=127.0.0.1,fork,reuseaddr", "UNIX-CONNECT:"+sock)
	return "127.0.0.1:" + port
}

func compatPoll(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// HTTP.

// compatHTTP talks TCP; it never follows redirects, so that a status code is
// the server's own.
var compatHTTP = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// compatUnixClient is an http.Client whose every connection goes to the Unix
// socket; the host in its URLs does not matter.
func compatUnixClient(t *testing.T, sock string) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Timeout:       10 * time.Second,
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func compatDo(c *http.Client, method, url, contentType string, body []byte) (int, string, string, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", "", err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b), err
}

// compatScrape gets url and parses it as the text format.
func compatScrape(c *http.Client, url string) (map[string]*dto.MetricFamily, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s\n%s", url, resp.Status, b)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("GET %s: does not parse: %v\n%s", url, err, b)
	}
	return mfs, nil
}

// ---------------------------------------------------------------------------
// Metrics, normalised.

// compatSelf tells the families that a gateway exposes about itself.
func compatSelf(name string) bool {
	for _, p := range []string{"go_", "process_", "pushgateway_", "push_gateway_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// compatLabels renders labels sorted, without those whose value is empty
// (the Pushgateway adds instance="" everywhere; an empty label is no label
// in Prometheus), plus extra name/value pairs.
func compatLabels(ls []*dto.LabelPair, extra ...string) string {
	var kv [][2]string
	for _, l := range ls {
		if l.GetValue() != "" {
			kv = append(kv, [2]string{l.GetName(), l.GetValue()})
		}
	}
	for i := 0; i+1 < len(extra); i += 2 {
		kv = append(kv, [2]string{extra[i], extra[i+1]})
	}
	if len(kv) == 0 {
		return ""
	}
	sort.Slice(kv, func(i, j int) bool { return kv[i][0] < kv[j][0] })
	parts := make([]string, len(kv))
	for i, p := range kv {
		parts[i] = p[0] + "=" + strconv.Quote(p[1])
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func compatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// compatSamples flattens families into sample name{labels} → value, as the
// text format writes them, without the gateways' own families.
func compatSamples(mfs map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for name, mf := range mfs {
		if compatSelf(name) {
			continue
		}
		for _, m := range mf.GetMetric() {
			ls := m.GetLabel()
			switch mf.GetType() {
			case dto.MetricType_SUMMARY:
				s := m.GetSummary()
				for _, q := range s.GetQuantile() {
					out[name+compatLabels(ls, "quantile", compatFloat(q.GetQuantile()))] = q.GetValue()
				}
				out[name+"_sum"+compatLabels(ls)] = s.GetSampleSum()
				out[name+"_count"+compatLabels(ls)] = float64(s.GetSampleCount())
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					out[name+"_bucket"+compatLabels(ls, "le", compatFloat(b.GetUpperBound()))] = float64(b.GetCumulativeCount())
				}
				out[name+"_sum"+compatLabels(ls)] = h.GetSampleSum()
				out[name+"_count"+compatLabels(ls)] = float64(h.GetSampleCount())
			case dto.MetricType_COUNTER:
				out[name+compatLabels(ls)] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[name+compatLabels(ls)] = m.GetGauge().GetValue()
			default:
				out[name+compatLabels(ls)] = m.GetUntyped().GetValue()
			}
		}
	}
	return out
}

// compatFamily is a family normalised for comparison: its metrics by their
// labels, each value rendered with everything it holds. A label set that
// occurs more than once (possible in the Pushgateway once empty labels are
// dropped) has all its values, sorted and joined with " & ".
type compatFamily struct {
	typ, help string
	metrics   map[string]string
}

func compatNormalise(mfs map[string]*dto.MetricFamily) map[string]*compatFamily {
	out := map[string]*compatFamily{}
	for name, mf := range mfs {
		if compatSelf(name) {
			continue
		}
		f := &compatFamily{typ: strings.ToLower(mf.GetType().String()), help: mf.GetHelp(), metrics: map[string]string{}}
		values := map[string][]string{}
		for _, m := range mf.GetMetric() {
			k := compatLabels(m.GetLabel())
			values[k] = append(values[k], compatValue(name, mf.GetType(), m))
		}
		for k, v := range values {
			sort.Strings(v)
			f.metrics[k] = strings.Join(v, " & ")
		}
		out[name] = f
	}
	return out
}

func compatValue(name string, t dto.MetricType, m *dto.Metric) string {
	// Buckets and quantiles in order of their bounds: the Pushgateway
	// exposes a text push's buckets in the order they were pushed, which
	// means nothing in the data model.
	switch t {
	case dto.MetricType_SUMMARY:
		s := m.GetSummary()
		qs := slices.Clone(s.GetQuantile())
		sort.Slice(qs, func(i, j int) bool { return qs[i].GetQuantile() < qs[j].GetQuantile() })
		v := fmt.Sprintf("count=%d sum=%s", s.GetSampleCount(), compatFloat(s.GetSampleSum()))
		for _, q := range qs {
			v += fmt.Sprintf(" q%s=%s", compatFloat(q.GetQuantile()), compatFloat(q.GetValue()))
		}
		return v
	case dto.MetricType_HISTOGRAM:
		h := m.GetHistogram()
		bs := slices.Clone(h.GetBucket())
		sort.Slice(bs, func(i, j int) bool { return bs[i].GetUpperBound() < bs[j].GetUpperBound() })
		v := fmt.Sprintf("count=%d sum=%s", h.GetSampleCount(), compatFloat(h.GetSampleSum()))
		for _, b := range bs {
			v += fmt.Sprintf(" le%s=%d", compatFloat(b.GetUpperBound()), b.GetCumulativeCount())
		}
		return v
	}
	var v float64
	switch t {
	case dto.MetricType_COUNTER:
		v = m.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		v = m.GetGauge().GetValue()
	default:
		v = m.GetUntyped().GetValue()
	}
	if name == "push_time_seconds" || name == "push_failure_time_seconds" {
		if v == 0 {
			return "zero"
		}
		return "nonzero"
	}
	return compatFloat(v) // NaN renders as NaN on both sides
}

// compatDiff lists the differences between two normalised scrapes, one line
// each, in words that stay the same from one step to the next.
func compatDiff(ours, theirs map[string]*compatFamily) []string {
	var d []string
	names := map[string]bool{}
	for n := range ours {
		names[n] = true
	}
	for n := range theirs {
		names[n] = true
	}
	for n := range names {
		o, p := ours[n], theirs[n]
		switch {
		case o == nil:
			d = append(d, fmt.Sprintf("family %s: ours=absent pushgateway=%s", n, p.typ))
			o = &compatFamily{}
		case p == nil:
			d = append(d, fmt.Sprintf("family %s: ours=%s pushgateway=absent", n, o.typ))
			p = &compatFamily{}
		default:
			if o.typ != p.typ {
				d = append(d, fmt.Sprintf("family %s: type ours=%s pushgateway=%s", n, o.typ, p.typ))
			}
			if o.help != p.help {
				d = append(d, fmt.Sprintf("family %s: help ours=%q pushgateway=%q", n, o.help, p.help))
			}
		}
		keys := map[string]bool{}
		for k := range o.metrics {
			keys[k] = true
		}
		for k := range p.metrics {
			keys[k] = true
		}
		for k := range keys {
			ov, ok1 := o.metrics[k]
			pv, ok2 := p.metrics[k]
			if !ok1 {
				ov = "absent"
			}
			if !ok2 {
				pv = "absent"
			}
			if ov != pv {
				d = append(d, fmt.Sprintf("%s%s: ours=%s pushgateway=%s", n, k, ov, pv))
			}
		}
	}
	sort.Strings(d)
	return d
}

// ---------------------------------------------------------------------------
// Bodies.

const (
	compatText  = "text/plain; version=0.0.4; charset=utf-8"
	compatProto = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
)

// compatEncode writes families in the delimited protobuf format, as
// client_golang's push package does.
func compatEncode(t *testing.T, mfs ...*dto.MetricFamily) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeProtoDelim))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// compatGather gathers collectors from a fresh client_golang registry.
func compatGather(t *testing.T, cs ...prometheus.Collector) []*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewRegistry()
	for _, c := range cs {
		reg.MustRegister(c)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

func compatB64(s string) string       { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
func compatB64Padded(s string) string { return base64.URLEncoding.EncodeToString([]byte(s)) }

// ---------------------------------------------------------------------------
// The differential test.

type compatStep struct {
	name   string
	method string
	path   string
	ctype  string
	body   []byte
}

// compatDifference is a difference from the Pushgateway that is accepted on
// purpose: the status codes of one step (ours, the Pushgateway's) when they
// differ, and the lines of compatDiff that first appear at that step.
type compatDifference struct {
	step   string
	codes  [2]int
	scrape []string
	reason string
}

// compatDeliberate is the complete list of accepted differences. Everything
// not listed here must match the Pushgateway; an entry whose difference does
// not show fails the test too, so that the list stays true.
//
// Differences that PRODUCT.md names and that this test sets aside rather
// than lists, because no step could show them:
//   - TTL and budget: pushed groups expire --cache.ttl after their last push
//     and may be evicted; the Pushgateway keeps them until deleted. The
//     daemon runs with --cache.ttl=10m and --cache.size=1MiB, which no step
//     reaches.
//   - Transport: the daemon takes pushes on its Unix socket only (the test
//     pushes there), its TCP endpoint is read-only; the Pushgateway takes
//     both on TCP.
//   - Self-metrics: go_*, process_*, pushgateway_* there, push_gateway_*
//     here; compatSelf drops them all.
//   - instance="": the Pushgateway adds it to every series; an empty label is
//     no label, so compatLabels drops it (and every other empty label).
//   - Bucket and quantile order: the Pushgateway writes a text push's
//     buckets in pushed order, the daemon sorted; compatValue sorts both.
var compatDeliberate = []compatDifference{
	// Grouping keys that the Pushgateway's router never hands to its push
	// handler: it redirects (301, 307) or does not route (404). PRODUCT.md
	// says an invalid grouping key, no job or an empty job, is 400.
	{step: "key: empty job in the path", codes: [2]int{400, 301},
		reason: "PRODUCT.md: an empty job is 400; the Pushgateway's router redirects //"},
	{step: "key: no job after /job/", codes: [2]int{400, 307},
		reason: "PRODUCT.md: no job is 400; the Pushgateway's router redirects to the path without the slash"},
	{step: "key: /metrics/job alone", codes: [2]int{400, 404},
		reason: "PRODUCT.md: no job is 400; the Pushgateway has no route there"},
	// A label named twice in a grouping key: the Pushgateway silently keeps
	// the last value (and the job from /job/<JOB> over a /job/<VALUE>
	// label); the daemon refuses the key, which no client produces (they all
	// build it from a map).
	{step: "key: a label twice", codes: [2]int{400, 200},
		scrape: []string{
			`dupkey{a="2",job="dupkey"}: ours=absent pushgateway=1`,
			`family dupkey: ours=absent pushgateway=untyped`,
			`push_failure_time_seconds{a="2",job="dupkey"}: ours=absent pushgateway=zero`,
			`push_time_seconds{a="2",job="dupkey"}: ours=absent pushgateway=nonzero`,
		},
		reason: "ingest.ParseGroupingKey refuses a label named twice on purpose, instead of keeping one value silently"},
	{step: "key: job as a grouping label", codes: [2]int{400, 200},
		scrape: []string{
			`family jobkey: ours=absent pushgateway=untyped`,
			`jobkey{job="jobkey"}: ours=absent pushgateway=1`,
			`push_failure_time_seconds{job="jobkey"}: ours=absent pushgateway=zero`,
			`push_time_seconds{job="jobkey"}: ours=absent pushgateway=nonzero`,
		},
		reason: "as for a label named twice: job is named twice"},
	// A histogram bucket without le: expfmt, in the Pushgateway, drops the
	// sample silently and stores an empty histogram (count 0, only +Inf).
	// The daemon refuses the body: PRODUCT.md makes a body that fails to
	// parse a 400, and losing the pushed value without a word helps nobody.
	{step: "bad body: histogram bucket without le", codes: [2]int{400, 200},
		scrape: []string{
			`family hb: ours=absent pushgateway=histogram`,
			`hb{job="batch"}: ours=absent pushgateway=count=0 sum=0 le+Inf=0`,
		},
		reason: "the daemon refuses a _bucket sample without le instead of storing an empty histogram"},
	// A body whose last line has no newline: expfmt, in the Pushgateway,
	// fails with "unexpected end of input stream"; the daemon applies the
	// line, as it does on the raw stream (PRODUCT.md). Being lenient here
	// breaks no client.
	{step: "body: last line without a newline", codes: [2]int{200, 400},
		scrape: []string{
			`family nonl: ours=untyped pushgateway=absent`,
			`nonl{job="nonl"}: ours=1 pushgateway=absent`,
			`push_failure_time_seconds{job="nonl"}: ours=zero pushgateway=absent`,
			`push_time_seconds{job="nonl"}: ours=nonzero pushgateway=absent`,
		},
		reason: "PRODUCT.md (raw stream): a last line without a newline is applied"},
	// An empty label value is no label (PRODUCT.md, "as everywhere in
	// Prometheus"). For the Pushgateway m{a=""} and m are two series.
	{step: "body: empty label value equals none", codes: [2]int{400, 200},
		scrape: []string{
			`family m: ours=absent pushgateway=untyped`,
			`m{job="emptylab"}: ours=absent pushgateway=1 & 2`,
			`push_failure_time_seconds{job="emptylab"}: ours=nonzero pushgateway=zero`,
			`push_time_seconds{job="emptylab"}: ours=zero pushgateway=nonzero`,
		},
		reason: "PRODUCT.md: a label with an empty value is the same as no such label, so the body repeats a series"},
	// A grouping label with an empty value is no label (PRODUCT.md): the
	// group {job="emptyinst",instance=""} is the group {job="emptyinst"},
	// and deleting the latter deletes it. For the Pushgateway they are two
	// groups (and pushing the same series to both breaks its /metrics).
	{step: "delete: the group without its empty grouping label", scrape: []string{
		`e{job="emptyinst"}: ours=absent pushgateway=1`,
		`family e: ours=absent pushgateway=untyped`,
		`push_failure_time_seconds{job="emptyinst"}: ours=absent pushgateway=zero`,
		`push_time_seconds{job="emptyinst"}: ours=absent pushgateway=nonzero`,
	}, reason: "PRODUCT.md: a grouping label with an empty value is the same as no such label"},
}

func compatSteps(t *testing.T) []compatStep {
	const jobsHelp = "# HELP jobs_total Jobs processed, by queue.\n# TYPE jobs_total counter\n"

	// Real client_golang collectors, for the protobuf bodies.
	records := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "batch_records_total", Help: "Records processed."}, []string{"stage"})
	records.WithLabelValues("read").Add(120)
	records.WithLabelValues("write").Add(118)
	lastSuccess := prometheus.NewGauge(prometheus.GaugeOpts{Name: "batch_last_success_timestamp_seconds", Help: "When the batch last succeeded."})
	lastSuccess.Set(1.7e9)
	duration := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "batch_duration_seconds", Help: "How long the batch ran.", Buckets: []float64{0.5, 1, 5}})
	for _, v := range []float64{0.2, 0.7, 3, 9} {
		duration.Observe(v)
	}
	size := prometheus.NewSummaryVec(prometheus.SummaryOpts{Name: "batch_item_size_bytes", Help: "Size of the items.", Objectives: map[float64]float64{0.5: 0.05, 0.9: 0.01}}, []string{"kind"})
	for _, v := range []float64{10, 20, 30, 40} {
		size.WithLabelValues("blob").Observe(v)
	}
	size.WithLabelValues("empty")
	duration2 := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "batch_duration_seconds", Help: "How long the batch ran.", Buckets: []float64{0.5, 1, 5}})
	duration2.Observe(0.1)

	gauge := func(name string, v float64) *dto.MetricFamily {
		return &dto.MetricFamily{Name: proto.String(name), Type: dto.MetricType_GAUGE.Enum(),
			Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(v)}}}}
	}
	stamped := gauge("stamped", 1)
	stamped.Metric[0].TimestampMs = proto.Int64(1700000000000)
	badLabel := gauge("bad_label", 1)
	badLabel.Metric[0].Label = []*dto.LabelPair{{Name: proto.String("a-b"), Value: proto.String("x")}}
	emptyHB := &dto.MetricFamily{Name: proto.String("hb"), Type: dto.MetricType_HISTOGRAM.Enum()}
	emptyRecords := &dto.MetricFamily{Name: proto.String("batch_records_total"), Help: proto.String("Records processed."), Type: dto.MetricType_COUNTER.Enum()}

	txt := func(s string) []byte { return []byte(s) }
	return []compatStep{
		// Pushes that succeed.
		{"put text: counter, gauge, untyped, help and escapes", "PUT", "/metrics/job/batch", compatText, txt(jobsHelp +
			`jobs_total{queue="a"} 3` + "\n" +
			`jobs_total{queue="b\\c \"q\"\n"} 4` + "\n" +
			`# HELP temperature_celsius Temperature, with a \\ backslash and a \n newline.` + "\n" +
			"# TYPE temperature_celsius gauge\n" +
			`temperature_celsius{room="kitchen"} 21.5` + "\n" +
			`temperature_celsius{room="café ☕"} -3e-05` + "\n" +
			"plain_untyped 42\n" +
			"# HELP only_help A HELP and no TYPE.\n" +
			`only_help{a="1"} 1` + "\n" +
			"name:with:colons 7\n")},
		{"put protobuf from client_golang: counter, gauge, histogram, summary", "PUT", "/metrics/job/batch/instance/host1", compatProto,
			compatEncode(t, compatGather(t, records, lastSuccess, duration, size)...)},
		{"post text: replaces one family, adds one, keeps the rest", "POST", "/metrics/job/batch", compatText, txt(
			"# HELP temperature_celsius Temperature, with a \\\\ backslash and a \\n newline.\n" +
				"# TYPE temperature_celsius gauge\n" +
				`temperature_celsius{room="cellar"} 12` + "\n" +
				"# TYPE last_run_seconds gauge\nlast_run_seconds 17.25\n")},
		{"post text: a family without HELP loses its HELP", "POST", "/metrics/job/batch", compatText, txt(
			"# TYPE temperature_celsius gauge\n" + `temperature_celsius{room="cellar"} 13` + "\n")},
		{"put text: a family with HELP", "PUT", "/metrics/job/helpput", compatText, txt("# HELP put_help Some help.\n# TYPE put_help gauge\nput_help 1\n")},
		{"put text: the family again without HELP loses its HELP", "PUT", "/metrics/job/helpput", compatText, txt("# TYPE put_help gauge\nput_help 2\n")},
		{"post protobuf: replaces the histogram only", "POST", "/metrics/job/batch/instance/host1", compatProto,
			compatEncode(t, compatGather(t, duration2)...)},
		{"post protobuf: a family with no metrics removes it", "POST", "/metrics/job/batch/instance/host1", compatProto,
			compatEncode(t, emptyRecords)},
		{"put text: replaces the whole group", "PUT", "/metrics/job/batch/instance/host1", compatText, txt(
			"# HELP batch_last_success_timestamp_seconds When the batch last succeeded.\n" +
				"# TYPE batch_last_success_timestamp_seconds gauge\nbatch_last_success_timestamp_seconds 1.7e+09\n")},
		{"key: base64 value with slashes", "PUT", "/metrics/job/backup/path@base64/" + compatB64("/var/lib/backup"), compatText, txt("backup_size_bytes 1024\n")},
		{"key: padded base64 value", "PUT", "/metrics/job/backup/path@base64/" + compatB64Padded("/var/log"), compatText, txt("backup_size_bytes 2048\n")},
		{"key: base64 job with a slash", "PUT", "/metrics/job@base64/" + compatB64("nightly/db") + "/instance/a", compatText, txt("db_dump_seconds 3\n")},
		{"key: empty value as @base64/=", "PUT", "/metrics/job/solo/instance@base64/=", compatText, txt("solo_value 1\n")},
		{"key: extra grouping label; a family shared with another group", "PUT", "/metrics/job/batch/instance/host2/zone/eu", compatText, txt(jobsHelp + `jobs_total{queue="z"} 1` + "\n")},
		{"key: grouping labels win over body labels", "PUT", "/metrics/job/override/instance/fromurl", compatText,
			txt(`overridden{instance="frombody",job="bodyjob",kept="yes"} 1` + "\n")},
		{"key: percent-escaped value", "PUT", "/metrics/job/esc/instance/a%20b%2Bc%C3%A9", compatText, txt("esc_value 1\n")},
		{"key: plus sign in a value", "PUT", "/metrics/job/esc/instance/a+b", compatText, txt("esc_value 2\n")},
		{"body: text histogram, buckets out of order, no +Inf", "PUT", "/metrics/job/hist", compatText, txt(
			"# HELP req_seconds Request latency.\n# TYPE req_seconds histogram\n" +
				`req_seconds_bucket{path="/a",le="1"} 5` + "\n" +
				`req_seconds_bucket{path="/a",le="0.1"} 2` + "\n" +
				`req_seconds_sum{path="/a"} 3.5` + "\n" +
				`req_seconds_count{path="/a"} 7` + "\n" +
				`req_seconds_bucket{path="/b",le="0.1"} 0` + "\n" +
				`req_seconds_bucket{path="/b",le="+Inf"} 1` + "\n" +
				`req_seconds_sum{path="/b"} 0.5` + "\n" +
				`req_seconds_count{path="/b"} 1` + "\n")},
		{"body: text summary, with and without quantiles", "PUT", "/metrics/job/summ", compatText, txt(
			"# TYPE rpc_seconds summary\n" +
				`rpc_seconds{quantile="0.99",method="get"} 0.3` + "\n" +
				`rpc_seconds{quantile="0.5",method="get"} 0.1` + "\n" +
				`rpc_seconds_sum{method="get"} 12` + "\n" +
				`rpc_seconds_count{method="get"} 100` + "\n" +
				`rpc_seconds_sum{method="put"} 1` + "\n" +
				`rpc_seconds_count{method="put"} 2` + "\n")},
		{"body: NaN, infinities, extremes, a negative counter", "PUT", "/metrics/job/special", compatText, txt(
			"# TYPE special gauge\n" +
				`special{v="nan"} NaN` + "\n" +
				`special{v="inf"} +Inf` + "\n" +
				`special{v="-inf"} -Inf` + "\n" +
				`special{v="max"} 1.7976931348623157e+308` + "\n" +
				`special{v="min"} 5e-324` + "\n" +
				"# TYPE negative_total counter\nnegative_total -1\n")},
		{"body: Content-Type of a form (curl's default) is text", "PUT", "/metrics/job/curlish", "application/x-www-form-urlencoded", txt("curlish 1\n")},
		{"body: OpenMetrics Content-Type is read as text", "PUT", "/metrics/job/om", "application/openmetrics-text; version=1.0.0; charset=utf-8", txt("om_value 1\n# EOF\n")},
		{"body: protobuf Content-Type with parameters in another order", "PUT", "/metrics/job/pborder",
			"application/vnd.google.protobuf; encoding=delimited; proto=io.prometheus.client.MetricFamily", compatEncode(t, gauge("pb_order", 5))},
		{"body: protobuf with a family twice, the last wins", "PUT", "/metrics/job/pbdup", compatProto, compatEncode(t, gauge("pb_dup", 1), gauge("pb_dup", 2))},
		{"body: push_time_seconds in the body is the gateway's own", "PUT", "/metrics/job/pt", compatText,
			txt("# TYPE push_time_seconds counter\npush_time_seconds 5\npush_failure_time_seconds 6\npt_value 1\n")},
		{"post text: to a group that does not exist yet", "POST", "/metrics/job/newpost", compatText, txt("np_value 1\n")},
		{"body: label named le or quantile outside a histogram or summary", "PUT", "/metrics/job/lq", compatText,
			txt(`lq_gauge{le="1",quantile="0.5"} 1` + "\n")},
		{"body: last line without a newline", "PUT", "/metrics/job/nonl", compatText, txt("nonl 1")},
		{"delete: resynchronise after the lenient push", "DELETE", "/metrics/job/nonl", "", nil},

		// Pushes that fail.
		{"bad body: syntax error, existing group", "PUT", "/metrics/job/batch", compatText, txt(`jobs_total{queue="a" 3` + "\n")},
		{"bad body: syntax error, new group", "PUT", "/metrics/job/badbody", compatText, txt("what is this\n")},
		{"bad body: truncated protobuf", "PUT", "/metrics/job/badproto", compatProto, []byte{0x0a, 0x01}},
		// More bodies that do not parse, to the group of the one above so
		// that only the status code is new.
		{"bad body: label value not UTF-8", "PUT", "/metrics/job/badbody", compatText, txt("bad{a=\"\xff\"} 1\n")},
		{"bad body: HELP twice", "PUT", "/metrics/job/badbody", compatText, txt("# HELP h one\n# HELP h two\nh 1\n")},
		{"bad body: TYPE after samples", "PUT", "/metrics/job/badbody", compatText, txt("t 1\n# TYPE t gauge\n")},
		{"bad body: TYPE twice", "PUT", "/metrics/job/badbody", compatText, txt("# TYPE t gauge\n# TYPE t counter\nt 1\n")},
		{"bad body: unknown TYPE", "PUT", "/metrics/job/badbody", compatText, txt("# TYPE t weird\nt 1\n")},
		{"bad body: invalid metric name in protobuf", "PUT", "/metrics/job/badname", compatProto, compatEncode(t, gauge("1bad", 1))},
		{"bad body: invalid label name in protobuf", "PUT", "/metrics/job/badname", compatProto, compatEncode(t, badLabel)},
		{"bad body: histogram bucket without le", "POST", "/metrics/job/batch", compatText, txt("# TYPE hb histogram\nhb_bucket 1\n")},
		{"post protobuf: resynchronise after the bucket without le", "POST", "/metrics/job/batch", compatProto, compatEncode(t, emptyHB)},
		{"conflict: a TYPE other than another group's", "PUT", "/metrics/job/other", compatText, txt("# TYPE jobs_total gauge\njobs_total 1\n")},
		{"conflict: a histogram's name pushed as a gauge", "POST", "/metrics/job/batch", compatText, txt("# TYPE req_seconds gauge\nreq_seconds 1\n")},
		{"conflict: a histogram's bucket name pushed by another group", "PUT", "/metrics/job/clash", compatText, txt("req_seconds_bucket 1\n")},
		{"conflict: a series twice in one body", "PUT", "/metrics/job/dup", compatText, txt(`d{a="1"} 1` + "\n" + `d{a="1"} 2` + "\n")},
		{"conflict: a series that another group holds", "PUT", "/metrics/job/batch/queue/a", compatText, txt(jobsHelp + "jobs_total 9\n")},
		{"body: empty label value equals none", "PUT", "/metrics/job/emptylab", compatText, txt(`m{a=""} 1` + "\nm 2\n")},
		{"delete: resynchronise after the empty label", "DELETE", "/metrics/job/emptylab", "", nil},
		{"bad body: a timestamp in text", "PUT", "/metrics/job/batch/instance/host1", compatText, txt("stamped 1 1700000000000\n")},
		{"bad body: a timestamp in protobuf", "PUT", "/metrics/job/tsproto", compatProto, compatEncode(t, stamped)},

		// Empty bodies.
		{"empty PUT body (text) empties the group", "PUT", "/metrics/job/batch/instance/host2/zone/eu", compatText, nil},
		{"empty PUT body (protobuf) empties the group", "PUT", "/metrics/job/override/instance/fromurl", compatProto, nil},
		{"empty POST body changes nothing but the push time", "POST", "/metrics/job/hist", compatText, nil},
		{"post text: a TYPE with no samples keeps the family", "POST", "/metrics/job/batch", compatText, txt("# TYPE jobs_total counter\n")},
		{"put text: the same family in another group merges", "PUT", "/metrics/job/other2", compatText, txt(jobsHelp + `jobs_total{queue="c"} 5` + "\n")},

		// Invalid grouping keys.
		{"key: bad base64", "PUT", "/metrics/job/x/a@base64/!!!", compatText, txt("x 1\n")},
		{"key: empty base64 job", "PUT", "/metrics/job@base64/=", compatText, txt("x 1\n")},
		{"key: label name starting with a digit", "PUT", "/metrics/job/x/1a/b", compatText, txt("x 1\n")},
		{"key: reserved label name", "PUT", "/metrics/job/x/__a/b", compatText, txt("x 1\n")},
		{"key: odd number of components", "PUT", "/metrics/job/x/a", compatText, txt("x 1\n")},
		{"key: escaped slash makes the components odd", "PUT", "/metrics/job/x/instance/a%2Fb", compatText, txt("x 1\n")},
		{"key: odd number of components in a DELETE", "DELETE", "/metrics/job/x/a", "", nil},
		{"key: empty job in the path", "PUT", "/metrics/job//instance/a", compatText, txt("x 1\n")},
		{"key: no job after /job/", "PUT", "/metrics/job/", compatText, txt("x 1\n")},
		{"key: /metrics/job alone", "PUT", "/metrics/job", compatText, txt("x 1\n")},
		{"key: a label twice", "PUT", "/metrics/job/dupkey/a/1/a/2", compatText, txt("dupkey 1\n")},
		{"delete: resynchronise after the label twice", "DELETE", "/metrics/job/dupkey/a/2", "", nil},
		{"key: job as a grouping label", "PUT", "/metrics/job/jobkey/job/other", compatText, txt("jobkey 1\n")},
		{"delete: resynchronise after the job label", "DELETE", "/metrics/job/jobkey", "", nil},

		// Deletes.
		{"delete: a group, not the groups it prefixes", "DELETE", "/metrics/job/batch", "", nil},
		{"delete: a group that does not exist", "DELETE", "/metrics/job/nosuchjob/instance/x", "", nil},
		{"delete: base64 job", "DELETE", "/metrics/job@base64/" + compatB64("nightly/db") + "/instance/a", "", nil},
		{"delete: empty value as @base64/=", "DELETE", "/metrics/job/solo/instance@base64/=", "", nil},
		{"key: empty value at the end of the path", "PUT", "/metrics/job/emptyinst/instance/", compatText, txt("e 1\n")},
		{"delete: the group without its empty grouping label", "DELETE", "/metrics/job/emptyinst", "", nil},
		{"delete: the group with its empty grouping label", "DELETE", "/metrics/job/emptyinst/instance/", "", nil},
		{"delete: a group after a failed push", "DELETE", "/metrics/job/badbody", "", nil},
		{"delete: another group after a failed push", "DELETE", "/metrics/job/badproto", "", nil},
		{"put text: a group pushed again after its delete", "PUT", "/metrics/job/batch", compatText, txt(jobsHelp + `jobs_total{queue="a"} 30` + "\n")},

		// Last, because the Pushgateway 1.5.1 that Debian ships never
		// releases a lock after this error (fixed upstream by "Remove
		// unneeded mutex"): every later PUT to /metrics/job@base64/ hangs.
		{"key: bad base64 job", "PUT", "/metrics/job@base64/!!!", compatText, txt("x 1\n")},
	}
}

func TestCompatPushgateway(t *testing.T) {
	pg := compatPushgateway(t)
	sock, web := compatDaemon(t)
	ours := compatUnixClient(t, sock)

	steps := compatSteps(t)
	if len(steps) < 20 {
		t.Fatalf("only %d steps", len(steps))
	}
	deliberate := map[string]compatDifference{}
	for _, d := range compatDeliberate {
		deliberate[d.step] = d
	}
	seen := map[string]bool{}
	for _, s := range steps {
		if seen[s.name] {
			t.Fatalf("step %q twice", s.name)
		}
		seen[s.name] = true
	}
	for name := range deliberate {
		if !seen[name] {
			t.Errorf("compatDeliberate names step %q, which does not exist", name)
		}
	}

	known := map[string]bool{}    // differences that showed at the step before
	reported := map[string]bool{} // differences reported as errors
	for i, s := range steps {
		desc := fmt.Sprintf("step %d %q (%s %s)", i+1, s.name, s.method, s.path)
		want := deliberate[s.name]
		oc, oct, ob, err := compatDo(ours, s.method, "http://push-gateway"+s.path, s.ctype, s.body)
		if err != nil {
			t.Fatalf("%s: ours: %v", desc, err)
		}
		pc, pct, pb, err := compatDo(compatHTTP, s.method, pg+s.path, s.ctype, s.body)
		if err != nil {
			t.Fatalf("%s: pushgateway: %v", desc, err)
		}
		if oc >= 400 && pc >= 400 && !strings.HasPrefix(oct, "text/plain") {
			t.Errorf("%s: status %d with Content-Type %q, want the reason in text/plain as the Pushgateway (%q)", desc, oc, oct, pct)
		}
		switch {
		case oc != pc && want.codes == [2]int{oc, pc}:
			t.Logf("%s: deliberate difference, status ours=%d pushgateway=%d: %s", desc, oc, pc, want.reason)
		case oc != pc:
			t.Errorf("%s: status ours=%d pushgateway=%d, and compatDeliberate does not list it\nours: %s\npushgateway: %s", desc, oc, pc, strings.TrimSpace(ob), strings.TrimSpace(pb))
		case want.codes != [2]int{}:
			t.Errorf("%s: compatDeliberate expects status ours=%d pushgateway=%d, both answered %d", desc, want.codes[0], want.codes[1], oc)
		}

		// The Pushgateway applies a DELETE after it answers (a push before):
		// after a DELETE, poll until the scrapes agree, bounded.
		var diffs, unexpected, missing []string
		deadline := time.Now()
		if s.method == http.MethodDelete {
			deadline = deadline.Add(1500 * time.Millisecond)
		}
		for {
			om, err := compatScrape(compatHTTP, "http://"+web+"/metrics")
			if err != nil {
				t.Fatalf("%s: ours: %v", desc, err)
			}
			pm, err := compatScrape(compatHTTP, pg+"/metrics")
			if err != nil {
				t.Fatalf("%s: pushgateway: %v", desc, err)
			}
			diffs = compatDiff(compatNormalise(om), compatNormalise(pm))
			unexpected, missing = nil, nil
			for _, d := range diffs {
				if !known[d] && !slices.Contains(want.scrape, d) {
					unexpected = append(unexpected, d)
				}
			}
			for _, d := range want.scrape {
				if !slices.Contains(diffs, d) {
					missing = append(missing, d)
				}
			}
			if len(unexpected) == 0 && len(missing) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(25 * time.Millisecond)
		}
		if len(want.scrape) > 0 && len(missing) == 0 {
			t.Logf("%s: deliberate difference in the scrape: %s", desc, want.reason)
		}
		if len(missing) > 0 {
			t.Errorf("%s: compatDeliberate expects these differences, which do not show:\n\t%s", desc, strings.Join(missing, "\n\t"))
		}
		for _, d := range unexpected {
			reported[d] = true
		}
		if len(unexpected) > 0 {
			t.Errorf("%s: scrapes differ, and compatDeliberate does not list it (status ours=%d pushgateway=%d):\n\t%s\nours: %s\npushgateway: %s",
				desc, oc, pc, strings.Join(unexpected, "\n\t"), strings.TrimSpace(ob), strings.TrimSpace(pb))
		}
		known = map[string]bool{}
		for _, d := range diffs {
			known[d] = true
		}
	}

	// The steps resynchronise the two after each deliberate difference:
	// what still differs at the end must be a difference reported above.
	var left []string
	for d := range known {
		if !reported[d] {
			left = append(left, d)
		}
	}
	sort.Strings(left)
	if len(left) > 0 {
		t.Errorf("after the last step, deliberate differences are left that a step should have undone:\n\t%s", strings.Join(left, "\n\t"))
	}
}

// ---------------------------------------------------------------------------
// Real clients.

// compatWant checks that got holds these samples with these values.
func compatWant(t *testing.T, what string, got map[string]float64, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("%s: %s missing", what, k)
		case g != v && !(math.IsNaN(g) && math.IsNaN(v)):
			t.Errorf("%s: %s = %v, want %v", what, k, g, v)
		}
	}
}

// compatNone checks that no sample of got has a label job="<job>".
func compatNone(t *testing.T, what string, got map[string]float64, job string) {
	t.Helper()
	for k := range got {
		if strings.Contains(k, `job=`+strconv.Quote(job)) {
			t.Errorf("%s: %s still there", what, k)
		}
	}
}

// compatPushTime checks that the group's push_time_seconds is recent and
// its push_failure_time_seconds is as wanted.
func compatPushTime(t *testing.T, what string, got map[string]float64, labels string, failed bool) {
	t.Helper()
	pt, ok := got["push_time_seconds"+labels]
	if !ok || pt < float64(time.Now().Add(-time.Minute).Unix()) || pt > float64(time.Now().Add(time.Minute).Unix()) {
		t.Errorf("%s: push_time_seconds%s = %v (present %v), want about now", what, labels, pt, ok)
	}
	if ft, ok := got["push_failure_time_seconds"+labels]; !ok || (ft != 0) != failed {
		t.Errorf("%s: push_failure_time_seconds%s = %v (present %v), want nonzero %v", what, labels, ft, ok, failed)
	}
}

func compatSamplesOf(t *testing.T, c *http.Client, url string) map[string]float64 {
	t.Helper()
	mfs, err := compatScrape(c, url)
	if err != nil {
		t.Fatal(err)
	}
	return compatSamples(mfs)
}

// compatPusherRun pushes with client_golang's push.Pusher to gateway (a URL)
// through client, in the given format, and checks every step on /metrics.
func compatPusherRun(t *testing.T, gateway string, client *http.Client, format expfmt.Format, job, web string) {
	jobs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cg_jobs_total", Help: "Jobs."}, []string{"queue"})
	jobs.WithLabelValues("a").Add(3)
	temp := prometheus.NewGauge(prometheus.GaugeOpts{Name: "cg_temperature_celsius", Help: "Temperature."})
	temp.Set(-2.5)
	lat := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cg_latency_seconds", Help: "Latency.", Buckets: []float64{0.1, 1}})
	lat.Observe(0.05)
	lat.Observe(0.5)
	lat.Observe(5)
	size := prometheus.NewSummary(prometheus.SummaryOpts{Name: "cg_size_bytes", Help: "Size.", Objectives: map[float64]float64{0.5: 0.05}})
	size.Observe(100)
	size.Observe(300)
	extra := prometheus.NewGauge(prometheus.GaugeOpts{Name: "cg_extra", Help: "Extra."})
	extra.Set(7)

	// Grouping values: one with a slash (base64), one empty (@base64/=,
	// the same as no label).
	pusher := func() *push.Pusher {
		return push.New(gateway, job).Client(client).Format(format).Grouping("instance", "worker/1").Grouping("zone", "")
	}
	gl := func(extra ...string) string {
		return compatLabels(nil, append([]string{"instance", "worker/1", "job", job}, extra...)...)
	}
	scrape := func() map[string]float64 { return compatSamplesOf(t, compatHTTP, "http://"+web+"/metrics") }

	if err := pusher().Collector(jobs).Collector(temp).Collector(lat).Collector(size).Push(); err != nil {
		t.Fatalf("Push: %v", err)
	}
	got := scrape()
	compatWant(t, "after Push", got, map[string]float64{
		"cg_jobs_total" + gl("queue", "a"):             3,
		"cg_temperature_celsius" + gl():                -2.5,
		"cg_latency_seconds_bucket" + gl("le", "0.1"):  1,
		"cg_latency_seconds_bucket" + gl("le", "1"):    2,
		"cg_latency_seconds_bucket" + gl("le", "+Inf"): 3,
		"cg_latency_seconds_sum" + gl():                5.55,
		"cg_latency_seconds_count" + gl():              3,
		"cg_size_bytes_sum" + gl():                     400,
		"cg_size_bytes_count" + gl():                   2,
	})
	if _, ok := got["cg_size_bytes"+gl("quantile", "0.5")]; !ok {
		t.Errorf("after Push: the summary's quantile 0.5 is missing")
	}
	compatPushTime(t, "after Push", got, gl(), false)

	if err := pusher().Collector(extra).Add(); err != nil {
		t.Fatalf("Add: %v", err)
	}
	got = scrape()
	compatWant(t, "after Add", got, map[string]float64{"cg_jobs_total" + gl("queue", "a"): 3, "cg_extra" + gl(): 7})

	jobs.WithLabelValues("a").Inc()
	if err := pusher().Collector(jobs).Add(); err != nil {
		t.Fatalf("Add: %v", err)
	}
	got = scrape()
	compatWant(t, "after a second Add", got, map[string]float64{"cg_jobs_total" + gl("queue", "a"): 4, "cg_extra" + gl(): 7})

	if err := pusher().Collector(extra).Push(); err != nil {
		t.Fatalf("second Push: %v", err)
	}
	got = scrape()
	compatWant(t, "after the second Push", got, map[string]float64{"cg_extra" + gl(): 7})
	for _, n := range []string{"cg_jobs_total" + gl("queue", "a"), "cg_latency_seconds_count" + gl(), "cg_size_bytes_count" + gl()} {
		if _, ok := got[n]; ok {
			t.Errorf("after the second Push (a PUT): %s is still there", n)
		}
	}

	// The same family as a gauge from another group: the daemon refuses it
	// with 400, and the Pusher says so.
	err := push.New(gateway, job+"-other").Client(client).Format(format).Collector(prometheus.NewCounterFunc(
		prometheus.CounterOpts{Name: "cg_extra", Help: "Extra."}, func() float64 { return 1 })).Push()
	if err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("Push of a counter that is a gauge in another group: err = %v, want one with status 400", err)
	}
	got = scrape()
	other := compatLabels(nil, "job", job+"-other")
	compatWant(t, "after the refused push", got, map[string]float64{"push_time_seconds" + other: 0})
	if ft := got["push_failure_time_seconds"+other]; ft < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("after the refused push: push_failure_time_seconds%s = %v, want about now", other, ft)
	}

	if err := pusher().Delete(); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if err := push.New(gateway, job+"-other").Client(client).Delete(); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	got = scrape()
	compatNone(t, "after Delete", got, job)
	compatNone(t, "after Delete", got, job+"-other")
	// Deleting again is fine.
	if err := pusher().Delete(); err != nil {
		t.Errorf("Delete of a deleted group: %v", err)
	}
}

func TestCompatClients(t *testing.T) {
	sock, web := compatDaemon(t)
	unix := compatUnixClient(t, sock)
	formats := []struct {
		name string
		f    expfmt.Format
	}{
		{"protobuf", expfmt.NewFormat(expfmt.TypeProtoDelim)},
		{"text", expfmt.NewFormat(expfmt.TypeTextPlain)},
	}

	t.Run("client_golang/unix", func(t *testing.T) {
		for _, f := range formats {
			t.Run(f.name, func(t *testing.T) {
				compatPusherRun(t, "http://push-gateway", unix, f.f, "cg-unix-"+f.name, web)
			})
		}
	})

	t.Run("client_golang/socat", func(t *testing.T) {
		if _, err := exec.LookPath("socat"); err != nil {
			t.Skip("socat is not installed: apt-get install socat")
		}
		bridge := compatSocat(t, sock)
		for _, f := range formats {
			t.Run(f.name, func(t *testing.T) {
				c := &http.Client{Timeout: 10 * time.Second}
				compatPusherRun(t, bridge, c, f.f, "cg-socat-"+f.name, web)
			})
		}
	})

	t.Run("python/socat", func(t *testing.T) {
		if _, err := exec.LookPath("socat"); err != nil {
			t.Skip("socat is not installed: apt-get install socat")
		}
		if err := exec.Command("/usr/bin/python3", "-c", "import prometheus_client").Run(); err != nil {
			t.Skipf("Debian's python3-prometheus-client is not installed (/usr/bin/python3: %v): apt-get install python3-prometheus-client", err)
		}
		bridge := compatSocat(t, sock)
		// One Python process for all the actions: it reads an action a line
		// and answers "ok" or "error: ...".
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "/usr/bin/python3", "testdata/compat/pyclient.py", bridge)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		answers := make(chan string)
		go func() {
			defer close(answers)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				answers <- sc.Text()
			}
		}()
		defer func() {
			stdin.Close()
			for range answers {
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("pyclient.py: %v\n%s", err, stderr.String())
			}
		}()
		py := func(action string) string {
			t.Helper()
			if _, err := io.WriteString(stdin, action+"\n"); err != nil {
				t.Fatalf("pyclient.py %s: %v\n%s", action, err, stderr.String())
			}
			select {
			case a, ok := <-answers:
				if !ok {
					t.Fatalf("pyclient.py %s: exited\n%s", action, stderr.String())
				}
				return a
			case <-time.After(15 * time.Second):
				t.Fatalf("pyclient.py %s: no answer within 15 s\n%s", action, stderr.String())
			}
			return ""
		}
		run := func(action string) map[string]float64 {
			t.Helper()
			if a := py(action); a != "ok" {
				t.Fatalf("pyclient.py %s: %s", action, a)
			}
			return compatSamplesOf(t, compatHTTP, "http://"+web+"/metrics")
		}
		gl := func(extra ...string) string {
			return compatLabels(nil, append([]string{"instance", "host/1", "job", "python"}, extra...)...)
		}

		got := run("push")
		compatWant(t, "push_to_gateway", got, map[string]float64{
			"py_jobs_total" + gl("queue", "a"):             3,
			"py_temperature_celsius" + gl():                21.5,
			"py_latency_seconds_bucket" + gl("le", "0.1"):  1,
			"py_latency_seconds_bucket" + gl("le", "1"):    2,
			"py_latency_seconds_bucket" + gl("le", "+Inf"): 3,
			"py_latency_seconds_count" + gl():              3,
			"py_latency_seconds_sum" + gl():                5.55,
			"py_size_bytes_count" + gl():                   2,
			"py_size_bytes_sum" + gl():                     400,
		})
		compatPushTime(t, "push_to_gateway", got, gl(), false)

		got = run("pushadd")
		compatWant(t, "pushadd_to_gateway", got, map[string]float64{"py_jobs_total" + gl("queue", "a"): 3, "py_extra" + gl(): 7})

		got = run("push-extra")
		compatWant(t, "push_to_gateway of one family", got, map[string]float64{"py_extra" + gl(): 7})
		if _, ok := got["py_jobs_total"+gl("queue", "a")]; ok {
			t.Errorf("push_to_gateway (a PUT) left py_jobs_total behind")
		}

		if a := py("conflict"); !strings.HasPrefix(a, "error:") || !strings.Contains(a, "400") {
			t.Errorf("pyclient.py conflict: %q, want an error with status 400", a)
		}

		got = run("delete")
		compatNone(t, "delete_from_gateway", got, "python")
		compatNone(t, "delete_from_gateway", got, "python-other")
	})

	t.Run("curl/unix", func(t *testing.T) {
		curl, err := exec.LookPath("curl")
		if err != nil {
			t.Skip("curl is not installed: apt-get install curl")
		}
		do := func(method, path, ctype, body string) (code int, ct, resp string) {
			t.Helper()
			args := []string{"-sS", "--max-time", "5", "--unix-socket", sock, "-X", method,
				"-w", "\n%{http_code} %{content_type}", "http://localhost" + path}
			if method != "GET" && method != "DELETE" {
				args = append(args, "--data-binary", "@-")
			}
			if ctype != "" {
				args = append(args, "-H", "Content-Type: "+ctype)
			}
			cmd := exec.Command(curl, args...)
			cmd.Stdin = strings.NewReader(body)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("curl %s %s: %v\n%s", method, path, err, out)
			}
			s := string(out)
			i := strings.LastIndexByte(s, '\n')
			last := strings.SplitN(s[i+1:], " ", 2)
			code, _ = strconv.Atoi(last[0])
			if len(last) > 1 {
				ct = last[1]
			}
			return code, ct, s[:i]
		}
		scrape := func() map[string]float64 { return compatSamplesOf(t, compatHTTP, "http://"+web+"/metrics") }
		gl := compatLabels(nil, "instance", "c1", "job", "curl")

		if code, _, body := do("PUT", "/metrics/job/curl/instance/c1", "", "# TYPE curl_runs_total counter\ncurl_runs_total 1\ncurl_gauge 5\n"); code != 200 {
			t.Fatalf("PUT: %d %s", code, body)
		}
		got := scrape()
		compatWant(t, "after PUT", got, map[string]float64{"curl_runs_total" + gl: 1, "curl_gauge" + gl: 5})
		compatPushTime(t, "after PUT", got, gl, false)

		if code, _, body := do("POST", "/metrics/job/curl/instance/c1", compatText, "curl_runs_total 2\n"); code != 200 {
			t.Fatalf("POST: %d %s", code, body)
		}
		compatWant(t, "after POST", scrape(), map[string]float64{"curl_runs_total" + gl: 2, "curl_gauge" + gl: 5})

		code, ct, body := do("PUT", "/metrics/job/curl/instance/c1", compatText, "curl_gauge{ 1\n")
		if code != 400 || !strings.HasPrefix(ct, "text/plain") || strings.TrimSpace(body) == "" {
			t.Errorf("PUT of a bad body: %d %q %q, want 400, text/plain and the reason", code, ct, body)
		}
		got = scrape()
		compatWant(t, "after the bad PUT", got, map[string]float64{"curl_runs_total" + gl: 2, "curl_gauge" + gl: 5})
		// A body that does not parse never reaches its group: no failure
		// time, as the Pushgateway's README says of malformed pushes.
		compatPushTime(t, "after the bad PUT", got, gl, false)

		code, ct, body = do("GET", "/metrics", "", "")
		if code != 200 || !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("GET /metrics on the socket: %d %q", code, ct)
		}
		parser := expfmt.NewTextParser(model.LegacyValidation)
		mfs, err := parser.TextToMetricFamilies(strings.NewReader(body))
		if err != nil {
			t.Fatalf("GET /metrics on the socket does not parse: %v", err)
		}
		compatWant(t, "GET /metrics on the socket", compatSamples(mfs), map[string]float64{"curl_runs_total" + gl: 2, "curl_gauge" + gl: 5})

		if code, _, body := do("DELETE", "/metrics/job/curl/instance/c1", "", ""); code != 202 {
			t.Errorf("DELETE: %d %s", code, body)
		}
		compatNone(t, "after DELETE", scrape(), "curl")
		if code, _, body := do("DELETE", "/metrics/job/curl/instance/c1", "", ""); code != 202 {
			t.Errorf("DELETE of a deleted group: %d %s", code, body)
		}
	})
}

// ---------------------------------------------------------------------------
// scripts/socat-bridge.sh

func TestCompatBridgeScript(t *testing.T) {
	if _, err := exec.LookPath("socat"); err != nil {
		t.Skip("socat is not installed: apt-get install socat")
	}
	script, err := filepath.Abs("../../scripts/socat-bridge.sh")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("help", func(t *testing.T) {
		out, err := exec.Command("sh", script, "-h").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "usage") {
			t.Errorf("-h: %v\n%s", err, out)
		}
	})
	t.Run("bad port", func(t *testing.T) {
		out, err := exec.Command("sh", script, "-p", "ninety").CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "port") {
			t.Errorf("-p ninety: %v, want exit status 2 and a message about the port\n%s", err, out)
		}
	})
	t.Run("shellcheck", func(t *testing.T) {
		sc, err := exec.LookPath("shellcheck")
		if err != nil {
			t.Skip("shellcheck is not installed: apt-get install shellcheck")
		}
		if out, err := exec.Command(sc, "-s", "sh", script).CombinedOutput(); err != nil {
			t.Errorf("shellcheck: %v\n%s", err, out)
		}
	})

	t.Run("bridge", func(t *testing.T) {
		sock, web := compatDaemon(t)
		// The script takes a port, not :0: take a free one and give it back.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		l.Close()
		cmd := exec.Command("sh", script)
		cmd.Env = append(os.Environ(), "PUSH_GATEWAY_BRIDGE_PORT="+port, "PUSH_GATEWAY_INGEST_SOCKET="+sock)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		t.Cleanup(func() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-done
			}
		})
		addr := "127.0.0.1:" + port
		compatPoll(t, 10*time.Second, "the bridge to listen on "+addr, func() bool {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return false
			}
			c.Close()
			return true
		})
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "bridged", Help: "Pushed through the bridge."})
		g.Set(42)
		if err := push.New(addr, "bridge").Client(compatHTTP).Collector(g).Push(); err != nil {
			t.Fatalf("push through the bridge: %v", err)
		}
		compatWant(t, "after a push through the bridge", compatSamplesOf(t, compatHTTP, "http://"+web+"/metrics"),
			map[string]float64{`bridged{job="bridge"}`: 42})
		// Only on 127.0.0.1 by default.
		if ifs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range ifs {
				ip, ok := a.(*net.IPNet)
				if !ok || ip.IP.IsLoopback() || ip.IP.To4() == nil {
					continue
				}
				if c, err := net.DialTimeout("tcp", net.JoinHostPort(ip.IP.String(), port), time.Second); err == nil {
					c.Close()
					t.Errorf("the bridge answers on %s, want 127.0.0.1 only by default", ip.IP)
				}
			}
		}
	})
}
