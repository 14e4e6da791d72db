package main

import (
	"testing"
	"time"
)

func TestParseStatus(t *testing.T) {
	in := "Name:\tpush-gateway\nVmPeak:\t 1253636 kB\nVmHWM:\t    9508 kB\nVmRSS:\t    9040 kB\n" +
		"RssAnon:\t    1504 kB\nRssFile:\t    7536 kB\nRssShmem:\t       0 kB\nThreads:\t5\n"
	m, err := parseStatus([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if want := (memStat{RSS: 9040, HWM: 9508, Anon: 1504, File: 7536}); m != want {
		t.Errorf("got %+v, want %+v", m, want)
	}
	if _, err := parseStatus([]byte("VmRSS:\t 1 kB\n")); err == nil {
		t.Error("missing fields: no error")
	}
}

func TestParseStatTicks(t *testing.T) {
	// The command name holds a space and a ')'; utime 1234, stime 56.
	in := "4242 (push gate) way) S 1 4242 4242 0 -1 4194560 1000 0 0 0 1234 56 0 0 20 0 5 0 100 1253636 2260 18446744073709551615\n"
	got, err := parseStatTicks([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got != 1290 {
		t.Errorf("got %d ticks, want 1290", got)
	}
}

func TestParseWrk(t *testing.T) {
	out := `Running 5s test @ http://127.0.0.1:40111/metrics
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   345.21us  210.00us   5.12ms   91.00%
    Req/Sec    11.52k     1.02k   12.80k    80.00%
  Latency Distribution
     50%  301.00us
     75%  402.00us
     90%  511.00us
     99%    1.25ms
  57312 requests in 5.00s, 580.21MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 3
Requests/sec:  11462.40
Transfer/sec:    116.04MB
`
	r, err := parseWrk(out)
	if err != nil {
		t.Fatal(err)
	}
	want := wrkResult{RPS: 11462.40, P99: 1250 * time.Microsecond, Requests: 57312, Errors: 6}
	if r != want {
		t.Errorf("got %+v, want %+v", r, want)
	}
	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"); err == nil {
		t.Error("wrk failure: no error")
	}
}

func TestSampleSum(t *testing.T) {
	body := []byte(`# TYPE statsd_exporter_events_total counter
statsd_exporter_events_total{type="counter"} 5
statsd_exporter_events_total{type="gauge"} 1.5e+06
statsd_exporter_events_total_other 7
push_gateway_ingest_lines_total 42
edge_device_metric_00{instance="a"} 1
edge_device_metric_01{instance="b"} 2
`)
	if v, ok := sampleSum(body, "statsd_exporter_events_total", `type="gauge"`); !ok || v != 1.5e6 {
		t.Errorf("gauge events: %v %v", v, ok)
	}
	if v, ok := sampleSum(body, "statsd_exporter_events_total", ""); !ok || v != 1.5e6+5 {
		t.Errorf("all events: %v %v", v, ok)
	}
	if v, ok := sampleSum(body, "push_gateway_ingest_lines_total", ""); !ok || v != 42 {
		t.Errorf("lines: %v %v", v, ok)
	}
	if _, ok := sampleSum(body, "missing_total", ""); ok {
		t.Error("missing metric found")
	}
	if n := countSeries(body, seriesPrefix); n != 2 {
		t.Errorf("countSeries = %d, want 2", n)
	}
}

func TestEncode(t *testing.T) {
	ss := ingestSeries(1)[:2]
	p := encode(ours, ss, 7, 10)
	want := "edge_device_metric_00{instance=\"router-01.lan\",writer=\"w1\",path=\"/x/0025\"} 7\n" +
		"edge_device_metric_00{instance=\"router-01.lan\",writer=\"w1\",path=\"/x/0026\"} 8\n"
	if len(p) != 1 || string(p[0]) != want {
		t.Errorf("ours: %q", p)
	}
	p = encode(statsd, ss, 7, 1)
	if len(p) != 2 || string(p[1]) != "edge_device_metric_00:8|g|#instance:router-01.lan,writer:w1,path:/x/0026" {
		t.Errorf("statsd: %q", p)
	}
}

func TestFmt(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", -1234567: "-1,234,567"} {
		if got := fmtInt(in); got != want {
			t.Errorf("fmtInt(%d) = %q, want %q", in, got, want)
		}
	}
	if got := fmtRatio(0.05); got != "0.050× (1/20)" {
		t.Errorf("fmtRatio(0.05) = %q", got)
	}
}
