package main_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

const compatPrometheusBin = "/usr/bin/prometheus"

// TestCompatPrometheusScrapes has Debian's Prometheus scrape the daemon
// every 200 ms, as it scrapes in production: its own HTTP client (gzip
// asked for, kept-alive connections, its Accept and timeout headers) against
// the daemon's own HTTP server. The target must be up with no scrape error,
// and what was pushed, with labels that need escapes, a histogram and a
// counter updated between scrapes, must be what Prometheus stored.
func TestCompatPrometheusScrapes(t *testing.T) {
	if _, err := os.Stat(compatPrometheusBin); err != nil {
		t.Skipf("Prometheus is not installed (%v): apt-get install prometheus", err)
	}
	sock, web := compatDaemon(t)
	push := func(text string) {
		t.Helper()
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte(text)); err != nil {
			t.Fatal(err)
		}
	}
	push("# TYPE compat_prom_total counter\ncompat_prom_total{path=\"/a \\\"quoted\\\" \\\\ path\\n\"} 1\n" +
		"# TYPE compat_prom_seconds histogram\n" +
		"compat_prom_seconds_bucket{le=\"0.5\"} 2\ncompat_prom_seconds_bucket{le=\"+Inf\"} 3\n" +
		"compat_prom_seconds_sum 4.5\ncompat_prom_seconds_count 3\n")

	// A free port for Prometheus' own web server: it logs the address it was
	// given, not the one it got.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	promAddr := l.Addr().String()
	l.Close()
	dir := compatDir(t)
	config := fmt.Sprintf("global:\n  scrape_interval: 200ms\n  scrape_timeout: 200ms\n"+
		"scrape_configs:\n  - job_name: pg\n    static_configs:\n      - targets: [%q]\n", web)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	compatStart(t, "prometheus", regexp.MustCompile(`(Server is ready to receive web requests)`),
		compatPrometheusBin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+promAddr)

	// query returns the value of the one sample an instant query gives, or
	// ok false while there is none.
	query := func(q string) (float64, bool) {
		t.Helper()
		resp, err := compatHTTP.Get("http://" + promAddr + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r struct {
			Status string
			Data   struct {
				Result []struct {
					Value [2]any
				}
			}
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Status != "success" {
			t.Fatalf("query %s: %s, %v", q, r.Status, err)
		}
		if len(r.Data.Result) != 1 {
			return 0, false
		}
		s, _ := r.Data.Result[0].Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		return v, err == nil
	}
	waitFor := func(q string, want float64) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			v, ok := query(q)
			if ok && v == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("Prometheus: %s = %v (present: %v), want %v", q, v, ok, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor(`up{job="pg"}`, 1)
	waitFor(`compat_prom_total{path="/a \"quoted\" \\ path\n"}`, 1)
	waitFor(`compat_prom_seconds_bucket{le="0.5"}`, 2)
	waitFor(`compat_prom_seconds_count`, 3)
	push("compat_prom_total{path=\"/a \\\"quoted\\\" \\\\ path\\n\"} 7\n")
	waitFor(`compat_prom_total{path="/a \"quoted\" \\ path\n"}`, 7)
	// Every scrape since the start worked: up never dropped to 0, and the
	// target reports no error.
	waitFor(`min_over_time(up{job="pg"}[1m])`, 1)
	resp, err := compatHTTP.Get("http://" + promAddr + "/api/v1/targets")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var targets struct {
		Data struct {
			ActiveTargets []struct {
				Health    string
				LastError string
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&targets); err != nil {
		t.Fatal(err)
	}
	if at := targets.Data.ActiveTargets; len(at) != 1 || at[0].Health != "up" || at[0].LastError != "" {
		t.Fatalf("Prometheus' target: %+v", at)
	}
}
