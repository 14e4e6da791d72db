package ingest

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/push-gateway/push-gateway/cache"
)

// want is what Parse should make of one line. labels lists "name=value"
// pairs in order; reason is set for a bad line.
type want struct {
	kind   LineKind
	name   string
	labels []string
	value  float64
	typ    cache.Type
	help   string
	ts     bool // the sample had a timestamp
	reason string
}

func sample(name string, value float64, labels ...string) want {
	return want{kind: LineSample, name: name, value: value, labels: labels}
}

func stamped(w want) want { w.ts = true; return w }

func bad(reason string) want { return want{reason: reason} }

var ignored = want{kind: LineIgnored}

func checkLine(t *testing.T, p *Parser, line string, w want) {
	t.Helper()
	kind, err := p.Parse([]byte(line))
	if w.reason != "" {
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Errorf("%q: got kind %d, err %v; want reason %s", line, kind, err, w.reason)
			return
		}
		if pe.Reason != w.reason {
			t.Errorf("%q: got reason %s (%s), want %s", line, pe.Reason, pe.Msg, w.reason)
		}
		return
	}
	if err != nil {
		t.Errorf("%q: unexpected error %v", line, err)
		return
	}
	if kind != w.kind {
		t.Errorf("%q: got kind %d, want %d", line, kind, w.kind)
		return
	}
	if string(p.Name) != w.name {
		t.Errorf("%q: got name %q, want %q", line, p.Name, w.name)
	}
	switch kind {
	case LineSample:
		var got []string
		for _, l := range p.Labels {
			got = append(got, string(l.Name)+"="+string(l.Value))
		}
		if strings.Join(got, ",") != strings.Join(w.labels, ",") || len(got) != len(w.labels) {
			t.Errorf("%q: got labels %q, want %q", line, got, w.labels)
		}
		if math.Float64bits(p.Value) != math.Float64bits(w.value) && !(math.IsNaN(p.Value) && math.IsNaN(w.value)) {
			t.Errorf("%q: got value %v, want %v", line, p.Value, w.value)
		}
		if p.Timestamp != w.ts {
			t.Errorf("%q: got timestamp %v, want %v", line, p.Timestamp, w.ts)
		}
	case LineType:
		if p.Type != w.typ {
			t.Errorf("%q: got type %v, want %v", line, p.Type, w.typ)
		}
	case LineHelp:
		if string(p.Help) != w.help {
			t.Errorf("%q: got help %q, want %q", line, p.Help, w.help)
		}
	}
}

// parseTests also seeds FuzzParseLineDifferential.
var parseTests = []struct {
	line string
	want want
}{
	// Blank lines and comments.
	{"", ignored},
	{"   ", ignored},
	{"\t \t", ignored},
	{"#", ignored},
	{"# ", ignored},
	{"  #", ignored},
	{"# some comment", ignored},
	{"#comment", ignored},
	{"# \xff\xfe not UTF-8 is fine in a comment", ignored},
	{"# type foo counter", ignored}, // keywords are upper case
	{"# TYPEfoo counter", ignored},
	{"# TYPE", ignored},
	{"# TYPE   ", ignored},
	{"# TYPE foo", ignored}, // no type word: expfmt ignores it
	{"# TYPE foo \t", ignored},
	{"# HELP", ignored},
	{"# HELP foo", ignored},
	{"# HELP foo   ", ignored}, // empty help text: expfmt ignores it

	// TYPE.
	{"# TYPE foo counter", want{kind: LineType, name: "foo", typ: cache.Counter}},
	{"# TYPE foo gauge", want{kind: LineType, name: "foo", typ: cache.Gauge}},
	{"# TYPE foo histogram", want{kind: LineType, name: "foo", typ: cache.Histogram}},
	{"# TYPE foo summary", want{kind: LineType, name: "foo", typ: cache.Summary}},
	{"# TYPE foo untyped", want{kind: LineType, name: "foo", typ: cache.Untyped}},
	{"# TYPE foo COUNTER", want{kind: LineType, name: "foo", typ: cache.Counter}},
	{"# TYPE foo Gauge", want{kind: LineType, name: "foo", typ: cache.Gauge}},
	{"#TYPE foo gauge", want{kind: LineType, name: "foo", typ: cache.Gauge}},
	{"\t#\tTYPE\tfoo:bar\t\tsummary", want{kind: LineType, name: "foo:bar", typ: cache.Summary}},
	{"  # TYPE  foo_total   counter", want{kind: LineType, name: "foo_total", typ: cache.Counter}},
	{"# TYPE foo bogus", bad(ReasonInvalidType)},
	{"# TYPE foo counter ", bad(ReasonInvalidType)},
	{"# TYPE foo counter extra", bad(ReasonInvalidType)},
	{"# TYPE foo counter\r", bad(ReasonInvalidType)},
	{"# TYPE foo gauge_histogram", bad(ReasonInvalidType)},
	{"# TYPE foo gaugehistogram", bad(ReasonInvalidType)},
	{"# TYPE foo histograms", bad(ReasonInvalidType)},
	{"# TYPE foo ſummary", bad(ReasonInvalidType)}, // strings.ToUpper would make it SUMMARY
	{"# TYPE 0foo counter", bad(ReasonInvalidName)},
	{"# TYPE 0foo", bad(ReasonInvalidName)},
	{"# TYPE foo.bar counter", bad(ReasonInvalidName)},
	{"# TYPE foo-bar counter", bad(ReasonInvalidName)},
	{"# TYPE .foo counter", bad(ReasonInvalidName)},
	{"# TYPE \"foo\" counter", bad(ReasonSyntax)},
	{"# TYPE foo\"bar\" counter", bad(ReasonSyntax)},
	{"# TYPE {foo} counter", bad(ReasonSyntax)},

	// HELP.
	{"# HELP foo Some help.", want{kind: LineHelp, name: "foo", help: "Some help."}},
	{"#HELP foo x", want{kind: LineHelp, name: "foo", help: "x"}},
	{"\t#\tHELP\tfoo\tx\ty", want{kind: LineHelp, name: "foo", help: "x\ty"}},
	{"# HELP foo   leading blanks go, trailing stay  ", want{kind: LineHelp, name: "foo", help: "leading blanks go, trailing stay  "}},
	{`# HELP foo a\\b\nc\"d`, want{kind: LineHelp, name: "foo", help: "a\\b\nc\"d"}},
	{`# HELP foo "quoted" {braces} # hash`, want{kind: LineHelp, name: "foo", help: `"quoted" {braces} # hash`}},
	{"# HELP foo ünïcode ✓", want{kind: LineHelp, name: "foo", help: "ünïcode ✓"}},
	{"# HELP foo text\r", want{kind: LineHelp, name: "foo", help: "text\r"}},
	{"# HELP foo # TYPE foo counter", want{kind: LineHelp, name: "foo", help: "# TYPE foo counter"}},
	{`# HELP foo bad \q`, bad(ReasonSyntax)},
	{`# HELP foo ends in \`, bad(ReasonSyntax)},
	{"# HELP foo \xff", bad(ReasonInvalidUTF8)},
	{"# HELP foo \\n\xc3", bad(ReasonInvalidUTF8)},
	{"# HELP foo.bar text", bad(ReasonInvalidName)},
	{"# HELP 1foo text", bad(ReasonInvalidName)},

	// Samples: names and whitespace.
	{"foo 1", sample("foo", 1)},
	{"foo:bar_baz:total 1", sample("foo:bar_baz:total", 1)},
	{":foo 1", sample(":foo", 1)},
	{"_foo 1", sample("_foo", 1)},
	{"__foo 1", sample("__foo", 1)}, // the "__" rule is for label names
	{"Foo9 1", sample("Foo9", 1)},
	{"  foo 1", sample("foo", 1)},
	{"\tfoo\t1", sample("foo", 1)},
	{"foo  \t 1", sample("foo", 1)},
	{"foo{} 1", sample("foo", 1)},
	{"foo{ \t} 1", sample("foo", 1)},
	{"foo {} 1", sample("foo", 1)},
	{"foo{}1", sample("foo", 1)},
	{"0foo 1", bad(ReasonInvalidName)},
	{"foo.bar 1", bad(ReasonInvalidName)},
	{"foo-bar 1", bad(ReasonInvalidName)},
	{"foo.5 1", bad(ReasonInvalidName)}, // expfmt: foo=0.5 at 1
	{"foo-1", bad(ReasonInvalidName)},   // expfmt: foo=-1
	{"föo 1", bad(ReasonInvalidName)},
	{"\"foo\" 1", bad(ReasonSyntax)},
	{"foo\"bar\" 1", bad(ReasonSyntax)},
	{"{foo} 1", bad(ReasonSyntax)},
	{"{\"foo.bar\"} 1", bad(ReasonSyntax)},
	{"{\"foo\",a=\"b\"} 1", bad(ReasonSyntax)},
	{"foo}", bad(ReasonSyntax)},
	{"=1", bad(ReasonSyntax)},
	{"\r", bad(ReasonSyntax)},
	{"foo", bad(ReasonSyntax)},
	{"foo ", bad(ReasonSyntax)},
	{"foo{}", bad(ReasonSyntax)},
	{"foo{a=\"b\"}", bad(ReasonSyntax)},
	{"foo{a=\"b\"}  ", bad(ReasonSyntax)},

	// Labels.
	{`foo{a="b"} 1`, sample("foo", 1, "a=b")},
	{`foo {a="b"} 1`, sample("foo", 1, "a=b")},
	{`foo{a="b"}1`, sample("foo", 1, "a=b")},
	{`foo{a="b",c="d",e="f"} 1`, sample("foo", 1, "a=b", "c=d", "e=f")},
	{`foo{a="b",} 1`, sample("foo", 1, "a=b")},
	{`foo{a="b", } 1`, sample("foo", 1, "a=b")},
	{"foo{ a = \"b\" ,\tc\t=\t\"d\"\t, } 1", sample("foo", 1, "a=b", "c=d")},
	{`foo{A_b9="1"} 1`, sample("foo", 1, "A_b9=1")},
	{`foo{_a="1"} 1`, sample("foo", 1, "_a=1")},
	{`foo{a=""} 1`, sample("foo", 1)},
	{`foo{a="",b="c",d=""} 1`, sample("foo", 1, "b=c")},
	{`foo{a="x\\y\"z\nw"} 1`, sample("foo", 1, "a=x\\y\"z\nw")},
	{`foo{a="\\",b="plain",c="\"",d="\n"} 1`, sample("foo", 1, `a=\`, "b=plain", `c="`, "d=\n")},
	{`foo{a="{},= #"} 1`, sample("foo", 1, "a={},= #")},
	{`foo{a="ünïcode ✓"} 1`, sample("foo", 1, "a=ünïcode ✓")},
	{"foo{a=\"tab\there\"} 1", sample("foo", 1, "a=tab\there")},
	{`foo{0a="b"} 1`, bad(ReasonInvalidName)},
	{`foo{a.b="c"} 1`, bad(ReasonInvalidName)},
	{`foo{a-b="c"} 1`, bad(ReasonInvalidName)},
	{`foo{a:b="c"} 1`, bad(ReasonInvalidName)},
	{`foo{ä="c"} 1`, bad(ReasonInvalidName)},
	{`foo{"a"="b"} 1`, bad(ReasonSyntax)},
	{`foo{a"x"="b"} 1`, bad(ReasonSyntax)},
	{`foo{__x="1"} 1`, bad(ReasonInvalidName)},
	{`foo{__x=""} 1`, bad(ReasonInvalidName)},
	{`foo{__name__="x"} 1`, bad(ReasonInvalidName)},
	{`foo{__="x"} 1`, bad(ReasonInvalidName)},
	{`foo{a="1",a="2"} 1`, bad(ReasonDuplicateLabel)},
	{`foo{a="",a="2"} 1`, bad(ReasonDuplicateLabel)},
	{`foo{a="",a=""} 1`, bad(ReasonDuplicateLabel)},
	{`foo{a="1",b="2",a=""} 1`, bad(ReasonDuplicateLabel)},
	{`foo{a="b" 1`, bad(ReasonSyntax)},
	{`foo{a="b 1`, bad(ReasonSyntax)},
	{`foo{a="b\"} 1`, bad(ReasonSyntax)},
	{`foo{a="b\`, bad(ReasonSyntax)},
	{`foo{a="\q"} 1`, bad(ReasonSyntax)},
	{`foo{a="\t"} 1`, bad(ReasonSyntax)},
	{`foo{a=b} 1`, bad(ReasonSyntax)},
	{`foo{a} 1`, bad(ReasonSyntax)},
	{`foo{a=} 1`, bad(ReasonSyntax)},
	{`foo{a 1`, bad(ReasonSyntax)},
	{`foo{,} 1`, bad(ReasonSyntax)},
	{`foo{a="b",,} 1`, bad(ReasonSyntax)},
	{`foo{a="b"c="d"} 1`, bad(ReasonSyntax)},
	{`foo{a="b"}} 1`, bad(ReasonInvalidValue)},
	{`foo{`, bad(ReasonSyntax)},
	{"foo{a=\"\xff\"} 1", bad(ReasonInvalidUTF8)},
	{"foo{a=\"ok\",b=\"\xc3\x28\"} 1", bad(ReasonInvalidUTF8)},
	{"foo{a=\"\xff\\n\"} 1", bad(ReasonInvalidUTF8)},

	// Values.
	{"foo 0", sample("foo", 0)},
	{"foo -0", sample("foo", math.Copysign(0, -1))},
	{"foo -0.0", sample("foo", math.Copysign(0, -1))},
	{"foo 1027", sample("foo", 1027)},
	{"foo -5", sample("foo", -5)},
	{"foo +5", sample("foo", 5)},
	{"foo 3.14", sample("foo", 3.14)},
	{"foo .5", sample("foo", 0.5)},
	{"foo 5.", sample("foo", 5)},
	{"foo 007", sample("foo", 7)},
	{"foo 0.1", sample("foo", 0.1)},
	{"foo 123456789012345", sample("foo", 123456789012345)},
	{"foo 12345678901234567890", sample("foo", 12345678901234567890)},
	{"foo 0.30000000000000004", sample("foo", 0.30000000000000004)},
	{"foo 1e3", sample("foo", 1000)},
	{"foo 1E3", sample("foo", 1000)},
	{"foo -0.5e-3", sample("foo", -0.0005)},
	{"foo 1.7976931348623157e308", sample("foo", math.MaxFloat64)},
	{"foo 1e-400", sample("foo", 0)},
	{"foo +Inf", sample("foo", math.Inf(1))},
	{"foo -Inf", sample("foo", math.Inf(-1))},
	{"foo Inf", sample("foo", math.Inf(1))},
	{"foo inf", sample("foo", math.Inf(1))},
	{"foo Infinity", sample("foo", math.Inf(1))},
	{"foo NaN", sample("foo", math.NaN())},
	{"foo nan", sample("foo", math.NaN())},
	{"foo +NaN", bad(ReasonInvalidValue)},
	{"foo 1e400", bad(ReasonInvalidValue)},
	{"foo 0x1p3", bad(ReasonInvalidValue)},
	{"foo 0x10", bad(ReasonInvalidValue)},
	{"foo 1_000", bad(ReasonInvalidValue)},
	{"foo 1p3", bad(ReasonInvalidValue)},
	{"foo 1.2.3", bad(ReasonInvalidValue)},
	{"foo .", bad(ReasonInvalidValue)},
	{"foo -", bad(ReasonInvalidValue)},
	{"foo 1e", bad(ReasonInvalidValue)},
	{"foo one", bad(ReasonInvalidValue)},
	{"foo 1,5", bad(ReasonInvalidValue)},
	{"foo 1\r", bad(ReasonInvalidValue)},
	{"foo 1{a=\"b\"}", bad(ReasonInvalidValue)},

	// Timestamps.
	{"foo 1 1700000000000", stamped(sample("foo", 1))},
	{"foo 1\t1700000000000", stamped(sample("foo", 1))},
	{"foo 1  \t 0", stamped(sample("foo", 1))},
	{"foo 1 -5", stamped(sample("foo", 1))},
	{"foo 1 +5", stamped(sample("foo", 1))},
	{"foo 1 007", stamped(sample("foo", 1))},
	{"foo 1 9223372036854775807", stamped(sample("foo", 1))},
	{"foo 1 -9223372036854775808", stamped(sample("foo", 1))},
	{`foo{a="b"} 2.5 1700000000000`, stamped(sample("foo", 2.5, "a=b"))},
	{"foo 1 9223372036854775808", bad(ReasonInvalidTimestamp)},
	{"foo 1 -9223372036854775809", bad(ReasonInvalidTimestamp)},
	{"foo 1 99999999999999999999", bad(ReasonInvalidTimestamp)},
	{"foo 1 1.5", bad(ReasonInvalidTimestamp)},
	{"foo 1 1e3", bad(ReasonInvalidTimestamp)},
	{"foo 1 1_000", bad(ReasonInvalidTimestamp)},
	{"foo 1 0x10", bad(ReasonInvalidTimestamp)},
	{"foo 1 abc", bad(ReasonInvalidTimestamp)},
	{"foo 1 -", bad(ReasonInvalidTimestamp)},
	{"foo 1 +", bad(ReasonInvalidTimestamp)},
	{"foo 1 123\r", bad(ReasonInvalidTimestamp)},
	{"foo 1 ", bad(ReasonSyntax)},
	{"foo 1\t", bad(ReasonSyntax)},
	{"foo 1 123 ", bad(ReasonSyntax)},
	{"foo 1 123 junk", bad(ReasonSyntax)},
	{"foo 1 123 456", bad(ReasonSyntax)},
}

func TestParse(t *testing.T) {
	var p Parser
	for _, tt := range parseTests {
		checkLine(t, &p, tt.line, tt.want)
	}
	// A fresh parser must give the same answers as a reused one.
	for _, tt := range parseTests {
		checkLine(t, new(Parser), tt.line, tt.want)
	}
}

func TestParseManyLabels(t *testing.T) {
	var names, withDup, withEmptyDup []string
	var wantLabels []string
	for i := range 40 {
		n := "l" + strconv.Itoa(i)
		names = append(names, n+`="v`+strconv.Itoa(i)+`"`)
		wantLabels = append(wantLabels, n+"=v"+strconv.Itoa(i))
	}
	withDup = append(append([]string{}, names...), `l17="again"`)
	withEmptyDup = append([]string{`l39=""`}, names...)
	var p Parser
	checkLine(t, &p, "foo{"+strings.Join(names, ",")+"} 1", sample("foo", 1, wantLabels...))
	checkLine(t, &p, "foo{"+strings.Join(withDup, ",")+"} 1", bad(ReasonDuplicateLabel))
	checkLine(t, &p, "foo{"+strings.Join(withEmptyDup, ",")+"} 1", bad(ReasonDuplicateLabel))
}

// TestParseResetsFields checks that nothing of one line leaks into the next.
func TestParseResetsFields(t *testing.T) {
	var p Parser
	checkLine(t, &p, `foo{a="x\ny"} 5`, sample("foo", 5, "a=x\ny"))
	checkLine(t, &p, "# TYPE bar gauge", want{kind: LineType, name: "bar", typ: cache.Gauge})
	if len(p.Labels) != 0 || p.Value != 0 || p.Help != nil {
		t.Errorf("after TYPE: labels %q, value %v, help %q", p.Labels, p.Value, p.Help)
	}
	checkLine(t, &p, `# HELP bar a\nb`, want{kind: LineHelp, name: "bar", help: "a\nb"})
	if p.Type != cache.Untyped {
		t.Errorf("after HELP: type %v", p.Type)
	}
	checkLine(t, &p, "", ignored)
	if p.Name != nil || p.Help != nil {
		t.Errorf("after blank line: name %q, help %q", p.Name, p.Help)
	}
	checkLine(t, &p, `foo{a="1"} x`, bad(ReasonInvalidValue))
}

// TestParseDoesNotModifyLine checks that unescaping never writes into line,
// which belongs to the caller's read buffer.
func TestParseDoesNotModifyLine(t *testing.T) {
	const s = `foo{a="x\\y\"z",b="\n\n",c="plain"} 1 2`
	line := []byte(s)
	var p Parser
	if _, err := p.Parse(line); err != nil {
		t.Fatal(err)
	}
	if string(line) != s {
		t.Errorf("line changed to %q", line)
	}
	if got := string(p.Labels[2].Value); got != "plain" {
		t.Errorf("c = %q", got)
	}
}

func TestParseErrorMessage(t *testing.T) {
	var p Parser
	_, err := p.Parse([]byte(`foo{a="1"} one`))
	const want = `text format: invalid_value: expected float as value, got "one"`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

// TestParseAllocs pins the hot path: once p.Labels has capacity, a sample
// line allocates nothing, with or without escapes, timestamp or odd values.
func TestParseAllocs(t *testing.T) {
	lines := []string{
		`http_requests_total{method="post",code="200",handler="/api/v1/query"} 1027 1395066363000`,
		`node_cpu_seconds_total{cpu="0",mode="idle"} 8.470153e+06`,
		`go_goroutines 42`,
		`temperature_celsius{sensor="board",location="rack \"A\"\\1\n"} -12.75`,
		`escaped_twice{a="\"a long value, to fill the buffer\"",b="plain",c="y\\z",d="\n"} 1`,
		`rpc_duration_seconds{quantile="0.99",empty=""} NaN`,
		`build_info{version="ünïcode"} +Inf`,
		`long_value 0.123456789012345678901234567890`, // 32 bytes: the most string(b) takes on the stack
		`# TYPE http_requests_total counter`,
		`# HELP http_requests_total The total number of HTTP requests.`,
		`# HELP escaped Line one.\nLine two \\ done.`,
		`# a comment`,
		``,
	}
	var p Parser
	for _, l := range lines {
		line := []byte(l)
		if _, err := p.Parse(line); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		allocs := testing.AllocsPerRun(1000, func() {
			if _, err := p.Parse(line); err != nil {
				panic(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%q: %v allocs per Parse, want 0", l, allocs)
		}
	}
	// Past 32 bytes, the string that strconv.ParseFloat needs costs one
	// allocation; only values of 16 significant digits and more get there.
	line := []byte(`longer_value 0.12345678901234567890123456789012345678`)
	if allocs := testing.AllocsPerRun(1000, func() { _, _ = p.Parse(line) }); allocs > 1 {
		t.Errorf("%q: %v allocs per Parse, want at most 1", line, allocs)
	}
}

func TestValidInt64MatchesStrconv(t *testing.T) {
	for _, s := range []string{
		"0", "-0", "+0", "1", "-1", "+1", "007", "-007", "9223372036854775807", "9223372036854775808",
		"-9223372036854775808", "-9223372036854775809", "+9223372036854775807", "09223372036854775807",
		"00000000000000000000009223372036854775807", "10000000000000000000", "99999999999999999999",
		"", "+", "-", "--1", "+-1", "1-", "1.0", "1e3", "1_000", "0x10", " 1", "1 ", "1700000000000",
	} {
		_, err := strconv.ParseInt(s, 10, 64)
		if got := validInt64([]byte(s)); got != (err == nil) {
			t.Errorf("%q: got %v, strconv %v", s, got, err)
		}
	}
}

// A label value is scanned 8 bytes at a time: a quote, a backslash or a
// byte of a multi-byte rune at any place, before, in or after a word, must
// still end the value, be unescaped or be checked as UTF-8.
func TestLabelValueAtEveryOffset(t *testing.T) {
	var p Parser
	for n := range 20 {
		for at := range n {
			plain := strings.Repeat("a", n)
			for _, tc := range []struct {
				insert, want, reason string
			}{
				{`\"`, `"`, ""},
				{`\\`, `\`, ""},
				{`\n`, "\n", ""},
				{"é", "é", ""},
				{"\xff", "", ReasonInvalidUTF8},
			} {
				v := plain[:at] + tc.insert + plain[at:]
				line := `m{l="` + v + `",z="b"} 1`
				kind, err := p.Parse([]byte(line))
				if tc.reason != "" {
					var pe *ParseError
					if !errors.As(err, &pe) || pe.Reason != tc.reason {
						t.Errorf("%q: error %v, want reason %s", line, err, tc.reason)
					}
					continue
				}
				wantV := plain[:at] + tc.want + plain[at:]
				if err != nil || kind != LineSample || len(p.Labels) != 2 || string(p.Labels[0].Value) != wantV || string(p.Labels[1].Value) != "b" {
					t.Errorf("%q: kind %v err %v labels %q, want l=%q and z=b", line, kind, err, p.Labels, wantV)
				}
			}
		}
	}
}
