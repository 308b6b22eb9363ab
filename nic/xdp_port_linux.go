package nic

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// XDPPort is one AF_XDP socket bound to one receive queue, with its own UMEM
// and rings. It implements Port: Receive strips the Ethernet, IP and UDP
// headers off the query frames (see Headers) and hands out their DNS
// payloads in place, in their UMEM frames; Send writes the reply headers
// back around the replies written there and transmits the same frames. A
// frame that is not a query the data plane answers is dropped by Receive
// and counted (FrameDrops, or ChecksumDrops when its checksums do not
// verify). With XDPConfig.WholeFrames it hands out and
// sends whole frames instead.
//
// Frames circulate without copies: fill ring -> kernel -> RX ring -> the
// worker -> TX ring -> kernel -> completion ring -> fill ring; a dropped
// packet's frame goes from the worker straight back to the fill ring. Frames
// that do not fit in the fill ring wait on a free stack inside the port.
type XDPPort struct {
	fd       int
	queue    int
	zeroCopy bool
	busyPoll bool
	umem     *umem

	fill, comp, rx, tx ring

	// hdrs strips and restores the headers of the frames of a batch; nil
	// with XDPConfig.WholeFrames.
	hdrs *Headers

	// rxAddr holds the UMEM address of each slot filled by the last Receive,
	// so that Send knows which frame each reply is in whatever the worker did
	// to Packet.Buf. pending is the number of those slots.
	rxAddr  []uint64
	pending int

	// txAddr holds the UMEM address of each frame handed out by the last
	// Alloc (see Originator), and txPending their number.
	txAddr    []uint64
	txPending int

	// free is a stack of frame addresses owned by the port, waiting for
	// room in the fill ring.
	free []uint64

	pollFds [2]unix.PollFd
	closeFd int // eventfd written by Close to wake a Receive sleeping in poll

	// busy is set by the worker from the start of Receive until the end of
	// the Send that returns the batch (or the end of a Receive that returns
	// nothing). Close sets closed and then waits for busy to clear before it
	// unmaps anything, so the worker never touches unmapped memory. Both are
	// sequentially consistent atomics: the worker stores busy then loads
	// closed, Close stores closed then loads busy, so at least one of them
	// sees the other.
	busy   atomic.Bool
	closed atomic.Bool
	// handing makes Receive return ErrClosed without touching the rings,
	// for a hand-over to another process (xdp_inherit_linux.go).
	// stoppedAt is when Receive first saw it (monotonicNs), which the new
	// process measures its pause from.
	handing   atomic.Bool
	stoppedAt atomic.Int64
	// resume is what an inherited port notes of its hand-over.
	resume resumeNote

	// Counters written only by the worker (load+store, no read-modify-write)
	// and read by Stats from any goroutine.
	rxPackets  atomic.Uint64
	txPackets  atomic.Uint64
	txRingFull atomic.Uint64
	txBadLen   atomic.Uint64
	kickErrs   atomic.Uint64
	frameDrops atomic.Uint64
	sumDrops   atomic.Uint64

	// quiet is set when a whole idle interval passed without a frame, and
	// makes the next waits scheduled system calls only (see wait).
	quiet bool

	mu        sync.Mutex // serialises Close and Stats around the fd
	closeOnce sync.Once
	closeErr  error
}

// xskOpts are the per-socket settings taken from XDPConfig.
type xskOpts struct {
	// ringSize sizes the TX and completion rings, rxRingSize the fill and
	// RX rings.
	frameSize, frames, ringSize, rxRingSize int
	busyPoll                                bool
	// port and mtu make the Headers of a port that hands out DNS
	// payloads; wholeFrames makes a port without.
	port        uint16
	mtu         int
	wholeFrames bool
}

// openXDPPort creates an AF_XDP socket with its UMEM and rings and binds it
// to queue of ifindex with bindFlags (XDP_ZEROCOPY or XDP_COPY) plus
// XDP_USE_NEED_WAKEUP. The interface is looked up in the calling thread's
// network namespace.
func openXDPPort(ifindex, queue int, o xskOpts, bindFlags uint16) (_ *XDPPort, err error) {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("AF_XDP socket (needs CAP_NET_RAW and CONFIG_XDP_SOCKETS): %w", err)
	}
	p := &XDPPort{fd: fd, queue: queue, busyPoll: o.busyPoll, closeFd: -1}
	defer func() {
		if err != nil {
			p.release()
		}
	}()
	if p.umem, err = newUMEM(o.frames, o.frameSize); err != nil {
		return nil, err
	}
	if err = p.umem.register(fd); err != nil {
		return nil, fmt.Errorf("XDP_UMEM_REG of %d frames of %d bytes (raise RLIMIT_MEMLOCK or grant CAP_IPC_LOCK if ENOMEM/EPERM): %w",
			o.frames, o.frameSize, err)
	}
	for _, r := range []struct {
		opt  int
		name string
		size int
	}{
		{unix.XDP_UMEM_FILL_RING, "fill", o.rxRingSize},
		{unix.XDP_UMEM_COMPLETION_RING, "completion", o.ringSize},
		{unix.XDP_RX_RING, "RX", o.rxRingSize},
		{unix.XDP_TX_RING, "TX", o.ringSize},
	} {
		if err = xskSetRingSize(fd, r.opt, r.size); err != nil {
			return nil, fmt.Errorf("size %s ring to %d: %w", r.name, r.size, err)
		}
	}
	// In copy mode the kernel sends at most a budget of frames per wakeup
	// (32 by default) and asks to be woken again for the rest. Since Linux
	// 6.17 the budget can be raised up to the TX ring's size, which saves
	// the repeated sendto of a large batch; older kernels refuse the option
	// and keep 32, which only costs those extra calls.
	budget := int32(o.ringSize)
	xskSetsockopt(fd, unix.XDP_MAX_TX_SKB_BUDGET, unsafe.Pointer(&budget), unsafe.Sizeof(budget))
	if err := p.mapRings(fd, o); err != nil {
		return nil, err
	}
	for i := o.frames - 1; i >= 0; i-- {
		p.free = append(p.free, uint64(i)*uint64(o.frameSize))
	}
	p.refill()

	sa := &unix.SockaddrXDP{Flags: bindFlags | unix.XDP_USE_NEED_WAKEUP, Ifindex: uint32(ifindex), QueueID: uint32(queue)}
	if err = unix.Bind(fd, sa); err != nil {
		return nil, err
	}
	if p.zeroCopy, err = xskZeroCopy(fd); err != nil {
		return nil, fmt.Errorf("XDP_OPTIONS: %w", err)
	}
	if p.closeFd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	p.pollFds[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	p.pollFds[1] = unix.PollFd{Fd: int32(p.closeFd), Events: unix.POLLIN}
	return p, nil
}

// Queue returns the receive queue the socket is bound to.
func (p *XDPPort) Queue() int { return p.queue }

// mapRings maps the four rings of socket fd (its UMEM's fill and
// completion rings, RX and TX) into p and sizes the port's bookkeeping of
// frame addresses, with every frame still to be placed in p.free. A new
// port (openXDPPort) and one inherited from an upgraded process
// (inheritXDPPort) share it.
func (p *XDPPort) mapRings(fd int, o xskOpts) error {
	off, err := xskMmapOffsets(fd)
	if err != nil {
		return fmt.Errorf("XDP_MMAP_OFFSETS: %w", err)
	}
	size, rxSize := uint32(o.ringSize), uint32(o.rxRingSize)
	if p.fill, err = mapRing(fd, unix.XDP_UMEM_PGOFF_FILL_RING, off.Fr, rxSize, 8, true); err != nil {
		return fmt.Errorf("mmap fill ring: %w", err)
	}
	if p.comp, err = mapRing(fd, unix.XDP_UMEM_PGOFF_COMPLETION_RING, off.Cr, size, 8, false); err != nil {
		return fmt.Errorf("mmap completion ring: %w", err)
	}
	const descSize = 16 // sizeof(struct xdp_desc)
	if p.rx, err = mapRing(fd, unix.XDP_PGOFF_RX_RING, off.Rx, rxSize, descSize, false); err != nil {
		return fmt.Errorf("mmap RX ring: %w", err)
	}
	if p.tx, err = mapRing(fd, unix.XDP_PGOFF_TX_RING, off.Tx, size, descSize, true); err != nil {
		return fmt.Errorf("mmap TX ring: %w", err)
	}
	// A batch is bounded by the RX ring (Receive) and its replies by the
	// TX ring (Send drops what does not fit), so the per-slot bookkeeping
	// of a batch follows the smaller of the two.
	slots := min(o.ringSize, o.rxRingSize)
	p.rxAddr = make([]uint64, slots)
	if !o.wholeFrames {
		p.hdrs = NewHeaders(o.port, o.mtu, slots)
	}
	p.txAddr = make([]uint64, o.ringSize)
	p.free = make([]uint64, 0, o.frames)
	return nil
}

// ZeroCopy reports whether the kernel runs the socket in zero-copy mode.
func (p *XDPPort) ZeroCopy() bool { return p.zeroCopy }

// idleTimeout bounds how long Receive waits before returning n == 0, so that
// the worker can check for shutdown (the Port contract allows 200 ms).
const idleTimeout = 100 * time.Millisecond

// Receive fills pkts with the DNS payloads of received frames; see Port and
// Headers.Strip. Packet.Buf runs from the first byte of the payload to the
// reply limit: the end of its UMEM chunk (the chunk size minus the headroom
// the kernel left in front of the frame, none in copy mode,
// XDP_PACKET_HEADROOM in zero-copy mode) or the MTU, whichever comes first.
// With WholeFrames, Packet.Buf runs from the first byte of the frame to the
// end of its chunk, and Peer is left zero.
func (p *XDPPort) Receive(pkts []Packet) (int, error) {
	return p.receive(pkts, true)
}

// receive is Receive, waiting for a frame only when wait is set.
func (p *XDPPort) receive(pkts []Packet, wait bool) (int, error) {
	p.busy.Store(true)
	if p.closed.Load() || p.handing.Load() {
		if p.handing.Load() {
			p.noteStop()
		}
		p.busy.Store(false)
		return 0, ErrClosed
	}
	if p.resume.await {
		p.noteResume()
	}
	if p.pending > 0 {
		// The previous batch was never returned with Send: treat its frames
		// as dropped rather than lose them.
		p.recycle(p.rxAddr[:p.pending])
		p.pending = 0
	}
	p.reapCompletions()
	p.refill()
	want := uint32(min(len(pkts), len(p.rxAddr)))
	if want == 0 {
		p.busy.Store(false)
		return 0, nil
	}
	n := p.rx.available(want)
	if n == 0 && wait {
		n = p.wait(want)
		if n == 0 {
			p.busy.Store(false)
			if p.closed.Load() {
				return 0, ErrClosed
			}
			if p.handing.Load() {
				p.noteStop()
				return 0, ErrClosed
			}
			return 0, nil
		}
	}
	if n == 0 {
		p.busy.Store(false)
		return 0, nil
	}
	var badSums uint64
	if p.hdrs != nil {
		badSums = p.hdrs.ChecksumDrops()
	}
	k := 0
	for i := uint32(0); i < n; i++ {
		d := p.rx.xdpDesc(p.rx.cachedCons + i)
		frame := p.umem.frameFrom(d.Addr)
		if p.hdrs == nil {
			pkts[k] = Packet{Buf: frame, Len: int(d.Len)}
		} else if !p.hdrs.Strip(k, frame, int(d.Len), &pkts[k]) {
			// Not a query to answer: the frame goes straight back to
			// the free stack, and the worker never sees it.
			p.free = append(p.free, d.Addr)
			continue
		}
		p.rxAddr[k] = d.Addr
		k++
	}
	p.rx.release(n)
	if dropped := uint64(int(n) - k); dropped > 0 {
		// Strip counts the frames it refused for their checksums; the
		// rest of the frames dropped here are not queries to serve.
		badSums = p.hdrs.ChecksumDrops() - badSums
		if badSums > 0 {
			p.sumDrops.Store(p.sumDrops.Load() + badSums)
		}
		if dropped > badSums {
			p.frameDrops.Store(p.frameDrops.Load() + dropped - badSums)
		}
	}
	p.rxPackets.Store(p.rxPackets.Load() + uint64(k))
	if k == 0 {
		// Every frame was dropped: an empty batch, as after an idle
		// interval.
		p.busy.Store(false)
		return 0, nil
	}
	p.pending = k
	return k, nil
}

// resumeNote is what an inherited port notes of its hand-over (see
// XDPResume). Adopt sets stoppedAt, dropsAtAdopt (the count Dropped starts
// from) and await before the worker starts; the worker's first Receive
// clears await and stores the rest, which Resumes loads from another
// goroutine.
type resumeNote struct {
	await        bool
	stoppedAt    int64
	dropsAtAdopt uint64
	firstAt      atomic.Int64
	backlog      atomic.Uint32
	fill         atomic.Uint32
}

// noteStop notes when the worker first saw a hand-over's stop.
func (p *XDPPort) noteStop() {
	if p.stoppedAt.Load() == 0 {
		p.stoppedAt.Store(monotonicNs())
	}
}

// noteResume notes the new worker's first look at the rings after a
// hand-over, before it refills the fill ring: when, how many frames wait
// in the RX ring and how many the fill ring has left. It runs once per
// hand-over, off the path of every other batch.
//
//go:noinline
func (p *XDPPort) noteResume() {
	now := monotonicNs()
	p.resume.await = false
	p.resume.backlog.Store(p.rx.producer.Load() - p.rx.consumer.Load())
	p.resume.fill.Store(p.fill.producer.Load() - p.fill.consumer.Load())
	p.resume.firstAt.Store(now)
}

// wait blocks until the RX ring has frames, Close is called or idleTimeout
// passes, and returns how many frames are available (up to want).
func (p *XDPPort) wait(want uint32) uint32 {
	if p.busyPoll {
		start := time.Now()
		lastYield := start
		for i := 1; ; i++ {
			if p.fill.needWakeup() {
				xskKickFill(p.fd)
			}
			if p.txInFlight() > 0 {
				p.kickTx()
				p.reapCompletions()
				p.refill()
			}
			if n := p.rx.available(want); n > 0 {
				return n
			}
			// closed is read on every spin: it is one load of a line
			// that only Close writes, and it keeps Close prompt; so is
			// handing, for a hand-over's stop.
			if p.closed.Load() || p.handing.Load() {
				return 0
			}
			if i&255 == 0 {
				now := time.Now()
				if now.Sub(start) > idleTimeout {
					return 0
				}
				// A spinning goroutine keeps its P until the runtime
				// preempts it, every 10 ms; with one spinner per P the
				// process's other goroutines (socket workers, the
				// control socket, TCP, whoever calls Close) would wait
				// that long for each step. The rings are idle here, so
				// handing the P over once a millisecond costs no
				// throughput, and on a worker locked to its thread the
				// hand-over (tens of microseconds) stays a few percent
				// of the idle time.
				if now.Sub(lastYield) >= time.Millisecond {
					runtime.Gosched()
					lastYield = time.Now()
				}
			}
		}
	}
	// Transmissions still in flight must not wait for the next reply: kick
	// them now, since we are about to sleep.
	if p.txInFlight() > 0 {
		p.kickTx()
	}
	deadline := time.Now().Add(idleTimeout)
	for first := true; ; first = false {
		ms := int(time.Until(deadline) / time.Millisecond)
		if ms <= 0 {
			// A whole idle interval without traffic: the next waits are
			// scheduled from the start, so that an idle port costs the
			// process nothing between its wake-ups.
			p.quiet = true
			return 0
		}
		// poll on an AF_XDP socket also wakes the driver when the fill ring
		// asked for it, so no separate fill-ring kick is needed here. While
		// traffic flows, the first wait of an idle spell is raw and short
		// (see rawWaitMS), the rest scheduled.
		if first && !p.quiet {
			pollRaw(p.pollFds[:], min(ms, rawWaitMS))
		} else {
			pollSched(p.pollFds[:], ms)
		}
		// StopReceiving writes the eventfd too: a worker idle here
		// returns at once, not at the end of its idle wait, which held
		// the hand-over (and the other queues' pause) up to 100 ms.
		if p.closed.Load() || p.handing.Load() {
			return 0
		}
		p.reapCompletions()
		p.refill()
		if n := p.rx.available(want); n > 0 {
			p.quiet = false
			return n
		}
	}
}

// Send writes the headers of the replies of the last Receive (see
// Headers.Reply), transmits them and returns every frame to the port; see
// Port. A reply that does not fit in the TX ring or whose Len exceeds its
// Buf is dropped and counted.
func (p *XDPPort) Send(pkts []Packet) error {
	if !p.busy.Load() {
		// A Receive that returned no packets (an idle interval or
		// ErrClosed) has already cleared busy, so Close may have unmapped
		// the rings: the empty batch it filled is handed back here without
		// touching them. The Port contract allows this Send, and a worker
		// that sends every batch unconditionally must not die on its first
		// idle interval.
		if len(pkts) == 0 && p.pending == 0 {
			if p.closed.Load() {
				return ErrClosed
			}
			return nil
		}
		return ErrSendMismatch
	}
	n := min(len(pkts), p.pending)
	room := p.tx.free(uint32(n))
	queued := uint32(0)
	for i := 0; i < n; i++ {
		addr := p.rxAddr[i]
		l := pkts[i].Len
		if l <= 0 {
			p.free = append(p.free, addr)
			continue
		}
		if p.hdrs != nil {
			// The reply's room is the one Strip gave, whatever the
			// worker did to Buf.
			var ok bool
			if l, ok = p.hdrs.Reply(i, p.umem.frameFrom(addr), &pkts[i]); !ok {
				p.txBadLen.Store(p.txBadLen.Load() + 1)
				p.free = append(p.free, addr)
				continue
			}
		} else if l > len(pkts[i].Buf) || l > int(p.umem.frameSize-uint32(addr&uint64(p.umem.frameSize-1))) {
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
	// Slots Receive filled but pkts does not cover are dropped.
	p.recycle(p.rxAddr[n:p.pending])
	if queued > 0 {
		p.tx.submit()
		p.txPackets.Store(p.txPackets.Load() + uint64(queued))
	}
	if p.txInFlight() > 0 {
		p.kickTx()
	}
	// One refill after the reap returns both the dropped frames and the
	// transmitted ones to the fill ring.
	p.reapCompletions()
	p.refill()
	p.pending = 0
	p.busy.Store(false)
	return nil
}

// recycle puts frames back on the free stack.
func (p *XDPPort) recycle(addrs []uint64) {
	p.free = append(p.free, addrs...)
}

// kickTx wakes the kernel to transmit when the TX ring asks for it. In copy
// mode the kernel sends at most a small batch per wakeup and answers EAGAIN
// when more is left (or when the completion ring is full), so the kick is
// repeated after reaping completions, a bounded number of times.
func (p *XDPPort) kickTx() {
	for i := 0; i < 64; i++ {
		if !p.tx.needWakeup() {
			return
		}
		switch e := xskKick(p.fd); e {
		case 0:
			return
		case unix.EAGAIN:
			p.reapCompletions()
			p.refill()
			if p.tx.producer.Load() == p.tx.consumer.Load() {
				return
			}
		case unix.EBUSY, unix.ENOBUFS, unix.ENETDOWN:
			// The device is busy or down: the frames stay on the ring and
			// the next kick retries.
			return
		default:
			p.kickErrs.Store(p.kickErrs.Load() + 1)
			return
		}
	}
}

// txInFlight is the number of frames handed to the TX ring whose
// completion has not been reaped yet: every frame queued comes back
// through the completion ring, and both indices start at 0.
func (p *XDPPort) txInFlight() uint32 {
	return p.tx.cachedProd - p.comp.cachedCons
}

// reapCompletions moves transmitted frames from the completion ring to the
// free stack.
func (p *XDPPort) reapCompletions() {
	n := p.comp.available(p.comp.size)
	if n == 0 {
		return
	}
	mask := ^uint64(p.umem.frameSize - 1)
	for i := uint32(0); i < n; i++ {
		p.free = append(p.free, *p.comp.addr(p.comp.cachedCons + i)&mask)
	}
	p.comp.release(n)
}

// refill moves frames from the free stack to the fill ring.
func (p *XDPPort) refill() {
	n := p.fill.free(uint32(len(p.free)))
	if n == 0 {
		return
	}
	top := len(p.free)
	for i := uint32(0); i < n; i++ {
		*p.fill.addr(p.fill.cachedProd) = p.free[top-1-int(i)]
		p.fill.cachedProd++
	}
	p.free = p.free[:top-int(n)]
	p.fill.submit()
}

// Stats reads the socket's statistics. It may be called from any goroutine.
func (p *XDPPort) Stats() (XDPStats, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return XDPStats{}, ErrClosed
	}
	k, err := xskStatistics(p.fd)
	if err != nil {
		return XDPStats{}, fmt.Errorf("XDP_STATISTICS on queue %d: %w", p.queue, err)
	}
	return XDPStats{
		RxDropped:            k.Rx_dropped,
		RxInvalidDescs:       k.Rx_invalid_descs,
		TxInvalidDescs:       k.Tx_invalid_descs,
		RxRingFull:           k.Rx_ring_full,
		RxFillRingEmptyDescs: k.Rx_fill_ring_empty_descs,
		TxRingEmptyDescs:     k.Tx_ring_empty_descs,
		RxPackets:            p.rxPackets.Load(),
		RxNotQuery:           p.frameDrops.Load(),
		RxBadChecksum:        p.sumDrops.Load(),
		TxPackets:            p.txPackets.Load(),
		TxRingFull:           p.txRingFull.Load(),
		TxBadLen:             p.txBadLen.Load(),
		KickErrors:           p.kickErrs.Load(),
	}, nil
}

// SendErrors is the number of replies the port dropped instead of sending:
// the TX ring was full or the reply's length exceeded its frame. The data
// plane worker publishes it as its send-error counter. It may be called from
// any goroutine.
func (p *XDPPort) SendErrors() uint64 { return p.txRingFull.Load() + p.txBadLen.Load() }

// UsesSum implements SumUser: Send finishes each reply's UDP checksum from
// Packet.Sum, except with WholeFrames, where it sends what it is given.
func (p *XDPPort) UsesSum() bool { return p.hdrs != nil }

// Destination implements Destinations from the headers of the frame in
// slot i of the last Receive; Len 0 with WholeFrames, where the worker has
// the whole frame.
func (p *XDPPort) Destination(i int) Addr {
	if p.hdrs == nil || i < 0 || i >= p.pending {
		return Addr{}
	}
	return p.hdrs.Destination(i, p.umem.frameFrom(p.rxAddr[i]))
}

// FrameDrops is the number of received frames Receive dropped because they
// were not queries the data plane answers (see ParseFrame): frames the XDP
// program redirects but the finer checks refuse, such as group addresses.
// The data plane worker publishes it as its "frame" drops. It may be called
// from any goroutine.
func (p *XDPPort) FrameDrops() uint64 { return p.frameDrops.Load() }

// ChecksumDrops is the number of received frames Receive dropped because
// their UDP checksum or IPv4 header checksum did not verify (see
// VerifyChecksums); FrameDrops does not include them. The data plane worker
// publishes it as its "bad-checksum" drops. It may be called from any
// goroutine.
func (p *XDPPort) ChecksumDrops() uint64 { return p.sumDrops.Load() }

// closeWait bounds how long Close waits for the worker to leave Receive/Send.
const closeWait = 2 * time.Second

// Close stops the port; see Port. A Receive sleeping in poll wakes at once
// (the close eventfd) and returns ErrClosed. The rings and the UMEM are
// unmapped only once the worker has handed back its batch; if it does not
// within closeWait, they stay mapped (a leak, but never a use after unmap)
// and Close reports it.
func (p *XDPPort) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.closed.Store(true)
		if p.closeFd >= 0 {
			var one = [8]byte{1}
			unix.Write(p.closeFd, one[:])
		}
		deadline := time.Now().Add(closeWait)
		for p.busy.Load() {
			if time.Now().After(deadline) {
				p.closeErr = fmt.Errorf("nic: AF_XDP queue %d: worker did not return its batch within %v; UMEM left mapped", p.queue, closeWait)
				return
			}
			time.Sleep(time.Millisecond)
		}
		p.release()
	})
	return p.closeErr
}

// release unmaps the rings and the UMEM and closes the descriptors. Closing
// the socket also removes it from the XSKMAP.
func (p *XDPPort) release() {
	for _, r := range []*ring{&p.fill, &p.comp, &p.rx, &p.tx} {
		r.unmap()
	}
	if p.fd >= 0 {
		unix.Close(p.fd)
		p.fd = -1
	}
	if p.umem != nil {
		p.umem.unmap()
	}
	if p.closeFd >= 0 {
		unix.Close(p.closeFd)
		p.closeFd = -1
	}
}
