package web

import (
	"context"
	"encoding/base64"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/push-gateway/push-gateway/cache"
	"github.com/push-gateway/push-gateway/expose"
)

func hashOf(t testing.TB, password string, cost int) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func basic(user, password string) []byte {
	return []byte("Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password)))
}

func TestAuthCheck(t *testing.T) {
	a := newAuth(map[string]string{"alice": hashOf(t, "s3cret:with colon", bcrypt.MinCost), "bob": hashOf(t, "hunter2", bcrypt.MinCost)}, "alice")
	for _, c := range []struct {
		name string
		auth []byte
		want Result
	}{
		{"none", nil, Denied},
		{"right", basic("alice", "s3cret:with colon"), Allowed},
		{"scheme in any case", []byte("bAsIc " + base64.StdEncoding.EncodeToString([]byte("bob:hunter2"))), Allowed},
		{"other user's password", basic("alice", "hunter2"), Denied},
		{"wrong", basic("bob", "hunter3"), Denied},
		{"unknown user", basic("carol", "hunter2"), Denied},
		{"unknown user with a known hash's password", basic("carol", "s3cret:with colon"), Denied},
		{"empty password", basic("bob", ""), Denied},
		{"no colon", []byte("Basic " + base64.StdEncoding.EncodeToString([]byte("bob"))), Denied},
		{"bad base64", []byte("Basic !!!"), Denied},
		{"bearer", []byte("Bearer abc"), Denied},
		{"scheme alone", []byte("Basic "), Denied},
		{"too long", basic("bob", string(make([]byte, 4<<10))), Denied},
	} {
		for i := 0; i < 2; i++ { // hashed, then cached: the same answer
			if got := a.Check(c.auth); got != c.want {
				t.Errorf("%s (try %d): %v, want %v", c.name, i, got, c.want)
			}
		}
	}
}

// A good password is hashed once, not at every scrape; a wrong one too.
func TestAuthCachesResults(t *testing.T) {
	a := newAuth(map[string]string{"alice": hashOf(t, "pw", bcrypt.MinCost)}, "alice")
	for i := 0; i < 50; i++ {
		if a.Check(basic("alice", "pw")) != Allowed || a.Check(basic("alice", "nope")) != Denied || a.Check(basic("mallory", "pw")) != Denied {
			t.Fatal("wrong answer")
		}
	}
	if n := a.hashed.Load(); n != 3 {
		t.Fatalf("%d bcrypt checks for 3 distinct credentials asked 50 times each, want 3", n)
	}
	if n := testing.AllocsPerRun(100, func() { a.Check(basic("alice", "pw")) }) - testing.AllocsPerRun(100, func() { basic("alice", "pw") }); n > 0 {
		t.Fatalf("a cached check allocates %v times", n)
	}
}

// The cache stays within its bound under a flood of distinct passwords,
// and the good one, evicted or not, still passes.
func TestAuthCacheBound(t *testing.T) {
	a := newAuth(map[string]string{"alice": hashOf(t, "pw", bcrypt.MinCost)}, "alice")
	for i := 0; i < 3*cacheSize; i++ {
		a.Check(basic("alice", "wrong"+string(rune('a'+i%26))+string(rune('a'+i/26))))
		if len(a.cache) > cacheSize {
			t.Fatalf("cache has %d entries, bound %d", len(a.cache), cacheSize)
		}
	}
	if a.Check(basic("alice", "pw")) != Allowed {
		t.Fatal("good password refused")
	}
}

// One bcrypt check at a time: another new password waits, and past the
// wait gets Busy; cached credentials pass meanwhile.
func TestAuthBoundsBcrypt(t *testing.T) {
	a := newAuth(map[string]string{"alice": hashOf(t, "pw", bcrypt.MinCost)}, "alice")
	a.wait = 100 * time.Millisecond
	if a.Check(basic("alice", "pw")) != Allowed {
		t.Fatal("good password refused")
	}
	a.bcrypt <- struct{}{} // a check is running
	if got := a.Check(basic("alice", "new")); got != Busy {
		t.Fatalf("with bcrypt busy: %v, want Busy", got)
	}
	if got := a.Check(basic("alice", "pw")); got != Allowed {
		t.Fatalf("cached, with bcrypt busy: %v, want Allowed", got)
	}
	// Freed within the wait: the waiting check goes ahead.
	a.wait = 10 * time.Second
	var wg sync.WaitGroup
	var got Result
	wg.Add(1)
	go func() { defer wg.Done(); got = a.Check(basic("alice", "other")) }()
	time.Sleep(50 * time.Millisecond)
	<-a.bcrypt
	wg.Wait()
	if got != Denied {
		t.Fatalf("after waiting: %v, want Denied", got)
	}
}

// What one check costs: a cached one (every scrape after the first), and
// bcrypt at the cost htpasswd and exporter-toolkit's docs use (10).
func BenchmarkCheckCached(b *testing.B) {
	a := newAuth(map[string]string{"alice": hashOf(b, "pw", bcrypt.DefaultCost)}, "alice")
	h := basic("alice", "pw")
	a.Check(h)
	b.ReportAllocs()
	for b.Loop() {
		a.Check(h)
	}
}

func BenchmarkBcryptCost10(b *testing.B) {
	hash := []byte(hashOf(b, "pw", bcrypt.DefaultCost))
	for b.Loop() {
		bcrypt.CompareHashAndPassword(hash, []byte("pw"))
	}
}

// Basic auth without TLS, and the headers of http_server_config, through
// the server and the handler as the daemon wires them.
func TestGuardWithoutTLS(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "web.yml")
	yml := "http_server_config:\n  headers:\n    X-Frame-Options: deny\nbasic_auth_users:\n  alice: " + hashOf(t, "pw", bcrypt.MinCost) + "\n"
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := Load(path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if w.TLS != nil {
		t.Fatal("TLS on without tls_server_config")
	}
	h := expose.New(expose.Options{Cache: cache.New(cache.Options{Budget: 64 << 10, TTL: time.Minute})})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &expose.Server{Handler: h.Guarded(w.Guard)}
	go s.Serve(l)
	defer s.Shutdown(context.Background())
	client := &http.Client{Timeout: 10 * time.Second}
	for _, c := range []struct {
		path, user, password string
		code                 int
		challenge, frame     bool
	}{
		{"/metrics", "", "", 401, true, true},
		{"/metrics", "alice", "nope", 401, true, true},
		{"/metrics", "alice", "pw", 200, false, true},
		{"/", "alice", "pw", 200, false, true},
		{"/-/healthy", "", "", 200, false, false},
		{"/-/ready", "", "", 200, false, false},
	} {
		req, _ := http.NewRequest("GET", "http://"+l.Addr().String()+c.path, nil)
		if c.user != "" {
			req.SetBasicAuth(c.user, c.password)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		challenge := resp.Header.Get("WWW-Authenticate") == `Basic realm="push-gateway"`
		frame := resp.Header.Get("X-Frame-Options") == "deny"
		if resp.StatusCode != c.code || challenge != c.challenge || frame != c.frame {
			t.Errorf("%s as %q: %d, challenge %v, X-Frame-Options %v; want %d, %v, %v",
				c.path, c.user, resp.StatusCode, challenge, frame, c.code, c.challenge, c.frame)
		}
	}
}
