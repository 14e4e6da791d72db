package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// daemon is the started push-gateway process.
type daemon struct {
	cmd     *exec.Cmd
	pid     int
	sock    string
	addr    string // 127.0.0.1:port
	args    []string
	log     *tailWriter
	exited  chan struct{} // closed when the process has been reaped
	waitErr error
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startDaemon starts the binary with args and waits until it answers on
// both the socket and the TCP address. A nofile above 0 becomes the
// daemon's RLIMIT_NOFILE, soft and hard (so that the Go runtime cannot
// raise it), set by the shell's ulimit -n before it execs the daemon in the
// same process.
func startDaemon(bin, sock, addr string, args []string, nofile int) (*daemon, error) {
	d := &daemon{sock: sock, addr: addr, args: args, log: &tailWriter{max: 64 << 10}, exited: make(chan struct{})}
	if nofile > 0 {
		sh := append([]string{"-c", "ulimit -n " + strconv.Itoa(nofile) + ` && exec "$0" "$@"`, bin}, args...)
		d.cmd = exec.Command("/bin/sh", sh...)
	} else {
		d.cmd = exec.Command(bin, args...)
	}
	d.cmd.Stdout = d.log
	d.cmd.Stderr = d.log
	// Its own process group: a Ctrl-C in the terminal reaches this tool,
	// which then stops the daemon in order and reports.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	d.pid = d.cmd.Process.Pid
	go func() {
		d.waitErr = d.cmd.Wait()
		close(d.exited)
	}()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if d.dead() {
			return nil, fmt.Errorf("daemon exited at start (%v): %s", d.waitErr, d.log.String())
		}
		if time.Now().After(deadline) {
			d.stop(time.Second)
			return nil, fmt.Errorf("daemon not ready after 10s: %s", d.log.String())
		}
		if resp, err := client.Get("http://" + addr + "/-/ready"); err == nil {
			resp.Body.Close()
			if c, err := net.DialTimeout("unix", sock, time.Second); err == nil && resp.StatusCode == http.StatusOK {
				c.Close()
				return d, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *daemon) dead() bool {
	select {
	case <-d.exited:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to grace for the exit, then kills. It
// returns how long the exit took and whether SIGKILL was needed.
func (d *daemon) stop(grace time.Duration) (took time.Duration, killed bool) {
	t0 := time.Now()
	if !d.dead() {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-d.exited:
		return time.Since(t0), false
	case <-time.After(grace):
	}
	_ = syscall.Kill(-d.pid, syscall.SIGKILL)
	<-d.exited
	return time.Since(t0), true
}

// exitCode is the daemon's exit status, -1 if a signal ended it.
func (d *daemon) exitCode() int {
	var ee *exec.ExitError
	if errors.As(d.waitErr, &ee) {
		return ee.ExitCode()
	}
	if d.waitErr != nil {
		return -1
	}
	return 0
}

// tailWriter keeps the last max bytes written to it, and counts lines.
type tailWriter struct {
	mu    sync.Mutex
	max   int
	buf   []byte
	lines int
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lines += bytes.Count(p, []byte{'\n'})
	w.buf = append(w.buf, p...)
	if len(w.buf) > w.max {
		w.buf = append(w.buf[:0], w.buf[len(w.buf)-w.max:]...)
	}
	return len(p), nil
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}

func (w *tailWriter) lineCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lines
}

// logLevels counts the lines of the kept log tail by level=.
func (w *tailWriter) logLevels() map[string]int {
	m := map[string]int{}
	for _, l := range strings.Split(w.String(), "\n") {
		if i := strings.Index(l, "level="); i >= 0 {
			lv := l[i+len("level="):]
			if j := strings.IndexByte(lv, ' '); j >= 0 {
				lv = lv[:j]
			}
			m[lv]++
		}
	}
	return m
}

// memSample is one reading of /proc/PID.
type memSample struct {
	at      time.Duration // since the storm started (negative before)
	rssKB   int64
	hwmKB   int64
	threads int64
	fds     int64
}

// sampler reads the daemon's memory every interval until ctx ends.
type sampler struct {
	pid   int
	start time.Time
	mu    sync.Mutex
	s     []memSample
}

// startSampler samples the memory of process pid every 250 ms from now
// until stop is called.
func startSampler(pid int) (smp *sampler, stop func()) {
	smp = &sampler{pid: pid, start: time.Now()}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); smp.run(ctx, 250*time.Millisecond) }()
	return smp, func() { cancel(); wg.Wait() }
}

func (s *sampler) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.sample()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *sampler) sample() (memSample, bool) {
	m, err := readProc(s.pid)
	if err != nil {
		return m, false
	}
	m.at = time.Since(s.start)
	s.mu.Lock()
	s.s = append(s.s, m)
	s.mu.Unlock()
	return m, true
}

func (s *sampler) samples() []memSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]memSample(nil), s.s...)
}

// readProc reads VmRSS, VmHWM and Threads from /proc/PID/status and counts
// /proc/PID/fd.
func readProc(pid int) (memSample, error) {
	var m memSample
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return m, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			m.rssKB = n
		case "VmHWM":
			m.hwmKB = n
		case "Threads":
			m.threads = n
		}
	}
	if m.rssKB == 0 {
		return m, fmt.Errorf("no VmRSS for pid %d", pid)
	}
	if ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd"); err == nil {
		m.fds = int64(len(ents))
	}
	return m, nil
}

// maxOpenFiles reads the soft "Max open files" of pid from /proc/PID/limits.
func maxOpenFiles(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/limits")
	if err != nil {
		return "?"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Max open files") {
			if f := strings.Fields(strings.TrimPrefix(l, "Max open files")); len(f) >= 2 {
				return f[0] + " (hard " + f[1] + ")"
			}
		}
	}
	return "?"
}
