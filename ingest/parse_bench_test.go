package ingest

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

var benchLines = []struct {
	name   string
	line   string
	metric string
	value  float64
	labels int
}{
	{"nolabels", `go_goroutines 42`, "go_goroutines", 42, 0},
	{"labels3", `http_requests_total{method="post",code="200",handler="/api/v1/query_range"} 1027`, "http_requests_total", 1027, 3},
	{"labels3ts", `node_cpu_seconds_total{cpu="0",mode="idle",instance="router"} 8.470153e+06 1395066363000`, "node_cpu_seconds_total", 8.470153e+06, 3},
	{"escapes", `temperature_celsius{sensor="board",location="rack \"A\"\\1\n",unit=""} -12.75`, "temperature_celsius", -12.75, 2},
}

// BenchmarkParseLine parses single sample lines with Parser and, for
// comparison, with expfmt's TextParser (which builds protobuf families, so it
// is not a like-for-like cost, only the reference point). The result is
// checked inside the loop: a broken fast path cannot post a good number.
//
//	go test -run '^$' -bench '^BenchmarkParseLine$' -benchtime 2s -count 6 -cpu 2 -benchmem ./ingest/ | tee parse.txt
//	benchstat -col /parser parse.txt
func BenchmarkParseLine(b *testing.B) {
	for _, bl := range benchLines {
		line := []byte(bl.line)
		b.Run("line="+bl.name+"/parser=ingest", func(b *testing.B) {
			var p Parser
			b.ReportAllocs()
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				kind, err := p.Parse(line)
				if err != nil || kind != LineSample || p.Value != bl.value ||
					len(p.Labels) != bl.labels || string(p.Name) != bl.metric {
					panic(fmt.Sprintf("%s: kind %d, err %v, value %v, %d labels", bl.name, kind, err, p.Value, len(p.Labels)))
				}
			}
		})
		b.Run("line="+bl.name+"/parser=expfmt", func(b *testing.B) {
			tp := expfmt.NewTextParser(model.LegacyValidation)
			input := append(bytes.Clone(line), '\n')
			r := bytes.NewReader(input)
			b.ReportAllocs()
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				r.Reset(input)
				mfs, err := tp.TextToMetricFamilies(r)
				mf := mfs[bl.metric]
				if err != nil || mf == nil || len(mf.Metric) != 1 || mf.Metric[0].GetUntyped().GetValue() != bl.value ||
					nonEmptyLabels(mf.Metric[0].GetLabel()) != bl.labels {
					panic(fmt.Sprintf("%s: err %v, families %v", bl.name, err, mfs))
				}
			}
		})
	}
}
