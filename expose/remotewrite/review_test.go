package remotewrite

import (
	"context"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/push-gateway/push-gateway/cache"
	"github.com/push-gateway/push-gateway/expose/remotewrite/httpc"
)

// A bearer token file with a line break inside: the request fails, and
// neither the log nor the status page's last error shows the token.
func TestSecretWithLineBreakNotShown(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	if err := os.WriteFile(tok, []byte("s3cr3t-token\r\nsecond-line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	u, _ := url.Parse("http://" + ln.Addr().String() + "/api/v1/write")
	cl, err := httpc.New(httpc.Config{URL: u})
	if err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	c := cache.New(cache.Options{})
	c.Set([]byte("m"), nil, 1)
	stats := new(Stats)
	s := New(Options{Cache: c, Encoder: NewEncoder(nil, false), Poster: cl, Interval: time.Hour, QueueSize: 1 << 20,
		BearerTokenFile: tok, Logger: slog.New(slog.NewTextHandler(&logs, nil)), MinBackoff: time.Millisecond}, stats)
	ctx, cancel := context.WithCancel(context.Background())
	drain, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	cancel()
	s.Run(ctx, drain)
	msg, _ := stats.LastError()
	if strings.Contains(logs.String(), "s3cr3t") || strings.Contains(msg, "s3cr3t") {
		t.Fatalf("the token is shown:\nlog: %s\nlast error: %s", logs.String(), msg)
	}
	if !strings.Contains(msg, "bearer token file") {
		t.Errorf("last error %q does not say which file is wrong", msg)
	}
}

// A request larger than the whole queue is dropped alone and said; the
// request in flight is not given up for it.
func TestRequestLargerThanQueue(t *testing.T) {
	st := new(Stats)
	q := newQueue(1024, st)
	var told int
	q.tooLarge = func(size, max int) { told++ }
	q.push(&request{body: make([]byte, 100), samples: 10, abandon: make(chan struct{})})
	r := q.next(nil) // in flight, being retried
	q.push(&request{body: make([]byte, 2000), samples: 200, abandon: make(chan struct{})})
	select {
	case <-r.abandon:
		t.Error("the request in flight was abandoned for one larger than the queue")
	default:
	}
	if st.Dropped.Load() != 200 || told != 1 {
		t.Errorf("dropped %d samples, told %d times; want 200, 1", st.Dropped.Load(), told)
	}
}
