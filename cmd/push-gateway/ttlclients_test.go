package main_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
)

// nodeModules is where .ci/run installs prom-client for the tests (npm
// install --prefix "${XDG_CACHE_HOME:-$HOME/.cache}/push-gateway-test/node").
func nodeModules() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "push-gateway-test", "node", "node_modules")
}

// TestTTLRealClients: the clients of the Pushgateway set a TTL with no
// change of code, through a gateway URL ending in /ttl/25h: client_golang's
// push.New, Python's push_to_gateway, node's prom-client Pushgateway, all
// through the socat bridge. With --cache.ttl=1s, a default push made after
// theirs expires while theirs stay.
func TestTTLRealClients(t *testing.T) {
	sock, web := ttlDaemon(t, "1s")
	bridge := compatSocat(t, sock)
	want := map[string]float64{}

	t.Run("client_golang", func(t *testing.T) {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "backup_last_success_timestamp_seconds", Help: "Last backup."})
		g.Set(1.7e9)
		if err := push.New("http://"+bridge+"/ttl/25h", "backup").Collector(g).Push(); err != nil {
			t.Fatal(err)
		}
		want[`backup_last_success_timestamp_seconds{job="backup"}`] = 1.7e9
	})

	t.Run("python", func(t *testing.T) {
		if err := exec.Command("/usr/bin/python3", "-c", "import prometheus_client").Run(); err != nil {
			t.Skipf("Debian's python3-prometheus-client is not installed (/usr/bin/python3: %v): apt-get install python3-prometheus-client", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, "/usr/bin/python3", "-c", `
import sys
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway
reg = CollectorRegistry()
Gauge("py_backup_last_success_timestamp_seconds", "Last backup.", registry=reg).set(1.7e9)
push_to_gateway(sys.argv[1] + "/ttl/25h", job="pybackup", registry=reg, timeout=5)
`, bridge).CombinedOutput()
		if err != nil {
			t.Fatalf("push_to_gateway: %v\n%s", err, out)
		}
		want[`py_backup_last_success_timestamp_seconds{job="pybackup"}`] = 1.7e9
	})

	t.Run("node", func(t *testing.T) {
		node, err := exec.LookPath("node")
		if err != nil {
			t.Skip("node is not installed")
		}
		mods := nodeModules()
		if _, err := os.Stat(filepath.Join(mods, "prom-client")); err != nil {
			t.Skipf("prom-client is not installed in %s (.ci/run installs it: npm install --prefix %s prom-client)", mods, filepath.Dir(mods))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, node, "-e", `
const client = require("prom-client");
const registry = new client.Registry();
new client.Gauge({name: "node_backup_last_success_timestamp_seconds", help: "Last backup.", registers: [registry]}).set(1.7e9);
const gateway = new client.Pushgateway("http://" + process.argv[1] + "/ttl/25h", {timeout: 5000}, registry);
gateway.push({jobName: "nodebackup"}).then(
	({resp}) => { if (resp.statusCode !== 200) { console.error("status", resp.statusCode); process.exit(1); } },
	(err) => { console.error(err); process.exit(1); });
`, bridge)
		cmd.Env = append(os.Environ(), "NODE_PATH="+mods)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("prom-client Pushgateway: %v\n%s", err, out)
		}
		want[`node_backup_last_success_timestamp_seconds{job="nodebackup"}`] = 1.7e9
	})

	// Last, with the default TTL: everything pushed before it is older.
	short := prometheus.NewGauge(prometheus.GaugeOpts{Name: "short_lived", Help: "Default TTL."})
	if err := push.New("http://"+bridge, "short").Collector(short).Push(); err != nil {
		t.Fatal(err)
	}
	got := ttlUntilGone(t, web, "short_lived")
	compatWant(t, "after the default TTL", got, want)
	if len(want) == 0 {
		t.Fatal("no client pushed")
	}
}
