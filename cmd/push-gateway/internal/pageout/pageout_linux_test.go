package pageout

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// rssFile is RssFile of /proc/self/status, in kB.
func rssFile(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "RssFile:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Skip("no RssFile in /proc/self/status")
	return 0
}

// touchBinary makes every page of the binary's read-only mappings
// resident, reading them through /proc/self/mem (which faults them into
// this process as a read of its own would), and returns how many kB.
func touchBinary(t *testing.T) int {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	maps, ok := readFile("/proc/self/maps")
	if !ok {
		t.Fatal("cannot read /proc/self/maps")
	}
	mem, err := os.Open("/proc/self/mem")
	if err != nil {
		t.Skip(err)
	}
	defer mem.Close()
	var b [1]byte
	kB := 0
	for _, line := range strings.Split(string(maps), "\n") {
		start, end, ok := readOnlyMapping([]byte(line), exe)
		if !ok {
			continue
		}
		for a := start; a < end; a += 4096 {
			if _, err := mem.ReadAt(b[:], int64(a)); err != nil {
				t.Skipf("reading /proc/self/mem at %#x: %v", a, err)
			}
			kB += 4
		}
	}
	return kB
}

// The test binary's pages, made resident, are given back: what stays is
// what runs between the two readings.
func TestReleaseGivesBackTheBinary(t *testing.T) {
	var fs syscall.Statfs_t
	if err := syscall.Statfs("/proc/self/exe", &fs); err == nil && fs.Type == 0x01021994 {
		t.Skip("the test binary is on tmpfs: its pages are memory, not a file's to drop (GOTMPDIR elsewhere runs this test)")
	}
	// The linker has just written the test binary: until written back its
	// pages are dirty, and reclaim does not take dirty pages. An installed
	// daemon's are clean.
	exe, err := os.Open("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	err = exe.Sync()
	exe.Close()
	if err != nil {
		t.Fatal(err)
	}
	touched := touchBinary(t)
	before := rssFile(t)
	if before < touched/2 {
		t.Skipf("%d kB of the binary touched, RssFile only %d kB: the reads did not map it", touched, before)
	}
	Release()
	after := rssFile(t)
	t.Logf("%d kB of the binary touched; RssFile %d -> %d kB", touched, before, after)
	if before-after < touched/2 {
		t.Fatalf("RssFile %d kB before Release, %d kB after: less than half of the %d kB touched paged out (a kernel before 5.4 has no MADV_PAGEOUT)", before, after, touched)
	}
}

// dontNeed is a raw system call whose arguments sit differently on each
// architecture; a wrong layout gives EINVAL, or the advice lands in a
// slot of zeros and the kernel applies "normal" without a word: the test
// checks that the file's pages have left the page cache (mincore). Run
// under qemu-user for the others: GOARCH=arm go test -c, then
// qemu-arm-static ./pageout.test -test.run DontNeed. (Checked: arm, arm64,
// mips, mipsle, mips64le, riscv64, s390x, ppc64le, loong64 under
// qemu-user; 386 natively on amd64.)
func TestDontNeed(t *testing.T) {
	const size = 1 << 20
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil { // dirty pages are not dropped
		t.Fatal(err)
	}
	fd := int(f.Fd())
	if before := cached(t, fd, size); before == 0 {
		t.Skip("the file's pages are not in the page cache after writing it")
	}
	if e := dontNeed(fd); e != 0 {
		t.Fatalf("posix_fadvise(DONTNEED): %v", e)
	}
	if after := cached(t, fd, size); after != 0 {
		t.Fatalf("%d of %d pages still cached after posix_fadvise(DONTNEED)", after, size/os.Getpagesize())
	}
	if e := dontNeed(-1); e != syscall.EBADF {
		t.Fatalf("posix_fadvise on fd -1: %v, want EBADF (is the fd the first argument?)", e)
	}
}

// cached counts the pages of the file's first size bytes that are in the
// page cache.
func cached(t *testing.T, fd, size int) int {
	t.Helper()
	m, err := syscall.Mmap(fd, 0, size, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(m)
	vec := make([]byte, (size+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, e := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(size), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Skipf("mincore: %v", e)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

func TestReadOnlyMapping(t *testing.T) {
	for _, tc := range []struct {
		line, path string
		start, end uintptr
		ok         bool
	}{
		{"00400000-00c06000 r-xp 00000000 fd:01 1234                               /usr/bin/push-gateway", "/usr/bin/push-gateway", 0x400000, 0xc06000, true},
		{"00c06000-00c49000 r--p 00806000 fd:01 1234 /opt/my dir/pg", "/opt/my dir/pg", 0xc06000, 0xc49000, true},
		{"00c49000-00c8c000 rw-p 00849000 fd:01 1234 /usr/bin/push-gateway", "/usr/bin/push-gateway", 0, 0, false}, // writable
		{"7f0000000000-7f0000001000 r--p 00000000 fd:01 99 /usr/lib/other.so", "/usr/bin/push-gateway", 0, 0, false},
		{"7f0000000000-7f0000001000 r--p 00000000 00:00 0", "/usr/bin/push-gateway", 0, 0, false}, // anonymous
		{"zz-7f0000001000 r--p 00000000 fd:01 1 /usr/bin/push-gateway", "/usr/bin/push-gateway", 0, 0, false},
		{"", "/usr/bin/push-gateway", 0, 0, false},
	} {
		start, end, ok := readOnlyMapping([]byte(tc.line), tc.path)
		if ok != tc.ok || start != tc.start || end != tc.end {
			t.Errorf("%q: %#x-%#x %v, want %#x-%#x %v", tc.line, start, end, ok, tc.start, tc.end, tc.ok)
		}
	}
}
