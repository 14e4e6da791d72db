package cache

import (
	"bytes"
	"encoding/binary"
)

// A key is the canonical, flat encoding of a metric name and its label set:
//
//	uvarint(len(name)) name { uvarint(len(lname)) lname uvarint(len(lvalue)) lvalue }
//
// with the labels sorted by name and the ones with an empty value left out,
// so that label order and empty labels never make two keys for one series
// (as prometheus/model/labels does with its single flat string). One key is
// one allocation-free byte string whose length is what it costs the budget.

// appendKey appends the key of name{labels} to dst. It sorts labels in place
// by name. A label named skip (le or quantile for histograms and summaries;
// nil for none) is left out of the key and its value returned, found reports
// whether it was there.
func appendKey(dst, name []byte, labels []Label, skip []byte) (key, skipped []byte, found bool, err error) {
	sortLabels(labels)
	dst = appendName(dst, name)
	for i := range labels {
		l := &labels[i]
		if i > 0 && bytes.Equal(labels[i-1].Name, l.Name) {
			return dst, nil, false, ErrDuplicateLabel
		}
		if skip != nil && bytes.Equal(l.Name, skip) {
			skipped, found = l.Value, true
			continue
		}
		if len(l.Value) == 0 {
			continue
		}
		dst = appendLabel(dst, l)
	}
	return dst, skipped, found, nil
}

// sortLabels is an insertion sort: label sets are small, and sort.Slice
// would allocate on the hot path.
func sortLabels(ls []Label) {
	for i := 1; i < len(ls); i++ {
		for j := i; j > 0 && nameLess(ls[j].Name, ls[j-1].Name); j-- {
			ls[j], ls[j-1] = ls[j-1], ls[j]
		}
	}
}

// nameLess orders label names. Names of one set nearly always differ in
// their first byte, which settles it without a call to bytes.Compare.
func nameLess(a, b []byte) bool {
	if len(a) > 0 && len(b) > 0 && a[0] != b[0] {
		return a[0] < b[0]
	}
	return bytes.Compare(a, b) < 0
}

// splitKey returns the metric name of key and the encoded labels after it.
func splitKey(key []byte) (name, labels []byte) {
	n, w := uvarint(key)
	return key[w : w+int(n)], key[w+int(n):]
}

// nextLabel decodes the first label of encoded labels and returns the rest.
// ok is false when labels is empty.
func nextLabel(labels []byte) (name, value, rest []byte, ok bool) {
	if len(labels) == 0 {
		return nil, nil, nil, false
	}
	n, w := uvarint(labels)
	name = labels[w : w+int(n)]
	labels = labels[w+int(n):]
	n, w = uvarint(labels)
	value = labels[w : w+int(n)]
	return name, value, labels[w+int(n):], true
}

// uvarint is binary.Uvarint with the one-byte case, nearly every length
// in a key, inline.
func uvarint(b []byte) (uint64, int) {
	if len(b) > 0 && b[0] < 0x80 {
		return uint64(b[0]), 1
	}
	return binary.Uvarint(b)
}

// appendLen is binary.AppendUvarint with the one-byte case inline.
func appendLen(dst []byte, n int) []byte {
	if n < 0x80 {
		return append(dst, byte(n))
	}
	return binary.AppendUvarint(dst, uint64(n))
}

// appendName appends the key of a bare name (no labels): the key of a family.
func appendName(dst, name []byte) []byte {
	return append(appendLen(dst, len(name)), name...)
}

// appendLabel appends one label of a key, as nextLabel reads it back.
func appendLabel(dst []byte, l *Label) []byte {
	dst = append(appendLen(dst, len(l.Name)), l.Name...)
	return append(appendLen(dst, len(l.Value)), l.Value...)
}

// compareKeys orders keys by metric name, then by their encoded labels: the
// order of the exposition (families sorted by name; within one, any fixed
// order of series).
func compareKeys(a, b []byte) int {
	an, al := splitKey(a)
	bn, bl := splitKey(b)
	if c := bytes.Compare(an, bn); c != 0 {
		return c
	}
	return bytes.Compare(al, bl)
}
