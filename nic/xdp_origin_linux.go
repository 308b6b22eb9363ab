package nic

import (
	"time"

	"golang.org/x/sys/unix"
)

// This file makes XDPPort an Originator: a load generator takes free frames
// with Alloc, writes its queries into them and puts them on the TX ring with
// Transmit, and takes the replies in with Poll and Send, all on one socket.
// Frames return to the port's free stack from the completion ring (sent) and
// from Send (received), and the fill ring is topped up before Alloc hands
// any out, so that a generator sending flat out never starves its own
// receive path of frames.

var _ Originator = (*XDPPort)(nil)

// Poll implements Originator: Receive without waiting.
func (p *XDPPort) Poll(pkts []Packet) (int, error) {
	return p.receive(pkts, false)
}

// Alloc implements Originator. Each Buf runs from the start of a UMEM frame
// to its end. It hands out at most as many frames as the TX ring has room
// for, so that Transmit can queue every one of them.
func (p *XDPPort) Alloc(pkts []Packet) int {
	p.busy.Store(true)
	if p.closed.Load() {
		p.busy.Store(false)
		return 0
	}
	if p.txPending > 0 {
		// The previous frames were never given to Transmit.
		p.recycle(p.txAddr[:p.txPending])
		p.txPending = 0
	}
	p.reapCompletions()
	p.refill()
	want := min(len(pkts), len(p.txAddr), len(p.free))
	n := int(p.tx.free(uint32(want)))
	if n == 0 {
		p.busy.Store(false)
		return 0
	}
	top := len(p.free)
	for i := 0; i < n; i++ {
		addr := p.free[top-1-i]
		p.txAddr[i] = addr
		pkts[i].Buf = p.umem.frameFrom(addr)
		pkts[i].Len = 0
	}
	p.free = p.free[:top-n]
	p.txPending = n
	return n
}

// Transmit implements Originator. A packet whose Len exceeds its frame is
// dropped and counted with the replies that were (TxBadLen).
func (p *XDPPort) Transmit(pkts []Packet) error {
	if !p.busy.Load() || p.txPending == 0 {
		if len(pkts) == 0 && p.txPending == 0 {
			p.busy.Store(false)
			if p.closed.Load() {
				return ErrClosed
			}
			return nil
		}
		return ErrSendMismatch
	}
	if len(pkts) != p.txPending {
		p.recycle(p.txAddr[:p.txPending])
		p.txPending = 0
		p.busy.Store(false)
		return ErrSendMismatch
	}
	// Alloc sized the batch to the TX ring's room, but replies sent in
	// between may have taken some of it: look again.
	room := p.tx.free(uint32(len(pkts)))
	queued := uint32(0)
	for i := range pkts {
		addr := p.txAddr[i]
		l := pkts[i].Len
		if l <= 0 {
			p.free = append(p.free, addr)
			continue
		}
		if l > len(pkts[i].Buf) {
			p.txBadLen.Store(p.txBadLen.Load() + 1)
			p.free = append(p.free, addr)
			continue
		}
		if queued == room {
			p.txRingFull.Store(p.txRingFull.Load() + 1)
			p.free = append(p.free, addr)
			continue
		}
		d := p.tx.xdpDesc(p.tx.cachedProd)
		d.Addr = addr
		d.Len = uint32(l)
		d.Options = 0
		p.tx.cachedProd++
		queued++
	}
	if queued > 0 {
		p.tx.submit()
		p.txPackets.Store(p.txPackets.Load() + uint64(queued))
		p.kickTx()
	}
	p.txPending = 0
	p.busy.Store(false)
	return nil
}

// Wait implements Originator.
func (p *XDPPort) Wait(d time.Duration) {
	p.busy.Store(true)
	defer p.busy.Store(false)
	if p.closed.Load() {
		return
	}
	if p.txInFlight() > 0 {
		p.kickTx()
	}
	if p.rx.available(1) > 0 || d <= 0 {
		return
	}
	for i := range p.pollFds {
		p.pollFds[i].Revents = 0
	}
	ts := unix.NsecToTimespec(int64(d))
	unix.Ppoll(p.pollFds[:], &ts, nil)
}
