package cache

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSnapshotRoundTrip(t *testing.T) {
	clk := newClock()
	c := New(Options{TTL: time.Minute, Now: clk.Now})
	c.SetType([]byte("h"), Histogram)
	c.SetHelp([]byte("h"), []byte("Latency."))
	mustSet(t, c, "h_bucket", 1, "le", "0.5", "a", "b")
	mustSet(t, c, "h_sum", 2, "a", "b")
	mustSet(t, c, "old", 1)
	clk.Add(40 * time.Second)
	mustSet(t, c, "young", 2, "x", "y")
	if err := c.Push(lbls("job", "j"), []PushFamily{fam("pushed", Gauge, val(3))}, ReplaceGroup); err != nil {
		t.Fatal(err)
	}
	want := dump(c)

	path := filepath.Join(t.TempDir(), "snap")
	if err := c.SaveFile(path); err != nil {
		t.Fatal(err)
	}
	clk.Add(10 * time.Second) // the restart takes 10 s
	r := New(Options{TTL: time.Minute, Now: clk.Now})
	n, err := r.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := dump(r); got != want || n != 6 {
		t.Fatalf("loaded %d items:\n%s\nwant\n%s", n, got, want)
	}
	// Remaining TTLs were kept: the old ones expire 10 s later, the young
	// ones 50 s later.
	clk.Add(10 * time.Second)
	if got := dump(r); strings.Contains(got, "old") || strings.Contains(got, "histogram") || !strings.Contains(got, "young") {
		t.Fatalf("after 60 s: %s", got)
	}
	// The loaded group is a group: DELETE finds it.
	r.DeleteGroup(lbls("job", "j"))
	if got := dump(r); got != "young untyped\n  {x=y} 2\n" {
		t.Fatalf("after DELETE: %q", got)
	}
	// A missing file is no error.
	if n, err := New(Options{}).LoadFile(filepath.Join(t.TempDir(), "none")); n != 0 || err != nil {
		t.Fatalf("missing file: %d %v", n, err)
	}
}

// TestSnapshotDamage truncates a snapshot at every offset and flips bytes:
// each is refused whole, nothing is loaded, nothing panics.
func TestSnapshotDamage(t *testing.T) {
	c := New(Options{})
	c.SetType([]byte("s"), Summary)
	mustSet(t, c, "s", 1, "quantile", "0.5")
	mustSet(t, c, "m", 1, "k", "v")
	var buf bytes.Buffer
	if err := c.Save(&buf); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	for i := 0; i < len(data); i++ {
		r := New(Options{})
		if n, err := r.Load(bytes.NewReader(data[:i])); !errors.Is(err, ErrCorruptSnapshot) || n != 0 || dump(r) != "" {
			t.Fatalf("truncated at %d: n=%d err=%v", i, n, err)
		}
		flipped := bytes.Clone(data)
		flipped[i] ^= 0x40
		if n, err := r.Load(bytes.NewReader(flipped)); !errors.Is(err, ErrCorruptSnapshot) || n != 0 || dump(r) != "" {
			t.Fatalf("byte %d flipped: n=%d err=%v", i, n, err)
		}
	}
	r := New(Options{})
	if n, err := r.Load(bytes.NewReader(data)); err != nil || n != 2 {
		t.Fatalf("whole: %d %v", n, err)
	}
}

// FuzzSnapshotLoad feeds arbitrary bytes to Load: it may refuse them, but
// must not panic, and whatever it accepts must snapshot and render.
func FuzzSnapshotLoad(f *testing.F) {
	c := New(Options{})
	c.SetType([]byte("h"), Histogram)
	c.Set([]byte("h_bucket"), lbls("le", "1"), 1)
	c.Set([]byte("m"), lbls("k", "v"), 1)
	var buf bytes.Buffer
	c.Save(&buf)
	f.Add(buf.Bytes())
	f.Add([]byte(snapMagic))
	// Records with a TTL of their own: items, a family, a pushed group.
	b := c.Begin()
	b.SetTTL(time.Hour)
	b.SetHelp([]byte("h"), []byte("H."))
	b.Set([]byte("h_bucket"), lbls("le", "+Inf"), 2)
	b.Set([]byte("m"), lbls("k", "w"), 1)
	b.End()
	c.PushTTL(lbls("job", "j"), []PushFamily{fam("g", Gauge, val(1))}, ReplaceGroup, 0)
	buf.Reset()
	c.Save(&buf)
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		r := New(Options{Budget: 4096})
		r.load(data, false)
		dump(r)
		r.Set([]byte("h_bucket"), lbls("le", "2"), 1)
		r.Set([]byte("m"), lbls("k", "v"), 2)
		b := r.Begin()
		b.SetTTL(time.Minute)
		b.Set([]byte("m"), lbls("k", "w"), 3)
		b.SetHelp([]byte("h"), []byte("Changed."))
		b.End()
		r.Push(lbls("job", "x"), []PushFamily{fam("m", Gauge, val(1))}, ReplaceGroup)
		r.PushTTL(lbls("job", "j"), []PushFamily{fam("g", Gauge, val(1))}, ReplaceGroup, time.Hour)
		r.Expire()
		dump(r)
	})
}
