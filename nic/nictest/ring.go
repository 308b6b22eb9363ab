package nictest

import (
	"sync/atomic"

	"github.com/ringdns/ringdns/nic"
)

// RingConfig sizes a Ring.
type RingConfig struct {
	// Ethernet makes the ring stand in for an AF_XDP port: the replayed
	// packets are Ethernet frames (see Frame), which Receive strips with
	// nic.Headers after copying each into its buffer and Send turns back
	// into reply frames, the per-packet work of nic.XDPPort. A frame that
	// does not strip is dropped and counted (FrameDrops, or ChecksumDrops
	// when its checksums do not verify). Without it the
	// packets are DNS messages handed out as they are, with Peer.
	Ethernet bool
	// UDPPort is the DNS port of an Ethernet ring's frames; 0 means 53.
	UDPPort uint16
	// MTU bounds an Ethernet ring's replies as the interface MTU bounds
	// XDPPort's; 0 means 1500.
	MTU int
	// Buffers is the number of packet buffers the ring rotates through, as
	// a NIC rotates through its UMEM frames; it also bounds one Receive. 0
	// means 256.
	Buffers int
	// BufSize is the length of each packet's Buf, the largest reply. 0 means
	// 4096.
	BufSize int
	// Peer is the sender's address given with every packet of a ring
	// without Ethernet (an Ethernet ring takes it from each frame).
	Peer nic.Addr
	// Inspect, when set, is called by Send for every packet of the batch
	// with the index of the packet in the replayed list and the packet as
	// the port's owner handed it back: the reply is p.Buf[:p.Len] (none
	// when p.Len is 0), its sum p.Sum. An Ethernet ring calls it before it
	// writes the reply's headers. It runs on the worker's goroutine and
	// must not keep p or its buffer.
	Inspect func(packet int, p *nic.Packet)
}

// Ring is a nic.Port that replays a fixed list of packets over and over,
// like an RX ring that never runs dry. Receive copies the next packets into
// the next buffers, as a NIC's DMA would, and Send counts the replies and
// discards them (an Ethernet ring first turns them into frames, so that a
// benchmark over it counts the AF_XDP port's per-packet work). It needs no
// second goroutine, so a benchmark or an allocation test can run the worker
// loop on its own goroutine and measure the worker alone, without the
// hand-off costs of Port.
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

	// The last Receive handed out batchN packets: slot i holds the packet
	// from[i] of packets in buffer bufs[i], for i < batchN. Without
	// Ethernet both run on from the batch's first (wrapping); an Ethernet
	// ring skips the frames it drops.
	batchN     int
	from, bufs []int32
	handed     [][]byte // the Buf each slot was handed out with

	hdrs *nic.Headers // nil without Ethernet

	closed                                                  atomic.Bool
	received, replies, dropped, bytes, frameDrops, sumDrops atomic.Uint64
}

// RingStats are a Ring's counts since NewRing.
type RingStats struct {
	Received uint64 // packets handed out by Receive
	Replies  uint64 // packets handed back with Len > 0
	Dropped  uint64 // packets handed back with Len 0
	Bytes    uint64 // sum of the replies' lengths (whole frames on an Ethernet ring)
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
		from:    make([]int32, cfg.Buffers),
		bufs:    make([]int32, cfg.Buffers),
		handed:  make([][]byte, cfg.Buffers),
	}
	if cfg.Ethernet {
		port := cfg.UDPPort
		if port == 0 {
			port = 53
		}
		r.hdrs = nic.NewHeaders(port, cfg.MTU, cfg.Buffers)
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

// Receive implements nic.Port. It never waits: it takes as many packets as
// pkts, the buffers and the limit allow, and hands them all out, except the
// frames an Ethernet ring drops (which may leave n == 0).
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
	k := 0
	for range n {
		b := r.buf(r.nextBuf)
		size := copy(b, r.packets[r.next])
		if r.hdrs == nil {
			pkts[k] = nic.Packet{Buf: b, Len: size, Peer: r.cfg.Peer}
		} else if sums := r.hdrs.ChecksumDrops(); !r.hdrs.Strip(k, b, size, &pkts[k]) {
			if r.hdrs.ChecksumDrops() != sums {
				r.sumDrops.Add(1)
			} else {
				r.frameDrops.Add(1)
			}
			r.advance()
			continue
		}
		r.from[k], r.bufs[k], r.handed[k] = int32(r.next), int32(r.nextBuf), pkts[k].Buf
		k++
		r.advance()
	}
	r.batchN = k
	if r.limit > 0 {
		r.limit -= int64(n)
	}
	r.received.Add(uint64(k))
	return k, nil
}

// advance moves on to the next packet and buffer.
func (r *Ring) advance() {
	if r.nextBuf++; r.nextBuf == r.cfg.Buffers {
		r.nextBuf = 0
	}
	if r.next++; r.next == len(r.packets) {
		r.next = 0
	}
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
		b := r.buf(int(r.bufs[i]))
		if h := r.handed[i]; len(p.Buf) != len(h) || cap(p.Buf) != cap(h) || cap(h) > 0 && &p.Buf[:1][0] != &h[:1][0] || p.Len > len(h) {
			return ErrContract
		}
		if r.cfg.Inspect != nil {
			r.cfg.Inspect(int(r.from[i]), p)
		}
		n := p.Len
		if r.hdrs != nil {
			// As XDPPort's Send does: the headers are written around
			// the reply, in the same buffer.
			n, _ = r.hdrs.Reply(i, b, p)
		}
		if n > 0 {
			replies++
			bytes += uint64(n)
		} else {
			dropped++
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

// UsesSum implements nic.SumUser: an Ethernet ring, like the AF_XDP port,
// finishes each reply's UDP checksum from Packet.Sum.
func (r *Ring) UsesSum() bool { return r.hdrs != nil }

// FrameDrops is the number of frames an Ethernet ring dropped in Receive
// because they did not strip, as nic.XDPPort counts them.
func (r *Ring) FrameDrops() uint64 { return r.frameDrops.Load() }

// ChecksumDrops is the number of frames an Ethernet ring dropped in Receive
// because their checksums did not verify, as nic.XDPPort counts them
// apart from FrameDrops.
func (r *Ring) ChecksumDrops() uint64 { return r.sumDrops.Load() }

// Stats returns the ring's counts.
func (r *Ring) Stats() RingStats {
	return RingStats{Received: r.received.Load(), Replies: r.replies.Load(), Dropped: r.dropped.Load(), Bytes: r.bytes.Load()}
}

// Close implements nic.Port: Receive returns nic.ErrClosed from now on.
func (r *Ring) Close() error {
	r.closed.Store(true)
	return nil
}
