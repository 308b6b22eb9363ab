package nic

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// listen opens a UDPPort or fails the test; it is closed at cleanup.
func listen(t *testing.T, addr string, batch int) *UDPPort {
	t.Helper()
	p, err := ListenUDP(addr, batch)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestUDPPortEcho(t *testing.T) {
	cases := []struct{ listen, dial string }{
		{"127.0.0.1:0", "127.0.0.1"},
		{"[::1]:0", "::1"},
		// Bound to the wildcard, the reply must come from the address the
		// query was sent to, or the connected client would not accept it.
		{"0.0.0.0:0", "127.0.0.2"},
		{"[::]:0", "::1"},
	}
	for _, c := range cases {
		t.Run(c.listen+"->"+c.dial, func(t *testing.T) {
			p := listen(t, c.listen, 8)
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

// TestUDPPortPeer checks that Peer decodes to the client's address.
func TestUDPPortPeer(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		p := listen(t, addr, 4)
		cl := dial(t, p.LocalAddr())
		if _, err := cl.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		pkts := make([]Packet, 4)
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
		if len(pkts[0].Buf) != UDPSlotSize || pkts[0].Len != 1 {
			t.Fatalf("packet Buf %d bytes, Len %d", len(pkts[0].Buf), pkts[0].Len)
		}
		pkts[0].Len = 0
		if err := p.Send(pkts[:n]); err != nil {
			t.Fatal(err)
		}
	}
}

// TestUDPPortBatch queues several datagrams before receiving: one Receive
// takes them all.
func TestUDPPortBatch(t *testing.T) {
	p := listen(t, "127.0.0.1:0", 8)
	cl := dial(t, p.LocalAddr())
	for i := 0; i < 5; i++ {
		if _, err := cl.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond) // loopback delivery is synchronous; this is margin
	pkts := make([]Packet, 8)
	n, err := receiveSome(p, pkts)
	if err != nil || n != 5 {
		t.Fatalf("Receive = %d, %v; want all 5 queued datagrams", n, err)
	}
	for i := range pkts[:n] {
		if pkts[i].Len != 1 || pkts[i].Buf[0] != byte(i) {
			t.Fatalf("packet %d: % x", i, pkts[i].Buf[:pkts[i].Len])
		}
	}
	if err := p.Send(pkts[:n-1]); !errors.Is(err, ErrSendMismatch) {
		t.Fatalf("Send of a shorter batch = %v, want ErrSendMismatch", err)
	}
}

func TestUDPPortIdleAndClose(t *testing.T) {
	p := listen(t, "127.0.0.1:0", 4)
	pkts := make([]Packet, 4)
	start := time.Now()
	n, err := p.Receive(pkts)
	if n != 0 || err != nil {
		t.Fatalf("idle Receive = %d, %v", n, err)
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Fatalf("idle Receive took %v, the contract allows 200ms", d)
	}

	// Close from another goroutine while Receive waits in the kernel.
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
	// shutdown(2) wakes the blocked call at once; the receive timeout would
	// take up to 100ms.
	if d := returned.Sub(closedAt); d > 50*time.Millisecond {
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
	// The descriptor is closed once nothing uses it.
	if _, err := unix.FcntlInt(uintptr(p.fd), unix.F_GETFD, 0); !errors.Is(err, unix.EBADF) {
		t.Errorf("fd %d still open after Close (F_GETFD: %v)", p.fd, err)
	}
}

func TestUDPPortTruncatedAndSendErrors(t *testing.T) {
	p := listen(t, "127.0.0.1:0", 8)
	cl := dial(t, p.LocalAddr())
	if _, err := cl.Write(make([]byte, UDPSlotSize+1)); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Write([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Write([]byte("two")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	pkts := make([]Packet, 8)
	n, err := receiveSome(p, pkts)
	if err != nil || n != 2 {
		t.Fatalf("Receive = %d, %v; want the 2 datagrams that fit", n, err)
	}
	if p.Truncated() != 1 {
		t.Fatalf("Truncated = %d", p.Truncated())
	}
	// The first reply goes to the limited broadcast address, which the
	// kernel refuses without SO_BROADCAST; the second must still be sent.
	pkts[0].Peer = AddrFrom(netip.MustParseAddrPort("255.255.255.255:9"))
	if err := p.Send(pkts[:n]); err != nil {
		t.Fatal(err)
	}
	if p.SendErrors() != 1 {
		t.Fatalf("SendErrors = %d, want 1", p.SendErrors())
	}
	cl.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 64)
	m, err := cl.Read(buf)
	if err != nil || string(buf[:m]) != "two" {
		t.Fatalf("read %q, %v", buf[:m], err)
	}
}

func TestListenUDPErrors(t *testing.T) {
	for _, c := range []struct {
		addr  string
		batch int
	}{
		{"localhost:53", 8},
		{":53", 8},
		{"127.0.0.1:0", 0},
		{"127.0.0.1:0", 5000},
	} {
		if p, err := ListenUDP(c.addr, c.batch); err == nil {
			p.Close()
			t.Errorf("ListenUDP(%q, %d) succeeded", c.addr, c.batch)
		}
	}
}

func BenchmarkUDPPortRoundTrip(b *testing.B) {
	p, err := ListenUDP("127.0.0.1:0", 64)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	to := p.LocalAddr()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: int(to.Port()), Addr: to.Addr().As4()}); err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, 40)
	reply := make([]byte, 64)
	pkts := make([]Packet, 64)
	const burst = 32
	b.ReportAllocs()
	for b.Loop() {
		for i := 0; i < burst; i++ {
			unix.Write(fd, msg)
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
			unix.Read(fd, reply)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*burst), "ns/packet")
}
