//go:build !noremotewrite

package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/VictoriaMetrics/easyproto"
	"github.com/golang/snappy"
	"golang.org/x/crypto/bcrypt"

	"github.com/push-gateway/push-gateway/expose/web/webtest"
)

// ---------------------------------------------------------------------------
// A Prometheus that takes remote write, and its HTTP API.

type promServer struct {
	addr   string // host:port
	scheme string
	client *http.Client
	user   string // basic auth for the API, if set
	pass   string
}

// startPrometheus starts Debian's Prometheus as a remote write receiver on
// a free loopback port; webConfig, if not empty, is its --web.config.file
// content. The test is skipped if Prometheus is not installed.
func startPrometheus(t *testing.T, webConfig string) *promServer {
	t.Helper()
	if _, err := os.Stat(rwPrometheusBin); err != nil {
		t.Skipf("Prometheus is not installed (%v): apt-get install prometheus", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &promServer{addr: l.Addr().String(), scheme: "http", client: rwHTTP}
	if strings.Contains(webConfig, "tls_server_config") {
		p.scheme = "https"
	}
	l.Close()
	dir := shortTempDir(t)
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte("global:\n  scrape_interval: 1m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"--web.enable-remote-write-receiver", "--config.file=" + cfg,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"), "--web.listen-address=" + p.addr}
	if webConfig != "" {
		wc := filepath.Join(dir, "web.yml")
		if err := os.WriteFile(wc, []byte(webConfig), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--web.config.file="+wc)
	}
	rwStart(t, rwPrometheusBin, args...)
	// Ready once its API answers.
	waitUntil(t, 30*time.Second, "Prometheus ready", func() (bool, string) {
		req, _ := http.NewRequest("GET", p.scheme+"://"+p.addr+"/-/ready", nil)
		resp, err := insecureHTTP.Do(req)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		// 401 behind basic auth: it is up.
		return resp.StatusCode == 200 || resp.StatusCode == 401, resp.Status
	})
	return p
}

const rwPrometheusBin = "/usr/bin/prometheus"

var rwHTTP = &http.Client{Timeout: 10 * time.Second}

// insecureHTTP only asks whether a server is up, TLS or not.
var insecureHTTP = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

// rwStart starts a helper process, killed and waited for at cleanup; its
// output is logged if the test fails.
func rwStart(t *testing.T, bin string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out logLines
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	w.Close()
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		br := bufio.NewReader(r)
		for {
			line, err := br.ReadString('\n')
			if line != "" {
				out.add(strings.TrimRight(line, "\n"))
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		<-drained
		r.Close()
		if t.Failed() {
			t.Logf("%s output:\n%s", bin, out.String())
		}
	})
}

func (p *promServer) writeURL() string { return p.scheme + "://" + p.addr + "/api/v1/write" }

// api GETs an API path and decodes its data.
func (p *promServer) api(t *testing.T, path string, params url.Values, data any) {
	t.Helper()
	req, err := http.NewRequest("GET", p.scheme+"://"+p.addr+path+"?"+params.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.user != "" {
		req.SetBasicAuth(p.user, p.pass)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Status string
		Error  string
		Data   json.RawMessage
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Status != "success" {
		t.Fatalf("%s %v: %s %s %v", path, params, r.Status, r.Error, err)
	}
	if err := json.Unmarshal(r.Data, data); err != nil {
		t.Fatal(err)
	}
}

type promSample struct {
	Metric map[string]string
	Value  [2]any
	Values [][2]any
}

// query returns the series of an instant query as "labels value" lines.
func (p *promServer) query(t *testing.T, q string) []string {
	t.Helper()
	var d struct{ Result []promSample }
	p.api(t, "/api/v1/query", url.Values{"query": {q}}, &d)
	var out []string
	for _, s := range d.Result {
		out = append(out, labelString(s.Metric)+" "+s.Value[1].(string))
	}
	slices.Sort(out)
	return out
}

// rangeTimes returns the sample timestamps (ms) of the one series that the
// range selector q (such as m[1m]) gives.
func (p *promServer) rangeTimes(t *testing.T, q string) []int64 {
	t.Helper()
	var d struct{ Result []promSample }
	p.api(t, "/api/v1/query", url.Values{"query": {q}}, &d)
	if len(d.Result) != 1 {
		t.Fatalf("%s: %d series", q, len(d.Result))
	}
	var ts []int64
	for _, v := range d.Result[0].Values {
		f, _ := v[0].(float64)
		ts = append(ts, int64(math.Round(f*1000)))
	}
	return ts
}

// series returns the label sets /api/v1/series has for match.
func (p *promServer) series(t *testing.T, match string) []string {
	t.Helper()
	var d []map[string]string
	p.api(t, "/api/v1/series", url.Values{"match[]": {match}, "start": {strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)}}, &d)
	var out []string
	for _, m := range d {
		out = append(out, labelString(m))
	}
	slices.Sort(out)
	return out
}

func labelString(m map[string]string) string {
	var ls []string
	for k, v := range m {
		ls = append(ls, fmt.Sprintf("%s=%q", k, v))
	}
	slices.Sort(ls)
	return "{" + strings.Join(ls, ",") + "}"
}

// exposed returns the samples of the families named with prefix in the
// daemon's exposition as "labels value" lines, __name__ among the labels
// and extra labels added, as Prometheus should hold them.
func exposed(t *testing.T, body, prefix string, extra map[string]string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		name, labels, value, ok := splitSample(line)
		pairs, ok2 := splitLabels(labels)
		if !ok || !ok2 {
			t.Fatalf("bad sample line %q", line)
		}
		m := map[string]string{"__name__": name}
		for _, p := range pairs {
			v, err := strconv.Unquote(`"` + p[1] + `"`)
			if err != nil {
				t.Fatalf("label value %q: %v", p[1], err)
			}
			m[p[0]] = v
		}
		for k, v := range extra {
			if _, ok := m[k]; !ok {
				m[k] = v
			}
		}
		f, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("value %q: %v", value, err)
		}
		out = append(out, labelString(m)+" "+strconv.FormatFloat(f, 'f', -1, 64))
	}
	slices.Sort(out)
	return out
}

// waitUntil polls cond every 100 ms for at most timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, got := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s; got:\n%s", timeout, what, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func rwSelf(t *testing.T, d *daemon, name string, labels ...string) float64 {
	t.Helper()
	v, _ := d.scrape(t).value(name, labels...)
	return v
}

// ---------------------------------------------------------------------------

const rwPush = `# TYPE rw_requests_total counter
# HELP rw_requests_total Requests "served".
rw_requests_total{path="/a \"quoted\" \\ path\n",code="200"} 7
rw_requests_total{path="/b",code="500"} 1
# TYPE rw_temperature_celsius gauge
rw_temperature_celsius{sensor="cpu",instance="board-7"} 41.5
# TYPE rw_latency_seconds histogram
rw_latency_seconds_bucket{le="0.1"} 2
rw_latency_seconds_bucket{le="0.5"} 5
rw_latency_seconds_bucket{le="+Inf"} 6
rw_latency_seconds_sum 1.75
rw_latency_seconds_count 6
# TYPE rw_rpc_seconds summary
rw_rpc_seconds{quantile="0.5",svc="db"} 0.02
rw_rpc_seconds{quantile="0.99",svc="db"} 0.3
rw_rpc_seconds_sum{svc="db"} 12.5
rw_rpc_seconds_count{svc="db"} 400
`

// TestRemoteWritePrometheus sends the cache to a real Prometheus: every
// sample of the daemon's /metrics (counters, a gauge, a histogram and a
// summary, escapes in label values) must be what Prometheus holds, with
// the external labels (instance=<hostname> unless the series has its own
// instance); a deleted series must stop at once (stale marker), not linger
// for Prometheus' 5-minute lookback.
func TestRemoteWritePrometheus(t *testing.T) {
	t.Parallel()
	prom := startPrometheus(t, "")
	d := startDaemon(t, "--remote-write.url="+prom.writeURL(), "--remote-write.interval=1s",
		"--remote-write.external-label=site=lab-1")
	host, _ := os.Hostname()
	if !slices.ContainsFunc(d.stderr.all(), func(l string) bool {
		return strings.Contains(l, `msg="remote write on"`) && strings.Contains(l, "url="+prom.writeURL())
	}) {
		t.Errorf("no start line saying where remote write sends:\n%s", d.stderr.String())
	}
	d.push(t, rwPush)
	_, _ = d.request(t, true, "PUT", "/metrics/job/rwdel", "text/plain", "rw_deleted_gauge 3\n")

	var want []string
	waitUntil(t, 10*time.Second, "the 13 rw_ samples in /metrics", func() (bool, string) {
		body := d.scrape(t).body
		want = exposed(t, body, "rw_", map[string]string{"instance": host, "site": "lab-1"})
		return len(want) == 13, body
	})
	waitUntil(t, 30*time.Second, "Prometheus holds what /metrics shows", func() (bool, string) {
		got := prom.query(t, `{__name__=~"rw_.+"}`)
		return slices.Equal(got, want), strings.Join(got, "\n") + "\nwant:\n" + strings.Join(want, "\n")
	})
	var wantSeries []string
	for _, s := range want {
		wantSeries = append(wantSeries, s[:strings.LastIndexByte(s, ' ')])
	}
	if got := prom.series(t, `{__name__=~"rw_.+"}`); !slices.Equal(got, wantSeries) {
		t.Errorf("/api/v1/series:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantSeries, "\n"))
	}

	// Deleted: the stale marker ends it at once.
	_, _ = d.request(t, true, "DELETE", "/metrics/job/rwdel", "", "")
	waitUntil(t, 15*time.Second, "rw_deleted_gauge gone from an instant query", func() (bool, string) {
		got := prom.query(t, `rw_deleted_gauge`)
		return len(got) == 0, strings.Join(got, "\n")
	})
	// An updated value arrives too.
	d.push(t, "rw_temperature_celsius{sensor=\"cpu\",instance=\"board-7\"} 43\n")
	waitUntil(t, 15*time.Second, "the new temperature", func() (bool, string) {
		got := prom.query(t, `rw_temperature_celsius`)
		return len(got) == 1 && strings.HasSuffix(got[0], " 43"), strings.Join(got, "\n")
	})
	e := d.scrape(t)
	for _, n := range []string{"push_gateway_remote_write_samples_total", "push_gateway_remote_write_requests_total",
		"push_gateway_remote_write_queue_bytes", "push_gateway_remote_write_last_success_timestamp_seconds"} {
		if _, ok := e.fams[n]; !ok {
			t.Errorf("self-metric %s missing", n)
		}
	}
	if v, _ := e.value("push_gateway_remote_write_samples_total", "result", "sent"); v < 16 {
		t.Errorf("samples sent %v", v)
	}
	if v, _ := e.value("push_gateway_remote_write_samples_total", "result", "dropped"); v != 0 {
		t.Errorf("samples dropped %v", v)
	}
	if v, _ := e.value("push_gateway_remote_write_last_success_timestamp_seconds"); time.Since(time.Unix(int64(v), 0)) > time.Minute {
		t.Errorf("last success %v", v)
	}
}

// Without --remote-write.url there is none of it: no self-metric, no log.
func TestRemoteWriteOff(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	if strings.Contains(d.scrape(t).body, "remote_write") {
		t.Error("remote write self-metrics without --remote-write.url")
	}
	if strings.Contains(d.stderr.String(), "remote write") {
		t.Errorf("remote write logged without --remote-write.url:\n%s", d.stderr.String())
	}
}

// ---------------------------------------------------------------------------
// TLS and basic auth.

// testPKI makes a CA and a server certificate for 127.0.0.1 signed by it,
// in dir (webtest, as the web config's tests make theirs).
func testPKI(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	ca := webtest.NewCA(t)
	crt, key := ca.Server(t, 2)
	return webtest.WriteFile(t, dir, "ca.crt", ca.PEM), webtest.WriteFile(t, dir, "server.crt", crt), webtest.WriteFile(t, dir, "server.key", key)
}

// TestRemoteWriteTLSBasicAuth sends to a Prometheus behind its own TLS and
// basic auth: the daemon trusts the test's CA (--remote-write.tls.ca-file)
// and reads its password from a file at each request. A wrong password is
// refused with 401: counted, dropped, never retried; once the file holds
// the right one, requests go through without a restart.
func TestRemoteWriteTLSBasicAuth(t *testing.T) {
	t.Parallel()
	dir := shortTempDir(t)
	caFile, certFile, keyFile := testPKI(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	prom := startPrometheus(t, fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  device: %s\n",
		certFile, keyFile, hash))
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(caFile)
	pool.AppendCertsFromPEM(caPEM)
	prom.scheme, prom.user, prom.pass = "https", "device", "s3cret-pw"
	prom.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	pw := filepath.Join(dir, "password")
	os.WriteFile(pw, []byte("wrong\n"), 0o600)
	d := startDaemon(t, "--remote-write.url="+prom.writeURL(), "--remote-write.interval=1s",
		"--remote-write.tls.ca-file="+caFile, "--remote-write.basic-auth.username=device",
		"--remote-write.basic-auth.password-file="+pw, "--remote-write.external-label=instance=")
	d.push(t, "rw_tls_gauge{k=\"v\"} 5\n")
	waitUntil(t, 20*time.Second, "three requests refused with 401", func() (bool, string) {
		v := rwSelf(t, d, "push_gateway_remote_write_requests_total", "code", "401")
		return v >= 3, fmt.Sprint(v)
	})
	e := d.scrape(t)
	refused, _ := e.value("push_gateway_remote_write_requests_total", "code", "401")
	dropped, _ := e.value("push_gateway_remote_write_samples_total", "result", "dropped")
	retried, _ := e.value("push_gateway_remote_write_samples_total", "result", "retried")
	// One sample per request; the count may have moved between the two reads.
	if retried != 0 || dropped < refused-1 || dropped > refused+1 {
		t.Errorf("401: %v requests, %v samples dropped, %v retried; want one dropped a request, none retried", refused, dropped, retried)
	}
	if n := strings.Count(d.stderr.String(), "remote write refused"); n != 1 {
		t.Errorf("%d log lines about the refusal, want 1:\n%s", n, d.stderr.String())
	}
	if strings.Contains(d.stderr.String(), "wrong") {
		t.Errorf("the password was logged")
	}

	os.WriteFile(pw, []byte("s3cret-pw\n"), 0o600) // rotated: no restart
	waitUntil(t, 20*time.Second, "the sample in Prometheus over TLS", func() (bool, string) {
		got := prom.query(t, "rw_tls_gauge")
		return slices.Equal(got, []string{`{__name__="rw_tls_gauge",k="v"} 5`}), strings.Join(got, "\n")
	})
}

// ---------------------------------------------------------------------------
// Faults between the daemon and Prometheus.

// faultProxy stands between the daemon and Prometheus and answers each
// request as its plan says: pass it on, or fail in one of several ways.
type faultProxy struct {
	t      *testing.T
	target string // Prometheus' write URL
	srv    *http.Server
	addr   string

	mu    sync.Mutex
	plan  []string // modes for the next requests, then "pass"
	down  bool     // every request fails (connection closed) while set
	reqs  []proxyReq
	hangs chan struct{} // closed at cleanup: ends "hang"
}

type proxyReq struct {
	at      time.Time
	mode    string
	status  int // what the daemon got; 0 for a network failure
	samples int
	ts      int64 // the samples' timestamp (the snapshot's)
}

func startFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{t: t, target: target, addr: l.Addr().String(), hangs: make(chan struct{})}
	p.srv = &http.Server{Handler: p}
	go p.srv.Serve(l)
	t.Cleanup(func() { close(p.hangs); p.srv.Close() })
	return p
}

func (p *faultProxy) url() string { return "http://" + p.addr + "/api/v1/write" }

func (p *faultProxy) setPlan(modes ...string) {
	p.mu.Lock()
	p.plan = append(p.plan, modes...)
	p.mu.Unlock()
}

func (p *faultProxy) setDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
}

func (p *faultProxy) log() []proxyReq {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.reqs)
}

// planDone reports whether every planned fault has been served.
func (p *faultProxy) planDone() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.plan) == 0
}

// rwCount returns the number of samples in a remote write body and their
// timestamp (all of one request have the snapshot's).
func rwCount(body []byte) (n int, ts int64, err error) {
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		return 0, 0, err
	}
	var fc, tc, sc easyproto.FieldContext
	for src := raw; len(src) > 0; {
		if src, err = fc.NextField(src); err != nil {
			return 0, 0, err
		}
		if fc.FieldNum != 1 {
			continue
		}
		m, _ := fc.MessageData()
		for m := m; len(m) > 0; {
			if m, err = tc.NextField(m); err != nil {
				return 0, 0, err
			}
			if tc.FieldNum == 2 {
				s, _ := tc.MessageData()
				if ok, _ := sc.FieldByNum(s, 2); ok {
					ts, _ = sc.Int64()
				}
				n++
			}
		}
	}
	return n, ts, nil
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	n, ts, err := rwCount(body)
	if err != nil {
		p.t.Errorf("fault proxy: undecodable request: %v", err)
	}
	p.mu.Lock()
	mode := "pass"
	if p.down {
		mode = "down"
	} else if len(p.plan) > 0 {
		mode, p.plan = p.plan[0], p.plan[1:]
	}
	p.mu.Unlock()
	rec := proxyReq{at: time.Now(), mode: mode, samples: n, ts: ts}
	defer func() {
		p.mu.Lock()
		p.reqs = append(p.reqs, rec)
		p.mu.Unlock()
	}()
	hijack := func() net.Conn {
		c, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			p.t.Errorf("hijack: %v", err)
			return nil
		}
		return c
	}
	switch mode {
	case "down": // the connection closes before any answer
		if c := hijack(); c != nil {
			c.Close()
		}
	case "midbody": // the answer stops in the middle of its body
		if c := hijack(); c != nil {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf an ans")
			c.Close()
		}
	case "hang": // never answers (the daemon's timeout must end it)
		select {
		case <-r.Context().Done():
		case <-p.hangs:
		case <-time.After(30 * time.Second):
		}
	case "500":
		rec.status = 500
		http.Error(w, "internal trouble", 500)
	case "429":
		rec.status = 429
		w.Header().Set("Retry-After", "2")
		http.Error(w, "slow down", 429)
	case "400":
		rec.status = 400
		http.Error(w, "fault proxy refuses this request", 400)
	case "pass":
		req, _ := http.NewRequest("POST", p.target, bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := rwHTTP.Do(req)
		if err != nil {
			p.t.Errorf("fault proxy: %v", err)
			w.WriteHeader(502)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		rec.status = resp.StatusCode
		w.WriteHeader(resp.StatusCode)
		w.Write(b)
	}
}

// TestRemoteWriteFaults puts a fault-injecting proxy between the daemon and
// Prometheus: an outage of 20 intervals, 500s, a 429 with Retry-After, a
// 400, a connection closed mid-body and a receiver that never answers. No
// snapshot is lost but the refused one, all arrive in order, the counts
// are exact.
func TestRemoteWriteFaults(t *testing.T) {
	t.Parallel()
	prom := startPrometheus(t, "")
	proxy := startFaultProxy(t, prom.writeURL())
	const interval = 500 * time.Millisecond
	d := startDaemon(t, "--remote-write.url="+proxy.url(), "--remote-write.interval="+interval.String(),
		"--remote-write.timeout=3s", "--cache.ttl=0")
	d.push(t, "rw_fault_gauge 1\nrw_fault_other{a=\"b\"} 2\n")
	waitUntil(t, 20*time.Second, "a first delivery", func() (bool, string) {
		return len(prom.query(t, "rw_fault_gauge")) == 1, ""
	})

	// The receiver is down for 20 intervals.
	proxy.setDown(true)
	time.Sleep(20 * interval)
	proxy.setDown(false)
	// Each fault hits a request that then goes through (the backoff starts
	// again at about 1 s for each request), the 400 one that is dropped.
	proxy.setPlan("500", "500", "pass", "429", "pass", "midbody", "pass", "hang", "pass", "400")
	waitUntil(t, 60*time.Second, "every fault served and the queue drained", func() (bool, string) {
		q := rwSelf(t, d, "push_gateway_remote_write_queue_bytes")
		return proxy.planDone() && q == 0, fmt.Sprintf("queue %v bytes, plan done %v", q, proxy.planDone())
	})
	time.Sleep(2 * interval) // a few fresh snapshots after the backlog
	waitUntil(t, 10*time.Second, "the queue drained", func() (bool, string) {
		q := rwSelf(t, d, "push_gateway_remote_write_queue_bytes")
		return q == 0, fmt.Sprint(q)
	})
	e := d.scrape(t)
	log := proxy.log()

	// Requests left in order: the snapshot times of successive tries never
	// go back, and each is tried until it succeeds or is refused.
	// A request whose answer was lost (a timeout while the receiver was
	// slow) is sent again: remote write delivers at least once, and
	// Prometheus takes the same sample twice without complaint. Delivered
	// snapshots are counted once.
	var delivered, refusedTS []int64
	var sent, sentAll, refused, retriedTries int
	for i, r := range log {
		if i > 0 && r.ts < log[i-1].ts {
			t.Fatalf("request %d (snapshot %d) after one of snapshot %d: out of order", i, r.ts, log[i-1].ts)
		}
		if i > 0 && r.ts == log[i-1].ts {
			retriedTries += r.samples
		}
		switch {
		case r.status == 200 || r.status == 204:
			sentAll += r.samples
			if len(delivered) == 0 || delivered[len(delivered)-1] != r.ts {
				delivered = append(delivered, r.ts)
				sent += r.samples
			}
		case r.status == 400:
			refusedTS = append(refusedTS, r.ts)
			refused += r.samples
		}
	}
	if len(refusedTS) != 1 {
		t.Fatalf("%d requests refused with 400, want 1", len(refusedTS))
	}
	// Every snapshot but the refused one arrived: no gap between delivered
	// snapshot times as long as the outage. (A CPU-starved daemon may take
	// a snapshot late, and its ticker skips the ticks it missed: gaps of a
	// few intervals are not losses.)
	for i := 1; i < len(delivered); i++ {
		gap := time.Duration(delivered[i]-delivered[i-1]) * time.Millisecond
		if gap > 5*interval {
			t.Errorf("a gap of %v between delivered snapshots %d and %d: a snapshot was lost", gap, delivered[i-1], delivered[i])
		}
	}
	// The outage's snapshots are in Prometheus, as the proxy passed them.
	var stored []int64
	for _, ts := range prom.rangeTimes(t, "rw_fault_gauge[5m]") {
		if ts <= delivered[len(delivered)-1] {
			stored = append(stored, ts)
		}
	}
	if !slices.Equal(stored, delivered) {
		t.Errorf("Prometheus holds %d samples of rw_fault_gauge, the proxy delivered %d:\n%v\n%v", len(stored), len(delivered), stored, delivered)
	}
	// Counts: exact, against what the proxy saw.
	self := func(result string) int {
		v, _ := e.value("push_gateway_remote_write_samples_total", "result", result)
		return int(v)
	}
	if self("sent") < sent || self("sent") > sentAll || self("dropped") != refused {
		t.Errorf("self-metrics sent %d dropped %d; the proxy saw %d delivered (%d with repeats), %d refused",
			self("sent"), self("dropped"), sent, sentAll, refused)
	}
	// A try on a kept-alive connection that closes before any answer is
	// sent again once on a new connection by the HTTP client itself (as
	// net/http does): the proxy sees it, the sender does not count it.
	if r := self("retried"); r == 0 || r > retriedTries || r < retriedTries-3*2 {
		t.Errorf("self-metric retried %d samples; the proxy saw %d in tries again", r, retriedTries)
	}
	for code, min := range map[string]float64{"500": 2, "429": 1, "400": 1, "error": 3} {
		if v, _ := e.value("push_gateway_remote_write_requests_total", "code", code); v < min {
			t.Errorf("requests_total{code=%q} = %v, want at least %v", code, v, min)
		}
	}
	// The 429 asked for 2 s.
	for i, r := range log[:len(log)-1] {
		if r.mode == "429" {
			if gap := log[i+1].at.Sub(r.at); gap < 1900*time.Millisecond {
				t.Errorf("retried %v after a 429 with Retry-After: 2", gap)
			}
		}
	}
	// The hung request ended by the daemon's 2 s timeout.
	for i, r := range log[:len(log)-1] {
		if r.mode == "hang" {
			if gap := log[i+1].at.Sub(r.at); gap < 3*time.Second || gap > 30*time.Second {
				t.Errorf("next try %v after a request that was never answered (timeout 3s)", gap)
			}
		}
	}
	if n := strings.Count(d.stderr.String(), "fault proxy refuses this request"); n != 1 {
		t.Errorf("the 400's message logged %d times, want 1:\n%s", n, d.stderr.String())
	}
}

// TestRemoteWriteQueueOverflow: an outage longer than the queue holds. The
// oldest requests are dropped, the newest delivered when the receiver is
// back, and every sample is counted once, sent or dropped.
func TestRemoteWriteQueueOverflow(t *testing.T) {
	t.Parallel()
	prom := startPrometheus(t, "")
	proxy := startFaultProxy(t, prom.writeURL())
	const interval = 300 * time.Millisecond
	d := startDaemon(t, "--remote-write.url="+proxy.url(), "--remote-write.interval="+interval.String(),
		"--remote-write.queue-size=1KiB", "--cache.ttl=0", "--remote-write.external-label=instance=")
	var lines strings.Builder
	for i := range 8 {
		fmt.Fprintf(&lines, "rw_overflow_gauge{n=\"%d\"} %d\n", i, i)
	}
	d.push(t, lines.String())
	waitUntil(t, 20*time.Second, "a first delivery", func() (bool, string) {
		return len(prom.query(t, "rw_overflow_gauge")) == 8, ""
	})
	proxy.setDown(true)
	waitUntil(t, 20*time.Second, "a request dropped from the full queue", func() (bool, string) {
		v := rwSelf(t, d, "push_gateway_remote_write_samples_total", "result", "dropped")
		return v >= 40, fmt.Sprint(v)
	})
	proxy.setDown(false)
	waitUntil(t, 30*time.Second, "the queue drained", func() (bool, string) {
		q := rwSelf(t, d, "push_gateway_remote_write_queue_bytes")
		return q == 0 && len(proxy.log()) > 0 && proxy.log()[len(proxy.log())-1].mode == "pass", fmt.Sprint(q)
	})
	e := d.scrape(t)
	sentSelf, _ := e.value("push_gateway_remote_write_samples_total", "result", "sent")
	droppedSelf, _ := e.value("push_gateway_remote_write_samples_total", "result", "dropped")
	var sent int
	var delivered []int64
	for _, r := range proxy.log() {
		if r.status/100 == 2 {
			sent += r.samples
			delivered = append(delivered, r.ts)
		}
	}
	// The scrape may have come between a delivery and the proxy's record
	// of it, or a fresh snapshot may have been sent since: compare
	// with the proxy's log read after the scrape, allowing one request.
	if int(sentSelf) > sent || int(sentSelf) < sent-8 {
		t.Errorf("self-metric sent %v samples, the proxy delivered %d", sentSelf, sent)
	}
	if int(sentSelf+droppedSelf)%8 != 0 {
		t.Errorf("sent %v + dropped %v is not a whole number of 8-sample requests", sentSelf, droppedSelf)
	}
	// The oldest were dropped: the first snapshot tried during the outage
	// never arrived, delivery resumed after a gap (the dropped snapshots)
	// and went on with the newest, in order.
	var firstTried int64
	for _, r := range proxy.log() {
		if r.mode == "down" {
			firstTried = r.ts
			break
		}
	}
	if slices.Contains(delivered, firstTried) {
		t.Errorf("the oldest snapshot of the outage (%d) was delivered: the queue dropped newer ones", firstTried)
	}
	maxGap := time.Duration(0)
	for i := 1; i < len(delivered); i++ {
		if delivered[i] <= delivered[i-1] {
			t.Fatalf("delivered out of order: %v", delivered)
		}
		maxGap = max(maxGap, time.Duration(delivered[i]-delivered[i-1])*time.Millisecond)
	}
	if maxGap < 5*interval {
		t.Errorf("no gap in the delivered snapshots (largest %v): nothing was dropped?", maxGap)
	}
}

// ---------------------------------------------------------------------------
// A CONNECT proxy.

func TestRemoteWriteConnectProxy(t *testing.T) {
	t.Parallel()
	prom := startPrometheus(t, "")
	var mu sync.Mutex
	var connects []string
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "CONNECT" {
			http.Error(w, "CONNECT only", 405)
			return
		}
		mu.Lock()
		connects = append(connects, r.Host)
		mu.Unlock()
		up, err := net.DialTimeout("tcp", r.Host, 5*time.Second)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		c, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			up.Close()
			return
		}
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		go func() { io.Copy(up, c); up.Close() }()
		io.Copy(c, up)
		c.Close()
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	d := startDaemon(t, "--remote-write.url="+prom.writeURL(), "--remote-write.interval=1s",
		"--remote-write.proxy-url=http://"+l.Addr().String())
	d.push(t, "rw_proxied 9\n")
	waitUntil(t, 20*time.Second, "the sample through the proxy", func() (bool, string) {
		got := prom.query(t, "rw_proxied")
		return len(got) == 1 && strings.HasSuffix(got[0], " 9"), strings.Join(got, "\n")
	})
	mu.Lock()
	defer mu.Unlock()
	if len(connects) == 0 || connects[0] != prom.addr {
		t.Errorf("CONNECTs %q, want to %s", connects, prom.addr)
	}
}

// ---------------------------------------------------------------------------
// The command line and the process.

func TestRemoteWriteBadFlags(t *testing.T) {
	t.Parallel()
	dir := shortTempDir(t)
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("x"), 0o600)
	const u = "--remote-write.url=http://127.0.0.1:9/api/v1/write"
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"--remote-write.url=ftp://host/x"}, "--remote-write.url"},
		{[]string{"--remote-write.url=http://user:secret@host/x"}, "--remote-write.url"},
		{[]string{u, "--remote-write.interval=0s"}, "--remote-write.interval"},
		{[]string{u, "--remote-write.timeout=-1s"}, "--remote-write.timeout"},
		{[]string{u, "--remote-write.queue-size=10B"}, "--remote-write.queue-size"},
		{[]string{u, "--remote-write.external-label=no-equals"}, "--remote-write.external-label"},
		{[]string{u, "--remote-write.external-label=__name__=x"}, "--remote-write.external-label"},
		{[]string{u, "--remote-write.header=Content-Type: text/plain"}, "--remote-write.header"},
		{[]string{u, "--remote-write.header=content-encoding: gzip"}, "--remote-write.header"},
		{[]string{u, "--remote-write.header=X-Prometheus-Remote-Write-Version: 2.0.0"}, "--remote-write.header"},
		{[]string{u, "--remote-write.header=User-Agent: me"}, "--remote-write.header"},
		{[]string{u, "--remote-write.header=Content-Length: 1"}, "--remote-write.header"},
		{[]string{u, "--remote-write.header=Host: other"}, "--remote-write.header"},
		{[]string{u, "--remote-write.header=no colon"}, "--remote-write.header"},
		{[]string{u, "--remote-write.basic-auth.username=u", "--remote-write.basic-auth.password-file=" + pw,
			"--remote-write.header=Authorization: Bearer x"}, "--remote-write.header"},
		{[]string{u, "--remote-write.bearer-token-file=" + pw, "--remote-write.basic-auth.username=u"}, "--remote-write.bearer-token-file"},
		{[]string{u, "--remote-write.bearer-token-file=/nonexistent/token"}, "--remote-write.bearer-token-file"},
		{[]string{"--remote-write.url=https://127.0.0.1:9/w", "--remote-write.tls.cert-file=" + pw}, "--remote-write.tls.cert-file"},
		{[]string{u, "--remote-write.proxy-url=socks5://127.0.0.1:1080"}, "--remote-write.proxy-url"},
		{[]string{u, "--remote-write.tls.insecure-skip-verify"}, "--remote-write.tls"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			sock := filepath.Join(shortTempDir(t), "p.sock")
			r := runBinary(t, nil, append([]string{"--ingest.socket=" + sock, "--web.listen-address=127.0.0.1:0"}, tc.args...)...)
			if r.code != 2 {
				t.Errorf("status %d, want 2; stderr:\n%s", r.code, r.stderr)
			}
			if l := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n"); len(l) != 1 || !strings.Contains(l[0], tc.flag) {
				t.Errorf("stderr %q: want one line naming %s", r.stderr, tc.flag)
			}
			if strings.Contains(r.stderr, "secret") {
				t.Errorf("a secret in the error: %q", r.stderr)
			}
		})
	}
	// Authorization is fine without basic auth or a bearer token.
	sock := filepath.Join(shortTempDir(t), "p.sock")
	d := launch(t, nil, "--ingest.socket="+sock, "--web.listen-address=127.0.0.1:0", "--remote-write.url=https://127.0.0.1:9/api/v1/write",
		"--remote-write.header=Authorization: Bearer from-a-flag", "--remote-write.tls.insecure-skip-verify")
	if !slices.ContainsFunc(d.stderr.all(), func(l string) bool {
		return strings.Contains(l, "level=WARN") && strings.Contains(l, "insecure-skip-verify")
	}) {
		t.Errorf("no warning about --remote-write.tls.insecure-skip-verify:\n%s", d.stderr.String())
	}
}

// captureReceiver is a remote write receiver that keeps the value of one
// series from each request.
type captureReceiver struct {
	mu     sync.Mutex
	values []string
	hang   bool
}

func (c *captureReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	c.mu.Lock()
	hang := c.hang
	c.values = append(c.values, string(raw))
	c.mu.Unlock()
	if hang {
		<-r.Context().Done()
		return
	}
	w.WriteHeader(204)
}

func (c *captureReceiver) seen(s string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.ContainsFunc(c.values, func(v string) bool { return strings.Contains(v, s) })
}

func startReceiver(t *testing.T, c *captureReceiver) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: c}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String() + "/api/v1/write"
}

// startPushOnly starts the daemon without its TCP server and returns it
// with its stderr; it is killed at cleanup if still running.
func startPushOnly(t *testing.T, args ...string) (*exec.Cmd, *logLines, string, chan struct{}) {
	t.Helper()
	sock := filepath.Join(shortTempDir(t), "p.sock")
	cmd := exec.Command(binary, append([]string{"--ingest.socket=" + sock, "--web.listen-address="}, args...)...)
	cmd.Env = cleanEnv()
	var out logLines
	r, w, _ := os.Pipe()
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	exited := make(chan struct{})
	go func() {
		br := bufio.NewReader(r)
		for {
			line, err := br.ReadString('\n')
			if line != "" {
				out.add(strings.TrimRight(line, "\n"))
			}
			if err != nil {
				break
			}
		}
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("daemon stderr:\n%s", out.String())
		}
	})
	waitUntil(t, 10*time.Second, "the start-up line", func() (bool, string) {
		return strings.Contains(out.String(), "starting push-gateway"), out.String()
	})
	return cmd, &out, sock, exited
}

// With --web.listen-address="" the daemon serves no TCP and only pushes
// out. At SIGTERM it sends one last snapshot: a value pushed just before
// arrives though the interval (1m) never elapsed.
func TestRemoteWriteOnlyAndLastSnapshot(t *testing.T) {
	t.Parallel()
	recv := &captureReceiver{}
	cmd, out, sock, exited := startPushOnly(t, "--remote-write.url="+startReceiver(t, recv), "--remote-write.interval=1m")
	if !strings.Contains(out.String(), `address=""`) {
		t.Errorf("start-up line without address=\"\":\n%s", out.String())
	}
	for _, l := range out.all() {
		if strings.Contains(l, "level=ERROR") {
			t.Errorf("error at start: %s", l)
		}
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "rw_last_words 42\n")
	c.Close()
	time.Sleep(300 * time.Millisecond) // applied
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		t.Fatal("still running 15 s after SIGTERM")
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status %d", code)
	}
	t.Logf("exit %v after SIGTERM", time.Since(start))
	if !recv.seen("rw_last_words") {
		t.Errorf("the last snapshot did not arrive")
	}
}

// A receiver that never answers cannot hold the daemon past the 10 s exit
// bound; what it could not send is counted dropped (seen in the log).
func TestRemoteWriteExitBound(t *testing.T) {
	t.Parallel()
	recv := &captureReceiver{hang: true}
	cmd, _, sock, exited := startPushOnly(t, "--remote-write.url="+startReceiver(t, recv), "--remote-write.interval=1s",
		"--remote-write.timeout=1m")
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "rw_stuck 1\n")
	c.Close()
	waitUntil(t, 10*time.Second, "a request hanging at the receiver", func() (bool, string) {
		return recv.seen("rw_stuck"), ""
	})
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		t.Fatal("still running 20 s after SIGTERM")
	}
	took := time.Since(start)
	t.Logf("exit %v after SIGTERM", took)
	if took > 10*time.Second+500*time.Millisecond {
		t.Errorf("exit took %v, the bound is 10 s", took)
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status %d", code)
	}
}

// ---------------------------------------------------------------------------
// Settings: OpenWrt's UCI options and the environment.

// TestRemoteWriteOpenWrtOptions runs the init script with the remote write
// options set (UCI lists included) and checks the flags it gives; the same
// flags must start the daemon.
func TestRemoteWriteOpenWrtOptions(t *testing.T) {
	t.Parallel()
	shells := [][]string{{"sh"}}
	if p, err := exec.LookPath("busybox"); err == nil {
		shells = append(shells, []string{p, "ash"})
	}
	dir := shortTempDir(t)
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("x"), 0o600)
	config := fmt.Sprintf(`config push-gateway 'main'
	option enabled '1'
	option socket '%s/p.sock'
	option listen_address '127.0.0.1:0'
	option remote_write_url 'https://127.0.0.1:9/api/v1/write'
	option remote_write_interval '30s'
	option remote_write_basic_auth_username 'dev 1'
	option remote_write_basic_auth_password_file '%s'
	option remote_write_tls_ca_file '%s'
	option remote_write_tls_server_name 'receiver.test'
	option remote_write_tls_insecure_skip_verify '0'
	option remote_write_queue_size '64KiB'
	list remote_write_external_label 'site=berlin 3'
	list remote_write_external_label 'instance='
	list remote_write_header 'X-Scope-OrgID: tenant-1'
`, dir, pw, pw)
	// UCI lists, as /lib/functions.sh has them.
	const lists = `
list() { eval "_n=\${CONFIG_${CONFIG_SECTION}_$1_N:-0}"; _n=$((_n+1)); eval "CONFIG_${CONFIG_SECTION}_$1_N=$_n; CONFIG_${CONFIG_SECTION}_$1_ITEM$_n=\$2"; }
config_list_foreach() {
	_s=$1 _o=$2 _f=$3; shift 3
	eval "_n=\${CONFIG_${_s}_${_o}_N:-0}"; _i=1
	while [ $_i -le $_n ]; do eval "_v=\$CONFIG_${_s}_${_o}_ITEM$_i"; $_f "$_v" "$@"; _i=$((_i+1)); done
}
`
	want := []string{"/usr/bin/push-gateway", "--ingest.socket=" + dir + "/p.sock", "--web.listen-address=127.0.0.1:0",
		"--remote-write.url=https://127.0.0.1:9/api/v1/write", "--remote-write.interval=30s",
		"--remote-write.basic-auth.username=dev 1", "--remote-write.basic-auth.password-file=" + pw,
		"--remote-write.tls.ca-file=" + pw, "--remote-write.tls.server-name=receiver.test",
		"--remote-write.queue-size=64KiB", "--remote-write.external-label=site=berlin 3",
		"--remote-write.external-label=instance=", "--remote-write.header=X-Scope-OrgID: tenant-1"}
	for _, sh := range shells {
		ucidir := t.TempDir()
		os.WriteFile(filepath.Join(ucidir, "push-gateway"), []byte(config), 0o600)
		cmd := exec.Command(sh[0], append(sh[1:], "-c", strings.Replace(pkgInitHarness, "CONFIG_SECTION=\n", "CONFIG_SECTION=\n"+lists, 1))...)
		cmd.Env = append(pkgEnv(), "UCI_DIR="+ucidir, "INIT_SCRIPT="+filepath.Join(pkgRoot(t), "scripts/openwrt/push-gateway.init"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", sh[0], err, out)
		}
		argv, _ := pkgProcd(t, strings.Split(strings.TrimRight(string(out), "\n"), "\n"))
		if !slices.Equal(argv, want) {
			t.Fatalf("%s: command\n got %q\nwant %q\n%s", sh[0], argv, want, out)
		}
	}
	// The daemon takes them (the receiver is never reached here).
	d := launch(t, nil, want[1:]...)
	if !slices.ContainsFunc(d.stderr.all(), func(l string) bool {
		return strings.Contains(l, "remote write on") && strings.Contains(l, `external_labels="site=berlin 3"`)
	}) {
		t.Errorf("no start line with the external labels:\n%s", d.stderr.String())
	}
}

// A repeatable flag from the environment is one value, commas and all.
func TestRemoteWriteEnvironment(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(shortTempDir(t), "p.sock")
	d := launch(t, []string{"PUSH_GATEWAY_REMOTE_WRITE_URL=http://127.0.0.1:9/api/v1/write",
		"PUSH_GATEWAY_REMOTE_WRITE_EXTERNAL_LABEL=site=a,b", "PUSH_GATEWAY_REMOTE_WRITE_HEADER=X-Scope-OrgID: tenant-1"},
		"--ingest.socket="+sock, "--web.listen-address=127.0.0.1:0")
	if !slices.ContainsFunc(d.stderr.all(), func(l string) bool {
		return strings.Contains(l, "remote write on") && strings.Contains(l, `external_labels="site=a,b,instance=`)
	}) {
		t.Errorf("no start line with the external label from the environment:\n%s", d.stderr.String())
	}
}

// A series that expires from the cache (--cache.ttl) is ended in Prometheus
// by its stale marker, instead of lingering for the 5-minute lookback.
func TestRemoteWriteExpiredSeriesStops(t *testing.T) {
	t.Parallel()
	prom := startPrometheus(t, "")
	d := startDaemon(t, "--remote-write.url="+prom.writeURL(), "--remote-write.interval=1s", "--cache.ttl=3s")
	d.push(t, "rw_expiring 1\n")
	waitUntil(t, 20*time.Second, "rw_expiring in Prometheus", func() (bool, string) {
		got := prom.query(t, "rw_expiring")
		return len(got) == 1, strings.Join(got, "\n")
	})
	waitUntil(t, 20*time.Second, "rw_expiring gone from an instant query after its TTL", func() (bool, string) {
		got := prom.query(t, "rw_expiring")
		return len(got) == 0, strings.Join(got, "\n")
	})
}
