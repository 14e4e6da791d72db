package ingest

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/VictoriaMetrics/easyproto"
	"go.uber.org/atomic"

	"github.com/push-gateway/push-gateway/cache"
)

// DefaultMaxBodySize is the default limit of a push body.
const DefaultMaxBodySize = 1 << 20

// PushStats counts HTTP requests on the socket by method and status code.
type PushStats struct {
	mu     sync.Mutex
	counts map[[2]string]*atomic.Uint64
}

func (p *PushStats) inc(method string, code int) {
	k := [2]string{method, strconv.Itoa(code)}
	p.mu.Lock()
	c := p.counts[k]
	if c == nil {
		if p.counts == nil {
			p.counts = make(map[[2]string]*atomic.Uint64)
		}
		c = new(atomic.Uint64)
		p.counts[k] = c
	}
	p.mu.Unlock()
	c.Inc()
}

// Each calls f for every method and code seen, in a stable order.
func (p *PushStats) Each(f func(method, code string, n uint64)) {
	p.mu.Lock()
	keys := make([][2]string, 0, len(p.counts))
	for k := range p.counts {
		keys = append(keys, k)
	}
	p.mu.Unlock()
	slices.SortFunc(keys, func(a, b [2]string) int {
		if c := strings.Compare(a[0], b[0]); c != 0 {
			return c
		}
		return strings.Compare(a[1], b[1])
	})
	for _, k := range keys {
		p.mu.Lock()
		n := p.counts[k].Load()
		p.mu.Unlock()
		f(k[0], k[1], n)
	}
}

// PushHandler serves the Prometheus Pushgateway API on the socket:
// PUT, POST and DELETE on /metrics/job/<JOB>{/<LABEL>/<VALUE>}, and PATCH
// on /metrics/<NAME>. It knows HTTP's methods, paths and status codes, not
// the server that carries them: reads (GET, HEAD) are the caller's.
type PushHandler struct {
	Cache       *cache.Cache
	MaxBodySize int64 // 0 means DefaultMaxBodySize
	// BudgetWait is how long a body that has outgrown bodyFree waits for
	// room in the budget of bodies being read; then it gets 503. 0 means
	// DefaultBudgetWait.
	BudgetWait time.Duration
	Stats      *PushStats

	decoding chan struct{} // bounds the bodies decoded at once
	reading  byteBudget    // bounds the bytes of bodies read and not yet decoded
	once     sync.Once
}

// maxDecoding is how many push bodies are decoded at once; the others wait
// their turn. Decoding holds a body up to three times over (the raw bytes,
// their gunzipped copy, the decoded families). A body is read in full
// before it waits here, so a client that sends its body slowly, or stalls,
// holds up only itself.
const maxDecoding = 4

// Bodies being read are bounded in memory by a budget of their own: the
// first bodyFree bytes of each come with the connection (like its 4 KiB
// head buffer); beyond that, a body takes room from a budget of
// bodiesInBudget × MaxBodySize bytes as it grows, and gives it back once
// decoded. Room is taken as bytes arrive, never on a Content-Length's word:
// a client that announces 1 MiB and stalls holds 4 KiB.
const (
	bodyFree       = 4 << 10
	bodiesInBudget = 4
)

// DefaultBudgetWait is PushHandler.BudgetWait's default.
const DefaultBudgetWait = 10 * time.Second

const pushPrefix = "/metrics/job"

// PushRequest is what Handle needs of an HTTP request.
type PushRequest struct {
	Method          string
	Path            string // percent-decoded
	RawQuery        string
	ContentType     string
	ContentEncoding string
	ContentLength   int64 // -1 when unknown
	Body            io.Reader
}

// PushResponse is Handle's answer: a status code, an Allow header for 405,
// and a message for the body of an error.
type PushResponse struct {
	Code    int
	Allow   string
	Message string
}

// Handle serves a request that is not a read, and counts it in Stats.
func (h *PushHandler) Handle(r *PushRequest) PushResponse {
	res := h.serve(r)
	if h.Stats != nil {
		method := r.Method
		switch method {
		case "PUT", "POST", "DELETE", "PATCH":
		default:
			method = "other" // a client's made-up methods make no new series
		}
		h.Stats.inc(method, res.Code)
	}
	return res
}

func refuse(code int, msg string) PushResponse { return PushResponse{Code: code, Message: msg} }

func (h *PushHandler) serve(r *PushRequest) PushResponse {
	path := r.Path
	ttl := cache.DefaultTTL
	if p, ok := strings.CutPrefix(path, "/ttl/"); ok {
		d, rest, _ := strings.Cut(p, "/")
		var valid bool
		if ttl, valid = ParseDuration([]byte(d)); !valid {
			return refuse(400, fmt.Sprintf("invalid TTL %q: a duration such as 90s, 25h, 1d, 1h30m, or 0 for none", d))
		}
		path = "/" + rest
	}
	aggregate := false
	if p, ok := strings.CutPrefix(path, "/aggregate/"); ok {
		path, aggregate = "/"+p, true
	}
	if r.Method == "PATCH" && !aggregate && strings.HasPrefix(path, "/metrics/") {
		return h.patch(r, strings.TrimPrefix(path, "/metrics/"), ttl)
	}
	if path == "/metrics" {
		if r.Method != "POST" {
			return PushResponse{Code: 405, Allow: "GET, HEAD, POST", Message: "method not allowed"}
		}
		return h.seed(r, ttl)
	}
	if name, ok := strings.CutPrefix(path, "/metrics/"); ok && r.Method == "DELETE" &&
		name != "job" && !strings.Contains(name, "/") && !strings.HasPrefix(name, "job@") {
		return h.deleteFamily(r, name)
	}
	if path != pushPrefix && !strings.HasPrefix(path, pushPrefix+"/") && !strings.HasPrefix(path, pushPrefix+"@base64/") {
		return refuse(404, "404 page not found")
	}
	var mode cache.PushMode
	switch r.Method {
	case "PUT":
		mode = cache.ReplaceGroup
	case "POST":
		mode = cache.ReplaceFamilies
	case "DELETE":
	default:
		return PushResponse{Code: 405, Allow: "GET, HEAD, PUT, POST, DELETE, PATCH", Message: "method not allowed"}
	}
	group, err := ParseGroupingKey(strings.TrimPrefix(path, "/metrics/"))
	if err != nil {
		return refuse(400, err.Error())
	}
	if r.Method == "DELETE" {
		h.Cache.DeleteGroup(group)
		return PushResponse{Code: 202}
	}
	fams, err := h.decodeBody(r)
	if err == nil {
		err = takeClearmode(fams)
	}
	var check checkError
	failed := errors.As(err, &check)
	if err == nil {
		if aggregate {
			err = h.Cache.AggregatePushTTL(group, fams, ttl)
		} else {
			err = h.Cache.PushTTL(group, fams, mode, ttl)
		}
		failed = err != nil
	}
	if err != nil {
		if failed {
			h.Cache.PushFailedTTL(group, ttl)
		}
		return refuseBody(err)
	}
	return PushResponse{Code: 200}
}

// refuseBody answers a push whose body could not be read, decoded or
// stored, with the same code on every endpoint: a client retries a 408 or
// a 503, not a 400.
func refuseBody(err error) PushResponse {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return refuse(408, "timed out reading the body (--ingest.body-timeout)")
	case errors.Is(err, errBusy):
		return refuse(503, err.Error())
	}
	code := 400
	if errors.Is(err, errBodyTooLarge) {
		code = 413
	} else if errors.Is(err, errEncoding) {
		code = 415
	}
	return refuse(code, "pushed metrics are invalid or inconsistent with existing metrics: "+err.Error())
}

// takeClearmode moves each metric's clearmode label, which is never stored,
// into its Mode.
func takeClearmode(fams []cache.PushFamily) error {
	for i := range fams {
		for j := range fams[i].Metrics {
			m := &fams[i].Metrics[j]
			for k, l := range m.Labels {
				if string(l.Name) != "clearmode" {
					continue
				}
				mode, ok := cache.ParseMode(l.Value)
				if !ok {
					return checkError{fmt.Errorf("clearmode %q is not aggregate, replace or family", l.Value)}
				}
				m.Mode = mode
				m.Labels = slices.Delete(m.Labels, k, k+1)
				break
			}
		}
	}
	return nil
}

// seed serves POST /metrics, the serverless gateway's push: an aggregating
// push (see cache.AggregatePush) of no group, so no job label and no
// push_time_seconds.
func (h *PushHandler) seed(r *PushRequest, ttl time.Duration) PushResponse {
	fams, err := h.decodeBody(r)
	if err == nil {
		err = takeClearmode(fams)
	}
	if err == nil {
		err = h.Cache.AggregatePushTTL(nil, fams, ttl)
	}
	if err != nil {
		return refuseBody(err)
	}
	return PushResponse{Code: 202}
}

// deleteFamily serves DELETE /metrics/<NAME>?<LABEL>=<VALUE>&…: every
// series of family NAME whose labels include each pair goes, wherever it
// came from.
func (h *PushHandler) deleteFamily(r *PushRequest, name string) PushResponse {
	if !validMetricName([]byte(name)) {
		return refuse(400, fmt.Sprintf("invalid metric name %q", name))
	}
	labels, _, res := queryLabels(r.RawQuery, false)
	if res.Code != 0 {
		return res
	}
	h.Cache.DeleteSeries([]byte(name), labels)
	return PushResponse{Code: 202}
}

// queryLabels reads the label pairs of a query, each name once; with
// clearmode, a clearmode pair is a Mode and no label.
func queryLabels(raw string, clearmode bool) ([]cache.Label, cache.Mode, PushResponse) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, 0, refuse(400, "invalid query: "+err.Error())
	}
	var labels []cache.Label
	mode := cache.ModeDefault
	for k, vs := range q {
		if len(vs) != 1 {
			return nil, 0, refuse(400, fmt.Sprintf("label %q given %d times", k, len(vs)))
		}
		if k == "clearmode" && clearmode {
			m, ok := cache.ParseMode([]byte(vs[0]))
			if !ok {
				return nil, 0, refuse(400, fmt.Sprintf("clearmode %q is not aggregate, replace or family", vs[0]))
			}
			mode = m
			continue
		}
		if !validLabelName(k) {
			return nil, 0, refuse(400, fmt.Sprintf("invalid label name %q", k))
		}
		if !utf8.ValidString(vs[0]) {
			return nil, 0, refuse(400, fmt.Sprintf("label value of %s is not valid UTF-8", k))
		}
		labels = append(labels, cache.Label{Name: []byte(k), Value: []byte(vs[0])})
	}
	return labels, mode, PushResponse{}
}

// patch serves PATCH /metrics/<NAME>?<LABEL>=<VALUE>&…: the counter NAME
// with those labels goes up by 1, or by the non-negative number the body
// holds. clearmode=replace sets it instead.
func (h *PushHandler) patch(r *PushRequest, name string, ttl time.Duration) PushResponse {
	if !validMetricName([]byte(name)) {
		return refuse(400, fmt.Sprintf("invalid metric name %q", name))
	}
	labels, mode, res := queryLabels(r.RawQuery, true)
	if res.Code != 0 {
		return res
	}
	if err := checkEncoding(r.ContentEncoding); err != nil {
		return refuseBody(err)
	}
	var in io.Reader = io.LimitReader(r.Body, maxPatchBody)
	if strings.EqualFold(r.ContentEncoding, "gzip") {
		// A gzip stream of a number: its header and trailer take 18
		// bytes, and a short input can come out longer than it went in.
		zr, err := gzip.NewReader(io.LimitReader(r.Body, 4*maxPatchBody))
		if err != nil {
			return refuseBody(fmt.Errorf("gzip: %w", err))
		}
		defer zr.Close()
		in = io.LimitReader(zr, maxPatchBody)
	}
	body, err := io.ReadAll(in)
	if err != nil {
		return refuseBody(fmt.Errorf("reading body: %w", err))
	}
	v := 1.0
	if t := strings.TrimSpace(string(body)); t != "" {
		v, err = strconv.ParseFloat(t, 64)
		if err != nil || strings.ContainsAny(t, "pPxX_") || !(v >= 0) || math.IsInf(v, 0) {
			return refuse(400, fmt.Sprintf("body %q is not a non-negative number", t))
		}
	}
	b := h.Cache.Begin()
	b.SetTTL(ttl)
	switch mode {
	case cache.ModeFamily:
		if err = b.ReplaceFamily([]byte(name), labels, v); err == nil {
			err = b.Put([]byte(name), labels, v, cache.Counter, false)
		}
	default:
		err = b.Put([]byte(name), labels, v, cache.Counter, mode != cache.ModeReplace)
	}
	b.End()
	if err != nil {
		return refuse(400, err.Error())
	}
	return PushResponse{Code: 202}
}

var errBodyTooLarge = errors.New("body larger than the limit")

var errEncoding = errors.New("unsupported Content-Encoding")

// checkEncoding refuses a Content-Encoding other than gzip or identity:
// read as plain text, "gzip, gzip" or "br" would be refused as malformed
// at best.
func checkEncoding(e string) error {
	if e != "" && !strings.EqualFold(e, "gzip") && !strings.EqualFold(e, "identity") {
		return fmt.Errorf("%w %q: gzip or identity only", errEncoding, e)
	}
	return nil
}

// maxPatchBody is the most of a PATCH body read: a number.
const maxPatchBody = 64

// checkError is a push refused by the checks the Pushgateway makes once a
// body has been decoded, against its group (timestamps, names, label
// values): like a type conflict, it sets the group's
// push_failure_time_seconds. A body that does not decode at all never
// reaches a group and sets nothing, as in the Pushgateway.
type checkError struct{ error }

func (e checkError) Unwrap() error { return e.error }

var errTimestamp = checkError{errors.New("pushed metrics must not have timestamps")}

// decodeBody reads a push body in the text format or, told by its
// Content-Type as the Pushgateway tells it, the delimited protobuf format.
// The body is read before it takes one of the maxDecoding turns.
func (h *PushHandler) decodeBody(r *PushRequest) ([]cache.PushFamily, error) {
	limit := h.MaxBodySize
	if limit <= 0 {
		limit = DefaultMaxBodySize
	}
	if r.ContentLength > limit {
		return nil, fmt.Errorf("%w of %d bytes (--ingest.max-body-size)", errBodyTooLarge, limit)
	}
	if err := checkEncoding(r.ContentEncoding); err != nil {
		return nil, err
	}
	h.once.Do(func() {
		h.decoding = make(chan struct{}, maxDecoding)
		h.reading.init(bodiesInBudget * limit)
	})
	wait := h.BudgetWait
	if wait <= 0 {
		wait = DefaultBudgetWait
	}
	data, claim, err := h.readBody(r.Body, r.ContentLength, limit, wait)
	defer h.reading.leave(claim)
	if err != nil {
		return nil, err
	}
	h.decoding <- struct{}{}
	defer func() { <-h.decoding }()
	if strings.EqualFold(r.ContentEncoding, "gzip") {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		if data, err = io.ReadAll(io.LimitReader(zr, limit+1)); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		if int64(len(data)) > limit {
			return nil, fmt.Errorf("%w of %d bytes (--ingest.max-body-size)", errBodyTooLarge, limit)
		}
	}
	mt, params, err := mime.ParseMediaType(r.ContentType)
	if err == nil && mt == "application/vnd.google.protobuf" &&
		params["encoding"] == "delimited" && params["proto"] == "io.prometheus.client.MetricFamily" {
		return DecodeProtobuf(data)
	}
	return decodeTextBody(data)
}

// decodeTextBody decodes a text body, or one JSON string that holds text
// (what promjs sends: JSON.stringify(registry.metrics())), told by its
// first non-blank byte, '"', which no text body starts with.
func decodeTextBody(data []byte) ([]cache.PushFamily, error) {
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0] == '"' {
		var text string
		if err := json.Unmarshal(data, &text); err != nil {
			return nil, fmt.Errorf("body is not one JSON string of text exposition: %w", err)
		}
		data = []byte(text)
	}
	return DecodeText(data)
}

var errBusy = errors.New("too many push bodies are being read at once; try again")

// readBody reads a body of length bytes (-1: unknown) up to limit. It
// returns the claim it made on h.reading, to give back (leave) once the
// body is no longer needed, also on error; nil when it needed none.
func (h *PushHandler) readBody(r io.Reader, length, limit int64, wait time.Duration) (data []byte, c *claim, err error) {
	size := min(bodyFree, limit+1)
	last := limit + 1 // the largest the buffer can grow to
	if length >= 0 {
		size = min(size, length)
		last = min(last, length)
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			if length >= 0 && int64(len(buf)) == length {
				return buf, c, nil // all of it, as framed
			}
			if int64(len(buf)) > limit {
				return nil, c, fmt.Errorf("%w of %d bytes (--ingest.max-body-size)", errBodyTooLarge, limit)
			}
			grown := min(2*int64(cap(buf)), last)
			need := grown - max(int64(cap(buf)), bodyFree)
			if need > 0 {
				if c == nil {
					c = h.reading.join(last - bodyFree)
				}
				if !h.reading.take(c, need, wait) {
					return nil, c, errBusy
				}
			}
			buf = append(make([]byte, 0, grown), buf...)
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			if int64(len(buf)) > limit {
				return nil, c, fmt.Errorf("%w of %d bytes (--ingest.max-body-size)", errBodyTooLarge, limit)
			}
			return buf, c, nil
		}
		if err != nil {
			return nil, c, fmt.Errorf("reading body: %w", err)
		}
	}
}

// byteBudget hands out up to a fixed number of bytes to claims, each of
// which takes its bytes in steps up to a most it told when it joined; a
// taker waits for room to be given back. A step is given only if every
// claim can then still get all it may take, one after the other, as those
// before it finish and give theirs back (the banker's algorithm): claims
// that each hold part of the budget and all wait for more would wait for
// each other until they time out. Safe for concurrent use.
type byteBudget struct {
	mu     sync.Mutex
	free   int64
	freed  chan struct{} // closed, and replaced, when bytes are given back
	claims []*claim
	order  []*claim // scratch for safe
}

// claim is a body's share of a byteBudget: held, and up to need more.
type claim struct{ held, need int64 }

func (b *byteBudget) init(n int64) {
	b.free, b.freed = n, make(chan struct{})
}

// join registers a claim that will take up to most bytes.
func (b *byteBudget) join(most int64) *claim {
	c := &claim{need: most}
	b.mu.Lock()
	b.claims = append(b.claims, c)
	b.mu.Unlock()
	return c
}

// take takes n more bytes for c, n at most c's need, waiting up to wait
// for them; it tells whether it took them.
func (b *byteBudget) take(c *claim, n int64, wait time.Duration) bool {
	var timeout <-chan time.Time
	for {
		b.mu.Lock()
		if b.free >= n {
			b.free -= n
			c.held, c.need = c.held+n, c.need-n
			if b.safe() {
				b.mu.Unlock()
				return true
			}
			b.free += n
			c.held, c.need = c.held-n, c.need+n
		}
		freed := b.freed
		b.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(wait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-freed:
		case <-timeout:
			return false
		}
	}
}

// safe tells whether the claims can all finish, the least needy first:
// if any can, that one can, and its finishing only adds room.
func (b *byteBudget) safe() bool {
	b.order = append(b.order[:0], b.claims...)
	slices.SortFunc(b.order, func(x, y *claim) int { return cmp.Compare(x.need, y.need) })
	free := b.free
	for _, c := range b.order {
		if c.need > free {
			return false
		}
		free += c.held
	}
	return true
}

// leave gives back what c holds and ends it; c may be nil.
func (b *byteBudget) leave(c *claim) {
	if c == nil {
		return
	}
	b.mu.Lock()
	b.free += c.held
	b.claims = slices.DeleteFunc(b.claims, func(o *claim) bool { return o == c })
	clear(b.order) // no pointer to a claim gone stays reachable
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}

// ParseGroupingKey parses the part of a push path after /metrics/:
// job/<JOB>{/<LABEL>/<VALUE>}, where a name ending in @base64 marks its
// value as base64url-encoded (padding optional, "=" alone for an empty value),
// as the Pushgateway does.
func ParseGroupingKey(path string) ([]cache.Label, error) {
	parts := strings.Split(path, "/")
	if len(parts)%2 != 0 {
		return nil, fmt.Errorf("odd number of components in grouping key %q", path)
	}
	var group []cache.Label
	for i := 0; i < len(parts); i += 2 {
		name, value := parts[i], parts[i+1]
		if n, ok := strings.CutSuffix(name, "@base64"); ok {
			v, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(value, "="))
			if err != nil {
				return nil, fmt.Errorf("invalid base64 encoding for label %s=%q: %v", n, value, err)
			}
			name, value = n, string(v)
		}
		if !validLabelName(name) {
			return nil, fmt.Errorf("improper label name %q", name)
		}
		if i == 0 && name != "job" {
			return nil, errors.New("job name is required")
		}
		for _, l := range group {
			if string(l.Name) == name {
				return nil, fmt.Errorf("label %q twice in the grouping key", name)
			}
		}
		if !utf8.ValidString(value) {
			return nil, fmt.Errorf("label value of %s is not valid UTF-8", name)
		}
		group = append(group, cache.Label{Name: []byte(name), Value: []byte(value)})
	}
	if len(group) == 0 || len(group[0].Value) == 0 {
		return nil, errors.New("job name is required")
	}
	return group, nil
}

// DecodeText parses a push body in the text format as the Pushgateway does
// with expfmt: TYPE and HELP apply within the body, samples join the family
// of their name, or of the histogram or summary whose _bucket, _sum or
// _count line they are. Timestamps are refused, as the Pushgateway refuses
// them.
func DecodeText(data []byte) ([]cache.PushFamily, error) {
	b := newFamilyBuilder()
	var p Parser
	for n := 1; len(data) > 0; n++ {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		kind, err := p.Parse(line)
		if err != nil {
			return nil, fmt.Errorf("text format parsing error in line %d: %v", n, err)
		}
		if err := b.line(kind, &p); err != nil {
			return nil, fmt.Errorf("text format parsing error in line %d: %w", n, err)
		}
	}
	return b.families(), nil
}

type familyBuilder struct {
	order []string
	fams  map[string]*builderFamily
}

type builderFamily struct {
	f        cache.PushFamily
	typed    bool
	byLabels map[string]int // compound metrics by their label set
}

func newFamilyBuilder() *familyBuilder {
	return &familyBuilder{fams: make(map[string]*builderFamily)}
}

func (b *familyBuilder) get(name []byte) *builderFamily {
	f := b.fams[string(name)]
	if f == nil {
		f = &builderFamily{f: cache.PushFamily{Name: bytes.Clone(name)}, byLabels: map[string]int{}}
		b.fams[string(name)] = f
		b.order = append(b.order, string(name))
	}
	return f
}

// owner finds the family a sample line belongs to, as expfmt does.
func (b *familyBuilder) owner(name []byte) (f *builderFamily, suffix string) {
	if f := b.fams[string(name)]; f != nil {
		return f, ""
	}
	for _, s := range []string{"_sum", "_count", "_bucket"} {
		base, ok := bytes.CutSuffix(name, []byte(s))
		if !ok {
			continue
		}
		if f := b.fams[string(base)]; f != nil && (f.f.Type == cache.Histogram || f.f.Type == cache.Summary && s != "_bucket") {
			return f, s
		}
	}
	return b.get(name), ""
}

func (b *familyBuilder) line(kind LineKind, p *Parser) error {
	switch kind {
	case LineType:
		f := b.get(p.Name)
		if f.typed || len(f.f.Metrics) > 0 {
			return fmt.Errorf("second TYPE line for metric name %q, or TYPE reported after samples", p.Name)
		}
		f.f.Type, f.typed = p.Type, true
	case LineHelp:
		f := b.get(p.Name)
		if f.f.HasHelp {
			return fmt.Errorf("second HELP line for metric name %q", p.Name)
		}
		f.f.Help, f.f.HasHelp = bytes.Clone(p.Help), true
	case LineSample:
		if p.Timestamp {
			return errTimestamp
		}
		f, suffix := b.owner(p.Name)
		labels := make([]cache.Label, 0, len(p.Labels))
		var bound []byte
		hasBound := false
		for _, l := range p.Labels {
			if (f.f.Type == cache.Histogram && suffix == "_bucket" && string(l.Name) == "le") ||
				(f.f.Type == cache.Summary && suffix == "" && string(l.Name) == "quantile") {
				bound, hasBound = l.Value, true
				continue
			}
			labels = append(labels, cache.Label{Name: bytes.Clone(l.Name), Value: bytes.Clone(l.Value)})
		}
		if !f.f.Type.Compound() {
			f.f.Metrics = append(f.f.Metrics, cache.PushMetric{Labels: labels, Value: p.Value})
			return nil
		}
		if suffix == "" && f.f.Type == cache.Histogram {
			return fmt.Errorf("histogram %s sample without _bucket, _sum or _count suffix", p.Name)
		}
		var lk []byte
		for _, l := range sortedCopy(labels) {
			if len(l.Value) > 0 {
				lk = append(append(append(append(lk, l.Name...), 0), l.Value...), 0)
			}
		}
		i, ok := f.byLabels[string(lk)]
		if !ok {
			i = len(f.f.Metrics)
			f.byLabels[string(lk)] = i
			f.f.Metrics = append(f.f.Metrics, cache.PushMetric{Labels: labels})
		}
		m := &f.f.Metrics[i]
		switch suffix {
		case "_sum":
			if m.HasSum {
				return fmt.Errorf("second _sum for %s", p.Name)
			}
			m.Sum, m.HasSum = p.Value, true
		case "_count":
			if m.HasCount {
				return fmt.Errorf("second _count for %s", p.Name)
			}
			m.Count, m.HasCount = p.Value, true
		default:
			if !hasBound {
				if f.f.Type == cache.Histogram {
					return fmt.Errorf("histogram bucket %s without le label", p.Name)
				}
				return fmt.Errorf("summary %s sample without quantile label", p.Name)
			}
			v, ok := cache.ParseFloat(bound)
			if !ok || math.IsNaN(v) && f.f.Type == cache.Histogram {
				return fmt.Errorf("invalid bound %q in %s", bound, p.Name)
			}
			for _, bk := range m.Buckets {
				if bk.Bound == v {
					return fmt.Errorf("duplicate bucket or quantile %q in %s", bound, p.Name)
				}
			}
			m.Buckets = append(m.Buckets, cache.Bucket{Bound: v, Value: p.Value})
		}
	}
	return nil
}

func sortedCopy(ls []cache.Label) []cache.Label {
	c := slices.Clone(ls)
	slices.SortFunc(c, func(a, b cache.Label) int { return bytes.Compare(a.Name, b.Name) })
	return c
}

// families returns what was built, with each histogram's and summary's
// buckets in order, the +Inf bucket, _sum and _count always present, as the
// Pushgateway's exposition writes them.
func (b *familyBuilder) families() []cache.PushFamily {
	out := make([]cache.PushFamily, 0, len(b.order))
	for _, n := range b.order {
		f := b.fams[n].f
		if len(f.Metrics) == 0 {
			continue // expfmt drops a family with no samples
		}
		if f.Type.Compound() {
			for i := range f.Metrics {
				completeCompound(&f.Metrics[i], f.Type)
			}
		}
		out = append(out, f)
	}
	return out
}

func completeCompound(m *cache.PushMetric, t cache.Type) {
	slices.SortFunc(m.Buckets, func(a, b cache.Bucket) int {
		switch {
		case a.Bound < b.Bound:
			return -1
		case a.Bound > b.Bound:
			return 1
		}
		return 0
	})
	if t == cache.Histogram && (len(m.Buckets) == 0 || !math.IsInf(m.Buckets[len(m.Buckets)-1].Bound, 1)) {
		m.Buckets = append(m.Buckets, cache.Bucket{Bound: math.Inf(1), Value: m.Count})
	}
	m.HasSum, m.HasCount = true, true
}

// DecodeProtobuf parses a body of length-delimited io.prometheus.client.
// MetricFamily messages, as client_golang's push package sends by default.
func DecodeProtobuf(data []byte) ([]cache.PushFamily, error) {
	var out []cache.PushFamily
	seen := map[string]bool{}
	for len(data) > 0 {
		n, rest, ok := easyproto.UnmarshalMessageLen(data)
		if !ok || n > len(rest) {
			return nil, errors.New("protobuf: truncated or invalid message length")
		}
		f, err := decodeFamily(rest[:n])
		if err != nil {
			return nil, fmt.Errorf("protobuf: %w", err)
		}
		data = rest[n:]
		// The Pushgateway keeps the last family of a name.
		if seen[string(f.Name)] {
			out = slices.DeleteFunc(out, func(o cache.PushFamily) bool { return bytes.Equal(o.Name, f.Name) })
		}
		seen[string(f.Name)] = true
		out = append(out, f)
	}
	return out, nil
}

func decodeFamily(src []byte) (cache.PushFamily, error) {
	var f cache.PushFamily
	var fc easyproto.FieldContext
	var metrics [][]byte
	ptype := int32(3) // UNTYPED, the proto default is COUNTER (0) but only when set
	typeSet := false
	for len(src) > 0 {
		var err error
		if src, err = fc.NextField(src); err != nil {
			return f, err
		}
		switch fc.FieldNum {
		case 1:
			s, ok := fc.Bytes()
			if !ok {
				return f, errors.New("bad name")
			}
			f.Name = bytes.Clone(s)
		case 2:
			s, ok := fc.Bytes()
			if !ok {
				return f, errors.New("bad help")
			}
			f.Help, f.HasHelp = bytes.Clone(s), true
		case 3:
			t, ok := fc.Enum()
			if !ok {
				return f, errors.New("bad type")
			}
			ptype, typeSet = t, true
		case 4:
			m, ok := fc.MessageData()
			if !ok {
				return f, errors.New("bad metric")
			}
			metrics = append(metrics, m)
		}
	}
	if !typeSet {
		ptype = 0 // proto2 default of MetricType is COUNTER
	}
	switch ptype {
	case 0:
		f.Type = cache.Counter
	case 1:
		f.Type = cache.Gauge
	case 2:
		f.Type = cache.Summary
	case 3:
		f.Type = cache.Untyped
	case 4, 5:
		f.Type = cache.Histogram
	default:
		return f, fmt.Errorf("unknown metric type %d", ptype)
	}
	if !validMetricName(f.Name) {
		return f, checkError{fmt.Errorf("invalid metric name %q", f.Name)}
	}
	if f.HasHelp && !utf8.ValidString(string(f.Help)) {
		return f, checkError{fmt.Errorf("help of %s is not valid UTF-8", f.Name)}
	}
	for _, m := range metrics {
		pm, err := decodeMetric(m, f.Type)
		if err != nil {
			return f, fmt.Errorf("metric of %s: %w", f.Name, err)
		}
		f.Metrics = append(f.Metrics, pm)
	}
	return f, nil
}

// valueField is the number of the Metric field that holds a value of each
// type: gauge 2, counter 3, summary 4, untyped 5, histogram 7.
var valueField = [...]uint32{cache.Untyped: 5, cache.Counter: 3, cache.Gauge: 2, cache.Histogram: 7, cache.Summary: 4}

func decodeMetric(src []byte, t cache.Type) (cache.PushMetric, error) {
	var m cache.PushMetric
	var fc easyproto.FieldContext
	var value []byte // the submessage that holds the value for type t
	want := valueField[t]
	for len(src) > 0 {
		var err error
		if src, err = fc.NextField(src); err != nil {
			return m, err
		}
		switch fc.FieldNum {
		case 1:
			lp, ok := fc.MessageData()
			if !ok {
				return m, errors.New("bad label")
			}
			l, err := decodeLabel(lp)
			if err != nil {
				return m, err
			}
			m.Labels = append(m.Labels, l)
		case 6:
			return m, errTimestamp
		case want:
			v, ok := fc.MessageData()
			if !ok {
				return m, errors.New("bad value")
			}
			value = v
		}
	}
	for i, l := range m.Labels {
		if !validLabelName(string(l.Name)) {
			return m, checkError{fmt.Errorf("invalid label name %q", l.Name)}
		}
		if !utf8.ValidString(string(l.Value)) {
			return m, checkError{fmt.Errorf("label value of %s is not valid UTF-8", l.Name)}
		}
		for _, o := range m.Labels[:i] {
			if bytes.Equal(o.Name, l.Name) {
				return m, checkError{fmt.Errorf("duplicate label %q", l.Name)}
			}
		}
	}
	switch t {
	case cache.Counter, cache.Gauge, cache.Untyped:
		ok, err := fc.FieldByNum(value, 1)
		if err != nil {
			return m, err
		}
		if ok {
			m.Value, _ = fc.Double()
		}
	case cache.Summary:
		if err := decodeSummary(value, &m); err != nil {
			return m, err
		}
		completeCompound(&m, t)
	case cache.Histogram:
		if err := decodeHistogram(value, &m); err != nil {
			return m, err
		}
		completeCompound(&m, t)
	}
	return m, nil
}

func decodeLabel(src []byte) (cache.Label, error) {
	var l cache.Label
	var fc easyproto.FieldContext
	for len(src) > 0 {
		var err error
		if src, err = fc.NextField(src); err != nil {
			return l, err
		}
		b, ok := fc.Bytes()
		if !ok {
			continue
		}
		switch fc.FieldNum {
		case 1:
			l.Name = bytes.Clone(b)
		case 2:
			l.Value = bytes.Clone(b)
		}
	}
	return l, nil
}

func decodeSummary(src []byte, m *cache.PushMetric) error {
	var fc easyproto.FieldContext
	for len(src) > 0 {
		var err error
		if src, err = fc.NextField(src); err != nil {
			return err
		}
		switch fc.FieldNum {
		case 1:
			n, _ := fc.Uint64()
			m.Count = float64(n)
		case 2:
			m.Sum, _ = fc.Double()
		case 3:
			q, ok := fc.MessageData()
			if !ok {
				return errors.New("bad quantile")
			}
			var b cache.Bucket
			var qc easyproto.FieldContext
			for len(q) > 0 {
				if q, err = qc.NextField(q); err != nil {
					return err
				}
				switch qc.FieldNum {
				case 1:
					b.Bound, _ = qc.Double()
				case 2:
					b.Value, _ = qc.Double()
				}
			}
			m.Buckets = append(m.Buckets, b)
		}
	}
	return nil
}

func decodeHistogram(src []byte, m *cache.PushMetric) error {
	var fc easyproto.FieldContext
	countFloat := 0.0
	for len(src) > 0 {
		var err error
		if src, err = fc.NextField(src); err != nil {
			return err
		}
		switch fc.FieldNum {
		case 1:
			n, _ := fc.Uint64()
			m.Count = float64(n)
		case 4:
			countFloat, _ = fc.Double()
		case 2:
			m.Sum, _ = fc.Double()
		case 3:
			bm, ok := fc.MessageData()
			if !ok {
				return errors.New("bad bucket")
			}
			var b cache.Bucket
			var bc easyproto.FieldContext
			cf := 0.0
			for len(bm) > 0 {
				if bm, err = bc.NextField(bm); err != nil {
					return err
				}
				switch bc.FieldNum {
				case 1:
					n, _ := bc.Uint64()
					b.Value = float64(n)
				case 2:
					b.Bound, _ = bc.Double()
				case 4:
					cf, _ = bc.Double()
				}
			}
			if cf > 0 {
				b.Value = cf
			}
			if math.IsNaN(b.Bound) {
				return errors.New("histogram bucket with a NaN upper bound")
			}
			m.Buckets = append(m.Buckets, b)
		}
	}
	if countFloat > 0 {
		m.Count = countFloat
	}
	return nil
}
