package resp

import (
	"errors"
	"io"
	"testing"
)

// FuzzReply reads whatever a hostile or broken server may send: the reader
// must return values or errors, never panic, never loop without reading,
// and never grow its buffer past the largest bulk it keeps plus a header.
func FuzzReply(f *testing.F) {
	for _, s := range []string{
		"+OK\r\n", "-WRONGTYPE Operation against a key\r\n", ":1\r\n", "$-1\r\n", "*-1\r\n",
		"*2\r\n$3\r\nfoo\r\n$5\r\nbar\nx\r\n", "$20\r\n01234567890123456789\r\n",
		"*3\r\n*1\r\n:1\r\n$0\r\n\r\n+x\r\n", "$9223372036854775807\r\n", "*1\r\n$1\r\n",
		"-NOAUTH Authentication required.\r\n", "-READONLY You can't write against a read only replica.\r\n",
		"%1\r\n", "_\r\n", ":-9223372036854775808\r\n",
	} {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		const maxBulk = 16
		c, fc := newFake(string(in), int(chunk%8), maxBulk)
		for i := 0; ; i++ {
			if i > len(in)+1 {
				t.Fatalf("%d values from %d bytes", i, len(in))
			}
			r, err := c.Next()
			if len(c.buf) > max(initialBuffer, maxBulk+2) {
				t.Fatalf("buffer grew to %d", len(c.buf))
			}
			if err != nil {
				if !errors.Is(err, ErrProtocol) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("error %v is neither a protocol error nor EOF", err)
				}
				break
			}
			if len(r.Str) > maxBulk && r.Kind == Bulk {
				t.Fatalf("kept a bulk of %d bytes over the limit of %d", len(r.Str), maxBulk)
			}
			if r.Kind == Array && r.Int > 0 {
				// Discard bounds nested arrays by the input, not by
				// the announced lengths.
				if err := c.Discard(r.Int); err != nil {
					break
				}
			}
		}
		if fc.reads > len(in)+8 {
			t.Fatalf("%d reads for %d bytes", fc.reads, len(in))
		}
	})
}
