package main_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/push-gateway/push-gateway/expose/web/webtest"
)

// webConfig writes a CA, a server pair for 127.0.0.1 and dir/web.yml with
// yml; it returns the CA and the config's path.
func webConfig(t *testing.T, yml string) (*webtest.CA, string) {
	t.Helper()
	ca, dir := webtest.NewCA(t), t.TempDir()
	crt, key := ca.Server(t, 1)
	webtest.WriteFile(t, dir, "web.crt", crt)
	webtest.WriteFile(t, dir, "web.key", key)
	webtest.WriteFile(t, dir, "ca.crt", ca.PEM)
	return ca, webtest.WriteFile(t, dir, "web.yml", []byte(yml))
}

func bcryptHash(t *testing.T, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

const tlsPair = "tls_server_config:\n  cert_file: web.crt\n  key_file: web.key\n"

// webDaemon starts the daemon with these flags on a fresh socket and
// 127.0.0.1:0; it returns the socket and the TCP address.
func webDaemon(t *testing.T, flags ...string) (sock, addr string) {
	t.Helper()
	sock = filepath.Join(compatDir(t), "pg.sock")
	_, addr = compatStart(t, "push-gateway", regexp.MustCompile(`msg="starting push-gateway".* address=(\S+)`),
		compatBinary(t), append([]string{"--ingest.socket=" + sock, "--web.listen-address=127.0.0.1:0"}, flags...)...)
	return sock, addr
}

func webPush(t *testing.T, sock, text string) {
	t.Helper()
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, text); err != nil {
		t.Fatal(err)
	}
}

// webRun runs the daemon to its exit (10 s at most); it returns the exit
// code and stderr.
func webRun(t *testing.T, flags ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, compatBinary(t), flags...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Run()
	return cmd.ProcessState.ExitCode(), stderr.String()
}

// A bad web config stops the start with exit 2 and one line that names the
// flag, the file and the problem, in promtool's words.
func TestWebConfigBad(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, yml, want string }{
		{"unknown key", tlsPair + "  ciphers: []\n", "yaml: unmarshal errors: line 4: field ciphers not found in type web.TLSConfig"},
		{"bad hash", "basic_auth_users:\n  alice: secret\n", "crypto/bcrypt: hashedSecret too short to be a bcrypted password"},
		{"missing key", "tls_server_config:\n  cert_file: web.crt\n", "missing key_file"},
		{"unknown version", tlsPair + "  min_version: TLS14\n", "unknown TLS version: TLS14"},
		{"rate_limit", "rate_limit:\n  burst: 1\n", "rate_limit is not supported by push-gateway"},
	} {
		_, path := webConfig(t, c.yml)
		sock := filepath.Join(compatDir(t), "p.sock")
		code, stderr := webRun(t, "--ingest.socket="+sock, "--web.listen-address=127.0.0.1:0", "--web.config.file="+path)
		line := strings.TrimSpace(stderr)
		if code != 2 || strings.Contains(line, "\n") || !strings.HasPrefix(line, "push-gateway: error: --web.config.file="+path+": ") || !strings.Contains(line, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and one line with %q", c.name, code, stderr, c.want)
		}
		if promtool, err := exec.LookPath("promtool"); err == nil && c.name != "rate_limit" {
			out, _ := exec.Command(promtool, "check", "web-config", path).CombinedOutput()
			if msg := strings.Join(strings.Fields(string(out)), " "); !strings.Contains(msg, c.want) {
				t.Errorf("%s: promtool says %q, the test wants %q", c.name, msg, c.want)
			}
		}
		if _, err := os.Stat(sock); err == nil {
			t.Errorf("%s: the socket was created", c.name)
		}
	}
	code, stderr := webRun(t, "--ingest.socket="+filepath.Join(compatDir(t), "p.sock"), "--web.config.file=/nonexistent/web.yml")
	if code != 2 || !strings.Contains(stderr, "no such file or directory") {
		t.Errorf("missing file: exit %d, stderr %q", code, stderr)
	}
}

// With TLS and basic_auth_users: no password or a wrong one gets 401 with
// the challenge (curl, as an operator would try), the right one the
// metrics; /-/healthy and /-/ready need none; plain HTTP gets the 400 of
// net/http; the push socket needs nothing.
func TestWebConfigAuth(t *testing.T) {
	t.Parallel()
	ca, path := webConfig(t, tlsPair+"basic_auth_users:\n  prometheus: "+bcryptHash(t, "right")+"\n")
	sock, addr := webDaemon(t, "--web.config.file="+path)
	webPush(t, sock, "webconfig_auth 42\n")
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	get := func(path, user, password string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "https://"+addr+path, nil)
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	for _, c := range []struct{ user, password string }{{"", ""}, {"prometheus", "wrong"}, {"nobody", "right"}} {
		code, h, _ := get("/metrics", c.user, c.password)
		if code != 401 || h.Get("WWW-Authenticate") != `Basic realm="push-gateway"` {
			t.Errorf("%q:%q: %d, WWW-Authenticate %q; want 401 with the challenge", c.user, c.password, code, h.Get("WWW-Authenticate"))
		}
	}
	if code, _, body := get("/metrics", "prometheus", "right"); code != 200 || !strings.Contains(body, "webconfig_auth 42\n") {
		t.Errorf("right password: %d %q", code, body)
	}
	for _, p := range []string{"/-/healthy", "/-/ready"} {
		if code, _, _ := get(p, "", ""); code != 200 {
			t.Errorf("%s without a password: %d, want 200", p, code)
		}
	}
	if code, _, _ := get("/", "", ""); code != 401 {
		t.Errorf("/ without a password: %d, want 401", code)
	}
	if curl, err := exec.LookPath("curl"); err == nil {
		dir := t.TempDir()
		webtest.WriteFile(t, dir, "ca.crt", ca.PEM)
		out, err := exec.Command(curl, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
			"--cacert", filepath.Join(dir, "ca.crt"), "-u", "prometheus:wrong", "https://"+addr+"/metrics").CombinedOutput()
		if err != nil || string(out) != "401" {
			t.Errorf("curl with a wrong password: %q, %v; want 401", out, err)
		}
	}
	// Plain HTTP to the TLS port.
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
	if b, _ := io.ReadAll(c); !strings.HasPrefix(string(b), "HTTP/1.0 400 Bad Request\r\n") {
		t.Errorf("plain HTTP to the TLS port: %q", b)
	}
	// The socket is unaffected.
	code, _, body, err := compatDo(compatUnixClient(t, sock), "GET", "http://socket/metrics", "", nil)
	if err != nil || code != 200 || !strings.Contains(body, "webconfig_auth 42\n") {
		t.Errorf("GET /metrics on the socket: %d %q %v", code, body, err)
	}
}

// RequireAndVerifyClientCert through the daemon: without a certificate
// refused, with one of client_ca_file served.
func TestWebConfigClientCert(t *testing.T) {
	t.Parallel()
	ca, path := webConfig(t, tlsPair+"  client_ca_file: ca.crt\n  client_auth_type: RequireAndVerifyClientCert\n")
	_, addr := webDaemon(t, "--web.config.file="+path)
	get := func(certs []tls.Certificate) error {
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), Certificates: certs}}}
		resp, err := client.Get("https://" + addr + "/metrics")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	if err := get(nil); err == nil {
		t.Error("served without a client certificate")
	}
	if err := get([]tls.Certificate{ca.ClientCert(t, 5, "prometheus")}); err != nil {
		t.Errorf("with a client certificate: %v", err)
	}
}

// Debian's Prometheus scrapes the daemon over HTTPS with ca_file and
// basic_auth: the target is up and what was pushed is queryable.
func TestWebConfigPrometheusScrapes(t *testing.T) {
	if _, err := os.Stat(compatPrometheusBin); err != nil {
		t.Skipf("Prometheus is not installed (%v): apt-get install prometheus", err)
	}
	ca, path := webConfig(t, tlsPair+"basic_auth_users:\n  prometheus: "+bcryptHash(t, "scrape-secret")+"\n")
	sock, addr := webDaemon(t, "--web.config.file="+path, "--cache.ttl=10m")
	webPush(t, sock, "# TYPE webconfig_prom_total counter\nwebconfig_prom_total{via=\"https\"} 5\n")

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	promAddr := l.Addr().String()
	l.Close()
	dir := compatDir(t)
	caFile := webtest.WriteFile(t, dir, "ca.crt", ca.PEM)
	config := fmt.Sprintf("global:\n  scrape_interval: 200ms\n  scrape_timeout: 200ms\n"+
		"scrape_configs:\n  - job_name: pg\n    scheme: https\n    tls_config:\n      ca_file: %s\n"+
		"    basic_auth:\n      username: prometheus\n      password: scrape-secret\n"+
		"    static_configs:\n      - targets: [%q]\n", caFile, addr)
	webtest.WriteFile(t, dir, "prometheus.yml", []byte(config))
	compatStart(t, "prometheus", regexp.MustCompile(`(Server is ready to receive web requests)`),
		compatPrometheusBin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+promAddr)

	query := func(q string) (float64, bool) {
		resp, err := compatHTTP.Get("http://" + promAddr + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return 0, false
		}
		defer resp.Body.Close()
		var r struct {
			Data struct{ Result []struct{ Value [2]any } }
		}
		if json.NewDecoder(resp.Body).Decode(&r) != nil || len(r.Data.Result) != 1 {
			return 0, false
		}
		s, _ := r.Data.Result[0].Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		return v, err == nil
	}
	for _, w := range []struct {
		q    string
		want float64
	}{{`up{job="pg"}`, 1}, {`webconfig_prom_total{via="https"}`, 5}} {
		compatPoll(t, 30*time.Second, fmt.Sprintf("%s == %v", w.q, w.want), func() bool {
			v, ok := query(w.q)
			return ok && v == w.want
		})
	}
}
