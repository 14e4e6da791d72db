//go:build linux && s390x

package pageout

import "syscall"

// dontNeed is posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), which is 6 on
// s390x: the whole file.
func dontNeed(fd int) syscall.Errno {
	_, _, e := syscall.Syscall6(syscall.SYS_FADVISE64, uintptr(fd), 0, 0, 6, 0, 0)
	return e
}
