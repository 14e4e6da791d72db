package cache

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"
)

// Aggregation: updates that add up instead of replacing, for pushers that
// keep no state (JSON events, PATCH increments, /aggregate pushes, and the
// clearmode label of prometheus-gravel-gateway on any path).

// Mode is what an update does with the value a series already has.
type Mode uint8

// Modes. ModeDefault is the path's own behaviour: set for text lines and
// gauges, add for counter events and increments.
const (
	ModeDefault   Mode = iota
	ModeReplace        // set the value
	ModeAggregate      // add to the value
	ModeFamily         // this series replaces every series of its family
)

// ParseMode returns the Mode a clearmode label value names.
func ParseMode(b []byte) (Mode, bool) {
	switch string(b) {
	case "aggregate":
		return ModeAggregate, true
	case "replace":
		return ModeReplace, true
	case "family":
		return ModeFamily, true
	}
	return ModeDefault, false
}

// flagWindow marks a summary that the cache estimates itself from JSON
// events: after its quantiles comes a window of the last observations,
//
//	cap u16 | pos u16 | filled u16 | cap × f64
//
// and the quantile values are computed from it for each scrape.
const flagWindow = 1 << 5

// Window sizes of estimated summaries: enough observations for the
// tightest error target, within bounds that keep a summary affordable in a
// 10 KiB budget (see SummaryWindow).
const (
	MinSummaryWindow = 16
	MaxSummaryWindow = 128
)

// SummaryWindow is the number of recent observations a summary keeps for
// the given error targets: 1/(2·ε) for the smallest ε, within
// [MinSummaryWindow, MaxSummaryWindow]. Quantiles are exact over that
// window, so the error target holds while it covers the observations.
func SummaryWindow(epsilons []float64) int {
	w := MinSummaryWindow
	for _, e := range epsilons {
		if e > 0 {
			w = max(w, int(math.Ceil(1/(2*e))))
		}
	}
	return min(w, MaxSummaryWindow)
}

// DefaultBuckets are client_golang's default histogram buckets.
var DefaultBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// familyFor returns the family record of name, creating it with type t if
// there is none. An aggregating update needs its family's type to be t.
func (c *Cache) familyFor(name []byte, t Type, now uint32) (int, error) {
	fam, owner, _ := c.resolve(name)
	if owner >= 0 {
		return -1, fmt.Errorf("%w: %s is a line of a histogram or summary", ErrNameClash, name)
	}
	if fam >= 0 {
		if ft := c.familyType(fam); ft != t {
			return -1, fmt.Errorf("%w: %s is a %s, not a %s", ErrTypeConflict, name, ft, t)
		}
		return fam, nil
	}
	if err := c.setType(name, t, now); err != nil {
		return -1, err
	}
	return c.family(name), nil
}

// findLive finds the item of key, removing it if its TTL has passed (the
// timer has not swept it yet): an aggregate then starts again from zero.
func (c *Cache) findLive(key []byte, now uint32) int {
	off := c.find(key, false)
	if off < 0 {
		return -1
	}
	if ttl := c.ttlOf(off); ttl != 0 && now-c.updated(off) >= ttl {
		c.stats.Expired++
		c.remove(off)
		return -1
	}
	return off
}

// Add adds delta to the counter name{labels}; a new series starts at
// delta. The family becomes a counter if it has no type yet, and must be
// one otherwise.
func (b Batch) Add(name []byte, labels []Label, delta float64) error {
	return b.c.update(name, labels, delta, Counter, true, b.now)
}

// SetGauge sets the gauge name{labels}: as Set, but the family must be (or
// becomes) a gauge.
func (b Batch) SetGauge(name []byte, labels []Label, v float64) error {
	return b.c.update(name, labels, v, Gauge, false, b.now)
}

// Put sets (or, with add, adds to) the plain series name{labels} of a
// family that must be, or becomes, of type t: Add and SetGauge are the
// usual cases, clearmode the others.
func (b Batch) Put(name []byte, labels []Label, v float64, t Type, add bool) error {
	return b.c.update(name, labels, v, t, add, b.now)
}

// AddUntyped adds delta to name{labels} whatever the type of its family:
// a text line with clearmode="aggregate".
func (b Batch) AddUntyped(name []byte, labels []Label, delta float64) error {
	c := b.c
	fam, owner, _ := c.resolve(name)
	if owner >= 0 || fam >= 0 && c.familyType(fam).Compound() {
		return b.Set(name, labels, delta) // a histogram line: no adding
	}
	key, _, _, err := appendKey(c.scratch[:0], name, labels, nil)
	c.scratch = key
	if err != nil {
		return err
	}
	if off := c.findLive(key, b.now); off >= 0 && c.kind(off) == kindPlain {
		delta += getF(c.payload(off))
	}
	return c.set(name, labels, delta, b.now)
}

// ReplaceFamily sets name{labels} after removing every other series of
// its family: clearmode="family".
func (b Batch) ReplaceFamily(name []byte, labels []Label, v float64) error {
	c := b.c
	key, _, _, err := appendKey(c.scratch[:0], name, labels, nil)
	c.scratch = key
	if err != nil {
		return err
	}
	for off := 0; off < c.end; off += c.size(off) {
		if k := c.kind(off); k != kindPlain && k != kindCompound {
			continue
		}
		if n, _ := splitKey(c.key(off)); bytes.Equal(n, name) {
			c.remove(off)
		}
	}
	return c.set(name, labels, v, b.now)
}

// aggregateTarget returns the family of name (created as t if it has
// none), and the key and offset (-1 if none, or expired) of name{labels}.
func (c *Cache) aggregateTarget(name []byte, labels []Label, t Type, now uint32) (fam, off int, key []byte, err error) {
	if fam, err = c.familyFor(name, t, now); err != nil {
		return -1, -1, nil, err
	}
	key, _, _, err = appendKey(c.scratch[:0], name, labels, nil)
	c.scratch = key
	if err != nil {
		return -1, -1, nil, err
	}
	return fam, c.findLive(key, now), key, nil
}

func (c *Cache) update(name []byte, labels []Label, v float64, t Type, add bool, now uint32) error {
	fam, off, key, err := c.aggregateTarget(name, labels, t, now)
	if err != nil {
		return err
	}
	if off >= 0 {
		if c.kind(off) != kindPlain {
			return ErrTypeConflict
		}
		if add {
			v += getF(c.payload(off))
		}
		putF(c.payload(off), v)
		return c.stamp(off, fam, now)
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

// ObserveHistogram observes v into the histogram name{labels} whose bucket
// upper bounds are bounds (sorted, without +Inf, which is implied). A new
// series starts empty; an existing one must have the same bounds.
func (b Batch) ObserveHistogram(name []byte, labels []Label, v float64, bounds []float64) error {
	c, now := b.c, b.now
	fam, off, key, err := c.aggregateTarget(name, labels, Histogram, now)
	if err != nil {
		return err
	}
	if off < 0 {
		n := len(bounds) + 1
		p := make([]byte, compoundFix+16*n)
		binary.LittleEndian.PutUint16(p[16:], uint16(n))
		for i := range n {
			bound := math.Inf(1)
			if i < len(bounds) {
				bound = bounds[i]
			}
			putF(p[compoundFix+16*i:], bound)
		}
		observe(p, v)
		fam = c.touchFamily(fam, now)
		c.rec = appendRecord(c.rec[:0], kindCompound, flagSum|flagCount, now, key, p, c.wttl)
		if _, ok := c.insert(c.rec, fam); !ok {
			return ErrTooLarge
		}
		return nil
	}
	p := c.payload(off)
	if c.kind(off) != kindCompound || !sameBounds(p, bounds, true) {
		return fmt.Errorf("%w: %s", ErrBucketMismatch, keyString(key))
	}
	observe(p, v)
	c.setFlag(off, flagSum)
	c.setFlag(off, flagCount)
	return c.stamp(off, fam, now)
}

// sameBounds reports whether the buckets of payload p have exactly the
// bounds given (with +Inf appended when inf is set).
func sameBounds(p []byte, bounds []float64, inf bool) bool {
	n := int(binary.LittleEndian.Uint16(p[16:]))
	want := len(bounds)
	if inf {
		want++
	}
	if n != want {
		return false
	}
	for i, b := range bounds {
		if getF(p[compoundFix+16*i:]) != b {
			return false
		}
	}
	return !inf || math.IsInf(getF(p[compoundFix+16*(n-1):]), 1)
}

// observe adds one observation of v to a histogram payload.
func observe(p []byte, v float64) {
	putF(p, getF(p)+v)
	putF(p[8:], getF(p[8:])+1)
	n := int(binary.LittleEndian.Uint16(p[16:]))
	for i := range n {
		if v <= getF(p[compoundFix+16*i:]) {
			q := p[compoundFix+16*i+8:]
			putF(q, getF(q)+1)
		}
	}
}

// ObserveSummary observes v into the summary name{labels} with these
// quantiles (sorted), keeping the last window observations (see
// SummaryWindow) to estimate them. An existing series must have the same
// quantiles.
func (b Batch) ObserveSummary(name []byte, labels []Label, v float64, quantiles []float64, window int) error {
	c, now := b.c, b.now
	fam, off, key, err := c.aggregateTarget(name, labels, Summary, now)
	if err != nil {
		return err
	}
	if off < 0 {
		window = min(max(window, 1), MaxSummaryWindow)
		n := len(quantiles)
		p := make([]byte, compoundFix+16*n+6+8*window)
		binary.LittleEndian.PutUint16(p[16:], uint16(n))
		for i, q := range quantiles {
			putF(p[compoundFix+16*i:], q)
		}
		binary.LittleEndian.PutUint16(p[compoundFix+16*n:], uint16(window))
		observeWindow(p, v)
		fam = c.touchFamily(fam, now)
		c.rec = appendRecord(c.rec[:0], kindCompound, flagSum|flagCount|flagSummary|flagWindow, now, key, p, c.wttl)
		if _, ok := c.insert(c.rec, fam); !ok {
			return ErrTooLarge
		}
		return nil
	}
	p := c.payload(off)
	if c.kind(off) != kindCompound || c.flags(off)&flagWindow == 0 || !sameBounds(p, quantiles, false) {
		return fmt.Errorf("%w: %s has other quantiles, or was pushed", ErrBucketMismatch, keyString(key))
	}
	observeWindow(p, v)
	return c.stamp(off, fam, now)
}

func observeWindow(p []byte, v float64) {
	putF(p, getF(p)+v)
	putF(p[8:], getF(p[8:])+1)
	n := int(binary.LittleEndian.Uint16(p[16:]))
	w := p[compoundFix+16*n:]
	capacity := int(binary.LittleEndian.Uint16(w))
	pos := int(binary.LittleEndian.Uint16(w[2:]))
	filled := int(binary.LittleEndian.Uint16(w[4:]))
	putF(w[6+8*pos:], v)
	binary.LittleEndian.PutUint16(w[2:], uint16((pos+1)%capacity))
	binary.LittleEndian.PutUint16(w[4:], uint16(min(filled+1, capacity)))
}

// estimate writes the quantile values of a windowed summary payload from
// its window; scratch is reused.
func estimate(p []byte, scratch []float64) []float64 {
	n := int(binary.LittleEndian.Uint16(p[16:]))
	w := p[compoundFix+16*n:]
	filled := int(binary.LittleEndian.Uint16(w[4:]))
	scratch = scratch[:0]
	for i := range filled {
		scratch = append(scratch, getF(w[6+8*i:]))
	}
	slices.Sort(scratch)
	for i := range n {
		v := math.NaN()
		if filled > 0 {
			q := getF(p[compoundFix+16*i:])
			v = scratch[min(int(q*float64(filled)), filled-1)]
		}
		putF(p[compoundFix+16*i+8:], v)
	}
	return scratch
}

// AggregatePush adds a push to what the group holds, as the aggregation
// gateways do: counters, histogram buckets, _sum and _count, and summary
// _sum and _count add up; gauges, untyped values and summary quantiles
// replace. All or nothing: a family of another type than the cache holds,
// or a histogram whose bucket bounds differ from the stored ones, fails the
// push and changes nothing.
func (c *Cache) AggregatePush(group []Label, fams []PushFamily) error {
	return c.AggregatePushTTL(group, fams, DefaultTTL)
}

// AggregatePushTTL is AggregatePush with a TTL, as PushTTL. With no
// grouping labels at all it is the seed endpoints' POST /metrics: the
// series belong to no group, and no push_time_seconds is set.
func (c *Cache) AggregatePushTTL(group []Label, fams []PushFamily, ttl time.Duration) error {
	g := cleanGroup(group)
	c.lockWrite()
	defer c.mu.Unlock()
	now := c.tick()
	c.setTTL(c.ticks(ttl), now)
	gid := c.groupID(g)
	if len(g) == 0 {
		gid = 0 // no group: as the raw stream's series
	}
	if err := c.checkPush(fams, g, gid, true); err != nil {
		return err
	}
	for i := range fams {
		f := &fams[i]
		if isPushTimeName(f.Name) {
			continue
		}
		if err := c.setType(f.Name, f.Type, now); err != nil {
			return err
		}
		if f.HasHelp {
			c.setHelp(f.Name, f.Help, now)
		}
		if slices.ContainsFunc(f.Metrics, func(m PushMetric) bool { return m.Mode == ModeFamily }) {
			for off := 0; off < c.end; off += c.size(off) {
				if k := c.kind(off); (k == kindPlain || k == kindCompound) && c.owner(off) == gid {
					if n, _ := splitKey(c.key(off)); bytes.Equal(n, f.Name) {
						c.remove(off)
					}
				}
			}
		}
		for j := range f.Metrics {
			m := &f.Metrics[j]
			fam := c.family(f.Name) // stamp may have moved it
			key, _, _ := pushKey(c.scratch[:0], f.Name, g, m.Labels, nil)
			c.scratch = key
			off := c.findLive(key, now)
			if off < 0 {
				if err := c.pushMetric(f, m, g, gid, now); err != nil {
					return err
				}
				continue
			}
			p := c.payload(off)
			switch {
			case f.Type == Counter && m.Mode != ModeReplace, f.Type != Counter && m.Mode == ModeAggregate && !f.Type.Compound():
				putF(p, getF(p)+m.Value)
			case !f.Type.Compound():
				putF(p, m.Value)
			case f.Type == Histogram:
				putF(p, getF(p)+m.Sum)
				putF(p[8:], getF(p[8:])+m.Count)
				for k, bk := range m.Buckets {
					q := p[compoundFix+16*k+8:]
					putF(q, getF(q)+bk.Value)
				}
			default: // summary
				putF(p, getF(p)+m.Sum)
				putF(p[8:], getF(p[8:])+m.Count)
				n := int(binary.LittleEndian.Uint16(p[16:]))
				for _, bk := range m.Buckets {
					for k := range n {
						if getF(p[compoundFix+16*k:]) == bk.Bound {
							putF(p[compoundFix+16*k+8:], bk.Value)
						}
					}
				}
			}
			if err := c.stamp(off, fam, now); err != nil {
				return err
			}
		}
	}
	if gid != 0 {
		c.setGroupGauge(PushTimeName, pushTimeHelp, g, gid, float64(c.now().UnixMilli())/1000, true, now)
		c.setGroupGauge(PushFailureTimeName, pushFailureTimeHelp, g, gid, 0, false, now)
	}
	return nil
}

// sameHistogram reports whether payload p has the bucket bounds of bs.
func sameHistogram(p []byte, bs []Bucket) bool {
	n := int(binary.LittleEndian.Uint16(p[16:]))
	if n != len(bs) {
		return false
	}
	for i, b := range bs {
		if getF(p[compoundFix+16*i:]) != b.Bound {
			return false
		}
	}
	return true
}
