package nic

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/ringdns/ringdns/internal/onessum"
)

// frameSpec describes a test frame. Its zero values mean a well-formed
// IPv4 DNS query (testQuery) from 198.18.0.2:40000 to 198.18.0.1:53.
type frameSpec struct {
	v6        bool
	vlan      int    // number of 802.1Q tags
	ethType   uint16 // overrides the EtherType after the tags (ARP)
	ihl       byte
	fragOff   uint16 // the IPv4 flags+fragment field
	next      byte   // IPv6 next header / IPv4 protocol; 0 means UDP
	extHeader bool   // IPv6: a hop-by-hop options header before next
	src, dst  netip.Addr
	sport     uint16
	dport     uint16
	srcMAC    [6]byte
	dstMAC    [6]byte
	payload   []byte // nil means testQuery; use []byte{} for none
	pad       int    // Ethernet padding after the IP datagram
	udpLen    int    // overrides the UDP length when non-zero
	ipLen     int    // overrides the IPv4 total length or IPv6 payload length
	tos       byte
	truncate  int // cut the frame to this many bytes when above zero
}

var (
	clientMAC = [6]byte{0x02, 0, 0, 0, 0, 0x02}
	serverMAC = [6]byte{0x02, 0, 0, 0, 0, 0x01}
)

var testQuery = []byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'w', 'w', 'w', 0, 0, 1, 0, 1}

// build serialises the spec by hand, independently of the code under test,
// with a valid IPv4 header checksum and UDP checksum.
func (s frameSpec) build() []byte {
	if s.ihl == 0 {
		s.ihl = 5
	}
	if s.next == 0 {
		s.next = protoUDP
	}
	if s.payload == nil {
		s.payload = testQuery
	}
	if !s.src.IsValid() {
		s.src = netip.MustParseAddr("198.18.0.2")
		if s.v6 {
			s.src = netip.MustParseAddr("fd53::2")
		}
	}
	if !s.dst.IsValid() {
		s.dst = netip.MustParseAddr("198.18.0.1")
		if s.v6 {
			s.dst = netip.MustParseAddr("fd53::1")
		}
	}
	if s.sport == 0 {
		s.sport = 40000
	}
	if s.dport == 0 {
		s.dport = 53
	}
	if s.srcMAC == ([6]byte{}) {
		s.srcMAC = clientMAC
	}
	if s.dstMAC == ([6]byte{}) {
		s.dstMAC = serverMAC
	}
	var b []byte
	b = append(b, s.dstMAC[:]...)
	b = append(b, s.srcMAC[:]...)
	for i := 0; i < s.vlan; i++ {
		b = append(b, 0x81, 0x00, 0x00, byte(10+i))
	}
	udpLen := 8 + len(s.payload)
	if s.udpLen != 0 {
		udpLen = s.udpLen
	}
	et := uint16(etherTypeIPv4)
	if s.v6 {
		et = etherTypeIPv6
	}
	if s.ethType != 0 {
		et = s.ethType
	}
	b = binary.BigEndian.AppendUint16(b, et)
	l3 := len(b)
	var pseudo []byte
	if s.v6 {
		ipLen := udpLen
		next := s.next
		if s.extHeader {
			ipLen += 8
			next = 0 // hop-by-hop options
		}
		if s.ipLen != 0 {
			ipLen = s.ipLen
		}
		b = append(b, 0x60|s.tos>>4, s.tos<<4|0x01, 0x23, 0x45, byte(ipLen>>8), byte(ipLen), next, 7)
		b = append(b, s.src.AsSlice()...)
		b = append(b, s.dst.AsSlice()...)
		if s.extHeader {
			b = append(b, s.next, 0, 1, 4, 0, 0, 0, 0) // PadN
		}
		pseudo = append(append(pseudo, b[l3+8:l3+40]...), 0, 0, byte(udpLen>>8), byte(udpLen), 0, 0, 0, s.next)
	} else {
		total := int(s.ihl)*4 + udpLen
		if s.ipLen != 0 {
			total = s.ipLen
		}
		ip := []byte{0x40 | s.ihl, s.tos, byte(total >> 8), byte(total), 0xbe, 0xef, byte(s.fragOff >> 8), byte(s.fragOff), 3, s.next, 0, 0}
		ip = append(ip, s.src.AsSlice()...)
		ip = append(ip, s.dst.AsSlice()...)
		for i := 5; i < int(s.ihl); i++ {
			ip = append(ip, 1, 1, 1, 1) // NOP options
		}
		binary.BigEndian.PutUint16(ip[10:], onessum.Checksum(ip))
		b = append(b, ip...)
		pseudo = append(append(pseudo, ip[12:20]...), 0, s.next, byte(udpLen>>8), byte(udpLen))
	}
	l4 := len(b)
	b = append(b, byte(s.sport>>8), byte(s.sport), byte(s.dport>>8), byte(s.dport), byte(udpLen>>8), byte(udpLen), 0, 0)
	b = append(b, s.payload...)
	c := onessum.Fold(onessum.Sum(b[l4:], onessum.Sum(pseudo, 0)))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(b[l4+6:], c)
	b = append(b, make([]byte, s.pad)...)
	if s.truncate > 0 {
		b = b[:s.truncate]
	}
	return b
}

// xdpVerdict is what the XDP program does with a frame.
type xdpVerdict uint8

const (
	toKernel xdpVerdict = iota // XDP_PASS
	toSocket                   // XDP_REDIRECT to the queue's AF_XDP socket
)

// frameCase is one frame with what both halves of the AF_XDP path decide
// about it: the XDP program in the kernel (TestXDPFilterProgram) and
// ParseFrame behind it (TestParseFrame). The program redirects by EtherType,
// IP shape, protocol, port and listed address; ParseFrame repeats the shape
// checks and adds those the program leaves to it (group addresses, lengths)
// but trusts the program with the addresses.
type frameCase struct {
	name   string
	spec   frameSpec
	mutate func(b []byte) // edits the built frame for what frameSpec cannot express

	// parse is ParseFrame's verdict for port 53, with the offsets it finds.
	parse  bool
	l3, l4 int

	// xdp is the program's verdict for port 53 and the listed addrs (none:
	// any address); source selects the client's program, which matches the
	// source port and addresses.
	xdp    xdpVerdict
	addrs  []string
	source bool
}

func (c *frameCase) frame() []byte {
	b := c.spec.build()
	if c.mutate != nil {
		c.mutate(b)
	}
	return b
}

var (
	a        = netip.MustParseAddr
	server4  = a("198.18.0.1")
	server6  = a("fd53::1")
	client4  = a("198.18.0.2")
	client6  = a("fd53::2")
	fromDNS4 = frameSpec{src: server4, dst: client4, sport: 53, dport: 40001}
	fromDNS6 = frameSpec{v6: true, src: server6, dst: client6, sport: 53, dport: 40001}
)

// frameCases drives both TestParseFrame and TestXDPFilterProgram.
var frameCases = []frameCase{
	// Queries to answer.
	{name: "ipv4", parse: true, l3: 14, l4: 34, xdp: toSocket},
	{name: "ipv4 DF", spec: frameSpec{fragOff: 0x4000}, parse: true, l3: 14, l4: 34, xdp: toSocket},
	{name: "ipv4 vlan", spec: frameSpec{vlan: 1}, parse: true, l3: 18, l4: 38, xdp: toSocket},
	{name: "ipv4 padded", spec: frameSpec{payload: []byte{1, 2}, pad: 10}, parse: true, l3: 14, l4: 34, xdp: toSocket},
	{name: "ipv6", spec: frameSpec{v6: true}, parse: true, l3: 14, l4: 54, xdp: toSocket},
	{name: "ipv6 vlan", spec: frameSpec{v6: true, vlan: 1}, parse: true, l3: 18, l4: 58, xdp: toSocket},
	{name: "ipv6 link-local", spec: frameSpec{v6: true, src: a("fe80::2"), dst: a("fe80::1")}, parse: true, l3: 14, l4: 54, xdp: toSocket},
	{name: "empty payload", spec: frameSpec{payload: []byte{}}, parse: true, l3: 14, l4: 34, xdp: toSocket},
	// The data plane, not the parser, drops source port 0 (with the other
	// reflection ports), so that both backends count it alike.
	{name: "source port 0", mutate: func(b []byte) { b[34], b[35] = 0, 0 }, parse: true, l3: 14, l4: 34, xdp: toSocket},

	// Frames the program already leaves to the kernel.
	{name: "two vlan tags", spec: frameSpec{vlan: 2}, xdp: toKernel},
	{name: "ipv4 options", spec: frameSpec{ihl: 6}, xdp: toKernel},
	{name: "ipv4 MF", spec: frameSpec{fragOff: 0x2000}, xdp: toKernel},
	{name: "ipv4 fragment offset", spec: frameSpec{fragOff: 0x0001}, xdp: toKernel},
	{name: "ipv4 tcp", spec: frameSpec{next: 6}, xdp: toKernel},
	{name: "ipv6 tcp", spec: frameSpec{v6: true, next: 6}, xdp: toKernel},
	{name: "ipv6 hop-by-hop", spec: frameSpec{v6: true, extHeader: true}, xdp: toKernel},
	{name: "ipv6 routing header", spec: frameSpec{v6: true, next: 43}, xdp: toKernel},
	{name: "ipv6 fragment header", spec: frameSpec{v6: true, next: 44}, xdp: toKernel},
	{name: "ipv4 wrong port", spec: frameSpec{dport: 5353}, xdp: toKernel},
	{name: "ipv4 source port 53 only", spec: frameSpec{sport: 53, dport: 5353}, xdp: toKernel},
	{name: "ipv6 wrong port", spec: frameSpec{v6: true, dport: 853}, xdp: toKernel},
	{name: "arp", spec: frameSpec{ethType: 0x0806, truncate: 14 + 28}, xdp: toKernel},
	{name: "truncated ethernet only", spec: frameSpec{truncate: 14}, xdp: toKernel},
	{name: "truncated vlan", spec: frameSpec{vlan: 1, truncate: 17}, xdp: toKernel},
	{name: "truncated ipv4 header", spec: frameSpec{truncate: 14 + 19}, xdp: toKernel},
	{name: "truncated udp header", spec: frameSpec{truncate: 14 + 20 + 7}, xdp: toKernel},
	{name: "truncated ipv6 header", spec: frameSpec{v6: true, truncate: 14 + 39}, xdp: toKernel},
	{name: "truncated ipv6 udp header", spec: frameSpec{v6: true, truncate: 14 + 40 + 7}, xdp: toKernel},

	// Frames the program redirects and ParseFrame refuses: the program
	// checks neither MAC addresses nor group IP addresses nor lengths.
	{name: "multicast MAC", spec: frameSpec{dstMAC: [6]byte{0x01, 0, 0x5e, 0, 0, 1}}, xdp: toSocket},
	{name: "broadcast MAC", spec: frameSpec{dstMAC: [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, xdp: toSocket},
	{name: "group source MAC", spec: frameSpec{srcMAC: [6]byte{0x03, 0, 0, 0, 0, 1}}, xdp: toSocket},
	{name: "ipv4 broadcast", spec: frameSpec{dst: a("255.255.255.255")}, xdp: toSocket},
	{name: "ipv4 multicast", spec: frameSpec{dst: a("224.0.0.251")}, xdp: toSocket},
	{name: "ipv4 zero source", spec: frameSpec{src: a("0.0.0.0")}, xdp: toSocket},
	{name: "ipv4 loopback source", spec: frameSpec{src: a("127.0.0.1")}, xdp: toSocket},
	{name: "ipv6 multicast", spec: frameSpec{v6: true, dst: a("ff02::fb")}, xdp: toSocket},
	{name: "ipv6 unspecified source", spec: frameSpec{v6: true, src: a("::")}, xdp: toSocket},
	{name: "ipv4 total too long", spec: frameSpec{ipLen: 20 + 8 + len(testQuery) + 1}, xdp: toSocket},
	{name: "ipv4 total too short", spec: frameSpec{ipLen: 27}, xdp: toSocket},
	{name: "udp length too long", spec: frameSpec{udpLen: 8 + len(testQuery) + 1}, xdp: toSocket},
	{name: "udp length too short", spec: frameSpec{udpLen: 7}, xdp: toSocket},
	{name: "ipv6 payload too long", spec: frameSpec{v6: true, ipLen: 8 + len(testQuery) + 1}, xdp: toSocket},
	{name: "ipv6 payload too short", spec: frameSpec{v6: true, ipLen: 7}, xdp: toSocket},
	{name: "udp header only", spec: frameSpec{truncate: 14 + 20 + 8}, xdp: toSocket},

	// Server addresses listed: the program checks them, ParseFrame
	// trusts it.
	{name: "ipv4 listed address", addrs: []string{"198.18.0.1", "fd53::1"}, parse: true, l3: 14, l4: 34, xdp: toSocket},
	{name: "ipv4 second listed address", addrs: []string{"198.18.0.9", "198.18.0.1"}, parse: true, l3: 14, l4: 34, xdp: toSocket},
	{name: "ipv4 address not listed", addrs: []string{"198.18.0.9", "fd53::1"}, parse: true, l3: 14, l4: 34, xdp: toKernel},
	{name: "ipv6 listed address", spec: frameSpec{v6: true}, addrs: []string{"198.18.0.1", "fd53::1"}, parse: true, l3: 14, l4: 54, xdp: toSocket},
	{name: "ipv6 address not listed", spec: frameSpec{v6: true}, addrs: []string{"198.18.0.1", "fd53::9"}, parse: true, l3: 14, l4: 54, xdp: toKernel},
	{name: "ipv6 when only ipv4 listed", spec: frameSpec{v6: true}, addrs: []string{"198.18.0.1"}, parse: true, l3: 14, l4: 54, xdp: toKernel},
	{name: "vlan ipv6 listed address", spec: frameSpec{v6: true, vlan: 1}, addrs: []string{"fd53::1"}, parse: true, l3: 18, l4: 58, xdp: toSocket},
	{name: "ipv4-mapped listed address", addrs: []string{"::ffff:198.18.0.1"}, parse: true, l3: 14, l4: 34, xdp: toSocket},

	// A load generator's program takes in replies: UDP from the server's
	// port and address, whatever the destination port. ParseFrame, a
	// server's, answers none of them.
	{name: "client ipv4 reply", spec: fromDNS4, addrs: []string{"198.18.0.1"}, source: true, xdp: toSocket},
	{name: "client ipv6 reply", spec: fromDNS6, addrs: []string{"fd53::1"}, source: true, xdp: toSocket},
	{name: "client vlan ipv6 reply", spec: with(fromDNS6, func(s *frameSpec) { s.vlan = 1 }), addrs: []string{"fd53::1"}, source: true, xdp: toSocket},
	{name: "client reply from another address", spec: with(fromDNS4, func(s *frameSpec) { s.src = a("198.18.0.9") }), addrs: []string{"198.18.0.1"}, source: true, xdp: toKernel},
	{name: "client ipv6 reply from another address", spec: with(fromDNS6, func(s *frameSpec) { s.src = a("fd53::9") }), addrs: []string{"fd53::1"}, source: true, xdp: toKernel},
	{name: "client reply from another port", spec: with(fromDNS4, func(s *frameSpec) { s.sport = 5353 }), addrs: []string{"198.18.0.1"}, source: true, xdp: toKernel},
	{name: "client query to port 53 passes", addrs: []string{"198.18.0.1"}, source: true, parse: true, l3: 14, l4: 34, xdp: toKernel},
	{name: "client any address", spec: with(fromDNS4, func(s *frameSpec) { s.src = a("198.18.0.7") }), source: true, xdp: toSocket},
	{name: "client fragment passes", spec: with(fromDNS4, func(s *frameSpec) { s.fragOff = 0x2000 }), addrs: []string{"198.18.0.1"}, source: true, xdp: toKernel},
	{name: "client tcp passes", spec: with(fromDNS4, func(s *frameSpec) { s.next = 6 }), addrs: []string{"198.18.0.1"}, source: true, xdp: toKernel},
}

// with returns a copy of spec changed by edit.
func with(spec frameSpec, edit func(*frameSpec)) frameSpec {
	edit(&spec)
	return spec
}

func TestParseFrame(t *testing.T) {
	for _, c := range frameCases {
		t.Run(c.name, func(t *testing.T) {
			b := c.frame()
			f, ok := ParseFrame(b, 53)
			if ok != c.parse {
				t.Fatalf("ok = %v, want %v (frame % x)", ok, c.parse, b)
			}
			if !ok {
				return
			}
			if f.L3 != c.l3 || f.L4 != c.l4 || f.Payload != c.l4+8 || f.IPv6 != c.spec.v6 {
				t.Fatalf("frame = %+v, want L3 %d L4 %d IPv6 %v", f, c.l3, c.l4, c.spec.v6)
			}
			payload := c.spec.payload
			if payload == nil {
				payload = testQuery
			}
			if f.PayloadLen != len(payload) || !bytes.Equal(b[f.Payload:f.Payload+f.PayloadLen], payload) {
				t.Fatalf("payload % x, want % x", b[f.Payload:f.Payload+f.PayloadLen], payload)
			}
		})
	}
}

// TestParseFramePortZero checks that a frame addressed to port 0 is not
// answered even when port 0 is asked for: its reply would come from the
// reserved port 0, which no client accepts (and from which the worker
// answers no query).
func TestParseFramePortZero(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		b := frameSpec{v6: v6, payload: testQuery}.build()
		f, _ := ParseFrame(b, 53)
		b[f.L4+2], b[f.L4+3] = 0, 0
		if _, ok := ParseFrame(b, 0); ok {
			t.Fatalf("IPv6 %v: a frame to port 0 parsed", v6)
		}
	}
}

// TestParseFrameTruncated cuts valid frames at every length: none may parse
// unless the cut only removes padding.
func TestParseFrameTruncated(t *testing.T) {
	for _, spec := range []frameSpec{{payload: testQuery}, {v6: true, payload: testQuery, vlan: 1}} {
		b := spec.build()
		for n := 0; n < len(b); n++ {
			if _, ok := ParseFrame(b[:n], 53); ok {
				t.Fatalf("%d of %d bytes parsed", n, len(b))
			}
		}
	}
}

// checkReply verifies a rewritten reply against the testQuery frame it came
// from with reference computations: addresses and ports swapped, lengths,
// hop limit and both checksums.
func checkReply(t *testing.T, testQuery, reply []byte, f Frame, payload []byte) {
	t.Helper()
	if !bytes.Equal(reply[0:6], testQuery[6:12]) || !bytes.Equal(reply[6:12], testQuery[0:6]) {
		t.Fatalf("MACs not swapped: % x", reply[0:12])
	}
	if !bytes.Equal(reply[12:f.L3], testQuery[12:f.L3]) {
		t.Fatalf("VLAN tag or EtherType changed: % x", reply[12:f.L3])
	}
	udpLen := 8 + len(payload)
	var pseudo []byte
	if f.IPv6 {
		ip, qip := reply[f.L3:f.L4], testQuery[f.L3:f.L4]
		if !bytes.Equal(ip[8:24], qip[24:40]) || !bytes.Equal(ip[24:40], qip[8:24]) {
			t.Fatal("IPv6 addresses not swapped")
		}
		if got := int(binary.BigEndian.Uint16(ip[4:6])); got != udpLen {
			t.Fatalf("IPv6 payload length %d, want %d", got, udpLen)
		}
		if ip[7] != 64 || ip[6] != protoUDP || ip[0]>>4 != 6 {
			t.Fatalf("IPv6 header % x", ip[:8])
		}
		pseudo = append(append(pseudo, ip[8:40]...), 0, 0, byte(udpLen>>8), byte(udpLen), 0, 0, 0, protoUDP)
	} else {
		ip, qip := reply[f.L3:f.L4], testQuery[f.L3:f.L4]
		if !bytes.Equal(ip[12:16], qip[16:20]) || !bytes.Equal(ip[16:20], qip[12:16]) {
			t.Fatal("IPv4 addresses not swapped")
		}
		if got := int(binary.BigEndian.Uint16(ip[2:4])); got != 20+udpLen {
			t.Fatalf("IPv4 total length %d, want %d", got, 20+udpLen)
		}
		if ip[8] != 64 || ip[9] != protoUDP || ip[0] != 0x45 {
			t.Fatalf("IPv4 header % x", ip)
		}
		if onessum.Checksum(ip) != 0 {
			t.Fatalf("IPv4 header checksum does not verify: % x", ip)
		}
		pseudo = append(append(pseudo, ip[12:20]...), 0, protoUDP, byte(udpLen>>8), byte(udpLen))
	}
	udp, qudp := reply[f.L4:f.L4+8], testQuery[f.L4:f.L4+8]
	if !bytes.Equal(udp[0:2], qudp[2:4]) || !bytes.Equal(udp[2:4], qudp[0:2]) {
		t.Fatal("UDP ports not swapped")
	}
	if got := int(binary.BigEndian.Uint16(udp[4:6])); got != udpLen {
		t.Fatalf("UDP length %d, want %d", got, udpLen)
	}
	if udp[6] == 0 && udp[7] == 0 {
		t.Fatal("UDP checksum left zero")
	}
	whole := append(pseudo, reply[f.L4:f.L4+udpLen]...)
	if onessum.Checksum(whole) != 0 {
		t.Fatalf("UDP checksum does not verify: % x", whole)
	}
	if !bytes.Equal(reply[f.Payload:], payload) {
		t.Fatal("payload changed by the rewrite")
	}
}

func TestRewriteReply(t *testing.T) {
	answer := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef, 0x01}, 60) // 300 bytes, odd-length tails covered below
	for _, spec := range []frameSpec{
		{payload: testQuery},
		{payload: testQuery, vlan: 1, fragOff: 0x4000, tos: 0xb9},
		{v6: true, payload: testQuery},
		{v6: true, payload: testQuery, vlan: 1, tos: 0xff},
		{payload: testQuery, pad: 20},
	} {
		for _, n := range []int{0, 1, 12, 33, 300} {
			q := spec.build()
			b := make([]byte, 2048)
			copy(b, q)
			f, ok := ParseFrame(b[:len(q)], 53)
			if !ok {
				t.Fatalf("%+v does not parse", spec)
			}
			copy(b[f.Payload:], answer[:n])
			end := RewriteReply(b, &f, n, onessum.Sum(b[f.Payload:f.Payload+n], 0))
			if end != f.Payload+n {
				t.Fatalf("length %d, want %d", end, f.Payload+n)
			}
			checkReply(t, q, b[:end], f, answer[:n])
			// ECN is cleared and DSCP kept.
			var tos byte
			if f.IPv6 {
				tos = b[f.L3]<<4 | b[f.L3+1]>>4
			} else {
				tos = b[f.L3+1]
			}
			if tos != spec.tos&^3 {
				t.Fatalf("traffic class %#x, want %#x", tos, spec.tos&^3)
			}
			// The reply parses as a frame to the client's port.
			if _, ok := ParseFrame(b[:end], 40000); !ok {
				t.Fatal("reply does not parse back")
			}
		}
	}
}

func TestPayloadLimit(t *testing.T) {
	v4, _ := ParseFrame(frameSpec{payload: testQuery}.build(), 53)
	v6vlan, _ := ParseFrame(frameSpec{v6: true, vlan: 1, payload: testQuery}.build(), 53)
	cases := []struct {
		f           Frame
		buf, mtu    int
		want        int
		explanation string
	}{
		{v4, 4096, 1500, 1472, "MTU bound: 1500-20-8"},
		{v6vlan, 4096, 1500, 1452, "MTU bound: 1500-40-8"},
		{v4, 1024, 1500, 1024 - 42, "buffer bound"},
		{v6vlan, 2048, 9000, 2048 - 66, "buffer bound over jumbo MTU"},
		{v4, 30, 1500, 0, "buffer smaller than the headers"},
		{v4, 4096, 20, 0, "MTU smaller than the headers"},
	}
	for _, c := range cases {
		if got := c.f.PayloadLimit(c.buf, c.mtu); got != c.want {
			t.Errorf("%s: %d, want %d", c.explanation, got, c.want)
		}
	}
}

func FuzzParseFrame(f *testing.F) {
	f.Add(frameSpec{payload: testQuery}.build(), uint16(53), uint16(100))
	f.Add(frameSpec{v6: true, vlan: 1, payload: testQuery}.build(), uint16(53), uint16(7))
	f.Add(frameSpec{payload: testQuery, ihl: 6}.build(), uint16(53), uint16(0))
	f.Add([]byte{}, uint16(0), uint16(0))
	for _, c := range checksumCases {
		f.Add(c.frame(), uint16(53), uint16(300))
	}
	f.Fuzz(func(t *testing.T, b []byte, port uint16, n uint16) {
		fr, ok := ParseFrame(b, port)
		// Headers, as XDPPort runs it, takes exactly the frames
		// ParseFrame takes whose query fits the reply room, and writes
		// the same reply frame as RewriteReply.
		h := NewHeaders(port, 1500, 1)
		hbuf := make([]byte, len(b)+int(n%512))
		copy(hbuf, b)
		var p Packet
		stripped := h.Strip(0, hbuf, len(b), &p)
		fits := ok && fr.PayloadLen <= fr.PayloadLimit(len(hbuf), 1500)
		sumsOK := ok && refVerify(b, &fr)
		if stripped != (fits && sumsOK) {
			t.Fatalf("Strip %v, ParseFrame %v with %+v, checksums %v", stripped, ok, fr, sumsOK)
		}
		if ok && VerifyChecksums(b, &fr) != sumsOK {
			t.Fatalf("VerifyChecksums %v, the reference %v", !sumsOK, sumsOK)
		}
		if bad := h.ChecksumDrops(); bad != 0 && (!ok || sumsOK) || bad != 1 && ok && !sumsOK {
			t.Fatalf("%d checksum drops counted (parsed %v, checksums %v)", bad, ok, sumsOK)
		}
		if !ok {
			return
		}
		if fr.Payload != fr.L4+8 || fr.Payload+fr.PayloadLen > len(b) || fr.L3 < 14 || fr.L4 <= fr.L3 {
			t.Fatalf("inconsistent frame %+v for %d bytes", fr, len(b))
		}
		q := append([]byte(nil), b...)
		buf := make([]byte, len(b)+int(n%512))
		copy(buf, b)
		limit := fr.PayloadLimit(len(buf), 1500)
		size := int(n) % (limit + 1)
		sport := binary.BigEndian.Uint16(b[fr.L4 : fr.L4+2])
		end := RewriteReply(buf, &fr, size, onessum.Sum(buf[fr.Payload:fr.Payload+size], 0))
		if end > len(buf) || end-fr.L3 > 1500 {
			t.Fatalf("reply of %d bytes (IP %d) in a %d-byte buffer", end, end-fr.L3, len(buf))
		}
		checkReply(t, q, buf[:end], fr, buf[fr.Payload:end])
		// A reply to port 0 parses as nothing, by design: the data plane
		// drops queries from port 0 before any reply is written.
		if _, ok := ParseFrame(buf[:end], sport); !ok && sport != 0 {
			t.Fatal("reply does not parse back")
		}
		if stripped {
			if &p.Buf[:1][0] != &hbuf[fr.Payload] || len(p.Buf) != limit || p.Len != fr.PayloadLen {
				t.Fatalf("Strip handed out %d of %d bytes at the wrong place", p.Len, len(p.Buf))
			}
			p.Len = size
			p.Sum = onessum.Sum(p.Buf[:size], 0)
			hend, ok := h.Reply(0, hbuf, &p)
			if size == 0 {
				// An empty reply is no reply: nothing is written.
				end = 0
			}
			if !ok || hend != end || !bytes.Equal(hbuf[:hend], buf[:end]) {
				t.Fatalf("Reply wrote %d bytes (ok %v), RewriteReply %d, or other bytes", hend, ok, end)
			}
		}
	})
}

// TestHeaders strips query frames and writes replies of several sizes back
// into them through Headers, as XDPPort does: the payload handed out sits
// in place with exactly the room that buffer and MTU allow, the peer is the
// query's source, and each reply frame is valid (checkReply) with the UDP
// checksum finished from the sum passed along.
func TestHeaders(t *testing.T) {
	answer := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef, 0x01}, 900)
	for _, c := range []struct {
		spec     frameSpec
		buf, mtu int
		room     int
	}{
		{frameSpec{sport: 33333}, 4096, 1500, 1500 - 28},
		{frameSpec{v6: true, vlan: 1, sport: 53}, 4096, 1500, 1500 - 48},
		{frameSpec{}, 1024, 1500, 1024 - 42},
		{frameSpec{v6: true, vlan: 1}, 2048, 9000, 2048 - 66},
		{frameSpec{v6: true}, 4096, 0, 1500 - 48},
		{frameSpec{src: a("198.51.100.7"), sport: 5353}, 4096, 576, 576 - 28},
		{frameSpec{payload: []byte{}}, 4096, 70000, 4096 - 42},
	} {
		q := c.spec.build()
		h := NewHeaders(53, c.mtu, 4)
		f, _ := ParseFrame(q, 53)
		src := netip.AddrPortFrom(c.spec.src, c.spec.sport)
		if !src.Addr().IsValid() {
			src = netip.AddrPortFrom(client4, 40000)
			if c.spec.v6 {
				src = netip.AddrPortFrom(client6, 40000)
			}
		}
		if c.spec.sport != 0 {
			src = netip.AddrPortFrom(src.Addr(), c.spec.sport)
		}
		for _, n := range []int{0, 1, 12, 33, c.room} {
			b := make([]byte, c.buf)
			copy(b, q)
			// A packet slot keeps what an earlier packet left in it.
			p := Packet{Sum: 7, Peer: stalePeer}
			if !h.Strip(2, b, len(q), &p) {
				t.Fatalf("%+v: does not strip", c.spec)
			}
			if len(p.Buf) != c.room || cap(p.Buf) != c.room || &p.Buf[0] != &b[f.Payload] {
				t.Fatalf("%+v: Buf of %d bytes (cap %d) at %p, want %d at %p", c.spec, len(p.Buf), cap(p.Buf), &p.Buf[0], c.room, &b[f.Payload])
			}
			if p.Len != f.PayloadLen || p.Sum != 0 {
				t.Fatalf("%+v: Len %d Sum %d, want %d and 0", c.spec, p.Len, p.Sum, f.PayloadLen)
			}
			if p.Peer != AddrFrom(src) {
				t.Fatalf("%+v: peer %v (% x), want %v", c.spec, p.Peer.AddrPort(), p.Peer.Raw[:p.Peer.Len], src)
			}
			copy(p.Buf, answer[:n])
			p.Len = n
			p.Sum = onessum.Sum(p.Buf[:n], 0)
			end, ok := h.Reply(2, b, &p)
			if !ok || n == 0 && end != 0 {
				t.Fatalf("%+v: Reply of %d bytes = %d, %v", c.spec, n, end, ok)
			}
			if n == 0 {
				continue
			}
			mtu := c.mtu
			if mtu == 0 {
				mtu = 1500
			}
			if end != f.Payload+n || end > c.buf || end-f.L3 > min(mtu, 65535) {
				t.Fatalf("%+v: reply frame of %d bytes (IP %d), want %d within buffer %d and MTU %d", c.spec, end, end-f.L3, f.Payload+n, c.buf, mtu)
			}
			checkReply(t, q, b[:end], f, answer[:n])
		}
		// A reply longer than the room is refused, not written.
		b := make([]byte, c.buf)
		copy(b, q)
		var p Packet
		h.Strip(0, b, len(q), &p)
		p.Len = c.room + 1
		if _, ok := h.Reply(0, b, &p); ok {
			t.Fatalf("%+v: a reply over the room was accepted", c.spec)
		}
		if !bytes.Equal(b[:len(q)], q) {
			t.Fatalf("%+v: a refused reply changed the frame", c.spec)
		}
	}
}

// stalePeer is a peer address of all ones, which Strip must overwrite.
var stalePeer = func() (a Addr) {
	for i := range a.Raw {
		a.Raw[i] = 0xff
	}
	a.Len = 28
	return a
}()

// TestHeadersRefuses checks that Strip hands out nothing for frames
// ParseFrame refuses, for a frame longer than its buffer, and for a query
// longer than the reply room (a query over a larger MTU than ours), and
// leaves the packet as it was.
func TestHeadersRefuses(t *testing.T) {
	h := NewHeaders(53, 1500, 1)
	big := frameSpec{payload: make([]byte, 1400)}.build()
	for _, c := range []struct {
		name  string
		frame []byte
		n     int
		h     *Headers
	}{
		{"not a query", frameSpec{dport: 54}.build(), -1, h},
		{"truncated", frameSpec{truncate: 40}.build(), -1, h},
		{"longer than the buffer", frameSpec{}.build(), 4096, h},
		{"query over the MTU", big, -1, NewHeaders(53, 1280, 1)},
	} {
		p := Packet{Len: -5, Sum: 9}
		n := c.n
		if n < 0 {
			n = len(c.frame)
		}
		if c.h.Strip(0, c.frame, n, &p) {
			t.Errorf("%s: stripped", c.name)
		}
		if p.Len != -5 || p.Sum != 9 || p.Buf != nil {
			t.Errorf("%s: packet changed: %+v", c.name, p)
		}
	}
}

// TestHeadersAllocs pins Strip and Reply to zero allocations.
func TestHeadersAllocs(t *testing.T) {
	frames := [][]byte{frameSpec{}.build(), frameSpec{v6: true, vlan: 1}.build(), frameSpec{dport: 54}.build()}
	h := NewHeaders(53, 1500, len(frames))
	bufs := make([][]byte, len(frames))
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	pkts := make([]Packet, len(frames))
	allocs := testing.AllocsPerRun(100, func() {
		for i, f := range frames {
			n := copy(bufs[i], f)
			if h.Strip(i, bufs[i], n, &pkts[i]) {
				pkts[i].Sum = onessum.Sum(pkts[i].Buf[:pkts[i].Len], 0)
				h.Reply(i, bufs[i], &pkts[i])
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per batch, want 0", allocs)
	}
}

// BenchmarkHeaders measures what the AF_XDP port adds per packet: Strip
// (ParseFrame, the payload room, the peer) on a copy of each frame, and
// Reply (RewriteReply with the checksums) on batches of 64 frames, half
// IPv4, half IPv6. The copy of each frame into its buffer is included.
func BenchmarkHeaders(b *testing.B) {
	frames := [][]byte{frameSpec{}.build(), frameSpec{v6: true}.build()}
	h := NewHeaders(53, 1500, 64)
	slab := make([]byte, 64*2048)
	pkts := make([]Packet, 64)
	b.ReportAllocs()
	for b.Loop() {
		for i := range pkts {
			buf := slab[i*2048 : (i+1)*2048]
			h.Strip(i, buf, copy(buf, frames[i&1]), &pkts[i])
		}
		for i := range pkts {
			h.Reply(i, slab[i*2048:(i+1)*2048], &pkts[i])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(pkts)), "ns/packet")
}

// TestHeadersDestination checks that the destination read back from a
// stripped frame is the address and port the query was sent to, IPv4 and
// IPv6.
func TestHeadersDestination(t *testing.T) {
	for _, c := range []struct{ from, to string }{
		{"198.18.0.2:40000", "198.18.0.1:53"},
		{"[fd53::2]:40000", "[fd53::1]:5353"},
	} {
		from, to := netip.MustParseAddrPort(c.from), netip.MustParseAddrPort(c.to)
		frame := make([]byte, 2048)
		n := copy(frame, frameSpec{v6: from.Addr().Is6(), src: from.Addr(), dst: to.Addr(), sport: from.Port(), dport: to.Port()}.build())
		h := NewHeaders(to.Port(), 1500, 4)
		var p Packet
		if !h.Strip(2, frame, n, &p) {
			t.Fatalf("%s: frame not stripped", c.to)
		}
		if got := h.Destination(2, frame).AddrPort(); got != to {
			t.Errorf("Destination %s, want %s", got, to)
		}
		if got := p.Peer.AddrPort(); got != from {
			t.Errorf("Peer %s, want %s", got, from)
		}
	}
}
