package main

import (
	"net"
	"testing"
	"time"
)

func TestRawProbesTally(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := rawProbes{sent: map[int]time.Time{}, seen: map[int]time.Time{}, writeKO: map[string]int{}}
	for i := range 4 {
		r.sent[i] = t0.Add(time.Duration(i) * time.Second)
	}
	end := t0.Add(10 * time.Second)
	// n=0 seen 0.5 s after its write; n=1 3 s after (too late); n=2 only
	// after the end; n=3 never. n=12 was not sent: a longer number must not
	// be read as n=1.
	r.look([]byte("a 1\nstorm_probe_raw{n=\"0\"} 1\nstorm_probe_raw{n=\"12\"} 1\n"), t0.Add(500*time.Millisecond))
	r.look([]byte("storm_probe_raw{n=\"1\"} 1\nstorm_probe_raw{n=\"0\"} 1\n"), t0.Add(4*time.Second))
	r.look([]byte("storm_probe_raw{n=\"2\"} 1\nstorm_probe_raw{n=\""), end.Add(time.Second))
	soon, late, never, worst, _ := r.tally(2*time.Second, end)
	if soon != 1 || late != 2 || never != 1 || worst != 500*time.Millisecond {
		t.Errorf("soon %d late %d never %d worst %s; want 1 2 1 500ms", soon, late, never, worst)
	}
}

func TestSelfMetrics12(t *testing.T) {
	body := []byte(`# TYPE push_gateway_web_requests_refused_total counter
push_gateway_web_requests_refused_total 230
push_gateway_web_requests_refused_total_other 7
push_gateway_ingest_pushes_total{code="200",method="PUT"} 3
push_gateway_ingest_pushes_total{code="413",method="POST"} 2
`)
	m := selfMetrics12(body)
	if m["web_refused"] != 230 || m["pushes"] != 5 || m["refused"] != -1 {
		t.Errorf("got %v; want web_refused 230, pushes 5, refused -1 (absent)", m)
	}
}

func TestServerSockets(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cport := c.LocalAddr().(*net.TCPAddr).Port
	sc, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := serverSockets(port)[cport]; !ok || s.inode == 0 || s.state != 1 {
		t.Fatalf("accepted connection from port %d: got %+v, %v; want established with an inode", cport, s, ok)
	}
	sc.Close()
	if s, ok := serverSockets(port)[cport]; ok && s.inode != 0 {
		t.Errorf("closed server side: got %+v; want no inode", s)
	}
}
