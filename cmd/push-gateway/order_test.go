package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/push-gateway/push-gateway/cache"
)

// burstLabels are the labels of burst series i, as the lines carry them:
// with the name, about 80 bytes of text, the same for every i.
func burstLabels(i int) []cache.Label {
	return []cache.Label{
		{Name: []byte("instance"), Value: []byte("router-01.lan")},
		{Name: []byte("job"), Value: []byte("pushgateway")},
		{Name: []byte("path"), Value: fmt.Appendf(nil, "/x/%04d", i)},
	}
}

// TestBurstKeepsNewest writes 2,000 never-seen series in one write on one
// connection into the default 10 KiB cache, as a process that starts with
// too many series does. The scrape afterwards must hold the newest series
// that fit, as one contiguous run that ends with the last line, and as many
// as fit; not the oldest ones and a few of the newest, as when every record
// of the burst carrying the same 10 ms tick made ties fall on the newest.
func TestBurstKeepsNewest(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	const burst = 2000
	var b strings.Builder
	for i := range burst {
		fmt.Fprintf(&b, "burst_series_%04d{", i)
		for j, l := range burstLabels(i) {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%s=%q", l.Name, l.Value)
		}
		fmt.Fprintf(&b, "} %d\n", i)
	}
	d.push(t, b.String()) // one write on one connection
	last := fmt.Sprintf("burst_series_%04d", burst-1)
	e := d.waitValue(t, 10*time.Second, burst-1, last, "instance", "router-01.lan", "job", "pushgateway", "path", fmt.Sprintf("/x/%04d", burst-1))

	var held []int
	for name := range e.fams {
		if n, ok := strings.CutPrefix(name, "burst_series_"); ok {
			i, err := strconv.Atoi(n)
			if err != nil {
				t.Fatalf("unexpected family %s", name)
			}
			held = append(held, i)
		}
	}
	slices.Sort(held)
	k := len(held)
	if k < 2 || k >= burst || held[0] != burst-k || held[k-1] != burst-1 {
		t.Fatalf("the scrape holds %d series, not the last %d of the burst: %v", k, k, held)
	}
	// held is sorted and distinct: first and last pin the run.
	if n := e.mustValue(t, "push_gateway_cache_series"); int(n) != k {
		t.Errorf("push_gateway_cache_series = %v, but %d series are exposed", n, k)
	}
	if ev := e.mustValue(t, "push_gateway_cache_evictions_total", "reason", "budget"); int(ev)+k != burst {
		t.Errorf("%d series kept + %v evicted for the budget != %d pushed", k, ev, burst)
	}
	// As many as fit: a cache of the daemon's budget holds the last k series
	// of the burst, and not the last k+1.
	for _, n := range []int{k, k + 1} {
		c := cache.New(cache.Options{Budget: cache.DefaultBudget})
		for i := burst - n; i < burst; i++ {
			if err := c.Set(fmt.Appendf(nil, "burst_series_%04d", i), burstLabels(i), float64(i)); err != nil {
				t.Fatal(err)
			}
		}
		if ev := c.Stats().Evicted; (ev == 0) != (n == k) {
			t.Fatalf("a %d-byte cache given the last %d series evicts %d: the daemon keeps %d, not the most that fit",
				cache.DefaultBudget, n, ev, k)
		}
	}
	t.Logf("the daemon keeps the last %d of %d series pushed in one write", k, burst)
}
