package nic

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Sizing of the recvmmsg port.
const (
	// udpIdleMillis bounds how long Receive blocks without a packet (the
	// Port contract allows 200 ms).
	udpIdleMillis = 100
	// ctlWords is the per-slot control-message space in 8-byte words:
	// room for one cmsghdr and an in6_pktinfo (40 bytes), kept 8-aligned
	// as cmsghdr requires.
	ctlWords = 8
)

// The kernel writes sockaddrs straight into Addr, whose layout (addr.go)
// is Linux's: these constants fail to compile (a negative value converted
// to uint) unless its families and sizes are the kernel's.
const (
	_ = uint(unix.AF_INET-addrFamily4) + uint(addrFamily4-unix.AF_INET)
	_ = uint(unix.AF_INET6-addrFamily6) + uint(addrFamily6-unix.AF_INET6)
	_ = uint(unix.SizeofSockaddrInet4-addrLen4) + uint(addrLen4-unix.SizeofSockaddrInet4)
	_ = uint(unix.SizeofSockaddrInet6-addrLen6) + uint(addrLen6-unix.SizeofSockaddrInet6)
)

// UDPSpreads reports whether the kernel spreads the datagrams to one
// address over the sockets ListenUDP bound to it (SO_REUSEPORT), so that
// several workers share the address's traffic.
const UDPSpreads = true

// UDPPort is the kernel-socket backend of Linux: one UDP socket, meant to
// be one of several bound to the same address with SO_REUSEPORT, one per
// worker. It moves batches with recvmmsg and sendmmsg over message
// headers, iovecs, address and control buffers built once by ListenUDP, so
// receiving and sending allocate nothing. Other systems have ConnPort in
// its place.
//
// When bound to an unspecified address (0.0.0.0 or ::) the port asks for
// each query's destination address (IP_PKTINFO, IPV6_PKTINFO) and sends the
// reply from it, since a client accepts a reply only from the address it
// asked.
type UDPPort struct {
	// quiet is set after a receive timed out, and skips the short raw
	// wait until traffic returns (see recv).
	quiet bool

	fd      int
	local   netip.AddrPort
	pktinfo bool

	slab  []byte // slots * UDPSlotSize packet buffers
	rmsgs []unix.Mmsghdr
	riov  []unix.Iovec
	names []Addr   // source address of each received slot
	ctl   []uint64 // ctlWords per slot: the received control message
	slot  []int32  // slot of each packet handed out by the last Receive
	nrecv int      // number of packets handed out by the last Receive
	smsgs []unix.Mmsghdr
	siov  []unix.Iovec
	sname []Addr // destination of each reply in smsgs

	// state holds closedBit once Close has begun and, below it, the number
	// of calls using fd. The descriptor is closed by whichever call brings
	// the count to zero after closedBit is set, so fd is never closed while
	// a recvmmsg or sendmmsg uses it and its number cannot be reused under
	// a running call.
	state atomic.Int64
	// handing is set by StopReceiving (udp_inherit_linux.go): Receive
	// reads no more, while the socket stays open for the process it is
	// handed to.
	handing   atomic.Bool
	sendErrs  atomic.Uint64
	truncated atomic.Uint64
}

const closedBit = 1 << 62

var _ Port = (*UDPPort)(nil)

// ListenUDP opens a UDP socket bound to addr, a literal IP address and port
// such as "127.0.0.1:53", "[::1]:5353" or "0.0.0.0:53" (port 0 picks a free
// one; see LocalAddr), and returns it as a Port of batch packets. IPv6
// sockets are IPv6 only. SO_REUSEPORT is set so that every worker can bind
// its own socket to the same address and the kernel spreads clients over
// them.
func ListenUDP(addr string, batch int) (*UDPPort, error) {
	ap, err := listenAddr(addr, batch)
	if err != nil {
		return nil, err
	}
	sa, err := sockaddrOf(ap)
	if err != nil {
		return nil, err
	}
	domain := unix.AF_INET
	if ap.Addr().Is6() {
		domain = unix.AF_INET6
	}
	fd, err := unix.Socket(domain, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("nic: UDP socket for %s: %w", addr, err)
	}
	p := &UDPPort{fd: fd, pktinfo: ap.Addr().IsUnspecified()}
	if err := p.setup(domain, sa); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("nic: UDP socket on %s: %w", addr, err)
	}
	local, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("nic: UDP socket on %s: getsockname: %w", addr, err)
	}
	p.local = addrPortOfSockaddr(local)
	p.alloc(batch)
	return p, nil
}

// setup sets the socket options and binds.
func (p *UDPPort) setup(domain int, sa unix.Sockaddr) error {
	fd := p.fd
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return fmt.Errorf("SO_REUSEPORT: %w", err)
	}
	if domain == unix.AF_INET6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			return fmt.Errorf("IPV6_V6ONLY: %w", err)
		}
	}
	// Large buffers are best effort: the FORCE options need CAP_NET_ADMIN,
	// and without it the kernel caps the plain ones at rmem_max/wmem_max.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, udpSocketBuffer) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, udpSocketBuffer)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, udpSocketBuffer) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, udpSocketBuffer)
	}
	// The receive timeout makes a blocking recvmmsg return EAGAIN when the
	// socket stays idle, so that Receive can return n == 0 and the worker
	// can notice shutdown even if the wakeup by Close were missed.
	tv := unix.NsecToTimeval(udpIdleMillis * 1e6)
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("SO_RCVTIMEO: %w", err)
	}
	if p.pktinfo {
		var err error
		if domain == unix.AF_INET6 {
			err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
		} else {
			err = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
		}
		if err != nil {
			return fmt.Errorf("asking for the destination address of queries (PKTINFO): %w", err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	return nil
}

// alloc builds the message headers once. The headers hold Go pointers into
// the port's own slices; the Go collector does not move heap objects, and
// the port keeps every one of them reachable for as long as fd is open, so
// the kernel always writes into live memory.
func (p *UDPPort) alloc(batch int) {
	p.slab = make([]byte, batch*UDPSlotSize)
	p.rmsgs = make([]unix.Mmsghdr, batch)
	p.riov = make([]unix.Iovec, batch)
	p.names = make([]Addr, batch)
	p.ctl = make([]uint64, batch*ctlWords)
	p.slot = make([]int32, batch)
	p.smsgs = make([]unix.Mmsghdr, batch)
	p.siov = make([]unix.Iovec, batch)
	p.sname = make([]Addr, batch)
	for i := range p.rmsgs {
		p.riov[i].Base = &p.slab[i*UDPSlotSize]
		p.riov[i].SetLen(UDPSlotSize)
		h := &p.rmsgs[i].Hdr
		h.Name = &p.names[i].Raw[0]
		h.Iov = &p.riov[i]
		h.Iovlen = 1
		if p.pktinfo {
			h.Control = (*byte)(unsafe.Pointer(&p.ctl[i*ctlWords]))
		}
		s := &p.smsgs[i].Hdr
		s.Name = &p.sname[i].Raw[0]
		s.Iov = &p.siov[i]
		s.Iovlen = 1
	}
}

// LocalAddr is the address the socket is bound to, with the port the kernel
// chose when ListenUDP was given port 0.
func (p *UDPPort) LocalAddr() netip.AddrPort { return p.local }

// SendErrors is the number of replies the kernel refused to send (full
// socket buffer, no route, ...), counted instead of failing the batch.
func (p *UDPPort) SendErrors() uint64 { return p.sendErrs.Load() }

// Truncated is the number of datagrams dropped because they were larger than
// UDPSlotSize.
func (p *UDPPort) Truncated() uint64 { return p.truncated.Load() }

// acquire registers a call that uses fd; it fails once Close has begun.
func (p *UDPPort) acquire() bool {
	for {
		s := p.state.Load()
		if s&closedBit != 0 {
			return false
		}
		if p.state.CompareAndSwap(s, s+1) {
			return true
		}
	}
}

// release ends a call that used fd, closing it when Close is waiting on it.
func (p *UDPPort) release() {
	if p.state.Add(-1) == closedBit {
		unix.Close(p.fd)
	}
}

func (p *UDPPort) closed() bool { return p.state.Load()&closedBit != 0 }

// Receive implements Port. It blocks in recvmmsg for the first packet, then
// takes whatever else is queued without waiting (MSG_WAITFORONE), up to
// len(pkts) packets. It returns 0 packets after about 100 ms without any.
func (p *UDPPort) Receive(pkts []Packet) (int, error) {
	n := min(len(pkts), len(p.rmsgs))
	if n == 0 {
		return 0, nil
	}
	p.nrecv = 0
	if p.handing.Load() {
		return 0, ErrClosed
	}
	for i := 0; i < n; i++ {
		h := &p.rmsgs[i].Hdr
		h.Namelen = uint32(len(p.names[i].Raw))
		h.Flags = 0
		if p.pktinfo {
			h.SetControllen(ctlWords * 8)
		}
	}
	if !p.acquire() {
		return 0, ErrClosed
	}
	r, e := p.recv(n)
	p.release()
	if p.closed() {
		return 0, ErrClosed
	}
	if e != 0 {
		if e == unix.EAGAIN || e == unix.EINTR {
			return 0, nil
		}
		return 0, fmt.Errorf("nic: recvmmsg on %s: %w", p.local, e)
	}
	k := 0
	for i := 0; i < int(r); i++ {
		m := &p.rmsgs[i]
		if m.Hdr.Flags&unix.MSG_TRUNC != 0 {
			p.truncated.Add(1)
			continue
		}
		pkts[k] = Packet{Buf: p.slab[i*UDPSlotSize : (i+1)*UDPSlotSize : (i+1)*UDPSlotSize], Len: int(m.Len), Peer: p.names[i]}
		pkts[k].Peer.Len = m.Hdr.Namelen
		p.slot[k] = int32(i)
		k++
	}
	p.nrecv = k
	return k, nil
}

// recv fills up to n messages. Under load a raw, non-blocking recvmmsg
// finds packets waiting; when none are, the worker waits first in a short raw
// poll and only then in a scheduled, blocking recvmmsg, for the reasons given
// at rawWaitMS: raw calls spare light traffic the scheduler's hand-overs,
// and the scheduled wait lets an idle server sleep.
func (p *UDPPort) recv(n int) (uintptr, unix.Errno) {
	msgs := uintptr(unsafe.Pointer(&p.rmsgs[0]))
	r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(p.fd), msgs, uintptr(n), unix.MSG_DONTWAIT, 0, 0)
	if e != unix.EAGAIN {
		return r, e
	}
	if !p.quiet {
		pfd := [1]unix.PollFd{{Fd: int32(p.fd), Events: unix.POLLIN}}
		if pollRaw(pfd[:], rawWaitMS) > 0 {
			r, _, e = unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(p.fd), msgs, uintptr(n), unix.MSG_DONTWAIT, 0, 0)
			if e != unix.EAGAIN {
				return r, e
			}
		}
	}
	// Blocks until a packet, the socket's receive timeout, or Close's
	// shutdown. A timeout means a whole idle interval: until traffic
	// returns, the short raw wait above is skipped, so that an idle socket
	// costs the process nothing between its wake-ups.
	r, _, e = unix.Syscall6(unix.SYS_RECVMMSG, uintptr(p.fd), msgs, uintptr(n), unix.MSG_WAITFORONE, 0, 0)
	p.quiet = e == unix.EAGAIN
	return r, e
}

// Send implements Port. It sends every reply (Len > 0) to its packet's
// Peer without blocking; a reply the kernel refuses (EAGAIN or ENOBUFS when
// the socket buffer or a queue is full, an unreachable network) is counted
// in SendErrors and skipped.
func (p *UDPPort) Send(pkts []Packet) error {
	if len(pkts) != p.nrecv {
		p.nrecv = 0
		return ErrSendMismatch
	}
	p.nrecv = 0
	m := 0
	for i := range pkts {
		pk := &pkts[i]
		if pk.Len <= 0 {
			continue
		}
		if pk.Len > len(pk.Buf) || pk.Peer.Len > uint32(len(pk.Peer.Raw)) {
			p.sendErrs.Add(1)
			continue
		}
		p.siov[m].Base = &pk.Buf[0]
		p.siov[m].SetLen(pk.Len)
		p.sname[m] = pk.Peer
		h := &p.smsgs[m].Hdr
		h.Namelen = pk.Peer.Len
		h.Control = nil
		h.SetControllen(0)
		if p.pktinfo {
			p.replyControl(h, p.slot[i])
		}
		m++
	}
	if m == 0 {
		if p.closed() {
			return ErrClosed
		}
		return nil
	}
	if !p.acquire() {
		return ErrClosed
	}
	defer p.release()
	// Each failed call skips exactly the message it failed on (sendmmsg
	// reports an error only for the first message it could not send), and
	// an interrupted call is retried a bounded number of times, so the loop
	// ends after at most m failures plus the retries.
	retries := 0
	for sent := 0; sent < m; {
		r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(p.fd), uintptr(unsafe.Pointer(&p.smsgs[sent])), uintptr(m-sent), unix.MSG_DONTWAIT, 0, 0)
		switch {
		case e == 0 && r > 0:
			sent += int(r)
		case e == unix.EINTR && retries < 8:
			retries++
		case p.closed():
			return ErrClosed
		default:
			p.sendErrs.Add(1)
			sent++
		}
	}
	return nil
}

// replyControl turns the PKTINFO control message received in slot into the
// one that makes the kernel send the reply from the query's destination
// address, and attaches it to h. A slot without one sends without control
// data, from the address routing picks.
func (p *UDPPort) replyControl(h *unix.Msghdr, slot int32) {
	rh := &p.rmsgs[slot].Hdr
	if rh.Controllen < unix.SizeofCmsghdr {
		return
	}
	ctl := unsafe.Slice((*byte)(unsafe.Pointer(&p.ctl[int(slot)*ctlWords])), ctlWords*8)
	cm := (*unix.Cmsghdr)(unsafe.Pointer(&ctl[0]))
	data := ctl[unix.CmsgLen(0):]
	switch {
	case cm.Level == unix.IPPROTO_IP && cm.Type == unix.IP_PKTINFO && int(cm.Len) >= unix.CmsgLen(unix.SizeofInet4Pktinfo):
		// struct in_pktinfo { int ipi_ifindex; in_addr ipi_spec_dst;
		// in_addr ipi_addr; }: on receive ipi_addr is the query's
		// destination; on send ipi_spec_dst is the source to use. The
		// interface is left to routing.
		copy(data[4:8], data[8:12])
		binary.NativeEndian.PutUint32(data[0:4], 0)
		h.SetControllen(unix.CmsgSpace(unix.SizeofInet4Pktinfo))
	case cm.Level == unix.IPPROTO_IPV6 && cm.Type == unix.IPV6_PKTINFO && int(cm.Len) >= unix.CmsgLen(unix.SizeofInet6Pktinfo):
		// struct in6_pktinfo { in6_addr ipi6_addr; int ipi6_ifindex; }
		// means the same on receive and send. The interface is kept only
		// for link-local addresses, which are meaningless without it.
		if !(data[0] == 0xfe && data[1]&0xc0 == 0x80) {
			binary.NativeEndian.PutUint32(data[16:20], 0)
		}
		h.SetControllen(unix.CmsgSpace(unix.SizeofInet6Pktinfo))
	default:
		return
	}
	h.Control = &ctl[0]
}

// Close implements Port. A Receive blocked in the kernel is woken by
// shutdown(2) and returns ErrClosed; the descriptor itself is closed when
// the last call using it has returned.
func (p *UDPPort) Close() error {
	for {
		s := p.state.Load()
		if s&closedBit != 0 {
			return nil
		}
		if p.state.CompareAndSwap(s, (s|closedBit)+1) {
			break
		}
	}
	// shutdown of an unconnected UDP socket reports ENOTCONN but still marks
	// it shut down and wakes its waiters, which is all that is wanted here.
	_ = unix.Shutdown(p.fd, unix.SHUT_RDWR)
	p.release()
	return nil
}

// sockaddrOf converts an address and port, with an optional IPv6 zone, to a
// socket address.
func sockaddrOf(ap netip.AddrPort) (unix.Sockaddr, error) {
	a := ap.Addr()
	if a.Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}, nil
	}
	sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
	if z := a.Zone(); z != "" {
		ifi, err := net.InterfaceByName(z)
		if err != nil {
			return nil, fmt.Errorf("nic: zone of %s: %w", ap, err)
		}
		sa.ZoneId = uint32(ifi.Index)
	}
	return sa, nil
}

func addrPortOfSockaddr(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port))
	}
	return netip.AddrPort{}
}

// Destination implements Destinations: the query's destination address
// from its PKTINFO control message when the port is bound to an
// unspecified address, else the address it is bound to, with its port.
func (p *UDPPort) Destination(i int) Addr {
	if i < 0 || i >= p.nrecv {
		return Addr{}
	}
	if !p.pktinfo {
		return AddrFrom(p.local)
	}
	slot := p.slot[i]
	if p.rmsgs[slot].Hdr.Controllen < unix.SizeofCmsghdr {
		return Addr{}
	}
	ctl := unsafe.Slice((*byte)(unsafe.Pointer(&p.ctl[int(slot)*ctlWords])), ctlWords*8)
	cm := (*unix.Cmsghdr)(unsafe.Pointer(&ctl[0]))
	data := ctl[unix.CmsgLen(0):]
	switch {
	case cm.Level == unix.IPPROTO_IP && cm.Type == unix.IP_PKTINFO && int(cm.Len) >= unix.CmsgLen(unix.SizeofInet4Pktinfo):
		// ipi_addr, the header's destination address.
		return AddrFrom(netip.AddrPortFrom(netip.AddrFrom4([4]byte(data[8:12])), p.local.Port()))
	case cm.Level == unix.IPPROTO_IPV6 && cm.Type == unix.IPV6_PKTINFO && int(cm.Len) >= unix.CmsgLen(unix.SizeofInet6Pktinfo):
		return AddrFrom(netip.AddrPortFrom(netip.AddrFrom16([16]byte(data[0:16])), p.local.Port()))
	}
	return Addr{}
}

// SendFrom implements ReplySender with one sendmsg on the worker's own
// socket, so that the reply comes from the address and port the query was
// sent to; on a socket bound to an unspecified address a PKTINFO control
// message names from as the source, as Send does for the worker's replies.
// A reply the kernel refuses is returned as its error, not counted in
// SendErrors, which are the worker's.
func (p *UDPPort) SendFrom(b []byte, to, from Addr) error {
	ap := to.AddrPort()
	if !ap.IsValid() {
		return fmt.Errorf("nic: reply from %s to an address of no known family", p.local)
	}
	sa, err := sockaddrOf(ap)
	if err != nil {
		return err
	}
	var oob []byte
	if src := from.AddrPort(); p.pktinfo && src.IsValid() {
		if a := src.Addr(); a.Is4() {
			oob = unix.PktInfo4(&unix.Inet4Pktinfo{Spec_dst: a.As4()})
		} else {
			oob = unix.PktInfo6(&unix.Inet6Pktinfo{Addr: a.As16()})
		}
	}
	if !p.acquire() {
		return ErrClosed
	}
	defer p.release()
	if err := unix.Sendmsg(p.fd, b, oob, sa, unix.MSG_DONTWAIT); err != nil {
		return fmt.Errorf("nic: reply from %s to %s: %w", p.local, ap, err)
	}
	return nil
}
