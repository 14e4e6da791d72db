package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The noremotewrite tag builds a daemon without remote write or crypto/tls
// (BENCHMARKS.md, "remote_write"): it must keep building, and its --help
// must not offer the flags it lacks.
func TestNoRemoteWriteBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the daemon once more")
	}
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "push-gateway")
	if out, err := exec.Command("go", "build", "-tags", "noremotewrite", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build -tags noremotewrite: %v\n%s", err, out)
	}
	out, err := exec.Command("go", "version", "-m", bin).CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range []string{"golang/snappy"} {
		if strings.Contains(string(out), pkg) {
			t.Errorf("the noremotewrite build links %s", pkg)
		}
	}
	help, _ := exec.Command(bin, "--help").CombinedOutput()
	if strings.Contains(string(help), "remote-write") {
		t.Errorf("--help of the noremotewrite build offers remote write:\n%s", help)
	}
	if nm, err := exec.Command("go", "tool", "nm", bin).Output(); err == nil && strings.Contains(string(nm), "crypto/tls.") {
		t.Errorf("the noremotewrite build links crypto/tls")
	}
}
