package dataplane

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/miekg/dns"
	"github.com/ringdns/ringdns/internal/onessum"
	"github.com/ringdns/ringdns/zone"
)

var canary = []byte{0xde, 0xad, 0xbe, 0xef}

func fill(b []byte) {
	for i := range b {
		b[i] = canary[i%4]
	}
}

func seedQueries() [][]byte {
	var out [][]byte
	add := func(name string, t uint16, class uint16, edns int, do bool) {
		m := new(dns.Msg)
		m.SetQuestion(name, t)
		m.Question[0].Qclass = class
		if edns > 0 {
			m.SetEdns0(uint16(edns), do)
		}
		b, _ := m.Pack()
		out = append(out, b)
	}
	for _, n := range []string{"www.example.", "alias.example.", "a.b.dn.example.", "x.dnin.example.", "foo.wild.example.", "x.sub.example.", "big.example.", "nope.example.", "example.", "loop1.example.", "long1.example.", "c.dnself.example.", "www.example.com.", "junk.", ".", "id.server."} {
		for _, t := range []uint16{dns.TypeA, dns.TypeNS, dns.TypeMX, dns.TypeDS, dns.TypeANY, dns.TypeTXT, dns.TypeRRSIG} {
			add(n, t, dns.ClassINET, 0, false)
			add(n, t, dns.ClassINET, 1232, true)
		}
	}
	add("id.server.", dns.TypeTXT, dns.ClassCHAOS, 512, false)
	add("www.example.", dns.TypeA, dns.ClassANY, 1232, false)
	add("example.", dns.TypeAXFR, dns.ClassINET, 1232, false)
	add("example.", 0, dns.ClassINET, 1232, false)
	// Referrals at 512 bytes, where the additional records are chosen one
	// RRset at a time.
	add("in.", dns.TypeNS, dns.ClassINET, 0, false)
	add("a.dns.pt.", dns.TypeA, dns.ClassINET, 512, false)
	// A NOTIFY with OPT, and an OPT without a question.
	m := new(dns.Msg)
	m.SetQuestion("example.", dns.TypeSOA)
	m.Opcode = dns.OpcodeNotify
	m.SetEdns0(1232, false)
	b, _ := m.Pack()
	out = append(out, b)
	m = new(dns.Msg)
	m.SetEdns0(1232, true)
	b, _ = m.Pack()
	out = append(out, b)
	return out
}

// FuzzAnswer checks that the engine never panics, never writes past the
// reply length it reports, and never sends a byte that did not come from the
// query or the zone: the destination is filled with a canary first, and the
// canary must not show up in the reply.
func FuzzAnswer(f *testing.F) {
	s, root := snapshots(f)
	for _, q := range seedQueries() {
		f.Add(q, false, false)
		f.Add(q, true, true)
	}
	dst := make([]byte, 65535)
	f.Fuzz(func(t *testing.T, q []byte, tcp, useRoot bool) {
		snap := s
		if useRoot {
			snap = root
		}
		q = q[:len(q):len(q)]
		for _, inPlace := range []bool{false, true} {
			fill(dst)
			var n int
			var sum uint32
			if inPlace {
				copy(dst, q)
				n, sum, _ = snap.answer(dst, dst[:len(q)], nil, tcp, true)
			} else {
				n, sum, _ = snap.answer(dst, q, nil, tcp, true)
			}
			checkAnswerSum(t, dst[:n], sum)
			if n > len(dst) || (!tcp && n > 4096) {
				t.Fatalf("reply of %d bytes", n)
			}
			if n == 0 {
				continue
			}
			reply := dst[:n]
			if i := bytes.Index(reply, canary); i >= 0 && !bytes.Contains(q, canary) {
				t.Fatalf("reply holds canary bytes at %d (in place %v): % x", i, inPlace, reply)
			}
			m := new(dns.Msg)
			if err := m.Unpack(reply); err != nil && len(q) > 12 && q[2]>>3&0xF == 0 {
				// Header-only replies to queries miekg cannot read are fine;
				// anything with records must parse.
				if bytes.Count(reply[6:12], []byte{0}) != 6 {
					t.Fatalf("reply does not parse: %v: % x", err, reply)
				}
			}
		}
	})
}

// checkAnswerSum checks the ones'-complement sum the engine built for
// reply (answer) against one computed from its bytes. 0 and 0xffff are the
// same number in ones' complement, so the two are compared modulo 0xffff.
func checkAnswerSum(t *testing.T, reply []byte, sum uint32) {
	t.Helper()
	if want := onessum.Sum(reply, 0); onessum.Reduce(uint64(sum))%0xffff != want%0xffff {
		t.Fatalf("engine's sum %#04x, the reply's %#04x: % x", sum, want, reply)
	}
}

// TestAnswerSum checks the engine's reply sums over the seed queries, the
// root mix with and without DO, and every query size limit from 512 bytes
// up, so that replies truncated at each additional group and denial proof
// are covered as well as whole ones.
func TestAnswerSum(t *testing.T) {
	s, root := snapshots(t)
	dst := make([]byte, 65535)
	qs := seedQueries()
	qs = append(qs, rootMix(t, false)[:256]...)
	qs = append(qs, rootMix(t, true)[:256]...)
	// NSID (of an even and an odd length, moving what follows it) and
	// BADVERS, whose extended rcode sits in the OPT record.
	for _, name := range []string{"www.example.", "nope.example.", "junk."} {
		for _, vers := range []uint8{0, 1} {
			m := new(dns.Msg)
			m.SetQuestion(name, dns.TypeA)
			m.SetEdns0(1232, true)
			o := m.IsEdns0()
			o.SetVersion(vers)
			o.Option = append(o.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
			q, _ := m.Pack()
			qs = append(qs, q)
		}
	}
	odd := NewSnapshot(s.Zones(), Config{NSID: []byte("odd"), UDPSize: 1232})
	for _, q := range qs {
		for _, snap := range []*Snapshot{s, root, odd} {
			for _, tcp := range []bool{false, true} {
				n, sum, _ := snap.answer(dst, q, nil, tcp, true)
				checkAnswerSum(t, dst[:n], sum)
			}
			for limit := 12; limit < 1400; limit += 7 {
				n, sum, _ := snap.answer(dst[:limit], q, nil, false, true)
				checkAnswerSum(t, dst[:n], sum)
			}
		}
	}
}

// TestNoAllocs pins zero allocations for every kind of answer.
func TestNoAllocs(t *testing.T) {
	s, root := snapshots(t)
	qs := seedQueries()
	dst := make([]byte, 65535)
	for i, q := range qs {
		for _, snap := range []*Snapshot{s, root} {
			a := testing.AllocsPerRun(20, func() { snap.Answer(dst, q, i%2 == 0) })
			if a != 0 {
				m := new(dns.Msg)
				m.Unpack(q)
				t.Errorf("%v: %v allocations per answer", m.Question, a)
			}
		}
	}
}

// rootMix returns packed queries in the proportions a root server sees:
// mostly NXDOMAIN for junk TLDs and referrals for real TLDs, some apex
// queries. It is deterministic.
func rootMix(tb testing.TB, do bool) [][]byte {
	_, root := snapshots(tb)
	z := root.Zones().Zones()[0]
	var tlds []string
	for i := range z.Nodes() {
		n := &z.Nodes()[i]
		if n.Labels == 1 && n.Flags&zone.FlagDelegation != 0 {
			name, _, _ := dns.UnpackDomainName(z.NodeName(n), 0)
			tlds = append(tlds, name)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var out [][]byte
	for i := 0; i < 4096; i++ {
		var name string
		var t uint16 = dns.TypeA
		switch p := rng.IntN(100); {
		case p < 55: // junk TLD
			name = randLabel(rng) + "." + randLabel(rng) + "."
		case p < 95: // referral
			name = randLabel(rng) + "." + tlds[rng.IntN(len(tlds))]
			if rng.IntN(4) == 0 {
				t = dns.TypeAAAA
			}
		default: // apex
			name = "."
			t = []uint16{dns.TypeSOA, dns.TypeNS, dns.TypeDNSKEY}[rng.IntN(3)]
		}
		m := new(dns.Msg)
		m.SetQuestion(name, t)
		m.SetEdns0(1232, do)
		b, _ := m.Pack()
		out = append(out, b)
	}
	return out
}

func randLabel(r *rand.Rand) string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 3+r.IntN(10))
	for i := range b {
		b[i] = letters[r.IntN(len(letters))]
	}
	return string(b)
}

func benchMix(b *testing.B, do bool) {
	_, root := snapshots(b)
	qs := rootMix(b, do)
	dst := make([]byte, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		root.Answer(dst, qs[i&4095], false)
	}
}

func BenchmarkAnswerRootMix(b *testing.B)   { benchMix(b, false) }
func BenchmarkAnswerRootMixDO(b *testing.B) { benchMix(b, true) }

func benchOne(b *testing.B, s *Snapshot, name string, t uint16, do bool) {
	m := new(dns.Msg)
	m.SetQuestion(name, t)
	m.SetEdns0(1232, do)
	q, _ := m.Pack()
	dst := make([]byte, 4096)
	b.ReportAllocs()
	for b.Loop() {
		s.Answer(dst, q, false)
	}
}

func BenchmarkAnswerReferral(b *testing.B) {
	_, r := snapshots(b)
	benchOne(b, r, "www.example.com.", dns.TypeA, false)
}
func BenchmarkAnswerNXDomain(b *testing.B) {
	_, r := snapshots(b)
	benchOne(b, r, "foo.junktld.", dns.TypeA, false)
}
func BenchmarkAnswerApexSOA(b *testing.B) {
	_, r := snapshots(b)
	benchOne(b, r, ".", dns.TypeSOA, false)
}
func BenchmarkAnswerCNAMEChain(b *testing.B) {
	s, _ := snapshots(b)
	benchOne(b, s, "chain1.example.", dns.TypeA, false)
}
