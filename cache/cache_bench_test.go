package cache

import (
	"fmt"
	"testing"
	"time"
)

// go test -run '^$' -bench . -benchtime 2s -count 6 -cpu 2 -benchmem ./cache/

// BenchmarkSetExisting updates one existing series of about 80 bytes.
func BenchmarkSetExisting(b *testing.B) {
	c := New(Options{TTL: time.Minute})
	name, kv := series80(1)
	ls := lbls(kv...)
	c.Set([]byte(name), ls, 0)
	n := []byte(name)
	b.ReportAllocs()
	v := 0.0
	for b.Loop() {
		v++
		if err := c.Set(n, ls, v); err != nil {
			b.Fatal(err)
		}
	}
	if st := c.Stats(); st.Series != 1 {
		b.Fatalf("series %d", st.Series)
	}
}

// BenchmarkBatchSetExisting is the same update inside a batch, as the daemon
// applies the lines of one read: one lock and one clock reading per batch.
func BenchmarkBatchSetExisting(b *testing.B) {
	c := New(Options{TTL: time.Minute})
	name, kv := series80(1)
	ls := lbls(kv...)
	c.Set([]byte(name), ls, 0)
	n := []byte(name)
	b.ReportAllocs()
	v := 0.0
	for b.Loop() {
		tx := c.Begin()
		for range 64 {
			v++
			if err := tx.Set(n, ls, v); err != nil {
				b.Fatal(err)
			}
		}
		tx.End()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/line")
}

// BenchmarkChurn inserts never-seen series into a full cache.
func BenchmarkChurn(b *testing.B) {
	for _, budget := range []int{10 << 10, 16 << 20} {
		b.Run(fmt.Sprint(budget), func(b *testing.B) {
			c := New(Options{Budget: budget, TTL: time.Minute})
			fill(c)
			names := make([][]byte, 4096)
			for i := range names {
				names[i] = []byte(fmt.Sprintf("churn_series_name_%d", i))
			}
			ls := lbls("instance", "router-01.lan", "job", "pushgateway")
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				ls[1].Value = fmt.Appendf(ls[1].Value[:0], "%d", i)
				if err := c.Set(names[i%len(names)], ls, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSnapshot copies and orders 100 series for a scrape.
func BenchmarkSnapshot(b *testing.B) {
	c := New(Options{Budget: 64 << 10})
	for i := 0; i < 100; i++ {
		n, kv := series80(i)
		c.Set([]byte(n), lbls(kv...), float64(i))
	}
	var s Snapshot
	b.ReportAllocs()
	for b.Loop() {
		c.Snapshot(&s)
		if s.Len() != 100 {
			b.Fatal(s.Len())
		}
	}
}

// BenchmarkObserveHistogram observes into an existing histogram of 5
// buckets, as a JSON histogram event does once parsed.
func BenchmarkObserveHistogram(b *testing.B) {
	c := New(Options{})
	name := []byte("request_duration_seconds")
	ls := lbls("method", "GET", "endpoint", "/api/data")
	bounds := []float64{0.1, 0.5, 1, 5, 10}
	b.ReportAllocs()
	v := 0.0
	for b.Loop() {
		tx := c.Begin()
		v += 0.01
		if err := tx.ObserveHistogram(name, ls, v, bounds); err != nil {
			b.Fatal(err)
		}
		tx.End()
	}
}
