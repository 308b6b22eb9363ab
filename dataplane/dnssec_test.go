package dataplane

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/ringdns/ringdns/internal/testenv"
	"github.com/ringdns/ringdns/zone"
)

// needTools stops tb as testenv.RequireTool does when one of the signing
// and validating programs it needs is missing.
func needTools(tb testing.TB, progs ...string) {
	tb.Helper()
	for _, p := range progs {
		testenv.RequireTool(tb, p, "Debian packages ldnsutils for ldns-keygen and ldns-signzone, bind9-dnsutils for delv; scripts/test.sh installs them")
	}
}

// signedZone is testdata/signed.zone signed with a fresh key.
type signedZone struct {
	mode   string // "nsec", "nsec3" or "nsec3-optout"
	file   string
	zone   *zone.Zone
	snap   *Snapshot
	anchor string // the key's DNSKEY record, presentation format
}

// signZones signs testdata/signed.zone with a fresh ECDSA key three ways
// (NSEC; NSEC3 with salt abcd and no extra iterations, RFC 9276; the same
// with opt-out) and loads each.
func signZones(tb testing.TB) []*signedZone {
	tb.Helper()
	needTools(tb, "ldns-keygen", "ldns-signzone")
	dir := tb.TempDir()
	src, err := filepath.Abs("testdata/signed.zone")
	if err != nil {
		tb.Fatal(err)
	}
	run := func(name string, args ...string) string {
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			tb.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	key := run("ldns-keygen", "-a", "ECDSAP256SHA256", "-k", "signed.test.")
	anchor, err := os.ReadFile(filepath.Join(dir, key+".key"))
	if err != nil {
		tb.Fatal(err)
	}
	var out []*signedZone
	for _, m := range []struct {
		mode string
		args []string
	}{
		{"nsec", nil},
		{"nsec3", []string{"-n", "-s", "abcd", "-t", "0"}},
		{"nsec3-optout", []string{"-n", "-p", "-s", "abcd", "-t", "0"}},
	} {
		f := filepath.Join(dir, m.mode+".zone")
		args := append(append([]string{}, m.args...), "-e", "20400101000000", "-f", f, src, key)
		run("ldns-signzone", args...)
		z, err := zone.LoadFile("signed.test.", f)
		if err != nil {
			tb.Fatalf("%s: %v", m.mode, err)
		}
		set, err := zone.NewSet([]*zone.Zone{z})
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, &signedZone{mode: m.mode, file: f, zone: z, snap: NewSnapshot(set, Config{}), anchor: strings.TrimSpace(string(anchor))})
	}
	return out
}

func TestSignedZonesLoad(t *testing.T) {
	want := map[string]uint8{"nsec": zone.DenialNSEC, "nsec3": zone.DenialNSEC3, "nsec3-optout": zone.DenialNSEC3}
	for _, sz := range signZones(t) {
		if w := sz.zone.Warnings(); len(w) != 0 {
			t.Errorf("%s: warnings %q", sz.mode, w)
		}
		if d := sz.zone.Denial(); d != want[sz.mode] {
			t.Errorf("%s: denial %d, want %d", sz.mode, d, want[sz.mode])
		}
	}
}

// brief renders records as "owner TYPE", RRSIGs as "owner RRSIG COVERED".
func brief(rrs []dns.RR) []string {
	out := []string{}
	for _, rr := range rrs {
		h := rr.Header()
		switch v := rr.(type) {
		case *dns.OPT:
			continue
		case *dns.RRSIG:
			out = append(out, h.Name+" RRSIG "+dns.TypeToString[v.TypeCovered])
		default:
			out = append(out, h.Name+" "+dns.TypeToString[h.Rrtype])
		}
	}
	return out
}

// denialCase is a DO=1 query to the signed zone and the records its reply
// must hold. For the NSEC3 zones, proofs lists what the NSEC3 records of
// the authority section must prove ("match NAME" or "cover NAME"), each
// NSEC3 proving at least one, and no NSEC3 left over.
type denialCase struct {
	name   string
	qname  string
	qtype  uint16
	rcode  int
	aa     bool
	answer []string
	// auth is the authority section of the NSEC zone; for NSEC3 zones the
	// records other than NSEC3 and their RRSIGs.
	auth   []string
	proofs []string // NSEC3 zone
	// nsecOnly and nsec3Only restrict the case to one kind of zone.
	nsecOnly, nsec3Only bool
}

const sOA = "signed.test. SOA"

var soaSig = []string{"signed.test. SOA", "signed.test. RRSIG SOA"}

func plus(a []string, b ...string) []string { return append(append([]string{}, a...), b...) }

var denialCases = []denialCase{
	{name: "positive", qname: "www.signed.test.", qtype: dns.TypeA, aa: true,
		answer: []string{"www.signed.test. A", "www.signed.test. RRSIG A"}, auth: []string{}},
	{name: "DNSKEY", qname: "signed.test.", qtype: dns.TypeDNSKEY, aa: true,
		answer: []string{"signed.test. DNSKEY", "signed.test. RRSIG DNSKEY"}, auth: []string{}},
	{name: "NXDOMAIN", qname: "nope.signed.test.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true, answer: []string{},
		auth:   plus(soaSig, "mx.signed.test. NSEC", "mx.signed.test. RRSIG NSEC", "signed.test. NSEC", "signed.test. RRSIG NSEC"),
		proofs: []string{"match signed.test.", "cover nope.signed.test.", "cover *.signed.test."}},
	{name: "NXDOMAIN one NSEC", qname: "x.www.signed.test.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true, answer: []string{},
		auth:   plus(soaSig, "www.signed.test. NSEC", "www.signed.test. RRSIG NSEC"),
		proofs: []string{"match www.signed.test.", "cover x.www.signed.test.", "cover *.www.signed.test."}},
	{name: "NXDOMAIN deep", qname: "a.b.nope.signed.test.", qtype: dns.TypeTXT, rcode: dns.RcodeNameError, aa: true, answer: []string{},
		auth:   plus(soaSig, "mx.signed.test. NSEC", "mx.signed.test. RRSIG NSEC", "signed.test. NSEC", "signed.test. RRSIG NSEC"),
		proofs: []string{"match signed.test.", "cover nope.signed.test.", "cover *.signed.test."}},
	{name: "NODATA", qname: "www.signed.test.", qtype: dns.TypeMX, aa: true, answer: []string{},
		auth: plus(soaSig, "www.signed.test. NSEC", "www.signed.test. RRSIG NSEC"), proofs: []string{"match www.signed.test."}},
	{name: "NODATA at empty non-terminal", qname: "b.ent.signed.test.", qtype: dns.TypeA, aa: true, answer: []string{},
		auth: plus(soaSig, "alias.signed.test. NSEC", "alias.signed.test. RRSIG NSEC"), proofs: []string{"match b.ent.signed.test."}},
	{name: "wildcard answer", qname: "foo.wild.signed.test.", qtype: dns.TypeA, aa: true,
		answer: []string{"foo.wild.signed.test. A", "foo.wild.signed.test. RRSIG A"},
		auth:   []string{"exist.wild.signed.test. NSEC", "exist.wild.signed.test. RRSIG NSEC"}, proofs: []string{"cover foo.wild.signed.test."}},
	{name: "wildcard NODATA", qname: "foo.wild.signed.test.", qtype: dns.TypeMX, aa: true, answer: []string{},
		auth:   plus(soaSig, "exist.wild.signed.test. NSEC", "exist.wild.signed.test. RRSIG NSEC", "*.wild.signed.test. NSEC", "*.wild.signed.test. RRSIG NSEC"),
		proofs: []string{"match *.wild.signed.test.", "match wild.signed.test.", "cover foo.wild.signed.test."}},
	{name: "CNAME", qname: "alias.signed.test.", qtype: dns.TypeA, aa: true,
		answer: []string{"alias.signed.test. CNAME", "alias.signed.test. RRSIG CNAME", "www.signed.test. A", "www.signed.test. RRSIG A"}, auth: []string{}},
	// Below a DNAME the DNAME comes with its RRSIG and the synthesized
	// CNAME with none (RFC 6672 section 5.3: it is not signed); a CNAME
	// question stops at the synthesized CNAME, with no proof from its
	// target, which for other types is answered as usual.
	{name: "DNAME", qname: "a.b.zdn.signed.test.", qtype: dns.TypeA, aa: true,
		answer: []string{"zdn.signed.test. DNAME", "zdn.signed.test. RRSIG DNAME", "a.b.zdn.signed.test. CNAME", "a.b.ent.signed.test. A", "a.b.ent.signed.test. RRSIG A"}, auth: []string{}},
	{name: "DNAME CNAME query", qname: "a.b.zdn.signed.test.", qtype: dns.TypeCNAME, aa: true,
		answer: []string{"zdn.signed.test. DNAME", "zdn.signed.test. RRSIG DNAME", "a.b.zdn.signed.test. CNAME"}, auth: []string{}},
	{name: "DNAME CNAME query, target missing", qname: "nope.zdn.signed.test.", qtype: dns.TypeCNAME, aa: true,
		answer: []string{"zdn.signed.test. DNAME", "zdn.signed.test. RRSIG DNAME", "nope.zdn.signed.test. CNAME"}, auth: []string{}},
	{name: "insecure referral", qname: "host.insecure.signed.test.", qtype: dns.TypeA, answer: []string{},
		auth:   []string{"insecure.signed.test. NS", "insecure.signed.test. NSEC", "insecure.signed.test. RRSIG NSEC"},
		proofs: []string{"match insecure.signed.test."}},
	{name: "secure referral", qname: "host.secure.signed.test.", qtype: dns.TypeA, answer: []string{},
		auth: []string{"secure.signed.test. NS", "secure.signed.test. DS", "secure.signed.test. RRSIG DS"}},
	{name: "DS at insecure cut", qname: "insecure.signed.test.", qtype: dns.TypeDS, aa: true, answer: []string{},
		auth:   plus(soaSig, "insecure.signed.test. NSEC", "insecure.signed.test. RRSIG NSEC"),
		proofs: []string{"match insecure.signed.test."}},
	{name: "DS at secure cut", qname: "secure.signed.test.", qtype: dns.TypeDS, aa: true,
		answer: []string{"secure.signed.test. DS", "secure.signed.test. RRSIG DS"}, auth: []string{}},
	{name: "NSEC query", qname: "www.signed.test.", qtype: dns.TypeNSEC, aa: true, nsecOnly: true,
		answer: []string{"www.signed.test. NSEC", "www.signed.test. RRSIG NSEC"}, auth: []string{}},
	{name: "NSEC query in NSEC3 zone", qname: "www.signed.test.", qtype: dns.TypeNSEC, aa: true, nsec3Only: true,
		answer: []string{}, auth: soaSig, proofs: []string{"match www.signed.test."}},
}

// nsec3Split separates the NSEC3 records (and their RRSIGs) from the rest.
func nsec3Split(rrs []dns.RR) (rest []dns.RR, n3 []*dns.NSEC3, sigs int) {
	for _, rr := range rrs {
		switch v := rr.(type) {
		case *dns.NSEC3:
			n3 = append(n3, v)
		case *dns.RRSIG:
			if v.TypeCovered == dns.TypeNSEC3 {
				sigs++
				continue
			}
			rest = append(rest, rr)
		default:
			rest = append(rest, rr)
		}
	}
	return rest, n3, sigs
}

func TestDenial(t *testing.T) {
	for _, sz := range signZones(t) {
		for _, c := range denialCases {
			if c.nsecOnly && sz.mode != "nsec" || c.nsec3Only && sz.mode == "nsec" {
				continue
			}
			t.Run(sz.mode+"/"+c.name, func(t *testing.T) {
				r, _, _ := ask(t, sz.snap, Case{QName: c.qname, QType: c.qtype, EDNS: 1232, DO: true})
				if r == nil {
					t.Fatal("no reply")
				}
				if r.Rcode != c.rcode || r.Authoritative != c.aa || r.Truncated {
					t.Errorf("rcode %s AA %v TC %v\n%s", dns.RcodeToString[r.Rcode], r.Authoritative, r.Truncated, r)
				}
				if g := brief(r.Answer); strings.Join(g, "\n") != strings.Join(c.answer, "\n") {
					t.Errorf("answer\n got  %q\n want %q", g, c.answer)
				}
				if sz.mode == "nsec" {
					if g := brief(r.Ns); strings.Join(g, "\n") != strings.Join(c.auth, "\n") {
						t.Errorf("authority\n got  %q\n want %q\n%s", g, c.auth, r)
					}
					return
				}
				rest, n3, sigs := nsec3Split(r.Ns)
				var want []string
				for _, a := range c.auth {
					if !strings.Contains(a, "NSEC") {
						want = append(want, a)
					}
				}
				if g := brief(rest); strings.Join(g, "\n") != strings.Join(want, "\n") {
					t.Errorf("authority without NSEC3\n got  %q\n want %q", g, want)
				}
				proofs := c.proofs
				if sigs != len(n3) {
					t.Errorf("%d NSEC3 with %d RRSIGs", len(n3), sigs)
				}
				used := make([]bool, len(n3))
				for _, p := range proofs {
					kind, nm, _ := strings.Cut(p, " ")
					ok := false
					for i, rr := range n3 {
						if kind == "match" && rr.Match(nm) || kind == "cover" && rr.Cover(nm) {
							ok, used[i] = true, true
						}
					}
					if !ok {
						t.Errorf("no NSEC3 to %s\n%s", p, r)
					}
				}
				for i, u := range used {
					if !u {
						t.Errorf("NSEC3 %s proves nothing asked for", n3[i].Header().Name)
					}
				}
			})
		}
	}
}

// Without DO no DNSSEC record is added, unless asked for by type.
func TestDenialWithoutDO(t *testing.T) {
	for _, sz := range signZones(t) {
		for _, c := range []struct {
			qname string
			qtype uint16
			want  []string
		}{
			{"nope.signed.test.", dns.TypeA, []string{sOA}},
			{"www.signed.test.", dns.TypeMX, []string{sOA}},
			{"foo.wild.signed.test.", dns.TypeA, []string{}},
			{"host.insecure.signed.test.", dns.TypeA, []string{"insecure.signed.test. NS"}},
			{"host.secure.signed.test.", dns.TypeA, []string{"secure.signed.test. NS"}},
		} {
			r, _, _ := ask(t, sz.snap, Case{QName: c.qname, QType: c.qtype, EDNS: 1232})
			if g := brief(r.Ns); strings.Join(g, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("%s %s %s: authority %q, want %q", sz.mode, c.qname, dns.TypeToString[c.qtype], g, c.want)
			}
			for _, rr := range r.Answer {
				if rr.Header().Rrtype == dns.TypeRRSIG {
					t.Errorf("%s %s: RRSIG in answer without DO", sz.mode, c.qname)
				}
			}
		}
	}
}

// The DO=1 paths allocate nothing, NSEC3 hashing included.
func TestDenialNoAllocs(t *testing.T) {
	dst := make([]byte, 65535)
	for _, sz := range signZones(t) {
		for _, c := range denialCases {
			m := new(dns.Msg)
			m.SetQuestion(c.qname, c.qtype)
			m.SetEdns0(1232, true)
			q, _ := m.Pack()
			if a := testing.AllocsPerRun(20, func() { sz.snap.Answer(dst, q, false) }); a != 0 {
				t.Errorf("%s %s: %v allocations per answer", sz.mode, c.name, a)
			}
		}
	}
}

// A signed reply that does not fit is truncated; a referral keeps its DS
// and RRSIG or is truncated.
func TestDenialTruncation(t *testing.T) {
	_, root := snapshots(t)
	for _, c := range []Case{
		{Name: "NXDOMAIN proofs at 512", QName: "junk.", QType: dns.TypeA, EDNS: 512, DO: true, AA: true, Rcode: dns.RcodeNameError, TC: true, Answer: []string{}, Authority: []string{}},
		{Name: "NXDOMAIN proofs at 1232", QName: "junk.", QType: dns.TypeA, EDNS: 1232, DO: true, AA: true, Rcode: dns.RcodeNameError},
		{Name: "signed referral at 512", QName: "www.example.com.", QType: dns.TypeA, EDNS: 512, DO: true, TC: true, Authority: []string{}},
	} {
		check(t, root, c)
	}
	r, _, _ := ask(t, root, Case{QName: "junk.", QType: dns.TypeA, EDNS: 1232, DO: true})
	if g := brief(r.Ns); strings.Join(g, ",") != ". SOA,. RRSIG SOA,juniper. NSEC,juniper. RRSIG NSEC,. NSEC,. RRSIG NSEC" {
		t.Errorf("root NXDOMAIN authority %q", g)
	}
}

// With DO, the signed address RRsets of the additional section bring their
// RRSIGs, after all the addresses, as Knot DNS adds them; glue has none.
// They are optional: with less room the last goes without TC, and without
// DO none comes.
func TestAdditionalSignatures(t *testing.T) {
	for _, sz := range signZones(t) {
		for _, c := range []struct {
			qname string
			qtype uint16
			want  []string
		}{
			{"signed.test.", dns.TypeNS, []string{"ns1.signed.test. A", "ns1.signed.test. RRSIG A"}},
			{"mx.signed.test.", dns.TypeMX, []string{"www.signed.test. A", "www.signed.test. AAAA", "www.signed.test. RRSIG A", "www.signed.test. RRSIG AAAA"}},
			{"host.insecure.signed.test.", dns.TypeA, []string{"ns.insecure.signed.test. A"}},
			{"host.secure.signed.test.", dns.TypeA, []string{"ns.secure.signed.test. A"}},
		} {
			name := sz.mode + " " + c.qname + " " + dns.TypeToString[c.qtype]
			r, wire, _ := ask(t, sz.snap, Case{QName: c.qname, QType: c.qtype, EDNS: 1232, DO: true})
			if g := brief(r.Extra); strings.Join(g, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("%s: additional\n got  %q\n want %q\n%s", name, g, c.want, r)
			}
			for _, rr := range r.Extra {
				if sig, ok := rr.(*dns.RRSIG); ok && sig.SignerName != "signed.test." {
					t.Errorf("%s: RRSIG signed by %s", name, sig.SignerName)
				}
			}
			plain, _, _ := ask(t, sz.snap, Case{QName: c.qname, QType: c.qtype, EDNS: 1232})
			for _, rr := range plain.Extra {
				if rr.Header().Rrtype == dns.TypeRRSIG {
					t.Errorf("%s: RRSIG in the additional section without DO", name)
				}
			}
			if len(r.Extra) < 2 || r.Extra[len(r.Extra)-2].Header().Rrtype != dns.TypeRRSIG {
				continue
			}
			// One byte less than the whole reply: the last RRSIG goes,
			// the rest stays, TC stays clear.
			m := new(dns.Msg)
			m.SetQuestion(c.qname, c.qtype)
			m.SetEdns0(1232, true)
			q, _ := m.Pack()
			dst := make([]byte, len(wire)-1)
			n, _ := sz.snap.Answer(dst, q, false)
			short := new(dns.Msg)
			if err := short.Unpack(dst[:n]); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			want := c.want[:len(c.want)-1]
			if g := brief(short.Extra); short.Truncated || strings.Join(g, "\n") != strings.Join(want, "\n") {
				t.Errorf("%s in %d bytes: TC %v, additional\n got  %q\n want %q", name, len(dst), short.Truncated, g, want)
			}
			if a := testing.AllocsPerRun(20, func() { sz.snap.Answer(dst, q, false) }); a != 0 {
				t.Errorf("%s: %v allocations per answer", name, a)
			}
		}
	}
}

// The children index of wide nodes finds the same predecessor as the
// binary search over all the nodes, for labels of existing children, labels
// next to them (one byte more or less, a prefix, a longer label sharing the
// eight-byte key) and random ones. (An existing child's own label, which
// below is not asked for, gives the node before that child in both.)
func TestBelowWideChildren(t *testing.T) {
	_, root := snapshots(t)
	z := root.Zones().Zones()[0]
	rng := rand.New(rand.NewPCG(3, 4))
	wide := 0
	for ce := range uint32(len(z.Nodes())) {
		_, kids, _, ok := z.WideChildren(ce)
		if !ok {
			continue
		}
		wide++
		var labels [][]byte
		for _, k := range kids {
			w := z.NodeName(&z.Nodes()[k])
			l := w[1 : 1+int(w[0])]
			labels = append(labels, l, l[:len(l)-1], append(append([]byte{}, l...), 0), append(append([]byte{}, l...), "zzzzzzzz"...))
			if len(l) > 0 {
				up := append([]byte{}, l...)
				up[len(up)-1]++
				labels = append(labels, up)
			}
		}
		for range 2000 {
			l := make([]byte, 1+rng.IntN(12))
			for i := range l {
				l[i] = "*-0123456789abcdefghijklmnopqrstuvwxyz"[rng.IntN(38)]
			}
			labels = append(labels, l)
		}
		labels = append(labels, []byte{}, []byte("*"), []byte{0xff, 0xff})
		for _, l := range labels {
			if len(l) == 0 {
				continue
			}
			if got, want := below(z, ce, l), belowSearch(z, ce, l); got != want {
				t.Fatalf("below(%d, %q) = %d, binary search %d", ce, l, got, want)
			}
		}
	}
	if wide == 0 {
		t.Fatal("the root zone has no indexed node")
	}
}

// serveUDP answers queries to snap on a loopback port until the test ends.
func serveUDP(t *testing.T, snap *Snapshot) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		dst := make([]byte, 65535)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if m, _ := snap.Answer(dst, buf[:n], false); m > 0 {
				pc.WriteTo(dst[:m], addr)
			}
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	return pc.LocalAddr().String()
}

// TestDenialValidates has BIND's validator, delv, check our replies for the
// signed zones with the zone's key as its only trust anchor: positive,
// wildcard, NXDOMAIN, NODATA (empty non-terminal and wildcard included) and
// the proofs a referral rests on. delv resolves through the server as
// through a recursive one and refuses a referral from it ("non-improving
// referral"), so the referrals' proofs are validated through the DS
// queries at the same cuts, whose replies carry the same DS or NSEC/NSEC3
// records with the same signatures (TestDenial checks that they match).
func TestDenialValidates(t *testing.T) {
	needTools(t, "delv")
	for _, sz := range signZones(t) {
		addr := serveUDP(t, sz.snap)
		host, port, _ := net.SplitHostPort(addr)
		// The key file's record may end in a comment.
		rec, _, _ := strings.Cut(sz.anchor, ";")
		f := strings.Fields(rec)
		anchors := filepath.Join(t.TempDir(), "anchors")
		txt := "trust-anchors {\n  signed.test. static-key " + f[3] + " " + f[4] + " " + f[5] + " \"" + strings.Join(f[6:], "") + "\";\n};\n"
		if err := os.WriteFile(anchors, []byte(txt), 0o644); err != nil {
			t.Fatal(err)
		}
		// Under opt-out the NSEC3 covering the next closer name cannot
		// exclude an insecure delegation there, so a validator rightly
		// takes a wildcard answer as insecure (RFC 5155 sections 6, 8.8).
		wildWant := "; fully validated"
		if sz.mode == "nsec3-optout" {
			wildWant = "; unsigned answer"
		}
		for _, c := range []struct {
			qname, qtype string
			want         string // in delv's output
		}{
			{"www.signed.test.", "A", "; fully validated"},
			{"foo.wild.signed.test.", "A", wildWant},
			{"alias.signed.test.", "A", "; fully validated"},
			{"nope.signed.test.", "A", "; negative response, fully validated"},
			{"x.www.signed.test.", "A", "; negative response, fully validated"},
			{"www.signed.test.", "MX", "; negative response, fully validated"},
			{"b.ent.signed.test.", "A", "; negative response, fully validated"},
			{"foo.wild.signed.test.", "MX", "; negative response, fully validated"},
			{"secure.signed.test.", "DS", "; fully validated"},
			{"insecure.signed.test.", "DS", "; negative response, fully validated"},
		} {
			ctx := exec.Command("delv", "@"+host, "-p", port, "-a", anchors, "+root=signed.test.", c.qname, c.qtype)
			out, err := runTimeout(ctx, 20*time.Second)
			if !strings.Contains(out, c.want) {
				t.Errorf("%s: delv %s %s: %v, want %q in:\n%s", sz.mode, c.qname, c.qtype, err, c.want, out)
			}
		}
	}
}

func runTimeout(cmd *exec.Cmd, d time.Duration) (string, error) {
	var b strings.Builder
	cmd.Stdout, cmd.Stderr = &b, &b
	if err := cmd.Start(); err != nil {
		return "", err
	}
	ch := make(chan error, 1)
	go func() { ch <- cmd.Wait() }()
	select {
	case err := <-ch:
		return b.String(), err
	case <-time.After(d):
		cmd.Process.Kill()
		<-ch
		return b.String(), errors.New("timed out")
	}
}

// TestDenialOptOutSpan serves an NSEC3 zone in which the insecure
// delegation has no NSEC3 of its own, as opt-out allows (RFC 5155 section
// 6; ldns-signzone -p still gives it one, so the test removes it, which
// also breaks the chain there). Its DS query and its referral get the
// closest encloser proof: the apex's NSEC3 and the one covering the
// delegation. The load warns of the gap, naming it.
func TestDenialOptOutSpan(t *testing.T) {
	var sz *signedZone
	for _, s := range signZones(t) {
		if s.mode == "nsec3-optout" {
			sz = s
		}
	}
	data, err := os.ReadFile(sz.file)
	if err != nil {
		t.Fatal(err)
	}
	h := strings.ToLower(dns.HashName("insecure.signed.test.", dns.SHA1, 0, "abcd")) + ".signed.test."
	var kept []string
	for _, l := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(strings.ToLower(l), h) {
			kept = append(kept, l)
		}
	}
	if len(kept) == len(strings.Split(string(data), "\n")) {
		t.Fatalf("no NSEC3 at %s in the signed zone", h)
	}
	z, err := zone.Parse(strings.NewReader(strings.Join(kept, "\n")), "signed.test.", "optout.zone")
	if err != nil {
		t.Fatal(err)
	}
	if w := z.Warnings(); len(w) != 1 || !strings.Contains(w[0], "NSEC3 chain broken") || !strings.HasPrefix(w[0], "optout.zone:") {
		t.Errorf("warnings %q, want one naming the NSEC3 chain's gap", w)
	}
	set, _ := zone.NewSet([]*zone.Zone{z})
	snap := NewSnapshot(set, Config{})
	for _, c := range []Case{
		{QName: "insecure.signed.test.", QType: dns.TypeDS},
		{QName: "host.insecure.signed.test.", QType: dns.TypeA},
	} {
		c.EDNS, c.DO = 1232, true
		r, _, _ := ask(t, snap, c)
		_, n3, sigs := nsec3Split(r.Ns)
		// The removed hash is the next hash of the NSEC3 before it, so
		// that one covers the delegation up to and including it.
		hu := strings.ToUpper(dns.HashName("insecure.signed.test.", dns.SHA1, 0, "abcd"))
		var match, cover bool
		for _, rr := range n3 {
			match = match || rr.Match("signed.test.")
			own := strings.ToUpper(strings.Split(rr.Hdr.Name, ".")[0])
			cover = cover || own < hu && hu <= rr.NextDomain && rr.Flags&1 == 1
		}
		if len(n3) != 2 || sigs != 2 || !match || !cover {
			t.Errorf("%s %s: want the apex's NSEC3 and an opt-out NSEC3 covering the delegation:\n%s", c.QName, dns.TypeToString[c.QType], r)
		}
	}
}

func benchSigned(b *testing.B, mode, qname string, qtype uint16) {
	for _, sz := range signZones(b) {
		if sz.mode == mode {
			benchOne(b, sz.snap, qname, qtype, true)
			return
		}
	}
}

// NXDOMAIN with DO from an NSEC3 zone with no extra iterations: two NSEC3
// hashes at query time (the next closer name's and none other: the
// closest encloser's and the wildcard's are computed at load time).
func BenchmarkAnswerNSEC3NXDomain(b *testing.B) {
	benchSigned(b, "nsec3", "nope.signed.test.", dns.TypeA)
}

func BenchmarkAnswerNSECNXDomain(b *testing.B) {
	benchSigned(b, "nsec", "nope.signed.test.", dns.TypeA)
}

func BenchmarkAnswerRootNXDomainDO(b *testing.B) {
	_, r := snapshots(b)
	benchOne(b, r, "foo.junktld.", dns.TypeA, true)
}

// FuzzAnswerSigned is FuzzAnswer over the signed zones, whose DO=1 replies
// carry denial proofs.
func FuzzAnswerSigned(f *testing.F) {
	zs := signZones(f)
	for _, c := range denialCases {
		for _, do := range []bool{false, true} {
			m := new(dns.Msg)
			m.SetQuestion(c.qname, c.qtype)
			m.SetEdns0(512, do)
			q, _ := m.Pack()
			f.Add(q, uint8(0))
			f.Add(q, uint8(2))
		}
	}
	dst := make([]byte, 65535)
	f.Fuzz(func(t *testing.T, q []byte, which uint8) {
		snap := zs[int(which)%len(zs)].snap
		q = q[:len(q):len(q)]
		fill(dst)
		n, sum, _ := snap.answer(dst, q, nil, which&4 != 0, true)
		checkAnswerSum(t, dst[:n], sum)
		if n == 0 {
			return
		}
		if i := bytes.Index(dst[:n], canary); i >= 0 && !bytes.Contains(q, canary) {
			t.Fatalf("reply holds canary bytes at %d: % x", i, dst[:n])
		}
		m := new(dns.Msg)
		if err := m.Unpack(dst[:n]); err != nil && len(q) > 12 && q[2]>>3&0xF == 0 && bytes.Count(dst[6:12], []byte{0}) != 6 {
			t.Fatalf("reply does not parse: %v: % x", err, dst[:n])
		}
	})
}
