package cache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Pushes: the Pushgateway API's groups in cache terms.
//
// A group is a set of grouping labels (job and any others). Every item a push
// stores carries flagGroup and, as the last 8 bytes of its record (before
// its TTL, if it has one), the hash of its group's labels; PUT, POST and DELETE find a group's items by it. A
// group costs nothing beyond that: its push_time_seconds and
// push_failure_time_seconds are ordinary gauge series of the group.

// More errors of pushes. Like the others, nothing changes when one is
// returned.
var (
	ErrDuplicateSeries = errors.New("cache: series pushed twice, or already pushed by another group")
	ErrBucketMismatch  = errors.New("cache: histogram buckets differ from the stored ones")
)

// Names of the per-group series, as the Pushgateway names them.
const (
	PushTimeName        = "push_time_seconds"
	PushFailureTimeName = "push_failure_time_seconds"
	pushTimeHelp        = "Last Unix time when changing this group in the Pushgateway succeeded."
	pushFailureTimeHelp = "Last Unix time when changing this group in the Pushgateway failed."
)

const flagGroup = 1 << 4 // on an item: its payload ends with the 8-byte group id

// Bucket is one bucket of a histogram (Bound is its le) or one quantile of a
// summary (Bound is the quantile).
type Bucket struct {
	Bound, Value float64
}

// PushMetric is one metric of a pushed family: Value for a plain type; for a
// histogram or summary, Buckets in increasing order of Bound, with _sum and
// _count when present. Labels do not include le or quantile.
type PushMetric struct {
	Labels           []Label
	Mode             Mode // from a clearmode label; ModeDefault for none
	Value            float64
	Buckets          []Bucket
	Sum, Count       float64
	HasSum, HasCount bool
}

// PushFamily is one metric family of a push.
type PushFamily struct {
	Name    []byte
	Type    Type
	Help    []byte
	HasHelp bool
	Metrics []PushMetric
}

// PushMode says what a push replaces.
type PushMode uint8

// Push modes.
const (
	ReplaceGroup    PushMode = iota // PUT: the whole group
	ReplaceFamilies                 // POST: the group's families that the push names
)

// groupID returns the id of a group; labels must be sorted and without empty
// values. It is never 0.
func (c *Cache) groupID(group []Label) uint64 {
	c.scratch = c.scratch[:0]
	for i := range group {
		c.scratch = appendLabel(c.scratch, &group[i])
	}
	// FNV-1a, not maphash: the id is saved in snapshots, so it must be the
	// same in the next process.
	h := uint64(14695981039346656037)
	for _, b := range c.scratch {
		h ^= uint64(b)
		h *= 1099511628211
	}
	return h | 1
}

// owner returns the group id of the item at off, 0 for none.
func (c *Cache) owner(off int) uint64 {
	if c.flags(off)&flagGroup == 0 {
		return 0
	}
	end := off + c.size(off)
	if c.flags(off)&flagTTL != 0 {
		end -= 4
	}
	return binary.LittleEndian.Uint64(c.arena[end-8:])
}

// cleanGroup sorts a copy of group and drops labels with empty values: an
// empty grouping label is the same as none.
func cleanGroup(group []Label) []Label {
	g := make([]Label, 0, len(group))
	for _, l := range group {
		if len(l.Value) > 0 {
			g = append(g, l)
		}
	}
	sortLabels(g)
	return g
}

// pushKey appends the key of a pushed metric: its labels with the grouping
// labels added, winning over the body's.
func pushKey(dst, name []byte, group, labels []Label, tmp []Label) ([]byte, []Label, error) {
	tmp = append(tmp[:0], group...)
	for _, l := range labels {
		if !slices.ContainsFunc(group, func(g Label) bool { return bytes.Equal(g.Name, l.Name) }) {
			tmp = append(tmp, l)
		}
	}
	key, _, _, err := appendKey(dst, name, tmp, nil)
	return key, tmp, err
}

// Push stores a push of the Pushgateway API for the group with these
// grouping labels, all or nothing. It fails with ErrTypeConflict when a
// family has another type than series outside the group hold for it,
// ErrNameClash when a family's lines would clash with a histogram's or
// summary's, ErrDuplicateSeries when a series comes twice or belongs to
// another group, and ErrTooLarge when the push does not fit the budget.
// On success it sets the group's push_time_seconds.
func (c *Cache) Push(group []Label, fams []PushFamily, mode PushMode) error {
	return c.PushTTL(group, fams, mode, DefaultTTL)
}

// PushTTL is Push with a TTL: every series the push writes, and the
// group's push_time_seconds and push_failure_time_seconds, take TTL ttl
// (DefaultTTL: the cache's own; 0 never expires). Series of the group that
// a POST leaves alone keep theirs, as they keep their time of update.
func (c *Cache) PushTTL(group []Label, fams []PushFamily, mode PushMode, ttl time.Duration) error {
	g := cleanGroup(group)
	c.lockWrite()
	defer c.mu.Unlock()
	now := c.tick()
	c.setTTL(c.ticks(ttl), now)
	nowSec := float64(c.now().UnixMilli()) / 1000
	gid := c.groupID(g)

	// Check everything first: a failed push changes nothing.
	if err := c.checkPush(fams, g, gid, false); err != nil {
		return err
	}

	// Apply. A plain series with clearmode="aggregate" adds to the value it
	// had (in this group, or from the raw stream) before the group goes.
	for i := range fams {
		f := &fams[i]
		for j := range f.Metrics {
			m := &f.Metrics[j]
			if m.Mode != ModeAggregate || f.Type.Compound() {
				continue
			}
			key, _, _ := pushKey(c.scratch[:0], f.Name, g, m.Labels, nil)
			c.scratch = key
			if off := c.find(key, false); off >= 0 && c.kind(off) == kindPlain {
				m.Value += getF(c.payload(off))
			}
		}
	}
	for off := 0; off < c.end; off += c.size(off) {
		if c.kind(off) == kindDead || c.kind(off) == kindFamily || c.owner(off) != gid {
			continue
		}
		name, _ := splitKey(c.key(off))
		if isPushTimeName(name) {
			continue
		}
		if mode == ReplaceGroup || slices.ContainsFunc(fams, func(f PushFamily) bool { return bytes.Equal(f.Name, name) }) {
			c.remove(off)
		}
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
			if err := c.setHelp(f.Name, f.Help, now); err != nil {
				return err
			}
		} else {
			c.clearHelp(f.Name, now) // the latest push's HELP wins, also when it has none
		}
		for j := range f.Metrics {
			if err := c.pushMetric(f, &f.Metrics[j], g, gid, now); err != nil {
				return err
			}
		}
	}
	c.setGroupGauge(PushTimeName, pushTimeHelp, g, gid, nowSec, true, now)
	c.setGroupGauge(PushFailureTimeName, pushFailureTimeHelp, g, gid, 0, false, now)
	return nil
}

// checkCompound refuses what would make a histogram or summary unreadable:
// an le or quantile label among its labels, a negative bucket or count.
func checkCompound(f *PushFamily, m *PushMetric) error {
	if !f.Type.Compound() {
		return nil
	}
	for _, l := range m.Labels {
		if string(l.Name) == "le" && f.Type == Histogram || string(l.Name) == "quantile" && f.Type == Summary {
			return fmt.Errorf("%w: %s", ErrReservedLabel, f.Name)
		}
	}
	if f.Type == Histogram {
		neg := m.Count < 0
		for _, b := range m.Buckets {
			neg = neg || b.Value < 0 || math.IsNaN(b.Bound)
		}
		if neg {
			return fmt.Errorf("%w: %s", ErrNegativeCount, f.Name)
		}
	}
	return nil
}

// checkPush checks a push against the cache before anything changes. Both
// kinds refuse bad label sets, unreadable histograms, a series twice in the
// push or owned by another group, and a push larger than the budget. A
// replacing push (aggregate false) may change a family's type when no one
// else holds it; an aggregating one adds to what is there, so the type must
// match, and a histogram's bucket bounds too.
func (c *Cache) checkPush(fams []PushFamily, g []Label, gid uint64, aggregate bool) error {
	var keys [][]byte
	var tmp []Label
	size := 0
	for i := range fams {
		f := &fams[i]
		if isPushTimeName(f.Name) {
			continue
		}
		if owner, _ := c.compoundOwner(f.Name); owner >= 0 && (aggregate || c.heldElsewhere(keyName(c.arena[owner:]), gid)) {
			return fmt.Errorf("%w: %s is a line of a histogram or summary pushed elsewhere", ErrNameClash, f.Name)
		}
		if fo := c.family(f.Name); fo >= 0 && c.familyType(fo) != f.Type && (aggregate || c.heldElsewhere(f.Name, gid)) {
			return fmt.Errorf("%w: %s is %s elsewhere, pushed as %s", ErrTypeConflict, f.Name, c.familyType(fo), f.Type)
		}
		if f.Type.compound() {
			for _, s := range suffixes {
				if n := append(append([]byte(nil), f.Name...), s...); c.heldElsewhere(n, gid) {
					return fmt.Errorf("%w: %s of %s %s is pushed elsewhere", ErrNameClash, n, f.Type, f.Name)
				}
			}
		}
		for j := range f.Metrics {
			m := &f.Metrics[j]
			if err := checkCompound(f, m); err != nil {
				return err
			}
			var key []byte
			var err error
			key, tmp, err = pushKey(nil, f.Name, g, m.Labels, tmp)
			if err != nil {
				return fmt.Errorf("%w in %s", err, f.Name)
			}
			if off := c.find(key, false); off >= 0 {
				if o := c.owner(off); o != 0 && o != gid {
					return fmt.Errorf("%w: %s", ErrDuplicateSeries, keyString(key))
				}
				if aggregate && (c.kind(off) == kindCompound) != f.Type.Compound() {
					return fmt.Errorf("%w: %s", ErrTypeConflict, keyString(key))
				}
				if aggregate && f.Type == Histogram && !sameHistogram(c.payload(off), m.Buckets) {
					return fmt.Errorf("%w: %s", ErrBucketMismatch, keyString(key))
				}
			}
			keys = append(keys, key)
			size += hdrSize + len(key) + 8 + 8 + 4
			if c.wttl != ttlDefault {
				size += 4
			}
			if f.Type.compound() {
				size += compoundFix + 16*len(m.Buckets)
			}
		}
	}
	slices.SortFunc(keys, bytes.Compare)
	for i := 1; i < len(keys); i++ {
		if bytes.Equal(keys[i-1], keys[i]) {
			return fmt.Errorf("%w: %s", ErrDuplicateSeries, keyString(keys[i]))
		}
	}
	if size+4*indexSizeFor(c.count+len(keys), len(c.index)) > c.budget {
		c.stats.TooLarge++
		return fmt.Errorf("%w: the push needs about %d bytes, the budget is %d", ErrTooLarge, size, c.budget)
	}
	return nil
}

func isPushTimeName(n []byte) bool {
	return string(n) == PushTimeName || string(n) == PushFailureTimeName
}

// heldElsewhere reports whether any item named name belongs to another group
// than gid, or to none (the raw stream).
func (c *Cache) heldElsewhere(name []byte, gid uint64) bool {
	for off := 0; off < c.end; off += c.size(off) {
		if k := c.kind(off); k == kindDead || k == kindFamily {
			continue
		}
		if n, _ := splitKey(c.key(off)); bytes.Equal(n, name) && c.owner(off) != gid {
			return true
		}
	}
	return false
}

// pushMetric stores one metric of a push, replacing the series of the same
// key.
func (c *Cache) pushMetric(f *PushFamily, m *PushMetric, g []Label, gid uint64, now uint32) error {
	key, _, err := pushKey(c.scratch[:0], f.Name, g, m.Labels, nil)
	c.scratch = key
	if err != nil {
		return err
	}
	if off := c.find(key, false); off >= 0 {
		c.remove(off)
	}
	var payload []byte
	flags := uint8(flagGroup)
	if gid == 0 {
		flags = 0 // a seed push (see AggregatePushTTL): no group
	}
	if f.Type.compound() {
		payload = make([]byte, compoundFix+16*len(m.Buckets), compoundFix+16*len(m.Buckets)+8)
		putF(payload, m.Sum)
		putF(payload[8:], m.Count)
		binary.LittleEndian.PutUint16(payload[16:], uint16(len(m.Buckets)))
		for i, b := range m.Buckets {
			putF(payload[compoundFix+16*i:], b.Bound)
			putF(payload[compoundFix+16*i+8:], b.Value)
		}
		if m.HasSum {
			flags |= flagSum
		}
		if m.HasCount {
			flags |= flagCount
		}
		if f.Type == Summary {
			flags |= flagSummary
		}
	} else {
		payload = make([]byte, 8, 16)
		putF(payload, m.Value)
	}
	if gid != 0 {
		payload = binary.LittleEndian.AppendUint64(payload, gid)
	}
	kind := kindPlain
	if f.Type.compound() {
		kind = kindCompound
	}
	c.rec = appendRecord(c.rec[:0], kind, flags, now, key, payload, c.wttl)
	if len(c.rec) > maxRecord {
		c.stats.TooLarge++
		return ErrTooLarge
	}
	if _, ok := c.insert(c.rec, c.family(f.Name)); !ok {
		return ErrTooLarge
	}
	return nil
}

// setGroupGauge sets the gauge name{group} to v, or only creates it with v
// when always is false and it exists already.
func (c *Cache) setGroupGauge(name, help string, g []Label, gid uint64, v float64, always bool, now uint32) {
	n := []byte(name)
	if c.family(n) < 0 {
		c.setType(n, Gauge, now)
		c.setHelp(n, []byte(help), now)
	}
	key, _, _, _ := appendKey(c.scratch[:0], n, slices.Clone(g), nil)
	c.scratch = key
	if off := c.find(key, false); off >= 0 {
		if always {
			putF(c.payload(off), v)
		}
		c.stamp(off, c.family(n), now)
		return
	}
	c.pushMetric(&PushFamily{Name: n, Type: Gauge}, &PushMetric{Value: v}, g, gid, now)
}

// PushFailed records a failed push of the group: push_failure_time_seconds
// is set to now, and push_time_seconds is created as 0 if the group has none.
func (c *Cache) PushFailed(group []Label) { c.PushFailedTTL(group, DefaultTTL) }

// PushFailedTTL is PushFailed for a push of TTL ttl (see PushTTL).
func (c *Cache) PushFailedTTL(group []Label, ttl time.Duration) {
	g := cleanGroup(group)
	c.lockWrite()
	defer c.mu.Unlock()
	now := c.tick()
	c.setTTL(c.ticks(ttl), now)
	gid := c.groupID(g)
	c.setGroupGauge(PushFailureTimeName, pushFailureTimeHelp, g, gid, float64(c.now().UnixMilli())/1000, true, now)
	c.setGroupGauge(PushTimeName, pushTimeHelp, g, gid, 0, false, now)
}

// DeleteGroup removes every series of the group.
func (c *Cache) DeleteGroup(group []Label) {
	g := cleanGroup(group)
	c.lockWrite()
	defer c.mu.Unlock()
	gid := c.groupID(g)
	for off := 0; off < c.end; off += c.size(off) {
		if k := c.kind(off); k != kindDead && k != kindFamily && c.owner(off) == gid {
			c.remove(off)
		}
	}
}

// DeleteSeries removes every series of family name whose labels include
// each pair of match (all of them for none; an empty value matches a
// series without that label), wherever they came from: the raw stream, a
// seed push, any group. A family left without series goes too.
func (c *Cache) DeleteSeries(name []byte, match []Label) {
	c.lockWrite()
	defer c.mu.Unlock()
	left := false
	for off := 0; off < c.end; off += c.size(off) {
		if k := c.kind(off); k != kindPlain && k != kindCompound {
			continue
		}
		n, ls := splitKey(c.key(off))
		if !bytes.Equal(n, name) {
			continue
		}
		if hasLabels(ls, match) {
			c.remove(off)
		} else {
			left = true
		}
	}
	if f := c.family(name); f >= 0 && !left {
		c.remove(f)
	}
}

// hasLabels reports whether the encoded label set ls holds every pair of
// match.
func hasLabels(ls []byte, match []Label) bool {
	for _, m := range match {
		var v []byte
		for rest := ls; ; {
			n, val, r, ok := nextLabel(rest)
			if !ok {
				break
			}
			if bytes.Equal(n, m.Name) {
				v = val
				break
			}
			rest = r
		}
		if !bytes.Equal(v, m.Value) {
			return false
		}
	}
	return true
}

// keyString renders a key as name{label="value",...} for error messages.
func keyString(key []byte) string {
	name, ls := splitKey(key)
	var b bytes.Buffer
	b.Write(name)
	sep := byte('{')
	for {
		n, v, rest, ok := nextLabel(ls)
		if !ok {
			break
		}
		fmt.Fprintf(&b, "%c%s=%q", sep, n, v)
		sep, ls = ',', rest
	}
	if sep == ',' {
		b.WriteByte('}')
	}
	return b.String()
}
