package expose

import (
	"bytes"
	"fmt"
	"html"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/push-gateway/push-gateway/cache"
)

func labels(kv ...string) []cache.Label {
	var ls []cache.Label
	for i := 0; i < len(kv); i += 2 {
		ls = append(ls, cache.Label{Name: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	return ls
}

func push(t testing.TB, c *cache.Cache, group []cache.Label, name string, v float64) {
	t.Helper()
	err := c.Push(group, []cache.PushFamily{{
		Name: []byte(name), Type: cache.Gauge, Metrics: []cache.PushMetric{{Value: v}},
	}}, cache.ReplaceGroup)
	if err != nil {
		t.Fatal(err)
	}
}

// statusPage renders the page of h once, at now.
func statusPage(h *Handler, now time.Time) string {
	var s scrape
	return string(h.appendStatus(nil, &s, now))
}

// fakeClock is a cache clock that tests move by hand.
type fakeClock struct{ t time.Time }

func (f *fakeClock) now() time.Time { return f.t }

// TestStatusPage: the page shows the version, uptime, each group with its
// decoded labels, push and failure times and TTL left, the families, and
// the daemon's sections; a label value or text holding markup shows as
// text.
func TestStatusPage(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)}
	c := cache.New(cache.Options{Budget: 64 << 10, TTL: 10 * time.Minute, Now: clk.now})
	push(t, c, labels("job", "backup", "host", "nas<1>"), "backup_bytes", 42)
	clk.t = clk.t.Add(30 * time.Second)
	push(t, c, labels("job", `<script>alert("x")</script>`), "evil", 1)
	c.PushFailed(labels("job", "backup", "host", "nas<1>"))
	c.PushFailed(labels("job", "never-ok"))
	for i := 0; i < 3; i++ {
		c.Set([]byte("raw_total"), labels("i", fmt.Sprint(i)), 1)
	}
	clk.t = clk.t.Add(90 * time.Second)
	h := New(Options{
		Cache: c, Version: "(version=1.2.3 <b>)", Start: clk.t.Add(-(2*time.Hour + 3*time.Minute)),
		Status: []StatusSection{{Title: "Ingest <i>", Rows: func(t *StatusTable) {
			t.Uint("Lines applied", 12345)
			t.Int("Open connections", 3)
			t.Text("Last error", `dial "x": <refused> & gone`)
			t.Bytes("Queue", 3<<20/2)
			t.Time("Last success", clk.t.Add(-5*time.Second))
			t.Time("Never", time.Time{})
		}}},
	})
	page := statusPage(h, clk.t)

	for _, want := range []string{
		"(version=1.2.3 &lt;b&gt;)",
		`up <span id="uptime">2h03m</span>`,
		`<a href="/metrics">/metrics</a>`,
		// Group rows: labels decoded and escaped, last push, last failure,
		// TTL left (10 min after the latest push or failure).
		"<tr><td><code>host=&#34;nas&lt;1&gt;&#34;, job=&#34;backup&#34;</code></td>" +
			"<td>2026-12-07 05:00:00 UTC (2m00s ago)</td>" +
			"<td>2026-12-07 05:00:30 UTC (1m30s ago)</td><td>8m30s</td></tr>",
		"<tr><td><code>job=&#34;&lt;script&gt;alert(\\&#34;x\\&#34;)&lt;/script&gt;&#34;</code></td>" +
			"<td>2026-12-07 05:00:30 UTC (1m30s ago)</td><td>never</td><td>8m30s</td></tr>",
		"<tr><td><code>job=&#34;never-ok&#34;</code></td><td>never</td>" +
			"<td>2026-12-07 05:00:30 UTC (1m30s ago)</td><td>8m30s</td></tr>",
		// Families, largest first, push_time_seconds counting 3 groups.
		`<tr><td><code>push_time_seconds</code></td><td>gauge</td><td class="n">3</td></tr>` + "\n" +
			`<tr><td><code>raw_total</code></td><td>untyped</td><td class="n">3</td></tr>`,
		`<tr><th>Series</th><td class="n">`,
		// The daemon's section.
		"<h2>Ingest &lt;i&gt;</h2>",
		`<tr><th>Lines applied</th><td class="n">12345</td></tr>`,
		`<tr><th>Open connections</th><td class="n">3</td></tr>`,
		"<tr><th>Last error</th><td>dial &#34;x&#34;: &lt;refused&gt; &amp; gone</td></tr>",
		`<tr><th>Queue</th><td class="n">1572864 B (1.5 MiB)</td></tr>`,
		"<tr><th>Last success</th><td>2026-12-07 05:01:55 UTC (5s ago)</td></tr>",
		"<tr><th>Never</th><td>never</td></tr>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	// The only markup is the page's own: no element from a value.
	tags := regexp.MustCompile(`<(/?[a-zA-Z0-9!]+)`).FindAllStringSubmatch(page, -1)
	allowed := "!DOCTYPE html /html head /head meta title /title style /style body /body h1 /h1 h2 /h2 " +
		"p /p a /a span /span div /div table /table tr /tr th /th td /td code /code"
	for _, m := range tags {
		if !strings.Contains(" "+allowed+" ", " "+m[1]+" ") {
			t.Errorf("page has a <%s> element", m[1])
		}
	}
	if t.Failed() {
		t.Log(page)
	}
}

// TestStatusNoGroups: without pushes through the API the page says so,
// and a raw-stream series named push_time_seconds is not a group.
func TestStatusNoGroups(t *testing.T) {
	c := cache.New(cache.Options{})
	c.Set([]byte(cache.PushTimeName), labels("job", "raw"), 1)
	page := statusPage(New(Options{Cache: c}), time.Now())
	if !strings.Contains(page, "<h2>Groups</h2>\n<p>None") || strings.Contains(page, `id="groups"`) {
		t.Errorf("a raw series shown as a group:\n%s", page)
	}
	if strings.Contains(page, "TTL left") {
		t.Error("TTL column without groups")
	}
}

// TestStatusTopFamilies: the 50 families with the most series, largest
// first (name order among equals), and a count of the others and of their
// series.
func TestStatusTopFamilies(t *testing.T) {
	c := cache.New(cache.Options{Budget: 1 << 20})
	for f := 0; f < 60; f++ {
		for i := 0; i <= f%30; i++ { // f and f+30 have the same count
			c.Set(fmt.Appendf(nil, "fam_%02d", f), labels("i", fmt.Sprint(i)), 1)
		}
	}
	c.SetType([]byte("lat"), cache.Histogram)
	c.Set([]byte("lat_bucket"), labels("le", "1"), 1)
	c.Set([]byte("lat_bucket"), labels("le", "+Inf"), 1)
	c.Set([]byte("lat_sum"), nil, 1)
	c.Set([]byte("lat_count"), nil, 1) // 4 exposed series in one item
	page := statusPage(New(Options{Cache: c}), time.Now())
	rows := regexp.MustCompile(`<tr><td><code>([a-z_0-9]+)</code></td><td>[a-z]+</td><td class="n">(\d+)</td></tr>`).FindAllStringSubmatch(page, -1)
	var got []string
	for _, r := range rows {
		got = append(got, r[1]+"="+r[2])
	}
	var want []string
	for n := 30; len(want) < 50; n-- {
		want = append(want, fmt.Sprintf("fam_%02d=%d", n-1, n), fmt.Sprintf("fam_%02d=%d", n+29, n))
		if n == 4 {
			want = append(want, "lat=4")
		}
	}
	want = want[:50]
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("families listed:\n%v\nwant\n%v", got, want)
	}
	// Left out: fam_01, fam_31 (2 series each), fam_00, fam_30 (1 each),
	// and one of the families with 4 series... counted exactly:
	listed := 0
	for _, r := range rows {
		var n int
		fmt.Sscan(r[2], &n)
		listed += n
	}
	total := 2*(30*31/2) + 4
	wantRest := fmt.Sprintf(`and 11 more families with %d series`, total-listed)
	if !strings.Contains(page, wantRest) {
		t.Errorf("page lacks %q", wantRest)
	}
}

// TestStatusBarWidth: the bar's width is the share of the budget in use,
// to a tenth of a percent, at most 100 %; past 90 % it turns red.
func TestStatusBarWidth(t *testing.T) {
	for _, tc := range []struct {
		used, budget int
		width        string
		hi           bool
	}{
		{0, 10240, "0.0", false},
		{4352, 10240, "42.5", false},
		{10239, 10240, "99.9", true},
		{9216, 10240, "90.0", true},
		{9215, 10240, "89.9", false},
		{10240, 10240, "100.0", true},
		{20000, 10240, "100.0", true}, // cannot be, but stays in the box
	} {
		b := string(appendBudget(nil, cache.Stats{Bytes: tc.used, Budget: tc.budget}))
		want := `<div style="width:` + tc.width + `%">`
		if !strings.Contains(b, want) {
			t.Errorf("%d of %d: want %s in\n%s", tc.used, tc.budget, want, b)
		}
		if hi := strings.Contains(b, `class="bar hi"`); hi != tc.hi {
			t.Errorf("%d of %d: red %v, want %v", tc.used, tc.budget, hi, tc.hi)
		}
	}
	b := string(appendBudget(nil, cache.Stats{Bytes: 4352, Budget: 10240}))
	if want := "<p>Budget: 4352 B (4.2 KiB) of 10240 B (10.0 KiB) in use: 42.5 %</p>"; !strings.Contains(b, want) {
		t.Errorf("want %s in\n%s", want, b)
	}
}

// TestStatusPageBounded: however many and however long the groups and
// families, the page stays within statusPageMax, which the scrape memory
// budget reserves for it; the groups past statusGroups are counted.
func TestStatusPageBounded(t *testing.T) {
	c := cache.New(cache.Options{Budget: 16 << 20})
	long := strings.Repeat("<é>", 3000)
	for g := 0; g < 150; g++ {
		var group []cache.Label
		for l := 0; l < 20; l++ {
			group = append(group, cache.Label{Name: fmt.Appendf(nil, "l%02d", l), Value: fmt.Appendf(nil, "%03d%s", g, long[:900])})
		}
		push(t, c, group, "x", 1)
	}
	for f := 0; f < 80; f++ {
		c.Set(fmt.Appendf(nil, "f%02d_%s", f, strings.Repeat("n", 1000)), nil, 1)
	}
	h := New(Options{Cache: c, Version: long, Status: []StatusSection{{Title: long, Rows: func(t *StatusTable) {
		t.Text(long, long)
	}}}})
	page := statusPage(h, time.Now())
	if len(page) > statusPageMax {
		t.Errorf("page of %d bytes, more than statusPageMax %d", len(page), statusPageMax)
	}
	if !strings.Contains(page, "and 50 more groups") {
		t.Error("the groups past 100 are not counted")
	}
	if n := strings.Count(page, "<tr><td><code>l00="); n != statusGroups {
		t.Errorf("%d groups listed, want %d", n, statusGroups)
	}
	if !strings.Contains(page, "é…") && !strings.Contains(page, "&gt;…") && !strings.Contains(page, "&lt;…") {
		t.Error("a long text is not cut with an ellipsis")
	}
	t.Logf("worst page: %d bytes", len(page))
}

// TestAppendHTMLCutsOnCharacters: a cut never splits a UTF-8 character.
func TestAppendHTMLCutsOnCharacters(t *testing.T) {
	for pad := 0; pad < 4; pad++ {
		s := strings.Repeat("x", pad) + strings.Repeat("✓", statusCut)
		got := string(appendHTML(nil, s, false))
		if !strings.HasSuffix(got, "…") || !utf8Valid(got) || len(got) > statusCut+len("…") {
			t.Errorf("pad %d: %q", pad, got)
		}
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// TestStatusHeadAndRefusal: HEAD / has no body; GET / takes its share of
// the scrape memory budget like a scrape, and gets 503 past it.
func TestStatusHeadAndRefusal(t *testing.T) {
	c := cache.New(cache.Options{})
	h := New(Options{Cache: c, ScrapeMemory: 1})
	addr := testServer(t, h.Serve)
	code, hdr, body := request(t, addr, "HEAD", "/")
	if code != 200 || len(body) != 0 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Errorf("HEAD /: %d %q %q", code, hdr.Get("Content-Type"), body)
	}
	if code, _, body := request(t, addr, "GET", "/"); code != 200 || !strings.Contains(string(body), "</html>") {
		t.Errorf("GET / alone (one always goes ahead): %d", code)
	}
	// A scrape being served; the GET before may still be releasing its share.
	holder := new(Response)
	for deadline := time.Now().Add(10 * time.Second); h.admit(holder, 1) != ""; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first GET / never released its share")
		}
	}
	code, _, _ = request(t, addr, "GET", "/")
	h.leave(holder, 1)
	if code != 503 || h.o.Refused.Load() != 1 {
		t.Errorf("GET / over the scrape memory budget: %d, refused %d; want 503, 1", code, h.o.Refused.Load())
	}
}

// TestStatusAllocatesLittle: once the pooled buffers have grown, a page
// allocates nothing more, whatever the cache holds.
func TestStatusAllocatesLittle(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts mean nothing under the race detector")
	}
	h, c := statusBenchHandler(t, 2000)
	var s scrape
	now := time.Now()
	i, first := 0.0, labels("path", "/x/00000")
	render := func() {
		i++
		c.Set([]byte("edge_device_metric_00"), first, i)
		s.buf = h.appendStatus(s.buf[:0], &s, now)
	}
	render()
	if n := testing.AllocsPerRun(20, render); n != 0 {
		t.Errorf("%v allocations per page", n)
	}
}

// statusBenchHandler is a cache of n series of ~80 bytes in 4 families,
// and 100 pushed groups, with the daemon's sections.
func statusBenchHandler(t testing.TB, n int) (*Handler, *cache.Cache) {
	c := cache.New(cache.Options{Budget: 8 << 20, TTL: time.Hour})
	for i := 0; i < n; i++ {
		ls := labels("instance", "router-01.lan", "job", "pushgateway", "path", fmt.Sprintf("/x/%05d", i))
		if err := c.Set(fmt.Appendf(nil, "edge_device_metric_%02d", i%4), ls, float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	for g := 0; g < 100; g++ {
		push(t, c, labels("job", "batch", "instance", fmt.Sprintf("host-%03d", g)), "batch_done", 1)
	}
	h := New(Options{Cache: c, Version: "(version=0.1.0, branch=main, revision=abc)", Status: []StatusSection{
		{Title: "Ingest", Rows: func(t *StatusTable) {
			t.Uint("Lines applied", 123456)
			t.Int("Open connections", 3)
			for _, r := range []string{"parse", "type_conflict", "too_large"} {
				t.Uint(r, 7)
			}
		}},
		{Title: "Remote write", Rows: func(t *StatusTable) {
			t.Time("Last success", time.Now())
			t.Bytes("Queue", 12345)
			t.Text("Last error", "none")
		}},
	}})
	return h, c
}

// go test -run '^$' -bench StatusPage -benchtime 2s -count 3 -benchmem ./expose/

// BenchmarkStatusPage renders the page of a cache of n series and 100
// groups, one series updated before each page so that the snapshot copies
// the cache, as a scrape benchmark does.
func BenchmarkStatusPage(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			h, c := statusBenchHandler(b, n)
			var s scrape
			v, first := 0.0, labels("path", "/x/00000")
			b.ReportAllocs()
			for b.Loop() {
				v++
				c.Set([]byte("edge_device_metric_00"), first, v)
				s.buf = h.appendStatus(s.buf[:0], &s, time.Now())
				if !bytes.HasSuffix(s.buf, []byte("</html>\n")) {
					b.Fatal("page cut short")
				}
			}
			b.ReportMetric(float64(len(s.buf)), "B/page")
		})
	}
}

// FuzzAppendHTML: whatever the bytes, the escaped text holds no markup
// character, every & starts an entity, and unescaped it gives back the
// text (label values: as the text format escapes them), cut or whole.
func FuzzAppendHTML(f *testing.F) {
	for _, s := range []string{"", "plain", `<script>alert("x")</script>`, "a&b;'c'", "line\nbreak \\ \"q\"",
		"&amp;", strings.Repeat("✓", 100), "\xff\xfe<"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, label bool) {
		out := string(appendHTML(nil, s, label))
		if strings.ContainsAny(out, `<>"'`) {
			t.Fatalf("%q -> %q holds markup", s, out)
		}
		for i := strings.IndexByte(out, '&'); i >= 0; i = next(out, i) {
			if !hasEntityAt(out, i) {
				t.Fatalf("%q -> %q: a bare & at %d", s, out, i)
			}
		}
		want := s
		if label {
			want = string(appendEscaped(nil, s, true))
		}
		got := html.UnescapeString(out)
		if len(s) > statusCut {
			got = strings.TrimSuffix(got, "…")
			want = string(appendEscapedPrefix(s, len(s)-statusCut, label))
			if !strings.HasPrefix(want, got) || len(got) < statusCut-utf8.UTFMax+1 {
				t.Fatalf("%q cut -> %q, not a prefix of %q", s, got, want)
			}
			return
		}
		if got != want {
			t.Fatalf("%q -> %q -> %q, want %q", s, out, got, want)
		}
	})
}

func next(s string, i int) int {
	j := strings.IndexByte(s[i+1:], '&')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

func hasEntityAt(s string, i int) bool {
	for _, e := range []string{"&amp;", "&lt;", "&gt;", "&#34;", "&#39;"} {
		if strings.HasPrefix(s[i:], e) {
			return true
		}
	}
	return false
}

// appendEscapedPrefix is s without its last drop bytes, escaped like a
// label value when label is set.
func appendEscapedPrefix(s string, drop int, label bool) []byte {
	s = s[:len(s)-drop]
	if label {
		return appendEscaped(nil, s, true)
	}
	return []byte(s)
}
