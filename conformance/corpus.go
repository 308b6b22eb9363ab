package conformance

import (
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strings"

	"github.com/miekg/dns"
)

// Zone is a master file as both servers are given it and as the corpus
// generator reads it.
type Zone struct {
	Origin  string // Fully qualified, lowercase.
	Path    string
	Records []dns.RR
}

// LoadZone parses the master file at path with the origin given, as the
// servers do, so that the corpus is built from the same records they serve.
func LoadZone(origin, path string) (*Zone, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	origin = strings.ToLower(dns.Fqdn(origin))
	zp := dns.NewZoneParser(f, origin, path)
	z := &Zone{Origin: origin, Path: path}
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		z.Records = append(z.Records, rr)
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("zone %s: %w", origin, err)
	}
	return z, nil
}

// Query is one query of the corpus with what it was made to probe. Wire is
// what is sent; the other fields describe it for reports and for matching
// deliberate differences.
type Query struct {
	Zone        string // The zone the query was derived from; "" for server-wide probes.
	Category    string // What the query probes, e.g. "wildcard" or "ds-cut".
	Name        string // The query name as sent, letter case included.
	Type        uint16
	Class       uint16
	Opcode      int
	EDNS        int // The advertised UDP payload size; 0 means no OPT.
	EDNSVersion uint8
	DO          bool
	RD, CD, AD  bool
	NSID        bool   // The query carries an empty NSID option (RFC 5001).
	Mutation    string // A header oddity applied after packing, "" for none.
	Wire        []byte
}

// String describes a query in one line for reports.
func (q *Query) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", q.Name, dns.Class(q.Class), dns.Type(q.Type))
	if q.Opcode != dns.OpcodeQuery {
		fmt.Fprintf(&b, " opcode=%d", q.Opcode)
	}
	if q.EDNS == 0 {
		b.WriteString(" edns=none")
	} else {
		fmt.Fprintf(&b, " edns=%d", q.EDNS)
		if q.EDNSVersion != 0 {
			fmt.Fprintf(&b, " ednsver=%d", q.EDNSVersion)
		}
		if q.DO {
			b.WriteString(" do")
		}
		if q.NSID {
			b.WriteString(" nsid")
		}
	}
	for _, f := range []struct {
		on   bool
		name string
	}{{q.RD, "rd"}, {q.CD, "cd"}, {q.AD, "ad"}} {
		if f.on {
			b.WriteString(" " + f.name)
		}
	}
	if q.Mutation != "" {
		b.WriteString(" mutation=" + q.Mutation)
	}
	fmt.Fprintf(&b, " [zone=%s category=%s]", q.Zone, q.Category)
	return b.String()
}

// Identity holds the values both servers are configured with for CHAOS TXT
// queries (RFC 4892) and NSID (RFC 5001).
type Identity struct {
	Identity string
	Version  string
	NSID     string
}

// lackingTypes are the types a query may ask an owner for that it does not
// have, a mix of common, DNSSEC, meta and unknown types.
var lackingTypes = []uint16{
	dns.TypeA, dns.TypeAAAA, dns.TypeNS, dns.TypeSOA, dns.TypeMX, dns.TypeTXT,
	dns.TypeCNAME, dns.TypeDS, dns.TypeDNSKEY, dns.TypeNSEC, dns.TypeRRSIG,
	dns.TypeSRV, dns.TypePTR, dns.TypeCAA, dns.TypeANY, dns.TypeHTTPS,
	dns.TypeNSEC3, dns.TypeDNAME, 12345,
}

// smallZone is the record count below which a zone is treated as a crafted
// edge-case zone and every query is asked with every EDNS setting.
const smallZone = 2000

// generator holds the state of one corpus generation: the random source is
// the only source of variety, so a seed gives the same corpus every time.
type generator struct {
	rng     *rand.Rand
	queries []Query
}

// Generate builds the corpus for a set of zones served together. It is a
// pure function of the zones and the seed. serverWide adds the probes that
// belong to no zone (CHAOS, opcodes, classes, header oddities); they are
// generated once per server pair.
func Generate(zones []*Zone, seed int64, serverWide bool) []Query {
	g := &generator{rng: rand.New(rand.NewSource(seed))}
	for _, z := range zones {
		g.zone(z, zones)
	}
	if serverWide && len(zones) > 0 {
		g.serverWide(zones)
	}
	return g.queries
}

// owner is one name of a zone with the types it owns.
type owner struct {
	name  string // As written in the zone file (case kept).
	key   string // Lowercase, for lookups.
	types []uint16
}

type zoneIndex struct {
	z      *Zone
	owners map[string]*owner
	keys   []string // Sorted, for a deterministic walk.
	ents   []string
	// nsec3 holds the owners of NSEC3 records, sorted. They are names of
	// the zone on the wire but not in its tree (RFC 5155 section 7.2.9), so
	// they are kept out of owners, where they would pass for ordinary names.
	nsec3 []string
	// signed is set when the apex has a DNSKEY.
	signed bool
}

func indexZone(z *Zone) *zoneIndex {
	ix := &zoneIndex{z: z, owners: map[string]*owner{}}
	nsec3 := map[string]bool{}
	for _, rr := range z.Records {
		h := rr.Header()
		key := strings.ToLower(h.Name)
		if isNSEC3Record(rr) {
			if !nsec3[key] {
				nsec3[key] = true
				ix.nsec3 = append(ix.nsec3, key)
			}
			continue
		}
		if h.Rrtype == dns.TypeDNSKEY && key == z.Origin {
			ix.signed = true
		}
		o := ix.owners[key]
		if o == nil {
			o = &owner{name: h.Name, key: key}
			ix.owners[key] = o
			ix.keys = append(ix.keys, key)
		}
		t := h.Rrtype
		if !containsType(o.types, t) {
			o.types = append(o.types, t)
		}
	}
	sort.Strings(ix.keys)
	sort.Strings(ix.nsec3)
	ents := map[string]bool{}
	for _, key := range ix.keys {
		for p := parent(key); p != "" && p != z.Origin && dns.IsSubDomain(z.Origin, p); p = parent(p) {
			if ix.owners[p] == nil {
				ents[p] = true
			}
		}
	}
	for e := range ents {
		ix.ents = append(ix.ents, e)
	}
	sort.Strings(ix.ents)
	return ix
}

// isNSEC3Record reports whether rr belongs to the NSEC3 chain: an NSEC3 or
// its signature.
func isNSEC3Record(rr dns.RR) bool {
	if sig, ok := rr.(*dns.RRSIG); ok {
		return sig.TypeCovered == dns.TypeNSEC3
	}
	return rr.Header().Rrtype == dns.TypeNSEC3
}

// dnssecType reports whether t is a type a signer adds beside the data.
func dnssecType(t uint16) bool {
	return t == dns.TypeRRSIG || t == dns.TypeNSEC || t == dns.TypeNSEC3
}

// dataTypes returns ts without the types a signer adds, the types a
// wildcard synthesises answers of.
func dataTypes(ts []uint16) []uint16 {
	var out []uint16
	for _, t := range ts {
		if !dnssecType(t) {
			out = append(out, t)
		}
	}
	return out
}

func containsType(ts []uint16, t uint16) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}

// parent returns the name with its first label removed, "" for the root.
func parent(name string) string {
	if name == "." || name == "" {
		return ""
	}
	idx := dns.Split(name)
	if len(idx) < 2 {
		return "."
	}
	return name[idx[1]:]
}

// firstLabel returns the first label of name in presentation form.
func firstLabel(name string) string {
	idx := dns.Split(name)
	if len(idx) < 2 {
		return strings.TrimSuffix(name, ".")
	}
	return name[:idx[1]-1]
}

func child(label, name string) string {
	if name == "." {
		return label + "."
	}
	return label + "." + name
}

// isCut reports whether key is a delegation point of the zone.
func (ix *zoneIndex) isCut(key string) bool {
	o := ix.owners[key]
	return key != ix.z.Origin && o != nil && containsType(o.types, dns.TypeNS)
}

// belowCut reports whether key lies strictly below a delegation point.
func (ix *zoneIndex) belowCut(key string) bool {
	for p := parent(key); p != "" && p != ix.z.Origin; p = parent(p) {
		if ix.isCut(p) {
			return true
		}
	}
	return false
}

func (g *generator) label(prefix string) string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	n := 3 + g.rng.Intn(8)
	b := []byte(prefix)
	for i := 0; i < n; i++ {
		b = append(b, letters[g.rng.Intn(len(letters))])
	}
	return string(b)
}

func (g *generator) lacking(have []uint16) uint16 {
	for {
		t := lackingTypes[g.rng.Intn(len(lackingTypes))]
		if !containsType(have, t) {
			return t
		}
	}
}

// zone adds the queries derived from one zone.
func (g *generator) zone(z *Zone, all []*Zone) {
	ix := indexZone(z)
	origin := z.Origin
	add := func(cat, name string, t uint16) {
		g.add(Query{Zone: origin, Category: cat, Name: name, Type: t, Class: dns.ClassINET})
	}
	if len(z.Records) < smallZone {
		// A crafted zone is small and each of its names is an edge case
		// whose answer depends on the EDNS size (truncation) and DO: ask
		// every base query with each EDNS setting.
		signed := ix.signed
		add = func(cat, name string, t uint16) {
			for _, size := range []int{0, 512, 1232, 4096} {
				q := Query{Zone: origin, Category: cat, Name: name, Type: t, Class: dns.ClassINET, EDNS: size}
				if size != 0 {
					// A signed zone's answers differ with DO most, and
					// at 512 and 1232 octets its signatures and proofs
					// are what truncates: ask those with DO always.
					q.DO = g.rng.Intn(2) == 0 || signed && size != 4096
					q.NSID = g.rng.Intn(20) == 0
				}
				g.addFixed(q)
			}
		}
	}

	apex := ix.owners[origin]
	for _, t := range []uint16{dns.TypeSOA, dns.TypeNS, dns.TypeDNSKEY, dns.TypeANY, dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3PARAM, dns.TypeDS} {
		add("apex", origin, t)
	}
	if apex != nil {
		for _, t := range apex.types {
			add("apex", origin, t)
		}
	}

	for _, key := range ix.keys {
		if key == origin {
			continue
		}
		o := ix.owners[key]
		switch {
		case ix.belowCut(key):
			// Glue and occluded data: always a referral, never an answer.
			// The root zone has thousands of such names that all probe the
			// same behaviour, so the types they lack are sampled.
			for _, t := range o.types {
				add("below-cut", o.name, t)
			}
			if g.rng.Intn(4) == 0 {
				add("below-cut", o.name, g.lacking(o.types))
			}
		case ix.isCut(key):
			for _, t := range o.types {
				cat := "cut"
				if t == dns.TypeDS {
					cat = "ds-cut"
				}
				add(cat, o.name, t)
			}
			if !containsType(o.types, dns.TypeDS) {
				add("ds-cut", o.name, dns.TypeDS)
			}
			add("cut", o.name, g.lacking(o.types))
			add("cut", o.name, g.lacking(o.types))
			add("below-cut", child(g.label("b"), o.name), pick(g.rng, dns.TypeA, dns.TypeAAAA, dns.TypeNS, dns.TypeDS, dns.TypeMX))
			add("nx-neighbour", neighbour(g, o.name), dns.TypeNS)
		case strings.HasPrefix(key, "*."):
			for _, t := range o.types {
				add("wildcard-literal", o.name, t)
			}
			base := o.name[2:]
			data := dataTypes(o.types)
			for _, t := range data {
				add("wildcard", child(g.label("w"), base), t)
			}
			add("wildcard-nodata", child(g.label("w"), base), g.lacking(o.types))
			add("wildcard-nodata", child(g.label("w"), base), g.lacking(o.types))
			if len(data) > 0 {
				add("wildcard", child(g.label("w"), child(g.label("w"), base)), data[0])
			}
			add("wildcard", child(g.label("w"), base), dns.TypeANY)
			if ix.signed {
				// The signer's own types asked at a synthesised name,
				// apart from the data types above: how a server answers
				// for the wildcard's RRSIG and NSEC is an edge case of
				// its own.
				add("wildcard", child(g.label("w"), base), pick(g.rng, dns.TypeRRSIG, dns.TypeNSEC))
			}
		default:
			for _, t := range o.types {
				add("owner-type", o.name, t)
			}
			add("owner-lacking", o.name, g.lacking(o.types))
			add("owner-lacking", o.name, g.lacking(o.types))
			if g.rng.Intn(4) == 0 {
				add("owner-any", o.name, dns.TypeANY)
			}
			add("nx-child", child(g.label("c"), o.name), pick(g.rng, dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeMX))
			add("nx-neighbour", neighbour(g, o.name), pick(g.rng, dns.TypeA, dns.TypeAAAA, dns.TypeTXT))
			if containsType(o.types, dns.TypeDNAME) {
				g.belowDNAME(ix, o, add)
			}
		}
	}

	for _, e := range ix.ents {
		if ix.belowCut(e) {
			// An empty non-terminal below a cut is just another referral.
			add("below-cut", e, pick(g.rng, dns.TypeA, dns.TypeAAAA, dns.TypeNS, dns.TypeDS))
			continue
		}
		add("ent", e, dns.TypeA)
		add("ent", e, g.lacking(nil))
		add("ent", child(g.label("c"), e), dns.TypeA)
	}

	// NSEC3 owners exist on the wire only: a query for one is answered as
	// for a name that does not exist (RFC 5155 section 7.2.9), whatever
	// its type, NSEC3 included.
	for _, name := range ix.nsec3 {
		add("nsec3-owner", name, pick(g.rng, dns.TypeNSEC3, dns.TypeNSEC3, dns.TypeA, dns.TypeRRSIG, dns.TypeANY))
	}

	// Names that do not exist at the top of the zone, for NXDOMAIN (junk
	// TLDs for the root zone).
	for i := 0; i < 5+len(ix.keys)/50; i++ {
		add("nx-apex-child", child(g.label("nx"), origin), pick(g.rng, dns.TypeA, dns.TypeAAAA, dns.TypeSOA, dns.TypeNS, dns.TypeDS))
	}
	// Names outside this zone: either in another zone of the set or in none.
	for _, name := range []string{"example.com.", child(g.label("o"), "invalid."), child(g.label("o"), "example.net.")} {
		if !servedBy(name, all) {
			add("out-of-zone", name, dns.TypeA)
		}
	}
	if p := parent(origin); p != "" && !servedBy(p, all) {
		add("out-of-zone", p, dns.TypeSOA)
		add("out-of-zone", p, dns.TypeDS)
	}
}

// maxBelowDNAME bounds the names below one DNAME whose rewrite exists that
// belowDNAME asks for.
const maxBelowDNAME = 4

// belowDNAME adds the queries for names below the DNAME at o. A CNAME
// question there is answered by the synthesized CNAME alone (RFC 1034
// section 4.3.2 step 3a, RFC 6672 section 3.2); other types follow it. Both
// are asked for a name whose rewrite does not exist and for names whose
// rewrite does, so that a server that wrongly follows the synthesized CNAME
// shows it by an NXDOMAIN or a NODATA.
func (g *generator) belowDNAME(ix *zoneIndex, o *owner, add func(cat, name string, t uint16)) {
	add("below-dname", child(g.label("d"), o.name), dns.TypeCNAME)
	for _, rr := range ix.z.Records {
		d, ok := rr.(*dns.DNAME)
		if !ok || strings.ToLower(d.Hdr.Name) != o.key {
			continue
		}
		target := strings.ToLower(d.Target)
		n := 0
		for _, key := range ix.keys {
			if n == maxBelowDNAME {
				break
			}
			if key == target || !dns.IsSubDomain(target, key) || ix.belowCut(key) {
				continue
			}
			name := key[:len(key)-len(target)] + o.name
			add("below-dname", name, dns.TypeCNAME)
			add("below-dname", name, ix.owners[key].types[0])
			n++
		}
	}
}

// servedBy reports whether some zone of the set contains name.
func servedBy(name string, zones []*Zone) bool {
	for _, z := range zones {
		if dns.IsSubDomain(z.Origin, strings.ToLower(name)) {
			return true
		}
	}
	return false
}

// neighbour returns a name next to name in canonical order that most likely
// does not exist: its first label with a suffix appended.
func neighbour(g *generator, name string) string {
	first := firstLabel(name)
	rest := parent(name)
	if len(first) > 50 {
		first = first[:50]
	}
	return child(first+"-"+g.label(""), rest)
}

func pick(rng *rand.Rand, ts ...uint16) uint16 {
	return ts[rng.Intn(len(ts))]
}

// serverWide adds probes of behaviour that belongs to the server rather than
// to a zone: CHAOS identity names, opcodes, classes, EDNS versions and
// options, and header oddities.
func (g *generator) serverWide(zones []*Zone) {
	origin := zones[0].Origin
	someName := origin
	for _, z := range zones {
		if len(z.Records) > 1 {
			someName = z.Records[len(z.Records)/2].Header().Name
			break
		}
	}
	chaos := []string{"id.server.", "version.bind.", "hostname.bind.", "version.server.", "authors.bind.", "version.", "foo.id.server."}
	for _, name := range chaos {
		for _, t := range []uint16{dns.TypeTXT, dns.TypeTXT, dns.TypeA, dns.TypeANY} {
			g.add(Query{Category: "chaos", Name: name, Type: t, Class: dns.ClassCHAOS})
		}
		// Every EDNS variant for the identity names, with and without NSID.
		for _, size := range []int{0, 512, 1232, 4096} {
			g.addFixed(Query{Category: "chaos", Name: name, Type: dns.TypeTXT, Class: dns.ClassCHAOS, EDNS: size, NSID: size != 0})
		}
	}
	g.add(Query{Category: "chaos", Name: "id.server.", Type: dns.TypeTXT, Class: dns.ClassINET})

	for _, class := range []uint16{dns.ClassCHAOS, dns.ClassHESIOD, dns.ClassNONE, dns.ClassANY, 42, 65280} {
		for _, name := range []string{origin, someName} {
			g.add(Query{Category: "class", Name: name, Type: dns.TypeSOA, Class: class})
			g.add(Query{Category: "class", Name: name, Type: dns.TypeA, Class: class})
		}
	}
	for opcode := 1; opcode < 16; opcode++ {
		g.add(Query{Category: "opcode", Name: origin, Type: dns.TypeSOA, Class: dns.ClassINET, Opcode: opcode})
		g.add(Query{Category: "opcode", Name: someName, Type: dns.TypeA, Class: dns.ClassINET, Opcode: opcode})
	}
	for _, v := range []uint8{1, 2, 255} {
		for _, name := range []string{origin, someName} {
			g.addFixed(Query{Category: "edns-version", Name: name, Type: dns.TypeSOA, Class: dns.ClassINET, EDNS: 1232, EDNSVersion: v})
		}
	}
	for _, size := range []int{1, 511, 512, 513, 1231, 1233, 4096, 65535} {
		g.addFixed(Query{Category: "edns-size", Name: origin, Type: dns.TypeSOA, Class: dns.ClassINET, EDNS: size, NSID: true})
		g.addFixed(Query{Category: "edns-size", Name: origin, Type: dns.TypeNS, Class: dns.ClassINET, EDNS: size, DO: true})
	}
	for _, m := range []string{"qdcount0", "qdcount2", "qr", "tc", "aa", "ra", "z", "ancount1", "trailing"} {
		g.add(Query{Category: "header", Name: origin, Type: dns.TypeSOA, Class: dns.ClassINET, Mutation: m})
	}
	for _, t := range []uint16{dns.TypeAXFR, dns.TypeIXFR, dns.TypeMAILA, dns.TypeMAILB, dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY, 0} {
		g.add(Query{Category: "meta-type", Name: origin, Type: t, Class: dns.ClassINET})
	}
}

// add completes a base query with random transport-independent variants
// (EDNS, DO, header bits, letter case) and packs it.
func (g *generator) add(q Query) {
	switch g.rng.Intn(4) {
	case 0:
		q.EDNS = 0
	case 1:
		q.EDNS = 512
	case 2:
		q.EDNS = 1232
	default:
		q.EDNS = 4096
	}
	if q.EDNS != 0 {
		q.DO = g.rng.Intn(2) == 0
		q.NSID = g.rng.Intn(20) == 0
	}
	g.addFixed(q)
}

// addFixed keeps the EDNS settings of q and draws only the header bits and
// the letter case.
func (g *generator) addFixed(q Query) {
	q.RD = g.rng.Intn(2) == 0
	q.CD = g.rng.Intn(10) == 0
	q.AD = g.rng.Intn(10) == 0
	if g.rng.Intn(3) == 0 {
		q.Name = randomCase(g.rng, q.Name)
	}
	q.Wire = g.pack(&q)
	g.queries = append(g.queries, q)
}

// randomCase flips the case of letters at random (the 0x20 trick of
// draft-vixie-dnsext-dns0x20). Escapes are digits or punctuation after a
// backslash, so flipping letters never breaks one.
func randomCase(rng *rand.Rand, name string) string {
	b := []byte(name)
	for i, c := range b {
		if (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') && rng.Intn(2) == 0 {
			b[i] = c ^ 0x20
		}
	}
	return string(b)
}

func (g *generator) pack(q *Query) []byte {
	m := &dns.Msg{}
	m.Id = uint16(g.rng.Intn(1 << 16))
	m.Opcode = q.Opcode
	m.RecursionDesired = q.RD
	m.CheckingDisabled = q.CD
	m.AuthenticatedData = q.AD
	m.Question = []dns.Question{{Name: q.Name, Qtype: q.Type, Qclass: q.Class}}
	if q.Mutation == "qdcount2" {
		m.Question = append(m.Question, dns.Question{Name: q.Name, Qtype: dns.TypeA, Qclass: dns.ClassINET})
	}
	if q.Mutation == "qdcount0" {
		m.Question = nil
	}
	if q.Mutation == "ancount1" {
		a, _ := dns.NewRR(q.Name + " 60 IN A 192.0.2.1")
		m.Answer = append(m.Answer, a)
	}
	if q.EDNS != 0 {
		o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		o.SetUDPSize(uint16(q.EDNS))
		o.SetVersion(q.EDNSVersion)
		if q.DO {
			o.SetDo()
		}
		if q.NSID {
			o.Option = append(o.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
		}
		m.Extra = append(m.Extra, o)
	}
	wire, err := m.Pack()
	if err != nil {
		// The generator only builds valid names; a failure is a bug here.
		panic(fmt.Sprintf("packing %s: %v", q, err))
	}
	switch q.Mutation {
	case "qr":
		wire[2] |= 0x80
	case "tc":
		wire[2] |= 0x02
	case "aa":
		wire[2] |= 0x04
	case "ra":
		wire[3] |= 0x80
	case "z":
		wire[3] |= 0x40
	case "trailing":
		wire = append(wire, 0xde, 0xad, 0xbe, 0xef)
	}
	return wire
}
