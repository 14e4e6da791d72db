package web

import (
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/push-gateway/push-gateway/expose"
)

// Auth checks basic_auth_users. A bcrypt check costs tens of milliseconds
// on a fast core and far more on a router's (see README, "Securing the
// scrape"), so its results are cached, as exporter-toolkit caches them:
// the key is a SHA-256 of the user, the password and the user's hash, and
// a good password is hashed once, not at every scrape. Wrong ones are
// cached too. At most one bcrypt check runs at a time; one that cannot
// start within BcryptWait is answered 503, so that a flood of new wrong
// passwords holds one core at most and cached ones still pass.
// It is safe for concurrent use.
type Auth struct {
	users map[string]string // user: bcrypt hash
	dummy string            // hash checked for an unknown user: the same work as for a known one

	bcrypt chan struct{} // a token per bcrypt check running
	wait   time.Duration // BcryptWait; shorter in tests
	hashed atomic.Int64  // bcrypt checks run

	mu    sync.Mutex
	cache map[[sha256.Size]byte]bool
}

// Cache bounds, and the longest a check waits for another to finish.
const (
	cacheSize  = 256
	BcryptWait = 2 * time.Second
)

// Result is what Check found.
type Result int

const (
	Denied  Result = iota // no credentials, an unknown user or a wrong password
	Allowed               // a known user with the right password
	Busy                  // the credentials were not cached and bcrypt was busy for BcryptWait
)

func newAuth(users map[string]string, dummyUser string) *Auth {
	return &Auth{users: users, dummy: users[dummyUser], bcrypt: make(chan struct{}, 1), wait: BcryptWait, cache: make(map[[sha256.Size]byte]bool)}
}

// maxCredentials bounds the decoded user:password (a request's header
// line is at most 4 KiB).
const maxCredentials = 3 << 10

// Check tells whether the value of an Authorization header (nil when
// there is none) names a user with the right password. A cached result
// allocates nothing.
func (a *Auth) Check(authorization []byte) Result {
	const prefix = "basic "
	if len(authorization) <= len(prefix) || !equalFold(authorization[:len(prefix)], prefix) {
		return Denied
	}
	enc := authorization[len(prefix):]
	// buf holds user:password, then the user's hash: what the cache key
	// is a digest of. The user ends at the first colon, and each user has
	// one hash, so two different triples never give the same bytes.
	var buf [maxCredentials + 128]byte
	if base64.StdEncoding.DecodedLen(len(enc)) > maxCredentials {
		return Denied
	}
	n, err := base64.StdEncoding.Decode(buf[:maxCredentials], enc)
	if err != nil {
		return Denied
	}
	colon := -1
	for i, b := range buf[:n] {
		if b == ':' {
			colon = i
			break
		}
	}
	if colon < 0 {
		return Denied
	}
	hash, known := a.users[string(buf[:colon])]
	if !known {
		hash = a.dummy
	}
	if len(hash) > len(buf)-n {
		return Denied
	}
	key := sha256.Sum256(append(buf[:n], hash...))
	a.mu.Lock()
	ok, cached := a.cache[key]
	a.mu.Unlock()
	if cached {
		return result(known && ok)
	}

	select {
	case a.bcrypt <- struct{}{}:
	default:
		t := time.NewTimer(a.wait)
		select {
		case a.bcrypt <- struct{}{}:
			t.Stop()
		case <-t.C:
			return Busy
		}
	}
	// bcrypt compares the hashes in constant time. The password is copied
	// so that buf, given to bcrypt, does not move to the heap on every check.
	pass := append([]byte(nil), buf[colon+1:n]...)
	ok = bcrypt.CompareHashAndPassword([]byte(hash), pass) == nil
	a.hashed.Add(1)
	<-a.bcrypt

	a.mu.Lock()
	if len(a.cache) >= cacheSize {
		// A tenth out, chosen by map order (which starts at random), so
		// that a full cache does not evict at every new entry.
		i := 0
		for k := range a.cache {
			if i++; i > cacheSize/10 {
				break
			}
			delete(a.cache, k)
		}
	}
	a.cache[key] = ok
	a.mu.Unlock()
	return result(known && ok)
}

func result(ok bool) Result {
	if ok {
		return Allowed
	}
	return Denied
}

// equalFold compares ASCII b with lower-case s, ignoring case.
func equalFold(b []byte, s string) bool {
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// Realm is the realm the 401 answer names.
const Realm = "push-gateway"

// Guard is what the TCP server asks before serving a request (see
// expose.Handler.Guarded): it adds the headers of http_server_config and,
// with basic_auth_users, answers 401 (or 503 while bcrypt is busy) and
// returns false unless the request carries a user's right password.
func (w *Web) Guard(resp *expose.Response, r *expose.Request) bool {
	for _, h := range w.headers {
		resp.SetHeader(h[0], h[1])
	}
	if w.Auth == nil {
		return true
	}
	switch w.Auth.Check(r.Authorization) {
	case Allowed:
		return true
	case Busy:
		resp.SetHeader("Retry-After", "1")
		resp.Error(503, "too many password checks at once")
	default:
		resp.SetHeader("WWW-Authenticate", `Basic realm="`+Realm+`"`)
		resp.Error(401, "Unauthorized")
	}
	return false
}
