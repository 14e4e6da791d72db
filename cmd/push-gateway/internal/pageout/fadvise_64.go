//go:build linux && (amd64 || arm64 || riscv64 || loong64 || mips64 || mips64le || ppc64 || ppc64le)

package pageout

import "syscall"

// dontNeed is posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED): the whole file.
func dontNeed(fd int) syscall.Errno {
	_, _, e := syscall.Syscall6(syscall.SYS_FADVISE64, uintptr(fd), 0, 0, 4, 0, 0)
	return e
}
