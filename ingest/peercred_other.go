//go:build !linux

package ingest

import (
	"errors"
	"net"
)

func peerUID(net.Conn) (uint32, error) {
	return 0, errors.New("peer credentials are only checked on Linux")
}

// queued cannot tell elsewhere; a connection looks idle by what its reader
// has seen.
func queued(net.Conn) bool { return false }
