package remotewrite

import "sync"

// request is one compressed WriteRequest waiting to be delivered.
type request struct {
	body    []byte
	samples int
	// abandon is closed when the queue dropped the request while it was
	// being sent (it was the oldest and the queue needed room): the sender
	// stops retrying it and counts it dropped, unless the try under way
	// delivered it after all.
	abandon   chan struct{}
	abandoned bool // guarded by queue.mu
}

// queue holds the requests not yet delivered, oldest first, within max
// compressed bytes; the one being sent counts until it leaves. When a new
// request does not fit, the oldest ones make room and their samples are
// counted dropped. Its methods are safe for concurrent use: the snapshot
// loop pushes, the sender takes.
type queue struct {
	mu       sync.Mutex
	reqs     []*request // waiting, oldest first
	inflight *request   // taken by the sender, not yet finished
	bytes    int        // of reqs and inflight (unless abandoned)
	max      int
	spare    *request      // the last request finished, for the next snapshot
	closing  bool          // no more pushes: next returns nil once empty
	ready    chan struct{} // a push or closing happened (capacity 1)
	stats    *Stats
	// tooLarge, if set, is told of a request larger than the whole queue
	// (called without the lock).
	tooLarge func(size, max int)
}

func newQueue(max int, stats *Stats) *queue {
	return &queue{max: max, ready: make(chan struct{}, 1), stats: stats}
}

func (q *queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// push adds r at the end and drops the oldest requests while the queue
// holds more than max bytes. A request larger than the whole queue is
// dropped alone, and said once: the others are not given up for it.
func (q *queue) push(r *request) {
	q.mu.Lock()
	if len(r.body) > q.max {
		q.stats.Dropped.Add(uint64(r.samples))
		q.mu.Unlock()
		if q.tooLarge != nil {
			q.tooLarge(len(r.body), q.max)
		}
		return
	}
	q.reqs = append(q.reqs, r)
	q.bytes += len(r.body)
	for q.bytes > q.max {
		if f := q.inflight; f != nil && !f.abandoned {
			f.abandoned = true
			q.bytes -= len(f.body)
			close(f.abandon)
			continue
		}
		old := q.reqs[0]
		q.reqs[0] = nil
		q.reqs = q.reqs[1:]
		q.bytes -= len(old.body)
		q.stats.Dropped.Add(uint64(old.samples))
	}
	q.stats.QueueBytes.Store(int64(q.bytes))
	q.mu.Unlock()
	q.signal()
}

// next returns the oldest waiting request and marks it in flight. It
// waits for one while the queue is empty, and returns nil when done is
// closed or the queue is closing and empty.
func (q *queue) next(done <-chan struct{}) *request {
	for {
		q.mu.Lock()
		if len(q.reqs) > 0 {
			r := q.reqs[0]
			q.reqs[0] = nil
			q.reqs = q.reqs[1:]
			if len(q.reqs) == 0 {
				q.reqs = q.reqs[:0:0] // let the backing array go once drained
			}
			q.inflight = r
			q.mu.Unlock()
			return r
		}
		closing := q.closing
		q.mu.Unlock()
		if closing {
			return nil
		}
		select {
		case <-q.ready:
		case <-done:
			return nil
		}
	}
}

// waiting returns how many requests wait behind the one in flight.
func (q *queue) waiting() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.reqs)
}

// finish ends the flight of r: delivered or given up. It reports whether r
// had been abandoned by the queue meanwhile.
func (q *queue) finish(r *request) (abandoned bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !r.abandoned {
		q.bytes -= len(r.body)
	}
	q.inflight = nil
	q.stats.QueueBytes.Store(int64(q.bytes))
	return r.abandoned
}

// recycle gives r, finished and no longer used by its sender, for the next
// snapshot to fill again: a daemon that delivers every interval then
// allocates no request and no body.
func (q *queue) recycle(r *request) {
	q.mu.Lock()
	q.spare = r
	q.mu.Unlock()
}

// request returns an empty request, the recycled one if there is one.
func (q *queue) request() *request {
	q.mu.Lock()
	r := q.spare
	q.spare = nil
	q.mu.Unlock()
	if r == nil {
		return &request{abandon: make(chan struct{})}
	}
	if r.abandoned {
		r.abandon, r.abandoned = make(chan struct{}), false
	}
	r.body, r.samples = r.body[:0], 0
	return r
}

// close makes next return nil once the queue is empty.
func (q *queue) close() {
	q.mu.Lock()
	q.closing = true
	q.mu.Unlock()
	q.signal()
}

// dropAll empties the queue, counting what it held as dropped. The request
// in flight, if any, is its sender's to count.
func (q *queue) dropAll() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, r := range q.reqs {
		q.bytes -= len(r.body)
		q.stats.Dropped.Add(uint64(r.samples))
	}
	q.reqs = nil
	q.stats.QueueBytes.Store(int64(q.bytes))
}
