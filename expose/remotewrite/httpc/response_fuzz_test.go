package httpc

import (
	"bufio"
	"bytes"
	"io"
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
