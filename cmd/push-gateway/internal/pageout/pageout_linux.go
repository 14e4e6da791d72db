package pageout

import "syscall"

func init() { Release() }

const (
	madvRandom  = 1  // MADV_RANDOM: a fault reads the page, no window around it
	madvPageout = 21 // MADV_PAGEOUT (Linux 5.4): reclaim these pages now
)

// Release pages out the binary's read-only mappings. Three steps:
//
//   - MADV_RANDOM on them: from now on a fault reads the page it needs,
//     not a read-ahead window around it;
//   - MADV_PAGEOUT on them: what is mapped and unused goes;
//   - POSIX_FADV_DONTNEED on the file: its cached pages that no one maps
//     leave the page cache. Kernels with large page-cache folios (ext4,
//     XFS, btrfs since 6.x) read a binary in pieces of up to 2 MiB, and
//     since 6.18 map a whole folio at a fault: one instruction of TLS code
//     made up to 2 MiB resident. Read again page by page (the first step),
//     the binary costs what it runs. (squashfs and the flash file systems
//     of routers have no large folios; there the first two steps suffice.)
//
// The pages dropped are clean file pages, read again from the file if
// needed. (Not so in a position-independent build, -buildmode=pie, which
// the release builds are not: there the relocated read-only data is a
// read-only mapping of the binary made of anonymous pages, and paging it
// out sends it to swap, if there is any.) On a kernel without these calls
// nothing happens. Safe to call at any time, from any goroutine; it
// allocates a few kB.
func Release() {
	var buf [4096]byte
	n, err := syscall.Readlink("/proc/self/exe", buf[:])
	if err != nil || n == len(buf) {
		return
	}
	exe := string(buf[:n])
	maps, ok := readFile("/proc/self/maps")
	if !ok {
		return
	}
	for len(maps) > 0 {
		var line []byte
		line, maps = cutByte(maps, '\n')
		a, b, ok := readOnlyMapping(line, exe)
		if ok {
			// Raw calls: the mappings are not Go slices.
			syscall.Syscall(syscall.SYS_MADVISE, a, b-a, madvRandom)
			syscall.Syscall(syscall.SYS_MADVISE, a, b-a, madvPageout)
		}
	}
	fd, err := syscall.Open(exe, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	dontNeed(fd)
	syscall.Close(fd)
}

// readOnlyMapping parses a line of /proc/self/maps ("start-end perms
// offset dev inode path") and returns the range of a mapping of path that
// is not writable.
func readOnlyMapping(line []byte, path string) (start, end uintptr, ok bool) {
	var f [6][]byte
	for i := range f {
		for len(line) > 0 && line[0] == ' ' {
			line = line[1:]
		}
		if i == 5 {
			f[i] = line // the path may hold spaces
			break
		}
		f[i], line = cutByte(line, ' ')
	}
	if string(f[5]) != path || len(f[1]) < 2 || f[1][1] == 'w' {
		return 0, 0, false
	}
	lo, hi := cutByte(f[0], '-')
	start, ok1 := parseHex(lo)
	end, ok2 := parseHex(hi)
	if !ok1 || !ok2 || end <= start {
		return 0, 0, false
	}
	return start, end, true
}

func cutByte(b []byte, c byte) (before, after []byte) {
	for i, x := range b {
		if x == c {
			return b[:i], b[i+1:]
		}
	}
	return b, nil
}

func parseHex(b []byte) (uintptr, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var v uintptr
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		default:
			return 0, false
		}
		v = v<<4 | uintptr(c)
	}
	return v, true
}

// readFile reads a file of /proc whole; at most 1 MiB.
func readFile(path string) ([]byte, bool) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	defer syscall.Close(fd)
	b := make([]byte, 0, 8192)
	for len(b) < 1<<20 {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := syscall.Read(fd, b[len(b):cap(b)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, false
		}
		if n == 0 {
			return b, true
		}
		b = b[:len(b)+n]
	}
	return nil, false
}
