package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The status page in a real browser: Debian's chromium, headless, loads /
// from the running daemon. Without chromium the test is skipped, saying so
// (.ci/run installs it).
//
// The README's screenshot (docs/status.png) is this test's, with fewer
// colours:
//
//	STATUS_SCREENSHOT=$PWD/docs/status.png go test -count=1 -run TestStatusPageInBrowser ./cmd/push-gateway/

// chromium runs headless chromium with args and the URL and returns its
// standard output. As root (CI, containers) it needs --no-sandbox.
func chromium(t *testing.T, bin, url string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args = append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--user-data-dir=" + t.TempDir(), "--hide-scrollbars"}, args...)
	cmd := exec.CommandContext(ctx, bin, append(args, url)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

// TestStatusPageInBrowser pushes groups (one with a <script> grouping label
// sent in base64, one whose push failed), raw lines and a bad line, then
// checks the DOM that chromium builds from the page and takes a
// screenshot.
func TestStatusPageInBrowser(t *testing.T) {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("SKIPPED: chromium is not installed (apt-get install --no-install-recommends chromium); the status page is not checked in a browser")
	}
	d := startDaemon(t, "--cache.ttl=10m", "--cache.size=64KiB")
	d.push(t, `# TYPE node_temp_celsius gauge
node_temp_celsius{sensor="cpu"} 51.5
node_temp_celsius{sensor="wifi"} 47
# TYPE wan_rx_bytes_total counter
wan_rx_bytes_total{iface="eth0"} 9.87e+09
wan_rx_bytes_total{iface="wwan0"} 1.2e+08
wan_rx_bytes_total{iface="wg0"} 4.4e+07
# TYPE dns_query_seconds histogram
dns_query_seconds_bucket{le="0.01"} 120
dns_query_seconds_bucket{le="0.1"} 180
dns_query_seconds_bucket{le="+Inf"} 181
dns_query_seconds_sum 3.2
dns_query_seconds_count 181
# TYPE ntp_offset_seconds gauge
ntp_offset_seconds 0.003
broken{ 1
`)
	// The raw lines first: the ntp push below conflicts with their gauge
	// only once it is applied.
	eventually(t, 10*time.Second, "the raw lines applied", func() (bool, string) {
		e := d.scrape(t)
		_, ok := e.value("ntp_offset_seconds")
		r, _ := e.value("push_gateway_ingest_lines_rejected_total", "reason", "invalid_name")
		return ok && r == 1, e.body
	})
	put := func(path, body string, want int) {
		t.Helper()
		if resp, msg := d.request(t, true, http.MethodPut, path, "text/plain", body); resp.StatusCode != want {
			t.Fatalf("PUT %s: %d %s, want %d", path, resp.StatusCode, msg, want)
		}
	}
	put("/metrics/job/backup/host/nas-01", "# TYPE backup_last_bytes gauge\nbackup_last_bytes 1.5e9\nbackup_files 3400\n", 200)
	put("/metrics/job/cron/task/logrotate", "cron_last_run_ok 1\n", 200)
	evil := `<script>document.title="pwned"</script>`
	put("/metrics/job@base64/"+base64.RawURLEncoding.EncodeToString([]byte(evil))+"/host/a&b", "evil_total 1\n", 200)
	// A counter where the raw stream keeps a gauge: the push fails, and
	// its group has a failure time and no successful push.
	put("/metrics/job/ntp", "# TYPE ntp_offset_seconds counter\nntp_offset_seconds 1\n", 400)

	url := "http://" + d.addr + "/"
	dom := string(chromium(t, bin, url, "--dump-dom"))
	if !strings.Contains(dom, "<h1>push-gateway</h1>") {
		t.Fatalf("chromium's DOM of %s is not the status page:\n%s", url, dom)
	}
	for _, want := range []string{
		// The groups, grouping labels decoded (the first was sent in
		// base64), with their last push and failure times and TTL.
		`<code>host="nas-01", job="backup"</code></td><td>20`,
		`<code>job="cron", task="logrotate"</code></td><td>20`,
		`<code>host="a&amp;b", job="&lt;script&gt;document.title=\"pwned\"&lt;/script&gt;"</code></td><td>20`,
		`<code>job="ntp"</code></td><td>never</td><td>20`,
		// The families and their series, largest first; the histogram
		// counts its 3 buckets, _sum and _count.
		`<tr><td><code>dns_query_seconds</code></td><td>histogram</td><td class="n">5</td></tr>`,
		`<tr><td><code>push_time_seconds</code></td><td>gauge</td><td class="n">4</td></tr>`,
		`<tr><td><code>wan_rx_bytes_total</code></td><td>counter</td><td class="n">3</td></tr>`,
		`<tr><td><code>node_temp_celsius</code></td><td>gauge</td><td class="n">2</td></tr>`,
		`<tr><td><code>backup_last_bytes</code></td><td>gauge</td><td class="n">1</td></tr>`,
		// The daemon's counters: 15 raw lines applied (11 samples and 4
		// TYPE lines), one rejected, the pushes by code.
		`<tr><th>Lines and events applied</th><td class="n">15</td></tr>`,
		`<tr><th>All reasons</th><td class="n">1</td></tr>`,
		`<tr><th>invalid_name</th><td class="n">1</td></tr>`,
		`<tr><th>HTTP PUT answered 200</th><td class="n">3</td></tr>`,
		`<tr><th>HTTP PUT answered 400</th><td class="n">1</td></tr>`,
		`<a href="/metrics">/metrics</a>`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("DOM lacks %s", want)
		}
	}
	if strings.Contains(dom, "<script") || strings.Contains(dom, "pwned</title>") {
		t.Error("a grouping label became a script element")
	}
	if got := regexp.MustCompile(`<tr><td><code>`).FindAllString(dom, -1); len(got) != 4+10 {
		t.Errorf("%d group and family rows, want 4 groups and 10 families", len(got))
	}
	ttl := regexp.MustCompile(`<td>(\d+)m(\d\d)s</td></tr>`).FindAllStringSubmatch(dom, -1)
	if len(ttl) != 4 {
		t.Errorf("%d groups with a TTL left, want 4", len(ttl))
	}
	for _, m := range ttl {
		if m[1] != "9" && m[1] != "8" {
			t.Errorf("TTL left %sm%ss, want about 9m of the 10m", m[1], m[2])
		}
	}
	bar := regexp.MustCompile(`class="bar" id="budget"><div style="width:(\d+)\.\d%"></div>`).FindStringSubmatch(dom)
	if bar == nil || bar[1] == "0" {
		t.Errorf("no budget bar with a width above 1 %%: %q", bar)
	}

	shot := filepath.Join(t.TempDir(), "status.png")
	chromium(t, bin, url, "--screenshot="+shot, "--window-size=1024,900")
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1024 || b.Dy() != 900 {
		t.Errorf("screenshot of %v, want 1024x900", b)
	}
	t.Logf("screenshot: %s", shot)
	if out := os.Getenv("STATUS_SCREENSHOT"); out != "" {
		if err := writeFewColours(out, img); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", out)
	}
}

// writeFewColours writes img as a PNG of 16 colours, the page's own and a
// ramp of greys for the edges of letters: a 4-bit PNG a fifth the size of
// chromium's, for the README.
func writeFewColours(path string, img image.Image) error {
	pal := color.Palette{
		color.Gray{0xff}, color.Gray{0xee}, color.Gray{0xdd}, color.Gray{0xbb}, color.Gray{0x99},
		color.Gray{0x77}, color.Gray{0x55}, color.Gray{0x33}, color.Gray{0x22}, color.Gray{0},
		color.RGBA{0x33, 0xaa, 0x77, 0xff}, color.RGBA{0xcc, 0x33, 0x33, 0xff}, // the bar
		color.RGBA{0x00, 0x00, 0xee, 0xff}, color.RGBA{0x88, 0x88, 0xf4, 0xff}, // links
		color.RGBA{0x55, 0x1a, 0x8b, 0xff}, color.RGBA{0xbb, 0xbb, 0xf8, 0xff},
	}
	p := image.NewPaletted(img.Bounds(), pal)
	draw.Draw(p, p.Bounds(), img, img.Bounds().Min, draw.Src)
	var b bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&b, p); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
