package nictest

import (
	"sync/atomic"

	"github.com/ringdns/ringdns/nic"
)

// RingConfig sizes a Ring.
type RingConfig struct {
	// Framing is what the replayed packets hold.
	Framing nic.Framing
	// Buffers is the number of packet buffers the ring rotates through, as
	// a NIC rotates through its UMEM frames; it also bounds one Receive. 0
	// means 256.
	Buffers int
	// BufSize is the length of each packet's Buf, the largest reply. 0 means
	// 4096.
	BufSize int
	// Peer is the sender's address given with every packet of a
	// FramingPayload ring.
	Peer nic.Addr
	// Inspect, when set, is called by Send for every packet of the batch
	// with the index of the packet in the replayed list and the reply
	// (Buf[:Len], nil when the packet was dropped). It runs on the
	// worker's goroutine and must not keep reply.
	Inspect func(packet int, reply []byte)
}

// Ring is a nic.Port that replays a fixed list of packets over and over,
// like an RX ring that never runs dry. Receive copies the next packets into
// the next buffers, as a NIC's DMA would, and Send counts the replies and
// discards them. It needs no second goroutine, so a benchmark or an
// allocation test can run the worker loop on its own goroutine and measure
// the worker alone, without the hand-off costs of Port.
//
// Receive, Send and SetLimit belong to the ring's owner; Stats and Close may
// be called from any goroutine. Nothing allocates after NewRing.
type Ring struct {
	cfg     RingConfig
	packets [][]byte
	slab    []byte

	next    int   // index in packets of the next packet to deliver
	nextBuf int   // index of the next buffer to fill
	limit   int64 // packets still to deliver; negative means no limit

	// The last Receive handed out batchN packets: packet batchFrom+i of
	// packets (wrapping) in buffer batchBuf+i (wrapping), for i < batchN.
	batchN, batchBuf, batchFrom int

	closed                            atomic.Bool
	received, replies, dropped, bytes atomic.Uint64
}

// RingStats are a Ring's counts since NewRing.
type RingStats struct {
	Received uint64 // packets handed out by Receive
	Replies  uint64 // packets handed back with Len > 0
	Dropped  uint64 // packets handed back with Len 0
	Bytes    uint64 // sum of the replies' lengths
}

// NewRing returns an open Ring that replays copies of packets in order,
// starting again from the first after the last. Packets longer than BufSize
// are cut to BufSize, as a socket would truncate them. packets must not be
// empty.
func NewRing(cfg RingConfig, packets [][]byte) *Ring {
	if len(packets) == 0 {
		panic("nictest: NewRing needs at least one packet")
	}
	if cfg.Buffers <= 0 {
		cfg.Buffers = 256
	}
	if cfg.BufSize <= 0 {
		cfg.BufSize = 4096
	}
	r := &Ring{
		cfg:     cfg,
		packets: make([][]byte, len(packets)),
		slab:    make([]byte, cfg.Buffers*cfg.BufSize),
		limit:   -1,
	}
	for i, p := range packets {
		r.packets[i] = append([]byte(nil), p...)
	}
	return r
}

func (r *Ring) buf(i int) []byte {
	off := i * r.cfg.BufSize
	return r.slab[off : off+r.cfg.BufSize : off+r.cfg.BufSize]
}

// SetLimit makes Receive deliver n more packets and then report
// nic.ErrClosed, so that a Worker's Run over the ring returns by itself
// after a known number of packets. A negative n removes the limit. Unlike
// Close, a limit can be set again to run once more.
func (r *Ring) SetLimit(n int) { r.limit = int64(n) }

// Framing reports the framing given in RingConfig.
func (r *Ring) Framing() nic.Framing { return r.cfg.Framing }

// Receive implements nic.Port. It never waits: it fills all of pkts, or as
// many as there are buffers or as the limit allows.
func (r *Ring) Receive(pkts []nic.Packet) (int, error) {
	if r.closed.Load() || r.limit == 0 {
		return 0, nic.ErrClosed
	}
	if r.batchN != 0 {
		return 0, ErrContract
	}
	n := min(len(pkts), r.cfg.Buffers)
	if r.limit > 0 && int64(n) > r.limit {
		n = int(r.limit)
	}
	r.batchN, r.batchBuf, r.batchFrom = n, r.nextBuf, r.next
	for i := 0; i < n; i++ {
		b := r.buf(r.nextBuf)
		pkts[i] = nic.Packet{Buf: b, Len: copy(b, r.packets[r.next]), Peer: r.cfg.Peer}
		if r.nextBuf++; r.nextBuf == r.cfg.Buffers {
			r.nextBuf = 0
		}
		if r.next++; r.next == len(r.packets) {
			r.next = 0
		}
	}
	if r.limit > 0 {
		r.limit -= int64(n)
	}
	r.received.Add(uint64(n))
	return n, nil
}

// Send implements nic.Port: it checks that pkts are the packets of the
// preceding Receive, counts them and frees their buffers.
func (r *Ring) Send(pkts []nic.Packet) error {
	n := r.batchN
	r.batchN = 0
	if len(pkts) != n {
		return ErrContract
	}
	var replies, dropped, bytes uint64
	for i := range pkts {
		p := &pkts[i]
		b := r.buf((r.batchBuf + i) % r.cfg.Buffers)
		if len(p.Buf) == 0 || &p.Buf[0] != &b[0] || p.Len > len(b) {
			return ErrContract
		}
		if p.Len > 0 {
			replies++
			bytes += uint64(p.Len)
		} else {
			dropped++
		}
		if r.cfg.Inspect != nil {
			var reply []byte
			if p.Len > 0 {
				reply = p.Buf[:p.Len]
			}
			r.cfg.Inspect((r.batchFrom+i)%len(r.packets), reply)
		}
	}
	r.replies.Add(replies)
	r.dropped.Add(dropped)
	r.bytes.Add(bytes)
	if r.closed.Load() {
		return nic.ErrClosed
	}
	return nil
}

// Stats returns the ring's counts.
func (r *Ring) Stats() RingStats {
	return RingStats{Received: r.received.Load(), Replies: r.replies.Load(), Dropped: r.dropped.Load(), Bytes: r.bytes.Load()}
}

// Close implements nic.Port: Receive returns nic.ErrClosed from now on.
func (r *Ring) Close() error {
	r.closed.Store(true)
	return nil
}
