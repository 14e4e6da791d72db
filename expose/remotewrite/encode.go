// Package remotewrite sends the cache to a Prometheus remote_write 1.0
// receiver: one WriteRequest per interval with every series of a snapshot,
// stale markers for the series that went away since the last one, through a
// bounded queue that survives an outage of the receiver.
//
// Spec: https://prometheus.io/docs/specs/prw/remote_write_spec/
package remotewrite

import (
	"bytes"
	"hash/maphash"
	"math"
	"slices"

	"github.com/VictoriaMetrics/easyproto"
	"github.com/golang/snappy"

	"github.com/push-gateway/push-gateway/cache"
	"github.com/push-gateway/push-gateway/expose"
)

// StaleNaN is the value Prometheus reads as "this series has ended"
// (prometheus/model/value.StaleNaN).
const StaleNaN uint64 = 0x7ff0000000000002

// Label is one label pair, an external label or one of a series.
type Label struct{ Name, Value []byte }

// Encoder turns snapshots into WriteRequests. It keeps the previous
// request's uncompressed body to find the series that went away: the
// labels of a stale marker are those it was last sent with. Not safe for
// concurrent use.
type Encoder struct {
	external []Label // sorted by name
	metadata bool

	m        easyproto.Marshaler
	cur      []byte   // the request being built
	prev     []byte   // the last request's body, uncompressed
	hashes   []uint64 // label set hashes of cur's series, sorted after the build
	ls       []Label  // scratch: one series' labels
	name     []byte   // scratch: family name + suffix
	num      []byte   // scratch: le or quantile value
	seed     maphash.Seed
	compress []byte
}

// NewEncoder returns an encoder that adds external to every series lacking a
// label of that name, and sends TYPE and HELP as metadata if metadata is set.
func NewEncoder(external []Label, metadata bool) *Encoder {
	ext := slices.Clone(external)
	slices.SortFunc(ext, func(a, b Label) int { return bytes.Compare(a.Name, b.Name) })
	return &Encoder{external: ext, metadata: metadata, seed: maphash.MakeSeed()}
}

// Encode appends to dst the snappy-compressed WriteRequest of snapshot s
// with every sample at time ms (milliseconds since the epoch), and returns
// it with how many samples it holds, stale markers included. samples is 0
// when there is nothing to send. dst is the caller's, typically the body of
// a request already delivered, so that an interval leaves no garbage.
func (e *Encoder) Encode(s *cache.Snapshot, ms int64, dst []byte) (body []byte, samples int) {
	e.cur, e.hashes = e.cur[:0], e.hashes[:0]
	for i := 0; i < s.Len(); i++ {
		f := s.Family(i)
		if e.metadata {
			e.appendMetadata(f)
		}
		for j := 0; j < f.Len(); j++ {
			sr, ok := f.Series(j)
			if !ok {
				continue
			}
			for k, n := 0, sr.Lines(); k < n; k++ {
				suffix, extra, bound, v := sr.Line(k)
				num := []byte(nil)
				if extra != "" {
					e.num = expose.AppendFloat(e.num[:0], bound)
					num = e.num
				}
				e.appendSeries(f.Name, suffix, sr.Labels(), extra, num, v, ms)
			}
		}
	}
	samples = len(e.hashes)
	samples += e.appendStale(ms)
	e.prev, e.cur = e.cur, e.prev
	if samples == 0 {
		return dst, 0
	}
	e.compress = snappy.Encode(e.compress[:cap(e.compress)], e.prev)
	return append(dst, e.compress...), samples
}

// appendSeries appends one TimeSeries with one sample. A WriteRequest is
// only repeated fields, and protobuf merges concatenated messages: each
// series is marshalled as a WriteRequest of its own and appended, so the
// marshaler never holds more than one series.
func (e *Encoder) appendSeries(name []byte, suffix string, labels []byte, extra string, extraValue []byte, v float64, ms int64) {
	e.name = append(append(e.name[:0], name...), suffix...)
	ls := e.ls[:0]
	ls = append(ls, Label{Name: nameLabel, Value: e.name})
	for rest := labels; ; {
		n, val, r, ok := cache.NextLabel(rest)
		if !ok {
			break
		}
		ls = append(ls, Label{Name: n, Value: val})
		rest = r
	}
	if extra != "" {
		ls = append(ls, Label{Name: extraLabels[extra], Value: extraValue})
	}
	own := len(ls)
	for _, x := range e.external {
		if !hasLabel(ls[:own], x.Name) {
			ls = append(ls, x)
		}
	}
	// Insertion sort: label sets are small and mostly sorted already.
	for i := 1; i < len(ls); i++ {
		for j := i; j > 0 && bytes.Compare(ls[j].Name, ls[j-1].Name) < 0; j-- {
			ls[j], ls[j-1] = ls[j-1], ls[j]
		}
	}
	e.ls = ls
	e.hashes = append(e.hashes, e.hash(ls))
	e.cur = e.marshalSeries(e.cur, ls, v, ms)
}

// Label names as slices made once: a conversion in appendSeries would
// allocate, since the slice escapes into e.ls.
var (
	nameLabel   = []byte("__name__")
	extraLabels = map[string][]byte{"le": []byte("le"), "quantile": []byte("quantile")}
)

func hasLabel(ls []Label, name []byte) bool {
	for _, l := range ls {
		if bytes.Equal(l.Name, name) {
			return true
		}
	}
	return false
}

// hash identifies a label set across requests.
func (e *Encoder) hash(ls []Label) uint64 {
	var h maphash.Hash
	h.SetSeed(e.seed)
	for _, l := range ls {
		h.Write(l.Name)
		h.WriteByte(0xff)
		h.Write(l.Value)
		h.WriteByte(0xff)
	}
	return h.Sum64()
}

// marshalSeries appends WriteRequest{timeseries: [{labels: ls, samples:
// [{v, ms}]}]} to dst.
func (e *Encoder) marshalSeries(dst []byte, ls []Label, v float64, ms int64) []byte {
	e.m.Reset()
	ts := e.m.MessageMarshaler().AppendMessage(1)
	for _, l := range ls {
		lm := ts.AppendMessage(1)
		lm.AppendBytes(1, l.Name)
		lm.AppendBytes(2, l.Value)
	}
	sm := ts.AppendMessage(2)
	sm.AppendDouble(1, v)
	sm.AppendInt64(2, ms)
	return e.m.Marshal(dst)
}

// Metric types of prompb.MetricMetadata.
var metadataTypes = [...]uint64{
	cache.Untyped:   0, // UNKNOWN
	cache.Counter:   1,
	cache.Gauge:     2,
	cache.Histogram: 3,
	cache.Summary:   5,
}

// appendMetadata appends WriteRequest{metadata: [{type, family name, help}]}.
func (e *Encoder) appendMetadata(f *cache.Family) {
	e.m.Reset()
	md := e.m.MessageMarshaler().AppendMessage(3)
	md.AppendUint64(1, metadataTypes[f.Type])
	md.AppendBytes(2, f.Name)
	if f.HasHelp {
		md.AppendBytes(4, f.Help)
	}
	e.cur = e.m.Marshal(e.cur)
}

// appendStale appends a stale marker for every series of the previous
// request that cur lacks (it expired, was deleted or evicted), and returns
// how many. Stale markers of the previous request are not repeated.
func (e *Encoder) appendStale(ms int64) int {
	if len(e.prev) == 0 {
		return 0
	}
	slices.Sort(e.hashes)
	n := 0
	var fc, tc, lc easyproto.FieldContext
	for src := e.prev; len(src) > 0; {
		var err error
		if src, err = fc.NextField(src); err != nil {
			return n // our own encoding: cannot happen
		}
		data, ok := fc.MessageData()
		if fc.FieldNum != 1 || !ok {
			continue // metadata
		}
		ls, stale := e.ls[:0], false
		for data := data; len(data) > 0; {
			if data, err = tc.NextField(data); err != nil {
				return n
			}
			m, _ := tc.MessageData()
			switch tc.FieldNum {
			case 1:
				var l Label
				for m := m; len(m) > 0; {
					if m, err = lc.NextField(m); err != nil {
						return n
					}
					b, _ := lc.Bytes()
					if lc.FieldNum == 1 {
						l.Name = b
					} else if lc.FieldNum == 2 {
						l.Value = b
					}
				}
				ls = append(ls, l)
			case 2:
				if ok, _ := lc.FieldByNum(m, 1); ok {
					v, _ := lc.Double()
					stale = math.Float64bits(v) == StaleNaN
				}
			}
		}
		e.ls = ls
		if stale {
			continue
		}
		if _, found := slices.BinarySearch(e.hashes, e.hash(ls)); found {
			continue
		}
		e.cur = e.marshalSeries(e.cur, ls, math.Float64frombits(StaleNaN), ms)
		n++
	}
	return n
}
