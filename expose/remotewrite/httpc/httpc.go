// Package httpc is a small HTTP/1.1 client for one receiver: POST a body,
// read a bounded answer. It exists because net/http's client adds 3.4 MiB
// to the amd64 binary, against 2.55 MiB for crypto/tls and this package, of
// which the package is about 48 KiB (BENCHMARKS.md, "remote_write: HTTP
// client"); the daemon does not link net/http at all.
//
// What it guards against: every dial, write and read has a deadline (the
// request's Timeout or its context, whichever comes first); status, header
// and chunk lines are bounded in length and count; at most MaxResponseBody
// bytes of a body are kept and at most 256 KiB more are read to keep the
// connection; garbage answers are errors; redirects are not followed.
//
// It speaks HTTP/1.1 with keep-alive over one connection at a time (a
// second concurrent Do dials its own), over TLS for https:// (system roots
// or a CA file, a client certificate re-read when its files change), and
// through an http:// proxy with CONNECT. An idle connection on which
// anything arrived (bytes or its end) is not reused; one that fails before
// the first byte of its answer is replaced and the request sent again, once.
//
// Built with the tag httpc_notls, it speaks http:// only and leaves
// crypto/tls out of the binary.
package httpc

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/push-gateway/push-gateway/expose/http1"
)

// Config describes the receiver. The zero value of a field means its
// default.
type Config struct {
	URL     *url.URL      // http or https; user:password in it is refused (set an Authorization header)
	Timeout time.Duration // whole request: dial, proxy, TLS, write and read; default 30s

	// PEM files. CertFile and KeyFile (both or neither) are a client
	// certificate, read again for a new connection when either file has
	// changed, so a renewed certificate needs no restart. The CA file is
	// read once, at the first TLS dial; without it the system roots are
	// loaded then (by crypto/x509, once per process), which costs 1.6 to
	// 4 MB of memory a CA file spares.
	CAFile, CertFile, KeyFile string
	ServerName                string // the name verified and sent as SNI; default the URL's host
	InsecureSkipVerify        bool   // no verification of the receiver's certificate

	ProxyURL *url.URL // http:// proxy reached with CONNECT; user:password in it is sent as Basic auth; nil = direct

	MaxResponseBody int // bytes of a response body kept; default 64 KiB
}

// Header is one request header line.
type Header struct{ Name, Value string }

// Response is a final (non-1xx) response. 3xx ones are returned as they
// are: redirects are not followed.
type Response struct {
	Status     int
	RetryAfter time.Duration // from Retry-After (seconds or HTTP-date); 0 if absent, invalid or past; at most MaxRetryAfter
	Body       []byte        // at most MaxResponseBody bytes; owned by the caller
}

const (
	defaultTimeout         = 30 * time.Second
	defaultMaxResponseBody = 64 << 10
)

// ErrClosed is returned by Do after Close.
var ErrClosed = errors.New("httpc: client closed")

// Client sends requests to one URL. Its methods are safe to call
// concurrently.
type Client struct {
	cfg       Config
	https     bool
	addr      string // host:port dialled: the receiver's, or the proxy's
	host      string // the Host header; with a proxy, also the CONNECT target's host
	target    string // host:port of the receiver, for CONNECT
	uri       string // path?query
	proxyAuth string // "Basic …", or ""

	tls tlsState

	mu     sync.Mutex // guards idle, busy and closed
	idle   *conn      // the kept-alive connection
	busy   map[*conn]struct{}
	closed bool
}

// New checks cfg and returns a client. It opens no connection and reads
// no file.
func New(cfg Config) (*Client, error) {
	u := cfg.URL
	if u == nil {
		return nil, errors.New("httpc: no URL")
	}
	c := &Client{cfg: cfg, busy: map[*conn]struct{}{}}
	switch u.Scheme {
	case "http":
	case "https":
		if !tlsBuilt {
			return nil, errors.New("httpc: https:// URL in a build without TLS (tag httpc_notls)")
		}
		c.https = true
	default:
		return nil, fmt.Errorf("httpc: URL scheme %q: want http or https", u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("httpc: no host in URL %q", shown(u))
	}
	if u.User != nil {
		return nil, fmt.Errorf("httpc: user information in URL %q: use an Authorization header", shown(u))
	}
	if !c.https && (cfg.CAFile != "" || cfg.CertFile != "" || cfg.KeyFile != "" || cfg.ServerName != "" || cfg.InsecureSkipVerify) {
		return nil, fmt.Errorf("httpc: TLS settings for the http:// URL %q", shown(u))
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("httpc: a client certificate needs both a certificate file and a key file")
	}
	if cfg.Timeout < 0 || cfg.MaxResponseBody < 0 {
		return nil, errors.New("httpc: negative Timeout or MaxResponseBody")
	}
	if cfg.Timeout == 0 {
		c.cfg.Timeout = defaultTimeout
	}
	if cfg.MaxResponseBody == 0 {
		c.cfg.MaxResponseBody = defaultMaxResponseBody
	}
	c.host = u.Host
	c.target = hostPort(u)
	c.addr = c.target
	if c.uri = u.RequestURI(); c.uri == "" || c.uri[0] != '/' {
		return nil, fmt.Errorf("httpc: URL %q has no absolute path", shown(u))
	}
	if !http1.ValidValue(c.host) {
		return nil, errors.New("httpc: control character in the URL's host")
	}
	if p := cfg.ProxyURL; p != nil {
		if p.Scheme != "http" || p.Hostname() == "" {
			return nil, fmt.Errorf("httpc: proxy URL %q: want http://host[:port]", shown(p))
		}
		c.addr = hostPort(p)
		if p.User != nil {
			pw, _ := p.User.Password()
			c.proxyAuth = "Basic " + base64.StdEncoding.EncodeToString([]byte(p.User.Username()+":"+pw))
		}
	}
	return c, nil
}

// shown is u for an error message: without user information or query
// string, where secrets may hide.
func shown(u *url.URL) string {
	v := *u
	v.User, v.RawQuery, v.ForceQuery = nil, "", false
	return v.String()
}

func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// CheckHeader tells whether h can be sent by Do: a token for a name, no
// control character but tab in the value, and none of the headers Do
// writes itself or that would change the framing (Host, Content-Length,
// Transfer-Encoding, Connection).
func CheckHeader(h Header) error {
	if !http1.IsToken(h.Name) {
		return fmt.Errorf("httpc: invalid header name %q", h.Name)
	}
	for _, reserved := range [...]string{"Host", "Content-Length", "Transfer-Encoding", "Connection"} {
		if equalFold(h.Name, reserved) {
			return fmt.Errorf("httpc: header %s is set by the client", reserved)
		}
	}
	if !http1.ValidValue(h.Value) {
		// The value is not quoted: it may be a secret (Authorization).
		return fmt.Errorf("httpc: control character in the value of header %s", h.Name)
	}
	return nil
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// Do sends one request with body and returns the final response, whatever
// its status. The request ends at the earlier of ctx's deadline and now +
// Timeout; cancelling ctx aborts it. A kept-alive connection that turns
// out closed before any byte of the response arrived is replaced by a new
// one and the request sent again, once: the caller's requests must bear
// being received twice (remote_write ones do).
func (c *Client) Do(ctx context.Context, method string, headers []Header, body []byte) (Response, error) {
	if !http1.IsToken(method) {
		return Response{}, fmt.Errorf("httpc: invalid method %q", method)
	}
	for _, h := range headers {
		if err := CheckHeader(h); err != nil {
			return Response{}, err
		}
	}
	deadline := time.Now().Add(c.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	for fresh := false; ; fresh = true {
		if err := ctx.Err(); err != nil {
			return Response{}, fmt.Errorf("httpc: %w", err)
		}
		cn, reused, err := c.get(ctx, deadline, fresh)
		if err != nil {
			return Response{}, err
		}
		resp, reusable, err := c.roundTrip(ctx, cn, deadline, method, headers, body)
		if err == nil {
			c.put(cn, reusable)
			return resp, nil
		}
		c.put(cn, false)
		if !reused || fresh || cn.read > 0 || ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
			if ctx.Err() != nil {
				err = fmt.Errorf("%w (%w)", err, ctx.Err())
			}
			return Response{}, err
		}
	}
}

// aLongTimeAgo is a deadline in the past: it makes blocked reads and
// writes return at once.
var aLongTimeAgo = time.Unix(1, 0)

// roundTrip writes the request on cn and reads the response.
func (c *Client) roundTrip(ctx context.Context, cn *conn, deadline time.Time, method string, headers []Header, body []byte) (Response, bool, error) {
	cn.watch(ctx)
	if err := cn.nc.SetDeadline(deadline); err != nil {
		return Response{}, false, fmt.Errorf("httpc: %w", err)
	}
	// Cancelled before the deadline was set, the watch's move of it to the
	// past may have come first and been undone: this check sees it.
	if err := ctx.Err(); err != nil {
		return Response{}, false, fmt.Errorf("httpc: %w", err)
	}
	cn.read = 0
	b := append(cn.head[:0], method...)
	b = append(b, ' ')
	b = append(b, c.uri...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, c.host...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n"...)
	for _, h := range headers {
		b = append(b, h.Name...)
		b = append(b, ": "...)
		b = append(b, h.Value...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	cn.head = b
	bufs := net.Buffers{b, body}
	_, werr := bufs.WriteTo(cn.nc)
	// A receiver may answer (413, say) and close before reading the whole
	// body: the answer is worth more than the write error.
	resp, reusable, err := readResponse(cn.br, c.cfg.MaxResponseBody, time.Now())
	if ctx.Err() != nil {
		reusable = false // the deadline is (or is about to be) spoiled by the cancel
	}
	switch {
	case err != nil && werr != nil:
		return Response{}, false, fmt.Errorf("httpc: writing the request: %w", werr)
	case err != nil:
		return Response{}, false, fmt.Errorf("httpc: reading the response: %w", err)
	case werr != nil:
		reusable = false
	}
	return resp, reusable, nil
}

// get returns the idle connection, or a new one if there is none, it is
// not usable, or fresh is set.
func (c *Client) get(ctx context.Context, deadline time.Time, fresh bool) (cn *conn, reused bool, err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, false, ErrClosed
	}
	if !fresh {
		cn, c.idle = c.idle, nil
	}
	if cn != nil {
		c.busy[cn] = struct{}{}
	}
	c.mu.Unlock()
	if cn != nil {
		if cn.alive() {
			return cn, true, nil
		}
		c.put(cn, false)
	}
	if cn, err = c.dial(ctx, deadline); err != nil {
		return nil, false, err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		cn.close()
		return nil, false, ErrClosed
	}
	c.busy[cn] = struct{}{} // from here Close can abort the handshake
	c.mu.Unlock()
	if err := c.handshake(ctx, cn, deadline); err != nil {
		c.put(cn, false)
		return nil, false, err
	}
	return cn, false, nil
}

// put gives back a connection Do is done with: kept if reusable and no
// other is kept, else closed.
func (c *Client) put(cn *conn, reusable bool) {
	c.mu.Lock()
	delete(c.busy, cn)
	if reusable && !c.closed && c.idle == nil {
		c.idle = cn
		cn = nil
	}
	c.mu.Unlock()
	if cn != nil {
		cn.close()
	}
}

// Close closes the connections, aborting the requests in flight, and
// makes later calls to Do fail with ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.idle != nil {
		c.idle.close()
		c.idle = nil
	}
	for cn := range c.busy {
		cn.raw.Close() // its Do owns the watch, and ends it in put
	}
	return nil
}

// conn is one connection to the receiver (through the proxy, if any).
type conn struct {
	nc   net.Conn // TLS over raw, or raw
	raw  net.Conn
	br   *bufio.Reader // reads from the conn itself, to count
	read int64         // bytes read since the request was written
	head []byte        // the request head, reused

	// The context whose cancel aborts what is under way (see watch).
	done  <-chan struct{}
	stop  func() bool
	fired chan struct{} // closed once the cancel has moved the deadline
}

// watch makes the cancel of ctx abort what is under way on cn: the
// connection's deadline moves to the past. The watch stays while the
// caller passes contexts with the same Done channel (the sender passes one
// for its whole life), so that a request allocates no watch of its own.
func (cn *conn) watch(ctx context.Context) {
	done := ctx.Done()
	if done == cn.done {
		return // if that context was cancelled, ctx.Err() says so
	}
	cn.unwatch()
	if done != nil {
		fired := make(chan struct{})
		cn.done, cn.fired = done, fired
		cn.stop = context.AfterFunc(ctx, func() {
			cn.nc.SetDeadline(aLongTimeAgo)
			close(fired)
		})
	}
}

// unwatch ends the watch. If its context was cancelled, it waits until the
// deadline has moved, so that the caller's next SetDeadline comes after.
func (cn *conn) unwatch() {
	if cn.stop != nil && !cn.stop() {
		<-cn.fired
	}
	cn.done, cn.stop, cn.fired = nil, nil, nil
}

// close closes the TCP connection at once. A TLS close_notify alert is not
// sent: tls.Conn.Close may block 5 s on it, past the request's deadline, and
// HTTP/1.1 framing does not need it.
func (cn *conn) close() {
	cn.unwatch()
	cn.raw.Close()
}

func (cn *conn) Read(p []byte) (int, error) {
	n, err := cn.nc.Read(p)
	cn.read += int64(n)
	return n, err
}

// alive tells whether an idle connection may carry a request: nothing
// arrived on it since the last response, neither bytes (a server's 408
// before it closes, which must not be taken for the next answer) nor the
// end of the stream. Bytes may wait in three places: the bufio.Reader, the
// socket (peeked without blocking), and, with TLS, the tls.Conn's own
// buffer (read with a deadline in the past: net.Conn's Read then fails
// without looking at the socket, but tls.Conn first uses what it holds).
func (cn *conn) alive() bool {
	if cn.br.Buffered() > 0 || pending(cn.raw) {
		return false
	}
	if cn.nc == cn.raw {
		return true
	}
	if cn.nc.SetReadDeadline(aLongTimeAgo) != nil {
		return false
	}
	_, err := cn.br.Peek(1)
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// dial opens a TCP connection to the receiver, or to the proxy if any.
func (c *Client) dial(ctx context.Context, deadline time.Time) (*conn, error) {
	d := net.Dialer{Deadline: deadline}
	raw, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, fmt.Errorf("httpc: %w", err)
	}
	cn := &conn{nc: raw, raw: raw}
	cn.br = bufio.NewReaderSize(cn, headLimit)
	return cn, nil
}

// handshake does the proxy's CONNECT and the TLS handshake, as needed.
func (c *Client) handshake(ctx context.Context, cn *conn, deadline time.Time) error {
	if err := cn.raw.SetDeadline(deadline); err != nil {
		return fmt.Errorf("httpc: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { cn.raw.SetDeadline(aLongTimeAgo) })
	defer stop()
	if c.cfg.ProxyURL != nil {
		if err := c.connect(cn); err != nil {
			return err
		}
	}
	if c.https {
		return c.startTLS(ctx, cn)
	}
	return nil
}

// connect asks the proxy for a tunnel to the receiver.
func (c *Client) connect(cn *conn) error {
	b := append([]byte("CONNECT "), c.target...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, c.target...)
	b = append(b, "\r\n"...)
	if c.proxyAuth != "" {
		b = append(b, "Proxy-Authorization: "...)
		b = append(b, c.proxyAuth...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	if _, err := cn.raw.Write(b); err != nil {
		return fmt.Errorf("httpc: proxy %s: %w", c.addr, err)
	}
	h, err := readHead(cn.br, time.Now())
	switch {
	case err != nil:
		return fmt.Errorf("httpc: proxy %s: %w", c.addr, err)
	case h.status/100 != 2:
		return fmt.Errorf("httpc: proxy %s answered CONNECT with %d", c.addr, h.status)
	case cn.br.Buffered() > 0:
		// Bytes after a 2xx to CONNECT belong to the tunnel, but the
		// receiver speaks only when spoken to.
		return fmt.Errorf("httpc: proxy %s sent data after its CONNECT answer", c.addr)
	}
	return nil
}
