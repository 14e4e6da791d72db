package ingest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/push-gateway/push-gateway/cache"
)

// startServer serves a fresh cache on a real Unix socket in a temp dir.
func startServer(t *testing.T, o Options) (*Server, *cache.Cache, string) {
	t.Helper()
	if o.Cache == nil {
		o.Cache = cache.New(cache.Options{Budget: 64 << 10})
	}
	path := filepath.Join(t.TempDir(), "p.sock")
	l, err := Listen(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(o)
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s, o.Cache, path
}

// values renders the cache as "name{labels} value" lines, sorted.
func values(c *cache.Cache) string {
	var s cache.Snapshot
	c.Snapshot(&s)
	var b strings.Builder
	for i := 0; i < s.Len(); i++ {
		f := s.Family(i)
		for j := 0; j < f.Len(); j++ {
			ser, ok := f.Series(j)
			if !ok || f.Type == cache.Histogram || f.Type == cache.Summary {
				continue
			}
			b.Write(f.Name)
			for l := ser.Labels(); ; {
				n, v, rest, ok := cache.NextLabel(l)
				if !ok {
					break
				}
				b.WriteString(" " + string(n) + "=" + string(v))
				l = rest
			}
			b.WriteString(" " + strconv.FormatFloat(ser.Value(), 'g', -1, 64) + "\n")
		}
	}
	return b.String()
}

func push(t *testing.T, path string, chunks ...string) {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, ch := range chunks {
		if _, err := c.Write([]byte(ch)); err != nil {
			t.Fatal(err)
		}
	}
	c.(*net.UnixConn).CloseWrite()
	var b [1]byte
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	c.Read(b[:]) // returns when the server has closed its side: all applied
}

func TestStreamFraming(t *testing.T) {
	s, c, path := startServer(t, Options{MaxLineLength: 256})
	// One byte at a time, a line over the limit, and a last line without "\n".
	in := "a 1\n" + "long{l=\"" + strings.Repeat("x", 300) + "\"} 1\n" + "b{k=\"v\"} 2\nbad line\nc 3"
	var chunks []string
	for i := range in {
		chunks = append(chunks, in[i:i+1])
	}
	push(t, path, chunks...)
	want := "a 1\nb k=v 2\nc 3\n"
	if got := values(c); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	st := s.Stats()
	if st.Lines.Load() != 3 || st.Rejected[ReasonTooLong].Load() != 1 || st.Rejected[ReasonInvalidValue].Load() != 1 {
		t.Fatalf("lines %d too_long %d invalid_value %d", st.Lines.Load(), st.Rejected[ReasonTooLong].Load(), st.Rejected[ReasonInvalidValue].Load())
	}
}

func TestStreamBigBatch(t *testing.T) {
	_, c, path := startServer(t, Options{})
	var b strings.Builder
	for i := 0; i < 5000; i++ {
		b.WriteString("m{i=\"")
		b.WriteString(strings.Repeat("z", i%7))
		b.WriteString("\"} 1\n")
	}
	push(t, path, b.String(), "m{i=\"\"} 42\n")
	if got := values(c); !strings.HasPrefix(got, "m 42\n") || strings.Count(got, "\n") != 7 {
		t.Fatalf("got\n%s", got)
	}
}

func TestHTTPSniff(t *testing.T) {
	for in, want := range map[string]sniff{
		"":                 sniffMaybe,
		"PU":               sniffMaybe,
		"PUT /metrics":     sniffYes,
		"GET / HTTP/1.1":   sniffYes,
		"OPTIONS * HTTP":   sniffYes,
		"PUT_total 1\n":    sniffNo,
		"GET 1\n":          sniffNo,
		"# TYPE x counter": sniffNo,
		"metric 1\n":       sniffNo,
	} {
		if got := isHTTP([]byte(in)); got != want {
			t.Errorf("isHTTP(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestStaleAndLiveSocket(t *testing.T) {
	_, _, path := startServer(t, Options{})
	if _, err := Listen(path, 0o600); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("second listener on a live socket: %v", err)
	}
	stale := filepath.Join(t.TempDir(), "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
	l2, err := Listen(stale, 0o600)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	l2.Close()
}

func TestAllowedUIDs(t *testing.T) {
	me := uint32(os.Getuid())
	s, c, path := startServer(t, Options{AllowedUIDs: []uint32{me + 1}})
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("refused 1\n"))
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	if _, err := conn.Read(b[:]); err == nil {
		t.Fatal("a refused peer's connection stayed open")
	}
	conn.Close()
	if s.Stats().PeerRefused.Load() != 1 || values(c) != "" {
		t.Fatalf("peer refused %d, cache %q", s.Stats().PeerRefused.Load(), values(c))
	}

	_, c2, path2 := startServer(t, Options{AllowedUIDs: []uint32{me}})
	push(t, path2, "allowed 1\n")
	if got := values(c2); got != "allowed 1\n" {
		t.Fatalf("allowed peer: %q", got)
	}
}

// gatedListener holds Accept until Shutdown sets the listener's deadline:
// a connection that a client opened and wrote to stays queued on the
// socket, unaccepted, when the shutdown begins.
type gatedListener struct {
	*net.UnixListener
	gate chan struct{}
	once sync.Once
}

func (l *gatedListener) Accept() (net.Conn, error) {
	<-l.gate
	return l.UnixListener.Accept()
}

func (l *gatedListener) SetDeadline(t time.Time) error {
	err := l.UnixListener.SetDeadline(t)
	l.once.Do(func() { close(l.gate) })
	return err
}

func (l *gatedListener) Close() error {
	l.once.Do(func() { close(l.gate) })
	return l.UnixListener.Close()
}

// TestShutdownTakesQueuedConnections: lines written on a connection that
// was still queued on the socket when Shutdown began are applied; the
// listener is closed after.
func TestShutdownTakesQueuedConnections(t *testing.T) {
	c := cache.New(cache.Options{Budget: 64 << 10})
	path := filepath.Join(t.TempDir(), "p.sock")
	l, err := Listen(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	gl := &gatedListener{UnixListener: l.(*net.UnixListener), gate: make(chan struct{})}
	s := NewServer(Options{Cache: c})
	served := make(chan error, 1)
	go func() { served <- s.Serve(gl) }()
	client, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var b strings.Builder
	for i := 0; i < 1000; i++ {
		b.WriteString("queued_" + strconv.Itoa(i) + " 1\n")
	}
	if _, err := client.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	// Serve must be waiting in Accept before Shutdown looks for its listener.
	for deadline := time.Now().Add(5 * time.Second); ; {
		s.mu.Lock()
		started := s.ln != nil
		s.mu.Unlock()
		if started {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Serve did not start")
		}
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(values(c), "\n"); n != 1000 {
		t.Fatalf("%d of the 1000 lines on the queued connection were applied", n)
	}
	if _, err := net.Dial("unix", path); err == nil {
		t.Fatal("the socket still accepts connections after Shutdown")
	}
}

// closedWithin tells whether the server closes c within d; anything c
// receives before is returned.
func closedWithin(c net.Conn, d time.Duration) (bool, string) {
	c.SetReadDeadline(time.Now().Add(d))
	var got []byte
	buf := make([]byte, 512)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout()), string(got)
		}
	}
}

// headServer answers a request head with 200 once it has its blank line,
// as expose.Server does: it sets no deadline for the first head, which is
// the push socket's to set.
type headServer struct{}

func (headServer) ServeConn(c net.Conn, prefix []byte) {
	defer c.Close()
	head := append([]byte(nil), prefix...)
	buf := make([]byte, 512)
	for !strings.Contains(string(head), "\r\n\r\n") {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		head = append(head, buf[:n]...)
	}
	c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
}

// Issue 12, points 6 and 7: a connection that sends nothing is closed
// after FirstByteTimeout, not IdleTimeout; one that streams keeps
// IdleTimeout.
func TestFirstByteTimeout(t *testing.T) {
	s, c, path := startServer(t, Options{FirstByteTimeout: 300 * time.Millisecond, IdleTimeout: time.Minute})
	silent, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	streaming, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer streaming.Close()
	if _, err := streaming.Write([]byte("first 1\n")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if closed, _ := closedWithin(silent, 5*time.Second); !closed {
		t.Fatal("a connection that sent nothing was not closed within 5s of FirstByteTimeout=300ms")
	}
	if took := time.Since(start); took < 250*time.Millisecond {
		t.Errorf("a connection that sent nothing was closed after %v, before FirstByteTimeout", took)
	}
	time.Sleep(300 * time.Millisecond) // the stream is now well past FirstByteTimeout
	if _, err := streaming.Write([]byte("second 2\n")); err != nil {
		t.Fatalf("a streaming connection was closed: %v", err)
	}
	streaming.(*net.UnixConn).CloseWrite()
	closedWithin(streaming, 5*time.Second)
	if got := values(c); got != "first 1\nsecond 2\n" {
		t.Errorf("cache: %q", got)
	}
	if n := s.Stats().IdleClosed.Load(); n != 1 {
		t.Errorf("IdleClosed = %d, want 1", n)
	}
}

// Issue 12, point 6: the head of an HTTP request has HeadTimeout from its
// first byte, however long telling HTTP from a raw stream takes, and the
// deadline goes with the connection to the HTTP server.
func TestHeadTimeoutFromFirstByte(t *testing.T) {
	const head = 500 * time.Millisecond
	_, _, path := startServer(t, Options{HTTP: headServer{}, HeadTimeout: head, IdleTimeout: time.Minute})
	dial := func() net.Conn {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// A whole head at once is answered.
	c := dial()
	c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	if _, got := closedWithin(c, 5*time.Second); !strings.HasPrefix(got, "HTTP/1.1 200") {
		t.Fatalf("a whole head: %q", got)
	}
	// "GE" and a pause longer than the head limit: closed.
	c = dial()
	c.Write([]byte("GE"))
	start := time.Now()
	if closed, got := closedWithin(c, 5*time.Second); !closed || got != "" {
		t.Fatalf("\"GE\" and a pause: closed %v, got %q; want closed after %v", closed, got, head)
	}
	if took := time.Since(start); took < head-50*time.Millisecond {
		t.Errorf("\"GE\" closed after %v, before the head limit", took)
	}
	// A request line whose head is then sent too slowly: the HTTP side
	// gets the deadline of the first byte.
	c = dial()
	c.Write([]byte("GET / HTTP/1.1\r\n"))
	time.Sleep(head + 500*time.Millisecond)
	c.Write([]byte("\r\n"))
	if closed, got := closedWithin(c, 5*time.Second); !closed || got != "" {
		t.Fatalf("a head sent too slowly: closed %v, got %q", closed, got)
	}
	// One byte every 200 ms: closed at the head limit, before "GET /" is
	// complete.
	c = dial()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, b := range []byte("GET / HTTP/1.1\r\n\r\n") {
			if _, err := c.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	if closed, got := closedWithin(c, 10*time.Second); !closed || got != "" {
		t.Fatalf("a trickled head: closed %v, got %q", closed, got)
	}
	<-done
}

// Issue 12, point 7: with the socket full of connections that send
// nothing, a new one closes the one accepted the longest ago; after them,
// a raw stream quiet for evictQuiet; never one in the middle of a line.
func TestEvictIdle(t *testing.T) {
	const max = 8
	s, c, path := startServer(t, Options{MaxConnections: max})
	st := s.Stats()
	waitOpen := func(n int64) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); st.Connections.Load() != n; {
			if time.Now().After(deadline) {
				t.Fatalf("%d connections open, want %d", st.Connections.Load(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	var dialers []net.Conn
	for i := range max {
		d, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		dialers = append(dialers, d)
		waitOpen(int64(i + 1))
	}
	push(t, path, "real 1\n")
	if got := values(c); got != "real 1\n" {
		t.Fatalf("a pusher on a socket full of idle dialers: cache %q", got)
	}
	if closed, _ := closedWithin(dialers[0], 5*time.Second); !closed {
		t.Error("the dialer accepted first was not closed")
	}
	if closed, _ := closedWithin(dialers[1], 100*time.Millisecond); closed {
		t.Error("the dialer accepted second was closed")
	}
	if n := st.Evicted.Load(); n != 1 {
		t.Errorf("Evicted = %d, want 1", n)
	}

	// Now streams: the socket full of them, each in the middle of a line.
	for _, d := range dialers {
		d.Close()
	}
	waitOpen(0)
	var streams []net.Conn
	for i := range max {
		d, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		streams = append(streams, d)
		if _, err := d.Write([]byte("s{i=\"" + strconv.Itoa(i) + "\"}")); err != nil {
			t.Fatal(err)
		}
		waitOpen(int64(i + 1))
	}
	extra, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	if closed, _ := closedWithin(extra, 5*time.Second); !closed {
		t.Fatal("a connection over the limit with every stream mid-line was not closed")
	}
	if st.Refused.Load() != 1 || st.Evicted.Load() != 1 {
		t.Fatalf("refused %d evicted %d, want 1 and 1", st.Refused.Load(), st.Evicted.Load())
	}
	// Streams 1 to 7 end their lines, in order; stream 0 stays mid-line.
	for i := 1; i < max; i++ {
		if _, err := streams[i].Write([]byte(" 1\n")); err != nil {
			t.Fatal(err)
		}
		want := "s i=" + strconv.Itoa(i) + " 1\n"
		for deadline := time.Now().Add(5 * time.Second); !strings.Contains(values(c), want); {
			if time.Now().After(deadline) {
				t.Fatalf("%q not applied", want)
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(evictQuiet + 200*time.Millisecond)
	push(t, path, "real 2\n")
	if closed, _ := closedWithin(streams[1], 5*time.Second); !closed {
		t.Error("the stream quiet the longest was not closed")
	}
	if closed, _ := closedWithin(streams[0], 100*time.Millisecond); closed {
		t.Error("a stream in the middle of a line was closed")
	}
	streams[0].Write([]byte(" 5\n"))
	streams[0].(*net.UnixConn).CloseWrite()
	closedWithin(streams[0], 5*time.Second)
	if got := values(c); !strings.Contains(got, "real 2\n") || !strings.Contains(got, "s i=0 5\n") {
		t.Errorf("cache: %q", got)
	}
	if st.Evicted.Load() != 2 {
		t.Errorf("Evicted = %d, want 2", st.Evicted.Load())
	}
}

// failingListener fails its first accepts with EMFILE, then hands out
// the connections on conns until closed.
type failingListener struct {
	mu     sync.Mutex
	fails  int
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.fails > 0 {
		l.fails--
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "unix", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	l.mu.Unlock()
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *failingListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *failingListener) Addr() net.Addr { return &net.UnixAddr{Name: "fake", Net: "unix"} }

// logRecords keeps the messages logged, by level.
type logRecords struct {
	mu   sync.Mutex
	msgs []string
}

func (h *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecords) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecords) WithGroup(string) slog.Handler            { return h }
func (h *logRecords) Handle(_ context.Context, r slog.Record) error {
	m := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool { m += " " + a.String(); return true })
	h.mu.Lock()
	h.msgs = append(h.msgs, m)
	h.mu.Unlock()
	return nil
}

// Issue 12, point 1: failing accepts back off from 5 ms, doubling, and an
// episode is logged once when it begins and once when it ends.
func TestAcceptBackoff(t *testing.T) {
	const fails = 7 // 5+10+…+320 ms = 635 ms
	l := &failingListener{fails: fails, conns: make(chan net.Conn), closed: make(chan struct{})}
	logs := &logRecords{}
	s := NewServer(Options{Cache: cache.New(cache.Options{}), Logger: slog.New(logs)})
	served := make(chan error, 1)
	start := time.Now()
	go func() { served <- s.Serve(l) }()
	client, server := net.Pipe()
	defer client.Close()
	select {
	case l.conns <- server:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not accept again within 10s")
	}
	if took := time.Since(start); took < 600*time.Millisecond {
		t.Errorf("%d failed accepts took %v, want the backoff's 635ms or more", fails, took)
	}
	client.Write([]byte("after_emfile 1\n"))
	client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	var warn, info int
	for _, m := range logs.msgs {
		switch {
		case strings.HasPrefix(m, "WARN cannot accept"):
			warn++
		case strings.HasPrefix(m, "INFO accepting connections") && strings.Contains(m, "failed_accepts="+strconv.Itoa(fails)):
			info++
		}
	}
	if warn != 1 || info != 1 {
		t.Errorf("%d warnings and %d infos, want 1 and 1; logged:\n%s", warn, info, strings.Join(logs.msgs, "\n"))
	}
}

// keepAliveServer answers each request head with 200 and waits for the
// next, as an HTTP/1.1 server does.
type keepAliveServer struct{}

func (keepAliveServer) ServeConn(c net.Conn, prefix []byte) {
	defer c.Close()
	head := append([]byte(nil), prefix...)
	buf := make([]byte, 512)
	for {
		for !strings.Contains(string(head), "\r\n\r\n") {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			head = append(head, buf[:n]...)
		}
		head = head[strings.Index(string(head), "\r\n\r\n")+4:]
		if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")); err != nil {
			return
		}
		c.SetReadDeadline(time.Time{})
	}
}

// Issue 12, point 7: an HTTP keep-alive connection waiting for its next
// request is idle too, and makes room at MaxConnections; one in the
// middle of a request does not.
func TestEvictIdleKeepAlive(t *testing.T) {
	const max = 4
	s, c, path := startServer(t, Options{MaxConnections: max, HTTP: keepAliveServer{}})
	st := s.Stats()
	var conns []net.Conn
	for i := range max {
		d, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		conns = append(conns, d)
		if i == 0 {
			d.Write([]byte("GET / HTTP/1.1\r\n")) // the oldest, mid-request
			continue
		}
		d.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
		d.SetReadDeadline(time.Now().Add(5 * time.Second))
		var b [64]byte
		if n, err := d.Read(b[:]); err != nil || !strings.HasPrefix(string(b[:n]), "HTTP/1.1 200") {
			t.Fatalf("keep-alive request %d: %q %v", i, b[:n], err)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); st.Connections.Load() != max; {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open, want %d", st.Connections.Load(), max)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(evictQuiet + 200*time.Millisecond)
	push(t, path, "after_keepalive 1\n")
	if got := values(c); got != "after_keepalive 1\n" {
		t.Fatalf("a pusher on a socket full of keep-alive connections: cache %q", got)
	}
	if st.Evicted.Load() != 1 {
		t.Errorf("Evicted = %d, want 1", st.Evicted.Load())
	}
	if closed, _ := closedWithin(conns[0], 100*time.Millisecond); closed {
		t.Error("a connection in the middle of a request was closed")
	}
	closedN := 0
	for _, d := range conns[1:] {
		if closed, _ := closedWithin(d, 100*time.Millisecond); closed {
			closedN++
		}
	}
	if closedN != 1 {
		t.Errorf("%d idle keep-alive connections closed, want 1", closedN)
	}
}

// Issue 12, point 7, as a storm: twice MaxConnections dialers that connect,
// send nothing and reconnect as soon as they are closed, while a pusher
// pushes one line per connection: every line gets in.
func TestIdleDialerStorm(t *testing.T) {
	const max, dialers, pushes = 8, 16, 20
	s, c, path := startServer(t, Options{MaxConnections: max})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				d, err := net.Dial("unix", path)
				if err != nil {
					time.Sleep(time.Millisecond)
					continue
				}
				closedWithin(d, 2*time.Second)
				d.Close()
				time.Sleep(time.Millisecond)
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	for deadline := time.Now().Add(5 * time.Second); s.Stats().Connections.Load() < max; {
		if time.Now().After(deadline) {
			t.Fatalf("the dialers hold %d connections, want %d", s.Stats().Connections.Load(), max)
		}
		time.Sleep(5 * time.Millisecond)
	}
	retries := 0
	for i := range pushes {
		line := "storm_" + strconv.Itoa(i) + " 1\n"
		for try := 0; !strings.Contains(values(c), line); try++ {
			if try == 5 {
				t.Fatalf("push %d not applied after 5 tries", i)
			}
			if try > 0 {
				retries++
			}
			// A pusher that has not written yet looks like an idle
			// dialer for a moment and may itself be closed to make
			// room: that is a retry, as for a real client.
			if c, err := net.Dial("unix", path); err == nil {
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Write([]byte(line)); err == nil {
					c.(*net.UnixConn).CloseWrite()
					c.Read(make([]byte, 1)) // until the server has applied it and closed
				}
				c.Close()
			}
		}
	}
	t.Logf("%d pushes among %d reconnecting dialers: %d retried, %d connections closed to make room, %d refused",
		pushes, dialers, retries, s.Stats().Evicted.Load(), s.Stats().Refused.Load())
}

// evictOnReject calls evict from within the server's apply, when a line
// is rejected: what a new connection at MaxConnections does if it comes
// while a burst is being applied.
type evictOnReject struct {
	mu      sync.Mutex
	s       *Server
	evicted chan bool
}

func (h *evictOnReject) Enabled(context.Context, slog.Level) bool { return true }
func (h *evictOnReject) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *evictOnReject) WithGroup(string) slog.Handler            { return h }
func (h *evictOnReject) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "line rejected" {
		return nil
	}
	h.mu.Lock()
	s := h.s
	h.s = nil // once
	h.mu.Unlock()
	if s != nil {
		h.evicted <- s.evict()
	}
	return nil
}

// Review A, point 2: a raw stream quiet for over evictQuiet that has just
// sent a burst is busy while the burst is applied, and so is one holding
// the part of a line after it: evict closes neither, and no line is lost.
func TestNoEvictWhileApplying(t *testing.T) {
	h := &evictOnReject{evicted: make(chan bool, 1)}
	s, c, path := startServer(t, Options{Logger: slog.New(h)})
	a, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Write([]byte("warm 1\n")); err != nil {
		t.Fatal(err)
	}
	waitLines(t, s, 1)
	time.Sleep(evictQuiet + 200*time.Millisecond) // quiet long enough to be evicted
	h.mu.Lock()
	h.s = s
	h.mu.Unlock()
	// One write, read at once: nothing waits unread while it is applied.
	if _, err := a.Write([]byte("bad line!\ntail_metric 4")); err != nil {
		t.Fatal(err)
	}
	select {
	case evicted := <-h.evicted:
		if evicted {
			t.Error("a connection was evicted while applying the burst it had just sent")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the bad line was not rejected in 5s")
	}
	// "tail_metric 4" waits for the rest of its line.
	if s.evict() {
		t.Error("a connection holding part of a line was evicted")
	}
	if _, err := a.Write([]byte("2\n")); err != nil {
		t.Fatalf("writing the rest of the line: %v", err)
	}
	a.(*net.UnixConn).CloseWrite()
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	a.Read(b[:]) // returns when the server has closed its side: all applied
	if got := values(c); !strings.Contains(got, "tail_metric 42\n") {
		t.Errorf("the line split across the burst was lost:\n%s", got)
	}
}

// Review A, point 4: idle times count on the monotonic clock from
// clockBase, not in Unix nanoseconds, which a step of the wall clock would
// move: what a connection stores is at most the time since clockBase.
func TestIdleTimesMonotonic(t *testing.T) {
	s, _, path := startServer(t, Options{})
	push(t, path, "x 1\n") // closed since
	a, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Write([]byte("y 1\n")); err != nil {
		t.Fatal(err)
	}
	waitLines(t, s, 2)
	s.mu.Lock()
	var last []int64
	for _, tr := range s.conns {
		last = append(last, tr.last.Load())
	}
	s.mu.Unlock()
	now := nanotime()
	if len(last) != 1 || last[0] <= 0 || last[0] > now {
		t.Errorf("last activity of the open connection: %v, want in (0, %d], the nanoseconds since clockBase", last, now)
	}
	// A wall-clock reading stripped of its monotonic part is not what
	// nanotime reads: clockBase carries a monotonic reading.
	if clockBase.Round(0) == clockBase {
		t.Error("clockBase has no monotonic clock reading")
	}
}

// waitLines waits (5 s at most) until s has applied n lines.
func waitLines(t *testing.T, s *Server, n uint64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); s.Stats().Lines.Load() < n; {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d lines applied in 5s", s.Stats().Lines.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}
