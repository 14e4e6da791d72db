package cache

import "errors"

// Type is the type of a metric family, as declared by a # TYPE line.
type Type uint8

// The metric types of the text exposition format 0.0.4.
const (
	Untyped Type = iota
	Counter
	Gauge
	Histogram
	Summary
)

var typeNames = [...]string{"untyped", "counter", "gauge", "histogram", "summary"}

// String returns the name used for t in a # TYPE line.
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "untyped"
}

// ParseType returns the Type named by b, as in a # TYPE line.
func ParseType(b []byte) (Type, bool) {
	for i, n := range typeNames {
		if string(b) == n {
			return Type(i), true
		}
	}
	return Untyped, false
}

// Compound reports whether a series of this type is one item of several
// exposed lines (buckets or quantiles, _sum, _count): histogram and summary.
func (t Type) Compound() bool { return t == Histogram || t == Summary }

func (t Type) compound() bool { return t.Compound() }

// Label is one label pair of a sample. Name and Value are not retained by the
// cache: it copies what it keeps, so both may point into a reused buffer.
// Value is unescaped (the text format's \\, \" and \n already resolved).
type Label struct {
	Name, Value []byte
}

// Errors returned by the cache's update methods. Each names what was wrong
// with the update; nothing in the cache changes when one is returned.
var (
	ErrTooLarge       = errors.New("cache: item larger than the whole budget")
	ErrDuplicateLabel = errors.New("cache: duplicate label name")
	ErrTypeConflict   = errors.New("cache: sample does not fit the type of its family")
	ErrMissingLabel   = errors.New("cache: histogram bucket without le, or summary quantile without quantile")
	ErrBadLabelValue  = errors.New("cache: le or quantile label is not a number")
	ErrNameClash      = errors.New("cache: name is taken by a histogram or summary family")
	ErrReservedLabel  = errors.New("cache: le or quantile label on a line that is not a bucket or quantile")
	ErrNegativeCount  = errors.New("cache: negative count or bucket population of a histogram")
)
