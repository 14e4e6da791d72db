package ingest

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/push-gateway/push-gateway/cache"
)

// JSON events on the raw stream, in the format of the prom-stream-gateway:
//
//	{"type":"counter","name":"jobs_total","value":1,"labels":{"queue":"a"}}
//
// type is counter (adds value), gauge (sets it), histogram (observes value
// into buckets, client_golang's defaults when absent) or summary (observes
// value; quantiles with their epsilons as error targets). help is optional;
// so is ttl, a duration string that gives the event's series a TTL of its
// own (see cache.Batch.SetTTL), instead of the connection's.

// ReasonInvalidEvent is the reason a JSON event is rejected for.
const ReasonInvalidEvent = "invalid_event"

// Event is one parsed JSON event. Its slices are valid until the next Parse.
type Event struct {
	Type      cache.Type
	Name      []byte
	Value     float64
	Labels    []cache.Label
	Buckets   []float64
	Quantiles []float64
	Epsilons  []float64
	Help      []byte
	HasHelp   bool
	TTL       time.Duration // from "ttl"; cache.DefaultTTL when absent

	hasType, hasName, hasValue, hasBuckets, hasQuantiles, hasEpsilons bool

	buf []byte // unescaped strings
}

// DefaultObjectives are the quantiles and error targets of a summary event
// that names none: client_golang's former defaults.
var DefaultObjectives = struct{ Quantiles, Epsilons []float64 }{
	[]float64{0.5, 0.9, 0.99}, []float64{0.05, 0.01, 0.001},
}

type jsonError string

func (e jsonError) Error() string { return string(e) }

// Parse parses one JSON event. It allocates nothing once its buffers have
// grown; string values point into e's own buffer.
func (e *Event) Parse(line []byte) error {
	*e = Event{Labels: e.Labels[:0], Buckets: e.Buckets[:0], Quantiles: e.Quantiles[:0], Epsilons: e.Epsilons[:0], buf: e.buf[:0], TTL: cache.DefaultTTL}
	// Strings are appended to buf while slices into it are taken; reserve
	// enough that it never moves: unescaped text is never longer.
	if cap(e.buf) < len(line) {
		e.buf = make([]byte, 0, len(line))
	}
	p := jsonParser{s: line, e: e}
	p.ws()
	if !p.eat('{') {
		return jsonError("event is not a JSON object")
	}
	p.ws()
	if p.eat('}') {
		return jsonError("empty event")
	}
	for {
		p.ws()
		key, err := p.str()
		if err != nil {
			return err
		}
		p.ws()
		if !p.eat(':') {
			return jsonError("expected : after key")
		}
		p.ws()
		if err := p.field(key); err != nil {
			return err
		}
		p.ws()
		if p.eat(',') {
			continue
		}
		if p.eat('}') {
			break
		}
		return jsonError("expected , or } in object")
	}
	p.ws()
	if p.i != len(p.s) {
		return jsonError("trailing bytes after the event")
	}
	return e.check()
}

func (e *Event) check() error {
	switch {
	case !e.hasType:
		return jsonError(`missing "type"`)
	case !e.hasName:
		return jsonError(`missing "name"`)
	case !validMetricName(e.Name):
		return fmt.Errorf("invalid metric name %q", e.Name)
	case !e.hasValue:
		return jsonError(`missing "value"`)
	case math.IsNaN(e.Value) || math.IsInf(e.Value, 0):
		return jsonError("value is not finite")
	case e.Type == cache.Counter && e.Value < 0:
		return jsonError("a counter cannot go down: negative value")
	case e.HasHelp && !utf8.Valid(e.Help):
		return jsonError("help is not valid UTF-8")
	}
	for i, l := range e.Labels {
		if !validLabelName(string(l.Name)) {
			return fmt.Errorf("invalid label name %q", l.Name)
		}
		if !utf8.Valid(l.Value) {
			return fmt.Errorf("label value of %s is not valid UTF-8", l.Name)
		}
		if e.Type == cache.Histogram && string(l.Name) == "le" || e.Type == cache.Summary && string(l.Name) == "quantile" {
			return fmt.Errorf("label %s is reserved for %s lines", l.Name, e.Type)
		}
		for _, o := range e.Labels[:i] {
			if string(o.Name) == string(l.Name) {
				return fmt.Errorf("duplicate label %q", l.Name)
			}
		}
	}
	switch e.Type {
	case cache.Histogram:
		if !e.hasBuckets {
			e.Buckets = append(e.Buckets[:0], cache.DefaultBuckets...)
		}
		slices.Sort(e.Buckets)
		if n := len(e.Buckets); n > 0 && math.IsInf(e.Buckets[n-1], 1) {
			e.Buckets = e.Buckets[:n-1] // +Inf is implied
		}
		for i, b := range e.Buckets {
			if math.IsNaN(b) || i > 0 && b == e.Buckets[i-1] {
				return jsonError("buckets must be distinct numbers")
			}
		}
	case cache.Summary:
		if !e.hasQuantiles {
			e.Quantiles = append(e.Quantiles[:0], DefaultObjectives.Quantiles...)
			if !e.hasEpsilons {
				e.Epsilons = append(e.Epsilons[:0], DefaultObjectives.Epsilons...)
			}
		}
		if e.hasEpsilons && len(e.Epsilons) != len(e.Quantiles) {
			return jsonError("epsilons must pair with quantiles")
		}
		for i, q := range e.Quantiles {
			if !(q >= 0 && q <= 1) {
				return jsonError("quantiles must be in [0, 1]")
			}
			if i < len(e.Epsilons) && !(e.Epsilons[i] > 0 && e.Epsilons[i] < 1) {
				return jsonError("epsilons must be in (0, 1)")
			}
		}
		slices.Sort(e.Quantiles)
		for i := 1; i < len(e.Quantiles); i++ {
			if e.Quantiles[i] == e.Quantiles[i-1] {
				return jsonError("quantiles must be distinct")
			}
		}
	}
	return nil
}

type jsonParser struct {
	s []byte
	i int
	e *Event
}

func (p *jsonParser) ws() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\r' || p.s[p.i] == '\n') {
		p.i++
	}
}

func (p *jsonParser) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *jsonParser) field(key []byte) error {
	e := p.e
	switch string(key) {
	case "type":
		t, err := p.str()
		if err != nil {
			return err
		}
		switch string(t) {
		case "counter":
			e.Type = cache.Counter
		case "gauge":
			e.Type = cache.Gauge
		case "histogram":
			e.Type = cache.Histogram
		case "summary":
			e.Type = cache.Summary
		default:
			return fmt.Errorf("unknown event type %q", t)
		}
		e.hasType = true
	case "name":
		n, err := p.str()
		if err != nil {
			return err
		}
		e.Name, e.hasName = n, true
	case "ttl":
		d, err := p.str()
		if err != nil {
			return err
		}
		var ok bool
		if e.TTL, ok = ParseDuration(d); !ok {
			return &ParseError{Reason: ReasonInvalidTTL, Msg: fmt.Sprintf(`"ttl" is not a duration (such as 90s, 25h, 1d, 0): %q`, d)}
		}
	case "help":
		h, err := p.str()
		if err != nil {
			return err
		}
		e.Help, e.HasHelp = h, true
	case "value":
		v, err := p.num()
		if err != nil {
			return err
		}
		e.Value, e.hasValue = v, true
	case "labels":
		return p.labels()
	case "buckets":
		e.hasBuckets = true
		return p.nums(&e.Buckets)
	case "quantiles":
		e.hasQuantiles = true
		return p.nums(&e.Quantiles)
	case "epsilons":
		e.hasEpsilons = true
		return p.nums(&e.Epsilons)
	default:
		return p.skip(0)
	}
	return nil
}

func (p *jsonParser) labels() error {
	if p.eat('n') { // null
		return p.lit("ull")
	}
	if !p.eat('{') {
		return jsonError("labels must be an object")
	}
	p.ws()
	if p.eat('}') {
		return nil
	}
	for {
		p.ws()
		k, err := p.str()
		if err != nil {
			return err
		}
		p.ws()
		if !p.eat(':') {
			return jsonError("expected : in labels")
		}
		p.ws()
		v, err := p.str()
		if err != nil {
			return jsonError("label values must be strings")
		}
		if len(v) > 0 { // an empty label is no label
			p.e.Labels = append(p.e.Labels, cache.Label{Name: k, Value: v})
		} else if !validLabelName(string(k)) {
			return fmt.Errorf("invalid label name %q", k)
		}
		p.ws()
		if p.eat(',') {
			continue
		}
		if p.eat('}') {
			return nil
		}
		return jsonError("expected , or } in labels")
	}
}

func (p *jsonParser) nums(dst *[]float64) error {
	if !p.eat('[') {
		return jsonError("expected an array of numbers")
	}
	p.ws()
	if p.eat(']') {
		return nil
	}
	for {
		p.ws()
		v, err := p.num()
		if err != nil {
			return err
		}
		*dst = append(*dst, v)
		p.ws()
		if p.eat(',') {
			continue
		}
		if p.eat(']') {
			return nil
		}
		return jsonError("expected , or ] in array")
	}
}

func (p *jsonParser) lit(rest string) error {
	if len(p.s)-p.i < len(rest) || string(p.s[p.i:p.i+len(rest)]) != rest {
		return jsonError("invalid literal")
	}
	p.i += len(rest)
	return nil
}

// num parses a JSON number, strictly.
func (p *jsonParser) num() (float64, error) {
	start := p.i
	if p.i < len(p.s) && p.s[p.i] == '-' {
		p.i++
	}
	digits := func() int {
		n := 0
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	intStart := p.i
	if digits() == 0 || p.s[intStart] == '0' && p.i-intStart > 1 {
		return 0, jsonError("invalid number")
	}
	if p.eat('.') && digits() == 0 {
		return 0, jsonError("invalid number")
	}
	if p.i < len(p.s) && (p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		p.i++
		if p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return 0, jsonError("invalid number")
		}
	}
	// The grammar above leaves out everything ParseFloat refuses but a
	// number out of float64's range.
	v, ok := cache.ParseFloat(p.s[start:p.i])
	if !ok {
		return 0, jsonError("number out of range")
	}
	return v, nil
}

// str parses a JSON string and returns it unescaped, in the event's buffer
// (or in the line itself when it has no escapes).
func (p *jsonParser) str() ([]byte, error) {
	if !p.eat('"') {
		return nil, jsonError("expected a string")
	}
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			s := p.s[start:p.i]
			p.i++
			return s, nil
		case c == '\\':
			return p.strEscaped(start)
		case c < 0x20:
			return nil, jsonError("control character in string")
		}
		p.i++
	}
	return nil, jsonError("unterminated string")
}

func (p *jsonParser) strEscaped(start int) ([]byte, error) {
	e := p.e
	from := len(e.buf)
	e.buf = append(e.buf, p.s[start:p.i]...)
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return e.buf[from:len(e.buf):len(e.buf)], nil
		case c < 0x20:
			return nil, jsonError("control character in string")
		case c != '\\':
			e.buf = append(e.buf, c)
			p.i++
			continue
		}
		if p.i+1 >= len(p.s) {
			break
		}
		esc := p.s[p.i+1]
		p.i += 2
		switch esc {
		case '"', '\\', '/':
			e.buf = append(e.buf, esc)
		case 'b':
			e.buf = append(e.buf, '\b')
		case 'f':
			e.buf = append(e.buf, '\f')
		case 'n':
			e.buf = append(e.buf, '\n')
		case 'r':
			e.buf = append(e.buf, '\r')
		case 't':
			e.buf = append(e.buf, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return nil, jsonError(`invalid \u escape`)
			}
			if r >= 0xD800 && r < 0xDC00 && p.i+1 < len(p.s) && p.s[p.i] == '\\' && p.s[p.i+1] == 'u' {
				p.i += 2
				r2, ok := p.hex4()
				if !ok || r2 < 0xDC00 || r2 >= 0xE000 {
					return nil, jsonError("invalid surrogate pair")
				}
				r = 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00)
			}
			e.buf = utf8.AppendRune(e.buf, r)
		default:
			return nil, jsonError("invalid escape in string")
		}
	}
	return nil, jsonError("unterminated string")
}

func (p *jsonParser) hex4() (rune, bool) {
	if len(p.s)-p.i < 4 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(p.s[p.i:p.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	p.i += 4
	return rune(v), true
}

// skip skips any JSON value, for keys the event format does not know.
func (p *jsonParser) skip(depth int) error {
	if depth > 32 {
		return jsonError("nested too deep")
	}
	p.ws()
	if p.i >= len(p.s) {
		return jsonError("unexpected end of event")
	}
	switch c := p.s[p.i]; {
	case c == '"':
		_, err := p.str()
		return err
	case c == '{' || c == '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		p.i++
		p.ws()
		if p.eat(end) {
			return nil
		}
		for {
			if c == '{' {
				p.ws()
				if _, err := p.str(); err != nil {
					return err
				}
				p.ws()
				if !p.eat(':') {
					return jsonError("expected :")
				}
			}
			if err := p.skip(depth + 1); err != nil {
				return err
			}
			p.ws()
			if p.eat(',') {
				continue
			}
			if p.eat(end) {
				return nil
			}
			return jsonError("malformed JSON")
		}
	case c == 't':
		p.i++
		return p.lit("rue")
	case c == 'f':
		p.i++
		return p.lit("alse")
	case c == 'n':
		p.i++
		return p.lit("ull")
	default:
		_, err := p.num()
		return err
	}
}

// applyEvent applies a parsed event to the cache in batch b.
func applyEvent(b cache.Batch, e *Event) error {
	mode := cache.ModeDefault
	for i, l := range e.Labels {
		if string(l.Name) == "clearmode" {
			m, ok := cache.ParseMode(l.Value)
			if !ok {
				return fmt.Errorf("unknown clearmode %q", l.Value)
			}
			mode = m
			e.Labels = slices.Delete(e.Labels, i, i+1)
			break
		}
	}
	if e.HasHelp {
		if err := b.SetHelp(e.Name, e.Help); err != nil {
			return err
		}
	}
	switch e.Type {
	case cache.Counter, cache.Gauge:
		if mode == cache.ModeFamily {
			if err := b.ReplaceFamily(e.Name, e.Labels, e.Value); err != nil {
				return err
			}
			mode = cache.ModeReplace
		}
		add := e.Type == cache.Counter && mode != cache.ModeReplace || e.Type == cache.Gauge && mode == cache.ModeAggregate
		return b.Put(e.Name, e.Labels, e.Value, e.Type, add)
	case cache.Histogram:
		return b.ObserveHistogram(e.Name, e.Labels, e.Value, e.Buckets)
	case cache.Summary:
		eps := e.Epsilons
		if !e.hasEpsilons && e.hasQuantiles {
			eps = nil
		}
		return b.ObserveSummary(e.Name, e.Labels, e.Value, e.Quantiles, cache.SummaryWindow(eps))
	}
	return errors.New("unknown event type")
}
