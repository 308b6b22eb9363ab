package dataplane

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/nic"
	"github.com/ringdns/ringdns/nic/nictest"
)

// rrlTest is a limiter under test with the root zone to answer from.
type rrlTest struct {
	t    *testing.T
	l    *RRL
	snap *Snapshot
	buf  []byte
	qy   query // the last query answered, as the worker's
}

func newRRLTest(t *testing.T, c RRLConfig) *rrlTest {
	t.Helper()
	if c.Workers == 0 {
		c.Workers = 1
	}
	if c.TableSize == 0 {
		c.TableSize = 1024
	}
	if c.IPv4Prefix == 0 && c.IPv6Prefix == 0 {
		c.IPv4Prefix, c.IPv6Prefix = 24, 56
	}
	l, err := NewRRL(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, root := snapshots(t)
	return &rrlTest{t: t, l: l, snap: root, buf: make([]byte, 4096)}
}

// query answers a query for name and type from the root zone, as if from
// src, and applies the limiter at time now; it returns the verdict, the
// class, and the reply as limited.
func (rt *rrlTest) query(src, name string, qtype uint16, now time.Duration) (int, RRLClass, []byte) {
	rt.t.Helper()
	q := packQuery(rt.t, 0x1234, name, qtype, 4096)
	copy(rt.buf, q)
	n, _, r := rt.snap.answerWith(&rt.qy, rt.buf, rt.buf[:len(q)], nil, false, false)
	if n == 0 {
		rt.t.Fatalf("%s %d: no reply", name, qtype)
	}
	p := nic.Packet{Buf: rt.buf, Len: n, Peer: nic.AddrFrom(netip.MustParseAddrPort(src))}
	m, class, v := rt.l.limit(&rt.qy, &p, n, &r, int64(now))
	return v, class, rt.buf[:m]
}

// limit applies the limiter to the reply of n bytes in p.Buf whose result
// is r, the answer to qy, at time now, one reply at once: what Worker.ServeBatch and
// settleRRL do for the replies of a batch. It returns the reply's new length: n when it passes,
// the header and question alone with TC set when it slips, 0 when it is
// dropped; and the class, and whether the reply was limited.
func (l *RRL) limit(qy *query, p *nic.Packet, n int, r *Result, now int64) (int, RRLClass, int) {
	class := rrlClassOf[r.Kind]
	key, ok := l.key(qy, p.Buf, n, r, class, &p.Peer)
	if !ok {
		return n, class, rrlPass
	}
	v := l.verdict(key, now, &p.Peer)
	if v == rrlPass {
		return n, class, rrlPass
	}
	if v == rrlDrop {
		return 0, class, rrlDrop
	}
	return slipReply(p.Buf[:n]), class, rrlSlip
}

// TestRRLRateBurst: from idle a bucket passes Burst responses at once,
// then Rate per second; what it limits does not count against it.
func TestRRLRateBurst(t *testing.T) {
	for _, c := range []struct{ rate, burst, workers int }{{10, 5, 1}, {100, 1, 1}, {40, 20, 4}} {
		rt := newRRLTest(t, RRLConfig{Rate: c.rate, Burst: c.burst, Workers: c.workers})
		perWorkerBurst := max((c.burst+c.workers-1)/c.workers, 1)
		passed := 0
		for i := 0; i < 100; i++ {
			if v, _, _ := rt.query("198.18.5.1:40000", ".", dns.TypeDNSKEY, 0); v == rrlPass {
				passed++
			}
		}
		if passed != perWorkerBurst {
			t.Errorf("rate %d burst %d workers %d: %d passed at once, want %d", c.rate, c.burst, c.workers, passed, perWorkerBurst)
		}
		// Ten seconds of queries every millisecond: Rate/Workers per
		// second pass, plus the burst already spent above (none more).
		passed = 0
		for ms := 1; ms <= 10000; ms++ {
			if v, _, _ := rt.query("198.18.5.1:40000", ".", dns.TypeDNSKEY, time.Duration(ms)*time.Millisecond); v == rrlPass {
				passed++
			}
		}
		want := 10 * c.rate / c.workers
		if passed < want-1 || passed > want+1 {
			t.Errorf("rate %d burst %d workers %d: %d passed in 10 s, want %d", c.rate, c.burst, c.workers, passed, want)
		}
		// Idle for long enough, the whole burst is back.
		passed = 0
		for i := 0; i < 100; i++ {
			if v, _, _ := rt.query("198.18.5.1:40000", ".", dns.TypeDNSKEY, time.Minute); v == rrlPass {
				passed++
			}
		}
		if passed != perWorkerBurst {
			t.Errorf("rate %d burst %d workers %d: %d passed after a minute idle, want %d", c.rate, c.burst, c.workers, passed, perWorkerBurst)
		}
	}
}

// TestRRLSlip: every Slip-th limited reply goes out as the header,
// question and OPT record with TC set; slip 0 drops them all, 1 slips
// each.
func TestRRLSlip(t *testing.T) {
	for _, slip := range []int{0, 1, 2, 3} {
		rt := newRRLTest(t, RRLConfig{Rate: 1, Burst: 1, Slip: slip})
		var got []int
		for i := 0; i < 7; i++ {
			v, _, reply := rt.query("198.18.5.1:40000", ".", dns.TypeDNSKEY, 0)
			got = append(got, v)
			if v == rrlSlip {
				m := new(dns.Msg)
				if err := m.Unpack(reply); err != nil {
					t.Fatalf("slip %d: slipped reply does not unpack: %v", slip, err)
				}
				// The question and the OPT record the query's EDNS
				// calls for, without options (TestWorkerRRLSlipCookie
				// has the COOKIE option).
				if !m.Truncated || !m.Response || m.Authoritative || m.Id != 0x1234 || len(m.Question) != 1 ||
					m.Question[0].Name != "." || m.Question[0].Qtype != dns.TypeDNSKEY ||
					len(m.Answer)+len(m.Ns) != 0 || len(m.Extra) != 1 || m.IsEdns0() == nil || len(reply) != 12+5+11 {
					t.Fatalf("slip %d: slipped reply is not the question and OPT alone with TC=1 (%d bytes):\n%v", slip, len(reply), m)
				}
			}
		}
		want := []int{rrlPass}
		for i := 1; i < 7; i++ {
			if slip != 0 && i%slip == 0 {
				want = append(want, rrlSlip)
			} else {
				want = append(want, rrlDrop)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("slip %d: verdicts %v, want %v (0 pass, 1 slip, 2 drop)", slip, got, want)
		}
	}
}

// shares reports whether the second query's reply is counted in the
// bucket of the first's, with a fresh limiter allowing one reply.
func shares(t *testing.T, c RRLConfig, a, b [3]string) bool {
	t.Helper()
	c.Rate, c.Burst, c.Slip = 1, 1, 0
	rt := newRRLTest(t, c)
	ta, tb := dns.StringToType[a[2]], dns.StringToType[b[2]]
	if v, _, _ := rt.query(a[0], a[1], ta, 0); v != rrlPass {
		t.Fatalf("%v: first reply limited", a)
	}
	v, _, _ := rt.query(b[0], b[1], tb, 0)
	return v != rrlPass
}

// TestRRLKeys: which replies share a bucket: the client prefix (IPv4 /24
// and IPv6 /56 by default, or as configured), and by class: answers per
// name (in any case) and type, referrals per delegation, NODATA per name,
// NXDOMAIN per zone, errors per prefix alone.
func TestRRLKeys(t *testing.T) {
	const src, src2 = "198.18.5.1:40000", "198.18.5.200:1234"
	def := RRLConfig{}
	for _, c := range []struct {
		name  string
		cfg   RRLConfig
		a, b  [3]string
		share bool
	}{
		{"same /24", def, [3]string{src, ".", "DNSKEY"}, [3]string{src2, ".", "DNSKEY"}, true},
		{"other /24", def, [3]string{src, ".", "DNSKEY"}, [3]string{"198.18.6.1:40000", ".", "DNSKEY"}, false},
		{"/32 configured", RRLConfig{IPv4Prefix: 32, IPv6Prefix: 56}, [3]string{src, ".", "DNSKEY"}, [3]string{src2, ".", "DNSKEY"}, false},
		{"/16 configured", RRLConfig{IPv4Prefix: 16, IPv6Prefix: 56}, [3]string{src, ".", "DNSKEY"}, [3]string{"198.18.200.1:1", ".", "DNSKEY"}, true},
		{"same /56", def, [3]string{"[fd53:0:0:ff::1]:40000", ".", "DNSKEY"}, [3]string{"[fd53:0:0:ff:1::2]:1", ".", "DNSKEY"}, true},
		{"other /56", def, [3]string{"[fd53:0:0:ff::1]:40000", ".", "DNSKEY"}, [3]string{"[fd53:0:0:1ff::1]:1", ".", "DNSKEY"}, false},
		{"same /56, other /64", def, [3]string{"[fd53:0:0:ff::1]:40000", ".", "DNSKEY"}, [3]string{"[fd53:0:0:fe::2]:1", ".", "DNSKEY"}, true},
		{"/64 configured", RRLConfig{IPv4Prefix: 24, IPv6Prefix: 64}, [3]string{"[fd53:0:0:ff::1]:40000", ".", "DNSKEY"}, [3]string{"[fd53:0:0:fe::2]:1", ".", "DNSKEY"}, false},
		{"answer: other type", def, [3]string{src, ".", "DNSKEY"}, [3]string{src, ".", "SOA"}, false},
		{"answer: other name", def, [3]string{src, "com.", "DS"}, [3]string{src, "org.", "DS"}, false},
		{"answer: name in other case", def, [3]string{src, "com.", "DS"}, [3]string{src, "CoM.", "DS"}, true},
		{"answer: long name in other case", def, [3]string{src, "xn--vermgensberatung-pwb.", "DS"}, [3]string{src, "XN--VERMGENSBERATUNG-PWB.", "DS"}, true},
		{"answer: long names", def, [3]string{src, "xn--vermgensberatung-pwb.", "DS"}, [3]string{src, "xn--vermgensberater-ctb.", "DS"}, false},
		{"referral: same delegation", def, [3]string{src, "example.com.", "A"}, [3]string{src, "www.other.COM.", "AAAA"}, true},
		{"referral: other delegation", def, [3]string{src, "example.com.", "A"}, [3]string{src, "example.org.", "A"}, false},
		{"nxdomain: same zone", def, [3]string{src, "nosuchtld1.", "A"}, [3]string{src, "www.nosuchtld2.", "MX"}, true},
		{"nxdomain apart from nodata", def, [3]string{src, "nosuchtld1.", "A"}, [3]string{src, ".", "A"}, false},
		{"nodata: same name", def, [3]string{src, ".", "A"}, [3]string{src, ".", "MX"}, true},
		{"nodata: other name", def, [3]string{src, ".", "A"}, [3]string{src, "a.root-servers.net.", "MX"}, false},
		{"answer apart from referral", def, [3]string{src, ".", "NS"}, [3]string{src, "com.", "NS"}, false},
	} {
		if got := shares(t, c.cfg, c.a, c.b); got != c.share {
			t.Errorf("%s: %v then %v share a bucket: %v, want %v", c.name, c.a, c.b, got, c.share)
		}
	}
}

// TestRRLClasses checks the class of each kind of reply, and that errors
// share one bucket per prefix whatever the query: a query with opcode
// NOTIFY-like garbage and a FORMERR.
func TestRRLClasses(t *testing.T) {
	rt := newRRLTest(t, RRLConfig{Rate: 1000, Burst: 1000})
	for _, c := range []struct {
		name  string
		qtype uint16
		want  RRLClass
	}{
		{".", dns.TypeDNSKEY, RRLAnswer},
		{"com.", dns.TypeA, RRLReferral},
		{".", dns.TypeMX, RRLNoData},
		{"nosuchtld.", dns.TypeA, RRLNXDomain},
	} {
		if _, got, _ := rt.query("198.18.5.1:1", c.name, c.qtype, 0); got != c.want {
			t.Errorf("%s %s: class %s, want %s", c.name, dns.TypeToString[c.qtype], RRLClassNames[got], RRLClassNames[c.want])
		}
	}
	// Errors: a FORMERR (no question, a byte after the header) and a
	// NOTIMP (opcode 5, UPDATE), from one prefix: one bucket.
	l, err := NewRRL(RRLConfig{Rate: 1, Burst: 1, Workers: 1, TableSize: 64, IPv4Prefix: 24, IPv6Prefix: 56}, nil)
	if err != nil {
		t.Fatal(err)
	}
	update := packQuery(t, 7, "example.", dns.TypeSOA, 0)
	update[2] = 5 << 3
	for i, q := range [][]byte{{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xc0}, update} {
		buf := make([]byte, 512)
		copy(buf, q)
		var qy query
		n, _, r := rt.snap.answerWith(&qy, buf, buf[:len(q)], nil, false, false)
		if c := rrlClassOf[r.Kind]; n == 0 || c != RRLError {
			t.Fatalf("error query %d: %d bytes, kind %s, class %s", i, n, KindNames[r.Kind], RRLClassNames[c])
		}
		p := nic.Packet{Buf: buf, Len: n, Peer: nic.AddrFrom(netip.AddrPortFrom(netip.MustParseAddr("198.18.5.1"), uint16(1000+i)))}
		if _, _, v := l.limit(&qy, &p, n, &r, 0); (v == rrlPass) != (i == 0) {
			t.Errorf("error query %d: verdict %d; errors from one prefix should share a bucket of one", i, v)
		}
	}
}

// TestRRLWhitelist: a whitelisted prefix is never limited, another is.
func TestRRLWhitelist(t *testing.T) {
	rt := newRRLTest(t, RRLConfig{Rate: 1, Burst: 1, Whitelist: []netip.Prefix{
		netip.MustParsePrefix("198.18.5.128/25"), netip.MustParsePrefix("fd53:0:0:ff::/64"), netip.MustParsePrefix("::ffff:198.18.9.0/120")}})
	for _, c := range []struct {
		src   string
		white bool
	}{
		{"198.18.5.200:1", true}, {"198.18.9.7:1", true}, {"[fd53:0:0:ff::7]:1", true},
		{"198.18.5.1:1", false}, {"198.18.10.1:1", false}, {"[fd53:0:0:fe::7]:1", false},
	} {
		limited := 0
		for i := 0; i < 50; i++ {
			if v, _, _ := rt.query(c.src, ".", dns.TypeDNSKEY, 0); v != rrlPass {
				limited++
			}
		}
		if (limited == 0) != c.white {
			t.Errorf("%s: %d of 50 limited, whitelisted %v", c.src, limited, c.white)
		}
	}
}

// TestRRLTableBound: the table keeps its size, and the limiter allocates
// nothing, whatever the number of sources; a key seen again after a flood
// of others (a million prefixes through 1,024 entries) starts afresh
// rather than failing.
func TestRRLTableBound(t *testing.T) {
	rt := newRRLTest(t, RRLConfig{Rate: 1, Burst: 1, TableSize: 1000})
	if n := rt.l.TableLen(); n != 1024 {
		t.Fatalf("table of %d entries for table-size 1000, want 1024", n)
	}
	q := packQuery(t, 1, ".", dns.TypeDNSKEY, 4096)
	copy(rt.buf, q)
	n, _, r := rt.snap.answerWith(&rt.qy, rt.buf, rt.buf[:len(q)], nil, false, false)
	reply := append([]byte(nil), rt.buf[:n]...)
	p := nic.Packet{Buf: rt.buf}
	i := 0
	allocs := testing.AllocsPerRun(1<<20, func() {
		copy(rt.buf, reply)
		p.Peer = nic.AddrFrom(netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), 1}), 1))
		if i&1 == 1 {
			p.Peer = nic.AddrFrom(netip.AddrPortFrom(netip.AddrFrom16([16]byte{0xfd, 0x53, 5: byte(i >> 16), 6: byte(i >> 8), 7: byte(i)}), 1))
		}
		rt.l.limit(&rt.qy, &p, n, &r, int64(i))
		i++
	})
	if allocs != 0 {
		t.Errorf("limit allocates %.1f times per reply", allocs)
	}
	if n := rt.l.TableLen(); n != 1024 {
		t.Errorf("table of %d entries after a million sources, want 1024", n)
	}
}

// TestRRLReload: a limiter built over a previous one of the same table
// size keeps its buckets (a reload that changes the slip does not hand
// out fresh bursts); another size starts a new table.
func TestRRLReload(t *testing.T) {
	rt := newRRLTest(t, RRLConfig{Rate: 1, Burst: 1})
	if v, _, _ := rt.query("198.18.5.1:1", ".", dns.TypeDNSKEY, 0); v != rrlPass {
		t.Fatal("first reply limited")
	}
	c := RRLConfig{Rate: 1, Burst: 1, Slip: 1, Workers: 1, TableSize: 1024, IPv4Prefix: 24, IPv6Prefix: 56}
	l2, err := NewRRL(c, rt.l)
	if err != nil {
		t.Fatal(err)
	}
	rt.l = l2
	if v, _, _ := rt.query("198.18.5.1:1", ".", dns.TypeDNSKEY, 0); v != rrlSlip {
		t.Errorf("after a reload with slip 1: verdict %d, want slip (%d)", v, rrlSlip)
	}
	c.TableSize = 4096
	if rt.l, err = NewRRL(c, l2); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := rt.query("198.18.5.1:1", ".", dns.TypeDNSKEY, 0); v != rrlPass || rt.l.TableLen() != 4096 {
		t.Errorf("after a reload to 4096 entries: verdict %d, %d entries; want a fresh table", v, rt.l.TableLen())
	}
}

// TestRRLWorkersSpread measures what the per-worker division rests on:
// a flood spoofed over one /24 from random ports, hashed over the queues
// by a Toeplitz hash of its addresses and ports as RSS does (the key of
// Microsoft's specification, which many NICs use by default), reaches
// every queue about evenly, so that the sum of the workers' limits,
// each Rate/Workers, stays near Rate. The bound allows 10% over the even
// share, far above the spread of 100,000 packets over four queues.
func TestRRLWorkersSpread(t *testing.T) {
	key := []byte{0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
		0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
		0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa}
	toeplitz := func(in []byte) uint32 {
		var h uint32
		for i, b := range in {
			for bit := 0; bit < 8; bit++ {
				if b&(0x80>>bit) != 0 {
					k := binary.BigEndian.Uint64(append(key[i:i+8:i+8], 0)[:8])
					h ^= uint32(k >> (32 - bit))
				}
			}
		}
		return h
	}
	// The first IPv4 example of Microsoft's RSS verification suite:
	// 66.9.149.187:2794 to 161.142.100.80:1766.
	if h := toeplitz([]byte{66, 9, 149, 187, 161, 142, 100, 80, 2794 >> 8, 2794 & 0xff, 1766 >> 8, 1766 & 0xff}); h != 0x51ccc178 {
		t.Fatalf("Toeplitz hash of the verification example %#x, want 0x51ccc178", h)
	}
	const queues, packets = 4, 100000
	var per [queues]int
	seed := uint32(1)
	for i := 0; i < packets; i++ {
		seed = seed*1664525 + 1013904223
		in := []byte{198, 18, 5, byte(seed >> 24), 198, 18, 0, 1, byte(seed >> 8), byte(seed), 0, 53}
		per[toeplitz(in)%queues]++
	}
	for q, n := range per {
		if n > packets/queues*11/10 {
			t.Errorf("queue %d got %d of %d packets, over 110%% of its even share: %v", q, n, packets, per)
		}
	}
	t.Logf("a spoofed /24 over %d queues: %v", queues, per)
}

// rrlFlood returns n queries for ". DNSKEY" with DO and a 4096-byte
// buffer, from sources spread over 198.18.5.0/24 and random ports, as
// Ethernet frames; and, last, one query from a client in another prefix.
// It returns the query and the sources too.
func rrlFlood(t *testing.T, n int) (frames [][]byte, q []byte, srcs []netip.AddrPort) {
	q = packQuery(t, 1, ".", dns.TypeDNSKEY, 4096)
	m := new(dns.Msg)
	if err := m.Unpack(q); err != nil {
		t.Fatal(err)
	}
	m.IsEdns0().SetDo()
	q, _ = m.Pack()
	seed := uint32(7)
	for i := 0; i < n; i++ {
		seed = seed*1664525 + 1013904223
		srcs = append(srcs, netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 5, byte(seed >> 24)}), 32768+uint16(seed>>8)%28000))
	}
	srcs = append(srcs, netip.MustParseAddrPort("198.18.7.9:40000"))
	for _, src := range srcs {
		frames = append(frames, nictest.Frame(src, netip.AddrPortFrom(server4, 53), q))
	}
	return frames, q, srcs
}

// TestWorkerRRL runs a flood of ". DNSKEY" DO queries spoofed over one /24
// through the worker over an Ethernet ring (the AF_XDP path) and over the
// kernel-socket stand-in: the victim prefix gets the burst, then every
// second limited reply as an empty TC=1 reply; the client in another
// prefix is answered; the counters add up.
func TestWorkerRRL(t *testing.T) {
	const flood = 1000
	frames, q, srcs := rrlFlood(t, flood)
	_, root := snapshots(t)
	for _, ethernet := range []bool{true, false} {
		var c Counters
		var full, slipped, other, bytes, all int
		inspect := func(i int, p *nic.Packet) {
			if p.Len == 0 {
				return
			}
			all += p.Len
			if ethernet {
				// The AF_XDP port finishes the UDP checksum from the
				// sum passed with the reply, slipped ones too.
				checkSum(t, p.Buf[:p.Len], p.Sum)
			}
			if i == flood {
				other++
				return
			}
			bytes += p.Len
			if p.Buf[2]&0x02 != 0 && binary.BigEndian.Uint16(p.Buf[6:]) == 0 {
				slipped++
			} else {
				full++
			}
		}
		snap := new(atomic.Pointer[Snapshot])
		snap.Store(root)
		var w *Worker
		if ethernet {
			ring := nictest.NewRing(nictest.RingConfig{Ethernet: true, Inspect: inspect, Buffers: len(frames)}, frames)
			w = &Worker{Port: ring, Snapshot: snap, Counters: &c, CPU: -1}
		} else {
			// The socket path: the payloads with their peers, handed out by
			// a ring without Ethernet one batch per peer.
			w = &Worker{Port: nil, Snapshot: snap, Counters: &c, CPU: -1}
		}
		l, err := NewRRL(RRLConfig{Rate: 10, Burst: 20, Slip: 2, Workers: 1, TableSize: 4096, IPv4Prefix: 24, IPv6Prefix: 56}, nil)
		if err != nil {
			t.Fatal(err)
		}
		// The clock stands still: the test counts the burst alone,
		// however long it runs.
		l.frozen = true
		w.RRL.Store(l)
		if ethernet {
			var st portState
			st.init(w)
			if err := w.turn(make([]nic.Packet, len(frames)), &st); err != nil {
				t.Fatal(err)
			}
		} else {
			for i, src := range srcs {
				ring := nictest.NewRing(nictest.RingConfig{Peer: nic.AddrFrom(src), Inspect: func(_ int, p *nic.Packet) { inspect(i, p) }}, [][]byte{q})
				w.Port = ring
				var st portState
				st.init(w)
				if err := w.turn(make([]nic.Packet, 1), &st); err != nil {
					t.Fatal(err)
				}
			}
		}
		if full != 20 || other != 1 {
			t.Errorf("ethernet %v: %d full replies to the victim prefix, want the burst, 20; %d to the other client, want 1", ethernet, full, other)
		}
		limited := flood - full
		if slipped != limited/2 {
			t.Errorf("ethernet %v: %d slipped of %d limited, want half", ethernet, slipped, limited)
		}
		v := c.Values()
		if v.RRLSlipped[RRLAnswer] != uint64(slipped) || v.RRLDropped[RRLAnswer] != uint64(limited-slipped) ||
			v.Drops[DropRRL] != uint64(limited-slipped) || v.Queries != uint64(len(frames)) || v.Replies != uint64(full+slipped+other) {
			t.Errorf("ethernet %v: counters %+v, want %d slipped, %d dropped, %d replies", ethernet, v, slipped, limited-slipped, full+slipped+other)
		}
		// What the replies limited after they were counted as sent
		// (settleRRL) take back: every answer sent is a NOERROR with
		// DO, the slipped ones alone have TC.
		if sent := uint64(full + slipped + other); v.Bytes != uint64(all) || v.TC != uint64(slipped) || v.DO != sent ||
			v.Kinds[KindAnswer] != sent || v.Rcodes[dns.RcodeSuccess] != sent {
			t.Errorf("ethernet %v: counters %+v, want %d bytes, %d TC, %d answers, with DO, NOERROR", ethernet, v, all, slipped, sent)
		}
		t.Logf("ethernet %v: %d replies of %d bytes to the victim prefix for %d queries", ethernet, full+slipped, bytes, flood)
	}
}

// TestWorkerRRLAllocs pins the worker with RRL on, nothing limited, to no
// allocation per batch.
func TestWorkerRRLAllocs(t *testing.T) {
	w, _, st := rootMixWorker(t, true, nil, nil)
	l, err := NewRRL(RRLConfig{Rate: 1 << 30, Burst: 1 << 30, Slip: 2, Workers: 1, TableSize: 1 << 16, IPv4Prefix: 24, IPv6Prefix: 56}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.RRL.Store(l)
	pkts := make([]nic.Packet, DefaultBatch)
	if a := testing.AllocsPerRun(100, func() {
		if err := w.turn(pkts, st); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("%.1f allocations per batch with RRL on", a)
	}
	if v := w.Counters.Values(); v.Drops[DropRRL] != 0 || v.TC != 0 {
		t.Errorf("RRL limited %d and truncated %d with a rate nothing reaches", v.Drops[DropRRL], v.TC)
	}
}

// cookieRRLWorker is a worker answering from a snapshot with DNS cookies
// under the secret cur, rate limited at 1 a second with a burst of 1 and
// the given slip, on a frozen clock.
func cookieRRLWorker(t *testing.T, cur [16]byte, slip int) *Worker {
	t.Helper()
	snap, _ := cookieSnap(t, &CookieSecrets{Current: cur}, time.Now().Unix())
	p := new(atomic.Pointer[Snapshot])
	p.Store(snap)
	w := &Worker{Snapshot: p, Counters: new(Counters), CPU: -1}
	l, err := NewRRL(RRLConfig{Rate: 1, Burst: 1, Slip: slip, Workers: 1, TableSize: 1024, IPv4Prefix: 24, IPv6Prefix: 56}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.frozen = true
	w.RRL.Store(l)
	return w
}

// TestWorkerRRLCookieBypass: a query with a valid server cookie (RFC 7873)
// proves its source and is answered while its prefix is limited, on the
// AF_XDP path (an Ethernet ring) and the socket path (a ring of payloads);
// the same client without a cookie, or with one that is not valid, is
// limited.
func TestWorkerRRLCookieBypass(t *testing.T) {
	cur := secretHex(t, "000102030405060708090a0b0c0d0e0f")
	cc := mustHex(t, "a1a2a3a4a5a6a7a8")
	for _, ethernet := range []bool{true, false} {
		w := cookieRRLWorker(t, cur, 0)
		serve := func(q []byte) []byte { return serveRRL(t, w, q, ethernet) }
		// The first query, with a client cookie alone, spends the burst and
		// gets the server cookie.
		reply := serve(cookieQuery(t, cc))
		if reply == nil {
			t.Fatalf("ethernet %v: no reply to the first query", ethernet)
		}
		valid, _ := replyCookieOf(t, reply)
		if len(valid) != cookieReplyLen {
			t.Fatalf("ethernet %v: first reply's cookie %x", ethernet, valid)
		}
		invalid := append([]byte(nil), valid...)
		invalid[len(invalid)-1] ^= 1
		for _, c := range []struct {
			name     string
			cookie   []byte
			answered bool
		}{{"no cookie", nil, false}, {"valid server cookie", valid, true}, {"client cookie alone", cc, false}, {"invalid server cookie", invalid, false}} {
			got := 0
			for i := 0; i < 20; i++ {
				if reply := serve(cookieQuery(t, c.cookie)); reply != nil {
					if _, m := replyCookieOf(t, reply); len(m.Answer) != 1 || m.Truncated {
						t.Fatalf("ethernet %v, %s: reply is not the answer:\n%v", ethernet, c.name, m)
					}
					got++
				}
			}
			if want := map[bool]int{true: 20, false: 0}[c.answered]; got != want {
				t.Errorf("ethernet %v, %s: %d of 20 answered while the prefix is limited, want %d", ethernet, c.name, got, want)
			}
		}
		if v := w.Counters.Values(); v.Drops[DropRRL] != 60 || v.Cookies[CookieValid] != 20 {
			t.Errorf("ethernet %v: %d RRL drops, %d valid cookies; want 60 and 20", ethernet, v.Drops[DropRRL], v.Cookies[CookieValid])
		}
	}
}

// serveRRL answers q through w, from client4 port 40000, over an Ethernet
// ring (the AF_XDP path, whose reply's sum it checks) or a ring of
// payloads (the socket path), and returns the reply, nil when none was
// sent.
func serveRRL(t *testing.T, w *Worker, q []byte, ethernet bool) []byte {
	t.Helper()
	var reply []byte
	inspect := func(_ int, p *nic.Packet) {
		if p.Len > 0 {
			if ethernet {
				checkSum(t, p.Buf[:p.Len], p.Sum)
			}
			reply = append([]byte(nil), p.Buf[:p.Len]...)
		}
	}
	if ethernet {
		w.Port = nictest.NewRing(nictest.RingConfig{Ethernet: true, Inspect: inspect}, [][]byte{queryFrame(q, false, 40000)})
	} else {
		w.Port = nictest.NewRing(nictest.RingConfig{Peer: nic.AddrFrom(netip.AddrPortFrom(client4, 40000)), Inspect: inspect}, [][]byte{q})
	}
	st := new(portState)
	st.init(w)
	if err := w.turn(make([]nic.Packet, 1), st); err != nil {
		t.Fatal(err)
	}
	return reply
}

// TestWorkerRRLSlipCookie: a slipped reply (TC=1, no records) to a query
// with EDNS keeps an OPT record (RFC 6891 section 7: every reply to a
// query with OPT has one), and to a query with a COOKIE option carries
// the client cookie and a server cookie (RFC 7873 section 5.2: every
// reply to a query with a COOKIE option does), so that a real client in
// a limited prefix gets the cookie that lets its next query through
// (TestWorkerRRLCookieBypass). The OPT keeps only the COOKIE option,
// so that a slipped reply stays as small as it can.
func TestWorkerRRLSlipCookie(t *testing.T) {
	cur := secretHex(t, "000102030405060708090a0b0c0d0e0f")
	cc := mustHex(t, "a1a2a3a4a5a6a7a8")
	for _, ethernet := range []bool{true, false} {
		w := cookieRRLWorker(t, cur, 1)
		// The first reply spends the burst.
		if r := serveRRL(t, w, cookieQuery(t, cc), ethernet); r == nil {
			t.Fatalf("ethernet %v: no reply to the first query", ethernet)
		}
		slipped := func(q []byte) ([]byte, *dns.Msg) {
			t.Helper()
			r := serveRRL(t, w, q, ethernet)
			if r == nil {
				t.Fatalf("ethernet %v: no reply with slip 1", ethernet)
			}
			ck, m := replyCookieOf(t, r)
			if !m.Truncated || len(m.Answer)+len(m.Ns) != 0 || len(m.Question) != 1 || m.Question[0].Name != "www.example." {
				t.Fatalf("ethernet %v: not a slipped reply:\n%v", ethernet, m)
			}
			if len(m.Extra) != 1 || m.IsEdns0() == nil {
				t.Fatalf("ethernet %v: slipped reply to a query with EDNS has no OPT record alone:\n%v", ethernet, m)
			}
			return ck, m
		}
		ck, m := slipped(cookieQuery(t, cc))
		if len(ck) != cookieReplyLen || string(ck[:clientCookieLen]) != string(cc) || len(m.IsEdns0().Option) != 1 {
			t.Fatalf("ethernet %v: slipped reply to a query with a client cookie carries cookie %x (options %v), want %x and a server cookie", ethernet, ck, m.IsEdns0().Option, cc)
		}
		if ck, m := slipped(cookieQuery(t, nil)); ck != nil || len(m.IsEdns0().Option) != 0 {
			t.Errorf("ethernet %v: slipped reply to a query without a cookie has options %v", ethernet, m.IsEdns0().Option)
		}
		// The server cookie of the slipped reply is valid: the client's
		// next query is answered in full while its prefix is limited.
		r := serveRRL(t, w, cookieQuery(t, ck), ethernet)
		if r == nil {
			t.Fatalf("ethernet %v: no reply to the query with the slipped reply's cookie", ethernet)
		}
		if _, m := replyCookieOf(t, r); m.Truncated || len(m.Answer) != 1 {
			t.Errorf("ethernet %v: the query with the slipped reply's cookie is not answered in full:\n%v", ethernet, m)
		}
	}
}

// TestSlipReply cuts replies of every shape to what a slipped reply keeps:
// the header with TC set and AA clear, the question, and the OPT record
// with its COOKIE option alone, when the reply has them.
func TestSlipReply(t *testing.T) {
	cookie := &dns.EDNS0_COOKIE{Code: optCookie, Cookie: "a1a2a3a4a5a6a7a8" + "0100000065f0a1b2c3d4e5f601020304"}
	nsid := &dns.EDNS0_NSID{Code: optNSID, Nsid: "6e73312e74657374"}
	expire := &dns.EDNS0_EXPIRE{Code: optExpire, Expire: 3600}
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, c := range []struct {
		name     string
		question bool
		records  []dns.RR // answer, authority and additional, in turn
		opt      []dns.EDNS0
		edns     bool
		rcode    int
		keep     []dns.EDNS0 // the options left
	}{
		{name: "no EDNS", question: true, records: []dns.RR{rr(". 1 IN NS a.root-servers.net."), rr("a.root-servers.net. 1 IN A 198.41.0.4")}},
		{name: "EDNS", question: true, records: []dns.RR{rr(". 1 IN SOA a. b. 1 2 3 4 5")}, edns: true},
		{name: "cookie, NSID and EXPIRE", question: true, records: []dns.RR{rr("com. 1 IN NS a.gtld-servers.net."), rr("a.gtld-servers.net. 1 IN A 192.5.6.30")}, edns: true, opt: []dns.EDNS0{cookie, expire, nsid}, keep: []dns.EDNS0{cookie}},
		{name: "NSID alone", question: true, edns: true, opt: []dns.EDNS0{nsid}},
		{name: "BADCOOKIE", question: true, edns: true, opt: []dns.EDNS0{cookie}, rcode: dns.RcodeBadCookie, keep: []dns.EDNS0{cookie}},
		{name: "no question, EDNS", edns: true, rcode: dns.RcodeFormatError},
		{name: "no question", rcode: dns.RcodeFormatError},
	} {
		m := new(dns.Msg)
		if c.question {
			m.SetQuestion("www.Example.", dns.TypeA)
		}
		m.Id, m.Response, m.Authoritative, m.Rcode = 0x4242, true, true, c.rcode
		for i, r := range c.records {
			switch i % 3 {
			case 0:
				m.Answer = append(m.Answer, r)
			case 1:
				m.Ns = append(m.Ns, r)
			default:
				m.Extra = append(m.Extra, r)
			}
		}
		if c.edns {
			m.SetEdns0(1232, true)
			m.IsEdns0().Option = c.opt
			m.SetRcode(m, c.rcode)
		}
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		n := slipReply(b)
		got := new(dns.Msg)
		if err := got.Unpack(b[:n]); err != nil {
			t.Fatalf("%s: slipped reply does not unpack: %v", c.name, err)
		}
		if !got.Truncated || got.Authoritative || got.Id != 0x4242 || got.Rcode != c.rcode || len(got.Question) != len(m.Question) ||
			len(got.Answer)+len(got.Ns) != 0 || (got.IsEdns0() != nil) != c.edns || len(got.Extra) != map[bool]int{true: 1}[c.edns] {
			t.Errorf("%s: slipped reply\n%v\nof\n%v", c.name, got, m)
			continue
		}
		if c.edns && (fmt.Sprint(got.IsEdns0().Option) != fmt.Sprint(c.keep) || !got.IsEdns0().Do()) {
			t.Errorf("%s: slipped reply's OPT %v, want the options %v and DO", c.name, got.IsEdns0(), c.keep)
		}
	}
}

// TestRRLKeyNames: a reply's key counts by the query's name whatever the
// name's length around the 16-byte rounds, and wherever the part counted
// starts in the name: names in other case share a key and other names do
// not; a referral counts by its delegation, whatever the name below it,
// up to names of 255 bytes whose delegation starts too near the end of
// the name's buffer for the last round's words (hashName); and the key
// is the same whether the reply's buffer has room after it or ends with
// it.
func TestRRLKeyNames(t *testing.T) {
	rt := newRRLTest(t, RRLConfig{Rate: 1, Burst: 1})
	peer := nic.AddrFrom(netip.MustParseAddrPort("198.18.5.1:1"))
	// key parses the query for name as the engine does and keys a reply
	// of its header and question and, for a referral, a first record
	// owned by a pointer to the delegation deleg, a suffix of name.
	key := func(name string, class RRLClass, deleg string) uint64 {
		t.Helper()
		q := packQuery(t, 1, name, dns.TypeTXT, 0)
		var qy query
		if n, _, _ := rt.snap.answerWith(&qy, make([]byte, 4096), q, nil, false, false); n == 0 || qy.qsize != len(q)-hdrLen {
			t.Fatalf("%s: not parsed", name)
		}
		reply := append([]byte(nil), q...)
		if class == RRLReferral {
			at := hdrLen + len(q) - hdrLen - 4 - (len(deleg) + 1)
			if deleg == "." {
				at = hdrLen + len(q) - hdrLen - 5
			}
			reply = append(reply, byte(0xC0|at>>8), byte(at), 0, 2, 0, 1)
		}
		buf := make([]byte, 4096)
		n := copy(buf, reply)
		r := Result{Zone: 0}
		k1, ok1 := rt.l.key(&qy, buf, n, &r, class, &peer)
		k2, ok2 := rt.l.key(&qy, reply, n, &r, class, &peer)
		if !ok1 || !ok2 || k1 != k2 {
			t.Fatalf("%s, class %s: key %#x with room after the reply, %#x without", name, RRLClassNames[class], k1, k2)
		}
		return k1
	}
	// label returns a label of n bytes (1 to 63) of mixed case.
	label := func(n int, c byte) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = c
			if i%2 == 1 {
				b[i] -= 'a' - 'A'
			}
		}
		return string(b) + "."
	}
	// nameOf returns a name of n bytes on the wire, root label included
	// (1, or 3 to 255), made of labels of c.
	nameOf := func(n int, c byte) string {
		if n == 1 {
			return "."
		}
		s := ""
		for left := n - 1; left > 0; {
			l := min(left-1, 63)
			if left-1-l == 1 {
				l-- // no label of 0 bytes before the root
			}
			s += label(l, c)
			left -= l + 1
		}
		return s
	}
	seen := map[uint64]string{}
	for _, n := range []int{1, 3, 4, 15, 16, 17, 18, 31, 32, 33, 34, 64, 200, 239, 240, 241, 254, 255} {
		name := nameOf(n, 'a')
		if got := len(packQuery(t, 1, name, dns.TypeTXT, 0)) - hdrLen - 4; got != n {
			t.Fatalf("name of %d bytes is %d", n, got)
		}
		for _, class := range []RRLClass{RRLAnswer, RRLNoData} {
			k := key(name, class, "")
			if k2 := key(strings.ToUpper(name), class, ""); k2 != k {
				t.Errorf("%d-byte name, class %s: key %#x, in upper case %#x", n, RRLClassNames[class], k, k2)
			}
			id := fmt.Sprint(n, RRLClassNames[class])
			if prev, ok := seen[k]; ok {
				t.Errorf("%s: same key as %s", id, prev)
			}
			seen[k] = id
		}
	}
	// Referrals: the delegation of 1 to 40 bytes below names of up to 255.
	for _, dn := range []int{1, 3, 5, 16, 17, 40} {
		deleg := nameOf(dn, 'x')
		want := key(deleg, RRLReferral, deleg)
		id := fmt.Sprint("referral to ", dn)
		if prev, ok := seen[want]; ok {
			t.Errorf("%s: same key as %s", id, prev)
		}
		seen[want] = id
		for _, pn := range []int{3, 4, 17, 100, 200, 230, 240, 250} {
			if pn+dn-1 > 255 {
				continue
			}
			prefix := nameOf(pn, 'p')
			name := prefix + deleg
			if deleg == "." {
				name = prefix
			}
			if got := key(name, RRLReferral, deleg); got != want {
				t.Errorf("referral to %d bytes below %d: key %#x, %#x from the delegation itself", dn, pn, got, want)
			}
		}
	}
}

// TestTallyUncount: uncount takes back count of any reply sent, every
// counter it moved, so that a reply settleRRL limits after counting it as
// sent is counted once, as what was sent instead.
func TestTallyUncount(t *testing.T) {
	for _, r := range []Result{
		{Kind: KindAnswer, Rcode: 0, Zone: 3},
		{Kind: KindReferral, DO: true, EDNS: true},
		{Kind: KindNXDomain, Rcode: 3, TC: true},
		{Kind: KindAnswer, Cookie: true, CookieVerdict: CookieValid, DO: true, TC: true},
		{Kind: KindBadCookie, Rcode: RcodeBadCookie, CookieVerdict: CookieInvalid, EDNS: true},
		{Kind: KindBadVers, Rcode: 16, CookieVerdict: CookieClientOnly},
		{Kind: KindFormErr, Rcode: 1, CookieVerdict: CookieMalformed},
		{Kind: KindServFail, Rcode: 0xfff},
	} {
		var base tally
		base.count(Result{Kind: KindAnswer, DO: true, TC: true, CookieVerdict: CookieValid}, 100)
		got := base
		got.count(r, 517)
		if got == base {
			t.Fatalf("%+v: count changed nothing", r)
		}
		got.uncount(r, 517)
		if got != base {
			t.Errorf("%+v: count then uncount leave %+v, want %+v", r, got, base)
		}
	}
}

// TestWorkerRRLDnstap: with dnstap sampling every third exchange, whose
// replies the worker limits at once rather than with the batch (settleRRL),
// the flood of TestWorkerRRL gets the same replies, packet by packet, as
// without dnstap, and each reply logged is the one sent.
func TestWorkerRRLDnstap(t *testing.T) {
	const flood = 1000
	frames, _, srcs := rrlFlood(t, flood)
	_, root := snapshots(t)
	run := func(tap *Dnstap) [][]byte {
		sent := make([][]byte, len(frames))
		inspect := func(i int, p *nic.Packet) { sent[i] = append([]byte(nil), p.Buf[:p.Len]...) }
		snap := new(atomic.Pointer[Snapshot])
		snap.Store(root)
		ring := nictest.NewRing(nictest.RingConfig{Ethernet: true, Inspect: inspect, Buffers: len(frames)}, frames)
		w := &Worker{Port: ring, Snapshot: snap, Counters: new(Counters), CPU: -1, Dnstap: tap}
		l, err := NewRRL(RRLConfig{Rate: 10, Burst: 20, Slip: 2, Workers: 1, TableSize: 4096, IPv4Prefix: 24, IPv6Prefix: 56}, nil)
		if err != nil {
			t.Fatal(err)
		}
		l.frozen = true
		w.RRL.Store(l)
		var st portState
		st.init(w)
		if err := w.turn(make([]nic.Packet, len(frames)), &st); err != nil {
			t.Fatal(err)
		}
		return sent
	}
	want := run(nil)
	tap, err := NewDnstap(1024, 4096, NewDnstapWake())
	if err != nil {
		t.Fatal(err)
	}
	tap.SetFilter(&DnstapFilter{Sample: 3, Responses: true})
	got := run(tap)
	var dropped, slipped int
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("packet %d: reply with dnstap\n% x\nwithout\n% x", i, got[i], want[i])
		}
		switch {
		case len(want[i]) == 0:
			dropped++
		case want[i][2]&0x02 != 0:
			slipped++
		}
	}
	if dropped == 0 || slipped == 0 {
		t.Fatalf("%d dropped, %d slipped: the flood was not limited", dropped, slipped)
	}
	byPeer := map[netip.AddrPort][]byte{}
	for i, src := range srcs {
		if _, dup := byPeer[src]; dup {
			byPeer[src] = nil // two packets from one source: not compared
			continue
		}
		byPeer[src] = got[i]
	}
	logged, loggedSlips := 0, 0
	for s := tap.Peek(); s != nil; s = tap.Peek() {
		if r, ok := byPeer[s.Peer.AddrPort()]; ok && r != nil {
			if !bytes.Equal(s.Response(), r) {
				t.Errorf("%v: logged\n% x\nsent\n% x", s.Peer.AddrPort(), s.Response(), r)
			}
			logged++
			if r[2]&0x02 != 0 {
				loggedSlips++
			}
		}
		tap.Release()
	}
	// A third of the exchanges are sampled, and of those past the burst
	// half are dropped, which logs no reply.
	if logged < flood/8 || loggedSlips == 0 {
		t.Errorf("%d exchanges logged and compared, %d of them slipped; want about a sixth of %d, some slipped", logged, loggedSlips, flood)
	}
}
