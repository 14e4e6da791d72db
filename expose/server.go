package expose

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/url"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/push-gateway/push-gateway/expose/http1"
)

// Server is the daemon's HTTP/1.1 server, for /metrics on TCP and for the
// Pushgateway API on the push socket. It is not net/http: that package
// brings TLS, an HTTP client and MIME handling into the binary (3.5 MB of
// the 8.8 MB it had, nearly all resident on a device) and allocates a few
// KiB per request, which under a steady scrape load keeps the heap at the
// collector's 4 MiB floor. This one speaks just what Prometheus, the
// Pushgateway's clients, curl and socat send: request heads up to
// headLimit per line, bodies with Content-Length or chunked, Expect:
// 100-continue, keep-alive and pipelining, HTTP/1.0. A scrape allocates
// nothing.
type Server struct {
	Handler func(*Response, *Request)
	// ReadHeaderTimeout bounds reading a request's head once its first
	// byte has come; IdleTimeout the wait for the next request on a
	// keep-alive connection; WriteTimeout the writing of one response.
	// Zero means the default.
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	WriteTimeout      time.Duration
	// WriteStallTimeout bounds each write of a response: a client that
	// reads nothing for this long loses the connection. MinWriteRate, in
	// bytes per second, is the slowest a response may go on average after
	// its first WriteStallTimeout. Together they cut a scrape that makes
	// no progress within seconds, long before WriteTimeout, and free what
	// it holds (a copy of the cache, a slot of --web.max-requests-in-flight).
	// Zero means the default.
	WriteStallTimeout time.Duration
	MinWriteRate      int
	// MaxConns bounds the connections that Serve keeps open; 0 means no
	// bound. A connection over it closes the one idle the longest (an
	// idle keep-alive connection, between requests); with none idle, the
	// new one is closed. ServeConn's connections do not count.
	MaxConns int
	// Handshake, if set, runs first on each connection of Serve, in the
	// connection's own goroutine and within ReadHeaderTimeout: it returns
	// the connection to serve (a TLS one) or false to close nc. Meanwhile
	// the connection counts as idle for MaxConns.
	Handshake func(nc net.Conn) (net.Conn, bool)
	// Stats are the server's counters; nil keeps them to itself.
	Stats  *ServerStats
	Logger *slog.Logger
	// BodyTimeout bounds reading a request's body, from the end of its
	// head; zero means DefaultBodyTimeout. A body that times out fails the
	// handler's reads.
	BodyTimeout time.Duration

	mu        sync.Mutex
	closing   bool
	shutting  atomic.Bool // closing, read without the lock by responses
	listeners []net.Listener
	conns     map[*conn]struct{}
	open      int // connections of Serve in conns, less those being closed to make room
	wg        sync.WaitGroup
	done      chan struct{} // closed when Shutdown begins
}

// ServerStats are a Server's counters, read by the self-metrics. The
// 64-bit counters come first for 32-bit ARM and MIPS.
type ServerStats struct {
	Refused atomic.Uint64 // connections closed at accept: MaxConns open, none idle
	Evicted atomic.Uint64 // idle connections closed to make room for a new one
	Stalled atomic.Uint64 // responses cut: the client read too slowly
	Conns   atomic.Int64  // connections open (Serve's), less those being closed to make room
}

// Defaults of Server's timeouts.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultWriteTimeout      = 2 * time.Minute
	DefaultWriteStallTimeout = 5 * time.Second
	DefaultMinWriteRate      = 64 << 10
	DefaultBodyTimeout       = 10 * time.Second
)

// ErrServerClosed is what Serve returns after Shutdown.
var ErrServerClosed = errors.New("server closed")

// Request is one HTTP request. Its strings stay valid after the handler
// returns; Body only until then.
type Request struct {
	Method          string
	Path            string // percent-decoded
	RawQuery        string
	ContentType     string
	ContentEncoding string
	ContentLength   int64 // -1 for a chunked body
	Body            io.Reader
	HTTP10          bool
	// Authorization is the header's value, nil without one; valid only
	// until the handler returns.
	Authorization []byte
}

func (s *Server) init() {
	s.mu.Lock()
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
		s.done = make(chan struct{})
		if s.Stats == nil {
			s.Stats = new(ServerStats)
		}
	}
	s.mu.Unlock()
}

func (s *Server) timeouts() (head, idle, write time.Duration) {
	head, idle, write = s.ReadHeaderTimeout, s.IdleTimeout, s.WriteTimeout
	if head <= 0 {
		head = DefaultReadHeaderTimeout
	}
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	if write <= 0 {
		write = DefaultWriteTimeout
	}
	return head, idle, write
}

// Serve accepts connections on l and serves each until Shutdown, after
// which it returns ErrServerClosed.
func (s *Server) Serve(l net.Listener) error {
	s.init()
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners = append(s.listeners, l)
	s.mu.Unlock()
	var backoff acceptBackoff
	for {
		nc, err := l.Accept()
		if err != nil {
			select {
			case <-s.done:
				return ErrServerClosed
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// EMFILE and the like: back off instead of spinning.
			if !backoff.wait(err, s.logger(), s.done) {
				return ErrServerClosed
			}
			continue
		}
		backoff.reset(s.logger())
		if c := s.newConn(nc, nil, true); c != nil {
			go s.serve(c)
		}
	}
}

// acceptBackoff spaces out the tries after Accept fails (out of file
// descriptors, mostly): from 5 ms, doubling, to a second; it logs once when
// the failures start and once when they end, not at every try.
type acceptBackoff struct {
	delay    time.Duration
	failures int
}

// wait sleeps before the next try, or until done is closed; it tells
// whether to go on.
func (b *acceptBackoff) wait(err error, log *slog.Logger, done <-chan struct{}) bool {
	b.failures++
	if b.delay == 0 {
		b.delay = 5 * time.Millisecond
		log.Warn("cannot accept connections, backing off until it works again", "err", err)
	} else if b.delay *= 2; b.delay > time.Second {
		b.delay = time.Second
	}
	t := time.NewTimer(b.delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}

func (b *acceptBackoff) reset(log *slog.Logger) {
	if b.failures > 0 {
		log.Info("accepting connections again", "failed_accepts", b.failures)
		*b = acceptBackoff{}
	}
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// Shutdown stops the listeners, closes idle connections, lets requests
// being served finish and returns when all connections are closed, or
// closes them when ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		s.shutting.Store(true)
		close(s.done)
	}
	for _, l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		if !c.idleSince.IsZero() {
			c.nc.SetReadDeadline(time.Unix(1, 0))
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		return ctx.Err()
	}
}

// headLimit is the longest request line or header line, and the read
// buffer of a connection.
const headLimit = 4 << 10

// maxHeaders bounds the header lines of a request.
const maxHeaders = 100

// drainLimit is how much of a body the handler did not read is skipped to
// keep the connection; a longer one closes it.
const drainLimit = 256 << 10

// conn is one connection's state, pooled.
type conn struct {
	s        *Server
	nc       net.Conn
	in       prefixReader
	br       *bufio.Reader
	req      Request
	body     body
	resp     Response
	lastPath string // the path of the last request, reused to not allocate
	auth     []byte // Request.Authorization's memory
	closeReq bool   // the request said "Connection: close"
	keep10   bool   // an HTTP/1.0 request said "Connection: keep-alive"
	// Under the server's lock: since when the connection has waited for a
	// request (zero while one is served), whether Serve counts it in
	// MaxConns, and whether it was closed to make room.
	idleSince time.Time
	headSince time.Time // when the head being read began; zero otherwise
	served    bool      // a response was sent: an idle keep-alive connection
	counted   bool
	evicted   bool
}

var connPool sync.Pool

// prefixReader replays bytes read before the connection came to the
// server (the push socket sniffs them) before reading on.
type prefixReader struct {
	prefix []byte
	r      io.Reader
}

func (p *prefixReader) Read(b []byte) (int, error) {
	if len(p.prefix) > 0 {
		n := copy(b, p.prefix)
		p.prefix = p.prefix[n:]
		return n, nil
	}
	return p.r.Read(b)
}

// ServeConn serves the requests on nc, whose first bytes, already read,
// are prefix, until the client or the server closes it; then it closes nc.
// With a prefix, the read deadline that the caller set when the first
// byte came bounds the rest of the first request's head.
func (s *Server) ServeConn(nc net.Conn, prefix []byte) {
	if c := s.newConn(nc, prefix, false); c != nil {
		s.serve(c)
	}
}

// newConn registers nc, or closes it and returns nil when the server is
// shutting down, or when counted (a connection of Serve) finds MaxConns
// open and none of them idle.
func (s *Server) newConn(nc net.Conn, prefix []byte, counted bool) *conn {
	s.init()
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		nc.Close()
		return nil
	}
	if counted && s.MaxConns > 0 && s.open >= s.MaxConns && !s.evictIdle() {
		s.mu.Unlock()
		s.Stats.Refused.Add(1)
		nc.Close()
		return nil
	}
	c, _ := connPool.Get().(*conn)
	if c == nil {
		c = &conn{br: bufio.NewReaderSize(nil, headLimit)}
		c.resp.c = c
		c.body.c = c
	}
	c.s, c.nc = s, nc
	c.in = prefixReader{prefix: prefix, r: nc}
	c.br.Reset(&c.in)
	c.idleSince, c.headSince, c.served, c.counted, c.evicted = time.Time{}, time.Time{}, false, counted, false
	c.resp.started = false // of the pooled conn's last response: see idle
	s.conns[c] = struct{}{}
	if counted {
		s.open++
		s.Stats.Conns.Add(1)
	}
	s.wg.Add(1)
	s.mu.Unlock()
	return c
}

// evictIdle closes a counted connection to make room for a new one, and
// tells whether there was one to close. In this order: one that has sent
// no request yet and has waited a second or more (for its first byte, or
// in its TLS handshake), the one waiting the longest; then one whose
// request head has been coming for a second or more (a client that
// trickles a head cannot keep its place), the slowest first; then the
// keep-alive connection idle the longest; last, one that connected less
// than a second ago and has not sent its request yet. One in the middle of
// a request is never closed. The grace of a second keeps a client that has
// just connected (a scrape about to send its request) from being closed by
// the next connection of a flood. The caller holds s.mu.
func (s *Server) evictIdle() bool {
	now := time.Now()
	var stale, slow, kept, fresh *conn
	older := func(a, b *conn) bool { return b == nil || a.idleSince.Before(b.idleSince) }
	for c := range s.conns {
		switch {
		case !c.counted || c.evicted:
		case !c.idleSince.IsZero() && !c.served && now.Sub(c.idleSince) >= stalledHead:
			if older(c, stale) {
				stale = c
			}
		case !c.idleSince.IsZero() && !c.served:
			if older(c, fresh) {
				fresh = c
			}
		case !c.idleSince.IsZero():
			if older(c, kept) {
				kept = c
			}
		case !c.headSince.IsZero() && now.Sub(c.headSince) >= stalledHead:
			if slow == nil || c.headSince.Before(slow.headSince) {
				slow = c
			}
		}
	}
	var victim *conn
	for _, v := range [...]*conn{stale, slow, kept, fresh} {
		if v != nil {
			victim = v
			break
		}
	}
	if victim == nil {
		return false
	}
	// Its goroutine, waiting for a request or reading one, wakes up to the
	// closed connection and cleans up; the room is free now.
	victim.evicted = true
	s.open--
	s.Stats.Conns.Add(-1) // it holds no slot from now: the gauge is open's
	victim.nc.Close()
	s.Stats.Evicted.Add(1)
	return true
}

// stalledHead is how long a request head may take to come, or a new
// connection wait without sending one, before it goes first to make room.
const stalledHead = time.Second

// serve serves c's requests until the client or the server closes it.
func (s *Server) serve(c *conn) {
	nc := c.nc
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		if c.counted && !c.evicted {
			s.open--
			s.Stats.Conns.Add(-1)
		}
		s.mu.Unlock()
		nc.Close()
		if p := recover(); p != nil {
			// A bug, not the client's doing: the daemon goes on, and
			// this connection's state, unknown now, is not reused.
			s.logger().Error("panic serving HTTP", "panic", p, "stack", string(debug.Stack()))
		} else {
			c.s, c.nc, c.in = nil, nil, prefixReader{}
			c.br.Reset(nil)
			connPool.Put(c)
		}
		s.wg.Done()
	}()
	head, idle, write := s.timeouts()
	if s.Handshake != nil && c.counted {
		if !c.idle(head) {
			return
		}
		nc.SetWriteDeadline(time.Now().Add(head))
		tc, ok := s.Handshake(nc)
		if !ok {
			return
		}
		s.mu.Lock()
		c.nc, nc = tc, tc
		s.mu.Unlock()
		c.in.r = tc
	}
	bodyWait := s.BodyTimeout
	if bodyWait <= 0 {
		bodyWait = DefaultBodyTimeout
	}
	started := len(c.in.prefix) > 0   // the first head began under the caller's deadline
	for wait := head; ; wait = idle { // a new connection gets the head's time to start
		if !started && !c.idle(wait) {
			return
		}
		if _, err := c.br.Peek(1); err != nil {
			return // closed, idle too long, or shutting down
		}
		c.active()
		now := time.Now()
		if !started {
			nc.SetReadDeadline(now.Add(head))
		}
		started = false
		code, msg := c.readRequest()
		c.headRead()
		if code != 0 {
			if code < 0 {
				return // the client went away mid-head
			}
			s.logger().Debug("bad HTTP request", "code", code, "err", msg)
			nc.SetWriteDeadline(now.Add(write))
			// With a body even to what looked like HEAD: the request is
			// not understood, and the connection closes after it.
			c.resp.reset(false, true, c.req.HTTP10)
			c.resp.arm(now)
			c.resp.Error(code, msg)
			c.resp.finish()
			c.linger()
			return
		}
		c.resp.reset(c.req.Method == "HEAD", c.closeReq || (c.req.HTTP10 && !c.keep10), c.req.HTTP10)
		c.resp.arm(now)
		if c.body.eof {
			nc.SetReadDeadline(now.Add(idle))
		} else {
			// A body gets seconds, not the idle timeout: a client that
			// stalls mid-body is cut off soon (issue 12, point 3).
			nc.SetReadDeadline(time.Now().Add(bodyWait))
		}
		nc.SetWriteDeadline(now.Add(write))
		s.Handler(&c.resp, &c.req)
		if c.body.expect || (!c.body.eof && (c.body.chunked || c.body.remain > drainLimit)) {
			// The client waits for a 100 Continue that never came, and may
			// send the body or not; or more of the body is left than is
			// worth skipping: the connection cannot be reused, and the
			// response says so.
			c.resp.closeConn = true
		}
		c.resp.finish()
		if cap(c.resp.out) > 64<<10 || cap(c.resp.buf) > 64<<10 {
			c.resp.out, c.resp.buf = nil, nil // a large response's buffers go
		}
		if c.resp.err != nil {
			return
		}
		if c.resp.closeConn || !c.body.drain() {
			// Even with nothing left in br, the kernel may hold what the
			// client sent since (a pipelined request): see linger.
			c.linger()
			return
		}
	}
}

// linger closes the sending side and reads what the client still sends,
// for up to lingerTime and lingerLimit bytes, before the connection is
// closed (RFC 9112, 9.6): closing a socket with unread data resets it,
// and the reset destroys what of the response the kernel has not yet
// delivered. The client may be writing a body we refused, or may have
// pipelined a request after one that asked to close; it closes its side
// once it has read the response, which ends the wait at once.
func (c *conn) linger() {
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	c.nc.SetReadDeadline(time.Now().Add(lingerTime))
	for total := 0; total < lingerLimit; {
		n, err := c.br.Discard(headLimit) // br's buffer: no allocation
		total += n
		if err != nil {
			return
		}
	}
}

// lingerTime and lingerLimit bound linger: net/http waits 500 ms too.
const (
	lingerTime  = 500 * time.Millisecond
	lingerLimit = 4 << 20
)

// idle marks c as waiting for a request, unless the server is shutting
// down: Shutdown wakes idle connections under the same lock, so none
// sleeps through it.
func (c *conn) idle(timeout time.Duration) bool {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if c.s.closing {
		return false
	}
	now := time.Now()
	c.idleSince = now
	c.served = c.served || c.resp.started
	c.nc.SetReadDeadline(now.Add(timeout))
	return true
}

// active marks c as reading a request head, from now.
func (c *conn) active() {
	c.s.mu.Lock()
	c.idleSince, c.headSince = time.Time{}, time.Now()
	c.s.mu.Unlock()
}

// headRead marks c as done with reading its request head.
func (c *conn) headRead() {
	c.s.mu.Lock()
	c.headSince = time.Time{}
	c.s.mu.Unlock()
}

// readLine returns the next line of the head without its line ending. The
// slice is valid until the next read.
func (c *conn) readLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// readRequest reads a request head into c.req and sets up its body. It
// returns 0, or the status to refuse the request with and why; -1 when
// the connection failed.
func (c *conn) readRequest() (int, string) {
	r := &c.req
	*r = Request{Body: &c.body}
	c.body = body{c: c}
	c.closeReq, c.keep10 = false, false
	var line []byte
	var err error
	for i := 0; ; i++ { // a client may send an empty line between requests
		if line, err = c.readLine(); err != nil || len(line) > 0 || i > 0 {
			break
		}
	}
	if err != nil {
		if err == bufio.ErrBufferFull {
			return 414, "request line too long"
		}
		return -1, ""
	}
	sp1 := bytes.IndexByte(line, ' ')
	sp2 := bytes.LastIndexByte(line, ' ')
	if sp1 <= 0 || sp2 <= sp1 {
		return 400, "malformed request line"
	}
	method, target, proto := line[:sp1], line[sp1+1:sp2], line[sp2+1:]
	switch {
	case string(proto) == "HTTP/1.0":
		r.HTTP10 = true
	case len(proto) == 8 && string(proto[:7]) == "HTTP/1." && proto[7] >= '1' && proto[7] <= '9':
		// HTTP/1.1, or a later minor version answered as 1.1
	case bytes.HasPrefix(proto, []byte("HTTP/")):
		return 505, "HTTP version not supported"
	default:
		return 400, "malformed request line"
	}
	if r.Method = knownMethod(method); r.Method == "" {
		if !http1.IsToken(method) {
			return 400, "malformed method"
		}
		r.Method = string(method)
	}
	if code, msg := c.parseTarget(target); code != 0 {
		return code, msg
	}

	contentLength, chunked, expect := int64(-1), false, false
	for n := 0; ; n++ {
		if line, err = c.readLine(); err != nil {
			if err == bufio.ErrBufferFull {
				return 431, "header line too long"
			}
			return -1, ""
		}
		if len(line) == 0 {
			break
		}
		if n == maxHeaders {
			return 431, "too many header lines"
		}
		name, value, ok := headerField(line)
		if !ok {
			return 400, "malformed header line"
		}
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			v, ok := http1.ParseLength(value)
			if !ok || (contentLength >= 0 && v != contentLength) {
				return 400, "invalid Content-Length"
			}
			contentLength = v
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			if !bytes.EqualFold(value, []byte("chunked")) || chunked {
				return 501, "unsupported Transfer-Encoding"
			}
			chunked = true
		case bytes.EqualFold(name, []byte("Connection")):
			c.closeReq = c.closeReq || http1.HasToken(value, "close")
			c.keep10 = c.keep10 || http1.HasToken(value, "keep-alive")
		case bytes.EqualFold(name, []byte("Expect")) && !r.HTTP10: // 1.0 ignores it
			if !bytes.EqualFold(value, []byte("100-continue")) {
				return 417, "unsupported Expect"
			}
			expect = true
		case bytes.EqualFold(name, []byte("Authorization")):
			c.auth = append(c.auth[:0], value...)
			r.Authorization = c.auth
		case bytes.EqualFold(name, []byte("Content-Type")):
			r.ContentType = string(value)
		case bytes.EqualFold(name, []byte("Content-Encoding")):
			if r.ContentEncoding != "" { // lines of a list add up (RFC 9110, 5.3)
				r.ContentEncoding += ", " + string(value)
			} else {
				r.ContentEncoding = string(value)
			}
		}
	}
	switch {
	case chunked && r.HTTP10:
		return 400, "chunked body in HTTP/1.0"
	case chunked:
		r.ContentLength = -1
		c.body.chunked = true
		// With a Content-Length too, the framing is in doubt: the
		// connection ends after the response (RFC 9112, 6.1).
		c.closeReq = c.closeReq || contentLength >= 0
	case contentLength > 0:
		r.ContentLength = contentLength
		c.body.remain = contentLength
	default:
		c.body.eof = true
	}
	c.body.expect = expect && !c.body.eof
	return 0, ""
}

// headerField splits a header or trailer line into its name, a token, and
// its value without the whitespace around it. A line that starts with
// whitespace (obs-fold, RFC 9112, 5.2), has whitespace before the colon,
// or a control character other than HTAB in its value (RFC 9110, 5.5: a
// bare CR or a NUL) is malformed: a proxy in front may read it otherwise.
func headerField(line []byte) (name, value []byte, ok bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || !http1.IsToken(line[:colon]) {
		return nil, nil, false
	}
	value = line[colon+1:]
	if !http1.ValidValue(value) {
		return nil, nil, false
	}
	return line[:colon], bytes.Trim(value, " \t"), true
}

// parseTarget sets the request's path and query from its target: a path
// (origin form), an absolute URL (as sent to proxies), or "*".
func (c *conn) parseTarget(target []byte) (int, string) {
	r := &c.req
	for _, b := range target {
		if b <= ' ' || b == 0x7f {
			return 400, "malformed request target"
		}
	}
	if i := bytes.Index(target, []byte("://")); i > 0 && target[0] != '/' {
		rest := target[i+3:]
		if j := bytes.IndexAny(rest, "/?"); j < 0 {
			target = []byte("/")
		} else if rest[j] == '?' {
			target = append([]byte("/"), rest[j:]...)
		} else {
			target = rest[j:]
		}
	}
	if len(target) == 0 || (target[0] != '/' && string(target) != "*") {
		return 400, "malformed request target"
	}
	path := target
	if i := bytes.IndexByte(target, '?'); i >= 0 {
		path = target[:i]
		if q := target[i+1:]; len(q) > 0 {
			r.RawQuery = string(q)
		}
	}
	if bytes.IndexByte(path, '%') >= 0 {
		p, err := url.PathUnescape(string(path))
		if err != nil {
			return 400, "malformed request target: " + err.Error()
		}
		r.Path = p
		return 0, ""
	}
	if string(path) != c.lastPath {
		c.lastPath = string(path)
	}
	r.Path = c.lastPath
	return 0, ""
}

func knownMethod(m []byte) string {
	switch string(m) {
	case "GET":
		return "GET"
	case "HEAD":
		return "HEAD"
	case "PUT":
		return "PUT"
	case "POST":
		return "POST"
	case "DELETE":
		return "DELETE"
	case "PATCH":
		return "PATCH"
	case "OPTIONS":
		return "OPTIONS"
	}
	return ""
}

// body reads a request body framed by Content-Length or chunked encoding.
type body struct {
	c       *conn
	remain  int64 // bytes left in the body, or in the current chunk
	chunked bool
	started bool  // a chunked body: the first chunk's size was read
	excess  int64 // a chunked body: framing read beyond chunkOverhead
	eof     bool
	expect  bool // 100 Continue is owed before the first read
	err     error
}

var (
	errChunk         = errors.New("malformed chunked body")
	errChunkOverhead = errors.New("chunked body: more chunk extensions than data")
)

// A chunked body may carry chunkOverhead bytes of framing per chunk plus
// twice its data in extensions, and maxChunkExcess bytes beyond that in
// all: enough for a client that streams one byte per chunk, and no way to
// make the server read megabytes of extensions for a few bytes of data.
// These are net/http's bounds (after CVE-2023-39326).
const (
	chunkOverhead  = 16
	maxChunkExcess = 16 << 10
)

func (b *body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.eof {
		return 0, io.EOF
	}
	if b.expect {
		b.expect = false
		if !b.c.resp.started {
			if _, err := b.c.nc.Write([]byte("HTTP/1.1 100 Continue\r\n\r\n")); err != nil {
				b.err = err
				return 0, err
			}
		}
	}
	if b.chunked && b.remain == 0 {
		if err := b.nextChunk(); err != nil {
			b.err = err
			return 0, err
		}
		if b.eof {
			return 0, io.EOF
		}
	}
	if int64(len(p)) > b.remain {
		p = p[:b.remain]
	}
	n, err := b.c.br.Read(p)
	b.remain -= int64(n)
	if b.remain == 0 && !b.chunked {
		b.eof = true
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		b.err = err
	}
	return n, err
}

// nextChunk reads up to the next chunk's data: the line ending of the one
// before, and the size line. At the last chunk it reads the trailers.
func (b *body) nextChunk() error {
	if b.started {
		if line, err := b.c.readChunkLine(); err != nil || len(line) != 0 {
			return chunkError(err)
		}
	}
	b.started = true
	line, err := b.c.readChunkLine()
	if err != nil {
		return chunkError(err)
	}
	b.excess += int64(len(line)) + 2 // and the CRLF after the data
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimRight(line, " \t")
	n, ok := http1.ParseHex(line)
	if !ok {
		return errChunk
	}
	if b.excess = max(0, b.excess-chunkOverhead-2*n); b.excess > maxChunkExcess {
		return errChunkOverhead
	}
	if n > 0 {
		b.remain = n
		return nil
	}
	for i := 0; ; i++ { // trailers, checked as header lines and ignored
		line, err := b.c.readChunkLine()
		if err != nil {
			return chunkError(err)
		}
		if len(line) == 0 {
			b.eof = true
			return nil
		}
		if _, _, ok := headerField(line); !ok || i == maxHeaders {
			return errChunk
		}
	}
}

// readChunkLine returns the next line of a chunked body's framing without
// its CRLF. Unlike the head's lines, these must end in CRLF, with no CR
// before (RFC 9112, 7.1 and errata 7633; Go's CVE-2025-22871): a proxy
// that ends them at a bare LF, or a bare CR, would see another body.
func (c *conn) readChunkLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return nil, err
	}
	n := len(line)
	if n < 2 || bytes.IndexByte(line, '\r') != n-2 {
		return nil, errChunk
	}
	return line[:n-2], nil
}

// chunkError is what a chunked body's reader returns for err, met reading
// its framing: the client's mistake, or the connection's end.
func chunkError(err error) error {
	switch err {
	case nil, bufio.ErrBufferFull:
		return errChunk // a non-empty line after the data; a line too long
	case io.EOF:
		return io.ErrUnexpectedEOF
	}
	return err
}

// drain skips what the handler left of the body, so that the connection
// can carry the next request. It tells whether it can.
func (b *body) drain() bool {
	if b.eof {
		return true
	}
	if b.expect || b.err != nil {
		return false // the client may or may not send the body: close
	}
	var buf [512]byte
	for total := 0; total <= drainLimit; {
		n, err := b.Read(buf[:])
		total += n
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
	}
	return false
}

// Response writes a response. A body of up to bufferLimit bytes is sent
// with its Content-Length in one write when the handler returns; a larger
// one, whose length the handler did not set, is sent in chunks (or, to an
// HTTP/1.0 client, until the connection closes).
type Response struct {
	c         *conn
	w         io.Writer // the connection; a test may set another
	status    int
	header    []byte // "Name: value\r\n" lines set by the handler
	length    int64  // Content-Length the handler set, or -1
	written   int64
	buf       []byte // the body while not started
	out       []byte // framing and small responses, reused
	started   bool
	chunked   bool
	head      bool // a HEAD request: no body
	http10    bool
	closeConn bool
	err       error
	// The deadlines of each write (see Server.WriteStallTimeout): armed
	// when the response writes to its connection.
	armed bool
	begin time.Time // when the response began: its first write
	end   time.Time // when the request was read + WriteTimeout
	stall time.Duration
	rate  float64 // bytes per second
	sent  int64   // bytes written, head and framing included
	// writing is when the write under way began, in nanoseconds since
	// monoBase plus one; 0 between writes. Read by other scrapes: see
	// stalled.
	writing atomic.Int64
}

// bufferLimit is the largest body sent with a computed Content-Length.
const bufferLimit = 8 << 10

// s is the response's server.
func (w *Response) s() *Server { return w.c.s }

func (w *Response) reset(head, closeConn, http10 bool) {
	*w = Response{c: w.c, w: w.c.nc, header: w.header[:0], buf: w.buf[:0], out: w.out[:0], status: 200, length: -1,
		head: head, closeConn: closeConn, http10: http10}
}

// arm gives each write of the response its deadline, counted from now.
func (w *Response) arm(now time.Time) {
	s := w.s()
	_, _, write := s.timeouts()
	w.stall, w.rate = s.WriteStallTimeout, float64(s.MinWriteRate)
	if w.stall <= 0 {
		w.stall = DefaultWriteStallTimeout
	}
	if w.rate <= 0 {
		w.rate = DefaultMinWriteRate
	}
	w.armed, w.begin, w.end = true, now, now.Add(write)
}

// write sends p on the connection. Each write must end within the stall
// timeout, and the response as a whole keep to the minimum rate after its
// first stall timeout, or the connection is cut: a client that does not
// read cannot hold a scrape's memory and slot for minutes.
func (w *Response) write(p []byte) error {
	if w.armed {
		now := time.Now()
		if w.sent == 0 {
			// The rate counts from the first byte of the response: the
			// time the handler took first (a body read, a wait for a
			// slot or for bcrypt) is not the client's doing.
			w.begin = now
		}
		d := now.Add(w.stall)
		if r := w.begin.Add(w.stall + time.Duration(float64(w.sent+int64(len(p)))/w.rate*float64(time.Second))); r.Before(d) {
			d = r
		}
		if w.end.Before(d) {
			d = w.end
		}
		w.c.nc.SetWriteDeadline(d)
	}
	w.writing.Store(int64(time.Since(monoBase)) + 1)
	n, err := w.w.Write(p)
	w.writing.Store(0)
	w.sent += int64(n)
	if err != nil {
		w.err = err
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			w.s().Stats.Stalled.Add(1)
		}
	}
	return err
}

// stalled tells how long the write under way has waited for the client to
// read, at now; 0 when none is under way. Safe from other goroutines.
func (w *Response) stalled(now time.Time) time.Duration {
	if t := w.writing.Load(); t != 0 {
		return now.Sub(monoBase) - time.Duration(t-1)
	}
	return 0
}

// cut ends the write under way and every later one with a timeout: the
// handler sees an error and returns. Safe from other goroutines while the
// request is served.
func (w *Response) cut() {
	w.c.nc.SetWriteDeadline(time.Unix(1, 0))
}

// monoBase is the origin of the times kept in atomics: durations since it
// are read on the monotonic clock, which a clock step (NTP on a device
// without a real-time clock) does not move.
var monoBase = time.Now()

var lastChunk = []byte("0\r\n\r\n")

// SetHeader adds a header line. Content-Length is taken as the body's
// length; "Connection: close" closes the connection after the response.
// Headers set after the first byte of the body are ignored.
func (w *Response) SetHeader(name, value string) {
	if w.started {
		return
	}
	switch name {
	case "Content-Length":
		if n, ok := http1.ParseLength([]byte(value)); ok {
			w.length = n
		}
		return
	case "Connection":
		if value == "close" {
			w.closeConn = true
		}
		return
	}
	w.header = removeHeader(w.header, name)
	w.header = append(w.header, name...)
	w.header = append(w.header, ": "...)
	w.header = append(w.header, value...)
	w.header = append(w.header, "\r\n"...)
}

// removeHeader removes the line of the header name from lines.
func removeHeader(lines []byte, name string) []byte {
	for i := 0; i < len(lines); {
		end := i + bytes.Index(lines[i:], []byte("\r\n")) + 2
		if l := lines[i:end]; len(l) > len(name) && string(l[:len(name)]) == name && l[len(name)] == ':' {
			return append(lines[:i], lines[end:]...)
		}
		i = end
	}
	return lines
}

// SetContentLength sets the body's length, as SetHeader("Content-Length")
// does without formatting it.
func (w *Response) SetContentLength(n int64) {
	if !w.started && n >= 0 {
		w.length = n
	}
}

// WriteHeader sets the status code; it is 200 unless set before the
// first byte of the body.
func (w *Response) WriteHeader(code int) {
	if !w.started {
		w.status = code
	}
}

// Error answers with code and msg as a plain-text body.
func (w *Response) Error(code int, msg string) {
	w.SetHeader("Content-Type", "text/plain; charset=utf-8")
	w.SetHeader("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write([]byte(msg))
	w.Write([]byte{'\n'})
}

func (w *Response) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.head || !bodyAllowed(w.status) {
		w.written += int64(len(p))
		return len(p), nil
	}
	if len(p) == 0 {
		return 0, nil // nothing to send; as a chunk it would end the body
	}
	if !w.started {
		if w.length < 0 && len(w.buf)+len(p) <= bufferLimit {
			w.buf = append(w.buf, p...)
			w.written += int64(len(p))
			return len(p), nil
		}
		if w.length >= 0 && int64(len(w.buf)+len(p)) == w.length && len(w.buf) == 0 && w.length <= 64<<10 {
			// The whole body of a known length: one write with the head.
			w.writeHead(-1, p)
			w.written += int64(len(p))
			return len(p), w.err
		}
		w.chunked = w.length < 0 && !w.http10
		if w.length < 0 && w.http10 {
			w.closeConn = true // the end of the body is the end of the connection
		}
		buffered := w.buf
		w.buf = w.buf[:0]
		w.writeHead(-1, nil)
		if len(buffered) > 0 {
			if err := w.send(buffered); err != nil {
				return 0, err
			}
		}
	}
	if w.length >= 0 && w.written+int64(len(p)) > w.length {
		w.closeConn = true
		return 0, errors.New("body longer than its Content-Length")
	}
	if err := w.send(p); err != nil {
		return 0, err
	}
	w.written += int64(len(p))
	return len(p), nil
}

// send writes body bytes, as a chunk when the body is chunked.
func (w *Response) send(p []byte) error {
	if w.chunked {
		w.out = strconv.AppendInt(w.out[:0], int64(len(p)), 16)
		w.out = append(w.out, "\r\n"...)
		w.out = append(w.out, p...)
		w.out = append(w.out, "\r\n"...)
		p = w.out
	}
	return w.write(p)
}

// bodyAllowed tells whether a response of status code may have a body.
func bodyAllowed(code int) bool {
	return code >= 200 && code != 204 && code != 304
}

// writeHead writes the status line and headers, with length >= 0 as the
// Content-Length, and body after them in the same write.
func (w *Response) writeHead(length int64, body []byte) {
	w.started = true
	if w.s().shutting.Load() {
		w.closeConn = true // say so: the server closes after this response
	}
	o := append(w.out[:0], "HTTP/1.1 "...)
	o = strconv.AppendInt(o, int64(w.status), 10)
	o = append(o, ' ')
	o = append(o, statusText(w.status)...)
	o = append(o, "\r\nDate: "...)
	o = time.Now().UTC().AppendFormat(o, "Mon, 02 Jan 2006 15:04:05 GMT")
	o = append(o, "\r\n"...)
	o = append(o, w.header...)
	switch {
	case !bodyAllowed(w.status):
	case w.length >= 0:
		length = w.length
		fallthrough
	case length >= 0:
		o = append(o, "Content-Length: "...)
		o = strconv.AppendInt(o, length, 10)
		o = append(o, "\r\n"...)
	case w.chunked:
		o = append(o, "Transfer-Encoding: chunked\r\n"...)
	}
	if w.closeConn {
		o = append(o, "Connection: close\r\n"...)
	} else if w.http10 {
		o = append(o, "Connection: keep-alive\r\n"...)
	}
	o = append(o, "\r\n"...)
	if !w.head && bodyAllowed(w.status) {
		o = append(o, body...)
	}
	w.out = o
	w.write(o)
}

// finish completes the response once the handler has returned.
func (w *Response) finish() {
	switch {
	case !w.started:
		n := int64(len(w.buf))
		if w.head && w.written == 0 {
			n = -1 // the length is the handler's to tell, if it wants
		} else if w.head {
			n = w.written
		}
		if w.length >= 0 && w.length != n && !w.head {
			w.closeConn = true // the handler promised a length it did not write
		}
		w.writeHead(n, w.buf)
	case w.chunked:
		if w.err == nil {
			w.write(lastChunk)
		}
	case w.length >= 0 && w.written != w.length:
		w.closeConn = true
	}
}

func statusText(code int) string {
	switch code {
	case 100:
		return "Continue"
	case 200:
		return "OK"
	case 202:
		return "Accepted"
	case 204:
		return "No Content"
	case 400:
		return "Bad Request"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 408:
		return "Request Timeout"
	case 413:
		return "Request Entity Too Large"
	case 414:
		return "URI Too Long"
	case 415:
		return "Unsupported Media Type"
	case 417:
		return "Expectation Failed"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 503:
		return "Service Unavailable"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Status " + strconv.Itoa(code)
}
