package cache

import (
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// TestParseFloatMatchesStrconv checks ParseFloat's fast path against
// strconv, bit for bit, on its edges and on random values as Go formats them.
func TestParseFloatMatchesStrconv(t *testing.T) {
	check := func(s string) {
		t.Helper()
		got, ok := ParseFloat([]byte(s))
		want, err := strconv.ParseFloat(s, 64)
		if strings.ContainsAny(s, "pP_") {
			err = errors.New("refused")
		}
		if ok != (err == nil) || ok && math.Float64bits(got) != math.Float64bits(want) && !(math.IsNaN(got) && math.IsNaN(want)) {
			t.Errorf("%q: got %v %v, strconv %v %v", s, got, ok, want, err)
		}
	}
	for _, s := range []string{
		"0", "1", "-1", "0.1", "0.2", "0.3", "1.1", "123.456", "999999999999999", "99999999999999.9",
		"0.000000000000001", "-0.000000000000001", "4503599627370497", "9007199254740993",
		"1234567890.12345", ".123456789012345", "1.00000000000000000001", "00000000000000001",
		"8.470153e+06", "1e22", "1e23", "9e22", "123456789012345e22", "1e-22", "1e-23", "5e-324", "1e308",
		"1e309", "-1e309", "1E5", "1e+5", "1e-5", "1.5e0", "1e", "1e+", "1e-", "e5", ".e5", "1.e5", ".5e1",
		"1e5.0", "1e5e5", "1e0000000000000000000005", "1e-0000000000000000000005", "1e99999999999999999999",
		"0e99999999999999999999", "-0e5", "1ee5", "+.5", "-.", "+", "-", "", "1p5", "0x1p5", "1_0", "Inf",
		"-inf", "+Infinity", "NaN", "nan", "infin", "1.5Inf", "0.1e-7", "3.14159265358979", "2.7182818284590452",
	} {
		check(s)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		f := math.Float64frombits(r.Uint64())
		if r.IntN(2) == 0 {
			f = float64(r.Int64N(1e12)) / math.Pow(10, float64(r.IntN(30)-15))
		}
		check(strconv.FormatFloat(f, 'g', -1, 64))
		check(strconv.FormatFloat(f, 'e', r.IntN(17), 64))
		check(strconv.FormatFloat(f, 'f', r.IntN(8), 64))
	}
}
