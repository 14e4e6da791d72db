// Package expose serves the cache over HTTP: the text exposition on the
// telemetry path, health endpoints and a status page. It only reads.
package expose

import (
	"bytes"
	"math"
	"strconv"

	"github.com/push-gateway/push-gateway/cache"
)

// ContentType is the media type of the text exposition format 0.0.4.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// AppendFamily appends family f of a snapshot in the text format: its HELP
// (when a client gave one), its TYPE, and its series, histogram and summary
// lines grouped as the format requires.
func AppendFamily(dst []byte, f *cache.Family) []byte {
	return appendFamily(dst, f, nil)
}

// appendFamily is AppendFamily with a flush after any series once dst has
// grown past chunkSize (see Handler.render).
func appendFamily(dst []byte, f *cache.Family, flush func([]byte) []byte) []byte {
	name := f.Name
	if f.HasHelp {
		dst = append(dst, "# HELP "...)
		dst = append(dst, name...)
		dst = append(dst, ' ')
		dst = appendEscaped(dst, f.Help, false)
		dst = append(dst, '\n')
	}
	dst = append(dst, "# TYPE "...)
	dst = append(dst, name...)
	dst = append(dst, ' ')
	dst = append(dst, f.Type.String()...)
	dst = append(dst, '\n')
	var memo labelMemo
	for i := 0; i < f.Len(); i++ {
		s, ok := f.Series(i)
		if !ok {
			continue
		}
		for k, n := 0, s.Lines(); k < n; k++ {
			suffix, extra, bound, v := s.Line(k)
			dst = appendSample(dst, &memo, name, suffix, s.Labels(), extra, bound, v)
		}
		if flush != nil && len(dst) >= chunkSize {
			if dst = flush(dst); dst == nil {
				return nil // stop: the client is gone
			}
			memo.n = 0 // its text was in what flush took
		}
	}
	return dst
}

// appendSample appends one sample line; extra, when not empty, is one more
// label (le or quantile) whose value is the number bound.
func appendSample(dst []byte, memo *labelMemo, name []byte, suffix string, labels []byte, extra string, bound, v float64) []byte {
	dst = append(dst, name...)
	dst = append(dst, suffix...)
	if len(labels) > 0 || extra != "" {
		dst = append(dst, '{')
		start := len(dst)
		dst = memo.appendLabels(dst, labels)
		sep := len(dst) > start
		if extra != "" {
			if sep {
				dst = append(dst, ',')
			}
			dst = append(dst, extra...)
			dst = append(dst, '=', '"')
			dst = AppendFloat(dst, bound)
			dst = append(dst, '"')
		}
		dst = append(dst, '}')
	}
	dst = append(dst, ' ')
	dst = AppendFloat(dst, v)
	return append(dst, '\n')
}

// labelMemo remembers how the last label set was rendered, label by
// label. Series come sorted by their encoded labels, so the next one
// mostly starts with the same labels (job, instance, ...), and a histogram
// or summary repeats its own on every line: the rendering of that common
// prefix is copied in one piece instead of being decoded and escaped
// again. That is most of a scrape's work.
type labelMemo struct {
	enc     []byte // the last encoded label set
	text    []byte // its rendering, in the output
	n       int    // labels remembered: their ends are in encEnd, textEnd
	encEnd  [maxMemo]int
	textEnd [maxMemo]int
}

const maxMemo = 16

// appendLabels appends an encoded label set as name="value" pairs.
func (m *labelMemo) appendLabels(dst, labels []byte) []byte {
	start := len(dst)
	k, off := 0, 0 // labels reused; their encoded length
	for k < m.n && m.encEnd[k] <= len(labels) && bytes.Equal(labels[off:m.encEnd[k]], m.enc[off:m.encEnd[k]]) {
		off = m.encEnd[k]
		k++
	}
	if k > 0 {
		dst = append(dst, m.text[:m.textEnd[k-1]]...)
	}
	for rest := labels[off:]; ; {
		n, val, r, ok := cache.NextLabel(rest)
		if !ok {
			break
		}
		if len(dst) > start {
			dst = append(dst, ',')
		}
		dst = append(dst, n...)
		dst = append(dst, '=', '"')
		dst = appendEscaped(dst, val, true)
		dst = append(dst, '"')
		off += len(rest) - len(r)
		rest = r
		if k < maxMemo {
			m.encEnd[k], m.textEnd[k] = off, len(dst)-start
			k++
		}
	}
	m.n, m.enc, m.text = k, labels, dst[start:]
	return dst
}

// AppendFloat appends f as the text format writes numbers.
func AppendFloat(dst []byte, f float64) []byte {
	// Counts and most gauges are whole: integer formatting is several times
	// cheaper. 'g' would write 1e+06 where this writes 1000000; both are the
	// same float to every parser. The conversion of NaN, an infinity or a
	// value out of int64's range gives some integer on every platform, but
	// never one that converts back to f within the range checked.
	if i := int64(f); float64(i) == f && i > -1e15 && i < 1e15 && (i != 0 || !math.Signbit(f)) {
		if uint64(i) < 10 {
			return append(dst, byte('0'+i))
		}
		return strconv.AppendInt(dst, i, 10)
	}
	switch {
	case math.IsInf(f, +1):
		return append(dst, "+Inf"...)
	case math.IsInf(f, -1):
		return append(dst, "-Inf"...)
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// appendEscaped escapes a label value (backslash, double quote, newline) or a
// HELP text (backslash, newline), as the format requires.
func appendEscaped[T string | []byte](dst []byte, s T, quote bool) []byte {
	i := 0
	for ; i+8 <= len(s); i += 8 { // most values need no escape: 8 bytes a step
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if hasSpecial(x) {
			break
		}
	}
	for i < len(s) && !special[s[i]] {
		i++
	}
	if i == len(s) {
		return append(dst, s...)
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case b == '\\':
			dst = append(dst, '\\', '\\')
		case b == '\n':
			dst = append(dst, '\\', 'n')
		case b == '"' && quote:
			dst = append(dst, '\\', '"')
		default:
			dst = append(dst, b)
		}
	}
	return dst
}

// hasSpecial tells whether one of the 8 bytes in x is a backslash, a
// newline or a double quote (the classic has-zero-byte test on x XOR each).
func hasSpecial(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	a, b, c := x^('\\'*ones), x^('\n'*ones), x^('"'*ones)
	return ((a-ones)&^a|(b-ones)&^b|(c-ones)&^c)&highs != 0
}

// special marks the bytes that an escape may be needed for.
var special = [256]bool{'\\': true, '\n': true, '"': true}

// AppendHeader appends the HELP and TYPE lines of a family.
func AppendHeader(dst []byte, name, help string, t cache.Type) []byte {
	dst = append(dst, "# HELP "...)
	dst = append(dst, name...)
	dst = append(dst, ' ')
	dst = appendEscaped(dst, help, false)
	dst = append(dst, "\n# TYPE "...)
	dst = append(dst, name...)
	dst = append(dst, ' ')
	dst = append(dst, t.String()...)
	return append(dst, '\n')
}

// AppendSample appends one sample line of a self-metric with at most one
// label; label "" means none.
func AppendSample(dst []byte, name, label, value string, v float64) []byte {
	dst = append(dst, name...)
	if label != "" {
		dst = append(dst, '{')
		dst = append(dst, label...)
		dst = append(dst, '=', '"')
		dst = appendEscaped(dst, value, true)
		dst = append(dst, '"', '}')
	}
	dst = append(dst, ' ')
	dst = AppendFloat(dst, v)
	return append(dst, '\n')
}

// AppendSample2 appends one sample line of a self-metric with two labels,
// which the caller passes sorted by name.
func AppendSample2(dst []byte, name, l1, v1, l2, v2 string, v float64) []byte {
	dst = append(dst, name...)
	dst = append(dst, '{')
	dst = append(dst, l1...)
	dst = append(dst, '=', '"')
	dst = appendEscaped(dst, v1, true)
	dst = append(dst, '"', ',')
	dst = append(dst, l2...)
	dst = append(dst, '=', '"')
	dst = appendEscaped(dst, v2, true)
	dst = append(dst, '"', '}', ' ')
	dst = AppendFloat(dst, v)
	return append(dst, '\n')
}
