package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/push-gateway/push-gateway/cache"
)

// TestParseDurationMatchesModel compares ParseDuration with the
// model.ParseDuration it stands for, on chosen and on random strings.
func TestParseDurationMatchesModel(t *testing.T) {
	cases := []string{
		"", "0", "00", "0s", "90s", "25h", "1d", "1w", "1y", "1h30m", "1h30m15s500ms", "30m1h", "1h1h",
		"1.5h", "-1h", "h", "1", "1 h", " 1h", "1h ", "1ms", "1mss", "1us", "1ns", "1µs", "1H",
		"9223372036854775807ns", "9223372036854ms", "9223372036855ms", "106751d", "106752d", "292y", "293y",
		"18446744073709551615s", "18446744073709551616s", "99999999999999999999y", "1y1w1d1h1m1s1ms",
		"default", "10m0s", "0h0m", "1d25h",
	}
	r := rand.New(rand.NewPCG(14, 1))
	const alphabet = "0123456789smhdwy"
	for range 20000 {
		b := make([]byte, 1+r.IntN(10))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		want, werr := model.ParseDuration(s)
		got, ok := ParseDuration([]byte(s))
		if ok != (werr == nil) || ok && got != time.Duration(want) {
			t.Errorf("ParseDuration(%q) = %v, %v; model says %v, %v", s, got, ok, time.Duration(want), werr)
		}
	}
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// streamTTL applies each of lines on one connection's state, one batch per
// element, as reads of the socket would.
func streamTTL(s *Server, c *cache.Cache, st *lineState, batches ...string) {
	for _, batch := range batches {
		b := c.Begin()
		for line := range strings.SplitSeq(batch, "\n") {
			s.apply(b, st, []byte(line))
		}
		b.End()
	}
}

// "# TTL" lines set the TTL of what follows on their connection, across
// reads, until the next one; "# TTL default" goes back to --cache.ttl; a
// bad one is a rejected line and changes nothing; a JSON event's "ttl" is
// for that event only; another connection is not affected.
func TestTTLLines(t *testing.T) {
	clk := &testClock{t: time.Unix(1_700_000_000, 0)}
	c := cache.New(cache.Options{TTL: time.Second, Now: clk.Now})
	s := NewServer(Options{Cache: c})
	var st, other lineState
	streamTTL(s, c, &st,
		"# TTL 25h\nbackup_last_success_timestamp_seconds 1.7e9",
		"backup_size_bytes 100",          // next read: still 25h
		"# TTL 1x\nbackup_files_total 3", // bad line: the connection keeps 25h
		"# TTL default\nshort 1",
		`{"type":"gauge","name":"event_long","value":1,"ttl":"1d"}`+"\n"+`{"type":"gauge","name":"event_short","value":1}`,
		`{"type":"gauge","name":"bad_ttl","value":1,"ttl":"soon"}`,
		"# TTL 0\nforever 1",
	)
	streamTTL(s, c, &other, "other 1")
	if got := s.stats.Rejected[ReasonInvalidTTL].Load(); got != 2 {
		t.Fatalf("invalid_ttl rejections: %d, want 2", got)
	}
	clk.Add(2 * time.Second)
	want := "backup_files_total 3\nbackup_last_success_timestamp_seconds 1.7e+09\nbackup_size_bytes 100\nevent_long 1\nforever 1\n"
	if got := values(c); got != want {
		t.Fatalf("after 2s:\n%s\nwant\n%s", got, want)
	}
	clk.Add(24*time.Hour + time.Second)
	if got, want := values(c), "backup_files_total 3\nbackup_last_success_timestamp_seconds 1.7e+09\nbackup_size_bytes 100\nforever 1\n"; got != want {
		t.Fatalf("after a day:\n%s\nwant\n%s", got, want)
	}
	clk.Add(time.Hour)
	if got := values(c); got != "forever 1\n" {
		t.Fatalf("after 25h:\n%s", got)
	}
}

// A "# TTL" line is a comment to every parser but the raw stream's.
func TestTTLLineIsACommentElsewhere(t *testing.T) {
	var p Parser
	for _, line := range []string{"# TTL 25h", "# TTL nonsense", "# TTL"} {
		if kind, err := p.Parse([]byte(line)); kind != LineIgnored || err != nil {
			t.Errorf("%q: %v, %v; want a comment", line, kind, err)
		}
	}
	p.TTLLines = true
	for line, want := range map[string]time.Duration{"# TTL 25h": 25 * time.Hour, "#TTL 0 ": 0, "# TTL default": cache.DefaultTTL, "# TTL  1h30m": 90 * time.Minute} {
		if kind, err := p.Parse([]byte(line)); kind != LineTTL || err != nil || p.TTL != want {
			t.Errorf("%q: %v, %v, %v; want a TTL of %v", line, kind, err, p.TTL, want)
		}
	}
	for _, line := range []string{"# TTL", "# TTL 1.5h", "# TTL -1h", "# TTL 1h default"} {
		var pe *ParseError
		if _, err := p.Parse([]byte(line)); err == nil || !errors.As(err, &pe) || pe.Reason != ReasonInvalidTTL {
			t.Errorf("%q: %v; want %s", line, err, ReasonInvalidTTL)
		}
	}
}

// TestApplyWithTTLAllocatesNothing: after "# TTL", an update of an existing
// series allocates nothing either, in new batches too.
func TestApplyWithTTLAllocatesNothing(t *testing.T) {
	c := cache.New(cache.Options{TTL: time.Minute})
	s := NewServer(Options{Cache: c})
	var p lineState
	line := []byte(`edge_device_metric_001{instance="router-01.lan",job="pushgateway",path="/x/0001"} 42.5`)
	streamTTL(s, c, &p, "# TTL 25h\n"+string(line))
	allocs := testing.AllocsPerRun(1000, func() {
		tx := c.Begin()
		s.apply(tx, &p, line)
		tx.End()
	})
	if allocs != 0 {
		t.Fatalf("applying a line with a TTL to an existing series allocates %v times", allocs)
	}
	if st := c.Stats(); st.Series != 1 {
		t.Fatalf("series: %d", st.Series)
	}
}

func ExampleParseDuration() {
	for _, s := range []string{"90s", "25h", "1d", "1w", "1h30m", "0", "1.5h"} {
		d, ok := ParseDuration([]byte(s))
		fmt.Println(s, d, ok)
	}
	// Output:
	// 90s 1m30s true
	// 25h 25h0m0s true
	// 1d 24h0m0s true
	// 1w 168h0m0s true
	// 1h30m 1h30m0s true
	// 0 0s true
	// 1.5h 0s false
}

// request sends one request to h and returns the response.
func request(h *PushHandler, method, path, query, body string) PushResponse {
	return h.Handle(&PushRequest{Method: method, Path: path, RawQuery: query, ContentLength: int64(len(body)), Body: strings.NewReader(body)})
}

// The /ttl/<DURATION> prefix works in front of every push path; a bad
// duration is a 400 that changes nothing, not even push_failure_time_seconds.
func TestTTLPathPrefix(t *testing.T) {
	clk := &testClock{t: time.Unix(1_700_000_000, 0)}
	c := cache.New(cache.Options{TTL: time.Second, Now: clk.Now})
	h := &PushHandler{Cache: c}
	for _, r := range []struct {
		method, path, query, body string
		code                      int
	}{
		{"PUT", "/ttl/25h/metrics/job/backup", "", "backup_last_success_timestamp_seconds 1.7e9\n", 200},
		{"POST", "/ttl/1d/aggregate/metrics/job/agg", "", "# TYPE runs_total counter\nruns_total 1\n", 200},
		{"PATCH", "/ttl/1w/metrics/patched_total", "x=y", "", 202},
		{"POST", "/ttl/1h30m/metrics", "", "# TYPE seeded_total counter\nseeded_total 2\n", 202},
		{"PUT", "/metrics/job/short", "", "short 1\n", 200},
		{"PUT", "/ttl/1.5h/metrics/job/bad", "", "bad 1\n", 400},
		{"PUT", "/ttl/25h/metrics/job/short", "", "short{x=\"1\" 1\n", 400}, // a body that does not decode
		{"POST", "/ttl/-1h/metrics", "", "bad 1\n", 400},
		{"PATCH", "/ttl/forever/metrics/bad", "", "", 400},
		{"PUT", "/ttl/25h", "", "bad 1\n", 404},
	} {
		if res := request(h, r.method, r.path, r.query, r.body); res.Code != r.code {
			t.Fatalf("%s %s: %d %s, want %d", r.method, r.path, res.Code, res.Message, r.code)
		}
	}
	clk.Add(2 * time.Second)
	got := values(c)
	for _, want := range []string{
		"backup_last_success_timestamp_seconds job=backup 1.7e+09", "runs_total job=agg 1",
		"patched_total x=y 1", "seeded_total 2", "push_time_seconds job=backup", "push_time_seconds job=agg",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("after 2s, %q missing from:\n%s", want, got)
		}
	}
	for _, gone := range []string{"job=short", "bad"} {
		if strings.Contains(got, gone) {
			t.Errorf("after 2s, %q still in:\n%s", gone, got)
		}
	}
	clk.Add(90 * time.Minute)
	if got := values(c); strings.Contains(got, "seeded_total") || !strings.Contains(got, "patched_total") {
		t.Errorf("after 1h30m:\n%s", got)
	}
}

// The seed endpoints: POST /metrics aggregates without a group, a body may
// be one JSON string of text, DELETE /metrics/<NAME> removes a family
// wherever it came from, with ?<LABEL>=<VALUE> only the series matching.
func TestSeedEndpoints(t *testing.T) {
	c := cache.New(cache.Options{})
	h := &PushHandler{Cache: c}
	text := "# TYPE my_counter counter\nmy_counter{user=\"user1\",plan=\"pro\"} 1\nmy_counter{user=\"user2\",plan=\"free\"} 3\n"
	for _, body := range []string{text, " \n" + jsonQuote(text)} {
		if res := request(h, "POST", "/metrics", "", body); res.Code != 202 {
			t.Fatalf("POST /metrics %q: %d %s", body, res.Code, res.Message)
		}
	}
	if got, want := values(c), "my_counter plan=pro user=user1 2\nmy_counter plan=free user=user2 6\n"; got != want {
		t.Fatalf("two seed pushes:\n%s\nwant\n%s", got, want)
	}
	for _, body := range []string{`"unterminated`, `"a" "b"`, "my_counter{ 1\n", "# TYPE my_counter gauge\nmy_counter 1\n"} {
		if res := request(h, "POST", "/metrics", "", body); res.Code != 400 {
			t.Fatalf("POST /metrics %q: %d, want 400", body, res.Code)
		}
	}
	if res := request(h, "PUT", "/metrics", "", text); res.Code != 405 {
		t.Fatalf("PUT /metrics: %d, want 405", res.Code)
	}
	// A pushed group's series and a raw stream's go too.
	if res := request(h, "PUT", "/metrics/job/j", "", "# TYPE my_counter counter\nmy_counter{user=\"user3\"} 5\nother 1\n"); res.Code != 200 {
		t.Fatalf("push: %d %s", res.Code, res.Message)
	}
	b := c.Begin()
	b.Set([]byte("my_counter"), []cache.Label{{Name: []byte("user"), Value: []byte("user4")}}, 9)
	b.End()
	if res := request(h, "DELETE", "/metrics/my_counter", "plan=pro&user=user1", ""); res.Code != 202 {
		t.Fatalf("DELETE with labels: %d %s", res.Code, res.Message)
	}
	if got := values(c); strings.Contains(got, "user1") || !strings.Contains(got, "user2") {
		t.Fatalf("after DELETE ?plan=pro&user=user1:\n%s", got)
	}
	if res := request(h, "DELETE", "/metrics/nothing_here", "", ""); res.Code != 202 {
		t.Fatalf("DELETE of nothing: %d", res.Code)
	}
	if res := request(h, "DELETE", "/metrics/my_counter", "", ""); res.Code != 202 {
		t.Fatalf("DELETE: %d", res.Code)
	}
	if got := values(c); strings.Contains(got, "my_counter") || !strings.Contains(got, "other job=j 1") {
		t.Fatalf("after DELETE /metrics/my_counter:\n%s", got)
	}
	if res := request(h, "DELETE", "/metrics/job", "", ""); res.Code != 400 {
		t.Fatalf("DELETE /metrics/job: %d, want the group path's 400", res.Code)
	}
	if res := request(h, "DELETE", "/metrics/1bad", "", ""); res.Code != 400 {
		t.Fatalf("DELETE of a bad name: %d, want 400", res.Code)
	}
}

func jsonQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
