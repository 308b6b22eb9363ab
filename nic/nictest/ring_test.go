package nictest

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"

	"github.com/ringdns/ringdns/internal/onessum"
	"github.com/ringdns/ringdns/nic"
)

// TestRingReplays checks that a Ring hands out copies of its packets in
// order and around again, rotating through its buffers, and that Send sees
// every reply with the index of the packet it answers.
func TestRingReplays(t *testing.T) {
	packets := [][]byte{{1}, {2, 2}, {3, 3, 3}}
	var seen []int
	var lens []int
	peer := nic.Addr{Len: 16}
	r := NewRing(RingConfig{Buffers: 4, BufSize: 8, Peer: peer, Inspect: func(i int, p *nic.Packet) {
		seen = append(seen, i)
		lens = append(lens, p.Len)
	}}, packets)
	pkts := make([]nic.Packet, 3)
	var bufs [][]byte
	for round := 0; round < 3; round++ {
		n, err := r.Receive(pkts)
		if err != nil || n != 3 {
			t.Fatalf("Receive = %d, %v", n, err)
		}
		for i := 0; i < n; i++ {
			p := &pkts[i]
			want := packets[(round*3+i)%3]
			if !bytes.Equal(p.Buf[:p.Len], want) || len(p.Buf) != 8 || p.Peer != peer {
				t.Fatalf("round %d packet %d: % x (buffer %d), want % x", round, i, p.Buf[:p.Len], len(p.Buf), want)
			}
			bufs = append(bufs, p.Buf)
			// Answer in place: the first packet of each batch is dropped.
			p.Buf[0] = 0xee
			if i == 0 {
				p.Len = 0
			}
		}
		if err := r.Send(pkts[:n]); err != nil {
			t.Fatal(err)
		}
	}
	// The answers written in place must not leak into the next replay.
	if packets[0][0] != 1 || bytes.Equal(bufs[0][:1], packets[0]) {
		t.Fatal("replayed packets are not copies")
	}
	// Buffers rotate: packet k uses buffer k mod 4.
	if &bufs[0][0] == &bufs[1][0] || &bufs[0][0] != &bufs[4][0] {
		t.Fatal("buffers do not rotate through the ring")
	}
	if want := []int{0, 1, 2, 0, 1, 2, 0, 1, 2}; !equalInts(seen, want) {
		t.Fatalf("Inspect saw packets %v, want %v", seen, want)
	}
	if want := []int{0, 2, 3, 0, 2, 3, 0, 2, 3}; !equalInts(lens, want) {
		t.Fatalf("Inspect saw reply lengths %v, want %v", lens, want)
	}
	if s := r.Stats(); s != (RingStats{Received: 9, Replies: 6, Dropped: 3, Bytes: 15}) {
		t.Fatalf("stats %+v", s)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRingLimitAndClose checks that a limit ends the stream with ErrClosed
// until it is set again, and that Close ends it for good.
func TestRingLimitAndClose(t *testing.T) {
	r := NewRing(RingConfig{Buffers: 8}, [][]byte{{1}})
	pkts := make([]nic.Packet, 4)
	r.SetLimit(6)
	var got []int
	for {
		n, err := r.Receive(pkts)
		if errors.Is(err, nic.ErrClosed) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, n)
		if err := r.Send(pkts[:n]); err != nil {
			t.Fatal(err)
		}
	}
	if !equalInts(got, []int{4, 2}) {
		t.Fatalf("batches %v, want [4 2]", got)
	}
	r.SetLimit(-1)
	if n, err := r.Receive(pkts); n != 4 || err != nil {
		t.Fatalf("after removing the limit: Receive = %d, %v", n, err)
	}
	r.Close()
	if err := r.Send(pkts); !errors.Is(err, nic.ErrClosed) {
		t.Fatalf("Send after Close = %v, want ErrClosed", err)
	}
	if _, err := r.Receive(pkts); !errors.Is(err, nic.ErrClosed) {
		t.Fatalf("Receive after Close = %v, want ErrClosed", err)
	}
	r.SetLimit(-1)
	if _, err := r.Receive(pkts); !errors.Is(err, nic.ErrClosed) {
		t.Fatalf("Receive after Close and SetLimit = %v, want ErrClosed", err)
	}
}

// TestRingContract checks that Send rejects what a real port could not
// survive: a batch of another length, a foreign buffer, a Len past the
// buffer, or a second Receive before Send.
func TestRingContract(t *testing.T) {
	r := NewRing(RingConfig{Buffers: 4, BufSize: 16}, [][]byte{{1, 2, 3}})
	pkts := make([]nic.Packet, 2)
	foreign := make([]byte, 16)
	for name, mutate := range map[string]func([]nic.Packet) []nic.Packet{
		"short batch":    func(p []nic.Packet) []nic.Packet { return p[:1] },
		"foreign buffer": func(p []nic.Packet) []nic.Packet { p[1].Buf = foreign; return p },
		"len past buffer": func(p []nic.Packet) []nic.Packet {
			p[0].Len = 17
			return p
		},
	} {
		n, err := r.Receive(pkts)
		if err != nil || n != 2 {
			t.Fatalf("%s: Receive = %d, %v", name, n, err)
		}
		if err := r.Send(mutate(pkts[:n])); !errors.Is(err, ErrContract) {
			t.Fatalf("%s: Send = %v, want ErrContract", name, err)
		}
	}
	if _, err := r.Receive(pkts); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Receive(pkts); !errors.Is(err, ErrContract) {
		t.Fatalf("second Receive before Send = %v, want ErrContract", err)
	}
}

// TestRingEthernet checks the stand-in for the AF_XDP port: it hands out
// the DNS payloads of its frames with their peers, drops and counts a frame
// that is not a query, tells Inspect which frame each packet came from, and
// turns the replies back into frames addressed to the client.
func TestRingEthernet(t *testing.T) {
	client := netip.MustParseAddrPort("198.18.0.2:40000")
	server := netip.MustParseAddrPort("198.18.0.1:53")
	client6 := netip.MustParseAddrPort("[fd53::2]:40001")
	server6 := netip.MustParseAddrPort("[fd53::1]:53")
	frames := [][]byte{
		Frame(client, server, []byte("query one")),
		Frame(client, netip.MustParseAddrPort("198.18.0.1:54"), []byte("to another port")),
		Frame(client6, server6, []byte("query two")),
	}
	var seen []int
	r := NewRing(RingConfig{Ethernet: true, Buffers: 4, BufSize: 2048, MTU: 1280, Inspect: func(i int, p *nic.Packet) {
		seen = append(seen, i)
	}}, frames)
	pkts := make([]nic.Packet, 3)
	n, err := r.Receive(pkts)
	if err != nil || n != 2 {
		t.Fatalf("Receive = %d, %v; want the 2 queries", n, err)
	}
	for i, want := range []struct {
		payload string
		from    netip.AddrPort
		room    int
	}{{"query one", client, 1280 - 28}, {"query two", client6, 1280 - 48}} {
		p := &pkts[i]
		if string(p.Buf[:p.Len]) != want.payload || p.Peer.AddrPort() != want.from || len(p.Buf) != want.room {
			t.Fatalf("packet %d: %q from %v, room %d; want %q from %v, room %d", i, p.Buf[:p.Len], p.Peer.AddrPort(), len(p.Buf), want.payload, want.from, want.room)
		}
		p.Len = copy(p.Buf, "reply")
		p.Sum = onessum.Sum(p.Buf[:p.Len], 0)
	}
	bufs := [][]byte{r.buf(0), r.buf(2)}
	if err := r.Send(pkts[:n]); err != nil {
		t.Fatal(err)
	}
	if !equalInts(seen, []int{0, 2}) || r.FrameDrops() != 1 {
		t.Fatalf("Inspect saw frames %v with %d dropped, want [0 2] and 1", seen, r.FrameDrops())
	}
	for i, to := range []netip.AddrPort{client, client6} {
		f, ok := nic.ParseFrame(bufs[i][:2048], to.Port())
		if !ok || string(bufs[i][f.Payload:f.Payload+f.PayloadLen]) != "reply" {
			t.Fatalf("reply %d is not a frame to %v holding the reply", i, to)
		}
	}
}

// TestRingAllocs pins Receive and Send to zero allocations, with and
// without Ethernet, so that the ring adds none to an allocation test of
// the worker loop.
func TestRingAllocs(t *testing.T) {
	query := Frame(netip.MustParseAddrPort("198.18.0.2:40000"), netip.MustParseAddrPort("198.18.0.1:53"), []byte{1, 2, 3})
	for _, r := range []*Ring{
		NewRing(RingConfig{}, [][]byte{{1, 2, 3}, {4, 5}}),
		NewRing(RingConfig{Ethernet: true}, [][]byte{query, {4, 5}}),
	} {
		pkts := make([]nic.Packet, 64)
		allocs := testing.AllocsPerRun(100, func() {
			n, err := r.Receive(pkts)
			if err != nil {
				panic(err)
			}
			if err := r.Send(pkts[:n]); err != nil {
				panic(err)
			}
		})
		if allocs != 0 {
			t.Fatalf("Ethernet %v: %v allocations per Receive and Send", r.cfg.Ethernet, allocs)
		}
	}
}
