package nic

import "golang.org/x/sys/unix"

// The ConnPort's socket options on macOS.
const (
	reusePortOption = unix.SO_REUSEPORT
	reusePortName   = "SO_REUSEPORT"
	recvDst4Option  = unix.IP_RECVPKTINFO // asks for dst4Type messages
	dst4Type        = unix.IP_PKTINFO     // in_pktinfo
	src4Type        = unix.IP_PKTINFO     // in_pktinfo
)

// UDPSpreads reports whether the kernel spreads the datagrams to one
// address over the sockets ListenUDP bound to it. On macOS it does not:
// SO_REUSEPORT lets several sockets bind, but each unicast datagram goes to
// one of them, the same one every time, so more workers on an address
// would wait for nothing.
const UDPSpreads = false
