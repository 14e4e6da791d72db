//go:build httpc_notls

package httpc

import (
	"context"
	"errors"
)

// Built with the tag httpc_notls, the package speaks only http://, and the
// binary is about 2.5 MiB smaller (BENCHMARKS.md): crypto/tls and
// crypto/x509 are not linked. New refuses https:// URLs.

const tlsBuilt = false

type tlsState struct{}

func (c *Client) startTLS(context.Context, *conn) error {
	return errors.New("httpc: built without TLS")
}
