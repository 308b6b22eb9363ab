package dataplane

import (
	"encoding/binary"

	"github.com/ringdns/ringdns/internal/onessum"
)

// Header sizes and field values of the frames the AF_XDP path answers.
const (
	ethHeaderLen  = 14
	vlanTagLen    = 4
	ipv4HeaderLen = 20
	ipv6HeaderLen = 40
	udpHeaderLen  = 8

	etherTypeIPv4 = 0x0800
	etherTypeIPv6 = 0x86dd
	etherTypeVLAN = 0x8100 // IEEE 802.1Q

	protoUDP = 17

	// replyHopLimit is the TTL or hop limit of every reply: the query's own
	// would leak how far away the client is and may be too small to come back.
	replyHopLimit = 64
)

// Frame locates the headers and DNS payload of a query frame inside the
// buffer it was parsed from. Its offsets stay valid while the payload is
// rewritten in place, so RewriteReply can turn the same buffer into the reply.
type Frame struct {
	// L3 is the offset of the IP header: 14, or 18 behind one 802.1Q tag.
	L3 int
	// L4 is the offset of the UDP header.
	L4 int
	// Payload is the offset of the DNS message, L4+8.
	Payload int
	// PayloadLen is the DNS message's length as the UDP header gives it.
	PayloadLen int
	// IPv6 tells which network header sits at L3.
	IPv6 bool
}

// HeaderLen is the number of bytes before the DNS payload.
func (f *Frame) HeaderLen() int { return f.Payload }

// ParseFrame parses b as an Ethernet frame holding a UDP datagram addressed
// to port and reports whether it is one the data plane answers. It accepts at
// most one 802.1Q tag; IPv4 without options (IHL 5) and unfragmented (MF 0,
// offset 0); IPv6 whose next header is UDP (no extension headers); unicast
// source and destination MAC and IP addresses; and a destination port other
// than 0 (reserved): a reply could not be sent from it, so port 0 matches
// nothing. Everything else is left to the kernel by the XDP program, or
// dropped here when it arrives anyway. The source port is not vetted here:
// the worker drops queries from port 0 and the other reflection ports (see
// reflectionPort) on every backend alike, and counts them apart.
//
// The IPv4 header checksum and the UDP checksum are not verified: the
// Ethernet FCS has already been checked by the NIC, and a corrupted query
// costs at most one wrong reply to a client that will not accept it.
// Trailing bytes after the IP datagram (Ethernet padding of short frames) are
// ignored. ParseFrame never reads outside b.
func ParseFrame(b []byte, port uint16) (f Frame, ok bool) {
	if len(b) < ethHeaderLen {
		return f, false
	}
	// A group (multicast or broadcast) address on either side means the
	// frame was not sent to us alone, or that the swapped reply would carry
	// a group source address.
	if b[0]&1 != 0 || b[6]&1 != 0 {
		return f, false
	}
	l3 := ethHeaderLen
	etherType := binary.BigEndian.Uint16(b[12:14])
	if etherType == etherTypeVLAN {
		if len(b) < ethHeaderLen+vlanTagLen {
			return f, false
		}
		l3 += vlanTagLen
		etherType = binary.BigEndian.Uint16(b[16:18])
	}
	var ipEnd int // offset of the end of the IP datagram
	switch etherType {
	case etherTypeIPv4:
		if len(b) < l3+ipv4HeaderLen {
			return f, false
		}
		ip := b[l3 : l3+ipv4HeaderLen]
		if ip[0] != 0x45 || ip[9] != protoUDP {
			return f, false
		}
		// MF and the fragment offset must be zero; DF may be set.
		if binary.BigEndian.Uint16(ip[6:8])&0x3fff != 0 {
			return f, false
		}
		// Multicast, reserved and limited broadcast (224.0.0.0 and up), the
		// unspecified network 0/8 and loopback never source or receive a
		// query on the wire.
		if ip[12] >= 224 || ip[12] == 0 || ip[12] == 127 || ip[16] >= 224 || ip[16] == 0 || ip[16] == 127 {
			return f, false
		}
		total := int(binary.BigEndian.Uint16(ip[2:4]))
		if total < ipv4HeaderLen+udpHeaderLen || l3+total > len(b) {
			return f, false
		}
		f.L4 = l3 + ipv4HeaderLen
		ipEnd = l3 + total
	case etherTypeIPv6:
		if len(b) < l3+ipv6HeaderLen {
			return f, false
		}
		ip := b[l3 : l3+ipv6HeaderLen]
		if ip[0]>>4 != 6 || ip[6] != protoUDP {
			return f, false
		}
		// Multicast (ff00::/8) on either side, and the unspecified address
		// as the source, cannot be answered.
		if ip[8] == 0xff || ip[24] == 0xff || isZero16(ip[8:24]) {
			return f, false
		}
		payload := int(binary.BigEndian.Uint16(ip[4:6]))
		if payload < udpHeaderLen || l3+ipv6HeaderLen+payload > len(b) {
			return f, false
		}
		f.L4 = l3 + ipv6HeaderLen
		ipEnd = l3 + ipv6HeaderLen + payload
		f.IPv6 = true
	default:
		return f, false
	}
	udp := b[f.L4 : f.L4+udpHeaderLen]
	dport := binary.BigEndian.Uint16(udp[2:4])
	if dport != port || dport == 0 {
		return f, false
	}
	udpLen := int(binary.BigEndian.Uint16(udp[4:6]))
	if udpLen < udpHeaderLen || f.L4+udpLen > ipEnd {
		return f, false
	}
	f.L3 = l3
	f.Payload = f.L4 + udpHeaderLen
	f.PayloadLen = udpLen - udpHeaderLen
	return f, true
}

func isZero16(b []byte) bool {
	return binary.LittleEndian.Uint64(b[0:8])|binary.LittleEndian.Uint64(b[8:16]) == 0
}

// PayloadLimit is the largest DNS reply that fits both in a buffer of size
// bufLen and, with the frame's IP and UDP headers, in an IP packet of mtu
// bytes. It is 0 when nothing fits.
func (f *Frame) PayloadLimit(bufLen, mtu int) int {
	n := bufLen - f.Payload
	if m := mtu - (f.Payload - f.L3); m < n {
		n = m
	}
	return max(n, 0)
}

// RewriteReply turns the query frame f in b into the reply whose DNS payload
// of n bytes has already been written at f.Payload, and returns the reply's
// frame length. It swaps the MAC addresses, the IP addresses and the UDP
// ports, sets the lengths, a TTL or hop limit of 64 and the checksums. It
// keeps the VLAN tag, the DSCP bits (clearing ECN, which the reply's sender
// has not negotiated), the IPv4 identification and DF bit, and the IPv6 flow
// label. The caller guarantees f.Payload+n <= len(b) and n <= 65535-28, which
// PayloadLimit ensures for any MTU up to 65535.
func RewriteReply(b []byte, f *Frame, n int) int {
	return rewriteReply(b, f, n, onessum.Sum(b[f.Payload:f.Payload+n], 0))
}

// rewriteReply is RewriteReply given the partial ones'-complement sum of
// the payload (onessum.Sum(b[f.Payload:f.Payload+n], 0), or any value that folds
// alike), which the answer engine builds as it writes the reply.
func rewriteReply(b []byte, f *Frame, n int, payloadSum uint32) int {
	end := f.Payload + n
	b = b[:end]
	var mac [6]byte
	copy(mac[:], b[0:6])
	copy(b[0:6], b[6:12])
	copy(b[6:12], mac[:])

	udp := b[f.L4:end]
	sp, dp := udp[0:2], udp[2:4]
	sp[0], sp[1], dp[0], dp[1] = dp[0], dp[1], sp[0], sp[1]
	udpLen := udpHeaderLen + n
	binary.BigEndian.PutUint16(udp[4:6], uint16(udpLen))
	udp[6], udp[7] = 0, 0

	// The pseudo-header sum: source and destination addresses (their order
	// does not change the sum), protocol and UDP length. The fixed-size
	// headers are summed in straight-line code from the same loads that swap
	// the addresses, in the little-endian order of onessum.Sum (see there),
	// rather than by calls to it.
	var sum uint32
	if f.IPv6 {
		ip := b[f.L3 : f.L3+ipv6HeaderLen]
		s0, s1 := binary.LittleEndian.Uint64(ip[8:16]), binary.LittleEndian.Uint64(ip[16:24])
		d0, d1 := binary.LittleEndian.Uint64(ip[24:32]), binary.LittleEndian.Uint64(ip[32:40])
		binary.LittleEndian.PutUint64(ip[8:16], d0)
		binary.LittleEndian.PutUint64(ip[16:24], d1)
		binary.LittleEndian.PutUint64(ip[24:32], s0)
		binary.LittleEndian.PutUint64(ip[32:40], s1)
		ip[1] &^= 0x30 // the ECN bits straddle bytes 0 and 1: low 2 bits of the traffic class
		binary.BigEndian.PutUint16(ip[4:6], uint16(udpLen))
		ip[7] = replyHopLimit
		sum = onessum.Swap(onessum.Halves(s0)+onessum.Halves(s1)+onessum.Halves(d0)+onessum.Halves(d1)) + protoUDP + uint32(udpLen)
	} else {
		ip := b[f.L3 : f.L3+ipv4HeaderLen]
		src, dst := binary.LittleEndian.Uint32(ip[12:16]), binary.LittleEndian.Uint32(ip[16:20])
		binary.LittleEndian.PutUint32(ip[12:16], dst)
		binary.LittleEndian.PutUint32(ip[16:20], src)
		ip[1] &^= 0x03
		binary.BigEndian.PutUint16(ip[2:4], uint16(ipv4HeaderLen+udpLen))
		ip[8] = replyHopLimit
		ip[10], ip[11] = 0, 0
		addrs := uint64(src) + uint64(dst)
		hdr := addrs + uint64(binary.LittleEndian.Uint32(ip[0:4])) + uint64(binary.LittleEndian.Uint32(ip[4:8])) + uint64(binary.LittleEndian.Uint32(ip[8:12]))
		binary.BigEndian.PutUint16(ip[10:12], onessum.Fold(onessum.Swap(hdr)))
		sum = onessum.Swap(addrs) + protoUDP + uint32(udpLen)
	}
	// The UDP header: the ports (swapped, which does not change their
	// sum), the length, and the checksum field, still 0.
	sum += uint32(be16(udp[0:2])) + uint32(be16(udp[2:4])) + uint32(udpLen)
	c := onessum.Fold(sum + payloadSum)
	if c == 0 {
		// Zero means "no checksum" in UDP (and is forbidden over IPv6); the
		// ones'-complement equivalent 0xffff is sent instead (RFC 768).
		c = 0xffff
	}
	binary.BigEndian.PutUint16(udp[6:8], c)
	return end
}
