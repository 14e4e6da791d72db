package cache

import "strconv"

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
}

// ParseFloat parses a number of the text format (a sample value, a bucket's
// le, a quantile) as expfmt does: strconv.ParseFloat, but refusing any of
// "pP_" (hex floats, underscores). So "NaN", "+Inf", "-Inf", "Inf", "1e3"
// are fine, and a value out of float64's range is an error.
func ParseFloat(b []byte) (float64, bool) {
	// Fast path for decimals of at most 15 digits with a power of ten within
	// 1e±22, such as "1027", "-12.75" or client_golang's "8.470153e+06": the
	// digits are an integer below 2^53 and the power of ten is exact, so one
	// IEEE multiplication or division is correctly rounded. This is the exact
	// case of strconv itself (atof64exact); the result equals its bit for bit.
	i, neg := 0, false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg, i = b[0] == '-', 1
	}
	var m uint64
	digits, exp, dot := 0, 0, false
	for ; i < len(b); i++ {
		c := b[i]
		if '0' <= c && c <= '9' {
			m = m*10 + uint64(c-'0')
			digits++
			if dot {
				exp--
			}
		} else if c == '.' && !dot {
			dot = true
		} else {
			break
		}
	}
	if i < len(b) && b[i]|0x20 == 'e' && digits > 0 {
		i++
		eneg := false
		if i < len(b) && (b[i] == '-' || b[i] == '+') {
			eneg = b[i] == '-'
			i++
		}
		e, start := 0, i
		for ; i < len(b) && '0' <= b[i] && b[i] <= '9'; i++ {
			if e < 1000 { // saturate: anything this far out takes the slow path
				e = e*10 + int(b[i]-'0')
			}
		}
		if i == start {
			return parseFloat(b)
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	if i != len(b) || digits == 0 || digits > 15 || exp < -22 || exp > 22 {
		return parseFloat(b)
	}
	f := float64(m)
	if exp > 0 {
		f *= pow10[exp]
	} else if exp < 0 {
		f /= pow10[-exp]
	}
	if neg {
		f = -f // -0 stays negative zero, as with strconv
	}
	return f, true
}

// parseFloat is ParseFloat's slow path, kept apart so that its stack buffer
// for string(b) does not weigh on the fast path.
func parseFloat(b []byte) (float64, bool) {
	for _, c := range b {
		if c == 'p' || c == 'P' || c == '_' {
			return 0, false
		}
	}
	// string(b) does not escape, so for up to 32 bytes it lives on the stack.
	f, err := strconv.ParseFloat(string(b), 64)
	return f, err == nil
}
