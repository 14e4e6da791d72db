//go:build !noremotewrite

package main

// Remote write (README, "Pushing to a TSDB"): its flags, their checks, its
// wiring and self-metrics. Built unless the noremotewrite tag is given (see
// remotewrite_off.go).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/prometheus/common/version"

	"github.com/push-gateway/push-gateway/cache"
	"github.com/push-gateway/push-gateway/expose"
	"github.com/push-gateway/push-gateway/expose/remotewrite"
	"github.com/push-gateway/push-gateway/expose/remotewrite/httpc"
)

// remoteWriteFlags are the --remote-write.* flags.
type remoteWriteFlags struct {
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
}

// on reports whether remote write is asked for.
func (f *remoteWriteFlags) on() bool { return f.URL != "" }

// remoteWriteTLS are the --remote-write.tls.* flags.
type remoteWriteTLS struct {
	CAFile             string `name:"ca-file" help:"CA certificates (PEM) that the receiver's certificate must chain to, instead of the system's (which cost memory)."`
	CertFile           string `name:"cert-file" help:"Client certificate (PEM)."`
	KeyFile            string `name:"key-file" help:"Key of the client certificate (PEM)."`
	ServerName         string `name:"server-name" help:"Name the receiver's certificate must have, instead of the URL's host."`
	InsecureSkipVerify bool   `name:"insecure-skip-verify" help:"Do not verify the receiver's certificate (testing only)."`
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
		// Not the parser's message, which quotes the URL: it may hold
		// a password or a key.
		return errors.New("--remote-write.url: not a valid URL")
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
		switch {
		case err != nil:
			// Not quoted: the URL may hold a password.
			return errors.New("--remote-write.proxy-url: not a valid URL")
		case p.Scheme != "http" || p.Host == "":
			return fmt.Errorf("--remote-write.proxy-url: %q is not an http:// URL", p.Redacted())
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
	url    string // without user info or query
}

// status is the status page's section on remote write.
func (r *remoteWrite) status() []expose.StatusSection {
	if r == nil {
		return nil
	}
	return []expose.StatusSection{{Title: "Remote write", Rows: func(t *expose.StatusTable) {
		t.Text("Receiver", r.url)
		if ms := r.stats.LastSuccess.Load(); ms != 0 {
			t.Time("Last success", time.UnixMilli(ms))
		} else {
			t.Text("Last success", "never")
		}
		t.Bytes("Queue", r.stats.QueueBytes.Load())
		t.Uint("Samples sent", r.stats.Sent.Load())
		t.Uint("Samples dropped", r.stats.Dropped.Load())
		t.Uint("Samples sent again", r.stats.Retried.Load())
		if msg, at := r.stats.LastError(); msg != "" {
			t.Time("Last error", at)
			t.Text("Last error was", msg)
		}
	}}}
}

func newRemoteWrite(cli *CLI, c *cache.Cache, logger *slog.Logger) (*remoteWrite, error) {
	f := &cli.RemoteWrite
	u, err := url.Parse(f.URL)
	if err != nil { // checked by Validate; never the parser's message, which quotes the URL
		return nil, errors.New("--remote-write.url: not a valid URL")
	}
	var proxy *url.URL
	if f.ProxyURL != "" {
		if proxy, err = url.Parse(f.ProxyURL); err != nil {
			return nil, errors.New("--remote-write.proxy-url: not a valid URL")
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
		Cache:    c,
		Encoder:  remotewrite.NewEncoder(ext, true),
		Poster:   settlingPoster{client},
		Interval: f.Interval,
		// The client bounds each request by f.Timeout: no context per
		// request, which would be garbage every interval.
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
	return &remoteWrite{client: client, sender: s, stats: stats, url: shown.String()}, nil
}

func (rw *remoteWrite) close()                         { rw.client.Close() }
func (rw *remoteWrite) run(ctx, drain context.Context) { rw.sender.Run(ctx, drain) }
func (rw *remoteWrite) metrics() []expose.SelfFamily   { return remoteWriteMetrics(rw.stats) }

func proxyHost(p *url.URL) string {
	if p == nil {
		return ""
	}
	return p.Host
}

// remoteWriteMetrics returns the self-metrics of remote write, present only
// when it is on.
func remoteWriteMetrics(s *remotewrite.Stats) []expose.SelfFamily {
	return []expose.SelfFamily{
		{Name: "push_gateway_remote_write_samples_total", Append: func(dst []byte) []byte {
			const n = "push_gateway_remote_write_samples_total"
			dst = expose.AppendHeader(dst, n, "Samples of remote write requests, by result: sent (the receiver took them), dropped (refused, or pushed out of a full queue), retried (sent again after a failure, once per try).", cache.Counter)
			dst = expose.AppendSample(dst, n, "result", "dropped", float64(s.Dropped.Load()))
			dst = expose.AppendSample(dst, n, "result", "retried", float64(s.Retried.Load()))
			return expose.AppendSample(dst, n, "result", "sent", float64(s.Sent.Load()))
		}},
		{Name: "push_gateway_remote_write_requests_total", Append: func(dst []byte) []byte {
			const n = "push_gateway_remote_write_requests_total"
			dst = expose.AppendHeader(dst, n, "Remote write tries, by HTTP status code, or error for a network failure.", cache.Counter)
			s.EachCode(func(code string, v uint64) {
				dst = expose.AppendSample(dst, n, "code", code, float64(v))
			})
			return dst
		}},
		oneSample("push_gateway_remote_write_queue_bytes", "Compressed bytes of the remote write requests not yet delivered (--remote-write.queue-size bounds it).", cache.Gauge,
			func() float64 { return float64(s.QueueBytes.Load()) }),
		oneSample("push_gateway_remote_write_last_success_timestamp_seconds", "Unix time of the last remote write request the receiver took; 0 if none yet.", cache.Gauge,
			func() float64 { return float64(s.LastSuccess.Load()) / 1000 }),
	}
}

// settlingPoster settles the daemon (see settle) after the first request
// the receiver accepted: by then the TLS handshake, the parse of the CA
// file and the first request's code have run, and most of it will not run
// again.
type settlingPoster struct{ remotewrite.Poster }

func (p settlingPoster) Do(ctx context.Context, method string, headers []remotewrite.Header, body []byte) (remotewrite.Response, error) {
	r, err := p.Poster.Do(ctx, method, headers, body)
	if err == nil && r.Status/100 == 2 {
		settle()
	}
	return r, err
}
