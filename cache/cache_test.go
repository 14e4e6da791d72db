package cache

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a fake, settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Unix(1_700_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func lbls(kv ...string) []Label {
	var ls []Label
	for i := 0; i < len(kv); i += 2 {
		ls = append(ls, Label{Name: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	return ls
}

// dump renders a snapshot in a compact, sorted, test-friendly text form.
func dump(c *Cache) string { return dumpWith(c, new(Snapshot)) }

// dumpWith is dump into the snapshot s, which may have been used before.
func dumpWith(c *Cache, s *Snapshot) string {
	c.Snapshot(s)
	var b strings.Builder
	for i := 0; i < s.Len(); i++ {
		f := s.Family(i)
		fmt.Fprintf(&b, "%s %s", f.Name, f.Type)
		if f.HasHelp {
			fmt.Fprintf(&b, " help=%q", f.Help)
		}
		b.WriteString("\n")
		for j := 0; j < f.Len(); j++ {
			ser, ok := f.Series(j)
			if !ok {
				b.WriteString("  SKIPPED\n")
				continue
			}
			var ls []string
			for l := ser.Labels(); ; {
				n, v, rest, ok := NextLabel(l)
				if !ok {
					break
				}
				ls = append(ls, fmt.Sprintf("%s=%s", n, v))
				l = rest
			}
			fmt.Fprintf(&b, "  {%s}", strings.Join(ls, ","))
			if f.Type.compound() {
				for k := 0; k < ser.Buckets(); k++ {
					bound, v := ser.Bucket(k)
					fmt.Fprintf(&b, " %g:%g", bound, v)
				}
				if v, ok := ser.Sum(); ok {
					fmt.Fprintf(&b, " sum=%g", v)
				}
				if v, ok := ser.Count(); ok {
					fmt.Fprintf(&b, " count=%g", v)
				}
			} else {
				fmt.Fprintf(&b, " %g", ser.Value())
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

func mustSet(t *testing.T, c *Cache, name string, v float64, kv ...string) {
	t.Helper()
	if err := c.Set([]byte(name), lbls(kv...), v); err != nil {
		t.Fatalf("Set(%s %v): %v", name, kv, err)
	}
}

func TestSetAndSnapshot(t *testing.T) {
	c := New(Options{})
	mustSet(t, c, "b_metric", 1, "x", "1", "a", "2")
	mustSet(t, c, "b_metric", 2, "a", "2", "x", "1") // same series, other order
	mustSet(t, c, "a_metric", 3, "empty", "", "k", "v")
	mustSet(t, c, "a_metric", 4, "k", "v") // an empty label is no label
	mustSet(t, c, "a_metric", 5)
	if err := c.SetType([]byte("b_metric"), Gauge); err != nil {
		t.Fatal(err)
	}
	if err := c.SetHelp([]byte("b_metric"), []byte("some help")); err != nil {
		t.Fatal(err)
	}
	want := "a_metric untyped\n  {} 5\n  {k=v} 4\nb_metric gauge help=\"some help\"\n  {a=2,x=1} 2\n"
	if got := dump(c); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if st := c.Stats(); st.Series != 3 {
		t.Fatalf("series = %d, want 3", st.Series)
	}
}

func TestDuplicateLabel(t *testing.T) {
	c := New(Options{})
	if err := c.Set([]byte("m"), lbls("a", "1", "a", ""), 1); err != ErrDuplicateLabel {
		t.Fatalf("err = %v", err)
	}
	if dump(c) != "" {
		t.Fatal("a refused sample was stored")
	}
}

func TestTTL(t *testing.T) {
	clk := newClock()
	c := New(Options{TTL: time.Minute, Now: clk.Now})
	mustSet(t, c, "old", 1)
	c.SetType([]byte("old"), Counter)
	clk.Add(30 * time.Second)
	mustSet(t, c, "young", 1)
	clk.Add(30 * time.Second)
	if got := dump(c); got != "young untyped\n  {} 1\n" {
		t.Fatalf("after 60s: %q", got)
	}
	clk.Add(29 * time.Second)
	mustSet(t, c, "young", 2) // an update restarts the TTL
	clk.Add(59 * time.Second)
	if got := dump(c); got != "young untyped\n  {} 2\n" {
		t.Fatalf("after update: %q", got)
	}
	clk.Add(time.Second)
	if got := dump(c); got != "" {
		t.Fatalf("after expiry: %q", got)
	}
	st := c.Stats()
	if st.Expired != 2 || st.Series != 0 {
		t.Fatalf("stats %+v", st)
	}
	// Only the index is left; every record byte is given back.
	if st.Bytes != 4*minIndex {
		t.Fatalf("bytes = %d", st.Bytes)
	}
}

// Expiry skips its pass over the cache until the oldest record can have
// expired: at any moment a scrape must show exactly the series updated
// within the TTL, including after a Load of records older than any.
func TestExpiryMatchesModel(t *testing.T) {
	for seed := range uint64(20) {
		expiryMatchesModel(t, seed)
	}
}

func expiryMatchesModel(t *testing.T, seed uint64) {
	clk := newClock()
	const ttl = 10 * time.Second
	c := New(Options{Budget: 64 << 10, TTL: ttl, Now: clk.Now})
	type life struct {
		at  time.Time
		ttl time.Duration // 0 never
	}
	updated := map[string]life{} // the model: each series' last update and TTL
	r := rand.New(rand.NewPCG(seed, 2))
	// The cache counts time in ticks of 10ms; a clock that moves by whole
	// ticks makes the model exact.
	advance := func(maxTicks int) { clk.Add(time.Duration(r.IntN(maxTicks)) * tickUnit) }
	check := func(step int, what string) {
		t.Helper()
		var want []string
		for k, l := range updated {
			if l.ttl == 0 || clk.Now().Sub(l.at) < l.ttl {
				want = append(want, k)
			} else {
				delete(updated, k)
			}
		}
		sort.Strings(want)
		var got []string
		for _, line := range strings.Split(dump(c), "\n") {
			if strings.HasPrefix(line, "  {i=") {
				got = append(got, strings.TrimSuffix(strings.Fields(line)[0][len("{i="):], "}"))
			}
		}
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Fatalf("seed %d step %d (%s): series %v, want %v", seed, step, what, got, want)
		}
	}
	for step := range 1000 {
		switch r.IntN(8) {
		case 0:
			advance(400)
		case 1:
			check(step, "scrape")
		case 2:
			c.Expire()
		case 3:
			if step%50 != 3 {
				break
			}
			// A restart: the saved records come back with their ages, older
			// than anything the new cache has seen.
			var buf bytes.Buffer
			if err := c.Save(&buf); err != nil {
				t.Fatal(err)
			}
			advance(300)
			c = New(Options{Budget: 64 << 10, TTL: ttl, Now: clk.Now})
			c.Expire() // an empty cache's pass, before the records arrive
			if _, err := c.Load(&buf); err != nil {
				t.Fatal(err)
			}
			check(step, "after a load")
		default:
			// Half the updates name a TTL of their own: shorter or longer
			// than the cache's, the cache's, or none.
			k := fmt.Sprint(r.IntN(40))
			d, own := ttl, DefaultTTL
			switch r.IntN(8) {
			case 0:
				d, own = 0, 0
			case 1:
				d, own = ttl, ttl
			case 2, 3:
				d = time.Duration(1+r.IntN(2000)) * tickUnit
				own = d
			}
			b := c.Begin()
			b.SetTTL(own)
			if err := b.Set([]byte("m"), lbls("i", k), 1); err != nil {
				t.Fatal(err)
			}
			b.End()
			updated[k] = life{clk.Now(), d}
		}
	}
}

// A cache that nobody scrapes or expires for longer than half the range of
// its ticks (248 days) still expires what is due at the next scrape.
func TestExpiryAfterLongSilence(t *testing.T) {
	for _, days := range []int{200, 250, 400, 600} {
		clk := newClock()
		c := New(Options{TTL: 10 * time.Second, Now: clk.Now})
		mustSet(t, c, "m", 1, "i", "1")
		c.Expire()
		clk.Add(time.Duration(days) * 24 * time.Hour)
		if got := dump(c); got != "" {
			t.Errorf("after %d days without a scrape: %q, want nothing", days, got)
		}
	}
}

// series80 is a name and label set of about 80 bytes in the text format.
func series80(i int) (string, []string) {
	return fmt.Sprintf("edge_device_metric_%03d", i),
		[]string{"instance", "router-01.lan", "job", "pushgateway", "path", fmt.Sprintf("/x/%04d", i)}
}

func TestDefaultBudgetHolds100Series(t *testing.T) {
	c := New(Options{})
	n, kv := series80(0)
	text := fmt.Sprintf(`%s{%s="%s",%s="%s",%s="%s"}`, n, kv[0], kv[1], kv[2], kv[3], kv[4], kv[5])
	if len(text) < 78 || len(text) > 82 {
		t.Fatalf("test series is only %d bytes: %s", len(text), text)
	}
	for i := 0; i < 100; i++ {
		n, kv := series80(i)
		mustSet(t, c, n, float64(i), kv...)
	}
	st := c.Stats()
	if st.Series != 100 || st.Evicted != 0 {
		t.Fatalf("10 KiB holds %d of 100 series (%d evicted), %d bytes used", st.Series, st.Evicted, st.Bytes)
	}
	t.Logf("100 series of %d bytes use %d of %d bytes", len(text), st.Bytes, st.Budget)
}

func TestEvictsLeastRecentlyUpdated(t *testing.T) {
	clk := newClock()
	c := New(Options{Budget: 2048, TTL: time.Hour, Now: clk.Now})
	n := 0
	for c.Stats().Evicted == 0 {
		clk.Add(time.Second)
		mustSet(t, c, fmt.Sprintf("series_%03d", n), 1, "pad", strings.Repeat("x", 30))
		n++
	}
	// series_000 went first; series_001 is the oldest now. Update it, then
	// push a new series: series_002 must go, series_001 must stay.
	if strings.Contains(dump(c), "series_000") {
		t.Fatal("series_000 should have been evicted first")
	}
	clk.Add(time.Second)
	mustSet(t, c, "series_001", 2, "pad", strings.Repeat("x", 30))
	clk.Add(time.Second)
	mustSet(t, c, "series_new", 2, "pad", strings.Repeat("x", 30))
	d := dump(c)
	if !strings.Contains(d, "series_001") || strings.Contains(d, "series_002") {
		t.Fatalf("wrong eviction order:\n%s", d)
	}
	if st := c.Stats(); st.Evicted != 2 || st.Bytes > st.Budget {
		t.Fatalf("stats %+v", st)
	}
}

func TestExpiredGoBeforeBudget(t *testing.T) {
	clk := newClock()
	c := New(Options{Budget: 2048, TTL: time.Minute, Now: clk.Now})
	mustSet(t, c, "will_expire", 1, "pad", strings.Repeat("x", 30))
	clk.Add(2 * time.Minute)
	for i := 0; c.Stats().Expired == 0; i++ {
		mustSet(t, c, fmt.Sprintf("s%03d", i), 1, "pad", strings.Repeat("x", 30))
	}
	if st := c.Stats(); st.Evicted != 0 {
		t.Fatalf("a live series was evicted before the expired one: %+v", st)
	}
}

func TestHistogramIsOneItem(t *testing.T) {
	clk := newClock()
	c := New(Options{Budget: 1024, TTL: time.Hour, Now: clk.Now})
	if err := c.SetType([]byte("h"), Histogram); err != nil {
		t.Fatal(err)
	}
	for _, le := range []string{"+Inf", "0.5", "1", "0.1"} {
		mustSet(t, c, "h_bucket", 1, "le", le, "a", "b")
	}
	mustSet(t, c, "h_sum", 3.5, "a", "b")
	mustSet(t, c, "h_count", 4, "a", "b")
	mustSet(t, c, "h_bucket", 2, "le", "1.0", "a", "b") // 1.0 is bucket 1
	want := "h histogram\n  {a=b} 0.1:1 0.5:1 1:2 +Inf:1 sum=3.5 count=4\n"
	if got := dump(c); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if st := c.Stats(); st.Series != 6 {
		t.Fatalf("series = %d, want 6", st.Series)
	}
	if err := c.Set([]byte("h_bucket"), lbls("a", "b"), 1); err != ErrMissingLabel {
		t.Fatalf("bucket without le: %v", err)
	}
	if err := c.Set([]byte("h"), nil, 1); err != ErrTypeConflict {
		t.Fatalf("bare histogram sample: %v", err)
	}
	// A bound is a number of the text format, as expfmt reads le: no hex
	// floats, no underscores, no NaN.
	for _, le := range []string{"0x1p0", "1_0", "NaN", "one", ""} {
		if err := c.Set([]byte("h_bucket"), lbls("le", le, "a", "b"), 1); err != ErrBadLabelValue && !(le == "" && err == ErrMissingLabel) {
			t.Fatalf("le=%q: %v, want ErrBadLabelValue", le, err)
		}
	}
	// Fill the cache with other series: the histogram leaves whole.
	for i := 0; strings.Contains(dump(c), "histogram"); i++ {
		clk.Add(time.Second)
		mustSet(t, c, fmt.Sprintf("filler_%d", i), 1, "pad", strings.Repeat("y", 40))
		if d := dump(c); strings.Contains(d, "h histogram") && !strings.Contains(d, want[len("h histogram\n"):]) {
			t.Fatalf("histogram split:\n%s", d)
		}
	}
}

func TestSummaryAndClashes(t *testing.T) {
	c := New(Options{})
	mustSet(t, c, "s_sum", 1) // untyped for now
	if err := c.SetType([]byte("s"), Summary); err != nil {
		t.Fatal(err)
	}
	mustSet(t, c, "s", 0.1, "quantile", "0.5")
	mustSet(t, c, "s", 0.2, "quantile", "0.9")
	mustSet(t, c, "s_sum", 10)
	mustSet(t, c, "s_count", 20)
	mustSet(t, c, "s_bucket", 7) // not part of a summary: its own series
	if err := c.SetType([]byte("s_count"), Gauge); err != ErrNameClash {
		t.Fatalf("TYPE s_count: %v", err)
	}
	want := "s summary\n  {} 0.5:0.1 0.9:0.2 sum=10 count=20\ns_bucket untyped\n  {} 7\n"
	if got := dump(c); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	// Turning it into a gauge drops the summary items.
	if err := c.SetType([]byte("s"), Gauge); err != nil {
		t.Fatal(err)
	}
	mustSet(t, c, "s", 3)
	if got := dump(c); got != "s gauge\n  {} 3\ns_bucket untyped\n  {} 7\n" {
		t.Fatalf("after type change: %q", got)
	}
}

func TestTooLarge(t *testing.T) {
	c := New(Options{Budget: MinBudget})
	mustSet(t, c, "small", 1)
	big := strings.Repeat("v", MinBudget)
	if err := c.Set([]byte("big"), lbls("l", big), 1); err != ErrTooLarge {
		t.Fatalf("err = %v", err)
	}
	if err := c.SetHelp([]byte("small"), []byte(big)); err != ErrTooLarge {
		t.Fatalf("help err = %v", err)
	}
	st := c.Stats()
	if st.TooLarge != 2 || st.Series != 1 {
		t.Fatalf("stats %+v", st)
	}
	if got := dump(c); got != "small untyped\n  {} 1\n" {
		t.Fatalf("got %q", got)
	}
}

func TestUpdateAllocatesNothing(t *testing.T) {
	c := New(Options{})
	ls := lbls("method", "GET", "code", "200", "handler", "/api/v1/query")
	c.SetType([]byte("http_requests_total"), Counter)
	mustSet(t, c, "http_requests_total", 1, "method", "GET", "code", "200", "handler", "/api/v1/query")
	c.SetType([]byte("h"), Histogram)
	mustSet(t, c, "h_bucket", 1, "le", "0.5")
	hl := lbls("le", "0.5")
	name, hname := []byte("http_requests_total"), []byte("h_bucket")
	v := 0.0
	allocs := testing.AllocsPerRun(1000, func() {
		v++
		if err := c.Set(name, ls, v); err != nil {
			t.Fatal(err)
		}
		if err := c.Set(hname, hl, v); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("an update allocates %v times", allocs)
	}
}

// TestChurnKeepsBudget pushes many never-seen series of varied sizes through
// a small cache and checks the accounting and the index stay consistent.
func TestChurnKeepsBudget(t *testing.T) {
	clk := newClock()
	c := New(Options{Budget: 4096, TTL: time.Hour, Now: clk.Now})
	c.SetType([]byte("h"), Histogram)
	for i := 0; i < 20000; i++ {
		clk.Add(time.Millisecond * 15)
		switch i % 5 {
		case 0:
			mustSet(t, c, "h_bucket", 1, "le", fmt.Sprint(i%7), "i", fmt.Sprint(i%13))
		case 1:
			mustSet(t, c, fmt.Sprintf("m%d", i), 1, "pad", strings.Repeat("p", i%50))
		default:
			mustSet(t, c, fmt.Sprintf("n%d", i%300), float64(i))
		}
		if i%997 == 0 {
			c.SetHelp([]byte(fmt.Sprintf("n%d", i%300)), []byte(strings.Repeat("h", i%40)))
		}
		c.mu.Lock()
		// Records and index stay within the budget; the arena's spare
		// capacity may exceed it by what the index took since the arena
		// last grew (see growIndex).
		if c.used() > c.budget || len(c.arena) > c.budget || c.end+4*len(c.index) > c.budget {
			t.Fatalf("over budget: used %d arena %d index %d", c.used(), len(c.arena), len(c.index))
		}
		c.mu.Unlock()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	live, n, series := 0, 0, 0
	for off := 0; off < c.end; off += c.size(off) {
		if c.kind(off) == kindDead {
			continue
		}
		live += c.size(off)
		n++
		series += c.seriesOf(off)
		if c.find(c.key(off), c.kind(off) == kindFamily) != off {
			t.Fatalf("record at %d not found through the index", off)
		}
	}
	if live != c.live || n != c.count || series != c.series {
		t.Fatalf("accounting drifted: live %d/%d count %d/%d series %d/%d", live, c.live, n, c.count, series, c.series)
	}
}

// TestHeapMatchesBudget fills caches to their budgets and checks that the
// live heap grew by about the budget: the accounting is honest.
func TestHeapMatchesBudget(t *testing.T) {
	for _, tc := range []struct {
		budget, caches int
	}{{10 << 10, 100}, {1 << 20, 2}, {16 << 20, 1}} {
		// Series with a TTL of their own take 4 bytes more, within the
		// budget like the rest.
		for _, ttl := range []time.Duration{DefaultTTL, 25 * time.Hour} {
			name := fmt.Sprint(tc.budget)
			if ttl != DefaultTTL {
				name += "/ttl"
			}
			t.Run(name, func(t *testing.T) { heapMatchesBudget(t, tc.budget, tc.caches, ttl) })
		}
	}
}

func heapMatchesBudget(t *testing.T, budget, n int, ttl time.Duration) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	caches := make([]*Cache, n)
	for i := range caches {
		caches[i] = New(Options{Budget: budget, TTL: time.Minute})
		fillTTL(caches[i], ttl)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	grew := float64(ms.HeapAlloc) - float64(before)
	want := float64(budget * n)
	used, series := 0, 0
	for _, c := range caches {
		used += c.Stats().Bytes
		series += c.Stats().Series
	}
	t.Logf("budget %d × %d: heap grew %.0f bytes (%.2f× budget), %d bytes in use, %d series, %.1f bytes per series",
		budget, n, grew, grew/want, used, series, float64(used)/float64(series))
	if math.Abs(grew-want) > want/4 {
		t.Fatalf("heap grew by %.0f, budget is %.0f", grew, want)
	}
	if float64(used) < want*0.9 {
		t.Fatalf("filled caches use only %d of %.0f bytes", used, want)
	}
	runtime.KeepAlive(caches)
}

// fill pushes series of mixed shapes until the cache has evicted some.
func fill(c *Cache) { fillTTL(c, DefaultTTL) }

// fillTTL is fill with updates of TTL ttl.
func fillTTL(c *Cache, ttl time.Duration) {
	set := func(name []byte, ls []Label, v float64) {
		b := c.Begin()
		b.SetTTL(ttl)
		b.Set(name, ls, v)
		b.End()
	}
	c.SetType([]byte("fill_histogram"), Histogram)
	c.SetType([]byte("fill_summary"), Summary)
	c.SetHelp([]byte("fill_histogram"), []byte("A histogram used to fill the cache."))
	for i := 0; c.Stats().Evicted < 20; i++ {
		n, kv := series80(i)
		set([]byte(n), lbls(kv...), float64(i))
		if i%10 == 0 {
			for _, le := range []string{"0.1", "1", "10", "+Inf"} {
				set([]byte("fill_histogram_bucket"), lbls("le", le, "i", fmt.Sprint(i)), 1)
			}
			set([]byte("fill_summary"), lbls("quantile", "0.99", "i", fmt.Sprint(i)), 1)
			set([]byte("fill_summary_sum"), lbls("i", fmt.Sprint(i)), 1)
		}
	}
}

func TestConcurrentWritersAndScrapes(t *testing.T) {
	c := New(Options{Budget: 64 << 10, TTL: time.Second})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5000; i++ {
				c.Set([]byte(fmt.Sprintf("w%d_m%d", w, i%500)), lbls("k", "v"), float64(i))
				if i%100 == 0 {
					c.SetType([]byte(fmt.Sprintf("w%d_m%d", w, i%500)), Counter)
				}
			}
		}()
	}
	for s := 0; s < 2; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var snap Snapshot
			for i := 0; i < 200; i++ {
				c.Snapshot(&snap)
				names := make([]string, snap.Len())
				for j := range names {
					names[j] = string(snap.Family(j).Name)
				}
				if !sort.StringsAreSorted(names) {
					t.Error("families not sorted")
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestReusedSnapshotStaysSorted: a snapshot refilled scrape after scrape
// keeps its sort order only while the cache's layout is unchanged; after
// inserts, updates, expiry, evictions, type and help changes it must match
// a fresh snapshot every time.
func TestReusedSnapshotStaysSorted(t *testing.T) {
	clk := newClock()
	c := New(Options{Budget: 4 << 10, TTL: time.Minute, Now: clk.Now})
	var reused Snapshot
	for step := 0; step < 2000; step++ {
		i := (step * 7919) % 97
		name := fmt.Sprintf("m%d", i%5)
		switch step % 11 {
		case 0:
			clk.Add(7 * time.Second) // some series expire now and then
		case 1:
			c.SetHelp([]byte(name), []byte(strings.Repeat("h", i%4)))
		case 2:
			c.SetType([]byte(name), []Type{Untyped, Gauge, Counter}[i%3])
		default:
			c.Set([]byte(name), lbls("i", fmt.Sprint(i), "pad", strings.Repeat("p", i%9)), float64(step))
		}
		if step%11 > 2 {
			dumpWith(c, &reused)
			// Only a value changes, in place: no record moves.
			c.Set([]byte(name), lbls("i", fmt.Sprint(i), "pad", strings.Repeat("p", i%9)), -float64(step))
		}
		want := dump(c)
		for again := 0; again < 2; again++ { // the second time, nothing has changed
			if got := dumpWith(c, &reused); got != want {
				t.Fatalf("step %d (%d): a reused snapshot differs from a fresh one:\n%s\nwant\n%s", step, again, got, want)
			}
		}
	}
}
