package nic

import (
	"fmt"
	"net/netip"
)

// listenAddr checks the arguments of ListenUDP and ListenUDPConn alike: addr
// must be a literal IP address and port, batch 1 to 1024 packets. An
// IPv4-mapped address is returned as the IPv4 address it stands for.
func listenAddr(addr string, batch int) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("nic: listen address %q: want a literal IP and port such as 0.0.0.0:53 or [::]:53: %w", addr, err)
	}
	if batch <= 0 || batch > 1024 {
		return netip.AddrPort{}, fmt.Errorf("nic: UDP batch %d: want 1 to 1024 packets", batch)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}
