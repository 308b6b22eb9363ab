package dataplane

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/internal/onessum"
	"github.com/ringdns/ringdns/nic"
	"github.com/ringdns/ringdns/nic/nictest"
	"github.com/ringdns/ringdns/zone"
)

// workerZone is the zone the worker tests serve. big holds 31 TXT records
// of about 160 bytes, more than any UDP reply may carry, so that its reply is
// bounded by the MTU or the EDNS size, not by the data. t1 to t10 hold 1 to
// 10 such records, so that their replies grow in steps of 166 bytes.
var workerZone = func() string {
	var b strings.Builder
	b.WriteString(`$ORIGIN wk.test.
$TTL 300
@    IN SOA ns1 hostmaster 7 7200 3600 1209600 300
@    IN NS  ns1
ns1  IN A   198.18.0.1
www  IN A   198.18.0.10
www  IN AAAA fd53::10
`)
	for i := 0; i < 31; i++ {
		fmt.Fprintf(&b, "big IN TXT \"%03d%s\"\n", i, strings.Repeat("y", 150))
	}
	for k := 1; k <= 10; k++ {
		for i := 0; i < k; i++ {
			fmt.Fprintf(&b, "t%d IN TXT \"%03d%s\"\n", k, i, strings.Repeat("z", 150))
		}
	}
	return b.String()
}()

// workerSnapshot returns a snapshot pointer holding the worker zone.
func workerSnapshot(t testing.TB) *atomic.Pointer[Snapshot] {
	t.Helper()
	z, err := zone.Parse(strings.NewReader(workerZone), "wk.test.", "worker_test.go")
	if err != nil {
		t.Fatal(err)
	}
	set, err := zone.NewSet([]*zone.Zone{z})
	if err != nil {
		t.Fatal(err)
	}
	var p atomic.Pointer[Snapshot]
	p.Store(NewSnapshot(set, Config{UDPSize: 4096}))
	return &p
}

// packQuery builds a query with miekg/dns; edns 0 means no OPT record.
func packQuery(t testing.TB, id uint16, name string, qtype uint16, edns uint16) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = id
	m.RecursionDesired = false
	if edns != 0 {
		m.SetEdns0(edns, false)
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// startWorker runs w.Run in a goroutine; the returned function closes the
// port and checks that Run returned nil promptly.
func startWorker(t *testing.T, w *Worker) (stop func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- w.Run() }()
	return func() {
		t.Helper()
		w.Port.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Run returned %v after Close, want nil", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Run did not return after Close")
		}
	}
}

// wantAnswer unpacks reply and checks it answers the query id with rcode,
// TC and the number of answer records (-1: any).
func wantAnswer(t *testing.T, reply []byte, id uint16, rcode int, tc bool, answers int) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(reply); err != nil {
		t.Fatalf("reply does not unpack: %v", err)
	}
	if m.Id != id || !m.Response || m.Rcode != rcode || m.Truncated != tc {
		t.Fatalf("reply id %d QR %v rcode %d TC %v, want id %d rcode %d TC %v:\n%v", m.Id, m.Response, m.Rcode, m.Truncated, id, rcode, tc, m)
	}
	if answers >= 0 && len(m.Answer) != answers {
		t.Fatalf("%d answers, want %d:\n%v", len(m.Answer), answers, m)
	}
	return m
}

var peer = nic.AddrFrom(netip.MustParseAddrPort("198.18.0.2:40000"))

func TestWorkerPayload(t *testing.T) {
	port := nictest.New(nictest.Config{})
	var c Counters
	w := &Worker{Port: port, Snapshot: workerSnapshot(t), Counters: &c, CPU: -1}
	stop := startWorker(t, w)

	response := packQuery(t, 4, "www.wk.test.", dns.TypeA, 0)
	response[2] |= 0x80
	inputs := [][]byte{
		packQuery(t, 1, "www.wk.test.", dns.TypeA, 0),
		packQuery(t, 2, "nothere.wk.test.", dns.TypeA, 1232),
		packQuery(t, 3, "www.other.test.", dns.TypeAAAA, 0),
		response,
		{0, 1, 2},
	}
	for _, in := range inputs {
		if err := port.Inject(in, peer); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 4096)
	for i, want := range []struct {
		id    uint16
		rcode int
		ans   int
	}{{1, dns.RcodeSuccess, 1}, {2, dns.RcodeNameError, 0}, {3, dns.RcodeRefused, 0}} {
		n, to, ok := port.Take(buf, 2*time.Second)
		if !ok {
			t.Fatalf("reply %d missing", i)
		}
		if to != peer {
			t.Fatalf("reply addressed to %v, want the query's peer", to.AddrPort())
		}
		m := wantAnswer(t, buf[:n], want.id, want.rcode, false, want.ans)
		if want.ans == 1 {
			if a, ok := m.Answer[0].(*dns.A); !ok || a.A.String() != "198.18.0.10" {
				t.Fatalf("answer %v", m.Answer[0])
			}
		}
	}
	waitCounted(t, &c, uint64(len(inputs)))
	stop()
	v := c.Values()
	if v.Replies != 3 || v.Drops[DropResponse] != 1 || v.Drops[DropShort] != 1 || v.Rcodes[dns.RcodeNameError] != 1 || v.Kinds[KindRefused] != 1 {
		t.Fatalf("counters %+v", v)
	}
	if st := port.Stats(); st.Sent != 3 || st.Dropped != 2 {
		t.Fatalf("port stats %+v", st)
	}
}

// waitCounted waits until the worker has counted n packets: replies are
// taken before the batch's Send returns, counters settle after it.
func waitCounted(t *testing.T, c *Counters, n uint64) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for c.Queries.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("counted %d packets, want %d", c.Queries.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWorkerEthernet serves an Ethernet ring, the stand-in for the AF_XDP
// port: queries over IPv4 and IPv6 are answered, each reply with the sum
// the port finishes its UDP checksum from, and the frames the port drops
// as not queries (to another port, ARP, garbage) are counted as frame drops
// and queries, as the worker counted them when it parsed frames itself.
// The headers themselves are nic's to test (TestHeaders).
func TestWorkerEthernet(t *testing.T) {
	q := packQuery(t, 7, "www.wk.test.", dns.TypeA, 0)
	frames := [][]byte{
		queryFrame(q, false, 40000),
		queryFrame(q, true, 40001),
		nictest.Frame(netip.AddrPortFrom(client4, 40000), netip.AddrPortFrom(server4, 5353), q),
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 2, 0x08, 0x06, 0, 1}, // ARP
		{1, 2, 3},
	}
	replies := 0
	ring := nictest.NewRing(nictest.RingConfig{Ethernet: true, Inspect: func(i int, p *nic.Packet) {
		if i > 1 {
			t.Fatalf("frame %d, which is not a query, reached the worker", i)
		}
		reply := p.Buf[:p.Len]
		wantAnswer(t, reply, 7, dns.RcodeSuccess, false, 1)
		checkSum(t, reply, p.Sum)
		replies++
	}}, frames)
	var c Counters
	w := &Worker{Port: ring, Snapshot: workerSnapshot(t), Counters: &c, CPU: -1}
	var st portState
	st.init(w)
	if err := w.turn(make([]nic.Packet, len(frames)), &st); err != nil {
		t.Fatal(err)
	}
	if v := c.Values(); replies != 2 || v.Replies != 2 || v.Drops[DropFrame] != 3 || v.Queries != 5 {
		t.Fatalf("%d replies inspected, counters %+v", replies, v)
	}
}

// checkSum checks the sum the worker passes to the port with a reply
// against one computed from the reply's bytes; 0 and 0xffff are the same
// number in ones' complement.
func checkSum(t *testing.T, reply []byte, sum uint32) {
	t.Helper()
	if want := onessum.Sum(reply, 0); onessum.Reduce(uint64(sum))%0xffff != want%0xffff {
		t.Fatalf("sum %#04x passed with the reply, the reply's is %#04x", sum, want)
	}
}

// TestWorkerSumWhenUsed checks that the worker builds a reply's sum for a
// port that finishes checksums from it (nic.SumUser, the AF_XDP port) and
// spends nothing on it for the others, which get Sum 0.
func TestWorkerSumWhenUsed(t *testing.T) {
	q := packQuery(t, 1, "www.wk.test.", dns.TypeA, 0)
	for _, uses := range []bool{false, true} {
		var cnt Counters
		w := &Worker{Port: nictest.New(nictest.Config{UsesSum: uses}), Snapshot: workerSnapshot(t), Counters: &cnt, CPU: -1}
		buf := make([]byte, 1232)
		pkts := []nic.Packet{{Buf: buf, Len: copy(buf, q), Peer: peer, Sum: 12345}}
		w.ServeBatch(pkts)
		p := pkts[0]
		if p.Len == 0 {
			t.Fatalf("uses sum %v: no reply", uses)
		}
		if uses {
			checkSum(t, p.Buf[:p.Len], p.Sum)
		} else if p.Sum != 0 {
			t.Fatalf("a port that does not use sums got Sum %#x", p.Sum)
		}
	}
}

// TestWorkerRoom checks that the worker gives the engine exactly the room
// of the packet's buffer, which the port sized to the largest reply it can
// send (the AF_XDP port: the MTU or the frame; nic's TestHeaders checks
// that): every reply of t1 to t10 that fits is sent whole, and every one
// that does not falls back to TC with only the question and the OPT
// record. A limit set too low or too high turns one of them the wrong way.
func TestWorkerRoom(t *testing.T) {
	snap := workerSnapshot(t)
	for _, room := range []int{576 - 28, 1280 - 48, 1024 - 42, 1500 - 48} {
		var cnt Counters
		w := &Worker{Port: nictest.New(nictest.Config{UsesSum: true}), Snapshot: snap, Counters: &cnt, CPU: -1}
		whole := make([]byte, 65535)
		buf := make([]byte, room)
		var fit, truncated int
		for k := 1; k <= 10; k++ {
			name := fmt.Sprintf("t%d.wk.test.", k)
			payload := packQuery(t, uint16(k), name, dns.TypeTXT, 4096)
			// The reply the engine builds with room to spare; over UDP with
			// EDNS 4096 it is the same as long as it fits.
			wn, _ := snap.Load().Answer(whole, payload, true)
			pkts := []nic.Packet{{Buf: buf, Len: copy(buf, payload), Peer: peer}}
			w.ServeBatch(pkts)
			p := pkts[0]
			if p.Len == 0 || p.Len > room {
				t.Fatalf("room %d, %s: reply of %d bytes (counters %+v)", room, name, p.Len, cnt.Values())
			}
			reply := p.Buf[:p.Len]
			checkSum(t, reply, p.Sum)
			if wn <= room {
				fit++
				wantAnswer(t, reply, uint16(k), dns.RcodeSuccess, false, k)
				if !bytes.Equal(reply, whole[:wn]) {
					t.Fatalf("room %d, %s: reply differs from the engine's whole reply", room, name)
				}
			} else {
				truncated++
				m := wantAnswer(t, reply, uint16(k), dns.RcodeSuccess, true, 0)
				if len(m.Ns) != 0 || len(m.Extra) != 1 || m.Extra[0].Header().Rrtype != dns.TypeOPT {
					t.Fatalf("room %d, %s: TC reply holds more than the question and OPT:\n%v", room, name, m)
				}
			}
		}
		// The room must fall between the smallest and the largest reply
		// for the test to tell anything.
		if fit == 0 || truncated == 0 {
			t.Fatalf("room %d: %d replies fit and %d were truncated; the zone does not straddle the room", room, fit, truncated)
		}
		if v := cnt.Values(); v.Replies != 10 || v.TC != uint64(truncated) {
			t.Fatalf("room %d: counters %+v, want 10 replies, %d TC", room, v, truncated)
		}
	}
}

func TestWorkerNoSnapshotAndSendErrors(t *testing.T) {
	port := nictest.New(nictest.Config{})
	var c Counters
	var none atomic.Pointer[Snapshot]
	w := &Worker{Port: port, Snapshot: &none, Counters: &c, CPU: -1}
	stop := startWorker(t, w)
	q := packQuery(t, 1, "www.wk.test.", dns.TypeA, 0)
	for i := 0; i < 3; i++ {
		port.Inject(q, peer)
	}
	waitCounted(t, &c, 3)
	if v := c.Values(); v.Replies != 0 || v.Drops[DropNoSnapshot] != 3 {
		t.Fatalf("without a snapshot: %+v", v)
	}
	if _, _, ok := port.Take(make([]byte, 512), 50*time.Millisecond); ok {
		t.Fatal("a reply without a snapshot")
	}

	// Publishing a snapshot takes effect from the next batch.
	none.Store(workerSnapshot(t).Load())
	port.FailSends(2)
	for i := 0; i < 3; i++ {
		port.Inject(q, peer)
	}
	if _, _, ok := port.Take(make([]byte, 512), 2*time.Second); !ok {
		t.Fatal("no reply once a snapshot is published")
	}
	waitCounted(t, &c, 6)
	stop()
	if v := c.Values(); v.Replies != 3 || v.SendErrs != 2 {
		t.Fatalf("with 2 failed sends: %+v", v)
	}
}

// testQueries builds a batch of queries.
func testQueries(t testing.TB, n int) [][]byte {
	qs := make([][]byte, n)
	for i := range qs {
		qs[i] = packQuery(t, uint16(i), "www.wk.test.", dns.TypeA, 1232)
	}
	return qs
}

// TestWorkerServeBatchAllocs pins a whole batch (the source port check, the
// answer with its sum, counting) to zero allocations.
func TestWorkerServeBatchAllocs(t *testing.T) {
	snap := workerSnapshot(t)
	in := testQueries(t, 16)
	var cnt Counters
	w := &Worker{Port: nictest.New(nictest.Config{}), Snapshot: snap, Counters: &cnt, CPU: -1}
	pkts := make([]nic.Packet, len(in))
	bufs := make([][]byte, len(in))
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	allocs := testing.AllocsPerRun(100, func() {
		for i, q := range in {
			pkts[i] = nic.Packet{Buf: bufs[i], Len: copy(bufs[i], q), Peer: peer}
		}
		w.ServeBatch(pkts)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per batch, want 0", allocs)
	}
	if v := cnt.Values(); v.Replies != v.Queries || v.Replies == 0 {
		t.Errorf("%d replies to %d queries", v.Replies, v.Queries)
	}
}

// TestWorkerLoopAllocs runs the whole loop (Receive, ServeBatch, Send) over
// the fake port and pins it to zero allocations per batch.
func TestWorkerLoopAllocs(t *testing.T) {
	port := nictest.New(nictest.Config{Buffers: 64})
	var c Counters
	w := &Worker{Port: port, Snapshot: workerSnapshot(t), Counters: &c, CPU: -1, Batch: 16}
	stop := startWorker(t, w)
	defer stop()
	queries := testQueries(t, 16)
	buf := make([]byte, 2048)
	allocs := testing.AllocsPerRun(50, func() {
		for _, q := range queries {
			if err := port.Inject(q, peer); err != nil {
				panic(err)
			}
		}
		for range queries {
			if _, _, ok := port.Take(buf, 2*time.Second); !ok {
				panic("reply missing")
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per batch of 16, want 0", allocs)
	}
}

// loopbackPort is a kernel-socket port as TestWorkerLoopback uses it.
type loopbackPort interface {
	nic.Port
	LocalAddr() netip.AddrPort
}

// TestWorkerLoopback serves a kernel-socket port with a Worker and queries
// it with an ordinary DNS client, over IPv4 and IPv6: the port ListenUDP
// opens on this system (recvmmsg on Linux), and ConnPort, the port of
// FreeBSD and macOS, so that Linux runs it through the worker too. The
// worker is pinned where the system can pin.
func TestWorkerLoopback(t *testing.T) {
	snap := workerSnapshot(t)
	cpu := -1
	if nic.CanPinThreads {
		cpu = 0
	}
	listens := []struct {
		name   string
		listen func(addr string, batch int) (loopbackPort, error)
	}{
		{"ListenUDP", func(addr string, batch int) (loopbackPort, error) { return nic.ListenUDP(addr, batch) }},
		{"ListenUDPConn", func(addr string, batch int) (loopbackPort, error) { return nic.ListenUDPConn(addr, batch) }},
	}
	for _, l := range listens {
		for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
			t.Run(l.name+" "+addr, func(t *testing.T) { workerLoopback(t, snap, l.listen, addr, cpu) })
		}
	}
}

// workerLoopback is one case of TestWorkerLoopback: a port listen opens on
// addr, served by a worker on cpu.
func workerLoopback(t *testing.T, snap *atomic.Pointer[Snapshot], listen func(string, int) (loopbackPort, error), addr string, cpu int) {
	port, err := listen(addr, 16)
	if err != nil {
		t.Fatal(err)
	}
	var c Counters
	w := &Worker{Port: port, Snapshot: snap, Counters: &c, CPU: cpu}
	stop := startWorker(t, w)
	cl := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	for i, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSOA} {
		m := new(dns.Msg)
		m.SetQuestion("www.wk.test.", qt)
		if qt == dns.TypeSOA {
			m.SetQuestion("wk.test.", qt)
		}
		r, _, err := cl.Exchange(m, port.LocalAddr().String())
		if err != nil {
			t.Fatalf("%s query %d: %v", addr, i, err)
		}
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 1 || r.Answer[0].Header().Rrtype != qt {
			t.Fatalf("%s: reply %v", addr, r)
		}
	}
	// A large reply over UDP is bounded by the client's EDNS size.
	m := new(dns.Msg)
	m.SetQuestion("big.wk.test.", dns.TypeTXT)
	m.SetEdns0(1232, false)
	cl.UDPSize = 1232
	r, _, err := cl.Exchange(m, port.LocalAddr().String())
	if err != nil {
		t.Fatalf("%s: big: %v", addr, err)
	}
	if r == nil || !r.Truncated || r.Len() > 1232 {
		t.Fatalf("%s: big reply %v", addr, r)
	}
	stop()
	if v := c.Values(); v.Replies != 4 || v.SendErrs != 0 {
		t.Fatalf("%s: counters %+v", addr, v)
	}
	// The client used by miekg/dns is not needed any more; make sure the
	// port's socket is really gone by binding its address exclusively.
	lc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(port.LocalAddr()))
	if err != nil {
		t.Fatalf("%s still bound after Close: %v", port.LocalAddr(), err)
	}
	lc.Close()
}

// BenchmarkWorkerEthernet measures the AF_XDP path's per-packet work on
// batches of 64 Ethernet frames (half IPv4, half IPv6): stripping the
// headers (nic.Headers, as XDPPort's Receive does), ServeBatch, and writing
// the reply headers and checksums (as its Send does). The copy that
// restores each query before its batch is included.
func BenchmarkWorkerEthernet(b *testing.B) {
	snap := workerSnapshot(b)
	queries := testQueries(b, 64)
	frames := make([][]byte, len(queries))
	for i, q := range queries {
		frames[i] = queryFrame(q, i%2 == 1, uint16(40000+i))
	}
	var c Counters
	w := &Worker{Port: nictest.New(nictest.Config{}), Snapshot: snap, Counters: &c, CPU: -1}
	h := nic.NewHeaders(53, 1500, len(frames))
	pkts := make([]nic.Packet, len(frames))
	slab := make([]byte, len(frames)*2048)
	b.ReportAllocs()
	for b.Loop() {
		for i, f := range frames {
			buf := slab[i*2048 : (i+1)*2048]
			h.Strip(i, buf, copy(buf, f), &pkts[i])
		}
		w.ServeBatch(pkts)
		for i := range pkts {
			h.Reply(i, slab[i*2048:(i+1)*2048], &pkts[i])
		}
	}
	if v := c.Values(); v.Replies != v.Queries {
		b.Fatalf("%d replies to %d queries", v.Replies, v.Queries)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(frames)), "ns/packet")
}

// BenchmarkWorkerLoopFake runs the whole loop over the fake port, the
// goroutine handoff of the fake included.
func BenchmarkWorkerLoopFake(b *testing.B) {
	port := nictest.New(nictest.Config{Buffers: 128})
	var c Counters
	w := &Worker{Port: port, Snapshot: workerSnapshot(b), Counters: &c, CPU: -1}
	done := make(chan error, 1)
	go func() { done <- w.Run() }()
	queries := testQueries(b, 64)
	buf := make([]byte, 2048)
	b.ReportAllocs()
	for b.Loop() {
		for _, q := range queries {
			port.Inject(q, peer)
		}
		for range queries {
			if _, _, ok := port.Take(buf, 2*time.Second); !ok {
				b.Fatal("reply missing")
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(queries)), "ns/packet")
	port.Close()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// TestWorkerRootMix runs the worker loop over an Ethernet ring replaying
// the root mix with and without DO and checks every reply against the
// engine's answer to the bare query: the worker must hand the port exactly
// the engine's reply, with its sum.
func TestWorkerRootMix(t *testing.T) {
	_, root := snapshots(t)
	for _, do := range []bool{false, true} {
		frames, queries := rootMixFrames(t, do)
		want := make([]byte, 4096)
		var checked int
		inspect := func(i int, p *nic.Packet) {
			if p.Len == 0 {
				t.Fatalf("DO=%v: query %d dropped", do, i)
			}
			reply := p.Buf[:p.Len]
			n, _ := root.Answer(want, queries[i], false)
			if !bytes.Equal(reply, want[:n]) {
				t.Fatalf("DO=%v: reply %d differs from the engine's:\n% x\n% x", do, i, reply, want[:n])
			}
			checkSum(t, reply, p.Sum)
			checked++
		}
		w, ring, st := rootMixWorker(t, do, frames, inspect)
		pkts := make([]nic.Packet, DefaultBatch)
		for range len(frames) / len(pkts) {
			if err := w.turn(pkts, st); err != nil {
				t.Fatal(err)
			}
		}
		v, s := w.Counters.Values(), ring.Stats()
		if checked != len(frames) || v.Replies != uint64(len(frames)) || s.Replies != v.Replies || s.Bytes <= v.Bytes {
			t.Fatalf("DO=%v: %d checked, counters %+v, ring %+v", do, checked, v, s)
		}
		// The mix holds referrals, NXDOMAIN and apex answers, and with DO
		// every reply carries DO.
		if v.Kinds[KindReferral] == 0 || v.Kinds[KindNXDomain] == 0 || v.Kinds[KindAnswer] == 0 || (do && v.DO != v.Replies) || (!do && v.DO != 0) {
			t.Fatalf("DO=%v: kinds %v, DO %d", do, v.Kinds, v.DO)
		}
	}
}

// TestWorkerRunAllocs pins the worker loop over the root mix to zero
// allocations per packet, first one turn at a time (Receive, ServeBatch,
// Send), then through Run itself: Run allocates its batch slice once, so a
// run of 4096 packets must allocate exactly as much as a run of 64.
func TestWorkerRunAllocs(t *testing.T) {
	for _, do := range []bool{false, true} {
		w, ring, st := rootMixWorker(t, do, nil, nil)
		pkts := make([]nic.Packet, DefaultBatch)
		// 100 runs of 4 batches go through the 4096 queries of the mix
		// six times.
		allocs := testing.AllocsPerRun(100, func() {
			for range 4 {
				if err := w.turn(pkts, st); err != nil {
					panic(err)
				}
			}
		})
		if allocs != 0 {
			t.Errorf("DO=%v: %v allocations per 4 batches of %d, want 0", do, allocs, len(pkts))
		}
		run := func(n int) float64 {
			return testing.AllocsPerRun(5, func() {
				ring.SetLimit(n)
				if err := w.Run(); err != nil {
					panic(err)
				}
			})
		}
		short, long := run(64), run(4096)
		if long != short || short > 1 {
			t.Errorf("DO=%v: Run allocates %v times for 64 packets and %v for 4096, want the same, at most 1", do, short, long)
		}
		if v := w.Counters.Values(); v.Replies != v.Queries {
			t.Errorf("DO=%v: %d replies to %d queries", do, v.Replies, v.Queries)
		}
	}
}

// TestReflectionPorts checks reflectionPort against reflectionPorts for
// every port, and the choices the list's comment argues for by name.
func TestReflectionPorts(t *testing.T) {
	listed := map[uint16]bool{}
	for _, p := range reflectionPorts {
		listed[p] = true
	}
	for p := 0; p <= 65535; p++ {
		if got := reflectionPort(uint16(p)); got != listed[uint16(p)] {
			t.Errorf("reflectionPort(%d) = %v, but the port is listed: %v", p, got, listed[uint16(p)])
		}
	}
	for _, c := range []struct {
		port uint16
		drop bool
		why  string
	}{
		{0, true, "reserved"},
		{7, true, "echo"},
		{13, true, "daytime"},
		{17, true, "qotd"},
		{19, true, "chargen"},
		{37, true, "time"},
		{123, true, "ntp"},
		{1900, true, "ssdp"},
		{11211, true, "memcached"},
		{53, false, "resolvers with a fixed query source port"},
		{5353, false, "mDNS legacy unicast queries"},
		{1023, false, "privileged, not a reflector"},
		{1024, false, "first unprivileged port"},
		{32768, false, "Linux ephemeral range"},
		{49152, false, "Windows and macOS ephemeral range"},
		{65535, false, "last port"},
	} {
		if got := reflectionPort(c.port); got != c.drop {
			t.Errorf("port %d (%s): dropped %v, want %v", c.port, c.why, got, c.drop)
		}
	}
}

// TestWorkerReflectionPorts runs the worker over a kernel-socket-like port
// (the peer given with each payload) and an Ethernet ring standing in for
// the AF_XDP port (the peer taken from each frame), IPv4 and IPv6, with a
// query and a garbage datagram (which would get FORMERR) from each source
// port: those from reflection ports get no reply and are counted as
// reflection-port drops, the others are answered.
func TestWorkerReflectionPorts(t *testing.T) {
	ports := []struct {
		port uint16
		drop bool
	}{{0, true}, {7, true}, {19, true}, {37, true}, {123, true}, {11211, true}, {53, false}, {5353, false}, {40000, false}}
	garbage := []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xc0} // no question, a byte after the header: FORMERR
	for _, ethernet := range []bool{false, true} {
		for _, v6 := range []bool{false, true} {
			name := fmt.Sprintf("ethernet %v v6 %v", ethernet, v6)
			client := client4
			if v6 {
				client = client6
			}
			want := map[uint16]bool{} // the IDs of the replies expected, true for FORMERR
			var payloads [][]byte
			var froms []nic.Addr
			drops := 0
			for i, pc := range ports {
				for k, payload := range [][]byte{packQuery(t, 0, "www.wk.test.", dns.TypeA, 0), garbage} {
					id := uint16(2*i + k + 1)
					payload = append([]byte(nil), payload...)
					binary.BigEndian.PutUint16(payload, id)
					payloads = append(payloads, payload)
					froms = append(froms, nic.AddrFrom(netip.AddrPortFrom(client, pc.port)))
					if pc.drop {
						drops++
					} else {
						want[id] = k == 1
					}
				}
			}
			var c Counters
			replies := map[uint16]byte{} // rcode by ID
			take := func(reply []byte) {
				id := binary.BigEndian.Uint16(reply)
				if _, dup := replies[id]; dup {
					t.Fatalf("%s: reply %d twice", name, id)
				}
				replies[id] = reply[3] & 0xf
			}
			if ethernet {
				frames := make([][]byte, len(payloads))
				for i, q := range payloads {
					frames[i] = queryFrame(q, v6, froms[i].AddrPort().Port())
				}
				ring := nictest.NewRing(nictest.RingConfig{Ethernet: true, Inspect: func(i int, p *nic.Packet) {
					if p.Len > 0 {
						if got := p.Peer.AddrPort(); got != froms[i].AddrPort() {
							t.Fatalf("%s: packet %d from %v, want %v", name, i, got, froms[i].AddrPort())
						}
						take(p.Buf[:p.Len])
					}
				}}, frames)
				w := &Worker{Port: ring, Snapshot: workerSnapshot(t), Counters: &c, CPU: -1}
				var st portState
				st.init(w)
				if err := w.turn(make([]nic.Packet, len(frames)), &st); err != nil {
					t.Fatal(err)
				}
			} else {
				port := nictest.New(nictest.Config{})
				w := &Worker{Port: port, Snapshot: workerSnapshot(t), Counters: &c, CPU: -1}
				stop := startWorker(t, w)
				for i, q := range payloads {
					if err := port.Inject(q, froms[i]); err != nil {
						t.Fatal(err)
					}
				}
				waitCounted(t, &c, uint64(len(payloads)))
				stop()
				buf := make([]byte, 4096)
				for range want {
					n, to, ok := port.Take(buf, time.Second)
					if !ok {
						t.Fatalf("%s: %d replies, want %d", name, port.Stats().Sent, len(want))
					}
					if p := to.AddrPort().Port(); reflectionPort(p) {
						t.Fatalf("%s: reply sent to reflection port %d", name, p)
					}
					take(buf[:n])
				}
			}
			if len(replies) != len(want) {
				t.Fatalf("%s: %d replies, want %d", name, len(replies), len(want))
			}
			for id, formerr := range want {
				rc, ok := replies[id]
				if !ok {
					t.Fatalf("%s: no reply %d", name, id)
				}
				if formerr && rc != dns.RcodeFormatError || !formerr && rc != dns.RcodeSuccess {
					t.Fatalf("%s: reply %d has rcode %d", name, id, rc)
				}
			}
			if v := c.Values(); v.Drops[DropReflection] != uint64(drops) || v.Replies != uint64(len(want)) {
				t.Errorf("%s: %d reflection drops and %d replies, want %d and %d (counters %+v)",
					name, v.Drops[DropReflection], v.Replies, drops, len(want), v)
			}
		}
	}
}
