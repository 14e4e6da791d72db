package ingest

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/push-gateway/push-gateway/cache"
)

// FuzzGroupingKey checks that whatever path a client sends, the grouping
// key parser either refuses it or returns a key the cache can use: a job,
// valid label names, each once, UTF-8 values.
func FuzzGroupingKey(f *testing.F) {
	for _, s := range []string{"job/a", "job/a/instance/b", "job@base64/L3Zhci90bXA", "job/a/x@base64/=",
		"job/", "job/a/b", "job/a/__x/1", "job/a/x@base64/!!", "job/a/x/1/x/2", "job/a/path@base64/L2EvYi9j"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		g, err := ParseGroupingKey(path)
		if err != nil {
			return
		}
		if len(g) == 0 || string(g[0].Name) != "job" || len(g[0].Value) == 0 {
			t.Fatalf("%q: key without a job: %v", path, g)
		}
		seen := map[string]bool{}
		for _, l := range g {
			if !validLabelName(string(l.Name)) || seen[string(l.Name)] || !utf8.Valid(l.Value) {
				t.Fatalf("%q: bad label %q=%q", path, l.Name, l.Value)
			}
			seen[string(l.Name)] = true
		}
		c := cache.New(cache.Options{})
		if err := c.Push(g, nil, cache.ReplaceGroup); err != nil {
			t.Fatalf("%q: valid key refused by the cache: %v", path, err)
		}
	})
}

// FuzzDecodeProtobuf feeds arbitrary bytes as a protobuf push body: the
// decoder may refuse them but must not panic, and what it accepts must push.
func FuzzDecodeProtobuf(f *testing.F) {
	f.Add([]byte("\x07\n\x03a_b\x18\x01"))
	f.Add([]byte("\x1d\n\x01h\x18\x04\"\x16:\x14\b\x05\x11\x00\x00\x00\x00\x00\x00\x04@\x1a\a\b\x01\x11\x9a\x99\x99\x99\x99\x99\xb9?"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		fams, err := DecodeProtobuf(data)
		if err != nil {
			return
		}
		for _, fm := range fams {
			if !validMetricName(fm.Name) {
				t.Fatalf("accepted bad name %q", fm.Name)
			}
		}
		c := cache.New(cache.Options{Budget: 64 << 10})
		err = c.Push([]cache.Label{{Name: []byte("job"), Value: []byte("j")}}, fams, cache.ReplaceGroup)
		if err != nil && !strings.HasPrefix(err.Error(), "cache:") {
			t.Fatalf("push: %v", err)
		}
		var s cache.Snapshot
		c.Snapshot(&s)
	})
}
