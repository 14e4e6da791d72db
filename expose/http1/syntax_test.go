package http1

import (
	"strconv"
	"testing"
)

func TestIsToken(t *testing.T) {
	for s, want := range map[string]bool{
		"GET": true, "Content-Length": true, "x!#$%&'*+-.^_`|~9": true,
		"": false, "a b": false, "a:": false, "a\x00": false, "é": false, "(a)": false, "a/b": false,
	} {
		if IsToken(s) != want || IsToken([]byte(s)) != want {
			t.Errorf("IsToken(%q) = %v, want %v", s, !want, want)
		}
	}
}

func TestHasToken(t *testing.T) {
	for _, tc := range []struct {
		v, tok string
		want   bool
	}{
		{"close", "close", true}, {"Keep-Alive, Close", "close", true}, {" upgrade ,\tclose ", "close", true},
		{"closed", "close", false}, {"", "close", false}, {"keep-alive", "close", false},
	} {
		if got := HasToken([]byte(tc.v), tc.tok); got != tc.want {
			t.Errorf("HasToken(%q, %q) = %v", tc.v, tc.tok, got)
		}
	}
}

func TestParseLength(t *testing.T) {
	for s, want := range map[string]int64{"0": 0, "42": 42, "999999999999999999": 999999999999999999} {
		if n, ok := ParseLength([]byte(s)); !ok || n != want {
			t.Errorf("ParseLength(%q) = %d, %v", s, n, ok)
		}
	}
	for _, s := range []string{"", "-1", "+1", "1 ", "0x10", "1000000000000000000", "١"} {
		if _, ok := ParseLength([]byte(s)); ok {
			t.Errorf("ParseLength(%q) accepted", s)
		}
	}
}

func TestParseHex(t *testing.T) {
	for _, n := range []int64{0, 1, 0xabc, 0xFFFFFFFFFFFFFFF} {
		for _, s := range []string{strconv.FormatInt(n, 16), strconv.FormatInt(n, 16) + ""} {
			if got, ok := ParseHex([]byte(s)); !ok || got != n {
				t.Errorf("ParseHex(%q) = %d, %v", s, got, ok)
			}
		}
	}
	if got, ok := ParseHex([]byte("aBc")); !ok || got != 0xabc {
		t.Errorf("ParseHex(aBc) = %d, %v", got, ok)
	}
	for _, s := range []string{"", "g", "1 ", "-1", "0x1", "1000000000000000"} {
		if _, ok := ParseHex([]byte(s)); ok {
			t.Errorf("ParseHex(%q) accepted", s)
		}
	}
}

func TestValidValue(t *testing.T) {
	for s, want := range map[string]bool{
		"": true, "text/plain; charset=utf-8": true, "a\tb": true, "é": true,
		"a\x00b": false, "a\rb": false, "a\nb": false, "\x7f": false, "\x1b[0m": false,
	} {
		if ValidValue(s) != want || ValidValue([]byte(s)) != want {
			t.Errorf("ValidValue(%q) = %v, want %v", s, !want, want)
		}
	}
}
