package nic

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// This file hands the AF_XDP data path to another process (ringdns's
// hitless upgrade) and rebuilds it there. What is passed:
//
//   - the bpf_link's descriptor: the program stays attached as long as one
//     process holds it, and is detached when the last one closes it;
//   - each queue's AF_XDP socket, on which the UMEM is registered and the
//     four rings live: the new process maps the rings again from it, at
//     the offsets XDP_MMAP_OFFSETS gives, and finds the ring positions in
//     the mapped producer and consumer indices themselves;
//   - each queue's UMEM memfd, mapped again: the same pages, which the
//     kernel has pinned;
//   - which frames the old process held free, once its worker has stopped
//     (XDPQueueState). Every other frame is in the fill ring, the RX ring,
//     the TX ring or the completion ring, or held by the kernel between
//     two of them, and reaches the new process through the rings; the
//     new process must not take one of those as free, nor leave a free one
//     unused.

// XDPState describes an XDP data path for a hand-over: the descriptors
// XDP.Files returns are the link, then each port's socket and UMEM.
type XDPState struct {
	Interface string `json:"interface"`
	Ifindex   int    `json:"ifindex"`
	Mode      string `json:"mode"`
	FrameSize int    `json:"frame_size"`
	Frames    int    `json:"frames"`
	RingSize  int    `json:"ring_size"`
	// RxRingSize is the fill and RX rings' size, RingSize the TX and
	// completion rings'; a process that sized all four alike (before
	// xdp.rx-ring-size) sends only RingSize.
	RxRingSize int   `json:"rx_ring_size,omitempty"`
	Queues     []int `json:"queues"`
}

// XDPQueueState is what the old process tells of one queue once its worker
// has stopped: the frames it held free, as a bitmap of frame numbers.
type XDPQueueState struct {
	Queue int    `json:"queue"`
	Free  []byte `json:"free"`
	// StoppedNs is when the old worker saw the stop, right after its last
	// batch, on CLOCK_MONOTONIC (which every process of the system shares);
	// 0 from a process that did not say. The new port measures its pause
	// from it (XDPResume).
	StoppedNs int64 `json:"stopped_ns,omitempty"`
	// Dropped is the socket's kernel drop count (XDP_STATISTICS rx_dropped
	// plus rx_ring_full) when the state was taken, which the new process
	// counts its own drops from, so that no drop between the two processes'
	// readings goes unreported; nil from a process that did not say.
	Dropped *uint64 `json:"dropped,omitempty"`
}

// XDPResume is how an inherited port resumed after the hand-over: how long
// its queue went unread, from the old worker's stop to the new worker's
// first look at the rings, and how full the rings were then.
type XDPResume struct {
	Queue int
	// Resumed is false while the new worker has not looked at the rings
	// yet; the rest is then zero.
	Resumed bool
	// Pause is from the old worker's stop to the new one's first Receive;
	// 0 when the old process did not say when it stopped.
	Pause time.Duration
	// Backlog is the number of frames waiting in the RX ring at the new
	// worker's first Receive, of RxRing; Fill the number left in the fill
	// ring for the kernel to take. The kernel drops a query when Fill
	// reaches 0 or Backlog reaches RxRing.
	Backlog, Fill, RxRing uint32
	// Dropped is what the kernel dropped on the socket (rx_dropped and
	// rx_ring_full of XDP_STATISTICS) from the old process's QueueStates
	// (or, when it did not say, from Adopt) until XDP.Resumes was called.
	Dropped uint64
}

// State describes x for a hand-over.
func (x *XDP) State() XDPState {
	st := XDPState{Interface: x.iface, Ifindex: x.ifindex, Mode: x.mode}
	for _, p := range x.ports {
		st.Queues = append(st.Queues, p.queue)
		st.FrameSize, st.Frames, st.RingSize, st.RxRingSize = int(p.umem.frameSize), int(p.umem.frames), int(p.tx.size), int(p.rx.size)
	}
	return st
}

// Files returns duplicates of the link's descriptor and of each port's
// socket and UMEM memfd, in the order State describes. The caller closes
// them.
func (x *XDP) Files() ([]*os.File, error) {
	var files []*os.File
	fail := func(err error) ([]*os.File, error) {
		for _, f := range files {
			f.Close()
		}
		return nil, err
	}
	var linkFD int
	if x.linkFile != nil {
		rc, err := x.linkFile.SyscallConn()
		if err != nil {
			return nil, err
		}
		rc.Control(func(fd uintptr) { linkFD = int(fd) })
	} else if lf, ok := x.link.(interface{ FD() int }); ok {
		linkFD = lf.FD()
	} else {
		return nil, fmt.Errorf("nic: the XDP link of %s (%T) has no descriptor to pass", x.iface, x.link)
	}
	dup := func(fd int, name string) error {
		n, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("nic: duplicating %s: %w", name, err)
		}
		files = append(files, os.NewFile(uintptr(n), name))
		return nil
	}
	if err := dup(linkFD, "xdp link "+x.iface); err != nil {
		return fail(err)
	}
	for _, p := range x.ports {
		if err := dup(p.fd, fmt.Sprintf("xsk %s queue %d", x.iface, p.queue)); err != nil {
			return fail(err)
		}
		if err := dup(p.umem.fd, fmt.Sprintf("umem %s queue %d", x.iface, p.queue)); err != nil {
			return fail(err)
		}
	}
	return files, nil
}

// StopReceiving makes every port's Receive return ErrClosed from its next
// call on, without touching the rings: the workers return after the batch
// in hand, and one idle in poll is woken through the port's eventfd (as
// Close wakes it), so that an idle queue does not hold up the hand-over,
// and the busy queues' pause with it, for the rest of its idle wait.
func (x *XDP) StopReceiving() {
	var one = [8]byte{1}
	for _, p := range x.ports {
		p.handing.Store(true)
		unix.Write(p.closeFd, one[:])
	}
}

// ResumeReceiving undoes StopReceiving, for a hand-over that failed, once
// the workers have returned: it empties the eventfd StopReceiving wrote,
// which would otherwise wake every poll at once from then on.
func (x *XDP) ResumeReceiving() {
	var buf [8]byte
	for _, p := range x.ports {
		unix.Read(p.closeFd, buf[:])
		p.handing.Store(false)
		p.stoppedAt.Store(0)
	}
}

// QueueStates, once every worker has returned after StopReceiving, kicks
// what the TX rings hold, reaps the completions, refills the fill rings and
// reports the frames each port holds free. The ports must not be used
// afterwards, but for Close.
//
// It does not wait for the transmissions in flight: a frame still in the
// TX ring, with the kernel or in the completion ring reaches the new
// process through the rings, whose worker kicks the TX ring and reaps the
// completion ring as any (txInFlight counts from the rings' own indices,
// which both processes share). Waiting here, as it did (up to 50 ms, in
// sleeps of a millisecond that a loaded machine stretches), only
// lengthened the pause during which no worker reads the queues.
func (x *XDP) QueueStates() []XDPQueueState {
	var out []XDPQueueState
	for _, p := range x.ports {
		if p.txInFlight() > 0 {
			p.kickTx()
		}
		p.reapCompletions()
		p.refill()
		bits := make([]byte, (p.umem.frames+7)/8)
		for _, a := range p.free {
			n := a / uint64(p.umem.frameSize)
			bits[n/8] |= 1 << (n % 8)
		}
		qs := XDPQueueState{Queue: p.queue, Free: bits, StoppedNs: p.stoppedAt.Load()}
		if k, err := xskStatistics(p.fd); err == nil {
			d := k.Rx_dropped + k.Rx_ring_full
			qs.Dropped = &d
		}
		out = append(out, qs)
	}
	return out
}

// InheritXDP rebuilds the data path of st from the descriptors Files
// returned in another process (link, then each queue's socket and UMEM),
// and takes its own duplicates: the caller closes files. cfg gives the
// port's settings (the data-plane port and the MTU). The ports map the
// rings and the UMEM, but may be used only after Adopt, which takes the
// old process's free frames once its workers have stopped.
//
// The rings and the UMEM keep the sizes the old process gave them, which a
// bound socket cannot change: a configuration (or a new binary's default)
// that asks for others takes effect at the next restart, and
// XDP.GeometryNote says so.
func InheritXDP(cfg XDPConfig, st XDPState, files []*os.File) (_ *XDP, err error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if len(files) != 1+2*len(st.Queues) {
		return nil, fmt.Errorf("nic: AF_XDP hand-over: %d descriptors for %d queues, want %d", len(files), len(st.Queues), 1+2*len(st.Queues))
	}
	if st.Interface != cfg.Interface {
		return nil, fmt.Errorf("nic: AF_XDP hand-over: the old process serves %s, this configuration says %s", st.Interface, cfg.Interface)
	}
	if st.RxRingSize == 0 {
		st.RxRingSize = st.RingSize
	}
	if checkRingSize(st.RingSize) != nil || checkRingSize(st.RxRingSize) != nil || (st.FrameSize != 2048 && st.FrameSize != 4096) || st.Frames < st.RxRingSize {
		return nil, fmt.Errorf("nic: AF_XDP hand-over: the old process describes rings of %d and %d entries and %d frames of %d bytes, which cannot be",
			st.RxRingSize, st.RingSize, st.Frames, st.FrameSize)
	}
	x := &XDP{iface: st.Interface, ifindex: st.Ifindex, mode: st.Mode}
	if st.FrameSize != cfg.FrameSize || st.Frames != cfg.Frames || st.RingSize != cfg.RingSize || st.RxRingSize != cfg.RxRingSize {
		x.geometryNote = fmt.Sprintf("the AF_XDP sockets of %s keep the sizes the old process gave them (RX and fill rings of %d, TX and completion rings of %d, %d frames of %d bytes) "+
			"where this configuration asks for %d, %d, %d and %d: a bound socket's rings cannot change, and a restart applies the new sizes",
			st.Interface, st.RxRingSize, st.RingSize, st.Frames, st.FrameSize, cfg.RxRingSize, cfg.RingSize, cfg.Frames, cfg.FrameSize)
	}
	defer func() {
		if err != nil {
			x.Close()
		}
	}()
	// The link is kept as a bare descriptor: closing it is all that is
	// done with it (the program is detached when the last process holding
	// it closes it), while cilium/ebpf's link.NewFromFD asks the kernel
	// for the link's type with bpf(2), which kernels before 6.5 refuse to
	// a process without CAP_BPF (one that switched to server.user) when
	// kernel.unprivileged_bpf_disabled is set; 6.18 allows it.
	lfd, err := dupFile(files[0])
	if err != nil {
		return nil, err
	}
	x.linkFile = os.NewFile(uintptr(lfd), "xdp link "+st.Interface)
	o := xskOpts{frameSize: st.FrameSize, frames: st.Frames, ringSize: st.RingSize, rxRingSize: st.RxRingSize,
		busyPoll: cfg.BusyPoll, port: cfg.Port, mtu: cfg.MTU, wholeFrames: cfg.WholeFrames}
	for i, q := range st.Queues {
		p, err := inheritXDPPort(files[1+2*i], files[2+2*i], q, o)
		if err != nil {
			return nil, fmt.Errorf("nic: inherited AF_XDP socket of %s queue %d: %w", st.Interface, q, err)
		}
		x.ports = append(x.ports, p)
	}
	return x, nil
}

// Adopt gives each port the frames the old process held free, and reads the
// ring positions again: the old workers ran until just before. Every frame
// not free is on a ring or with the kernel, and comes back through the
// rings.
func (x *XDP) Adopt(states []XDPQueueState) error {
	byQueue := map[int]XDPQueueState{}
	for _, s := range states {
		byQueue[s.Queue] = s
	}
	for _, p := range x.ports {
		qs, ok := byQueue[p.queue]
		bits := qs.Free
		if !ok || len(bits) != int((p.umem.frames+7)/8) {
			return fmt.Errorf("nic: AF_XDP hand-over of %s: no state of queue %d's frames", x.iface, p.queue)
		}
		p.resume.stoppedAt = qs.StoppedNs
		if qs.Dropped != nil {
			p.resume.dropsAtAdopt = *qs.Dropped
		} else if k, err := xskStatistics(p.fd); err == nil {
			p.resume.dropsAtAdopt = k.Rx_dropped + k.Rx_ring_full
		}
		// The worker notes its first Receive; it starts after Adopt
		// returns (a goroutine started or a gate opened after it), which
		// orders this store before its load.
		p.resume.await = true
		p.free = p.free[:0]
		for n := int(p.umem.frames) - 1; n >= 0; n-- {
			if bits[n/8]&(1<<(n%8)) != 0 {
				p.free = append(p.free, uint64(n)*uint64(p.umem.frameSize))
			}
		}
		for _, r := range []*ring{&p.fill, &p.tx} {
			r.cachedProd = r.producer.Load()
			r.cachedCons = r.consumer.Load() + r.size
		}
		for _, r := range []*ring{&p.comp, &p.rx} {
			r.cachedProd = r.producer.Load()
			r.cachedCons = r.consumer.Load()
		}
		p.refill()
	}
	return nil
}

// GeometryNote is empty, or says that the inherited sockets keep sizes
// other than the configuration's (see InheritXDP), for the log.
func (x *XDP) GeometryNote() string { return x.geometryNote }

// Resumes reports, per port of an inherited data path, how its queue
// resumed after the hand-over (see XDPResume). It may be called from any
// goroutine once Adopt has returned.
func (x *XDP) Resumes() []XDPResume {
	var out []XDPResume
	for _, p := range x.ports {
		r := XDPResume{Queue: p.queue, RxRing: p.rx.size}
		if at := p.resume.firstAt.Load(); at != 0 {
			r.Resumed = true
			if st := p.resume.stoppedAt; st != 0 {
				r.Pause = time.Duration(at - st)
			}
			r.Backlog, r.Fill = p.resume.backlog.Load(), p.resume.fill.Load()
		}
		if st, err := p.Stats(); err == nil {
			r.Dropped = st.RxDropped + st.RxRingFull - p.resume.dropsAtAdopt
		}
		out = append(out, r)
	}
	return out
}

// monotonicNs reads CLOCK_MONOTONIC, which all processes of the system
// share, so that two processes can measure one interval between them.
func monotonicNs() int64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		return 0
	}
	return ts.Nano()
}

// dupFile duplicates f's descriptor without changing its blocking mode.
func dupFile(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, fmt.Errorf("duplicating %s: %w", f.Name(), derr)
	}
	return fd, nil
}

// inheritXDPPort maps the rings of an AF_XDP socket bound by another
// process and its UMEM memfd.
func inheritXDPPort(sock, mem *os.File, queue int, o xskOpts) (_ *XDPPort, err error) {
	fd, err := dupFile(sock)
	if err != nil {
		return nil, err
	}
	p := &XDPPort{fd: fd, queue: queue, busyPoll: o.busyPoll, closeFd: -1}
	defer func() {
		if err != nil {
			p.release()
		}
	}()
	if dom, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN); err != nil || dom != unix.AF_XDP {
		return nil, errors.Join(errors.New("not an AF_XDP socket"), err)
	}
	mfd, err := dupFile(mem)
	if err != nil {
		return nil, err
	}
	size := o.frames * o.frameSize
	var st unix.Stat_t
	if err := unix.Fstat(mfd, &st); err != nil || st.Size != int64(size) {
		unix.Close(mfd)
		return nil, fmt.Errorf("UMEM memfd of %d bytes, want %d (%v)", st.Size, size, err)
	}
	m, err := unix.Mmap(mfd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		unix.Close(mfd)
		return nil, fmt.Errorf("mmap UMEM memfd: %w", err)
	}
	p.umem = &umem{mem: m, fd: mfd, frameSize: uint32(o.frameSize), frames: uint32(o.frames)}
	if err := p.mapRings(fd, o); err != nil {
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
