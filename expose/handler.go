package expose

import (
	"sync"
	"time"

	"go.uber.org/atomic"

	"github.com/push-gateway/push-gateway/cache"
)

// SelfFamily is one of the daemon's own metric families. Append writes its
// HELP, TYPE and sample lines; it is called once per scrape.
type SelfFamily struct {
	Name   string
	Append func(dst []byte) []byte
}

// Options configure a Handler.
type Options struct {
	Cache         *cache.Cache
	TelemetryPath string       // "" means /metrics
	Self          []SelfFamily // the daemon's own metrics; sorted by New
	Version       string       // shown on the status page
	Start         time.Time    // the daemon's start, for its uptime; zero means New's time
	// Status are the daemon's tables of the status page at /, after the
	// cache's, in this order.
	Status []StatusSection
	// MaxInFlight bounds the scrapes served at once; more get 503 Service
	// Unavailable and count in Refused. 0 means no bound.
	MaxInFlight int
	Refused     *atomic.Uint64
	// ScrapeMemory bounds the bytes that the scrapes being served hold at
	// once: each copies the cache and keeps two chunks of exposition. A
	// scrape that would go over it gets 503 and counts in Refused, unless
	// no other is being served: one scrape always goes ahead. 0 means
	// DefaultScrapeMemory of the cache's budget.
	ScrapeMemory int64
}

// DefaultScrapeMemory is Options.ScrapeMemory for a cache budget: two
// copies of a full cache and their chunks.
func DefaultScrapeMemory(budget int) int64 { return 2*int64(budget) + 4*scrapeOverhead }

// scrapeOverhead is what a scrape holds besides its copy of the cache: the
// chunk being rendered and the one being written.
const scrapeOverhead = 2 * chunkSize

// Handler serves the read-only endpoints: the telemetry path, /-/healthy,
// /-/ready and the status page at / (status.go). Anything but GET and HEAD
// is 405, an unknown path 404. It is safe for concurrent use.
type Handler struct {
	o    Options
	pool sync.Pool // of *scrape

	mu     sync.Mutex
	held   int64       // bytes reserved by the scrapes being served
	active []*Response // the scrapes being served
}

type scrape struct {
	snap   cache.Snapshot
	buf    []byte
	status *statusScratch // of a status page, made by the first
}

// New returns a Handler.
func New(o Options) *Handler {
	if o.TelemetryPath == "" {
		o.TelemetryPath = "/metrics"
	}
	self := append([]SelfFamily(nil), o.Self...)
	for i := 1; i < len(self); i++ { // few, and sorted once
		for j := i; j > 0 && self[j].Name < self[j-1].Name; j-- {
			self[j], self[j-1] = self[j-1], self[j]
		}
	}
	o.Self = self
	if o.Start.IsZero() {
		o.Start = time.Now()
	}
	if o.Refused == nil {
		o.Refused = new(atomic.Uint64)
	}
	if o.ScrapeMemory <= 0 {
		o.ScrapeMemory = DefaultScrapeMemory(o.Cache.Budget())
	}
	return &Handler{o: o}
}

// AppendMetrics appends the whole exposition: the cache's families and the
// self-metrics, merged in name order. A pushed family with the name of a
// self-metric is left out, so that no name appears twice.
func (h *Handler) AppendMetrics(dst []byte, snap *cache.Snapshot) []byte {
	return h.render(dst, snap, nil)
}

// render is AppendMetrics with a flush: when dst has grown past chunkSize
// after a series, flush is given it and returns what to append to next, or
// nil to stop (the client is gone): render then returns nil.
func (h *Handler) render(dst []byte, snap *cache.Snapshot, flush func([]byte) []byte) []byte {
	h.o.Cache.Snapshot(snap)
	self := h.o.Self
	for i := 0; i < snap.Len(); i++ {
		f := snap.Family(i)
		for len(self) > 0 && self[0].Name <= string(f.Name) {
			dst = self[0].Append(dst)
			shadowed := self[0].Name == string(f.Name)
			self = self[1:]
			if shadowed {
				f = nil
				break
			}
		}
		if f != nil {
			if dst = appendFamily(dst, f, flush); dst == nil {
				return nil
			}
		}
	}
	for _, s := range self {
		dst = s.Append(dst)
	}
	return dst
}

// chunkSize is how much exposition a scrape holds before it writes: a large
// cache is streamed rather than rendered whole, which would cost about as
// much memory again as the cache per concurrent scrape.
const chunkSize = 32 << 10

// Serve answers r; see Handler.
func (h *Handler) Serve(w *Response, r *Request) {
	if r.Method != "GET" && r.Method != "HEAD" {
		w.SetHeader("Allow", "GET, HEAD")
		w.Error(405, "method not allowed: this endpoint is read-only")
		return
	}
	switch r.Path {
	case h.o.TelemetryPath:
		h.serveMetrics(w, r)
	case "/-/healthy", "/-/ready":
		w.SetHeader("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("OK\n"))
	case "/":
		h.serveStatus(w, r)
	default:
		w.Error(404, "404 page not found")
	}
}

// Guarded is Serve behind guard, which is asked first for every request
// but those of /-/healthy and /-/ready (load balancers probe them without
// credentials) and answers the request itself when it returns false.
func (h *Handler) Guarded(guard func(*Response, *Request) bool) func(*Response, *Request) {
	return func(w *Response, r *Request) {
		if r.Path == "/-/healthy" || r.Path == "/-/ready" || guard(w, r) {
			h.Serve(w, r)
		}
	}
}

// startCopy begins a response that copies the cache (a scrape, the status
// page): it sets the content type and, but for HEAD, admits the request
// with its copy and extra bytes besides (see admit) and returns the
// buffers to render into. Nil means there is nothing more to write: HEAD,
// or refused with 503. End it with endCopy.
func (h *Handler) startCopy(w *Response, r *Request, contentType string, extra int64) (s *scrape, need int64) {
	w.SetHeader("Content-Type", contentType)
	if r.Method == "HEAD" {
		return nil, 0
	}
	need = int64(h.o.Cache.SnapshotBytes()) + extra
	if msg := h.admit(w, need); msg != "" {
		h.o.Refused.Inc()
		w.Error(503, msg)
		return nil, 0
	}
	s, _ = h.pool.Get().(*scrape)
	if s == nil {
		s = new(scrape)
	}
	return s, need
}

// endCopy gives back what startCopy took.
func (h *Handler) endCopy(w *Response, s *scrape, need int64) {
	h.pool.Put(s)
	h.leave(w, need)
}

func (h *Handler) serveMetrics(w *Response, r *Request) {
	s, need := h.startCopy(w, r, ContentType, scrapeOverhead)
	if s == nil {
		return
	}
	defer h.endCopy(w, s, need)
	// A small exposition goes in one write with its length; a large one in
	// chunks of about chunkSize.
	streamed := false
	out := h.render(s.buf[:0], &s.snap, func(b []byte) []byte {
		streamed = true
		if _, err := w.Write(b); err != nil {
			return nil // the client is gone or cut: render no further
		}
		return b[:0]
	})
	if out != nil {
		s.buf = out
		if !streamed {
			w.SetContentLength(int64(len(s.buf)))
		}
		w.Write(s.buf)
	}
}

// admit takes a slot of MaxInFlight and need bytes of the scrape memory
// budget for w, or says why not. When they are taken, the scrape whose
// client has read nothing for the longest (stalledAfter at least) is cut
// to make room: a client that does not read loses its place to one that
// does, so a few stalled connections cannot keep Prometheus out even for
// the seconds their write deadline allows.
func (h *Handler) admit(w *Response, need int64) string {
	deadline := time.Now().Add(admitWait)
	for {
		h.mu.Lock()
		slot := h.o.MaxInFlight <= 0 || len(h.active) < h.o.MaxInFlight
		mem := len(h.active) == 0 || h.held+need <= h.o.ScrapeMemory
		if slot && mem {
			h.held += need
			h.active = append(h.active, w)
			h.mu.Unlock()
			return ""
		}
		now := time.Now()
		var victim *Response
		var longest time.Duration
		for _, a := range h.active {
			if d := a.stalled(now); d >= stalledAfter && d > longest {
				victim, longest = a, d
			}
		}
		if victim != nil {
			// Under the lock: a scrape leaves the list before its
			// connection serves anything else.
			victim.cut()
		}
		h.mu.Unlock()
		if victim == nil || now.After(deadline) {
			if !slot {
				return "too many scrapes at once (--web.max-requests-in-flight)"
			}
			return "too many scrapes at once for the scrape memory budget (--web.scrape-memory)"
		}
		time.Sleep(5 * time.Millisecond) // for the cut scrape to leave
	}
}

// stalledAfter is how long a scrape's client must have read nothing before
// a new scrape may cut it; admitWait how long the new one waits for that.
const (
	stalledAfter = time.Second
	admitWait    = time.Second
)

func (h *Handler) leave(w *Response, need int64) {
	h.mu.Lock()
	h.held -= need
	for i, a := range h.active {
		if a == w {
			last := len(h.active) - 1
			h.active[i], h.active[last] = h.active[last], nil
			h.active = h.active[:last]
			break
		}
	}
	h.mu.Unlock()
}
