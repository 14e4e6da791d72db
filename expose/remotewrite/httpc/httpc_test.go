package httpc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The tests may import net/http; the package must not.

// rawServer accepts connections on 127.0.0.1 and runs serve on each until
// the test ends; it counts the connections accepted.
func rawServer(t testing.TB, serve func(c net.Conn, br *bufio.Reader)) (*url.URL, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(time.Minute))
				serve(c, bufio.NewReader(c))
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return mustURL(t, "http://"+ln.Addr().String()+"/api/v1/write"), &n
}

// readRequest reads one request and its body from br.
func readRequest(br *bufio.Reader) (*http.Request, []byte, error) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(req.Body)
	return req, body, err
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func post(c *Client, body string) (Response, error) {
	return c.Do(context.Background(), "POST", []Header{{"Content-Type", "text/plain"}}, []byte(body))
}

func TestPost(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got := fmt.Sprintf("%s %s %s %s|%s|%s|%q", r.Method, r.URL.RequestURI(), r.Host, r.Proto,
			r.Header.Get("Content-Encoding"), r.Header.Get("X-Scope-OrgID"), body)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(202)
		io.WriteString(w, got)
	}))
	defer srv.Close()
	u := mustURL(t, srv.URL+"/api/v1/push?a=b%20c")
	c := newClient(t, Config{URL: u, Timeout: 10 * time.Second})
	resp, err := c.Do(context.Background(), "POST",
		[]Header{{"Content-Encoding", "snappy"}, {"X-Scope-OrgID", "tenant-1"}}, []byte("hello\x00world"))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`POST /api/v1/push?a=b%%20c %s HTTP/1.1|snappy|tenant-1|"hello\x00world"`, u.Host)
	if resp.Status != 202 || string(resp.Body) != want {
		t.Fatalf("got %d %q, want 202 %q", resp.Status, resp.Body, want)
	}
}

// echoServer is a net/http server that answers with the request's body;
// it counts the connections accepted.
func echoServer(t *testing.T) (*url.URL, *atomic.Int32) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Write(body)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return mustURL(t, srv.URL+"/"), &conns
}

func TestKeepAliveReusesOneConnection(t *testing.T) {
	u, conns := echoServer(t)
	c := newClient(t, Config{URL: u})
	for i := range 5 {
		msg := strings.Repeat("x", i*1000)
		resp, err := post(c, msg)
		if err != nil || resp.Status != 200 || string(resp.Body) != msg {
			t.Fatalf("request %d: %v %d %d bytes", i, err, resp.Status, len(resp.Body))
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 5 requests, want 1", n)
	}
}

// answerAll answers every request on a connection with raw, up to n.
func answerAll(raw string, n int) func(net.Conn, *bufio.Reader) {
	return func(c net.Conn, br *bufio.Reader) {
		for range n {
			if _, _, err := readRequest(br); err != nil {
				return
			}
			if _, err := io.WriteString(c, raw); err != nil {
				return
			}
		}
	}
}

// answer reads a request, writes raw and closes the connection.
func answer(raw string) func(net.Conn, *bufio.Reader) {
	return func(c net.Conn, br *bufio.Reader) {
		if _, _, err := readRequest(br); err == nil {
			io.WriteString(c, raw)
		}
	}
}

func TestResponses(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		status    int
		body      string
		err       string
	}{
		{"content-length", "HTTP/1.1 400 Bad Request\r\nContent-Length: 5\r\n\r\nhello", 400, "hello", ""},
		{"no reason", "HTTP/1.1 204\r\n\r\n", 204, "", ""},
		{"chunked", "HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nTrailer: x\r\n\r\n", 500, "hello, world", ""},
		{"chunked wins over length", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 200, "ok", ""},
		{"close-delimited", "HTTP/1.1 503 Busy\r\nConnection: close\r\n\r\ncome back later", 503, "come back later", ""},
		{"http/1.0", "HTTP/1.0 200 OK\r\n\r\nold", 200, "old", ""},
		{"100 continue skipped", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, "ok", ""},
		{"redirect returned", "HTTP/1.1 301 Moved Permanently\r\nLocation: http://127.0.0.1:1/\r\nContent-Length: 0\r\n\r\n", 301, "", ""},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", 200, "ok", ""},
		{"garbage status line", "SSH-2.0-OpenSSH_9.6\r\n\r\n", 0, "", "malformed status line"},
		{"http/2 status line", "HTTP/2 200\r\n\r\n", 0, "", "malformed status line"},
		{"short status", "HTTP/1.1 20\r\n\r\n", 0, "", "malformed status line"},
		{"status below 100", "HTTP/1.1 099 x\r\n\r\n", 0, "", "malformed status line"},
		{"letters in status", "HTTP/1.1 2x0 x\r\n\r\n", 0, "", "malformed status line"},
		{"switching protocols", "HTTP/1.1 101 Switching Protocols\r\n\r\n", 0, "", "interim response 101"},
		{"endless 100s", strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", 20), 0, "", "interim response 100"},
		{"header without colon", "HTTP/1.1 200 OK\r\nnonsense\r\n\r\n", 0, "", "malformed header line"},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: b\r\n  c\r\n\r\n", 0, "", "malformed header line"},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, "", "invalid Content-Length"},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 0, "", "invalid Content-Length"},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, "", "malformed chunk size"},
		{"chunk without CRLF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n0\r\n\r\n", 0, "", "malformed chunked body"},
		{"too many headers", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-A: b\r\n", 101) + "\r\n", 0, "", "more than 100 header lines"},
		{"long header line", "HTTP/1.1 200 OK\r\nX-A: " + strings.Repeat("b", 5000) + "\r\n\r\n", 0, "", "longer than 4 KiB"},
		{"closed mid-body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", 0, "", "before the end of the response body"},
		{"closed mid-chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nhello", 0, "", "before the end of the response body"},
		{"closed before trailer end", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", 0, "", "before the end of the response body"},
		{"closed mid-head", "HTTP/1.1 200 OK\r\nContent-", 0, "", "unexpected EOF"},
		{"closed at once", "", 0, "", "EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, _ := rawServer(t, answer(tc.raw))
			c := newClient(t, Config{URL: u, Timeout: 10 * time.Second})
			resp, err := post(c, "x")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v (%d %q), want an error with %q", err, resp.Status, resp.Body, tc.err)
				}
				return
			}
			if err != nil || resp.Status != tc.status || string(resp.Body) != tc.body {
				t.Fatalf("got %v %d %q, want %d %q", err, resp.Status, resp.Body, tc.status, tc.body)
			}
		})
	}
}

func TestOversizeBodyIsBounded(t *testing.T) {
	const huge = 64 << 20
	for _, framing := range []string{"length", "chunked", "close"} {
		t.Run(framing, func(t *testing.T) {
			var sent atomic.Int64
			u, _ := rawServer(t, func(c net.Conn, br *bufio.Reader) {
				if _, _, err := readRequest(br); err != nil {
					return
				}
				switch framing {
				case "length":
					fmt.Fprintf(c, "HTTP/1.1 413 Too Large\r\nContent-Length: %d\r\n\r\n", huge)
				case "chunked":
					io.WriteString(c, "HTTP/1.1 413 Too Large\r\nTransfer-Encoding: chunked\r\n\r\n")
				case "close":
					io.WriteString(c, "HTTP/1.1 413 Too Large\r\n\r\n")
				}
				chunk := bytes.Repeat([]byte("y"), 32<<10)
				for sent.Load() < huge {
					if framing == "chunked" {
						fmt.Fprintf(c, "%x\r\n", len(chunk))
					}
					n, err := c.Write(chunk)
					sent.Add(int64(n))
					if err != nil {
						return
					}
					if framing == "chunked" {
						io.WriteString(c, "\r\n")
					}
				}
			})
			c := newClient(t, Config{URL: u, Timeout: 10 * time.Second, MaxResponseBody: 1000})
			resp, err := post(c, "x")
			if err != nil || resp.Status != 413 || len(resp.Body) != 1000 || resp.Body[999] != 'y' {
				t.Fatalf("got %v %d, %d bytes of body, want 413 and 1000 bytes", err, resp.Status, len(resp.Body))
			}
			c.Close() // the server's writes fail from now on
			if n := sent.Load(); n >= huge {
				t.Fatalf("the server could send the whole %d bytes", n)
			}
		})
	}
}

func TestNeverAnsweringServerTimesOut(t *testing.T) {
	u, _ := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		io.Copy(io.Discard, br) // reads, never answers
	})
	c := newClient(t, Config{URL: u, Timeout: 200 * time.Millisecond})
	start := time.Now()
	_, err := post(c, "x")
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("got %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v with a timeout of 200ms", d)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
	}{
		{"120", 2 * time.Minute},
		{"0", 0},
		{"", 0},
		{"-5", 0},
		{"1.5", 0},
		{"12 ", 0},
		{"99999999999999999999999", MaxRetryAfter},
		{"3600", MaxRetryAfter},
		{"Mon, 07 Dec 2026 05:01:30 GMT", 90 * time.Second},
		{"Monday, 07-Dec-26 05:00:10 GMT", 10 * time.Second},
		{"Mon Dec  7 05:00:20 2026", 20 * time.Second},
		{"Mon, 07 Dec 2026 04:59:00 GMT", 0}, // past
		{"Mon, 07 Dec 2027 05:00:00 GMT", MaxRetryAfter},
		{"tomorrow", 0},
	} {
		if got := parseRetryAfter([]byte(tc.v), now); got != tc.want {
			t.Errorf("Retry-After %q: got %v, want %v", tc.v, got, tc.want)
		}
	}

	date := time.Now().Add(time.Minute).UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT")
	for _, tc := range []struct {
		header   string
		min, max time.Duration
	}{
		{"Retry-After: 7", 7 * time.Second, 7 * time.Second},
		{"retry-after:" + date, 50 * time.Second, time.Minute},
	} {
		u, _ := rawServer(t, answer("HTTP/1.1 429 Too Many Requests\r\n"+tc.header+"\r\nContent-Length: 0\r\n\r\n"))
		c := newClient(t, Config{URL: u, Timeout: 10 * time.Second})
		resp, err := post(c, "x")
		if err != nil || resp.Status != 429 || resp.RetryAfter < tc.min || resp.RetryAfter > tc.max {
			t.Errorf("%s: got %v %d %v, want 429 and %v to %v", tc.header, err, resp.Status, resp.RetryAfter, tc.min, tc.max)
		}
	}
}

// A kept-alive connection the receiver closed as the request arrived is
// replaced, once, with no error for the caller.
func TestStaleConnectionRetriedOnce(t *testing.T) {
	for _, fresh := range []string{"answers", "closes too"} {
		t.Run(fresh, func(t *testing.T) {
			var first atomic.Bool
			u, conns := rawServer(t, func(c net.Conn, br *bufio.Reader) {
				if first.CompareAndSwap(false, true) {
					if _, _, err := readRequest(br); err != nil {
						return
					}
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
					readRequest(br) // and close unanswered
					return
				}
				if fresh == "answers" {
					answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")(c, br)
				}
			})
			c := newClient(t, Config{URL: u, Timeout: 10 * time.Second})
			if resp, err := post(c, "x"); err != nil || resp.Status != 200 {
				t.Fatalf("first request: %v %d", err, resp.Status)
			}
			resp, err := post(c, "x")
			if fresh == "answers" && (err != nil || string(resp.Body) != "ok") {
				t.Fatalf("second request: got %v %q, want ok from a new connection", err, resp.Body)
			}
			if fresh == "closes too" && err == nil {
				t.Fatalf("second request: got %d, want an error (no second retry)", resp.Status)
			}
			if n := conns.Load(); n != 2 {
				t.Fatalf("%d connections, want 2", n)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	u, _ := rawServer(t, func(c net.Conn, br *bufio.Reader) { io.Copy(io.Discard, br) })
	c := newClient(t, Config{URL: u, Timeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.Do(ctx, "POST", nil, []byte("x"))
	if !errors.Is(err, context.Canceled) || time.Since(start) > 10*time.Second {
		t.Fatalf("got %v after %v, want context.Canceled soon", err, time.Since(start))
	}

	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = c.Do(ctx, "POST", nil, []byte("x"))
	if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > 10*time.Second {
		t.Fatalf("got %v after %v, want a deadline error soon", err, time.Since(start))
	}
}

// TestContextsAndKeepAlive: a context per request, cancelled after it as
// usual, and a long-lived context cancelled while its connection is idle,
// spoil neither the kept-alive connection nor the next request.
func TestContextsAndKeepAlive(t *testing.T) {
	u, conns := echoServer(t)
	c := newClient(t, Config{URL: u})
	do := func(ctx context.Context, i int) {
		t.Helper()
		resp, err := c.Do(ctx, "POST", nil, []byte("x"))
		if err != nil || resp.Status != 200 {
			t.Fatalf("request %d: %v %d", i, err, resp.Status)
		}
	}
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		do(ctx, i)
		cancel()
	}
	long, cancelLong := context.WithCancel(context.Background())
	do(long, 3)
	do(long, 4)
	cancelLong()
	time.Sleep(10 * time.Millisecond) // the watch has moved the idle connection's deadline
	do(context.Background(), 5)
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 6 requests, want 1", n)
	}
}

// closeWhile starts a request, calls Close once got says the server has
// it, and wants the request to fail soon after.
func closeWhile(t *testing.T, c *Client, got <-chan struct{}) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := post(c, "x")
		done <- err
	}()
	<-got
	c.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a request in flight at Close succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not abort the request in flight")
	}
}

func TestCloseAbortsAndRefuses(t *testing.T) {
	got := make(chan struct{}, 1)
	u, _ := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		readRequest(br)
		got <- struct{}{}
		io.Copy(io.Discard, br)
	})
	c := newClient(t, Config{URL: u, Timeout: time.Minute})
	closeWhile(t, c, got)
	if _, err := post(c, "x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: got %v, want ErrClosed", err)
	}
}

// A receiver that answers before reading the whole body and closes: the
// answer is returned, not the write error.
func TestEarlyAnswer(t *testing.T) {
	u, _ := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		br.ReadString('\n')
		io.WriteString(c, "HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\nContent-Length: 8\r\n\r\ntoo big\n")
		c.(*net.TCPConn).CloseWrite()
		time.Sleep(50 * time.Millisecond)
		c.(*net.TCPConn).SetLinger(0) // reset: the client's write fails
	})
	c := newClient(t, Config{URL: u, Timeout: 10 * time.Second})
	resp, err := c.Do(context.Background(), "POST", nil, make([]byte, 16<<20))
	if err != nil || resp.Status != 413 || string(resp.Body) != "too big\n" {
		t.Fatalf("got %v %d %q, want 413 too big", err, resp.Status, resp.Body)
	}
}

func TestHeaderValidation(t *testing.T) {
	u, conns := rawServer(t, answer("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
	c := newClient(t, Config{URL: u})
	for _, h := range []Header{
		{"X-A", "b\r\nX-Injected: 1"},
		{"X-A", "b\nc"},
		{"X-A", "b\x00"},
		{"X-A\r\nX-B", "c"},
		{"X A", "b"},
		{"", "b"},
		{"X-Ä", "b"},
		{"Host", "evil"},
		{"content-length", "5"},
		{"Transfer-Encoding", "chunked"},
		{"Connection", "close"},
	} {
		if err := CheckHeader(h); err == nil {
			t.Errorf("CheckHeader(%q) accepted", h)
		}
		if _, err := c.Do(context.Background(), "POST", []Header{h}, nil); err == nil {
			t.Errorf("Do with %q succeeded", h)
		}
	}
	for _, m := range []string{"", "PO ST", "POST\r\n"} {
		if _, err := c.Do(context.Background(), m, nil, nil); err == nil {
			t.Errorf("Do with method %q succeeded", m)
		}
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("%d connections for invalid requests", n)
	}
	for _, h := range []Header{{"X-Scope-OrgID", "tenant-1"}, {"Authorization", "Bearer a.b\tc"}, {"X-Empty", ""}} {
		if err := CheckHeader(h); err != nil {
			t.Errorf("CheckHeader(%q): %v", h, err)
		}
	}
}

func TestNewValidation(t *testing.T) {
	ok := mustURL(t, "https://receiver.test/api/v1/write")
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no URL", Config{}},
		{"ftp", Config{URL: mustURL(t, "ftp://receiver.test/")}},
		{"no host", Config{URL: mustURL(t, "http:///write")}},
		{"user in URL", Config{URL: mustURL(t, "https://u:p@receiver.test/")}},
		{"TLS settings for http", Config{URL: mustURL(t, "http://receiver.test/"), CAFile: "ca.pem"}},
		{"insecure for http", Config{URL: mustURL(t, "http://receiver.test/"), InsecureSkipVerify: true}},
		{"cert without key", Config{URL: ok, CertFile: "c.pem"}},
		{"key without cert", Config{URL: ok, KeyFile: "k.pem"}},
		{"negative timeout", Config{URL: ok, Timeout: -1}},
		{"negative body", Config{URL: ok, MaxResponseBody: -1}},
		{"https proxy", Config{URL: ok, ProxyURL: mustURL(t, "https://proxy.test:3128")}},
		{"socks proxy", Config{URL: ok, ProxyURL: mustURL(t, "socks5://proxy.test:1080")}},
		{"proxy without host", Config{URL: ok, ProxyURL: mustURL(t, "http://:3128")}},
		{"opaque URL", Config{URL: mustURL(t, "http:receiver.test")}},
		{"secrets in URL", Config{URL: mustURL(t, "https://user:hunter2@receiver.test/?api_key=hunter2")}},
		{"secrets in proxy URL", Config{URL: ok, ProxyURL: mustURL(t, "socks5://user:hunter2@proxy.test/?k=hunter2")}},
	} {
		_, err := New(tc.cfg)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error shows a secret: %v", tc.name, err)
		}
	}
	c, err := New(Config{URL: mustURL(t, "http://[::1]/write?x=1"), ProxyURL: mustURL(t, "http://proxy.test")})
	if err != nil {
		t.Fatal(err)
	}
	if c.host != "[::1]" || c.target != "[::1]:80" || c.addr != "proxy.test:80" || c.uri != "/write?x=1" ||
		c.cfg.Timeout != 30*time.Second || c.cfg.MaxResponseBody != 64<<10 {
		t.Fatalf("got host %q target %q addr %q uri %q timeout %v body %d", c.host, c.target, c.addr, c.uri,
			c.cfg.Timeout, c.cfg.MaxResponseBody)
	}
	if c, err = New(Config{URL: mustURL(t, "http://receiver.test")}); err != nil || c.uri != "/" {
		t.Fatalf("no path: %v, uri %q", err, c.uri)
	}
}

// Do may be called from several goroutines: each request gets its own
// connection while another is busy, and one is kept afterwards.
func TestConcurrentDo(t *testing.T) {
	u, conns := echoServer(t)
	c := newClient(t, Config{URL: u, Timeout: 10 * time.Second})
	var wg sync.WaitGroup
	errs := make(chan error, 4*10)
	for g := range 4 {
		wg.Go(func() {
			for i := range 10 {
				msg := fmt.Sprintf("goroutine %d request %d", g, i)
				resp, err := post(c, msg)
				if err == nil && string(resp.Body) != msg {
					err = fmt.Errorf("got %q for %q", resp.Body, msg)
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := conns.Load(); n < 1 || n > 40 {
		t.Fatalf("%d connections", n)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idle == nil || len(c.busy) != 0 {
		t.Fatalf("after the requests: idle %v, %d busy", c.idle != nil, len(c.busy))
	}
}

// Whether a connection carries the next request follows the response:
// three requests, against a server that would answer all of them on one
// connection.
func TestConnectionReuse(t *testing.T) {
	big := strings.Repeat("z", 100<<10)
	for _, tc := range []struct {
		name, raw string
		conns     int32
	}{
		{"keep-alive", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 1},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 1},
		{"no body", "HTTP/1.1 204 No Content\r\n\r\n", 1},
		{"body drained", "HTTP/1.1 400 Bad\r\nContent-Length: 102400\r\n\r\n" + big, 1},
		{"Connection: close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", 3},
		{"Connection: close among others", "HTTP/1.1 200 OK\r\nConnection: foo, Close\r\nContent-Length: 2\r\n\r\nok", 3},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 3},
		{"HTTP/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", 1},
		{"length and chunked", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, conns := rawServer(t, answerAll(tc.raw, 3))
			c := newClient(t, Config{URL: u, Timeout: 10 * time.Second, MaxResponseBody: 16})
			for i := range 3 {
				if _, err := post(c, "x"); err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
			}
			if n := conns.Load(); n != tc.conns {
				t.Fatalf("%d connections, want %d", n, tc.conns)
			}
		})
	}

	// Past the drain limit the connection is closed, not read to its end.
	u, conns := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		if _, _, err := readRequest(br); err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 400 Bad\r\nContent-Length: %d\r\n\r\n", 1<<20)
		c.Write(bytes.Repeat([]byte("z"), 1<<20))
	})
	c := newClient(t, Config{URL: u, Timeout: 10 * time.Second, MaxResponseBody: 16})
	for i := range 2 {
		if resp, err := post(c, "x"); err != nil || len(resp.Body) != 16 {
			t.Fatalf("request %d: %v, %d bytes", i, err, len(resp.Body))
		}
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections past the drain limit, want 2", n)
	}
}
