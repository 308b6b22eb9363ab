package loadgen

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/ringdns/ringdns/internal/onessum"
	"github.com/ringdns/ringdns/nic"
	"github.com/ringdns/ringdns/nic/nictest"
)

var (
	testClientMAC = net.HardwareAddr{0x02, 0x53, 0, 0, 0, 2}
	testServerMAC = net.HardwareAddr{0x02, 0x53, 0, 0, 0, 1}
)

func testLink(v6 bool) Link {
	l := Link{SrcMAC: testClientMAC, DstMAC: testServerMAC, DstPort: 53,
		Src: netip.MustParseAddr("198.18.0.2"), Dst: netip.MustParseAddr("198.18.0.1")}
	if v6 {
		l.Src, l.Dst = netip.MustParseAddr("fd53::2"), netip.MustParseAddr("fd53::1")
	}
	return l
}

const testQueries = `; a comment
www.example. A
example. SOA E
nx.example. AAAA D

# another comment
example. DNSKEY
`

func testFrames(t testing.TB, v6 bool, o Options) *Frames {
	qs, err := ParseQueries(strings.NewReader(testQueries), "test")
	if err != nil {
		t.Fatal(err)
	}
	f, err := BuildFrames(qs, testLink(v6), o)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestParseQueries(t *testing.T) {
	qs, err := ParseQueries(strings.NewReader(testQueries), "test")
	if err != nil {
		t.Fatal(err)
	}
	want := []Query{{"www.example.", dns.TypeA, EDNSDefault}, {"example.", dns.TypeSOA, EDNSOn},
		{"nx.example.", dns.TypeAAAA, EDNSDO}, {"example.", dns.TypeDNSKEY, EDNSDefault}}
	if len(qs) != len(want) {
		t.Fatalf("got %v", qs)
	}
	for i := range want {
		if qs[i] != want[i] {
			t.Errorf("line %d: %+v, want %+v", i, qs[i], want[i])
		}
	}
	for _, bad := range []string{"www.example.\n", "a A X\n", "a NOSUCHTYPE\n", "a A D extra\n", "; only a comment\n", "a..b A\n"} {
		if _, err := ParseQueries(strings.NewReader(bad), "bad.txt"); err == nil || !strings.Contains(err.Error(), "bad.txt") {
			t.Errorf("%q: error %v, want one naming the file", bad, err)
		}
	}
	qs, err = ParseQueries(strings.NewReader("x TYPE65\n"), "t")
	if err != nil || qs[0].Type != 65 {
		t.Errorf("TYPE65: %v %v", qs, err)
	}
}

// checkFrame verifies a query frame from first principles: the IPv4 header
// checksum, the UDP checksum over the pseudo-header, and the DNS message.
func checkFrame(t *testing.T, b []byte, v6 bool, sport, id uint16) *dns.Msg {
	t.Helper()
	l4 := udpOffset(b)
	if l4 < 0 {
		t.Fatalf("not UDP over IP: % x", b)
	}
	ip := b[14:l4]
	var pseudo []byte
	if v6 {
		if binary.BigEndian.Uint16(ip[4:]) != uint16(len(b)-l4) {
			t.Errorf("IPv6 payload length %d, frame has %d", binary.BigEndian.Uint16(ip[4:]), len(b)-l4)
		}
		pseudo = append(append([]byte{}, ip[8:40]...), 0, 0, byte((len(b)-l4)>>8), byte(len(b)-l4), 0, 0, 0, 17)
	} else {
		if c := onessum.Checksum(ip); c != 0 {
			t.Errorf("IPv4 header checksum does not verify (%#x)", c)
		}
		if binary.BigEndian.Uint16(ip[2:]) != uint16(len(b)-14) {
			t.Errorf("IPv4 total length %d, frame has %d", binary.BigEndian.Uint16(ip[2:]), len(b)-14)
		}
		pseudo = append(append([]byte{}, ip[12:20]...), 0, 17, byte((len(b)-l4)>>8), byte(len(b)-l4))
	}
	// A segment with a correct checksum sums to 0xffff with its
	// pseudo-header, so the checksum computed over both is 0.
	if c := onessum.Fold(onessum.Sum(b[l4:], onessum.Sum(pseudo, 0))); c != 0 {
		t.Errorf("UDP checksum does not verify (%#x)", c)
	}
	if binary.BigEndian.Uint16(b[l4+6:]) == 0 {
		t.Error("UDP checksum is zero")
	}
	if got := binary.BigEndian.Uint16(b[l4:]); got != sport {
		t.Errorf("source port %d, want %d", got, sport)
	}
	m := new(dns.Msg)
	if err := m.Unpack(b[l4+8:]); err != nil {
		t.Fatalf("DNS message: %v", err)
	}
	if m.Id != id {
		t.Errorf("ID %d, want %d", m.Id, id)
	}
	return m
}

func TestFrames(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		f := testFrames(t, v6, Options{EDNSSize: 0, RD: true})
		buf := make([]byte, 2048)
		wantDO := []bool{false, false, true, false}
		wantEDNS := []bool{false, true, true, false}
		for i := 0; i < f.Len(); i++ {
			// Checksums of every port and ID value class: 0 and 0xffff
			// exercise the end-around carries.
			for _, pi := range [][2]uint16{{40000, 0}, {65535, 65535}, {1, 1}, {40015, 0x8000}} {
				n := f.Put(buf, i, pi[0], pi[1])
				m := checkFrame(t, buf[:n], v6, pi[0], pi[1])
				if !m.RecursionDesired {
					t.Errorf("frame %d: RD clear", i)
				}
				opt := m.IsEdns0()
				if (opt != nil) != wantEDNS[i] || (opt != nil && opt.Do() != wantDO[i]) || f.DO(i) != wantDO[i] {
					t.Errorf("frame %d: OPT %v, want EDNS %v DO %v", i, opt, wantEDNS[i], wantDO[i])
				}
			}
		}
	}
	// A DO share draws per line, repeatably.
	qs := make([]Query, 1000)
	for i := range qs {
		qs[i] = Query{Name: "x.example.", Type: dns.TypeA}
	}
	a, _ := BuildFrames(qs, testLink(false), Options{DOShare: 0.8, Seed: 7})
	b, _ := BuildFrames(qs, testLink(false), Options{DOShare: 0.8, Seed: 7})
	dos := 0
	for i := range qs {
		if a.DO(i) {
			dos++
		}
		if a.DO(i) != b.DO(i) {
			t.Fatal("DO draw differs between two builds with one seed")
		}
	}
	if dos < 750 || dos > 850 {
		t.Errorf("%d of 1000 queries with DO at a share of 0.8", dos)
	}
	if _, err := BuildFrames(qs, Link{SrcMAC: testClientMAC, DstMAC: testServerMAC, Src: netip.MustParseAddr("198.18.0.2"), Dst: netip.MustParseAddr("fd53::1")}, Options{}); err == nil {
		t.Error("mixed address families accepted")
	}
}

// reflect turns a query frame into its reply in place, as a server would:
// addresses and ports swapped, QR set, the rcode taken from the ID's low
// bits when rcodes is set. The checksums are left as they are: the
// generator does not check them.
func reflect(rcodes bool) func(b []byte, n int) int {
	return func(b []byte, n int) int {
		var mac [6]byte
		copy(mac[:], b[0:6])
		copy(b[0:6], b[6:12])
		copy(b[6:12], mac[:])
		l4 := udpOffset(b[:n])
		if l4 == 14+20 {
			var a [4]byte
			copy(a[:], b[26:30])
			copy(b[26:30], b[30:34])
			copy(b[30:34], a[:])
		} else {
			var a [16]byte
			copy(a[:], b[22:38])
			copy(b[22:38], b[38:54])
			copy(b[38:54], a[:])
		}
		sp, dp := binary.BigEndian.Uint16(b[l4:]), binary.BigEndian.Uint16(b[l4+2:])
		binary.BigEndian.PutUint16(b[l4:], dp)
		binary.BigEndian.PutUint16(b[l4+2:], sp)
		msg := b[l4+8:]
		msg[2] |= 0x80
		if rcodes && msg[1]&1 == 1 {
			msg[3] = msg[3]&0xf0 | 3 // NXDOMAIN on odd IDs
		}
		return n
	}
}

func TestRunLoopback(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		f := testFrames(t, v6, Options{})
		var ports []nic.Originator
		for i := 0; i < 2; i++ {
			ports = append(ports, nictest.New(nictest.Config{Buffers: 512, BufSize: 2048, Loopback: reflect(true)}))
		}
		r, err := NewRun(Config{Count: 10001, Duration: 10 * time.Second, Rate: 200000}, f, ports)
		if err != nil {
			t.Fatal(err)
		}
		r.Start()
		res, err := r.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if res.Sent != 10001 || res.Answered != 10001 || res.Lost != 0 || res.Unmatched != 0 {
			t.Fatalf("%+v", res)
		}
		if res.Queues[0].Sent != 5001 || res.Queues[1].Sent != 5000 {
			t.Errorf("per-thread sends %+v, want the count split 5001/5000", res.Queues)
		}
		// IDs cycle per 16 queries within a thread: of each thread's
		// queries, those numbered 16..31 mod 32 have an odd ID.
		if nx := res.Rcodes["NXDOMAIN"]; nx < 4900 || nx > 5100 {
			t.Errorf("rcodes %v: want about half NXDOMAIN", res.Rcodes)
		}
		// At 200k/s, 10001 queries take 50 ms; the rate is kept on
		// average, so the run cannot be much shorter (it may be longer on
		// a loaded machine).
		if res.Seconds < 0.045 {
			t.Errorf("10001 queries at 200k/s took %.3f s", res.Seconds)
		}
		if res.Latency.Max <= 0 || res.Latency.P50 < res.Latency.Min || res.Latency.P50 > res.Latency.P99 || res.Latency.P99 > res.Latency.Max {
			t.Errorf("latency %+v", res.Latency)
		}
	}
}

// TestRunCrossQueue sends from one port and receives on the other, as when
// a kernel-socket server answers on another queue: every reply is still
// matched, by the thread that receives it, in the sender's table.
func TestRunCrossQueue(t *testing.T) {
	f := testFrames(t, false, Options{})
	rxPort := nictest.New(nictest.Config{Buffers: 1024, BufSize: 2048})
	txPort := nictest.New(nictest.Config{Buffers: 1024, BufSize: 2048})
	r, err := NewRun(Config{Count: 300, Duration: 5 * time.Second, Rate: 100000, Timeout: 2 * time.Second}, f, []nic.Originator{txPort, rxPort})
	if err != nil {
		t.Fatal(err)
	}
	r.threads[1].quota = 0 // only thread 0 sends
	r.Start()
	// Move thread 0's queries to thread 1's port as replies.
	buf := make([]byte, 2048)
	refl := reflect(false)
	go func() {
		for moved := 0; moved < 150; {
			n, _, ok := txPort.Take(buf, 2*time.Second)
			if !ok {
				return
			}
			if err := rxPort.Inject(buf[:refl(buf, n)], nic.Addr{}); err == nil {
				moved++
			}
		}
	}()
	start := time.Now()
	res, _ := r.Wait()
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("the run took %v: the threads did not end when every query was answered", took)
	}
	if res.Queues[0].Sent != 150 || res.Answered != 150 || res.Queues[1].Answered != 150 || res.Unmatched != 0 {
		t.Fatalf("%+v", res)
	}
}

func TestRunDurationAndLoss(t *testing.T) {
	f := testFrames(t, false, Options{})
	// Every fourth query unanswered: the wire drops odd ports.
	drop := reflect(false)
	port := nictest.New(nictest.Config{Buffers: 512, BufSize: 2048, Loopback: func(b []byte, n int) int {
		if binary.BigEndian.Uint16(b[34:])%4 == 3 {
			return 0
		}
		return drop(b, n)
	}})
	r, err := NewRun(Config{Duration: 200 * time.Millisecond, Rate: 20000, Timeout: 100 * time.Millisecond}, f, []nic.Originator{port})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r.Start()
	res, err := r.Wait()
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	// 200 ms at 20k/s is 4000 queries; the duration bounds the run.
	if res.Sent < 3000 || res.Sent > 4100 {
		t.Errorf("sent %d in a 200 ms run at 20k/s", res.Sent)
	}
	if took < 300*time.Millisecond || took > 5*time.Second {
		t.Errorf("run took %v, want the duration plus the timeout", took)
	}
	if res.Lost != res.Sent/4 || res.Answered+res.Lost != res.Sent {
		t.Errorf("sent %d answered %d lost %d, want a quarter lost", res.Sent, res.Answered, res.Lost)
	}
}

// step is one turn of the thread's loop without the clock and the rate:
// a batch sent and the batch of its replies taken in.
func step(t *Thread, rx, tx []nic.Packet) int {
	k := t.port.Alloc(tx)
	for i := 0; i < k; i++ {
		t.put(&tx[i], 1)
	}
	t.port.Transmit(tx[:k])
	n, _ := t.port.Poll(rx)
	t.account(rx[:n], 2)
	t.port.Send(rx[:n])
	return n
}

func loopbackThread(tb testing.TB) *Thread {
	f := testFrames(tb, false, Options{})
	port := nictest.New(nictest.Config{Buffers: 256, BufSize: 2048, Loopback: reflect(false)})
	r, err := NewRun(Config{Duration: time.Second}, f, []nic.Originator{port})
	if err != nil {
		tb.Fatal(err)
	}
	return r.threads[0]
}

func TestStepDoesNotAllocate(t *testing.T) {
	th := loopbackThread(t)
	rx, tx := make([]nic.Packet, 64), make([]nic.Packet, 64)
	if allocs := testing.AllocsPerRun(100, func() {
		if step(th, rx, tx) != 64 {
			t.Fatal("a batch did not come back whole")
		}
	}); allocs != 0 {
		t.Errorf("%.1f allocations per batch of 64 queries and replies", allocs)
	}
}

// BenchmarkQuery measures the generator's own cost per query: building it
// from its prepared frame, and matching and counting its reply, over the
// in-memory port (whose copies and lock are included).
func BenchmarkQuery(b *testing.B) {
	th := loopbackThread(b)
	rx, tx := make([]nic.Packet, 64), make([]nic.Packet, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		done += step(th, rx, tx[:min(64, b.N-done)])
	}
	if th.stats.Answered < uint64(b.N) {
		b.Fatalf("answered %d of %d", th.stats.Answered, b.N)
	}
}
