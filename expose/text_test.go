package expose

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/push-gateway/push-gateway/cache"
)

// TestLabelMemo: label sets rendered one after another through one memo,
// as a family's series are, come out as each rendered alone: shared
// prefixes of every length, values that need escapes, empty sets, more
// labels than the memo remembers.
func TestLabelMemo(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	values := []string{"a", "b", `q"uote`, "new\nline", `back\slash`, "", "router-01.lan"}
	var memo labelMemo
	var out []byte
	var prev []cache.Label
	for i := 0; i < 5000; i++ {
		// Mostly the previous set with a random tail, as sorted series are.
		ls := append([]cache.Label(nil), prev[:rng.IntN(len(prev)+1)]...)
		for j := len(ls); j < rng.IntN(maxMemo+3); j++ {
			ls = append(ls, cache.Label{Name: fmt.Appendf(nil, "l%02d", j), Value: []byte(values[rng.IntN(len(values))])})
		}
		prev = ls
		c := cache.New(cache.Options{})
		if err := c.Set([]byte("m"), ls, 1); err != nil {
			t.Fatal(err)
		}
		var s cache.Snapshot
		c.Snapshot(&s)
		enc := []byte{}
		if s.Len() > 0 {
			ser, _ := s.Family(0).Series(0)
			enc = ser.Labels()
		}
		if rng.IntN(50) == 0 {
			memo.n = 0 // as after a flush
		}
		start := len(out)
		out = memo.appendLabels(out, enc)
		var fresh labelMemo
		want := fresh.appendLabels(nil, enc)
		if !bytes.Equal(out[start:], want) {
			t.Fatalf("step %d: %q, want %q", i, out[start:], want)
		}
	}
}

// AppendFloat writes every float so that it parses back to the same bits (any
// NaN as NaN), and whole numbers below 1e15 without an exponent.
func TestAppendFloatRoundTrips(t *testing.T) {
	vals := []float64{0, math.Copysign(0, -1), 1, -1, 9, 10, -10, 0.5, 1e15 - 1, 1e15, -1e15 + 1, -1e15,
		1 << 53, 1<<63 - 1024, 1 << 63, -(1 << 63), 1e300, -1e-300, math.SmallestNonzeroFloat64,
		math.MaxFloat64, math.Inf(1), math.Inf(-1), math.NaN(), 123456789.25, -0.1}
	r := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		vals = append(vals, math.Float64frombits(r.Uint64()), float64(r.Int64N(2e15)-1e15), float64(r.IntN(100)))
	}
	for _, f := range vals {
		s := string(AppendFloat(nil, f))
		g, err := strconv.ParseFloat(s, 64)
		if err != nil && !math.IsInf(f, 0) {
			t.Fatalf("AppendFloat(%v) = %q: %v", f, s, err)
		}
		if math.IsNaN(f) {
			if s != "NaN" {
				t.Fatalf("AppendFloat(NaN) = %q", s)
			}
			continue
		}
		if math.Float64bits(g) != math.Float64bits(f) {
			t.Fatalf("AppendFloat(%v) = %q, which parses as %v", f, s, g)
		}
		if f == math.Trunc(f) && math.Abs(f) < 1e15 && strings.ContainsAny(s, "e.") {
			t.Fatalf("AppendFloat(%v) = %q, want an integer", f, s)
		}
	}
}
