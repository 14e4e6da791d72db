package expose_test

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/push-gateway/push-gateway/cache"
	"github.com/push-gateway/push-gateway/expose"
	"github.com/push-gateway/push-gateway/ingest"
)

// FuzzPipeline pushes arbitrary bytes into a real socket as a raw stream and
// scrapes: the exposition must parse with expfmt whatever was sent, and
// hold nothing the input did not produce (every metric and label name in it
// appears in the input).
func FuzzPipeline(f *testing.F) {
	for _, s := range []string{
		"a 1\n", "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 2\nh_count 3\n",
		"# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 1\ns_count 1\ns_bucket 4\n",
		"x{a=\"b\\\"\\n\\\\\"} NaN\n# HELP x Some \\n help.\n", "# TYPE s_sum gauge\n# TYPE s summary\ns_sum 1\n",
		"m{a=\"\"} 1\nm 2 1700000000000\nm{a=\"1\",a=\"2\"} 3\n", "# TYPE c counter\nc -Inf\nc_total +Inf\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, in []byte) {
		c := cache.New(cache.Options{Budget: 16 << 10})
		path := filepath.Join(dir, "f.sock")
		l, err := ingest.Listen(path, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		srv := ingest.NewServer(ingest.Options{Cache: c, MaxLineLength: 1024})
		go srv.Serve(l)
		conn, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		conn.Write(in)
		conn.(*net.UnixConn).CloseWrite()
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		var b [1]byte
		conn.Read(b[:]) // the server closes once it has applied everything
		conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		srv.Shutdown(ctx)
		cancel()

		out := expose.New(expose.Options{Cache: c}).AppendMetrics(nil, new(cache.Snapshot))
		p := expfmt.NewTextParser(model.LegacyValidation)
		fams, err := p.TextToMetricFamilies(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("exposition does not parse: %v\ninput %q\noutput\n%s", err, in, out)
		}
		for name, mf := range fams {
			if !bytes.Contains(in, []byte(name)) {
				t.Fatalf("family %q not in the input %q", name, in)
			}
			for _, m := range mf.GetMetric() {
				for _, lp := range m.GetLabel() {
					if n := lp.GetName(); n != "le" && n != "quantile" && !strings.Contains(string(in), n) {
						t.Fatalf("label %q not in the input %q", n, in)
					}
				}
			}
		}
	})
}
