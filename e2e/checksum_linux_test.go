//go:build linux

package e2e

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/ringdns/ringdns/internal/netns"
	"github.com/ringdns/ringdns/internal/netns/netnstest"
	"github.com/ringdns/ringdns/nic/nictest"
)

// TestXDPChecksums runs the daemon over AF_XDP and sends it DNS queries in
// hand-built Ethernet frames from an AF_PACKET socket in the client
// namespace, which the veth delivers with the checksums as written: queries
// whose UDP checksums verify (or are zero over IPv4) are answered; those
// with a corrupted datagram, a zero checksum over IPv6 or a wrong IPv4
// header checksum get no reply and are counted in
// ringdns_drops_total{reason="bad-checksum"} (RFC 7720 section 3). kdig's
// queries, which reach the XDP program with the kernel's unfinished
// checksum (veth's tx-checksumming is on), are still answered.
func TestXDPChecksums(t *testing.T) {
	netnstest.Require(t)
	requireTool(t, "kdig")
	n := newXDPNet(t)
	startXDPDaemon(t, n, "driver")

	clientMAC, err := netns.HardwareAddr(n.ClientNS, n.ClientIf)
	if err != nil {
		t.Fatal(err)
	}
	serverMAC, err := netns.HardwareAddr(n.ServerNS, n.ServerIf)
	if err != nil {
		t.Fatal(err)
	}
	// kdig first: its query also fills the neighbour tables on both sides
	// (ARP and neighbour discovery pass the XDP program to the kernel).
	if got := n.kdig(t, "@"+netns.ServerV4, "www.e2e.test", "A"); got != "198.18.0.53" {
		t.Fatalf("kdig A over IPv4: %q, want 198.18.0.53", got)
	}
	if got := n.kdig(t, "@"+netns.ServerV6, "www.e2e.test", "AAAA"); got != "fd53::53" {
		t.Fatalf("kdig AAAA over IPv6: %q, want fd53::53", got)
	}

	const port4, port6 = 42004, 42006
	client4 := netip.AddrPortFrom(netip.MustParseAddr(netns.ClientV4), port4)
	client6 := netip.AddrPortFrom(netip.MustParseAddr(netns.ClientV6), port6)
	server4 := netip.AddrPortFrom(netip.MustParseAddr(netns.ServerV4), 53)
	server6 := netip.AddrPortFrom(netip.MustParseAddr(netns.ServerV6), 53)
	// l4 is the UDP header's offset in nictest.Frame's frames.
	flipPayload := func(b []byte, l4 int) { b[l4+8+3] ^= 0x04 } // a bit of the query's RCODE, 0 in a query
	cases := []struct {
		name   string
		v6     bool
		edit   func(b []byte, l4 int)
		answer bool
	}{
		{"good ipv4", false, nil, true},
		{"good ipv6", true, nil, true},
		{"ipv4 no checksum", false, func(b []byte, l4 int) { b[l4+6], b[l4+7] = 0, 0 }, true},
		{"bad ipv4", false, flipPayload, false},
		{"bad ipv6", true, flipPayload, false},
		{"ipv6 zero checksum", true, func(b []byte, l4 int) { b[l4+6], b[l4+7] = 0, 0 }, false},
		{"bad ipv4 header checksum", false, func(b []byte, l4 int) { b[14+11] ^= 0x01 }, false},
	}
	var frames [][]byte
	want := map[uint16]string{} // DNS ID -> case, for the replies expected
	var bad int
	for i, c := range cases {
		m := new(dns.Msg)
		m.SetQuestion("www.e2e.test.", dns.TypeA)
		m.Id = uint16(0x1000 + i*0x10)
		q, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		var b []byte
		l4 := 14 + 20
		if c.v6 {
			b, l4 = nictest.Frame(client6, server6, q), 14+40
		} else {
			b = nictest.Frame(client4, server4, q)
		}
		copy(b[0:6], serverMAC)
		copy(b[6:12], clientMAC)
		if c.edit != nil {
			c.edit(b, l4)
		}
		frames = append(frames, b)
		if c.answer {
			want[binary.BigEndian.Uint16(b[l4+8:])] = c.name
		} else {
			bad++
		}
	}

	got := map[uint16]bool{}
	err = netns.Do(n.ClientNS, func() error {
		fd4, err := boundUDP(unix.AF_INET, &unix.SockaddrInet4{Port: port4, Addr: client4.Addr().As4()})
		if err != nil {
			return err
		}
		defer unix.Close(fd4)
		fd6, err := boundUDP(unix.AF_INET6, &unix.SockaddrInet6{Port: port6, Addr: client6.Addr().As16()})
		if err != nil {
			return err
		}
		defer unix.Close(fd6)
		ifi, err := net.InterfaceByName(n.ClientIf)
		if err != nil {
			return err
		}
		pfd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(pfd)
		to := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
		copy(to.Addr[:], serverMAC)
		for _, b := range frames {
			if err := unix.Sendto(pfd, b, 0, to); err != nil {
				return fmt.Errorf("AF_PACKET send: %w", err)
			}
		}
		// The replies come within the bound on any machine that runs
		// this test; reading stops as soon as all expected are in. A
		// reply to a bad query that came after them would go unread
		// here, but the query would then be missing from the drop
		// count below.
		buf := make([]byte, 4096)
		all := func() bool {
			for id := range want {
				if !got[id] {
					return false
				}
			}
			return true
		}
		for deadline := time.Now().Add(5 * time.Second); !all() && time.Now().Before(deadline); {
			for _, fd := range []int{fd4, fd6} {
				k, err := unix.Read(fd, buf)
				if err != nil {
					continue
				}
				r := new(dns.Msg)
				if err := r.Unpack(buf[:k]); err != nil {
					return fmt.Errorf("reply: %w", err)
				}
				if len(r.Answer) != 1 {
					return fmt.Errorf("reply without its answer:\n%v", r)
				}
				got[r.Id] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, name := range want {
		if !got[id] {
			t.Errorf("%s: no reply", name)
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("a reply to query ID %#04x, which had a bad checksum", id)
		}
	}

	// Every frame sent was either answered or dropped and counted by the
	// time its reply came; the drop counts reach the metrics within the
	// worker's next batch or idle interval (100 ms), bounded generously.
	var drops, frameDrops float64
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		body, err := n.scrapeMetrics()
		if err != nil {
			t.Fatal(err)
		}
		m := parseMetrics(t, body)
		drops, _ = sumMetric(m, "ringdns_drops_total", `reason="bad-checksum"`)
		frameDrops, _ = sumMetric(m, "ringdns_drops_total", `reason="frame"`)
		if drops >= float64(bad) {
			break
		}
	}
	if drops != float64(bad) || frameDrops != 0 {
		t.Errorf("metrics: %v bad-checksum drops and %v frame drops, want %d and 0", drops, frameDrops, bad)
	}
}

// boundUDP returns a UDP socket bound to sa, whose reads time out after
// 100 ms so that a reader can poll several.
func boundUDP(family int, sa unix.Sockaddr) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	tv := unix.Timeval{Usec: 100000}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}
