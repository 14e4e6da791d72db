package web

import (
	"bufio"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/push-gateway/push-gateway/expose/web/webtest"
)

// configDir is a directory with a CA, a server pair and a bcrypt hash to
// point config files at.
func configDir(t *testing.T) string {
	t.Helper()
	ca, dir := webtest.NewCA(t), t.TempDir()
	writePair(t, ca, dir, 1)
	webtest.WriteFile(t, dir, "ca.crt", ca.PEM)
	return dir
}

// promtoolCheck runs `promtool check web-config` on path: ok, or its
// message on one line; skipped without promtool.
func promtoolCheck(t *testing.T, path string) (bool, string) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed: apt-get install prometheus")
	}
	out, err := exec.Command(promtool, "check", "web-config", path).CombinedOutput()
	msg := strings.TrimSpace(string(out))
	if err != nil {
		_, msg, _ = strings.Cut(msg, path+" FAILED: ")
		return false, OneLine(errString(msg))
	}
	return true, msg
}

type errString string

func (e errString) Error() string { return string(e) }

func load(t *testing.T, path string) error {
	_, err := Load(path, slog.New(slog.DiscardHandler))
	return err
}

// Every file promtool accepts, push-gateway accepts; every file it
// refuses, push-gateway refuses with the same message. The one exception
// is rate_limit, refused here with a message of its own (Debian's promtool
// predates it).
func TestConfigLikePromtool(t *testing.T) {
	dir := configDir(t)
	hash := hashOf(t, "pw", bcrypt.MinCost)
	pair := "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
	for _, c := range []struct {
		name, yml string
		good      bool
	}{
		{"empty", "", true},
		{"users, no TLS", "basic_auth_users:\n  alice: " + hash + "\n", true},
		{"pair", pair, true},
		{"everything", pair + "  client_ca_file: ca.crt\n  client_auth_type: RequireAndVerifyClientCert\n" +
			"  min_version: TLS12\n  max_version: TLS13\n  prefer_server_cipher_suites: true\n" +
			"  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]\n" +
			"  curve_preferences: [X25519, CurveP256]\n" +
			"http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n" +
			"basic_auth_users:\n  alice: " + hash + "\n  bob: " + hash + "\n", true},
		{"each client auth type", pair + "  client_ca_file: ca.crt\n  client_auth_type: VerifyClientCertIfGiven\n", true},
		{"RequestClientCert", pair + "  client_auth_type: RequestClientCert\n", true},
		{"RequireAnyClientCert", pair + "  client_auth_type: RequireAnyClientCert\n", true},
		{"NoClientCert", pair + "  client_auth_type: NoClientCert\n", true},
		{"TLS10", pair + "  min_version: TLS10\n", true},
		{"unknown key", "tls_server_config:\n  cert_file: server.crt\n  foo: 1\n", false},
		{"unknown top-level key", "basic_auth_user:\n  alice: " + hash + "\n", false},
		{"two unknown keys", "a: 1\nb: 2\n", false},
		{"duplicate key", pair + "  cert_file: server.crt\n", false},
		{"wrong type", pair + "  min_version: [TLS12]\n", false},
		{"not YAML", "tls_server_config: [\n", false},
		{"bad hash", "basic_auth_users:\n  alice: notahash\n", false},
		{"missing cert file", "tls_server_config:\n  cert_file: nothere.crt\n  key_file: server.key\n", false},
		{"cert without key", "tls_server_config:\n  cert_file: server.crt\n", false},
		{"key without cert", "tls_server_config:\n  key_file: server.key\n", false},
		{"key for another cert", "tls_server_config:\n  cert_file: server.crt\n  key_file: ca.crt\n", false},
		{"unknown version", pair + "  min_version: TLS9\n", false},
		{"unknown cipher", pair + "  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n", false},
		{"unknown curve", pair + "  curve_preferences: [CurveP224]\n", false},
		{"unknown client auth", pair + "  client_auth_type: Sometimes\n", false},
		{"CA without policy", pair + "  client_ca_file: ca.crt\n", false},
		{"missing CA file", pair + "  client_ca_file: nothere.crt\n  client_auth_type: RequireAndVerifyClientCert\n", false},
		{"header not allowed", "http_server_config:\n  headers:\n    Server: x\n", false},
		{"header value not allowed", "http_server_config:\n  headers:\n    X-Frame-Options: always\n", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".yml")
			if err := os.WriteFile(path, []byte(c.yml), 0o600); err != nil {
				t.Fatal(err)
			}
			err := load(t, path)
			if c.good != (err == nil) {
				t.Fatalf("err %v, want good %v", err, c.good)
			}
			ok, msg := promtoolCheck(t, path)
			if ok != c.good {
				t.Fatalf("promtool: %v %s; the test thinks good is %v", ok, msg, c.good)
			}
			if !ok && OneLine(err) != msg {
				t.Fatalf("push-gateway: %s\npromtool:     %s", OneLine(err), msg)
			}
		})
	}
}

func TestRateLimitRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "web.yml")
	os.WriteFile(path, []byte("rate_limit:\n  burst: 10\n  interval: 1s\n"), 0o600)
	if err := load(t, path); err == nil || !strings.Contains(err.Error(), "rate_limit is not supported") {
		t.Fatalf("rate_limit: %v", err)
	}
}

// The web config examples of the README's "Securing the scrape", with
// /etc/push-gateway/ made a test directory that holds the files they name:
// promtool and push-gateway accept each.
func TestReadmeExamples(t *testing.T) {
	f, err := os.Open("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var examples []string
	in, block := false, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			in = line == "## Securing the scrape"
		case in && line == "```yaml":
			block = "\n"
		case in && block != "" && line == "```":
			if strings.Contains(block, "\ntls_server_config:") || strings.Contains(block, "\nbasic_auth_users:") {
				examples = append(examples, block[1:])
			}
			block = ""
		case block != "":
			block += line + "\n"
		}
	}
	if len(examples) < 2 {
		t.Fatalf("%d web config examples in the README's \"Securing the scrape\", want 2 or more", len(examples))
	}
	named := regexp.MustCompile(`(?m)^\s*(?:cert_file|key_file|client_ca_file):\s*(\S+)`)
	for i, ex := range examples {
		dir := t.TempDir()
		ca := webtest.NewCA(t)
		crt, key := ca.Server(t, 1)
		for _, m := range named.FindAllStringSubmatch(ex, -1) {
			content := crt
			switch {
			case strings.Contains(m[0], "key_file"):
				content = key
			case strings.Contains(m[0], "client_ca_file"):
				content = ca.PEM
			}
			rel := strings.TrimPrefix(m[1], "/etc/push-gateway/")
			os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o700)
			webtest.WriteFile(t, dir, rel, content)
		}
		path := filepath.Join(dir, "web.yml")
		os.WriteFile(path, []byte(strings.ReplaceAll(ex, "/etc/push-gateway/", dir+"/")), 0o600)
		if err := load(t, path); err != nil {
			t.Errorf("example %d: %v\n%s", i+1, err, ex)
		}
		if ok, msg := promtoolCheck(t, path); !ok {
			t.Errorf("example %d: promtool: %s\n%s", i+1, msg, ex)
		}
	}
}
