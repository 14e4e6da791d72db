package cache

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// compatCache fills a cache with one of each kind of record, at fixed
// times, as testdata/snapshot-v1 was made from.
func compatCache(t *testing.T) *Cache {
	t.Helper()
	clk := newClock()
	c := New(Options{Now: clk.Now})
	c.SetType([]byte("h"), Histogram)
	c.SetHelp([]byte("h"), []byte("Latency."))
	mustSet(t, c, "h_bucket", 1, "le", "0.5", "a", "b")
	mustSet(t, c, "h_bucket", 3, "le", "+Inf", "a", "b")
	mustSet(t, c, "h_sum", 2, "a", "b")
	c.SetType([]byte("s"), Summary)
	mustSet(t, c, "s", 0.25, "quantile", "0.5")
	mustSet(t, c, "s_count", 7)
	clk.Add(1500 * time.Millisecond)
	mustSet(t, c, "plain", 1)
	mustSet(t, c, "labelled", 2, "x", "y", "instance", "router-01.lan")
	if err := c.Push(lbls("job", "j"), []PushFamily{fam("pushed", Gauge, val(3))}, ReplaceGroup); err != nil {
		t.Fatal(err)
	}
	clk.Add(20 * time.Millisecond)
	return c
}

// TestSnapshotFileUnchanged checks that a snapshot file has the layout it
// had before records carried the order of their updates: the same cache
// saves the same bytes as testdata/snapshot-v1, written by the code before
// that change, and that file loads whole.
func TestSnapshotFileUnchanged(t *testing.T) {
	path := filepath.Join("testdata", "snapshot-v1")
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := compatCache(t)
	var buf bytes.Buffer
	if err := c.Save(&buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), old) {
		t.Fatalf("the same cache saves %d bytes unlike the %d of %s", buf.Len(), len(old), path)
	}
	r := New(Options{Now: newClock().Now})
	n, err := r.LoadFile(path)
	if err != nil || n != 7 {
		t.Fatalf("loading %s: %d items, %v", path, n, err)
	}
	if got, want := dump(r), dump(c); got != want {
		t.Fatalf("%s loads as\n%s\nwant\n%s", path, got, want)
	}
}
