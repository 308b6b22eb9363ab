package dataplane

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
	"github.com/ringdns/ringdns/zone"
)

// updModel is a generated TLD zone whose parts the randomised update test
// adds, removes and changes: delegations with in-domain glue, sibling glue
// and DS, wildcards (one of them the target of the apex MX), CNAMEs, and
// names under empty non-terminals. Its records are rendered as text, so
// that a zone built from scratch comes from the loader's own path.
type updModel struct {
	serial int
	deleg  map[int]*updDeleg
	wild   map[int]int    // wildcard i -> address version
	cname  map[int]string // CNAME i -> target
	ent    map[int]int    // host.sub.e<i> -> address version
	mx     int            // address version of mx2.tld, an authoritative (signed) target
}

type updDeleg struct {
	glue    int  // address version of ns1.d<i>
	sibling int  // -1, or the delegation whose name server is also this one's
	ds      int  // 0 none, else DS version
	ext     bool // an out-of-zone name server too
}

func newUpdModel(r *rand.Rand) *updModel {
	m := &updModel{serial: 1, deleg: map[int]*updDeleg{}, wild: map[int]int{}, cname: map[int]string{}, ent: map[int]int{}}
	for i := 0; i < 30; i++ {
		m.deleg[i] = m.randDeleg(r)
	}
	for i := 0; i < 4; i++ {
		m.wild[i] = 1
		m.cname[i] = m.randTarget(r)
		m.ent[i] = 1
	}
	return m
}

func (m *updModel) randDeleg(r *rand.Rand) *updDeleg {
	d := &updDeleg{glue: r.Intn(200), sibling: -1, ext: r.Intn(3) == 0}
	if r.Intn(2) == 0 {
		d.sibling = r.Intn(40)
	}
	if r.Intn(2) == 0 {
		d.ds = 1 + r.Intn(100)
	}
	return d
}

func (m *updModel) randTarget(r *rand.Rand) string {
	switch r.Intn(4) {
	case 0:
		return fmt.Sprintf("d%d.tld.", r.Intn(40))
	case 1:
		return "www.tld."
	case 2:
		return fmt.Sprintf("x.w%d.tld.", r.Intn(6))
	}
	return "www.example.net."
}

// mutateInPlace makes one random change that adds and removes no name:
// glue renumbered, a DS changed, sibling glue named, a CNAME retargeted,
// an address under an empty non-terminal changed.
func (m *updModel) mutateInPlace(r *rand.Rand) {
	i := r.Intn(40)
	d := m.deleg[i]
	switch r.Intn(6) {
	case 5:
		m.mx++
	case 0:
		if d != nil {
			d.glue = r.Intn(200)
		}
	case 1:
		// A DS replaced, added or removed: added or removed, it
		// changes the delegation's NSEC or NSEC3 type bitmap too.
		if d != nil {
			d.ds = r.Intn(100)
		}
	case 2:
		if d != nil && d.sibling >= 0 && m.deleg[i/2] != nil {
			d.sibling = i / 2
		}
	case 3:
		if _, ok := m.cname[i%6]; ok {
			m.cname[i%6] = m.randTarget(r)
		}
	case 4:
		if _, ok := m.ent[i%6]; ok {
			m.ent[i%6] = r.Intn(100)
		}
	}
}

// mutate makes one random change to the model.
func (m *updModel) mutate(r *rand.Rand) {
	i := r.Intn(40)
	switch r.Intn(9) {
	case 0, 1: // add or replace a delegation
		m.deleg[i] = m.randDeleg(r)
	case 2: // remove a delegation with its glue
		delete(m.deleg, i)
	case 3: // renumber glue
		if d := m.deleg[i]; d != nil {
			d.glue = r.Intn(200)
		}
	case 4: // change, add or remove a DS
		if d := m.deleg[i]; d != nil {
			d.ds = r.Intn(100)
		}
	case 5:
		if _, ok := m.wild[i%6]; ok {
			delete(m.wild, i%6)
		} else {
			m.wild[i%6] = r.Intn(100)
		}
	case 6:
		if _, ok := m.cname[i%6]; ok && r.Intn(2) == 0 {
			delete(m.cname, i%6)
		} else {
			m.cname[i%6] = m.randTarget(r)
		}
	case 7:
		if _, ok := m.ent[i%6]; ok {
			delete(m.ent, i%6)
		} else {
			m.ent[i%6] = r.Intn(100)
		}
	case 8: // sibling glue
		if d := m.deleg[i]; d != nil {
			d.sibling = r.Intn(40)
		}
	}
}

// records renders the zone's unsigned records.
func (m *updModel) records() []string {
	out := []string{
		fmt.Sprintf("tld. 3600 IN SOA ns1.nic.tld. hostmaster.nic.tld. %d 1800 900 604800 300", m.serial),
		"tld. 3600 IN NS ns1.nic.tld.",
		"tld. 3600 IN NS ns2.nic.tld.",
		"tld. 3600 IN MX 10 mail.w1.tld.",
		"tld. 3600 IN MX 20 mx.tld.",
		"tld. 3600 IN MX 30 mx2.tld.",
		fmt.Sprintf("mx2.tld. 3600 IN A 192.0.2.%d", 100+m.mx%100),
		"ns1.nic.tld. 3600 IN A 192.0.2.1",
		"ns2.nic.tld. 3600 IN AAAA 2001:db8::2",
		"mx.tld. 3600 IN A 192.0.2.25",
		"www.tld. 3600 IN A 192.0.2.80",
		"srv._tcp.tld. 3600 IN SRV 0 0 53 ns1.d3.tld.",
	}
	for i, d := range m.deleg {
		n := fmt.Sprintf("d%d.tld.", i)
		out = append(out, n+" 86400 IN NS ns1."+n,
			fmt.Sprintf("ns1.%s 86400 IN A 10.%d.%d.1", n, i, d.glue),
			fmt.Sprintf("ns1.%s 86400 IN AAAA fd00::%d:%d", n, i, d.glue))
		if d.sibling >= 0 && d.sibling != i {
			out = append(out, fmt.Sprintf("%s 86400 IN NS ns1.d%d.tld.", n, d.sibling))
		}
		if d.ext {
			out = append(out, n+" 86400 IN NS ns.example.net.")
		}
		if d.ds > 0 {
			out = append(out, fmt.Sprintf("%s 86400 IN DS %d 13 2 %064x", n, 1000+i, d.ds))
		}
	}
	for i, v := range m.wild {
		out = append(out, fmt.Sprintf("*.w%d.tld. 3600 IN A 10.200.%d.%d", i, i, v),
			fmt.Sprintf("*.w%d.tld. 3600 IN TXT \"wild %d\"", i, v))
	}
	for i, t := range m.cname {
		out = append(out, fmt.Sprintf("c%d.tld. 3600 IN CNAME %s", i, t))
	}
	for i, v := range m.ent {
		out = append(out, fmt.Sprintf("host.sub.e%d.tld. 3600 IN A 10.201.%d.%d", i, i, v))
	}
	return out
}

// updParse parses rendered records.
func updParse(t testing.TB, recs []string) []dns.RR {
	var out []dns.RR
	for _, s := range recs {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		out = append(out, rr)
	}
	return out
}

// updSign adds DNSSEC records to an unsigned TLD: a DNSKEY, an RRSIG over
// every authoritative RRset (and the DS and NSEC or NSEC3 of delegations),
// and an NSEC or NSEC3 chain (no opt-out). The signatures do not verify
// (the loader does not check them); each is derived from its RRset's
// content, so that an unchanged RRset keeps its signature from version to
// version, as with a real signer that signs only what changed.
func updSign(t testing.TB, rrs []dns.RR, nsec3 bool) []dns.RR {
	rrs = append(rrs, updParse(t, []string{"tld. 3600 IN DNSKEY 257 3 13 " + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 64))})...)
	if nsec3 {
		rrs = append(rrs, updParse(t, []string{"tld. 0 IN NSEC3PARAM 1 0 0 -"})...)
	}
	type key struct {
		name string
		typ  uint16
	}
	sets := map[key][]dns.RR{}
	names := map[string]bool{}
	cuts := map[string]bool{}
	for _, rr := range rrs {
		h := rr.Header()
		h.Name = strings.ToLower(h.Name)
		sets[key{h.Name, h.Rrtype}] = append(sets[key{h.Name, h.Rrtype}], rr)
		names[h.Name] = true
		if h.Rrtype == dns.TypeNS && h.Name != "tld." {
			cuts[h.Name] = true
		}
	}
	// below reports a name under a zone cut (glue): neither signed nor in
	// the chain.
	below := func(n string) bool {
		for p := n; p != "tld."; {
			_, p, _ = strings.Cut(p, ".")
			if cuts[p] {
				return true
			}
		}
		return false
	}
	// Empty non-terminals are in an NSEC3 chain.
	all := map[string]bool{}
	for n := range names {
		if below(n) {
			continue
		}
		all[n] = true
		for p := n; p != "tld."; {
			_, p, _ = strings.Cut(p, ".")
			all[p] = true
		}
	}
	sig := func(name string, covered uint16, ttl uint32, set []dns.RR) dns.RR {
		h := sha256.New()
		var ss []string
		for _, rr := range set {
			ss = append(ss, rr.String())
		}
		slices.Sort(ss)
		h.Write([]byte(strings.Join(ss, "\n")))
		sum := h.Sum(nil)
		return updParse(t, []string{fmt.Sprintf("%s %d IN RRSIG %s 13 %d %d 20300101000000 20200101000000 %d tld. %s",
			name, ttl, dns.Type(covered), dns.CountLabel(name), ttl, int(sum[0])<<8|int(sum[1]), base64.StdEncoding.EncodeToString(sum))})[0]
	}
	var out []dns.RR
	out = append(out, rrs...)
	typesAt := map[string][]uint16{}
	for k, set := range sets {
		if below(k.name) {
			continue
		}
		typesAt[k.name] = append(typesAt[k.name], k.typ)
		if cuts[k.name] && k.typ == dns.TypeNS {
			continue
		}
		out = append(out, sig(k.name, k.typ, set[0].Header().Ttl, set))
	}
	var chain []dns.RR
	if !nsec3 {
		var order []string
		for n := range typesAt {
			order = append(order, n)
		}
		slices.SortFunc(order, func(a, b string) int { return updCompare(a, b) })
		for i, n := range order {
			types := append(slices.Clone(typesAt[n]), dns.TypeNSEC)
			if !cuts[n] || slices.Contains(types, dns.TypeDS) {
				types = append(types, dns.TypeRRSIG)
			}
			slices.Sort(types)
			chain = append(chain, &dns.NSEC{Hdr: dns.RR_Header{Name: n, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: 300},
				NextDomain: order[(i+1)%len(order)], TypeBitMap: types})
		}
	} else {
		type hn struct{ hash, name string }
		var order []hn
		for n := range all {
			order = append(order, hn{strings.ToLower(dns.HashName(n, dns.SHA1, 0, "")), n})
		}
		slices.SortFunc(order, func(a, b hn) int { return strings.Compare(a.hash, b.hash) })
		for i, e := range order {
			types := slices.Clone(typesAt[e.name])
			if len(types) > 0 && (!cuts[e.name] || slices.Contains(types, dns.TypeDS)) {
				types = append(types, dns.TypeRRSIG)
			}
			slices.Sort(types)
			chain = append(chain, &dns.NSEC3{Hdr: dns.RR_Header{Name: e.hash + ".tld.", Rrtype: dns.TypeNSEC3, Class: dns.ClassINET, Ttl: 300},
				Hash: dns.SHA1, HashLength: 20, NextDomain: strings.ToUpper(order[(i+1)%len(order)].hash), TypeBitMap: types})
		}
	}
	for _, rr := range chain {
		out = append(out, rr, sig(rr.Header().Name, rr.Header().Rrtype, 300, []dns.RR{rr}))
	}
	return out
}

// updCompare orders presentation names canonically.
func updCompare(a, b string) int {
	wa, wb := make([]byte, 256), make([]byte, 256)
	na, _ := dns.PackDomainName(a, wa, 0, nil, false)
	nb, _ := dns.PackDomainName(b, wb, 0, nil, false)
	return zone.CompareCanonical(wa[:na], wb[:nb])
}

// updText renders records as a master file.
func updText(rrs []dns.RR) string {
	var sb strings.Builder
	for _, rr := range rrs {
		sb.WriteString(rr.String())
		sb.WriteByte('\n')
	}
	return sb.String()
}

// updDiff returns the records of a not in b, compared as text.
func updDiff(a, b []dns.RR) []dns.RR {
	in := map[string]bool{}
	for _, rr := range b {
		in[rr.String()] = true
	}
	var out []dns.RR
	for _, rr := range a {
		if !in[rr.String()] {
			out = append(out, rr)
		}
	}
	return out
}

// updQueries is the corpus asked of both zones: every name of the zone
// and a few that are not (below cuts, under wildcards, nonexistent, under
// empty non-terminals), each with several types, without EDNS, with EDNS
// and with DO.
func updQueries(t testing.TB, rrs []dns.RR) [][]byte {
	names := map[string]bool{}
	for _, rr := range rrs {
		names[strings.ToLower(rr.Header().Name)] = true
	}
	for i := 0; i < 40; i++ {
		names[fmt.Sprintf("d%d.tld.", i)] = true
		names[fmt.Sprintf("deep.ns1.d%d.tld.", i)] = true
		names[fmt.Sprintf("www.d%d.tld.", i)] = true
	}
	for i := 0; i < 6; i++ {
		names[fmt.Sprintf("x.w%d.tld.", i)] = true
		names[fmt.Sprintf("a.b.w%d.tld.", i)] = true
		names[fmt.Sprintf("w%d.tld.", i)] = true
		names[fmt.Sprintf("c%d.tld.", i)] = true
		names[fmt.Sprintf("sub.e%d.tld.", i)] = true
		names[fmt.Sprintf("nx.sub.e%d.tld.", i)] = true
		names[fmt.Sprintf("e%d.tld.", i)] = true
	}
	names["nonexistent.tld."] = true
	names["zzz.tld."] = true
	names["mail.w1.tld."] = true
	var order []string
	for n := range names {
		order = append(order, n)
	}
	slices.Sort(order)
	var out [][]byte
	for _, n := range order {
		for _, typ := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeNS, dns.TypeDS, dns.TypeMX, dns.TypeCNAME, dns.TypeTXT, dns.TypeSOA, dns.TypeSRV, dns.TypeDNSKEY, dns.TypeNSEC3PARAM} {
			for edns := 0; edns < 3; edns++ {
				m := new(dns.Msg)
				m.SetQuestion(n, typ)
				m.Id = 0x1234
				if edns > 0 {
					m.SetEdns0(1232, edns == 2)
				}
				q, err := m.Pack()
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, q)
			}
		}
	}
	return out
}

func updSnapshot(t testing.TB, z *zone.Zone) *Snapshot {
	set, err := zone.NewSet([]*zone.Zone{z})
	if err != nil {
		t.Fatal(err)
	}
	return NewSnapshot(set, Config{})
}

// updCompareZones checks that a and b answer every query of the corpus with
// the same bytes and hold the same records.
func updCompareZones(t *testing.T, step int, a, b *zone.Zone, queries [][]byte) {
	t.Helper()
	sa, sb := updSnapshot(t, a), updSnapshot(t, b)
	da, db := make([]byte, 65535), make([]byte, 65535)
	bad := 0
	for _, q := range queries {
		na, ra := sa.Answer(da, q, false)
		nb, rb := sb.Answer(db, q, false)
		if ra != rb || !bytes.Equal(da[:na], db[:nb]) {
			m := new(dns.Msg)
			m.Unpack(q)
			x, y := new(dns.Msg), new(dns.Msg)
			x.Unpack(da[:na])
			y.Unpack(db[:nb])
			t.Errorf("step %d: %s: replies differ:\nupdated:\n%v\nfrom scratch:\n%v", step, m.Question[0].String(), x, y)
			if bad++; bad > 3 {
				t.FailNow()
			}
		}
	}
	var diffs []string
	zone.Diff(a, b, func(del bool, r *zone.Record) error {
		rr, _ := r.RR()
		diffs = append(diffs, fmt.Sprintf("del=%v %v", del, rr))
		return nil
	})
	if len(diffs) > 0 {
		t.Fatalf("step %d: Walk of the updated zone and of the zone built from scratch differ: %q", step, diffs)
	}
	if a.Serial() != b.Serial() || a.Records() != b.Records() {
		t.Fatalf("step %d: serial %d records %d, from scratch serial %d records %d", step, a.Serial(), a.Records(), b.Serial(), b.Records())
	}
}

// TestApplyDifferential applies random change sets step by step, to an
// unsigned, an NSEC-signed and an NSEC3-signed TLD, and after each step
// asks the updated zone and a zone loaded from scratch from the same
// records the same corpus of queries: every reply must be byte for byte
// the same, and the two zones' records the same.
func TestApplyDifferential(t *testing.T) {
	for _, c := range []struct {
		name          string
		signed, nsec3 bool
	}{{"unsigned", false, false}, {"nsec", true, false}, {"nsec3", true, true}} {
		for _, seed := range []int64{14, 15, 16, 17, 18} {
			t.Run(fmt.Sprintf("%s/%d", c.name, seed), func(t *testing.T) {
				r := rand.New(rand.NewSource(seed))
				m := newUpdModel(r)
				render := func() []dns.RR {
					rrs := updParse(t, m.records())
					if c.signed {
						rrs = updSign(t, rrs, c.nsec3)
					}
					return rrs
				}
				cur := render()
				z, err := zone.Parse(strings.NewReader(updText(cur)), "tld.", "tld.zone")
				if err != nil {
					t.Fatal(err)
				}
				steps := 60
				if testing.Short() {
					steps = 10
				}
				how := map[string]int{}
				defer func() { t.Logf("applied: %v", how) }()
				for step := 1; step <= steps; step++ {
					m.serial++
					inPlace := r.Intn(2) == 0
					for k := r.Intn(4); k >= 0; k-- {
						if inPlace {
							m.mutateInPlace(r)
						} else {
							m.mutate(r)
						}
					}
					next := render()
					del, add := updDiff(cur, next), updDiff(next, cur)
					nz, err := z.Apply(del, add)
					if err != nil {
						t.Fatalf("step %d: Apply: %v", step, err)
					}
					how[nz.Applied()]++
					fresh, err := zone.Parse(strings.NewReader(updText(next)), "tld.", "tld.zone")
					if err != nil {
						t.Fatalf("step %d: from scratch: %v", step, err)
					}
					updCompareZones(t, step, nz, fresh, updQueries(t, next))
					z, cur = nz, next
				}
				// Names added and removed, cuts, wildcards, CNAMEs
				// and empty non-terminals are applied in place; only
				// change sets over a tenth of the names are rebuilt.
				for h, n := range how {
					if h != "incremental" && h != "rebuilt: over a tenth of the names change" {
						t.Errorf("%d change sets %s", n, h)
					}
				}
				if how["incremental"] < steps*3/4 {
					t.Errorf("only %d of %d change sets applied in place", how["incremental"], steps)
				}
			})
		}
	}
}

// TestApplyRejects checks that change sets that delete a record the zone
// does not hold or that break a rule of the loader are refused whole, and
// that the zone they were applied to still holds and answers what it did.
func TestApplyRejects(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	m := newUpdModel(r)
	base := updSign(t, updParse(t, m.records()), false)
	z, err := zone.Parse(strings.NewReader(updText(base)), "tld.", "tld.zone")
	if err != nil {
		t.Fatal(err)
	}
	queries := updQueries(t, base)
	ref, _ := zone.Parse(strings.NewReader(updText(base)), "tld.", "tld.zone")
	p := func(s ...string) []dns.RR { return updParse(t, s) }
	soa0 := p("tld. 3600 IN SOA ns1.nic.tld. hostmaster.nic.tld. 1 1800 900 604800 300")
	soa1 := p("tld. 3600 IN SOA ns1.nic.tld. hostmaster.nic.tld. 2 1800 900 604800 300")
	for _, c := range []struct {
		name     string
		del, add []dns.RR
		want     string
	}{
		{"delete absent record", p("www.tld. 3600 IN A 192.0.2.81"), nil, "www.tld.\t3600\tIN\tA\t192.0.2.81 is not in the zone"},
		{"delete absent name", p("nope.tld. 3600 IN A 192.0.2.81"), nil, "no such name"},
		{"delete absent among present", append(p("www.tld. 3600 IN A 192.0.2.80"), p("www.tld. 3600 IN TXT \"x\"")...), nil, "is not in the zone"},
		{"out of zone", nil, p("www.example. 3600 IN A 192.0.2.1"), "outside the zone"},
		{"class", nil, []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "a.tld.", Rrtype: dns.TypeA, Class: dns.ClassCHAOS, Ttl: 1}, A: []byte{1, 2, 3, 4}}}, "class"},
		{"CNAME and other data", nil, p("www.tld. 3600 IN CNAME mx.tld."), "CNAME at www.tld. beside other data"},
		{"apex NS removed", p("tld. 3600 IN NS ns1.nic.tld.", "tld. 3600 IN NS ns2.nic.tld."), nil, "no NS records at the apex"},
		{"SOA removed", soa0, nil, "SOA"},
		{"two SOAs", nil, soa1, "SOA"},
		{"below DNAME", nil, p("dn.tld. 3600 IN DNAME example.net.", "x.dn.tld. 3600 IN A 192.0.2.1"), "below the DNAME"},
		{"forbidden type", nil, []dns.RR{&dns.OPT{Hdr: dns.RR_Header{Name: "tld.", Rrtype: dns.TypeOPT, Class: dns.ClassINET}}}, "OPT is not allowed in a zone"},
		// Change sets that add and remove names, which are applied in
		// place when they are valid.
		{"delete absent beside a new delegation", p("www.tld. 3600 IN A 192.0.2.81"), p("new.tld. 86400 IN NS ns.example.net."), "is not in the zone"},
		{"new name with CNAME and other data", nil, p("new.tld. 3600 IN CNAME www.tld.", "new.tld. 3600 IN A 192.0.2.1"), "CNAME at new.tld. beside other data"},
		{"new RRset too large", nil, bigTXT("new.tld.", 300), "too large"},
		{"delegation removed and its name below a DNAME", p("d3.tld. 86400 IN NS ns1.d3.tld."), p("dn.tld. 3600 IN DNAME example.net.", "x.dn.tld. 3600 IN A 192.0.2.1"), "below the DNAME"},
	} {
		t.Run(c.name, func(t *testing.T) {
			nz, err := z.Apply(c.del, c.add)
			if err == nil {
				t.Fatalf("Apply accepted the change set (serial %d)", nz.Serial())
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "change not applied") {
				t.Errorf("error %q, want it to hold %q", err, c.want)
			}
			updCompareZones(t, 0, z, ref, queries)
		})
	}
	// The refused change sets released the version: the next one is
	// still applied in place, to the same zone.
	nz, err := z.Apply(nil, p("new.tld. 86400 IN NS ns.example.net."))
	if err != nil {
		t.Fatal(err)
	}
	if nz.Applied() != "incremental" {
		t.Errorf("after the refusals: %s", nz.Applied())
	}
	// A name added below an existing DNAME is refused too.
	dz, err := z.Apply(nil, p("dn.tld. 3600 IN DNAME example.net."))
	if err != nil {
		t.Fatal(err)
	}
	dref, _ := zone.Parse(strings.NewReader(updText(append(slices.Clone(base), p("dn.tld. 3600 IN DNAME example.net.")...))), "tld.", "tld.zone")
	if _, err := dz.Apply(nil, p("x.y.dn.tld. 3600 IN A 192.0.2.1")); err == nil || !strings.Contains(err.Error(), "below the DNAME") {
		t.Errorf("a name below a DNAME: %v", err)
	}
	updCompareZones(t, 0, dz, dref, queries)
}

// bigTXT returns n TXT records of 255 bytes each at name: over 65,535
// bytes together, more than one RRset may hold.
func bigTXT(name string, n int) []dns.RR {
	var out []dns.RR
	for i := range n {
		out = append(out, &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 3600},
			Txt: []string{fmt.Sprintf("%03d%s", i, strings.Repeat("x", 251))}})
	}
	return out
}

// TestApplyConcurrentReaders applies changes while readers answer from the
// versions published before, as the data plane does: the readers take no
// lock; each new version is published with one atomic swap. Run with
// -race, it shows that Apply writes nothing a reader of an older version
// reads.
func TestApplyConcurrentReaders(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	m := newUpdModel(r)
	cur := updSign(t, updParse(t, m.records()), true)
	z, err := zone.Parse(strings.NewReader(updText(cur)), "tld.", "tld.zone")
	if err != nil {
		t.Fatal(err)
	}
	queries := updQueries(t, cur)
	applied := map[string]int{}
	var live sync.Map // "snap" -> *Snapshot, swapped atomically
	live.Store("snap", updSnapshot(t, z))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dst := make([]byte, 65535)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				s, _ := live.Load("snap")
				s.(*Snapshot).Answer(dst, queries[i%len(queries)], false)
			}
		}()
	}
	for step := 0; step < 20; step++ {
		m.serial++
		// Names added and removed, and changes that keep the names.
		if step%2 == 0 {
			m.mutate(r)
		} else {
			m.mutateInPlace(r)
		}
		next := updSign(t, updParse(t, m.records()), true)
		nz, err := z.Apply(updDiff(cur, next), updDiff(next, cur))
		if err != nil {
			t.Fatal(err)
		}
		applied[nz.Applied()]++
		live.Store("snap", updSnapshot(t, nz))
		// The old version is updated again, in place, so that two
		// versions grow from one: neither may write over what the other
		// holds.
		if _, err := z.Apply(updParse(t, []string{"www.tld. 3600 IN A 192.0.2.80"}), updParse(t, []string{"www.tld. 3600 IN A 192.0.2.99"})); err != nil {
			t.Fatal(err)
		}
		// And once more with a name added: the older version's nodes,
		// index and denial indexes are copied, never written.
		if _, err := z.Apply(nil, updParse(t, []string{"zz.tld. 3600 IN NS ns.example.net."})); err != nil {
			t.Fatal(err)
		}
		z, cur = nz, next
	}
	close(stop)
	wg.Wait()
	if applied["incremental"] < 15 {
		t.Errorf("applied: %v; most change sets should be applied in place", applied)
	}
	fresh, err := zone.Parse(strings.NewReader(updText(cur)), "tld.", "tld.zone")
	if err != nil {
		t.Fatal(err)
	}
	updCompareZones(t, 0, z, fresh, queries)
}
