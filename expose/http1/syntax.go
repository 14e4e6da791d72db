// Package http1 is the HTTP/1.1 message syntax that the daemon's server
// (expose.Server) and its client (expose/remotewrite/httpc) share: tokens,
// lists, lengths and chunk sizes, field values. Both read and write
// framing themselves; what a byte may be, and how a number is read, is
// decided here once, as RFC 9110 and 9112 say and as Go's net/http reads
// them.
package http1

import "bytes"

// IsToken tells whether b is an RFC 9110 token: a method or a field name.
func IsToken[T string | []byte](b T) bool {
	if len(b) == 0 {
		return false
	}
	for i := 0; i < len(b); i++ {
		if ch := b[i]; ch >= 0x80 || !tokenChar[ch] {
			return false
		}
	}
	return true
}

var tokenChar = func() (t [128]bool) {
	for ch := '0'; ch <= '9'; ch++ {
		t[ch] = true
	}
	for ch := 'a'; ch <= 'z'; ch++ {
		t[ch], t[ch-'a'+'A'] = true, true
	}
	for _, ch := range "!#$%&'*+-.^_`|~" {
		t[ch] = true
	}
	return t
}()

// HasToken tells whether the comma-separated list v holds tok, in any case.
func HasToken(v []byte, tok string) bool {
	for len(v) > 0 {
		item := v
		if i := bytes.IndexByte(v, ','); i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			v = nil
		}
		if bytes.EqualFold(bytes.Trim(item, " \t"), []byte(tok)) {
			return true
		}
	}
	return false
}

// ParseLength parses a Content-Length: digits only, no sign, no overflow.
func ParseLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		n = n*10 + int64(ch-'0')
	}
	return n, true
}

// ParseHex parses a chunk size: hex digits only, no overflow.
func ParseHex(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, ch := range b {
		switch {
		case ch >= '0' && ch <= '9':
			n = n<<4 | int64(ch-'0')
		case ch >= 'a' && ch <= 'f':
			n = n<<4 | int64(ch-'a'+10)
		case ch >= 'A' && ch <= 'F':
			n = n<<4 | int64(ch-'A'+10)
		default:
			return 0, false
		}
	}
	return n, true
}

// ValidValue tells whether v may stand in a field value: no control
// character but HTAB (a NUL, a bare CR or LF would let a proxy in front
// see other framing than the daemon), as RFC 9110, 5.5 requires.
func ValidValue[T string | []byte](v T) bool {
	for i := 0; i < len(v); i++ {
		if ch := v[i]; (ch < ' ' && ch != '\t') || ch == 0x7f {
			return false
		}
	}
	return true
}
