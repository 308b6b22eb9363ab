package dataplane

import (
	"errors"
	"sync/atomic"

	"github.com/ringdns/ringdns/nic"
)

// HandoffSlotSize is the largest message a Handoff slot holds. NOTIFY
// messages and signed queries are a few hundred bytes; a larger one is
// dropped (DropHandoff) rather than every slot sized for 64 KiB datagrams.
const HandoffSlotSize = 2048

// DefaultHandoffSlots is the number of slots of a Handoff ring when
// NewHandoff is given 0: enough for a burst of NOTIFYs from every primary
// of a server with many zones, while a flood of signed queries costs each
// worker at most this many copies per drain of the control plane.
const DefaultHandoffSlots = 64

// HandoffMsg is one message handed off: its bytes, where it came from and
// the address it was sent to, from which the reply must be sent (a client
// accepts a reply only from the address and port it asked).
type HandoffMsg struct {
	Len  int
	Peer nic.Addr
	// Dest is the query's destination address and port as the port gave
	// it (nic.Destinations); Len 0 when the port cannot tell, and the
	// reply then goes from the address the port is bound to.
	Dest nic.Addr
	Buf  [HandoffSlotSize]byte
}

// Msg returns the message's bytes.
func (m *HandoffMsg) Msg() []byte { return m.Buf[:m.Len] }

// Handoff is the ring through which a worker passes the UDP messages it does
// not answer itself (KindHandoff: NOTIFY, and messages signed with TSIG) to a
// control plane goroutine: single producer (the worker), single consumer,
// slots allocated once by NewHandoff. The worker copies a message into the
// next free slot and publishes it with one atomic store; when the ring is
// full it drops the message and counts DropHandoff, so a flood of NOTIFYs
// or signed queries costs the worker a copy each and never blocks it.
//
// The consumer sleeps in Wait when the ring is empty. The worker wakes it
// only when it has said it sleeps (a flag, checked once per batch that
// handed something off), as an AF_XDP ring asks for a sendto only when it
// needs a wakeup: under a stream of hand-offs the consumer is busy, and
// the worker does no more than its atomic stores.
type Handoff struct {
	_    [64]byte
	head atomic.Uint64 // slots published by the worker
	_    [56]byte
	tail atomic.Uint64 // slots released by the consumer
	_    [56]byte
	// asleep is set by the consumer before it waits on wake and cleared
	// by whichever side wakes it.
	asleep atomic.Bool
	wake   chan struct{}
	slots  []HandoffMsg
	mask   uint64
}

// NewHandoff returns a ring of n slots (rounded up to a power of two; 0
// means DefaultHandoffSlots).
func NewHandoff(n int) *Handoff {
	if n <= 0 {
		n = DefaultHandoffSlots
	}
	size := 1
	for size < n {
		size <<= 1
	}
	return &Handoff{wake: make(chan struct{}, 1), slots: make([]HandoffMsg, size), mask: uint64(size - 1)}
}

// push copies msg, from peer to dest, into the next free slot and publishes
// it. It reports false, leaving the ring as it was, when the ring is full or
// msg is larger than a slot. Only the worker calls it.
func (h *Handoff) push(msg []byte, peer *nic.Addr, dest nic.Addr) bool {
	head := h.head.Load()
	if head-h.tail.Load() >= uint64(len(h.slots)) || len(msg) > HandoffSlotSize {
		return false
	}
	s := &h.slots[head&h.mask]
	s.Len = copy(s.Buf[:], msg)
	s.Peer = *peer
	s.Dest = dest
	// The store publishes the slot's contents: a consumer that loads the
	// new head sees them (sync/atomic is sequentially consistent).
	h.head.Store(head + 1)
	return true
}

// notify wakes the consumer if it sleeps; the worker calls it after a batch
// that pushed. Go's atomics being sequentially consistent, either the
// worker sees asleep set here, or the consumer sees the new head in Wait
// after setting it: no message waits for a wakeup that never comes.
func (h *Handoff) notify() {
	if h.asleep.Load() && h.asleep.CompareAndSwap(true, false) {
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
}

// Peek returns the oldest message not yet released, or nil when the ring is
// empty. The message stays valid until Release. Only the consumer calls it.
func (h *Handoff) Peek() *HandoffMsg {
	tail := h.tail.Load()
	if tail == h.head.Load() {
		return nil
	}
	return &h.slots[tail&h.mask]
}

// Release gives the slot Peek returned back to the worker.
func (h *Handoff) Release() {
	h.tail.Store(h.tail.Load() + 1)
}

// ErrHandoffStopped is returned by Wait once stop is closed.
var ErrHandoffStopped = errors.New("dataplane: handoff consumer stopped")

// Wait blocks until the ring may hold a message or stop is closed, when it
// returns ErrHandoffStopped. Only the consumer calls it.
func (h *Handoff) Wait(stop <-chan struct{}) error {
	h.asleep.Store(true)
	if h.tail.Load() != h.head.Load() {
		h.asleep.Store(false)
		return nil
	}
	select {
	case <-h.wake:
		return nil
	case <-stop:
		h.asleep.Store(false)
		return ErrHandoffStopped
	}
}
