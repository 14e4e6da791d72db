package resp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// fakeConn is a net.Conn whose reads come from r, in chunks of at most
// chunk bytes, and whose writes go to w.
type fakeConn struct {
	net.Conn
	r     io.Reader
	w     bytes.Buffer
	chunk int
	reads int
}

func (f *fakeConn) Read(b []byte) (int, error) {
	f.reads++
	if f.chunk > 0 && len(b) > f.chunk {
		b = b[:f.chunk]
	}
	return f.r.Read(b)
}
func (f *fakeConn) Write(b []byte) (int, error)      { return f.w.Write(b) }
func (f *fakeConn) Close() error                     { return nil }
func (f *fakeConn) SetDeadline(time.Time) error      { return nil }
func (f *fakeConn) SetReadDeadline(time.Time) error  { return nil }
func (f *fakeConn) SetWriteDeadline(time.Time) error { return nil }

func newFake(reply string, chunk, maxBulk int) (*Conn, *fakeConn) {
	f := &fakeConn{r: strings.NewReader(reply), chunk: chunk}
	return NewConn(f, maxBulk), f
}

func TestAppendCommand(t *testing.T) {
	got := string(AppendCommand(nil, "RPOP", "q", "25"))
	want := "*3\r\n$4\r\nRPOP\r\n$1\r\nq\r\n$2\r\n25\r\n"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestReplies(t *testing.T) {
	for _, chunk := range []int{0, 1, 3} {
		c, _ := newFake("+OK\r\n-ERR no\r\n:42\r\n$3\r\nabc\r\n$-1\r\n*2\r\n$0\r\n\r\n*-1\r\n$5\r\na\r\nbc\r\n:-7\r\n", chunk, 16)
		want := []Reply{
			{Kind: Simple, Str: []byte("OK")},
			{Kind: Error, Str: []byte("ERR no")},
			{Kind: Integer, Int: 42},
			{Kind: Bulk, Str: []byte("abc")},
			{Kind: Bulk, Nil: true},
			{Kind: Array, Int: 2},
			{Kind: Bulk, Str: []byte{}},
			{Kind: Array, Nil: true},
			{Kind: Bulk, Str: []byte("a\r\nbc")},
			{Kind: Integer, Int: -7},
		}
		for i, w := range want {
			r, err := c.Next()
			if err != nil {
				t.Fatalf("chunk %d, reply %d: %v", chunk, i, err)
			}
			if r.Kind != w.Kind || string(r.Str) != string(w.Str) || r.Int != w.Int || r.Nil != w.Nil || r.Skipped != 0 {
				t.Fatalf("chunk %d, reply %d: got %+v, want %+v", chunk, i, r, w)
			}
		}
		if _, err := c.Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("chunk %d: at the end: %v, want unexpected EOF", chunk, err)
		}
	}
}

// A bulk string over maxBulk is read through and skipped: the buffer never
// grows to its size, and the next reply reads.
func TestLongBulkSkipped(t *testing.T) {
	long := strings.Repeat("x", 100<<10)
	for _, chunk := range []int{0, 1000, 4097} {
		c, _ := newFake("$102400\r\n"+long+"\r\n$2\r\nok\r\n", chunk, 1000)
		r, err := c.Next()
		if err != nil || r.Skipped != 100<<10 || len(r.Str) != 0 {
			t.Fatalf("chunk %d: got %+v, %v; want skipped 102400", chunk, r, err)
		}
		if len(c.buf) > initialBuffer {
			t.Fatalf("chunk %d: the buffer grew to %d for a skipped bulk", chunk, len(c.buf))
		}
		if r, err = c.Next(); err != nil || string(r.Str) != "ok" {
			t.Fatalf("chunk %d: after the skipped bulk: %+v, %v", chunk, r, err)
		}
	}
	// A skipped bulk must still end in CRLF.
	c, _ := newFake("$5000\r\n"+strings.Repeat("y", 5000)+"xx$1\r\n", 0, 10)
	if _, err := c.Next(); !errors.Is(err, ErrProtocol) {
		t.Fatalf("a skipped bulk without CRLF: %v, want a protocol error", err)
	}
}

func TestProtocolErrors(t *testing.T) {
	for _, in := range []string{
		"\r\n",
		"?x\r\n",
		"+OK\n",
		":12a\r\n",
		":\r\n",
		":99999999999999999999\r\n",
		"$-2\r\n",
		"$abc\r\n",
		"*-5\r\n",
		"$3\r\nabcd\r\n",
		"$1073741824\r\n",
		"*1073741824\r\n",
		"+" + strings.Repeat("a", 10<<10) + "\r\n",
	} {
		c, _ := newFake(in, 0, 64)
		if _, err := c.Next(); !errors.Is(err, ErrProtocol) {
			t.Errorf("%.40q: %v, want a protocol error", in, err)
		}
	}
}

func TestDo(t *testing.T) {
	c, f := newFake("+OK\r\n-WRONGPASS invalid\r\n*2\r\n*1\r\n:1\r\n$1\r\na\r\n+PONG\r\n", 0, 64)
	if _, err := c.Do("AUTH", "u", "p"); err != nil {
		t.Fatal(err)
	}
	_, err := c.Do("AUTH", "p")
	var se ServerError
	if !errors.As(err, &se) || string(se) != "WRONGPASS invalid" {
		t.Fatalf("error reply: %v, want ServerError WRONGPASS", err)
	}
	if _, err := c.Do("X"); !errors.Is(err, ErrProtocol) {
		t.Fatalf("an array to Do: %v, want a protocol error", err)
	}
	// The nested array was read through: the connection is in step.
	if r, err := c.Do("PING"); err != nil || string(r.Str) != "PONG" {
		t.Fatalf("after the array: %+v, %v", r, err)
	}
	want := "*3\r\n$4\r\nAUTH\r\n$1\r\nu\r\n$1\r\np\r\n*2\r\n$4\r\nAUTH\r\n$1\r\np\r\n*1\r\n$1\r\nX\r\n*1\r\n$4\r\nPING\r\n"
	if f.w.String() != want {
		t.Fatalf("wrote %q, want %q", f.w.String(), want)
	}
}

func TestSendRepeated(t *testing.T) {
	c, f := newFake("", 0, 64)
	if err := c.SendRepeated(3, "RPOP", "q"); err != nil {
		t.Fatal(err)
	}
	if want := strings.Repeat("*2\r\n$4\r\nRPOP\r\n$1\r\nq\r\n", 3); f.w.String() != want {
		t.Fatalf("wrote %q, want %q", f.w.String(), want)
	}
}

// A reader over a real connection obeys its deadline: a server that
// answers nothing does not hold the reader.
func TestDeadline(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := NewConn(a, 64)
	c.SetDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := c.Next()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("no reply before the deadline: %v, want a timeout", err)
	}
}
