package nic

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// This file lets a UDP port be handed to another process (ringdns's
// hitless upgrade): the old process passes the socket's descriptor, stops
// reading it and closes its own descriptor without shutdown(2), so that the
// socket, its place in the SO_REUSEPORT group and the datagrams queued in
// its buffer stay with the new process, which builds a port on the same
// socket with UDPPortFromFile.

// File returns a duplicate of the port's descriptor, to be passed to
// another process. The caller closes it.
func (p *UDPPort) File() (*os.File, error) {
	if !p.acquire() {
		return nil, ErrClosed
	}
	defer p.release()
	fd, err := unix.FcntlInt(uintptr(p.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("nic: duplicating the UDP socket on %s: %w", p.local, err)
	}
	return os.NewFile(uintptr(fd), "udp "+p.local.String()), nil
}

// StopReceiving makes Receive return ErrClosed from its next call on,
// without touching the socket: the worker returns after the batch in hand,
// and the datagrams that arrive meanwhile wait in the socket's buffer for
// whoever reads it next. ResumeReceiving undoes it.
func (p *UDPPort) StopReceiving() { p.handing.Store(true) }

// ResumeReceiving lets Receive read again after StopReceiving, for a
// hand-over that failed.
func (p *UDPPort) ResumeReceiving() { p.handing.Store(false) }

// Release closes the port's descriptor as Close does, but without
// shutdown(2): shutdown acts on the socket, which another process holding a
// descriptor of it goes on serving. A Receive blocked in the kernel returns
// within the socket's receive timeout (100 ms) rather than at once.
func (p *UDPPort) Release() error {
	p.handing.Store(true)
	for {
		s := p.state.Load()
		if s&closedBit != 0 {
			return nil
		}
		if p.state.CompareAndSwap(s, (s|closedBit)+1) {
			break
		}
	}
	p.release()
	return nil
}

// UDPPortFromFile builds a port like ListenUDP's on a UDP socket opened by
// another process (or by this one before an exec) and passed as f, which
// the caller may close afterwards: the port has a descriptor of its own.
// The socket keeps the options it was given (SO_REUSEPORT, buffers, the
// receive timeout, PKTINFO), which are checked where the port relies on
// them.
func UDPPortFromFile(f *os.File, batch int) (*UDPPort, error) {
	if batch <= 0 || batch > 1024 {
		return nil, fmt.Errorf("nic: UDP batch %d: want 1 to 1024 packets", batch)
	}
	raw, err := f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("nic: inherited UDP socket %s: %w", f.Name(), err)
	}
	fd := -1
	var dupErr error
	if err := raw.Control(func(s uintptr) { fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, fmt.Errorf("nic: inherited UDP socket %s: %w", f.Name(), err)
	}
	if dupErr != nil {
		return nil, fmt.Errorf("nic: inherited UDP socket %s: duplicating: %w", f.Name(), dupErr)
	}
	p := &UDPPort{fd: fd}
	if err := p.adopt(); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("nic: inherited UDP socket %s: %w", f.Name(), err)
	}
	p.alloc(batch)
	return p, nil
}

// adopt checks that p.fd is a bound, blocking UDP socket with a receive
// timeout, and reads its address.
func (p *UDPPort) adopt() error {
	typ, err := unix.GetsockoptInt(p.fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return fmt.Errorf("SO_TYPE: %w", err)
	}
	proto, err := unix.GetsockoptInt(p.fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	if err != nil {
		return fmt.Errorf("SO_PROTOCOL: %w", err)
	}
	if typ != unix.SOCK_DGRAM || proto != unix.IPPROTO_UDP {
		return fmt.Errorf("not a UDP socket (type %d, protocol %d)", typ, proto)
	}
	// Receive blocks in recvmmsg and relies on the receive timeout to
	// notice a hand-over or Close it missed; a descriptor made
	// non-blocking by the passing would spin instead.
	fl, err := unix.FcntlInt(uintptr(p.fd), unix.F_GETFL, 0)
	if err != nil {
		return fmt.Errorf("F_GETFL: %w", err)
	}
	if fl&unix.O_NONBLOCK != 0 {
		if _, err := unix.FcntlInt(uintptr(p.fd), unix.F_SETFL, fl&^unix.O_NONBLOCK); err != nil {
			return fmt.Errorf("F_SETFL: %w", err)
		}
	}
	tv, err := unix.GetsockoptTimeval(p.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO)
	if err != nil {
		return fmt.Errorf("SO_RCVTIMEO: %w", err)
	}
	if tv.Sec == 0 && tv.Usec == 0 {
		idle := unix.NsecToTimeval(udpIdleMillis * 1e6)
		if err := unix.SetsockoptTimeval(p.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &idle); err != nil {
			return fmt.Errorf("SO_RCVTIMEO: %w", err)
		}
	}
	sa, err := unix.Getsockname(p.fd)
	if err != nil {
		return fmt.Errorf("getsockname: %w", err)
	}
	p.local = addrPortOfSockaddr(sa)
	if !p.local.IsValid() || p.local.Port() == 0 {
		return fmt.Errorf("not bound to an IP address and port")
	}
	p.pktinfo = p.local.Addr().IsUnspecified()
	return nil
}
