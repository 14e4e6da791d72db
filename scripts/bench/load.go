package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// label and series describe a pushed series independently of the protocol
// that carries it.
type label struct{ name, value string }

type series struct {
	name   string
	labels []label
}

const (
	seriesPrefix = "edge_device_metric_" // ingest and scrape series
	churnName    = "edge_device_churn"   // churn series
	// batchSize is the number of series of one ingest writer.
	batchSize = 25
	// statsdLines is the number of lines per statsd datagram (about 6.5 KB,
	// under DogStatsD's 8 KiB for Unix sockets).
	statsdLines = 75
	// oursBatches is the number of 25-line batches per write on our stream.
	oursBatches = 4
	// pgGroup is the number of series per Pushgateway group when loading.
	pgGroup = 100
)

// ingestSeries returns writer w's 25 series, five families of five, about
// 80 bytes each in the text format:
// edge_device_metric_03{instance="router-01.lan",writer="w1",path="/x/0042"} 1234
func ingestSeries(w int) []series {
	ss := make([]series, batchSize)
	for i := range ss {
		ss[i] = series{
			name: fmt.Sprintf("%s%02d", seriesPrefix, i/5),
			labels: []label{
				{"instance", "router-01.lan"},
				{"writer", "w" + strconv.Itoa(w)},
				{"path", fmt.Sprintf("/x/%04d", w*batchSize+i)},
			},
		}
	}
	return ss
}

// loadSeries returns n series for the scrape workload, 25 per family.
func loadSeries(n int) []series {
	ss := make([]series, n)
	for i := range ss {
		ss[i] = series{
			name: fmt.Sprintf("%s%03d", seriesPrefix, i/25),
			labels: []label{
				{"instance", "router-01.lan"},
				{"writer", "ld"},
				{"path", fmt.Sprintf("/x/%05d", i)},
			},
		}
	}
	return ss
}

// churnSeries returns the i-th never-seen series.
func churnSeries(i int) series {
	return series{
		name: churnName,
		labels: []label{
			{"instance", "router-01.lan"},
			{"writer", "churn"},
			{"path", fmt.Sprintf("/c/%08d", i)},
		},
	}
}

// appendProm appends one text-format line.
func appendProm(b []byte, s series, v int64) []byte {
	b = append(b, s.name...)
	b = append(b, '{')
	for i, l := range s.labels {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, l.name...)
		b = append(b, `="`...)
		b = append(b, l.value...)
		b = append(b, '"')
	}
	b = append(b, "} "...)
	b = strconv.AppendInt(b, v, 10)
	return append(b, '\n')
}

// appendStatsd appends one DogStatsD gauge line, name:value|g|#tag:value,...,
// with no newline.
func appendStatsd(b []byte, s series, v int64) []byte {
	b = append(b, s.name...)
	b = append(b, ':')
	b = strconv.AppendInt(b, v, 10)
	b = append(b, "|g|#"...)
	for i, l := range s.labels {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, l.name...)
		b = append(b, ':')
		b = append(b, l.value...)
	}
	return b
}

// encode turns series into payloads of at most per series each: writes on
// our stream, request bodies for the Pushgateway, datagrams for
// statsd_exporter. Series i gets the value base+i.
func encode(k kind, ss []series, base int64, per int) [][]byte {
	var out [][]byte
	for start := 0; start < len(ss); start += per {
		end := min(start+per, len(ss))
		var b []byte
		for i := start; i < end; i++ {
			v := base + int64(i)
			if k == statsd {
				if i > start {
					b = append(b, '\n')
				}
				b = appendStatsd(b, ss[i], v)
			} else {
				b = appendProm(b, ss[i], v)
			}
		}
		out = append(out, b)
	}
	return out
}

// perPayload is the number of series per payload for ingest and loading.
func perPayload(k kind) int {
	switch k {
	case ours:
		return oursBatches * batchSize
	case pushgateway:
		return batchSize
	default:
		return statsdLines
	}
}

// sender pushes payloads into one daemon over one connection: a Unix stream
// (ours), keep-alive HTTP (the Pushgateway) or a connected unixgram socket
// (statsd_exporter).
type sender struct {
	d      *daemon
	conn   net.Conn
	client *http.Client
}

func newSender(d *daemon) (*sender, error) {
	s := &sender{d: d}
	var err error
	switch d.t.kind {
	case ours:
		s.conn, err = net.DialTimeout("unix", d.sock, 5*time.Second)
	case statsd:
		s.conn, err = net.DialTimeout("unixgram", d.sock, 5*time.Second)
	default:
		s.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: 1, DisableCompression: true,
		}}
	}
	return s, err
}

// send writes one payload. For the Pushgateway, path is the grouping key
// path (/metrics/job/…) and method PUT or POST; a push counts only when
// answered 200.
func (s *sender) send(ctx context.Context, method, path string, p []byte) error {
	if s.client == nil {
		_ = s.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
		_, err := s.conn.Write(p)
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+s.d.web+path, bytes.NewReader(p))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "text/plain; version=0.0.4")
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

func (s *sender) close() {
	if s.conn != nil {
		s.conn.Close()
	}
	if s.client != nil {
		s.client.CloseIdleConnections()
	}
}

// load pushes ss into d once: our stream in writes of 500 lines, the
// Pushgateway in groups of 100 series (PUT /metrics/job/load/group/gN),
// statsd_exporter in datagrams of 75 lines.
func load(ctx context.Context, d *daemon, ss []series) error {
	s, err := newSender(d)
	if err != nil {
		return err
	}
	defer s.close()
	per := statsdLines
	switch d.t.kind {
	case ours:
		per = 500
	case pushgateway:
		per = pgGroup
	}
	for i, p := range encode(d.t.kind, ss, 1, per) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.send(ctx, http.MethodPut, fmt.Sprintf("/metrics/job/load/group/g%d", i), p); err != nil {
			return err
		}
	}
	return nil
}
