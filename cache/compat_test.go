package cache

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
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
// that change (but for the version, 2 since series may have their own TTL),
// and that file loads whole.
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
	// Version 2 only adds a TTL field to records that have their own: a
	// cache at the default TTL saves the same records, under version 2.
	want := bytes.Clone(old)
	binary.LittleEndian.PutUint32(want[len(snapMagic):], 2)
	binary.LittleEndian.PutUint32(want[len(want)-4:], crc32.ChecksumIEEE(want[:len(want)-4]))
	if !bytes.Equal(buf.Bytes(), want) {
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

// TestSnapshotRecordTooLargeNow loads a file whose record filled the
// largest record of the code before the order field: it no longer fits in
// a record, so it is counted as too large and skipped, and the rest loads.
func TestSnapshotRecordTooLargeNow(t *testing.T) {
	fileRecord := func(kind, flags uint8, key, payload []byte) []byte {
		r := binary.LittleEndian.AppendUint32(nil, 0) // age
		r = binary.LittleEndian.AppendUint16(r, uint16(fileHdrSize+len(key)+len(payload)))
		r = append(r, kind, flags, 0, 0, 0, 0)
		r = binary.LittleEndian.AppendUint16(r, uint16(len(key)))
		r = append(r, key...)
		return append(r, payload...)
	}
	key := appendName(nil, []byte("big"))
	help := bytes.Repeat([]byte("h"), maxRecord-fileHdrSize-len(key))
	var value [8]byte
	binary.LittleEndian.PutUint64(value[:], 0x3ff0000000000000) // 1.0
	clk := newClock()
	data := []byte(snapMagic)
	data = binary.LittleEndian.AppendUint32(data, snapVersion)
	data = binary.LittleEndian.AppendUint64(data, uint64(clk.Now().UnixMilli()))
	data = binary.LittleEndian.AppendUint32(data, 2)
	data = append(data, fileRecord(kindFamily, uint8(Untyped)|flagHelp, key, help)...)
	data = append(data, fileRecord(kindPlain, 0, appendName(nil, []byte("small")), value[:])...)
	data = binary.LittleEndian.AppendUint32(data, crc32.ChecksumIEEE(data))

	c := New(Options{Budget: 1 << 20, Now: clk.Now})
	n, err := c.Load(bytes.NewReader(data))
	if err != nil || n != 1 {
		t.Fatalf("loaded %d items, %v; want the small one", n, err)
	}
	if got := dump(c); got != "small untyped\n  {} 1\n" {
		t.Fatalf("loaded:\n%s", got)
	}
	if st := c.Stats(); st.TooLarge != 1 {
		t.Fatalf("TooLarge = %d, want 1", st.TooLarge)
	}
}
