package main

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// TestTCPFloodLeavesSocketWorking: far more idle keep-alive TCP connections
// than the daemon has file descriptors for (a LAN attacker; the systemd unit
// allows 1,024) close the idle ones first and never reach the descriptors
// that the push socket needs: pushes and scrapes go on. Before
// --web.max-connections, accept failed on both listeners.
func TestTCPFloodLeavesSocketWorking(t *testing.T) {
	t.Parallel()
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("prlimit (util-linux) is not installed")
	}
	d := startDaemon(t, "--web.max-connections=8", "--ingest.max-connections=16")
	// 64 descriptors: the daemon's own dozen, 16 on the socket, 8 on TCP,
	// and room to spare, but not for 100 TCP connections.
	if out, err := exec.Command(prlimit, "--pid", strconv.Itoa(d.cmd.Process.Pid), "--nofile=64:64").CombinedOutput(); err != nil {
		t.Skipf("prlimit cannot lower the daemon's descriptors: %v: %s", err, out)
	}
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	answered := 0
	for i := 0; i < 100; i++ {
		c, err := net.DialTimeout("tcp", d.addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		open = append(open, c)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprint(c, "GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
		if line, err := bufio.NewReader(c).ReadString('\n'); err == nil && line == "HTTP/1.1 200 OK\r\n" {
			answered++
		}
	}
	if answered != 100 {
		t.Errorf("%d of 100 sequential keep-alive requests were answered; each should be, closing an idle one", answered)
	}
	d.push(t, "flood_survivor 1\n")
	e := d.waitValue(t, 5*time.Second, 1, "flood_survivor")
	if v := e.mustValue(t, "push_gateway_web_connections"); v > 8 {
		t.Errorf("push_gateway_web_connections = %v, want at most --web.max-connections=8", v)
	}
	if v := e.mustValue(t, "push_gateway_web_connections_closed_total", "listener", "tcp", "reason", "evicted"); v < 92 {
		t.Errorf("idle TCP connections closed to make room: %v, want at least 92", v)
	}
	resp, _ := d.request(t, true, "PUT", "/metrics/job/flood", "text/plain", "flood_push 2\n")
	if resp.StatusCode != 200 {
		t.Errorf("HTTP push on the socket during the flood: %d", resp.StatusCode)
	}
	d.waitValue(t, 5*time.Second, 2, "flood_push", "job", "flood")
}
