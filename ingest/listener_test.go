package ingest

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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
