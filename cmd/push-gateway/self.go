package main

import (
	"go.uber.org/atomic"

	"github.com/push-gateway/push-gateway/cache"
	"github.com/push-gateway/push-gateway/expose"
	"github.com/push-gateway/push-gateway/ingest"
)

// oneSample is a self-metric family of one sample without labels, whose
// value v reads when the family is written.
func oneSample(name, help string, t cache.Type, v func() float64) expose.SelfFamily {
	return expose.SelfFamily{Name: name, Append: func(dst []byte) []byte {
		dst = expose.AppendHeader(dst, name, help, t)
		return expose.AppendSample(dst, name, "", "", v())
	}}
}

// counter is a self-metric counter of one sample without labels.
func counter(name, help string, v *atomic.Uint64) expose.SelfFamily {
	return oneSample(name, help, cache.Counter, func() float64 { return float64(v.Load()) })
}

// selfMetrics returns the daemon's own metric families, named as
// ../shared/PRODUCT.md fixes them.
func selfMetrics(c *cache.Cache, in *ingest.Stats, pushes *ingest.PushStats, webRefused *atomic.Uint64, web, sockHTTP *expose.ServerStats) []expose.SelfFamily {
	gauge := func(name, help string, v func(cache.Stats) int) expose.SelfFamily {
		return oneSample(name, help, cache.Gauge, func() float64 { return float64(v(c.Stats())) })
	}
	return []expose.SelfFamily{
		gauge("push_gateway_cache_series", "Series in the cache.", func(s cache.Stats) int { return s.Series }),
		gauge("push_gateway_cache_bytes", "Bytes of the cache budget in use.", func(s cache.Stats) int { return s.Bytes }),
		gauge("push_gateway_cache_budget_bytes", "The cache budget in bytes (--cache.size).", func(s cache.Stats) int { return s.Budget }),
		{Name: "push_gateway_cache_evictions_total", Append: func(dst []byte) []byte {
			const n = "push_gateway_cache_evictions_total"
			s := c.Stats()
			dst = expose.AppendHeader(dst, n, "Items removed from the cache or refused by it, by reason.", cache.Counter)
			dst = expose.AppendSample(dst, n, "reason", "budget", float64(s.Evicted))
			dst = expose.AppendSample(dst, n, "reason", "expired", float64(s.Expired))
			return expose.AppendSample(dst, n, "reason", "too_large", float64(s.TooLarge))
		}},
		counter("push_gateway_ingest_lines_total", "Lines and events applied to the cache.", &in.Lines),
		{Name: "push_gateway_ingest_lines_rejected_total", Append: func(dst []byte) []byte {
			const n = "push_gateway_ingest_lines_rejected_total"
			dst = expose.AppendHeader(dst, n, "Lines and events skipped because they were bad, by reason.", cache.Counter)
			for _, r := range ingest.Reasons {
				dst = expose.AppendSample(dst, n, "reason", r, float64(in.Rejected[r].Load()))
			}
			return dst
		}},
		oneSample("push_gateway_ingest_connections", "Open connections on the push socket.", cache.Gauge,
			func() float64 { return float64(in.Connections.Load()) }),
		{Name: "push_gateway_ingest_pushes_total", Append: func(dst []byte) []byte {
			const n = "push_gateway_ingest_pushes_total"
			dst = expose.AppendHeader(dst, n, "HTTP requests that change the cache, on the push socket, by method and status code.", cache.Counter)
			pushes.Each(func(method, code string, v uint64) {
				dst = expose.AppendSample2(dst, n, "code", code, "method", method, float64(v))
			})
			return dst
		}},
		{Name: "push_gateway_ingest_connections_refused_total", Append: func(dst []byte) []byte {
			const n = "push_gateway_ingest_connections_refused_total"
			dst = expose.AppendHeader(dst, n, "Connections on the push socket closed at accept, by reason: max_connections (--ingest.max-connections open), peer_uid (not in --ingest.allowed-uids).", cache.Counter)
			dst = expose.AppendSample(dst, n, "reason", "max_connections", float64(in.Refused.Load()))
			return expose.AppendSample(dst, n, "reason", "peer_uid", float64(in.PeerRefused.Load()))
		}},
		counter("push_gateway_ingest_idle_closed_total", "Connections on the push socket closed for sending too little in time: nothing within --ingest.first-byte-timeout, nothing more within --ingest.idle-timeout, or too little in 10s from the first byte to tell an HTTP request line from a raw stream.", &in.IdleClosed),
		counter("push_gateway_ingest_connections_evicted_total", "Idle connections on the push socket closed to make room for a new one at --ingest.max-connections.", &in.Evicted),
		counter("push_gateway_web_requests_refused_total", "Scrapes refused with 503: --web.max-requests-in-flight were being served, or --web.scrape-memory was held.", webRefused),
		oneSample("push_gateway_web_connections", "Open TCP connections.", cache.Gauge,
			func() float64 { return float64(web.Conns.Load()) }),
		{Name: "push_gateway_web_connections_refused_total", Append: func(dst []byte) []byte {
			const n = "push_gateway_web_connections_refused_total"
			dst = expose.AppendHeader(dst, n, "TCP connections closed at accept, by reason: max_connections (--web.max-connections open and none idle).", cache.Counter)
			return expose.AppendSample(dst, n, "reason", "max_connections", float64(web.Refused.Load()))
		}},
		{Name: "push_gateway_web_connections_closed_total", Append: func(dst []byte) []byte {
			const n = "push_gateway_web_connections_closed_total"
			dst = expose.AppendHeader(dst, n, "HTTP connections closed by the daemon, by listener and reason: evicted (idle, to make room under --web.max-connections), stalled (the client read a response too slowly).", cache.Counter)
			dst = expose.AppendSample2(dst, n, "listener", "socket", "reason", "stalled", float64(sockHTTP.Stalled.Load()))
			dst = expose.AppendSample2(dst, n, "listener", "tcp", "reason", "evicted", float64(web.Evicted.Load()))
			return expose.AppendSample2(dst, n, "listener", "tcp", "reason", "stalled", float64(web.Stalled.Load()))
		}},
	}
}

// redisMetrics are the Redis list consumer's families, present only when
// --ingest.redis-url is set.
func redisMetrics(r *ingest.RedisStats) []expose.SelfFamily {
	return []expose.SelfFamily{
		counter("push_gateway_redis_elements_total", "Elements taken from the Redis list (--ingest.redis-key); their lines are counted in push_gateway_ingest_lines_total and push_gateway_ingest_lines_rejected_total.", &r.Elements),
		counter("push_gateway_redis_errors_total", "Failed connections, logins and commands on the Redis list; each is retried with backoff.", &r.Errors),
	}
}
