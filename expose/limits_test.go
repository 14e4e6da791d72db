package expose

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/push-gateway/push-gateway/cache"
)

// limitServer serves handler with s's limits on a loopback port.
func limitServer(t *testing.T, s *Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-done
	})
	return l.Addr().String()
}

// keepAlive opens a connection, has one request answered on it and leaves
// it open and idle. It returns the connection and its reader.
func keepAlive(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	br := bufio.NewReader(c)
	fmt.Fprint(c, "GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := readResponse(br); err != nil {
		t.Fatalf("first request: %v", err)
	}
	return c, br
}

// readResponse reads one response with a Content-Length body.
func readResponse(br *bufio.Reader) error {
	status, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(status, "HTTP/1.1 200") {
		return fmt.Errorf("status line %q", status)
	}
	n := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return err
		}
		if line == "\r\n" {
			break
		}
		fmt.Sscanf(line, "Content-Length: %d", &n)
	}
	_, err = io.CopyN(io.Discard, br, int64(n))
	return err
}

// closedByServer tells whether the server has closed c: a read ends with
// EOF or a reset within a second, not with the deadline.
func closedByServer(c net.Conn, br *bufio.Reader) bool {
	c.SetReadDeadline(time.Now().Add(time.Second))
	_, err := br.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// TestMaxConnsClosesIdleFirst: at MaxConns, a new connection closes the one
// idle the longest; with every connection busy, the new one is closed and
// counted. Without the bound, 1,100 idle keep-alive connections took every
// file descriptor of the daemon.
func TestMaxConnsClosesIdleFirst(t *testing.T) {
	release := make(chan struct{})
	var entered sync.WaitGroup
	handler := func(w *Response, r *Request) {
		if r.Path == "/block" {
			entered.Done()
			<-release
		}
		w.Write([]byte("OK\n"))
	}
	s := &Server{Handler: handler, MaxConns: 4}
	addr := limitServer(t, s)
	var conns []net.Conn
	var readers []*bufio.Reader
	for i := 0; i < 4; i++ {
		c, br := keepAlive(t, addr)
		conns, readers = append(conns, c), append(readers, br)
		time.Sleep(20 * time.Millisecond) // an order of idleness
	}
	// A fifth: the first, idle the longest, makes room.
	c5, br5 := keepAlive(t, addr)
	if !closedByServer(conns[0], readers[0]) {
		t.Fatal("the connection idle the longest is still open after a connection over MaxConns=4")
	}
	for i := 1; i < 4; i++ {
		if closedByServer(conns[i], readers[i]) {
			t.Fatalf("connection %d was closed; only the one idle the longest should be", i)
		}
	}
	if got := s.Stats.Evicted.Load(); got != 1 {
		t.Errorf("Evicted = %d, want 1", got)
	}
	// Every open connection busy: a new one is closed at once.
	busy := append(conns[1:4:4], c5)
	entered.Add(len(busy))
	for _, c := range busy {
		fmt.Fprint(c, "GET /block HTTP/1.1\r\nHost: x\r\n\r\n")
	}
	entered.Wait()
	extra, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	fmt.Fprint(extra, "GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
	if !closedByServer(extra, bufio.NewReader(extra)) {
		t.Error("a connection over MaxConns with none idle was served")
	}
	if got := s.Stats.Refused.Load(); got != 1 {
		t.Errorf("Refused = %d, want 1", got)
	}
	close(release)
	for i, c := range busy {
		br := br5
		if i < 3 {
			br = readers[i+1]
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if err := readResponse(br); err != nil {
			t.Errorf("busy connection %d: %v", i, err)
		}
	}
	if got := s.Stats.Conns.Load(); got != 4 {
		t.Errorf("Conns = %d, want 4", got)
	}
}

// TestAcceptErrorsBackOff: a listener that keeps failing is retried with a
// growing delay and logged once, not every 100 ms.
func TestAcceptErrorsBackOff(t *testing.T) {
	l := &failingListener{err: syscall.EMFILE, fail: 12, drained: make(chan struct{}), closed: make(chan struct{})}
	var logged strings.Builder
	var mu sync.Mutex
	s := &Server{Handler: echo, Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &logged, mu: &mu}, nil))}
	done := make(chan error, 1)
	go func() { done <- s.Serve(l) }()
	select {
	case <-l.drained:
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not try 12 failing accepts within 20 s")
	}
	s.Shutdown(context.Background())
	<-done
	mu.Lock()
	out := logged.String()
	mu.Unlock()
	if n := strings.Count(out, "cannot accept"); n != 1 {
		t.Errorf("logged %d warnings for one episode of 12 failures, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "failed_accepts=12") {
		t.Errorf("no line saying accepting works again after 12 failures:\n%s", out)
	}
	// 5 ms doubling: the 12 tries wait about 5+10+...+1000 ms, at least
	// 2 s, where a fixed 100 ms would take 1.2 s.
	if d := l.last.Sub(l.first); d < 2*time.Second {
		t.Errorf("12 failures took %v; want a backoff of 2 s or more", d)
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// failingListener fails fail times, then returns one connection (to end
// the episode), then blocks until closed.
type failingListener struct {
	err         error
	fail        int
	calls       int
	first, last time.Time
	drained     chan struct{}
	closed      chan struct{}
	closeOnce   sync.Once
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.calls++
	now := time.Now()
	if l.calls == 1 {
		l.first = now
	}
	if l.calls <= l.fail {
		l.last = now
		return nil, l.err
	}
	if l.calls == l.fail+1 {
		c1, c2 := net.Pipe()
		c2.Close()
		return c1, nil
	}
	if l.calls == l.fail+2 {
		close(l.drained)
	}
	<-l.closed
	return nil, net.ErrClosed
}

func (l *failingListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *failingListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// dialSlow connects with a small receive buffer, as a client that reads
// nothing and advertises a tiny window.
func dialSlow(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// bigHandler writes 64 MiB in 32 KiB writes and reports when it returns.
func bigHandler(returned chan<- error) func(*Response, *Request) {
	return func(w *Response, r *Request) {
		chunk := make([]byte, 32<<10)
		var err error
		for i := 0; i < 2048 && err == nil; i++ {
			_, err = w.Write(chunk)
		}
		returned <- err
	}
}

// TestStalledReaderIsCut: a client that reads nothing loses the connection
// after WriteStallTimeout, not after WriteTimeout: it held a scrape slot
// and a copy of the cache for two minutes before.
func TestStalledReaderIsCut(t *testing.T) {
	returned := make(chan error, 1)
	s := &Server{Handler: bigHandler(returned), WriteTimeout: time.Hour, WriteStallTimeout: 300 * time.Millisecond}
	addr := limitServer(t, s)
	c := dialSlow(t, addr)
	fmt.Fprint(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n") // and never read
	select {
	case err := <-returned:
		if err == nil {
			t.Fatal("the handler wrote 64 MiB to a client that reads nothing")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("a response to a client that reads nothing was not cut within 15 s (WriteStallTimeout 300ms)")
	}
	if got := s.Stats.Stalled.Load(); got != 1 {
		t.Errorf("Stalled = %d, want 1", got)
	}
}

// TestSlowReaderIsCut: a client that reads, but far below MinWriteRate,
// is cut too, though each write makes progress.
func TestSlowReaderIsCut(t *testing.T) {
	returned := make(chan error, 1)
	s := &Server{Handler: bigHandler(returned), WriteTimeout: time.Hour,
		WriteStallTimeout: 2 * time.Second, MinWriteRate: 4 << 20}
	addr := limitServer(t, s)
	c := dialSlow(t, addr)
	fmt.Fprint(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	stop := make(chan struct{})
	defer close(stop)
	go func() { // about 400 KiB/s: 64 MiB would take nearly three minutes
		buf := make([]byte, 4<<10)
		for i := 0; i < 60000; i++ {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}()
	select {
	case err := <-returned:
		if err == nil {
			t.Fatal("the handler wrote 64 MiB at 400 KiB/s with MinWriteRate 4 MiB/s")
		}
	case <-time.After(40 * time.Second):
		t.Fatal("a response read at 400 KiB/s was not cut within 40 s (MinWriteRate 4 MiB/s)")
	}
}

// TestScrapeMemoryBudget: while a scrape holds its copy of the cache, a
// second one that would take the scrape memory over its budget gets 503;
// once the first is done (here: cut as stalled), scrapes succeed again.
func TestScrapeMemoryBudget(t *testing.T) {
	c := bigCache()
	need := int64(c.SnapshotBytes()) + scrapeOverhead
	h := New(Options{Cache: c, ScrapeMemory: need + need/2}) // one scrape, not two
	s := &Server{Handler: h.Serve, WriteStallTimeout: 500 * time.Millisecond}
	addr := limitServer(t, s)
	slow := dialSlow(t, addr)
	fmt.Fprint(slow, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n") // and never read
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.mu.Lock()
		holders := len(h.active)
		h.mu.Unlock()
		if holders == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slow scrape never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	code, _, _ := request(t, addr, "GET", "/metrics")
	if code != 503 {
		t.Errorf("a second scrape over the scrape memory budget got %d, want 503", code)
	}
	if h.o.Refused.Load() != 1 {
		t.Errorf("Refused = %d, want 1", h.o.Refused.Load())
	}
	// The stalled scrape is cut, and its memory returns to the budget.
	for {
		code, _, body := request(t, addr, "GET", "/metrics")
		if code == 200 {
			if !strings.Contains(string(body), `big{i="00199999"} 1`) {
				t.Error("the scrape after the stalled one is incomplete")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("scrapes still get %d 10 s after the stalled one began", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStalledScrapeGivesWay: with every scrape slot held by clients that
// read nothing, a new scrape cuts the one stalled the longest instead of
// getting 503 until their write deadlines pass.
func TestStalledScrapeGivesWay(t *testing.T) {
	c := bigCache()
	h := New(Options{Cache: c, MaxInFlight: 2})
	s := &Server{Handler: h.Serve, WriteStallTimeout: time.Minute, MinWriteRate: 1}
	addr := limitServer(t, s)
	for i := 0; i < 2; i++ {
		slow := dialSlow(t, addr)
		fmt.Fprint(slow, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n") // and never read
	}
	deadline := time.Now().Add(30 * time.Second)
	for { // both stalled in a write for longer than stalledAfter
		h.mu.Lock()
		n := 0
		for _, a := range h.active {
			if a.stalled(time.Now()) > stalledAfter+100*time.Millisecond {
				n++
			}
		}
		h.mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the two slow scrapes did not stall within 30 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	code, _, body := request(t, addr, "GET", "/metrics")
	if code != 200 || !strings.Contains(string(body), `big{i="00199999"} 1`) {
		t.Fatalf("a scrape while two stalled ones held both slots got %d (%d bytes), want the whole exposition", code, len(body))
	}
	if got := s.Stats.Stalled.Load(); got != 1 {
		t.Errorf("Stalled = %d, want 1: one stalled scrape cut to make room", got)
	}
	if got := h.o.Refused.Load(); got != 0 {
		t.Errorf("Refused = %d, want 0", got)
	}
}

// bigCache holds an exposition of about 4 MB: more than the kernel's
// buffers on loopback take from a client that does not read.
func bigCache() *cache.Cache {
	c := cache.New(cache.Options{Budget: 16 << 20})
	for i := 0; i < 200000; i++ {
		c.Set([]byte("big"), []cache.Label{{Name: []byte("i"), Value: fmt.Appendf(nil, "%08d", i)}}, 1)
	}
	return c
}

// TestLateAnswerIsSent: the time a handler takes before its first write (a
// slow upload, a body timeout's 408, a wait for a slot) does not count
// against the client's rate: the answer goes out. It was lost whenever it
// came later than WriteStallTimeout after the head.
func TestLateAnswerIsSent(t *testing.T) {
	s := &Server{WriteStallTimeout: 300 * time.Millisecond, Handler: func(w *Response, r *Request) {
		time.Sleep(time.Second) // reading a slow body, say
		w.Error(408, "timed out reading the body")
	}}
	addr := limitServer(t, s)
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 408") {
		t.Errorf("answer after 1 s with WriteStallTimeout 300ms: %q, %v", line, err)
	}
	if got := s.Stats.Stalled.Load(); got != 0 {
		t.Errorf("Stalled = %d, want 0", got)
	}
}

// TestSlowHeadsGiveWay: at MaxConns, connections that trickle a request
// head (one byte and then nothing) make room once it has taken a second,
// instead of keeping every scrape out for the head timeout, again and again.
func TestSlowHeadsGiveWay(t *testing.T) {
	s := &Server{MaxConns: 4, Handler: func(w *Response, r *Request) { w.Write([]byte("ok\n")) }}
	addr := limitServer(t, s)
	for i := 0; i < 4; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("G"))
	}
	time.Sleep(1500 * time.Millisecond) // the heads have taken more than stalledHead
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := bufio.NewReader(c).ReadString('\n'); !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Errorf("a scrape while 4 slow heads held MaxConns=4: %q, %v", line, err)
	}
	if s.Stats.Evicted.Load() != 1 || s.Stats.Refused.Load() != 0 {
		t.Errorf("Evicted %d, Refused %d; want 1, 0", s.Stats.Evicted.Load(), s.Stats.Refused.Load())
	}
}

// TestFreshGoBeforeKeptAlive: to make room, a connection that has not sent
// a request for a second (here, one stuck in its TLS handshake) goes
// before the idle keep-alive connection of a client that scrapes, however
// long that one has been idle.
func TestFreshGoBeforeKeptAlive(t *testing.T) {
	s := &Server{MaxConns: 2,
		Handshake: func(nc net.Conn) (net.Conn, bool) {
			var b [1]byte
			_, err := nc.Read(b[:]) // a one-byte "handshake"
			return nc, err == nil
		},
		Handler: func(w *Response, r *Request) { w.Write([]byte("ok\n")) }}
	addr := limitServer(t, s)
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	scraper := dial()
	scraper.Write([]byte("HGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"))
	br := bufio.NewReader(scraper)
	scraper.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := readResponse(br); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	stuck := dial() // a handshake that never ends
	time.Sleep(1200 * time.Millisecond)
	dial() // over MaxConns: one of the two makes room
	stuckBR := bufio.NewReader(stuck)
	if !closedByServer(stuck, stuckBR) {
		t.Error("the connection stuck in its handshake is still open")
	}
	if closedByServer(scraper, br) {
		t.Error("the scraper's idle keep-alive connection was closed before the one stuck in its handshake")
	}
}
