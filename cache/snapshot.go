package cache

import (
	"bytes"
	"encoding/binary"
	"slices"
)

// Snapshot is a consistent copy of the cache for one scrape, ordered for the
// exposition: families sorted by name, each with its series. Keep one per
// concurrent scrape and reuse it: Cache.Snapshot refills its buffers, so a
// scrape allocates nothing once they have grown. The slices its methods
// return point into the snapshot and are valid until it is refilled.
type Snapshot struct {
	buf   []byte
	items []int // offsets of items in buf, sorted by key
	fams  []int // offsets of family records in buf, sorted by name
	list  []Family
	est   []float64 // scratch of summary estimates
	// The cache and its layout generation that items and fams were sorted
	// for: while no record has moved, come or gone, the order holds and
	// the next scrape skips the sort, most of a snapshot's cost.
	from   *Cache
	gen    uint64
	writes uint64 // the cache's writes when s was filled
}

// Family is one metric family of a snapshot with at least one series.
type Family struct {
	Name    []byte
	Type    Type
	Help    []byte
	HasHelp bool
	s       *Snapshot
	lo, hi  int // range of s.items
}

// Series is one item of a family: a plain series, or all the lines of one
// histogram or summary.
type Series struct {
	rec []byte
}

// Snapshot copies the cache into s. It holds the cache's lock only while it
// removes what has expired and copies the arena; sorting happens after.
func (c *Cache) Snapshot(s *Snapshot) {
	c.mu.Lock()
	c.expire()
	gen, writes := c.gen, c.writes
	if s.from == c && s.gen == gen && s.writes == writes && len(s.buf) == c.end {
		// Nothing has changed since s was filled (a scrape of an idle
		// cache, or a second Prometheus right after the first): it still
		// holds the cache.
		c.mu.Unlock()
		return
	}
	s.buf = append(s.buf[:0], c.arena[:c.end]...)
	c.mu.Unlock()

	sorted := s.from == c && s.gen == gen
	s.from, s.gen, s.writes = c, gen, writes
	if !sorted {
		s.items, s.fams = s.items[:0], s.fams[:0]
	}
	s.list = s.list[:0]
	for off := 0; off < len(s.buf); {
		rec := s.record(off)
		switch rec[2] {
		case kindCompound:
			if rec[3]&flagWindow != 0 {
				kl := int(binary.LittleEndian.Uint16(rec[8:]))
				s.est = estimate(rec[hdrSize+kl:], s.est)
			}
			if !sorted {
				s.items = append(s.items, off)
			}
		case kindPlain:
			if !sorted {
				s.items = append(s.items, off)
			}
		case kindFamily:
			if !sorted {
				s.fams = append(s.fams, off)
			}
		}
		off += len(rec)
	}
	if !sorted {
		slices.SortFunc(s.items, func(a, b int) int { return compareKeys(s.key(a), s.key(b)) })
		slices.SortFunc(s.fams, func(a, b int) int { return compareKeys(s.key(a), s.key(b)) })
	}

	fi := 0
	for lo := 0; lo < len(s.items); {
		name, _ := splitKey(s.key(s.items[lo]))
		hi := lo + 1
		for hi < len(s.items) {
			n, _ := splitKey(s.key(s.items[hi]))
			if !bytes.Equal(n, name) {
				break
			}
			hi++
		}
		f := Family{Name: name, s: s, lo: lo, hi: hi}
		for fi < len(s.fams) {
			fn, _ := splitKey(s.key(s.fams[fi]))
			c := bytes.Compare(fn, name)
			if c > 0 {
				break
			}
			fi++
			if c == 0 {
				rec := s.record(s.fams[fi-1])
				f.Type = Type(rec[3] & typeMask)
				if rec[3]&flagHelp != 0 {
					help := rec[hdrSize+len(s.key(s.fams[fi-1])):]
					if rec[3]&flagTTL != 0 {
						help = help[:len(help)-4]
					}
					f.HasHelp, f.Help = true, help
				}
				break
			}
		}
		if f.Type == Untyped && s.record(s.items[lo])[2] == kindCompound {
			// Its family has gone (it never leaves before its items, but a
			// snapshot must stay valid whatever happened).
			f.Type = Histogram
			if s.record(s.items[lo])[3]&flagSummary != 0 {
				f.Type = Summary
			}
		}
		s.list = append(s.list, f)
		lo = hi
	}
	// A family whose lines would be read as part of a histogram or summary
	// (foo_sum next to histogram foo) makes the exposition invalid. The cache
	// refuses to create one; this only guards the output.
	for i := range s.list {
		if s.clashes(s.list[i].Name) {
			s.list[i].hi = -1
		}
	}
	n := 0
	for _, f := range s.list {
		if f.hi >= 0 {
			s.list[n] = f
			n++
		}
	}
	s.list = s.list[:n]
}

func (s *Snapshot) clashes(name []byte) bool {
	for i, suf := range suffixes {
		if !bytes.HasSuffix(name, []byte(suf)) {
			continue
		}
		base := name[:len(name)-len(suf)]
		j, ok := slices.BinarySearchFunc(s.list, base, func(f Family, n []byte) int { return bytes.Compare(f.Name, n) })
		if ok && (s.list[j].Type == Histogram || s.list[j].Type == Summary && i > 0) {
			return true
		}
	}
	return false
}

func (s *Snapshot) record(off int) []byte {
	return s.buf[off : off+int(binary.LittleEndian.Uint16(s.buf[off:]))]
}

func (s *Snapshot) key(off int) []byte {
	n := int(binary.LittleEndian.Uint16(s.buf[off+8:]))
	return s.buf[off+hdrSize : off+hdrSize+n]
}

// Len returns the number of families.
func (s *Snapshot) Len() int { return len(s.list) }

// Family returns family i, in name order.
func (s *Snapshot) Family(i int) *Family { return &s.list[i] }

// Len returns the number of items of f.
func (f *Family) Len() int { return f.hi - f.lo }

// Series returns item i of f. ok is false when the item does not fit the
// family's type (a plain series in a histogram family): such an item is
// skipped rather than written into an invalid exposition.
func (f *Family) Series(i int) (s Series, ok bool) {
	rec := f.s.record(f.s.items[f.lo+i])
	compound := rec[2] == kindCompound
	if compound != f.Type.compound() {
		return Series{}, false
	}
	if compound && (rec[3]&flagSummary != 0) != (f.Type == Summary) {
		return Series{}, false
	}
	return Series{rec: rec}, true
}

func (s Series) keyLen() int { return int(binary.LittleEndian.Uint16(s.rec[8:])) }

// Labels returns the encoded label set of s; read it with NextLabel.
func (s Series) Labels() []byte {
	_, l := splitKey(s.rec[hdrSize : hdrSize+s.keyLen()])
	return l
}

// NextLabel decodes the first label of an encoded label set (from
// Series.Labels) and returns the rest; ok is false at the end.
func NextLabel(labels []byte) (name, value, rest []byte, ok bool) {
	return nextLabel(labels)
}

func (s Series) payload() []byte { return s.rec[hdrSize+s.keyLen():] }

// Value returns the value of a plain series.
func (s Series) Value() float64 { return getF(s.payload()) }

// Sum returns the _sum of a histogram or summary, if one was received.
func (s Series) Sum() (float64, bool) { return getF(s.payload()), s.rec[3]&flagSum != 0 }

// Count returns the _count of a histogram or summary, if one was received.
func (s Series) Count() (float64, bool) { return getF(s.payload()[8:]), s.rec[3]&flagCount != 0 }

// Buckets returns the number of buckets (histogram) or quantiles (summary).
func (s Series) Buckets() int { return int(binary.LittleEndian.Uint16(s.payload()[16:])) }

// Bucket returns bucket or quantile i: its upper bound (le) or quantile, and
// its value. They come in increasing order of bound.
func (s Series) Bucket(i int) (bound, value float64) {
	p := s.payload()[compoundFix+16*i:]
	return getF(p), getF(p[8:])
}

// Line returns exposed line i of s, 0 <= i < s.Lines(), as the text
// format and remote write name it: the suffix to the family's name, the
// extra label (le of a histogram's bucket, quantile of a summary's) with
// its bound, and the value. A histogram's or summary's lines come in the
// order the format requires: buckets or quantiles by bound, _sum, _count.
func (s Series) Line(i int) (suffix, extra string, bound, value float64) {
	if s.rec[2] != kindCompound {
		return "", "", 0, s.Value()
	}
	if n := s.Buckets(); i < n {
		bound, value = s.Bucket(i)
		if s.rec[3]&flagSummary != 0 {
			return "", "quantile", bound, value
		}
		return "_bucket", "le", bound, value
	} else if i == n && s.rec[3]&flagSum != 0 {
		value, _ = s.Sum()
		return "_sum", "", 0, value
	}
	value, _ = s.Count()
	return "_count", "", 0, value
}

// SnapshotBytes is about what Snapshot would hold of a copy of the cache
// now: the arena in use and an index entry per series.
func (c *Cache) SnapshotBytes() int {
	c.mu.Lock()
	n := c.end + 8*c.series
	c.mu.Unlock()
	return n
}
