//go:build !linux

package nic

// UDPPort is the kernel-socket port of this system: ConnPort, since only
// Linux has recvmmsg and sendmmsg.
type UDPPort = ConnPort

// ListenUDP opens the kernel-socket port of this system, a ConnPort (see
// ListenUDPConn), bound to addr, a literal IP address and port such as
// "127.0.0.1:53", "[::1]:5353" or "0.0.0.0:53" (port 0 picks a free one;
// see LocalAddr). Every worker binds its own socket to the address; see
// UDPSpreads for whether the kernel spreads clients over them.
func ListenUDP(addr string, batch int) (*UDPPort, error) {
	return ListenUDPConn(addr, batch)
}
