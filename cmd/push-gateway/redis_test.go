package main

import (
	"fmt"
	"math"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/push-gateway/push-gateway/ingest/redistest"
)

// The four examples of the prom-stream-gateway README ("Example Metric
// Formats", github.com/Sfonxs/prom-stream-gateway, commit 4369cca), as they
// are there, line breaks and indentation included.
var streamGatewayEvents = []string{`{
  "type": "counter",
  "name": "http_requests_total",
  "value": 1,
  "labels": {
    "method": "GET",
    "status": "200",
    "service": "web-app"
  }
}`, `{
  "type": "gauge",
  "name": "temperature_celsius",
  "value": 22.5,
  "labels": {
    "sensor": "room-1"
  }
}`, `{
  "type": "histogram",
  "name": "request_duration_seconds",
  "value": 0.75,
  "buckets": [0.1, 0.5, 1, 5, 10],
  "labels": {
    "method": "GET",
    "endpoint": "/api/data"
  }
}`, `{
  "type": "summary",
  "name": "http_request_size_bytes",
  "value": 512,
  "quantiles": [0.5, 0.9, 0.99],
  "epsilons": [0.05, 0.01, 0.001],
  "labels": {
    "method": "POST",
    "endpoint": "/upload"
  }
}`}

// checkStreamGatewayEvents checks the scrape after each README event was
// pushed twice: the counter added, the gauge replaced, the histogram and
// the summary observed twice.
func checkStreamGatewayEvents(t *testing.T, d *daemon) {
	t.Helper()
	e := d.waitValue(t, 15*time.Second, 2, "http_requests_total", "method", "GET", "status", "200", "service", "web-app")
	eventually(t, 15*time.Second, "the summary observed twice", func() (bool, string) {
		e = d.scrape(t)
		m := e.metric("http_request_size_bytes", "method", "POST", "endpoint", "/upload")
		return m != nil && m.GetSummary().GetSampleCount() == 2, e.body
	})
	if v := e.mustValue(t, "temperature_celsius", "sensor", "room-1"); v != 22.5 {
		t.Errorf("temperature_celsius = %v, want 22.5: a gauge replaces", v)
	}
	h := e.metric("request_duration_seconds", "method", "GET", "endpoint", "/api/data").GetHistogram()
	if h.GetSampleCount() != 2 || h.GetSampleSum() != 1.5 {
		t.Errorf("histogram count %v sum %v, want 2 and 1.5:\n%s", h.GetSampleCount(), h.GetSampleSum(), e.body)
	}
	want := map[float64]uint64{0.1: 0, 0.5: 0, 1: 2, 5: 2, 10: 2, math.Inf(1): 2}
	if len(h.GetBucket()) != len(want) {
		t.Errorf("histogram buckets %v, want le 0.1, 0.5, 1, 5, 10, +Inf", h.GetBucket())
	}
	for _, b := range h.GetBucket() {
		if w, ok := want[b.GetUpperBound()]; !ok || b.GetCumulativeCount() != w {
			t.Errorf("bucket le=%v: %v, want %v", b.GetUpperBound(), b.GetCumulativeCount(), w)
		}
	}
	s := e.metric("http_request_size_bytes", "method", "POST", "endpoint", "/upload").GetSummary()
	if s.GetSampleSum() != 1024 || len(s.GetQuantile()) != 3 {
		t.Errorf("summary sum %v quantiles %v, want 1024 and 3 quantiles", s.GetSampleSum(), s.GetQuantile())
	}
	for _, q := range s.GetQuantile() {
		if q.GetValue() != 512 {
			t.Errorf("quantile %v = %v, want 512", q.GetQuantile(), q.GetValue())
		}
	}
	if r := e.rejected(); sumOf(r) != 0 {
		t.Errorf("lines rejected: %v", r)
	}
	if v := e.mustValue(t, "push_gateway_redis_elements_total"); v != 8 {
		t.Errorf("push_gateway_redis_elements_total = %v, want 8", v)
	}
}

func sumOf(m map[string]float64) (s float64) {
	for _, v := range m {
		s += v
	}
	return s
}

// The README's four events pushed with redis-cli LPUSH, twice each, onto
// the default key: on TCP with a database number, and on the Unix socket.
func TestRedisStreamGatewayEvents(t *testing.T) {
	srv := redistest.Start(t)
	for _, tc := range []struct{ name, url, db string }{
		{"tcp", srv.URL() + "/2", "2"},
		{"unix", "unix://" + srv.Socket + "?db=5", "5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := startDaemon(t, "--ingest.redis-url="+tc.url)
			for range 2 {
				for _, ev := range streamGatewayEvents {
					srv.Cli("-n", tc.db, "LPUSH", "prom-stream-gateway:metric-queue", ev)
				}
			}
			checkStreamGatewayEvents(t, d)
		})
	}
}

// A password (requirepass) and an ACL user with only the rights the
// consumer needs; the password never shows in the log. A wrong password is
// retried, logged once, and the socket still takes pushes meanwhile.
func TestRedisPassword(t *testing.T) {
	srv := redistest.Start(t, "--requirepass", "s3cret-pw")
	srv.Login("--pass", "s3cret-pw")
	srv.Cli("ACL", "SETUSER", "gateway", "on", ">gw-pw-42", "~prom-stream-gateway:*", "+rpop", "+blmove", "+brpop")
	for _, tc := range []struct{ name, url string }{
		{"requirepass", fmt.Sprintf("redis://:s3cret-pw@127.0.0.1:%d", srv.Port)},
		{"acl user", fmt.Sprintf("redis://gateway:gw-pw-42@127.0.0.1:%d/0", srv.Port)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := startDaemon(t, "--ingest.redis-url="+tc.url, "--log.level=debug")
			for range 2 {
				for _, ev := range streamGatewayEvents {
					srv.Cli("LPUSH", "prom-stream-gateway:metric-queue", ev)
				}
			}
			checkStreamGatewayEvents(t, d)
			if e := d.scrape(t).mustValue(t, "push_gateway_redis_errors_total"); e != 0 {
				t.Errorf("push_gateway_redis_errors_total = %v, want 0", e)
			}
			d.stop(syscall.SIGTERM)
			if l := d.stderr.String(); strings.Contains(l, "s3cret-pw") || strings.Contains(l, "gw-pw-42") {
				t.Errorf("the log shows a password:\n%s", l)
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		d := startDaemon(t, fmt.Sprintf("--ingest.redis-url=redis://gateway:not-gw-pw-42@127.0.0.1:%d", srv.Port))
		d.waitAtLeast(t, 3, "push_gateway_redis_errors_total")
		d.push(t, "still_pushing 1\n")
		d.waitValue(t, 10*time.Second, 1, "still_pushing")
		d.stop(syscall.SIGTERM)
		l := d.stderr.String()
		if n := strings.Count(l, "Redis list unavailable"); n != 1 {
			t.Errorf("%d warnings for one outage, want 1:\n%s", n, l)
		}
		if !strings.Contains(l, "WRONGPASS") || strings.Contains(l, "not-gw-pw-42") {
			t.Errorf("want WRONGPASS, without the password, in the log:\n%s", l)
		}
	})
}

// waitLog waits until the daemon has logged a line containing s: the
// recovery is logged once a blocking wait has worked too, within a second
// of the first request that did.
func (d *daemon) waitLog(t *testing.T, s string) {
	t.Helper()
	eventually(t, 15*time.Second, "a log line with "+s, func() (bool, string) {
		l := d.stderr.String()
		return strings.Contains(l, s), l
	})
}

// waitAtLeast scrapes until the unlabelled series name reaches min.
func (d *daemon) waitAtLeast(t *testing.T, min float64, name string) {
	t.Helper()
	eventually(t, 15*time.Second, fmt.Sprintf("%s >= %v", name, min), func() (bool, string) {
		e := d.scrape(t)
		v, ok := e.value(name)
		return ok && v >= min, e.body
	})
}

// Redis stops while elements are in the list and comes back from its
// append-only file: the daemon, running throughout, applies every one.
//
// The elements are pushed and Redis shut down in one write, while the
// daemon waits in BLMOVE: Redis runs the two commands back to back, so the
// list holds all of them at the shutdown. A look at the list on another
// port, where the daemon cannot reach it, proves it before the restart.
func TestRedisRestartLosesNothing(t *testing.T) {
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	const key = "prom-stream-gateway:metric-queue"
	d := startDaemon(t, "--ingest.redis-url="+srv.URL())
	for range 5 {
		srv.Cli("LPUSH", key, `{"type":"counter","name":"jobs_total","value":1}`)
	}
	d.waitValue(t, 15*time.Second, 5, "jobs_total")

	const n = 50
	var pipe []byte
	for i := range n {
		pipe = appendCmd(pipe, "LPUSH", key, `{"type":"counter","name":"jobs_total","value":1,"labels":{"i":"`+strconv.Itoa(i%2)+`"}}`)
	}
	pipe = appendCmd(pipe, "SHUTDOWN")
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(srv.Port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(pipe); err != nil {
		t.Fatal(err)
	}
	var buf [64]byte
	for {
		if _, err := c.Read(buf[:]); err != nil {
			break // Redis closed the connection: it is shutting down
		}
	}
	c.Close()
	srv.Wait()

	side := redistest.FreePort(t)
	srv.StartOn(side)
	if got := srv.CliOn(side, "LLEN", key); got != strconv.Itoa(n) {
		t.Fatalf("LLEN after the restart = %s, want %d: the list did not hold every element at the shutdown", got, n)
	}
	srv.ShutdownOn(side)
	e := d.scrape(t)
	if v := e.mustValue(t, "jobs_total"); v != 5 {
		t.Fatalf("jobs_total = %v while Redis is down, want 5", v)
	}
	if v := e.mustValue(t, "push_gateway_redis_errors_total"); v < 1 {
		t.Errorf("push_gateway_redis_errors_total = %v during the outage, want >= 1", v)
	}

	srv.StartOn(srv.Port)
	d.waitValue(t, 15*time.Second, n/2, "jobs_total", "i", "0")
	e = d.waitValue(t, 15*time.Second, n/2, "jobs_total", "i", "1")
	if v := e.mustValue(t, "jobs_total"); v != 5 {
		t.Errorf("jobs_total = %v, want 5", v)
	}
	if v := e.mustValue(t, "push_gateway_redis_elements_total"); v != 5+n {
		t.Errorf("push_gateway_redis_elements_total = %v, want %d", v, 5+n)
	}
	if got := srv.Cli("LLEN", key); got != "0" {
		t.Errorf("LLEN = %s at the end, want 0", got)
	}
	d.waitLog(t, "Redis list reachable again")
	l := d.stderr.String()
	if strings.Count(l, "Redis list unavailable") != 1 || strings.Count(l, "Redis list reachable again") != 1 {
		t.Errorf("want one warning and one recovery in the log:\n%s", l)
	}
}

func appendCmd(dst []byte, args ...string) []byte {
	dst = fmt.Appendf(dst, "*%d\r\n", len(args))
	for _, a := range args {
		dst = fmt.Appendf(dst, "$%d\r\n%s\r\n", len(a), a)
	}
	return dst
}

// Without --ingest.redis-url there is no consumer and no Redis metric; a
// bad URL is a usage error that names the flag and not the password.
func TestRedisFlags(t *testing.T) {
	d := startDaemon(t)
	e := d.scrape(t)
	for _, n := range []string{"push_gateway_redis_elements_total", "push_gateway_redis_errors_total"} {
		if _, ok := e.fams[n]; ok {
			t.Errorf("%s is exposed without --ingest.redis-url", n)
		}
	}
	if strings.Contains(d.stderr.String(), "Redis") {
		t.Errorf("the log mentions Redis without --ingest.redis-url:\n%s", d.stderr.String())
	}
	for _, args := range [][]string{
		{"--ingest.redis-url=rediss://:s3cret-pw@127.0.0.1"},
		{"--ingest.redis-url=redis://:s3cret-pw@127.0.0.1/x"},
		{"--ingest.redis-url=redis://:s3cret-pw@127.0.0.1", "--ingest.redis-pop-count=0"},
	} {
		sock := shortTempDir(t) + "/p.sock"
		r := runBinary(t, nil, append([]string{"--ingest.socket=" + sock, "--web.listen-address=127.0.0.1:0"}, args...)...)
		flag := "--ingest.redis-url"
		if len(args) > 1 {
			flag = "--ingest.redis-pop-count"
		}
		if r.code != 2 || !strings.Contains(r.stderr, flag) || strings.Contains(r.stderr, "s3cret") {
			t.Errorf("%v: status %d, stderr %q; want 2 and a line naming %s without the password", args, r.code, r.stderr, flag)
		}
	}
}

// The OpenWrt init script passes the Redis URL in the environment, never
// on the command line, and the key and pop count as flags the daemon has.
func TestOpenWrtInitRedis(t *testing.T) {
	shells := [][]string{{"sh"}}
	if p, err := exec.LookPath("busybox"); err == nil {
		shells = append(shells, []string{p, "ash"}) // OpenWrt's shell
	}
	config := `config push-gateway 'main'
	option enabled '1'
	option socket '/tmp/pg.sock'
	option redis_url 'redis://app:s3cret-pw@127.0.0.1:6379/2'
	option redis_key 'edge:metrics'
	option redis_pop_count '100'
`
	for _, sh := range shells {
		argv, params := pkgProcd(t, pkgInitRun(t, sh, config))
		want := []string{"/usr/bin/push-gateway", "--ingest.socket=/tmp/pg.sock", "--web.listen-address=127.0.0.1:9091",
			"--ingest.redis-key=edge:metrics", "--ingest.redis-pop-count=100"}
		if !slices.Equal(argv, want) {
			t.Errorf("%s: command %q, want %q", sh[0], argv, want)
		}
		if env := strings.Join(params["env"], " "); env != "PUSH_GATEWAY_INGEST_REDIS_URL=redis://app:s3cret-pw@127.0.0.1:6379/2" {
			t.Errorf("%s: env parameter %q, want the URL in PUSH_GATEWAY_INGEST_REDIS_URL", sh[0], env)
		}
	}
	// The shipped config leaves the input off: no env parameter, no flag.
	shipped := string(pkgReadFile(t, filepath.Join(pkgRoot(t), "scripts/openwrt/push-gateway.config")))
	argv, params := pkgProcd(t, pkgInitRun(t, shells[0], shipped))
	if _, ok := params["env"]; ok || slices.ContainsFunc(argv, func(a string) bool { return strings.Contains(a, "redis") }) {
		t.Errorf("the shipped config turns the Redis input on: %q %q", argv, params["env"])
	}
	help, err := exec.Command(binary, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v\n%s", err, help)
	}
	for _, flag := range []string{"--ingest.redis-url=", "--ingest.redis-key=", "--ingest.redis-pop-count="} {
		if !strings.Contains(string(help), "  "+flag) {
			t.Errorf("push-gateway --help does not list %s", flag)
		}
	}
}

// Redis down when the daemon starts: the daemon starts all the same, takes
// pushes on its socket, counts and logs the outage once, and consumes the
// list once Redis is there.
func TestRedisDownAtStart(t *testing.T) {
	srv := redistest.Start(t)
	srv.Kill()
	d := startDaemon(t, "--ingest.redis-url="+srv.URL())
	d.waitAtLeast(t, 2, "push_gateway_redis_errors_total")
	d.push(t, "socket_still_works 1\n")
	d.waitValue(t, 10*time.Second, 1, "socket_still_works")
	srv.StartOn(srv.Port)
	srv.Cli("LPUSH", "prom-stream-gateway:metric-queue", "late_element 7")
	d.waitValue(t, 15*time.Second, 7, "late_element")
	d.waitLog(t, "Redis list reachable again")
	d.stop(syscall.SIGTERM)
	l := d.stderr.String()
	if strings.Count(l, "Redis list unavailable") != 1 || strings.Count(l, "Redis list reachable again") != 1 {
		t.Errorf("want one warning and one recovery in the log:\n%s", l)
	}
}
