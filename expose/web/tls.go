package web

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// TLS is the server side of tls_server_config. Its certificate and key
// are read again when their files change (checked at each handshake, two
// stat calls), so that a renewed certificate needs no restart; a new pair
// that cannot be read leaves the old one in use, and is logged.
type TLS struct {
	config   *tls.Config
	log      *slog.Logger
	certPath string // "" when the pair was given inline
	keyPath  string
	inline   [2][]byte // cert and key given in the file itself

	mu                  sync.Mutex // guards what follows
	cert                *tls.Certificate
	certStamp, keyStamp fileStamp
	missing             bool // a file was missing at the last check
}

// fileStamp tells a file's change by its modification time and size.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stamp(path string) (fileStamp, error) {
	if path == "" {
		return fileStamp{}, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.ModTime(), fi.Size()}, nil
}

// newTLS checks c as exporter-toolkit does, in its order and with its
// messages (those of the version Debian's promtool links, which the tests
// compare with), and reads the certificate and key.
func newTLS(c *TLSConfig, log *slog.Logger) (*TLS, error) {
	if c.TLSCertPath == "" && c.TLSCert == "" {
		return nil, errors.New("missing cert_file")
	}
	if c.TLSKeyPath == "" && c.TLSKey == "" {
		return nil, errors.New("missing key_file")
	}
	t := &TLS{log: log, certPath: c.TLSCertPath, keyPath: c.TLSKeyPath, inline: [2][]byte{[]byte(c.TLSCert), []byte(c.TLSKey)}}
	var err error
	if t.certStamp, t.keyStamp, t.cert, err = t.load(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:     uint16(c.MinVersion),
		MaxVersion:     uint16(c.MaxVersion),
		GetCertificate: t.certificate,
		NextProtos:     []string{"http/1.1"}, // no HTTP/2 here
	}
	for _, cs := range c.CipherSuites {
		cfg.CipherSuites = append(cfg.CipherSuites, uint16(cs))
	}
	for _, cp := range c.CurvePreferences {
		cfg.CurvePreferences = append(cfg.CurvePreferences, tls.CurveID(cp))
	}
	if c.ClientCAs != "" || c.ClientCAsText != "" {
		pem := []byte(c.ClientCAsText)
		if c.ClientCAs != "" {
			if pem, err = os.ReadFile(c.ClientCAs); err != nil {
				return nil, err
			}
		}
		cfg.ClientCAs = x509.NewCertPool()
		cfg.ClientCAs.AppendCertsFromPEM(pem)
	}
	if c.ClientAllowedSans != nil {
		cfg.VerifyPeerCertificate = allowedSANs(c.ClientAllowedSans)
	}
	switch c.ClientAuth {
	case "", "NoClientCert":
		cfg.ClientAuth = tls.NoClientCert
	case "RequestClientCert":
		cfg.ClientAuth = tls.RequestClientCert
	case "RequireAnyClientCert", "RequireClientCert": // the second, exporter-toolkit's old name
		cfg.ClientAuth = tls.RequireAnyClientCert
	case "VerifyClientCertIfGiven":
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case "RequireAndVerifyClientCert":
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	default:
		return nil, errors.New("Invalid ClientAuth: " + c.ClientAuth)
	}
	if cfg.ClientCAs != nil && cfg.ClientAuth == tls.NoClientCert {
		return nil, errors.New("Client CA's have been configured without a Client Auth Policy")
	}
	t.config = cfg
	return t, nil
}

// load reads the certificate and key, with the files' stamps taken before
// (a stamp that cannot be taken is left zero: the next check reads again).
func (t *TLS) load() (certStamp, keyStamp fileStamp, cert *tls.Certificate, err error) {
	certStamp, _ = stamp(t.certPath)
	keyStamp, _ = stamp(t.keyPath)
	pem := t.inline
	for i, p := range []string{t.certPath, t.keyPath} {
		if p != "" && err == nil {
			pem[i], err = os.ReadFile(p)
		}
	}
	if err == nil {
		var c tls.Certificate
		if c, err = tls.X509KeyPair(pem[0], pem[1]); err == nil {
			cert = &c
		}
	}
	if err != nil {
		return certStamp, keyStamp, nil, fmt.Errorf("failed to load X509KeyPair: %w", err)
	}
	return certStamp, keyStamp, cert, nil
}

// certificate is tls.Config.GetCertificate: the pair last read, read again
// first if a file changed since.
func (t *TLS) certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.certPath == "" && t.keyPath == "" {
		return t.cert, nil
	}
	cs, err := stamp(t.certPath)
	if ks, err2 := stamp(t.keyPath); err == nil && err2 == nil && cs == t.certStamp && ks == t.keyStamp {
		return t.cert, nil
	} else if err == nil {
		err = err2
	}
	if err != nil {
		if !t.missing { // logged once while a file is missing
			t.missing = true
			t.log.Error("cannot read the new TLS certificate, keeping the old one", "cert_file", t.certPath, "key_file", t.keyPath, "err", err)
		}
		return t.cert, nil
	}
	t.missing = false
	certStamp, keyStamp, cert, err := t.load()
	// A failure is remembered too, so that it is logged once per change
	// rather than at every handshake.
	t.certStamp, t.keyStamp = certStamp, keyStamp
	if err != nil {
		t.log.Error("cannot read the new TLS certificate, keeping the old one", "cert_file", t.certPath, "key_file", t.keyPath, "err", err)
		return t.cert, nil
	}
	t.cert = cert
	t.log.Info("read the TLS certificate again", "cert_file", t.certPath, "not_after", cert.Leaf.NotAfter)
	return t.cert, nil
}

// allowedSANs is client_allowed_sans: the client certificate must carry
// one of names among its DNS names, e-mail addresses, IP addresses or URIs.
func allowedSANs(names []string) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("no client certificate")
		}
		cert, err := x509.ParseCertificate(raw[0])
		if err != nil {
			return fmt.Errorf("error parsing client certificate: %s", err)
		}
		sans := append(append([]string(nil), cert.DNSNames...), cert.EmailAddresses...)
		for _, ip := range cert.IPAddresses {
			sans = append(sans, ip.String())
		}
		for _, u := range cert.URIs {
			sans = append(sans, u.String())
		}
		for _, s := range sans {
			if contains(names, s) {
				return nil
			}
		}
		return fmt.Errorf("could not find allowed SANs in client cert, found: %v", names)
	}
}

// Handshake is expose.Server.Handshake: it runs the TLS handshake on nc,
// within the deadlines the server set, and returns the connection to
// serve. A plain HTTP request gets net/http's answer, 400 "Client sent an
// HTTP request to an HTTPS server.", rather than a wait for a handshake
// that will not come. On false, the caller closes nc.
func (t *TLS) Handshake(nc net.Conn) (net.Conn, bool) {
	tc := tls.Server(nc, t.config)
	err := tc.Handshake()
	if err == nil {
		return &conn{tc: tc, raw: nc}, true
	}
	var re tls.RecordHeaderError
	if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader[:]) {
		refuse(re.Conn)
		return nil, false
	}
	t.log.Debug("TLS handshake failed", "remote", nc.RemoteAddr(), "err", err)
	return nil, false
}

// looksLikeHTTP tells whether a record header is the start of an HTTP
// request: upper-case letters where a TLS record has its type (20 to 24).
func looksLikeHTTP(h []byte) bool {
	for _, b := range h {
		if b < ' ' || b > '~' {
			return false
		}
	}
	return len(h) > 0 && h[0] >= 'A' && h[0] <= 'Z'
}

const plainHTTPRefusal = "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"

// refuse answers a plain HTTP request, then reads what the client still
// sends for a moment before the connection closes: closing on unread
// bytes would reset it, and the reset can destroy the answer in flight.
func refuse(nc net.Conn) {
	now := time.Now()
	nc.SetWriteDeadline(now.Add(time.Second))
	if _, err := io.WriteString(nc, plainHTTPRefusal); err != nil {
		return
	}
	if cw, ok := nc.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		nc.SetReadDeadline(now.Add(500 * time.Millisecond))
		io.Copy(io.Discard, io.LimitReader(nc, 64<<10))
	}
}

// conn is a TLS connection whose Close closes the TCP connection at once:
// the server closes idle connections from other goroutines, under its
// lock, where tls.Conn's Close would first send an alert and could wait
// on a full send buffer. CloseWrite (tls.Conn's) sends the alert. It does
// not embed *tls.Conn: the binary uses reflection (kong), so that every
// exported method of a type in an interface is kept, and tls.Conn's
// bring about 80 KB of code that nothing calls.
type conn struct {
	tc  *tls.Conn
	raw net.Conn
}

func (c *conn) Read(b []byte) (int, error)         { return c.tc.Read(b) }
func (c *conn) Write(b []byte) (int, error)        { return c.tc.Write(b) }
func (c *conn) CloseWrite() error                  { return c.tc.CloseWrite() }
func (c *conn) Close() error                       { return c.raw.Close() }
func (c *conn) LocalAddr() net.Addr                { return c.raw.LocalAddr() }
func (c *conn) RemoteAddr() net.Addr               { return c.raw.RemoteAddr() }
func (c *conn) SetDeadline(t time.Time) error      { return c.raw.SetDeadline(t) }
func (c *conn) SetReadDeadline(t time.Time) error  { return c.raw.SetReadDeadline(t) }
func (c *conn) SetWriteDeadline(t time.Time) error { return c.raw.SetWriteDeadline(t) }
