package main

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// releaseBinary gives back the pages of the daemon's own binary that it
// has mapped but does not use. A Go binary is mapped whole, and on many
// kernels most of it becomes resident at start whether or not that code
// ever runs: TLS for a remote_write that is off, kong's help text, the
// parsers of flags not given. Three steps:
//
//   - MADV_RANDOM on the binary's read-only mappings: from now on a fault
//     reads the page it needs, not a read-ahead window around it;
//   - MADV_PAGEOUT on them: what is mapped and unused goes;
//   - POSIX_FADV_DONTNEED on the file: its cached pages that no one maps
//     leave the page cache. Kernels with large page-cache folios (ext4,
//     XFS, btrfs since 6.x) read a binary in pieces of up to 2 MiB, and
//     since 6.18 map a whole folio at a fault: one instruction of TLS code
//     made up to 2 MiB resident. Read again page by page (the first step),
//     the binary costs what it runs. (squashfs and the flash file systems
//     of routers have no large folios; there the first two steps suffice.)
//
// Called first thing in main (what the runtime's start mapped) and again
// once the daemon serves (what parsing the flags mapped). Read-only
// mappings only; on a kernel without these calls nothing happens. The
// pages dropped are clean file pages, read again from the file if needed.
func releaseBinary() {
	exe, err := os.Executable()
	if err != nil {
		return
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fields := bytes.Fields(sc.Bytes())
		if len(fields) < 6 || string(fields[5]) != exe || fields[1][1] == 'w' {
			continue
		}
		start, end, ok := bytes.Cut(fields[0], []byte("-"))
		if !ok {
			continue
		}
		a, err1 := strconv.ParseUint(string(start), 16, 64)
		b, err2 := strconv.ParseUint(string(end), 16, 64)
		if err1 != nil || err2 != nil || b <= a {
			continue
		}
		// Raw calls: the mappings are not Go slices.
		syscall.Syscall(syscall.SYS_MADVISE, uintptr(a), uintptr(b-a), unix.MADV_RANDOM)
		syscall.Syscall(syscall.SYS_MADVISE, uintptr(a), uintptr(b-a), unix.MADV_PAGEOUT)
	}
	if g, err := os.Open(exe); err == nil {
		unix.Fadvise(int(g.Fd()), 0, 0, unix.FADV_DONTNEED)
		g.Close()
	}
}
