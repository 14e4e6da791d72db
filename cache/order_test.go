package cache

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// burstSeries is series i of a burst: about 80 bytes in the text format,
// and the same length for every i below 10,000, so that every record of a
// burst has the same size and the number that fit is the same whichever
// series they are.
func burstSeries(i int) (name []byte, labels []Label) {
	return fmt.Appendf(nil, "burst_series_%04d", i),
		lbls("instance", "router-01.lan", "job", "pushgateway", "path", fmt.Sprintf("/x/%04d", i))
}

// burstHeld returns the numbers of the burst series that c holds, and
// fails the test on anything else in it.
func burstHeld(t *testing.T, c *Cache) map[int]bool {
	t.Helper()
	var s Snapshot
	c.Snapshot(&s)
	held := map[int]bool{}
	for i := 0; i < s.Len(); i++ {
		f := s.Family(i)
		n, ok := strings.CutPrefix(string(f.Name), "burst_series_")
		id, err := strconv.Atoi(n)
		if !ok || err != nil || f.Len() != 1 {
			t.Fatalf("unexpected family %s with %d series", f.Name, f.Len())
		}
		held[id] = true
	}
	return held
}

// checkNewestRun checks that c holds exactly the most recently updated
// series that fit: order lists the series in the order of their last
// update (the newest last), and c must hold its last K for the largest K
// that fits the budget, and nothing else.
func checkNewestRun(t *testing.T, c *Cache, order []int) {
	t.Helper()
	held := burstHeld(t, c)
	k := len(held)
	if k == 0 || k >= len(order) {
		t.Fatalf("the cache holds %d of %d series: the test needs it full", k, len(order))
	}
	want := order[len(order)-k:]
	var missing []int
	for _, id := range want {
		if !held[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		var got []int
		for id := range held {
			got = append(got, id)
		}
		slices.Sort(got)
		t.Fatalf("the cache holds %d series, but not %d of the %d updated last (%v); it holds %v",
			k, len(missing), k, missing, got)
	}
	// K is the most that fit: the K+1 updated last, pushed in the same
	// order into an empty cache of the same budget, do not all fit, and
	// the K do.
	for _, n := range []int{k, k + 1} {
		fresh := New(Options{Budget: c.Budget()})
		for _, id := range order[len(order)-n:] {
			name, ls := burstSeries(id)
			if err := fresh.Set(name, ls, 1); err != nil {
				t.Fatal(err)
			}
		}
		if ev := fresh.Stats().Evicted; (ev == 0) != (n == k) {
			t.Fatalf("an empty cache holding the %d series updated last evicted %d: the cache keeps %d, not the most that fit",
				n, ev, k)
		}
	}
}

// TestBurstKeepsNewest pushes 2,000 never-seen series in one batch, all
// within one tick of the clock (one write of a process that starts with too
// many series): the cache must end with the newest ones, as one contiguous
// run, not with the oldest ones and a few of the newest.
func TestBurstKeepsNewest(t *testing.T) {
	clk := newClock()
	c := New(Options{Now: clk.Now}) // the default 10 KiB
	name, ls := burstSeries(0)
	text := string(name)
	for i, l := range ls {
		text += fmt.Sprintf("%c%s=%q", ",{"[min(i, 1)^1], l.Name, l.Value)
	}
	if text += "} 0"; len(text) < 75 || len(text) > 85 {
		t.Fatalf("a burst series is %d bytes of text (%s), want about 80", len(text), text)
	}
	const burst = 2000
	order := make([]int, burst)
	b := c.Begin()
	for i := range burst {
		name, ls := burstSeries(i)
		if err := b.Set(name, ls, float64(i)); err != nil {
			t.Fatal(err)
		}
		order[i] = i
	}
	b.End()
	checkNewestRun(t, c, order)
	st := c.Stats()
	if int(st.Evicted)+st.Series != burst || st.Bytes > st.Budget {
		t.Fatalf("%d series held + %d evicted != %d pushed, or %d bytes over the budget of %d",
			st.Series, st.Evicted, burst, st.Bytes, st.Budget)
	}
	t.Logf("a 10 KiB cache keeps the last %d of a burst of %d", st.Series, burst)
}

// TestBurstWithUpdatesKeepsRecent interleaves, within the same one-tick
// burst of new series, updates of older series: five hot ones updated
// all along, and series of the burst evicted long before and updated
// again. An updated series is recent again and stays; the cache holds
// exactly the series updated last that fit.
func TestBurstWithUpdatesKeepsRecent(t *testing.T) {
	clk := newClock()
	c := New(Options{Now: clk.Now})
	const burst, hot = 2000, 5
	last := map[int]int{} // series -> the number of its last update
	op := 0
	b := c.Begin()
	set := func(id int) {
		name, ls := burstSeries(id)
		if err := b.Set(name, ls, float64(op)); err != nil {
			t.Fatal(err)
		}
		last[id] = op
		op++
	}
	for h := range hot {
		set(burst + h)
	}
	for j := range burst {
		set(j)
		if j%10 == 9 {
			set(burst + j/10%hot)
		}
		if j%37 == 36 && j >= 400 {
			set(j - 400) // evicted long ago: it comes back as a new series
		}
	}
	b.End()
	order := make([]int, 0, len(last))
	for id := range last {
		order = append(order, id)
	}
	slices.SortFunc(order, func(a, b int) int { return last[a] - last[b] })
	checkNewestRun(t, c, order)

	held := burstHeld(t, c)
	for h := range hot {
		if !held[burst+h] {
			t.Errorf("hot series %d, updated every 50 lines of the burst, was evicted", burst+h)
		}
	}
	if back := 1960 - 400; !held[back] {
		t.Errorf("series %d, evicted and then updated near the end of the burst, is missing", back)
	}
}

// TestBurstKeepsNewestLargeCache is TestBurstKeepsNewest in a cache above
// bigCache, where eviction frees 1/32 of the arena at once: the cache may
// hold fewer than fit, but still only the newest, as one contiguous run.
func TestBurstKeepsNewestLargeCache(t *testing.T) {
	clk := newClock()
	c := New(Options{Budget: 256 << 10, Now: clk.Now})
	const burst = 6000
	b := c.Begin()
	for i := range burst {
		name, ls := burstSeries(i)
		if err := b.Set(name, ls, float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	b.End()
	held := burstHeld(t, c)
	k := len(held)
	if k == 0 || k >= burst || c.Stats().Bytes < c.Budget()*7/8 {
		t.Fatalf("the cache holds %d of %d series in %d bytes: the test needs it full", k, burst, c.Stats().Bytes)
	}
	for i := burst - k; i < burst; i++ {
		if !held[i] {
			t.Fatalf("the cache holds %d series, but not series %d, one of the last %d", k, i, k)
		}
	}
}

// TestEvictionMatchesModel runs random updates of new and known series, on
// a clock that moves by nothing, one tick or several between them, and
// checks after each that the cache holds exactly the series updated last,
// as many as it holds: least recently updated goes first, to the update.
func TestEvictionMatchesModel(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 8))
			clk := newClock()
			c := New(Options{Budget: 4 << 10, Now: clk.Now})
			var recent []int // the series seen, least recently updated first
			known := 0
			for op := range 3000 {
				switch rng.IntN(4) {
				case 0:
					clk.Add(10 * time.Millisecond)
				case 1:
					clk.Add(time.Duration(rng.IntN(100)) * time.Millisecond)
				}
				id := known
				if known > 0 && rng.IntN(3) == 0 {
					id = rng.IntN(known) // an update of a series seen before, held or not
					recent = slices.DeleteFunc(recent, func(r int) bool { return r == id })
				} else {
					known++
				}
				recent = append(recent, id)
				name, ls := burstSeries(id)
				if err := c.Set(name, ls, float64(op)); err != nil {
					t.Fatal(err)
				}
				held := burstHeld(t, c)
				k := len(held)
				if k == 0 {
					t.Fatalf("op %d: the cache is empty", op)
				}
				for _, id := range recent[max(len(recent)-k, 0):] {
					if !held[id] {
						t.Fatalf("op %d: the cache holds %d series, but not %d, one of the %d updated last",
							op, k, id, k)
					}
				}
			}
		})
	}
}
