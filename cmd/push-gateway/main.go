// Command push-gateway keeps metrics that local processes push into a Unix
// socket for a TTL inside a fixed memory budget, and serves them to
// Prometheus on /metrics.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/common/version"
	"go.uber.org/atomic"

	"github.com/push-gateway/push-gateway/cache"
	"github.com/push-gateway/push-gateway/cmd/push-gateway/internal/pageout"
	"github.com/push-gateway/push-gateway/expose"
	"github.com/push-gateway/push-gateway/ingest"
)

const name = "push-gateway"

// Size is a byte count written with a B, KiB, MiB or GiB suffix (or none).
type Size int

// UnmarshalText parses a size such as 10KiB.
func (s *Size) UnmarshalText(b []byte) error {
	t := strings.TrimSpace(string(b))
	mult := 1
	for _, u := range []struct {
		suffix string
		mult   int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseUint(t, 10, 31)
	if err != nil || int(n)*mult/mult != int(n) {
		return fmt.Errorf("%q is not a size: want a whole number of B, KiB, MiB or GiB, such as 10KiB", b)
	}
	*s = Size(int(n) * mult)
	return nil
}

// FileMode is an octal file mode such as 0660.
type FileMode os.FileMode

// UnmarshalText parses an octal mode.
func (m *FileMode) UnmarshalText(b []byte) error {
	n, err := strconv.ParseUint(string(b), 8, 32)
	if err != nil || n > 0o777 {
		return fmt.Errorf("%q is not an octal file mode such as 0660", b)
	}
	*m = FileMode(n)
	return nil
}

// CLI holds the command line. Every flag can also be set from the
// environment as PUSH_GATEWAY_<FLAG> (dots and dashes become underscores).
type CLI struct {
	Ingest struct {
		Socket         string        `default:"/run/push-gateway.sock" help:"Path of the stream socket that processes push into."`
		SocketMode     FileMode      `default:"0660" help:"File mode of the push socket, in octal."`
		SocketGroup    string        `help:"Group (name or id) that owns the push socket, so that its members may push; empty keeps the daemon's group."`
		AllowedUIDs    []uint32      `name:"allowed-uids" help:"Only processes of these user ids may use the push socket (checked with SO_PEERCRED; comma-separated). Empty allows every process that the socket's file mode lets in."`
		MaxLineLength  Size          `default:"16KiB" help:"Longest line accepted on the raw stream; longer lines are skipped and counted."`
		MaxConnections int           `default:"512" help:"Connections on the push socket served at once. At the limit a new one closes the idlest (one that has sent nothing, else a raw stream quiet the longest), or is closed itself; both are counted."`
		IdleTimeout    time.Duration `default:"5m" help:"A raw stream on the push socket that sends nothing for this long is closed."`
		MaxBodySize    Size          `default:"1MiB" help:"Largest body of an HTTP push on the socket; a larger one gets 413. Bodies are read first, then decoded four at a time."`

		FirstByteTimeout time.Duration `default:"10s" help:"A connection on the push socket that sends nothing at all this long after it opened is closed."`
		BodyTimeout      time.Duration `default:"10s" help:"An HTTP push body on the socket must have arrived this long after its head; a slower one gets 408 and changes nothing."`

		RedisURL      string `name:"redis-url" help:"Also take metrics from a Redis list: redis://[[user]:password@]host[:port][/db] or unix://[[user]:password@]/path/redis.sock[?db=N]. Off when empty."`
		RedisKey      string `name:"redis-key" default:"prom-stream-gateway:metric-queue" help:"The Redis list to consume (producers LPUSH JSON events or text lines onto it)."`
		RedisPopCount int    `name:"redis-pop-count" default:"25" help:"Elements taken from the Redis list per request."`
	} `embed:"" prefix:"ingest." group:"Ingest (the push socket)"`
	Web struct {
		ListenAddress          string `default:":9091" help:"TCP address of the read-only HTTP server."`
		TelemetryPath          string `default:"/metrics" help:"Path that serves the cached metrics."`
		DisableExporterMetrics bool   `help:"Leave the push_gateway_* self-metrics out of the exposition."`
		MaxRequestsInFlight    int    `default:"8" help:"Scrapes served at once; more get 503 and are counted."`
		MaxConnections         int    `default:"64" help:"TCP connections kept open at once; a new one over it closes the one idle the longest, or is closed itself when none is idle, and is counted."`
		ScrapeMemory           Size   `default:"0" help:"Bytes that the scrapes being served may hold at once (each copies the cache); over it a scrape gets 503, but one always goes ahead. 0 means 2 x --cache.size + 256KiB."`
		ConfigFile             string `name:"config.file" help:"Path of a web config file (the Prometheus exporter-toolkit format) for TLS and basic auth on the TCP server; empty serves plain HTTP to everyone."`
	} `embed:"" prefix:"web." group:"Web (Prometheus scrapes here)"`
	Cache struct {
		TTL              time.Duration `name:"ttl" default:"1m" help:"A series disappears this long after its last update (Go duration; 0 keeps series until the budget needs their room)."`
		Size             Size          `default:"10KiB" help:"Memory budget of the cache in bytes, with a B, KiB or MiB suffix: keys, values, metadata and index all count."`
		SnapshotFile     string        `help:"Keep the cache across restarts in this file: loaded at start, written at shutdown and every --cache.snapshot-interval. Off when empty (flash wears out)."`
		SnapshotInterval time.Duration `default:"5m" help:"How often to write --cache.snapshot-file; 0 writes it only at shutdown."`
	} `embed:"" prefix:"cache." group:"Cache"`
	RemoteWrite remoteWriteFlags `embed:"" prefix:"remote-write." group:"Remote write (push to a TSDB)"`
	Log         struct {
		Level  string `default:"info" enum:"debug,info,warn,error" help:"Only log messages with the given severity or above. One of: [debug, info, warn, error]."`
		Format string `default:"logfmt" enum:"logfmt,json" help:"Output format of log messages. One of: [logfmt, json]."`
	} `embed:"" prefix:"log." group:"Logging"`
	Version kong.VersionFlag `help:"Show version, revision, build date and Go version, then exit."`
}

// Validate checks what the flag types cannot.
func (c *CLI) Validate() error {
	switch {
	case c.Cache.TTL < 0:
		return fmt.Errorf("--cache.ttl: %s is negative", c.Cache.TTL)
	case c.Cache.Size < cache.MinBudget:
		return fmt.Errorf("--cache.size: %d bytes is below the minimum of %d (1KiB)", c.Cache.Size, cache.MinBudget)
	case c.Cache.SnapshotInterval < 0:
		return fmt.Errorf("--cache.snapshot-interval: %s is negative", c.Cache.SnapshotInterval)
	case c.Cache.SnapshotFile != "" && !isDir(filepath.Dir(c.Cache.SnapshotFile)):
		return fmt.Errorf("--cache.snapshot-file: directory %s does not exist", filepath.Dir(c.Cache.SnapshotFile))
	case c.Ingest.Socket == "":
		return errors.New("--ingest.socket: empty path")
	case c.Ingest.MaxConnections < 1:
		return fmt.Errorf("--ingest.max-connections: %d is below 1", c.Ingest.MaxConnections)
	case c.Ingest.IdleTimeout <= 0:
		return fmt.Errorf("--ingest.idle-timeout: %s is not positive", c.Ingest.IdleTimeout)
	case c.Ingest.FirstByteTimeout <= 0:
		return fmt.Errorf("--ingest.first-byte-timeout: %s is not positive", c.Ingest.FirstByteTimeout)
	case c.Ingest.BodyTimeout <= 0:
		return fmt.Errorf("--ingest.body-timeout: %s is not positive", c.Ingest.BodyTimeout)
	case c.Ingest.MaxLineLength < 256:
		return fmt.Errorf("--ingest.max-line-length: %d bytes is below the minimum of 256", c.Ingest.MaxLineLength)
	case c.Ingest.RedisPopCount < 1 || c.Ingest.RedisPopCount > 10000:
		return fmt.Errorf("--ingest.redis-pop-count: %d is not between 1 and 10000", c.Ingest.RedisPopCount)
	case c.Ingest.RedisKey == "":
		return errors.New("--ingest.redis-key: empty")
	case c.Web.MaxRequestsInFlight < 1:
		return fmt.Errorf("--web.max-requests-in-flight: %d is below 1", c.Web.MaxRequestsInFlight)
	case c.Web.MaxConnections < 1:
		return fmt.Errorf("--web.max-connections: %d is below 1", c.Web.MaxConnections)
	case !strings.HasPrefix(c.Web.TelemetryPath, "/"):
		return fmt.Errorf("--web.telemetry-path: %q does not start with /", c.Web.TelemetryPath)
	case c.Web.TelemetryPath == "/" || strings.HasPrefix(c.Web.TelemetryPath, "/-/"):
		return fmt.Errorf("--web.telemetry-path: %q is taken by the landing page or health endpoints", c.Web.TelemetryPath)
	}
	if c.Web.ListenAddress != "" {
		if _, _, err := net.SplitHostPort(c.Web.ListenAddress); err != nil {
			return fmt.Errorf("--web.listen-address: %w", err)
		}
	}
	if err := c.validateRemoteWrite(); err != nil {
		return err
	}
	if u := c.Ingest.RedisURL; u != "" {
		if _, err := ingest.ParseRedisURL(u); err != nil {
			return fmt.Errorf("--ingest.redis-url: %w", err)
		}
	}
	if g := c.Ingest.SocketGroup; g != "" {
		if _, err := lookupGroup(g); err != nil {
			return fmt.Errorf("--ingest.socket-group: %w", err)
		}
	}
	if dir := filepath.Dir(c.Ingest.Socket); !isDir(dir) {
		return fmt.Errorf("--ingest.socket: directory %s does not exist", dir)
	}
	return nil
}

// lookupGroup returns the id of a group given by name or number.
func lookupGroup(g string) (int, error) {
	if id, err := strconv.Atoi(g); err == nil {
		return id, nil
	}
	gr, err := user.LookupGroup(g)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(gr.Gid)
}

// versionText is version.Print's text, written without text/template: the
// template engine would cost the binary about 400 KB for eight lines.
func versionText() string {
	return fmt.Sprintf("%s, version %s (branch: %s, revision: %s)\n"+
		"  build user:       %s\n  build date:       %s\n  go version:       %s\n"+
		"  platform:         %s\n  tags:             %s",
		name, version.Version, version.Branch, version.GetRevision(),
		version.BuildUser, version.BuildDate, version.GoVersion,
		version.GoOS+"/"+version.GoArch, version.GetTags())
}

// descriptorReserve is what the daemon needs besides the push socket's
// connections: standard streams, listeners, the snapshot file, and the
// descriptor that accepting one connection over the limit takes, to close
// it or another.
const descriptorReserve = 32

// checkDescriptors warns at start when the descriptor limit cannot hold
// the push socket's --ingest.max-connections and TCP's
// --web.max-connections beside the rest: at the limit,
// accepts fail (EMFILE) and pushers wait in the socket's queue. (Go raises
// the soft limit to the hard one before main runs.)
func checkDescriptors(logger *slog.Logger, socket, web int) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return
	}
	if need := uint64(socket) + uint64(web) + descriptorReserve; rl.Cur < need {
		logger.Warn("the open file limit is below what --ingest.max-connections and --web.max-connections need: raise it (LimitNOFILE=, ulimit -n) or lower the flags",
			"limit", rl.Cur, "need", need)
	}
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// gcPercent is the collector's GOGC unless the environment sets one. Go's
// default, 100, lets the heap reach 4 MB before its first collection
// (GOGC/100 * 4 MB) and twice the live heap after: a daemon whose live heap
// is under 1 MB kept up to 4 MB of garbage resident. 25 bounds that at
// 1 MB; the cost, more collections of a small heap, did not show in CPU
// per sample ingested or scraped (BENCHMARKS.md, "Settling").
const gcPercent = 25

// settleAfter bounds the wait for a first remote write delivery (settle).
const settleAfter = 30 * time.Second

var settleOnce sync.Once

// settle runs once the daemon has started: it pages out the code that
// starting up ran (pageout.Release) and sets the collector's target
// (gcPercent). Not at start: a collection during the start costs the
// collector's own memory (about 600 kB of mark bits and work buffers) while
// the start's pages are still resident, which made the peak.
func settle() {
	settleOnce.Do(func() {
		pageout.Release()
		if os.Getenv("GOGC") == "" {
			debug.SetGCPercent(gcPercent)
		}
	})
}

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// exitCode carries kong's wish to exit (after --help or --version).
type exitCode int

// run is the whole program; it returns the exit status: 0, 1 for a failure
// at run time, 2 for a usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (code int) {
	var cli CLI
	parser, err := kong.New(&cli,
		kong.Name(name),
		kong.Description("Keeps metrics that local processes push into a Unix socket, for a TTL and within a memory budget, and serves them to Prometheus."),
		kong.DefaultEnvars("PUSH_GATEWAY"),
		kong.Vars{"version": versionText()},
		kong.Writers(stdout, stderr),
		kong.Exit(func(c int) { panic(exitCode(c)) }),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true, FlagsLast: true}),
	)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	defer func() {
		if r := recover(); r != nil {
			c, ok := r.(exitCode)
			if !ok {
				panic(r)
			}
			code = int(c)
		}
	}()
	if _, err := parser.Parse(args); err != nil {
		fmt.Fprintf(stderr, "%s: error: %v\n", name, err)
		return 2
	}

	lvl, fmtr := promslog.NewLevel(), promslog.NewFormat()
	lvl.Set(cli.Log.Level)
	fmtr.Set(cli.Log.Format)
	logger := promslog.New(&promslog.Config{Level: lvl, Format: fmtr, Writer: stderr})

	// A bad web config stops the start as a bad flag does. Without the flag
	// nothing of TLS, YAML or bcrypt runs but their packages' init.
	var webSec *webSecurity
	if f := cli.Web.ConfigFile; f != "" {
		var msg string
		if webSec, msg = loadWebConfig(f, logger.With("component", "web")); webSec == nil {
			fmt.Fprintf(stderr, "%s: error: --web.config.file=%s: %s\n", name, f, msg)
			return 2
		}
	}

	// A closed stderr must not kill the daemon mid-shutdown (a write to a
	// broken pipe on fd 2 raises SIGPIPE): logging just fails.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serve(ctx, &cli, webSec, logger); err != nil {
		logger.Error("exiting", "err", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, cli *CLI, webSec *webSecurity, logger *slog.Logger) error {
	start := time.Now()
	c := cache.New(cache.Options{Budget: int(cli.Cache.Size), TTL: cli.Cache.TTL})
	if f := cli.Cache.SnapshotFile; f != "" {
		// A damaged snapshot costs what it held, never the start.
		if n, err := c.LoadFile(f); err != nil {
			logger.Warn("ignoring cache snapshot", "file", f, "err", err)
		} else {
			logger.Info("loaded cache snapshot", "file", f, "series", n)
		}
	}

	// With --remote-write.url unset, none of it exists: no client, no
	// goroutine, no buffer.
	var rw *remoteWrite
	if cli.RemoteWrite.on() {
		var err error
		if rw, err = newRemoteWrite(cli, c, logger.With("component", "remote_write")); err != nil {
			return err
		}
		defer rw.close()
	}

	// The TCP listener first: if the address is taken, the socket is never
	// created, and nothing is left behind. An empty address turns it off,
	// for a device that only pushes out (remote write).
	var tcp net.Listener
	if cli.Web.ListenAddress != "" {
		var err error
		if tcp, err = net.Listen("tcp", cli.Web.ListenAddress); err != nil {
			return fmt.Errorf("--web.listen-address: %w", err)
		}
	}
	closeTCP := func() {
		if tcp != nil {
			tcp.Close()
		}
	}
	sock, err := ingest.Listen(cli.Ingest.Socket, os.FileMode(cli.Ingest.SocketMode))
	if err != nil {
		closeTCP()
		return fmt.Errorf("--ingest.socket: %w", err)
	}
	if g := cli.Ingest.SocketGroup; g != "" {
		gid, _ := lookupGroup(g)
		if err := os.Chown(cli.Ingest.Socket, -1, gid); err != nil {
			sock.Close()
			closeTCP()
			return fmt.Errorf("--ingest.socket-group: %w", err)
		}
	}

	// The socket's HTTP side: the Pushgateway API, and reads answered by the
	// same handler as on TCP.
	// A body is read within --ingest.body-timeout, and waits as long at
	// most for room in the memory budget of bodies being read.
	push := &ingest.PushHandler{Cache: c, MaxBodySize: int64(cli.Ingest.MaxBodySize),
		BudgetWait: cli.Ingest.BodyTimeout, Stats: new(ingest.PushStats)}
	sockHTTP := &expose.Server{IdleTimeout: cli.Ingest.IdleTimeout, BodyTimeout: cli.Ingest.BodyTimeout,
		Logger: logger.With("component", "ingest"), Stats: new(expose.ServerStats)}
	web := &expose.Server{MaxConns: cli.Web.MaxConnections, Logger: logger.With("component", "web"), Stats: new(expose.ServerStats)}
	ing := ingest.NewServer(ingest.Options{
		Cache:          c,
		Logger:         logger.With("component", "ingest"),
		MaxLineLength:  int(cli.Ingest.MaxLineLength),
		MaxConnections: cli.Ingest.MaxConnections,
		IdleTimeout:    cli.Ingest.IdleTimeout,
		HTTP:           sockHTTP,
		AllowedUIDs:    cli.Ingest.AllowedUIDs,

		FirstByteTimeout: cli.Ingest.FirstByteTimeout,
		// A request head sniffed on the socket has the HTTP server's
		// limit, counted from its first byte.
		HeadTimeout: expose.DefaultReadHeaderTimeout,
	})
	// The Redis list consumer exists only when its URL is set: otherwise
	// nothing of it runs or is allocated.
	var redis *ingest.Redis
	if u := cli.Ingest.RedisURL; u != "" {
		addr, _ := ingest.ParseRedisURL(u) // checked by Validate
		redis = ing.NewRedis(ingest.RedisOptions{
			Addr:     addr,
			Key:      cli.Ingest.RedisKey,
			PopCount: cli.Ingest.RedisPopCount,
			Logger:   logger.With("component", "redis"),
		})
	}
	var self []expose.SelfFamily
	var webRefused atomic.Uint64
	if !cli.Web.DisableExporterMetrics {
		self = selfMetrics(c, ing.Stats(), push.Stats, &webRefused, web.Stats, sockHTTP.Stats)
		if rw != nil {
			self = append(self, rw.metrics()...)
		}
		if redis != nil {
			self = append(self, redisMetrics(redis.Stats())...)
		}
	}
	h := expose.New(expose.Options{
		Cache:         c,
		TelemetryPath: cli.Web.TelemetryPath,
		Self:          self,
		Version:       version.Info(),
		Start:         start,
		Status:        append(statusSections(ing.Stats(), push.Stats, &webRefused, web.Stats, sockHTTP.Stats, redisStats(redis)), rw.status()...),
		MaxInFlight:   cli.Web.MaxRequestsInFlight,
		Refused:       &webRefused,
		ScrapeMemory:  int64(cli.Web.ScrapeMemory),
	})
	sockHTTP.Handler = func(w *expose.Response, r *expose.Request) {
		if r.Method == "GET" || r.Method == "HEAD" {
			h.Serve(w, r)
			return
		}
		res := push.Handle(&ingest.PushRequest{
			Method: r.Method, Path: r.Path, RawQuery: r.RawQuery,
			ContentType: r.ContentType, ContentEncoding: r.ContentEncoding,
			ContentLength: r.ContentLength, Body: r.Body,
		})
		if res.Allow != "" {
			w.SetHeader("Allow", res.Allow)
		}
		if res.Code == 408 {
			w.SetHeader("Connection", "close") // the rest of the body may still come
		}
		if res.Message != "" {
			w.Error(res.Code, res.Message)
			return
		}
		w.WriteHeader(res.Code)
	}
	web.Handler = h.Serve
	tlsOn, authOn := false, false
	if webSec != nil {
		web.Handler = h.Guarded(webSec.guard)
		if webSec.handshake != nil {
			web.Handshake = webSec.handshake
		}
		tlsOn, authOn = webSec.tls, webSec.auth
	}

	address := "" // TCP off
	if tcp != nil {
		address = tcp.Addr().String()
	}
	logger.Info("starting "+name, "version", version.Info(), "build_context", version.BuildContext(),
		"socket", sock.Addr().String(), "address", address, "tls", tlsOn, "basic_auth", authOn)
	checkDescriptors(logger, cli.Ingest.MaxConnections, cli.Web.MaxConnections)
	if rw == nil {
		settle()
	} else {
		pageout.Release() // what the parse of the flags and the start mapped
		// Settled by the first request delivered, whose TLS handshake
		// would otherwise meet a heap with the collector's memory in it
		// (the peak); at the latest after settleAfter.
		t := time.AfterFunc(settleAfter, settle)
		defer t.Stop()
	}

	errc := make(chan error, 2)
	if tcp != nil {
		go func() {
			if err := web.Serve(tcp); !errors.Is(err, expose.ErrServerClosed) {
				errc <- fmt.Errorf("web server: %w", err)
			}
		}()
	}
	var rwStop context.CancelFunc
	rwDone := make(chan struct{})
	drain, drainCancel := context.WithCancel(context.Background())
	defer drainCancel()
	if rw != nil {
		var rwCtx context.Context
		rwCtx, rwStop = context.WithCancel(context.Background())
		defer rwStop()
		go func() {
			defer close(rwDone)
			rw.run(rwCtx, drain)
		}()
	}
	go func() {
		if err := ing.Serve(sock); err != nil {
			errc <- fmt.Errorf("push socket: %w", err)
		}
	}()
	// The consumer stops with its own context, cancelled at shutdown, and
	// applies what it has taken before redisDone closes.
	rctx, rcancel := context.WithCancel(context.Background())
	defer rcancel()
	redisDone := make(chan struct{})
	if redis != nil {
		go func() { defer close(redisDone); redis.Run(rctx) }()
	} else {
		close(redisDone)
	}
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var lastSave time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				c.Expire()
				if f, every := cli.Cache.SnapshotFile, cli.Cache.SnapshotInterval; f != "" && every > 0 {
					if lastSave.IsZero() {
						lastSave = now
					} else if now.Sub(lastSave) >= every {
						lastSave = now
						if err := c.SaveFile(f); err != nil {
							logger.Warn("cannot write cache snapshot", "file", f, "err", err)
						}
					}
				}
			}
		}
	}()

	var failure error
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case failure = <-errc:
	}
	// Remote write sends what the cache holds once the servers are done,
	// and has until 8.5 s after the signal for it and its queue: the daemon
	// exits within 10 s.
	stopping := time.Now()
	sctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	// All three at once: the push socket stops accepting while the HTTP
	// servers close their idle connections (an idle keep-alive connection
	// on the socket would otherwise hold the push socket's shutdown) and
	// finish the requests being served. One still being read after a second
	// is not going to finish in time.
	hctx, hcancel := context.WithTimeout(sctx, time.Second)
	var wg sync.WaitGroup
	for _, s := range []*expose.Server{web, sockHTTP} {
		wg.Add(1)
		go func() { defer wg.Done(); s.Shutdown(hctx) }()
	}
	rcancel()
	if err := ing.Shutdown(sctx); err != nil {
		logger.Warn("push socket did not close cleanly", "err", err)
	}
	select {
	case <-redisDone:
	case <-sctx.Done():
		logger.Warn("Redis list consumer did not stop in time")
	}
	wg.Wait()
	hcancel()
	sock.Close() // removes the socket file
	if rw != nil {
		t := time.AfterFunc(time.Until(stopping.Add(8500*time.Millisecond)), drainCancel)
		rwStop()
		<-rwDone
		t.Stop()
	}
	if f := cli.Cache.SnapshotFile; f != "" {
		if err := c.SaveFile(f); err != nil {
			logger.Warn("cannot write cache snapshot", "file", f, "err", err)
		} else {
			logger.Info("wrote cache snapshot", "file", f)
		}
	}
	return failure
}
