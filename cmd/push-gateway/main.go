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
	"net/url"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
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
	"github.com/push-gateway/push-gateway/expose"
	"github.com/push-gateway/push-gateway/expose/remotewrite"
	"github.com/push-gateway/push-gateway/expose/remotewrite/httpc"
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
		MaxConnections int           `default:"512" help:"Connections on the push socket served at once; more are closed at accept and counted."`
		IdleTimeout    time.Duration `default:"5m" help:"A connection on the push socket that sends nothing for this long is closed."`
		MaxBodySize    Size          `default:"1MiB" help:"Largest body of an HTTP push on the socket; a larger one gets 413. Four bodies are read at once, the others wait."`
	} `embed:"" prefix:"ingest." group:"Ingest (the push socket)"`
	Web struct {
		ListenAddress          string `default:":9091" help:"TCP address of the read-only HTTP server."`
		TelemetryPath          string `default:"/metrics" help:"Path that serves the cached metrics."`
		DisableExporterMetrics bool   `help:"Leave the push_gateway_* self-metrics out of the exposition."`
		MaxRequestsInFlight    int    `default:"8" help:"Scrapes served at once; more get 503 and are counted."`
	} `embed:"" prefix:"web." group:"Web (Prometheus scrapes here)"`
	Cache struct {
		TTL              time.Duration `name:"ttl" default:"1m" help:"A series disappears this long after its last update (Go duration; 0 keeps series until the budget needs their room)."`
		Size             Size          `default:"10KiB" help:"Memory budget of the cache in bytes, with a B, KiB or MiB suffix: keys, values, metadata and index all count."`
		SnapshotFile     string        `help:"Keep the cache across restarts in this file: loaded at start, written at shutdown and every --cache.snapshot-interval. Off when empty (flash wears out)."`
		SnapshotInterval time.Duration `default:"5m" help:"How often to write --cache.snapshot-file; 0 writes it only at shutdown."`
	} `embed:"" prefix:"cache." group:"Cache"`
	RemoteWrite struct {
		URL            string        `name:"url" help:"Send the cache with the Prometheus remote_write 1.0 protocol to this http:// or https:// URL (such as http://prometheus:9090/api/v1/write). Off when empty."`
		Interval       time.Duration `default:"1m" help:"How often the whole cache is sent."`
		Timeout        time.Duration `default:"30s" help:"Time limit of one request, connection included."`
		ExternalLabels []string      `name:"external-label" sep:"none" placeholder:"NAME=VALUE" help:"Label added to every series that lacks it; repeatable. instance=<hostname> is added unless one names instance; instance= (empty) adds none."`
		BasicAuth      struct {
			Username     string `help:"HTTP basic auth user name."`
			PasswordFile string `help:"File holding the basic auth password, read at each request."`
		} `embed:"" prefix:"basic-auth."`
		BearerTokenFile string         `help:"File holding a bearer token for the Authorization header, read at each request."`
		Headers         []string       `name:"header" sep:"none" placeholder:"NAME: VALUE" help:"Extra request header such as 'X-Scope-OrgID: tenant-1'; repeatable. The protocol's own headers cannot be set."`
		TLS             remoteWriteTLS `embed:"" prefix:"tls."`
		ProxyURL        string         `name:"proxy-url" help:"http:// proxy reached with CONNECT."`
		QueueSize       Size           `default:"256KiB" help:"Compressed requests kept while the receiver cannot be reached; the oldest are dropped when full."`
	} `embed:"" prefix:"remote-write." group:"Remote write (push to a TSDB)"`
	Log struct {
		Level  string `default:"info" enum:"debug,info,warn,error" help:"Only log messages with the given severity or above. One of: [debug, info, warn, error]."`
		Format string `default:"logfmt" enum:"logfmt,json" help:"Output format of log messages. One of: [logfmt, json]."`
	} `embed:"" prefix:"log." group:"Logging"`
	Version kong.VersionFlag `help:"Show version, revision, build date and Go version, then exit."`
}

// remoteWriteTLS are the --remote-write.tls.* flags.
type remoteWriteTLS struct {
	CAFile             string `name:"ca-file" help:"CA certificates (PEM) that the receiver's certificate must chain to, instead of the system's (which cost memory)."`
	CertFile           string `name:"cert-file" help:"Client certificate (PEM)."`
	KeyFile            string `name:"key-file" help:"Key of the client certificate (PEM)."`
	ServerName         string `name:"server-name" help:"Name the receiver's certificate must have, instead of the URL's host."`
	InsecureSkipVerify bool   `name:"insecure-skip-verify" help:"Do not verify the receiver's certificate (testing only)."`
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
	case c.Ingest.MaxLineLength < 256:
		return fmt.Errorf("--ingest.max-line-length: %d bytes is below the minimum of 256", c.Ingest.MaxLineLength)
	case c.Web.MaxRequestsInFlight < 1:
		return fmt.Errorf("--web.max-requests-in-flight: %d is below 1", c.Web.MaxRequestsInFlight)
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

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
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

	// A closed stderr must not kill the daemon mid-shutdown (a write to a
	// broken pipe on fd 2 raises SIGPIPE): logging just fails.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serve(ctx, &cli, logger); err != nil {
		logger.Error("exiting", "err", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, cli *CLI, logger *slog.Logger) error {
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
	if cli.RemoteWrite.URL != "" {
		var err error
		if rw, err = newRemoteWrite(cli, c, logger.With("component", "remote_write")); err != nil {
			return err
		}
		defer rw.client.Close()
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
	push := &ingest.PushHandler{Cache: c, MaxBodySize: int64(cli.Ingest.MaxBodySize), Stats: new(ingest.PushStats)}
	sockHTTP := &expose.Server{IdleTimeout: cli.Ingest.IdleTimeout, Logger: logger.With("component", "ingest")}
	ing := ingest.NewServer(ingest.Options{
		Cache:          c,
		Logger:         logger.With("component", "ingest"),
		MaxLineLength:  int(cli.Ingest.MaxLineLength),
		MaxConnections: cli.Ingest.MaxConnections,
		IdleTimeout:    cli.Ingest.IdleTimeout,
		HTTP:           sockHTTP,
		AllowedUIDs:    cli.Ingest.AllowedUIDs,
	})
	var self []expose.SelfFamily
	var webRefused atomic.Uint64
	if !cli.Web.DisableExporterMetrics {
		self = selfMetrics(c, ing.Stats(), push.Stats, &webRefused)
		if rw != nil {
			self = append(self, remoteWriteMetrics(rw.stats)...)
		}
	}
	h := expose.New(expose.Options{
		Cache:         c,
		TelemetryPath: cli.Web.TelemetryPath,
		Self:          self,
		Version:       version.Info(),
		MaxInFlight:   cli.Web.MaxRequestsInFlight,
		Refused:       &webRefused,
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
		if res.Message != "" {
			w.Error(res.Code, res.Message)
			return
		}
		w.WriteHeader(res.Code)
	}
	web := &expose.Server{Handler: h.Serve, Logger: logger.With("component", "web")}

	address := "" // TCP off
	if tcp != nil {
		address = tcp.Addr().String()
	}
	logger.Info("starting "+name, "version", version.Info(), "build_context", version.BuildContext(),
		"socket", sock.Addr().String(), "address", address)

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
			rw.sender.Run(rwCtx, drain)
		}()
	}
	go func() {
		if err := ing.Serve(sock); err != nil {
			errc <- fmt.Errorf("push socket: %w", err)
		}
	}()
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
	if err := ing.Shutdown(sctx); err != nil {
		logger.Warn("push socket did not close cleanly", "err", err)
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

// validateRemoteWrite checks the --remote-write.* flags.
func (c *CLI) validateRemoteWrite() error {
	rw := &c.RemoteWrite
	if rw.URL == "" {
		return nil
	}
	u, err := url.Parse(rw.URL)
	switch {
	case err != nil:
		return fmt.Errorf("--remote-write.url: %w", err)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return fmt.Errorf("--remote-write.url: %q is not an http:// or https:// URL", u.Redacted())
	case u.User != nil:
		return errors.New("--remote-write.url: user and password do not belong in the URL: use --remote-write.basic-auth.*")
	case rw.Interval <= 0:
		return fmt.Errorf("--remote-write.interval: %s is not positive", rw.Interval)
	case rw.Timeout <= 0:
		return fmt.Errorf("--remote-write.timeout: %s is not positive", rw.Timeout)
	case rw.QueueSize < 1024:
		return fmt.Errorf("--remote-write.queue-size: %d bytes is below the minimum of 1024 (1KiB)", rw.QueueSize)
	case rw.BearerTokenFile != "" && (rw.BasicAuth.Username != "" || rw.BasicAuth.PasswordFile != ""):
		return errors.New("--remote-write.bearer-token-file: cannot be used with --remote-write.basic-auth.*")
	case u.Scheme == "http" && rw.TLS != (remoteWriteTLS{}):
		return errors.New("--remote-write.tls.*: set for an http:// --remote-write.url")
	case (rw.TLS.CertFile == "") != (rw.TLS.KeyFile == ""):
		return errors.New("--remote-write.tls.cert-file: needs --remote-write.tls.key-file, and the other way round")
	}
	if rw.ProxyURL != "" {
		p, err := url.Parse(rw.ProxyURL)
		if err != nil || p.Scheme != "http" || p.Host == "" {
			return fmt.Errorf("--remote-write.proxy-url: %q is not an http:// URL", rw.ProxyURL)
		}
	}
	if _, err := externalLabels(rw.ExternalLabels, "localhost"); err != nil {
		return fmt.Errorf("--remote-write.external-label: %w", err)
	}
	auth := rw.BearerTokenFile != "" || rw.BasicAuth.Username != "" || rw.BasicAuth.PasswordFile != ""
	if _, err := extraHeaders(rw.Headers, auth); err != nil {
		return fmt.Errorf("--remote-write.header: %w", err)
	}
	for _, f := range []struct{ flag, path string }{
		{"basic-auth.password-file", rw.BasicAuth.PasswordFile}, {"bearer-token-file", rw.BearerTokenFile},
		{"tls.ca-file", rw.TLS.CAFile}, {"tls.cert-file", rw.TLS.CertFile}, {"tls.key-file", rw.TLS.KeyFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return fmt.Errorf("--remote-write.%s: %w", f.flag, err)
		}
	}
	return nil
}

// externalLabels parses NAME=VALUE flags. instance=hostname is added unless
// one of them names instance; an empty value adds no label of that name.
func externalLabels(flags []string, hostname string) ([]remotewrite.Label, error) {
	var ls []remotewrite.Label
	seen := map[string]bool{}
	for _, f := range flags {
		n, v, ok := strings.Cut(f, "=")
		if !ok || !validLabelName(n) {
			return nil, fmt.Errorf("%q is not NAME=VALUE with a valid label name", f)
		}
		if seen[n] {
			return nil, fmt.Errorf("label %s given twice", n)
		}
		seen[n] = true
		if v != "" {
			ls = append(ls, remotewrite.Label{Name: []byte(n), Value: []byte(v)})
		}
	}
	if !seen["instance"] && hostname != "" {
		ls = append(ls, remotewrite.Label{Name: []byte("instance"), Value: []byte(hostname)})
	}
	return ls, nil
}

// validLabelName reports whether n matches [a-zA-Z_][a-zA-Z0-9_]* and is
// not reserved (__name__ and the like).
func validLabelName(n string) bool {
	if n == "" || strings.HasPrefix(n, "__") {
		return false
	}
	for i, r := range n {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// reservedHeaders are the request headers the sender writes itself.
var reservedHeaders = []string{"Content-Type", "Content-Encoding", "Content-Length", "User-Agent",
	"X-Prometheus-Remote-Write-Version", "Host", "Connection", "Transfer-Encoding"}

// extraHeaders parses "Name: value" flags. The protocol's own headers, and
// Authorization when basic auth or a bearer token is set, are refused.
func extraHeaders(flags []string, auth bool) ([]remotewrite.Header, error) {
	var hs []remotewrite.Header
	for _, f := range flags {
		n, v, ok := strings.Cut(f, ":")
		h := remotewrite.Header{Name: strings.TrimSpace(n), Value: strings.TrimSpace(v)}
		if !ok {
			return nil, fmt.Errorf("%q is not \"Name: value\"", f)
		}
		if err := httpc.CheckHeader(h); err != nil {
			return nil, fmt.Errorf("%q: %w", f, err)
		}
		n = h.Name
		for _, r := range reservedHeaders {
			if strings.EqualFold(n, r) {
				return nil, fmt.Errorf("%s is the protocol's own header and cannot be set", r)
			}
		}
		if auth && strings.EqualFold(n, "Authorization") {
			return nil, errors.New("Authorization cannot be set with --remote-write.basic-auth.* or --remote-write.bearer-token-file")
		}
		hs = append(hs, h)
	}
	return hs, nil
}

// remoteWrite is the --remote-write.* machinery, made only when it is on.
type remoteWrite struct {
	client *httpc.Client
	sender *remotewrite.Sender
	stats  *remotewrite.Stats
}

func newRemoteWrite(cli *CLI, c *cache.Cache, logger *slog.Logger) (*remoteWrite, error) {
	f := &cli.RemoteWrite
	u, err := url.Parse(f.URL)
	if err != nil {
		return nil, fmt.Errorf("--remote-write.url: %w", err)
	}
	var proxy *url.URL
	if f.ProxyURL != "" {
		if proxy, err = url.Parse(f.ProxyURL); err != nil {
			return nil, fmt.Errorf("--remote-write.proxy-url: %w", err)
		}
	}
	client, err := httpc.New(httpc.Config{
		URL: u, Timeout: f.Timeout, ProxyURL: proxy, MaxResponseBody: 4 << 10,
		CAFile: f.TLS.CAFile, CertFile: f.TLS.CertFile, KeyFile: f.TLS.KeyFile,
		ServerName: f.TLS.ServerName, InsecureSkipVerify: f.TLS.InsecureSkipVerify,
	})
	if err != nil {
		return nil, fmt.Errorf("remote write: %w", err)
	}
	host, _ := os.Hostname()
	ext, _ := externalLabels(f.ExternalLabels, host) // checked by Validate
	auth := f.BearerTokenFile != "" || f.BasicAuth.Username != "" || f.BasicAuth.PasswordFile != ""
	hdrs, _ := extraHeaders(f.Headers, auth)
	stats := new(remotewrite.Stats)
	s := remotewrite.New(remotewrite.Options{
		Cache:                 c,
		Encoder:               remotewrite.NewEncoder(ext, true),
		Poster:                client,
		Interval:              f.Interval,
		Timeout:               f.Timeout,
		QueueSize:             int(f.QueueSize),
		Headers:               hdrs,
		UserAgent:             name + "/" + version.Version,
		BasicAuthUsername:     f.BasicAuth.Username,
		BasicAuthPasswordFile: f.BasicAuth.PasswordFile,
		BearerTokenFile:       f.BearerTokenFile,
		Logger:                logger,
	}, stats)
	if f.TLS.InsecureSkipVerify {
		logger.Warn("--remote-write.tls.insecure-skip-verify: the receiver's certificate is not verified; anyone on the path can read and change what is sent")
	}
	// Where it sends, never with secrets: no user info (refused anyway),
	// no query string (an API key may hide there).
	shown := *u
	shown.User, shown.RawQuery, shown.ForceQuery = nil, "", false
	var extNames []string
	for _, l := range ext {
		extNames = append(extNames, string(l.Name)+"="+string(l.Value))
	}
	logger.Info("remote write on", "url", shown.String(), "interval", f.Interval,
		"queue_size", int(f.QueueSize), "external_labels", strings.Join(extNames, ","),
		"proxy", proxyHost(proxy))
	return &remoteWrite{client: client, sender: s, stats: stats}, nil
}

func proxyHost(p *url.URL) string {
	if p == nil {
		return ""
	}
	return p.Host
}
