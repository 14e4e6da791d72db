package main

// systemd socket activation, done the way systemd does it: the test holds a
// listening Unix socket (as push-gateway.socket does), passes it to the
// daemon as fd 3 with LISTEN_FDS=1 and LISTEN_PID set to the daemon's own pid,
// and pushes through it. The pid is not known before exec, so a shell sets
// LISTEN_PID=$$ and then execs the daemon, which keeps that pid.

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// activationWrapper runs "$0" "$@" with the shell's pid as LISTEN_PID.
const activationWrapper = `LISTEN_PID=$$ LISTEN_FDS=1; export LISTEN_PID LISTEN_FDS; exec "$0" "$@"`

func TestSocketActivation(t *testing.T) {
	pkgUse(t)
	t.Parallel()
	bin := pkgBinary(t, pkgHost)
	dir := pkgTempDir(t)
	sock := filepath.Join(dir, "activated.sock")
	flagSock := filepath.Join(dir, "flag.sock") // --ingest.socket: unused under activation

	// systemd's side: the socket exists before the daemon and outlives it.
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	start := func() *pkgDaemon {
		t.Helper()
		f, err := l.File() // a duplicate: the test keeps its own
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close() // the child has its copy once started
		d := pkgStart(t, []string{"/bin/sh", "-c", activationWrapper, bin,
			"--ingest.socket=" + flagSock, "--web.listen-address=127.0.0.1:0"}, []*os.File{f}, 20*time.Second)
		if d.socket != sock {
			t.Errorf("start-up line names socket %q, want the activated %q", d.socket, sock)
		}
		if _, err := os.Lstat(flagSock); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the daemon made its own socket %s under activation (%v)", flagSock, err)
		}
		return d
	}

	// A client that pushes before the daemon runs waits in the backlog.
	pkgPush(t, sock, "# TYPE activation_pushes_total counter\nactivation_pushes_total{when=\"before start\"} 1\n")
	d := start()
	d.scrape(t, `activation_pushes_total{when="before start"} 1`, 10*time.Second)
	pkgPush(t, sock, "activation_pushes_total{when=\"running\"} 2\n")
	d.scrape(t, `activation_pushes_total{when="running"} 2`, 10*time.Second)
	d.stop(t, 6*time.Second)

	// The daemon leaves systemd's socket in place, so a push between two
	// runs is kept for the next one.
	if fi, err := os.Lstat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("the activated socket %s is gone after the daemon stopped (%v)", sock, err)
	}
	pkgPush(t, sock, "activation_pushes_total{when=\"between runs\"} 3\n")
	d = start()
	d.scrape(t, `activation_pushes_total{when="between runs"} 3`, 10*time.Second)
	d.stop(t, 6*time.Second)
}

// Without LISTEN_PID naming the daemon's own pid, the passed descriptor is
// not the daemon's business: it binds --ingest.socket as usual.
func TestSocketActivationIgnoresOtherPID(t *testing.T) {
	pkgUse(t)
	t.Parallel()
	bin := pkgBinary(t, pkgHost)
	dir := pkgTempDir(t)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "other.sock"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	own := filepath.Join(dir, "own.sock")
	d := pkgStart(t, []string{"/bin/sh", "-c", `LISTEN_PID=1 LISTEN_FDS=1; export LISTEN_PID LISTEN_FDS; exec "$0" "$@"`, bin,
		"--ingest.socket=" + own, "--web.listen-address=127.0.0.1:0"}, []*os.File{f}, 20*time.Second)
	if d.socket != own {
		t.Fatalf("start-up line names socket %q, want its own %q", d.socket, own)
	}
	pkgPush(t, own, "activation_other_pid 1\n")
	d.scrape(t, "activation_other_pid 1", 10*time.Second)
	d.stop(t, 6*time.Second)
}
