package expose

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// Issue 12, point 3: a body has BodyTimeout from the end of its head, not
// the idle timeout; the handler's read fails when it passes.
func TestServerBodyTimeout(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	readErr := make(chan error, 1)
	s := &Server{BodyTimeout: 300 * time.Millisecond, IdleTimeout: time.Minute, Handler: func(w *Response, r *Request) {
		_, err := io.ReadAll(r.Body)
		readErr <- err
		w.WriteHeader(408)
	}}
	go s.ServeConn(server, nil)
	go client.Write([]byte("PUT /x HTTP/1.1\r\nContent-Length: 100\r\n\r\nx"))
	start := time.Now()
	select {
	case err := <-readErr:
		if err == nil {
			t.Fatal("a stalled body read without error")
		}
		if took := time.Since(start); took < 250*time.Millisecond {
			t.Errorf("the body timed out after %v, before BodyTimeout", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a stalled body was still being read 10s later, with BodyTimeout 300ms")
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(client)
	if !strings.HasPrefix(string(got), "HTTP/1.1 408") {
		t.Errorf("response %q", got)
	}
}

// Issue 12, point 6: a connection handed over with a prefix keeps the read
// deadline its caller set when the first byte came, for the rest of the
// first head.
func TestServerPrefixKeepsDeadline(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	s := &Server{Handler: func(w *Response, r *Request) {}}
	server.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	done := make(chan struct{})
	go func() { s.ServeConn(server, []byte("GET / HTTP/1.1\r\n")); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a head not finished by the caller's deadline was still being read 5s later")
	}
}
