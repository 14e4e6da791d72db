package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// memStat is the part of /proc/PID/status that the tables show, in kB as the
// kernel writes it.
type memStat struct {
	RSS, HWM, Anon, File int64
}

// parseStatus reads VmRSS, VmHWM, RssAnon and RssFile from the text of
// /proc/PID/status.
func parseStatus(text []byte) (memStat, error) {
	var m memStat
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(text))
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		var dst *int64
		switch key {
		case "VmRSS":
			dst = &m.RSS
		case "VmHWM":
			dst = &m.HWM
		case "RssAnon":
			dst = &m.Anon
		case "RssFile":
			dst = &m.File
		default:
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return m, fmt.Errorf("status: unexpected %s line %q", key, sc.Text())
		}
		v, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("status: %s: %w", key, err)
		}
		*dst = v
		found++
	}
	if found != 4 {
		return m, errors.New("status: VmRSS, VmHWM, RssAnon or RssFile missing")
	}
	return m, nil
}

// parseStatTicks returns utime+stime, in clock ticks, from the text of
// /proc/PID/stat. The command name in parentheses may hold spaces, so the
// fields are counted from the last ')'.
func parseStatTicks(text []byte) (int64, error) {
	i := bytes.LastIndexByte(text, ')')
	if i < 0 {
		return 0, errors.New("stat: no ')'")
	}
	// Fields after ')' start at field 3 (state); utime and stime are 14, 15.
	f := strings.Fields(string(text[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("stat: too few fields")
	}
	ut, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat: utime: %w", err)
	}
	st, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat: stime: %w", err)
	}
	return ut + st, nil
}

// wrkResult is what the tables take from wrk's --latency output.
type wrkResult struct {
	RPS      float64
	P99      time.Duration
	Requests int64
	Errors   int64 // non-2xx/3xx responses plus socket errors
}

// parseWrk reads Requests/sec, the 99% latency line, the request count and
// the error lines of `wrk --latency`.
func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	var haveRPS, haveP99, haveReq bool
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch {
		case f[0] == "Requests/sec:" && len(f) == 2:
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return r, fmt.Errorf("wrk: Requests/sec: %w", err)
			}
			r.RPS, haveRPS = v, true
		case f[0] == "99%" && len(f) == 2:
			d, err := parseWrkDuration(f[1])
			if err != nil {
				return r, err
			}
			r.P99, haveP99 = d, true
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			v, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return r, fmt.Errorf("wrk: requests: %w", err)
			}
			r.Requests, haveReq = v, true
		case strings.HasPrefix(strings.TrimSpace(line), "Non-2xx or 3xx responses:"):
			v, err := strconv.ParseInt(f[len(f)-1], 10, 64)
			if err != nil {
				return r, fmt.Errorf("wrk: non-2xx: %w", err)
			}
			r.Errors += v
		case f[0] == "Socket" && len(f) > 2 && f[1] == "errors:":
			// Socket errors: connect 0, read 0, write 0, timeout 0
			for i := 2; i+1 < len(f); i += 2 {
				v, err := strconv.ParseInt(strings.TrimSuffix(f[i+1], ","), 10, 64)
				if err != nil {
					return r, fmt.Errorf("wrk: socket errors: %w", err)
				}
				r.Errors += v
			}
		}
	}
	if !haveRPS || !haveP99 || !haveReq {
		return r, errors.New("wrk: Requests/sec, 99% or request count missing")
	}
	return r, nil
}

// parseWrkDuration reads wrk's latency units: us, ms, s, m, h.
func parseWrkDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		d      time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("wrk: latency %q: %w", s, err)
			}
			return time.Duration(v * float64(u.d)), nil
		}
	}
	return 0, fmt.Errorf("wrk: latency %q: unknown unit", s)
}

// sampleSum adds up the samples of metric name in a text exposition whose
// label text contains match ("" matches every series of that name).
func sampleSum(body []byte, name, match string) (float64, bool) {
	var sum float64
	found := false
	for line := range bytes.Lines(body) {
		line = bytes.TrimRight(line, "\n")
		if !bytes.HasPrefix(line, []byte(name)) {
			continue
		}
		rest := line[len(name):]
		if len(rest) == 0 || (rest[0] != ' ' && rest[0] != '{') {
			continue // a longer name with the same prefix
		}
		labels := ""
		if rest[0] == '{' {
			end := bytes.LastIndexByte(rest, '}')
			if end < 0 {
				continue
			}
			labels = string(rest[:end+1])
			rest = rest[end+1:]
		}
		if match != "" && !strings.Contains(labels, match) {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}

// countSeries counts the sample lines whose metric name starts with prefix.
func countSeries(body []byte, prefix string) int {
	n := 0
	for line := range bytes.Lines(body) {
		if bytes.HasPrefix(line, []byte(prefix)) {
			n++
		}
	}
	return n
}
