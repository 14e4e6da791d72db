// Command storm runs a bounded storm of hostile clients against a real
// push-gateway binary while well-behaved pushers and scrapers keep working,
// and reports what the daemon's memory did and whether any valid data was
// lost (point 2 of the hardening issue; `make storm`).
//
// It starts the binary on a temporary Unix socket and 127.0.0.1:<free port>,
// then for -duration runs at once:
//
//   - flood:       never-seen series over a few raw-stream connections;
//   - endless:     one connection writing a single line that never ends;
//   - idle:        more idle connections than --ingest.max-connections allows,
//     each dialled again a moment after the daemon closes it;
//   - slow-loris:  raw-stream clients writing one byte per second;
//   - HTTP:        pushes on the socket with bodies over
//     --ingest.max-body-size (plain, and a gzip bomb), and clients that send
//     their headers one byte per second;
//   - pushers:     connections that update a fixed set of series with an
//     increasing counter every 100 ms;
//   - scrapers:    GET /metrics every 200 ms, parsed with expfmt, checking that
//     every pusher's series is there, fresh and never going backwards.
//
// It samples VmRSS and VmHWM of the daemon every 250 ms and prints a Markdown
// table at the end. The exit status is 1 when a valid sample was lost, a
// value was stale, a scrape failed or did not parse, or the daemon died;
// 2 when the storm could not be set up.
//
// With -attack=NAME it runs instead one attack of issue 12 (issue12.go),
// alone, for -duration (30 s; slow-scrape 60 s), while probes check every
// 250 ms, each on a new connection, that a scrape (TCP), an HTTP push and a
// raw line (socket) still get through:
//
//   - tcp-flood:    -tcp-conns (1,100) keep-alive connections to the web
//     port, each asking GET /-/healthy every -tcp-keepalive (5 s), against
//     a daemon whose RLIMIT_NOFILE is 1024 as under systemd (-daemon-nofile);
//   - slow-scrape:  -fill-series (36,000) series make /metrics ~3.4 MiB
//     (--cache.size=16MiB), then -slow-readers (8) clients with a 4 KiB
//     receive buffer request it and never read;
//   - stall-push:   -stall-conns (8) socket connections send a push head
//     with Content-Length: 100 and one byte of body, then stall;
//   - idle-dialers: -idle (200) connections that send nothing, dialled
//     again 5–25 ms after the daemon closes them, against
//     --ingest.max-connections=64, while 4 pushers connected before push.
//
// Hostile clients the daemon closes dial again. The exit status of an
// attack is 0 when it ran to its end, whatever the probes saw.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is the command line.
type config struct {
	bin         string
	duration    time.Duration
	cacheSize   string
	idleTimeout time.Duration
	maxConns    int
	maxBody     string
	maxBodyN    int64
	extra       string // more daemon flags, space-separated

	floodConns  int
	floodRate   int
	idle        int
	loris       int
	fatLoris    int
	slowHeaders int
	endless     bool
	huge        int
	pushers     int
	series      int
	scrapers    int
	staleAfter  time.Duration
	progress    time.Duration

	// One attack of issue 12 instead of the storm (issue12.go).
	attack         string
	nofile         int
	tcpConns       int
	tcpKeepAlive   time.Duration
	slowReaders    int
	slowRcvBuf     int
	fillSeries     int
	stallConns     int
	redialMin      time.Duration
	redialMax      time.Duration
	probeEvery     time.Duration
	probeTimeout   time.Duration
	idleTimeoutSet bool // -idle-timeout given: passed to the daemon in an attack
	maxConnsSet    bool
}

func main() {
	os.Exit(run())
}

func run() int {
	var c config
	flag.StringVar(&c.bin, "bin", "", "path of the push-gateway binary (required)")
	flag.DurationVar(&c.duration, "duration", 30*time.Second, "how long the storm lasts")
	flag.StringVar(&c.cacheSize, "cache-size", "1MiB", "--cache.size of the daemon")
	flag.DurationVar(&c.idleTimeout, "idle-timeout", 10*time.Second, "--ingest.idle-timeout of the daemon")
	flag.IntVar(&c.maxConns, "max-connections", 512, "--ingest.max-connections of the daemon")
	flag.StringVar(&c.maxBody, "max-body-size", "1MiB", "--ingest.max-body-size of the daemon")
	flag.StringVar(&c.extra, "daemon-flags", "", "further daemon flags, separated by spaces")
	flag.StringVar(&c.extra, "extra", "", "the same as -daemon-flags")
	flag.IntVar(&c.floodConns, "flood-conns", 4, "connections that flood never-seen series")
	flag.IntVar(&c.floodRate, "flood-rate", 20000, "never-seen series per second over all flood connections; 0 is as fast as the daemon reads")
	flag.IntVar(&c.idle, "idle", 2000, "idle connections to hold (more than -max-connections, so that the limit bites)")
	flag.IntVar(&c.loris, "loris", 50, "raw-stream clients that write one byte per second")
	flag.IntVar(&c.fatLoris, "fat-loris", 0, "raw-stream clients that first send 63 KiB of a line (past the default --ingest.max-line-length of 16KiB: skipped as too long), then one byte per second")
	flag.BoolVar(&c.endless, "endless", true, "run the endless-line client")
	flag.IntVar(&c.huge, "huge", 1, "HTTP clients on the socket that push bodies over --ingest.max-body-size, one after another")
	flag.IntVar(&c.slowHeaders, "slow-headers", 4, "HTTP clients on the socket that send their headers one byte per second")
	flag.IntVar(&c.pushers, "pushers", 4, "valid pushers, one connection each")
	flag.IntVar(&c.series, "series", 10, "series per valid pusher")
	flag.IntVar(&c.scrapers, "scrapers", 2, "scrapers of /metrics, each every 200 ms; 0 checks nothing (to measure ingest alone)")
	flag.DurationVar(&c.staleAfter, "stale-after", time.Second, "a scraped value is stale when the pusher had written a newer one this long before the scrape")
	flag.DurationVar(&c.progress, "progress", 5*time.Second, "progress line on stderr this often; 0 for none")
	flag.StringVar(&c.attack, "attack", "", "run one attack of issue 12 instead of the storm: "+strings.Join(attackNames, ", "))
	flag.IntVar(&c.nofile, "daemon-nofile", 0, "RLIMIT_NOFILE (soft and hard) of the daemon, set with the shell's ulimit -n before exec; 0 inherits this tool's (-attack=tcp-flood: 1024, as under systemd)")
	flag.IntVar(&c.tcpConns, "tcp-conns", 1100, "-attack=tcp-flood: keep-alive TCP connections to the web port")
	flag.DurationVar(&c.tcpKeepAlive, "tcp-keepalive", 5*time.Second, "-attack=tcp-flood: each connection sends GET /-/healthy this often")
	flag.IntVar(&c.slowReaders, "slow-readers", 8, "-attack=slow-scrape: clients that request /metrics and never read")
	flag.IntVar(&c.slowRcvBuf, "slow-rcvbuf", 4096, "-attack=slow-scrape: SO_RCVBUF of the slow readers, set before connect")
	flag.IntVar(&c.fillSeries, "fill-series", 36000, "-attack=slow-scrape: series pushed over the raw socket first, ~100 bytes each in /metrics")
	flag.IntVar(&c.stallConns, "stall-conns", 8, "-attack=stall-push: socket connections that send a push head, 1 byte of a 100-byte body and stall")
	flag.DurationVar(&c.redialMin, "redial-min", 500*time.Millisecond, "a hostile client the daemon closed dials again after a pause from -redial-min ...")
	flag.DurationVar(&c.redialMax, "redial-max", 1500*time.Millisecond, "... to -redial-max (-attack=idle-dialers: 5ms to 25ms unless given)")
	flag.DurationVar(&c.probeEvery, "probe-every", 250*time.Millisecond, "an attack's probes (a scrape, an HTTP push and a raw line, each on a new connection) run this often")
	flag.DurationVar(&c.probeTimeout, "probe-timeout", 2*time.Second, "a probe that takes longer fails")
	flag.Parse()
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	c.idleTimeoutSet, c.maxConnsSet = set["idle-timeout"], set["max-connections"]
	if c.attack != "" {
		if err := attackDefaults(&c, set); err != nil {
			fmt.Fprintf(os.Stderr, "storm: %v\n", err)
			return 2
		}
	}
	if c.bin == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: storm -bin PATH [flags]")
		flag.PrintDefaults()
		return 2
	}
	var err error
	if c.maxBodyN, err = parseSize(c.maxBody); err != nil {
		fmt.Fprintf(os.Stderr, "storm: -max-body-size: %v\n", err)
		return 2
	}
	if _, err := parseSize(c.cacheSize); err != nil {
		fmt.Fprintf(os.Stderr, "storm: -cache-size: %v\n", err)
		return 2
	}
	switch {
	case c.duration < 3*time.Second || c.duration > time.Hour:
		err = fmt.Errorf("-duration %s: want 3s to 1h", c.duration)
	case c.floodConns < 1 || c.pushers < 1 || c.series < 1 || c.scrapers < 0:
		err = fmt.Errorf("-flood-conns, -pushers and -series must be at least 1, -scrapers at least 0")
	case c.idle < 0 || c.loris < 0 || c.fatLoris < 0 || c.slowHeaders < 0 || c.huge < 0 || c.floodRate < 0:
		err = fmt.Errorf("counts and rates must not be negative")
	case c.maxConns < 1:
		err = fmt.Errorf("-max-connections must be at least 1")
	case c.nofile < 0 || c.tcpConns < 0 || c.slowReaders < 0 || c.stallConns < 0 || c.fillSeries < 0 || c.slowRcvBuf < 0:
		err = fmt.Errorf("attack counts must not be negative")
	case c.redialMin < 0 || c.redialMax < c.redialMin:
		err = fmt.Errorf("-redial-min must be at least 0 and at most -redial-max")
	case c.probeEvery < 10*time.Millisecond || c.probeTimeout < 100*time.Millisecond:
		err = fmt.Errorf("-probe-every must be at least 10ms, -probe-timeout at least 100ms")
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "storm: %v\n", err)
		return 2
	}
	need := c.idle + c.loris + c.fatLoris + c.slowHeaders + c.huge + c.pushers + c.floodConns + c.scrapers + 256
	if c.attack != "" {
		need = c.idle + c.tcpConns + c.slowReaders + c.stallConns + c.pushers + 256
	}
	if err := raiseNoFile(uint64(need)); err != nil {
		fmt.Fprintf(os.Stderr, "storm: %v\n", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if c.attack != "" {
		return runAttack(ctx, &c)
	}
	res, err := runStorm(ctx, &c)
	if err != nil {
		fmt.Fprintf(os.Stderr, "storm: %v\n", err)
		return 2
	}
	printReport(os.Stdout, &c, res)
	if !res.ok() {
		fmt.Fprintln(os.Stderr, "storm: FAILED:", strings.Join(res.failures(), "; "))
		return 1
	}
	fmt.Fprintln(os.Stderr, "storm: ok")
	return 0
}

// raiseNoFile makes sure this process (and the daemon, which inherits it) may
// open at least need descriptors. Setrlimit is called even when the limit
// is high enough already: it tells Go not to put back the original soft
// limit for the child.
func raiseNoFile(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Cur < need {
		lim.Cur = min(need, lim.Max)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("setrlimit: %w", err)
	}
	if lim.Cur < need {
		fmt.Fprintf(os.Stderr, "storm: warning: RLIMIT_NOFILE is %d, below the %d descriptors wanted\n", lim.Cur, need)
	}
	return nil
}

// parseSize reads a size as the daemon does: a number with an optional B,
// KiB or MiB suffix.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	num := s
	switch {
	case strings.HasSuffix(s, "MiB"):
		mult, num = 1<<20, strings.TrimSuffix(s, "MiB")
	case strings.HasSuffix(s, "KiB"):
		mult, num = 1<<10, strings.TrimSuffix(s, "KiB")
	case strings.HasSuffix(s, "B"):
		num = strings.TrimSuffix(s, "B")
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a size such as 1MiB", s)
	}
	return n * mult, nil
}
