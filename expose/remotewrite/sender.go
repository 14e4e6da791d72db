package remotewrite

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/atomic"

	"github.com/push-gateway/push-gateway/cache"
)

// Poster sends one HTTP request to the receiver; *httpc.Client is one.
// Do must be done with body when it returns: the sender fills it with the
// next snapshot (a client that may still read it, as net/http's Transport
// can, must copy it).
type Poster interface {
	Do(ctx context.Context, method string, headers []Header, body []byte) (Response, error)
}

// Defaults of Options.
const (
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 10 * time.Second
	// MaxRetryAfter bounds a receiver's Retry-After: a hostile or broken
	// one must not park the queue for days.
	MaxRetryAfter = 5 * time.Minute
	// DefaultDrainGap spaces the requests of a backlog: after an outage the
	// queue drains at most 20 requests a second, oldest first, so that a
	// fleet coming back does not hammer the receiver.
	DefaultDrainGap = 50 * time.Millisecond
)

// Options configure a Sender. Interval and QueueSize must be positive.
type Options struct {
	Cache     *cache.Cache
	Encoder   *Encoder
	Poster    Poster
	Interval  time.Duration // between snapshots
	QueueSize int           // compressed bytes

	// Headers are sent with every request, after the protocol's own.
	Headers   []Header
	UserAgent string
	// Basic auth (username and a file holding the password) or a file
	// holding a bearer token; the files are read at each request.
	BasicAuthUsername     string
	BasicAuthPasswordFile string
	BearerTokenFile       string

	Logger *slog.Logger
	Now    func() time.Time // nil means time.Now

	// For tests; zero means the defaults.
	MinBackoff, MaxBackoff, DrainGap time.Duration
}

// Stats are the sender's self-metrics. They are safe to read while it runs.
type Stats struct {
	Sent, Dropped, Retried atomic.Uint64 // samples
	QueueBytes             atomic.Int64
	LastSuccess            atomic.Int64 // unix milliseconds of the last 2xx; 0 never

	mu        sync.Mutex
	codes     []codeCount // requests by HTTP status or "error", sorted by code
	lastError string      // why the last request that failed did, for the status page
	lastErrAt time.Time
}

// LastError tells why the last failed request failed, and when; "" if none
// has.
func (s *Stats) LastError() (string, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastError, s.lastErrAt
}

func (s *Stats) setLastError(msg string, at time.Time) {
	s.mu.Lock()
	s.lastError, s.lastErrAt = msg, at
	s.mu.Unlock()
}

type codeCount struct {
	code string
	n    uint64
}

func (s *Stats) countCode(code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, found := slices.BinarySearchFunc(s.codes, code, func(c codeCount, code string) int { return strings.Compare(c.code, code) })
	if !found {
		s.codes = slices.Insert(s.codes, i, codeCount{code: code})
	}
	s.codes[i].n++
}

// EachCode calls fn for every status code seen (or "error"), in order. It
// holds a lock meanwhile: fn must not call back into s. It allocates
// nothing (it runs for every scrape).
func (s *Stats) EachCode(fn func(code string, n uint64)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.codes {
		fn(c.code, c.n)
	}
}

// Sender takes a snapshot of the cache every interval and delivers it.
type Sender struct {
	o     Options
	stats *Stats
	q     *queue
	snap  cache.Snapshot

	// Owned by the delivering goroutine.
	headers []Header
	seen    map[string]bool // reasons of dropped requests already logged
	failing bool            // the last try failed: log the recovery
}

// New returns a sender; Run starts it.
func New(o Options, stats *Stats) *Sender {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.DrainGap <= 0 {
		o.DrainGap = DefaultDrainGap
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Sender{o: o, stats: stats, q: newQueue(o.QueueSize, stats), seen: make(map[string]bool)}
	var warned atomic.Bool
	s.q.tooLarge = func(size, max int) {
		s.stats.setLastError(fmt.Sprintf("a request of %d bytes is larger than --remote-write.queue-size (%d): dropped", size, max), s.o.Now())
		if !warned.Swap(true) {
			s.o.Logger.Error("a request is larger than the whole queue and is dropped: raise --remote-write.queue-size (about 17 bytes per series)",
				"request_bytes", size, "queue_size", max)
		}
	}
	return s
}

// Run sends a snapshot every interval until ctx is done, then one last
// snapshot and the queue until drain is done; what is still queued then is
// counted dropped.
func (s *Sender) Run(ctx, drain context.Context) {
	dctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	delivered := make(chan struct{})
	go func() {
		defer close(delivered)
		s.deliver(dctx)
	}()
	t := time.NewTicker(s.o.Interval)
	defer t.Stop()
	for running := true; running; {
		select {
		case <-ctx.Done():
			running = false
		case <-t.C:
			s.snapshot()
		}
	}
	s.snapshot()
	s.q.close()
	select {
	case <-delivered:
	case <-drain.Done():
		cancel()
		<-delivered
	}
	s.q.dropAll()
}

// snapshot queues the cache's current state.
func (s *Sender) snapshot() {
	s.o.Cache.Snapshot(&s.snap)
	r := s.q.request()
	r.body, r.samples = s.o.Encoder.Encode(&s.snap, s.o.Now().UnixMilli(), r.body)
	if r.samples > 0 {
		s.q.push(r)
	} else {
		s.q.recycle(r)
	}
}

// deliver sends the queued requests one at a time, oldest first, until the
// queue is closed and empty or ctx is done.
func (s *Sender) deliver(ctx context.Context) {
	for {
		r := s.q.next(ctx.Done())
		if r == nil {
			return
		}
		s.send(ctx, r)
		if s.q.waiting() > 0 && !sleep(ctx, nil, s.o.DrainGap) {
			return
		}
	}
}

// sleep waits for d; false if ctx or abandon ended the wait.
func sleep(ctx context.Context, abandon <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-abandon:
		return false
	case <-ctx.Done():
		return false
	}
}

// send tries r until it is delivered, refused for good, abandoned by the
// queue or ctx is done, and counts its samples accordingly; then r is the
// queue's to reuse.
func (s *Sender) send(ctx context.Context, r *request) {
	defer s.q.recycle(r) // done with, whatever became of it
	backoff := s.o.MinBackoff
	for try := 0; ; try++ {
		if try > 0 {
			s.stats.Retried.Add(uint64(r.samples))
		}
		resp, err := s.post(ctx, r.body)
		code := "error"
		if err == nil {
			code = strconv.Itoa(resp.Status)
		}
		s.stats.countCode(code)
		switch {
		case err == nil && resp.Status >= 200 && resp.Status < 300:
			s.q.finish(r)
			s.stats.Sent.Add(uint64(r.samples))
			s.stats.LastSuccess.Store(s.o.Now().UnixMilli())
			if s.failing {
				s.failing = false
				s.o.Logger.Info("remote write delivers again", "waiting_requests", s.q.waiting())
			}
			return
		case err == nil && resp.Status != 429 && resp.Status < 500:
			// Retrying cannot help (spec: only 5xx and 429 are
			// recoverable); a redirect is not followed.
			s.q.finish(r)
			s.stats.Dropped.Add(uint64(r.samples))
			s.stats.setLastError(code+" "+message(resp.Body)+" (dropped)", s.o.Now())
			s.logRefusal(resp)
			return
		}
		if err != nil {
			s.stats.setLastError(err.Error(), s.o.Now())
		} else {
			s.stats.setLastError(code+" "+message(resp.Body)+" (retried)", s.o.Now())
		}
		if !s.failing {
			s.failing = true
			if err != nil {
				s.o.Logger.Warn("remote write failed, retrying", "err", err)
			} else {
				s.o.Logger.Warn("remote write failed, retrying", "code", resp.Status, "msg", message(resp.Body))
			}
		}
		wait := retryWait(backoff, resp.RetryAfter)
		backoff = min(2*backoff, s.o.MaxBackoff)
		if !sleep(ctx, r.abandon, wait) {
			s.q.finish(r)
			s.stats.Dropped.Add(uint64(r.samples))
			return
		}
	}
}

// retryWait is the pause before the next try: backoff less up to 20 %
// of jitter (a fleet that lost its receiver at once does not come back in
// step), or what the receiver's Retry-After asks if that is longer.
func retryWait(backoff, retryAfter time.Duration) time.Duration {
	wait := backoff - rand.N(backoff/5+1)
	if retryAfter > wait {
		wait = min(retryAfter, MaxRetryAfter)
	}
	return wait
}

// post makes one try, with the headers of this moment (the secret files
// are read again, so a rotated one needs no restart).
func (s *Sender) post(ctx context.Context, body []byte) (Response, error) {
	h := append(s.headers[:0],
		Header{Name: "Content-Encoding", Value: "snappy"},
		Header{Name: "Content-Type", Value: "application/x-protobuf"},
		Header{Name: "User-Agent", Value: s.o.UserAgent},
		Header{Name: "X-Prometheus-Remote-Write-Version", Value: "0.1.0"})
	switch {
	case s.o.BasicAuthUsername != "" || s.o.BasicAuthPasswordFile != "":
		var pw []byte
		if f := s.o.BasicAuthPasswordFile; f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				return Response{}, fmt.Errorf("basic auth password file: %w", err)
			}
			pw = []byte(strings.TrimSpace(string(b)))
			if !printable(pw) {
				return Response{}, fmt.Errorf("basic auth password file %s: holds a line break or another control character", f)
			}
		}
		cred := base64.StdEncoding.EncodeToString(append([]byte(s.o.BasicAuthUsername+":"), pw...))
		h = append(h, Header{Name: "Authorization", Value: "Basic " + cred})
	case s.o.BearerTokenFile != "":
		b, err := os.ReadFile(s.o.BearerTokenFile)
		if err != nil {
			return Response{}, fmt.Errorf("bearer token file: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if !printable([]byte(tok)) {
			return Response{}, fmt.Errorf("bearer token file %s: holds a line break or another control character", s.o.BearerTokenFile)
		}
		h = append(h, Header{Name: "Authorization", Value: "Bearer " + tok})
	}
	h = append(h, s.o.Headers...)
	s.headers = h
	return s.o.Poster.Do(ctx, "POST", h, body)
}

// logRefusal logs why the receiver refused a request, once per distinct
// reason (a receiver refuses every request alike until someone fixes the
// configuration: one line says it).
func (s *Sender) logRefusal(resp Response) {
	msg := message(resp.Body)
	key := strconv.Itoa(resp.Status) + " " + msg
	if s.seen[key] {
		return
	}
	if len(s.seen) < 64 {
		s.seen[key] = true
	}
	s.o.Logger.Error("remote write refused, request dropped", "code", resp.Status, "msg", msg)
}

// message is a receiver's answer made fit for one log line.
func message(body []byte) string {
	const max = 256
	m := strings.TrimSpace(string(body[:min(len(body), max)]))
	return strings.ToValidUTF8(m, "?")
}

// printable tells whether a secret read from a file can go in a header:
// no control character (a second line, a stray CR). Never quote it in an
// error.
func printable(b []byte) bool {
	for _, ch := range b {
		if ch < ' ' || ch == 0x7f {
			return false
		}
	}
	return true
}
