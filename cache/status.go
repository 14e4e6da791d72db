package cache

import (
	"encoding/binary"
	"time"
)

// Read-only accessors for the status page: what a snapshot knows of a
// series besides the exposition.

// TTLLeft returns how long series se of s has before it expires if nothing
// updates it, as of now on the cache's clock; ok is false when the cache
// keeps series without a TTL. It is the one place that knows how a series'
// TTL is found.
func (s *Snapshot) TTLLeft(se Series) (left time.Duration, ok bool) {
	c := s.from
	if c == nil {
		return 0, false
	}
	// ttl, epoch and now are set by New and never change: no lock needed.
	ttl := c.ttl
	if se.rec[3]&flagTTL != 0 { // its own, from a push or a # TTL line
		ttl = binary.LittleEndian.Uint32(se.rec[len(se.rec)-4:])
	}
	if ttl == 0 {
		return 0, false
	}
	age := c.tick() - se.updated()
	if age >= ttl {
		return 0, true
	}
	return time.Duration(ttl-age) * tickUnit, true
}

// Pushed reports whether se came from a push of the Pushgateway API (it
// belongs to a group) rather than from the raw stream.
func (se Series) Pushed() bool { return se.rec[3]&flagGroup != 0 }

// Lines returns the number of exposed series that se stands for: 1 for a
// plain series; a histogram's or summary's buckets or quantiles and its
// _sum and _count. The cache's Stats.Series counts the same way.
func (se Series) Lines() int {
	if se.rec[2] != kindCompound {
		return 1
	}
	n := se.Buckets()
	if se.rec[3]&flagSum != 0 {
		n++
	}
	if se.rec[3]&flagCount != 0 {
		n++
	}
	return n
}

func (se Series) updated() uint32 {
	return binary.LittleEndian.Uint32(se.rec[4:])
}
