package main_test

import (
	"fmt"
	"math"
	"net"
	"os/exec"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
)

// The aggregation examples of the issue, verbatim.
var aggregateEvents = []string{
	`{"type":"counter","name":"http_requests_total","value":1,"labels":{"method":"GET","status":"200","service":"web-app"}}`,
	`{"type":"gauge","name":"temperature_celsius","value":22.5,"labels":{"sensor":"room-1"}}`,
	`{"type":"histogram","name":"request_duration_seconds","value":0.75,"buckets":[0.1,0.5,1,5,10],"labels":{"method":"GET","endpoint":"/api/data"}}`,
	`{"type":"summary","name":"http_request_size_bytes","value":512,"quantiles":[0.5,0.9,0.99],"epsilons":[0.05,0.01,0.001],"labels":{"method":"POST","endpoint":"/upload"}}`,
}

func aggregateWrite(t *testing.T, network, addr string, lines []string) {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte(strings.Join(lines, "\n") + "\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestAggregationVerbatim sends the events over the socket and
// through a socat bridge, and its PATCH through the bridge with curl, and
// scrapes the series a user expects.
func TestAggregationVerbatim(t *testing.T) {
	sock, web := compatDaemon(t)
	bridge := compatSocat(t, sock)
	aggregateWrite(t, "unix", sock, aggregateEvents)
	aggregateWrite(t, "tcp", bridge, aggregateEvents)
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed: apt-get install curl")
	}
	for i := 0; i < 3; i++ {
		out, err := exec.Command(curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PATCH",
			"http://"+bridge+"/metrics/metric_name?foo=bar").CombinedOutput()
		if err != nil || string(out) != "202" {
			t.Fatalf("curl -X PATCH: %v %s", err, out)
		}
	}
	want := map[string]float64{
		`http_requests_total{method="GET",service="web-app",status="200"}`:             2,
		`temperature_celsius{sensor="room-1"}`:                                         22.5,
		`request_duration_seconds_bucket{endpoint="/api/data",le="0.5",method="GET"}`:  0,
		`request_duration_seconds_bucket{endpoint="/api/data",le="1",method="GET"}`:    2,
		`request_duration_seconds_bucket{endpoint="/api/data",le="+Inf",method="GET"}`: 2,
		`request_duration_seconds_sum{endpoint="/api/data",method="GET"}`:              1.5,
		`request_duration_seconds_count{endpoint="/api/data",method="GET"}`:            2,
		`http_request_size_bytes{endpoint="/upload",method="POST",quantile="0.5"}`:     512,
		`http_request_size_bytes{endpoint="/upload",method="POST",quantile="0.99"}`:    512,
		`http_request_size_bytes_sum{endpoint="/upload",method="POST"}`:                1024,
		`http_request_size_bytes_count{endpoint="/upload",method="POST"}`:              2,
		`metric_name{foo="bar"}`: 3,
	}
	compatWant(t, "after the events and PATCHes", compatSamplesOf(t, compatHTTP, "http://"+web+"/metrics"), want)
}

// TestAggregatedHistogramMatchesClient feeds the same observations to a
// histogram through JSON events and through client_golang's own histogram
// pushed to /aggregate in two halves (and, when it is installed, Python's
// pushadd_to_gateway), and requires the same bucket counts, sum and count.
func TestAggregatedHistogramMatchesClient(t *testing.T) {
	sock, web := compatDaemon(t)
	bridge := compatSocat(t, sock)
	bounds := []float64{0.1, 0.5, 1, 5, 10}
	var obs []float64
	for i := 0; i < 200; i++ {
		obs = append(obs, math.Mod(float64(i)*0.37, 12))
	}
	var lines []string
	for _, v := range obs {
		lines = append(lines, fmt.Sprintf(`{"type":"histogram","name":"json_seconds","value":%g,"buckets":[0.1,0.5,1,5,10]}`, v))
	}
	aggregateWrite(t, "unix", sock, lines)
	for _, half := range [][]float64{obs[:100], obs[100:]} {
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "client_seconds", Help: "Pushed.", Buckets: bounds})
		for _, v := range half {
			h.Observe(v)
		}
		if err := push.New("http://"+bridge+"/aggregate", "cron").Collector(h).Add(); err != nil {
			t.Fatalf("push to /aggregate: %v", err)
		}
	}
	got := compatSamplesOf(t, compatHTTP, "http://"+web+"/metrics")
	for _, s := range []string{"_bucket{le=\"0.1\"}", "_bucket{le=\"1\"}", "_bucket{le=\"10\"}", "_bucket{le=\"+Inf\"}", "_sum", "_count"} {
		js := got["json_seconds"+s]
		cl := got["client_seconds"+strings.Replace(strings.Replace(s, "{", `{job="cron",`, 1), "_sum", `_sum{job="cron"}`, 1)]
		if strings.HasSuffix(s, "_count") {
			cl = got[`client_seconds_count{job="cron"}`]
		}
		if js == 0 || math.Abs(js-cl) > 1e-9 {
			t.Errorf("%s: JSON events %g, client_golang via /aggregate %g", s, js, cl)
		}
	}
	if n := got[`client_seconds_count{job="cron"}`]; n != 200 {
		t.Fatalf("count %g, want 200: the two pushes did not add up", n)
	}

	py := "/usr/bin/python3"
	if exec.Command(py, "-c", "import prometheus_client").Run() != nil {
		t.Skip("python3-prometheus-client is not installed: apt-get install python3-prometheus-client")
	}
	script := `
import sys
from prometheus_client import CollectorRegistry, Counter, pushadd_to_gateway
for _ in range(2):
    r = CollectorRegistry()
    Counter('py_runs', 'Runs.', registry=r).inc(3)
    pushadd_to_gateway(sys.argv[1] + '/aggregate', job='py', registry=r)
`
	if out, err := exec.Command(py, "-c", script, bridge).CombinedOutput(); err != nil {
		t.Fatalf("pushadd_to_gateway: %v\n%s", err, out)
	}
	got = compatSamplesOf(t, compatHTTP, "http://"+web+"/metrics")
	if v := got[`py_runs_total{job="py"}`]; v != 6 {
		t.Fatalf(`py_runs_total{job="py"} = %g, want 6 (3 + 3)`, v)
	}
}
