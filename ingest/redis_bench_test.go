package ingest

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/push-gateway/push-gateway/cache"
	"github.com/push-gateway/push-gateway/ingest/redistest"
	"github.com/push-gateway/push-gateway/ingest/resp"
)

// BenchmarkRedisDrain takes b.N events from a pre-filled list of a real
// redis-server: the consumer's cost per event, round trips included. The
// ns/op is wall time per event, with Redis on the same machine.
func BenchmarkRedisDrain(b *testing.B) {
	for _, pc := range []int{25, 100} {
		b.Run("pop"+strconv.Itoa(pc), func(b *testing.B) {
			srv := redistest.Start(b)
			nc, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(srv.Port))
			if err != nil {
				b.Fatal(err)
			}
			rc := resp.NewConn(nc, 1<<10)
			defer rc.Close()
			rc.SetDeadline(time.Now().Add(time.Minute))
			args := []string{"LPUSH", "q"}
			for i := range b.N {
				args = append(args, fmt.Sprintf(`{"type":"counter","name":"http_requests_total","value":1,"labels":{"method":"GET","status":"%d"}}`, 200+i%20))
				if len(args) == 1002 || i == b.N-1 {
					if _, err := rc.Do(args...); err != nil {
						b.Fatal(err)
					}
					args = args[:2]
				}
			}
			addr, _ := ParseRedisURL(srv.URL())
			s := NewServer(Options{Cache: cache.New(cache.Options{Budget: 64 << 10})})
			r := s.NewRedis(RedisOptions{Addr: addr, Key: "q", PopCount: pc})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			b.ResetTimer()
			go func() { r.Run(ctx); close(done) }()
			for r.Stats().Elements.Load() < uint64(b.N) {
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			cancel()
			<-done
		})
	}
}
