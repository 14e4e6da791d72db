// Package web reads --web.config.file, the file of the Prometheus
// exporter-toolkit (the one node_exporter and the Pushgateway read), and
// turns it into what the TCP server needs: a TLS handshake whose
// certificate is read again when its files change, and a basic-auth check
// with a cache of bcrypt results.
//
// The file is read as exporter-toolkit reads it: go.yaml.in/yaml/v2's
// UnmarshalStrict into types of the same names, so that an unknown key,
// a duplicate or a wrong type gets the very message `promtool check
// web-config` prints. Nothing here runs unless the flag is given.
package web

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v2"
	"golang.org/x/crypto/bcrypt"
)

// Config is the file's content. Its type names (Config, TLSConfig,
// HTTPConfig) are exporter-toolkit's: the YAML library names them in its
// errors.
type Config struct {
	TLSConfig  TLSConfig         `yaml:"tls_server_config"`
	HTTPConfig HTTPConfig        `yaml:"http_server_config"`
	Users      map[string]string `yaml:"basic_auth_users"`
	// RateLimit is exporter-toolkit's rate_limit (since v0.14), refused:
	// --web.max-requests-in-flight bounds the scrapes instead.
	RateLimit *struct {
		Burst    int           `yaml:"burst"`
		Interval time.Duration `yaml:"interval"`
	} `yaml:"rate_limit"`
}

// TLSConfig is tls_server_config. Relative paths are taken from the
// config file's directory.
type TLSConfig struct {
	TLSCert                  string     `yaml:"cert"`
	TLSKey                   string     `yaml:"key"`
	ClientCAsText            string     `yaml:"client_ca"`
	TLSCertPath              string     `yaml:"cert_file"`
	TLSKeyPath               string     `yaml:"key_file"`
	ClientAuth               string     `yaml:"client_auth_type"`
	ClientCAs                string     `yaml:"client_ca_file"`
	CipherSuites             []Cipher   `yaml:"cipher_suites"`
	CurvePreferences         []Curve    `yaml:"curve_preferences"`
	MinVersion               TLSVersion `yaml:"min_version"`
	MaxVersion               TLSVersion `yaml:"max_version"`
	PreferServerCipherSuites bool       `yaml:"prefer_server_cipher_suites"` // Go ignores it since 1.18
	ClientAllowedSans        []string   `yaml:"client_allowed_sans"`
}

// HTTPConfig is http_server_config. The server speaks HTTP/1.1 only, so
// http2 changes nothing; headers are added to every response but those of
// /-/healthy and /-/ready.
type HTTPConfig struct {
	HTTP2  bool              `yaml:"http2"`
	Header map[string]string `yaml:"headers"`
}

// enabled tells whether the file asks for TLS: any of its TLS fields set.
func (t *TLSConfig) enabled() bool {
	return t.TLSCertPath != "" || t.TLSCert != "" || t.TLSKeyPath != "" || t.TLSKey != "" ||
		t.ClientCAs != "" || t.ClientCAsText != "" || t.ClientAuth != ""
}

// Cipher is a cipher suite given by its Go name.
type Cipher uint16

// UnmarshalYAML reads a name of tls.CipherSuites.
func (c *Cipher) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return err
	}
	for _, cs := range tls.CipherSuites() {
		if cs.Name == s {
			*c = Cipher(cs.ID)
			return nil
		}
	}
	return errors.New("unknown cipher: " + s)
}

// Curve is an elliptic curve given by its Go name.
type Curve tls.CurveID

// UnmarshalYAML reads one of the names exporter-toolkit knows.
func (c *Curve) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return err
	}
	switch s {
	case "CurveP256":
		*c = Curve(tls.CurveP256)
	case "CurveP384":
		*c = Curve(tls.CurveP384)
	case "CurveP521":
		*c = Curve(tls.CurveP521)
	case "X25519":
		*c = Curve(tls.X25519)
	default:
		return errors.New("unknown curve: " + s)
	}
	return nil
}

// TLSVersion is TLS10 to TLS13.
type TLSVersion uint16

// UnmarshalYAML reads TLS10, TLS11, TLS12 or TLS13.
func (v *TLSVersion) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return err
	}
	switch s {
	case "TLS10":
		*v = tls.VersionTLS10
	case "TLS11":
		*v = tls.VersionTLS11
	case "TLS12":
		*v = tls.VersionTLS12
	case "TLS13":
		*v = tls.VersionTLS13
	default:
		return errors.New("unknown TLS version: " + s)
	}
	return nil
}

// securityHeaders are the headers http_server_config may set, with the
// values each may take (none listed: any).
var securityHeaders = map[string][]string{
	"Strict-Transport-Security": nil,
	"X-Content-Type-Options":    {"nosniff"},
	"X-Frame-Options":           {"deny", "sameorigin"},
	"X-XSS-Protection":          nil,
	"Content-Security-Policy":   nil,
}

// Web is a loaded config file: what the TCP server runs. TLS is nil
// without tls_server_config, Auth nil without basic_auth_users.
type Web struct {
	TLS     *TLS
	Auth    *Auth
	headers [][2]string
}

// Load reads and checks the file at path in the order `promtool check
// web-config` does, and with its messages: the YAML, the headers, each
// user's bcrypt hash, then the TLS settings and the certificate and key.
// A file with neither TLS nor users is valid and changes nothing. log
// gets what happens later (a certificate that cannot be read again).
func Load(path string, log *slog.Logger) (*Web, error) {
	c, err := parse(path)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(c.Users))
	for user, hash := range c.Users {
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, err
		}
		names = append(names, user)
	}
	if c.RateLimit != nil {
		return nil, errors.New("rate_limit is not supported by push-gateway: --web.max-requests-in-flight bounds the scrapes")
	}
	w := &Web{}
	if c.TLSConfig.enabled() {
		if w.TLS, err = newTLS(&c.TLSConfig, log); err != nil {
			return nil, err
		}
	}
	if len(c.Users) > 0 {
		sort.Strings(names)
		w.Auth = newAuth(c.Users, names[0])
	}
	for name, value := range c.HTTPConfig.Header {
		w.headers = append(w.headers, [2]string{name, value})
	}
	sort.Slice(w.headers, func(i, j int) bool { return w.headers[i][0] < w.headers[j][0] })
	return w, nil
}

// parse reads the YAML, with exporter-toolkit's defaults for what the
// file leaves out, and resolves relative paths.
func parse(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c := &Config{
		TLSConfig:  TLSConfig{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13, PreferServerCipherSuites: true},
		HTTPConfig: HTTPConfig{HTTP2: true},
	}
	if err := yaml.UnmarshalStrict(b, c); err != nil {
		return nil, err
	}
	for name, value := range c.HTTPConfig.Header {
		allowed, ok := securityHeaders[name]
		if !ok {
			return nil, fmt.Errorf("HTTP header %q can not be configured", name)
		}
		if len(allowed) > 0 && !contains(allowed, value) {
			return nil, fmt.Errorf("invalid value for %s. Expected one of: %q, but got: %q", name, allowed, value)
		}
	}
	dir := filepath.Dir(path)
	for _, p := range []*string{&c.TLSConfig.TLSCertPath, &c.TLSConfig.TLSKeyPath, &c.TLSConfig.ClientCAs} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	return c, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// OneLine is err's text on one line, as the daemon logs it: the YAML
// library puts each problem on a line of its own.
func OneLine(err error) string {
	lines := strings.Split(err.Error(), "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, " ")
}
