package httpc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/push-gateway/push-gateway/expose/http1"
)

const (
	// headLimit is the longest status, header, chunk-size or trailer line,
	// and the size of a connection's read buffer.
	headLimit = 4 << 10
	// maxHeaders bounds the header lines of a response, and its trailers.
	maxHeaders = 100
	// maxInterim bounds the 1xx responses skipped before the final one.
	maxInterim = 10
	// drainLimit is how much of a body beyond MaxResponseBody is read and
	// thrown away to keep the connection; past it, the connection is closed.
	drainLimit = 256 << 10
	// MaxRetryAfter caps Response.RetryAfter: a receiver cannot park the
	// sender for a day.
	MaxRetryAfter = 10 * time.Minute
)

var (
	errLineTooLong = errors.New("httpc: response line longer than 4 KiB")
	errTooMany     = errors.New("httpc: more than 100 header lines in the response")
	errTruncated   = errors.New("httpc: connection closed before the end of the response body")
	errDrained     = errors.New("httpc: response body beyond the drain limit") // not returned: the body is cut
)

// head is what the framing and the caller need of a response's head.
type head struct {
	status     int
	http10     bool
	length     int64 // Content-Length, or -1
	chunked    bool
	closeDelim bool // a Transfer-Encoding other than chunked last: read to EOF
	close      bool // Connection: close
	keepAlive  bool // Connection: keep-alive (matters for HTTP/1.0)
	retryAfter time.Duration
}

// readLine returns a line without its CRLF (a bare LF is accepted). The
// slice is valid until the next read of br.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	switch {
	case err == bufio.ErrBufferFull:
		return nil, errLineTooLong
	case err == io.EOF && len(line) > 0:
		return nil, io.ErrUnexpectedEOF
	case err != nil:
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// parseStatusLine parses "HTTP/1.x NNN reason". The reason is ignored and
// may be absent.
func parseStatusLine(line []byte) (status int, http10 bool, err error) {
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || line[7] < '0' || line[7] > '9' || line[8] != ' ' ||
		(len(line) > 12 && line[12] != ' ') {
		return 0, false, fmt.Errorf("httpc: malformed status line %q", clip(line))
	}
	for _, ch := range line[9:12] {
		if ch < '0' || ch > '9' {
			return 0, false, fmt.Errorf("httpc: malformed status line %q", clip(line))
		}
		status = status*10 + int(ch-'0')
	}
	if status < 100 {
		return 0, false, fmt.Errorf("httpc: malformed status line %q", clip(line))
	}
	return status, line[7] == '0', nil
}

// readHead reads a status line and its header lines. now dates a
// Retry-After given as an HTTP-date.
func readHead(br *bufio.Reader, now time.Time) (head, error) {
	h := head{length: -1}
	line, err := readLine(br)
	if err != nil {
		return h, err
	}
	if h.status, h.http10, err = parseStatusLine(line); err != nil {
		return h, err
	}
	te := false
	for n := 0; ; n++ {
		if line, err = readLine(br); err != nil {
			return h, err
		}
		if len(line) == 0 {
			break
		}
		if n == maxHeaders {
			return h, errTooMany
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !http1.IsToken(line[:colon]) { // obs-fold starts with a space: refused too
			return h, fmt.Errorf("httpc: malformed header line %q", clip(line))
		}
		name, value := line[:colon], bytes.Trim(line[colon+1:], " \t")
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			v, ok := http1.ParseLength(value)
			if !ok || (h.length >= 0 && v != h.length) {
				return h, fmt.Errorf("httpc: invalid Content-Length %q", clip(value))
			}
			h.length = v
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			// The last coding decides (RFC 9112, 6.3): chunked, or
			// anything else read until the connection closes.
			te = true
			h.chunked = lastToken(value, "chunked")
			h.closeDelim = !h.chunked
		case bytes.EqualFold(name, []byte("Connection")):
			h.close = h.close || http1.HasToken(value, "close")
			h.keepAlive = h.keepAlive || http1.HasToken(value, "keep-alive")
		case bytes.EqualFold(name, []byte("Retry-After")):
			h.retryAfter = parseRetryAfter(value, now)
		}
	}
	if te {
		// With both, Transfer-Encoding wins and the framing is in doubt:
		// the connection is not reused (RFC 9112, 6.3).
		if h.length >= 0 {
			h.close = true
		}
		h.length = -1
	}
	return h, nil
}

// readResponse reads one response, skipping 1xx interim ones, and keeps at
// most keep bytes of its body. reusable tells whether the connection can
// carry another request.
func readResponse(br *bufio.Reader, keep int, now time.Time) (resp Response, reusable bool, err error) {
	var h head
	for i := 0; ; i++ {
		if h, err = readHead(br, now); err != nil {
			return Response{}, false, err
		}
		if h.status >= 200 {
			break
		}
		if h.status == 101 || i == maxInterim {
			return Response{}, false, fmt.Errorf("httpc: unexpected interim response %d", h.status)
		}
	}
	resp = Response{Status: h.status, RetryAfter: h.retryAfter}
	reusable = !h.close && (!h.http10 || h.keepAlive)
	if h.status == 204 || h.status == 304 {
		return resp, reusable, nil
	}
	b := sink{br: br, keep: keep}
	switch {
	case h.chunked:
		err = b.chunked()
	case h.length >= 0 && !h.closeDelim:
		if h.length > int64(keep) {
			b.body = make([]byte, 0, keep)
		} else {
			b.body = make([]byte, 0, h.length)
		}
		err = b.copyN(h.length)
	default:
		reusable = false
		err = b.copyN(-1)
	}
	resp.Body = b.body
	if err == errDrained {
		return resp, false, nil
	}
	if err != nil {
		return Response{}, false, err
	}
	return resp, reusable, nil
}

// sink keeps the first keep bytes of a body and discards the rest, up to
// drainLimit.
type sink struct {
	br      *bufio.Reader
	keep    int
	body    []byte
	dropped int
}

// copyN reads n bytes of body, or up to EOF if n < 0.
func (s *sink) copyN(n int64) error {
	for n != 0 {
		var m int
		var err error
		if room := s.keep - len(s.body); room > 0 {
			if len(s.body) == cap(s.body) {
				s.body = append(s.body, 0)[:len(s.body)]
			}
			p := s.body[len(s.body):cap(s.body)]
			if len(p) > room {
				p = p[:room]
			}
			if n > 0 && int64(len(p)) > n {
				p = p[:n]
			}
			m, err = s.br.Read(p)
			s.body = s.body[:len(s.body)+m]
		} else {
			if s.dropped >= drainLimit {
				return errDrained
			}
			want := headLimit
			if n > 0 && n < int64(want) {
				want = int(n)
			}
			m, err = s.br.Discard(want)
			s.dropped += m
		}
		if n > 0 {
			n -= int64(m)
		}
		switch {
		case err == io.EOF && n < 0:
			return nil
		case err == io.EOF:
			return errTruncated
		case err != nil:
			return err
		}
	}
	return nil
}

// chunked reads a chunked body and its trailers (ignored).
func (s *sink) chunked() error {
	for {
		line, err := readLine(s.br)
		if err != nil {
			return chunkErr(err)
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i] // chunk extensions, ignored
		}
		line = bytes.TrimRight(line, " \t")
		size, ok := http1.ParseHex(line)
		if !ok {
			return fmt.Errorf("httpc: malformed chunk size %q", clip(line))
		}
		if size == 0 {
			break
		}
		if err := s.copyN(size); err != nil {
			return chunkErr(err)
		}
		if line, err = readLine(s.br); err != nil || len(line) != 0 {
			return chunkErr(err)
		}
	}
	for i := 0; ; i++ {
		line, err := readLine(s.br)
		if err != nil {
			return chunkErr(err)
		}
		if len(line) == 0 {
			return nil
		}
		if i == maxHeaders {
			return errTooMany
		}
	}
}

func chunkErr(err error) error {
	switch err {
	case nil:
		return errors.New("httpc: malformed chunked body")
	case io.EOF, io.ErrUnexpectedEOF:
		return errTruncated
	}
	return err
}

// parseRetryAfter reads delay-seconds or an HTTP-date (RFC 9110, 10.2.3);
// 0 if invalid or past, at most MaxRetryAfter.
func parseRetryAfter(v []byte, now time.Time) time.Duration {
	if len(v) == 0 {
		return 0
	}
	var d time.Duration
	if v[0] >= '0' && v[0] <= '9' {
		var secs int64
		for _, ch := range v {
			if ch < '0' || ch > '9' {
				return 0
			}
			if secs = secs*10 + int64(ch-'0'); secs > int64(MaxRetryAfter/time.Second) {
				return MaxRetryAfter
			}
		}
		d = time.Duration(secs) * time.Second
	} else {
		var t time.Time
		var err error
		for _, layout := range dateLayouts {
			if t, err = time.Parse(layout, string(v)); err == nil {
				break
			}
		}
		if err != nil {
			return 0
		}
		d = t.Sub(now)
	}
	return min(max(d, 0), MaxRetryAfter)
}

// dateLayouts are the HTTP-date forms a recipient must accept (RFC 9110, 5.6.7).
var dateLayouts = [...]string{
	"Mon, 02 Jan 2006 15:04:05 GMT",  // IMF-fixdate
	"Monday, 02-Jan-06 15:04:05 GMT", // RFC 850
	"Mon Jan _2 15:04:05 2006",       // asctime
}

// lastToken tells whether the last item of the comma-separated list v is tok.
func lastToken(v []byte, tok string) bool {
	if i := bytes.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return bytes.EqualFold(bytes.Trim(v, " \t"), []byte(tok))
}

// clip shortens what an error message quotes of a response.
func clip(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
