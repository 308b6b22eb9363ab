package nic

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNoNeighbour is wrapped by Neighbour's error when the kernel has no
// usable link-layer address for the address asked about.
var ErrNoNeighbour = errors.New("no neighbour entry")

// Neighbour returns the link-layer address the kernel's neighbour table (ARP
// for IPv4, neighbour discovery for IPv6) holds for addr on interface
// ifindex, in the calling thread's network namespace. Entries that are
// incomplete or failed do not count. A sender that writes whole frames, as an
// AF_XDP load generator does, needs it for the destination MAC.
func Neighbour(ifindex int, addr netip.Addr) (net.HardwareAddr, error) {
	addr = addr.Unmap()
	fam := byte(unix.AF_INET)
	if addr.Is6() {
		fam = unix.AF_INET6
	}
	// struct ndmsg: family, three pad bytes, ifindex, state, flags, type.
	nd := make([]byte, 12)
	nd[0] = fam
	nativeEndian.PutUint32(nd[4:8], uint32(int32(ifindex)))
	req := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+len(nd))
	req = append(req, nd...)
	nativeEndian.PutUint32(req[0:4], uint32(len(req)))
	nativeEndian.PutUint16(req[4:6], unix.RTM_GETNEIGH)
	nativeEndian.PutUint16(req[6:8], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	nativeEndian.PutUint32(req[8:12], 1)
	msgs, err := nlRoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("read neighbour table: %w", err)
	}
	const usable = unix.NUD_REACHABLE | unix.NUD_STALE | unix.NUD_DELAY | unix.NUD_PROBE | unix.NUD_PERMANENT | unix.NUD_NOARP
	for _, m := range msgs {
		if m.hdrType != unix.RTM_NEWNEIGH || len(m.data) < 12 {
			continue
		}
		if int(int32(nativeUint32(m.data[4:8]))) != ifindex {
			continue
		}
		state := nativeEndian.Uint16(m.data[8:10])
		if state&usable == 0 {
			continue
		}
		var dst netip.Addr
		var ll net.HardwareAddr
		for a := range nlAttrs(m.data[12:]) {
			switch a.typ {
			case unix.NDA_DST:
				dst, _ = netip.AddrFromSlice(a.val)
			case unix.NDA_LLADDR:
				ll = append(net.HardwareAddr(nil), a.val...)
			}
		}
		if dst.Unmap() == addr && len(ll) == 6 {
			return ll, nil
		}
	}
	return nil, fmt.Errorf("%v on interface %d: %w", addr, ifindex, ErrNoNeighbour)
}

// ResolveNeighbour is Neighbour, but when the table has no entry it makes
// the kernel resolve one by sending a datagram to addr's discard port (9)
// from iface, and waits up to wait for the entry to appear.
func ResolveNeighbour(iface string, addr netip.Addr, wait time.Duration) (net.HardwareAddr, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, err
	}
	if mac, err := Neighbour(ifi.Index, addr); err == nil {
		return mac, nil
	}
	network := "udp4"
	if addr.Unmap().Is6() {
		network = "udp6"
	}
	dst := net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr.Unmap(), 9))
	if addr.Is6() && addr.IsLinkLocalUnicast() {
		dst.Zone = iface
	}
	c, err := net.DialUDP(network, nil, dst)
	if err != nil {
		return nil, fmt.Errorf("resolve the link-layer address of %v on %s: %w", addr, iface, err)
	}
	defer c.Close()
	deadline := time.Now().Add(wait)
	for {
		c.Write([]byte{0})
		time.Sleep(20 * time.Millisecond)
		mac, err := Neighbour(ifi.Index, addr)
		if err == nil {
			return mac, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%v did not answer ARP or neighbour discovery on %s within %v: %w", addr, iface, wait, err)
		}
	}
}
