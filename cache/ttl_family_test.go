package cache

import (
	"testing"
	"time"
)

// A family made by a write with a short TTL, over a series at the default:
// later default updates of the series keep the family (TYPE, HELP) as long
// as the series, through the slow path of stamp.
func TestFamilyOutlivesItsSeriesTTL(t *testing.T) {
	clk := newClock()
	c := New(Options{TTL: time.Hour, Now: clk.Now})
	mustSet(t, c, "foo", 1, "a", "1") // raw stream, no TYPE
	b := c.Begin()
	b.SetTTL(time.Second) // another pusher: "# TTL 1s\n# TYPE foo gauge"
	b.SetType([]byte("foo"), Gauge)
	b.End()
	mustSet(t, c, "foo", 2, "a", "1") // fast path: family keeps TTL 1s
	t.Log(dump(c))
	clk.Add(2 * time.Second)
	got := dump(c)
	t.Log(got)
	if got != "foo gauge\n  {a=1} 2\n" {
		t.Fatalf("family expired before its item (item TTL 1h):\n%s", got)
	}
}
