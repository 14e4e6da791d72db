package httpc

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"
)

// FuzzReadResponse feeds arbitrary bytes to the response reader: it must
// return (never panic), keep at most its limit of body, and return a
// final status only.
func FuzzReadResponse(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nTrailer: x\r\n\r\n",
		"HTTP/1.0 429 Slow Down\r\nRetry-After: Mon, 07 Dec 2026 05:01:30 GMT\r\nConnection: keep-alive\r\n\r\nbody",
		"HTTP/1.1 301 Moved\r\nLocation: /x\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8b",
		"HTTP/1.1 200\nRetry-After: 120\n\n",
	} {
		f.Add([]byte(seed), false)
	}
	now := time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte, oneByte bool) {
		const keep = 16
		var r io.Reader = bytes.NewReader(data)
		if oneByte {
			r = iotest.OneByteReader(r)
		}
		resp, _, err := readResponse(bufio.NewReaderSize(r, headLimit), keep, now)
		if err != nil {
			return
		}
		if resp.Status < 200 || resp.Status > 999 || len(resp.Body) > keep ||
			resp.RetryAfter < 0 || resp.RetryAfter > MaxRetryAfter {
			t.Fatalf("got %d %v %d bytes", resp.Status, resp.RetryAfter, len(resp.Body))
		}
	})
}

// FuzzDo answers a real request over loopback with arbitrary bytes, then
// closes: Do must return, within its timeout, an error or a response
// within its limits.
func FuzzDo(f *testing.F) {
	for _, seed := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 429 Slow\r\nRetry-After: 3\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
		"HTTP/1.0 302 Found\r\nLocation: http://127.0.0.1:1/\r\n\r\nmoved",
		"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nshort",
	} {
		f.Add([]byte(seed))
	}
	var answer atomic.Pointer[[]byte]
	u, _ := rawServer(f, func(c net.Conn, br *bufio.Reader) {
		if _, _, err := readRequest(br); err != nil {
			return
		}
		c.Write(*answer.Load())
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, br)
	})
	c, err := New(Config{URL: u, Timeout: 5 * time.Second, MaxResponseBody: 16})
	if err != nil {
		f.Fatal(err)
	}
	defer c.Close()
	f.Fuzz(func(t *testing.T, data []byte) {
		answer.Store(&data)
		resp, err := c.Do(context.Background(), "POST", nil, []byte("x"))
		if err == nil && (resp.Status < 200 || resp.Status > 999 || len(resp.Body) > 16 ||
			resp.RetryAfter < 0 || resp.RetryAfter > MaxRetryAfter) {
			t.Fatalf("got %d %v %d bytes", resp.Status, resp.RetryAfter, len(resp.Body))
		}
	})
}
