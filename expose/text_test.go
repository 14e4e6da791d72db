package expose

import (
	"bytes"
	"fmt"
	"math/rand/v2"
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
