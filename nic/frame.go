package nic

import (
	"encoding/binary"
	"math/bits"
	"net/netip"

	"github.com/ringdns/ringdns/internal/onessum"
)

// This file holds the Ethernet, IP and UDP side of the AF_XDP path, as Knot
// DNS keeps it in libknot/xdp/protocols.h: ParseFrame makes in Go the
// decisions the XDP program (xdp_prog_linux.go) makes in BPF, and a few
// more the program leaves to it; RewriteReply turns a query frame into its
// reply in place; Headers does both for each packet of a batch, so that the
// data plane above sees DNS messages only.

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
// the data plane drops queries from port 0 and the other reflection ports
// on every backend alike, from Packet.Peer, and counts them apart.
//
// ParseFrame checks the frame's shape only: the IPv4 header checksum and
// the UDP checksum are verified by VerifyChecksums, which Headers.Strip
// runs after it. Trailing bytes after the IP datagram (Ethernet padding of
// short frames) are ignored. ParseFrame never reads outside b.
func ParseFrame(b []byte, port uint16) (f Frame, ok bool) {
	l3, l4, n, ipv6, ok := parseFrame(b, port)
	if !ok {
		return f, false
	}
	return Frame{L3: l3, L4: l4, Payload: l4 + udpHeaderLen, PayloadLen: n, IPv6: ipv6}, true
}

// parseFrame is ParseFrame returning the offsets of the IP and UDP headers
// and the payload's length as scalars, which stay in registers: Headers.Strip
// calls it for every packet, and a Frame returned through memory was read
// back with a store-forwarding stall.
func parseFrame(b []byte, port uint16) (l3, l4, payloadLen int, ipv6, ok bool) {
	if len(b) < ethHeaderLen {
		return 0, 0, 0, false, false
	}
	// A group (multicast or broadcast) address on either side means the
	// frame was not sent to us alone, or that the swapped reply would carry
	// a group source address.
	if b[0]&1 != 0 || b[6]&1 != 0 {
		return 0, 0, 0, false, false
	}
	l3 = ethHeaderLen
	etherType := binary.BigEndian.Uint16(b[12:14])
	if etherType == etherTypeVLAN {
		if len(b) < ethHeaderLen+vlanTagLen {
			return 0, 0, 0, false, false
		}
		l3 += vlanTagLen
		etherType = binary.BigEndian.Uint16(b[16:18])
	}
	var ipEnd int // offset of the end of the IP datagram
	switch etherType {
	case etherTypeIPv4:
		if len(b) < l3+ipv4HeaderLen {
			return 0, 0, 0, false, false
		}
		ip := b[l3 : l3+ipv4HeaderLen]
		if ip[0] != 0x45 || ip[9] != protoUDP {
			return 0, 0, 0, false, false
		}
		// MF and the fragment offset must be zero; DF may be set.
		if binary.BigEndian.Uint16(ip[6:8])&0x3fff != 0 {
			return 0, 0, 0, false, false
		}
		// Multicast, reserved and limited broadcast (224.0.0.0 and up), the
		// unspecified network 0/8 and loopback never source or receive a
		// query on the wire.
		if ip[12] >= 224 || ip[12] == 0 || ip[12] == 127 || ip[16] >= 224 || ip[16] == 0 || ip[16] == 127 {
			return 0, 0, 0, false, false
		}
		total := int(binary.BigEndian.Uint16(ip[2:4]))
		if total < ipv4HeaderLen+udpHeaderLen || l3+total > len(b) {
			return 0, 0, 0, false, false
		}
		l4 = l3 + ipv4HeaderLen
		ipEnd = l3 + total
	case etherTypeIPv6:
		if len(b) < l3+ipv6HeaderLen {
			return 0, 0, 0, false, false
		}
		ip := b[l3 : l3+ipv6HeaderLen]
		if ip[0]>>4 != 6 || ip[6] != protoUDP {
			return 0, 0, 0, false, false
		}
		// Multicast (ff00::/8) on either side, and the unspecified address
		// as the source, cannot be answered.
		if ip[8] == 0xff || ip[24] == 0xff || isZero16(ip[8:24]) {
			return 0, 0, 0, false, false
		}
		payload := int(binary.BigEndian.Uint16(ip[4:6]))
		if payload < udpHeaderLen || l3+ipv6HeaderLen+payload > len(b) {
			return 0, 0, 0, false, false
		}
		l4 = l3 + ipv6HeaderLen
		ipEnd = l3 + ipv6HeaderLen + payload
		ipv6 = true
	default:
		return 0, 0, 0, false, false
	}
	udp := b[l4 : l4+udpHeaderLen]
	dport := binary.BigEndian.Uint16(udp[2:4])
	if dport != port || dport == 0 {
		return 0, 0, 0, false, false
	}
	udpLen := int(binary.BigEndian.Uint16(udp[4:6]))
	if udpLen < udpHeaderLen || l4+udpLen > ipEnd {
		return 0, 0, 0, false, false
	}
	return l3, l4, udpLen - udpHeaderLen, ipv6, true
}

// VerifyChecksums reports whether the frame f, parsed from b by ParseFrame,
// carries a UDP checksum that verifies over the pseudo-header, the UDP
// header and the payload, and for IPv4 a header checksum that verifies.
// RFC 7720 section 3 requires a root server to verify a non-zero UDP
// checksum on receipt; the kernel's UDP stack does it for the socket
// ports, and frames taken off the ring by AF_XDP bypass that stack.
//
//   - Over IPv4 a zero UDP checksum means the sender computed none (RFC
//     768): the frame is accepted. A computed sum of zero is sent as 0xffff
//     (its ones'-complement twin), which verifies like any other.
//   - Over IPv6 a zero UDP checksum is invalid (RFC 8200 section 8.1); the
//     exceptions of RFC 6936 are for tunnel protocols, not DNS: the frame
//     is refused.
//   - The IPv4 header checksum is verified too, as the kernel's ip_rcv does:
//     it is three 4-byte loads more than the pseudo-header needs.
//   - A UDP checksum field that holds the pseudo-header's own folded sum is
//     accepted: it is how Linux hands over a datagram whose checksum it has
//     left for the device to finish (CHECKSUM_PARTIAL), and a veth (or
//     another virtual NIC) that gets the datagram from a socket on the same
//     host hands it to the XDP program unfinished; AF_XDP copies the frame
//     without the skb that says so. Measured on kernel 6.18 with veth's
//     default tx-checksumming on: every UDP datagram sent from a socket in
//     the peer namespace (kdig, dig, the Go resolver) arrives so, in driver
//     and generic XDP mode alike, over IPv4 and IPv6, with a complete IPv4
//     header checksum. The kernel's own stack does not verify such
//     datagrams either (skb_csum_unnecessary): they never crossed a wire.
//     The cost is that a frame off a real wire whose sender's checksum
//     happens to equal its pseudo-header sum, one in 65,536, is accepted
//     unverified, which doubles the chance that a corrupted frame slips
//     through (from 2^-16) rather than opening a gap.
//
// The frame must have parsed: VerifyChecksums trusts f's offsets and
// lengths. It reads the IP header, the UDP datagram and, when b holds
// them, the bytes after the datagram up to its 64th byte, or up to 7
// bytes after a longer one, nothing outside b.
func VerifyChecksums(b []byte, f *Frame) bool {
	return checksumsOK(b, f.L3, f.L4, f.PayloadLen+udpHeaderLen, f.IPv6)
}

// checksumsOK is VerifyChecksums given the offsets and the UDP length as
// scalars, as parseFrame returns them. b holds the frame and may run on
// past its end (Strip passes the whole UMEM chunk), which lets the
// datagram's last bytes be read in a whole word and masked, and a datagram
// of up to 64 bytes be read as eight words (sumWords64). Everything is
// summed into one 64-bit accumulator in the little-endian word order of
// onessum.Sum (see there for why the byte order does not matter), the
// fixed-size headers from the same 4- and 8-byte loads, and folded once:
// on a DNS query of 30 to 60 bytes the calls, the tail branches and the
// folds of onessum.Sum cost more than the adding.
func checksumsOK(b []byte, l3, l4, udpLen int, ipv6 bool) bool {
	field := binary.BigEndian.Uint16(b[l4+6 : l4+8])
	var addrs uint64 // the addresses' words, little-endian order
	if ipv6 {
		if field == 0 {
			return false
		}
		ip := b[l3 : l3+ipv6HeaderLen]
		addrs = onessum.Halves(binary.LittleEndian.Uint64(ip[8:16])) + onessum.Halves(binary.LittleEndian.Uint64(ip[16:24])) +
			onessum.Halves(binary.LittleEndian.Uint64(ip[24:32])) + onessum.Halves(binary.LittleEndian.Uint64(ip[32:40]))
	} else {
		ip := b[l3 : l3+ipv4HeaderLen]
		addrs = uint64(binary.LittleEndian.Uint32(ip[12:16])) + uint64(binary.LittleEndian.Uint32(ip[16:20]))
		hdr := addrs + uint64(binary.LittleEndian.Uint32(ip[0:4])) + uint64(binary.LittleEndian.Uint32(ip[4:8])) + uint64(binary.LittleEndian.Uint32(ip[8:12]))
		// A header whose checksum verifies sums to 0xffff, which reads
		// the same in either byte order: a sum that is not zero (this
		// one holds the version) folds to 0xffff exactly when it is a
		// multiple of 0xffff, since 2^16 = 1 modulo 0xffff.
		if hdr%0xffff != 0 {
			return false
		}
		if field == 0 {
			return true
		}
	}
	// The pseudo-header (addresses, protocol and UDP length: RFC 768, RFC
	// 8200 section 8.1) and the datagram, its checksum field included,
	// fold to 0xffff when the checksum is right. Big-endian 16-bit words
	// join the little-endian sum with their bytes swapped.
	acc := addrs + protoUDP<<8 + uint64(bits.ReverseBytes16(uint16(udpLen)))
	if d := b[l4:]; udpLen <= 64 && len(d) >= 64 {
		acc += sumWords64(d, udpLen)
	} else if udpLen&^7+8 <= len(d) {
		acc += sumWords(d, udpLen)
	} else {
		acc += uint64(bits.ReverseBytes16(uint16(onessum.Sum(d[:udpLen], 0))))
	}
	// acc is not zero (it holds the protocol), so it folds to 0xffff
	// exactly when it is a multiple of 0xffff, which a multiplication
	// tells sooner than the folds.
	if acc%0xffff == 0 {
		return true
	}
	// Not final: the kernel's CHECKSUM_PARTIAL form (see VerifyChecksums).
	return onessum.Reduce(uint64(onessum.Swap(addrs)+protoUDP+uint32(udpLen))) == uint32(field)
}

// sumWords returns a sum of the first n bytes of d in little-endian word
// order that folds (onessum.Reduce) to their ones'-complement sum, below
// 2^34 so that a caller may add further such sums. d must hold n&^7+8
// bytes: the last 0 to 7 bytes are read in a whole word and masked to
// them, which spares the branches of a tail that changes from one query to
// the next. It adds 8-byte words with carries (ADC), one instruction a
// word where onessum.Sum's carry-free 32-bit halves take four; the carry
// out of 64 bits is worth 1 (2^64 = 1 modulo 0xffff) and is added back at
// the end. An odd last byte is the low byte of its little-endian word, the
// high byte of a big-endian word padded with zero, as RFC 1071 pads it.
func sumWords(d []byte, n int) uint64 {
	last := n &^ 7 // the offset of the masked word
	tail := binary.LittleEndian.Uint64(d[last:last+8]) & (1<<(8*(n-last)) - 1)
	d = d[:last]
	var acc, c uint64
	for len(d) >= 32 {
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(d[0:8]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(d[8:16]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(d[16:24]), c)
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(d[24:32]), c)
		d = d[32:]
	}
	for len(d) >= 8 {
		acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(d[0:8]), c)
		d = d[8:]
	}
	acc, c = bits.Add64(acc, tail, c)
	return onessum.Halves(acc) + c
}

// sumWords64 is sumWords for a datagram of at most 64 bytes, nearly every
// DNS query: its eight words are added in one run of carries whatever its
// length, each masked to the datagram's bytes by a mask read from
// tailMasks, which spares the loops' branches on a length that changes
// from one query to the next and the carry kept between their turns.
func sumWords64(d []byte, n int) uint64 {
	d = d[:64]
	m := &tailMasks[n&63]
	if n == 64 {
		m = &tailMasks[64]
	}
	var acc, c uint64
	acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(d[0:8])&m[0], c)
	acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(d[8:16])&m[1], c)
	acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(d[16:24])&m[2], c)
	acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(d[24:32])&m[3], c)
	acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(d[32:40])&m[4], c)
	acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(d[40:48])&m[5], c)
	acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(d[48:56])&m[6], c)
	acc, c = bits.Add64(acc, binary.LittleEndian.Uint64(d[56:64])&m[7], c)
	return onessum.Halves(acc) + c
}

// tailMasks[n] masks the eight little-endian words of 64 bytes to their
// first n bytes (4 KiB, of which the lengths of real queries touch a few
// lines).
var tailMasks = func() (t [65][8]uint64) {
	for n := range t {
		for j := range t[n] {
			switch k := n - 8*j; {
			case k >= 8:
				t[n][j] = ^uint64(0)
			case k > 0:
				t[n][j] = 1<<(8*k) - 1
			}
		}
	}
	return t
}()

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
// frame length. payloadSum is the partial ones'-complement sum of that
// payload, onessum.Sum(b[f.Payload:f.Payload+n], 0) or any value that folds
// alike, which the answer engine builds as it writes the reply, so that the
// payload is not read again for the UDP checksum. It swaps the MAC addresses, the IP addresses and the UDP
// ports, sets the lengths, a TTL or hop limit of 64 and the checksums. It
// keeps the VLAN tag, the DSCP bits (clearing ECN, which the reply's sender
// has not negotiated), the IPv4 identification and DF bit, and the IPv6 flow
// label. The caller guarantees f.Payload+n <= len(b) and n <= 65535-28, which
// PayloadLimit ensures for any MTU up to 65535.
func RewriteReply(b []byte, f *Frame, n int, payloadSum uint32) int {
	return rewriteReply(b, f.L3, f.L4, f.IPv6, n, payloadSum)
}

// rewriteReply is RewriteReply given the frame's header offsets as scalars
// (the payload follows the UDP header at l4), as Headers.Reply keeps them.
func rewriteReply(b []byte, l3, l4 int, ipv6 bool, n int, payloadSum uint32) int {
	end := l4 + udpHeaderLen + n
	b = b[:end]
	var mac [6]byte
	copy(mac[:], b[0:6])
	copy(b[0:6], b[6:12])
	copy(b[6:12], mac[:])

	udp := b[l4:end]
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
	if ipv6 {
		ip := b[l3 : l3+ipv6HeaderLen]
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
		ip := b[l3 : l3+ipv4HeaderLen]
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
	sum += uint32(binary.BigEndian.Uint16(udp[0:2])) + uint32(binary.BigEndian.Uint16(udp[2:4])) + uint32(udpLen)
	c := onessum.Fold(sum + payloadSum)
	if c == 0 {
		// Zero means "no checksum" in UDP (and is forbidden over IPv6); the
		// ones'-complement equivalent 0xffff is sent instead (RFC 768).
		c = 0xffff
	}
	binary.BigEndian.PutUint16(udp[6:8], c)
	return end
}

// Headers strips the Ethernet, IP and UDP headers off the query frames of a
// batch and writes the reply headers back around the DNS replies: the work
// an AF_XDP port does between the frames of its rings and the DNS payloads
// it hands out. It is kept apart from XDPPort so that an in-memory stand-in
// for that port (nictest.Ring) does exactly the same per-packet work.
//
// Headers remembers, for each slot of a batch (the index of a Packet in the
// slice Receive fills), what its reply's headers need, in a few bytes per
// slot allocated once. It is owned by one port's worker and allocates
// nothing after NewHeaders.
type Headers struct {
	port  uint16
	mtu   int
	slots []headerSlot
	// badSums counts the frames Strip refused for their checksums.
	badSums uint64
}

// headerSlot is what Reply needs of a stripped frame: where its IP header
// starts, its family, and the room its Packet.Buf was given.
type headerSlot struct {
	l3   uint8
	ipv6 bool
	room uint16
}

// NewHeaders returns Headers for batches of up to slots frames holding UDP
// to port, whose replies may fill IP packets of up to mtu bytes (0 means
// 1500; values above 65535 are taken as 65535).
func NewHeaders(port uint16, mtu, slots int) *Headers {
	if mtu <= 0 {
		mtu = 1500
	}
	return &Headers{port: port, mtu: min(mtu, 65535), slots: make([]headerSlot, slots)}
}

// Strip parses frame[:n], received into slot i of a batch, with ParseFrame,
// and verifies its checksums with VerifyChecksums; a frame whose checksums
// do not verify is refused and counted (ChecksumDrops).
// When the frame is a query the data plane answers it sets p to its DNS
// payload and returns true: p.Buf is the payload and the room after it, as
// much as both frame and an IP packet of the MTU hold (see PayloadLimit), so
// that len(p.Buf) is the largest reply; p.Len is the query's length; p.Peer
// is the sender's address and port; p.Sum is 0. It returns false, leaving
// p as it was, for any other frame, and for a query longer than the reply
// room (it came over a larger MTU than ours).
func (h *Headers) Strip(i int, frame []byte, n int, p *Packet) bool {
	if n > len(frame) {
		return false
	}
	l3, l4, plen, ipv6, ok := parseFrame(frame[:n], h.port)
	if !ok {
		return false
	}
	if !checksumsOK(frame, l3, l4, plen+udpHeaderLen, ipv6) {
		h.badSums++
		return false
	}
	payload := l4 + udpHeaderLen
	room := min(len(frame)-payload, h.mtu-(payload-l3)) // PayloadLimit
	if plen > room {
		return false
	}
	end := payload + room
	p.Buf = frame[payload:end:end]
	p.Len = plen
	p.Sum = 0
	peer(&p.Peer, frame, l3, l4, ipv6)
	h.slots[i] = headerSlot{l3: uint8(l3), ipv6: ipv6, room: uint16(room)}
	return true
}

// ChecksumDrops is the number of frames Strip has refused because their UDP
// checksum or IPv4 header checksum did not verify (see VerifyChecksums).
// Like Strip, it belongs to the Headers' owner: a port that publishes the
// count to other goroutines keeps an atomic copy.
func (h *Headers) ChecksumDrops() uint64 { return h.badSums }

// Reply turns slot i's frame, whose payload the data plane has overwritten
// with the reply of p.Len bytes, into the reply frame (see RewriteReply),
// finishing the UDP checksum from p.Sum, and returns its length. frame is
// the buffer Strip was given for the slot. It returns 0 when p.Len is 0 or
// less (no reply), and ok false when p.Len exceeds the room Strip gave,
// which a sender counts as a bad length.
func (h *Headers) Reply(i int, frame []byte, p *Packet) (n int, ok bool) {
	if p.Len <= 0 {
		return 0, true
	}
	s := h.slots[i]
	if p.Len > int(s.room) {
		return 0, false
	}
	l3 := int(s.l3)
	l4 := l3 + ipv4HeaderLen
	if s.ipv6 {
		l4 = l3 + ipv6HeaderLen
	}
	return rewriteReply(frame, l3, l4, s.ipv6, p.Len, p.Sum), true
}

// Destination returns the destination address and port of the frame Strip
// accepted into slot i, frame being the buffer Strip was given: the
// address the reply must come from when another path than Reply sends it
// (Destinations).
func (h *Headers) Destination(i int, frame []byte) Addr {
	s := h.slots[i]
	l3 := int(s.l3)
	if s.ipv6 {
		l4 := l3 + ipv6HeaderLen
		port := binary.BigEndian.Uint16(frame[l4+2:])
		return AddrFrom(netip.AddrPortFrom(netip.AddrFrom16([16]byte(frame[l3+24:l3+40])), port))
	}
	l4 := l3 + ipv4HeaderLen
	port := binary.BigEndian.Uint16(frame[l4+2:])
	return AddrFrom(netip.AddrPortFrom(netip.AddrFrom4([4]byte(frame[l3+16:l3+20])), port))
}

// peer writes the frame's source address and port into a in the layout
// Packet.Peer has on every port (see Addr): Linux's sockaddr_in or
// sockaddr_in6, as the kernel-socket port receives it. It is written in
// whole 8-byte words, the family, port and address bytes assembled in
// registers, since it runs for every packet.
func peer(a *Addr, b []byte, l3, l4 int, ipv6 bool) {
	// Bytes loaded and stored as little-endian words keep their order in
	// memory, so the port and address bytes land as on the wire; the
	// family's two bytes come in host order from familyWord.
	port := uint64(binary.LittleEndian.Uint16(b[l4:]))
	r := a.Raw[:]
	if ipv6 {
		ip := b[l3+8 : l3+24]
		binary.LittleEndian.PutUint64(r[0:8], familyWord(addrFamily6)|port<<16) // sin6_flowinfo 0
		binary.LittleEndian.PutUint64(r[8:16], binary.LittleEndian.Uint64(ip[0:8]))
		binary.LittleEndian.PutUint64(r[16:24], binary.LittleEndian.Uint64(ip[8:16]))
		binary.LittleEndian.PutUint32(r[24:28], 0) // sin6_scope_id
		a.Len = addrLen6
		return
	}
	src := uint64(binary.LittleEndian.Uint32(b[l3+12:]))
	binary.LittleEndian.PutUint64(r[0:8], familyWord(addrFamily4)|port<<16|src<<32)
	binary.LittleEndian.PutUint64(r[8:16], 0) // sin_zero
	// Past the sockaddr_in, no bytes of an earlier IPv6 peer are left, so
	// that equal peers compare equal.
	binary.LittleEndian.PutUint64(r[16:24], 0)
	binary.LittleEndian.PutUint32(r[24:28], 0)
	a.Len = addrLen4
}

// familyWord returns the little-endian word whose first two bytes in memory
// are the address family in host byte order, as sa_family is stored.
func familyWord(af uint16) uint64 {
	var w [2]byte
	binary.NativeEndian.PutUint16(w[:], af)
	return uint64(binary.LittleEndian.Uint16(w[:]))
}
