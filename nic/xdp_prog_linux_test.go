package nic

import (
	"encoding/binary"
	"net/netip"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringdns/ringdns/internal/onessum"
)

// requirePrivileges skips a test that needs root (BPF, AF_XDP, namespaces)
// when it is not available, except in CI, where a skipped privileged test
// would hide a regression: there it fails.
func requirePrivileges(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test needs root (CAP_BPF, CAP_NET_ADMIN, CAP_NET_RAW) and CI=true forbids skipping it")
	}
	t.Skip("skipping: needs root (CAP_BPF, CAP_NET_ADMIN, CAP_NET_RAW)")
}

// frameSpec describes a test frame; zero values give a well-formed DNS query
// over IPv4 to 198.18.0.1:53.
type frameSpec struct {
	vlan      bool
	ipv6      bool
	ethType   uint16 // overrides the EtherType (ARP)
	ihl       int    // IPv4 header words, default 5
	fragOff   uint16 // IPv4 flags+fragment offset field
	proto     uint8  // IPv4 protocol / IPv6 next header, default UDP
	dst       netip.Addr
	src       netip.Addr
	srcPort   uint16
	dstPort   uint16
	payload   []byte
	truncate  int // cut the frame to this many bytes when > 0
	extHeader bool
}

var (
	testMACServer = [6]byte{0x02, 0x53, 0, 0, 0, 1}
	testMACClient = [6]byte{0x02, 0x53, 0, 0, 0, 2}
)

// buildFrame returns an Ethernet frame as spec describes, with correct
// IPv4 header and UDP checksums.
func buildFrame(s frameSpec) []byte {
	if !s.dst.IsValid() {
		if s.ipv6 {
			s.dst = netip.MustParseAddr("fd53::1")
		} else {
			s.dst = netip.MustParseAddr("198.18.0.1")
		}
	}
	if !s.src.IsValid() {
		if s.ipv6 {
			s.src = netip.MustParseAddr("fd53::2")
		} else {
			s.src = netip.MustParseAddr("198.18.0.2")
		}
	}
	if s.dstPort == 0 {
		s.dstPort = 53
	}
	if s.srcPort == 0 {
		s.srcPort = 40000
	}
	if s.proto == 0 {
		s.proto = 17
	}
	if s.ihl == 0 {
		s.ihl = 5
	}
	if s.payload == nil {
		s.payload = make([]byte, 29) // the size of a small DNS query
	}
	b := make([]byte, 0, 128+len(s.payload))
	b = append(b, testMACServer[:]...)
	b = append(b, testMACClient[:]...)
	if s.vlan {
		b = binary.BigEndian.AppendUint16(b, 0x8100)
		b = binary.BigEndian.AppendUint16(b, 42)
	}
	et := uint16(0x0800)
	if s.ipv6 {
		et = 0x86dd
	}
	if s.ethType != 0 {
		et = s.ethType
	}
	b = binary.BigEndian.AppendUint16(b, et)
	l3 := len(b)
	l4len := 8 + len(s.payload)
	if s.proto == 6 {
		l4len = 20 + len(s.payload)
	}
	if s.ipv6 {
		next := s.proto
		if s.extHeader {
			next = 0 // hop-by-hop options
			l4len += 8
		}
		b = append(b, 0x60, 0, 0, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(l4len))
		b = append(b, next, 64)
		b = append(b, s.src.AsSlice()...)
		b = append(b, s.dst.AsSlice()...)
		if s.extHeader {
			b = append(b, s.proto, 0, 1, 4, 0, 0, 0, 0) // PadN
		}
	} else {
		hl := s.ihl * 4
		b = append(b, 0x40|byte(s.ihl), 0)
		b = binary.BigEndian.AppendUint16(b, uint16(hl+l4len))
		b = append(b, 0, 1)
		b = binary.BigEndian.AppendUint16(b, s.fragOff)
		b = append(b, 64, s.proto, 0, 0)
		b = append(b, s.src.AsSlice()...)
		b = append(b, s.dst.AsSlice()...)
		for i := 20; i < hl; i++ {
			b = append(b, 1) // NOP options
		}
		binary.BigEndian.PutUint16(b[l3+10:], onessum.Checksum(b[l3:l3+hl]))
	}
	l4 := len(b)
	b = binary.BigEndian.AppendUint16(b, s.srcPort)
	b = binary.BigEndian.AppendUint16(b, s.dstPort)
	if s.proto == 6 {
		b = append(b, make([]byte, 16)...)
		b[l4+12] = 5 << 4
	} else {
		b = binary.BigEndian.AppendUint16(b, uint16(l4len))
		b = append(b, 0, 0)
	}
	b = append(b, s.payload...)
	if s.proto == 17 && !s.extHeader {
		binary.BigEndian.PutUint16(b[l4+6:], udpChecksum(b[l3:l4], b[l4:], s.ipv6))
	}
	if s.truncate > 0 {
		b = b[:s.truncate]
	}
	return b
}

func udpChecksum(ip, seg []byte, v6 bool) uint16 {
	var pseudo [40]byte
	var p []byte
	if v6 {
		copy(pseudo[0:32], ip[8:40])
		binary.BigEndian.PutUint32(pseudo[32:], uint32(len(seg)))
		pseudo[39] = 17
		p = pseudo[:40]
	} else {
		copy(pseudo[0:8], ip[12:20])
		pseudo[9] = 17
		binary.BigEndian.PutUint16(pseudo[10:], uint16(len(seg)))
		p = pseudo[:12]
	}
	c := onessum.Fold(onessum.Sum(seg, onessum.Sum(p, 0)))
	if c == 0 {
		c = 0xffff
	}
	return c
}

func TestXDPFilterProgram(t *testing.T) {
	requirePrivileges(t)
	arp := make([]byte, 28)
	cases := []struct {
		name   string
		addrs  []string
		frame  []byte
		want   uint32
		source bool // the client's program: match source port and addresses
	}{
		{"ipv4", nil, buildFrame(frameSpec{}), xdpRedirect, false},
		{"ipv6", nil, buildFrame(frameSpec{ipv6: true}), xdpRedirect, false},
		{"vlan ipv4", nil, buildFrame(frameSpec{vlan: true}), xdpRedirect, false},
		{"vlan ipv6", nil, buildFrame(frameSpec{vlan: true, ipv6: true}), xdpRedirect, false},
		{"ipv4 wrong port", nil, buildFrame(frameSpec{dstPort: 54}), xdpPass, false},
		{"ipv4 source port 53 only", nil, buildFrame(frameSpec{srcPort: 53, dstPort: 5353}), xdpPass, false},
		{"ipv6 wrong port", nil, buildFrame(frameSpec{ipv6: true, dstPort: 853}), xdpPass, false},
		{"ipv4 fragment MF", nil, buildFrame(frameSpec{fragOff: 0x2000}), xdpPass, false},
		{"ipv4 fragment offset", nil, buildFrame(frameSpec{fragOff: 0x0010}), xdpPass, false},
		{"ipv4 DF is fine", nil, buildFrame(frameSpec{fragOff: 0x4000}), xdpRedirect, false},
		{"ipv4 options", nil, buildFrame(frameSpec{ihl: 6}), xdpPass, false},
		{"ipv6 extension header", nil, buildFrame(frameSpec{ipv6: true, extHeader: true}), xdpPass, false},
		{"ipv4 tcp", nil, buildFrame(frameSpec{proto: 6}), xdpPass, false},
		{"ipv6 tcp", nil, buildFrame(frameSpec{ipv6: true, proto: 6}), xdpPass, false},
		{"arp", nil, append(buildFrame(frameSpec{ethType: 0x0806, truncate: 14}), arp...), xdpPass, false},
		{"double vlan", nil, func() []byte {
			f := buildFrame(frameSpec{vlan: true})
			// Make the inner EtherType another 802.1Q tag.
			binary.BigEndian.PutUint16(f[16:], 0x8100)
			return f
		}(), xdpPass, false},
		{"truncated eth only", nil, buildFrame(frameSpec{truncate: 14}), xdpPass, false},
		{"truncated ipv4 header", nil, buildFrame(frameSpec{truncate: 14 + 19}), xdpPass, false},
		{"truncated udp header", nil, buildFrame(frameSpec{truncate: 14 + 20 + 7}), xdpPass, false},
		{"udp header only", nil, buildFrame(frameSpec{truncate: 14 + 20 + 8}), xdpRedirect, false},
		{"truncated ipv6 header", nil, buildFrame(frameSpec{ipv6: true, truncate: 14 + 39}), xdpPass, false},
		{"truncated ipv6 udp", nil, buildFrame(frameSpec{ipv6: true, truncate: 14 + 40 + 7}), xdpPass, false},
		{"truncated vlan", nil, buildFrame(frameSpec{vlan: true, truncate: 17}), xdpPass, false},
		{"ipv4 listed address", []string{"198.18.0.1", "fd53::1"}, buildFrame(frameSpec{}), xdpRedirect, false},
		{"ipv4 second listed address", []string{"198.18.0.9", "198.18.0.1"}, buildFrame(frameSpec{}), xdpRedirect, false},
		{"ipv4 wrong address", []string{"198.18.0.9", "fd53::1"}, buildFrame(frameSpec{}), xdpPass, false},
		{"ipv6 listed address", []string{"198.18.0.1", "fd53::1"}, buildFrame(frameSpec{ipv6: true}), xdpRedirect, false},
		{"ipv6 wrong address", []string{"198.18.0.1", "fd53::9"}, buildFrame(frameSpec{ipv6: true}), xdpPass, false},
		{"ipv6 when only ipv4 listed", []string{"198.18.0.1"}, buildFrame(frameSpec{ipv6: true}), xdpPass, false},
		{"vlan ipv6 listed address", []string{"fd53::1"}, buildFrame(frameSpec{ipv6: true, vlan: true}), xdpRedirect, false},
		{"ipv4-mapped listed address", []string{"::ffff:198.18.0.1"}, buildFrame(frameSpec{}), xdpRedirect, false},

		// A load generator's program takes in replies: UDP from the server's
		// port and address, whatever the destination port.
		{"client ipv4 reply", []string{"198.18.0.1"}, buildFrame(frameSpec{src: netip.MustParseAddr("198.18.0.1"), dst: netip.MustParseAddr("198.18.0.2"), srcPort: 53, dstPort: 40001}), xdpRedirect, true},
		{"client ipv6 reply", []string{"fd53::1"}, buildFrame(frameSpec{ipv6: true, src: netip.MustParseAddr("fd53::1"), dst: netip.MustParseAddr("fd53::2"), srcPort: 53, dstPort: 40001}), xdpRedirect, true},
		{"client vlan ipv6 reply", []string{"fd53::1"}, buildFrame(frameSpec{vlan: true, ipv6: true, src: netip.MustParseAddr("fd53::1"), dst: netip.MustParseAddr("fd53::2"), srcPort: 53, dstPort: 40001}), xdpRedirect, true},
		{"client reply from another address", []string{"198.18.0.1"}, buildFrame(frameSpec{src: netip.MustParseAddr("198.18.0.9"), dst: netip.MustParseAddr("198.18.0.2"), srcPort: 53, dstPort: 40001}), xdpPass, true},
		{"client ipv6 reply from another address", []string{"fd53::1"}, buildFrame(frameSpec{ipv6: true, src: netip.MustParseAddr("fd53::9"), dst: netip.MustParseAddr("fd53::2"), srcPort: 53, dstPort: 40001}), xdpPass, true},
		{"client reply from another port", []string{"198.18.0.1"}, buildFrame(frameSpec{src: netip.MustParseAddr("198.18.0.1"), dst: netip.MustParseAddr("198.18.0.2"), srcPort: 5353, dstPort: 40001}), xdpPass, true},
		{"client query to port 53 passes", []string{"198.18.0.1"}, buildFrame(frameSpec{}), xdpPass, true},
		{"client any address", nil, buildFrame(frameSpec{src: netip.MustParseAddr("198.18.0.7"), dst: netip.MustParseAddr("198.18.0.2"), srcPort: 53, dstPort: 40001}), xdpRedirect, true},
		{"client fragment passes", []string{"198.18.0.1"}, buildFrame(frameSpec{src: netip.MustParseAddr("198.18.0.1"), srcPort: 53, dstPort: 40001, fragOff: 0x2000}), xdpPass, true},
		{"client tcp passes", []string{"198.18.0.1"}, buildFrame(frameSpec{src: netip.MustParseAddr("198.18.0.1"), srcPort: 53, dstPort: 40001, proto: 6}), xdpPass, true},
	}
	// bpf_redirect_map answers XDP_REDIRECT only when the queue's slot of the
	// XSKMAP holds a socket, so slot 0 (the queue Program.Test runs on) gets
	// one. The socket need not be bound: the test run stops at the verdict.
	xsk, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("AF_XDP socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(xsk) })
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var addrs []netip.Addr
			for _, a := range c.addrs {
				addrs = append(addrs, netip.MustParseAddr(a))
			}
			f, err := newXDPFilter(53, addrs, 2, c.source)
			if err != nil {
				t.Fatal(err)
			}
			defer f.close()
			if err := f.xsks.Put(uint32(0), uint32(xsk)); err != nil {
				t.Fatalf("put socket in XSKMAP: %v", err)
			}
			got, _, err := f.prog.Test(c.frame)
			if err != nil {
				t.Fatalf("Program.Test: %v", err)
			}
			if got != c.want {
				t.Errorf("verdict %d, want %d", got, c.want)
			}
		})
	}
}

// TestXDPFilterEmptySlotPasses checks that a frame for the DNS port arriving
// on a queue without a socket goes to the kernel rather than being dropped.
func TestXDPFilterEmptySlotPasses(t *testing.T) {
	requirePrivileges(t)
	f, err := newXDPFilter(53, nil, 2, false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.close()
	got, _, err := f.prog.Test(buildFrame(frameSpec{}))
	if err != nil {
		t.Fatalf("Program.Test: %v", err)
	}
	if got != xdpPass {
		t.Errorf("verdict %d, want XDP_PASS (%d)", got, xdpPass)
	}
}
