package nic

import "golang.org/x/sys/unix"

// The ConnPort's socket options on FreeBSD, which carries an IPv4 query's
// destination and a reply's source as a bare in_addr, in messages of types
// of their own.
const (
	reusePortOption = unix.SO_REUSEPORT_LB
	reusePortName   = "SO_REUSEPORT_LB"
	recvDst4Option  = unix.IP_RECVDSTADDR // asks for dst4Type messages
	dst4Type        = unix.IP_RECVDSTADDR // in_addr
	src4Type        = unix.IP_SENDSRCADDR // in_addr
)

// UDPSpreads reports whether the kernel spreads the datagrams to one
// address over the sockets ListenUDP bound to it: on FreeBSD it does, over
// the sockets bound with SO_REUSEPORT_LB (plain SO_REUSEPORT would hand
// every unicast datagram to one of them).
const UDPSpreads = true

// dst4 reads the destination address from the data of an IPv4 control
// message of type dst4Type.
func dst4(data []byte) (a [4]byte, ok bool) {
	if len(data) < 4 {
		return a, false
	}
	return [4]byte(data[0:4]), true
}

// putSrc4 writes the data of the IPv4 control message of type src4Type
// that sends from a, into b, and returns its length.
func putSrc4(b []byte, a [4]byte) int {
	copy(b[0:4], a[:])
	return 4
}
