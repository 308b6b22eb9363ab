package controlplane

import "syscall"

// ipv6Freebind is IPV6_FREEBIND (Linux 4.15), which package syscall lacks.
const ipv6Freebind = 78

// freebind lets the socket fd bind an address the host does not hold
// (IP_FREEBIND, IPV6_FREEBIND): the AF_XDP path may serve one (xdpReplies).
func freebind(fd int, v6 bool) error {
	if v6 {
		return syscall.SetsockoptInt(fd, syscall.IPPROTO_IPV6, ipv6Freebind, 1)
	}
	return syscall.SetsockoptInt(fd, syscall.IPPROTO_IP, syscall.IP_FREEBIND, 1)
}
