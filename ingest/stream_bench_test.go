package ingest

import (
	"context"
	"net"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/push-gateway/push-gateway/cache"
)

// benchServer serves the socket it returns with a new cache until the
// benchmark ends.
func benchServer(b *testing.B) (*Server, string) {
	c := cache.New(cache.Options{Budget: 64 << 10, TTL: time.Minute})
	path := filepath.Join(b.TempDir(), "p.sock")
	l, err := Listen(path, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	s := NewServer(Options{Cache: c})
	go s.Serve(l)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return s, path
}

// go test -run '^$' -bench '^BenchmarkStream$' -benchtime 2s -count 6 -cpu 2 ./ingest/

// BenchmarkStream is the raw stream's whole path on one connection, reads
// and deadlines included: batches of 64 lines of 89 bytes, each updating
// an existing series, written into the socket as fast as they are taken.
func BenchmarkStream(b *testing.B) {
	s, path := benchServer(b)
	conn, err := net.Dial("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	var sb strings.Builder
	for i := range 64 {
		sb.WriteString(`edge_device_metric_001{instance="router-01.lan",job="pushgateway",path="/x/000` + strconv.Itoa(i%8) + `"} 42.5` + "\n")
	}
	batch := []byte(sb.String())
	b.SetBytes(int64(len(batch)))
	n := 0
	for b.Loop() {
		if _, err := conn.Write(batch); err != nil {
			b.Fatal(err)
		}
		n++
	}
	for deadline := time.Now().Add(10 * time.Second); s.stats.Lines.Load() < uint64(64*n); {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d lines applied", s.stats.Lines.Load(), 64*n)
		}
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(64*n), "ns/line")
	conn.Close()
}

// go test -run '^$' -bench '^BenchmarkPushPerConnection$' -benchtime 2000x ./ingest/

// BenchmarkPushPerConnection is a pusher that opens a connection, writes
// 100 lines and closes, as a cron job or a shell loop with socat does:
// B/op is the garbage each such push leaves for the collector, the
// client's side included.
func BenchmarkPushPerConnection(b *testing.B) {
	s, path := benchServer(b)
	var sb strings.Builder
	for i := range 100 {
		sb.WriteString(`edge_device_metric_001{instance="router-01.lan",job="pushgateway",path="/x/` + strconv.Itoa(1000+i) + `"} 42.5` + "\n")
	}
	batch := []byte(sb.String())
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	want := uint64(0)
	for b.Loop() {
		conn, err := net.Dial("unix", path)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := conn.Write(batch); err != nil {
			b.Fatal(err)
		}
		conn.Close()
		want += 100
		for deadline := time.Now().Add(10 * time.Second); s.stats.Lines.Load() < want; {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d lines applied", s.stats.Lines.Load(), want)
			}
			runtime.Gosched()
		}
	}
}
