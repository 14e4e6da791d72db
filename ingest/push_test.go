package ingest

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"

	"github.com/push-gateway/push-gateway/cache"
)

func groupString(g []cache.Label) string {
	var s []string
	for _, l := range g {
		s = append(s, string(l.Name)+"="+string(l.Value))
	}
	return strings.Join(s, ",")
}

func TestParseGroupingKey(t *testing.T) {
	for path, want := range map[string]string{
		"job/a":                      "job=a",
		"job/a/instance/b":           "job=a,instance=b",
		"job@base64/L3Zhci90bXA":     "job=/var/tmp",
		"job@base64/L3Zhci90bXA=":    "job=/var/tmp", // padding optional
		"job/a/path@base64/L2EvYi9j": "job=a,path=/a/b/c",
		"job/a/instance@base64/=":    "job=a,instance=",
		"job/a/instance/":            "job=a,instance=",
		"job/a/b/c/d":                "ERR odd number",
		"job/":                       "ERR job name is required",
		"job@base64/=":               "ERR job name is required",
		"instance/x/job/a":           "ERR job name is required",
		"job/a/__x/b":                "ERR improper label name",
		"job/a/1x/b":                 "ERR improper label name",
		"job/a/x@base64/!!":          "ERR invalid base64",
		"job/a/x/1/x/2":              "ERR label \"x\" twice",
		"job/a/utf@base64/_w":        "ERR label value of utf is not valid UTF-8",
	} {
		g, err := ParseGroupingKey(path)
		got := groupString(g)
		if err != nil {
			got = "ERR " + err.Error()
		}
		if !strings.HasPrefix(got, want) {
			t.Errorf("%s: got %q, want %q", path, got, want)
		}
	}
}

// familiesString renders decoded families compactly.
func familiesString(fs []cache.PushFamily) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "%s %s", f.Name, f.Type)
		if f.HasHelp {
			fmt.Fprintf(&b, " %q", f.Help)
		}
		for _, m := range f.Metrics {
			fmt.Fprintf(&b, " {%s}", groupString(m.Labels))
			if f.Type.Compound() {
				for _, bk := range m.Buckets {
					fmt.Fprintf(&b, "%g:%g,", bk.Bound, bk.Value)
				}
				fmt.Fprintf(&b, "sum=%g,count=%g", m.Sum, m.Count)
			} else {
				fmt.Fprintf(&b, "%g", m.Value)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestDecodeText(t *testing.T) {
	for in, want := range map[string]string{
		"a 1\nb{x=\"y\"} 2": "a untyped {}1\nb untyped {x=y}2\n",
		"# TYPE h histogram\n# HELP h Lat.\nh_bucket{le=\"1\"} 2\nh_sum 3\nh_count 4\nh_bucket{le=\"0.5\"} 1\n": "h histogram \"Lat.\" {}0.5:1,1:2,+Inf:4,sum=3,count=4\n",
		"# TYPE s summary\ns{quantile=\"0.9\",k=\"v\"} 2\ns_count{k=\"v\"} 5\n":                                 "s summary {k=v}0.9:2,sum=0,count=5\n",
		"h_bucket{le=\"1\"} 1\n":                                             "h_bucket untyped {le=1}1\n", // no TYPE: plain
		"# TYPE s summary\ns_bucket 1\n":                                     "s_bucket untyped {}1\n",     // s has no samples: dropped
		"a 1 1700000000000":                                                  "ERR must not have timestamps",
		"# TYPE a gauge\n# TYPE a gauge\n":                                   "ERR second TYPE",
		"a 1\n# TYPE a gauge\n":                                              "ERR TYPE reported after samples",
		"# HELP a x\n# HELP a y\n":                                           "ERR second HELP",
		"# TYPE h histogram\nh 1\n":                                          "ERR histogram h sample without",
		"# TYPE h histogram\nh_bucket 1\n":                                   "ERR without le",
		"# TYPE h histogram\nh_bucket{le=\"x\"} 1\n":                         "ERR invalid bound",
		"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"1.0\"} 1\n": "ERR duplicate bucket",
		"a{b=\"\xff\"} 1":                                                    "ERR text format parsing error in line 1",
		"ok 1\nbad line\n":                                                   "ERR text format parsing error in line 2",
	} {
		fs, err := DecodeText([]byte(in))
		got := familiesString(fs)
		if err != nil {
			got = "ERR " + err.Error()
		}
		if w, isErr := strings.CutPrefix(want, "ERR "); isErr && (err == nil || !strings.Contains(got, w)) || !isErr && got != want {
			t.Errorf("%q:\ngot  %q\nwant %q", in, got, want)
		}
	}
}

// encodeProto encodes families as client_golang's push package does.
func encodeProto(t *testing.T, mfs ...*dto.MetricFamily) []byte {
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeProtoDelim))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func lp(n, v string) *dto.LabelPair {
	return &dto.LabelPair{Name: proto.String(n), Value: proto.String(v)}
}

func TestDecodeProtobuf(t *testing.T) {
	body := encodeProto(t,
		&dto.MetricFamily{Name: proto.String("c_total"), Help: proto.String("C."), Type: dto.MetricType_COUNTER.Enum(),
			Metric: []*dto.Metric{{Label: []*dto.LabelPair{lp("a", "1")}, Counter: &dto.Counter{Value: proto.Float64(3)}}}},
		&dto.MetricFamily{Name: proto.String("g"), Type: dto.MetricType_GAUGE.Enum(),
			Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(math.Inf(-1))}}}},
		&dto.MetricFamily{Name: proto.String("h"), Type: dto.MetricType_HISTOGRAM.Enum(),
			Metric: []*dto.Metric{{Histogram: &dto.Histogram{SampleCount: proto.Uint64(5), SampleSum: proto.Float64(2.5),
				Bucket: []*dto.Bucket{{UpperBound: proto.Float64(0.1), CumulativeCount: proto.Uint64(1)}, {UpperBound: proto.Float64(1), CumulativeCount: proto.Uint64(4)}}}}}},
		&dto.MetricFamily{Name: proto.String("s"), Type: dto.MetricType_SUMMARY.Enum(),
			Metric: []*dto.Metric{{Summary: &dto.Summary{SampleCount: proto.Uint64(2), SampleSum: proto.Float64(7),
				Quantile: []*dto.Quantile{{Quantile: proto.Float64(0.5), Value: proto.Float64(3)}}}}}},
		&dto.MetricFamily{Name: proto.String("u"), Type: dto.MetricType_UNTYPED.Enum(),
			Metric: []*dto.Metric{{Untyped: &dto.Untyped{Value: proto.Float64(1)}}}},
	)
	fs, err := DecodeProtobuf(body)
	if err != nil {
		t.Fatal(err)
	}
	want := "c_total counter \"C.\" {a=1}3\ng gauge {}-Inf\nh histogram {}0.1:1,1:4,+Inf:5,sum=2.5,count=5\ns summary {}0.5:3,sum=7,count=2\nu untyped {}1\n"
	if got := familiesString(fs); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	for name, mf := range map[string]*dto.MetricFamily{
		"timestamp": {Name: proto.String("g"), Type: dto.MetricType_GAUGE.Enum(),
			Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(1)}, TimestampMs: proto.Int64(1)}}},
		"bad label": {Name: proto.String("g"), Metric: []*dto.Metric{{Label: []*dto.LabelPair{lp("__x", "1")}, Counter: &dto.Counter{Value: proto.Float64(1)}}}},
		"bad utf8":  {Name: proto.String("g"), Metric: []*dto.Metric{{Label: []*dto.LabelPair{lp("x", "\xff")}, Counter: &dto.Counter{Value: proto.Float64(1)}}}},
	} {
		if _, err := DecodeProtobuf(encodeProto(t, mf)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// expfmt's encoder escapes a bad name; a client could send one as is.
	if _, err := DecodeProtobuf([]byte("\a\n\x03a-b\x18\x01")); err == nil {
		t.Error("bad name: no error")
	}
	if _, err := DecodeProtobuf(body[:len(body)-3]); err == nil {
		t.Error("truncated body: no error")
	}
}

// handle sends h a request for target, a path with an optional query.
func handle(t *testing.T, h *PushHandler, method, target, body string) int {
	t.Helper()
	path, query, _ := strings.Cut(target, "?")
	path, err := url.PathUnescape(path)
	if err != nil {
		t.Fatal(err)
	}
	res := h.Handle(&PushRequest{Method: method, Path: path, RawQuery: query,
		ContentLength: int64(len(body)), Body: strings.NewReader(body)})
	if (res.Code >= 400) != (res.Message != "") || (res.Code == 405) != (res.Allow != "") {
		t.Errorf("%s %s: %+v: an error without a message, or a 405 without Allow", method, target, res)
	}
	return res.Code
}

func TestPushHandler(t *testing.T) {
	c := cache.New(cache.Options{})
	h := &PushHandler{Cache: c, MaxBodySize: 64, Stats: new(PushStats)}
	do := func(method, path, body string) int { return handle(t, h, method, path, body) }
	for _, tc := range []struct {
		method, path, body string
		code               int
	}{
		{"PUT", "/metrics/job/a", "x 1\n", 200},
		{"POST", "/metrics/job/a/i/1", "y 1\n", 200},
		{"POST", "/metrics/job/a", "bad", 400},
		{"POST", "/metrics/job/a", strings.Repeat("z 1\n", 20), 413},
		{"DELETE", "/metrics/job/a", "", 202},
		{"DELETE", "/metrics/job/never", "", 202},
		{"PATCH", "/metrics/job/a", "", 400}, // PATCH is the increment API: "job/a" is no metric name
		{"OPTIONS", "/metrics/job/a", "", 405},
		{"PUT", "/elsewhere", "x 1", 404},
		{"PUT", "/metrics/job/a/b", "x 1", 400},
	} {
		if got := do(tc.method, tc.path, tc.body); got != tc.code {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, got, tc.code)
		}
	}
	var counts []string
	h.Stats.Each(func(m, c string, n uint64) { counts = append(counts, fmt.Sprintf("%s/%s=%d", m, c, n)) })
	if got := strings.Join(counts, " "); got != "DELETE/202=2 PATCH/400=1 POST/200=1 POST/400=1 POST/413=1 PUT/200=1 PUT/400=1 PUT/404=1 other/405=1" {
		t.Fatalf("counts %s", got)
	}
}

func TestPatchAndAggregate(t *testing.T) {
	c := cache.New(cache.Options{})
	h := &PushHandler{Cache: c}
	do := func(method, path, body string) int { return handle(t, h, method, path, body) }
	for _, tc := range []struct {
		method, path, body string
		code               int
	}{
		{"PATCH", "/metrics/jobs_total?queue=a", "", 202},
		{"PATCH", "/metrics/jobs_total?queue=a", "2.5\n", 202},
		{"PATCH", "/metrics/jobs_total?queue=a&clearmode=aggregate", "", 202},
		{"PATCH", "/metrics/jobs_total?queue=b", "", 202},
		{"PATCH", "/metrics/jobs_total?queue=a", "-1", 400},
		{"PATCH", "/metrics/jobs_total?queue=a", "0x10", 400},
		{"PATCH", "/metrics/jobs_total?queue=a", "NaN", 400},
		{"PATCH", "/metrics/jobs_total?queue=a&queue=b", "", 400},
		{"PATCH", "/metrics/jobs_total?__q=a", "", 400},
		{"PATCH", "/metrics/bad-name", "", 400},
		{"PATCH", "/metrics/jobs_total?clearmode=sometimes", "", 400},
		{"PUT", "/metrics/job/g", "# TYPE temp gauge\ntemp 1\n", 200},
		{"PATCH", "/metrics/temp", "", 400}, // a gauge: no adding
		{"POST", "/aggregate/metrics/job/cron", "# TYPE runs_total counter\nruns_total 1\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n", 200},
		{"PUT", "/aggregate/metrics/job/cron", "# TYPE runs_total counter\nruns_total 2\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 0.5\nh_count 1\n", 200},
		{"POST", "/aggregate/metrics/job/cron", "# TYPE h histogram\nh_bucket{le=\"5\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 0.5\nh_count 1\n", 400},
		{"POST", "/aggregate/metrics/job/cron", "# TYPE runs_total gauge\nruns_total 1\n", 400},
		{"DELETE", "/aggregate/metrics/job/gone", "", 202},
	} {
		if got := do(tc.method, tc.path, tc.body); got != tc.code {
			t.Errorf("%s %s %q: %d, want %d", tc.method, tc.path, tc.body, got, tc.code)
		}
	}
	var s cache.Snapshot
	c.Snapshot(&s)
	got := map[string]string{}
	for i := 0; i < s.Len(); i++ {
		f := s.Family(i)
		for j := 0; j < f.Len(); j++ {
			ser, _ := f.Series(j)
			var ls []string
			for l := ser.Labels(); ; {
				n, v, rest, ok := cache.NextLabel(l)
				if !ok {
					break
				}
				ls = append(ls, string(n)+"="+string(v))
				l = rest
			}
			v := fmt.Sprint(ser.Value())
			if f.Type == cache.Histogram {
				sum, _ := ser.Sum()
				_, inf := ser.Bucket(ser.Buckets() - 1)
				v = fmt.Sprintf("sum=%g inf=%g", sum, inf)
			}
			got[string(f.Name)+"{"+strings.Join(ls, ",")+"}"] = v
		}
	}
	for k, v := range map[string]string{
		"jobs_total{queue=a}": "4.5", "jobs_total{queue=b}": "1",
		"runs_total{job=cron}": "3", "h{job=cron}": "sum=3.5 inf=3",
	} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
}

// TestPushContentEncoding: a body is gzip or identity; any other
// Content-Encoding, a list included, is refused with 415 rather than read
// as plain text (issue 12, point 5).
func TestPushContentEncoding(t *testing.T) {
	h := &PushHandler{Cache: cache.New(cache.Options{})}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("x 1\n"))
	zw.Close()
	for _, tc := range []struct {
		encoding, body string
		code           int
	}{
		{"", "x 1\n", 200},
		{"identity", "x 1\n", 200},
		{"IDENTITY", "x 1\n", 200},
		{"gzip", gz.String(), 200},
		{"GZip", gz.String(), 200},
		{"gzip", "x 1\n", 400}, // not gzip data
		{"gzip, gzip", gz.String(), 415},
		{"identity, gzip", gz.String(), 415},
		{"x-gzip", gz.String(), 415},
		{"br", "x 1\n", 415},
		{"deflate", "x 1\n", 415},
	} {
		res := h.Handle(&PushRequest{Method: "PUT", Path: "/metrics/job/a", ContentEncoding: tc.encoding,
			ContentLength: int64(len(tc.body)), Body: strings.NewReader(tc.body)})
		if res.Code != tc.code || (res.Code == 415) != strings.Contains(res.Message, "Content-Encoding") {
			t.Errorf("Content-Encoding %q: %d %q, want %d", tc.encoding, res.Code, res.Message, tc.code)
		}
	}
}

// stalledBody is a push body that sends its first bytes, then nothing: what
// a client that stalls mid-body looks like to the handler.
type stalledBody struct {
	pr *io.PipeReader
	pw *io.PipeWriter
}

// stall starts a PUT of a body announced as length bytes of which the
// handler gets sent; it returns when the handler has read them and waits
// for more. The result comes on res once the body ends with err (see end).
func stall(t *testing.T, h *PushHandler, job string, length int64, sent []byte, res chan<- PushResponse) *stalledBody {
	t.Helper()
	pr, pw := io.Pipe()
	go func() {
		res <- h.Handle(&PushRequest{Method: "PUT", Path: "/metrics/job/" + job, ContentLength: length, Body: pr})
	}()
	if _, err := pw.Write(sent); err != nil {
		t.Fatal(err)
	}
	return &stalledBody{pr, pw}
}

// end ends the body with err, as the connection's read would.
func (b *stalledBody) end(err error) { b.pw.CloseWithError(err) }

// Issue 12, point 3: a body is read before it takes a decoding turn, so
// clients that stall mid-body hold up only themselves; one that times out
// gets 408 and changes nothing.
func TestStalledBodiesHoldOnlyThemselves(t *testing.T) {
	c := cache.New(cache.Options{Budget: 64 << 10})
	h := &PushHandler{Cache: c, Stats: new(PushStats)}
	res := make(chan PushResponse, 2*maxDecoding)
	var stalled []*stalledBody
	for range 2 * maxDecoding {
		stalled = append(stalled, stall(t, h, "stall", 100, []byte("s"), res))
	}
	done := make(chan PushResponse, 1)
	go func() {
		done <- h.Handle(&PushRequest{Method: "PUT", Path: "/metrics/job/ok", ContentLength: 5, Body: strings.NewReader("ok 1\n")})
	}()
	select {
	case r := <-done:
		if r.Code != 200 {
			t.Fatalf("a push next to %d stalled ones: %+v", len(stalled), r)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("a push next to %d stalled ones got no answer in 10s", len(stalled))
	}
	for _, b := range stalled {
		b.end(os.ErrDeadlineExceeded)
	}
	for range stalled {
		if r := <-res; r.Code != 408 {
			t.Errorf("a body that timed out: %+v, want 408", r)
		}
	}
	if got := values(c); !strings.Contains(got, "ok job=ok 1\n") || strings.Contains(got, "stall") {
		t.Errorf("cache after the pushes:\n%s", got)
	}
}

// Bodies being read hold at most bodiesInBudget × MaxBodySize beyond their
// first bodyFree bytes; a body that finds no room gets 503 after
// BudgetWait, while small bodies go on; the room is given back.
func TestBodyBudget(t *testing.T) {
	const limit = 16 << 10
	c := cache.New(cache.Options{Budget: 64 << 10})
	h := &PushHandler{Cache: c, MaxBodySize: limit, BudgetWait: 100 * time.Millisecond, Stats: new(PushStats)}
	res := make(chan PushResponse, 16)
	// Each holds limit-bodyFree of the budget: 12 KiB of 64 KiB.
	var stalled []*stalledBody
	for range 5 {
		stalled = append(stalled, stall(t, h, "big", limit, bytes.Repeat([]byte("#"), limit-bodyFree+1), res))
	}
	// This one finds 4 KiB for its second 4 KiB, not 8 KiB for the next.
	start := time.Now()
	over := stall(t, h, "over", limit, bytes.Repeat([]byte("#"), 2*bodyFree), res)
	if r := <-res; r.Code != 503 {
		t.Fatalf("a body over the budget: %+v, want 503", r)
	}
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Errorf("a body over the budget was refused after %v, before BudgetWait", took)
	}
	over.end(io.ErrClosedPipe)
	if code := handle(t, h, "PUT", "/metrics/job/small", "small 1\n"); code != 200 {
		t.Errorf("a small body while the budget is taken: %d", code)
	}
	h.reading.mu.Lock()
	free := h.reading.free
	h.reading.mu.Unlock()
	if want := int64(bodiesInBudget*limit - 5*(limit-bodyFree)); free != want {
		t.Errorf("budget free while 5 bodies are read: %d, want %d", free, want)
	}
	for _, b := range stalled {
		b.end(io.ErrUnexpectedEOF)
	}
	for range stalled {
		if r := <-res; r.Code != 400 {
			t.Errorf("a body cut short: %+v, want 400", r)
		}
	}
	h.reading.mu.Lock()
	free = h.reading.free
	h.reading.mu.Unlock()
	if free != bodiesInBudget*limit {
		t.Errorf("budget free after all bodies: %d, want %d", free, bodiesInBudget*limit)
	}
	// A body of the whole limit still fits, in a budget given back.
	body := "# " + strings.Repeat("x", limit-len("# \nbig 1\n")) + "\nbig 1\n"
	if code := handle(t, h, "PUT", "/metrics/job/big", body); code != 200 {
		t.Errorf("a body of --ingest.max-body-size: %d", code)
	}
	if code := handle(t, h, "PUT", "/metrics/job/big", body+"x"); code != 413 {
		t.Errorf("a body over --ingest.max-body-size: %d", code)
	}
}

// pausingReader sends its first pause bytes, waits wait, then the rest: a
// client whose body arrives in two parts.
type pausingReader struct {
	data  []byte
	pause int
	wait  time.Duration
}

func (r *pausingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	if r.pause == 0 && r.wait > 0 {
		time.Sleep(r.wait)
		r.wait = 0
	}
	n := min(len(p), len(r.data))
	if r.wait > 0 {
		n = min(n, r.pause)
		r.pause -= n
	}
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// Review A, point 1: bodies that each hold part of the budget and wait for
// more must not wait for each other. Eight bodies of about MaxBodySize at
// once, each pausing once it holds a quarter of it (8 × 124 KiB of a
// 1 MiB budget, each needing 128 KiB more), used to wait BudgetWait and
// then half got 503; all go through now.
func TestBodyBudgetNoHoldAndWait(t *testing.T) {
	const limit = 256 << 10
	h := &PushHandler{Cache: cache.New(cache.Options{Budget: 8 << 20}), MaxBodySize: limit, BudgetWait: 10 * time.Second}
	var text strings.Builder
	for text.Len() < limit-64 {
		fmt.Fprintf(&text, "x{i=\"%d\"} 1\n", text.Len())
	}
	body := []byte(text.String())
	const n = 8
	codes := make(chan int, n)
	start := time.Now()
	for i := range n {
		go func() {
			r := &pausingReader{data: body, pause: limit/4 + 1, wait: 300 * time.Millisecond}
			res := h.Handle(&PushRequest{Method: "PUT", Path: fmt.Sprintf("/metrics/job/j%d", i), ContentLength: int64(len(body)), Body: r})
			codes <- res.Code
		}()
	}
	got := map[int]int{}
	for range n {
		got[<-codes]++
	}
	t.Logf("%d pushes of %d bytes: %v in %v", n, len(body), got, time.Since(start).Round(time.Millisecond))
	if got[200] != n {
		t.Errorf("%d concurrent pushes of %d bytes: codes %v, want all 200", n, len(body), got)
	}
	h.reading.mu.Lock()
	free, claims := h.reading.free, len(h.reading.claims)
	h.reading.mu.Unlock()
	if free != bodiesInBudget*limit || claims != 0 {
		t.Errorf("after the pushes: %d bytes free, %d claims; want %d, 0", free, claims, bodiesInBudget*limit)
	}
}

// A step of the budget is given only when every claim can still finish.
func TestByteBudgetSafe(t *testing.T) {
	var b byteBudget
	b.init(100)
	x, y := b.join(80), b.join(80)
	if !b.take(x, 40, 0) {
		t.Fatal("the first step of a claim of 80 in 100 was refused")
	}
	// 60 free: 40 for y would leave 20, and neither could finish.
	if b.take(y, 40, time.Millisecond) {
		t.Fatal("a step that left no claim able to finish was given")
	}
	if !b.take(y, 10, 0) || !b.take(x, 40, 0) {
		t.Fatal("steps that left x able to finish were refused")
	}
	if b.take(y, 60, time.Millisecond) {
		t.Fatal("a step larger than the room left was given")
	}
	b.leave(x)
	if !b.take(y, 70, 0) {
		t.Error("the rest of y's claim was refused after x left")
	}
	b.leave(y)
	if b.free != 100 || len(b.claims) != 0 {
		t.Errorf("after both left: free %d, %d claims", b.free, len(b.claims))
	}
}

type timeoutReader struct{}

func (timeoutReader) Read([]byte) (int, error) { return 0, os.ErrDeadlineExceeded }

// Review A, point 3: every push endpoint answers a body that timed out with
// 408 and one that found no room in the budget with 503, which clients
// retry, not 400.
func TestBodyErrorCodesEverywhere(t *testing.T) {
	h := &PushHandler{Cache: cache.New(cache.Options{Budget: 1 << 20})}
	for _, r := range []*PushRequest{
		{Method: "PUT", Path: "/metrics/job/x", ContentLength: 100, Body: timeoutReader{}},
		{Method: "POST", Path: "/metrics/job/x", ContentLength: 100, Body: timeoutReader{}},
		{Method: "POST", Path: "/metrics", ContentLength: 100, Body: timeoutReader{}},
		{Method: "PATCH", Path: "/metrics/x_total", ContentLength: 100, Body: timeoutReader{}},
		{Method: "PATCH", Path: "/metrics/x_total", ContentLength: 100, ContentEncoding: "gzip", Body: timeoutReader{}},
	} {
		if res := h.Handle(r); res.Code != 408 {
			t.Errorf("%s %s (%s), body timed out: %d %s, want 408", r.Method, r.Path, r.ContentEncoding, res.Code, res.Message)
		}
	}

	const limit = 16 << 10
	h = &PushHandler{Cache: cache.New(cache.Options{Budget: 64 << 10}), MaxBodySize: limit, BudgetWait: 100 * time.Millisecond}
	res := make(chan PushResponse, 8)
	var stalled []*stalledBody
	for range 5 { // 60 KiB of the 64 KiB budget
		stalled = append(stalled, stall(t, h, "big", limit, bytes.Repeat([]byte("#"), limit-bodyFree+1), res))
	}
	seed := h.Handle(&PushRequest{Method: "POST", Path: "/metrics", ContentLength: limit, Body: bytes.NewReader(bytes.Repeat([]byte("#"), limit))})
	if seed.Code != 503 {
		t.Errorf("POST /metrics with no room in the budget: %d %s, want 503", seed.Code, seed.Message)
	}
	for _, b := range stalled {
		b.end(io.ErrUnexpectedEOF)
	}
	for range stalled {
		<-res
	}
}

// PATCH honours Content-Encoding as the other pushes do.
func TestPatchContentEncoding(t *testing.T) {
	c := cache.New(cache.Options{Budget: 64 << 10})
	h := &PushHandler{Cache: c}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("2.5"))
	zw.Close()
	for _, tc := range []struct {
		encoding, body string
		code           int
	}{
		{"", "1", 202},
		{"identity", "1", 202},
		{"gzip", gz.String(), 202},
		{"GZIP", gz.String(), 202},
		{"gzip", "1", 400}, // not gzip data
		{"br", "1", 415},
		{"gzip, gzip", gz.String(), 415},
	} {
		res := h.Handle(&PushRequest{Method: "PATCH", Path: "/metrics/n_total", ContentEncoding: tc.encoding,
			ContentLength: int64(len(tc.body)), Body: strings.NewReader(tc.body)})
		if res.Code != tc.code || (res.Code == 415) != strings.Contains(res.Message, "Content-Encoding") {
			t.Errorf("PATCH, Content-Encoding %q: %d %q, want %d", tc.encoding, res.Code, res.Message, tc.code)
		}
	}
	if got, want := values(c), "n_total 7\n"; got != want { // 1 + 1 + 2.5 + 2.5
		t.Errorf("after the PATCHes: %q, want %q", got, want)
	}
}
