package ingest

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/push-gateway/push-gateway/cache"
)

// FuzzParseLineDifferential runs Parse and expfmt's TextParser (legacy name
// validation) on the same line and fails where they disagree on whether a
// line is valid or on what it means. Reasons are not compared: expfmt has
// none.
//
// Deliberate differences, filtered below by the message Parse gives for
// them (and only where expfmt accepts a line that Parse rejects):
//
//  1. msgBraceName: a line starting with '{' (expfmt's form for UTF-8 metric
//     names, {"my.name",a="b"} 1, which also takes {name} 1). Legacy names
//     only.
//  2. msgQuotedName: a '"' where a metric or label name is read, in samples
//     and in TYPE/HELP lines. expfmt takes it as quoting and even joins
//     fo"o" into foo; "# TYPE \"foo\"" is an ignored comment there.
//  3. msgNameEnd: a metric name followed by anything but a blank, a tab or
//     '{'. expfmt ends the name there and reads the rest as the value, so
//     "cpu.0 5" is cpu=0 at timestamp 5 and "foo-1" is foo=-1; we call it
//     an invalid name.
//  4. msgReservedLabel: label names starting with "__". expfmt rejects only
//     __name__; Prometheus reserves the whole prefix.
//  5. msgHelpUTF8: HELP text that is not valid UTF-8, which expfmt keeps as
//     is and the /metrics output must not carry.
//  6. ReasonInvalidType for a type word that expfmt's strings.ToUpper makes
//     known but we do not: "gauge_histogram" and "gaugehistogram" (not in
//     format 0.0.4, no such cache.Type), and non-ASCII words that upper-case
//     to a known one ("ſummary" is SUMMARY). We fold ASCII case only. And a
//     type word with backslashes in it, which expfmt reads as escapes and
//     drops ("COU\NTER" is COUNTER): the type is a keyword, not a string.
//
// Not differences, as expfmt's own results show them: labels with an empty
// value (dropped by Parse, ignored in expfmt's result when comparing); a
// "# TYPE name" without type word and a "# HELP name" without text (ignored
// by both); and expfmt's checks across lines, which one line never meets.
func FuzzParseLineDifferential(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	for _, tt := range parseTests {
		f.Add([]byte(tt.line))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		if bytes.IndexByte(line, '\n') >= 0 {
			t.Skip("a line never holds a newline")
		}
		orig := bytes.Clone(line)
		var p Parser
		kind, err := p.Parse(line)
		if !bytes.Equal(line, orig) {
			t.Fatalf("Parse modified its input: %q -> %q", orig, line)
		}
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("%q: error %T %v is not a *ParseError", line, err, err)
			}
			checkRejected(t, line, pe)
			return
		}
		switch kind {
		case LineSample:
			checkSample(t, line, &p)
		case LineType, LineHelp:
			checkMeta(t, line, kind, &p)
		case LineIgnored:
			checkIgnored(t, line)
		default:
			t.Fatalf("%q: unknown kind %d", line, kind)
		}
	})
}

// expfmtParse runs expfmt on text. A panic in expfmt is expfmt's bug, not a
// disagreement, and skips the input.
func expfmtParse(t *testing.T, text []byte) (mfs map[string]*dto.MetricFamily, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Skipf("expfmt panicked on %q: %v", text, r)
		}
	}()
	tp := expfmt.NewTextParser(model.LegacyValidation)
	return tp.TextToMetricFamilies(bytes.NewReader(text))
}

func withNewline(line []byte) []byte { return append(bytes.Clone(line), '\n') }

func checkRejected(t *testing.T, line []byte, pe *ParseError) {
	mfs, err := expfmtParse(t, withNewline(line))
	if err != nil {
		return // both reject
	}
	switch {
	case strings.HasPrefix(pe.Msg, msgBraceName):
		if i := skipBlank(line, 0); i == len(line) || line[i] != '{' {
			t.Fatalf("%q: %s without a leading '{'", line, pe.Msg)
		}
	case strings.HasPrefix(pe.Msg, msgQuotedName):
		if bytes.IndexByte(line, '"') < 0 {
			t.Fatalf("%q: %s without a '\"'", line, pe.Msg)
		}
	case strings.HasPrefix(pe.Msg, msgNameEnd):
	case strings.HasPrefix(pe.Msg, msgReservedLabel):
		if !bytes.Contains(line, []byte("__")) {
			t.Fatalf("%q: %s without a \"__\"", line, pe.Msg)
		}
	case strings.HasPrefix(pe.Msg, msgHelpUTF8):
		if utf8.Valid(line) {
			t.Fatalf("%q: %s on a valid UTF-8 line", line, pe.Msg)
		}
	case pe.Reason == ReasonInvalidType && deliberateTypeWord(line):
	default:
		t.Fatalf("%q: Parse rejects (%s: %s), expfmt accepts: %v", line, pe.Reason, pe.Msg, mfs)
	}
}

// deliberateTypeWord reports whether line is a TYPE line whose type word is
// one expfmt knows and we refuse on purpose (difference 6).
func deliberateTypeWord(line []byte) bool {
	f := strings.FieldsFunc(string(line), func(r rune) bool { return r == ' ' || r == '\t' })
	if len(f) == 0 {
		return false
	}
	word := f[len(f)-1]
	up := strings.ToUpper(word)
	switch {
	case up == "GAUGE_HISTOGRAM", up == "GAUGEHISTOGRAM":
		return true
	case strings.ContainsFunc(word, func(r rune) bool { return r >= utf8.RuneSelf }):
		_, known := dto.MetricType_value[up]
		return known
	case strings.Contains(word, `\`):
		_, known := dto.MetricType_value[strings.ReplaceAll(up, `\`, "")]
		return known
	}
	return false
}

func checkSample(t *testing.T, line []byte, p *Parser) {
	mfs, err := expfmtParse(t, withNewline(line))
	if err != nil {
		t.Fatalf("%q: Parse accepts (%s %v), expfmt rejects: %v", line, p.Name, p.Value, err)
	}
	if len(mfs) != 1 {
		t.Fatalf("%q: expfmt gives %d families: %v", line, len(mfs), mfs)
	}
	mf := mfs[string(p.Name)]
	if mf == nil || len(mf.Metric) != 1 {
		t.Fatalf("%q: name %q, expfmt gives %v", line, p.Name, mfs)
	}
	if mf.GetType() != dto.MetricType_UNTYPED {
		t.Fatalf("%q: expfmt type %v", line, mf.GetType())
	}
	m := mf.Metric[0]
	var ours, theirs []string
	for _, l := range p.Labels {
		if len(l.Value) == 0 {
			t.Fatalf("%q: Parse kept empty label %q", line, l.Name)
		}
		ours = append(ours, string(l.Name)+"\x00"+string(l.Value))
	}
	for _, l := range m.GetLabel() {
		if l.GetValue() != "" {
			theirs = append(theirs, l.GetName()+"\x00"+l.GetValue())
		}
	}
	slices.Sort(ours)
	slices.Sort(theirs)
	if !slices.Equal(ours, theirs) {
		t.Fatalf("%q: labels %q, expfmt %q", line, ours, theirs)
	}
	if (m.TimestampMs != nil) != p.Timestamp {
		t.Fatalf("%q: timestamp %v, expfmt %v", line, p.Timestamp, m.TimestampMs)
	}
	v := m.GetUntyped().GetValue()
	if math.Float64bits(v) != math.Float64bits(p.Value) && !(math.IsNaN(v) && math.IsNaN(p.Value)) {
		t.Fatalf("%q: value %v, expfmt %v", line, p.Value, v)
	}
}

var dtoTypes = map[cache.Type]dto.MetricType{
	cache.Untyped:   dto.MetricType_UNTYPED,
	cache.Counter:   dto.MetricType_COUNTER,
	cache.Gauge:     dto.MetricType_GAUGE,
	cache.Histogram: dto.MetricType_HISTOGRAM,
	cache.Summary:   dto.MetricType_SUMMARY,
}

// checkMeta compares a TYPE or HELP line. expfmt drops families without
// samples, so a sample of the family follows the line.
func checkMeta(t *testing.T, line []byte, kind LineKind, p *Parser) {
	name := string(p.Name)
	if !model.LegacyValidation.IsValidMetricName(name) {
		t.Fatalf("%q: invalid name %q accepted", line, name)
	}
	text := append(withNewline(line), name+" 1\n"...)
	mfs, err := expfmtParse(t, text)
	if err != nil {
		t.Fatalf("%q: Parse accepts (kind %d, %q), expfmt rejects: %v", line, kind, name, err)
	}
	mf := mfs[name]
	if len(mfs) != 1 || mf == nil {
		t.Fatalf("%q: name %q, expfmt gives %v", line, name, mfs)
	}
	if kind == LineType {
		if want := dtoTypes[p.Type]; mf.GetType() != want {
			t.Fatalf("%q: type %v, expfmt %v", line, p.Type, mf.GetType())
		}
		if mf.Help != nil {
			t.Fatalf("%q: expfmt reads help %q", line, mf.GetHelp())
		}
		return
	}
	if mf.Help == nil || mf.GetHelp() != string(p.Help) {
		t.Fatalf("%q: help %q, expfmt %v", line, p.Help, mf.Help)
	}
	if mf.GetType() != dto.MetricType_UNTYPED {
		t.Fatalf("%q: expfmt reads type %v", line, mf.GetType())
	}
}

// checkIgnored checks that expfmt accepts the line and takes nothing from
// it. For a HELP or TYPE line that Parse ignores, a sample of the family it
// would name follows, to show that expfmt sets no help and no type either.
func checkIgnored(t *testing.T, line []byte) {
	mfs, err := expfmtParse(t, withNewline(line))
	if err != nil || len(mfs) != 0 {
		t.Fatalf("%q: Parse ignores, expfmt gives %v, %v", line, mfs, err)
	}
	name, ok := metaName(line)
	if !ok {
		return
	}
	text := append(withNewline(line), name+" 1\n"...)
	mfs, err = expfmtParse(t, text)
	if err != nil {
		t.Fatalf("%q: Parse ignores, expfmt rejects with a sample of %s: %v", line, name, err)
	}
	if mf := mfs[name]; mf == nil || mf.Help != nil || mf.GetType() != dto.MetricType_UNTYPED {
		t.Fatalf("%q: Parse ignores, expfmt reads %v", line, mfs)
	}
}

// metaName returns the legacy metric name that a "# HELP" or "# TYPE" line
// starts to name, however the line goes on.
func metaName(line []byte) (string, bool) {
	s := strings.TrimLeft(string(line), " \t")
	s, ok := strings.CutPrefix(s, "#")
	if !ok {
		return "", false
	}
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 || (s[:i] != "HELP" && s[:i] != "TYPE") {
		return "", false
	}
	rest := strings.TrimLeft(s[i:], " \t")
	end := strings.IndexFunc(rest, func(r rune) bool {
		return !(r == '_' || r == ':' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
	})
	if end >= 0 {
		rest = rest[:end]
	}
	return rest, model.LegacyValidation.IsValidMetricName(rest)
}

// nonEmptyLabels counts the labels that Prometheus would keep.
func nonEmptyLabels(ls []*dto.LabelPair) int {
	n := 0
	for _, l := range ls {
		if l.GetValue() != "" {
			n++
		}
	}
	return n
}

// fuzzSeeds are realistic lines, as exporters and scripts write them.
var fuzzSeeds = []string{
	`# HELP go_gc_duration_seconds A summary of the pause duration of garbage collection cycles.`,
	`# TYPE go_gc_duration_seconds summary`,
	`go_gc_duration_seconds{quantile="0"} 2.4885e-05`,
	`go_gc_duration_seconds{quantile="0.5"} 4.6943e-05`,
	`go_gc_duration_seconds_sum 0.017946624`,
	`go_gc_duration_seconds_count 291`,
	`# HELP http_request_duration_seconds A histogram of the request duration.`,
	`# TYPE http_request_duration_seconds histogram`,
	`http_request_duration_seconds_bucket{le="0.05"} 24054`,
	`http_request_duration_seconds_bucket{le="+Inf"} 144320`,
	`http_request_duration_seconds_sum 53423`,
	`http_requests_total{method="post",code="200"} 1027 1395066363000`,
	`http_requests_total{method="post",code="400"}    3 1395066363000`,
	`msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9`,
	`metric_without_timestamp_and_labels 12.47`,
	`something_weird{problem="division by zero"} +Inf -3982045`,
	`node_filesystem_avail_bytes{device="/dev/sda1",fstype="ext4",mountpoint="/"} 1.2345678e+10`,
	`node_network_receive_bytes_total{device="eth0"} 8.0210583e+07`,
	`openwrt_wifi_stations{ssid="Café ☕",band="5GHz"} 7`,
	`backup_last_success_timestamp_seconds{job="nightly",instance=""} 1.7e9`,
	`# TYPE backup_last_success_timestamp_seconds gauge`,
	`# HELP backup_last_success_timestamp_seconds Last time the backup succeeded, in \\seconds\\.\nSecond line.`,
	`cron_job_runs_total{job="rotate-logs",} 12`,
	"temp_celsius{sensor=\"cpu\"}\t48.5",
	`ups_battery_charge_ratio NaN`,
	`up 1`,
	`{"utf8.metric",a="b"} 1`,
	`foo{__meta_x="1"} 1`,
	`# TYPE foo GAUGE_HISTOGRAM`,
	"# HELP foo \xff",
}
