package pageout

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
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
// architecture; a wrong layout gives EINVAL (or ESPIPE, EBADF). Run under
// qemu-user for the others: GOARCH=arm go test -c, then
// qemu-arm-static ./pageout.test -test.run DontNeed.
// (Checked: arm, arm64, mips, mipsle, mips64le, riscv64, s390x, ppc64le,
// loong64 under qemu-user; 386 natively on amd64.)
func TestDontNeed(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, make([]byte, 1<<16), 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Open(p, syscall.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if e := dontNeed(fd); e != 0 {
		t.Fatalf("posix_fadvise(DONTNEED): %v", e)
	}
	if e := dontNeed(-1); e != syscall.EBADF {
		t.Fatalf("posix_fadvise on fd -1: %v, want EBADF (is the fd the first argument?)", e)
	}
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
