// Package nictest provides in-memory nic.Ports, so that the logic above
// packet I/O (the worker loop, counting, a load generator) is tested without
// sockets, devices or privileges.
//
// Port moves the bytes it is given as they are: DNS messages for a data
// plane worker, as the kernel-socket port delivers them, or whole frames
// for a load generator. A test injects packets with Inject, the port's
// owner receives them with Receive and hands the replies back with Send,
// and the test collects them with Take. Ring replays a fixed list of
// packets, and in its Ethernet mode stands in for the AF_XDP port. Buffers and queues are allocated once by New; injecting,
// receiving, sending and taking allocate nothing, so a whole worker loop can
// be measured with testing.AllocsPerRun.
package nictest

import (
	"errors"
	"sync"
	"time"

	"github.com/ringdns/ringdns/nic"
)

// ErrFull is returned by Inject when every buffer of the port holds a packet
// that has not been answered yet.
var ErrFull = errors.New("nictest: no free buffer")

// ErrContract is returned by Send when it is not given exactly the packets of
// the preceding Receive, which a real port could not detect and would turn
// into corrupted or lost buffers.
var ErrContract = errors.New("nictest: Send does not match the preceding Receive")

// Config sizes a Port.
type Config struct {
	// Buffers is the number of packet buffers, which bounds the number of
	// injected packets not yet answered. 0 means 256.
	Buffers int
	// BufSize is the length of each packet's Buf, the largest reply. 0 means
	// 4096.
	BufSize int
	// Replies is the number of replies kept until taken; further replies are
	// counted in Overflow and discarded. 0 means Buffers.
	Replies int
	// Idle is how long Receive waits before returning 0 packets. 0 means
	// 20 ms; the nic.Port contract allows at most 200 ms.
	Idle time.Duration
	// UsesSum makes the port report that it uses Packet.Sum (nic.SumUser),
	// as the AF_XDP port does, so that a worker fills it in for the test to
	// check; the port itself only moves it along.
	UsesSum bool
	// Loopback, when set, turns the port into a wire that answers itself:
	// every packet sent with Transmit is passed to Loopback, which rewrites
	// it in place into the packet to receive and returns that packet's
	// length (0 drops it), and is then queued for Receive or Poll instead
	// of for Take. It is called with the port's lock held.
	Loopback func(b []byte, n int) int
}

// Port is an in-memory nic.Port. Inject, Take, the counters and Close may be
// called from any goroutine; Receive and Send belong to the port's owner.
type Port struct {
	cfg  Config
	slab []byte

	mu      sync.Mutex
	closed  bool
	free    []int32 // indices of free buffers, used as a stack
	inQ     ring    // injected packets, oldest first
	pending []int32 // buffer of each packet handed out by the last Receive
	alloced []int32 // buffer of each packet handed out by the last Alloc
	outQ    ring    // replies not yet taken
	outBufs []byte  // reply copies, one BufSize slot per outQ entry

	sent, dropped, sendErrs, overflow uint64
	failSends                         int

	// inReady and outReady hold a token while the queue may be non-empty;
	// the waiting side consumes the token and checks under mu.
	inReady  chan struct{}
	outReady chan struct{}
	done     chan struct{}
	recvTmr  *time.Timer
	takeTmr  *time.Timer
	takeMu   sync.Mutex // one Take at a time shares takeTmr
}

// ring is a bounded FIFO of packet descriptors.
type ring struct {
	items      []item
	head, size int
}

type item struct {
	buf  int32 // buffer index (inQ) or reply slot (outQ)
	len  int
	peer nic.Addr
}

func (r *ring) push(it item) bool {
	if r.size == len(r.items) {
		return false
	}
	r.items[(r.head+r.size)%len(r.items)] = it
	r.size++
	return true
}

func (r *ring) pop() (item, bool) {
	if r.size == 0 {
		return item{}, false
	}
	it := r.items[r.head]
	r.head = (r.head + 1) % len(r.items)
	r.size--
	return it, true
}

// New returns an open Port.
func New(cfg Config) *Port {
	if cfg.Buffers <= 0 {
		cfg.Buffers = 256
	}
	if cfg.BufSize <= 0 {
		cfg.BufSize = 4096
	}
	if cfg.Replies <= 0 {
		cfg.Replies = cfg.Buffers
	}
	if cfg.Idle <= 0 {
		cfg.Idle = 20 * time.Millisecond
	}
	p := &Port{
		cfg:      cfg,
		slab:     make([]byte, cfg.Buffers*cfg.BufSize),
		free:     make([]int32, 0, cfg.Buffers),
		inQ:      ring{items: make([]item, cfg.Buffers)},
		pending:  make([]int32, 0, cfg.Buffers),
		alloced:  make([]int32, 0, cfg.Buffers),
		outQ:     ring{items: make([]item, cfg.Replies)},
		outBufs:  make([]byte, cfg.Replies*cfg.BufSize),
		inReady:  make(chan struct{}, 1),
		outReady: make(chan struct{}, 1),
		done:     make(chan struct{}),
		recvTmr:  time.NewTimer(time.Hour),
		takeTmr:  time.NewTimer(time.Hour),
	}
	p.recvTmr.Stop()
	p.takeTmr.Stop()
	for i := cfg.Buffers - 1; i >= 0; i-- {
		p.free = append(p.free, int32(i))
	}
	return p
}

func (p *Port) buf(i int32) []byte {
	off := int(i) * p.cfg.BufSize
	return p.slab[off : off+p.cfg.BufSize : off+p.cfg.BufSize]
}

func (p *Port) outBuf(i int32) []byte {
	off := int(i) * p.cfg.BufSize
	return p.outBufs[off : off+p.cfg.BufSize : off+p.cfg.BufSize]
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Inject queues a copy of pkt, received from peer, for Receive. pkt longer
// than BufSize is cut to BufSize, as a socket would truncate it.
func (p *Port) Inject(pkt []byte, peer nic.Addr) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nic.ErrClosed
	}
	if len(p.free) == 0 {
		p.mu.Unlock()
		return ErrFull
	}
	i := p.free[len(p.free)-1]
	p.free = p.free[:len(p.free)-1]
	n := copy(p.buf(i), pkt)
	p.inQ.push(item{buf: i, len: n, peer: peer}) // cannot fail: len(inQ) == Buffers
	p.mu.Unlock()
	signal(p.inReady)
	return nil
}

// Receive implements nic.Port.
func (p *Port) Receive(pkts []nic.Packet) (int, error) {
	return p.receive(pkts, false)
}

// Poll implements nic.Originator.
func (p *Port) Poll(pkts []nic.Packet) (int, error) {
	return p.receive(pkts, true)
}

// receive is Receive, or Poll when now is set.
func (p *Port) receive(pkts []nic.Packet, now bool) (int, error) {
	idle := now
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return 0, nic.ErrClosed
		}
		if len(p.pending) != 0 {
			p.mu.Unlock()
			return 0, ErrContract
		}
		if p.inQ.size > 0 || idle {
			n := 0
			for n < len(pkts) {
				it, ok := p.inQ.pop()
				if !ok {
					break
				}
				pkts[n] = nic.Packet{Buf: p.buf(it.buf), Len: it.len, Peer: it.peer}
				p.pending = append(p.pending, it.buf)
				n++
			}
			more := p.inQ.size > 0
			p.mu.Unlock()
			if more {
				signal(p.inReady)
			}
			return n, nil
		}
		p.mu.Unlock()
		p.recvTmr.Reset(p.cfg.Idle)
		select {
		case <-p.inReady:
		case <-p.recvTmr.C:
			idle = true
		case <-p.done:
		}
		p.recvTmr.Stop()
	}
}

// Send implements nic.Port. It copies every reply (Len > 0) to the reply
// queue, unless a failure was requested with FailSends, and frees every
// buffer of the batch.
func (p *Port) Send(pkts []nic.Packet) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(pkts) != len(p.pending) {
		p.releasePending()
		return ErrContract
	}
	for i := range pkts {
		b := p.buf(p.pending[i])
		if len(pkts[i].Buf) == 0 || &pkts[i].Buf[0] != &b[0] || pkts[i].Len > len(b) {
			p.releasePending()
			return ErrContract
		}
	}
	if p.closed {
		p.releasePending()
		return nic.ErrClosed
	}
	replied := false
	for i := range pkts {
		pk := &pkts[i]
		switch {
		case pk.Len <= 0:
			p.dropped++
		case p.failSends > 0:
			p.failSends--
			p.sendErrs++
		case p.outQ.size == len(p.outQ.items):
			p.overflow++
		default:
			slot := int32((p.outQ.head + p.outQ.size) % len(p.outQ.items))
			copy(p.outBuf(slot), pk.Buf[:pk.Len])
			p.outQ.push(item{buf: slot, len: pk.Len, peer: pk.Peer})
			p.sent++
			replied = true
		}
	}
	p.releasePending()
	if replied {
		signal(p.outReady)
	}
	return nil
}

// releasePending returns the buffers of the last Receive to the free list.
func (p *Port) releasePending() {
	p.free = append(p.free, p.pending...)
	p.pending = p.pending[:0]
}

// Take waits up to timeout for a reply, copies it into dst and returns its
// length (the full length: at most len(dst) bytes are copied) and the peer
// it is addressed to. ok is false when no reply came in time.
func (p *Port) Take(dst []byte, timeout time.Duration) (n int, peer nic.Addr, ok bool) {
	p.takeMu.Lock()
	defer p.takeMu.Unlock()
	deadline := time.Now().Add(timeout)
	for {
		p.mu.Lock()
		if it, got := p.outQ.pop(); got {
			copy(dst, p.outBuf(it.buf)[:it.len])
			more := p.outQ.size > 0
			p.mu.Unlock()
			if more {
				signal(p.outReady)
			}
			return it.len, it.peer, true
		}
		p.mu.Unlock()
		left := time.Until(deadline)
		if left <= 0 {
			return 0, nic.Addr{}, false
		}
		p.takeTmr.Reset(left)
		select {
		case <-p.outReady:
		case <-p.takeTmr.C:
		}
		p.takeTmr.Stop()
	}
}

// FailSends makes the next k replies fail to send, as a full socket buffer
// or TX ring would; they are counted in SendErrors.
func (p *Port) FailSends(k int) {
	p.mu.Lock()
	p.failSends += k
	p.mu.Unlock()
}

// Stats are the port's counts since New.
type Stats struct {
	Sent     uint64 // replies queued for Take
	Dropped  uint64 // packets handed back with Len 0
	SendErrs uint64 // replies failed on request (FailSends)
	Overflow uint64 // replies discarded because the reply queue was full
	Queued   int    // injected packets not yet received
}

// Stats returns the port's counts.
func (p *Port) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Stats{Sent: p.sent, Dropped: p.dropped, SendErrs: p.sendErrs, Overflow: p.overflow, Queued: p.inQ.size}
}

// SendErrors is the number of replies that failed to send, as on the real
// ports.
func (p *Port) SendErrors() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sendErrs
}

// UsesSum implements nic.SumUser with Config.UsesSum.
func (p *Port) UsesSum() bool { return p.cfg.UsesSum }

// Close implements nic.Port: a Receive waiting now or later returns
// nic.ErrClosed. Replies already sent can still be taken.
func (p *Port) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		close(p.done)
	}
	return nil
}

var _ nic.Originator = (*Port)(nil)

// Alloc implements nic.Originator: it hands out free buffers, the same ones
// Inject fills.
func (p *Port) Alloc(pkts []nic.Packet) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.free = append(p.free, p.alloced...)
	p.alloced = p.alloced[:0]
	if p.closed {
		return 0
	}
	n := min(len(pkts), len(p.free))
	for i := 0; i < n; i++ {
		b := p.free[len(p.free)-1]
		p.free = p.free[:len(p.free)-1]
		p.alloced = append(p.alloced, b)
		pkts[i] = nic.Packet{Buf: p.buf(b)}
	}
	return n
}

// Transmit implements nic.Originator. Without Loopback, packets go to the
// reply queue for Take, as Send's replies do; with it, they come back for
// Receive.
func (p *Port) Transmit(pkts []nic.Packet) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(pkts) != len(p.alloced) {
		p.free = append(p.free, p.alloced...)
		p.alloced = p.alloced[:0]
		return ErrContract
	}
	for i := range pkts {
		b := p.buf(p.alloced[i])
		if len(pkts[i].Buf) == 0 || &pkts[i].Buf[0] != &b[0] || pkts[i].Len > len(b) {
			p.free = append(p.free, p.alloced...)
			p.alloced = p.alloced[:0]
			return ErrContract
		}
	}
	if p.closed {
		p.free = append(p.free, p.alloced...)
		p.alloced = p.alloced[:0]
		return nic.ErrClosed
	}
	sent, looped := false, false
	for i := range pkts {
		pk := &pkts[i]
		b := p.alloced[i]
		switch {
		case pk.Len <= 0:
			p.dropped++
			p.free = append(p.free, b)
		case p.failSends > 0:
			p.failSends--
			p.sendErrs++
			p.free = append(p.free, b)
		case p.cfg.Loopback != nil:
			p.sent++
			if n := p.cfg.Loopback(p.buf(b), pk.Len); n > 0 {
				p.inQ.push(item{buf: b, len: n}) // cannot fail: len(inQ) == Buffers
				looped = true
			} else {
				p.free = append(p.free, b)
			}
		case p.outQ.size == len(p.outQ.items):
			p.overflow++
			p.free = append(p.free, b)
		default:
			slot := int32((p.outQ.head + p.outQ.size) % len(p.outQ.items))
			copy(p.outBuf(slot), pk.Buf[:pk.Len])
			p.outQ.push(item{buf: slot, len: pk.Len, peer: pk.Peer})
			p.sent++
			sent = true
			p.free = append(p.free, b)
		}
	}
	p.alloced = p.alloced[:0]
	if sent {
		signal(p.outReady)
	}
	if looped {
		signal(p.inReady)
	}
	return nil
}

// Wait implements nic.Originator.
func (p *Port) Wait(d time.Duration) {
	p.mu.Lock()
	ready := p.inQ.size > 0 || p.closed
	p.mu.Unlock()
	if ready || d <= 0 {
		return
	}
	p.recvTmr.Reset(d)
	select {
	case <-p.inReady:
		// Put the token back: Receive consumes it.
		signal(p.inReady)
	case <-p.recvTmr.C:
	case <-p.done:
	}
	p.recvTmr.Stop()
}
