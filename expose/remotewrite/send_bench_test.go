package remotewrite

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/push-gateway/push-gateway/cache"
	"github.com/push-gateway/push-gateway/expose/remotewrite/httpc"
)

// BenchmarkSendInterval is one interval of the daemon with remote write on:
// a snapshot of 100 series encoded, queued and sent over a kept-alive TLS
// connection to a loopback receiver that answers 204. Its B/op is the
// garbage each interval leaves, which decides how fast the heap of an idle
// daemon grows towards its first collection.
func BenchmarkSendInterval(b *testing.B) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	ca := filepath.Join(b.TempDir(), "ca.crt")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		b.Fatal(err)
	}
	u, _ := url.Parse(srv.URL + "/api/v1/write")
	client, err := httpc.New(httpc.Config{URL: u, CAFile: ca, ServerName: "example.com"})
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	c := cache.New(cache.Options{Budget: 64 << 10})
	bt := c.Begin()
	for j := range 100 {
		bt.Set([]byte("app_requests_total"), []cache.Label{{Name: []byte("job"), Value: []byte("app")},
			{Name: []byte("path"), Value: fmt.Appendf(nil, "/api/v1/item/%d", j)}}, float64(j))
	}
	bt.End()
	var stats Stats
	s := New(Options{
		Cache: c, Encoder: NewEncoder([]Label{{Name: []byte("instance"), Value: []byte("device-0001")}}, true),
		Poster: client, Interval: time.Second, QueueSize: 1 << 20, UserAgent: "bench",
	}, &stats)
	ctx, cancel := context.WithCancel(context.Background()) // as the sender's, which ends at shutdown
	defer cancel()
	interval := func() {
		s.snapshot()
		s.send(ctx, s.q.next(nil))
	}
	interval() // the handshake
	if e, _ := stats.LastError(); e != "" {
		b.Fatal(e)
	}
	b.ReportAllocs()
	for b.Loop() {
		interval()
	}
	if stats.Dropped.Load() != 0 || stats.Retried.Load() != 0 {
		e, _ := stats.LastError()
		b.Fatalf("dropped %d, retried %d: %s", stats.Dropped.Load(), stats.Retried.Load(), e)
	}
}
