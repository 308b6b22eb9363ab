package nic

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Idle bounds of a ConnPort's Receive, which waits under a read deadline
// renewed only when less than connIdleMin of it is left, so that a busy
// port does not reset the timer for every datagram: an idle Receive
// returns after connIdleMin to connIdleMax, inside the 200 ms the Port
// contract allows.
const (
	connIdleMin = 50 * time.Millisecond
	connIdleMax = 150 * time.Millisecond
	// connCtlWords is the control-message space of a ConnPort in 8-byte
	// words, 8-aligned as cmsghdr requires: room for one cmsghdr (16 bytes
	// on Linux, 12 elsewhere) and an in6_pktinfo (20 bytes), the largest
	// message it reads or writes.
	connCtlWords = 8
)

// ConnPort is the kernel-socket port of systems without recvmmsg (FreeBSD
// and macOS), where ListenUDP returns one; on Linux it builds and is tested
// too, while ListenUDP returns the recvmmsg port there. It holds one UDP
// socket of the standard library's, bound with the system's option for
// sharing an address among sockets (SO_REUSEPORT_LB on FreeBSD,
// SO_REUSEPORT elsewhere; see UDPSpreads), and hands out one datagram per
// Receive: the standard library reads one datagram per call and has no
// read that does not wait, so a batch could not be gathered without
// waiting for its second packet. It allocates nothing per packet.
//
// When bound to an unspecified address (0.0.0.0 or ::) the port asks for
// each query's destination address (IP_PKTINFO, IP_RECVDSTADDR on FreeBSD,
// IPV6_RECVPKTINFO) and sends the reply from it, since a client accepts a
// reply only from the address it asked.
type ConnPort struct {
	conn    *net.UDPConn
	local   netip.AddrPort
	pktinfo bool

	buf      []byte         // the packet buffer, UDPSlotSize bytes
	held     bool           // the packet was handed out and not yet sent back
	from     netip.AddrPort // its sender, with the IPv6 zone Peer does not hold
	peer     Addr           // from as handed out in Packet.Peer
	ctl      []uint64       // connCtlWords: the received control message, then the one sent
	dst      netip.Addr     // the query's destination address, when pktinfo found it
	dstIndex uint32         // and its interface, for an IPv6 link-local address
	deadline time.Time      // the read deadline in force

	closed    atomic.Bool
	sendErrs  atomic.Uint64
	truncated atomic.Uint64
}

var _ Port = (*ConnPort)(nil)

// ListenUDPConn opens a ConnPort bound to addr, a literal IP address and
// port as for ListenUDP. IPv6 sockets are IPv6 only. batch is checked as
// ListenUDP checks it, though the port hands out one datagram at a time.
func ListenUDPConn(addr string, batch int) (*ConnPort, error) {
	ap, err := listenAddr(addr, batch)
	if err != nil {
		return nil, err
	}
	network := "udp4"
	if ap.Addr().Is6() {
		network = "udp6" // the standard library sets IPV6_V6ONLY for it
	}
	p := &ConnPort{pktinfo: ap.Addr().IsUnspecified(), buf: make([]byte, UDPSlotSize), ctl: make([]uint64, connCtlWords)}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = p.setup(int(fd), ap.Addr().Is6()) }); err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), network, ap.String())
	if err != nil {
		return nil, fmt.Errorf("nic: UDP socket on %s: %w", addr, err)
	}
	p.conn = pc.(*net.UDPConn)
	// Large buffers are best effort: the system caps them (net.core.rmem_max
	// on Linux, kern.ipc.maxsockbuf on FreeBSD and macOS).
	_ = p.conn.SetReadBuffer(udpSocketBuffer)
	_ = p.conn.SetWriteBuffer(udpSocketBuffer)
	local := p.conn.LocalAddr().(*net.UDPAddr).AddrPort()
	p.local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	return p, nil
}

// setup sets the options that must be in place before the socket binds.
func (p *ConnPort) setup(fd int, ipv6 bool) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, reusePortOption, 1); err != nil {
		return fmt.Errorf("%s: %w", reusePortName, err)
	}
	if !ipv6 {
		// The standard library allows broadcast on every IPv4 datagram
		// socket. A DNS server never answers a broadcast address: without
		// SO_BROADCAST the kernel refuses such a reply (counted in
		// SendErrors), as it does for the recvmmsg port, so that a query
		// forged from a subnet's broadcast address cannot make us reply to
		// every host on it.
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 0); err != nil {
			return fmt.Errorf("clearing SO_BROADCAST: %w", err)
		}
	}
	if !p.pktinfo {
		return nil
	}
	var err error
	if ipv6 {
		err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
	} else {
		err = unix.SetsockoptInt(fd, unix.IPPROTO_IP, recvDst4Option, 1)
	}
	if err != nil {
		return fmt.Errorf("asking for the destination address of queries: %w", err)
	}
	return nil
}

// LocalAddr is the address the socket is bound to, with the port the kernel
// chose when ListenUDPConn was given port 0.
func (p *ConnPort) LocalAddr() netip.AddrPort { return p.local }

// SendErrors is the number of replies the kernel refused to send,
// counted instead of failing the batch.
func (p *ConnPort) SendErrors() uint64 { return p.sendErrs.Load() }

// Truncated is the number of datagrams dropped because they were larger
// than UDPSlotSize.
func (p *ConnPort) Truncated() uint64 { return p.truncated.Load() }

// Receive implements Port. It hands out one datagram, waiting for it up to
// the read deadline; it returns 0 packets when the deadline passes, and
// when the datagram was larger than UDPSlotSize (counted in Truncated).
func (p *ConnPort) Receive(pkts []Packet) (int, error) {
	p.held = false
	if len(pkts) == 0 {
		return 0, nil
	}
	if p.closed.Load() {
		return 0, ErrClosed
	}
	if now := time.Now(); p.deadline.Sub(now) < connIdleMin {
		p.deadline = now.Add(connIdleMax)
		if err := p.conn.SetReadDeadline(p.deadline); err != nil {
			return 0, p.closedOr(err)
		}
	}
	var oob []byte
	if p.pktinfo {
		oob = p.ctlBytes()
	}
	n, oobn, flags, from, err := p.conn.ReadMsgUDPAddrPort(p.buf, oob)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) && !p.closed.Load() {
			return 0, nil
		}
		return 0, p.closedOr(err)
	}
	if flags&unix.MSG_TRUNC != 0 {
		p.truncated.Add(1)
		return 0, nil
	}
	p.dst, p.dstIndex = netip.Addr{}, 0
	if p.pktinfo && flags&unix.MSG_CTRUNC == 0 {
		p.dst, p.dstIndex = queryDestination(oob[:oobn])
	}
	p.from = from
	p.peer = AddrFrom(from)
	pkts[0] = Packet{Buf: p.buf[:UDPSlotSize:UDPSlotSize], Len: n, Peer: p.peer}
	p.held = true
	return 1, nil
}

// closedOr returns ErrClosed once the port is closed, else err as the
// standard library gave it, which names the operation and the socket's
// address ("read udp 127.0.0.1:53: ..."): it ends the port and its worker,
// and returning it as it is keeps fmt off the per-packet path.
func (p *ConnPort) closedOr(err error) error {
	if p.closed.Load() || errors.Is(err, net.ErrClosed) {
		return ErrClosed
	}
	return err
}

// Send implements Port. It sends the reply, when the packet has one, to
// its Peer: with the sender's IPv6 zone as received when the Peer is
// unchanged, else to the address the Peer decodes to. A reply the kernel
// refuses is counted in SendErrors. While the socket's send buffer is full
// Send waits, as on a blocking socket; UDP sends rarely wait.
func (p *ConnPort) Send(pkts []Packet) error {
	held := p.held
	p.held = false
	if len(pkts) > 1 || (len(pkts) == 1) != held {
		return ErrSendMismatch
	}
	if len(pkts) == 0 || pkts[0].Len <= 0 {
		if p.closed.Load() {
			return ErrClosed
		}
		return nil
	}
	pk := &pkts[0]
	to := p.from
	if pk.Peer != p.peer {
		to = pk.Peer.AddrPort()
	}
	if pk.Len > len(pk.Buf) || !to.IsValid() {
		p.sendErrs.Add(1)
		return nil
	}
	var oob []byte
	if p.dst.IsValid() {
		oob = p.replyControl()
	}
	if _, _, err := p.conn.WriteMsgUDPAddrPort(pk.Buf[:pk.Len], oob, to); err != nil {
		if p.closed.Load() || errors.Is(err, net.ErrClosed) {
			return ErrClosed
		}
		p.sendErrs.Add(1)
	}
	return nil
}

// Close implements Port. A Receive waiting for a datagram returns ErrClosed
// at once: closing the standard library's socket wakes it.
func (p *ConnPort) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	return p.conn.Close()
}

// ctlBytes is the control-message space as bytes. It lives in 8-byte words
// so that the cmsghdr at its start is aligned as the kernel and the
// unix.Cmsghdr cast in replyControl require.
func (p *ConnPort) ctlBytes() []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(&p.ctl[0])), connCtlWords*8)
}

// queryDestination reads the destination address of a query, and for an
// IPv6 link-local one its interface, from the control messages received
// with it. It returns the zero Addr when there is none.
func queryDestination(oob []byte) (netip.Addr, uint32) {
	for len(oob) > 0 {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			break
		}
		oob = rest
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == dst4Type:
			if a, ok := dst4(data); ok {
				return netip.AddrFrom4(a), 0
			}
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= 20:
			// struct in6_pktinfo { in6_addr ipi6_addr; unsigned ipi6_ifindex; }
			// (RFC 3542) on every system.
			a := netip.AddrFrom16([16]byte(data[0:16]))
			var index uint32
			if a.IsLinkLocalUnicast() {
				index = binary.NativeEndian.Uint32(data[16:20])
			}
			return a, index
		}
	}
	return netip.Addr{}, 0
}

// replyControl builds, in the port's control space, the control message
// that makes the kernel send the reply from the query's destination
// address, and returns it.
func (p *ConnPort) replyControl() []byte {
	return sourceControl(p.ctlBytes(), p.dst, p.dstIndex)
}

// sourceControl builds in b, connCtlWords*8 bytes aligned to 8, the
// control message that makes the kernel send a datagram from the address
// src (with the interface index for an IPv6 link-local one), and returns
// it.
func sourceControl(b []byte, src netip.Addr, index uint32) []byte {
	clear(b)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	data := b[unix.CmsgLen(0):]
	var n int
	if src.Is4() {
		h.Level, h.Type = unix.IPPROTO_IP, src4Type
		n = putSrc4(data, src.As4())
	} else {
		// The interface is kept only for link-local addresses, which are
		// meaningless without it; routing picks it for the others.
		h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
		a := src.As16()
		copy(data[0:16], a[:])
		binary.NativeEndian.PutUint32(data[16:20], index)
		n = 20
	}
	h.SetLen(unix.CmsgLen(n))
	return b[:unix.CmsgSpace(n)]
}

var (
	_ Destinations = (*ConnPort)(nil)
	_ ReplySender  = (*ConnPort)(nil)
)

// Destination implements Destinations: the destination of the datagram
// Receive handed out (i 0), until Send gives it back. It is the address
// the port is bound to, or, bound to an unspecified address, the one the
// kernel reported with the datagram; Len 0 when it reported none.
func (p *ConnPort) Destination(i int) Addr {
	if i != 0 || !p.held {
		return Addr{}
	}
	if !p.pktinfo {
		return AddrFrom(p.local)
	}
	if !p.dst.IsValid() {
		return Addr{}
	}
	return AddrFrom(netip.AddrPortFrom(p.dst, p.local.Port()))
}

// SendFrom implements ReplySender with one write on the port's socket,
// which the standard library lets any goroutine make while the worker
// reads and writes it. Bound to an unspecified address, the datagram goes
// from from's address (an IPv6 link-local one without its interface, which
// the control plane's replies do not need: the kernel routes by the
// destination). It builds its control message in memory of its own, not
// the worker's. A datagram the kernel refuses is returned as its error.
func (p *ConnPort) SendFrom(b []byte, to, from Addr) error {
	ap := to.AddrPort()
	if !ap.IsValid() {
		return fmt.Errorf("nic: reply from %s to an address of no known family", p.local)
	}
	var oob []byte
	if src := from.AddrPort(); p.pktinfo && src.IsValid() {
		ctl := make([]uint64, connCtlWords)
		oob = sourceControl(unsafe.Slice((*byte)(unsafe.Pointer(&ctl[0])), connCtlWords*8), src.Addr().Unmap(), 0)
	}
	if p.closed.Load() {
		return ErrClosed
	}
	if _, _, err := p.conn.WriteMsgUDPAddrPort(b, oob, ap); err != nil {
		if p.closed.Load() || errors.Is(err, net.ErrClosed) {
			return ErrClosed
		}
		return fmt.Errorf("nic: reply from %s to %s: %w", p.local, ap, err)
	}
	return nil
}
