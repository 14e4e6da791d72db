package expose

import (
	"bytes"
	"html"
	"sync"

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
	Version       string       // shown on the landing page
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
// /-/ready and the landing page at /. Anything but GET and HEAD is 405, an
// unknown path 404. It is safe for concurrent use.
type Handler struct {
	o        Options
	pool     sync.Pool     // of *scrape
	inFlight chan struct{} // a token per scrape being served

	mu      sync.Mutex
	held    int64 // bytes reserved by the scrapes being served
	holders int
}

type scrape struct {
	snap cache.Snapshot
	buf  []byte
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
	if o.Refused == nil {
		o.Refused = new(atomic.Uint64)
	}
	if o.ScrapeMemory <= 0 {
		o.ScrapeMemory = DefaultScrapeMemory(o.Cache.Budget())
	}
	h := &Handler{o: o}
	if o.MaxInFlight > 0 {
		h.inFlight = make(chan struct{}, o.MaxInFlight)
	}
	return h
}

// AppendMetrics appends the whole exposition: the cache's families and the
// self-metrics, merged in name order. A pushed family with the name of a
// self-metric is left out, so that no name appears twice.
func (h *Handler) AppendMetrics(dst []byte, snap *cache.Snapshot) []byte {
	return h.render(dst, snap, nil)
}

// render is AppendMetrics with a flush: when dst has grown past chunkSize
// after a family, flush is given it and returns what to append to next.
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
			dst = appendFamily(dst, f, flush)
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
		w.SetHeader("Content-Type", "text/html; charset=utf-8")
		w.Write(h.landing())
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

func (h *Handler) serveMetrics(w *Response, r *Request) {
	if h.inFlight != nil {
		select {
		case h.inFlight <- struct{}{}:
			defer func() { <-h.inFlight }()
		default:
			h.o.Refused.Inc()
			w.Error(503, "too many scrapes at once (--web.max-requests-in-flight)")
			return
		}
	}
	w.SetHeader("Content-Type", ContentType)
	if r.Method == "HEAD" {
		return
	}
	need := int64(h.o.Cache.SnapshotBytes()) + scrapeOverhead
	if !h.reserve(need) {
		h.o.Refused.Inc()
		w.Error(503, "too many scrapes at once for the scrape memory budget")
		return
	}
	defer h.release(need)
	s, _ := h.pool.Get().(*scrape)
	if s == nil {
		s = new(scrape)
	}
	// A small exposition goes in one write with its length; a large one in
	// chunks of about chunkSize.
	streamed := false
	s.buf = h.render(s.buf[:0], &s.snap, func(b []byte) []byte {
		streamed = true
		w.Write(b)
		return b[:0]
	})
	if !streamed {
		w.SetContentLength(int64(len(s.buf)))
	}
	w.Write(s.buf)
	h.pool.Put(s)
}

func (h *Handler) landing() []byte {
	var b bytes.Buffer
	b.WriteString("<!DOCTYPE html>\n<html><head><title>push-gateway</title></head><body>\n<h1>push-gateway</h1>\n")
	b.WriteString("<p>Processes push metrics into a Unix socket; this server only reads.</p>\n<ul>\n")
	b.WriteString(`<li><a href="` + html.EscapeString(h.o.TelemetryPath) + `">` + html.EscapeString(h.o.TelemetryPath) + "</a></li>\n")
	b.WriteString("<li><a href=\"/-/healthy\">/-/healthy</a></li>\n<li><a href=\"/-/ready\">/-/ready</a></li>\n</ul>\n")
	if h.o.Version != "" {
		b.WriteString("<p>" + html.EscapeString(h.o.Version) + "</p>\n")
	}
	b.WriteString("</body></html>\n")
	return b.Bytes()
}

// reserve takes n bytes of the scrape memory budget, or tells that they
// are not there. With no other scrape holding any, it always succeeds.
func (h *Handler) reserve(n int64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.holders > 0 && h.held+n > h.o.ScrapeMemory {
		return false
	}
	h.held += n
	h.holders++
	return true
}

func (h *Handler) release(n int64) {
	h.mu.Lock()
	h.held -= n
	h.holders--
	h.mu.Unlock()
}
