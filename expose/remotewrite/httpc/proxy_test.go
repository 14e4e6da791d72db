package httpc

import (
	"bufio"
	"io"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// connectProxy starts a CONNECT proxy on 127.0.0.1. With auth set, it
// wants that Proxy-Authorization and answers 407 otherwise. It tunnels
// only to 127.0.0.1 and counts the tunnels it opened.
func connectProxy(t *testing.T, auth string) (*url.URL, *atomic.Int32) {
	t.Helper()
	var tunnels atomic.Int32
	u, _ := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		req, _, err := readRequest(br)
		if err != nil {
			return
		}
		host, _, _ := net.SplitHostPort(req.Host)
		switch {
		case req.Method != "CONNECT" || host != "127.0.0.1" || req.RequestURI != req.Host:
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			return
		case auth != "" && req.Header.Get("Proxy-Authorization") != auth:
			io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\nContent-Length: 0\r\n\r\n")
			return
		}
		up, err := net.DialTimeout("tcp", req.Host, 10*time.Second)
		if err != nil {
			io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
			return
		}
		defer up.Close()
		tunnels.Add(1)
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		done := make(chan struct{})
		go func() {
			io.Copy(c, up)
			c.Close()
			close(done)
		}()
		io.Copy(up, br)
		up.Close()
		<-done
	})
	u.Path = ""
	return u, &tunnels
}

func TestProxy(t *testing.T) {
	needTLS(t)
	ca := newCA(t, "test CA")
	caFile := writeFile(t, t.TempDir(), "ca.pem", ca.pem)
	httpsURL := mustURL(t, tlsServer(t, ca, nil).URL+"/write")
	httpURL, _ := rawServer(t, answerAll("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nplain", 10))
	const auth = "Basic dXNlcjpwQHNz" // user:p@ss
	open, openTunnels := connectProxy(t, "")
	guarded, guardedTunnels := connectProxy(t, auth)
	withAuth := mustURL(t, "http://user:p%40ss@"+guarded.Host)
	wrongAuth := mustURL(t, "http://user:guess@"+guarded.Host)

	for _, tc := range []struct {
		name    string
		cfg     Config
		tunnels *atomic.Int32
		err     string
	}{
		{"http target", Config{URL: httpURL, ProxyURL: open}, openTunnels, ""},
		{"https target", Config{URL: httpsURL, ProxyURL: open, CAFile: caFile}, openTunnels, ""},
		{"http target, auth", Config{URL: httpURL, ProxyURL: withAuth}, guardedTunnels, ""},
		{"https target, auth", Config{URL: httpsURL, ProxyURL: withAuth, CAFile: caFile}, guardedTunnels, ""},
		{"no auth", Config{URL: httpURL, ProxyURL: guarded}, nil, "answered CONNECT with 407"},
		{"wrong auth", Config{URL: httpsURL, ProxyURL: wrongAuth, CAFile: caFile}, nil, "answered CONNECT with 407"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Timeout = 10 * time.Second
			c := newClient(t, tc.cfg)
			var before int32
			if tc.tunnels != nil {
				before = tc.tunnels.Load()
			}
			for i := range 3 {
				resp, err := post(c, "x")
				if tc.err != "" {
					if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "guess") {
						t.Fatalf("got %v, want an error with %q and no password", err, tc.err)
					}
					return
				}
				if err != nil || resp.Status != 200 {
					t.Fatalf("request %d: got %v %d", i, err, resp.Status)
				}
			}
			if n := tc.tunnels.Load() - before; n != 1 {
				t.Fatalf("%d tunnels for 3 requests, want 1 (kept alive)", n)
			}
		})
	}
}

func TestProxyMisbehaving(t *testing.T) {
	target, _ := rawServer(t, answer("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
	for _, tc := range []struct{ name, raw, err string }{
		{"garbage", "hello\r\n\r\n", "malformed status line"},
		{"closes", "", "EOF"},
		{"data after 200", "HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", "sent data after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy, _ := rawServer(t, answer(tc.raw))
			proxy.Path = ""
			c := newClient(t, Config{URL: target, ProxyURL: proxy, Timeout: 10 * time.Second})
			if _, err := post(c, "x"); err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("got %v, want an error with %q", err, tc.err)
			}
		})
	}
	silent, _ := rawServer(t, func(c net.Conn, br *bufio.Reader) { io.Copy(io.Discard, br) })
	silent.Path = ""
	c := newClient(t, Config{URL: target, ProxyURL: silent, Timeout: 200 * time.Millisecond})
	start := time.Now()
	if _, err := post(c, "x"); err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("a silent proxy: got %v after %v, want a timeout", err, time.Since(start))
	}
}

// Close aborts a request whose connection is still in the proxy's CONNECT.
func TestCloseAbortsHandshake(t *testing.T) {
	target, _ := rawServer(t, answer("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
	got := make(chan struct{}, 1)
	proxy, _ := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		br.ReadString('\n')
		got <- struct{}{}
		io.Copy(io.Discard, br) // never answers
	})
	proxy.Path = ""
	closeWhile(t, newClient(t, Config{URL: target, ProxyURL: proxy, Timeout: time.Minute}), got)
}
