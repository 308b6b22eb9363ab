package nic

import (
	"encoding/binary"
	"net/netip"
)

// Addr is a peer's address and port, kept in raw form so that a batch of
// packets carries no pointers and needs no allocation. Its layout is the
// same on every system: that of Linux's sockaddr_in and sockaddr_in6, the
// address family (addrFamily4 or addrFamily6, Linux's AF_INET and AF_INET6)
// in host byte order at bytes 0 and 1, the port in network order at bytes 2
// and 3, an IPv4 address at bytes 4 to 7 or an IPv6 address at bytes 8 to
// 23, the IPv6 scope at bytes 24 to 27, zeros elsewhere, and Len the size of
// the sockaddr (16 or 28). On Linux the kernel-socket port receives into it
// directly and the AF_XDP port builds it from each frame; the port of other
// systems (ConnPort) converts the address the standard library gives it,
// since their sockaddrs differ (a length byte before the family, other
// family numbers). The port is where the data plane reads it, at bytes 2
// and 3 of every Addr.
type Addr struct {
	Raw [28]byte
	Len uint32
}

// The layout of Addr: Linux's address families and sockaddr sizes, whatever
// the system. udp_linux.go checks at compile time that they are the
// kernel's.
const (
	addrFamily4 = 2  // AF_INET on Linux
	addrFamily6 = 10 // AF_INET6 on Linux
	addrLen4    = 16 // sizeof(struct sockaddr_in)
	addrLen6    = 28 // sizeof(struct sockaddr_in6)
)

// AddrPort decodes an Addr (as in Packet.Peer) into an address and port;
// the zero AddrPort when a holds neither an IPv4 nor an IPv6 address. An
// IPv6 scope is not decoded.
func (a Addr) AddrPort() netip.AddrPort {
	if a.Len < 2 || a.Len > uint32(len(a.Raw)) {
		return netip.AddrPort{}
	}
	port := binary.BigEndian.Uint16(a.Raw[2:4])
	switch binary.NativeEndian.Uint16(a.Raw[0:2]) {
	case addrFamily4:
		if a.Len >= addrLen4 {
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte(a.Raw[4:8])), port)
		}
	case addrFamily6:
		if a.Len >= addrLen6 {
			return netip.AddrPortFrom(netip.AddrFrom16([16]byte(a.Raw[8:24])), port)
		}
	}
	return netip.AddrPort{}
}

// AddrFrom encodes an address and port as an Addr, the form of Packet.Peer:
// the sockaddr_in layout for IPv4 (IPv4-mapped IPv6 included), the
// sockaddr_in6 layout otherwise. An IPv6 zone is not encoded.
func AddrFrom(ap netip.AddrPort) Addr {
	var a Addr
	ip := ap.Addr().Unmap()
	binary.BigEndian.PutUint16(a.Raw[2:4], ap.Port())
	if ip.Is4() {
		binary.NativeEndian.PutUint16(a.Raw[0:2], addrFamily4)
		v := ip.As4()
		copy(a.Raw[4:8], v[:])
		a.Len = addrLen4
		return a
	}
	binary.NativeEndian.PutUint16(a.Raw[0:2], addrFamily6)
	v := ip.As16()
	copy(a.Raw[8:24], v[:])
	a.Len = addrLen6
	return a
}
