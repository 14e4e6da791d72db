package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// attackStats count what the hostile clients did and what the daemon did to
// them.
type attackStats struct {
	floodLines    atomic.Int64 // never-seen series written
	floodBytes    atomic.Int64
	floodRedials  atomic.Int64
	endlessBytes  atomic.Int64
	endlessClosed atomic.Int64 // the daemon closed the endless line's connection

	idleDials    atomic.Int64
	idleDialErrs atomic.Int64
	idleRefused  atomic.Int64 // closed by the daemon well before the idle timeout: refused at accept
	idleReaped   atomic.Int64 // closed by the daemon after about the idle timeout
	idleMinLife  atomic.Int64 // ns, of the reaped ones
	idleMaxLife  atomic.Int64

	lorisBytes   atomic.Int64
	lorisClosed  atomic.Int64 // slow-loris connections the daemon closed
	lorisRefused atomic.Int64 // ... within a second of the dial: refused at accept

	hugeTries     atomic.Int64
	huge413       atomic.Int64
	hugeOther     atomic.Int64 // a status other than 413
	hugeNoResp    atomic.Int64 // closed without a response (refused at accept)
	bombTries     atomic.Int64
	bomb413       atomic.Int64
	bombOther     atomic.Int64
	bombNoResp    atomic.Int64
	otherCodes    sync.Map // status code -> *atomic.Int64, for huge and bomb
	slowOpenAtEnd atomic.Int64
	slowCut       atomic.Int64 // slow-header connections the daemon closed
	slowRefused   atomic.Int64
	slowMaxLife   atomic.Int64 // ns
}

func storeMax(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

func storeMin(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if (old != 0 && v >= old) || a.CompareAndSwap(old, v) {
			return
		}
	}
}

// connSet holds every connection the storm opened, so that the end of the
// storm can close them all and unblock every read and write.
type connSet struct {
	mu     sync.Mutex
	m      map[net.Conn]struct{}
	closed bool
}

func (s *connSet) add(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return false
	}
	if s.m == nil {
		s.m = map[net.Conn]struct{}{}
	}
	s.m[c] = struct{}{}
	return true
}

func (s *connSet) remove(c net.Conn) {
	s.mu.Lock()
	delete(s.m, c)
	s.mu.Unlock()
	c.Close()
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c := range s.m {
		c.Close()
	}
	s.m = nil
}

// storm is the shared state of one run.
type storm struct {
	cfg   *config
	sock  string
	ctx   context.Context // ends with the storm
	end   time.Time
	conns connSet
	wg    sync.WaitGroup
	a     attackStats
}

// goRun runs f in a goroutine that the end of the storm waits for.
func (s *storm) goRun(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// sleep waits d or until the storm ends; false means it ended.
func (s *storm) sleep(d time.Duration) bool {
	if d <= 0 {
		return s.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-s.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// dial connects to the push socket and registers the connection.
func (s *storm) dial() (net.Conn, error) {
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(s.ctx, "unix", s.sock)
	if err != nil {
		return nil, err
	}
	if !s.conns.add(c) {
		return nil, net.ErrClosed
	}
	return c, nil
}

// watchClose starts a reader of c and returns a channel closed when the
// read ends: the daemon never writes on a raw stream, so that is when the
// connection was closed (by the daemon, or by the end of the storm).
func (s *storm) watchClose(c net.Conn) <-chan struct{} {
	done := make(chan struct{})
	s.goRun(func() {
		defer close(done)
		var b [512]byte
		for {
			if _, err := c.Read(b[:]); err != nil {
				return
			}
		}
	})
	return done
}

func jitter(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rand.Int64N(int64(hi-lo)+1))
}

// flood writes never-seen series on one connection, at rate lines per
// second (0: as fast as the daemon reads). Each line is a new series of the
// family storm_flood; every 64th is a new family of its own.
func (s *storm) flood(conn int, rate float64) {
	const maxBatch = 2000
	var buf []byte
	var id int64
	start := time.Now()
	var sent float64
	c, err := s.dial()
	for s.ctx.Err() == nil {
		if err != nil {
			s.a.floodRedials.Add(1)
			if !s.sleep(100 * time.Millisecond) {
				return
			}
			c, err = s.dial()
			continue
		}
		n := maxBatch / 2
		if rate > 0 {
			due := rate*time.Since(start).Seconds() - sent
			if lag := max(rate/10, 1); due > lag {
				// Behind by more than 100 ms of flood (the daemon or the
				// tool stalled): no burst to catch up, so that the flood
				// never writes more than its rate in any 100 ms.
				sent += due - lag
				due = lag
			}
			if due < 1 {
				if !s.sleep(5 * time.Millisecond) {
					return
				}
				continue
			}
			n = min(int(due), maxBatch)
		}
		buf = buf[:0]
		for range n {
			id++
			if id%64 == 0 {
				buf = append(buf, "storm_flood_"...)
				buf = strconv.AppendInt(buf, int64(conn), 10)
				buf = append(buf, '_')
				buf = strconv.AppendInt(buf, id, 10)
				buf = append(buf, " 1\n"...)
				continue
			}
			buf = append(buf, `storm_flood{c="`...)
			buf = strconv.AppendInt(buf, int64(conn), 10)
			buf = append(buf, `",id="`...)
			buf = strconv.AppendInt(buf, id, 10)
			buf = append(buf, `",pad="abcdefghijklmnopqrstuvwxyz"} `...)
			buf = strconv.AppendInt(buf, id, 10)
			buf = append(buf, '\n')
		}
		c.SetWriteDeadline(s.end.Add(time.Second))
		if _, err = c.Write(buf); err != nil {
			s.conns.remove(c)
			continue
		}
		sent += float64(n)
		s.a.floodLines.Add(int64(n))
		s.a.floodBytes.Add(int64(len(buf)))
	}
	if c != nil && err == nil {
		s.conns.remove(c)
	}
}

// endless writes one line that never ends, as fast as it can.
func (s *storm) endless() {
	chunk := bytes.Repeat([]byte("a"), 64<<10)
	for s.ctx.Err() == nil {
		c, err := s.dial()
		if err != nil {
			if !s.sleep(100 * time.Millisecond) {
				return
			}
			continue
		}
		c.SetWriteDeadline(s.end.Add(time.Second))
		if _, err := c.Write([]byte(`storm_endless{x="`)); err == nil {
			for s.ctx.Err() == nil {
				n, err := c.Write(chunk)
				s.a.endlessBytes.Add(int64(n))
				if err != nil {
					break
				}
			}
		}
		s.conns.remove(c)
		if s.ctx.Err() == nil {
			s.a.endlessClosed.Add(1)
		}
	}
}

// idleConn holds one connection that sends nothing; when the daemon closes
// it (at accept when over the limit, or after the idle timeout) it dials
// again -redial-min to -redial-max later.
func (s *storm) idleConn() {
	for s.ctx.Err() == nil {
		s.a.idleDials.Add(1)
		c, err := s.dial()
		if err != nil {
			if s.ctx.Err() == nil {
				s.a.idleDialErrs.Add(1)
			}
			if !s.sleep(jitter(s.cfg.redialMin, s.cfg.redialMax)) {
				return
			}
			continue
		}
		t0 := time.Now()
		var b [1]byte
		c.Read(b[:]) // returns when the connection is closed
		s.conns.remove(c)
		if s.ctx.Err() != nil {
			return
		}
		life := time.Since(t0)
		if life < s.cfg.idleTimeout/2 {
			s.a.idleRefused.Add(1)
		} else {
			s.a.idleReaped.Add(1)
			storeMin(&s.a.idleMinLife, int64(life))
			storeMax(&s.a.idleMaxLife, int64(life))
		}
		if !s.sleep(jitter(s.cfg.redialMin, s.cfg.redialMax)) {
			return
		}
	}
}

// loris writes a valid line one byte per second. A fat loris first sends
// prefix bytes of a line without its end, so that the daemon buffers them.
func (s *storm) loris(i int, prefix int) {
	for s.ctx.Err() == nil {
		c, err := s.dial()
		if err != nil {
			if !s.sleep(time.Second) {
				return
			}
			continue
		}
		t0 := time.Now()
		closed := s.watchClose(c)
		line := []byte(fmt.Sprintf("storm_loris{c=\"%d\"} 1\n", i))
		c.SetWriteDeadline(s.end.Add(time.Second))
		if prefix > 0 {
			big := append([]byte(fmt.Sprintf("storm_fat_loris{c=\"%d\",pad=\"", i)), bytes.Repeat([]byte("p"), prefix)...)
			n, _ := c.Write(big)
			s.a.lorisBytes.Add(int64(n))
			line = []byte("pppp")
		}
		t := time.NewTicker(time.Second)
	write:
		for j := 0; ; j++ {
			select {
			case <-s.ctx.Done():
				break write
			case <-closed:
				break write
			case <-t.C:
				if _, err := c.Write(line[j%len(line) : j%len(line)+1]); err != nil {
					break write
				}
				s.a.lorisBytes.Add(1)
			}
		}
		t.Stop()
		s.conns.remove(c)
		<-closed
		if s.ctx.Err() != nil {
			return
		}
		s.a.lorisClosed.Add(1)
		if time.Since(t0) < time.Second {
			s.a.lorisRefused.Add(1)
		}
		if !s.sleep(time.Second) {
			return
		}
	}
}

// httpExchange sends an HTTP request on a new socket connection (head, then
// body written by a goroutine) and reads the answer, so that an early 413
// is seen even while the body is still being written.
func (s *storm) httpExchange(head []byte, body func(io.Writer) error) (code int, err error) {
	c, err := s.dial()
	if err != nil {
		return 0, err
	}
	defer s.conns.remove(c)
	c.SetDeadline(time.Now().Add(15 * time.Second))
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		if _, err := c.Write(head); err == nil && body != nil {
			body(c)
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	c.Close() // stops the writer
	<-wdone
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// hugeBodies pushes bodies of 4 × --ingest.max-body-size over HTTP on the
// socket, alternately plain and as a gzip bomb (small on the wire, 4 × the
// limit once inflated), until the storm ends. Each should get 413.
func (s *storm) hugeBodies(chunk, bomb []byte) {
	size := 4 * s.cfg.maxBodyN
	for i := 0; s.ctx.Err() == nil; i++ {
		var head []byte
		var body func(io.Writer) error
		tries, got413, other, noResp := &s.a.hugeTries, &s.a.huge413, &s.a.hugeOther, &s.a.hugeNoResp
		if i%2 == 0 {
			head = fmt.Appendf(nil, "POST /metrics/job/storm_huge HTTP/1.1\r\nHost: localhost\r\n"+
				"Content-Type: text/plain; version=0.0.4\r\nContent-Length: %d\r\n\r\n", size)
			body = func(w io.Writer) error {
				for left := size; left > 0; {
					n := min(left, int64(len(chunk)))
					if _, err := w.Write(chunk[:n]); err != nil {
						return err
					}
					left -= n
				}
				return nil
			}
		} else {
			tries, got413, other, noResp = &s.a.bombTries, &s.a.bomb413, &s.a.bombOther, &s.a.bombNoResp
			head = fmt.Appendf(nil, "POST /metrics/job/storm_bomb HTTP/1.1\r\nHost: localhost\r\n"+
				"Content-Type: text/plain; version=0.0.4\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n", len(bomb))
			body = func(w io.Writer) error { _, err := w.Write(bomb); return err }
		}
		tries.Add(1)
		code, err := s.httpExchange(head, body)
		switch {
		case s.ctx.Err() != nil:
			tries.Add(-1) // cut by the end of the storm: not counted
		case err != nil:
			noResp.Add(1)
		case code == http.StatusRequestEntityTooLarge:
			got413.Add(1)
		default:
			other.Add(1)
			v, _ := s.a.otherCodes.LoadOrStore(code, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
		}
		if !s.sleep(100 * time.Millisecond) {
			return
		}
	}
}

// hugePayloads returns 64 KiB of text lines, which the plain huge body
// repeats, and a gzip bomb: 4 × max text bytes, compressed.
func hugePayloads(max int64) (chunk, bomb []byte) {
	for i := 0; len(chunk) < 64<<10; i++ {
		chunk = fmt.Appendf(chunk, "storm_huge{i=\"%d\"} 1\n", i)
	}
	var zb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&zb, gzip.BestCompression)
	for w := int64(0); w < 4*max; w += int64(len(chunk)) {
		zw.Write(chunk)
	}
	zw.Close()
	return chunk, zb.Bytes()
}

// slowHeaders sends an HTTP request line, then a header one byte per
// second, and measures how long the daemon lets it.
func (s *storm) slowHeaders() {
	hdr := []byte("X-Storm-Slow: " + string(bytes.Repeat([]byte("s"), 200)))
	for s.ctx.Err() == nil {
		c, err := s.dial()
		if err != nil {
			if !s.sleep(time.Second) {
				return
			}
			continue
		}
		t0 := time.Now()
		closed := s.watchClose(c)
		c.SetWriteDeadline(s.end.Add(time.Second))
		_, err = c.Write([]byte("POST /metrics/job/storm_slow HTTP/1.1\r\nHost: localhost\r\n"))
		t := time.NewTicker(time.Second)
	write:
		for j := 0; err == nil; j++ {
			select {
			case <-s.ctx.Done():
				break write
			case <-closed:
				break write
			case <-t.C:
				_, err = c.Write(hdr[j%len(hdr) : j%len(hdr)+1])
			}
		}
		t.Stop()
		life := time.Since(t0)
		s.conns.remove(c)
		<-closed
		if s.ctx.Err() != nil {
			s.a.slowOpenAtEnd.Add(1)
			return
		}
		if life < time.Second {
			s.a.slowRefused.Add(1)
		} else {
			s.a.slowCut.Add(1)
			storeMax(&s.a.slowMaxLife, int64(life))
		}
		if !s.sleep(time.Second) {
			return
		}
	}
}
