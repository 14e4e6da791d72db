package cache

import (
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAddAndObserve(t *testing.T) {
	clk := newClock()
	c := New(Options{Now: clk.Now, TTL: time.Minute})
	b := c.Begin()
	for i := 0; i < 3; i++ {
		if err := b.Add([]byte("jobs_total"), lbls("q", "a"), 2); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.SetGauge([]byte("temp"), lbls("s", "1"), 22.5); err != nil {
		t.Fatal(err)
	}
	if err := b.SetGauge([]byte("temp"), lbls("s", "1"), 21); err != nil {
		t.Fatal(err)
	}
	for _, v := range []float64{0.05, 0.75, 3, 20} {
		if err := b.ObserveHistogram([]byte("dur"), lbls("m", "GET"), v, []float64{0.1, 0.5, 1, 5, 10}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 100; i++ {
		if err := b.ObserveSummary([]byte("size"), nil, float64(i), []float64{0.5, 0.9, 0.99}, SummaryWindow([]float64{0.05, 0.01, 0.001})); err != nil {
			t.Fatal(err)
		}
	}
	errs := []error{
		b.Add([]byte("temp"), lbls("s", "1"), 1),                                // a gauge
		b.SetGauge([]byte("jobs_total"), nil, 1),                                // a counter
		b.ObserveHistogram([]byte("dur"), lbls("m", "GET"), 1, []float64{1, 2}), // other buckets
		b.ObserveSummary([]byte("size"), nil, 1, []float64{0.5}, 16),            // other quantiles
		b.Add([]byte("dur_sum"), lbls("m", "GET"), 1),                           // a histogram's line
	}
	b.End()
	for i, want := range []error{ErrTypeConflict, ErrTypeConflict, ErrBucketMismatch, ErrBucketMismatch, ErrNameClash} {
		if !errors.Is(errs[i], want) {
			t.Errorf("error %d: %v, want %v", i, errs[i], want)
		}
	}
	want := "dur histogram\n  {m=GET} 0.1:1 0.5:1 1:2 5:3 10:3 +Inf:4 sum=23.8 count=4\n" +
		"jobs_total counter\n  {q=a} 6\n" +
		"size summary\n  {} 0.5:51 0.9:91 0.99:100 sum=5050 count=100\n" +
		"temp gauge\n  {s=1} 21\n"
	if got := dump(c); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	// Aggregated series expire like all others, and start again from zero.
	clk.Add(time.Minute)
	b = c.Begin()
	b.Add([]byte("jobs_total"), lbls("q", "a"), 1)
	b.End()
	if got := dump(c); got != "jobs_total counter\n  {q=a} 1\n" {
		t.Fatalf("after TTL: %q", got)
	}
}

func TestSummaryWindowSlides(t *testing.T) {
	c := New(Options{})
	b := c.Begin()
	for i := 1; i <= 1000; i++ {
		b.ObserveSummary([]byte("s"), nil, float64(i), []float64{0, 1}, 16)
	}
	b.End()
	// Only the last 16 observations (985..1000) are in the window.
	if got := dump(c); got != "s summary\n  {} 0:985 1:1000 sum=500500 count=1000\n" {
		t.Fatalf("got %q", got)
	}
	if w := SummaryWindow([]float64{0.001}); w != MaxSummaryWindow {
		t.Fatalf("window %d", w)
	}
}

func TestAggregatePush(t *testing.T) {
	c := New(Options{})
	g := lbls("job", "cron")
	h := func(c1, c2, cinf, sum, count float64) PushMetric {
		return PushMetric{Buckets: []Bucket{{1, c1}, {2, c2}, {math.Inf(1), cinf}}, Sum: sum, Count: count, HasSum: true, HasCount: true}
	}
	push := func() error {
		return c.AggregatePush(g, []PushFamily{
			fam("runs_total", Counter, val(1)),
			fam("last_duration", Gauge, val(3)),
			fam("lat", Histogram, h(1, 2, 3, 4.5, 3)),
			{Name: []byte("sz"), Type: Summary, Metrics: []PushMetric{{Buckets: []Bucket{{0.5, 7}}, Sum: 10, Count: 2, HasSum: true, HasCount: true}}},
		})
	}
	for i := 0; i < 3; i++ {
		if err := push(); err != nil {
			t.Fatal(err)
		}
	}
	want := "last_duration gauge\n  {job=cron} 3\nlat histogram\n  {job=cron} 1:3 2:6 +Inf:9 sum=13.5 count=9\n" +
		"runs_total counter\n  {job=cron} 3\nsz summary\n  {job=cron} 0.5:7 sum=30 count=6\n"
	if got := pushed(c); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	before := dump(c)
	bad := []PushFamily{fam("runs_total", Counter, val(1)), fam("lat", Histogram, PushMetric{Buckets: []Bucket{{5, 1}, {math.Inf(1), 1}}})}
	if err := c.AggregatePush(g, bad); !errors.Is(err, ErrBucketMismatch) || dump(c) != before {
		t.Fatalf("mismatched buckets: %v", err)
	}
	if err := c.AggregatePush(g, []PushFamily{fam("last_duration", Counter, val(1))}); !errors.Is(err, ErrTypeConflict) || dump(c) != before {
		t.Fatalf("type conflict: %v", err)
	}
	// clearmode: replace a counter, add to a gauge.
	err := c.AggregatePush(g, []PushFamily{
		fam("runs_total", Counter, PushMetric{Value: 10, Mode: ModeReplace}),
		fam("last_duration", Gauge, PushMetric{Value: 1, Mode: ModeAggregate}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := pushed(c); !strings.Contains(got, "runs_total counter\n  {job=cron} 10\n") || !strings.Contains(got, "last_duration gauge\n  {job=cron} 4\n") {
		t.Fatalf("clearmode: %s", got)
	}
}

// TestConcurrentAdds: N writers adding 1 a thousand times give N×1000.
func TestConcurrentAdds(t *testing.T) {
	c := New(Options{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				b := c.Begin()
				if err := b.Add([]byte("n_total"), nil, 1); err != nil {
					t.Error(err)
				}
				b.End()
			}
		}()
	}
	wg.Wait()
	if got := dump(c); got != "n_total counter\n  {} 8000\n" {
		t.Fatalf("got %q", got)
	}
}
