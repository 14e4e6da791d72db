package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

const validName = "storm_valid_total"

// write is one batch a valid pusher wrote: every series of the pusher set to
// value, complete in the kernel's socket buffer at at.
type write struct {
	value int64
	at    time.Time
}

// pusher is a well-behaved client: one raw-stream connection, a fixed set of
// series, a counter that goes up by one every 100 ms.
type pusher struct {
	id      int
	series  int
	mu      sync.Mutex
	writes  []write
	maxGap  time.Duration // longest time between two writes
	redials atomic.Int64
	errs    atomic.Int64 // failed writes
}

func (p *pusher) label() string { return "p" + strconv.Itoa(p.id) }

func seriesLabel(j int) string { return fmt.Sprintf("s%02d", j) }

func (p *pusher) run(s *storm) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	var c net.Conn
	var buf []byte
	var v int64
	for s.ctx.Err() == nil {
		if c == nil {
			var err error
			if c, err = s.dial(); err != nil {
				c = nil
				p.redials.Add(1)
				if !s.sleep(100 * time.Millisecond) {
					return
				}
				continue
			}
			buf = append(buf[:0], "# TYPE "+validName+" counter\n"...)
		}
		v++
		for j := range p.series {
			buf = fmt.Appendf(buf, "%s{pusher=%q,series=%q} %d\n", validName, p.label(), seriesLabel(j), v)
		}
		c.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := c.Write(buf); err != nil {
			// v stays used: part of it may have arrived.
			p.errs.Add(1)
			s.conns.remove(c)
			c = nil
			continue
		}
		buf = buf[:0]
		now := time.Now()
		p.mu.Lock()
		if n := len(p.writes); n > 0 {
			p.maxGap = max(p.maxGap, now.Sub(p.writes[n-1].at))
		}
		p.writes = append(p.writes, write{v, now})
		p.mu.Unlock()
		select {
		case <-s.ctx.Done():
		case <-t.C:
		}
	}
	if c != nil {
		s.conns.remove(c)
	}
}

// due returns the newest value written by cutoff (0 if none), and the time
// the value after v was written (zero if it was not written by before).
func (p *pusher) due(cutoff time.Time, v int64, before time.Time) (int64, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := sort.Search(len(p.writes), func(i int) bool { return p.writes[i].at.After(cutoff) })
	var want int64
	if i > 0 {
		want = p.writes[i-1].value
	}
	j := sort.Search(len(p.writes), func(i int) bool { return p.writes[i].value > v })
	if j < len(p.writes) && p.writes[j].at.Before(before) {
		return want, p.writes[j].at
	}
	return want, time.Time{}
}

func (p *pusher) written() (int64, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return int64(len(p.writes)), p.maxGap
}

// scrapeStats add up what the scrapers saw.
type scrapeStats struct {
	ok, failed, unparsable atomic.Int64
	checked                atomic.Int64 // valid series looked at
	missing                atomic.Int64 // absent after having been seen: lost
	backwards              atomic.Int64 // lower than in an earlier scrape: lost
	stale                  atomic.Int64 // a newer value was written staleAfter before the scrape
	neverSeen              atomic.Int64 // absent, never seen, though written staleAfter before
	maxLag                 atomic.Int64 // ns: longest a newer value had been written when a scrape still showed the older one
	maxConns               atomic.Int64 // push_gateway_ingest_connections, highest seen
	maxSeries              atomic.Int64 // push_gateway_cache_series, highest seen
	maxBody                atomic.Int64

	mu      sync.Mutex
	latency []time.Duration
	errs    map[string]int
}

func (st *scrapeStats) fail(reason string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.errs == nil {
		st.errs = map[string]int{}
	}
	if len(st.errs) < 20 {
		st.errs[reason]++
	}
}

// scrape fetches and parses url once. took is the HTTP exchange, up to the
// last byte of the body, without the parsing.
func scrape(ctx context.Context, client *http.Client, url string) (fams map[string]*dto.MetricFamily, size int, took time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, 0, err
	}
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, time.Since(t0), err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 512<<20))
	took = time.Since(t0)
	if err != nil {
		return nil, len(body), took, fmt.Errorf("reading body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, len(body), took, fmt.Errorf("status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err = p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, len(body), took, parseError{err}
	}
	return fams, len(body), took, nil
}

type parseError struct{ error }

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}

// selfValue sums the samples of family name whose label lname (if not
// empty) is lvalue.
func selfValue(fams map[string]*dto.MetricFamily, name, lname, lvalue string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	var sum float64
	for _, m := range f.Metric {
		if lname == "" {
			sum += value(m)
			continue
		}
		for _, l := range m.Label {
			if l.GetName() == lname && l.GetValue() == lvalue {
				sum += value(m)
			}
		}
	}
	return sum
}

// scraper scrapes /metrics every 200 ms until end and checks the valid
// pushers' series. Its own scrapes are sequential, so "earlier" is well
// defined for the checks; scrapers do not compare with each other.
func (s *storm) scraper(ctx context.Context, i int, url string, end time.Time, pushers []*pusher, st *scrapeStats) {
	tr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Timeout: 5 * time.Second, Transport: tr}
	type key struct{ p, s string }
	last := map[key]float64{}
	// Stagger the scrapers over the 200 ms period.
	time.Sleep(time.Duration(i) * 200 * time.Millisecond / time.Duration(s.cfg.scrapers))
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for time.Now().Before(end) && ctx.Err() == nil {
		start := time.Now()
		fams, n, took, err := scrape(ctx, client, url)
		storeMax(&st.maxBody, int64(n))
		switch {
		case ctx.Err() != nil:
			return // interrupted: neither ok nor failed
		case err != nil:
			if _, ok := err.(parseError); ok {
				st.unparsable.Add(1)
			} else {
				st.failed.Add(1)
			}
			st.fail(err.Error())
		default:
			st.ok.Add(1)
			st.mu.Lock()
			st.latency = append(st.latency, took)
			st.mu.Unlock()
			storeMax(&st.maxConns, int64(selfValue(fams, "push_gateway_ingest_connections", "", "")))
			storeMax(&st.maxSeries, int64(selfValue(fams, "push_gateway_cache_series", "", "")))
			got := map[key]float64{}
			if f := fams[validName]; f != nil {
				for _, m := range f.Metric {
					var k key
					for _, l := range m.Label {
						switch l.GetName() {
						case "pusher":
							k.p = l.GetValue()
						case "series":
							k.s = l.GetValue()
						}
					}
					got[k] = value(m)
				}
			}
			cutoff := start.Add(-s.cfg.staleAfter)
			for _, p := range pushers {
				for j := range p.series {
					k := key{p.label(), seriesLabel(j)}
					st.checked.Add(1)
					v, present := got[k]
					prev, seen := last[k]
					want, newerAt := p.due(cutoff, int64(v), start)
					switch {
					case !present && seen:
						st.missing.Add(1)
					case !present:
						if want > 0 {
							st.neverSeen.Add(1)
						}
					case seen && v < prev:
						st.backwards.Add(1)
					}
					if present {
						last[k] = v
						if !newerAt.IsZero() {
							storeMax(&st.maxLag, int64(start.Sub(newerAt)))
						}
						if int64(v) < want {
							st.stale.Add(1)
						}
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// latencies returns the median, 99th percentile and maximum scrape time.
func (st *scrapeStats) latencies() (p50, p99, max time.Duration) {
	st.mu.Lock()
	l := slices.Clone(st.latency)
	st.mu.Unlock()
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	return l[len(l)/2], l[(len(l)*99)/100], l[len(l)-1]
}
