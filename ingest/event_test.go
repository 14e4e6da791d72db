package ingest

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/push-gateway/push-gateway/cache"
)

// render renders every series of the cache, histograms and summaries
// included, one line each.
func render(c *cache.Cache) string {
	var s cache.Snapshot
	c.Snapshot(&s)
	var b strings.Builder
	for i := 0; i < s.Len(); i++ {
		f := s.Family(i)
		fmt.Fprintf(&b, "# %s %s", f.Name, f.Type)
		if f.HasHelp {
			fmt.Fprintf(&b, " %q", f.Help)
		}
		b.WriteString("\n")
		for j := 0; j < f.Len(); j++ {
			ser, ok := f.Series(j)
			if !ok {
				continue
			}
			var ls []string
			for l := ser.Labels(); ; {
				n, v, rest, ok := cache.NextLabel(l)
				if !ok {
					break
				}
				ls = append(ls, string(n)+"="+string(v))
				l = rest
			}
			fmt.Fprintf(&b, "%s{%s}", f.Name, strings.Join(ls, ","))
			if f.Type.Compound() {
				for k := 0; k < ser.Buckets(); k++ {
					bound, v := ser.Bucket(k)
					fmt.Fprintf(&b, " %g:%g", bound, v)
				}
				sum, _ := ser.Sum()
				count, _ := ser.Count()
				fmt.Fprintf(&b, " sum=%g count=%g\n", sum, count)
			} else {
				fmt.Fprintf(&b, " %g\n", ser.Value())
			}
		}
	}
	return b.String()
}

// The events of the issue, verbatim, mixed with text lines on one stream.
const issueEvents = `{"type":"counter","name":"http_requests_total","value":1,"labels":{"method":"GET","status":"200","service":"web-app"}}
{"type":"gauge","name":"temperature_celsius","value":22.5,"labels":{"sensor":"room-1"}}
{"type":"histogram","name":"request_duration_seconds","value":0.75,"buckets":[0.1,0.5,1,5,10],"labels":{"method":"GET","endpoint":"/api/data"}}
{"type":"summary","name":"http_request_size_bytes","value":512,"quantiles":[0.5,0.9,0.99],"epsilons":[0.05,0.01,0.001],"labels":{"method":"POST","endpoint":"/upload"}}
`

func TestJSONEvents(t *testing.T) {
	s, c, path := startServer(t, Options{})
	push(t, path, issueEvents, "plain_text_line 7\n", issueEvents,
		`  {"type":"gauge","name":"temperature_celsius","value":21,"labels":{"sensor":"room-1"},"help":"Room temperature.","extra":[1,{"a":null}]}`+"\n",
		`{"type":"counter","name":"http_requests_total","value":-1}`+"\n", // counters do not go down
		`{"type":"gauge","name":"http_requests_total","value":1}`+"\n",    // a counter already
		`{"type":"histogram","name":"request_duration_seconds","value":1,"buckets":[1,2],"labels":{"method":"GET","endpoint":"/api/data"}}`+"\n",
		`{"type":"counter","name":"x","value":1`+"\n", // cut short
		`{"type":"counter","name":"bad name","value":1}`+"\n",
		`{"type":"counter","name":"u","value":1,"labels":{"k":"\u00e9\n"}}`+"\n",
		`{"type":"histogram","name":"dflt","value":0.3}`+"\n",
	)
	want := `# dflt histogram
dflt{} 0.005:0 0.01:0 0.025:0 0.05:0 0.1:0 0.25:0 0.5:1 1:1 2.5:1 5:1 10:1 +Inf:1 sum=0.3 count=1
# http_request_size_bytes summary
http_request_size_bytes{endpoint=/upload,method=POST} 0.5:512 0.9:512 0.99:512 sum=1024 count=2
# http_requests_total counter
http_requests_total{method=GET,service=web-app,status=200} 2
# plain_text_line untyped
plain_text_line{} 7
# request_duration_seconds histogram
request_duration_seconds{endpoint=/api/data,method=GET} 0.1:0 0.5:0 1:2 5:2 10:2 +Inf:2 sum=1.5 count=2
# temperature_celsius gauge "Room temperature."
temperature_celsius{sensor=room-1} 21
# u counter
u{k=é
} 1
`
	if got := render(c); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	st := s.Stats()
	if n := st.Rejected[ReasonInvalidEvent].Load(); n != 3 {
		t.Errorf("invalid events %d, want 3 (negative counter, cut short, bad name)", n)
	}
	if st.Rejected[ReasonTypeConflict].Load() != 1 || st.Rejected[ReasonBucketMismatch].Load() != 1 {
		t.Errorf("type conflicts %d, bucket mismatches %d", st.Rejected[ReasonTypeConflict].Load(), st.Rejected[ReasonBucketMismatch].Load())
	}
}

func TestClearmodeOnTextLines(t *testing.T) {
	_, c, path := startServer(t, Options{})
	push(t, path,
		"# TYPE runs_total counter\n",
		"runs_total{clearmode=\"aggregate\",job=\"a\"} 2\n",
		"runs_total{job=\"a\",clearmode=\"aggregate\"} 3\n",
		"g{clearmode=\"replace\"} 3\n",
		"g{clearmode=\"replace\"} 4\n",
		"fam{x=\"1\"} 1\nfam{x=\"2\"} 2\nfam{x=\"3\",clearmode=\"family\"} 3\n",
		"bad{clearmode=\"sometimes\"} 1\n",
	)
	want := "# fam untyped\nfam{x=3} 3\n# g untyped\ng{} 4\n# runs_total counter\nruns_total{job=a} 5\n"
	if got := render(c); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

// TestConcurrentCounterEvents: N processes each adding 1 a thousand times
// over their own connections give exactly N×1000.
func TestConcurrentCounterEvents(t *testing.T) {
	_, c, path := startServer(t, Options{})
	const n = 8
	line := `{"type":"counter","name":"hits_total","value":1,"labels":{"page":"/"}}` + "\n"
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			push(t, path, strings.Repeat(line, 1000))
		}()
	}
	wg.Wait()
	if got := render(c); got != fmt.Sprintf("# hits_total counter\nhits_total{page=/} %d\n", n*1000) {
		t.Fatalf("got %q", got)
	}
}

// go test -run '^$' -bench 'BenchmarkEvent' -benchmem ./ingest/

// BenchmarkEvent applies JSON events to existing series: parse, check and
// cache update, in batches of 64 as the daemon applies one read.
func BenchmarkEvent(b *testing.B) {
	for _, tc := range []struct{ name, line string }{
		{"counter", `{"type":"counter","name":"http_requests_total","value":1,"labels":{"method":"GET","status":"200","service":"web-app"}}`},
		{"histogram", `{"type":"histogram","name":"request_duration_seconds","value":0.75,"buckets":[0.1,0.5,1,5,10],"labels":{"method":"GET","endpoint":"/api/data"}}`},
		{"summary", `{"type":"summary","name":"http_request_size_bytes","value":512,"quantiles":[0.5,0.9,0.99],"epsilons":[0.05,0.01,0.001],"labels":{"method":"POST","endpoint":"/upload"}}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c := cache.New(cache.Options{})
			s := NewServer(Options{Cache: c})
			var st lineState
			line := []byte(tc.line)
			tx := c.Begin()
			s.apply(tx, &st, line)
			tx.End()
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				tx := c.Begin()
				for range 64 {
					s.apply(tx, &st, line)
				}
				tx.End()
				n += 64
			}
			if s.stats.Lines.Load() != uint64(n+1) {
				b.Fatalf("applied %d of %d", s.stats.Lines.Load(), n+1)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/event")
		})
	}
}

// BenchmarkPatch is the cache side of a PATCH increment of an existing
// counter (the HTTP request around it is not measured).
func BenchmarkPatch(b *testing.B) {
	c := cache.New(cache.Options{})
	name := []byte("jobs_total")
	ls := []cache.Label{{Name: []byte("queue"), Value: []byte("a")}}
	b.ReportAllocs()
	for b.Loop() {
		tx := c.Begin()
		if err := tx.Put(name, ls, 1, cache.Counter, true); err != nil {
			b.Fatal(err)
		}
		tx.End()
	}
}
