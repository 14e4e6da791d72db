package ingest

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/push-gateway/push-gateway/cache"
)

// LineKind tells what a parsed line was.
type LineKind uint8

// The kinds of line of the text exposition format 0.0.4.
const (
	LineIgnored LineKind = iota // blank line or a comment other than TYPE/HELP
	LineType                    // # TYPE name type   -> p.Name, p.Type
	LineHelp                    // # HELP name text   -> p.Name, p.Help (unescaped: \\, \n, and \" as expfmt does)
	LineSample                  // name{labels} value [timestamp] -> p.Name, p.Labels, p.Value
	LineTTL                     // # TTL duration, with Parser.TTLLines -> p.TTL (cache.DefaultTTL for "default")
)

// Reasons carried by a ParseError, meant as values of the reason label of a
// rejected-lines counter.
const (
	ReasonSyntax           = "syntax"            // anything malformed
	ReasonInvalidName      = "invalid_name"      // metric or label name outside the legacy charset, or a reserved "__" label
	ReasonDuplicateLabel   = "duplicate_label"   // a label name twice in one sample
	ReasonInvalidUTF8      = "invalid_utf8"      // label value or help text not valid UTF-8
	ReasonInvalidValue     = "invalid_value"     // sample value not a float
	ReasonInvalidTimestamp = "invalid_timestamp" // timestamp present but not an int64
	ReasonInvalidType      = "invalid_type"      // TYPE with an unknown type word
	ReasonInvalidTTL       = "invalid_ttl"       // # TTL, or an event's "ttl", that is not a duration
)

// ParseError is returned for a bad line. Reason is one of the Reason*
// constants; Msg says what was wrong, for a log line or an HTTP 400 body.
type ParseError struct {
	Reason, Msg string
}

// Error implements error.
func (e *ParseError) Error() string { return "text format: " + e.Reason + ": " + e.Msg }

// Messages of the deliberate differences from expfmt (see the list in
// parse_fuzz_test.go); the differential fuzz test recognises them by prefix.
const (
	msgBraceName     = "metric name inside braces is not supported"
	msgQuotedName    = "quoted names are not supported"
	msgNameEnd       = "metric name must be followed by a blank, a tab or '{'"
	msgReservedLabel = "label names starting with __ are reserved"
	msgHelpUTF8      = "help text is not valid UTF-8"
)

// perr builds the error for a bad line; detail, when not nil, is quoted
// after msg, cut to a sensible length. Only bad lines pay for it.
func perr(reason, msg string, detail []byte) *ParseError {
	if detail != nil {
		const max = 64
		if len(detail) > max {
			msg += " " + strconv.Quote(string(detail[:max])) + "..."
		} else {
			msg += " " + strconv.Quote(string(detail))
		}
	}
	return &ParseError{Reason: reason, Msg: msg}
}

// fail is perr for the functions that return a LineKind.
func fail(reason, msg string, detail []byte) (LineKind, error) {
	return LineIgnored, perr(reason, msg, detail)
}

// Parser parses lines one at a time. Its fields are valid until the next call
// of Parse; they point into line or into the parser's own reused buffers.
// A Parser must not be used by several goroutines at once; one per connection
// keeps its buffers warm, so that a sample line allocates nothing.
type Parser struct {
	Name   []byte
	Labels []cache.Label // label values unescaped; reused between calls
	Value  float64
	Type   cache.Type
	Help   []byte

	// Timestamp tells that the sample line carried a valid timestamp. Its
	// value is dropped; the Pushgateway API refuses pushes that have one.
	Timestamp bool

	// TTLLines makes "# TTL <duration>" and "# TTL default" lines, which the
	// raw stream reads, LineTTL; without it they are comments.
	TTLLines bool
	TTL      time.Duration // of the last LineTTL

	buf    []byte        // unescaped label values and help text of the current line
	sorted []cache.Label // scratch for the duplicate check of long label sets
}

// Byte classes of the legacy name charset, looked up in one table.
const (
	clMetric  = 1 << iota // [a-zA-Z0-9_:], may continue a metric name
	clLabel               // [a-zA-Z0-9_], may continue a label name
	clDigit               // [0-9], may not start a name
	clNameish             // '.', '-', non-ASCII: the writer meant it as part of a name
	clBlank               // ' ', '\t': the only separators expfmt knows
)

var class = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
			t[c] = clMetric | clLabel
		case c >= '0' && c <= '9':
			t[c] = clMetric | clLabel | clDigit
		case c == ':':
			t[c] = clMetric | clNameish
		case c == '.', c == '-', c >= 0x80:
			t[c] = clNameish
		case c == ' ', c == '\t':
			t[c] = clBlank
		}
	}
	return t
}()

// validMetricName reports whether b is a metric name in the legacy charset,
// by the same table the parser reads names with: the Pushgateway API and
// JSON events check the names they take apart from a text line so.
func validMetricName(b []byte) bool {
	return len(b) > 0 && class[b[0]]&clDigit == 0 && nameEnd(b, 0, clMetric) == len(b)
}

// validLabelName is validMetricName for label names; the reserved "__"
// prefix is refused as the parser refuses it.
func validLabelName(s string) bool {
	if s == "" || class[s[0]]&clDigit != 0 || len(s) >= 2 && s[:2] == "__" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if class[s[i]]&clLabel == 0 {
			return false
		}
	}
	return true
}

func skipBlank(line []byte, i int) int {
	for i < len(line) && class[line[i]]&clBlank != 0 {
		i++
	}
	return i
}

// Parse parses one line without its trailing "\n". A trailing "\r" is not
// stripped: as in expfmt, it makes the value, timestamp or type word invalid
// and becomes part of a help text.
//
// Parse reads nothing across lines: a second TYPE for a family or a repeated
// series is the caller's concern. Errors are *ParseError.
func (p *Parser) Parse(line []byte) (LineKind, error) {
	p.Name, p.Help, p.Value, p.Type, p.Timestamp = nil, nil, 0, cache.Untyped, false
	p.Labels = p.Labels[:0]
	p.buf = p.buf[:0]
	i := skipBlank(line, 0)
	if i == len(line) {
		return LineIgnored, nil
	}
	switch line[i] {
	case '#':
		return p.parseComment(line, i+1)
	case '{':
		// expfmt's form for UTF-8 names, {"name",label="value"}; also {name}.
		return fail(ReasonSyntax, msgBraceName, nil)
	}
	return p.parseSample(line, i)
}

// nameEnd returns the end of the run of bytes of class cl from i.
func nameEnd(line []byte, i int, cl uint8) int {
	for i < len(line) && class[line[i]]&cl != 0 {
		i++
	}
	return i
}

// badName classifies what stops a name at line[i] (i < len(line)) when a
// separator was expected there. expfmt reads a '"' in a name as the start or
// end of a quoted UTF-8 name.
func badName(line []byte, i int, msg string, name []byte) (LineKind, error) {
	switch c := line[i]; {
	case c == '"':
		return fail(ReasonSyntax, msgQuotedName, nil)
	case class[c]&clNameish != 0:
		return fail(ReasonInvalidName, msg, name)
	}
	return fail(ReasonSyntax, msg, name)
}

func (p *Parser) parseSample(line []byte, i int) (LineKind, error) {
	start := i
	i = nameEnd(line, i, clMetric)
	if i == start {
		return badName(line, i, "expected metric name", nil)
	}
	if class[line[start]]&clDigit != 0 {
		return fail(ReasonInvalidName, "invalid metric name", line[start:nameEnd(line, i, clMetric|clNameish)])
	}
	p.Name = line[start:i]
	if i == len(line) {
		return fail(ReasonSyntax, "missing value", nil)
	}
	if line[i] != '{' {
		if class[line[i]]&clBlank == 0 {
			// expfmt ends the name here and reads the rest as the value:
			// "cpu.0 5" would be cpu=0 at timestamp 5. We refuse.
			return badName(line, i, msgNameEnd, line[start:nameEnd(line, i, clMetric|clNameish)])
		}
		i = skipBlank(line, i)
	}
	if i < len(line) && line[i] == '{' {
		var err error
		if i, err = p.parseLabels(line, i+1); err != nil {
			return LineIgnored, err
		}
		i = skipBlank(line, i) // "}1" is fine, as in expfmt
	}

	start = i
	for i < len(line) && class[line[i]]&clBlank == 0 {
		i++
	}
	if i == start {
		return fail(ReasonSyntax, "missing value", nil)
	}
	v, ok := cache.ParseFloat(line[start:i])
	if !ok {
		return fail(ReasonInvalidValue, "expected float as value, got", line[start:i])
	}
	p.Value = v
	if i == len(line) {
		return LineSample, nil
	}

	// Timestamp. expfmt wants one after any blank that follows the value, so
	// trailing blanks are an error, and nothing may follow the timestamp.
	i = skipBlank(line, i)
	if i == len(line) {
		return fail(ReasonSyntax, "blank after value but no timestamp", nil)
	}
	start = i
	for i < len(line) && class[line[i]]&clBlank == 0 {
		i++
	}
	if !validInt64(line[start:i]) {
		return fail(ReasonInvalidTimestamp, "expected integer as timestamp, got", line[start:i])
	}
	if i != len(line) {
		return fail(ReasonSyntax, "spurious string after timestamp", line[i:])
	}
	p.Timestamp = true
	return LineSample, nil
}

// parseLabels parses a label set from just after its '{' and returns the
// index after its '}'.
func (p *Parser) parseLabels(line []byte, i int) (int, error) {
	for {
		i = skipBlank(line, i)
		if i == len(line) {
			return 0, perr(ReasonSyntax, "unterminated label set", nil)
		}
		if line[i] == '}' { // also after a trailing comma, as in expfmt
			return p.endLabels(i + 1)
		}

		start := i
		i = nameEnd(line, i, clLabel)
		if i == start {
			_, err := badName(line, i, "expected label name", nil)
			return 0, err
		}
		name := line[start:i]
		if class[name[0]]&clDigit != 0 {
			return 0, perr(ReasonInvalidName, "invalid label name", line[start:nameEnd(line, i, clLabel|clNameish)])
		}
		if i < len(line) && (line[i] == '"' || class[line[i]]&clNameish != 0) {
			_, err := badName(line, i, "invalid label name", line[start:nameEnd(line, i, clLabel|clNameish)])
			return 0, err
		}
		// Legacy label names may start with "__", but Prometheus reserves
		// them for internal use, expfmt rejects at least __name__, and a
		// pushed __address__ or __scheme__ would be stripped after a scrape.
		if len(name) >= 2 && name[0] == '_' && name[1] == '_' {
			return 0, perr(ReasonInvalidName, msgReservedLabel, name)
		}
		i = skipBlank(line, i)
		if i == len(line) || line[i] != '=' {
			return 0, perr(ReasonSyntax, "expected '=' after label name", name)
		}
		i = skipBlank(line, i+1)
		if i == len(line) || line[i] != '"' {
			return 0, perr(ReasonSyntax, "expected '\"' at start of the value of label", name)
		}
		value, end, err := p.labelValue(line, i+1)
		if err != nil {
			return 0, err
		}
		p.Labels = append(p.Labels, cache.Label{Name: name, Value: value})

		i = skipBlank(line, end)
		if i == len(line) {
			return 0, perr(ReasonSyntax, "unterminated label set", nil)
		}
		switch line[i] {
		case ',':
			i++
		case '}':
			return p.endLabels(i + 1)
		default:
			return 0, perr(ReasonSyntax, "expected ',' or '}' after the value of label", name)
		}
	}
}

// endLabels checks the complete label set for duplicate names, then drops
// the labels with an empty value: Prometheus treats them as absent, but
// expfmt still counts them as duplicates.
func (p *Parser) endLabels(i int) (int, error) {
	if name := p.duplicateLabel(); name != nil {
		return 0, perr(ReasonDuplicateLabel, "duplicate label name", name)
	}
	for _, l := range p.Labels {
		if len(l.Value) == 0 {
			p.Labels = slices.DeleteFunc(p.Labels, func(l cache.Label) bool { return len(l.Value) == 0 })
			break
		}
	}
	return i, nil
}

// labelValue reads a quoted label value from just after its opening '"'. It
// returns the unescaped value and the index after the closing '"'. Without a
// backslash the value is a slice of line and nothing is copied.
func (p *Parser) labelValue(line []byte, i int) ([]byte, int, error) {
	start := i
	// Most values are plain ASCII: skip 8 bytes at a time while none is a
	// '"', a backslash or a byte of a multi-byte rune (the has-zero-byte test on
	// the word XOR each, as in expose's escaping).
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(line); i += 8 {
		x := binary.LittleEndian.Uint64(line[i:])
		a, b := x^('"'*ones), x^('\\'*ones)
		if ((a-ones)&^a|(b-ones)&^b|x)&highs != 0 {
			break
		}
	}
	ascii := true
	for ; i < len(line); i++ {
		c := line[i]
		if c == '"' {
			v := line[start:i]
			if !ascii && !utf8.Valid(v) {
				return nil, 0, perr(ReasonInvalidUTF8, "label value is not valid UTF-8", nil)
			}
			return v, i + 1, nil
		}
		if c == '\\' {
			return p.unescapeLabelValue(line, start)
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	return nil, 0, perr(ReasonSyntax, "unterminated label value", nil)
}

// unescapeLabelValue is labelValue's slow path, taken at the first backslash.
func (p *Parser) unescapeLabelValue(line []byte, start int) ([]byte, int, error) {
	p.reserve(len(line) - start)
	from := len(p.buf)
	for i := start; i < len(line); i++ {
		c := line[i]
		switch c {
		case '"':
			v := p.buf[from:]
			if !utf8.Valid(v) {
				return nil, 0, perr(ReasonInvalidUTF8, "label value is not valid UTF-8", nil)
			}
			return v, i + 1, nil
		case '\\':
			i++
			if i == len(line) {
				return nil, 0, perr(ReasonSyntax, "unterminated label value", nil)
			}
			switch c = line[i]; c {
			case '\\', '"':
			case 'n':
				c = '\n'
			default:
				return nil, 0, perr(ReasonSyntax, "invalid escape sequence in label value", line[i-1:i+1])
			}
		}
		p.buf = append(p.buf, c)
	}
	return nil, 0, perr(ReasonSyntax, "unterminated label value", nil)
}

// reserve makes room for n more bytes in p.buf. Unescaped text is never
// longer than the rest of its line, so reserving that much at each escaped
// value or help text never regrows p.buf after the first time in a line.
// (Earlier slices of p.buf would stay correct even if it did regrow: they
// keep the old array, which nothing writes again before the next Parse.)
func (p *Parser) reserve(n int) {
	if cap(p.buf)-len(p.buf) < n {
		p.buf = slices.Grow(p.buf, n)
	}
}

// duplicateLabel returns a label name that p.Labels holds twice, or nil.
// Short sets compare every pair; a long one is sorted in a scratch copy, so
// that a line of thousands of labels costs n log n, not n².
func (p *Parser) duplicateLabel() []byte {
	ls := p.Labels
	if len(ls) <= 16 {
		for i := 1; i < len(ls); i++ {
			for j := range i {
				if bytes.Equal(ls[i].Name, ls[j].Name) {
					return ls[i].Name
				}
			}
		}
		return nil
	}
	s := append(p.sorted[:0], ls...)
	slices.SortFunc(s, func(a, b cache.Label) int { return bytes.Compare(a.Name, b.Name) })
	var dup []byte
	for i := 1; i < len(s); i++ {
		if bytes.Equal(s[i].Name, s[i-1].Name) {
			dup = s[i].Name
			break
		}
	}
	clear(s) // keep no reference to the caller's line
	p.sorted = s[:0]
	return dup
}

// parseTTL reads the rest of a "# TTL" line: a duration (see
// ParseDuration) or "default", with blanks around.
func (p *Parser) parseTTL(rest []byte) (LineKind, error) {
	rest = rest[skipBlank(rest, 0):]
	n := len(rest)
	for n > 0 && class[rest[n-1]]&clBlank != 0 {
		n--
	}
	rest = rest[:n]
	if string(rest) == "default" {
		p.TTL = cache.DefaultTTL
		return LineTTL, nil
	}
	d, ok := ParseDuration(rest)
	if !ok {
		return fail(ReasonInvalidTTL, `TTL is not a duration (such as 90s, 25h, 1d, 1h30m, 0) or "default"`, rest)
	}
	p.TTL = d
	return LineTTL, nil
}

// ParseDuration reads a Prometheus duration as prometheus/common's
// model.ParseDuration does (TestParseDurationMatchesModel): "0", or one or
// more numbers each with a unit of y, w, d, h, m, s or ms, units from the
// largest down and each at most once (1h30m). Importing that package would
// bring protobuf into the binary.
func ParseDuration(s []byte) (time.Duration, bool) {
	switch string(s) {
	case "0":
		return 0, true
	case "":
		return 0, false
	}
	var dur uint64
	last := 0
	for len(s) > 0 {
		// A number, as strconv.ParseUint(s, 10, 0) reads it.
		i := 0
		var v uint64
		for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
			d := uint64(s[i] - '0')
			if v > (1<<strconv.IntSize-1-d)/10 {
				return 0, false
			}
			v = v*10 + d
		}
		if i == 0 {
			return 0, false
		}
		s = s[i:]
		j := 0
		for j < len(s) && (s[j] < '0' || s[j] > '9') {
			j++
		}
		pos, mult := durationUnit(s[:j])
		if pos <= last { // unknown, absent, or not in order
			return 0, false
		}
		last, s = pos, s[j:]
		if v > 1<<63/mult {
			return 0, false
		}
		if dur += v * mult; dur > 1<<63-1 {
			return 0, false
		}
	}
	return time.Duration(dur), true
}

// durationUnit returns the rank of a unit of ParseDuration, from 1 for the
// largest, and its length in nanoseconds; rank 0 for no unit.
func durationUnit(u []byte) (int, uint64) {
	switch string(u) {
	case "y":
		return 1, uint64(365 * 24 * time.Hour)
	case "w":
		return 2, uint64(7 * 24 * time.Hour)
	case "d":
		return 3, uint64(24 * time.Hour)
	case "h":
		return 4, uint64(time.Hour)
	case "m":
		return 5, uint64(time.Minute)
	case "s":
		return 6, uint64(time.Second)
	case "ms":
		return 7, uint64(time.Millisecond)
	}
	return 0, 1
}

// parseComment parses a line from just after its '#', as expfmt does: the
// first token is the keyword; a HELP or TYPE line that ends before its name,
// or right after it, is as ignorable as any other comment.
func (p *Parser) parseComment(line []byte, i int) (LineKind, error) {
	i = skipBlank(line, i)
	start := i
	for i < len(line) && class[line[i]]&clBlank == 0 {
		i++
	}
	kw := line[start:i]
	if string(kw) == "TTL" && p.TTLLines {
		return p.parseTTL(line[i:])
	}
	if i == len(line) {
		return LineIgnored, nil
	}
	isHelp := string(kw) == "HELP"
	if !isHelp && string(kw) != "TYPE" {
		return LineIgnored, nil
	}

	i = skipBlank(line, i)
	if i == len(line) {
		return LineIgnored, nil
	}
	start = i
	i = nameEnd(line, i, clMetric)
	if i == start {
		return badName(line, i, "invalid metric name in comment", nil)
	}
	if class[line[start]]&clDigit != 0 {
		return fail(ReasonInvalidName, "invalid metric name in comment", line[start:nameEnd(line, i, clMetric|clNameish)])
	}
	if i == len(line) {
		return LineIgnored, nil // "# TYPE name": no type word, no error in expfmt
	}
	if class[line[i]]&clBlank == 0 {
		return badName(line, i, "invalid metric name in comment", line[start:nameEnd(line, i, clMetric|clNameish)])
	}
	name := line[start:i]
	i = skipBlank(line, i)
	if i == len(line) {
		return LineIgnored, nil // "# HELP name ": empty help text, ignored by expfmt
	}
	rest := line[i:]

	if !isHelp {
		// The rest of the line is the type word, trailing blanks included.
		// expfmt upper-cases it, so any case goes.
		var lower [len("histogram")]byte
		if len(rest) > len(lower) {
			return fail(ReasonInvalidType, "unknown metric type", rest)
		}
		for j, c := range rest {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			lower[j] = c
		}
		t, ok := cache.ParseType(lower[:len(rest)])
		if !ok {
			return fail(ReasonInvalidType, "unknown metric type", rest)
		}
		p.Name, p.Type = name, t
		return LineType, nil
	}

	// The rest of the line is the help text, leading blanks skipped above,
	// trailing ones kept. expfmt unescapes \\, \n and also \".
	help := rest
	if bytes.IndexByte(rest, '\\') >= 0 {
		p.reserve(len(rest))
		for j := 0; j < len(rest); j++ {
			c := rest[j]
			if c == '\\' {
				j++
				if j == len(rest) {
					return fail(ReasonSyntax, "help text ends in a backslash", nil)
				}
				switch c = rest[j]; c {
				case '\\', '"':
				case 'n':
					c = '\n'
				default:
					return fail(ReasonSyntax, "invalid escape sequence in help text", rest[j-1:j+1])
				}
			}
			p.buf = append(p.buf, c)
		}
		help = p.buf
	}
	if !utf8.Valid(help) {
		return fail(ReasonInvalidUTF8, msgHelpUTF8, nil)
	}
	p.Name, p.Help = name, help
	return LineHelp, nil
}

// validInt64 reports whether strconv.ParseInt(string(b), 10, 64) succeeds:
// an optional sign, then decimal digits only, within int64's range.
func validInt64(b []byte) bool {
	limit := "9223372036854775807"
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		if b[0] == '-' {
			limit = "9223372036854775808"
		}
		b = b[1:]
	}
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	for len(b) > 1 && b[0] == '0' {
		b = b[1:]
	}
	// Digit strings of equal length compare as their numbers do.
	return len(b) < len(limit) || len(b) == len(limit) && string(b) <= limit
}
