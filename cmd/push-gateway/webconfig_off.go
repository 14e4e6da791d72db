//go:build nowebconfig

package main

import (
	"log/slog"
	"net"

	"github.com/push-gateway/push-gateway/expose"
)

// Built with the nowebconfig tag: no TLS, YAML or bcrypt in the binary
// (with noremotewrite too, no crypto/tls at all: BENCHMARKS.md). The flag
// stays, so that a configuration that asks for it fails at start instead
// of serving plain HTTP unprotected.

type webSecurity struct {
	guard     func(*expose.Response, *expose.Request) bool
	handshake func(nc net.Conn) (net.Conn, bool)
	tls, auth bool
}

func loadWebConfig(string, *slog.Logger) (*webSecurity, string) {
	return nil, "this build has no TLS or basic auth (built with the nowebconfig tag)"
}
