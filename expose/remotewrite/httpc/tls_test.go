package httpc

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testCA is a certificate authority made by the test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
	pool *x509.CertPool
}

func newCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pool: x509.NewCertPool()}
	ca.pool.AddCert(cert)
	return ca
}

// leaf makes a certificate signed by ca, for a server (with the names of
// 127.0.0.1) or a client, and returns it with its PEM forms.
func (ca *testCA) leaf(t testing.TB, cn string, server bool) (tls.Certificate, []byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost", "receiver.test"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert, certPEM, keyPEM
}

func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tlsServer starts an HTTPS server on 127.0.0.1 with a certificate of ca;
// it answers with the common name of the client's certificate, if any.
func tlsServer(t testing.TB, ca *testCA, clientCAs *x509.CertPool) *httptest.Server {
	t.Helper()
	cert, _, _ := ca.leaf(t, "receiver", true)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if len(r.TLS.PeerCertificates) > 0 {
			io.WriteString(w, r.TLS.PeerCertificates[0].Subject.CommonName)
		}
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	if clientCAs != nil {
		srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
		srv.TLS.ClientCAs = clientCAs
	}
	srv.Config.ErrorLog = discardLog()
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func TestTLS(t *testing.T) {
	needTLS(t)
	ca := newCA(t, "test CA")
	other := newCA(t, "other CA")
	dir := t.TempDir()
	caFile := writeFile(t, dir, "ca.pem", ca.pem)
	otherFile := writeFile(t, dir, "other.pem", other.pem)
	srv := tlsServer(t, ca, nil)
	byIP := mustURL(t, srv.URL+"/write")
	byName := mustURL(t, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)+"/write")
	for _, tc := range []struct {
		name   string
		cfg    Config
		status int    // or
		err    string // an error with this
	}{
		{"CA file, by IP", Config{URL: byIP, CAFile: caFile}, 200, ""},
		{"CA file, by name", Config{URL: byName, CAFile: caFile}, 200, ""},
		{"server name", Config{URL: byIP, CAFile: caFile, ServerName: "receiver.test"}, 200, ""},
		{"wrong server name", Config{URL: byIP, CAFile: caFile, ServerName: "wrong.test"}, 0, "certificate is valid for"},
		{"wrong CA", Config{URL: byIP, CAFile: otherFile}, 0, "certificate signed by unknown authority"},
		{"system roots", Config{URL: byIP}, 0, "certificate signed by unknown authority"},
		{"insecure", Config{URL: byIP, InsecureSkipVerify: true}, 200, ""},
		{"insecure, wrong CA", Config{URL: byIP, CAFile: otherFile, InsecureSkipVerify: true}, 200, ""},
		{"missing CA file", Config{URL: byIP, CAFile: filepath.Join(dir, "nope.pem")}, 0, "no such file"},
		{"CA file without PEM", Config{URL: byIP, CAFile: writeFile(t, dir, "junk", []byte("junk"))}, 0, "no PEM certificate"},
		{"plain http to TLS", Config{URL: mustURL(t, "http://"+byIP.Host+"/write")}, 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Timeout = 10 * time.Second
			c := newClient(t, tc.cfg)
			for i := range 2 { // again: the configuration built at the first dial serves the next
				resp, err := post(c, "x")
				if tc.err == "" && (err != nil || resp.Status != tc.status) {
					t.Fatalf("request %d: got %v %d, want %d", i, err, resp.Status, tc.status)
				}
				if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
					t.Fatalf("request %d: got %v, want an error with %q", i, err, tc.err)
				}
			}
		})
	}
}

// needTLS skips a test in a build without TLS, where New refuses https.
func needTLS(t testing.TB) {
	t.Helper()
	if !tlsBuilt {
		if _, err := New(Config{URL: &url.URL{Scheme: "https", Host: "receiver.test", Path: "/"}}); err == nil {
			t.Fatal("a build without TLS accepts an https:// URL")
		}
		t.Skip("built with httpc_notls")
	}
}

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }

func TestClientCertificate(t *testing.T) {
	needTLS(t)
	ca := newCA(t, "test CA")
	clientCA := newCA(t, "client CA")
	dir := t.TempDir()
	caFile := writeFile(t, dir, "ca.pem", ca.pem)
	srv := tlsServer(t, ca, clientCA.pool)
	u := mustURL(t, srv.URL+"/write")

	c := newClient(t, Config{URL: u, CAFile: caFile, Timeout: 10 * time.Second})
	if resp, err := post(c, "x"); err == nil {
		t.Fatalf("without a client certificate: got %d, want an error", resp.Status)
	}

	_, certPEM, keyPEM := clientCA.leaf(t, "device-1", false)
	certFile := writeFile(t, dir, "client.pem", certPEM)
	keyFile := writeFile(t, dir, "client.key", keyPEM)
	c = newClient(t, Config{URL: u, CAFile: caFile, CertFile: certFile, KeyFile: keyFile, Timeout: 10 * time.Second})
	resp, err := post(c, "x")
	if err != nil || resp.Status != 200 || string(resp.Body) != "device-1" {
		t.Fatalf("got %v %d %q, want 200 device-1", err, resp.Status, resp.Body)
	}

	// A renewed certificate is read for the next connection, with no
	// restart; a key that does not match yet fails that dial only.
	_, certPEM, keyPEM = clientCA.leaf(t, "device-1-renewed", false)
	writeFile(t, dir, "client.pem", certPEM)
	later := time.Now().Add(time.Minute)
	os.Chtimes(certFile, later, later)
	srv.CloseClientConnections()
	if resp, err := post(c, "x"); err == nil {
		t.Fatalf("with a certificate that does not match its key: got %d, want an error", resp.Status)
	}
	writeFile(t, dir, "client.key", keyPEM)
	os.Chtimes(keyFile, later, later)
	resp, err = post(c, "x")
	if err != nil || resp.Status != 200 || string(resp.Body) != "device-1-renewed" {
		t.Fatalf("after renewal: got %v %d %q, want 200 device-1-renewed", err, resp.Status, resp.Body)
	}

	os.Remove(keyFile)
	srv.CloseClientConnections()
	if _, err := post(c, "x"); err == nil || !strings.Contains(err.Error(), "client key") {
		t.Fatalf("with the key file gone: got %v, want an error about it", err)
	}
}

// A TLS receiver that stops reading: the request ends at its timeout.
func TestTLSStalledReceiverEndsAtTimeout(t *testing.T) {
	needTLS(t)
	ca := newCA(t, "test CA")
	cert, _, _ := ca.leaf(t, "receiver", true)
	u, _ := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
		if tc.Handshake() != nil {
			return
		}
		var b [1]byte
		for {
			if _, err := c.Read(b[:0]); err != nil { // reads nothing, until closed
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	u.Scheme = "https"
	c := newClient(t, Config{URL: u, InsecureSkipVerify: true, Timeout: 300 * time.Millisecond})
	start := time.Now()
	_, err := c.Do(context.Background(), "POST", nil, make([]byte, 32<<20))
	if err == nil {
		t.Fatal("a stalled receiver took the request")
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("took %v with a timeout of 300ms", d)
	}
}

// Bytes on an idle connection (a server's unsolicited 408, say) are not
// taken for the next request's answer, wherever they wait: in the client's
// buffer (sent with the previous answer) or in the socket (sent later),
// over TCP or TLS.
func TestIdleConnectionWithDataNotReused(t *testing.T) {
	ca := newCA(t, "test CA")
	cert, _, _ := ca.leaf(t, "receiver", true)
	const ok, late = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n"
	for _, tc := range []struct {
		name        string
		tls, inTime bool
		records     bool // two TLS records in one TCP write: the second waits in the tls.Conn
	}{
		{"plain, same write", false, true, false},
		{"plain, later", false, false, false},
		{"TLS, same record", true, true, false},
		{"TLS, two records", true, true, true},
		{"TLS, later", true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.tls {
				needTLS(t)
			}
			var first atomic.Bool
			answered, sent := make(chan struct{}), make(chan struct{})
			u, conns := rawServer(t, func(c net.Conn, br *bufio.Reader) {
				held := &holdConn{Conn: c}
				if tc.tls {
					tc := tls.Server(held, &tls.Config{Certificates: []tls.Certificate{cert}})
					c, br = tc, bufio.NewReader(tc)
				}
				if !first.CompareAndSwap(false, true) {
					for range 10 {
						if _, _, err := readRequest(br); err != nil {
							return
						}
						io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
					}
					return
				}
				if _, _, err := readRequest(br); err != nil {
					return
				}
				switch {
				case tc.records:
					held.hold = true
					io.WriteString(c, ok)
					io.WriteString(c, late)
					held.flush()
				case tc.inTime:
					io.WriteString(c, ok+late)
				default:
					io.WriteString(c, ok)
					<-answered
					io.WriteString(c, late)
				}
				close(sent)
				io.Copy(io.Discard, br) // never answers again
			})
			if tc.tls {
				u.Scheme = "https"
			}
			c := newClient(t, Config{URL: u, InsecureSkipVerify: tc.tls, Timeout: 10 * time.Second})
			if resp, err := post(c, "x"); err != nil || resp.Status != 200 {
				t.Fatalf("first request: %v %d", err, resp.Status)
			}
			close(answered)
			<-sent
			resp, err := post(c, "x")
			if err != nil || resp.Status != 200 || string(resp.Body) != "ok" {
				t.Fatalf("second request: got %v %d %q, want 200 ok from a new connection", err, resp.Status, resp.Body)
			}
			if n := conns.Load(); n != 2 {
				t.Fatalf("%d connections, want 2", n)
			}
		})
	}
}

// holdConn keeps what is written while hold is set, until flush.
type holdConn struct {
	net.Conn
	hold bool
	buf  []byte
}

func (c *holdConn) Write(p []byte) (int, error) {
	if c.hold {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *holdConn) flush() {
	c.hold = false
	c.Conn.Write(c.buf)
}
