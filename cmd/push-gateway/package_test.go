package main

// Tests of what `make cross`, `make deb` and `make ipk` ship: the foreign
// binaries run (under qemu-user) and serve a pushed metric back; the .ipk and
// .deb files hold what OpenWrt's opkg and dpkg expect; the procd init script
// turns UCI options into the right flags.
//
// The binaries are built here (go build with GOOS/GOARCH/GOARM/GOMIPS,
// CGO_ENABLED=0 and the flags of `make cross`, so that after a `make cross`
// the build cache has every package), each once per test run, by pkgBinary.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pkgTarget is a linux build target, named as in `make cross`.
type pkgTarget struct {
	name                  string
	goarch, goarm, gomips string
}

var (
	pkgHost   = pkgTarget{name: "host", goarch: runtime.GOARCH}
	pkgARM64  = pkgTarget{name: "arm64", goarch: "arm64"}
	pkgARMv7  = pkgTarget{name: "armv7", goarch: "arm", goarm: "7"}
	pkgMIPS   = pkgTarget{name: "mips", goarch: "mips", gomips: "softfloat"}
	pkgMIPSLE = pkgTarget{name: "mipsle", goarch: "mipsle", gomips: "softfloat"}
)

// pkgBuilds holds the binaries built for this run's tests, in one directory
// that the last test using it removes.
var pkgBuilds struct {
	mu     sync.Mutex
	users  int
	dir    string
	builds map[string]*pkgBuild
}

type pkgBuild struct {
	once sync.Once
	path string
	err  error
}

// pkgUse registers t as a user of pkgBinary's binaries until t ends. Call it
// before t.Parallel, so that the binaries outlive every parallel test.
func pkgUse(t *testing.T) {
	t.Helper()
	pkgBuilds.mu.Lock()
	pkgBuilds.users++
	pkgBuilds.mu.Unlock()
	t.Cleanup(func() {
		pkgBuilds.mu.Lock()
		defer pkgBuilds.mu.Unlock()
		if pkgBuilds.users--; pkgBuilds.users == 0 {
			if pkgBuilds.dir != "" {
				os.RemoveAll(pkgBuilds.dir)
			}
			pkgBuilds.dir, pkgBuilds.builds = "", nil
		}
	})
}

// pkgBinary returns push-gateway built for target, building it on first use.
func pkgBinary(t *testing.T, target pkgTarget) string {
	t.Helper()
	pkgBuilds.mu.Lock()
	if pkgBuilds.users == 0 {
		pkgBuilds.mu.Unlock()
		t.Fatal("pkgBinary called without pkgUse")
	}
	if pkgBuilds.dir == "" {
		dir, err := os.MkdirTemp("", "push-gateway-pkg")
		if err != nil {
			pkgBuilds.mu.Unlock()
			t.Fatal(err)
		}
		pkgBuilds.dir, pkgBuilds.builds = dir, map[string]*pkgBuild{}
	}
	b := pkgBuilds.builds[target.name]
	if b == nil {
		b = new(pkgBuild)
		pkgBuilds.builds[target.name] = b
	}
	dir := pkgBuilds.dir
	pkgBuilds.mu.Unlock()

	b.once.Do(func() { b.path, b.err = pkgGoBuild(dir, target) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

func pkgGoBuild(dir string, target pkgTarget) (string, error) {
	out := filepath.Join(dir, "push-gateway-"+target.name)
	gobin := "go"
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); pkgIsFile(p) {
		gobin = p
	}
	// The flags of `make cross` but the version stamps, which only the
	// linker sees: the compiled packages come from the cache after it.
	cmd := exec.Command(gobin, "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w", "-o", out, ".")
	var env []string
	for _, kv := range os.Environ() {
		switch strings.SplitN(kv, "=", 2)[0] {
		case "GOOS", "GOARCH", "GOARM", "GOMIPS", "CGO_ENABLED", "GOFLAGS":
			continue
		}
		env = append(env, kv)
	}
	cmd.Env = append(env, "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+target.goarch,
		"GOARM="+target.goarm, "GOMIPS="+target.gomips)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build for %s (GOARCH=%s GOARM=%s GOMIPS=%s): %v\n%s",
			target.name, target.goarch, target.goarm, target.gomips, err, b)
	}
	return out, nil
}

func pkgIsFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// pkgRoot is the top of the source tree.
func pkgRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if !pkgIsFile(filepath.Join(root, "go.mod")) {
		t.Fatalf("%s is not the top of the source tree", root)
	}
	return root
}

// pkgTempDir is a fresh directory with a path short enough for a socket.
func pkgTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgpkg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// pkgEnv is the environment without anything that configures the daemon.
func pkgEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PUSH_GATEWAY_") || strings.HasPrefix(kv, "LISTEN_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// ---------------------------------------------------------------------------
// A daemon started by these tests.

type pkgDaemon struct {
	cmd    *exec.Cmd
	socket string // from the start-up line
	addr   string
	mu     sync.Mutex
	log    []string
	exited chan struct{}
}

func (d *pkgDaemon) stderr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.log, "\n")
}

// pkgStart runs argv (the daemon, perhaps behind qemu or a shell) with
// --log.format=json appended, and waits for its start-up line.
func pkgStart(t *testing.T, argv []string, extraFiles []*os.File, wait time.Duration) *pkgDaemon {
	t.Helper()
	d := &pkgDaemon{exited: make(chan struct{})}
	d.cmd = exec.Command(argv[0], append(argv[1:], "--log.format=json")...)
	d.cmd.Env = pkgEnv()
	d.cmd.ExtraFiles = extraFiles
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	d.cmd.Stderr = w
	if err := d.cmd.Start(); err != nil {
		r.Close()
		w.Close()
		t.Fatalf("cannot start %q: %v", argv, err)
	}
	w.Close()
	type startLine struct{ socket, addr string }
	started := make(chan startLine, 1)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		defer r.Close()
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			d.log = append(d.log, line)
			d.mu.Unlock()
			var m struct{ Msg, Socket, Address string }
			if json.Unmarshal([]byte(line), &m) == nil && strings.HasPrefix(m.Msg, "starting") && m.Address != "" {
				select {
				case started <- startLine{m.Socket, m.Address}:
				default:
				}
			}
		}
	}()
	go func() {
		d.cmd.Wait()
		<-drained
		close(d.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			d.cmd.Process.Kill()
			<-d.exited
		}
	})
	select {
	case s := <-started:
		d.socket, d.addr = s.socket, s.addr
	case <-d.exited:
		t.Fatalf("%q exited (%v) before its start-up line; stderr:\n%s", argv, d.cmd.ProcessState, d.stderr())
	case <-time.After(wait):
		t.Fatalf("%q logged no start-up line within %v; stderr:\n%s", argv, wait, d.stderr())
	}
	return d
}

// stop sends SIGTERM and expects exit status 0 within limit.
func (d *pkgDaemon) stop(t *testing.T, limit time.Duration) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-d.exited:
	case <-time.After(limit):
		t.Fatalf("still running %v after SIGTERM; stderr:\n%s", limit, d.stderr())
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0; stderr:\n%s", code, d.stderr())
	}
}

// pkgPush writes text to the push socket at path in one connection.
func pkgPush(t *testing.T, path, text string) {
	t.Helper()
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		t.Fatalf("connect to %s: %v", path, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, text); err != nil {
		t.Fatalf("push to %s: %v", path, err)
	}
}

// pkgHTTPPut sends an HTTP PUT over the push socket and expects 200.
func pkgHTTPPut(t *testing.T, sock, path, body string) {
	t.Helper()
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	req, err := http.NewRequest(http.MethodPut, "http://push-gateway"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("PUT %s over %s: %v", path, sock, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT %s: %s %s", path, resp.Status, b)
	}
}

// scrape polls the daemon's /metrics until it has the line want; it fails
// at once, with the daemon's stderr, if the daemon exits meanwhile.
func (d *pkgDaemon) scrape(t *testing.T, want string, limit time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(limit)
	var last string
	for {
		resp, err := client.Get("http://" + d.addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = string(b)
			if resp.StatusCode == http.StatusOK && slices.Contains(strings.Split(last, "\n"), want) {
				return
			}
		} else {
			last = err.Error()
		}
		select {
		case <-d.exited:
			t.Fatalf("the daemon exited (%v) before /metrics had %q; stderr:\n%s", d.cmd.ProcessState, want, d.stderr())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET http://%s/metrics has no line %q after %v; last answer:\n%s\nstderr:\n%s", d.addr, want, limit, last, d.stderr())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// Foreign binaries under qemu-user.

// pkgQemu finds qemu-user's emulator for arch: qemu-ARCH-static
// (qemu-user-static) or qemu-ARCH (qemu-user).
func pkgQemu(arch string) string {
	for _, name := range []string{"qemu-" + arch + "-static", "qemu-" + arch} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

func TestCrossBuildsRunUnderQemu(t *testing.T) {
	pkgUse(t)
	t.Parallel()
	for _, c := range []struct {
		target   pkgTarget
		qemu     string // qemu-user's name for the architecture
		platform string // as --version prints it
	}{
		{pkgARM64, "aarch64", "linux/arm64"},
		{pkgARMv7, "arm", "linux/arm"},
		{pkgMIPSLE, "mipsel", "linux/mipsle"},
	} {
		t.Run(c.target.name, func(t *testing.T) {
			t.Parallel()
			qemu := pkgQemu(c.qemu)
			if qemu == "" {
				t.Skipf("qemu-user is missing: neither qemu-%[1]s-static nor qemu-%[1]s is in PATH "+
					"(Debian: apt-get install qemu-user-static, or qemu-user where that holds the emulators)", c.qemu)
			}
			bin := pkgBinary(t, c.target)
			if f, err := elf.Open(bin); err != nil {
				t.Fatal(err)
			} else {
				if f.Machine == elf.EM_X86_64 || f.Machine == elf.EM_386 {
					t.Fatalf("%s is built for the host (%v): the test would prove nothing", bin, f.Machine)
				}
				f.Close()
			}

			out, err := exec.Command(qemu, bin, "--version").CombinedOutput()
			if err != nil {
				t.Fatalf("%s %s --version: %v\n%s", qemu, bin, err, out)
			}
			if !regexp.MustCompile(`platform:\s+` + regexp.QuoteMeta(c.platform) + `\n`).Match(out) {
				t.Fatalf("--version under %s does not name platform %s:\n%s", filepath.Base(qemu), c.platform, out)
			}

			sock := filepath.Join(pkgTempDir(t), "p.sock")
			d := pkgStart(t, []string{qemu, bin, "--ingest.socket=" + sock, "--web.listen-address=127.0.0.1:0"}, nil, 60*time.Second)
			line := fmt.Sprintf(`qemu_pushed_total{arch=%q} 42`, c.target.name)
			pkgPush(t, sock, "# TYPE qemu_pushed_total counter\n"+line+"\n")
			d.scrape(t, line, 20*time.Second)
			// The Pushgateway API on the same socket.
			pkgHTTPPut(t, sock, "/metrics/job/qemu/arch/"+c.target.name, "qemu_http_pushed 7\n")
			d.scrape(t, fmt.Sprintf(`qemu_http_pushed{arch=%q,job="qemu"} 7`, c.target.name), 20*time.Second)
			d.stop(t, 20*time.Second)
			if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("socket %s is still there after exit (%v)", sock, err)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Running the packaging scripts.

// pkgScript runs a script of scripts/ from the top of the tree with a fixed
// SOURCE_DATE_EPOCH and returns the path it prints last.
func pkgScript(t *testing.T, script string, args ...string) string {
	t.Helper()
	cmd := exec.Command("sh", append([]string{filepath.Join("scripts", script)}, args...)...)
	cmd.Dir = pkgRoot(t)
	// gzip: xz takes seconds for a 9 MB binary; `make deb` keeps xz.
	cmd.Env = append(pkgEnv(), "SOURCE_DATE_EPOCH="+pkgEpoch, "REVISION=0123abc", "DEB_COMPRESS=gzip")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("scripts/%s %s: %v\n%s%s", script, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	return lines[len(lines)-1]
}

const pkgEpoch = "1700000000"

// pkgTarEntry is one member of a tar archive.
type pkgTarEntry struct {
	hdr  *tar.Header
	data []byte
}

// pkgUntgz reads a gzipped tar, in archive order.
func pkgUntgz(t *testing.T, what string, b []byte) []pkgTarEntry {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s is not gzip: %v", what, err)
	}
	tr := tar.NewReader(zr)
	var out []pkgTarEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("%s: %s: %v", what, h.Name, err)
		}
		out = append(out, pkgTarEntry{h, data})
	}
	return out
}

func pkgTarNames(entries []pkgTarEntry) []string {
	var names []string
	for _, e := range entries {
		names = append(names, e.hdr.Name)
	}
	return names
}

func pkgTarFind(t *testing.T, what string, entries []pkgTarEntry, name string) pkgTarEntry {
	t.Helper()
	for _, e := range entries {
		if e.hdr.Name == name {
			return e
		}
	}
	t.Fatalf("%s has no %s; it has %q", what, name, pkgTarNames(entries))
	return pkgTarEntry{}
}

// pkgControl parses a control file: fields by name, continuation lines
// joined with "\n".
func pkgControl(t *testing.T, b []byte) map[string]string {
	t.Helper()
	fields := map[string]string{}
	var last string
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if strings.HasPrefix(line, " ") {
			if last == "" {
				t.Fatalf("control file starts with a continuation line: %q", line)
			}
			fields[last] += "\n" + line[1:]
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			t.Fatalf("bad control line %q", line)
		}
		if _, dup := fields[name]; dup {
			t.Fatalf("control field %s appears twice", name)
		}
		fields[name], last = strings.TrimSpace(value), name
	}
	return fields
}

func pkgReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ---------------------------------------------------------------------------
// OpenWrt.

func TestOpenWrtPackages(t *testing.T) {
	pkgUse(t)
	t.Parallel()
	root := pkgRoot(t)
	for _, c := range []struct {
		arch    string // OpenWrt's
		target  pkgTarget
		machine elf.Machine
		data    elf.Data // byte order
	}{
		{"aarch64_generic", pkgARM64, elf.EM_AARCH64, elf.ELFDATA2LSB},
		{"arm_cortex-a7_neon-vfpv4", pkgARMv7, elf.EM_ARM, elf.ELFDATA2LSB},
		{"mips_24kc", pkgMIPS, elf.EM_MIPS, elf.ELFDATA2MSB},
		{"mipsel_24kc", pkgMIPSLE, elf.EM_MIPS, elf.ELFDATA2LSB},
	} {
		t.Run(c.arch, func(t *testing.T) {
			t.Parallel()
			bin := pkgBinary(t, c.target)
			out := t.TempDir()
			ipk := pkgScript(t, "ipk.sh", bin, c.arch, "9.8.7", out)
			if want := filepath.Join(out, "push-gateway_9.8.7-1_"+c.arch+".ipk"); ipk != want {
				t.Fatalf("ipk.sh wrote %s, want %s", ipk, want)
			}
			raw := pkgReadFile(t, ipk)

			// The outer archive: exactly what ipkg-build writes, in its order.
			outer := pkgUntgz(t, "the .ipk", raw)
			if got, want := pkgTarNames(outer), []string{"./debian-binary", "./data.tar.gz", "./control.tar.gz"}; !slices.Equal(got, want) {
				t.Fatalf(".ipk members %q, want %q", got, want)
			}
			for _, e := range outer {
				if e.hdr.Uid != 0 || e.hdr.Gid != 0 || e.hdr.ModTime.Unix() != 1700000000 {
					t.Errorf(".ipk member %s: uid %d gid %d mtime %v, want 0, 0, SOURCE_DATE_EPOCH", e.hdr.Name, e.hdr.Uid, e.hdr.Gid, e.hdr.ModTime)
				}
			}
			if got := string(outer[0].data); got != "2.0\n" {
				t.Errorf("debian-binary is %q, want \"2.0\\n\"", got)
			}

			// control.tar.gz
			ctl := pkgUntgz(t, "control.tar.gz", outer[2].data)
			if got, want := pkgTarNames(ctl), []string{"./", "./conffiles", "./control", "./postinst", "./prerm"}; !slices.Equal(got, want) {
				t.Errorf("control.tar.gz holds %q, want %q", got, want)
			}
			f := pkgControl(t, pkgTarFind(t, "control.tar.gz", ctl, "./control").data)
			dataTar, err := gzip.NewReader(bytes.NewReader(outer[1].data))
			if err != nil {
				t.Fatal(err)
			}
			dataSize, _ := io.Copy(io.Discard, dataTar)
			for name, want := range map[string]string{
				"Package":        "push-gateway",
				"Version":        "9.8.7-1",
				"Depends":        "libc",
				"Source":         "scripts/openwrt",
				"Section":        "utils",
				"Architecture":   c.arch,
				"Installed-Size": fmt.Sprint(dataSize),
				"Require-User":   "push-gateway:push-gateway",
			} {
				if got, ok := f[name]; !ok || got != want {
					t.Errorf("control field %s = %q (present: %v), want %q", name, got, ok, want)
				}
			}
			if d := f["Description"]; !strings.Contains(d, "Prometheus") || !strings.Contains(d, "\n") {
				t.Errorf("Description %q: want a summary and a longer text", d)
			}
			if got := string(pkgTarFind(t, "control.tar.gz", ctl, "./conffiles").data); got != "/etc/config/push-gateway\n" {
				t.Errorf("conffiles = %q, want /etc/config/push-gateway", got)
			}
			for name, fn := range map[string]string{"./postinst": "default_postinst", "./prerm": "default_prerm"} {
				e := pkgTarFind(t, "control.tar.gz", ctl, name)
				if e.hdr.Mode&0o777 != 0o755 || !bytes.HasPrefix(e.data, []byte("#!/bin/sh\n")) || !bytes.Contains(e.data, []byte(fn+" $0 $@")) {
					t.Errorf("%s: mode %o, text %q: want an executable sh script that calls %s", name, e.hdr.Mode, e.data, fn)
				}
			}

			// data.tar.gz
			data := pkgUntgz(t, "data.tar.gz", outer[1].data)
			wantFiles := []string{"./", "./etc/", "./etc/config/", "./etc/config/push-gateway", "./etc/init.d/",
				"./etc/init.d/push-gateway", "./usr/", "./usr/bin/", "./usr/bin/push-gateway"}
			if got := pkgTarNames(data); !slices.Equal(got, wantFiles) {
				t.Fatalf("data.tar.gz holds %q, want %q", got, wantFiles)
			}
			for _, e := range data {
				if e.hdr.Uid != 0 || e.hdr.Gid != 0 {
					t.Errorf("%s is owned by %d:%d, want 0:0", e.hdr.Name, e.hdr.Uid, e.hdr.Gid)
				}
			}
			for name, want := range map[string]struct {
				mode int64
				body []byte
			}{
				"./usr/bin/push-gateway":    {0o755, pkgReadFile(t, bin)},
				"./etc/init.d/push-gateway": {0o755, pkgReadFile(t, filepath.Join(root, "scripts/openwrt/push-gateway.init"))},
				"./etc/config/push-gateway": {0o600, pkgReadFile(t, filepath.Join(root, "scripts/openwrt/push-gateway.config"))},
			} {
				e := pkgTarFind(t, "data.tar.gz", data, name)
				if e.hdr.Mode&0o7777 != want.mode {
					t.Errorf("%s has mode %o, want %o", name, e.hdr.Mode, want.mode)
				}
				if !bytes.Equal(e.data, want.body) {
					t.Errorf("%s differs from its source (%d bytes, want %d)", name, len(e.data), len(want.body))
				}
			}
			ef, err := elf.NewFile(bytes.NewReader(pkgTarFind(t, "data.tar.gz", data, "./usr/bin/push-gateway").data))
			if err != nil {
				t.Fatal(err)
			}
			if ef.Machine != c.machine || ef.Data != c.data {
				t.Errorf("the binary is %v %v, want %v %v", ef.Machine, ef.Data, c.machine, c.data)
			}

			// The same inputs give the same bytes.
			again := pkgScript(t, "ipk.sh", bin, c.arch, "9.8.7", t.TempDir())
			if sha256.Sum256(raw) != sha256.Sum256(pkgReadFile(t, again)) {
				t.Errorf("two runs of ipk.sh give different packages")
			}
		})
	}
}

// pkgInitHarness stands in for OpenWrt's /lib/functions.sh and
// /lib/functions/procd.sh: config_load reads the UCI file the way uci_load
// does (config and option are shell functions), config_get and
// config_get_bool behave as OpenWrt's, and the procd_* functions, mkdir,
// chown and chmod record their arguments instead of acting.
const pkgInitHarness = `
CONFIG_SECTION=
config() { CONFIG_SECTION=$2; }
option() { eval "CONFIG_${CONFIG_SECTION}_$1=\$2"; }
config_load() { echo "config_load <$1>"; . "$UCI_DIR/$1"; }
config_get() { eval "$1=\${CONFIG_$2_$3:-\$4}"; }
config_get_bool() {
	config_get "$1" "$2" "$3" "$4"
	eval "_v=\$$1"
	case $_v in
	1|on|true|yes|enabled) _v=1 ;;
	0|off|false|no|disabled) _v=0 ;;
	*) _v=$4 ;;
	esac
	eval "$1=\$_v"
}
record() { printf '%s' "$1"; shift; printf ' <%s>' "$@"; echo; }
procd_open_instance() { record procd_open_instance "$@"; }
procd_set_param() { record procd_set_param "$@"; }
procd_append_param() { record procd_append_param "$@"; }
procd_close_instance() { record procd_close_instance "$@"; }
procd_add_reload_trigger() { record procd_add_reload_trigger "$@"; }
mkdir() { record mkdir "$@"; }
chown() { record chown "$@"; }
chmod() { record chmod "$@"; }
. "$INIT_SCRIPT"
start_service
service_triggers
`

// pkgInitRun runs the init script's start_service and service_triggers
// under sh with /etc/config/push-gateway as config, and returns the
// recorded calls, one a line.
func pkgInitRun(t *testing.T, shell []string, config string) []string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "push-gateway"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(shell[0], append(shell[1:], "-c", pkgInitHarness)...)
	cmd.Env = append(pkgEnv(), "UCI_DIR="+dir,
		"INIT_SCRIPT="+filepath.Join(pkgRoot(t), "scripts/openwrt/push-gateway.init"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: start_service: %v\n%s", strings.Join(shell, " "), err, out)
	}
	return strings.Split(strings.TrimRight(string(out), "\n"), "\n")
}

// pkgProcd reads the recorded calls: the command line of the one instance
// (nil if none was opened) and its other parameters.
func pkgProcd(t *testing.T, calls []string) (argv []string, params map[string][]string) {
	t.Helper()
	params = map[string][]string{}
	args := func(call string) []string {
		var a []string
		for _, m := range regexp.MustCompile(`<([^>]*)>`).FindAllStringSubmatch(call, -1) {
			a = append(a, m[1])
		}
		return a
	}
	instances, open := 0, false
	for _, call := range calls {
		name, _, _ := strings.Cut(call, " ")
		a := args(call)
		switch name {
		case "procd_open_instance":
			instances++
			open = true
		case "procd_close_instance":
			open = false
		case "procd_set_param", "procd_append_param":
			if !open {
				t.Fatalf("%s outside an instance: %q", name, calls)
			}
			if a[0] == "command" {
				if name == "procd_set_param" {
					argv = nil
				}
				argv = append(argv, a[1:]...)
			} else {
				params[a[0]] = a[1:]
			}
		}
	}
	if open {
		t.Fatalf("instance not closed: %q", calls)
	}
	if instances > 1 {
		t.Fatalf("%d instances opened, want 1: %q", instances, calls)
	}
	return argv, params
}

// pkgArgvSocket is the value of --ingest.socket in argv.
func pkgArgvSocket(argv []string) string {
	for _, a := range argv {
		if v, ok := strings.CutPrefix(a, "--ingest.socket="); ok {
			return v
		}
	}
	return ""
}

func TestOpenWrtInitScript(t *testing.T) {
	pkgUse(t)
	t.Parallel()
	shells := [][]string{{"sh"}}
	if p, err := exec.LookPath("busybox"); err == nil {
		shells = append(shells, []string{p, "ash"}) // OpenWrt's shell
	}
	shipped := string(pkgReadFile(t, filepath.Join(pkgRoot(t), "scripts/openwrt/push-gateway.config")))
	const defaultSocket = "/var/run/push-gateway/push-gateway.sock"
	cases := []struct {
		name       string
		config     string
		argv       []string // nil: no instance
		user       string   // procd's user parameter; "" for none
		socketDirs []string // calls made for a missing socket directory
	}{{
		name:   "shipped config",
		config: shipped,
		argv: []string{"/usr/bin/push-gateway", "--ingest.socket=" + defaultSocket, "--web.listen-address=127.0.0.1:9091",
			"--cache.ttl=1m", "--cache.size=10KiB", "--log.level=info"},
		user: "push-gateway",
		socketDirs: []string{"mkdir <-p> </var/run/push-gateway>", "chown <push-gateway:push-gateway> </var/run/push-gateway>",
			"chmod <0750> </var/run/push-gateway>"},
	}, {
		name:   "only enabled: the daemon's defaults",
		config: "config push-gateway 'main'\n\toption enabled '1'\n",
		argv:   []string{"/usr/bin/push-gateway", "--ingest.socket=" + defaultSocket, "--web.listen-address=127.0.0.1:9091"},
		user:   "push-gateway",
		socketDirs: []string{"mkdir <-p> </var/run/push-gateway>", "chown <push-gateway:push-gateway> </var/run/push-gateway>",
			"chmod <0750> </var/run/push-gateway>"},
	}, {
		name: "every option",
		config: `config push-gateway 'main'
	option enabled 'yes'
	option socket '/tmp/pg test/push.sock'
	option listen_address '[::]:9100'
	option ttl '90s'
	option size '2MiB'
	option log_level 'debug'
	option user 'root'
	option web_config '/etc/push-gateway/web.yml'
`,
		argv: []string{"/usr/bin/push-gateway", "--ingest.socket=/tmp/pg test/push.sock", "--web.listen-address=[::]:9100",
			"--cache.ttl=90s", "--cache.size=2MiB", "--log.level=debug", "--web.config.file=/etc/push-gateway/web.yml"},
		socketDirs: []string{"mkdir <-p> </tmp/pg test>", "chmod <0750> </tmp/pg test>"},
	}, {
		name:   "an existing socket directory is left alone",
		config: "config push-gateway 'main'\n\toption enabled 'on'\n\toption socket '/tmp/pg.sock'\n\toption ttl ''\n",
		argv:   []string{"/usr/bin/push-gateway", "--ingest.socket=/tmp/pg.sock", "--web.listen-address=127.0.0.1:9091"},
		user:   "push-gateway",
	}, {
		name:   "disabled",
		config: strings.Replace(shipped, "option enabled '1'", "option enabled '0'", 1),
	}, {
		name:   "no config section",
		config: "# empty\n",
	}}
	for _, sh := range shells {
		for _, c := range cases {
			t.Run(filepath.Base(sh[0])+"/"+c.name, func(t *testing.T) {
				if c.name == "disabled" && !strings.Contains(c.config, "option enabled '0'") {
					t.Fatal("the shipped config has no line option enabled '1'")
				}
				calls := pkgInitRun(t, sh, c.config)
				if calls[0] != "config_load <push-gateway>" {
					t.Errorf("first call %q, want config_load <push-gateway>", calls[0])
				}
				if want := "procd_add_reload_trigger <push-gateway>"; calls[len(calls)-1] != want {
					t.Errorf("service_triggers: last call %q, want %q", calls[len(calls)-1], want)
				}
				argv, params := pkgProcd(t, calls)
				if !slices.Equal(argv, c.argv) {
					t.Fatalf("command\n got %q\nwant %q\ncalls:\n%s", argv, c.argv, strings.Join(calls, "\n"))
				}
				var dirCalls []string
				for _, call := range calls {
					if strings.HasPrefix(call, "mkdir ") || strings.HasPrefix(call, "chown ") || strings.HasPrefix(call, "chmod ") {
						dirCalls = append(dirCalls, call)
					}
				}
				if c.argv == nil {
					if len(dirCalls) > 0 {
						t.Errorf("disabled, yet it made a directory: %q", dirCalls)
					}
					return
				}
				want := c.socketDirs
				if fi, err := os.Stat(filepath.Dir(pkgArgvSocket(argv))); err == nil && fi.IsDir() {
					want = nil // this machine has it: the script leaves it alone
				}
				if !slices.Equal(dirCalls, want) {
					t.Errorf("socket directory calls %q, want %q", dirCalls, want)
				}
				if got := strings.Join(params["user"], " "); got != c.user {
					t.Errorf("user parameter %q, want %q", got, c.user)
				}
				for name, want := range map[string]string{"respawn": "3600 5 5", "stdout": "1", "stderr": "1"} {
					if got, ok := params[name]; !ok || strings.Join(got, " ") != want {
						t.Errorf("procd parameter %s = %q (set: %v), want %q", name, got, ok, want)
					}
				}
			})
		}
	}

	// Every flag the script writes is one the daemon has.
	help, err := exec.Command(pkgBinary(t, pkgHost), "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("--help: %v\n%s", err, help)
	}
	for _, flag := range []string{"--ingest.socket=", "--web.listen-address=", "--cache.ttl=", "--cache.size=", "--log.level=", "--web.config.file="} {
		if !bytes.Contains(help, []byte("  "+flag)) {
			t.Errorf("the init script writes %s..., which push-gateway --help does not list", flag)
		}
	}
}

// ---------------------------------------------------------------------------
// Debian.

func TestDebianPackage(t *testing.T) {
	pkgUse(t)
	t.Parallel()
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb is missing (Debian's dpkg): cannot build the package")
	}
	debArch := map[string]string{"amd64": "amd64", "arm64": "arm64", "riscv64": "riscv64"}[runtime.GOARCH]
	if debArch == "" {
		t.Skipf("no Debian architecture name mapped for GOARCH=%s here", runtime.GOARCH)
	}
	root := pkgRoot(t)
	bin := pkgBinary(t, pkgHost)
	deb := pkgScript(t, "deb.sh", bin, debArch, "9.8.7", t.TempDir())
	if filepath.Base(deb) != "push-gateway_9.8.7-1_"+debArch+".deb" {
		t.Fatalf("deb.sh wrote %s", deb)
	}
	dpkg := func(args ...string) []byte {
		t.Helper()
		out, err := exec.Command("dpkg-deb", args...).Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				out = append(out, ee.Stderr...)
			}
			t.Fatalf("dpkg-deb %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	f := pkgControl(t, dpkg("--field", deb))
	for name, want := range map[string]string{
		"Package": "push-gateway", "Version": "9.8.7-1", "Architecture": debArch,
		"Depends": "adduser", "Section": "net", "Priority": "optional",
	} {
		if f[name] != want {
			t.Errorf("control field %s = %q, want %q", name, f[name], want)
		}
	}

	// The files, their owners and modes.
	listing := map[string]string{} // path → "mode owner"
	for _, line := range strings.Split(strings.TrimSpace(string(dpkg("--contents", deb))), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 6 {
			t.Fatalf("dpkg-deb --contents line %q", line)
		}
		listing[fields[len(fields)-1]] = fields[0] + " " + fields[1]
	}
	for path, want := range map[string]string{
		"./usr/bin/push-gateway":                           "-rwxr-xr-x root/root",
		"./lib/systemd/system/push-gateway.service":        "-rw-r--r-- root/root",
		"./lib/systemd/system/push-gateway.socket":         "-rw-r--r-- root/root",
		"./etc/default/push-gateway":                       "-rw-r--r-- root/root",
		"./usr/share/doc/push-gateway/copyright":           "-rw-r--r-- root/root",
		"./usr/share/doc/push-gateway/changelog.Debian.gz": "-rw-r--r-- root/root",
		"./usr/share/man/man1/push-gateway.1.gz":           "-rw-r--r-- root/root",
		"./usr/share/lintian/overrides/push-gateway":       "-rw-r--r-- root/root",
		"./usr/share/lintian/overrides/":                   "drwxr-xr-x root/root",
		"./usr/share/lintian/":                             "drwxr-xr-x root/root",
		"./usr/share/doc/push-gateway/":                    "drwxr-xr-x root/root",
		"./lib/systemd/system/":                            "drwxr-xr-x root/root",
		"./etc/default/":                                   "drwxr-xr-x root/root",
		"./usr/bin/":                                       "drwxr-xr-x root/root",
		"./usr/share/man/man1/":                            "drwxr-xr-x root/root",
		"./usr/share/doc/":                                 "drwxr-xr-x root/root",
		"./usr/share/man/":                                 "drwxr-xr-x root/root",
		"./usr/share/":                                     "drwxr-xr-x root/root",
		"./usr/":                                           "drwxr-xr-x root/root",
		"./lib/systemd/":                                   "drwxr-xr-x root/root",
		"./lib/":                                           "drwxr-xr-x root/root",
		"./etc/":                                           "drwxr-xr-x root/root",
		"./":                                               "drwxr-xr-x root/root",
	} {
		if got, ok := listing[path]; !ok || got != want {
			t.Errorf("%s: %q (present: %v), want %q", path, got, ok, want)
		}
		delete(listing, path)
	}
	if len(listing) > 0 {
		t.Errorf("unexpected files in the package: %v", listing)
	}

	// The shipped files are the tree's.
	x := t.TempDir()
	dpkg("--extract", deb, x)
	for inPkg, src := range map[string]string{
		"usr/bin/push-gateway":                    bin,
		"lib/systemd/system/push-gateway.service": filepath.Join(root, "scripts/systemd/push-gateway.service"),
		"lib/systemd/system/push-gateway.socket":  filepath.Join(root, "scripts/systemd/push-gateway.socket"),
		"etc/default/push-gateway":                filepath.Join(root, "scripts/systemd/push-gateway.default"),
	} {
		if !bytes.Equal(pkgReadFile(t, filepath.Join(x, inPkg)), pkgReadFile(t, src)) {
			t.Errorf("/%s differs from %s", inPkg, src)
		}
	}

	// Maintainer scripts: the conffile, a user at configure, nothing enabled
	// or started, clean-up at purge.
	ctl := t.TempDir()
	dpkg("--control", deb, ctl)
	if got := string(pkgReadFile(t, filepath.Join(ctl, "conffiles"))); got != "/etc/default/push-gateway\n" {
		t.Errorf("conffiles = %q", got)
	}
	code := func(name string) string {
		t.Helper()
		fi, err := os.Stat(filepath.Join(ctl, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o755 {
			t.Errorf("%s has mode %v, want 0755", name, fi.Mode().Perm())
		}
		var lines []string // without comments
		for _, l := range strings.Split(string(pkgReadFile(t, filepath.Join(ctl, name))), "\n") {
			if s := strings.TrimSpace(l); s != "" && !strings.HasPrefix(s, "#") {
				lines = append(lines, s)
			}
		}
		return strings.Join(lines, "\n")
	}
	postinst := code("postinst")
	if !strings.Contains(postinst, "adduser --system --group") || !strings.Contains(postinst, "push-gateway") {
		t.Errorf("postinst creates no system user push-gateway:\n%s", postinst)
	}
	if m := regexp.MustCompile(`\b(enable|start|reenable)\b`).FindString(postinst); m != "" {
		t.Errorf("postinst must enable and start nothing, yet it says %q:\n%s", m, postinst)
	}
	postrm := code("postrm")
	if !strings.Contains(postrm, `"$1" = purge`) || !strings.Contains(postrm, "deluser --system") {
		t.Errorf("postrm does not clean up on purge:\n%s", postrm)
	}
	code("prerm")
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		if out, err := exec.Command("sh", "-n", filepath.Join(ctl, s)).CombinedOutput(); err != nil {
			t.Errorf("%s: sh -n: %v\n%s", s, err, out)
		}
	}

	// The same inputs give the same bytes.
	again := pkgScript(t, "deb.sh", bin, debArch, "9.8.7", t.TempDir())
	if !bytes.Equal(pkgReadFile(t, deb), pkgReadFile(t, again)) {
		t.Errorf("two runs of deb.sh give different packages")
	}
}
