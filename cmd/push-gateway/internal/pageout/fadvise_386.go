//go:build linux && 386

package pageout

import "syscall"

// dontNeed is posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED): the whole
// file, with fadvise64_64(fd, offset, length, advice), offset and length
// in register pairs (all 0 here).
func dontNeed(fd int) syscall.Errno {
	_, _, e := syscall.Syscall6(syscall.SYS_FADVISE64_64, uintptr(fd), 0, 0, 0, 0, 4)
	return e
}
