package httpc

import (
	"bufio"
	"context"
	"net"
	"runtime"
	"testing"
)

// BenchmarkDo sends a 4 KiB body over a kept-alive loopback connection
// and reads an empty 204: the client's own cost per request (the server,
// in the same process, allocates nothing).
func BenchmarkDo(b *testing.B) {
	answer := []byte("HTTP/1.1 204 No Content\r\n\r\n")
	u, _ := rawServer(b, func(c net.Conn, br *bufio.Reader) {
		for {
			for { // the head, up to its empty line
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(line) == 2 {
					break
				}
			}
			if _, err := br.Discard(4 << 10); err != nil {
				return
			}
			if _, err := c.Write(answer); err != nil {
				return
			}
		}
	})
	c, err := New(Config{URL: u})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	body := make([]byte, 4<<10)
	headers := []Header{{"Content-Type", "application/x-protobuf"}, {"Content-Encoding", "snappy"},
		{"User-Agent", "push-gateway/0.0.0"}, {"X-Prometheus-Remote-Write-Version", "0.1.0"}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if resp, err := c.Do(ctx, "POST", headers, body); err != nil || resp.Status != 204 {
			b.Fatal(err, resp.Status)
		}
	}
}

// BenchmarkIdleConnection reports the heap a client keeps (after GC) with
// one idle connection, plain and TLS with a CA file (the system roots,
// which cost more, are not loaded).
func BenchmarkIdleConnection(b *testing.B) {
	needTLS(b)
	ca := newCA(b, "test CA")
	caFile := writeFile(b, b.TempDir(), "ca.pem", ca.pem)
	tlsURL := mustURL(b, tlsServer(b, ca, nil).URL+"/")
	plainURL, _ := rawServer(b, answerAll("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 1))
	for _, bc := range []struct {
		name string
		cfg  Config
	}{
		{"plain", Config{URL: plainURL}},
		{"TLS-CA-file", Config{URL: tlsURL, CAFile: caFile}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var retained float64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				c, err := New(bc.cfg)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.Do(context.Background(), "POST", nil, nil); err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				retained = float64(after.HeapAlloc) - float64(before.HeapAlloc)
				runtime.KeepAlive(c)
				c.Close()
			}
			b.ReportMetric(retained, "retained-B")
		})
	}
}
