package web

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/push-gateway/push-gateway/expose"
	"github.com/push-gateway/push-gateway/expose/web/webtest"
)

// logBuf collects what the package logs.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// tlsServer serves "ok" with the web config at dir/web.yml on loopback;
// it returns the address.
func tlsServer(t *testing.T, dir, yml string, head time.Duration) (string, *logBuf) {
	t.Helper()
	path := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := new(logBuf)
	w, err := Load(path, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &expose.Server{
		Handler:           func(resp *expose.Response, r *expose.Request) { resp.Write([]byte("ok\n")) },
		Handshake:         w.TLS.Handshake,
		ReadHeaderTimeout: head,
	}
	go s.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return l.Addr().String(), logs
}

// get sends a GET over TLS and returns the server certificate's serial
// and the body.
func get(addr string, conf *tls.Config) (serial int64, body string, err error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, conf)
	if err != nil {
		return 0, "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
		return 0, "", err
	}
	b, err := io.ReadAll(c)
	if err != nil {
		return 0, string(b), err
	}
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64(), string(b), nil
}

func writePair(t *testing.T, ca *webtest.CA, dir string, serial int64) {
	t.Helper()
	c, k := ca.Server(t, serial)
	webtest.WriteFile(t, dir, "server.key", k)
	webtest.WriteFile(t, dir, "server.crt", c)
}

const pairYML = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"

// A certificate replaced on disk is served on the next connection; a
// broken replacement leaves the last good one served, and is logged.
func TestCertificateReload(t *testing.T) {
	ca, dir := webtest.NewCA(t), t.TempDir()
	writePair(t, ca, dir, 100)
	addr, logs := tlsServer(t, dir, pairYML, 0)
	conf := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
	check := func(want int64) {
		t.Helper()
		serial, body, err := get(addr, conf)
		if err != nil || serial != want || !strings.HasSuffix(body, "\r\n\r\nok\n") {
			t.Fatalf("serial %d, body %q, err %v; want serial %d and ok", serial, body, err, want)
		}
	}
	check(100)
	writePair(t, ca, dir, 101)
	check(101)
	webtest.WriteFile(t, dir, "server.crt", []byte("not a certificate"))
	check(101)
	if !strings.Contains(logs.String(), "keeping the old one") {
		t.Fatalf("a broken certificate was not logged: %s", logs)
	}
	os.Remove(filepath.Join(dir, "server.crt"))
	check(101)
	writePair(t, ca, dir, 102)
	check(102)
}

// A plain HTTP request to the TLS port gets net/http's 400 at once, not a
// wait for a handshake.
func TestPlainHTTPToTLSPort(t *testing.T) {
	ca, dir := webtest.NewCA(t), t.TempDir()
	writePair(t, ca, dir, 1)
	addr, _ := tlsServer(t, dir, pairYML, time.Minute)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.SetDeadline(start.Add(10 * time.Second))
	io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
	b, err := io.ReadAll(c)
	if string(b) != plainHTTPRefusal {
		t.Fatalf("got %q, %v; want %q", b, err, plainHTTPRefusal)
	}
	if d := time.Since(start); d > 5*time.Second { // the head timeout is a minute
		t.Fatalf("the refusal took %s", d)
	}
}

// A handshake that never completes is closed after the head's deadline;
// one never started as well.
func TestHandshakeDeadline(t *testing.T) {
	ca, dir := webtest.NewCA(t), t.TempDir()
	writePair(t, ca, dir, 1)
	const head = 300 * time.Millisecond
	addr, _ := tlsServer(t, dir, pairYML, head)
	for _, first := range []string{"", "\x16\x03\x01\x02\x00\x01"} { // nothing; a ClientHello's first bytes
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		c.SetDeadline(start.Add(20 * time.Second))
		io.WriteString(c, first)
		_, err = io.ReadAll(c)
		d := time.Since(start)
		c.Close()
		if err != nil {
			t.Fatalf("%q: not closed by the server: %v", first, err)
		}
		if d < head/2 {
			t.Fatalf("%q: closed after %s, before the deadline of %s", first, d, head)
		}
	}
}

// RequireAndVerifyClientCert: a client without a certificate, or with one
// of another CA, is refused; with one of client_ca_file, it is served.
func TestClientCertificate(t *testing.T) {
	ca, other, dir := webtest.NewCA(t), webtest.NewCA(t), t.TempDir()
	writePair(t, ca, dir, 1)
	webtest.WriteFile(t, dir, "clients.pem", ca.PEM)
	addr, _ := tlsServer(t, dir, pairYML+"  client_ca_file: clients.pem\n  client_auth_type: RequireAndVerifyClientCert\n", 0)
	conf := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
	if _, body, err := get(addr, conf); err == nil {
		t.Fatalf("served without a client certificate: %q", body)
	}
	bad := conf.Clone()
	bad.Certificates = []tls.Certificate{other.ClientCert(t, 7, "prometheus")}
	if _, body, err := get(addr, bad); err == nil {
		t.Fatalf("served with a certificate of another CA: %q", body)
	}
	good := conf.Clone()
	good.Certificates = []tls.Certificate{ca.ClientCert(t, 8, "prometheus")}
	if _, body, err := get(addr, good); err != nil || !strings.HasSuffix(body, "ok\n") {
		t.Fatalf("with a good client certificate: %q, %v", body, err)
	}
}

// client_allowed_sans: a client certificate of the CA must also carry one
// of the names.
func TestClientAllowedSANs(t *testing.T) {
	ca, dir := webtest.NewCA(t), t.TempDir()
	writePair(t, ca, dir, 1)
	webtest.WriteFile(t, dir, "clients.pem", ca.PEM)
	addr, _ := tlsServer(t, dir, pairYML+"  client_ca_file: clients.pem\n  client_auth_type: RequireAndVerifyClientCert\n  client_allowed_sans: [prometheus]\n", 0)
	conf := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
	conf.Certificates = []tls.Certificate{ca.ClientCert(t, 8, "someone-else")}
	if _, body, err := get(addr, conf); err == nil {
		t.Fatalf("served a name not allowed: %q", body)
	}
	conf.Certificates = []tls.Certificate{ca.ClientCert(t, 9, "prometheus")}
	if _, body, err := get(addr, conf); err != nil || !strings.HasSuffix(body, "ok\n") {
		t.Fatalf("with an allowed name: %q, %v", body, err)
	}
}

// min_version is kept to: a client of TLS 1.2 at most is refused by a
// server of TLS 1.3 at least.
func TestMinVersion(t *testing.T) {
	ca, dir := webtest.NewCA(t), t.TempDir()
	writePair(t, ca, dir, 1)
	addr, _ := tlsServer(t, dir, pairYML+"  min_version: TLS13\n", 0)
	conf := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MaxVersion: tls.VersionTLS12}
	if _, body, err := get(addr, conf); err == nil {
		t.Fatalf("TLS 1.2 served: %q", body)
	}
	conf.MaxVersion = 0
	if _, _, err := get(addr, conf); err != nil {
		t.Fatal(err)
	}
}
