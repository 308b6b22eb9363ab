package dataplane

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/ringdns/ringdns/internal/onessum"
)

// frameSpec describes a test frame. Its zero values mean a well-formed
// IPv4 query from 198.18.0.2:40000 to 198.18.0.1:53.
type frameSpec struct {
	v6       bool
	vlan     int // number of 802.1Q tags
	ihl      byte
	fragOff  uint16 // the IPv4 flags+fragment field
	next     byte   // IPv6 next header / IPv4 protocol; 0 means UDP
	src, dst netip.Addr
	sport    uint16
	dport    uint16
	srcMAC   [6]byte
	dstMAC   [6]byte
	payload  []byte
	pad      int // Ethernet padding after the IP datagram
	udpLen   int // overrides the UDP length when non-zero
	ipLen    int // overrides the IPv4 total length or IPv6 payload length
	tos      byte
}

var (
	clientMAC = [6]byte{0x02, 0, 0, 0, 0, 0x02}
	serverMAC = [6]byte{0x02, 0, 0, 0, 0, 0x01}
)

// build serialises the spec by hand, independently of the code under test.
func (s frameSpec) build() []byte {
	if s.ihl == 0 {
		s.ihl = 5
	}
	if s.next == 0 {
		s.next = protoUDP
	}
	if !s.src.IsValid() {
		if s.v6 {
			s.src, s.dst = netip.MustParseAddr("fd53::2"), netip.MustParseAddr("fd53::1")
		} else {
			s.src, s.dst = netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("198.18.0.1")
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
	if s.v6 {
		b = append(b, 0x86, 0xdd)
		ipLen := udpLen
		if s.ipLen != 0 {
			ipLen = s.ipLen
		}
		b = append(b, 0x60|s.tos>>4, s.tos<<4|0x01, 0x23, 0x45, byte(ipLen>>8), byte(ipLen), s.next, 7)
		b = append(b, s.src.AsSlice()...)
		b = append(b, s.dst.AsSlice()...)
	} else {
		b = append(b, 0x08, 0x00)
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
		c := onessum.Checksum(ip)
		ip[10], ip[11] = byte(c>>8), byte(c)
		b = append(b, ip...)
	}
	b = append(b, byte(s.sport>>8), byte(s.sport), byte(s.dport>>8), byte(s.dport), byte(udpLen>>8), byte(udpLen), 0, 0)
	b = append(b, s.payload...)
	return append(b, make([]byte, s.pad)...)
}

var testQuery = []byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 3, 'w', 'w', 'w', 0, 0, 1, 0, 1}

func TestParseFrame(t *testing.T) {
	v6 := netip.MustParseAddr
	cases := []struct {
		name string
		spec frameSpec
		ok   bool
		l3   int
		l4   int
		// mutate edits the built frame for what frameSpec cannot express.
		mutate func(b []byte)
	}{
		{"ipv4", frameSpec{payload: testQuery}, true, 14, 34, nil},
		{"ipv4 DF", frameSpec{payload: testQuery, fragOff: 0x4000}, true, 14, 34, nil},
		{"ipv4 vlan", frameSpec{payload: testQuery, vlan: 1}, true, 18, 38, nil},
		{"ipv4 padded", frameSpec{payload: []byte{1, 2}, pad: 10}, true, 14, 34, nil},
		{"ipv6", frameSpec{v6: true, payload: testQuery}, true, 14, 54, nil},
		{"ipv6 vlan", frameSpec{v6: true, payload: testQuery, vlan: 1}, true, 18, 58, nil},
		{"ipv6 link-local", frameSpec{v6: true, payload: testQuery, src: v6("fe80::2"), dst: v6("fe80::1")}, true, 14, 54, nil},
		{"empty payload", frameSpec{payload: nil}, true, 14, 34, nil},
		// The worker, not the parser, drops source port 0 (with the other
		// reflection ports), so that both backends count it alike.
		{"source port 0", frameSpec{payload: testQuery}, true, 14, 34, func(b []byte) { b[34], b[35] = 0, 0 }},

		{"two vlan tags", frameSpec{payload: testQuery, vlan: 2}, false, 0, 0, nil},
		{"ipv4 options", frameSpec{payload: testQuery, ihl: 6}, false, 0, 0, nil},
		{"ipv4 MF", frameSpec{payload: testQuery, fragOff: 0x2000}, false, 0, 0, nil},
		{"ipv4 fragment offset", frameSpec{payload: testQuery, fragOff: 0x0001}, false, 0, 0, nil},
		{"ipv4 tcp", frameSpec{payload: testQuery, next: 6}, false, 0, 0, nil},
		{"ipv6 hop-by-hop", frameSpec{v6: true, payload: testQuery}, false, 0, 0, func(b []byte) { b[14+6] = 0 }},
		{"ipv6 routing header", frameSpec{v6: true, payload: testQuery, next: 43}, false, 0, 0, nil},
		{"ipv6 fragment header", frameSpec{v6: true, payload: testQuery, next: 44}, false, 0, 0, nil},
		{"wrong port", frameSpec{payload: testQuery, dport: 5353}, false, 0, 0, nil},
		{"multicast MAC", frameSpec{payload: testQuery, dstMAC: [6]byte{0x01, 0, 0x5e, 0, 0, 1}}, false, 0, 0, nil},
		{"broadcast MAC", frameSpec{payload: testQuery, dstMAC: [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, false, 0, 0, nil},
		{"group source MAC", frameSpec{payload: testQuery, srcMAC: [6]byte{0x03, 0, 0, 0, 0, 1}}, false, 0, 0, nil},
		{"ipv4 broadcast", frameSpec{payload: testQuery, dst: v6("255.255.255.255"), src: v6("198.18.0.2")}, false, 0, 0, nil},
		{"ipv4 multicast", frameSpec{payload: testQuery, dst: v6("224.0.0.251"), src: v6("198.18.0.2")}, false, 0, 0, nil},
		{"ipv4 zero source", frameSpec{payload: testQuery, src: v6("0.0.0.0"), dst: v6("198.18.0.1")}, false, 0, 0, nil},
		{"ipv6 multicast", frameSpec{v6: true, payload: testQuery, dst: v6("ff02::fb"), src: v6("fd53::2")}, false, 0, 0, nil},
		{"ipv6 unspecified source", frameSpec{v6: true, payload: testQuery, src: v6("::"), dst: v6("fd53::1")}, false, 0, 0, nil},
		{"ipv4 total too long", frameSpec{payload: testQuery, ipLen: 20 + 8 + len(testQuery) + 1}, false, 0, 0, nil},
		{"ipv4 total too short", frameSpec{payload: testQuery, ipLen: 27}, false, 0, 0, nil},
		{"udp length too long", frameSpec{payload: testQuery, udpLen: 8 + len(testQuery) + 1}, false, 0, 0, nil},
		{"udp length too short", frameSpec{payload: testQuery, udpLen: 7}, false, 0, 0, nil},
		{"ipv6 payload too long", frameSpec{v6: true, payload: testQuery, ipLen: 8 + len(testQuery) + 1}, false, 0, 0, nil},
		{"ipv6 payload too short", frameSpec{v6: true, payload: testQuery, ipLen: 7}, false, 0, 0, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spec := c.spec
			b := spec.build()
			if c.mutate != nil {
				c.mutate(b)
			}
			f, ok := ParseFrame(b, 53)
			if ok != c.ok {
				t.Fatalf("ok = %v, want %v (frame % x)", ok, c.ok, b)
			}
			if !ok {
				return
			}
			if f.L3 != c.l3 || f.L4 != c.l4 || f.Payload != c.l4+8 || f.IPv6 != spec.v6 {
				t.Fatalf("frame = %+v, want L3 %d L4 %d IPv6 %v", f, c.l3, c.l4, spec.v6)
			}
			if f.PayloadLen != len(spec.payload) || !bytes.Equal(b[f.Payload:f.Payload+f.PayloadLen], spec.payload) {
				t.Fatalf("payload % x, want % x", b[f.Payload:f.Payload+f.PayloadLen], spec.payload)
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
			end := RewriteReply(b, &f, n)
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
	f.Fuzz(func(t *testing.T, b []byte, port uint16, n uint16) {
		fr, ok := ParseFrame(b, port)
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
		end := RewriteReply(buf, &fr, size)
		if end > len(buf) || end-fr.L3 > 1500 {
			t.Fatalf("reply of %d bytes (IP %d) in a %d-byte buffer", end, end-fr.L3, len(buf))
		}
		checkReply(t, q, buf[:end], fr, buf[fr.Payload:end])
		if _, ok := ParseFrame(buf[:end], sport); !ok {
			t.Fatal("reply does not parse back")
		}
	})
}
