package nic

import "golang.org/x/sys/unix"

// The ConnPort's socket options on Linux, where it serves in tests (see
// ConnPort): those of the recvmmsg port.
const (
	reusePortOption = unix.SO_REUSEPORT
	reusePortName   = "SO_REUSEPORT"
	recvDst4Option  = unix.IP_PKTINFO // asks for dst4Type messages
	dst4Type        = unix.IP_PKTINFO // in_pktinfo
	src4Type        = unix.IP_PKTINFO // in_pktinfo
)
