package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rawRequest sends req on a fresh socket connection and returns what comes
// back until the daemon closes it or wait passes, and whether it closed.
func (d *daemon) rawRequest(t *testing.T, req string, wait time.Duration) (string, bool) {
	t.Helper()
	c := d.dial(t)
	writeConn(t, c, req)
	return readUntilClosed(c, wait)
}

// readUntilClosed reads c until the daemon closes it or wait passes.
func readUntilClosed(c net.Conn, wait time.Duration) (string, bool) {
	c.SetReadDeadline(time.Now().Add(wait))
	var got []byte
	buf := make([]byte, 1024)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return string(got), !errors.Is(err, os.ErrDeadlineExceeded)
		}
	}
}

// Issue 12, point 3: pushes whose bodies stall hold up only themselves; a
// normal push next to them is answered at once, and a stalled body gets
// 408 after --ingest.body-timeout and changes nothing.
func TestStalledBodies(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "--ingest.body-timeout=3s")
	const stalled = 6 // more than the four decoding turns
	var conns []net.Conn
	for range stalled {
		c := d.dial(t)
		writeConn(t, c, "PUT /metrics/job/stall HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nx")
		conns = append(conns, c)
	}
	// Let the daemon take them all in before the normal push.
	eventually(t, 5*time.Second, "the stalled connections open", func() (bool, string) {
		v, _ := d.scrape(t).value("push_gateway_ingest_connections")
		return v >= stalled, fmt.Sprint(v)
	})
	start := time.Now()
	got, _ := d.rawRequest(t, "PUT /metrics/job/ok HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nok 1\n", 2500*time.Millisecond)
	if !strings.HasPrefix(got, "HTTP/1.1 200") {
		t.Fatalf("a push next to %d stalled ones: %q after %v, want 200 well before --ingest.body-timeout=3s", stalled, got, time.Since(start))
	}
	t.Logf("a push next to %d stalled ones was answered in %v", stalled, time.Since(start))
	for i, c := range conns {
		got, closed := readUntilClosed(c, 10*time.Second)
		if !strings.HasPrefix(got, "HTTP/1.1 408") || !strings.Contains(got, "Connection: close") || !closed {
			t.Errorf("stalled push %d: %q (closed %v), want 408 with Connection: close, and the connection closed", i, got, closed)
		}
	}
	if took := time.Since(start); took < 2*time.Second {
		t.Errorf("stalled bodies timed out after %v, before --ingest.body-timeout=3s", took)
	}
	e := d.waitValue(t, 2*time.Second, 1, "ok", "job", "ok")
	if _, ok := e.value("push_time_seconds", "job", "stall"); ok {
		t.Error("a push whose body timed out created its group")
	}
	if v, _ := e.value("push_gateway_ingest_pushes_total", "method", "PUT", "code", "408"); v != stalled {
		t.Errorf("push_gateway_ingest_pushes_total{method=\"PUT\",code=\"408\"} = %v, want %d", v, stalled)
	}
}

// Issue 12, points 6 and 7: a connection that sends nothing is closed
// after --ingest.first-byte-timeout; a request head has 10 s from its
// first byte, however slowly the request line comes.
func TestFirstByteAndHeadTimeouts(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "--ingest.first-byte-timeout=500ms")
	start := time.Now()
	if _, closed := d.rawRequest(t, "", 5*time.Second); !closed {
		t.Fatal("a connection that sent nothing was open 5s after --ingest.first-byte-timeout=500ms")
	}
	if took := time.Since(start); took < 400*time.Millisecond {
		t.Errorf("a connection that sent nothing was closed after %v", took)
	}

	// "GE", then nothing: the head limit, not --ingest.idle-timeout.
	c := d.dial(t)
	writeConn(t, c, "GE")
	start = time.Now()
	// One byte every 3 s on another: "GET /" would be complete at 12 s.
	trickle := d.dial(t)
	go func() {
		for _, b := range []byte("GET / HTTP/1.1\r\n\r\n") {
			trickle.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := trickle.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(3 * time.Second)
		}
	}()
	got, closed := readUntilClosed(c, 20*time.Second)
	if !closed || got != "" {
		t.Fatalf("\"GE\" and a pause: %q (closed %v), want closed at the 10s head limit", got, closed)
	}
	if took := time.Since(start); took < 9*time.Second {
		t.Errorf("\"GE\" and a pause: closed after %v, before the 10s head limit", took)
	}
	if got, closed := readUntilClosed(trickle, 10*time.Second); !closed || got != "" {
		t.Errorf("one byte every 3s: %q (closed %v), want closed at the 10s head limit", got, closed)
	}
	if took := time.Since(start); took > 13*time.Second {
		t.Errorf("one byte every 3s: closed after %v, want 10s", took)
	}
	e := d.scrape(t)
	if v, _ := e.value("push_gateway_ingest_idle_closed_total"); v != 3 {
		t.Errorf("push_gateway_ingest_idle_closed_total = %v, want 3", v)
	}
}

// Issue 12, point 7: dialers that connect and send nothing cannot lock a
// pusher out at --ingest.max-connections: the one idle the longest is
// closed to make room, and counted.
func TestIdleDialersMakeRoom(t *testing.T) {
	t.Parallel()
	const max = 8
	d := startDaemon(t, fmt.Sprintf("--ingest.max-connections=%d", max))
	var dialers []net.Conn
	for range max {
		dialers = append(dialers, d.dial(t))
	}
	eventually(t, 5*time.Second, "the socket full of idle dialers", func() (bool, string) {
		v, _ := d.scrape(t).value("push_gateway_ingest_connections")
		return v == max, fmt.Sprint(v)
	})
	d.push(t, "real_pusher 1\n")
	e := d.waitValue(t, 5*time.Second, 1, "real_pusher")
	if v, _ := e.value("push_gateway_ingest_connections_evicted_total"); v != 1 {
		t.Errorf("push_gateway_ingest_connections_evicted_total = %v, want 1", v)
	}
	if v, _ := e.sum("push_gateway_ingest_connections_refused_total"); v != 0 {
		t.Errorf("push_gateway_ingest_connections_refused_total sums to %v, want 0", v)
	}
	if _, closed := readUntilClosed(dialers[0], 5*time.Second); !closed {
		t.Error("the dialer idle the longest was not closed")
	}
}

// Issue 12, point 1: a descriptor limit too low for the push socket's
// connections is said at start.
func TestCheckDescriptors(t *testing.T) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		t.Skipf("open file limit %d: %v", rl.Cur, err)
	}
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	checkDescriptors(logger, int(rl.Cur)-descriptorReserve-64, 64)
	if logs.Len() != 0 {
		t.Errorf("a limit that fits warned: %s", logs.String())
	}
	checkDescriptors(logger, int(rl.Cur), 0)
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "--ingest.max-connections") {
		t.Errorf("a limit too low: logged %q", logs.String())
	}
}

// Issue 12, point 1, end to end: under an open file limit of 64, with
// --ingest.max-connections above it, the daemon says so at start; when
// accepting fails (EMFILE) it warns once, backs off, and says when
// accepting works again; the pushers queued meanwhile get in.
func TestAcceptFailuresBackOff(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(shortTempDir(t), "p.sock")
	cmd := exec.Command("sh", "-c", `ulimit -n 64 && exec "$0" "$@"`, binary,
		"--ingest.socket="+sock, "--web.listen-address=127.0.0.1:0", "--ingest.max-connections=512")
	cmd.Env = cleanEnv()
	var stderr logLines
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			stderr.add(sc.Text())
		}
	}()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		<-read
	}()
	count := func(s string) int {
		n := 0
		for _, l := range stderr.all() {
			if strings.Contains(l, s) {
				n++
			}
		}
		return n
	}
	eventually(t, 10*time.Second, "the start-up line", func() (bool, string) {
		return count("starting push-gateway") == 1, stderr.String()
	})
	if count("open file limit is below") != 1 {
		t.Errorf("no warning at start about the open file limit of 64:\n%s", stderr.String())
	}
	// More connections than descriptors: the daemon runs out.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 100 {
		c, err := net.DialTimeout("unix", sock, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	eventually(t, 10*time.Second, "a warning that accepting fails", func() (bool, string) {
		return count("cannot accept connections") >= 1, stderr.String()
	})
	time.Sleep(time.Second) // tries at 5, 10, 20, …, 640 ms: about 8 in a second
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	// Freed descriptors: accepting works again, and a pusher gets in.
	eventually(t, 10*time.Second, "accepting works again", func() (bool, string) {
		return count("accepting connections on the push socket again") == 1, stderr.String()
	})
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	writeConn(t, c, "after_emfile 1\n")
	c.Close()
	var addr string
	for _, l := range stderr.all() {
		if sl, ok := parseStartLine(l); ok {
			addr = sl.addr
		}
	}
	eventually(t, 10*time.Second, "the push after the episode applied", func() (bool, string) {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), "after_emfile 1"), string(b)
	})
	if n := count("cannot accept connections"); n != 1 {
		t.Errorf("%d warnings about failing accepts in one episode, want 1:\n%s", n, stderr.String())
	}
}
