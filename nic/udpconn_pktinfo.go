//go:build linux || darwin

package nic

// Linux and macOS carry an IPv4 query's destination, and a reply's source,
// in struct in_pktinfo { int ipi_ifindex; in_addr ipi_spec_dst; in_addr
// ipi_addr; }: received, ipi_addr is the query's destination; sent,
// ipi_spec_dst is the source to use, and the interface is left to routing.

// dst4 reads the destination address from the data of an IPv4 control
// message of type dst4Type.
func dst4(data []byte) (a [4]byte, ok bool) {
	if len(data) < 12 {
		return a, false
	}
	return [4]byte(data[8:12]), true
}

// putSrc4 writes the data of the IPv4 control message of type src4Type
// that sends from a, into b (zeroed), and returns its length.
func putSrc4(b []byte, a [4]byte) int {
	copy(b[4:8], a[:])
	return 12
}
