package nic

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/ringdns/ringdns/internal/netns"
	"github.com/ringdns/ringdns/internal/netns/netnstest"
	"github.com/ringdns/ringdns/internal/onessum"
)

// vethNet is a netns.Pair with two queues: the server end holds
// 198.18.0.1/24 and fd53::1/64, the client end 198.18.0.2/24 and
// fd53::2/64. Nothing is created in the test's own namespace; the test's
// cleanup deletes the namespaces, which removes the veth pair, after the
// cleanups of what the test opened in them.
type vethNet struct{ *netns.Pair }

func newVethNet(t testing.TB) *vethNet {
	t.Helper()
	return &vethNet{netnstest.NewPair(t, netns.Config{Name: "rdx", Queues: 2})}
}

func (v *vethNet) openXDP(t testing.TB, cfg XDPConfig) (*XDP, error) {
	t.Helper()
	cfg.Interface = v.ServerIf
	var x *XDP
	err := netns.Do(v.ServerNS, func() error {
		var err error
		x, err = OpenXDP(cfg)
		return err
	})
	if x != nil {
		t.Cleanup(func() { x.Close() })
	}
	return x, err
}

// xdpProgOn returns the XDP program id the interface reports ("prog/xdp id N"
// in ip -d link show), 0 when none.
func (v *vethNet) xdpProgOn(t testing.TB) uint32 {
	t.Helper()
	var st xdpState
	err := netns.Do(v.ServerNS, func() error {
		ifi, err := net.InterfaceByName(v.ServerIf)
		if err != nil {
			return err
		}
		st, err = xdpAttached(ifi.Index)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return st.progID
}

// echoResponder answers every UDP datagram on an XDPPort with its own
// payload (see echo), which the port sends back from the address and port
// it was sent to.
type echoResponder struct {
	wg      sync.WaitGroup
	replies []atomic.Uint64 // per port
	exited  []atomic.Int64  // per port: when its Receive returned ErrClosed, in Unix nanoseconds
	errs    chan error
}

func startEcho(x *XDP) *echoResponder {
	e := &echoResponder{replies: make([]atomic.Uint64, len(x.Ports())), exited: make([]atomic.Int64, len(x.Ports())),
		errs: make(chan error, len(x.Ports()))}
	for i, p := range x.Ports() {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			pkts := make([]Packet, 64)
			for {
				n, err := p.Receive(pkts)
				if err != nil {
					if errors.Is(err, ErrClosed) {
						e.exited[i].Store(time.Now().UnixNano())
					} else {
						e.errs <- err
					}
					return
				}
				if n == 0 {
					continue
				}
				for j := range pkts[:n] {
					echo(&pkts[j])
				}
				answered := uint64(n)
				// The count is published before Send: once Send has
				// kicked the TX ring the client may read its echo and
				// the test read this counter at once, so a count
				// stored after Send returned could lag the last batch.
				e.replies[i].Store(e.replies[i].Load() + answered)
				if err := p.Send(pkts[:n]); err != nil {
					e.errs <- err
					return
				}
			}
		}()
	}
	return e
}

// echo turns the DNS payload of p into its own reply: the same bytes, with
// the sum the port finishes the UDP checksum from. The port writes the
// headers (Headers.Reply).
func echo(p *Packet) {
	p.Sum = onessum.Sum(p.Buf[:p.Len], 0)
}

// stop closes each port and checks that its worker's Receive returns
// ErrClosed promptly, as the Port contract says, then closes x.
//
// The ports are closed one by one before x so that the latency measured is
// the port's own: from Close setting the flag and signalling the eventfd to
// Receive returning. XDP.Close detaches the program first, and both the
// detach and each socket's release wait for an RCU grace period, which on a
// loaded machine takes tens to hundreds of milliseconds and says nothing
// about the port.
func (e *echoResponder) stop(t testing.TB, x *XDP) {
	t.Helper()
	for i, p := range x.Ports() {
		start := time.Now()
		if err := p.Close(); err != nil {
			t.Errorf("queue %d: Close: %v", p.Queue(), err)
			continue
		}
		// Port.Close returns once the worker has left Receive, so its
		// exit time is recorded by now.
		exited := e.exited[i].Load()
		if exited == 0 {
			t.Errorf("queue %d: Close returned but the worker's Receive has not returned ErrClosed", p.Queue())
			continue
		}
		// Close wakes a Receive sleeping in poll through the eventfd, and
		// a busy-polling one checks the flag on every spin, so both return
		// well within the 200 ms idle interval.
		if d := time.Unix(0, exited).Sub(start); d > 200*time.Millisecond {
			t.Errorf("queue %d: Receive returned ErrClosed %v after Close, want under 200 ms", p.Queue(), d)
		}
	}
	if err := x.Close(); err != nil {
		t.Errorf("XDP.Close: %v", err)
	}
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("responder goroutines still running 5 s after Close")
	}
	close(e.errs)
	for err := range e.errs {
		t.Errorf("responder: %v", err)
	}
}

// udpClients are connected UDP sockets in the client namespace, each from its
// own source port so that the flows hash onto different queues.
type udpClients struct {
	fds []int
}

func (v *vethNet) newClients(t testing.TB, server netip.AddrPort, count int) *udpClients {
	t.Helper()
	c := &udpClients{}
	err := netns.Do(v.ClientNS, func() error {
		fam := unix.AF_INET6
		var sa unix.Sockaddr = &unix.SockaddrInet6{Port: int(server.Port()), Addr: server.Addr().As16()}
		if server.Addr().Is4() {
			fam = unix.AF_INET
			sa = &unix.SockaddrInet4{Port: int(server.Port()), Addr: server.Addr().As4()}
		}
		for i := 0; i < count; i++ {
			fd, err := unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			c.fds = append(c.fds, fd)
			// A reply is lost only if it never comes: the timeout is
			// long enough that a loaded machine (two cores, shared with
			// other tests and busy-polling workers) does not turn late
			// into lost, and a real loss still fails the exchange.
			tv := unix.Timeval{Sec: 1}
			if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
				return err
			}
			if err := unix.Connect(fd, sa); err != nil {
				return err
			}
		}
		return nil
	})
	t.Cleanup(func() {
		for _, fd := range c.fds {
			unix.Close(fd)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// exchange sends rounds queries from every client (one outstanding per
// client at a time) and returns how many came back with the payload that
// was sent. It makes no allocation, so it can run inside an allocation
// measurement. A reply not there within the receive timeout (1 s) is
// waited for twice more, within deadline: the echo's goroutine can be
// left without a CPU for a second on a loaded 2-vCPU machine (CI runs the
// packages' tests side by side), and TestXDPNoAllocs once counted 1,999
// of 2,000 there. A lost datagram costs 3 s.
func (c *udpClients) exchange(rounds int, deadline time.Time, q, r []byte) (sent, ok int) {
	for round := 0; round < rounds && time.Now().Before(deadline); round++ {
		for i, fd := range c.fds {
			binary.BigEndian.PutUint32(q[0:4], uint32(round))
			binary.BigEndian.PutUint32(q[4:8], uint32(i))
			if _, err := unix.Write(fd, q); err != nil {
				continue
			}
			sent++
		}
		for i, fd := range c.fds {
			binary.BigEndian.PutUint32(q[4:8], uint32(i))
			for waits := 0; ; {
				// Replies to earlier rounds that arrived late are skipped.
				n, err := unix.Read(fd, r)
				if err == unix.EAGAIN && waits < 2 && time.Now().Before(deadline) {
					waits++
					continue
				}
				if err != nil {
					break
				}
				if n == len(q) && bytes.Equal(r[:n], q) {
					ok++
					break
				}
			}
		}
	}
	return sent, ok
}

func TestXDPEchoNetns(t *testing.T) {
	for _, tc := range []struct {
		name, mode string
		busyPoll   bool
	}{
		{"driver", "driver", false},
		{"generic", "generic", false},
		{"driver-busypoll", "driver", true},
	} {
		mode := tc.mode
		t.Run(tc.name, func(t *testing.T) {
			v := newVethNet(t)
			x, err := v.openXDP(t, XDPConfig{Mode: mode, Frames: 1024, RingSize: 512, BusyPoll: tc.busyPoll})
			if err != nil {
				t.Fatalf("OpenXDP: %v", err)
			}
			if x.Mode() != mode {
				t.Fatalf("Mode() = %q, want %q", x.Mode(), mode)
			}
			if len(x.Ports()) != 2 {
				t.Fatalf("%d ports, want 2 (one per RX queue)", len(x.Ports()))
			}
			for i, p := range x.Ports() {
				if p.Queue() != i {
					t.Errorf("port %d serves queue %d", i, p.Queue())
				}
				t.Logf("queue %d zero-copy %v", p.Queue(), p.ZeroCopy())
			}
			if id := v.xdpProgOn(t); id == 0 {
				t.Fatal("no XDP program on the interface after OpenXDP")
			}
			e := startEcho(x)
			defer e.stop(t, x)

			q := make([]byte, 64)
			for i := range q[8:] {
				q[8+i] = byte(i)
			}
			r := make([]byte, 2048)
			deadline := time.Now().Add(20 * time.Second)
			for _, server := range []string{"198.18.0.1:53", "[fd53::1]:53"} {
				c := v.newClients(t, netip.MustParseAddrPort(server), 16)
				sent, ok := c.exchange(10, deadline, q, r)
				if sent != 160 || ok != sent {
					t.Errorf("%s: %d sent, %d echoed correctly, want 160", server, sent, ok)
					t.Log(v.Counters())
				}
			}
			var total uint64
			for i, p := range x.Ports() {
				st, err := p.Stats()
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("queue %d: %+v", p.Queue(), st)
				total += e.replies[i].Load()
				// veth records the receive queue of a frame only on its
				// NAPI path, which driver-mode XDP enables; in generic mode
				// every frame arrives as queue 0, so only driver mode can
				// show the flows spread over both queues.
				if st.RxPackets == 0 && (mode == "driver" || p.Queue() == 0) {
					t.Errorf("queue %d received nothing through its ring: the flows should spread over both queues", p.Queue())
				}
				if st.TxPackets != st.RxPackets {
					t.Errorf("queue %d: %d received, %d sent", p.Queue(), st.RxPackets, st.TxPackets)
				}
			}
			if total != 320 {
				t.Errorf("responder answered %d frames through the rings, want 320", total)
			}

			// The kernel still handles what the program passes: ICMP
			// echo, neighbour discovery and TCP (even to port 53).
			for _, addr := range []string{"198.18.0.1", "fd53::1"} {
				if err := netns.Ping(v.ClientNS, netip.MustParseAddr(addr), 3, 500*time.Millisecond); err != nil {
					t.Errorf("ping %s while XDP is attached: %v", addr, err)
				}
			}
			for _, addr := range []string{"198.18.0.1:53", "[fd53::1]:53"} {
				checkTCP(t, v, addr)
			}
		})
	}
}

// checkTCP connects from the client namespace to a listener in the server
// namespace and exchanges a line, proving TCP is passed to the kernel. The
// deadlines are generous because a loaded two-core machine with
// busy-polling workers can delay the goroutines for a long while; a TCP
// segment the program wrongly redirected would never arrive at all.
func checkTCP(t *testing.T, v *vethNet, addr string) {
	t.Helper()
	var ln net.Listener
	if err := netns.Do(v.ServerNS, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.Copy(c, io.LimitReader(c, 6))
	}()
	var conn net.Conn
	if err := netns.Do(v.ClientNS, func() error {
		var err error
		conn, err = net.DialTimeout("tcp", addr, 10*time.Second)
		return err
	}); err != nil {
		t.Fatalf("TCP to %s while XDP is attached: %v", addr, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || line != "hello\n" {
		t.Fatalf("TCP echo over %s: %q, %v", addr, line, err)
	}
}

// TestXDPNoAllocs pins the steady state of Receive and Send to zero
// allocations: a bounded burst after warm-up must not allocate per packet.
func TestXDPNoAllocs(t *testing.T) {
	v := newVethNet(t)
	x, err := v.openXDP(t, XDPConfig{Frames: 1024, RingSize: 512})
	if err != nil {
		t.Fatalf("OpenXDP: %v", err)
	}
	e := startEcho(x)
	defer e.stop(t, x)
	c4 := v.newClients(t, netip.MustParseAddrPort("198.18.0.1:53"), 8)
	c6 := v.newClients(t, netip.MustParseAddrPort("[fd53::1]:53"), 8)
	q := make([]byte, 64)
	r := make([]byte, 2048)
	deadline := time.Now().Add(20 * time.Second)
	c4.exchange(5, deadline, q, r)
	c6.exchange(5, deadline, q, r)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s4, ok4 := c4.exchange(125, deadline, q, r)
	s6, ok6 := c6.exchange(125, deadline, q, r)
	runtime.ReadMemStats(&after)
	packets := ok4 + ok6
	// What is measured is allocations per packet, over the packets
	// echoed. A datagram or two not back within the wait has happened in
	// CI, with the 2 vCPUs loaded by other packages' tests beside this
	// one (1999 of 2000, twice, the second after 1444121 let the wait
	// reach 3 s); the counters are logged to tell a drop from a late
	// echo. TestXDPEchoNetns requires every datagram back.
	if packets != s4+s6 {
		t.Logf("%d sent, %d echoed; counters: %s", s4+s6, packets, v.Counters())
		for _, p := range x.Ports() {
			if st, err := p.Stats(); err == nil {
				t.Logf("queue %d: %+v", p.Queue(), st)
			}
		}
	}
	if s4+s6 != 2000 || packets < 1990 {
		t.Fatalf("%d sent, %d echoed, want 2000 and 2000 (or 1990 at least)", s4+s6, packets)
	}
	allocs := after.Mallocs - before.Mallocs
	t.Logf("%d allocations over %d echoed packets (whole process)", allocs, packets)
	// The whole process is measured, runtime included, so a handful of
	// background allocations are tolerated; one per packet would be 2000.
	if allocs > 20 {
		t.Errorf("%d allocations over %d packets: the rings allocate per packet", allocs, packets)
	}
}

// TestXDPAddressFilter checks on a live interface that only the listed
// server addresses and the configured port reach the rings: the other
// family, another port and a queue without a socket go to the kernel, which
// answers a datagram to a closed port with ICMP port unreachable (seen by
// the connected client socket as ECONNREFUSED).
func TestXDPAddressFilter(t *testing.T) {
	v := newVethNet(t)
	x, err := v.openXDP(t, XDPConfig{
		Mode: "driver", Port: 5353, Frames: 256, RingSize: 128,
		Addrs: []netip.Addr{netip.MustParseAddr("198.18.0.1")},
	})
	if err != nil {
		t.Fatalf("OpenXDP: %v", err)
	}
	e := startEcho(x)
	defer e.stop(t, x)
	q := make([]byte, 32)
	r := make([]byte, 2048)
	deadline := time.Now().Add(10 * time.Second)
	for _, c := range []struct {
		server string
		echoed bool
	}{
		{"198.18.0.1:5353", true},
		{"[fd53::1]:5353", false}, // address not listed
		{"198.18.0.1:53", false},  // not the configured port
	} {
		if c.echoed {
			cl := v.newClients(t, netip.MustParseAddrPort(c.server), 4)
			if sent, ok := cl.exchange(2, deadline, q, r); sent != 8 || ok != 8 {
				t.Errorf("%s: %d sent, %d echoed, want 8 echoed", c.server, sent, ok)
			}
			continue
		}
		// One datagram only: the kernel rate-limits ICMP errors per peer.
		before := e.replies[0].Load() + e.replies[1].Load()
		cl := v.newClients(t, netip.MustParseAddrPort(c.server), 1)
		unix.Write(cl.fds[0], q)
		if _, err := unix.Read(cl.fds[0], r); !errors.Is(err, unix.ECONNREFUSED) {
			t.Errorf("%s: read after a datagram the kernel should get: %v, want ECONNREFUSED", c.server, err)
		}
		if after := e.replies[0].Load() + e.replies[1].Load(); after != before {
			t.Errorf("%s: the rings answered %d frames, want none", c.server, after-before)
		}
	}
}

// passProgram is a foreign XDP program standing in for another tool's.
func passProgram(t testing.TB) *ebpf.Program {
	t.Helper()
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:    "foreign_pass",
		Type:    ebpf.XDP,
		License: "MIT",
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, xdpPass),
			asm.Return(),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestXDPRefusesForeignProgram(t *testing.T) {
	for _, how := range []string{"bpf_link", "netlink"} {
		t.Run(how, func(t *testing.T) {
			v := newVethNet(t)
			foreign := passProgram(t)
			var l link.Link
			err := netns.Do(v.ServerNS, func() error {
				ifi, err := net.InterfaceByName(v.ServerIf)
				if err != nil {
					return err
				}
				if how == "netlink" {
					return setXDPNetlink(ifi.Index, foreign.FD(), unix.XDP_FLAGS_DRV_MODE)
				}
				l, err = link.AttachXDP(link.XDPOptions{Program: foreign, Interface: ifi.Index, Flags: link.XDPDriverMode})
				return err
			})
			if err != nil {
				t.Fatalf("attach foreign program: %v", err)
			}
			if l != nil {
				t.Cleanup(func() { l.Close() })
			}
			info, err := foreign.Info()
			if err != nil {
				t.Fatal(err)
			}
			fid, _ := info.ID()

			_, err = v.openXDP(t, XDPConfig{Frames: 256, RingSize: 128})
			if !errors.Is(err, ErrXDPBusy) {
				t.Fatalf("OpenXDP over a foreign program: %v, want ErrXDPBusy", err)
			}
			t.Logf("refusal: %v", err)
			for _, want := range []string{v.ServerIf, fmt.Sprintf("id %d", fid), "foreign_pass", "Replace"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if got := v.xdpProgOn(t); got != uint32(fid) {
				t.Fatalf("after refusal the interface runs program %d, want the foreign %d", got, fid)
			}

			x, err := v.openXDP(t, XDPConfig{Frames: 256, RingSize: 128, Replace: true})
			if err != nil {
				t.Fatalf("OpenXDP with Replace: %v", err)
			}
			got := v.xdpProgOn(t)
			if got == 0 || got == uint32(fid) {
				t.Fatalf("after Replace the interface runs program %d (foreign was %d)", got, fid)
			}
			if err := x.Close(); err != nil {
				t.Fatal(err)
			}
			if got := v.xdpProgOn(t); got != 0 {
				t.Errorf("after Close the interface still runs program %d", got)
			}
		})
	}
}

const helperEnv = "RINGDNS_XDP_HELPER_IFACE"

// TestXDPHelperProcess is not a test: TestXDPKillLeavesNothing runs the test
// binary again inside the server namespace with this test selected, to hold
// an attachment in a process it can kill.
func TestXDPHelperProcess(t *testing.T) {
	iface := os.Getenv(helperEnv)
	if iface == "" {
		t.Skip("helper process for TestXDPKillLeavesNothing; runs only when re-executed by it")
	}
	x, err := OpenXDP(XDPConfig{Interface: iface, Frames: 256, RingSize: 128})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("ready", x.Mode())
	// Wait to be killed, but never longer than this.
	time.Sleep(30 * time.Second)
	os.Exit(2)
}

func TestXDPKillLeavesNothing(t *testing.T) {
	v := newVethNet(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", v.ServerNS, exe, "-test.run=^TestXDPHelperProcess$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"="+v.ServerIf)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Kill by PID only if still running (ip netns exec execs the test
		// binary, so the PID is the helper's).
		cmd.Process.Kill()
		cmd.Wait()
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "ready") || strings.HasPrefix(l, "error") {
				lines <- l
				break
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case l := <-lines:
		if !strings.HasPrefix(l, "ready") {
			t.Fatalf("helper: %s", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("helper did not attach within 10 s")
	}
	show := netnstest.Run(t, "ip", "-n", v.ServerNS, "-d", "link", "show", "dev", v.ServerIf)
	if !strings.Contains(show, "prog/xdp") {
		t.Fatalf("helper attached but ip -d link show has no XDP program:\n%s", show)
	}
	if err := cmd.Process.Signal(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	deadline := time.Now().Add(3 * time.Second)
	for {
		show = netnstest.Run(t, "ip", "-n", v.ServerNS, "-d", "link", "show", "dev", v.ServerIf)
		if !strings.Contains(show, "prog/xdp") && !strings.Contains(show, " xdp") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("XDP program still attached 3 s after kill -9:\n%s", show)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// BenchmarkXDPEcho measures the echo responder over the veth pair: b.N
// datagrams in flight windows of 8 per client socket, half IPv4, half IPv6.
// The client's syscalls and both sides' kernel work share the machine's
// CPUs, so the figure bounds the whole path, not the port alone. Run it
// bounded, e.g. -bench XDPEcho -benchtime 100000x.
func BenchmarkXDPEcho(b *testing.B) {
	v := newVethNet(b)
	x, err := v.openXDP(b, XDPConfig{Mode: "driver", Frames: 2048, RingSize: 1024, BusyPoll: os.Getenv("XDP_BENCH_BUSYPOLL") != ""})
	if err != nil {
		b.Fatalf("OpenXDP: %v", err)
	}
	e := startEcho(x)
	defer e.stop(b, x)
	c4 := v.newClients(b, netip.MustParseAddrPort("198.18.0.1:53"), 16)
	c6 := v.newClients(b, netip.MustParseAddrPort("[fd53::1]:53"), 16)
	fds := append(append([]int(nil), c4.fds...), c6.fds...)
	q := make([]byte, 40)
	r := make([]byte, 2048)
	const window = 8
	deadline := time.Now().Add(60 * time.Second)
	b.ReportAllocs()
	b.ResetTimer()
	sent, got := 0, 0
	for sent < b.N && time.Now().Before(deadline) {
		for _, fd := range fds {
			for w := 0; w < window && sent < b.N; w++ {
				if _, err := unix.Write(fd, q); err == nil {
					sent++
				}
			}
		}
		for _, fd := range fds {
			for w := 0; w < window; w++ {
				if _, err := unix.Read(fd, r); err != nil {
					break
				}
				got++
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(got)/float64(max(sent, 1)), "echoed/sent")
	var st [2]XDPStats
	for i, p := range x.Ports() {
		st[i], _ = p.Stats()
	}
	b.Logf("sent %d echoed %d; queue 0 rx %d tx %d, queue 1 rx %d tx %d, rx dropped %d+%d",
		sent, got, st[0].RxPackets, st[0].TxPackets, st[1].RxPackets, st[1].TxPackets,
		st[0].RxDropped+st[0].RxRingFull, st[1].RxDropped+st[1].RxRingFull)
}

// TestXDPSendErrors checks that a reply longer than its frame is dropped,
// not sent, and counted in both Stats and SendErrors, the count the data
// plane worker publishes as its send errors; the frame goes back to the
// port, so the next datagrams still arrive.
func TestXDPSendErrors(t *testing.T) {
	v := newVethNet(t)
	x, err := v.openXDP(t, XDPConfig{Mode: "driver", Queues: []int{0, 1}, Frames: 256, RingSize: 128})
	if err != nil {
		t.Fatalf("OpenXDP: %v", err)
	}
	const datagrams = 8
	var got atomic.Int64
	var wg sync.WaitGroup
	for _, p := range x.Ports() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pkts := make([]Packet, 16)
			for {
				n, err := p.Receive(pkts)
				if err != nil {
					return
				}
				for i := range pkts[:n] {
					pkts[i].Len = len(pkts[i].Buf) + 1
				}
				if n > 0 {
					if err := p.Send(pkts[:n]); err != nil {
						t.Errorf("Send: %v", err)
						return
					}
					got.Add(int64(n))
				}
			}
		}()
	}
	defer func() {
		x.Close()
		wg.Wait()
	}()
	c := v.newClients(t, netip.MustParseAddrPort("198.18.0.1:53"), datagrams)
	q := make([]byte, 32)
	for _, fd := range c.fds {
		if _, err := unix.Write(fd, q); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for got.Load() < datagrams && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	var sendErrs, badLen, tx uint64
	for _, p := range x.Ports() {
		st, err := p.Stats()
		if err != nil {
			t.Fatal(err)
		}
		sendErrs += p.SendErrors()
		badLen += st.TxBadLen
		tx += st.TxPackets
	}
	if got.Load() != datagrams || sendErrs != datagrams || badLen != datagrams || tx != 0 {
		t.Errorf("%d datagrams received, %d send errors, %d too long, %d sent; want %d, %d, %d, 0",
			got.Load(), sendErrs, badLen, tx, datagrams, datagrams, datagrams)
	}
	// Nothing came back to the clients.
	r := make([]byte, 2048)
	unix.SetNonblock(c.fds[0], true)
	if n, err := unix.Read(c.fds[0], r); err == nil {
		t.Errorf("client got %d bytes back, want nothing", n)
	}
}

// TestXDPFrameDrops sends, among echoed queries, datagrams that the XDP
// program redirects but ParseFrame refuses: to the subnet's broadcast
// address, which arrives in an Ethernet broadcast frame. Receive must drop
// and count them (FrameDrops, RxNotQuery) without handing them to the
// worker, and the queries around them must still be answered.
func TestXDPFrameDrops(t *testing.T) {
	v := newVethNet(t)
	x, err := v.openXDP(t, XDPConfig{Mode: "driver", Frames: 256, RingSize: 128})
	if err != nil {
		t.Fatalf("OpenXDP: %v", err)
	}
	e := startEcho(x)
	defer e.stop(t, x)
	const broadcasts = 3
	err = netns.Do(v.ClientNS, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1); err != nil {
			return err
		}
		to := &unix.SockaddrInet4{Port: 53, Addr: [4]byte{198, 18, 0, 255}}
		for range broadcasts {
			if err := unix.Sendto(fd, make([]byte, 32), 0, to); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("broadcast from the client namespace: %v", err)
	}
	c := v.newClients(t, netip.MustParseAddrPort("198.18.0.1:53"), 4)
	q, r := make([]byte, 32), make([]byte, 2048)
	if sent, ok := c.exchange(2, time.Now().Add(10*time.Second), q, r); sent != 8 || ok != 8 {
		t.Errorf("%d sent, %d echoed, want 8", sent, ok)
	}
	// The broadcasts went out before the queries, on the same link; the
	// wait covers only their way through a loaded machine's softirqs.
	var drops, notQuery uint64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		drops, notQuery = 0, 0
		for _, p := range x.Ports() {
			st, err := p.Stats()
			if err != nil {
				t.Fatal(err)
			}
			drops += p.FrameDrops()
			notQuery += st.RxNotQuery
		}
		if drops >= broadcasts {
			break
		}
	}
	if drops != broadcasts || notQuery != broadcasts {
		t.Errorf("%d frames dropped (%d in the stats), want %d", drops, notQuery, broadcasts)
	}
	if got := e.replies[0].Load() + e.replies[1].Load(); got != 8 {
		t.Errorf("the responder answered %d packets, want the 8 queries", got)
	}
}
