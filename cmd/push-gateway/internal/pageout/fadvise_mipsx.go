//go:build linux && (mips || mipsle)

package pageout

import "syscall"

// dontNeed is posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED): the whole
// file. The o32 ABI passes fadvise64(fd, pad, offset, length, advice), the
// 64-bit offset and length in aligned register pairs (all 0 here).
func dontNeed(fd int) syscall.Errno {
	_, _, e := syscall.Syscall9(syscall.SYS_FADVISE64, uintptr(fd), 0, 0, 0, 0, 0, 4, 0, 0)
	return e
}
