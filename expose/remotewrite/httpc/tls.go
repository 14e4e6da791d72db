//go:build !httpc_notls

package httpc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// tlsBuilt tells whether this build speaks TLS (see notls.go).
const tlsBuilt = true

// tlsState is a client's TLS configuration, built at its first TLS dial.
type tlsState struct {
	mu   sync.Mutex // guards conf and cert
	conf *tls.Config
	cert certState
}

// certState is the client certificate last read, and what its files were
// then.
type certState struct {
	cert                *tls.Certificate
	certStamp, keyStamp fileStamp
}

// startTLS does the TLS handshake on cn.
func (c *Client) startTLS(ctx context.Context, cn *conn) error {
	conf, err := c.tlsConfig()
	if err != nil {
		return err
	}
	tc := tls.Client(cn.raw, conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("httpc: TLS handshake with %s: %w", c.target, err)
	}
	cn.nc = tc
	return nil
}

// fileStamp tells a file's change by its modification time and size.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stamp(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.ModTime(), fi.Size()}, nil
}

// tlsConfig returns the TLS configuration, built at the first call (the
// CA file read then), and reads the client certificate again if its files
// changed. A failure is not kept: the next dial tries again.
func (c *Client) tlsConfig() (*tls.Config, error) {
	c.tls.mu.Lock()
	defer c.tls.mu.Unlock()
	if c.tls.conf == nil {
		conf := &tls.Config{
			ServerName:         c.cfg.ServerName,
			InsecureSkipVerify: c.cfg.InsecureSkipVerify,
			NextProtos:         []string{"http/1.1"},
			MinVersion:         tls.VersionTLS12,
		}
		if conf.ServerName == "" {
			conf.ServerName = c.cfg.URL.Hostname()
		}
		// Without RootCAs, crypto/x509 loads the system pool at the
		// first verification; with InsecureSkipVerify, never.
		if c.cfg.CAFile != "" && !c.cfg.InsecureSkipVerify {
			pem, err := os.ReadFile(c.cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("httpc: CA file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("httpc: CA file %s: no PEM certificate in it", c.cfg.CAFile)
			}
			conf.RootCAs = pool
		}
		if c.cfg.CertFile != "" {
			conf.GetClientCertificate = c.clientCertificate
		}
		c.tls.conf = conf
	}
	if c.cfg.CertFile != "" {
		if err := c.loadCert(); err != nil {
			return nil, err
		}
	}
	return c.tls.conf, nil
}

// loadCert reads the client certificate if either of its files changed
// since it was last read. c.tls.mu is held.
func (c *Client) loadCert() error {
	cs, err := stamp(c.cfg.CertFile)
	if err != nil {
		return fmt.Errorf("httpc: client certificate: %w", err)
	}
	ks, err := stamp(c.cfg.KeyFile)
	if err != nil {
		return fmt.Errorf("httpc: client key: %w", err)
	}
	if c.tls.cert.cert != nil && cs == c.tls.cert.certStamp && ks == c.tls.cert.keyStamp {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(c.cfg.CertFile, c.cfg.KeyFile)
	if err != nil {
		// Perhaps caught between the writes of a renewal: not kept, so
		// the next dial reads the files again.
		return fmt.Errorf("httpc: client certificate: %w", err)
	}
	c.tls.cert = certState{&cert, cs, ks}
	return nil
}

// clientCertificate is tls.Config.GetClientCertificate: the certificate
// loadCert read for this dial.
func (c *Client) clientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	c.tls.mu.Lock()
	defer c.tls.mu.Unlock()
	if c.tls.cert.cert == nil {
		return nil, errors.New("httpc: no client certificate")
	}
	return c.tls.cert.cert, nil
}
