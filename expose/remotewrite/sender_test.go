package remotewrite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/push-gateway/push-gateway/cache"
)

// fakePoster records what it is sent and answers with answer(i) for the
// i-th call (0-based).
type fakePoster struct {
	t      *testing.T
	mu     sync.Mutex
	calls  []fakeCall
	answer func(ctx context.Context, i int) (Response, error)
	called chan struct{} // one send per call, if not nil
}

type fakeCall struct {
	headers []Header
	body    []byte
	at      time.Time
	ok      bool // answered 2xx
}

func (p *fakePoster) Do(ctx context.Context, method string, headers []Header, body []byte) (Response, error) {
	if method != "POST" {
		p.t.Errorf("method %s", method)
	}
	p.mu.Lock()
	i := len(p.calls)
	p.calls = append(p.calls, fakeCall{headers: slices.Clone(headers), body: bytes.Clone(body), at: time.Now()})
	p.mu.Unlock()
	if p.called != nil {
		p.called <- struct{}{}
	}
	resp, err := p.answer(ctx, i)
	p.mu.Lock()
	p.calls[i].ok = err == nil && resp.Status/100 == 2
	p.mu.Unlock()
	return resp, err
}

func (p *fakePoster) all() []fakeCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

func ok200(context.Context, int) (Response, error) { return Response{Status: 200}, nil }

// logBuffer collects log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type rig struct {
	c     *cache.Cache
	s     *Sender
	stats *Stats
	p     *fakePoster
	logs  *logBuffer
	ms    atomic.Int64 // the clock, in Unix milliseconds
}

func newRig(t *testing.T, o Options, answer func(context.Context, int) (Response, error)) *rig {
	r := &rig{c: cache.New(cache.Options{Budget: 64 << 10}), stats: new(Stats), logs: new(logBuffer)}
	r.p = &fakePoster{t: t, answer: answer}
	o.Cache, o.Poster, o.Encoder = r.c, r.p, NewEncoder(nil, false)
	o.Logger = slog.New(slog.NewTextHandler(r.logs, nil))
	o.Now = func() time.Time { return time.UnixMilli(r.ms.Load()) }
	if o.Interval == 0 {
		o.Interval = time.Hour // snapshots are taken by the test
	}
	if o.QueueSize == 0 {
		o.QueueSize = 1 << 20
	}
	if o.MinBackoff == 0 {
		o.MinBackoff, o.MaxBackoff = time.Millisecond, 4*time.Millisecond
	}
	o.DrainGap = time.Millisecond
	r.s = New(o, r.stats)
	return r
}

// snap sets gauge g to v and queues a snapshot at time v seconds.
func (r *rig) snap(t *testing.T, v int) {
	t.Helper()
	fill(t, r.c, fmt.Sprintf("g - %d\n", v))
	r.ms.Store(int64(v) * 1000)
	r.s.snapshot()
}

// requestSize fills the cache with text and returns the size of the
// request a snapshot of it makes, leaving the queue and its counts empty.
func (r *rig) requestSize(t *testing.T, text string) int {
	t.Helper()
	fill(t, r.c, text)
	r.s.snapshot()
	one := r.s.q.bytes
	r.s.q.dropAll()
	r.stats.Dropped.Store(0)
	return one
}

// run starts the delivering goroutine; stop ends it once the queue is
// empty and returns.
func (r *rig) run() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r.s.q.mu.Lock()
	r.s.q.closing = false
	r.s.q.mu.Unlock()
	go func() { defer close(done); r.s.deliver(ctx) }()
	return func() {
		r.s.q.close()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cancel()
			<-done
		}
		cancel()
	}
}

// values returns the value of g in each call's body, in order.
func values(t *testing.T, calls []fakeCall) []string {
	var vs []string
	for _, c := range calls {
		found := false
		for _, s := range decode(t, c.body).series {
			if v, ok := strings.CutPrefix(s, `{__name__="g"} `); ok {
				vs, found = append(vs, v), true
			}
		}
		if !found {
			t.Fatal("a body without g")
		}
	}
	return vs
}

// delivered returns the values of g in the calls answered 2xx.
func delivered(t *testing.T, calls []fakeCall) []string {
	var ok []fakeCall
	for _, c := range calls {
		if c.ok {
			ok = append(ok, c)
		}
	}
	return values(t, ok)
}

func header(h []Header, name string) (string, int) {
	v, n := "", 0
	for _, x := range h {
		if strings.EqualFold(x.Name, name) {
			v, n = x.Value, n+1
		}
	}
	return v, n
}

func TestSendHeadersAndBasicAuthRotation(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("first\n"), 0o600)
	r := newRig(t, Options{
		UserAgent:         "push-gateway/1.2.3",
		BasicAuthUsername: "dev", BasicAuthPasswordFile: pw,
		Headers: []Header{{Name: "X-Scope-OrgID", Value: "tenant-1"}},
	}, ok200)
	stop := r.run()
	r.snap(t, 1)
	stop()
	os.WriteFile(pw, []byte("second"), 0o600)
	stop = r.run()
	r.snap(t, 2)
	stop()
	calls := r.p.all()
	if len(calls) != 2 {
		t.Fatalf("%d calls", len(calls))
	}
	for i, want := range []string{"Basic ZGV2OmZpcnN0", "Basic ZGV2OnNlY29uZA=="} { // dev:first, dev:second
		h := calls[i].headers
		for name, v := range map[string]string{
			"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
			"X-Prometheus-Remote-Write-Version": "0.1.0", "User-Agent": "push-gateway/1.2.3",
			"X-Scope-OrgID": "tenant-1", "Authorization": want,
		} {
			if got, n := header(h, name); got != v || n != 1 {
				t.Errorf("call %d: %s = %q (%d times), want %q", i, name, got, n, v)
			}
		}
	}
	if r.stats.Sent.Load() != 2 || r.stats.LastSuccess.Load() != 2000 {
		t.Errorf("sent %d, last success %d", r.stats.Sent.Load(), r.stats.LastSuccess.Load())
	}
}

func TestSendBearerToken(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "tok")
	os.WriteFile(tok, []byte("s3cret\n"), 0o600)
	r := newRig(t, Options{BearerTokenFile: tok}, ok200)
	stop := r.run()
	r.snap(t, 1)
	stop()
	if got, _ := header(r.p.all()[0].headers, "Authorization"); got != "Bearer s3cret" {
		t.Fatalf("Authorization %q", got)
	}
	if strings.Contains(r.logs.String(), "s3cret") {
		t.Fatal("the token was logged")
	}
}

// Network errors, 5xx and 429 are retried until delivered; every retry
// counts the request's samples as retried, every try its status code.
func TestSendRetriesRecoverableFailures(t *testing.T) {
	answers := []func() (Response, error){
		func() (Response, error) { return Response{}, errors.New("connection refused") },
		func() (Response, error) { return Response{Status: 500, Body: []byte("oops")}, nil },
		func() (Response, error) { return Response{Status: 503}, nil },
		func() (Response, error) { return Response{Status: 429, RetryAfter: 300 * time.Millisecond}, nil },
		func() (Response, error) { return Response{Status: 204}, nil },
	}
	r := newRig(t, Options{}, func(_ context.Context, i int) (Response, error) { return answers[i]() })
	fill(t, r.c, "a - 1\nb - 2\n")
	stop := r.run()
	r.s.snapshot()
	stop()
	calls := r.p.all()
	if len(calls) != 5 {
		t.Fatalf("%d calls, want 5", len(calls))
	}
	for i := 1; i < 5; i++ {
		if !bytes.Equal(calls[i].body, calls[0].body) {
			t.Fatalf("try %d sent another body", i)
		}
	}
	// The Retry-After of the 429 was honoured though the backoff is 4 ms.
	if d := calls[4].at.Sub(calls[3].at); d < 300*time.Millisecond {
		t.Errorf("retried %v after a Retry-After of 300ms", d)
	}
	if s, rt, d := r.stats.Sent.Load(), r.stats.Retried.Load(), r.stats.Dropped.Load(); s != 2 || rt != 8 || d != 0 {
		t.Errorf("sent %d retried %d dropped %d, want 2 8 0", s, rt, d)
	}
	var codes []string
	r.stats.EachCode(func(c string, n uint64) { codes = append(codes, fmt.Sprintf("%s:%d", c, n)) })
	if want := []string{"204:1", "429:1", "500:1", "503:1", "error:1"}; !slices.Equal(codes, want) {
		t.Errorf("codes %v, want %v", codes, want)
	}
	if n := strings.Count(r.logs.String(), "retrying"); n != 1 {
		t.Errorf("%d lines about retrying, want 1:\n%s", n, r.logs)
	}
}

// Any other 4xx (and a redirect) drops the request at once, counted, and
// logs the receiver's message once per distinct reason.
func TestSendDropsRefusedRequests(t *testing.T) {
	answers := []Response{
		{Status: 400, Body: []byte("out of order sample\n")},
		{Status: 400, Body: []byte("out of order sample\n")},
		{Status: 401, Body: []byte("Unauthorized")},
		{Status: 302},
		{Status: 200},
	}
	r := newRig(t, Options{}, func(_ context.Context, i int) (Response, error) { return answers[i], nil })
	stop := r.run()
	for v := range 5 {
		r.snap(t, v)
	}
	stop()
	if n := len(r.p.all()); n != 5 {
		t.Fatalf("%d calls, want 5 (no retry)", n)
	}
	if s, rt, d := r.stats.Sent.Load(), r.stats.Retried.Load(), r.stats.Dropped.Load(); s != 1 || rt != 0 || d != 4 {
		t.Errorf("sent %d retried %d dropped %d, want 1 0 4", s, rt, d)
	}
	logs := r.logs.String()
	for msg, want := range map[string]int{"out of order sample": 1, "Unauthorized": 1, "code=302": 1} {
		if n := strings.Count(logs, msg); n != want {
			t.Errorf("%q logged %d times, want %d:\n%s", msg, n, want, logs)
		}
	}
}

// During an outage every snapshot waits in the queue; when the receiver
// is back they all arrive, oldest first, none lost.
func TestSendOutageKeepsEverySnapshotInOrder(t *testing.T) {
	var mu sync.Mutex
	down := true
	r := newRig(t, Options{}, func(context.Context, int) (Response, error) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return Response{}, errors.New("no route to host")
		}
		return Response{Status: 200}, nil
	})
	r.p.called = make(chan struct{}, 1000)
	stop := r.run()
	for v := range 10 {
		r.snap(t, v)
		<-r.p.called // a try happened in between
	}
	mu.Lock()
	down = false
	mu.Unlock()
	stop()
	got := delivered(t, r.p.all())
	var want []string
	for v := range 10 {
		want = append(want, fmt.Sprintf("%d @%d", v, v*1000))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("delivered %q, want %q", got, want)
	}
	if s, d := r.stats.Sent.Load(), r.stats.Dropped.Load(); s != 10 || d != 0 {
		t.Errorf("sent %d dropped %d", s, d)
	}
	if b := r.stats.QueueBytes.Load(); b != 0 {
		t.Errorf("queue bytes %d after the drain", b)
	}
}

// A queue too small for the outage keeps the newest requests; the dropped
// ones are counted exactly.
func TestSendFullQueueDropsOldest(t *testing.T) {
	var mu sync.Mutex
	down := true
	r := newRig(t, Options{}, func(context.Context, int) (Response, error) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return Response{Status: 503}, nil
		}
		return Response{Status: 200}, nil
	})
	one := r.requestSize(t, "x - 1\ng - 10\n")
	r.s.q.max = 3*one + one/2 // three requests of about that size
	r.p.called = make(chan struct{}, 1000)
	stop := r.run()
	for v := range 8 {
		r.snap(t, v+10) // two-digit values: every request the same size
		if v == 0 {
			<-r.p.called // the first is in flight
		}
		if q := int(r.stats.QueueBytes.Load()); q > r.s.q.max {
			t.Fatalf("queue holds %d bytes, max %d", q, r.s.q.max)
		}
	}
	mu.Lock()
	down = false
	mu.Unlock()
	stop()
	got := delivered(t, r.p.all())
	// The 8 requests have 2 samples each (g and x). The last three are
	// kept; the first, in flight when it was dropped, may have been
	// delivered by the try under way.
	sent, dropped := r.stats.Sent.Load(), r.stats.Dropped.Load()
	if sent+dropped != 16 {
		t.Fatalf("sent %d + dropped %d != 16 samples", sent, dropped)
	}
	if sent/2 != uint64(len(got)) {
		t.Fatalf("sent %d samples, %d requests delivered (%q)", sent, len(got), got)
	}
	want := []string{"15 @15000", "16 @16000", "17 @17000"}
	if len(got) < 3 || !slices.Equal(got[len(got)-3:], want) {
		t.Fatalf("delivered %q, want it to end with %q", got, want)
	}
}

// A request is reused once its sender is done with it, delivered or
// abandoned by a full queue: its body must hold only the new snapshot, and
// a reused abandoned request must be retried like any other.
func TestSendReusesFinishedRequests(t *testing.T) {
	var mu sync.Mutex
	down := true
	seen := map[string]bool{}
	var r *rig
	r = newRig(t, Options{}, func(_ context.Context, i int) (Response, error) {
		body := string(r.p.all()[i].body)
		mu.Lock()
		defer mu.Unlock()
		if down || !seen[body] {
			seen[body] = true // up: each body fails once, then goes
			return Response{Status: 503}, nil
		}
		return Response{Status: 200}, nil
	})
	one := r.requestSize(t, "g - 10\n")
	r.s.q.max = 2*one + one/2 // two requests, not three
	r.p.called = make(chan struct{}, 1000)
	spare := func() bool {
		r.s.q.mu.Lock()
		defer r.s.q.mu.Unlock()
		return r.s.q.spare != nil
	}
	stop := r.run()
	r.snap(t, 10)
	<-r.p.called // 10 in flight
	r.snap(t, 11)
	r.snap(t, 12) // the queue is full: 10, in flight, is abandoned
	for deadline := time.Now().Add(10 * time.Second); !spare(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the abandoned request was not given back for reuse")
		}
	}
	r.snap(t, 13) // in the struct and body of 10; abandons 11
	if spare() {
		t.Fatal("the snapshot did not reuse the finished request")
	}
	mu.Lock()
	down = false
	mu.Unlock()
	stop()
	for _, c := range r.p.all() {
		if d := decode(t, c.body); len(d.series) != 1 {
			t.Fatalf("a body with %d series, want 1: %q", len(d.series), d.series)
		}
	}
	got := delivered(t, r.p.all())
	if want := []string{"12 @12000", "13 @13000"}; !slices.Equal(got, want) {
		t.Fatalf("delivered %q, want %q (13 failed once and must be retried)", got, want)
	}
	if s, d := r.stats.Sent.Load(), r.stats.Dropped.Load(); s != 2 || d != 2 {
		t.Errorf("sent %d dropped %d, want 2 and 2", s, d)
	}

	// Delivered requests are reused one after the other.
	for v := 20; v < 25; v++ {
		stop = r.run()
		r.snap(t, v)
		stop()
		if !spare() {
			t.Fatalf("request %d not given back after delivery", v)
		}
	}
	got = delivered(t, r.p.all())
	if want := []string{"20 @20000", "21 @21000", "22 @22000", "23 @23000", "24 @24000"}; !slices.Equal(got[2:], want) {
		t.Fatalf("delivered %q, want it to end with %q", got, want)
	}
}

// Run sends one last snapshot at shutdown; a receiver that never answers
// cannot hold it past the shutdown timeout, and what was not delivered is
// counted dropped.
func TestRunShutdown(t *testing.T) {
	r := newRig(t, Options{}, ok200)
	fill(t, r.c, "a - 1\n")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r.s.Run(ctx, context.Background())
	if n := len(r.p.all()); n != 1 || r.stats.Sent.Load() != 1 {
		t.Fatalf("%d calls, %d sent: the last snapshot was not delivered", n, r.stats.Sent.Load())
	}

	hung := newRig(t, Options{}, func(ctx context.Context, _ int) (Response, error) {
		<-ctx.Done()
		return Response{}, ctx.Err()
	})
	fill(t, hung.c, "a - 1\n")
	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan struct{})
	drain, drainCancel := context.WithCancel(context.Background())
	go func() { defer close(done); hung.s.Run(ctx, drain) }()
	hung.s.snapshot()
	hung.s.snapshot()
	cancel()
	time.AfterFunc(300*time.Millisecond, drainCancel)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
	if s, d := hung.stats.Sent.Load(), hung.stats.Dropped.Load(); s != 0 || d != 3 {
		t.Fatalf("sent %d dropped %d, want 0 3", s, d)
	}
}

func TestRetryWait(t *testing.T) {
	for range 100 {
		if w := retryWait(time.Second, 0); w < 800*time.Millisecond || w > time.Second {
			t.Fatalf("wait %v for a backoff of 1s", w)
		}
	}
	if w := retryWait(time.Second, 30*time.Second); w != 30*time.Second {
		t.Fatalf("wait %v for a Retry-After of 30s", w)
	}
	if w := retryWait(time.Second, 100*time.Hour); w != MaxRetryAfter {
		t.Fatalf("wait %v for a Retry-After of 100h", w)
	}
}

// The self-metric of request codes is read at every scrape: no allocation.
func TestEachCodeAllocatesNothing(t *testing.T) {
	var s Stats
	for _, c := range []string{"500", "204", "error", "204"} {
		s.countCode(c)
	}
	var got []string
	s.EachCode(func(c string, n uint64) { got = append(got, fmt.Sprintf("%s:%d", c, n)) })
	if want := []string{"204:2", "500:1", "error:1"}; !slices.Equal(got, want) {
		t.Fatalf("codes %v, want %v", got, want)
	}
	var total uint64
	if a := testing.AllocsPerRun(100, func() { s.EachCode(func(_ string, n uint64) { total += n }) }); a != 0 {
		t.Fatalf("EachCode allocates %v times", a)
	}
}
