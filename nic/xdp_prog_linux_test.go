package nic

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringdns/ringdns/internal/testenv"
)

// bpfRoot is what the XDP program's tests need root for.
const bpfRoot = "for CAP_BPF and CAP_NET_ADMIN (to load the XDP program and its maps) and CAP_NET_RAW (for the AF_XDP socket in its XSKMAP)"

// TestXDPFilterProgram runs the XDP program on every frame of frameCases,
// the table TestParseFrame runs ParseFrame on. Beside each case's own
// verdict it holds the table to what the two halves rely on: with no
// address listed, every query ParseFrame answers is one the program
// redirects, so that none goes to the kernel's sockets instead of the rings.
func TestXDPFilterProgram(t *testing.T) {
	testenv.RequireRoot(t, bpfRoot)
	verdicts := map[xdpVerdict]uint32{toKernel: xdpPass, toSocket: xdpRedirect}
	// bpf_redirect_map answers XDP_REDIRECT only when the queue's slot of the
	// XSKMAP holds a socket, so slot 0 (the queue Program.Test runs on) gets
	// one. The socket need not be bound: the test run stops at the verdict.
	xsk, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("AF_XDP socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(xsk) })
	for _, c := range frameCases {
		t.Run(c.name, func(t *testing.T) {
			if c.parse && !c.source && c.addrs == nil && c.xdp != toSocket {
				t.Fatal("the table says the program passes to the kernel a query ParseFrame answers")
			}
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
			got, _, err := f.prog.Test(c.frame())
			if err != nil {
				t.Fatalf("Program.Test: %v", err)
			}
			if want := verdicts[c.xdp]; got != want {
				t.Errorf("verdict %d, want %d", got, want)
			}
		})
	}
}

// TestXDPFilterEmptySlotPasses checks that a frame for the DNS port arriving
// on a queue without a socket goes to the kernel rather than being dropped.
func TestXDPFilterEmptySlotPasses(t *testing.T) {
	testenv.RequireRoot(t, bpfRoot)
	f, err := newXDPFilter(53, nil, 2, false)
	if err != nil {
		t.Fatal(err)
	}
	defer f.close()
	got, _, err := f.prog.Test(frameSpec{}.build())
	if err != nil {
		t.Fatalf("Program.Test: %v", err)
	}
	if got != xdpPass {
		t.Errorf("verdict %d, want XDP_PASS (%d)", got, xdpPass)
	}
}
