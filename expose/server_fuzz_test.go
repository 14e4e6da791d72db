package expose

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/push-gateway/push-gateway/expose/http1"
)

// socketPair returns the two ends of a connected Unix stream socket, as the
// push socket's connections are.
func socketPair(t *testing.T) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "socketpair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		return c.(*net.UnixConn)
	}
	return conn(fds[0]), conn(fds[1])
}

// FuzzServer sends arbitrary bytes to a connection: the server must never
// panic, must close the connection once the client has stopped sending,
// must answer with nothing but well-formed HTTP responses, and must hand
// its handler only requests with a token method and a path.
func FuzzServer(f *testing.F) {
	for _, s := range []string{
		"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
		"PUT /metrics/job/a HTTP/1.1\r\nContent-Length: 4\r\n\r\nm 1\nGET / HTTP/1.0\r\n\r\n",
		"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n4\r\nm 1\n\r\n0\r\nT: 1\r\n\r\n",
		"HEAD / HTTP/1.1\r\nConnection: close\r\n\r\n",
		"DELETE http://h/x%2Fy?q HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /big HTTP/1.0\r\n\r\n",
		"\r\nPATCH /metrics/c HTTP/1.1\r\nContent-Length: 1\r\n\r\n2",
		// Framing net/http refuses (issue 12, point 5).
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\nGET /next HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;" + strings.Repeat("e", 3000) + "\r\na\r\n0\r\nT: \x00\r\n\r\n",
		"GET / HTTP/1.1\r\nX: a\rTransfer-Encoding: chunked\r\nY: \x00\r\n\r\n",
		"GET / HTTP/1.1\r\nX: a\r\n b\r\nContent-Encoding: gzip\r\nContent-Encoding: x\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		client, server := socketPair(t)
		defer client.Close()
		var bad string
		var methods []string // of the requests handled, in order
		s := &Server{
			Handler: func(w *Response, r *Request) {
				methods = append(methods, r.Method)
				if !http1.IsToken(r.Method) || (!strings.HasPrefix(r.Path, "/") && r.Path != "*") {
					bad = r.Method + " " + r.Path
				}
				io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
				if r.Path == "/big" {
					w.Write(bytes.Repeat([]byte("x"), 3*bufferLimit)) // streamed
				}
				w.Write([]byte(r.Path))
			},
			ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second,
		}
		done := make(chan struct{})
		go func() { s.ServeConn(server, nil); close(done) }()
		go func() {
			client.Write(in)
			client.CloseWrite()
		}()
		client.SetReadDeadline(time.Now().Add(10 * time.Second))
		out, err := io.ReadAll(client)
		if err != nil {
			t.Fatalf("reading the responses: %v", err)
		}
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the server did not close the connection")
		}
		if bad != "" {
			t.Fatalf("handler got %q", bad)
		}
		br := bufio.NewReader(bytes.NewReader(out))
		for i := 0; ; {
			if _, err := br.Peek(1); err == io.EOF {
				break
			}
			req := &http.Request{Method: "GET"} // an error answers a request never handled
			if i < len(methods) {
				req.Method = methods[i]
			}
			resp, err := http.ReadResponse(br, req)
			if err != nil {
				t.Fatalf("malformed response: %v\nin:  %q\nout: %q", err, in, out)
			}
			if _, err := io.ReadAll(resp.Body); err != nil {
				t.Fatalf("malformed response body: %v\nin:  %q\nout: %q", err, in, out)
			}
			if resp.StatusCode != 100 {
				i++
			}
		}
	})
}
