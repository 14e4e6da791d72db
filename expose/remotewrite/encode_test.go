package remotewrite

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/easyproto"
	"github.com/golang/snappy"

	"github.com/push-gateway/push-gateway/cache"
)

// decoded is a WriteRequest read back: one line per series,
// `name{l="v",...} value @ms` with labels in the order they came, and the
// metadata as `TYPE name type help`.
type decoded struct {
	series   []string
	metadata []string
}

func decode(t *testing.T, body []byte) decoded {
	t.Helper()
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		t.Fatalf("snappy: %v", err)
	}
	var d decoded
	var fc, tc, lc easyproto.FieldContext
	for src := raw; len(src) > 0; {
		if src, err = fc.NextField(src); err != nil {
			t.Fatal(err)
		}
		m, ok := fc.MessageData()
		if !ok {
			t.Fatalf("field %d is not a message", fc.FieldNum)
		}
		switch fc.FieldNum {
		case 1:
			var labels []string
			var name string
			var samples []string
			for m := m; len(m) > 0; {
				if m, err = tc.NextField(m); err != nil {
					t.Fatal(err)
				}
				mm, _ := tc.MessageData()
				switch tc.FieldNum {
				case 1:
					var n, v string
					for mm := mm; len(mm) > 0; {
						if mm, err = lc.NextField(mm); err != nil {
							t.Fatal(err)
						}
						s, _ := lc.String()
						if lc.FieldNum == 1 {
							n = s
						} else {
							v = s
						}
					}
					if n == "__name__" {
						name = v
					}
					labels = append(labels, fmt.Sprintf("%s=%q", n, v))
				case 2:
					var v float64
					var ts int64
					for mm := mm; len(mm) > 0; {
						if mm, err = lc.NextField(mm); err != nil {
							t.Fatal(err)
						}
						if lc.FieldNum == 1 {
							v, _ = lc.Double()
						} else {
							ts, _ = lc.Int64()
						}
					}
					s := fmt.Sprint(v)
					if math.Float64bits(v) == StaleNaN {
						s = "stale"
					}
					samples = append(samples, fmt.Sprintf("%s @%d", s, ts))
				default:
					t.Fatalf("TimeSeries field %d", tc.FieldNum)
				}
			}
			if len(samples) != 1 {
				t.Fatalf("series %s has %d samples", name, len(samples))
			}
			if !slices.IsSorted(labels) {
				t.Errorf("labels not sorted: %v", labels)
			}
			d.series = append(d.series, fmt.Sprintf("{%s} %s", strings.Join(labels, ","), samples[0]))
		case 3:
			var typ uint64
			var name, help string
			for m := m; len(m) > 0; {
				if m, err = tc.NextField(m); err != nil {
					t.Fatal(err)
				}
				switch tc.FieldNum {
				case 1:
					typ, _ = tc.Uint64()
				case 2:
					name, _ = tc.String()
				case 4:
					help, _ = tc.String()
				}
			}
			d.metadata = append(d.metadata, fmt.Sprintf("%s %d %s", name, typ, help))
		default:
			t.Fatalf("WriteRequest field %d", fc.FieldNum)
		}
	}
	return d
}

func fill(t *testing.T, c *cache.Cache, text string) {
	t.Helper()
	b := c.Begin()
	defer b.End()
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		switch f[0] {
		case "TYPE":
			typ, _ := cache.ParseType([]byte(f[2]))
			if err := b.SetType([]byte(f[1]), typ); err != nil {
				t.Fatal(err)
			}
		case "HELP":
			if err := b.SetHelp([]byte(f[1]), []byte(strings.Join(f[2:], " "))); err != nil {
				t.Fatal(err)
			}
		default: // name l=v,l=v value
			var ls []cache.Label
			if f[1] != "-" {
				for _, p := range strings.Split(f[1], ",") {
					n, v, _ := strings.Cut(p, "=")
					ls = append(ls, cache.Label{Name: []byte(n), Value: []byte(v)})
				}
			}
			var v float64
			fmt.Sscan(f[2], &v)
			if err := b.Set([]byte(f[0]), ls, v); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
		}
	}
}

func encode(t *testing.T, e *Encoder, c *cache.Cache, s *cache.Snapshot, ms int64) (decoded, int) {
	t.Helper()
	c.Snapshot(s)
	body, n := e.Encode(s, ms, nil)
	if n == 0 {
		if body != nil {
			t.Fatal("a body without samples")
		}
		return decoded{}, 0
	}
	d := decode(t, body)
	if len(d.series) != n {
		t.Fatalf("Encode says %d samples, the body has %d series", n, len(d.series))
	}
	return d, n
}

func TestEncodeEveryKind(t *testing.T) {
	c := cache.New(cache.Options{Budget: 64 << 10})
	fill(t, c, `
TYPE req_total counter
HELP req_total Requests served.
req_total path=/a,code=200 3
req_total path=/b,Z=up 4
TYPE temp gauge
temp - 21.5
TYPE lat histogram
lat_bucket le=0.5 2
lat_bucket le=+Inf 3
lat_sum - 4.5
lat_count - 3
TYPE rpc summary
rpc quantile=0.9,svc=x 7
rpc_sum svc=x 20
rpc_count svc=x 4
plain instance=mine 1
`)
	e := NewEncoder([]Label{{Name: []byte("site"), Value: []byte("s1")}, {Name: []byte("instance"), Value: []byte("dev1")}}, true)
	var s cache.Snapshot
	d, _ := encode(t, e, c, &s, 1000)
	// Names, label values and le/quantile exactly as /metrics writes them,
	// __name__ among the sorted labels (Z sorts before it), external labels
	// only where the series lacks them.
	want := []string{
		`{__name__="lat_bucket",instance="dev1",le="0.5",site="s1"} 2 @1000`,
		`{__name__="lat_bucket",instance="dev1",le="+Inf",site="s1"} 3 @1000`,
		`{__name__="lat_sum",instance="dev1",site="s1"} 4.5 @1000`,
		`{__name__="lat_count",instance="dev1",site="s1"} 3 @1000`,
		`{__name__="plain",instance="mine",site="s1"} 1 @1000`,
		`{Z="up",__name__="req_total",instance="dev1",path="/b",site="s1"} 4 @1000`,
		`{__name__="req_total",code="200",instance="dev1",path="/a",site="s1"} 3 @1000`,
		`{__name__="rpc",instance="dev1",quantile="0.9",site="s1",svc="x"} 7 @1000`,
		`{__name__="rpc_sum",instance="dev1",site="s1",svc="x"} 20 @1000`,
		`{__name__="rpc_count",instance="dev1",site="s1",svc="x"} 4 @1000`,
		`{__name__="temp",instance="dev1",site="s1"} 21.5 @1000`,
	}
	if !slices.Equal(d.series, want) {
		t.Errorf("series:\n%s\nwant:\n%s", strings.Join(d.series, "\n"), strings.Join(want, "\n"))
	}
	wantMeta := []string{"lat 3 ", "plain 0 ", "req_total 1 Requests served.", "rpc 5 ", "temp 2 "}
	if !slices.Equal(d.metadata, wantMeta) {
		t.Errorf("metadata %q, want %q", d.metadata, wantMeta)
	}
}

func TestEncodeStaleMarkers(t *testing.T) {
	now := int64(0)
	c := cache.New(cache.Options{Budget: 64 << 10})
	fill(t, c, "a - 1\nb x=1 2\nTYPE h histogram\nh_bucket le=1 1\nh_count - 1\n")
	e := NewEncoder(nil, false)
	var s cache.Snapshot
	now += 1000
	if _, n := encode(t, e, c, &s, now); n != 4 {
		t.Fatalf("first request: %d samples, want 4", n)
	}
	// b and the histogram go: each of their series is sent once more with
	// the stale NaN, with the labels it was last sent with.
	c2 := cache.New(cache.Options{Budget: 64 << 10})
	fill(t, c2, "a - 5\n")
	now += 1000
	d, n := encode(t, e, c2, &s, now)
	want := []string{
		`{__name__="a"} 5 @2000`,
		`{__name__="b",x="1"} stale @2000`,
		`{__name__="h_bucket",le="1"} stale @2000`,
		`{__name__="h_count"} stale @2000`,
	}
	if n != 4 || !slices.Equal(d.series, want) {
		t.Fatalf("second request (%d samples):\n%s\nwant:\n%s", n, strings.Join(d.series, "\n"), strings.Join(want, "\n"))
	}
	// A stale marker is sent once.
	now += 1000
	d, _ = encode(t, e, c2, &s, now)
	if want := []string{`{__name__="a"} 5 @3000`}; !slices.Equal(d.series, want) {
		t.Fatalf("third request: %q, want %q", d.series, want)
	}
	// Nothing at all: a, then nothing to send.
	c3 := cache.New(cache.Options{Budget: 64 << 10})
	now += 1000
	if d, _ = encode(t, e, c3, &s, now); !slices.Equal(d.series, []string{`{__name__="a"} stale @4000`}) {
		t.Fatalf("fourth request: %q", d.series)
	}
	if _, n := encode(t, e, c3, &s, now+1000); n != 0 {
		t.Fatalf("an empty cache after its stale markers: %d samples", n)
	}
}

// A series whose value changes is not stale: the set compares labels only.
func TestEncodeChangedValueIsNotStale(t *testing.T) {
	c := cache.New(cache.Options{Budget: 64 << 10})
	e := NewEncoder([]Label{{Name: []byte("instance"), Value: []byte("d")}}, false)
	var s cache.Snapshot
	for i := range 3 {
		fill(t, c, fmt.Sprintf("a k=v %d\n", i))
		d, _ := encode(t, e, c, &s, int64(i))
		if want := fmt.Sprintf(`{__name__="a",instance="d",k="v"} %d @%d`, i, i); len(d.series) != 1 || d.series[0] != want {
			t.Fatalf("request %d: %q, want %q", i, d.series, want)
		}
	}
}

// BenchmarkEncode: 100 series of one family, with and without metadata,
// values whole or fractional (a fractional float64 does not compress).
// compressed-bytes per request / 100 is the queue sizing figure of the
// README.
func BenchmarkEncode(b *testing.B) {
	for _, bc := range []struct {
		name     string
		metadata bool
		frac     bool
	}{{"whole", true, false}, {"whole-nometa", false, false}, {"fractional", true, true}} {
		b.Run(bc.name, func(b *testing.B) {
			c := cache.New(cache.Options{Budget: 64 << 10})
			e := NewEncoder([]Label{{Name: []byte("instance"), Value: []byte("device-0001")}}, bc.metadata)
			var s cache.Snapshot
			var body []byte // reused, as the sender reuses a delivered request's
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				bt := c.Begin()
				for j := range 100 {
					v := float64(i + j)
					if bc.frac {
						v = float64(i+j) * 1.0137
					}
					bt.Set([]byte("app_requests_total"), []cache.Label{{Name: []byte("job"), Value: []byte("app")},
						{Name: []byte("path"), Value: fmt.Appendf(nil, "/api/v1/item/%d", j)}}, v)
				}
				bt.End()
				c.Snapshot(&s)
				body, _ = e.Encode(&s, 1700000000000+int64(i)*60000, body[:0])
			}
			b.ReportMetric(float64(len(body)), "compressed-bytes")
			b.ReportMetric(float64(len(e.prev)), "raw-bytes")
		})
	}
}
