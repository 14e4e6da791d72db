package expose

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/push-gateway/push-gateway/cache"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

type op struct {
	kind   string // set, type, help
	name   string
	value  float64
	t      cache.Type
	help   string
	labels []string
}

func apply(t testing.TB, c *cache.Cache, ops []op) {
	for _, o := range ops {
		var err error
		switch o.kind {
		case "set":
			var ls []cache.Label
			for i := 0; i < len(o.labels); i += 2 {
				ls = append(ls, cache.Label{Name: []byte(o.labels[i]), Value: []byte(o.labels[i+1])})
			}
			err = c.Set([]byte(o.name), ls, o.value)
		case "type":
			err = c.SetType([]byte(o.name), o.t)
		case "help":
			err = c.SetHelp([]byte(o.name), []byte(o.help))
		}
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
	}
}

func set(name string, v float64, labels ...string) op {
	return op{kind: "set", name: name, value: v, labels: labels}
}
func typ(name string, t cache.Type) op { return op{kind: "type", name: name, t: t} }
func help(name, h string) op           { return op{kind: "help", name: name, help: h} }

var goldenCases = map[string][]op{
	"empty": nil,
	"untyped": {
		set("zeta", 1), set("alpha", 2, "b", "2", "a", "1"), set("alpha", 3, "a", "1"),
	},
	"escapes": {
		help("escaped", "Help with \\ backslash and\nnewline and \"quotes\"."),
		typ("escaped", cache.Gauge),
		set("escaped", 1, "path", `C:\dir`, "quote", `say "hi"`, "nl", "line1\nline2", "utf8", "Grüße ✓"),
	},
	"values": {
		typ("values", cache.Gauge),
		set("values", math.NaN(), "v", "nan"), set("values", math.Inf(1), "v", "pinf"),
		set("values", math.Inf(-1), "v", "ninf"), set("values", 1e-300, "v", "tiny"),
		set("values", -0.5, "v", "neg"), set("values", 12345678912345, "v", "big"),
		set("values", 0, "v", "zero"), set("values", 1, "v", "one"),
	},
	"histogram": {
		typ("rpc_seconds", cache.Histogram), help("rpc_seconds", "RPC latency."),
		set("rpc_seconds_count", 7, "svc", "a"),
		set("rpc_seconds_bucket", 7, "le", "+Inf", "svc", "a"),
		set("rpc_seconds_bucket", 2, "le", "0.1", "svc", "a"),
		set("rpc_seconds_bucket", 5, "svc", "a", "le", "1"),
		set("rpc_seconds_sum", 3.25, "svc", "a"),
		set("rpc_seconds_bucket", 1, "le", "+Inf", "svc", "b"),
		set("rpc_seconds_sum", 0.5, "svc", "b"),
		set("rpc_seconds_count", 1, "svc", "b"),
	},
	"summary": {
		typ("sizes", cache.Summary),
		set("sizes", 10, "quantile", "0.99"), set("sizes", 5, "quantile", "0.5"),
		set("sizes_sum", 100), set("sizes_count", 12),
		set("sizes_bucket", 3), // not part of a summary: a family of its own
	},
	"retyped": {
		set("was_untyped", 1), typ("was_untyped", cache.Counter),
		typ("now_gauge", cache.Histogram), set("now_gauge_bucket", 1, "le", "1"),
		typ("now_gauge", cache.Gauge), set("now_gauge", 4),
	},
}

// TestGolden renders each case through the real handler and compares it with
// testdata/<case>.golden; every golden file must also parse with expfmt.
func TestGolden(t *testing.T) {
	for name, ops := range goldenCases {
		t.Run(name, func(t *testing.T) {
			c := cache.New(cache.Options{})
			apply(t, c, ops)
			h := New(Options{Cache: c})
			code, hdr, got := request(t, testServer(t, h.Serve), "GET", "/metrics")
			if ct := hdr.Get("Content-Type"); ct != ContentType || code != 200 {
				t.Fatalf("%d, Content-Type %q", code, ct)
			}
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("output differs from %s:\n%s", path, got)
			}
			p := expfmt.NewTextParser(model.LegacyValidation)
			if _, err := p.TextToMetricFamilies(bytes.NewReader(want)); err != nil {
				t.Fatalf("%s does not parse: %v", path, err)
			}
		})
	}
}

func TestSelfMetricsMergeSorted(t *testing.T) {
	c := cache.New(cache.Options{})
	apply(t, c, []op{set("a_first", 1), set("m_middle", 2), set("z_last", 3), set("m_self", 9)})
	self := func(name string) SelfFamily {
		return SelfFamily{Name: name, Append: func(dst []byte) []byte {
			dst = AppendHeader(dst, name, "Self.", cache.Gauge)
			return AppendSample(dst, name, "", "", 7)
		}}
	}
	h := New(Options{Cache: c, Self: []SelfFamily{self("zz_self"), self("m_self"), self("b_self")}})
	out := string(h.AppendMetrics(nil, new(cache.Snapshot)))
	var names []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "# TYPE ") {
			names = append(names, strings.Fields(l)[2])
		}
	}
	want := "a_first b_self m_middle m_self z_last zz_self"
	if strings.Join(names, " ") != want {
		t.Fatalf("families %v, want %s", names, want)
	}
	if strings.Contains(out, "m_self 9") {
		t.Fatal("a pushed family shadowed a self-metric")
	}
}

func TestReadOnly(t *testing.T) {
	h := New(Options{Cache: cache.New(cache.Options{}), TelemetryPath: "/custom"})
	addr := testServer(t, h.Serve)
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/custom", 200}, {"HEAD", "/custom", 200}, {"GET", "/metrics", 404},
		{"POST", "/custom", 405}, {"PUT", "/custom", 405}, {"DELETE", "/custom", 405},
		{"GET", "/-/healthy", 200}, {"GET", "/-/ready", 200}, {"GET", "/", 200}, {"GET", "/nope", 404},
	} {
		if code, _, _ := request(t, addr, tc.method, tc.path); code != tc.code {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, code, tc.code)
		}
	}
	if _, _, body := request(t, addr, "GET", "/"); !strings.Contains(string(body), `href="/custom"`) {
		t.Fatal("landing page does not link the telemetry path")
	}
}

// request sends one request to the server at addr.
func request(t *testing.T, addr, method, path string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

// go test -run '^$' -bench Scrape -benchtime 2s -count 6 -cpu 2 -benchmem ./expose/

// BenchmarkScrape renders the exposition of n series of about 80 bytes: the
// snapshot under the lock and the text after it, as one scrape does after
// one series was updated.
func BenchmarkScrape(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			c := cache.New(cache.Options{Budget: 4 << 20})
			c.SetType([]byte("edge_device_metric"), cache.Gauge)
			for i := 0; i < n; i++ {
				ls := []cache.Label{
					{Name: []byte("instance"), Value: []byte("router-01.lan")},
					{Name: []byte("job"), Value: []byte("pushgateway")},
					{Name: []byte("path"), Value: fmt.Appendf(nil, "/x/%05d", i)},
				}
				if err := c.Set([]byte("edge_device_metric"), ls, float64(i)); err != nil {
					b.Fatal(err)
				}
			}
			h := New(Options{Cache: c})
			var snap cache.Snapshot
			var buf []byte
			b.ReportAllocs()
			first := []cache.Label{
				{Name: []byte("instance"), Value: []byte("router-01.lan")},
				{Name: []byte("job"), Value: []byte("pushgateway")},
				{Name: []byte("path"), Value: []byte("/x/00000")},
			}
			v := 0.0
			for b.Loop() {
				// A push between two scrapes, as in life: the snapshot
				// copies the cache again (an unchanged cache is not).
				v++
				c.Set([]byte("edge_device_metric"), first, v)
				buf = h.AppendMetrics(buf[:0], &snap)
				if snap.Family(0).Len() != n {
					b.Fatal("lost series")
				}
			}
			b.ReportMetric(float64(len(buf))/float64(n), "B/series")
		})
	}
}

// TestLargeScrapeIsStreamed: an exposition past chunkSize is written in
// chunks, without Content-Length, and is still whole and valid.
func TestLargeScrapeIsStreamed(t *testing.T) {
	c := cache.New(cache.Options{Budget: 2 << 20})
	c.SetType([]byte("lat"), cache.Histogram)
	for i := 0; i < 3000; i++ {
		ls := []cache.Label{{Name: []byte("i"), Value: fmt.Appendf(nil, "%05d", i)}}
		c.Set([]byte("big"), ls, float64(i))
		c.Set([]byte("lat_bucket"), append(ls, cache.Label{Name: []byte("le"), Value: []byte("+Inf")}), 1)
	}
	resp, err := http.Get("http://" + testServer(t, New(Options{Cache: c}).Serve) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.ContentLength != -1 || len(body) < 4*chunkSize {
		t.Fatalf("Content-Length %d for %d bytes: not streamed", resp.ContentLength, len(body))
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if n, h := len(fams["big"].GetMetric()), len(fams["lat"].GetMetric()); n != 3000 || h != 3000 {
		t.Fatalf("%d and %d series of 3000", n, h)
	}
}
