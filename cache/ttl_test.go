package cache

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// setTTL sets name{kv} to v with the TTL d, as a raw stream line after
// "# TTL d" does.
func setTTL(t *testing.T, c *Cache, d time.Duration, name string, v float64, kv ...string) {
	t.Helper()
	b := c.Begin()
	b.SetTTL(d)
	err := b.Set([]byte(name), lbls(kv...), v)
	b.End()
	if err != nil {
		t.Fatalf("Set(%s %v) with TTL %v: %v", name, kv, d, err)
	}
}

// A series with its own TTL outlives the cache's; one with 0 never
// expires; an update that names no TTL gives the series the cache's again.
func TestPerSeriesTTL(t *testing.T) {
	clk := newClock()
	c := New(Options{TTL: time.Second, Now: clk.Now})
	c.SetHelp([]byte("backup_last_success_timestamp_seconds"), []byte("Last backup."))
	setTTL(t, c, 25*time.Hour, "backup_last_success_timestamp_seconds", 1.7e9)
	setTTL(t, c, 0, "forever", 1)
	mustSet(t, c, "short", 1)
	clk.Add(2 * time.Second)
	want := "backup_last_success_timestamp_seconds untyped help=\"Last backup.\"\n  {} 1.7e+09\nforever untyped\n  {} 1\n"
	if got := dump(c); got != want {
		t.Fatalf("after 2s:\n%s\nwant\n%s", got, want)
	}
	clk.Add(24 * time.Hour)
	if got := dump(c); got != want {
		t.Fatalf("after a day:\n%s\nwant\n%s", got, want)
	}
	clk.Add(time.Hour)
	if got := dump(c); got != "forever untyped\n  {} 1\n" {
		t.Fatalf("after 25h:\n%s", got)
	}
	mustSet(t, c, "forever", 2) // back to the cache's TTL
	clk.Add(2 * time.Second)
	if got := dump(c); got != "" {
		t.Fatalf("a default update after a TTL of 0 still left:\n%s", got)
	}
}

// A series pays 4 bytes for a TTL of its own and nothing at the cache's
// (or at one equal to it); going back to the default gives them back.
func TestTTLCostsFourBytes(t *testing.T) {
	clk := newClock()
	c := New(Options{TTL: time.Minute, Now: clk.Now})
	mustSet(t, c, "a", 1)
	mustSet(t, c, "b", 1)
	base := c.Stats().Bytes
	setTTL(t, c, time.Minute, "a", 2) // the cache's own
	if got := c.Stats().Bytes; got != base {
		t.Fatalf("a TTL equal to the cache's: %d bytes, want %d", got, base)
	}
	setTTL(t, c, time.Hour, "a", 3)
	if got := c.Stats().Bytes; got != base+4 {
		t.Fatalf("one series with its own TTL: %d bytes, want %d", got, base+4)
	}
	setTTL(t, c, 2*time.Hour, "a", 4) // changed in place
	if got := c.Stats().Bytes; got != base+4 {
		t.Fatalf("its TTL changed: %d bytes, want %d", got, base+4)
	}
	mustSet(t, c, "a", 5)
	if got := c.Stats().Bytes; got != base {
		t.Fatalf("back at the default: %d bytes, want %d", got, base)
	}
	if got := dump(c); got != "a untyped\n  {} 5\nb untyped\n  {} 1\n" {
		t.Fatalf("values:\n%s", got)
	}
}

// Histograms, summaries, typed families and their HELP keep their TTL and
// contents when an update moves them; the family outlives its items.
func TestTTLCompoundAndFamilies(t *testing.T) {
	clk := newClock()
	c := New(Options{TTL: time.Second, Now: clk.Now})
	c.SetType([]byte("h"), Histogram)
	c.SetHelp([]byte("h"), []byte("Latency."))
	setTTL(t, c, time.Hour, "h_bucket", 1, "le", "1")
	setTTL(t, c, time.Hour, "h_bucket", 2, "le", "+Inf") // grows the record
	setTTL(t, c, time.Hour, "h_sum", 0.5)
	setTTL(t, c, time.Hour, "h_count", 2)
	b := c.Begin()
	b.SetTTL(time.Hour)
	if err := b.SetHelp([]byte("h"), []byte("Latency, in seconds.")); err != nil {
		t.Fatal(err)
	}
	if err := b.Add([]byte("jobs_total"), nil, 3); err != nil {
		t.Fatal(err)
	}
	if err := b.ObserveHistogram([]byte("dur"), nil, 0.3, []float64{0.5}); err != nil {
		t.Fatal(err)
	}
	b.End()
	clk.Add(time.Minute)
	want := "dur histogram\n  {} 0.5:1 +Inf:1 sum=0.3 count=1\n" +
		"h histogram help=\"Latency, in seconds.\"\n  {} 1:1 +Inf:2 sum=0.5 count=2\n" +
		"jobs_total counter\n  {} 3\n"
	if got := dump(c); got != want {
		t.Fatalf("after a minute:\n%s\nwant\n%s", got, want)
	}
	var buf bytes.Buffer
	if err := c.Save(&buf); err != nil {
		t.Fatal(err)
	}
	r := New(Options{TTL: time.Second, Now: clk.Now})
	if _, err := r.Load(&buf); err != nil {
		t.Fatal(err)
	}
	clk.Add(30 * time.Minute)
	if got := dump(r); got != want {
		t.Fatalf("reloaded, after 31 minutes:\n%s\nwant\n%s", got, want)
	}
	clk.Add(30 * time.Minute)
	if got := dump(r); got != "" {
		t.Fatalf("after 61 minutes:\n%s", got)
	}
}

// A push with a TTL gives it to every series it writes, push_time_seconds
// included; a bad (negative) duration is the caller's to refuse.
func TestPushTTL(t *testing.T) {
	clk := newClock()
	c := New(Options{TTL: time.Second, Now: clk.Now})
	g := lbls("job", "backup")
	if err := c.PushTTL(g, []PushFamily{fam("backup_last_success_timestamp_seconds", Gauge, val(1.7e9))}, ReplaceGroup, 25*time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := c.AggregatePushTTL(lbls("job", "agg"), []PushFamily{fam("runs_total", Counter, val(1))}, 25*time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := c.Push(lbls("job", "short"), []PushFamily{fam("x", Gauge, val(1))}, ReplaceGroup); err != nil {
		t.Fatal(err)
	}
	clk.Add(24 * time.Hour)
	got := dump(c)
	for _, want := range []string{"{job=backup} 1.7e+09", "{job=agg} 1", "push_time_seconds gauge"} {
		if !strings.Contains(got, want) {
			t.Fatalf("after a day, no %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "job=short") {
		t.Fatalf("the default push outlived its TTL:\n%s", got)
	}
	if err := c.AggregatePushTTL(lbls("job", "agg"), []PushFamily{fam("runs_total", Counter, val(1))}, 25*time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := dump(c); !strings.Contains(got, "{job=agg} 2") {
		t.Fatalf("aggregating onto a series with a TTL:\n%s", got)
	}
	clk.Add(2 * time.Hour)
	if got := dump(c); strings.Contains(got, "job=backup") || !strings.Contains(got, "job=agg") {
		t.Fatalf("after 26h:\n%s", got)
	}
}

// A seed push (no grouping labels) stores series of no group and no
// push_time_seconds, which the raw stream can update too.
func TestSeedPush(t *testing.T) {
	clk := newClock()
	c := New(Options{Now: clk.Now})
	for range 2 {
		if err := c.AggregatePushTTL(nil, []PushFamily{fam("hits_total", Counter, val(2, "path", "/"))}, DefaultTTL); err != nil {
			t.Fatal(err)
		}
	}
	if got := dump(c); got != "hits_total counter\n  {path=/} 4\n" {
		t.Fatalf("two seed pushes:\n%s", got)
	}
	mustSet(t, c, "hits_total", 7, "path", "/")
	if got := dump(c); got != "hits_total counter\n  {path=/} 7\n" {
		t.Fatalf("the raw stream over a seed push:\n%s", got)
	}
}

// Budget eviction ignores TTLs: the least recently updated goes first,
// whatever its TTL.
func TestEvictionIgnoresTTL(t *testing.T) {
	clk := newClock()
	c := New(Options{Budget: MinBudget, TTL: time.Second, Now: clk.Now})
	setTTL(t, c, 0, "old", 1)
	clk.Add(10 * time.Millisecond)
	for i := range 100 {
		mustSet(t, c, "new", float64(i), "i", strings.Repeat("x", i%10)+string(rune('a'+i%26)))
		clk.Add(10 * time.Millisecond)
	}
	if got := dump(c); strings.Contains(got, "old") {
		t.Fatalf("a full cache kept its oldest series because its TTL is 0:\n%s", got)
	}
	if st := c.Stats(); st.Evicted == 0 {
		t.Fatalf("nothing evicted: %+v", st)
	}
}

// DeleteSeries removes the series of a family that hold every pair given
// (an empty value: those without the label), from any source, and the
// family once it has none.
func TestDeleteSeries(t *testing.T) {
	c := New(Options{})
	mustSet(t, c, "m", 1, "a", "1", "b", "x")
	mustSet(t, c, "m", 2, "a", "1")
	mustSet(t, c, "m", 3, "a", "2")
	mustSet(t, c, "other", 4, "a", "1")
	if err := c.Push(lbls("job", "j"), []PushFamily{fam("m", Untyped, val(5, "a", "1"))}, ReplaceGroup); err != nil {
		t.Fatal(err)
	}
	c.DeleteSeries([]byte("m"), lbls("a", "1", "b", ""))
	want := "m untyped\n  {a=1,b=x} 1\n  {a=2} 3\nother untyped\n  {a=1} 4\n"
	if got := pushed(c); !strings.HasPrefix(got, want) {
		t.Fatalf("after deleting m{a=\"1\",b=\"\"}:\n%s\nwant\n%s", got, want)
	}
	c.DeleteSeries([]byte("m"), nil)
	if got := pushed(c); !strings.HasPrefix(got, "other untyped\n  {a=1} 4\n") {
		t.Fatalf("after deleting m:\n%s", got)
	}
	c.DeleteSeries([]byte("nothing"), nil)
	if err := c.AggregatePushTTL(nil, []PushFamily{fam("m", Counter, val(1))}, DefaultTTL); err != nil {
		t.Fatalf("the family went with its series, yet a counter m is refused: %v", err)
	}
}

// checkConsistent verifies what the cache's bookkeeping says of its arena:
// live bytes, index entries, exposed series, and that every live record is
// found by its key.
func checkConsistent(t *testing.T, c *Cache, what string) {
	t.Helper()
	live, count, series := 0, 0, 0
	for off := 0; off < c.end; off += c.size(off) {
		if c.size(off) < deadMin {
			t.Fatalf("%s: record at %d of size %d", what, off, c.size(off))
		}
		if c.kind(off) == kindDead {
			continue
		}
		live += c.size(off)
		count++
		series += c.seriesOf(off)
		if got := c.find(c.key(off), c.kind(off) == kindFamily); got != off {
			t.Fatalf("%s: record at %d (%s) is found at %d", what, off, keyString(c.key(off)), got)
		}
		if c.flags(off)&flagTTL != 0 && c.ttlOf(off) > math.MaxInt32 {
			t.Fatalf("%s: record at %d has TTL %d", what, off, c.ttlOf(off))
		}
	}
	if live != c.live || count != c.count || series != c.series || c.used() > c.budget {
		t.Fatalf("%s: arena holds %d bytes, %d records, %d series; the cache counts %d, %d, %d (budget %d, used %d)",
			what, live, count, series, c.live, c.count, c.series, c.budget, c.used())
	}
}

// Updates that give records a TTL, change it or take it away move records
// (4 bytes more or less) in a small, full cache, among pushes, aggregates,
// histograms and summaries: the cache's bookkeeping stays right, and an
// update that succeeds is what a scrape then shows.
func TestTTLMovesKeepTheCacheConsistent(t *testing.T) {
	for seed := range uint64(8) {
		clk := newClock()
		c := New(Options{Budget: 2 << 10, TTL: time.Second, Now: clk.Now})
		r := rand.New(rand.NewPCG(seed, 14))
		ttls := []time.Duration{DefaultTTL, 0, time.Second, time.Hour, 25 * time.Hour}
		c.SetType([]byte("h"), Histogram)
		c.SetType([]byte("s"), Summary)
		for step := range 3000 {
			d := ttls[r.IntN(len(ttls))]
			k := fmt.Sprint(r.IntN(12))
			var err error
			op := r.IntN(9)
			b := c.Begin()
			b.SetTTL(d)
			switch op {
			case 0:
				err = b.Set([]byte("m"), lbls("i", k), float64(step))
			case 1:
				err = b.Set([]byte("h_bucket"), lbls("le", fmt.Sprint(r.IntN(4)), "i", k), float64(step))
			case 2:
				err = b.Set([]byte("s_sum"), lbls("i", k), float64(step))
			case 3:
				err = b.Add([]byte("c_total"), lbls("i", k), 1)
			case 4:
				err = b.ObserveHistogram([]byte("o"), lbls("i", k), 0.5, []float64{1, 2})
			case 5:
				err = b.SetHelp([]byte("m"), []byte(strings.Repeat("x", r.IntN(20))))
			}
			b.End()
			switch op {
			case 6:
				err = c.PushTTL(lbls("job", k), []PushFamily{fam("g", Gauge, val(float64(step), "i", k))}, ReplaceGroup, d)
			case 7:
				err = c.AggregatePushTTL(lbls("job", "agg"), []PushFamily{fam("a_total", Counter, val(1, "i", k))}, d)
			case 8:
				clk.Add(time.Duration(r.IntN(150)) * 10 * time.Millisecond)
				c.Expire()
			}
			if err != nil && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("seed %d step %d op %d: %v", seed, step, op, err)
			}
			checkConsistent(t, c, fmt.Sprintf("seed %d step %d op %d", seed, step, op))
			if op == 0 && err == nil {
				if got := dump(c); !strings.Contains(got, fmt.Sprintf("{i=%s} %d\n", k, step)) {
					t.Fatalf("seed %d step %d: m{i=%s} = %d not in\n%s", seed, step, k, step, got)
				}
			}
		}
	}
}
