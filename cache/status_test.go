package cache

import (
	"testing"
	"time"
)

// TestStatusAccessors: TTLLeft counts down from the TTL since a series'
// last update, and is not ok without a TTL; Pushed tells a group's series
// from a raw one; Lines counts a histogram's exposed series.
func TestStatusAccessors(t *testing.T) {
	clk := newClock()
	c := New(Options{Budget: 64 << 10, TTL: time.Minute, Now: clk.Now})
	c.Set([]byte("raw"), nil, 1)
	clk.Add(20 * time.Second)
	if err := c.Push(lbls("job", "j"), []PushFamily{fam("pushed", Gauge, val(1))}, ReplaceGroup); err != nil {
		t.Fatal(err)
	}
	// A batch job's group, with a TTL of its own (/ttl/25h/metrics/job/…).
	if err := c.PushTTL(lbls("job", "nightly"), []PushFamily{fam("backup_ok", Gauge, val(1))}, ReplaceGroup, 25*time.Hour); err != nil {
		t.Fatal(err)
	}
	c.SetType([]byte("lat"), Histogram)
	c.Set([]byte("lat_bucket"), lbls("le", "1"), 1)
	c.Set([]byte("lat_bucket"), lbls("le", "+Inf"), 2)
	c.Set([]byte("lat_count"), nil, 2)
	clk.Add(15 * time.Second)

	var s Snapshot
	c.Snapshot(&s)
	got := map[string]Series{}
	for i := 0; i < s.Len(); i++ {
		se, _ := s.Family(i).Series(0)
		got[string(s.Family(i).Name)] = se
	}
	for _, tc := range []struct {
		name   string
		left   time.Duration
		pushed bool
		lines  int
	}{
		{"raw", 25 * time.Second, false, 1},
		{"pushed", 45 * time.Second, true, 1},
		{PushTimeName, 45 * time.Second, true, 1},
		{"lat", 45 * time.Second, false, 3},
		{"backup_ok", 25*time.Hour - 15*time.Second, true, 1},
	} {
		se := got[tc.name]
		if left, ok := s.TTLLeft(se); !ok || left != tc.left {
			t.Errorf("%s: TTLLeft %v %v, want %v", tc.name, left, ok, tc.left)
		}
		if se.Pushed() != tc.pushed || se.Lines() != tc.lines {
			t.Errorf("%s: Pushed %v Lines %d, want %v %d", tc.name, se.Pushed(), se.Lines(), tc.pushed, tc.lines)
		}
	}
	clk.Add(30 * time.Second) // raw has expired, though the snapshot still has it
	if left, ok := s.TTLLeft(got["raw"]); !ok || left != 0 {
		t.Errorf("expired: TTLLeft %v %v, want 0 true", left, ok)
	}

	c = New(Options{Now: clk.Now}) // no TTL
	c.Set([]byte("raw"), nil, 1)
	c.Snapshot(&s)
	se, _ := s.Family(0).Series(0)
	if left, ok := s.TTLLeft(se); ok {
		t.Errorf("no TTL: TTLLeft %v ok", left)
	}
}
