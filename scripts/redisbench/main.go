// Command redisbench measures the Redis list input against the raw stream:
// the same JSON events (the four kinds of the prom-stream-gateway README,
// over 40 series) either pre-filled into a Redis list or written to the
// push socket, and for each the events per second and the daemon's CPU time
// per event (utime+stime from /proc/PID/stat, before and after), with its
// peak RSS. A paced run then pushes -rate events per second for -paced and
// reports the longest backlog seen and the daemon's CPU use: whether it
// keeps up.
//
//	make build && go run ./scripts/redisbench -bin ./push-gateway
//	GOARCH=arm64 make build BIN=push-gateway-arm64 && \
//	  go run ./scripts/redisbench -bin ./push-gateway-arm64 -qemu qemu-aarch64-static -events 100000
//
// The daemon runs on CPU 0 (taskset -c 0), Redis and this program on the
// others. Everything listens on 127.0.0.1 and in a temporary directory.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/push-gateway/push-gateway/ingest/resp"
)

const key = "prom-stream-gateway:metric-queue"

var (
	bin       = flag.String("bin", "./push-gateway", "the daemon's binary")
	qemu      = flag.String("qemu", "", "run the daemon under this emulator (qemu-aarch64-static for an arm64 binary)")
	cpu       = flag.String("cpu", "0", "taskset -c: the CPUs the daemon may run on; empty for no taskset")
	events    = flag.Int("events", 1000000, "events pre-filled into the list, and written to the raw stream")
	popCounts = flag.String("pop-counts", "25,100", "--ingest.redis-pop-count values to measure, comma-separated")
	rate      = flag.Int("rate", 1000, "paced run: events per second pushed")
	paced     = flag.Duration("paced", 20*time.Second, "paced run: how long; 0 skips it")
	redisBin  = flag.String("redis-server", "redis-server", "redis-server's binary")
	redisCPU  = flag.String("redis-cpu", "1", "taskset -c for redis-server; empty for no taskset")
)

// period is the length of the cycle of distinct events: event(i) is
// event(i % period), so they are made once.
const period = 3000

var eventCache [period]string

func init() {
	for i := range eventCache {
		eventCache[i] = event(i)
	}
}

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "redisbench:", err)
		os.Exit(1)
	}
}

// event returns the i-th event: counters, gauges, histograms and summaries
// over 40 series, as single-line JSON.
func event(i int) string {
	switch i % 4 {
	case 0:
		return fmt.Sprintf(`{"type":"counter","name":"http_requests_total","value":1,"labels":{"method":"GET","status":"%d","service":"web-app"}}`, 200+i%20)
	case 1:
		return fmt.Sprintf(`{"type":"gauge","name":"temperature_celsius","value":%d.5,"labels":{"sensor":"room-%d"}}`, i%30, i%10)
	case 2:
		return fmt.Sprintf(`{"type":"histogram","name":"request_duration_seconds","value":0.%d,"buckets":[0.1,0.5,1,5,10],"labels":{"method":"GET","endpoint":"/api/%d"}}`, i%10, i%5)
	}
	return fmt.Sprintf(`{"type":"summary","name":"http_request_size_bytes","value":%d,"quantiles":[0.5,0.9,0.99],"epsilons":[0.05,0.01,0.001],"labels":{"method":"POST","endpoint":"/upload/%d"}}`, i%1000, i%5)
}

func run() error {
	dir, err := os.MkdirTemp("", "redisbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rport := freePort()
	rargv := []string{*redisBin, "--port", strconv.Itoa(rport), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--logfile", "redis.log"}
	if *redisCPU != "" {
		rargv = append([]string{"taskset", "-c", *redisCPU}, rargv...)
	}
	redis := exec.Command(rargv[0], rargv[1:]...)
	if err := redis.Start(); err != nil {
		return err
	}
	defer func() { redis.Process.Kill(); redis.Wait() }()
	rc, err := dialRedis(rport)
	if err != nil {
		return err
	}
	defer rc.Close()

	fmt.Printf("daemon %s%s, CPU %q; %d events of 4 kinds over 40 series\n\n", *bin, map[bool]string{true: " under " + *qemu}[*qemu != ""], *cpu, *events)
	fmt.Println("| input | events/s | daemon CPU per event | daemon CPU total | peak RSS (VmHWM) |")
	fmt.Println("|---|---|---|---|---|")
	for _, pc := range strings.Split(*popCounts, ",") {
		if err := fill(rc, key+":staging", *events); err != nil {
			return err
		}
		d, err := startDaemon(dir, "--ingest.redis-url=redis://127.0.0.1:"+strconv.Itoa(rport), "--ingest.redis-pop-count="+pc)
		if err != nil {
			return err
		}
		cpu0 := d.cpu()
		t0 := time.Now()
		if _, err := rc.Do("RENAME", key+":staging", key); err != nil {
			d.stop()
			return err
		}
		for {
			r, err := rc.Do("LLEN", key)
			if err != nil {
				d.stop()
				return err
			}
			if r.Int == 0 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		took, cpu := time.Since(t0), d.cpu()-cpu0
		if err := d.waitMetric("push_gateway_redis_elements_total", *events); err != nil {
			d.stop()
			return err
		}
		d.report(fmt.Sprintf("Redis list, pop count %s", pc), took, cpu, *events)
		d.stop()
	}

	d, err := startDaemon(dir)
	if err != nil {
		return err
	}
	cpu0 := d.cpu()
	t0 := time.Now()
	if err := d.stream(*events); err != nil {
		d.stop()
		return err
	}
	took, cpu := time.Since(t0), d.cpu()-cpu0
	if err := d.waitMetric("push_gateway_ingest_lines_total", *events); err != nil {
		d.stop()
		return err
	}
	d.report("raw stream (one connection)", took, cpu, *events)
	d.stop()

	if *paced > 0 {
		return pacedRun(dir, rport, rc)
	}
	return nil
}

// pacedRun pushes rate events a second in batches every 10 ms and samples
// the list's length.
func pacedRun(dir string, rport int, rc *resp.Conn) error {
	d, err := startDaemon(dir, "--ingest.redis-url=redis://127.0.0.1:"+strconv.Itoa(rport))
	if err != nil {
		return err
	}
	defer d.stop()
	cpu0 := d.cpu()
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	sent := 0
	var lens []int64
	var cmd []string
	for now := range tick.C {
		elapsed := now.Sub(start)
		if elapsed >= *paced {
			break
		}
		due := int(elapsed.Seconds() * float64(*rate))
		if due > sent {
			cmd = append(cmd[:0], "LPUSH", key)
			for ; sent < due; sent++ {
				cmd = append(cmd, eventCache[sent%period])
			}
			r, err := rc.Do(cmd...)
			if err != nil {
				return err
			}
			// LPUSH returns the length after the push: the backlog.
			lens = append(lens, r.Int)
		}
	}
	took := time.Since(start)
	cpu := d.cpu() - cpu0
	if err := d.waitMetric("push_gateway_redis_elements_total", sent); err != nil {
		return err
	}
	slices.Sort(lens)
	q := func(f float64) int64 { return lens[int(f*float64(len(lens)-1))] }
	fmt.Printf("\npaced: %d events in %.1f s (%d/s, pushed every 10 ms): list length after each push median %d, 99th percentile %d, max %d; daemon CPU %.1f%% of one core (%.1f µs per event), peak RSS %s\n",
		sent, took.Seconds(), *rate, q(0.5), q(0.99), lens[len(lens)-1], 100*cpu.Seconds()/took.Seconds(), float64(cpu.Microseconds())/float64(sent), d.hwm())
	return nil
}

// fill LPUSHes n events onto the list k, 1000 per command, pipelined.
func fill(rc *resp.Conn, k string, n int) error {
	if _, err := rc.Do("DEL", k); err != nil {
		return err
	}
	rc.SetDeadline(time.Now().Add(5 * time.Minute))
	cmds := 0
	done := make(chan error, 1)
	total := (n + 999) / 1000
	go func() {
		for range total {
			r, err := rc.Next()
			if err == nil && r.Kind == resp.Error {
				err = resp.ServerError(r.Str)
			}
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	args := []string{"LPUSH", k}
	for i := 0; i < n; i++ {
		args = append(args, eventCache[i%period])
		if len(args) == 1002 || i == n-1 {
			if err := rc.Send(args...); err != nil {
				return err
			}
			cmds++
			args = args[:2]
		}
	}
	return <-done
}

func dialRedis(port int) (*resp.Conn, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		nc, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c := resp.NewConn(nc, 1<<20)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err = c.Do("PING"); err == nil {
				c.SetDeadline(time.Time{})
				return c, nil
			}
			c.Close()
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("redis-server does not answer: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type daemon struct {
	cmd  *exec.Cmd
	addr string
	sock string
}

func startDaemon(dir string, extra ...string) (*daemon, error) {
	d := &daemon{addr: "127.0.0.1:" + strconv.Itoa(freePort()), sock: filepath.Join(dir, "p.sock")}
	args := append([]string{"--ingest.socket=" + d.sock, "--web.listen-address=" + d.addr, "--cache.size=1MiB"}, extra...)
	argv := append([]string{*bin}, args...)
	if *qemu != "" {
		argv = append([]string{*qemu}, argv...)
	}
	if *cpu != "" {
		argv = append([]string{"taskset", "-c", *cpu}, argv...)
	}
	d.cmd = exec.Command(argv[0], argv[1:]...)
	d.cmd.Stderr = io.Discard
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := d.metric("push_gateway_cache_series"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			d.stop()
			return nil, errors.New("the daemon does not answer on " + d.addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // settle: start-up costs are not counted
	return d, nil
}

func (d *daemon) stop() {
	d.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		<-done
	}
}

// cpu returns the daemon's user and system CPU time so far.
func (d *daemon) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name in parentheses; utime and stime are
	// the 14th and 15th fields, in clock ticks (100 a second on Linux).
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

func (d *daemon) hwm() string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func (d *daemon) report(input string, took, cpu time.Duration, n int) {
	fmt.Printf("| %s | %.0f | %.2f µs | %.2f s | %s |\n", input, float64(n)/took.Seconds(),
		float64(cpu.Nanoseconds())/1e3/float64(n), cpu.Seconds(), d.hwm())
}

// stream writes n events to the push socket on one connection and returns
// once the daemon has applied them all (it closes its side then).
func (d *daemon) stream(n int) error {
	c, err := net.Dial("unix", d.sock)
	if err != nil {
		return err
	}
	defer c.Close()
	var block []byte
	for _, e := range eventCache {
		block = append(append(block, e...), '\n')
	}
	w := bufio.NewWriterSize(c, 64<<10)
	for ; n >= period; n -= period {
		w.Write(block)
	}
	for i := range n {
		w.WriteString(eventCache[i])
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		return err
	}
	c.(*net.UnixConn).CloseWrite()
	c.SetReadDeadline(time.Now().Add(10 * time.Minute))
	_, err = c.Read(make([]byte, 1))
	if err == io.EOF {
		err = nil
	}
	return err
}

func (d *daemon) metric(name string) (float64, error) {
	resp, err := http.Get("http://" + d.addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("no %s in the scrape", name)
}

func (d *daemon) waitMetric(name string, want int) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		v, err := d.metric(name)
		if err == nil && v >= float64(want) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s = %v, want %d: %v", name, v, want, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
