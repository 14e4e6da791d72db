//go:build !nowebconfig

package main

import (
	"log/slog"
	"net"

	"github.com/push-gateway/push-gateway/expose"
	webconf "github.com/push-gateway/push-gateway/expose/web"
)

// webSecurity is what --web.config.file makes of the TCP server: a guard
// in front of its handler (basic auth, extra headers) and a TLS handshake
// for each connection. Nil fields leave that part off.
type webSecurity struct {
	guard     func(*expose.Response, *expose.Request) bool
	handshake func(nc net.Conn) (net.Conn, bool)
	tls, auth bool
}

// loadWebConfig reads --web.config.file; the error is one line in
// promtool's words.
func loadWebConfig(path string, logger *slog.Logger) (*webSecurity, string) {
	w, err := webconf.Load(path, logger)
	if err != nil {
		return nil, webconf.OneLine(err)
	}
	sec := &webSecurity{guard: w.Guard, tls: w.TLS != nil, auth: w.Auth != nil}
	if w.TLS != nil {
		sec.handshake = w.TLS.Handshake
	}
	return sec, ""
}
