package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/atomic"

	"github.com/push-gateway/push-gateway/ingest/resp"
)

// The Redis list input: elements that producers LPUSH onto a list (the
// prom-stream-gateway's queue) are taken from its other end, oldest first,
// and applied as the raw stream applies lines.

// DefaultRedisKey and DefaultRedisPopCount are the prom-stream-gateway's
// defaults (Redis.MetricQueueKey, Redis.MetricQueuePopCount).
const (
	DefaultRedisKey      = "prom-stream-gateway:metric-queue"
	DefaultRedisPopCount = 25
)

// RedisAddr is where a Redis server is and how to log in, as read from a
// URL by ParseRedisURL.
type RedisAddr struct {
	Network  string // tcp or unix
	Address  string // host:port or socket path
	User     string // empty: AUTH with the password alone (requirepass)
	Password string // empty: no AUTH
	DB       int
}

// String returns the address as a URL without the password, for logs.
func (a RedisAddr) String() string {
	u := url.URL{Scheme: "redis", Host: a.Address}
	if a.Network == "unix" {
		u = url.URL{Scheme: "unix", Path: a.Address}
	}
	if a.User != "" {
		u.User = url.User(a.User)
	}
	if a.DB != 0 {
		if a.Network == "unix" {
			u.RawQuery = "db=" + strconv.Itoa(a.DB)
		} else {
			u.Path = "/" + strconv.Itoa(a.DB)
		}
	}
	return u.String()
}

// ParseRedisURL reads the URL forms that go-redis reads:
//
//	redis://[[user]:password@]host[:port][/db]
//	unix://[[user]:password@]/path/to/redis.sock[?db=N]
//
// Its errors never quote the URL, which may hold a password.
func ParseRedisURL(raw string) (RedisAddr, error) {
	var a RedisAddr
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole URL, password included.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return a, fmt.Errorf("not a URL: %v", err)
	}
	if u.User != nil {
		a.User = u.User.Username()
		a.Password, _ = u.User.Password()
	}
	q := u.Query()
	for k := range q {
		if k != "db" {
			return a, fmt.Errorf("option %q is not supported (only db)", k)
		}
	}
	db := q.Get("db")
	switch u.Scheme {
	case "redis":
		a.Network = "tcp"
		host, port := u.Hostname(), u.Port()
		if host == "" {
			host = "localhost"
		}
		if port == "" {
			port = "6379"
		}
		a.Address = net.JoinHostPort(host, port)
		if p := strings.Trim(u.Path, "/"); p != "" {
			if db != "" {
				return a, errors.New("database given twice, in the path and in ?db=")
			}
			db = p
		}
	case "unix":
		a.Network = "unix"
		if u.Path == "" || u.Host != "" {
			return a, errors.New("unix:// wants an absolute socket path: unix:///path/to/redis.sock")
		}
		a.Address = u.Path
	case "rediss":
		return a, errors.New("rediss:// (TLS) is not supported: use redis:// or unix://")
	default:
		return a, errors.New("the scheme is not redis:// or unix://")
	}
	if db != "" {
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 {
			return a, errors.New("the database is not a number")
		}
		a.DB = n
	}
	return a, nil
}

// RedisOptions configure a Redis list consumer.
type RedisOptions struct {
	Addr     RedisAddr
	Key      string // the list; empty means DefaultRedisKey
	PopCount int    // elements per request; 0 means DefaultRedisPopCount
	// IOTimeout bounds the connection and every exchange (a blocking wait
	// gets it on top of its second); 0 means DefaultRedisIOTimeout.
	IOTimeout time.Duration
	Logger    *slog.Logger
}

// RedisStats are the counters of a Redis consumer.
type RedisStats struct {
	Elements atomic.Uint64 // elements taken from the list
	Errors   atomic.Uint64 // failed connections and commands
}

// Redis takes elements from a Redis list and applies them through its
// Server, as lines of the raw stream are: the same parsers, limits, reasons
// and counters. Create it with Server.NewRedis; Run runs it.
type Redis struct {
	stats RedisStats
	o     RedisOptions
	s     *Server
	st    lineState
	// legacy is set once the server has refused RPOP with a count or
	// BLMOVE (Redis before 6.2): then it gets single RPOPs, pipelined,
	// and BRPOP.
	legacy bool

	mu      sync.Mutex // guards conn, waiting and the deadline of conn
	conn    net.Conn   // the session's connection, nil between sessions
	waiting bool       // conn is blocked in BLMOVE or BRPOP
}

// NewRedis returns a consumer of the list in o that applies its elements
// through s.
func (s *Server) NewRedis(o RedisOptions) *Redis {
	if o.Key == "" {
		o.Key = DefaultRedisKey
	}
	if o.PopCount <= 0 {
		o.PopCount = DefaultRedisPopCount
	}
	if o.IOTimeout <= 0 {
		o.IOTimeout = DefaultRedisIOTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Redis{o: o, s: s}
}

// Stats returns the consumer's counters.
func (r *Redis) Stats() *RedisStats { return &r.stats }

// DefaultRedisIOTimeout is the default of RedisOptions.IOTimeout.
const DefaultRedisIOTimeout = 5 * time.Second

// Timing of the consumer. A blocking wait lasts blockSeconds; at shutdown
// it is cut short at once, since it takes nothing, while an exchange that
// takes elements gets shutdownGrace to finish.
const (
	blockSeconds  = 1
	shutdownGrace = time.Second
	minBackoff    = 100 * time.Millisecond
	maxBackoff    = 5 * time.Second
)

// maxElement is the longest element kept: a JSON event is one line and is
// held to --ingest.max-line-length like one; an element of text lines may
// be longer, each of its lines held to the limit. A longer element is read
// and thrown away (too_long), never held.
func (r *Redis) maxElement() int { return max(r.s.o.MaxLineLength, 64<<10) }

// Run consumes the list until ctx ends. A Redis that is down, refuses the
// login or answers with an error is retried with a backoff from 100 ms
// doubling to 5 s; each failure is counted, the first of an outage logged
// as a warning and the recovery as info. When ctx ends, the elements
// already taken are applied before Run returns.
func (r *Redis) Run(ctx context.Context) {
	log := r.o.Logger.With("redis", r.o.Addr.String(), "key", r.o.Key)
	log.Info("consuming Redis list")
	backoff := minBackoff
	down := false
	for {
		err := r.session(ctx, func() {
			backoff = minBackoff
			if down {
				down = false
				log.Info("Redis list reachable again")
			}
		})
		if ctx.Err() != nil {
			return
		}
		r.stats.Errors.Inc()
		if !down {
			down = true
			log.Warn("Redis list unavailable, retrying with backoff", "err", err)
		} else {
			log.Debug("Redis list still unavailable", "err", err, "retry_in", backoff)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// session connects, logs in and consumes until an error or the end of ctx,
// calling ok after each round that succeeded.
func (r *Redis) session(ctx context.Context, ok func()) error {
	a := r.o.Addr
	d := net.Dialer{Timeout: r.o.IOTimeout}
	nc, err := d.DialContext(ctx, a.Network, a.Address)
	if err != nil {
		return err
	}
	c := resp.NewConn(nc, r.maxElement())
	r.mu.Lock()
	r.conn = nc
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.conn, r.waiting = nil, false
		r.mu.Unlock()
		c.Close()
	}()
	stop := context.AfterFunc(ctx, func() {
		r.mu.Lock()
		if r.conn != nil {
			r.conn.SetDeadline(r.shutdownDeadline())
		}
		r.mu.Unlock()
	})
	defer stop()

	r.arm(ctx, false)
	if a.Password != "" {
		args := []string{"AUTH", a.Password}
		if a.User != "" {
			args = []string{"AUTH", a.User, a.Password}
		}
		if _, err := c.Do(args...); err != nil {
			return fmt.Errorf("AUTH: %w", err)
		}
	}
	if a.DB != 0 {
		if _, err := c.Do("SELECT", strconv.Itoa(a.DB)); err != nil {
			return fmt.Errorf("SELECT: %w", err)
		}
	}
	count := strconv.Itoa(r.o.PopCount)
	for ctx.Err() == nil {
		r.arm(ctx, false)
		n, err := r.pop(c, count)
		if err != nil {
			return err
		}
		if n == r.o.PopCount {
			ok()
			continue // there may be more
		}
		// Recovered only once the wait works too: a server that takes
		// RPOP but refuses BLMOVE (an ACL without it) is one outage,
		// not a recovery and a failure every round.
		r.arm(ctx, true)
		if err := r.wait(c); err != nil {
			return err
		}
		ok()
	}
	return nil
}

// arm sets the deadline of the next exchange, a blocking wait or not. Once
// ctx has ended (the AfterFunc may have run before), it is the shutdown's.
func (r *Redis) arm(ctx context.Context, waiting bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waiting = waiting
	switch {
	case ctx.Err() != nil:
		r.conn.SetDeadline(r.shutdownDeadline())
	case waiting:
		r.conn.SetDeadline(time.Now().Add(blockSeconds*time.Second + r.o.IOTimeout))
	default:
		r.conn.SetDeadline(time.Now().Add(r.o.IOTimeout))
	}
}

// shutdownDeadline cuts a blocking wait short at once: it takes nothing.
// An exchange that may take elements gets shutdownGrace to finish, so that
// what Redis has taken for it arrives and is applied. Called with mu held.
func (r *Redis) shutdownDeadline() time.Time {
	if r.waiting {
		return time.Now()
	}
	return time.Now().Add(min(shutdownGrace, r.o.IOTimeout))
}

// pop takes up to PopCount elements from the list's right end, the oldest,
// and applies them. It returns how many it took.
func (r *Redis) pop(c *resp.Conn, count string) (int, error) {
	if r.legacy {
		return r.popLegacy(c)
	}
	if err := c.Send("RPOP", r.o.Key, count); err != nil {
		return 0, err
	}
	rep, err := c.Next()
	switch {
	case err != nil:
		return 0, err
	case rep.Kind == resp.Error:
		if refusesArgs(rep.Str) {
			// Redis before 6.2: RPOP takes no count.
			r.legacy = true
			r.o.Logger.Info("Redis has no RPOP with a count (before 6.2): taking elements one by one, pipelined")
			return r.popLegacy(c)
		}
		return 0, resp.ServerError(rep.Str)
	case rep.Kind != resp.Array && !rep.Nil:
		return 0, fmt.Errorf("RPOP: unexpected reply of type %q", rep.Kind)
	case rep.Nil:
		return 0, nil
	case rep.Int > int64(r.o.PopCount):
		return 0, fmt.Errorf("RPOP: %d elements for a count of %d", rep.Int, r.o.PopCount)
	}
	for i := range rep.Int {
		if err := r.element(c); err != nil {
			return int(i), err
		}
	}
	return int(rep.Int), nil
}

// element reads one bulk string and applies it.
func (r *Redis) element(c *resp.Conn) error {
	e, err := c.Next()
	if err != nil {
		return err
	}
	switch {
	case e.Kind != resp.Bulk:
		return fmt.Errorf("unexpected reply of type %q for an element", e.Kind)
	case e.Nil:
		return nil
	}
	r.stats.Elements.Inc()
	if e.Skipped > 0 {
		r.s.reject(ReasonTooLong, nil)
		return nil
	}
	r.s.applyElement(&r.st, e.Str)
	return nil
}

// popLegacy sends PopCount single RPOPs at once and applies what they take.
func (r *Redis) popLegacy(c *resp.Conn) (int, error) {
	if err := c.SendRepeated(r.o.PopCount, "RPOP", r.o.Key); err != nil {
		return 0, err
	}
	n := 0
	var first error
	for range r.o.PopCount {
		e, err := c.Next()
		switch {
		case err != nil:
			return n, err
		case e.Kind == resp.Error:
			if first == nil {
				first = resp.ServerError(e.Str)
			}
		case e.Kind != resp.Bulk:
			return n, fmt.Errorf("RPOP: unexpected reply of type %q", e.Kind)
		case !e.Nil:
			n++
			r.stats.Elements.Inc()
			if e.Skipped > 0 {
				r.s.reject(ReasonTooLong, nil)
			} else {
				r.s.applyElement(&r.st, e.Str)
			}
		}
	}
	return n, first
}

// wait blocks until the list has an element or blockSeconds pass.
//
// BLMOVE from the list's right end to its right end moves nothing: it only
// wakes when an element is there, which the next RPOP takes. So a
// connection that breaks during the wait, or a Redis that stops then,
// loses no element; only the replies of RPOP itself can be lost in flight.
// Before Redis 6.2, BRPOP takes the element: it is applied here.
func (r *Redis) wait(c *resp.Conn) error {
	timeout := strconv.Itoa(blockSeconds)
	if r.legacy {
		return r.waitLegacy(c, timeout)
	}
	if err := c.Send("BLMOVE", r.o.Key, r.o.Key, "RIGHT", "RIGHT", timeout); err != nil {
		return err
	}
	rep, err := c.Next()
	switch {
	case err != nil:
		return err
	case rep.Kind == resp.Error:
		if refusesArgs(rep.Str) {
			r.legacy = true
			return r.waitLegacy(c, timeout)
		}
		return resp.ServerError(rep.Str)
	case rep.Kind == resp.Array:
		// A nil array on timeout (RESP2), or something odd.
		if !rep.Nil {
			return fmt.Errorf("BLMOVE: unexpected array reply")
		}
		return nil
	case rep.Kind != resp.Bulk:
		return fmt.Errorf("BLMOVE: unexpected reply of type %q", rep.Kind)
	}
	return nil
}

func (r *Redis) waitLegacy(c *resp.Conn, timeout string) error {
	if err := c.Send("BRPOP", r.o.Key, timeout); err != nil {
		return err
	}
	rep, err := c.Next()
	switch {
	case err != nil:
		return err
	case rep.Kind == resp.Error:
		return resp.ServerError(rep.Str)
	case rep.Kind != resp.Array:
		return fmt.Errorf("BRPOP: unexpected reply of type %q", rep.Kind)
	case rep.Nil:
		return nil
	case rep.Int != 2:
		return fmt.Errorf("BRPOP: %d values in the reply, want 2", rep.Int)
	}
	if key, err := c.Next(); err != nil {
		return err
	} else if key.Kind != resp.Bulk {
		return fmt.Errorf("BRPOP: unexpected reply of type %q for the key", key.Kind)
	}
	return r.element(c)
}

// refusesArgs tells an error reply that means the server does not know the
// command or the form used: an older Redis.
func refusesArgs(msg []byte) bool {
	s := string(msg)
	return strings.HasPrefix(s, "ERR unknown command") || strings.HasPrefix(s, "ERR wrong number of arguments")
}

// applyElement applies one element of the list: a JSON event (whose first
// non-blank byte is {; it may span lines, as the prom-stream-gateway's
// examples do), or one or more text lines, each applied as a line of the
// raw stream.
func (s *Server) applyElement(st *lineState, elem []byte) {
	i := 0
	for i < len(elem) && (elem[i] == ' ' || elem[i] == '\t' || elem[i] == '\r' || elem[i] == '\n') {
		i++
	}
	limit := s.o.MaxLineLength
	if i < len(elem) && elem[i] == '{' {
		if len(elem)-i > limit {
			s.reject(ReasonTooLong, nil)
			return
		}
		b := s.o.Cache.Begin()
		s.apply(b, st, elem[i:])
		b.End()
		return
	}
	b := s.o.Cache.Begin()
	for len(elem) > 0 {
		line := elem
		if j := bytes.IndexByte(elem, '\n'); j >= 0 {
			line, elem = elem[:j], elem[j+1:]
		} else {
			elem = nil
		}
		if len(line) > limit {
			s.reject(ReasonTooLong, nil)
			continue
		}
		s.apply(b, st, line)
	}
	b.End()
}
