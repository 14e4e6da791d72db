package expose

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/push-gateway/push-gateway/cache"
)

// TestStuckScraperDoesNotBlockPushes: a scraper that asks for a large
// exposition and never reads it holds no lock; pushes go on.
func TestStuckScraperDoesNotBlockPushes(t *testing.T) {
	c := cache.New(cache.Options{Budget: 4 << 20})
	for i := 0; i < 20000; i++ {
		c.Set([]byte("big"), []cache.Label{{Name: []byte("i"), Value: fmt.Appendf(nil, "%08d", i)}}, 1)
	}
	addr := testServer(t, New(Options{Cache: c}).Serve)
	var stuck []net.Conn
	for i := 0; i < 4; i++ {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n") // and never read
		stuck = append(stuck, conn)
	}
	defer func() {
		for _, c := range stuck {
			c.Close()
		}
	}()
	time.Sleep(100 * time.Millisecond) // let the handlers block in Write
	done := make(chan struct{})
	go func() {
		for i := 0; i < 10000; i++ {
			c.Set([]byte("pushed"), []cache.Label{{Name: []byte("i"), Value: fmt.Appendf(nil, "%d", i%100)}}, float64(i))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second): // generous: this checks liveness, not speed
		t.Fatal("pushes blocked behind stuck scrapers")
	}
}

// TestPushStormDoesNotStarveScrapes: writers hammering the cache in batches
// leave room for scrapes, which keep completing with whole expositions.
func TestPushStormDoesNotStarveScrapes(t *testing.T) {
	c := cache.New(cache.Options{Budget: 256 << 10})
	url := "http://" + testServer(t, New(Options{Cache: c}).Serve)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ls := []cache.Label{{Name: []byte("w"), Value: fmt.Appendf(nil, "%d", w)}, {Name: []byte("i")}}
			for i := 0; !stop.Load(); i++ {
				b := c.Begin()
				for j := 0; j < 64; j++ {
					ls[1].Value = fmt.Appendf(ls[1].Value[:0], "%d", (i*64+j)%2000)
					b.Set([]byte("storm"), ls, float64(i))
				}
				b.End()
			}
		}()
	}
	deadline := time.Now().Add(20 * time.Second)
	for n := 0; n < 20; n++ {
		resp, err := http.Get(url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || len(body) == 0 {
			t.Fatalf("scrape %d: %v %d", n, err, resp.StatusCode)
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d scrapes completed during the storm", n)
		}
	}
	stop.Store(true)
	wg.Wait()
}
