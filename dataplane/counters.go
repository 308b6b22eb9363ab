package dataplane

import "sync/atomic"

// Counters are the statistics of one worker. Exactly one goroutine (the
// worker) writes them, so an update is an atomic load and an atomic store,
// not a read-modify-write, and readers on other goroutines still see whole
// values. An atomic store is nonetheless a full barrier on amd64 (an XCHG),
// so the worker counts a batch in a plain tally on its stack and adds the
// tally to its Counters once per batch. The padding keeps two workers'
// counters off each other's cache lines.
type Counters struct {
	_        [64]byte
	Queries  atomic.Uint64 // packets handed to the engine: Replies + Drops + Kinds[KindHandoff]
	Replies  atomic.Uint64 // replies sent
	Bytes    atomic.Uint64 // reply bytes sent
	TC       atomic.Uint64 // truncated replies
	DO       atomic.Uint64 // queries with DO=1
	Kinds    [NumKinds]atomic.Uint64
	Rcodes   [24]atomic.Uint64 // by rcode, BADVERS (16) included
	Drops    [NumDropReasons]atomic.Uint64
	SendErrs atomic.Uint64 // replies the port failed to send
	// RRLSlipped and RRLDropped count, by class, the replies response
	// rate limiting cut to an empty TC=1 reply (counted as replies too)
	// or dropped (counted in Drops[DropRRL] too).
	RRLSlipped [NumRRLClasses]atomic.Uint64
	RRLDropped [NumRRLClasses]atomic.Uint64
	// Cookies counts the replies to queries by what their COOKIE option
	// was (RFC 7873); Cookies[CookieNone] is not kept.
	Cookies [NumCookieVerdicts]atomic.Uint64
	_       [64]byte
}

func add(c *atomic.Uint64, n uint64) { c.Store(c.Load() + n) }

// Count records one result and, when a reply was sent, its length. It is
// for writers that count one packet at a time (the TCP service); a worker
// counts a batch with a tally.
func (c *Counters) Count(r Result, replyLen int) {
	var t tally
	t.count(r, replyLen)
	c.flush(&t)
}

// tally holds the counts of one batch in plain integers.
type tally struct {
	queries, replies, bytes, tc, do uint64
	kinds                           [NumKinds]uint64
	rcodes                          [24]uint64
	drops                           [NumDropReasons]uint64
	rrlSlipped, rrlDropped          [NumRRLClasses]uint64
	cookies                         [NumCookieVerdicts]uint64
}

// count records one result and, when a reply was sent, its length.
func (t *tally) count(r Result, replyLen int) {
	t.queries++
	if r.Kind == KindDrop {
		t.drops[r.Drop]++
		return
	}
	t.replies++
	t.bytes += uint64(replyLen)
	t.kinds[r.Kind]++
	t.cookies[r.CookieVerdict]++
	if int(r.Rcode) < len(t.rcodes) {
		t.rcodes[r.Rcode]++
	}
	if r.TC {
		t.tc++
	}
	if r.DO {
		t.do++
	}
}

// uncount takes back count(r, replyLen) of a reply that was sent (r.Kind
// is not KindDrop): for one that RRL limits after all (Worker.settleRRL).
func (t *tally) uncount(r Result, replyLen int) {
	t.queries--
	t.replies--
	t.bytes -= uint64(replyLen)
	t.kinds[r.Kind]--
	t.cookies[r.CookieVerdict]--
	if int(r.Rcode) < len(t.rcodes) {
		t.rcodes[r.Rcode]--
	}
	if r.TC {
		t.tc--
	}
	if r.DO {
		t.do--
	}
}

// flush adds t to c, storing only the counters that changed.
func (c *Counters) flush(t *tally) {
	if t.queries == 0 {
		return
	}
	add(&c.Queries, t.queries)
	if t.replies != 0 {
		add(&c.Replies, t.replies)
		add(&c.Bytes, t.bytes)
	}
	if t.tc != 0 {
		add(&c.TC, t.tc)
	}
	if t.do != 0 {
		add(&c.DO, t.do)
	}
	for i, n := range t.kinds {
		if n != 0 {
			add(&c.Kinds[i], n)
		}
	}
	for i, n := range t.rcodes {
		if n != 0 {
			add(&c.Rcodes[i], n)
		}
	}
	for i, n := range t.drops {
		if n != 0 {
			add(&c.Drops[i], n)
		}
	}
	for i := CookieClientOnly; i < NumCookieVerdicts; i++ {
		if n := t.cookies[i]; n != 0 {
			add(&c.Cookies[i], n)
		}
	}
	if t.drops[DropRRL] != 0 || t.tc != 0 {
		// Limited replies are dropped or slipped (truncated): the loops
		// run only in batches with either.
		for i := range t.rrlSlipped {
			if n := t.rrlSlipped[i]; n != 0 {
				add(&c.RRLSlipped[i], n)
			}
			if n := t.rrlDropped[i]; n != 0 {
				add(&c.RRLDropped[i], n)
			}
		}
	}
}

// CounterValues is a point-in-time copy of Counters for the control plane.
type CounterValues struct {
	Queries, Replies, Bytes, TC, DO, SendErrs uint64
	Kinds                                     [NumKinds]uint64
	Rcodes                                    [24]uint64
	Drops                                     [NumDropReasons]uint64
	RRLSlipped, RRLDropped                    [NumRRLClasses]uint64
	Cookies                                   [NumCookieVerdicts]uint64
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
	for i := range c.RRLSlipped {
		v.RRLSlipped[i], v.RRLDropped[i] = c.RRLSlipped[i].Load(), c.RRLDropped[i].Load()
	}
	for i := range c.Cookies {
		v.Cookies[i] = c.Cookies[i].Load()
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
	for i := range v.RRLSlipped {
		v.RRLSlipped[i] += o.RRLSlipped[i]
		v.RRLDropped[i] += o.RRLDropped[i]
	}
	for i := range v.Cookies {
		v.Cookies[i] += o.Cookies[i]
	}
}

// String names of kinds and drop reasons, for metrics labels.
var (
	KindNames = [NumKinds]string{"drop", "answer", "referral", "nodata", "nxdomain", "refused", "formerr", "notimp", "badvers", "chaos", "servfail", "handoff", "badcookie"}
	DropNames = [NumDropReasons]string{"none", "short", "response", "malformed", "frame", "nospace", "nosnapshot", "reflection-port", "handoff-full", "rrl", "bad-checksum"}
)
