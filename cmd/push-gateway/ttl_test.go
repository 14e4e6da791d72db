package main_test

// Per-push TTL and the seed endpoints of the serverless gateway, through
// the real binary (issue 14). The clients that set a TTL through their
// gateway URL are in ttlclients_test.go.

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// ttlDaemon starts the daemon with --cache.ttl=ttl and any more flags; it
// returns the socket path and the TCP address it serves.
func ttlDaemon(t *testing.T, ttl string, flags ...string) (sock, web string) {
	_, sock, web = ttlDaemonProc(t, ttl, flags...)
	return sock, web
}

// ttlDaemonProc is ttlDaemon that also returns the process, to stop it
// before the test ends.
func ttlDaemonProc(t *testing.T, ttl string, flags ...string) (p *compatProc, sock, web string) {
	t.Helper()
	sock = filepath.Join(compatDir(t), "pg.sock")
	args := append([]string{"--ingest.socket=" + sock, "--web.listen-address=127.0.0.1:0",
		"--cache.size=1MiB", "--cache.ttl=" + ttl}, flags...)
	p, web = compatStart(t, "push-gateway", regexp.MustCompile(`msg="starting push-gateway".* address=(\S+)`),
		compatBinary(t), args...)
	return p, sock, web
}

// ttlUntilGone scrapes web until no sample name starts with gone (an
// expired series), within a bounded time, and returns that scrape.
func ttlUntilGone(t *testing.T, web, gone string) map[string]float64 {
	t.Helper()
	var got map[string]float64
	compatPoll(t, 20*time.Second, gone+" to expire", func() bool {
		got = compatSamplesOf(t, compatHTTP, "http://"+web+"/metrics")
		for k := range got {
			if strings.HasPrefix(k, gone) {
				return false
			}
		}
		return true
	})
	return got
}

// curlCode runs curl with args and -w %{http_code}, and returns the code.
func curlCode(t *testing.T, args ...string) string {
	t.Helper()
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed: apt-get install curl")
	}
	out, err := exec.Command(curl, append([]string{"-sS", "-o", "/dev/null", "-w", "%{http_code}"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %v: %v %s", args, err, out)
	}
	return string(out)
}

// With --cache.ttl=1s, what a "# TTL 1h" line, a JSON event's "ttl" or a
// /ttl/1h path names outlives what comes with the default; a bad TTL is a
// 400 that changes nothing, and a bad "# TTL" line a rejected line.
func TestTTLWaysIn(t *testing.T) {
	sock, web := ttlDaemon(t, "1s")
	bridge := compatSocat(t, sock)
	aggregateWrite(t, "unix", sock, []string{
		"# TTL 1h", "stream_long 1", "# TTL soon", "stream_long_still 2", "# TTL default", "stream_short 3",
		`{"type":"counter","name":"event_long_total","value":1,"ttl":"1h"}`,
		`{"type":"counter","name":"event_bad_total","value":1,"ttl":"1 hour"}`,
	})
	for _, r := range []struct{ method, path, body, code string }{
		{"PUT", "/ttl/1h/metrics/job/backup", "backup_last_success_timestamp_seconds 1.7e9\n", "200"},
		{"POST", "/ttl/1h/aggregate/metrics/job/agg", "# TYPE agg_runs_total counter\nagg_runs_total 1\n", "200"},
		{"POST", "/ttl/1h/metrics", "# TYPE seed_total counter\nseed_total 1\n", "202"},
		{"PATCH", "/ttl/1h/metrics/patch_total?x=y", "", "202"},
		{"PUT", "/ttl/1hour/metrics/job/bad", "bad_ttl 1\n", "400"},
		{"PUT", "/metrics/job/short", "short 1\n", "200"}, // last: what is older expires before it
	} {
		if code := curlCode(t, "-X", r.method, "--data-binary", r.body, "http://"+bridge+r.path); code != r.code {
			t.Fatalf("%s %s: %s, want %s", r.method, r.path, code, r.code)
		}
	}
	got := ttlUntilGone(t, web, "short")
	compatWant(t, "after the default TTL", got, map[string]float64{
		"stream_long": 1, "stream_long_still": 2, "event_long_total": 1,
		`backup_last_success_timestamp_seconds{job="backup"}`: 1.7e9,
		`agg_runs_total{job="agg"}`:                           1,
		"seed_total":                                          1,
		`patch_total{x="y"}`:                                  1,
	})
	if _, ok := got[`push_time_seconds{job="backup"}`]; !ok {
		t.Errorf("push_time_seconds of the group pushed with /ttl/1h expired")
	}
	for k := range got {
		if strings.Contains(k, "stream_short") || strings.Contains(k, "bad") {
			t.Errorf("%s is still there", k)
		}
	}
	self := compatScrapeText(t, "http://"+web+"/metrics")
	for _, want := range []string{`push_gateway_ingest_lines_rejected_total{reason="invalid_ttl"} 2`} {
		if !strings.Contains(self, want) {
			t.Errorf("no %s in the self-metrics", want)
		}
	}
}

// compatScrapeText returns the body of a scrape.
func compatScrapeText(t *testing.T, url string) string {
	t.Helper()
	resp, err := compatHTTP.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}

// A series' TTL survives a restart through the snapshot file.
func TestTTLSurvivesRestart(t *testing.T) {
	dir := compatDir(t)
	snap := filepath.Join(dir, "cache.snap")
	p, sock, web := ttlDaemonProc(t, "1s", "--cache.snapshot-file="+snap)
	aggregateWrite(t, "unix", sock, []string{"# TTL 1h", "kept 1"})
	compatPoll(t, 10*time.Second, "the line to be applied", func() bool {
		_, ok := compatSamplesOf(t, compatHTTP, "http://"+web+"/metrics")["kept"]
		return ok
	})
	p.stop(t) // SIGTERM: the daemon writes its snapshot
	if _, err := os.Stat(snap); err != nil {
		t.Fatalf("no snapshot at shutdown: %v", err)
	}
	sock, web = ttlDaemon(t, "1s", "--cache.snapshot-file="+snap)
	aggregateWrite(t, "unix", sock, []string{"short 1"})
	got := ttlUntilGone(t, web, "short")
	if got["kept"] != 1 {
		t.Fatalf("after a restart and the default TTL, kept = %v (present: %v)", got["kept"], got)
	}
}

// The serverless gateway's README examples, verbatim but for its host
// (its `curl -x PATCH` is a typo for -X: -x names a proxy), through the
// socat bridge: a heredoc of text with curl --data-binary @-, PATCH
// increments, a promjs-style body (a JSON string of text, built with
// node), and DELETE of a family or of the series matching labels.
func TestSeedEndpointsVerbatim(t *testing.T) {
	sock, web := ttlDaemon(t, "10m")
	bridge := compatSocat(t, sock)
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed: apt-get install curl")
	}
	heredoc := "cat <<EOF | curl --data-binary @- http://" + bridge + `/metrics
# TYPE some_metric counter
some_metric{label="val1"} 42
# TYPE another_metric gauge
# HELP another_metric Just an example.
another_metric 2398.283
EOF
`
	for range 2 {
		// curl shows its progress meter on stderr; a 202 has no body.
		if out, err := exec.Command("sh", "-c", heredoc).Output(); err != nil || len(out) != 0 {
			t.Fatalf("the README's heredoc: %v %s", err, out)
		}
	}
	for range 2 {
		if code := curlCode(t, "-X", "PATCH", "http://"+bridge+"/metrics/metric_name?foo=bar"); code != "202" {
			t.Fatalf("curl -X PATCH: %s", code)
		}
	}
	got := compatSamplesOf(t, compatHTTP, "http://"+web+"/metrics")
	compatWant(t, "after the README's examples twice", got, map[string]float64{
		`some_metric{label="val1"}`: 84, "another_metric": 2398.283, `metric_name{foo="bar"}`: 2,
	})
	for k := range got {
		if strings.Contains(k, "job=") || strings.HasPrefix(k, "push_time_seconds") {
			t.Errorf("a seed push made %s", k)
		}
	}

	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the promjs-style body is not tested")
	}
	// What promjs's registry.metrics() returns for the README's example,
	// sent as its fetch does: JSON.stringify of it.
	body, err := exec.Command(node, "-e", `process.stdout.write(JSON.stringify(
"# HELP my_counter A counter for things\n# TYPE my_counter counter\n" +
'my_counter{user="user1",plan="pro"} 1\nmy_counter{user="user2",plan="free"} 3\nmy_counter{user="user3",plan="pro"} 1\n'))`).Output()
	if err != nil {
		t.Fatal(err)
	}
	if body[0] != '"' {
		t.Fatalf("node wrote %s", body)
	}
	for range 2 {
		resp, err := compatHTTP.Post("http://"+bridge+"/metrics", "text/plain;charset=UTF-8", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST of a JSON string: %s", resp.Status)
		}
	}
	compatWant(t, "after the promjs body twice", compatSamplesOf(t, compatHTTP, "http://"+web+"/metrics"), map[string]float64{
		`my_counter{plan="pro",user="user1"}`: 2, `my_counter{plan="free",user="user2"}`: 6, `my_counter{plan="pro",user="user3"}`: 2,
	})

	if code := curlCode(t, "-X", "DELETE", "http://"+bridge+"/metrics/my_counter?plan=pro"); code != "202" {
		t.Fatalf("DELETE ?plan=pro: %s", code)
	}
	if code := curlCode(t, "-X", "DELETE", "http://"+bridge+"/metrics/some_metric"); code != "202" {
		t.Fatalf("DELETE: %s", code)
	}
	if code := curlCode(t, "-X", "DELETE", "http://"+bridge+"/metrics/never_pushed"); code != "202" {
		t.Fatalf("DELETE of nothing: %s", code)
	}
	got = compatSamplesOf(t, compatHTTP, "http://"+web+"/metrics")
	compatWant(t, "after the deletes", got, map[string]float64{`my_counter{plan="free",user="user2"}`: 6, "another_metric": 2398.283})
	for _, gone := range []string{`my_counter{plan="pro",user="user1"}`, `my_counter{plan="pro",user="user3"}`, `some_metric{label="val1"}`} {
		if _, ok := got[gone]; ok {
			t.Errorf("%s survived its DELETE", gone)
		}
	}
}

// The alert rules of the README's "Batch jobs" pass promtool's check, and
// fire when the backup has not succeeded for more than 26 hours.
func TestBatchJobsAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed: apt-get install prometheus")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Batch jobs\n")
	if !ok {
		t.Fatal(`README.md has no section "Batch jobs"`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, rules, ok := strings.Cut(section, "```yaml\n")
	if !ok {
		t.Fatal(`"Batch jobs" has no yaml block`)
	}
	rules, _, _ = strings.Cut(rules, "```")
	if !strings.Contains(rules, "time() - backup_last_success_timestamp_seconds > 26*3600") {
		t.Fatalf("the rules lack the issue's expression:\n%s", rules)
	}
	path := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(path, []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	// A backup that succeeded at time 0 and never again: no alert at 25h,
	// the alert at 27h.
	unit := filepath.Join(filepath.Dir(path), "test.yml")
	if err := os.WriteFile(unit, []byte(`rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1h
    input_series:
      - series: 'backup_last_success_timestamp_seconds{job="backup",instance="nas"}'
        values: '0x30'
    alert_rule_test:
      - eval_time: 25h
        alertname: BackupNotRun
        exp_alerts: []
      - eval_time: 27h
        alertname: BackupNotRun
        exp_alerts:
          - exp_labels: {severity: warning, job: backup, instance: nas}
            exp_annotations:
              summary: "No successful backup of nas for more than 26 hours."
      - eval_time: 27h
        alertname: BackupMetricAbsent
        exp_alerts: []
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "test", "rules", unit).CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}
