//go:build linux && arm

package pageout

import "syscall"

// dontNeed is posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED): the whole
// file. On 32-bit ARM the call is arm_fadvise64_64(fd, advice, offset,
// length), the 64-bit offset and length in register pairs (all 0 here).
func dontNeed(fd int) syscall.Errno {
	_, _, e := syscall.Syscall6(syscall.SYS_ARM_FADVISE64_64, uintptr(fd), 4, 0, 0, 0, 0)
	return e
}
