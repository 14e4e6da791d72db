package main

import (
	"go.uber.org/atomic"

	"github.com/push-gateway/push-gateway/expose"
	"github.com/push-gateway/push-gateway/ingest"
)

// statusSections returns the daemon's tables of the status page: the same
// counters as the self-metrics (self.go), for a person to read. They are
// shown with --web.disable-exporter-metrics too.
func statusSections(in *ingest.Stats, pushes *ingest.PushStats, webRefused *atomic.Uint64, web, sockHTTP *expose.ServerStats, redis *ingest.RedisStats) []expose.StatusSection {
	sections := []expose.StatusSection{
		{Title: "Push socket", Rows: func(t *expose.StatusTable) {
			t.Uint("Lines and events applied", in.Lines.Load())
			t.Int("Open connections", in.Connections.Load())
			t.Uint("Refused at accept: --ingest.max-connections open", in.Refused.Load())
			t.Uint("Refused at accept: user id not in --ingest.allowed-uids", in.PeerRefused.Load())
			t.Uint("Closed after --ingest.idle-timeout", in.IdleClosed.Load())
			t.Uint("HTTP responses cut: the client read too slowly", sockHTTP.Stalled.Load())
			pushes.Each(func(method, code string, n uint64) {
				t.Uint("HTTP "+method+" answered "+code, n)
			})
		}},
		{Title: "Rejected lines", Rows: func(t *expose.StatusTable) {
			total := uint64(0)
			for _, r := range ingest.Reasons {
				total += in.Rejected[r].Load()
			}
			t.Uint("All reasons", total)
			for _, r := range ingest.Reasons {
				if n := in.Rejected[r].Load(); n > 0 {
					t.Uint(r, n)
				}
			}
		}},
		{Title: "Web", Rows: func(t *expose.StatusTable) {
			t.Int("Open TCP connections", web.Conns.Load())
			t.Uint("Refused at accept: --web.max-connections open, none idle", web.Refused.Load())
			t.Uint("Idle connections closed to make room", web.Evicted.Load())
			t.Uint("Responses cut: the client read too slowly", web.Stalled.Load())
			t.Uint("Requests refused with 503: too many at once, or --web.scrape-memory held", webRefused.Load())
		}},
	}
	if redis != nil {
		sections = append(sections, expose.StatusSection{Title: "Redis list", Rows: func(t *expose.StatusTable) {
			t.Uint("Elements taken", redis.Elements.Load())
			t.Uint("Errors (connections and commands)", redis.Errors.Load())
		}})
	}
	return sections
}

// redisStats are the Redis consumer's counters, nil when it is off.
func redisStats(r *ingest.Redis) *ingest.RedisStats {
	if r == nil {
		return nil
	}
	return r.Stats()
}
