package ingest

import (
	"testing"
	"time"

	"github.com/push-gateway/push-gateway/cache"
)

// go test -run '^$' -bench '^BenchmarkApplyLine' -benchtime 2s -count 6 -cpu 2 -benchmem ./ingest/

// BenchmarkApplyLine is the daemon's whole per-line path for a line that
// updates an existing series: parse, canonical key, index lookup, store. The
// lines of one read are applied in one cache batch, as serveConn does; a
// batch here is 64 lines, about one 4 KiB read.
func BenchmarkApplyLine(b *testing.B) {
	for _, tc := range []struct{ name, line, ttl string }{
		{"nolabels", "jobs_done_total 12345", ""},
		{"labels3", `edge_device_metric_001{instance="router-01.lan",job="pushgateway",path="/x/0001"} 42.5`, ""},
		{"histogram", `rpc_seconds_bucket{svc="api",code="200",le="0.25"} 1234`, ""},
		// After "# TTL 25h": the connection's TTL is set again at each batch.
		{"labels3_ttl", `edge_device_metric_001{instance="router-01.lan",job="pushgateway",path="/x/0001"} 42.5`, "# TTL 25h"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c := cache.New(cache.Options{TTL: time.Minute})
			c.SetType([]byte("rpc_seconds"), cache.Histogram)
			s := NewServer(Options{Cache: c})
			var p lineState
			line := []byte(tc.line)
			tx := c.Begin()
			if tc.ttl != "" {
				s.apply(tx, &p, []byte(tc.ttl))
			}
			s.apply(tx, &p, line)
			tx.End()
			if s.stats.Lines.Load() == 0 {
				b.Fatalf("line not applied: %s", line)
			}
			b.ReportAllocs()
			b.SetBytes(int64(64 * len(line)))
			n := 0
			for b.Loop() {
				tx := c.Begin()
				for range 64 {
					s.apply(tx, &p, line)
				}
				tx.End()
				n += 64
			}
			if st := c.Stats(); st.Series != 1 || s.stats.Lines.Load() < uint64(n+1) {
				b.Fatalf("series %d lines %d", st.Series, s.stats.Lines.Load())
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/line")
		})
	}
}

// TestApplyAllocatesNothing asserts the hot path of BenchmarkApplyLine.
func TestApplyAllocatesNothing(t *testing.T) {
	c := cache.New(cache.Options{TTL: time.Minute})
	s := NewServer(Options{Cache: c})
	var p lineState
	line := []byte(`edge_device_metric_001{instance="router-01.lan",job="pushgateway",path="/x/0001"} 42.5`)
	tx := c.Begin()
	s.apply(tx, &p, line)
	tx.End()
	allocs := testing.AllocsPerRun(1000, func() {
		tx := c.Begin()
		s.apply(tx, &p, line)
		tx.End()
	})
	if allocs != 0 {
		t.Fatalf("applying a line to an existing series allocates %v times", allocs)
	}
}
