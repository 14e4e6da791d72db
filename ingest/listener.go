package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"go.uber.org/atomic"

	"github.com/push-gateway/push-gateway/cache"
)

// Defaults of the limits in Options.
const (
	// A connection may hold a line up to the limit, so the defaults bound
	// what all of them can hold at once to a few MiB.
	DefaultMaxLineLength    = 16 << 10
	DefaultMaxConnections   = 512
	DefaultIdleTimeout      = 5 * time.Minute
	DefaultFirstByteTimeout = 10 * time.Second
	DefaultHeadTimeout      = 10 * time.Second
)

// Options configure a Server. The zero value of each limit means its default.
type Options struct {
	Cache          *cache.Cache
	Logger         *slog.Logger
	MaxLineLength  int           // longer lines are skipped and counted
	MaxConnections int           // more at once make room by closing the idlest, or are closed at accept
	IdleTimeout    time.Duration // a raw stream that sends nothing this long is closed
	// FirstByteTimeout closes a connection that sends nothing at all this
	// long after it was accepted. HeadTimeout closes one whose first bytes
	// could begin an HTTP request line and that has not told HTTP from a
	// raw stream this long after its first byte; a connection found to be
	// HTTP is handed over with this deadline for the rest of its first
	// head. Keep it the HTTP server's ReadHeaderTimeout.
	FirstByteTimeout time.Duration
	HeadTimeout      time.Duration
	// HTTP serves the connections that open with an HTTP request line. Nil
	// answers each with 501 Not Implemented.
	HTTP ConnServer
	// AllowedUIDs, when not empty, are the only user ids whose processes may
	// use the socket (checked with SO_PEERCRED); others are closed at
	// accept, logged and counted.
	AllowedUIDs []uint32
}

// ConnServer serves a connection, whose first bytes, already read, are
// prefix, until it ends, then closes it.
type ConnServer interface {
	ServeConn(c net.Conn, prefix []byte)
}

// Reasons for a rejected line besides the parser's.
const (
	ReasonTooLong        = "too_long"
	ReasonTooLarge       = "too_large"
	ReasonTypeConflict   = "type_conflict"
	ReasonMissingLabel   = "missing_label"
	ReasonBadBucketLabel = "invalid_bucket_label"
	ReasonNameClash      = "name_clash"
	ReasonBucketMismatch = "bucket_mismatch"
	ReasonReservedLabel  = "reserved_label"
	ReasonNegativeCount  = "negative_count"
)

// Reasons lists every reason a line can be rejected for, in a fixed order.
var Reasons = []string{
	ReasonSyntax, ReasonInvalidName, ReasonDuplicateLabel, ReasonInvalidUTF8,
	ReasonInvalidValue, ReasonInvalidTimestamp, ReasonInvalidType,
	ReasonTooLong, ReasonTooLarge, ReasonTypeConflict, ReasonMissingLabel,
	ReasonBadBucketLabel, ReasonNameClash, ReasonBucketMismatch, ReasonInvalidEvent,
	ReasonInvalidClearmode, ReasonReservedLabel, ReasonNegativeCount, ReasonInvalidTTL,
}

// Stats are the counters of a Server, read by the self-metrics. The 64-bit
// counters come first: 32-bit ARM and MIPS need them 8-byte aligned, and
// only the start of an allocated struct is.
type Stats struct {
	Lines       atomic.Uint64             // lines and events applied
	Connections atomic.Int64              // open connections
	Refused     atomic.Uint64             // connections closed at accept: over MaxConnections
	PeerRefused atomic.Uint64             // connections closed at accept: user id not allowed
	IdleClosed  atomic.Uint64             // connections closed after a timeout without data
	Evicted     atomic.Uint64             // idle connections closed to make room for a new one
	Rejected    map[string]*atomic.Uint64 // by reason; keys are Reasons
}

// Server accepts connections on the push socket and applies what they send
// to the cache.
type Server struct {
	stats Stats // first: see Stats
	o     Options

	mu       sync.Mutex
	conns    map[net.Conn]*tracked
	closing  bool
	drain    time.Time     // the read deadline of every connection once closing
	accepted chan struct{} // closed when Serve has stopped accepting
	stop     chan struct{} // closed when Shutdown begins
	wg       sync.WaitGroup
	ln       net.Listener
}

// tracked is what the server knows of a connection to tell how idle it is.
// The 64-bit fields come first: see Stats.
type tracked struct {
	last atomic.Int64 // nanotime of the last read that brought data; 0: none yet
	// A connection handed to HTTP (http, set under Server.mu) is idle
	// while the server waits to read (waiting) with nothing received since
	// its last response (wrote, a nanotime).
	wrote   atomic.Int64
	since   time.Time   // accepted
	busy    atomic.Bool // holds part of a line or of a request line
	http    bool
	waiting atomic.Bool
}

// clockBase is what nanotime counts from.
var clockBase = time.Now()

// nanotime is the time in nanoseconds since clockBase, at least 1 (0
// means never). It reads the monotonic clock, so that the wall clock
// stepping (NTP setting the time of a device without an RTC) makes no
// connection look idle for years, or never idle.
func nanotime() int64 { return int64(time.Since(clockBase)) + 1 }

// httpConn is a connection handed to the HTTP server, watched so that it
// can be told idle between requests.
type httpConn struct {
	net.Conn
	t *tracked
}

func (c *httpConn) Read(p []byte) (int, error) {
	c.t.waiting.Store(true)
	n, err := c.Conn.Read(p)
	c.t.waiting.Store(false)
	if n > 0 {
		c.t.last.Store(nanotime())
	}
	return n, err
}

func (c *httpConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.t.wrote.Store(nanotime())
	return n, err
}

// CloseWrite half-closes the connection, which the HTTP server does before
// closing it after a refused request.
func (c *httpConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("cannot half-close this connection")
}

// idle tells since when t has been idle, if it is: a raw stream or a
// connection not yet sniffed that holds no part of a line, since its last
// data; an HTTP one waiting for a request, since its last response.
func (t *tracked) idle() (since int64, ok bool) {
	last := t.last.Load()
	if !t.http {
		return last, !t.busy.Load()
	}
	wrote := t.wrote.Load()
	return wrote, t.waiting.Load() && wrote >= last
}

// NewServer returns a Server; call Serve to start it.
func NewServer(o Options) *Server {
	if o.MaxLineLength <= 0 {
		o.MaxLineLength = DefaultMaxLineLength
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.FirstByteTimeout <= 0 {
		o.FirstByteTimeout = DefaultFirstByteTimeout
	}
	if o.HeadTimeout <= 0 {
		o.HeadTimeout = DefaultHeadTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.HTTP == nil {
		o.HTTP = notImplemented{}
	}
	s := &Server{o: o, conns: make(map[net.Conn]*tracked), accepted: make(chan struct{}), stop: make(chan struct{})}
	s.stats.Rejected = make(map[string]*atomic.Uint64, len(Reasons))
	for _, r := range Reasons {
		s.stats.Rejected[r] = new(atomic.Uint64)
	}
	return s
}

type notImplemented struct{}

func (notImplemented) ServeConn(c net.Conn, _ []byte) {
	const msg = "not implemented: this socket takes the text exposition format as a raw stream\n"
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write([]byte("HTTP/1.1 501 Not Implemented\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Connection: close\r\nContent-Length: " + strconv.Itoa(len(msg)) + "\r\n\r\n" + msg))
	c.Close()
}

// Stats returns the server's counters.
func (s *Server) Stats() *Stats { return &s.stats }

// Serve accepts connections on l until Shutdown. It returns nil after
// Shutdown, or the error that stopped it accepting.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.ln != nil || s.closing {
		s.mu.Unlock()
		return nil
	}
	s.ln = l
	s.mu.Unlock()
	defer close(s.accepted)
	var backoff acceptBackoff
	for {
		c, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing || errors.Is(err, net.ErrClosed) {
				// At Shutdown, the connections queued on the socket
				// have been taken (see Shutdown); now it closes.
				l.Close()
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// EMFILE and the like: back off instead of spinning.
			select {
			case <-time.After(backoff.failed(s.o.Logger, err)):
			case <-s.stop:
			}
			continue
		}
		backoff.worked(s.o.Logger)
		// The peer first: a process that may not push must not close
		// another's idle connection to make room.
		if len(s.o.AllowedUIDs) > 0 && !s.peerAllowed(c) {
			c.Close()
			continue
		}
		if s.stats.Connections.Load() >= int64(s.o.MaxConnections) && !s.evict() {
			s.stats.Refused.Inc()
			s.o.Logger.Debug("connection refused: too many connections", "max", s.o.MaxConnections)
			c.Close()
			continue
		}
		t := &tracked{since: time.Now()}
		s.stats.Connections.Inc()
		s.track(c, t)
		s.wg.Add(1)
		go s.serveConn(c, t)
	}
}

// acceptBackoff spaces out the accepts that fail for want of a resource
// (EMFILE, ENFILE, ENOBUFS): from 5 ms, doubling up to a second. An
// episode of failures is logged twice, when it begins and when accepting
// works again, not at every try.
type acceptBackoff struct {
	delay time.Duration // 0: accepting works
	fails int           // in this episode
	since time.Time     // the episode began
}

const (
	minAcceptBackoff = 5 * time.Millisecond
	maxAcceptBackoff = time.Second
)

// failed records a failed accept and returns how long to wait.
func (b *acceptBackoff) failed(log *slog.Logger, err error) time.Duration {
	b.fails++
	if b.delay == 0 {
		b.delay, b.since = minAcceptBackoff, time.Now()
		log.Warn("cannot accept connections on the push socket; retrying with backoff until it works", "err", err)
		return b.delay
	}
	b.delay = min(2*b.delay, maxAcceptBackoff)
	return b.delay
}

// worked ends an episode of failures, if one was under way.
func (b *acceptBackoff) worked(log *slog.Logger) {
	if b.delay == 0 {
		return
	}
	log.Info("accepting connections on the push socket again", "failed_accepts", b.fails, "after", time.Since(b.since).Round(time.Millisecond))
	*b = acceptBackoff{}
}

// evictQuiet is how long a raw stream must have sent nothing to be closed
// to make room: a client in the middle of a batch is not cut off.
const evictQuiet = time.Second

// evict closes the connection idle the longest, to make room for a new one
// at MaxConnections, and tells whether it did. It takes one that has sent
// nothing, accepted the longest ago, or else a raw stream or HTTP
// keep-alive connection idle for evictQuiet, idle the longest; never one
// holding part of a line or of a request, nor one whose bytes wait unread.
func (s *Server) evict() bool {
	now := nanotime()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	var passed [4]net.Conn // candidates found with bytes waiting
	for try := range passed {
		var victim net.Conn
		silent, oldest := false, int64(0)
		for c, t := range s.conns {
			last, idle := t.idle()
			if !idle || slices.Contains(passed[:try], c) {
				continue
			}
			switch {
			case last == 0:
				if at := int64(t.since.Sub(clockBase)); !silent || at < oldest {
					victim, silent, oldest = c, true, at
				}
			case !silent && now-last >= int64(evictQuiet) && (victim == nil || last < oldest):
				victim, oldest = c, last
			}
		}
		if victim == nil {
			return false
		}
		if queued(victim) {
			passed[try] = victim
			continue
		}
		delete(s.conns, victim)
		victim.Close()
		s.stats.Connections.Dec()
		s.stats.Evicted.Inc()
		s.o.Logger.Debug("closed the idlest connection to make room", "max", s.o.MaxConnections, "silent", silent)
		return true
	}
	return false
}

func (s *Server) peerAllowed(c net.Conn) bool {
	uid, err := peerUID(c)
	if err == nil {
		for _, u := range s.o.AllowedUIDs {
			if u == uid {
				return true
			}
		}
	}
	s.stats.PeerRefused.Inc()
	s.o.Logger.Warn("connection refused: peer user id not allowed", "uid", uid, "err", err)
	return false
}

// track registers c, accepted by Serve. During Shutdown it gets the drain
// deadline at once: a connection still queued on the socket when the
// signal came carries lines already received, and is served like the others.
func (s *Server) track(c net.Conn, t *tracked) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		c.SetReadDeadline(s.drain)
	}
	s.conns[c] = t
}

// untrack forgets c and tells whether it was tracked: if not, evict
// closed it, and counted it gone.
func (s *Server) untrack(c net.Conn) bool {
	s.mu.Lock()
	_, ok := s.conns[c]
	delete(s.conns, c)
	s.mu.Unlock()
	return ok
}

// Shutdown stops accepting, lets every raw-stream connection apply the
// complete lines it has received, and returns when all are done or ctx
// ends. Connections handed to Options.HTTP are that server's to close: shut
// it down first, or this waits for them.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		close(s.stop)
	}
	s.closing = true
	// Raw streams read on for a short drain window, so that lines already
	// queued in the socket are applied, then stop at the deadline; see
	// armDeadline.
	s.drain = time.Now().Add(drainWindow)
	ln := s.ln
	if ln != nil {
		// Connections that a client opened and wrote to but that were not
		// accepted yet hold lines received too: Serve accepts until the
		// queue is empty for backlogWindow, then closes the listener.
		// Without deadlines, the listener closes now.
		dl, ok := ln.(interface{ SetDeadline(time.Time) error })
		if !ok || dl.SetDeadline(time.Now().Add(backlogWindow)) != nil {
			ln.Close()
		}
	}
	for c, t := range s.conns {
		if !t.http { // those are the HTTP server's to close
			c.SetReadDeadline(s.drain)
		}
	}
	s.mu.Unlock()
	if ln != nil {
		select {
		case <-s.accepted:
		case <-ctx.Done():
			ln.Close()
			<-s.accepted
		}
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c, t := range s.conns {
			if !t.http {
				c.Close()
			}
		}
		s.mu.Unlock()
		return ctx.Err()
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

const readSize = 2 << 10

// serveConn reads the first bytes of a connection to tell HTTP from a raw
// stream, then serves it as one or the other. Until the first byte, the
// connection has FirstByteTimeout from its accept; from the first byte,
// the head of an HTTP request has HeadTimeout, sniffing included (issue
// 12, point 6). A raw stream has IdleTimeout between reads.
func (s *Server) serveConn(c net.Conn, t *tracked) {
	defer s.wg.Done()
	buf := make([]byte, readSize)
	n, verdict := 0, sniffMaybe
	var err error
	s.setDeadline(c, t.since.Add(s.o.FirstByteTimeout))
	for verdict == sniffMaybe && err == nil {
		var m int
		m, err = c.Read(buf[n:])
		if m > 0 && n == 0 {
			first := time.Now()
			t.busy.Store(true)
			t.last.Store(nanotime())
			n += m
			if verdict = isHTTP(buf[:n]); verdict != sniffNo {
				s.setDeadline(c, first.Add(s.o.HeadTimeout))
			}
			continue
		}
		n += m
		verdict = isHTTP(buf[:n])
	}
	if verdict == sniffYes {
		s.mu.Lock()
		_, tracked := s.conns[c]
		t.http = true
		s.mu.Unlock()
		if !tracked {
			return // evicted
		}
		s.o.HTTP.ServeConn(&httpConn{c, t}, buf[:n])
		if s.untrack(c) {
			s.stats.Connections.Dec()
		}
		return
	}
	s.raw(c, t, buf, n, err)
}

// setDeadline sets c's read deadline, unless the server is shutting down:
// then the drain deadline that Shutdown set under the same lock stays, so
// a connection never sleeps through it.
func (s *Server) setDeadline(c net.Conn, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closing {
		c.SetReadDeadline(t)
	}
}

// drainWindow is how long connections read on after Shutdown.
const drainWindow = 200 * time.Millisecond

// backlogWindow is how long Shutdown keeps accepting the connections queued
// on the socket: they are there already, so a few milliseconds take them.
const backlogWindow = 50 * time.Millisecond

// httpSniff is the longest prefix isHTTP needs: "OPTIONS /".
const httpSniff = 9

type sniff int

const (
	sniffMaybe sniff = iota
	sniffYes
	sniffNo
)

var methods = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE"}

// isHTTP tells whether b starts with an HTTP request line: a method, a space
// and a path or "*". No metric line can start so, since a name is followed
// by labels or a value, never by "/".
func isHTTP(b []byte) sniff {
	maybe := false
	for _, m := range methods {
		full := m + " /"
		if len(b) >= len(full) {
			if string(b[:len(full)]) == full || string(b[:len(full)]) == m+" *" {
				return sniffYes
			}
		} else if string(b) == full[:len(b)] {
			maybe = true
		}
	}
	if maybe {
		return sniffMaybe
	}
	return sniffNo
}

// raw serves a raw stream: buf[:n] is what was read so far, rerr the error
// that came with it.
func (s *Server) raw(c net.Conn, t *tracked, buf []byte, n int, rerr error) {
	defer func() {
		if s.untrack(c) {
			s.stats.Connections.Dec()
		}
		c.Close()
	}()
	var p lineState
	var armed time.Time // when the idle deadline was last set
	defer func() { recycleStream(buf) }()
	filled := false // the last read filled the buffer
	quiet := 0      // reads in a row that did not fill it
	limit := s.o.MaxLineLength
	skipping := false // inside a line over the limit, until its newline
	for {
		// Apply every complete line in buf[:n] under one hold of the lock.
		start := 0
		if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
			b := s.o.Cache.Begin()
			for {
				switch {
				case skipping:
					skipping = false
				case i > limit:
					s.reject(ReasonTooLong, nil)
				default:
					s.apply(b, &p, buf[start:start+i])
				}
				start += i + 1
				if i = bytes.IndexByte(buf[start:n], '\n'); i < 0 {
					break
				}
			}
			b.End()
		}
		n = copy(buf, buf[start:n])
		if rerr != nil {
			// At the end of the stream the last line may come without a
			// newline. At shutdown or an idle timeout a partial line is not
			// one: it is dropped.
			if n > 0 && !skipping && errors.Is(rerr, io.EOF) {
				if n > limit {
					s.reject(ReasonTooLong, nil)
				} else {
					b := s.o.Cache.Begin()
					s.apply(b, &p, buf[:n])
					b.End()
				}
			}
			var ne net.Error
			if errors.As(rerr, &ne) && ne.Timeout() && !s.isClosing() {
				s.stats.IdleClosed.Inc()
				s.o.Logger.Debug("closing a connection that sent nothing in time")
			}
			return
		}
		if !skipping && n > limit {
			s.reject(ReasonTooLong, nil)
			skipping = true
		}
		switch {
		case skipping:
			n = 0 // drop the long line's bytes as they come
		case n == len(buf):
			nb := make([]byte, min(2*len(buf), limit+1))
			copy(nb, buf[:n])
			recycleStream(buf)
			buf = nb
		case filled && len(buf) < streamSize:
			// A busy client: read more per system call. An idle
			// connection keeps its small buffer.
			nb, ok := streamBufs.Get().(*[streamSize]byte)
			if !ok {
				nb = new([streamSize]byte)
			}
			copy(nb[:], buf[:n])
			buf = nb[:]
		case len(buf) > readSize && n < readSize/2 && quiet > 64:
			// Give back a buffer that grew for one long line or a burst,
			// once the client has gone quiet: not at every short read,
			// which would allocate a new buffer per burst.
			nb := append(make([]byte, 0, readSize), buf[:n]...)[:readSize]
			recycleStream(buf)
			buf = nb
		}
		now := time.Now()
		t.last.Store(nanotime())
		t.busy.Store(n > 0 || skipping)
		s.rearm(c, now, &armed)
		var m int
		m, rerr = c.Read(buf[n:])
		if m > 0 {
			// Busy from now until its lines are applied: a client quiet
			// for a while that has just sent a burst is not idle, and
			// evict must not close it while the burst, and the part of a
			// line after it, are in buf.
			t.busy.Store(true)
			t.last.Store(nanotime())
		}
		filled = n+m == len(buf)
		if filled {
			quiet = 0
		} else {
			quiet++
		}
		n += m
	}
}

// streamSize is the read buffer of a connection that keeps it full.
const streamSize = 32 << 10

// streamBufs keeps the streamSize buffers of connections that ended: a
// client that pushes 100 lines on a new connection every second would
// otherwise leave 32 KiB of garbage a second, and the heap would grow by
// that until the next collection.
var streamBufs sync.Pool

// recycleStream gives buf, no longer used, to streamBufs if it is a stream
// buffer.
func recycleStream(buf []byte) {
	if cap(buf) == streamSize {
		streamBufs.Put((*[streamSize]byte)(buf[:streamSize]))
	}
}

// rearm pushes the idle deadline forward, at most once a second: setting a
// deadline costs about as much as parsing a line, and a second of slack on
// a timeout of minutes does not matter.
func (s *Server) rearm(c net.Conn, now time.Time, armed *time.Time) {
	if now.Sub(*armed) < time.Second {
		return
	}
	*armed = now
	s.setDeadline(c, now.Add(s.o.IdleTimeout))
}

// lineState is what one connection keeps between lines: the parsers and
// their buffers, and the TTL that the last "# TTL" line set.
type lineState struct {
	p      Parser
	e      Event
	hasTTL bool // ttl is set; else the cache's default
	ttl    time.Duration
}

// connTTL is the TTL of the connection's updates.
func (st *lineState) connTTL() time.Duration {
	if st.hasTTL {
		return st.ttl
	}
	return cache.DefaultTTL
}

// ReasonInvalidClearmode rejects a line whose clearmode label is not one of
// aggregate, replace, family.
const ReasonInvalidClearmode = "invalid_clearmode"

func (s *Server) apply(b cache.Batch, st *lineState, line []byte) {
	if st.hasTTL {
		b.SetTTL(st.ttl) // a batch starts at the default
	}
	i := 0
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	if i < len(line) && line[i] == '{' {
		if err := st.e.Parse(line); err != nil {
			reason := ReasonInvalidEvent
			var pe *ParseError
			if errors.As(err, &pe) {
				reason = pe.Reason
			}
			s.reject(reason, err)
			return
		}
		own := st.e.TTL != cache.DefaultTTL // this event's, not the connection's
		if own {
			b.SetTTL(st.e.TTL)
		}
		err := applyEvent(b, &st.e)
		if own {
			b.SetTTL(st.connTTL())
		}
		if err != nil {
			reason := cacheReason(err)
			if reason == ReasonSyntax {
				reason = ReasonInvalidEvent
			}
			s.reject(reason, err)
			return
		}
		s.stats.Lines.Inc()
		return
	}
	p := &st.p
	p.TTLLines = true
	kind, err := p.Parse(line)
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			s.reject(pe.Reason, err)
		} else {
			s.reject(ReasonSyntax, err)
		}
		return
	}
	switch kind {
	case LineSample:
		err = s.applySample(b, p)
	case LineType:
		err = b.SetType(p.Name, p.Type)
	case LineHelp:
		err = b.SetHelp(p.Name, p.Help)
	case LineTTL:
		st.hasTTL, st.ttl = p.TTL != cache.DefaultTTL, p.TTL
		b.SetTTL(p.TTL)
	default:
		return
	}
	if err != nil {
		s.reject(cacheReason(err), err)
		return
	}
	s.stats.Lines.Inc()
}

// applySample stores a sample line; a clearmode label, never stored, picks
// how (see cache.Mode).
func (s *Server) applySample(b cache.Batch, p *Parser) error {
	for i := range p.Labels {
		if l := p.Labels[i]; len(l.Name) == len("clearmode") && string(l.Name) == "clearmode" {
			m, ok := cache.ParseMode(l.Value)
			if !ok {
				return errClearmode
			}
			ls := slices.Delete(p.Labels, i, i+1)
			switch m {
			case cache.ModeAggregate:
				return b.AddUntyped(p.Name, ls, p.Value)
			case cache.ModeFamily:
				return b.ReplaceFamily(p.Name, ls, p.Value)
			}
			return b.Set(p.Name, ls, p.Value)
		}
	}
	return b.Set(p.Name, p.Labels, p.Value)
}

var errClearmode = errors.New("clearmode is not aggregate, replace or family")

func cacheReason(err error) string {
	if err == errClearmode {
		return ReasonInvalidClearmode
	}
	switch {
	case errors.Is(err, cache.ErrTooLarge):
		return ReasonTooLarge
	case errors.Is(err, cache.ErrDuplicateLabel):
		return ReasonDuplicateLabel
	case errors.Is(err, cache.ErrTypeConflict):
		return ReasonTypeConflict
	case errors.Is(err, cache.ErrMissingLabel):
		return ReasonMissingLabel
	case errors.Is(err, cache.ErrBadLabelValue):
		return ReasonBadBucketLabel
	case errors.Is(err, cache.ErrNameClash):
		return ReasonNameClash
	case errors.Is(err, cache.ErrBucketMismatch):
		return ReasonBucketMismatch
	case errors.Is(err, cache.ErrReservedLabel):
		return ReasonReservedLabel
	case errors.Is(err, cache.ErrNegativeCount):
		return ReasonNegativeCount
	}
	return ReasonSyntax
}

func (s *Server) reject(reason string, err error) {
	if r := s.stats.Rejected[reason]; r != nil {
		r.Inc()
	}
	if s.o.Logger.Enabled(context.Background(), slog.LevelDebug) {
		s.o.Logger.Debug("line rejected", "reason", reason, "err", err)
	}
}

// Listen returns a listener on the push socket at path with file mode mode.
// Under systemd socket activation (LISTEN_PID is this process, LISTEN_FDS is
// at least 1) it uses the passed descriptor 3 instead. A leftover socket file
// that nothing answers on is replaced; one that a live daemon answers on is
// an error, as is a path that is not a socket.
func Listen(path string, mode os.FileMode) (net.Listener, error) {
	if l, err := activated(); l != nil || err != nil {
		return l, err
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another process is listening on this socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("cannot remove stale socket: %w", err)
		}
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, mode); err != nil {
		l.Close()
		return nil, fmt.Errorf("cannot set socket mode: %w", err)
	}
	return l, nil
}

// activated returns the listener systemd passed, if it passed one.
func activated() (net.Listener, error) {
	pid, err := strconv.Atoi(os.Getenv("LISTEN_PID"))
	if err != nil || pid != os.Getpid() {
		return nil, nil
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n < 1 {
		return nil, nil
	}
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_FDNAMES")
	const fd = 3 // SD_LISTEN_FDS_START
	syscall.CloseOnExec(fd)
	f := os.NewFile(fd, "LISTEN_FD_3")
	l, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("socket activation: fd 3: %w", err)
	}
	return l, nil
}
