// Package redistest starts Debian's redis-server for tests: on a free
// loopback port and a Unix socket, in a temporary directory of its own.
package redistest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Server is a running redis-server.
type Server struct {
	t      testing.TB
	Port   int
	Socket string // Unix socket path
	Dir    string // its working directory (--dir)
	args   []string
	cmd    *exec.Cmd
	exited chan struct{}
	auth   []string // redis-cli flags to log in
}

// Binaries returns the paths of redis-server and redis-cli, skipping the
// test, visibly, when either is missing.
func Binaries(t testing.TB) (server, cli string) {
	t.Helper()
	server, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed (Debian: apt-get install redis-server); skipping")
	}
	cli, err = exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli is not installed (Debian: apt-get install redis-tools); skipping")
	}
	return server, cli
}

// Start starts redis-server without persistence (--save "" --appendonly
// no; extra flags, such as --appendonly yes, come after and win) and waits
// until it answers. It is stopped at the end of the test.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	Binaries(t)
	dir, err := os.MkdirTemp("", "rds")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &Server{t: t, Port: FreePort(t), Socket: filepath.Join(dir, "r.sock"), Dir: dir}
	s.args = append([]string{"--bind", "127.0.0.1", "--unixsocket", s.Socket, "--unixsocketperm", "700",
		"--dir", dir, "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", "redis.log"}, extra...)
	s.start(s.Port)
	t.Cleanup(s.Kill)
	return s
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// URL returns redis://127.0.0.1:port.
func (s *Server) URL() string { return "redis://127.0.0.1:" + strconv.Itoa(s.Port) }

// start runs redis-server on port with s's flags and waits (10 s at most)
// until it answers PING.
func (s *Server) start(port int) {
	s.t.Helper()
	bin, _ := Binaries(s.t)
	args := append([]string{"--port", strconv.Itoa(port)}, s.args...)
	s.cmd = exec.Command(bin, args...)
	s.cmd.Dir = s.Dir
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("cannot start redis-server: %v", err)
	}
	s.exited = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { c.Wait(); close(done) }(s.cmd, s.exited)
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := s.cliPort(port, "PING")
		if err == nil && (out == "PONG" || strings.HasPrefix(out, "NOAUTH")) {
			return
		}
		select {
		case <-s.exited:
			log, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
			s.t.Fatalf("redis-server %s exited at start; its log:\n%s", strings.Join(args, " "), log)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redis-server on port %d does not answer PING within 10s: %q %v", port, out, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Login makes the next redis-cli calls log in with these flags (such as
// --user u --pass p).
func (s *Server) Login(flags ...string) { s.auth = flags }

// Cli runs redis-cli against the server with args and returns its output,
// trimmed; a failure to run fails the test.
func (s *Server) Cli(args ...string) string {
	s.t.Helper()
	out, err := s.cliPort(s.Port, args...)
	if err != nil {
		s.t.Fatalf("redis-cli %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return out
}

func (s *Server) cliPort(port int, args ...string) (string, error) {
	_, cli := Binaries(s.t)
	a := append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(port), "--no-auth-warning"}, s.auth...)
	cmd := exec.Command(cli, append(a, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return "", err
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return strings.TrimSpace(out.String()), err
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		return strings.TrimSpace(out.String()), fmt.Errorf("redis-cli %s: no answer within 10s", strings.Join(args, " "))
	}
}

// Shutdown asks the server to shut down (SHUTDOWN, which writes the
// append-only file when it is on) and waits for its exit.
func (s *Server) Shutdown() {
	s.t.Helper()
	s.cliPort(s.Port, "SHUTDOWN") // the connection drops: no reply
	s.wait()
}

// Kill ends the server with SIGKILL, if it runs.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	select {
	case <-s.exited:
	default:
		s.cmd.Process.Kill()
	}
	s.wait()
}

// Wait waits (10 s at most) for the server to exit, as after a SHUTDOWN
// sent by the test.
func (s *Server) Wait() { s.t.Helper(); s.wait() }

func (s *Server) wait() {
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.t.Errorf("redis-server did not exit within 10s")
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// StartOn starts the server again, in the same directory with the same
// flags, on port (s.Port is unchanged; use Cli with another port through
// CliOn).
func (s *Server) StartOn(port int) { s.t.Helper(); s.start(port) }

// CliOn is Cli against another port.
func (s *Server) CliOn(port int, args ...string) string {
	s.t.Helper()
	out, err := s.cliPort(port, args...)
	if err != nil {
		s.t.Fatalf("redis-cli -p %d %s: %v: %s", port, strings.Join(args, " "), err, out)
	}
	return out
}

// ShutdownOn shuts down the server running on port.
func (s *Server) ShutdownOn(port int) {
	s.t.Helper()
	s.cliPort(port, "SHUTDOWN")
	s.wait()
}
