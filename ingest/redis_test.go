package ingest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/atomic"

	"github.com/push-gateway/push-gateway/cache"
	"github.com/push-gateway/push-gateway/ingest/redistest"
	"github.com/push-gateway/push-gateway/ingest/resp"
)

func TestParseRedisURL(t *testing.T) {
	for _, c := range []struct {
		in   string
		want RedisAddr
		str  string
	}{
		{"redis://localhost", RedisAddr{Network: "tcp", Address: "localhost:6379"}, "redis://localhost:6379"},
		{"redis://", RedisAddr{Network: "tcp", Address: "localhost:6379"}, "redis://localhost:6379"},
		{"redis://10.0.0.1:7000/3", RedisAddr{Network: "tcp", Address: "10.0.0.1:7000", DB: 3}, "redis://10.0.0.1:7000/3"},
		{"redis://:s3cret@h:1", RedisAddr{Network: "tcp", Address: "h:1", Password: "s3cret"}, "redis://h:1"},
		{"redis://u:s3cret@h/2", RedisAddr{Network: "tcp", Address: "h:6379", User: "u", Password: "s3cret", DB: 2}, "redis://u@h:6379/2"},
		{"redis://h?db=4", RedisAddr{Network: "tcp", Address: "h:6379", DB: 4}, "redis://h:6379/4"},
		{"redis://[::1]:6380", RedisAddr{Network: "tcp", Address: "[::1]:6380"}, "redis://[::1]:6380"},
		{"unix:///run/redis/redis.sock", RedisAddr{Network: "unix", Address: "/run/redis/redis.sock"}, "unix:///run/redis/redis.sock"},
		{"unix://:pw@/r.sock?db=5", RedisAddr{Network: "unix", Address: "/r.sock", Password: "pw", DB: 5}, "unix:///r.sock?db=5"},
		{"unix://app:pw@/r.sock", RedisAddr{Network: "unix", Address: "/r.sock", User: "app", Password: "pw"}, "unix://app@/r.sock"},
	} {
		got, err := ParseRedisURL(c.in)
		if err != nil || got != c.want {
			t.Errorf("%s: got %+v, %v; want %+v", c.in, got, err, c.want)
			continue
		}
		if s := got.String(); s != c.str || strings.Contains(s, "s3cret") || strings.Contains(s, "pw") {
			t.Errorf("%s: String() = %s, want %s", c.in, s, c.str)
		}
	}
	for _, in := range []string{
		"rediss://:s3cret@h", "http://:s3cret@h", "redis://:s3cret@h/x", "redis://:s3cret@h/1?db=2",
		"redis://:s3cret@h?dial_timeout=1s", "unix://:s3cret@host/r.sock", "unix://:s3cret@", "redis://:s3cret@h/-1",
		"redis://:s3cret@h:port", "redis://:s3cret@%zz",
	} {
		_, err := ParseRedisURL(in)
		if err == nil {
			t.Errorf("%s: no error", in)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error shows the password: %v", in, err)
		}
	}
}

// An element is applied as the raw stream applies the same bytes: the same
// series, lines and rejections; a JSON event may span lines (the
// prom-stream-gateway README writes them so).
func TestApplyElementLikeRawStream(t *testing.T) {
	elements := []string{
		"{\n  \"type\": \"counter\",\n  \"name\": \"a_total\",\n  \"value\": 2\n}",
		`{"type":"counter","name":"a_total","value":3}`,
		"b 1\nc{x=\"y\"} 2\n",
		"bad line",
		"d 4\r\n# TYPE e gauge\ne 5",
		`{"type":"gauge","name":"g","value":"x"}`,
		"long{l=\"" + strings.Repeat("x", 300) + "\"} 1\nf 6",
		`{"type":"counter","name":"long_total","value":1,"help":"` + strings.Repeat("h", 300) + `"}`,
	}
	// The raw stream gets the elements as lines; a JSON event on one line.
	var stream strings.Builder
	for _, e := range elements {
		if strings.HasPrefix(e, "{") {
			e = strings.NewReplacer("\n", "", "  ", "").Replace(e)
		}
		stream.WriteString(strings.TrimSuffix(e, "\n") + "\n")
	}
	raw, rawCache, path := startServer(t, Options{MaxLineLength: 256})
	push(t, path, stream.String())

	c := cache.New(cache.Options{Budget: 64 << 10})
	s := NewServer(Options{Cache: c, MaxLineLength: 256})
	var st lineState
	for _, e := range elements {
		s.applyElement(&st, []byte(e))
	}
	if got, want := render(c), render(rawCache); got != want {
		t.Fatalf("cache from elements:\n%s\nfrom the raw stream:\n%s", got, want)
	}
	if !strings.Contains(render(c), "a_total{} 5") || !strings.Contains(render(c), "f{} 6") {
		t.Fatalf("elements not applied:\n%s", render(c))
	}
	if got, want := s.stats.Lines.Load(), raw.stats.Lines.Load(); got != want {
		t.Errorf("lines applied: %d from elements, %d from the raw stream", got, want)
	}
	for _, r := range Reasons {
		if got, want := s.stats.Rejected[r].Load(), raw.stats.Rejected[r].Load(); got != want {
			t.Errorf("rejected %s: %d from elements, %d from the raw stream", r, got, want)
		}
	}
	if s.stats.Rejected[ReasonTooLong].Load() != 2 || s.stats.Rejected[ReasonInvalidEvent].Load() != 1 {
		t.Errorf("too_long %d, invalid_event %d; want 2 and 1", s.stats.Rejected[ReasonTooLong].Load(), s.stats.Rejected[ReasonInvalidEvent].Load())
	}
}

// logBuffer is a concurrency-safe log sink.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runRedis runs a consumer of url's list until the test ends.
func runRedis(t *testing.T, url, key string) (*Redis, *cache.Cache, *logBuffer) {
	t.Helper()
	addr, err := ParseRedisURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := cache.New(cache.Options{Budget: 64 << 10})
	s := NewServer(Options{Cache: c})
	logs := new(logBuffer)
	r := s.NewRedis(RedisOptions{Addr: addr, Key: key, PopCount: 3,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() {
		start := time.Now()
		cancel()
		select {
		case <-done:
			// A blocking wait is cut short at once.
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Run took %v to return after the cancel", d)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return within 10s of the cancel")
		}
	})
	return r, c, logs
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 15s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Elements are taken oldest first (producers LPUSH): a gauge set by each in
// turn ends at the last one pushed. More than a pop count's worth.
func TestRedisOldestFirst(t *testing.T) {
	srv := redistest.Start(t)
	args := []string{"LPUSH", "q"}
	for i := 1; i <= 10; i++ {
		args = append(args, fmt.Sprintf("g %d\nn_total{i=\"%d\"} 1", i, i))
	}
	srv.Cli(args...)
	r, c, _ := runRedis(t, srv.URL(), "q")
	waitFor(t, "10 elements", func() bool { return r.Stats().Elements.Load() == 10 })
	if got := values(c); !strings.HasPrefix(got, "g 10\n") || strings.Count(got, "n_total") != 10 {
		t.Fatalf("got\n%s", got)
	}
	// Pushed while the consumer waits: taken within the blocking wait.
	srv.Cli("LPUSH", "q", "g 11")
	waitFor(t, "the 11th element", func() bool { return strings.HasPrefix(values(c), "g 11\n") })
	if n := srv.Cli("LLEN", "q"); n != "0" {
		t.Fatalf("LLEN q = %s after the consumer took all", n)
	}
	if e := r.Stats().Errors.Load(); e != 0 {
		t.Fatalf("%d errors", e)
	}
}

// Errors of every kind are counted, logged once per outage, retried, and
// consuming resumes once the cause is gone.
func TestRedisErrorsRetried(t *testing.T) {
	srv := redistest.Start(t, "--requirepass", "s3cret")
	// A wrong password: WRONGPASS at AUTH; no password at all: NOAUTH at RPOP.
	for _, url := range []string{"redis://:wrong@127.0.0.1:%d", "redis://127.0.0.1:%d"} {
		r, _, logs := runRedis(t, fmt.Sprintf(url, srv.Port), "q")
		waitFor(t, "3 errors", func() bool { return r.Stats().Errors.Load() >= 3 })
		if n := strings.Count(logs.String(), "unavailable"); n != 1 {
			t.Fatalf("%s: %d warnings for one outage, want 1:\n%s", url, n, logs)
		}
		if !strings.Contains(logs.String(), "NOAUTH") && !strings.Contains(logs.String(), "WRONGPASS") {
			t.Fatalf("%s: the warning does not say why:\n%s", url, logs)
		}
		if strings.Contains(logs.String(), "s3cret") || strings.Contains(logs.String(), "wrong@") {
			t.Fatalf("%s: the log shows the password:\n%s", url, logs)
		}
	}

	// WRONGTYPE: the key holds a string, then becomes a list.
	srv.Login("--pass", "s3cret")
	srv.Cli("SET", "q", "not a list")
	r, c, logs := runRedis(t, fmt.Sprintf("redis://:s3cret@127.0.0.1:%d", srv.Port), "q")
	waitFor(t, "an error", func() bool { return r.Stats().Errors.Load() >= 1 })
	srv.Cli("DEL", "q")
	srv.Cli("LPUSH", "q", "after_wrongtype 1")
	waitFor(t, "the element after WRONGTYPE", func() bool { return values(c) == "after_wrongtype 1\n" })
	// Recovered once a blocking wait has worked too: within its second.
	waitFor(t, "the recovery", func() bool { return strings.Contains(logs.String(), "reachable again") })
	if l := logs.String(); !strings.Contains(l, "WRONGTYPE") || strings.Count(l, "unavailable") != 1 || strings.Count(l, "reachable again") != 1 {
		t.Fatalf("want one warning with WRONGTYPE and one recovery:\n%s", l)
	}

	// Killed while consuming, then back.
	errs := r.Stats().Errors.Load()
	srv.Kill()
	waitFor(t, "errors while Redis is down", func() bool { return r.Stats().Errors.Load() >= errs+2 })
	srv.StartOn(srv.Port)
	srv.Cli("LPUSH", "q", "after_restart 1")
	waitFor(t, "the element after the restart", func() bool { return strings.Contains(values(c), "after_restart 1") })
	waitFor(t, "the second recovery", func() bool { return strings.Count(logs.String(), "reachable again") == 2 })
	if l := logs.String(); strings.Count(l, "unavailable") != 2 || strings.Count(l, "reachable again") != 2 {
		t.Fatalf("want two warnings and two recoveries:\n%s", l)
	}
}

// A read-only replica answers READONLY to RPOP: retried until it is
// promoted.
func TestRedisReadOnlyReplica(t *testing.T) {
	primary := redistest.Start(t)
	replica := redistest.Start(t, "--replicaof", "127.0.0.1", fmt.Sprint(primary.Port))
	primary.Cli("LPUSH", "q", "on_replica 1")
	waitFor(t, "replication", func() bool { return replica.Cli("LLEN", "q") == "1" })
	r, c, logs := runRedis(t, replica.URL(), "q")
	waitFor(t, "2 errors", func() bool { return r.Stats().Errors.Load() >= 2 })
	if !strings.Contains(logs.String(), "READONLY") || values(c) != "" {
		t.Fatalf("want READONLY and nothing applied; cache %q, log:\n%s", values(c), logs)
	}
	replica.Cli("REPLICAOF", "NO", "ONE")
	waitFor(t, "the element once promoted", func() bool { return values(c) == "on_replica 1\n" })
}

// The database and the Unix socket of the URL are used.
func TestRedisUnixSocketAndDB(t *testing.T) {
	srv := redistest.Start(t)
	srv.Cli("-n", "3", "LPUSH", "q", "in_db3 1")
	srv.Cli("LPUSH", "q", "in_db0 1")
	r, c, _ := runRedis(t, "unix://"+srv.Socket+"?db=3", "q")
	waitFor(t, "one element", func() bool { return r.Stats().Elements.Load() == 1 })
	if got := values(c); got != "in_db3 1\n" {
		t.Fatalf("got %q", got)
	}
}

// fakeRedis answers like Redis before 6.2: RPOP takes no count, BLMOVE is
// unknown. It serves one connection and records the commands.
func fakeRedis(t *testing.T, list []string) (string, func() []string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var mu sync.Mutex
	var seen []string
	go func() {
		nc, err := l.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		c := resp.NewConn(nc, 1<<10)
		for {
			h, err := c.Next()
			if err != nil || h.Kind != resp.Array {
				return
			}
			var args []string
			for range h.Int {
				a, err := c.Next()
				if err != nil {
					return
				}
				args = append(args, string(a.Str))
			}
			mu.Lock()
			seen = append(seen, strings.Join(args, " "))
			mu.Unlock()
			var out string
			switch {
			case args[0] == "RPOP" && len(args) == 2 && len(list) > 0:
				out = fmt.Sprintf("$%d\r\n%s\r\n", len(list[len(list)-1]), list[len(list)-1])
				list = list[:len(list)-1]
			case args[0] == "RPOP" && len(args) == 2:
				out = "$-1\r\n"
			case args[0] == "RPOP":
				out = "-ERR wrong number of arguments for 'rpop' command\r\n"
			case args[0] == "BLMOVE":
				out = "-ERR unknown command 'BLMOVE'\r\n"
			case args[0] == "BRPOP":
				time.Sleep(50 * time.Millisecond)
				out = "*-1\r\n"
			}
			nc.Write([]byte(out))
		}
	}()
	return l.Addr().String(), func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), seen...) }
}

func TestRedisBefore62(t *testing.T) {
	addr, seen := fakeRedis(t, []string{"g 5", "g 4", "g 3", "g 2", "g 1"})
	r, c, _ := runRedis(t, "redis://"+addr, "q")
	waitFor(t, "5 elements and a BRPOP", func() bool {
		s := seen()
		return r.Stats().Elements.Load() == 5 && len(s) > 0 && s[len(s)-1] == "BRPOP q 1"
	})
	if got := values(c); got != "g 5\n" {
		t.Fatalf("got %q, want the last pushed", got)
	}
	if e := r.Stats().Errors.Load(); e != 0 {
		t.Fatalf("%d errors against an old Redis", e)
	}
}

// replayConn answers every read with reply, again and again, and drops
// what is written.
type replayConn struct {
	net.Conn
	reply []byte
	off   int
}

func (c *replayConn) Read(b []byte) (int, error) {
	n := copy(b, c.reply[c.off:])
	c.off = (c.off + n) % len(c.reply)
	return n, nil
}
func (c *replayConn) Write(b []byte) (int, error)      { return len(b), nil }
func (c *replayConn) SetDeadline(time.Time) error      { return nil }
func (c *replayConn) SetReadDeadline(time.Time) error  { return nil }
func (c *replayConn) SetWriteDeadline(time.Time) error { return nil }

// Taking and applying elements that update existing series allocates
// nothing: the command, the reply buffer and the parsers are reused.
func TestRedisPopAllocatesNothing(t *testing.T) {
	elems := []string{
		`{"type":"counter","name":"http_requests_total","value":1,"labels":{"method":"GET","status":"200"}}`,
		`{"type":"histogram","name":"d_seconds","value":0.7,"buckets":[0.1,0.5,1]}`,
		"temp{sensor=\"a\"} 21.5\nup 1",
	}
	reply := fmt.Appendf(nil, "*%d\r\n", len(elems))
	for _, e := range elems {
		reply = fmt.Appendf(reply, "$%d\r\n%s\r\n", len(e), e)
	}
	c := cache.New(cache.Options{Budget: 64 << 10})
	s := NewServer(Options{Cache: c})
	r := s.NewRedis(RedisOptions{PopCount: 25})
	conn := resp.NewConn(&replayConn{reply: reply}, r.maxElement())
	pop := func() {
		if n, err := r.pop(conn, "25"); n != len(elems) || err != nil {
			t.Fatalf("pop: %d, %v", n, err)
		}
	}
	pop() // the series are created, the buffers grow
	if a := testing.AllocsPerRun(200, pop); a != 0 {
		t.Fatalf("%v allocations per request", a)
	}
	// AllocsPerRun runs the function once more to warm up.
	if s.stats.Lines.Load() != 202*4 || len(s.stats.Rejected) == 0 || sumRejected(s) != 0 {
		t.Fatalf("lines %d, rejected %d", s.stats.Lines.Load(), sumRejected(s))
	}
}

func sumRejected(s *Server) (n uint64) {
	for _, r := range s.stats.Rejected {
		n += r.Load()
	}
	return n
}

// stubRedis accepts connections and answers every command read with
// answer (nothing when empty), counting the connections.
func stubRedis(t *testing.T, answer string) (url string, conns *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var mu sync.Mutex
	n := new(atomic.Int64)
	var open []net.Conn
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range open {
			c.Close()
		}
	})
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			n.Inc()
			mu.Lock()
			open = append(open, nc)
			mu.Unlock()
			go func() {
				c := resp.NewConn(nc, 1<<10)
				for {
					h, err := c.Next()
					if err != nil || c.Discard(h.Int) != nil {
						return
					}
					if answer != "" {
						nc.Write([]byte(answer))
					}
				}
			}()
		}
	}()
	return "redis://" + l.Addr().String(), n
}

// A server that accepts and never answers, and one that answers garbage:
// each exchange ends at its deadline or at the bad byte, is counted, and the
// consumer connects again.
func TestRedisHungAndGarbage(t *testing.T) {
	for _, tc := range []struct{ name, answer, logged string }{
		{"hung", "", "i/o timeout"},
		{"garbage", "HTTP/1.1 400 Bad Request\r\n\r\n", "protocol error"},
		{"huge array", "*100\r\n", "100 elements for a count of 3"},
		{"bulk not element", ":1\r\n", "unexpected reply"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, conns := stubRedis(t, tc.answer)
			addr, _ := ParseRedisURL(url)
			s := NewServer(Options{Cache: cache.New(cache.Options{Budget: 64 << 10})})
			logs := new(logBuffer)
			r := s.NewRedis(RedisOptions{Addr: addr, Key: "q", PopCount: 3, IOTimeout: 100 * time.Millisecond,
				Logger: slog.New(slog.NewTextHandler(logs, nil))})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { r.Run(ctx); close(done) }()
			waitFor(t, "2 errors", func() bool { return r.Stats().Errors.Load() >= 2 })
			cancel()
			<-done
			if !strings.Contains(logs.String(), tc.logged) || strings.Count(logs.String(), "unavailable") != 1 {
				t.Errorf("want one warning with %q:\n%s", tc.logged, logs)
			}
			if conns.Load() < 2 {
				t.Errorf("%d connections, want a new one after each failure", conns.Load())
			}
		})
	}
}

// At shutdown, an exchange that takes elements gets a second to finish,
// not the whole IOTimeout, and a blocking wait is cut short at once.
func TestRedisShutdownWhileHung(t *testing.T) {
	url, conns := stubRedis(t, "")
	addr, _ := ParseRedisURL(url)
	s := NewServer(Options{Cache: cache.New(cache.Options{Budget: 64 << 10})})
	r := s.NewRedis(RedisOptions{Addr: addr, Key: "q", IOTimeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	waitFor(t, "a connection", func() bool { return conns.Load() == 1 })
	time.Sleep(50 * time.Millisecond) // the RPOP is sent and unanswered
	start := time.Now()
	cancel()
	select {
	case <-done:
		if d := time.Since(start); d < shutdownGrace/2 {
			t.Errorf("Run returned %v after the cancel: the exchange under way got no grace", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run still blocked 10s after the cancel, with an IOTimeout of a minute")
	}
	if e := r.Stats().Errors.Load(); e != 0 {
		t.Errorf("%d errors counted for a shutdown", e)
	}
}

// An ACL user that may RPOP but not BLMOVE: the elements are still taken
// (one round per backoff), and it is one outage in the log, not a recovery
// and a failure every round.
func TestRedisNoBlockingRight(t *testing.T) {
	srv := redistest.Start(t)
	srv.Cli("ACL", "SETUSER", "popper", "on", ">pw", "~q", "+rpop")
	srv.Cli("LPUSH", "q", "first 1")
	r, c, logs := runRedis(t, fmt.Sprintf("redis://popper:pw@127.0.0.1:%d", srv.Port), "q")
	waitFor(t, "3 errors", func() bool { return r.Stats().Errors.Load() >= 3 })
	srv.Cli("LPUSH", "q", "second 2")
	waitFor(t, "the second element", func() bool { return strings.Contains(values(c), "second 2") })
	l := logs.String()
	if !strings.Contains(l, "NOPERM") || strings.Count(l, "unavailable") != 1 || strings.Contains(l, "reachable again") {
		t.Fatalf("want one warning with NOPERM and no recovery:\n%s", l)
	}
}
