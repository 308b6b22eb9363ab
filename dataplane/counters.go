package dataplane

import "sync/atomic"

// Counters are the statistics of one worker. Exactly one goroutine (the
// worker) writes them; it uses atomic loads and stores, not read-modify-write
// instructions, so an increment costs a plain load and store while readers on
// other goroutines still see whole values. The padding keeps two workers'
// counters off each other's cache lines.
type Counters struct {
	_        [64]byte
	Queries  atomic.Uint64 // packets handed to the engine
	Replies  atomic.Uint64 // replies sent
	Bytes    atomic.Uint64 // reply bytes sent
	TC       atomic.Uint64 // truncated replies
	DO       atomic.Uint64 // queries with DO=1
	Kinds    [NumKinds]atomic.Uint64
	Rcodes   [24]atomic.Uint64 // by rcode, BADVERS (16) included
	Drops    [NumDropReasons]atomic.Uint64
	SendErrs atomic.Uint64 // replies the port failed to send
	_        [64]byte
}

func inc(c *atomic.Uint64)           { c.Store(c.Load() + 1) }
func add(c *atomic.Uint64, n uint64) { c.Store(c.Load() + n) }

// Count records one result and, when a reply was sent, its length.
func (c *Counters) Count(r Result, replyLen int) {
	inc(&c.Queries)
	if r.Kind == KindDrop {
		inc(&c.Drops[r.Drop])
		return
	}
	inc(&c.Replies)
	add(&c.Bytes, uint64(replyLen))
	inc(&c.Kinds[r.Kind])
	if int(r.Rcode) < len(c.Rcodes) {
		inc(&c.Rcodes[r.Rcode])
	}
	if r.TC {
		inc(&c.TC)
	}
	if r.DO {
		inc(&c.DO)
	}
}

// CounterValues is a point-in-time copy of Counters for the control plane.
type CounterValues struct {
	Queries, Replies, Bytes, TC, DO, SendErrs uint64
	Kinds                                     [NumKinds]uint64
	Rcodes                                    [24]uint64
	Drops                                     [NumDropReasons]uint64
}

// Values reads the counters. It may run concurrently with the writer.
func (c *Counters) Values() CounterValues {
	var v CounterValues
	v.Queries, v.Replies, v.Bytes = c.Queries.Load(), c.Replies.Load(), c.Bytes.Load()
	v.TC, v.DO, v.SendErrs = c.TC.Load(), c.DO.Load(), c.SendErrs.Load()
	for i := range c.Kinds {
		v.Kinds[i] = c.Kinds[i].Load()
	}
	for i := range c.Rcodes {
		v.Rcodes[i] = c.Rcodes[i].Load()
	}
	for i := range c.Drops {
		v.Drops[i] = c.Drops[i].Load()
	}
	return v
}

// Add accumulates other into v (to sum workers).
func (v *CounterValues) Add(o CounterValues) {
	v.Queries += o.Queries
	v.Replies += o.Replies
	v.Bytes += o.Bytes
	v.TC += o.TC
	v.DO += o.DO
	v.SendErrs += o.SendErrs
	for i := range v.Kinds {
		v.Kinds[i] += o.Kinds[i]
	}
	for i := range v.Rcodes {
		v.Rcodes[i] += o.Rcodes[i]
	}
	for i := range v.Drops {
		v.Drops[i] += o.Drops[i]
	}
}

// String names of kinds and drop reasons, for metrics labels.
var (
	KindNames = [NumKinds]string{"drop", "answer", "referral", "nodata", "nxdomain", "refused", "formerr", "notimp", "badvers", "chaos", "servfail"}
	DropNames = [NumDropReasons]string{"none", "short", "response", "malformed", "frame", "nospace"}
)
