package nic

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"
)

// This file tests ConnPort, the kernel-socket port of FreeBSD and macOS, on
// every system, Linux included, where ListenUDP opens the recvmmsg port
// instead (udp_linux_test.go). It also holds the helpers both ports' tests
// share.

// serveEcho answers every datagram with its bytes reversed until the port
// is closed, and reports the loop's end on the returned channel.
func serveEcho(p Port) <-chan error {
	done := make(chan error, 1)
	go func() {
		pkts := make([]Packet, 16)
		for {
			n, err := p.Receive(pkts)
			if err != nil {
				done <- err
				return
			}
			for i := range pkts[:n] {
				b := pkts[i].Buf[:pkts[i].Len]
				for l, r := 0, len(b)-1; l < r; l, r = l+1, r-1 {
					b[l], b[r] = b[r], b[l]
				}
			}
			if err := p.Send(pkts[:n]); err != nil {
				done <- err
				return
			}
		}
	}()
	return done
}

func dial(t *testing.T, to netip.AddrPort) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// exchange sends msg and waits up to a second for the reply.
func exchange(t *testing.T, c *net.UDPConn, msg []byte) []byte {
	t.Helper()
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 8192)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no reply from %s: %v", c.RemoteAddr(), err)
	}
	return buf[:n]
}

func reversed(b []byte) []byte {
	r := make([]byte, len(b))
	for i := range b {
		r[len(b)-1-i] = b[i]
	}
	return r
}

// receiveSome calls Receive until it returns packets or an error, for at
// most two seconds.
func receiveSome(p Port, pkts []Packet) (int, error) {
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		n, err := p.Receive(pkts)
		if n > 0 || err != nil {
			return n, err
		}
	}
	return 0, errors.New("no packet in 2s")
}

// listenConn opens a ConnPort or fails the test; it is closed at cleanup.
func listenConn(t *testing.T, addr string) *ConnPort {
	t.Helper()
	p, err := ListenUDPConn(addr, 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestConnPortEcho(t *testing.T) {
	cases := []struct{ listen, dial string }{
		{"127.0.0.1:0", "127.0.0.1"},
		{"[::1]:0", "::1"},
		{"0.0.0.0:0", "127.0.0.1"},
		{"[::]:0", "::1"},
	}
	if runtime.GOOS == "linux" {
		// Bound to the wildcard, the reply must come from the address the
		// query was sent to, or the connected client would not accept it:
		// Linux routes all of 127/8 to loopback, so a query to 127.0.0.2
		// whose reply left from 127.0.0.1 would go unanswered.
		cases = append(cases, struct{ listen, dial string }{"0.0.0.0:0", "127.0.0.2"})
	}
	for _, c := range cases {
		t.Run(c.listen+"->"+c.dial, func(t *testing.T) {
			p := listenConn(t, c.listen)
			if p.LocalAddr().Port() == 0 {
				t.Fatalf("LocalAddr %s has no port", p.LocalAddr())
			}
			done := serveEcho(p)
			cl := dial(t, netip.AddrPortFrom(netip.MustParseAddr(c.dial), p.LocalAddr().Port()))
			for _, msg := range [][]byte{[]byte("hello, ringdns"), {1}, bytes.Repeat([]byte{7, 8, 9}, 1000)} {
				if got := exchange(t, cl, msg); !bytes.Equal(got, reversed(msg)) {
					t.Fatalf("reply %q, want %q", got, reversed(msg))
				}
			}
			if p.SendErrors() != 0 {
				t.Fatalf("SendErrors = %d", p.SendErrors())
			}
			p.Close()
			select {
			case err := <-done:
				if !errors.Is(err, ErrClosed) {
					t.Fatalf("serving ended with %v, want ErrClosed", err)
				}
			case <-time.After(time.Second):
				t.Fatal("Receive did not return after Close")
			}
		})
	}
}

// TestConnPortPeer checks that Peer is the client's address in Addr's
// layout, and that a reply goes to the Peer the worker leaves in the
// packet: the sender, or another address written over it.
func TestConnPortPeer(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		p := listenConn(t, addr)
		cl, other := dial(t, p.LocalAddr()), dial(t, p.LocalAddr())
		pkts := make([]Packet, 4)
		for i, to := range []*net.UDPConn{cl, other} {
			if _, err := cl.Write([]byte{byte(i)}); err != nil {
				t.Fatal(err)
			}
			n, err := receiveSome(p, pkts)
			if err != nil || n != 1 {
				t.Fatalf("Receive = %d, %v", n, err)
			}
			want := cl.LocalAddr().(*net.UDPAddr).AddrPort()
			if got := pkts[0].Peer.AddrPort(); got != want {
				t.Fatalf("Peer %s, want %s", got, want)
			}
			if got := AddrFrom(want); got != pkts[0].Peer {
				t.Fatalf("AddrFrom(%s) = %+v, want %+v", want, got, pkts[0].Peer)
			}
			if len(pkts[0].Buf) != UDPSlotSize || pkts[0].Len != 1 || pkts[0].Buf[0] != byte(i) {
				t.Fatalf("packet Buf %d bytes, Len %d", len(pkts[0].Buf), pkts[0].Len)
			}
			pkts[0].Peer = AddrFrom(to.LocalAddr().(*net.UDPAddr).AddrPort())
			if err := p.Send(pkts[:n]); err != nil {
				t.Fatal(err)
			}
			to.SetReadDeadline(time.Now().Add(time.Second))
			buf := make([]byte, 16)
			if m, err := to.Read(buf); err != nil || m != 1 || buf[0] != byte(i) {
				t.Fatalf("%s: reply % x, %v", to.LocalAddr(), buf[:m], err)
			}
		}
	}
}

// TestConnPortOneAtATime queues datagrams before receiving: each Receive
// hands out one, in order, and Send takes back exactly the packets of the
// Receive before it.
func TestConnPortOneAtATime(t *testing.T) {
	p := listenConn(t, "127.0.0.1:0")
	cl := dial(t, p.LocalAddr())
	for i := 0; i < 3; i++ {
		if _, err := cl.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	pkts := make([]Packet, 8)
	for i := 0; i < 3; i++ {
		n, err := receiveSome(p, pkts)
		if err != nil || n != 1 || pkts[0].Len != 1 || pkts[0].Buf[0] != byte(i) {
			t.Fatalf("Receive %d = %d, %v (% x)", i, n, err, pkts[0].Buf[:pkts[0].Len])
		}
		var err2 error
		switch i {
		case 0:
			err2 = p.Send(pkts[:0])
		case 1:
			err2 = p.Send(pkts[:2])
		default:
			pkts[0].Len = 0
			if err := p.Send(pkts[:1]); err != nil {
				t.Fatalf("Send = %v", err)
			}
			if err := p.Send(pkts[:1]); !errors.Is(err, ErrSendMismatch) {
				t.Fatalf("a second Send of the same packet = %v, want ErrSendMismatch", err)
			}
			continue
		}
		if !errors.Is(err2, ErrSendMismatch) {
			t.Fatalf("Send of %d packets after a Receive of 1 = %v, want ErrSendMismatch", i*2, err2)
		}
	}
}

// TestConnPortIdleAndClose checks that an idle Receive returns no packets
// within the Port contract's interval, and that Close ends a waiting
// Receive. The bounds are a second, not the contract's 200 ms, so that a
// loaded machine cannot fail the test; a port that ignored its deadline or
// Close would wait forever and still fail it.
func TestConnPortIdleAndClose(t *testing.T) {
	p := listenConn(t, "127.0.0.1:0")
	pkts := make([]Packet, 4)
	start := time.Now()
	n, err := p.Receive(pkts)
	if n != 0 || err != nil {
		t.Fatalf("idle Receive = %d, %v", n, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("idle Receive took %v", d)
	}
	if err := p.Send(pkts[:0]); err != nil {
		t.Fatalf("Send after an idle Receive = %v", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	var closedAt time.Time
	go func() {
		defer wg.Done()
		time.Sleep(30 * time.Millisecond)
		closedAt = time.Now()
		p.Close()
	}()
	for {
		n, err = p.Receive(pkts)
		if err != nil || n != 0 {
			break
		}
	}
	returned := time.Now()
	wg.Wait()
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("Receive after Close = %d, %v", n, err)
	}
	if d := returned.Sub(closedAt); d > time.Second {
		t.Errorf("Receive returned %v after Close", d)
	}
	if _, err := p.Receive(pkts); !errors.Is(err, ErrClosed) {
		t.Fatalf("Receive on a closed port = %v", err)
	}
	if err := p.Send(pkts[:0]); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send on a closed port = %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

// udpListener is what the tests below need of a kernel-socket port.
type udpListener interface {
	Port
	LocalAddr() netip.AddrPort
	SendErrors() uint64
	Close() error
}

// kernelPorts are the two kernel-socket ports: ListenUDP's (recvmmsg on
// Linux; the ConnPort elsewhere) and the ConnPort, which Linux builds and
// tests too although it serves there only in tests. The tests that hold
// both to one contract run over each.
var kernelPorts = []struct {
	name   string
	listen func(addr string, batch int) (udpListener, error)
}{
	{"ListenUDP", func(addr string, batch int) (udpListener, error) { return ListenUDP(addr, batch) }},
	{"ListenUDPConn", func(addr string, batch int) (udpListener, error) { return ListenUDPConn(addr, batch) }},
}

// TestPortCloseRace closes ports while their owners receive and send
// under load from a client; run it with -race.
func TestPortCloseRace(t *testing.T) {
	for _, kind := range kernelPorts {
		t.Run(kind.name, func(t *testing.T) {
			for i := 0; i < 10; i++ {
				p, err := kind.listen("127.0.0.1:0", 8)
				if err != nil {
					t.Fatal(err)
				}
				done := serveEcho(p)
				cl := dial(t, p.LocalAddr())
				stop := make(chan struct{})
				var wg sync.WaitGroup
				wg.Add(1)
				go func() {
					defer wg.Done()
					// At most 2000 datagrams, and never past stop.
					for j := 0; j < 2000; j++ {
						select {
						case <-stop:
							return
						default:
						}
						cl.Write([]byte("q"))
					}
				}()
				time.Sleep(time.Duration(i) * time.Millisecond)
				var cw sync.WaitGroup
				for k := 0; k < 3; k++ {
					cw.Add(1)
					go func() { defer cw.Done(); p.Close() }()
				}
				cw.Wait()
				select {
				case err := <-done:
					if !errors.Is(err, ErrClosed) {
						t.Fatalf("serving ended with %v", err)
					}
				case <-time.After(time.Second):
					t.Fatal("serving did not end after Close")
				}
				close(stop)
				wg.Wait()
			}
		})
	}
}

// TestPortReusePort binds two ports to one address: both bind, every
// query is answered, and where the system spreads an address's datagrams
// over its sockets (UDPSpreads) both ports serve some.
func TestPortReusePort(t *testing.T) {
	for _, kind := range kernelPorts {
		t.Run(kind.name, func(t *testing.T) {
			listen := func(addr string) udpListener {
				p, err := kind.listen(addr, 8)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { p.Close() })
				return p
			}
			a := listen("127.0.0.1:0")
			b := listen(a.LocalAddr().String())
			if a.LocalAddr() != b.LocalAddr() {
				t.Fatalf("bound to %s and %s", a.LocalAddr(), b.LocalAddr())
			}
			var mu sync.Mutex
			served := map[udpListener]int{}
			for _, p := range []udpListener{a, b} {
				go func() {
					pkts := make([]Packet, 8)
					for {
						n, err := p.Receive(pkts)
						if err != nil {
							return
						}
						mu.Lock()
						served[p] += n
						mu.Unlock()
						if p.Send(pkts[:n]) != nil {
							return
						}
					}
				}()
			}
			// The kernel picks a socket by a hash of the client's address
			// and port; 32 clients all landing on one of two sockets has
			// probability 2^-31 where it spreads them.
			for i := 0; i < 32; i++ {
				cl := dial(t, a.LocalAddr())
				if got := exchange(t, cl, []byte{byte(i)}); !bytes.Equal(got, []byte{byte(i)}) {
					t.Fatalf("reply % x", got)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if served[a]+served[b] != 32 || UDPSpreads && (served[a] == 0 || served[b] == 0) {
				t.Fatalf("served %d and %d of 32 queries (the system spreads them: %v)", served[a], served[b], UDPSpreads)
			}
		})
	}
}

// TestConnPortTruncatedAndSendErrors checks that a datagram larger than a
// slot is dropped and counted, and that a reply the kernel refuses is
// counted without failing Send.
func TestConnPortTruncatedAndSendErrors(t *testing.T) {
	p := listenConn(t, "127.0.0.1:0")
	cl := dial(t, p.LocalAddr())
	for _, msg := range [][]byte{make([]byte, UDPSlotSize+1), []byte("ok"), []byte("two")} {
		if _, err := cl.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	pkts := make([]Packet, 8)
	n, err := receiveSome(p, pkts)
	if err != nil || n != 1 || string(pkts[0].Buf[:pkts[0].Len]) != "ok" {
		t.Fatalf("Receive = %d, %v; want the first datagram that fits", n, err)
	}
	if p.Truncated() != 1 {
		t.Fatalf("Truncated = %d", p.Truncated())
	}
	// The reply goes to the limited broadcast address, which the kernel
	// refuses without SO_BROADCAST; the next one must still be sent.
	pkts[0].Peer = AddrFrom(netip.MustParseAddrPort("255.255.255.255:9"))
	if err := p.Send(pkts[:n]); err != nil {
		t.Fatal(err)
	}
	if p.SendErrors() != 1 {
		t.Fatalf("SendErrors = %d, want 1", p.SendErrors())
	}
	if n, err = receiveSome(p, pkts); err != nil || n != 1 {
		t.Fatalf("Receive = %d, %v", n, err)
	}
	if err := p.Send(pkts[:n]); err != nil {
		t.Fatal(err)
	}
	cl.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 64)
	m, err := cl.Read(buf)
	if err != nil || string(buf[:m]) != "two" {
		t.Fatalf("read %q, %v", buf[:m], err)
	}
}

func TestListenUDPConnErrors(t *testing.T) {
	for _, c := range []struct {
		addr  string
		batch int
	}{
		{"localhost:53", 8},
		{":53", 8},
		{"127.0.0.1:0", 0},
		{"127.0.0.1:0", 5000},
	} {
		if p, err := ListenUDPConn(c.addr, c.batch); err == nil {
			p.Close()
			t.Errorf("ListenUDPConn(%q, %d) succeeded", c.addr, c.batch)
		}
	}
}

// TestPortAllocs pins both kernel-socket ports' Receive and Send to zero
// allocations per packet, on a specific address and on the wildcard, where
// each reply carries a control message with its source address. The client,
// a connected socket of the standard library, allocates nothing either.
func TestPortAllocs(t *testing.T) {
	for _, kind := range kernelPorts {
		for _, addr := range []string{"127.0.0.1:0", "[::]:0"} {
			p, err := kind.listen(addr, 16)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { p.Close() })
			local := p.LocalAddr()
			if local.Addr().IsUnspecified() {
				local = netip.AddrPortFrom(netip.IPv6Loopback(), local.Port())
			}
			cl := dial(t, local)
			cl.SetReadDeadline(time.Now().Add(10 * time.Second)) // a lost reply fails the run, not the test binary's timeout
			msg := []byte("allocation-free")
			reply := make([]byte, 64)
			pkts := make([]Packet, 16)
			allocs := testing.AllocsPerRun(200, func() {
				for i := 0; i < 4; i++ {
					if _, err := cl.Write(msg); err != nil {
						panic(err)
					}
				}
				for got := 0; got < 4; {
					n, err := p.Receive(pkts)
					if err != nil {
						panic(err)
					}
					got += n
					if err := p.Send(pkts[:n]); err != nil {
						panic(err)
					}
				}
				for i := 0; i < 4; i++ {
					if _, err := cl.Read(reply); err != nil {
						panic(err)
					}
				}
			})
			if allocs != 0 {
				t.Errorf("%s on %s: %v allocations per 4 packets, want 0", kind.name, addr, allocs)
			}
			if p.SendErrors() != 0 {
				t.Errorf("%s on %s: SendErrors = %d", kind.name, addr, p.SendErrors())
			}
		}
	}
}

func BenchmarkConnPortRoundTrip(b *testing.B) {
	p, err := ListenUDPConn("127.0.0.1:0", 64)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	cl, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(p.LocalAddr()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	msg := make([]byte, 40)
	reply := make([]byte, 64)
	pkts := make([]Packet, 64)
	const burst = 32
	b.ReportAllocs()
	for b.Loop() {
		for i := 0; i < burst; i++ {
			cl.Write(msg)
		}
		for got := 0; got < burst; {
			n, err := p.Receive(pkts)
			if err != nil {
				b.Fatal(err)
			}
			got += n
			p.Send(pkts[:n])
		}
		for i := 0; i < burst; i++ {
			cl.Read(reply)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*burst), "ns/packet")
}

// TestPortSendFrom checks, for both kernel-socket ports, the path of a reply the control plane sends
// for a handed-off query: Destination names the address the query was sent
// to, and SendFrom, from another goroutine after the batch was given back,
// sends from it, so that a connected client (which accepts only its
// server's address) gets it. After Close it returns ErrClosed.
func TestPortSendFrom(t *testing.T) {
	cases := []struct{ listen, dial string }{
		{"127.0.0.1:0", "127.0.0.1"},
		{"[::1]:0", "::1"},
		{"0.0.0.0:0", "127.0.0.2"},
		{"[::]:0", "::1"},
	}
	type replyPort interface {
		udpListener
		Destinations
		ReplySender
	}
	for _, kind := range kernelPorts {
		for _, c := range cases {
			t.Run(kind.name+"/"+c.listen+"->"+c.dial, func(t *testing.T) {
				l, err := kind.listen(c.listen, 8)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { l.Close() })
				p, ok := l.(replyPort)
				if !ok {
					t.Fatalf("%T implements no Destinations or ReplySender", l)
				}
				to := netip.AddrPortFrom(netip.MustParseAddr(c.dial), p.LocalAddr().Port())
				cl := dial(t, to)
				if _, err := cl.Write([]byte("query")); err != nil {
					t.Fatal(err)
				}
				pkts := make([]Packet, 8)
				var n int
				for deadline := time.Now().Add(2 * time.Second); n == 0 && time.Now().Before(deadline); {
					var err error
					if n, err = p.Receive(pkts); err != nil {
						t.Fatal(err)
					}
				}
				if n != 1 {
					t.Fatalf("received %d packets, want 1", n)
				}
				dest, peer := p.Destination(0), pkts[0].Peer
				if got := dest.AddrPort(); got != to {
					t.Errorf("Destination %s, want %s", got, to)
				}
				pkts[0].Len = 0
				if err := p.Send(pkts[:1]); err != nil {
					t.Fatal(err)
				}
				sent := make(chan error, 1)
				go func() { sent <- p.SendFrom([]byte("reply"), peer, dest) }()
				if err := <-sent; err != nil {
					t.Fatal(err)
				}
				cl.SetReadDeadline(time.Now().Add(2 * time.Second))
				buf := make([]byte, 64)
				m, err := cl.Read(buf)
				if err != nil || string(buf[:m]) != "reply" {
					t.Fatalf("client got %q, %v; want the reply from %s", buf[:m], err, to)
				}
				p.Close()
				if err := p.SendFrom([]byte("late"), peer, dest); !errors.Is(err, ErrClosed) {
					t.Errorf("SendFrom after Close: %v, want ErrClosed", err)
				}
			})
		}
	}
}
