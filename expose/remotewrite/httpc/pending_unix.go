//go:build unix

package httpc

import (
	"net"
	"syscall"
)

// pending tells whether bytes or the end of the stream wait in c's socket,
// without reading them or blocking. Control, unlike a Read, ignores the
// deadline, which has passed since the last request.
func pending(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	waiting := true
	err = rc.Control(func(fd uintptr) {
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		waiting = err != syscall.EAGAIN && err != syscall.EWOULDBLOCK // n > 0, EOF or an error
	})
	return err != nil || waiting
}
