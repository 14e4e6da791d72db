package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestStatusPageRemoteWrite: with remote write on, the status page says
// where it sends, when it last succeeded, what is queued and the last
// error; without it, it says nothing of remote write.
func TestStatusPageRemoteWrite(t *testing.T) {
	t.Parallel()
	var failing atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if failing.Load() {
			http.Error(w, "receiver says no", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	d := startDaemon(t, "--remote-write.url="+srv.URL+"/api/v1/write?secret=x", "--remote-write.interval=100ms")
	d.push(t, "status_rw 1\n")
	page := func() string {
		resp, body := d.request(t, false, "GET", "/", "", "")
		if resp.StatusCode != 200 {
			t.Fatalf("GET /: %d", resp.StatusCode)
		}
		return body
	}
	eventually(t, 10*time.Second, "a success on the status page", func() (bool, string) {
		p := page()
		return strings.Contains(p, "Remote write") && strings.Contains(p, srv.URL+"/api/v1/write") &&
			!strings.Contains(p, "never"), p
	})
	if p := page(); strings.Contains(p, "secret=x") {
		t.Errorf("the status page shows the receiver's query string:\n%s", p)
	}
	failing.Store(true)
	eventually(t, 10*time.Second, "the last error on the status page", func() (bool, string) {
		p := page()
		return strings.Contains(p, "500 receiver says no (retried)"), p
	})

	// The receiver takes the last snapshot at shutdown, so the daemon
	// exits at once (with it failing, it would try for 8.5 s).
	failing.Store(false)
	d.stop(syscall.SIGTERM)

	plain := startDaemon(t)
	resp, body := plain.request(t, false, "GET", "/", "", "")
	if resp.StatusCode != 200 || strings.Contains(body, "Remote write") {
		t.Errorf("without --remote-write.url the status page (%d) speaks of remote write:\n%s", resp.StatusCode, body)
	}
}
