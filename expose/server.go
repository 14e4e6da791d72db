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
	Logger            *slog.Logger
	// BodyTimeout bounds reading a request's body, from the end of its
	// head; zero means DefaultBodyTimeout. A body that times out fails the
	// handler's reads.
	BodyTimeout time.Duration

	mu        sync.Mutex
	closing   bool
	shutting  atomic.Bool // closing, read without the lock by responses
	listeners []net.Listener
	conns     map[*conn]bool // true while waiting for a request
	wg        sync.WaitGroup
	done      chan struct{} // closed when Shutdown begins
}

// Defaults of Server's timeouts.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultWriteTimeout      = 2 * time.Minute
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
}

func (s *Server) init() {
	s.mu.Lock()
	if s.conns == nil {
		s.conns = make(map[*conn]bool)
		s.done = make(chan struct{})
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
	for {
		c, err := l.Accept()
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
			s.logger().Warn("cannot accept connection", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		go s.ServeConn(c, nil)
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
	for c, idle := range s.conns {
		if idle {
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
	closeReq bool   // the request said "Connection: close"
	keep10   bool   // an HTTP/1.0 request said "Connection: keep-alive"
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
	s.init()
	c, _ := connPool.Get().(*conn)
	if c == nil {
		c = &conn{br: bufio.NewReaderSize(nil, headLimit)}
		c.resp.c = c
		c.body.c = c
	}
	c.s, c.nc = s, nc
	c.in = prefixReader{prefix: prefix, r: nc}
	c.br.Reset(&c.in)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		nc.Close()
		return
	}
	s.conns[c] = false
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
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
	bodyWait := s.BodyTimeout
	if bodyWait <= 0 {
		bodyWait = DefaultBodyTimeout
	}
	started := len(prefix) > 0        // the first head began under the caller's deadline
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
		if code != 0 {
			if code < 0 {
				return // the client went away mid-head
			}
			s.logger().Debug("bad HTTP request", "code", code, "err", msg)
			nc.SetWriteDeadline(now.Add(write))
			// With a body even to what looked like HEAD: the request is
			// not understood, and the connection closes after it.
			c.resp.reset(false, true, c.req.HTTP10)
			c.resp.Error(code, msg)
			c.resp.finish()
			c.linger()
			return
		}
		c.resp.reset(c.req.Method == "HEAD", c.closeReq || (c.req.HTTP10 && !c.keep10), c.req.HTTP10)
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
		if c.resp.closeConn && c.body.eof && c.br.Buffered() == 0 {
			return
		}
		if c.resp.closeConn || !c.body.drain() {
			c.linger() // a body is left unread
			return
		}
	}
}

// linger closes the sending side and reads what the client still sends
// for a moment before the connection is closed: closing a socket with
// unread data resets it, and the client, still writing a body we refused,
// could lose the response that says why.
func (c *conn) linger() {
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	c.nc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	var buf [4096]byte
	for total := 0; total < 4<<20; {
		n, err := c.nc.Read(buf[:])
		if err != nil {
			return
		}
		total += n
	}
}

// idle marks c as waiting for a request, unless the server is shutting
// down: Shutdown wakes idle connections under the same lock, so none
// sleeps through it.
func (c *conn) idle(timeout time.Duration) bool {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if c.s.closing {
		return false
	}
	c.s.conns[c] = true
	c.nc.SetReadDeadline(time.Now().Add(timeout))
	return true
}

func (c *conn) active() {
	c.s.mu.Lock()
	c.s.conns[c] = false
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
		if !isToken(method) {
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
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return 400, "malformed header line"
		}
		name, value := line[:colon], bytes.Trim(line[colon+1:], " \t")
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			v, ok := parseLength(value)
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
			c.closeReq = c.closeReq || hasToken(value, "close")
			c.keep10 = c.keep10 || hasToken(value, "keep-alive")
		case bytes.EqualFold(name, []byte("Expect")) && !r.HTTP10: // 1.0 ignores it
			if !bytes.EqualFold(value, []byte("100-continue")) {
				return 417, "unsupported Expect"
			}
			expect = true
		case bytes.EqualFold(name, []byte("Content-Type")):
			r.ContentType = string(value)
		case bytes.EqualFold(name, []byte("Content-Encoding")):
			r.ContentEncoding = string(value)
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

// isToken tells whether b is an RFC 9110 token: a method or a header name.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, ch := range b {
		if ch >= 0x80 || !tokenChar[ch] {
			return false
		}
	}
	return true
}

var tokenChar = func() (t [128]bool) {
	for ch := '0'; ch <= '9'; ch++ {
		t[ch] = true
	}
	for ch := 'a'; ch <= 'z'; ch++ {
		t[ch], t[ch-'a'+'A'] = true, true
	}
	for _, ch := range "!#$%&'*+-.^_`|~" {
		t[ch] = true
	}
	return t
}()

// hasToken tells whether the comma-separated list v holds tok, in any case.
func hasToken(v []byte, tok string) bool {
	for len(v) > 0 {
		item := v
		if i := bytes.IndexByte(v, ','); i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			v = nil
		}
		if bytes.EqualFold(bytes.Trim(item, " \t"), []byte(tok)) {
			return true
		}
	}
	return false
}

// parseLength parses a Content-Length: digits only, no sign, no overflow.
func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		n = n*10 + int64(ch-'0')
	}
	return n, true
}

// body reads a request body framed by Content-Length or chunked encoding.
type body struct {
	c       *conn
	remain  int64 // bytes left in the body, or in the current chunk
	chunked bool
	started bool // a chunked body: the first chunk's size was read
	eof     bool
	expect  bool // 100 Continue is owed before the first read
	err     error
}

var errChunk = errors.New("malformed chunked body")

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
		if line, err := b.c.readLine(); err != nil || len(line) != 0 {
			return errChunk
		}
	}
	b.started = true
	line, err := b.c.readLine()
	if err != nil {
		if err == bufio.ErrBufferFull {
			return errChunk
		}
		return io.ErrUnexpectedEOF
	}
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimRight(line, " \t")
	if len(line) == 0 || len(line) > 15 {
		return errChunk
	}
	var n int64
	for _, ch := range line {
		switch {
		case ch >= '0' && ch <= '9':
			n = n<<4 | int64(ch-'0')
		case ch >= 'a' && ch <= 'f':
			n = n<<4 | int64(ch-'a'+10)
		case ch >= 'A' && ch <= 'F':
			n = n<<4 | int64(ch-'A'+10)
		default:
			return errChunk
		}
	}
	if n > 0 {
		b.remain = n
		return nil
	}
	for i := 0; ; i++ { // trailers, ignored
		line, err := b.c.readLine()
		if err == nil && len(line) == 0 {
			b.eof = true
			return nil
		}
		if err != nil || i == maxHeaders {
			return errChunk
		}
	}
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
}

// bufferLimit is the largest body sent with a computed Content-Length.
const bufferLimit = 8 << 10

// s is the response's server.
func (w *Response) s() *Server { return w.c.s }

func (w *Response) reset(head, closeConn, http10 bool) {
	*w = Response{c: w.c, w: w.c.nc, header: w.header[:0], buf: w.buf[:0], out: w.out[:0], status: 200, length: -1,
		head: head, closeConn: closeConn, http10: http10}
}

// SetHeader adds a header line. Content-Length is taken as the body's
// length; "Connection: close" closes the connection after the response.
// Headers set after the first byte of the body are ignored.
func (w *Response) SetHeader(name, value string) {
	if w.started {
		return
	}
	switch name {
	case "Content-Length":
		if n, ok := parseLength([]byte(value)); ok {
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
	_, err := w.w.Write(p)
	if err != nil {
		w.err = err
	}
	return err
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
	if _, err := w.w.Write(o); err != nil {
		w.err = err
	}
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
			if _, err := w.w.Write([]byte("0\r\n\r\n")); err != nil {
				w.err = err
			}
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
