package nic

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringdns/ringdns/internal/netns"
)

// TestXDPChecksumNetns sends hand-built frames over the veth from an
// AF_PACKET socket in the client namespace, which the veth passes on with
// the checksums exactly as written (it computes none for a raw socket's
// frames), to an echo responder on the AF_XDP port: frames whose checksums
// verify are answered, the others get no reply and are counted as
// checksum drops (ChecksumDrops, RxBadChecksum), not as frame drops.
// Datagrams sent from ordinary UDP sockets in the client namespace, which
// reach the XDP program with the kernel's unfinished checksum
// (CHECKSUM_PARTIAL: veth's tx-checksumming is on by default), are
// answered too: dropping them would drop every query from kdig or dig on
// the same host. Both attach modes are run: the socket's datagrams reach
// the program unfinished in either.
func TestXDPChecksumNetns(t *testing.T) {
	for _, mode := range []string{"driver", "generic"} {
		t.Run(mode, func(t *testing.T) { testXDPChecksumNetns(t, mode) })
	}
}

func testXDPChecksumNetns(t *testing.T, mode string) {
	v := newVethNet(t)
	out, _ := netns.Run("ip", "netns", "exec", v.ClientNS, "ethtool", "-k", v.ClientIf)
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "tx-checksumming") || strings.Contains(line, "tx-checksum-ip-generic") {
			t.Logf("client veth: %s", strings.TrimSpace(line))
		}
	}
	clientMAC, err := netns.HardwareAddr(v.ClientNS, v.ClientIf)
	if err != nil {
		t.Fatal(err)
	}
	serverMAC, err := netns.HardwareAddr(v.ServerNS, v.ServerIf)
	if err != nil {
		t.Fatal(err)
	}
	x, err := v.openXDP(t, XDPConfig{Mode: mode, Frames: 256, RingSize: 128})
	if err != nil {
		t.Fatalf("OpenXDP: %v", err)
	}
	e := startEcho(x)
	defer e.stop(t, x)

	// Each frame's payload names it; the echoes come back to a UDP
	// socket bound to the frames' source port in the client namespace.
	const port4, port6 = 41004, 41006
	frames := []struct {
		name   string
		v6     bool
		mutate func(b []byte, f Frame)
		answer bool
	}{
		{"good ipv4", false, nil, true},
		{"good ipv6", true, nil, true},
		{"ipv4 zero checksum", false, setUDPSum(0), true},
		{"ipv4 partial checksum", false, partialSum, true},
		{"ipv6 partial checksum", true, partialSum, true},
		{"bad ipv4", false, flip(3), false},
		{"bad ipv6", true, flip(3), false},
		{"ipv6 zero checksum", true, setUDPSum(0), false},
		{"ipv4 header checksum", false, func(b []byte, f Frame) { b[f.L3+11]++ }, false},
		{"bad ipv4 0xffff", false, setUDPSum(0xffff), false},
	}
	var want, bad int
	var raw [][]byte
	var echoes []string // each frame's payload, as it would be echoed
	for _, c := range frames {
		spec := frameSpec{v6: c.v6, sport: port4, payload: []byte("query: " + c.name),
			srcMAC: [6]byte(clientMAC), dstMAC: [6]byte(serverMAC)}
		if c.v6 {
			spec.sport = port6
		}
		b := spec.build()
		if c.mutate != nil {
			f, _ := ParseFrame(b, 53)
			c.mutate(b, f)
		}
		f, _ := ParseFrame(b, 53)
		if refVerify(b, &f) != c.answer {
			t.Fatalf("%s: the frame's checksums verify %v, the case expects %v", c.name, !c.answer, c.answer)
		}
		raw = append(raw, b)
		echoes = append(echoes, string(b[f.Payload:f.Payload+f.PayloadLen]))
		if c.answer {
			want++
		} else {
			bad++
		}
	}

	var fd4, fd6, fdq int
	err = netns.Do(v.ClientNS, func() error {
		var err error
		if fd4, err = boundUDP(unix.AF_INET, &unix.SockaddrInet4{Port: port4, Addr: [4]byte{198, 18, 0, 2}}); err != nil {
			return err
		}
		if fd6, err = boundUDP(unix.AF_INET6, &unix.SockaddrInet6{Port: port6, Addr: netip.MustParseAddr("fd53::2").As16()}); err != nil {
			return err
		}
		// An ordinary socket's query, which the veth hands over with a
		// partial checksum.
		if fdq, err = boundUDP(unix.AF_INET, &unix.SockaddrInet4{Addr: [4]byte{198, 18, 0, 2}}); err != nil {
			return err
		}
		ifi, err := net.InterfaceByName(v.ClientIf)
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
		for _, b := range raw {
			if err := unix.Sendto(pfd, b, 0, to); err != nil {
				return err
			}
		}
		return unix.Sendto(fdq, []byte("query: kernel socket"), 0, &unix.SockaddrInet4{Port: 53, Addr: [4]byte{198, 18, 0, 1}})
	})
	for _, fd := range []int{fd4, fd6, fdq} {
		if fd > 0 {
			defer unix.Close(fd)
		}
	}
	if err != nil {
		t.Fatalf("sending from the client namespace: %v", err)
	}
	want++ // the kernel socket's query

	// Every frame is either answered or dropped; once the drops are all
	// counted and the answers all in, nothing else can come. The bound
	// only covers a loaded machine's softirqs.
	var answered, sumDrops, frameDrops, statDrops uint64
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		answered, sumDrops, frameDrops, statDrops = 0, 0, 0, 0
		for i, p := range x.Ports() {
			answered += e.replies[i].Load()
			sumDrops += p.ChecksumDrops()
			frameDrops += p.FrameDrops()
			st, err := p.Stats()
			if err != nil {
				t.Fatal(err)
			}
			statDrops += st.RxBadChecksum
		}
		if answered+sumDrops+frameDrops >= uint64(want+bad) {
			break
		}
	}
	if answered != uint64(want) || sumDrops != uint64(bad) || statDrops != uint64(bad) || frameDrops != 0 {
		t.Errorf("%d answered, %d checksum drops (%d in the stats), %d frame drops; want %d, %d, %d, 0",
			answered, sumDrops, statDrops, frameDrops, want, bad, bad)
	}

	// The echoes that came back are those of the good frames.
	got := map[string]bool{}
	buf := make([]byte, 2048)
	for deadline := time.Now().Add(5 * time.Second); len(got) < want && time.Now().Before(deadline); {
		for _, fd := range []int{fd4, fd6, fdq} {
			for {
				n, err := unix.Read(fd, buf)
				if err != nil {
					break
				}
				got[string(buf[:n])] = true
			}
		}
	}
	for i, c := range frames {
		if q := echoes[i]; got[q] != c.answer {
			t.Errorf("%s: echoed %v, want %v", c.name, got[q], c.answer)
		}
	}
	if !got["query: kernel socket"] {
		t.Error("the query from a UDP socket in the client namespace was not answered")
	}
}

// boundUDP returns a UDP socket bound to sa with a receive timeout long
// enough for a loaded machine, short enough that reading an empty socket
// ends the test's collection promptly.
func boundUDP(family int, sa unix.Sockaddr) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	tv := unix.Timeval{Usec: 300000}
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
