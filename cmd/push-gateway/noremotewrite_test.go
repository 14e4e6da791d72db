package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The noremotewrite tag builds a daemon without remote write, and with
// nowebconfig too, without crypto/tls at all (BENCHMARKS.md,
// "remote_write"): both must keep building, --help must not offer the
// flags they lack, and --web.config.file must fail at start rather than
// serve unprotected.
func TestNoRemoteWriteBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the daemon twice more")
	}
	t.Parallel()
	build := func(tags string) string {
		bin := filepath.Join(t.TempDir(), "push-gateway")
		if out, err := exec.Command("go", "build", "-tags", tags, "-o", bin, ".").CombinedOutput(); err != nil {
			t.Fatalf("go build -tags %s: %v\n%s", tags, err, out)
		}
		return bin
	}
	links := func(bin, symbol string) bool {
		nm, err := exec.Command("go", "tool", "nm", bin).Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.Contains(string(nm), symbol)
	}
	bin := build("noremotewrite")
	out, err := exec.Command("go", "version", "-m", bin).CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "golang/snappy") {
		t.Errorf("the noremotewrite build links snappy")
	}
	if links(bin, "expose/remotewrite.") {
		t.Errorf("the noremotewrite build links the remote write sender")
	}
	help, _ := exec.Command(bin, "--help").CombinedOutput()
	if strings.Contains(string(help), "remote-write") {
		t.Errorf("--help of the noremotewrite build offers remote write:\n%s", help)
	}

	small := build("noremotewrite,nowebconfig")
	if links(small, "crypto/tls.") {
		t.Errorf("the noremotewrite,nowebconfig build links crypto/tls")
	}
	dir := shortTempDir(t)
	cfg := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(cfg, []byte("basic_auth_users:\n  u: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(small, "--ingest.socket="+filepath.Join(dir, "p.sock"), "--web.listen-address=127.0.0.1:0", "--web.config.file="+cfg)
	msg, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(msg), "nowebconfig") {
		t.Errorf("--web.config.file on the nowebconfig build: %v, %s; want exit 2 saying why", err, msg)
	}
}
