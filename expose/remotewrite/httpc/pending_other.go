//go:build !unix

package httpc

import (
	"errors"
	"net"
	"os"
	"time"
)

// pending tells whether bytes or the end of the stream wait in c's socket.
// Here a read with a short deadline asks: it may consume a byte, but then
// the connection is not used again anyway.
func pending(c net.Conn) bool {
	if c.SetReadDeadline(time.Now().Add(time.Millisecond)) != nil {
		return true
	}
	var b [1]byte
	_, err := c.Read(b[:])
	return !errors.Is(err, os.ErrDeadlineExceeded)
}
