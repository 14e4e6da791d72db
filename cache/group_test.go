package cache

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func fam(name string, t Type, metrics ...PushMetric) PushFamily {
	return PushFamily{Name: []byte(name), Type: t, Metrics: metrics}
}

func val(v float64, kv ...string) PushMetric { return PushMetric{Labels: lbls(kv...), Value: v} }

// pushed renders the cache without the push time series, whose values are
// clock readings.
func pushed(c *Cache) string {
	var out []string
	skip := false
	for _, l := range strings.Split(dump(c), "\n") {
		if !strings.HasPrefix(l, " ") {
			skip = strings.HasPrefix(l, "push_")
		}
		if !skip {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestPushReplaceAndDelete(t *testing.T) {
	clk := newClock()
	c := New(Options{Now: clk.Now})
	g := lbls("job", "backup", "instance", "nas")
	err := c.Push(g, []PushFamily{
		fam("files_total", Counter, val(3, "dir", "a"), val(4, "dir", "b", "job", "overridden")),
		fam("size_bytes", Gauge, val(10)),
	}, ReplaceGroup)
	if err != nil {
		t.Fatal(err)
	}
	want := "files_total counter\n  {dir=a,instance=nas,job=backup} 3\n  {dir=b,instance=nas,job=backup} 4\n" +
		"size_bytes gauge\n  {instance=nas,job=backup} 10\n"
	if got := pushed(c); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(dump(c), "push_time_seconds gauge") || !strings.Contains(dump(c), "{instance=nas,job=backup} 1.7e+09") {
		t.Fatalf("push time missing:\n%s", dump(c))
	}
	// POST replaces only the families it names.
	if err := c.Push(g, []PushFamily{fam("size_bytes", Gauge, val(11, "part", "x"))}, ReplaceFamilies); err != nil {
		t.Fatal(err)
	}
	want = "files_total counter\n  {dir=a,instance=nas,job=backup} 3\n  {dir=b,instance=nas,job=backup} 4\n" +
		"size_bytes gauge\n  {instance=nas,job=backup,part=x} 11\n"
	if got := pushed(c); got != want {
		t.Fatalf("after POST got\n%s\nwant\n%s", got, want)
	}
	// Another group with the same family; then PUT with nothing empties ours.
	if err := c.Push(lbls("job", "other"), []PushFamily{fam("size_bytes", Gauge, val(1))}, ReplaceGroup); err != nil {
		t.Fatal(err)
	}
	if err := c.Push(g, nil, ReplaceGroup); err != nil {
		t.Fatal(err)
	}
	if got := pushed(c); got != "size_bytes gauge\n  {job=other} 1\n" {
		t.Fatalf("after empty PUT: %q", got)
	}
	if !strings.Contains(dump(c), "{instance=nas,job=backup}") {
		t.Fatal("an empty PUT must keep the group's push time")
	}
	c.DeleteGroup(lbls("job", "other", "instance", "")) // empty label = none
	c.DeleteGroup(g)
	if got := dump(c); got != "" {
		t.Fatalf("after DELETE: %q", got)
	}
}

func TestPushAllOrNothing(t *testing.T) {
	c := New(Options{})
	a, b := lbls("job", "a"), lbls("job", "b")
	if err := c.Push(a, []PushFamily{fam("x", Counter, val(1))}, ReplaceGroup); err != nil {
		t.Fatal(err)
	}
	before := dump(c)
	for name, tc := range map[string]struct {
		fams []PushFamily
		err  error
	}{
		"type conflict": {[]PushFamily{fam("ok", Gauge, val(1)), fam("x", Gauge, val(2))}, ErrTypeConflict},
		"repeated":      {[]PushFamily{fam("y", Gauge, val(1, "k", "v"), val(2, "k", "v"))}, ErrDuplicateSeries},
		"other group":   {[]PushFamily{fam("x", Counter, val(1, "job", "a"))}, nil}, // job is b: its own series
		"dup label":     {[]PushFamily{fam("y", Gauge, PushMetric{Labels: lbls("k", "1", "k", "2")})}, ErrDuplicateLabel},
		"too large":     {[]PushFamily{fam("y", Gauge, val(1, "k", strings.Repeat("v", 20000)))}, ErrTooLarge},
	} {
		err := c.Push(b, tc.fams, ReplaceGroup)
		if tc.err == nil {
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			c.DeleteGroup(b)
			continue
		}
		if !errors.Is(err, tc.err) {
			t.Fatalf("%s: err %v, want %v", name, err, tc.err)
		}
		if got := dump(c); got != before {
			t.Fatalf("%s changed the cache:\n%s", name, got)
		}
	}
	// The same group may change its own family's type.
	if err := c.Push(a, []PushFamily{fam("x", Gauge, val(5))}, ReplaceGroup); err != nil {
		t.Fatal(err)
	}
	if got := pushed(c); got != "x gauge\n  {job=a} 5\n" {
		t.Fatalf("retype: %q", got)
	}
}

func TestPushFailedAndHistogram(t *testing.T) {
	clk := newClock()
	c := New(Options{Now: clk.Now, TTL: time.Minute})
	g := lbls("job", "j")
	c.PushFailed(g)
	d := dump(c)
	if !strings.Contains(d, "push_failure_time_seconds gauge") || !strings.Contains(d, "push_time_seconds gauge help=\"Last Unix time when changing this group in the Pushgateway succeeded.\"\n  {job=j} 0\n") {
		t.Fatalf("after failure:\n%s", d)
	}
	h := PushMetric{Labels: lbls("x", "1"), Buckets: []Bucket{{0.5, 1}, {1, 3}, {inf, 4}}, Sum: 2.5, Count: 4, HasSum: true, HasCount: true}
	if err := c.Push(g, []PushFamily{fam("lat", Histogram, h)}, ReplaceGroup); err != nil {
		t.Fatal(err)
	}
	if got := pushed(c); got != "lat histogram\n  {job=j,x=1} 0.5:1 1:3 +Inf:4 sum=2.5 count=4\n" {
		t.Fatalf("histogram: %q", got)
	}
	// A stream line updates the pushed histogram in place; a new bucket grows it.
	mustSet(t, c, "lat_bucket", 7, "le", "0.1", "job", "j", "x", "1")
	if got := pushed(c); got != "lat histogram\n  {job=j,x=1} 0.1:7 0.5:1 1:3 +Inf:4 sum=2.5 count=4\n" {
		t.Fatalf("after stream update: %q", got)
	}
	// The group still owns it: PUT replaces it.
	if err := c.Push(g, nil, ReplaceGroup); err != nil {
		t.Fatal(err)
	}
	if got := pushed(c); got != "" {
		t.Fatalf("after PUT: %q", got)
	}
	clk.Add(2 * time.Minute)
	if got := dump(c); got != "" {
		t.Fatalf("groups expire too: %q", got)
	}
}

var inf = math.Inf(1)
