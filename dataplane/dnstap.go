package dataplane

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/ringdns/ringdns/nic"
)

// DnstapFilter says which exchanges a worker logs through its Dnstap ring
// and as what. The control plane publishes a new one on reload
// (Dnstap.SetFilter); the worker loads it once per batch.
type DnstapFilter struct {
	// Sample logs one exchange in Sample: every Sample-th reply the
	// worker sends, counted before the filters below; 0 and 1 log every
	// one.
	Sample uint32
	// Queries and Responses choose the messages of an exchange logged:
	// the query (AUTH_QUERY), the response (AUTH_RESPONSE) or both.
	Queries, Responses bool
	// Rcodes has bit r set to log the exchanges whose reply has the
	// (extended) rcode r; 0 logs every rcode.
	Rcodes uint64
	// Qtypes lists the query types logged; empty logs every type.
	Qtypes []uint16
}

// messages is the number of dnstap messages one exchange makes.
func (f *DnstapFilter) messages() uint64 {
	n := uint64(0)
	if f.Queries {
		n++
	}
	if f.Responses {
		n++
	}
	return n
}

// match reports whether an exchange whose reply is msg, with rcode, is
// logged.
func (f *DnstapFilter) match(msg []byte, rcode uint16) bool {
	if f.Rcodes != 0 && (rcode > 63 || f.Rcodes&(1<<rcode) == 0) {
		return false
	}
	if len(f.Qtypes) == 0 {
		return true
	}
	qt := replyQtype(msg)
	for _, t := range f.Qtypes {
		if t == qt {
			return true
		}
	}
	return false
}

// replyQtype is the type of the question of a reply, 0 when it has none
// (a FORMERR to nonsense).
func replyQtype(msg []byte) uint16 {
	if len(msg) < hdrLen || be16(msg[4:6]) == 0 {
		return 0
	}
	p := skipName(msg, hdrLen)
	if p < 0 || p+2 > len(msg) {
		return 0
	}
	return be16(msg[p:])
}

// DnstapSlot is one exchange in a Dnstap ring: what the dnstap messages
// of a query and its reply need, copied out of the packet's buffer, which
// the port reuses.
type DnstapSlot struct {
	// Time is when the batch that held the query was received, in
	// nanoseconds since the Unix epoch: one clock reading per batch.
	Time int64
	// Peer is the client's address and port; Dest the address and port
	// the query was sent to (Len 0 when the port cannot tell).
	Peer, Dest nic.Addr
	// TCP is set for an exchange over TCP (Push).
	TCP bool
	// qlen and rlen are the lengths of the query and the reply in buf,
	// one after the other; 0 for a message not logged. qlen is -1 for a
	// query larger than the slot.
	qlen, rlen int
	buf        []byte
}

// Query returns the query message, empty when queries are not logged.
func (s *DnstapSlot) Query() []byte { return s.buf[:s.qlen] }

// Response returns the reply message, empty when responses are not
// logged.
func (s *DnstapSlot) Response() []byte { return s.buf[s.qlen : s.qlen+s.rlen] }

// DefaultDnstapSlots is the number of slots of a ring when NewDnstap is
// given 0: at a worker's rate of some 200,000 replies a second, 5 ms for
// the writer to come back to the ring.
const DefaultDnstapSlots = 1024

// MaxDnstapSlots bounds a ring's slots, whose memory is allocated at once.
const MaxDnstapSlots = 1 << 20

// Dnstap is a worker's ring of exchanges to log with dnstap: single
// producer (the worker), single consumer (the control plane's writer),
// slots and their buffers allocated once by NewDnstap. For each reply it
// sends that the filter selects, the worker copies the query (before the
// reply overwrites it) and the reply into the next free slot; the batch's
// slots are published with one atomic store at its end. When the ring is
// full, or an exchange is larger than a slot, the exchange is dropped and
// its messages counted (Dropped): logging never blocks the worker.
type Dnstap struct {
	_    [64]byte
	head atomic.Uint64 // slots published by the worker
	_    [56]byte
	tail atomic.Uint64 // slots released by the consumer
	_    [56]byte
	// dropped counts the messages lost to a full ring or a small slot;
	// only the worker writes it.
	dropped atomic.Uint64
	filter  atomic.Pointer[DnstapFilter]
	wake    *DnstapWake
	// seen counts the replies since the last one sampled; the worker's.
	seen  uint32
	slots []DnstapSlot
	mask  uint64
	// spare takes an exchange that finds the ring full until its reply
	// shows whether the filter wanted it, and so whether it counts as
	// dropped; nothing is copied into it.
	spare DnstapSlot
}

// NewDnstap returns a ring of n slots (rounded up to a power of two; 0
// means DefaultDnstapSlots) of slotBytes each, for a query and its reply
// together, that wakes its consumer through wake. It logs nothing until
// SetFilter gives it a filter.
func NewDnstap(n, slotBytes int, wake *DnstapWake) (*Dnstap, error) {
	if n <= 0 {
		n = DefaultDnstapSlots
	}
	if n > MaxDnstapSlots || slotBytes < hdrLen || slotBytes > 1<<17 || wake == nil {
		return nil, errors.New("dataplane: a dnstap ring needs 1 to 1M slots of 12 bytes to 128 KiB and a DnstapWake")
	}
	size := 1
	for size < n {
		size <<= 1
	}
	d := &Dnstap{wake: wake, slots: make([]DnstapSlot, size), mask: uint64(size - 1)}
	mem := make([]byte, size*slotBytes)
	for i := range d.slots {
		d.slots[i].buf = mem[i*slotBytes : (i+1)*slotBytes : (i+1)*slotBytes]
	}
	return d, nil
}

// SetFilter publishes the filter the worker applies from its next batch;
// nil logs nothing. f must not change afterwards.
func (d *Dnstap) SetFilter(f *DnstapFilter) { d.filter.Store(f) }

// Filter returns the filter in force.
func (d *Dnstap) Filter() *DnstapFilter { return d.filter.Load() }

// Dropped is the number of messages lost because the ring was full or an
// exchange was larger than a slot. Any goroutine may call it.
func (d *Dnstap) Dropped() uint64 { return d.dropped.Load() }

// Peek returns the oldest exchange not yet released, or nil when the ring
// is empty. The slot stays valid until Release. Only the consumer calls it.
func (d *Dnstap) Peek() *DnstapSlot {
	tail := d.tail.Load()
	if tail == d.head.Load() {
		return nil
	}
	return &d.slots[tail&d.mask]
}

// Release gives the slot Peek returned back to the worker.
func (d *Dnstap) Release() { d.tail.Store(d.tail.Load() + 1) }

// dnstapBatch is a worker's view of its ring during one batch, on its
// stack: the slots it fills are published at the batch's end.
type dnstapBatch struct {
	f           *DnstapFilter
	now         int64
	head, start uint64 // the next slot to fill; head at the batch's start
	tail        uint64 // the consumer's tail as last loaded
	seen        uint32
	dropped     uint64
	dests       nic.Destinations // nil when the port cannot tell
}

// begin starts a batch: one load of the filter and the indices, one clock
// reading.
func (d *Dnstap) begin(b *dnstapBatch, port nic.Port) {
	if b.f = d.filter.Load(); b.f == nil {
		return
	}
	b.now = time.Now().UnixNano()
	b.head = d.head.Load()
	b.start, b.tail, b.seen = b.head, d.tail.Load(), d.seen
	b.dests, _ = port.(nic.Destinations)
}

// query takes packet i of the batch, before it is answered: when the
// sample selects it, it returns the slot its exchange goes in, with the
// query copied when queries are logged, and otherwise nil. The slot is
// published by reply, or reused by the next query when the packet gets no
// reply.
func (d *Dnstap) query(b *dnstapBatch, p *nic.Packet, i int) *DnstapSlot {
	f := b.f
	if f == nil {
		return nil
	}
	if f.Sample > 1 {
		if b.seen++; b.seen < f.Sample {
			return nil
		}
		b.seen = 0
	}
	if b.head-b.tail >= uint64(len(d.slots)) {
		if b.tail = d.tail.Load(); b.head-b.tail >= uint64(len(d.slots)) {
			return &d.spare
		}
	}
	s := &d.slots[b.head&d.mask]
	s.Time, s.Peer, s.TCP, s.qlen, s.rlen = b.now, p.Peer, false, 0, 0
	if b.dests != nil {
		s.Dest = b.dests.Destination(i)
	} else {
		s.Dest = nic.Addr{}
	}
	if f.Queries {
		if p.Len > len(s.buf) {
			s.qlen = -1
		} else {
			s.qlen = copy(s.buf, p.Buf[:p.Len])
		}
	}
	return s
}

// reply finishes the exchange query began, whose reply msg is about to be
// sent with rcode: if the filter wants it, the reply is copied when
// responses are logged and the slot published at the batch's end, or the
// exchange counted as dropped when the ring was full or the slot is too
// small.
func (d *Dnstap) reply(b *dnstapBatch, s *DnstapSlot, msg []byte, rcode uint16) {
	if !b.f.match(msg, rcode) {
		return
	}
	if s == &d.spare || s.qlen < 0 {
		b.dropped += b.f.messages()
		return
	}
	if b.f.Responses {
		if len(msg) > len(s.buf)-s.qlen {
			b.dropped += b.f.messages()
			return
		}
		s.rlen = copy(s.buf[s.qlen:], msg)
	}
	b.head++
}

// end publishes the batch's slots, wakes the consumer if it sleeps, and
// keeps the sample's count and the drops.
func (d *Dnstap) end(b *dnstapBatch) {
	if b.f == nil {
		return
	}
	d.seen = b.seen
	if b.dropped != 0 {
		d.dropped.Store(d.dropped.Load() + b.dropped)
	}
	if b.head != b.start {
		// The store publishes the slots' contents: a consumer that loads
		// the new head sees them (sync/atomic is sequentially consistent).
		d.head.Store(b.head)
		d.wake.notify()
	}
}

// Push logs one exchange of a producer outside the worker loop, the TCP
// service: query and its reply, from peer to dest (either may be nil), at
// now. The caller makes sure no two Push calls, and no worker, use the
// ring at once.
func (d *Dnstap) Push(now time.Time, peer, dest *nic.Addr, query, reply []byte, rcode uint16) {
	var b dnstapBatch
	if d.begin(&b, nil); b.f == nil {
		return
	}
	b.now = now.UnixNano()
	p := nic.Packet{Buf: query, Len: len(query)}
	if peer != nil {
		p.Peer = *peer
	}
	s := d.query(&b, &p, 0)
	if s == nil {
		d.end(&b)
		return
	}
	if s != &d.spare {
		s.TCP = true
		if dest != nil {
			s.Dest = *dest
		}
	}
	d.reply(&b, s, reply, rcode)
	d.end(&b)
}

// DnstapWake is how the workers wake the one consumer of their rings. The
// consumer says it sleeps with a flag, which a worker reads once per batch
// that published, as an AF_XDP ring asks for a wakeup only when it needs
// one: under a stream of exchanges the consumer is busy, and the workers
// do no more than their atomic stores.
type DnstapWake struct {
	asleep atomic.Bool
	ch     chan struct{}
}

// NewDnstapWake returns a DnstapWake for one consumer.
func NewDnstapWake() *DnstapWake { return &DnstapWake{ch: make(chan struct{}, 1)} }

// notify wakes the consumer if it sleeps. Go's atomics being sequentially
// consistent, either the worker sees asleep set here, or the consumer sees
// the new head in Wait after setting it.
func (k *DnstapWake) notify() {
	if k.asleep.Load() && k.asleep.CompareAndSwap(true, false) {
		select {
		case k.ch <- struct{}{}:
		default:
		}
	}
}

// Wake wakes the consumer if it sleeps in Wait, for a request of the
// control plane's own.
func (k *DnstapWake) Wake() { k.notify() }

// Wait returns at once when a ring of rings holds an exchange, and
// otherwise when a worker publishes one, timeout fires or stop is closed;
// it reports false for stop. Only the consumer calls it.
func (k *DnstapWake) Wait(rings []*Dnstap, stop <-chan struct{}, timeout <-chan time.Time) bool {
	k.asleep.Store(true)
	for _, d := range rings {
		if d.tail.Load() != d.head.Load() {
			k.asleep.Store(false)
			return true
		}
	}
	select {
	case <-k.ch:
		return true
	case <-timeout:
		k.asleep.Store(false)
		return true
	case <-stop:
		k.asleep.Store(false)
		return false
	}
}
