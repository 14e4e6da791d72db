// Package resp is the client side of RESP2, the Redis protocol, for the few
// commands that the Redis list consumer sends: requests are arrays of bulk
// strings, replies are read one value at a time from a buffer whose size is
// bounded, whatever lengths the server announces.
//
// https://redis.io/docs/latest/develop/reference/protocol-spec/
//
// A Conn is not safe for concurrent use. Deadlines are the caller's: set
// them on the net.Conn before each exchange (see Conn.SetDeadline).
package resp

import (
	"errors"
	"io"
	"net"
	"strconv"
	"time"
)

// Kinds of replies, by their RESP2 type byte.
const (
	Simple  = '+'
	Error   = '-'
	Integer = ':'
	Bulk    = '$'
	Array   = '*'
)

// Limits on what a server can make the reader hold. A longer header line
// (a simple string, an error) or a bulk or array length over maxLength is
// a protocol error: no allocation follows a length the server sends.
const (
	maxHeader = 4 << 10
	maxLength = 512 << 20 // Redis's own proto-max-bulk-len ceiling
)

// ErrProtocol is returned, wrapped, for a reply that is not RESP2.
var ErrProtocol = errors.New("resp: protocol error")

func protocolError(what string) error { return &protoErr{what} }

type protoErr struct{ what string }

func (e *protoErr) Error() string { return "resp: protocol error: " + e.what }
func (e *protoErr) Unwrap() error { return ErrProtocol }

// Reply is one value read by Conn.Next. Str points into the Conn's buffer
// and is valid until the next call to Next or Do.
type Reply struct {
	Kind byte
	Str  []byte // simple string, error message or bulk string
	Int  int64  // integer; for an array, its length
	Nil  bool   // a nil bulk string or nil array
	// Skipped is the length of a bulk string longer than the Conn's
	// MaxBulk, read and thrown away: Str is empty.
	Skipped int64
}

// ServerError is an error reply (such as WRONGTYPE or NOAUTH).
type ServerError string

func (e ServerError) Error() string { return "redis: " + string(e) }

// Conn is a connection to a Redis server.
type Conn struct {
	c       net.Conn
	maxBulk int
	buf     []byte // buf[r:w] is read and not yet consumed
	r, w    int
	out     []byte
}

// initialBuffer is the read buffer of a new Conn; it grows up to the
// largest bulk string kept (MaxBulk) plus its header.
const initialBuffer = 4 << 10

// NewConn returns a Conn on c that keeps bulk strings up to maxBulk bytes
// and skips longer ones (see Reply.Skipped).
func NewConn(c net.Conn, maxBulk int) *Conn {
	return &Conn{c: c, maxBulk: maxBulk, buf: make([]byte, initialBuffer)}
}

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }

// SetDeadline sets the deadline of every read and write until the next call.
func (c *Conn) SetDeadline(t time.Time) error { return c.c.SetDeadline(t) }

// Send writes one command. It does not read the reply.
func (c *Conn) Send(args ...string) error {
	c.out = AppendCommand(c.out[:0], args...)
	_, err := c.c.Write(c.out)
	return err
}

// SendRepeated writes the same command n times in one write: a pipeline.
func (c *Conn) SendRepeated(n int, args ...string) error {
	c.out = c.out[:0]
	for range n {
		c.out = AppendCommand(c.out, args...)
	}
	_, err := c.c.Write(c.out)
	return err
}

// AppendCommand appends a command as RESP2 sends it: an array of bulk
// strings.
func AppendCommand(dst []byte, args ...string) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(len(args)), 10)
	dst = append(dst, '\r', '\n')
	for _, a := range args {
		dst = append(dst, '$')
		dst = strconv.AppendInt(dst, int64(len(a)), 10)
		dst = append(dst, '\r', '\n')
		dst = append(dst, a...)
		dst = append(dst, '\r', '\n')
	}
	return dst
}

// Do sends a command and reads a reply that is not an array: an error
// reply is returned as a ServerError.
func (c *Conn) Do(args ...string) (Reply, error) {
	if err := c.Send(args...); err != nil {
		return Reply{}, err
	}
	r, err := c.Next()
	if err != nil {
		return r, err
	}
	if r.Kind == Error {
		return r, ServerError(r.Str)
	}
	if r.Kind == Array && !r.Nil {
		// The caller wanted a single value: the elements are read and
		// dropped so that the connection stays in step.
		if err := c.Discard(r.Int); err != nil {
			return r, err
		}
		return r, protocolError("unexpected array reply to " + args[0])
	}
	return r, nil
}

// Discard reads and drops n values (nested arrays included).
func (c *Conn) Discard(n int64) error {
	for ; n > 0; n-- {
		r, err := c.Next()
		if err != nil {
			return err
		}
		if r.Kind == Array && !r.Nil {
			n += r.Int
		}
	}
	return nil
}

// Next reads one value. For an array it reads only the header: Int is the
// number of values that follow.
func (c *Conn) Next() (Reply, error) {
	line, err := c.line()
	if err != nil {
		return Reply{}, err
	}
	if len(line) == 0 {
		return Reply{}, protocolError("empty line")
	}
	r := Reply{Kind: line[0]}
	switch r.Kind {
	case Simple, Error:
		r.Str = line[1:]
		return r, nil
	case Integer:
		n, ok := parseInt(line[1:])
		if !ok {
			return r, protocolError("bad integer")
		}
		r.Int = n
		return r, nil
	case Array, Bulk:
	default:
		return r, protocolError("unknown type byte " + strconv.QuoteRune(rune(r.Kind)))
	}
	n, ok := parseInt(line[1:])
	switch {
	case !ok || n < -1:
		return r, protocolError("bad length")
	case n > maxLength:
		return r, protocolError("length over 512 MiB")
	case n == -1:
		r.Nil = true
		return r, nil
	case r.Kind == Array:
		r.Int = n
		return r, nil
	}
	if n > int64(c.maxBulk) {
		r.Skipped = n
		return r, c.skip(n + 2)
	}
	if err := c.fill(int(n) + 2); err != nil {
		return r, err
	}
	body := c.buf[c.r : c.r+int(n)+2]
	if body[n] != '\r' || body[n+1] != '\n' {
		return r, protocolError("bulk string not followed by CRLF")
	}
	c.r += int(n) + 2
	r.Str = body[:n]
	return r, nil
}

// line returns the next CRLF-terminated line without its CRLF.
func (c *Conn) line() ([]byte, error) {
	scanned := 0
	for {
		for i := c.r + scanned; i < c.w; i++ {
			if c.buf[i] == '\n' {
				if i == c.r || c.buf[i-1] != '\r' {
					return nil, protocolError("line not ended by CRLF")
				}
				line := c.buf[c.r : i-1]
				c.r = i + 1
				return line, nil
			}
		}
		scanned = c.w - c.r
		if scanned > maxHeader {
			return nil, protocolError("line over 4 KiB")
		}
		if err := c.more(); err != nil {
			return nil, err
		}
	}
}

// fill reads until buf[r:] holds n bytes, growing buf to fit.
func (c *Conn) fill(n int) error {
	if c.r+n > len(c.buf) {
		c.w = copy(c.buf, c.buf[c.r:c.w])
		c.r = 0
		if n > len(c.buf) {
			nb := make([]byte, max(n, 2*len(c.buf)))
			copy(nb, c.buf[:c.w])
			c.buf = nb
		}
	}
	for c.w-c.r < n {
		if err := c.more(); err != nil {
			return err
		}
	}
	return nil
}

// more reads what the connection has into the free end of buf, moving the
// unread bytes to the front first if there is no room.
func (c *Conn) more() error {
	if c.w == len(c.buf) {
		if c.r == 0 {
			// Only line() gets here with a full buffer, and it bounds
			// lines far below the buffer's size.
			return protocolError("buffer full")
		}
		c.w = copy(c.buf, c.buf[c.r:c.w])
		c.r = 0
	}
	m, err := c.c.Read(c.buf[c.w:])
	c.w += m
	if m > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// skip throws away the next n bytes, reading them through buf.
func (c *Conn) skip(n int64) error {
	for {
		k := int64(c.w - c.r)
		if k >= n {
			c.r += int(n)
			if c.buf[c.r-2] != '\r' || c.buf[c.r-1] != '\n' {
				return protocolError("bulk string not followed by CRLF")
			}
			return nil
		}
		// Keep the last two bytes read: they may be the CRLF.
		keep := min(k, 2)
		n -= k - keep
		c.r = c.w - int(keep)
		if err := c.more(); err != nil {
			return err
		}
	}
}

// parseInt parses a decimal integer as RESP writes it.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	var n int64
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		d := int64(ch - '0')
		if n > (1<<63-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	if neg {
		n = -n
	}
	return n, true
}
