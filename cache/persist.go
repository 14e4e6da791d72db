package cache

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"
)

// A snapshot file holds the live records of a cache so that a restarted
// daemon keeps what was pushed within the TTL:
//
//	magic "PGWCACHE" | version u32 | saved at (Unix ms) i64 | n u32
//	n × (age ms u32 | record, its updated field zeroed, without its order)
//	crc32 (IEEE) of everything before it
//
// Ages rather than clock readings, because ticks count from the start of
// the process that wrote them. A record in the file has the layout of the
// arena (see Cache) without the order field: the same bytes as before
// records had one. So the file keeps the order of updates only to the tick.
//
// Version 2 adds the TTL field of records with flagTTL (see Cache); a
// version 1 file, whose records have none, still loads.

const (
	snapMagic   = "PGWCACHE"
	snapVersion = 2
	fileHdrSize = hdrSize - 2 // a record's header in the file: no order
)

// ErrCorruptSnapshot is returned by Load for a file that is not a whole,
// valid snapshot. Nothing is loaded from such a file.
var ErrCorruptSnapshot = errors.New("cache: snapshot file is truncated or corrupt")

// Save writes the cache's live records to w.
func (c *Cache) Save(w io.Writer) error {
	c.mu.Lock()
	c.expire()
	now := c.tick()
	wall := c.now().UnixMilli()
	var buf bytes.Buffer
	buf.WriteString(snapMagic)
	buf.Write(binary.LittleEndian.AppendUint32(nil, snapVersion))
	buf.Write(binary.LittleEndian.AppendUint64(nil, uint64(wall)))
	n := 0
	var body bytes.Buffer
	for off := 0; off < c.end; off += c.size(off) {
		if c.kind(off) == kindDead {
			continue
		}
		age := uint64(now-c.updated(off)) * uint64(tickUnit/time.Millisecond)
		body.Write(binary.LittleEndian.AppendUint32(nil, uint32(min(age, 1<<32-1))))
		rec := c.arena[off : off+c.size(off)]
		body.Write(binary.LittleEndian.AppendUint16(nil, uint16(len(rec)-(hdrSize-fileHdrSize))))
		body.Write(rec[2:4])
		body.Write([]byte{0, 0, 0, 0})
		body.Write(rec[8:10])
		body.Write(rec[hdrSize:])
		n++
	}
	c.mu.Unlock()
	buf.Write(binary.LittleEndian.AppendUint32(nil, uint32(n)))
	buf.Write(body.Bytes())
	buf.Write(binary.LittleEndian.AppendUint32(nil, crc32.ChecksumIEEE(buf.Bytes())))
	_, err := w.Write(buf.Bytes())
	return err
}

// SaveFile writes a snapshot to path atomically: a temporary file in the
// same directory, fsync, rename, fsync of the directory.
func (c *Cache) SaveFile(path string) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename, nothing to remove
	w := bufio.NewWriter(f)
	if err := c.Save(w); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Load adds the records of a snapshot read from r to the cache, keeping
// each series' remaining TTL: what has expired since it was saved is
// dropped. It returns the number of items loaded. A snapshot that is
// truncated, corrupt or of another version loads nothing and returns an
// error wrapping ErrCorruptSnapshot.
func (c *Cache) Load(r io.Reader) (int, error) {
	data, err := io.ReadAll(io.LimitReader(r, int64(c.budget)*4+1<<20))
	if err != nil {
		return 0, err
	}
	return c.load(data, true)
}

// load is Load on bytes; the fuzz test skips the checksum to reach the
// record checks.
func (c *Cache) load(data []byte, checksum bool) (int, error) {
	bad := func(why string) (int, error) { return 0, fmt.Errorf("%w: %s", ErrCorruptSnapshot, why) }
	const head = len(snapMagic) + 4 + 8 + 4
	if len(data) < head+4 || string(data[:len(snapMagic)]) != snapMagic {
		return bad("no snapshot header")
	}
	sum := binary.LittleEndian.Uint32(data[len(data)-4:])
	if checksum && crc32.ChecksumIEEE(data[:len(data)-4]) != sum {
		return bad("checksum mismatch")
	}
	version := binary.LittleEndian.Uint32(data[len(snapMagic):])
	if version != 1 && version != snapVersion {
		return bad(fmt.Sprintf("version %d", version))
	}
	saved := int64(binary.LittleEndian.Uint64(data[len(snapMagic)+4:]))
	n := int(binary.LittleEndian.Uint32(data[len(snapMagic)+12:]))
	body := data[head : len(data)-4]

	// Check every record before loading any.
	type entry struct {
		age uint64
		rec []byte
	}
	entries := make([]entry, 0, min(n, len(body)/(4+fileHdrSize)))
	for i := 0; i < n; i++ {
		if len(body) < 4+fileHdrSize {
			return bad("record cut short")
		}
		age := uint64(binary.LittleEndian.Uint32(body))
		size := int(binary.LittleEndian.Uint16(body[4:]))
		if size < fileHdrSize || len(body) < 4+size {
			return bad("record cut short")
		}
		rec := body[4 : 4+size]
		if !validRecord(rec, version) {
			return bad("malformed record")
		}
		entries = append(entries, entry{age, rec})
		body = body[4+size:]
	}
	if len(body) != 0 {
		return bad("trailing bytes")
	}

	c.lockWrite()
	defer c.mu.Unlock()
	c.swept = false // the records loaded are older than what expire saw
	now := c.tick()
	last := c.last
	defer func() { c.last = last }() // a loaded record is no update
	elapsed := max(c.now().UnixMilli()-saved, 0)
	loaded := 0
	for _, e := range entries {
		ageMs := e.age + uint64(elapsed)
		ticks := ageMs / uint64(tickUnit/time.Millisecond)
		ttl := c.ttl
		if e.rec[3]&flagTTL != 0 {
			ttl = binary.LittleEndian.Uint32(e.rec[len(e.rec)-4:])
		}
		if ttl != 0 && ticks >= uint64(ttl) || ticks > 1<<31 {
			continue
		}
		// A record saved at the largest size by the code before the order
		// field no longer fits: insert counts it as too large.
		rec := binary.LittleEndian.AppendUint16(c.rec[:0], uint16(len(e.rec)+hdrSize-fileHdrSize))
		rec = append(rec, e.rec[2:4]...)
		rec = binary.LittleEndian.AppendUint32(rec, now-uint32(ticks))
		rec = append(rec, e.rec[8:10]...)
		rec = append(rec, 0, 0)
		rec = append(rec, e.rec[fileHdrSize:]...)
		kind := rec[2]
		if old := c.find(rec[hdrSize:hdrSize+int(binary.LittleEndian.Uint16(rec[8:]))], kind == kindFamily); old >= 0 {
			continue // what was pushed since the start wins
		}
		c.rec = rec
		off, ok := c.insert(rec, -1)
		if !ok {
			continue
		}
		// The file keeps the order of updates only to the tick: what it
		// held of one tick ties, older than what has been updated since.
		binary.LittleEndian.PutUint16(c.arena[off+10:], 0)
		if kind != kindFamily {
			loaded++
		}
	}
	return loaded, nil
}

// LoadFile loads the snapshot at path; a missing file loads nothing and is
// no error.
func (c *Cache) LoadFile(path string) (int, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return c.Load(f)
}

// validRecord checks that rec, a record as the file holds it, is
// well-formed and of a live kind, so that a snapshot, however it was
// damaged, can never make the cache read out of bounds later.
func validRecord(rec []byte, version uint32) bool {
	if rec[3]&flagTTL != 0 {
		if version < 2 || len(rec) < fileHdrSize+4 ||
			binary.LittleEndian.Uint32(rec[len(rec)-4:]) > math.MaxInt32 {
			return false
		}
		rec = rec[:len(rec)-4]
	}
	kl := int(binary.LittleEndian.Uint16(rec[8:]))
	if fileHdrSize+kl > len(rec) {
		return false
	}
	key, payload := rec[fileHdrSize:fileHdrSize+kl], rec[fileHdrSize+kl:]
	if !validKey(key) {
		return false
	}
	flags := rec[3]
	tail := 0
	if flags&flagGroup != 0 {
		tail = 8
	}
	switch rec[2] {
	case kindPlain:
		return len(payload) >= 8+tail && (tail == 0 || len(payload) == 16)
	case kindCompound:
		if len(payload) < compoundFix {
			return false
		}
		nb := int(binary.LittleEndian.Uint16(payload[16:]))
		if flags&flagWindow != 0 {
			w := payload[min(compoundFix+16*nb, len(payload)):]
			if len(w) < 6 || tail != 0 {
				return false
			}
			capacity := int(binary.LittleEndian.Uint16(w))
			pos, filled := int(binary.LittleEndian.Uint16(w[2:])), int(binary.LittleEndian.Uint16(w[4:]))
			return capacity > 0 && pos < capacity && filled <= capacity && len(w) == 6+8*capacity
		}
		return len(payload) == compoundFix+16*nb+tail
	case kindFamily:
		_, ls := splitKey(key)
		return len(ls) == 0 && Type(flags&typeMask) <= Summary && flags&flagGroup == 0
	}
	return false
}

// validKey checks the encoding of a key: a non-empty name and whole
// label pairs.
func validKey(key []byte) bool {
	n, w := binary.Uvarint(key)
	if w <= 0 || n == 0 || uint64(len(key)-w) < n {
		return false
	}
	rest := key[w+int(n):]
	for len(rest) > 0 {
		for range 2 {
			n, w := binary.Uvarint(rest)
			if w <= 0 || uint64(len(rest)-w) < n {
				return false
			}
			rest = rest[w+int(n):]
		}
	}
	return true
}
