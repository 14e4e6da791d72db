// Package cache is the memory-bounded TTL store of push-gateway.
//
// Everything the cache holds (series keys, values, timestamps, family
// metadata, HELP text and the hash index) lives in two pointer-free slices:
// an arena of variable-size records and an open-addressing index of arena
// offsets. Their combined length never exceeds the budget, so the budget is
// what the cache costs the Go heap, and the garbage collector never scans it.
//
// It knows nothing of sockets or HTTP. All methods are safe to be called
// concurrently; one mutex guards the whole store, and a scrape holds it only
// to copy the arena (see Snapshot).
package cache

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"math"
	"slices"
	"sync"
	"time"
)

// DefaultBudget is the --cache.size default: 10 KiB.
const DefaultBudget = 10 << 10

// MinBudget is the smallest budget New accepts.
const MinBudget = 1 << 10

// Options configure a Cache. The zero value means the defaults.
type Options struct {
	Budget int              // bytes; 0 means DefaultBudget
	TTL    time.Duration    // a series expires this long after its last update; 0 never
	Now    func() time.Time // the clock; nil means time.Now
}

// Stats are counters and gauges of a cache, for its self-metrics.
type Stats struct {
	Series   int // exposed series (a histogram counts its buckets, _sum and _count)
	Bytes    int // bytes of the budget in use: live records plus the index
	Budget   int
	Expired  uint64 // items removed because their TTL passed
	Evicted  uint64 // items removed to make room (least recently updated)
	TooLarge uint64 // items refused because they were larger than the budget
}

// Record layout in the arena, little endian:
//
//	0  size    u16  whole record, header included
//	2  kind    u8
//	3  flags   u8   family: type | flagHelp; compound: flagSum | flagCount
//	4  updated u32  clock ticks (10 ms) of the last update, compared wrapping
//	8  keyLen  u16
//	10 order   u16  of the last update among the updates of its tick
//	12 key
//	   payload: plain: value f64
//	            compound: sum f64, count f64, n u16, n × (bound f64, value f64)
//	            family: help bytes (the rest of the record, TTL excepted)
//	   ttl     u32  with flagTTL only: the record's own TTL in ticks, 0 never;
//	                the last 4 bytes, after the group id of a pushed item
//
// A record without flagTTL lives for the cache's TTL (--cache.ttl): a
// series at the default costs no byte for it.
const (
	hdrSize     = 12
	maxRecord   = math.MaxUint16
	minIndex    = 16
	compoundFix = 8 + 8 + 2
	bigCache    = 64 << 10 // see insert
	deadMin     = 3        // a dead record needs its size and kind
)

const (
	kindDead uint8 = iota
	kindPlain
	kindCompound // histogram or summary; its family says which
	kindFamily
)

const (
	flagSum     = 1 << 0
	flagCount   = 1 << 1
	flagSummary = 1 << 2 // a compound item of a summary, not a histogram
	flagHelp    = 1 << 3
	flagTTL     = 1 << 6 // any kind: the record ends with its own TTL
	typeMask    = 7
)

// ttlDefault, as the TTL of the writes in progress (Cache.wttl), means the
// cache's own: records written get no TTL field.
const ttlDefault = math.MaxUint32

// Cache is the store. Create it with New.
type Cache struct {
	mu     sync.Mutex
	budget int
	ttl    uint32 // ticks; 0 never
	// wttl is the TTL, in ticks, that the writes in progress give what
	// they update, or ttlDefault; lockWrite resets it.
	wttl    uint32
	now     func() time.Time
	epoch   time.Time
	seed    maphash.Seed
	arena   []byte   // records; len is the capacity in use, end the bump point
	end     int      // first free byte of arena
	live    int      // bytes of live records
	index   []uint32 // arena offset+1 of each item and family; 0 is empty
	count   int      // entries in index
	series  int      // exposed series
	scratch []byte   // key under construction
	rec     []byte   // record under construction
	victims []victim // least recently updated first; see popVictim
	vpos    int
	last    stamp  // of the latest update; see next
	hole    int    // offset of the last removed record, -1 if none; see alloc
	gen     uint64 // counts changes that move or remove records
	writes  uint64 // counts the holds of the lock that may change anything
	memo    resolveMemo
	stats   Stats
	// expire has nothing to do before tick sweepAt, while swept holds;
	// Load, which stores records older than any, clears it.
	sweepAt uint32
	swept   bool
	moved   []byte // key of a record that stamp moves; see stampSlow
}

// lockWrite takes the lock to change the cache. Every change that a scrape
// shows happens under one, or moves gen (expiry's removals), so a snapshot
// taken at the same count of writes and gen still holds the cache.
func (c *Cache) lockWrite() {
	c.mu.Lock()
	c.writes++
	c.wttl = ttlDefault
}

// DefaultTTL, as the TTL of an update, means the cache's own (--cache.ttl).
const DefaultTTL time.Duration = -1

// ticks returns a TTL in ticks, rounded up, saturated as the cache's own
// is (see New); ttlDefault for DefaultTTL (any negative duration) and for
// a TTL equal to the cache's own, which thus costs no bytes.
func (c *Cache) ticks(d time.Duration) uint32 {
	if d < 0 {
		return ttlDefault
	}
	t := uint32(min((d+tickUnit-1)/tickUnit, math.MaxInt32))
	if t == c.ttl {
		return ttlDefault
	}
	return t
}

// setTTL makes the writes that follow, at tick now, give their records
// the TTL t (ticks or ttlDefault), and keeps expire's skip correct: what
// they write may expire before anything the last pass saw.
func (c *Cache) setTTL(t, now uint32) {
	c.wttl = t
	if t == ttlDefault {
		t = c.ttl
	}
	if t != 0 && c.swept && int32(c.sweepAt-now-t) > 0 {
		c.sweepAt = now + t
	}
}

// ttlOf is the TTL of the record at off, in ticks; 0 never.
func (c *Cache) ttlOf(off int) uint32 {
	if c.flags(off)&flagTTL == 0 {
		return c.ttl
	}
	return binary.LittleEndian.Uint32(c.arena[off+c.size(off)-4:])
}

// longer is the longer of two TTLs in ticks, 0 being forever.
func longer(a, b uint32) uint32 {
	if a == 0 || b == 0 {
		return 0
	}
	return max(a, b)
}

type victim struct {
	off   int
	upd   uint32
	age   uint32
	order uint16
	fam   bool
}

// A stamp orders the updates: by the tick of the clock, then, within a
// tick, by the order in which they came. The lines of a burst come within
// one tick or a few, and least recently updated must mean the first of
// them, not whichever the arena holds first.
type stamp struct {
	tick  uint32
	order uint16
}

// next returns the order of an update made at tick now: 1 for the first
// of the tick, then one more for each. The 65,535th and later updates of
// one tick (10 ms) share the last order: among them eviction picks any.
func (c *Cache) next(now uint32) uint16 {
	if now != c.last.tick {
		c.last = stamp{tick: now}
	}
	if c.last.order < math.MaxUint16 {
		c.last.order++
	}
	return c.last.order
}

// New returns an empty cache.
func New(o Options) *Cache {
	if o.Budget <= 0 {
		o.Budget = DefaultBudget
	}
	if o.Budget < MinBudget {
		o.Budget = MinBudget
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	// Ages saturate at MaxInt32 ticks (248 days); a longer TTL is that long.
	ttl := min((o.TTL+tickUnit-1)/tickUnit, math.MaxInt32)
	c := &Cache{
		budget: o.Budget,
		ttl:    uint32(ttl),
		now:    o.Now,
		seed:   maphash.MakeSeed(),
		index:  make([]uint32, minIndex),
		hole:   -1,
	}
	c.epoch = c.now()
	c.stats.Budget = o.Budget
	return c
}

// Budget returns the budget in bytes.
func (c *Cache) Budget() int { return c.budget }

// tickUnit is the resolution of update times and of the TTL. Four bytes of
// 10 ms ticks last 497 days before they wrap; ages are compared wrapping and
// saturate at half that (see expire).
const tickUnit = 10 * time.Millisecond

// tick is the clock in ticks since the cache was made, wrapping.
func (c *Cache) tick() uint32 {
	return uint32(c.now().Sub(c.epoch) / tickUnit)
}

// Record accessors.

func (c *Cache) size(off int) int    { return int(binary.LittleEndian.Uint16(c.arena[off:])) }
func (c *Cache) kind(off int) uint8  { return c.arena[off+2] }
func (c *Cache) flags(off int) uint8 { return c.arena[off+3] }
func (c *Cache) updated(off int) uint32 {
	return binary.LittleEndian.Uint32(c.arena[off+4:])
}
func (c *Cache) order(off int) uint16 { return binary.LittleEndian.Uint16(c.arena[off+10:]) }

// touch marks the record at off as updated now, after every update before.
func (c *Cache) touch(off int, now uint32) {
	h := c.arena[off+4 : off+hdrSize]
	binary.LittleEndian.PutUint32(h, now)
	binary.LittleEndian.PutUint16(h[6:], c.next(now))
}
func (c *Cache) key(off int) []byte {
	n := int(binary.LittleEndian.Uint16(c.arena[off+8:]))
	return c.arena[off+hdrSize : off+hdrSize+n]
}
func (c *Cache) payload(off int) []byte {
	n := int(binary.LittleEndian.Uint16(c.arena[off+8:]))
	end := off + c.size(off) - 4*int(c.flags(off)>>6&1) // flagTTL: the TTL is no payload
	return c.arena[off+hdrSize+n : end]
}

func getF(b []byte) float64    { return math.Float64frombits(binary.LittleEndian.Uint64(b)) }
func putF(b []byte, f float64) { binary.LittleEndian.PutUint64(b, math.Float64bits(f)) }

// seriesOf is how many exposed series the item at off stands for.
func (c *Cache) seriesOf(off int) int {
	switch c.kind(off) {
	case kindPlain:
		return 1
	case kindCompound:
		f := c.flags(off)
		n := int(binary.LittleEndian.Uint16(c.payload(off)[16:]))
		if f&flagSum != 0 {
			n++
		}
		if f&flagCount != 0 {
			n++
		}
		return n
	}
	return 0
}

// Index.

func (c *Cache) hash(key []byte, fam bool) uint64 {
	h := maphash.Bytes(c.seed, key)
	if fam {
		h = ^h
	}
	return h
}

func (c *Cache) home(h uint64, m int) int {
	return int((uint64(uint32(h>>32)) * uint64(m)) >> 32)
}

// find returns the offset of the record with this key, -1 if none.
func (c *Cache) find(key []byte, fam bool) int {
	m := len(c.index)
	i := c.home(c.hash(key, fam), m)
	for {
		v := c.index[i]
		if v == 0 {
			return -1
		}
		off := int(v - 1)
		if (c.kind(off) == kindFamily) == fam && bytes.Equal(c.key(off), key) {
			return off
		}
		if i++; i == m {
			i = 0
		}
	}
}

func (c *Cache) indexInsert(off int) {
	m := len(c.index)
	i := c.home(c.hash(c.key(off), c.kind(off) == kindFamily), m)
	for c.index[i] != 0 {
		if i++; i == m {
			i = 0
		}
	}
	c.index[i] = uint32(off + 1)
	c.count++
}

// slotOf returns the index slot that holds off.
func (c *Cache) slotOf(off int) int {
	m := len(c.index)
	i := c.home(c.hash(c.key(off), c.kind(off) == kindFamily), m)
	for c.index[i] != uint32(off+1) {
		if i++; i == m {
			i = 0
		}
	}
	return i
}

// indexRemove empties slot i by backward-shift deletion, so that linear
// probing needs no tombstones.
func (c *Cache) indexRemove(i int) {
	m := len(c.index)
	j := i
	for {
		if j++; j == m {
			j = 0
		}
		v := c.index[j]
		if v == 0 {
			break
		}
		off := int(v - 1)
		k := c.home(c.hash(c.key(off), c.kind(off) == kindFamily), m)
		// The entry at j may move to i unless its home lies cyclically in (i, j].
		if i <= j {
			if i < k && k <= j {
				continue
			}
		} else if i < k || k <= j {
			continue
		}
		c.index[i] = v
		i = j
	}
	c.index[i] = 0
	c.count--
}

// indexSizeFor is the index length needed to hold n entries at a load of at
// most 4/5. It grows by a quarter at a time: the index is part of the budget,
// and at the default 10 KiB a doubling would cost ten series.
func indexSizeFor(n, cur int) int {
	m := cur
	for n*5 > m*4 {
		m += m / 4
	}
	return m
}

func (c *Cache) growIndex(m int) {
	c.gen++
	c.index = make([]uint32, m)
	c.count = 0
	for off := 0; off < c.end; off += c.size(off) {
		if c.kind(off) != kindDead {
			c.indexInsert(off)
		}
	}
	// The arena keeps its length: reallocating it to the new, smaller limit
	// at every growth of the index copied the whole arena each time and
	// made filling a cache allocate five times its budget. It may now
	// exceed budget - 4m by what the index took (about 5%); alloc keeps the
	// records within the limit.
	if c.end > c.budget-4*m {
		c.compact()
	}
}

// Arena.

// used is the bytes of the budget in use.
func (c *Cache) used() int { return c.live + 4*len(c.index) }

// alloc returns the offset of n free bytes at the end of the arena, growing
// or compacting it. The caller has made room: c.live+n fits the budget.
// With pad, the record tolerates trailing bytes, and alloc may return up to
// deadMin-1 bytes more than n; size is what it returns.
func (c *Cache) alloc(n int, pad bool) (off, size int) {
	// Reuse the hole of the last removal when the record fits it: under churn
	// a new series takes the place of the one just evicted, and the arena
	// needs no compaction. What is left over must hold a dead header, or
	// pad the record.
	if h := c.hole; h >= 0 && h < c.end && c.kind(h) == kindDead {
		hs := c.size(h)
		switch {
		case hs >= n+deadMin:
			binary.LittleEndian.PutUint16(c.arena[h+n:], uint16(hs-n))
			c.arena[h+n+2] = kindDead
			c.hole = h + n
			return h, n
		case hs == n || hs > n && pad:
			c.hole = -1
			return h, hs
		}
	}
	limit := c.budget - 4*len(c.index)
	if c.end+n > len(c.arena) || c.end+n > limit {
		if c.end+n > limit {
			c.compact()
		}
		if c.end+n > len(c.arena) {
			size := max(2*len(c.arena), c.end+n, 256)
			a := make([]byte, min(size, limit))
			copy(a, c.arena[:c.end])
			c.arena = a
		}
	}
	off = c.end
	c.end += n
	return off, n
}

// compact slides the live records to the front of the arena, closing the
// holes that deletions left, and points the index at their new places.
func (c *Cache) compact() {
	c.gen++
	c.hole = -1
	dst := 0
	for off := 0; off < c.end; {
		n := c.size(off)
		if c.kind(off) != kindDead {
			if dst != off {
				c.index[c.slotOf(off)] = uint32(dst + 1)
				copy(c.arena[dst:], c.arena[off:off+n])
			}
			dst += n
		}
		off += n
	}
	c.end = dst
	c.victims, c.vpos = c.victims[:0], 0
}

// remove deletes the record at off.
func (c *Cache) remove(off int) {
	c.gen++
	c.indexRemove(c.slotOf(off))
	c.series -= c.seriesOf(off)
	c.live -= c.size(off)
	c.arena[off+2] = kindDead
	c.hole = off
	if off+c.size(off) == c.end {
		c.end = off // give the tail back at once; cheap and common
		c.hole = -1
	}
}

// insert stores rec (a complete record) and returns its offset, evicting the
// least recently updated items if the budget needs it. pin is an offset that
// must not be evicted (the family of the item), or -1. ok is false when rec
// cannot fit even in an empty cache.
func (c *Cache) insert(rec []byte, pin int) (off int, ok bool) {
	n := len(rec)
	if n+4*minIndex > c.budget || n > maxRecord {
		c.stats.TooLarge++
		return -1, false
	}
	pad := rec[2] == kindPlain && rec[3]&(flagGroup|flagTTL) == 0
	need := n
	if pad {
		need += deadMin - 1 // alloc may pad it by as much
	}
	for {
		m := indexSizeFor(c.count+1, len(c.index))
		if c.live+need+4*m <= c.budget {
			if m != len(c.index) {
				c.growIndex(m)
			}
			break
		}
		v, found := c.popVictim(pin)
		if !found {
			c.stats.TooLarge++
			return -1, false
		}
		c.remove(v)
	}
	// A full arena compacts on the next insert, which costs a pass over all
	// of it. In a small cache that is cheap and eviction stays exact; in a
	// large one a stream of new series would pay it for every series, so
	// eviction makes 1/32 of the arena free at once.
	if limit := c.budget - 4*len(c.index); c.budget > bigCache && c.end+n > limit {
		for c.live+n+limit/32 > limit {
			v, found := c.popVictim(pin)
			if !found {
				break
			}
			c.remove(v)
		}
	}
	// A plain series outside any group reads only its first 8 payload
	// bytes, so it may take a hole a byte or two larger than itself.
	off, size := c.alloc(n, pad)
	c.gen++
	copy(c.arena[off:], rec)
	binary.LittleEndian.PutUint16(c.arena[off:], uint16(size))
	binary.LittleEndian.PutUint16(c.arena[off+10:], c.next(c.updated(off)))
	c.live += size
	c.indexInsert(off)
	c.series += c.seriesOf(off)
	return off, true
}

// popVictim returns the least recently updated item or family other than
// pin. Finding it exactly each time would scan the arena per eviction, so
// a scan keeps the oldest eighth, sorted; an entry still holds while its
// record is live and not updated since the scan (its stamp is unchanged),
// and anything not in the queue is newer than everything in it. Families
// sort after the items of the same tick, whatever their order within it: a
// family is touched whenever one of its items is, so it leaves only after
// them and keeps its HELP and TYPE while any of its series remain.
func (c *Cache) popVictim(pin int) (int, bool) {
	for {
		if c.vpos >= len(c.victims) {
			if !c.scanVictims(pin) {
				return -1, false
			}
		}
		v := c.victims[c.vpos]
		c.vpos++
		if v.off >= c.end || v.off == pin || c.kind(v.off) == kindDead ||
			c.updated(v.off) != v.upd || c.order(v.off) != v.order ||
			(c.kind(v.off) == kindFamily) != v.fam {
			continue
		}
		if ttl := c.ttlOf(v.off); ttl != 0 && v.age >= ttl {
			c.stats.Expired++
		} else if !v.fam {
			c.stats.Evicted++
		}
		return v.off, true
	}
}

// older orders victims: oldest first, items before families of the same
// tick, then in the order of their updates within the tick.
func older(a, b victim) bool {
	if a.age != b.age {
		return a.age > b.age
	}
	if a.fam != b.fam {
		return !a.fam
	}
	return a.order < b.order
}

func (c *Cache) scanVictims(pin int) bool {
	k := max(8, c.count/8)
	h := c.victims[:0]
	now := c.tick()
	for off := 0; off < c.end; off += c.size(off) {
		if c.kind(off) == kindDead || off == pin {
			continue
		}
		upd := c.updated(off)
		v := victim{off: off, upd: upd, age: now - upd, order: c.order(off), fam: c.kind(off) == kindFamily}
		// h is a heap whose root is the newest of the k oldest so far.
		if len(h) < k {
			h = append(h, v)
			for i := len(h) - 1; i > 0; {
				p := (i - 1) / 2
				if !older(h[p], h[i]) {
					break
				}
				h[p], h[i] = h[i], h[p]
				i = p
			}
			continue
		}
		if !older(v, h[0]) {
			continue
		}
		h[0] = v
		for i := 0; ; {
			l, r, m := 2*i+1, 2*i+2, i
			if l < len(h) && older(h[m], h[l]) {
				m = l
			}
			if r < len(h) && older(h[m], h[r]) {
				m = r
			}
			if m == i {
				break
			}
			h[m], h[i] = h[i], h[m]
			i = m
		}
	}
	slices.SortFunc(h, func(a, b victim) int {
		if older(a, b) {
			return -1
		}
		if older(b, a) {
			return 1
		}
		return 0
	})
	c.victims, c.vpos = h, 0
	return len(h) > 0
}

// Expire removes every item and family whose TTL has passed. Snapshot calls
// it, eviction takes expired items first, and the daemon calls it on a timer
// so that an idle cache gives its memory back on time.
func (c *Cache) Expire() {
	// Not lockWrite: what expiry changes that a scrape shows is removals,
	// which move gen; a snapshot stays reusable across the daemon's timer.
	c.mu.Lock()
	c.expire()
	c.mu.Unlock()
}

func (c *Cache) expire() {
	now := c.tick()
	// Every write stamps records with the current tick, taken under the
	// lock, so records only get newer, and a write whose TTL ends before
	// sweepAt moves it closer (setTTL): until the first record's TTL has
	// passed there is nothing to remove, and a scrape of a large cache
	// skips the pass over it (a few percent of its CPU, all of it under
	// the lock that ingestion waits on).
	if d := c.sweepAt - now; c.swept && d-1 < sweepEvery { // 0 < d <= sweepEvery
		return
	}
	next := uint32(sweepEvery) // until the first of what stays expires
	for off := 0; off < c.end; {
		n := c.size(off)
		if c.kind(off) != kindDead {
			age := now - c.updated(off)
			ttl := c.ttlOf(off)
			if ttl != 0 && age >= ttl {
				if c.kind(off) != kindFamily {
					c.stats.Expired++
				}
				c.remove(off)
				if off >= c.end { // remove gave the tail back
					break
				}
				off += n
				continue
			}
			if age > math.MaxInt32 {
				// Saturate, so that a wrapping age never turns old into new.
				binary.LittleEndian.PutUint32(c.arena[off+4:], now-math.MaxInt32)
				age = math.MaxInt32
			}
			if ttl != 0 {
				next = min(next, ttl-age) // age < ttl: at least one tick
			}
		}
		off += n
	}
	c.sweepAt, c.swept = now+next, true
}

// sweepEvery bounds the time between two passes of expire, in ticks: without
// a TTL a pass only saturates ages, which takes 248 days to matter.
const sweepEvery = uint32(time.Hour / tickUnit)

// Stats returns the cache's figures.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	s := c.stats
	s.Series = c.series
	s.Bytes = c.used()
	c.mu.Unlock()
	return s
}

// Batch is a run of updates made under one hold of the cache's lock and one
// reading of the clock, as the lines of one read from a socket are. Writers
// and scrapes wait while it is open: keep it short, and call End.
type Batch struct {
	c   *Cache
	now uint32
}

// Begin locks the cache for a batch of updates.
func (c *Cache) Begin() Batch {
	c.lockWrite()
	b := Batch{c: c, now: c.tick()}
	c.setTTL(ttlDefault, b.now)
	return b
}

// SetTTL gives the updates that follow in the batch the TTL d: each sets
// its series' TTL to d (0 never expires). DefaultTTL, which the batch
// starts with, is the cache's own.
func (b Batch) SetTTL(d time.Duration) { b.c.setTTL(b.c.ticks(d), b.now) }

// End unlocks the cache.
func (b Batch) End() { b.c.mu.Unlock() }

// Set is Cache.Set within the batch.
func (b Batch) Set(name []byte, labels []Label, v float64) error {
	return b.c.set(name, labels, v, b.now)
}

// SetType is Cache.SetType within the batch.
func (b Batch) SetType(name []byte, t Type) error { return b.c.setType(name, t, b.now) }

// SetHelp is Cache.SetHelp within the batch.
func (b Batch) SetHelp(name, help []byte) error { return b.c.setHelp(name, help, b.now) }

// Families.

// resolveMemo remembers the last name resolve looked up. Lines come grouped
// by family, so most lines skip the family lookups; any change to the
// arena or the index (gen) forgets it.
type resolveMemo struct {
	name               []byte
	gen                uint64
	fam, owner, suffix int
}

// resolve returns the family record of name (-1 if none) and, if there is
// none, the histogram or summary family whose line name is (see
// compoundOwner).
func (c *Cache) resolve(name []byte) (fam, owner, suffix int) {
	m := &c.memo
	if m.gen == c.gen && bytes.Equal(m.name, name) {
		return m.fam, m.owner, m.suffix
	}
	fam, owner = c.family(name), -1
	if fam < 0 {
		owner, suffix = c.compoundOwner(name)
	}
	m.name = append(m.name[:0], name...)
	m.gen, m.fam, m.owner, m.suffix = c.gen, fam, owner, suffix
	return fam, owner, suffix
}

// family returns the offset of the family record of name, -1 if none.
func (c *Cache) family(name []byte) int {
	c.scratch = appendName(c.scratch[:0], name)
	return c.find(c.scratch, true)
}

func (c *Cache) familyType(off int) Type { return Type(c.flags(off) & typeMask) }

var suffixes = [...]string{"_bucket", "_sum", "_count"}

// compoundOwner returns the offset of the histogram or summary family whose
// exposed lines include name (foo_bucket, foo_sum, foo_count of foo), and
// which of the suffixes matched; -1 if none.
func (c *Cache) compoundOwner(name []byte) (off, suffix int) {
	for i, s := range suffixes {
		if !bytes.HasSuffix(name, []byte(s)) {
			continue
		}
		f := c.family(name[:len(name)-len(s)])
		if f < 0 {
			return -1, 0
		}
		t := c.familyType(f)
		if t == Histogram || (t == Summary && i > 0) {
			return f, i
		}
		return -1, 0
	}
	return -1, 0
}

// SetType records the TYPE of a family. A change of type that changes the
// shape of its series (to or from histogram or summary) drops the series the
// family had, since they no longer fit it.
func (c *Cache) SetType(name []byte, t Type) error {
	b := c.Begin()
	defer b.End()
	return b.SetType(name, t)
}

func (c *Cache) setType(name []byte, t Type, now uint32) error {
	if f, _ := c.compoundOwner(name); f >= 0 {
		return ErrNameClash
	}
	f := c.family(name)
	if f >= 0 {
		old := c.familyType(f)
		if f, _ = c.stampFamily(f, -1, now); f < 0 {
			return ErrTooLarge
		}
		if old == t {
			return nil
		}
		c.arena[f+3] = c.flags(f)&^typeMask | uint8(t)
		c.gen++
		if old.compound() || t.compound() {
			c.dropFamilySeries(name, t)
		}
		return nil
	}
	c.rec = appendRecord(c.rec[:0], kindFamily, uint8(t), now, appendName(c.scratch[:0], name), nil, c.famTTL(-1))
	if _, ok := c.insert(c.rec, -1); !ok {
		return ErrTooLarge
	}
	if t.compound() {
		c.dropFamilySeries(name, t)
	}
	return nil
}

// dropFamilySeries removes the items of family name, whose type has changed
// shape, and for a histogram or summary also the series and families that its
// _bucket, _sum and _count lines would clash with in the exposition.
func (c *Cache) dropFamilySeries(name []byte, t Type) {
	for off := 0; off < c.end; off += c.size(off) {
		k := c.kind(off)
		if k == kindDead {
			continue
		}
		n, _ := splitKey(c.key(off))
		if bytes.Equal(n, name) {
			if k != kindFamily {
				c.remove(off)
			}
			continue
		}
		if !t.compound() || len(n) <= len(name) || !bytes.HasPrefix(n, name) {
			continue
		}
		for i, s := range suffixes {
			if string(n[len(name):]) == s && (t == Histogram || i > 0) {
				c.remove(off)
				break
			}
		}
	}
}

// SetHelp records the HELP text of a family.
func (c *Cache) SetHelp(name, help []byte) error {
	b := c.Begin()
	defer b.End()
	return b.SetHelp(name, help)
}

func (c *Cache) setHelp(name, help []byte, now uint32) error {
	if f, _ := c.compoundOwner(name); f >= 0 {
		return ErrNameClash
	}
	f := c.family(name)
	if f >= 0 {
		if c.flags(f)&flagHelp != 0 && bytes.Equal(c.payload(f), help) {
			if f, _ = c.stampFamily(f, -1, now); f < 0 {
				return ErrTooLarge
			}
			return nil
		}
		c.rec = appendRecord(c.rec[:0], kindFamily, c.flags(f)|flagHelp, now, c.key(f), help, c.famTTL(f))
		if len(c.rec)+4*minIndex > c.budget || len(c.rec) > maxRecord {
			c.stats.TooLarge++
			return ErrTooLarge // before the old record goes: nothing changes
		}
		c.remove(f)
	} else {
		c.rec = appendRecord(c.rec[:0], kindFamily, uint8(Untyped)|flagHelp, now, appendName(c.scratch[:0], name), help, c.famTTL(-1))
	}
	if _, ok := c.insert(c.rec, -1); !ok {
		return ErrTooLarge
	}
	return nil
}

// clearHelp removes the HELP text of family name, if it has one.
func (c *Cache) clearHelp(name []byte, now uint32) {
	f := c.family(name)
	if f < 0 || c.flags(f)&flagHelp == 0 {
		return
	}
	c.rec = appendRecord(c.rec[:0], kindFamily, c.flags(f)&^flagHelp, now, c.key(f), nil, c.famTTL(f))
	c.remove(f)
	c.insert(c.rec, -1) // smaller than what it replaces: it fits
}

// appendRecord appends a record with TTL ttl (ticks, or ttlDefault for no
// TTL field) to dst; flagTTL in flags is ignored.
func appendRecord(dst []byte, kind, flags uint8, now uint32, key, payload []byte, ttl uint32) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint16(dst, 0) // size: withTTL sets it
	dst = append(dst, kind, flags)
	dst = binary.LittleEndian.AppendUint32(dst, now)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(min(len(key), maxRecord)))
	dst = append(dst, 0, 0) // order: insert sets it
	dst = append(dst, key...)
	dst = append(dst, payload...)
	return withTTL(dst, start, ttl)
}

// withTTL ends the record at dst[start:], which has no TTL field yet, with
// ttl's (none for ttlDefault) and sets its size.
func withTTL(dst []byte, start int, ttl uint32) []byte {
	if ttl == ttlDefault {
		dst[start+3] &^= flagTTL
	} else {
		dst[start+3] |= flagTTL
		dst = binary.LittleEndian.AppendUint32(dst, ttl)
	}
	binary.LittleEndian.PutUint16(dst[start:], uint16(min(len(dst)-start, maxRecord)))
	return dst
}

// content is the payload of the record at off without the bytes that
// alloc may have padded a plain record with.
func (c *Cache) content(off int) []byte {
	p := c.payload(off)
	if c.kind(off) == kindPlain && c.flags(off)&flagGroup == 0 {
		p = p[:8]
	}
	return p
}

// famTTL is the TTL a write gives the family at f (-1 for a new one): the
// longer of its own and the write's, so that a family outlives its items.
func (c *Cache) famTTL(f int) uint32 {
	t := c.wttl
	if t == ttlDefault {
		t = c.ttl
	}
	if f >= 0 {
		t = longer(t, c.ttlOf(f))
	}
	if t == c.ttl {
		return ttlDefault
	}
	return t
}

// stamp marks the item at off, of family fam (-1 if none), as updated now
// by a write of TTL c.wttl, and its family too: the item takes the write's
// TTL, the family famTTL. A record that gains or loses its TTL field moves,
// and any record may move with it (see insert): callers use no offset
// after. ErrTooLarge, on a full cache only, means the item is lost.
func (c *Cache) stamp(off, fam int, now uint32) error {
	if c.wttl == ttlDefault && c.flags(off)&flagTTL == 0 && (fam < 0 || c.flags(fam)&flagTTL == 0) {
		c.touch(off, now)
		if fam >= 0 {
			c.touch(fam, now)
		}
		return nil
	}
	return c.stampSlow(off, fam, now)
}

func (c *Cache) stampSlow(off, fam int, now uint32) error {
	if fam >= 0 {
		c.moved = append(c.moved[:0], c.key(off)...)
		var moved bool
		if fam, moved = c.stampFamily(fam, off, now); moved {
			off = c.find(c.moved, false) // pinned: still there
		}
	}
	_, err := c.retag(off, fam, c.wttl, now)
	return err
}

// touchFamily stamps the family at fam (-1 for none) for a write that
// makes a new item, and returns its offset.
func (c *Cache) touchFamily(fam int, now uint32) int {
	if fam < 0 {
		return -1
	}
	fam, _ = c.stampFamily(fam, -1, now)
	return fam
}

// stampFamily marks the family at fam as updated now, with TTL famTTL. It
// returns the family's offset, and whether records moved; pin must stay.
func (c *Cache) stampFamily(fam, pin int, now uint32) (int, bool) {
	off, err := c.retag(fam, pin, c.famTTL(fam), now)
	if err != nil {
		return -1, true
	}
	return off, off != fam
}

// retag marks the record at off as updated now with TTL ttl (ticks or
// ttlDefault), rewriting it when its TTL field comes or goes, and returns
// its offset. pin must not be evicted to make room.
func (c *Cache) retag(off, pin int, ttl uint32, now uint32) (int, error) {
	has := c.flags(off)&flagTTL != 0
	if has == (ttl != ttlDefault) {
		if has {
			binary.LittleEndian.PutUint32(c.arena[off+c.size(off)-4:], ttl)
		}
		c.touch(off, now)
		return off, nil
	}
	c.rec = appendRecord(c.rec[:0], c.kind(off), c.flags(off), now, c.key(off), c.content(off), ttl)
	if len(c.rec)+4*minIndex > c.budget || len(c.rec) > maxRecord {
		c.stats.TooLarge++
		c.touch(off, now)
		return off, ErrTooLarge
	}
	c.remove(off)
	n, ok := c.insert(c.rec, pin)
	if !ok {
		return -1, ErrTooLarge
	}
	return n, nil
}

// Samples.

// Set sets the value of the series name{labels}, as a sample line of the
// text format does. A name that belongs to a histogram or summary family
// (foo_bucket with an le label, foo_sum, foo_count, or foo with a quantile
// label) updates that one item. Labels are sorted in place; empty ones are
// dropped. An existing series is updated without allocating.
func (c *Cache) Set(name []byte, labels []Label, v float64) error {
	b := c.Begin()
	err := b.Set(name, labels, v)
	b.End()
	return err
}

func (c *Cache) set(name []byte, labels []Label, v float64, now uint32) error {
	fam, owner, suffix := c.resolve(name)
	if fam >= 0 {
		switch c.familyType(fam) {
		case Histogram:
			return ErrTypeConflict
		case Summary:
			return c.setCompound(fam, name, labels, v, -1, now)
		}
	} else if owner >= 0 {
		base := name[:len(name)-len(suffixes[suffix])]
		return c.setCompound(owner, base, labels, v, suffix, now)
	}
	key, _, _, err := appendKey(c.scratch[:0], name, labels, nil)
	c.scratch = key
	if err != nil {
		return err
	}
	if off := c.find(key, false); off >= 0 {
		if c.kind(off) != kindPlain {
			return ErrTypeConflict
		}
		putF(c.payload(off), v)
		// stamp, by hand: the hot path of the daemon, which the call
		// to stamp, too large to inline, made 5% slower.
		if c.wttl != ttlDefault || c.flags(off)&flagTTL != 0 || fam >= 0 && c.flags(fam)&flagTTL != 0 {
			return c.stampSlow(off, fam, now)
		}
		c.touch(off, now)
		if fam >= 0 {
			c.touch(fam, now)
		}
		return nil
	}
	var val [8]byte
	putF(val[:], v)
	fam = c.touchFamily(fam, now)
	c.rec = appendRecord(c.rec[:0], kindPlain, 0, now, key, val[:], c.wttl)
	if _, ok := c.insert(c.rec, fam); !ok {
		return ErrTooLarge
	}
	return nil
}

// setCompound updates one line of a histogram or summary item: suffix is an
// index into suffixes, or -1 for a summary's quantile line.
func (c *Cache) setCompound(fam int, base []byte, labels []Label, v float64, suffix int, now uint32) error {
	var skip []byte
	switch {
	case suffix == 0:
		skip = []byte("le")
	case suffix < 0:
		skip = []byte("quantile")
	}
	key, bound, found, err := appendKey(c.scratch[:0], base, labels, skip)
	c.scratch = key
	if err != nil {
		return err
	}
	// A histogram's le and a summary's quantile belong to its bucket and
	// quantile lines only: on a _sum or _count line expfmt would read them
	// as a bucket or quantile of their own.
	if skip == nil {
		reserved := "le"
		if c.familyType(fam) == Summary {
			reserved = "quantile"
		}
		for _, l := range labels {
			if string(l.Name) == reserved {
				return ErrReservedLabel
			}
		}
	}
	// Bucket populations and counts of a histogram cannot be negative.
	if c.familyType(fam) == Histogram && suffix != 1 && v < 0 {
		return ErrNegativeCount
	}
	var b float64
	if skip != nil {
		if !found {
			return ErrMissingLabel
		}
		var ok bool
		if b, ok = ParseFloat(bound); !ok || math.IsNaN(b) {
			return ErrBadLabelValue
		}
	}
	off := c.find(key, false)
	if off >= 0 && c.kind(off) != kindCompound {
		// Cannot happen through updates (a type change drops the family's
		// series), but a snapshot file is input too.
		return ErrTypeConflict
	}
	if off >= 0 {
		p := c.payload(off)
		switch suffix {
		case 1:
			putF(p, v)
			c.setFlag(off, flagSum)
		case 2:
			putF(p[8:], v)
			c.setFlag(off, flagCount)
		default:
			n := int(binary.LittleEndian.Uint16(p[16:]))
			i := 0
			for ; i < n; i++ {
				if bb := getF(p[compoundFix+16*i:]); bb >= b {
					if bb == b {
						putF(p[compoundFix+16*i+8:], v)
						if c.wttl != ttlDefault || c.flags(off)&flagTTL != 0 || c.flags(fam)&flagTTL != 0 {
							return c.stampSlow(off, fam, now) // see set
						}
						c.touch(off, now)
						c.touch(fam, now)
						return nil
					}
					break
				}
			}
			return c.growCompound(off, fam, i, b, v, now)
		}
		return c.stamp(off, fam, now)
	}
	var p [compoundFix + 16]byte
	var flags uint8
	if c.familyType(fam) == Summary {
		flags = flagSummary
	}
	payload := p[:compoundFix]
	switch suffix {
	case 1:
		putF(p[0:], v)
		flags |= flagSum
	case 2:
		putF(p[8:], v)
		flags |= flagCount
	default:
		binary.LittleEndian.PutUint16(p[16:], 1)
		putF(p[compoundFix:], b)
		putF(p[compoundFix+8:], v)
		payload = p[:]
	}
	fam = c.touchFamily(fam, now)
	c.rec = appendRecord(c.rec[:0], kindCompound, flags, now, key, payload, c.wttl)
	if _, ok := c.insert(c.rec, fam); !ok {
		return ErrTooLarge
	}
	return nil
}

func (c *Cache) setFlag(off int, f uint8) {
	if c.flags(off)&f == 0 {
		c.arena[off+3] |= f
		c.series++
	}
}

// growCompound rewrites the item at off with a new bucket (or quantile) b = v
// inserted at position i.
func (c *Cache) growCompound(off, fam, i int, b, v float64, now uint32) error {
	if hdrSize+len(c.key(off))+len(c.payload(off))+16+4 > maxRecord ||
		hdrSize+len(c.key(off))+len(c.payload(off))+16+4+4*minIndex > c.budget {
		c.stats.TooLarge++
		return ErrTooLarge
	}
	// The family first: if it moves, so may the item (see stamp).
	c.moved = append(c.moved[:0], c.key(off)...)
	if _, moved := c.stampFamily(fam, off, now); moved {
		off = c.find(c.moved, false)
	}
	key, p := c.key(off), c.payload(off)
	c.rec = appendRecord(c.rec[:0], kindCompound, c.flags(off), now, key, p[:compoundFix+16*i], ttlDefault)
	var nb [16]byte
	putF(nb[:], b)
	putF(nb[8:], v)
	c.rec = append(c.rec, nb[:]...)
	c.rec = append(c.rec, p[compoundFix+16*i:]...)
	np := c.rec[hdrSize+len(key):]
	binary.LittleEndian.PutUint16(np[16:], binary.LittleEndian.Uint16(np[16:])+1)
	c.rec = withTTL(c.rec, 0, c.wttl)
	c.remove(off)
	if _, ok := c.insert(c.rec, c.family(keyName(c.rec))); !ok {
		return ErrTooLarge
	}
	return nil
}

// keyName returns the metric name in the key of record rec.
func keyName(rec []byte) []byte {
	n := int(binary.LittleEndian.Uint16(rec[8:]))
	name, _ := splitKey(rec[hdrSize : hdrSize+n])
	return name
}
