// Command rwrss measures the resident memory of push-gateway while it
// sends remote_write over HTTPS: it makes a CA and a certificate for
// 127.0.0.1, starts an HTTPS receiver on loopback that answers every write
// 204, starts the daemon with --remote-write.url pointing at it and
// --remote-write.tls.ca-file, pushes -series series over the raw socket
// once (--cache.ttl=0 keeps them) or every -repush, and reads
// /proc/PID/status every second for -duration. It prints the peak VmHWM, the largest VmRSS, RssAnon and
// RssFile, the CPU the daemon used and the requests the receiver got.
//
//	go run ./scripts/rwrss -bin ./push-gateway [-duration 60s] [-runs 3] [-page-cache cold|asis]
//	    [-repush 1s] [-env 'GOGC=50 GODEBUG=gctrace=1']
//
// -page-cache cold drops the binary's file from the page cache before each
// run (sync, then POSIX_FADV_DONTNEED), so that each run starts as after a
// reboot; asis leaves the page cache as the build or copy left it (how the
// file came into the page cache decides how large its folios are, and on
// kernels that map a whole folio at a fault, how much of it is resident).
package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	bin := flag.String("bin", "./push-gateway", "the daemon's binary")
	duration := flag.Duration("duration", 60*time.Second, "how long each run sends")
	runs := flag.Int("runs", 3, "runs, one after the other")
	series := flag.Int("series", 100, "series pushed")
	interval := flag.String("interval", "1s", "--remote-write.interval")
	verbose := flag.Bool("v", false, "print every sample")
	pageCache := flag.String("page-cache", "cold", "cold: drop the binary from the page cache before each run; asis: leave it")
	repush := flag.Duration("repush", 0, "push the series again this often (new values, a new connection each time, as a cron job would); 0: once")
	env := flag.String("env", "", "space-separated NAME=VALUE for the daemon's environment only (GOGC=50 GODEBUG=gctrace=1)")
	flag.Parse()
	if *pageCache != "cold" && *pageCache != "asis" {
		fail(fmt.Errorf("-page-cache is cold or asis, not %q", *pageCache))
	}
	dir, err := os.MkdirTemp("", "rwrss")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	caFile, cert, err := makePKI(dir)
	if err != nil {
		fail(err)
	}
	var requests, bytes atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _ := io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
			requests.Add(1)
			bytes.Add(n)
			w.WriteHeader(http.StatusNoContent)
		}),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go srv.ServeTLS(ln, "", "")
	defer srv.Close()
	fmt.Printf("# %s, %d series, interval %s, %s per run, page cache %s\n", *bin, *series, *interval, *duration, *pageCache)
	for i := 0; i < *runs; i++ {
		if *pageCache == "cold" {
			if err := dropPageCache(*bin); err != nil {
				fail(err)
			}
		}
		r0 := requests.Load()
		res, err := run(*bin, strings.Fields(*env), *repush, dir, "https://"+ln.Addr().String()+"/api/v1/write", caFile, *interval, *series, *duration, *verbose)
		if err != nil {
			fail(err)
		}
		fmt.Printf("run %d: peak VmHWM %d kB, VmRSS %d kB, RssAnon %d kB, RssFile %d kB; CPU %.2f s; %d requests\n",
			i+1, res.hwm, res.rss, res.anon, res.file, res.cpu, requests.Load()-r0)
	}
}

type result struct {
	hwm, rss, anon, file int
	cpu                  float64
}

func run(bin string, env []string, repush time.Duration, dir, url, caFile, interval string, series int, d time.Duration, verbose bool) (result, error) {
	var res result
	sock := filepath.Join(dir, "p.sock")
	os.Remove(sock)
	cmd := exec.Command(bin, "--ingest.socket="+sock, "--web.listen-address=127.0.0.1:0",
		"--cache.ttl=0", "--log.level=warn",
		"--remote-write.url="+url, "--remote-write.interval="+interval,
		"--remote-write.tls.ca-file="+caFile)
	cmd.Env = append(os.Environ(), env...)
	// Killed itself (Ctrl-C, a timeout), rwrss takes the daemon along.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return res, err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	var c net.Conn
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var err error
		if c, err = net.Dial("unix", sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("the daemon did not open %s: %v", sock, err)
		}
	}
	push := func(c net.Conn, round int) {
		var b strings.Builder
		for i := 0; i < series; i++ {
			fmt.Fprintf(&b, "rwrss_series{instance=\"router-01.lan\",job=\"edge\",path=\"/x/%05d\"} %d\n", i, i+round)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, b.String())
		c.Close()
	}
	push(c, 0)
	if repush > 0 {
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			t := time.NewTicker(repush)
			defer t.Stop()
			for round := 1; ; round++ {
				select {
				case <-stop:
					return
				case <-t.C:
				}
				if c, err := net.DialTimeout("unix", sock, 5*time.Second); err == nil {
					push(c, round)
				}
			}
		}()
	}
	pid := cmd.Process.Pid
	for end := time.Now().Add(d); time.Now().Before(end); {
		time.Sleep(time.Second)
		st, err := status(pid)
		if err != nil {
			return res, err
		}
		if verbose {
			fmt.Printf("  VmHWM %d  VmRSS %d  RssAnon %d  RssFile %d kB\n", st["VmHWM:"], st["VmRSS:"], st["RssAnon:"], st["RssFile:"])
		}
		res.hwm = max(res.hwm, st["VmHWM:"])
		res.rss = max(res.rss, st["VmRSS:"])
		res.anon = max(res.anon, st["RssAnon:"])
		res.file = max(res.file, st["RssFile:"])
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return res, err
	}
	// The fields after the command's ")": utime and stime are the 12th and 13th.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	ut, _ := strconv.Atoi(f[11])
	stt, _ := strconv.Atoi(f[12])
	res.cpu = float64(ut+stt) / 100 // USER_HZ
	return res, nil
}

func status(pid int) (map[string]int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fs := strings.Fields(sc.Text()); len(fs) >= 2 {
			m[fs[0]], _ = strconv.Atoi(fs[1])
		}
	}
	return m, sc.Err()
}

// dropPageCache writes the file back and drops its pages from the page
// cache (those no process maps).
func dropPageCache(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return err
	}
	_, _, e := syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, 4 /* POSIX_FADV_DONTNEED */, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// makePKI writes a CA certificate to dir and returns its file and a
// certificate for 127.0.0.1 signed by it.
func makePKI(dir string) (string, tls.Certificate, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", tls.Certificate{}, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rwrss CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return "", tls.Certificate{}, err
	}
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		return "", tls.Certificate{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return "", tls.Certificate{}, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return "", tls.Certificate{}, err
	}
	return caFile, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "rwrss:", err)
	os.Exit(1)
}
