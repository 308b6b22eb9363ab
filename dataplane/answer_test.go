package dataplane

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
	"github.com/ringdns/ringdns/zone"
)

var update = flag.Bool("update", false, "rewrite the golden replies in testdata/golden")

var (
	snapOnce sync.Once
	testSnap *Snapshot
	rootSnap *Snapshot
)

// snapshots loads the crafted zone and the real root zone once.
func snapshots(t testing.TB) (*Snapshot, *Snapshot) {
	snapOnce.Do(func() {
		ex, err := zone.LoadFile("example.", "testdata/example.zone")
		if err != nil {
			panic(err)
		}
		set, err := zone.NewSet([]*zone.Zone{ex})
		if err != nil {
			panic(err)
		}
		testSnap = NewSnapshot(set, Config{NSID: []byte("ringdns-test"), Identity: "ns.test", Version: "ringdns 0"})
		root, err := zone.LoadFile(".", "../zone/testdata/root.zone")
		if err != nil {
			panic(err)
		}
		rset, err := zone.NewSet([]*zone.Zone{root})
		if err != nil {
			panic(err)
		}
		rootSnap = NewSnapshot(rset, Config{})
	})
	return testSnap, rootSnap
}

// Case is one query and what its reply must hold.
type Case struct {
	Name   string
	QName  string
	QType  uint16
	QClass uint16 // 0 means IN
	EDNS   int    // EDNS UDP size; 0 means no OPT
	DO     bool
	TCP    bool

	Rcode      int
	AA, TC     bool
	Answer     []string // "owner TYPE rdata" in order; nil = don't check
	Authority  []string
	Additional []string // without the OPT record
	NAnswer    int      // checked when Answer is nil and NAnswer > 0
	NAdd       int      // checked when Additional is nil and NAdd > 0
}

func short(rr dns.RR) string {
	f := strings.Fields(rr.String())
	// owner TTL class type rdata... -> owner type rdata
	return strings.Join(append([]string{f[0], f[3]}, f[4:]...), " ")
}

func shorts(rrs []dns.RR) []string {
	out := []string{}
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		out = append(out, short(rr))
	}
	return out
}

func ask(t testing.TB, s *Snapshot, c Case) (*dns.Msg, []byte, Result) {
	m := new(dns.Msg)
	m.SetQuestion(c.QName, c.QType)
	if c.QClass != 0 {
		m.Question[0].Qclass = c.QClass
	}
	if c.EDNS > 0 {
		m.SetEdns0(uint16(c.EDNS), c.DO)
	}
	q, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 65535)
	n, res := s.Answer(dst, q, c.TCP)
	if n == 0 {
		return nil, nil, res
	}
	r := new(dns.Msg)
	if err := r.Unpack(dst[:n]); err != nil {
		t.Fatalf("%s: reply does not unpack: %v", c.Name, err)
	}
	qn := 12 + len(dns.Fqdn(c.QName)) + 1 + 4
	if c.QName == "." {
		qn = 12 + 1 + 4
	}
	if !bytes.Equal(dst[12:qn], q[12:qn]) {
		t.Errorf("%s: question not echoed byte for byte", c.Name)
	}
	if r.Id != m.Id || !r.Response {
		t.Errorf("%s: bad id or QR", c.Name)
	}
	return r, dst[:n], res
}

func check(t *testing.T, s *Snapshot, c Case) {
	t.Helper()
	r, _, _ := ask(t, s, c)
	if r == nil {
		t.Fatalf("%s: no reply", c.Name)
	}
	if r.Rcode != c.Rcode {
		t.Errorf("%s: rcode %s, want %s\n%s", c.Name, dns.RcodeToString[r.Rcode], dns.RcodeToString[c.Rcode], r)
	}
	if r.Authoritative != c.AA {
		t.Errorf("%s: AA=%v, want %v", c.Name, r.Authoritative, c.AA)
	}
	if r.Truncated != c.TC {
		t.Errorf("%s: TC=%v, want %v", c.Name, r.Truncated, c.TC)
	}
	eq := func(sec string, got []dns.RR, want []string) {
		if want == nil {
			return
		}
		g := shorts(got)
		if strings.Join(g, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s: %s section:\n got  %q\n want %q", c.Name, sec, g, want)
		}
	}
	eq("answer", r.Answer, c.Answer)
	eq("authority", r.Ns, c.Authority)
	eq("additional", r.Extra, c.Additional)
	if c.Answer == nil && c.NAnswer > 0 && len(r.Answer) != c.NAnswer {
		t.Errorf("%s: %d answers, want %d", c.Name, len(r.Answer), c.NAnswer)
	}
	if c.Additional == nil && c.NAdd > 0 && len(shorts(r.Extra)) != c.NAdd {
		t.Errorf("%s: %d additional, want %d", c.Name, len(shorts(r.Extra)), c.NAdd)
	}
	if c.EDNS > 0 && r.IsEdns0() == nil && c.Rcode != dns.RcodeFormatError {
		t.Errorf("%s: no OPT in the reply to an EDNS query", c.Name)
	}
	if c.EDNS == 0 && r.IsEdns0() != nil {
		t.Errorf("%s: OPT in the reply to a query without EDNS", c.Name)
	}
}

const soa = "example. SOA ns1.example. hostmaster.example. 2024010101 7200 3600 1209600 300"

func TestAnswerExample(t *testing.T) {
	s, _ := snapshots(t)
	cases := []Case{
		{Name: "apex SOA", QName: "example.", QType: dns.TypeSOA, AA: true, Answer: []string{soa}, Authority: []string{}},
		{Name: "apex NS with glue", QName: "example.", QType: dns.TypeNS, AA: true,
			Answer:     []string{"example. NS ns1.example.", "example. NS ns2.example.net."},
			Additional: []string{"ns1.example. A 192.0.2.53", "ns1.example. AAAA 2001:db8::53"}},
		{Name: "apex MX additional", QName: "example.", QType: dns.TypeMX, AA: true,
			Answer: []string{"example. MX 10 mail.example."}, Additional: []string{"mail.example. A 192.0.2.25"}},
		{Name: "A", QName: "www.example.", QType: dns.TypeA, AA: true, Answer: []string{"www.example. A 192.0.2.80"}, Authority: []string{}},
		{Name: "0x20 case kept", QName: "wWw.ExAmPlE.", QType: dns.TypeA, AA: true, Answer: []string{"wWw.ExAmPlE. A 192.0.2.80"}},
		{Name: "NODATA", QName: "www.example.", QType: dns.TypeMX, AA: true, Answer: []string{}, Authority: []string{strings.Replace(soa, "", "", 1)}},
		{Name: "NXDOMAIN", QName: "nope.example.", QType: dns.TypeA, Rcode: dns.RcodeNameError, AA: true, Answer: []string{}, Authority: []string{soa}},
		{Name: "NXDOMAIN below existing", QName: "x.www.example.", QType: dns.TypeA, Rcode: dns.RcodeNameError, AA: true, Authority: []string{soa}},
		{Name: "ENT is NODATA", QName: "b.ent.example.", QType: dns.TypeA, AA: true, Answer: []string{}, Authority: []string{soa}},
		{Name: "ENT parent NODATA", QName: "ent.example.", QType: dns.TypeA, AA: true, Answer: []string{}, Authority: []string{soa}},
		{Name: "below ENT", QName: "a.b.ent.example.", QType: dns.TypeA, AA: true, Answer: []string{"a.b.ent.example. A 192.0.2.7"}},
		{Name: "CNAME", QName: "alias.example.", QType: dns.TypeA, AA: true, Answer: []string{"alias.example. CNAME www.example.", "www.example. A 192.0.2.80"}},
		{Name: "CNAME query for CNAME", QName: "alias.example.", QType: dns.TypeCNAME, AA: true, Answer: []string{"alias.example. CNAME www.example."}},
		{Name: "CNAME chain", QName: "chain1.example.", QType: dns.TypeAAAA, AA: true,
			Answer: []string{"chain1.example. CNAME chain2.example.", "chain2.example. CNAME www.example.", "www.example. AAAA 2001:db8::80"}},
		{Name: "CNAME loop stops", QName: "loop1.example.", QType: dns.TypeA, AA: true,
			Answer: []string{"loop1.example. CNAME loop2.example.", "loop2.example. CNAME loop1.example."}},
		// Five CNAME records are followed; a sixth is neither written nor
		// followed, and no negative answer follows (as Knot DNS does).
		{Name: "CNAME chain limit", QName: "long1.example.", QType: dns.TypeA, AA: true, Authority: []string{},
			Answer: []string{"long1.example. CNAME long2.example.", "long2.example. CNAME long3.example.", "long3.example. CNAME long4.example.",
				"long4.example. CNAME long5.example.", "long5.example. CNAME long6.example."}},
		{Name: "CNAME chain of five ends in data", QName: "long2.example.", QType: dns.TypeA, AA: true, NAnswer: 6},
		// A DNAME loop: each DNAME is written once, the synthesis goes on
		// until the chain limit.
		{Name: "DNAME loop", QName: "c.dnself.example.", QType: dns.TypeA, AA: true, Authority: []string{},
			Answer: []string{"dnself.example. DNAME x.dnself2.example.", "c.dnself.example. CNAME c.x.dnself2.example.",
				"dnself2.example. DNAME dnself.example.", "c.x.dnself2.example. CNAME c.x.dnself.example.",
				"c.x.dnself.example. CNAME c.x.x.dnself2.example.", "c.x.x.dnself2.example. CNAME c.x.x.dnself.example.",
				"c.x.x.dnself.example. CNAME c.x.x.x.dnself2.example."}},
		{Name: "CNAME out of zone", QName: "out.example.", QType: dns.TypeA, AA: true, Answer: []string{"out.example. CNAME www.example.net."}, Authority: []string{}},
		{Name: "CNAME to NXDOMAIN", QName: "tonx.example.", QType: dns.TypeA, AA: true, Rcode: dns.RcodeNameError,
			Answer: []string{"tonx.example. CNAME nothere.example."}, Authority: []string{soa}},
		{Name: "wildcard", QName: "foo.wild.example.", QType: dns.TypeA, AA: true, Answer: []string{"foo.wild.example. A 192.0.2.99"}},
		{Name: "wildcard deep", QName: "a.b.c.wild.example.", QType: dns.TypeTXT, AA: true, Answer: []string{"a.b.c.wild.example. TXT \"wild\""}},
		{Name: "wildcard NODATA", QName: "foo.wild.example.", QType: dns.TypeMX, AA: true, Answer: []string{}, Authority: []string{soa}},
		{Name: "no wildcard through existing", QName: "a.exist.wild.example.", QType: dns.TypeA, AA: true, Rcode: dns.RcodeNameError, Authority: []string{soa}},
		{Name: "existing beside wildcard", QName: "exist.wild.example.", QType: dns.TypeA, AA: true, Answer: []string{"exist.wild.example. A 192.0.2.98"}},
		{Name: "wildcard itself", QName: "*.wild.example.", QType: dns.TypeA, AA: true, Answer: []string{"*.wild.example. A 192.0.2.99"}},
		{Name: "wildcard CNAME", QName: "x.wcname.example.", QType: dns.TypeA, AA: true, Answer: []string{"x.wcname.example. CNAME www.example.", "www.example. A 192.0.2.80"}},
		{Name: "referral", QName: "host.sub.example.", QType: dns.TypeA,
			Answer: []string{}, Authority: []string{"sub.example. NS ns.sub.example.", "sub.example. NS ns.other.example.net."},
			Additional: []string{"ns.sub.example. A 192.0.2.100", "ns.sub.example. AAAA 2001:db8::100"}},
		{Name: "referral at cut", QName: "sub.example.", QType: dns.TypeNS, NAdd: 2,
			Authority: []string{"sub.example. NS ns.sub.example.", "sub.example. NS ns.other.example.net."}},
		{Name: "glue is not an answer", QName: "ns.sub.example.", QType: dns.TypeA, NAdd: 2,
			Answer: []string{}, Authority: []string{"sub.example. NS ns.sub.example.", "sub.example. NS ns.other.example.net."}},
		{Name: "DS from parent", QName: "sub.example.", QType: dns.TypeDS, AA: true,
			Answer: []string{"sub.example. DS 12345 8 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE7D8D1A3FB0F1C4A1B2C3D4E5"}},
		{Name: "DS absent at cut", QName: "sib.example.", QType: dns.TypeDS, AA: true, Answer: []string{}, Authority: []string{soa}},
		// The zone is unsigned: its DS proves nothing and is left out even
		// with DO (the signed root's referrals carry it, see TestAnswerRoot).
		{Name: "no DS in referral from unsigned zone", QName: "x.sub.example.", QType: dns.TypeA, EDNS: 1232, DO: true,
			Authority: []string{"sub.example. NS ns.sub.example.", "sub.example. NS ns.other.example.net."}},
		{Name: "sibling glue", QName: "sib.example.", QType: dns.TypeA,
			Authority:  []string{"sib.example. NS ns.sub.example.", "sib.example. NS ns1.example."},
			Additional: []string{"ns.sub.example. A 192.0.2.100", "ns.sub.example. AAAA 2001:db8::100", "ns1.example. A 192.0.2.53", "ns1.example. AAAA 2001:db8::53"}},
		{Name: "DNAME", QName: "a.b.dn.example.", QType: dns.TypeA, AA: true,
			Answer: []string{"dn.example. DNAME example.net.", "a.b.dn.example. CNAME a.b.example.net."}},
		{Name: "DNAME owner itself", QName: "dn.example.", QType: dns.TypeA, AA: true, Answer: []string{}, Authority: []string{soa}},
		{Name: "DNAME in zone followed", QName: "x.dnin.example.", QType: dns.TypeA, AA: true, Rcode: dns.RcodeNameError,
			Answer: []string{"dnin.example. DNAME www.example.", "x.dnin.example. CNAME x.www.example."}, Authority: []string{soa}},
		{Name: "DNAME YXDOMAIN", QName: strings.Repeat("abcdefghij.", 20) + "dlong.example.", QType: dns.TypeA, AA: true, Rcode: dns.RcodeYXDomain, NAnswer: 1},
		{Name: "DNAME to existing data followed", QName: "a.b.dnent.example.", QType: dns.TypeA, AA: true,
			Answer: []string{"dnent.example. DNAME ent.example.", "a.b.dnent.example. CNAME a.b.ent.example.", "a.b.ent.example. A 192.0.2.7"}, Authority: []string{}},
		// A CNAME question below a DNAME is answered by the synthesized
		// CNAME, which is not followed (RFC 1034 section 4.3.2 step 3a, RFC
		// 6672 section 3.2), as Knot DNS and NSD answer: no NXDOMAIN or
		// NODATA from its target, whether the target exists or not.
		{Name: "DNAME CNAME query, target missing", QName: "x.dnin.example.", QType: dns.TypeCNAME, AA: true, Authority: []string{},
			Answer: []string{"dnin.example. DNAME www.example.", "x.dnin.example. CNAME x.www.example."}},
		{Name: "DNAME CNAME query, target exists", QName: "a.b.dnent.example.", QType: dns.TypeCNAME, AA: true, Authority: []string{},
			Answer: []string{"dnent.example. DNAME ent.example.", "a.b.dnent.example. CNAME a.b.ent.example."}},
		{Name: "DNAME CNAME query, target below a DNAME", QName: "c.dnself.example.", QType: dns.TypeCNAME, AA: true, Authority: []string{},
			Answer: []string{"dnself.example. DNAME x.dnself2.example.", "c.dnself.example. CNAME c.x.dnself2.example."}},
		{Name: "DNAME CNAME query out of zone", QName: "a.dn.example.", QType: dns.TypeCNAME, AA: true, Authority: []string{},
			Answer: []string{"dn.example. DNAME example.net.", "a.dn.example. CNAME a.example.net."}},
		{Name: "DNAME CNAME query YXDOMAIN", QName: strings.Repeat("abcdefghij.", 20) + "dlong.example.", QType: dns.TypeCNAME, AA: true, Rcode: dns.RcodeYXDomain, NAnswer: 1},
		{Name: "CNAME query at the head of a chain", QName: "chain1.example.", QType: dns.TypeCNAME, AA: true, Authority: []string{},
			Answer: []string{"chain1.example. CNAME chain2.example."}},
		{Name: "CNAME query to a missing name", QName: "tonx.example.", QType: dns.TypeCNAME, AA: true, Authority: []string{},
			Answer: []string{"tonx.example. CNAME nothere.example."}},
		{Name: "SRV additional", QName: "_sip._tcp.example.", QType: dns.TypeSRV, AA: true,
			Answer: []string{"_sip._tcp.example. SRV 0 5 5060 www.example."}, Additional: []string{"www.example. A 192.0.2.80", "www.example. AAAA 2001:db8::80"}},
		{Name: "MX two targets", QName: "mx2.example.", QType: dns.TypeMX, AA: true, NAdd: 3, NAnswer: 2},
		{Name: "TXT strings", QName: "long.example.", QType: dns.TypeTXT, AA: true, Answer: []string{"long.example. TXT \"one\" \"two\" \"three\""}},
		{Name: "ANY one RRset", QName: "www.example.", QType: dns.TypeANY, AA: true, NAnswer: 1},
		{Name: "outside every zone", QName: "www.example.net.", QType: dns.TypeA, Rcode: dns.RcodeRefused, Answer: []string{}, Authority: []string{}},
		{Name: "TC at 512", QName: "big.example.", QType: dns.TypeA, AA: true, TC: true, Answer: []string{}, Authority: []string{}},
		{Name: "fits at 1232", QName: "big.example.", QType: dns.TypeA, EDNS: 1232, AA: true, NAnswer: 40},
		{Name: "EDNS 100 means 512", QName: "big.example.", QType: dns.TypeA, EDNS: 100, AA: true, TC: true, Answer: []string{}},
		{Name: "TCP fits", QName: "big.example.", QType: dns.TypeA, TCP: true, AA: true, NAnswer: 40},
		{Name: "CHAOS id.server", QName: "id.server.", QType: dns.TypeTXT, QClass: dns.ClassCHAOS, Answer: []string{"id.server. TXT \"ns.test\""}},
		{Name: "CHAOS version.bind", QName: "VERSION.BIND.", QType: dns.TypeTXT, QClass: dns.ClassCHAOS, Answer: []string{"VERSION.BIND. TXT \"ringdns 0\""}},
		{Name: "CHAOS other", QName: "foo.bind.", QType: dns.TypeTXT, QClass: dns.ClassCHAOS, Rcode: dns.RcodeRefused},
		{Name: "CHAOS ANY refused", QName: "id.server.", QType: dns.TypeANY, QClass: dns.ClassCHAOS, Rcode: dns.RcodeRefused, Answer: []string{}},
		{Name: "class HS refused", QName: "www.example.", QType: dns.TypeA, QClass: dns.ClassHESIOD, Rcode: dns.RcodeRefused},
		{Name: "class ANY answered as IN", QName: "www.example.", QType: dns.TypeA, QClass: dns.ClassANY, AA: true, Answer: []string{"www.example. A 192.0.2.80"}},
		{Name: "class ANY NXDOMAIN", QName: "nope.example.", QType: dns.TypeA, QClass: dns.ClassANY, AA: true, Rcode: dns.RcodeNameError, Authority: []string{soa}},
		{Name: "AXFR over UDP", QName: "example.", QType: dns.TypeAXFR, Rcode: dns.RcodeNotImplemented, Answer: []string{}},
		{Name: "AXFR over TCP", QName: "example.", QType: dns.TypeAXFR, TCP: true, Rcode: dns.RcodeNotAuth, Answer: []string{}},
		{Name: "IXFR over TCP", QName: "example.", QType: dns.TypeIXFR, TCP: true, EDNS: 1232, Rcode: dns.RcodeNotAuth, Answer: []string{}},
		{Name: "type 0", QName: "example.", QType: 0, EDNS: 1232, Rcode: dns.RcodeNotImplemented, Answer: []string{}},
		{Name: "qtype OPT is NODATA", QName: "example.", QType: dns.TypeOPT, AA: true, Answer: []string{}, Authority: []string{soa}},
		{Name: "qtype RRSIG unsigned is NODATA", QName: "example.", QType: dns.TypeRRSIG, AA: true, Answer: []string{}, Authority: []string{soa}},
		{Name: "EDNS DO echoes", QName: "www.example.", QType: dns.TypeA, EDNS: 4096, DO: true, AA: true, Answer: []string{"www.example. A 192.0.2.80"}},
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) { check(t, s, c) })
	}
}

func TestAnswerRoot(t *testing.T) {
	_, s := snapshots(t)
	rootNS := []string{}
	for _, l := range "abcdefghijklm" {
		rootNS = append(rootNS, ". NS "+string(l)+".root-servers.net.")
	}
	cases := []Case{
		{Name: "apex SOA", QName: ".", QType: dns.TypeSOA, AA: true, Answer: []string{". SOA a.root-servers.net. nstld.verisign-grs.com. 2017082100 1800 900 604800 86400"}},
		{Name: "apex NS", QName: ".", QType: dns.TypeNS, EDNS: 1232, AA: true, Answer: rootNS, NAdd: 26},
		{Name: "apex DNSKEY", QName: ".", QType: dns.TypeDNSKEY, EDNS: 1232, AA: true, NAnswer: 3},
		{Name: "apex DNSKEY DO", QName: ".", QType: dns.TypeDNSKEY, EDNS: 1232, DO: true, AA: true, NAnswer: 4},
		// At 512 bytes the f and g A records still fit after the f AAAA is
		// skipped, as Knot DNS fills the section.
		{Name: "TLD referral", QName: "www.example.com.", QType: dns.TypeA, NAdd: 12},
		{Name: "TLD referral skips a AAAA that does not fit", QName: "www.example.com.", QType: dns.TypeA,
			Additional: []string{
				"a.gtld-servers.net. A 192.5.6.30", "a.gtld-servers.net. AAAA 2001:503:a83e::2:30",
				"b.gtld-servers.net. A 192.33.14.30", "b.gtld-servers.net. AAAA 2001:503:231d::2:30",
				"c.gtld-servers.net. A 192.26.92.30", "c.gtld-servers.net. AAAA 2001:503:83eb::30",
				"d.gtld-servers.net. A 192.31.80.30", "d.gtld-servers.net. AAAA 2001:500:856e::30",
				"e.gtld-servers.net. A 192.12.94.30", "e.gtld-servers.net. AAAA 2001:502:1ca1::30",
				"f.gtld-servers.net. A 192.35.51.30", "g.gtld-servers.net. A 192.42.93.30"}},
		// The root owner is written without compression hints, so (as in
		// Knot DNS) the name server names are not compressed against each
		// other and only two names' addresses fit in 512 bytes.
		{Name: "apex NS at 512", QName: ".", QType: dns.TypeNS, AA: true, Answer: rootNS,
			Additional: []string{"a.root-servers.net. A 198.41.0.4", "a.root-servers.net. AAAA 2001:503:ba3e::2:30",
				"b.root-servers.net. A 192.228.79.201", "b.root-servers.net. AAAA 2001:500:200::b"}},
		{Name: "TLD referral EDNS", QName: "www.example.com.", QType: dns.TypeA, EDNS: 1232, NAdd: 26},
		{Name: "TLD referral DO has DS", QName: "example.org.", QType: dns.TypeA, EDNS: 1232, DO: true},
		{Name: "junk TLD", QName: "foo.bar.invalidtld.", QType: dns.TypeA, Rcode: dns.RcodeNameError, AA: true,
			Authority: []string{". SOA a.root-servers.net. nstld.verisign-grs.com. 2017082100 1800 900 604800 86400"}},
		{Name: "DS at TLD", QName: "com.", QType: dns.TypeDS, AA: true, NAnswer: 1},
		{Name: "RRSIG at apex is one group", QName: ".", QType: dns.TypeRRSIG, EDNS: 1232, AA: true, NAnswer: 1},
		{Name: "RRSIG at a cut is a referral", QName: "com.", QType: dns.TypeRRSIG, EDNS: 1232, Answer: []string{}},
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) { check(t, s, c) })
	}
	// A referral with DO carries the DS and its RRSIG after the NS RRset.
	r, _, _ := ask(t, s, Case{QName: "example.org.", QType: dns.TypeA, EDNS: 1232, DO: true})
	var ds, sig bool
	for _, rr := range r.Ns {
		switch rr.Header().Rrtype {
		case dns.TypeDS:
			ds = true
		case dns.TypeRRSIG:
			sig = rr.(*dns.RRSIG).TypeCovered == dns.TypeDS
		}
	}
	if !ds || !sig {
		t.Errorf("org referral with DO lacks DS or its RRSIG:\n%s", r)
	}
}

// Raw header and malformed-input behaviour.
func TestAnswerMalformed(t *testing.T) {
	s, _ := snapshots(t)
	good := func() []byte {
		m := new(dns.Msg)
		m.SetQuestion("www.example.", dns.TypeA)
		m.SetEdns0(1232, false)
		b, _ := m.Pack()
		return b
	}
	dst := make([]byte, 4096)
	type tc struct {
		name  string
		q     func() []byte
		n0    bool // no reply
		rcode int
	}
	cases := []tc{
		{"short", func() []byte { return good()[:11] }, true, 0},
		{"response dropped", func() []byte { b := good(); b[2] |= 0x80; return b }, true, 0},
		{"qdcount 0", func() []byte { b := good(); b[5] = 0; return b[:12] }, false, dns.RcodeFormatError},
		{"qdcount 0 with EDNS", func() []byte {
			m := new(dns.Msg)
			m.SetEdns0(1232, true)
			b, _ := m.Pack()
			return b
		}, false, dns.RcodeFormatError},
		{"qdcount 2", func() []byte { b := good(); b[5] = 2; return b }, false, dns.RcodeFormatError},
		{"opcode update", func() []byte { b := good(); b[2] |= 5 << 3; return b }, false, dns.RcodeNotImplemented},
		{"OPT payload 1 without options", func() []byte {
			m := new(dns.Msg)
			m.SetQuestion("www.example.", dns.TypeA)
			m.SetEdns0(1, false)
			b, _ := m.Pack()
			return b
		}, false, dns.RcodeFormatError},
		{"cut question", func() []byte { return good()[:20] }, false, dns.RcodeFormatError},
		{"compressed qname", func() []byte { b := good(); b[12] = 0xC0; b[13] = 12; return b }, false, dns.RcodeFormatError},
		{"trailing garbage", func() []byte { return append(good(), 1, 2, 3) }, false, dns.RcodeFormatError},
		{"bad EDNS version", func() []byte {
			m := new(dns.Msg)
			m.SetQuestion("www.example.", dns.TypeA)
			o := m.SetEdns0(1232, false).IsEdns0()
			o.SetVersion(1)
			b, _ := m.Pack()
			return b
		}, false, dns.RcodeBadVers},
	}
	for _, c := range cases {
		q := c.q()
		n, _ := s.Answer(dst, q, false)
		if c.n0 {
			if n != 0 {
				t.Errorf("%s: got a reply, want none", c.name)
			}
			continue
		}
		if n == 0 {
			t.Errorf("%s: no reply", c.name)
			continue
		}
		r := new(dns.Msg)
		if err := r.Unpack(dst[:n]); err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if r.Rcode != c.rcode {
			t.Errorf("%s: rcode %s, want %s", c.name, dns.RcodeToString[r.Rcode], dns.RcodeToString[c.rcode])
		}
		// A query whose question and OPT were readable gets both back,
		// NOTIMP included (RFC 6891 section 7).
		if c.name == "opcode update" && (len(r.Question) != 1 || r.IsEdns0() == nil) {
			t.Errorf("%s: question or OPT missing from the reply:\n%s", c.name, r)
		}
		if c.name == "qdcount 0 with EDNS" && (r.IsEdns0() == nil || !r.IsEdns0().Do()) {
			t.Errorf("%s: OPT missing from the reply:\n%s", c.name, r)
		}
		if c.name == "trailing garbage" && r.IsEdns0() != nil {
			t.Errorf("%s: OPT of a message that does not parse echoed:\n%s", c.name, r)
		}
	}
}

func TestNSID(t *testing.T) {
	s, _ := snapshots(t)
	m := new(dns.Msg)
	m.SetQuestion("www.example.", dns.TypeA)
	o := m.SetEdns0(1232, false).IsEdns0()
	o.Option = append(o.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
	q, _ := m.Pack()
	dst := make([]byte, 4096)
	n, _ := s.Answer(dst, q, false)
	r := new(dns.Msg)
	if err := r.Unpack(dst[:n]); err != nil {
		t.Fatal(err)
	}
	ro := r.IsEdns0()
	if ro == nil || len(ro.Option) != 1 || ro.Option[0].(*dns.EDNS0_NSID).Nsid != "72696e67646e732d74657374" || ro.UDPSize() != 1232 {
		t.Fatalf("NSID missing or wrong: %v", r)
	}
}

// In-place answering (dst aliasing q) gives the same bytes as a separate
// buffer.
func TestInPlace(t *testing.T) {
	s, root := snapshots(t)
	for _, c := range []struct {
		s *Snapshot
		n string
		t uint16
	}{{s, "alias.example.", dns.TypeA}, {s, "x.dnin.example.", dns.TypeA}, {root, "www.example.com.", dns.TypeA}, {s, "foo.wild.example.", dns.TypeA}} {
		m := new(dns.Msg)
		m.SetQuestion(c.n, c.t)
		m.SetEdns0(1232, true)
		q, _ := m.Pack()
		sep := make([]byte, 4096)
		n1, _ := c.s.Answer(sep, q, false)
		buf := make([]byte, 4096)
		copy(buf, q)
		n2, _ := c.s.Answer(buf, buf[:len(q)], false)
		if !bytes.Equal(sep[:n1], buf[:n2]) {
			t.Errorf("%s: in-place reply differs", c.n)
		}
	}
}

// Golden wire-format replies: any change to the bytes we send is visible
// in review. Regenerate with go test -run TestGolden -update.
func TestGolden(t *testing.T) {
	s, root := snapshots(t)
	cases := []struct {
		file string
		s    *Snapshot
		c    Case
	}{
		{"example-mx.bin", s, Case{QName: "example.", QType: dns.TypeMX}},
		{"example-chain.bin", s, Case{QName: "chain1.example.", QType: dns.TypeA, EDNS: 1232}},
		{"example-wild.bin", s, Case{QName: "Foo.Wild.example.", QType: dns.TypeA}},
		{"example-dname.bin", s, Case{QName: "a.b.dn.example.", QType: dns.TypeA}},
		{"example-referral.bin", s, Case{QName: "a.sub.example.", QType: dns.TypeA, EDNS: 1232, DO: true}},
		{"example-nxdomain.bin", s, Case{QName: "nope.example.", QType: dns.TypeA}},
		{"root-referral.bin", root, Case{QName: "www.example.com.", QType: dns.TypeA, EDNS: 1232, DO: true}},
		{"root-nxdomain.bin", root, Case{QName: "junk.", QType: dns.TypeA, EDNS: 1232, DO: true}},
	}
	for _, g := range cases {
		// A fixed ID keeps the bytes stable.
		m := new(dns.Msg)
		m.SetQuestion(g.c.QName, g.c.QType)
		m.Id = 0x1234
		if g.c.EDNS > 0 {
			m.SetEdns0(uint16(g.c.EDNS), g.c.DO)
		}
		q, _ := m.Pack()
		dst := make([]byte, 4096)
		n, _ := g.s.Answer(dst, q, false)
		path := filepath.Join("testdata", "golden", g.file)
		if *update {
			os.MkdirAll(filepath.Dir(path), 0o755)
			if err := os.WriteFile(path, dst[:n], 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create)", err)
		}
		if !bytes.Equal(want, dst[:n]) {
			r := new(dns.Msg)
			r.Unpack(dst[:n])
			t.Errorf("%s: reply differs from golden file:\n%s", g.file, r)
		}
	}
}
