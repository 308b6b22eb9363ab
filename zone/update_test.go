package zone

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// TestApplyHow checks which change sets are applied in place and which are
// rebuilt, that the version applied to keeps its records either way, and
// that a version made in place holds the same table as one built from
// scratch from its records (sameTable: every node's flags and RRsets, the
// bytes of every block they point to, the kept records, the index, the
// NSEC and NSEC3 indexes). The signed zones' change sets are the
// difference between the zone signed before and after (updSignZone), as a
// signer that re-signs only what changed would send them: RRSIGs, and NSEC
// or NSEC3 records added, removed and changed with their neighbours.
func TestApplyHow(t *testing.T) {
	ds := func(i int) string { return fmt.Sprintf("d%d.tld. 3600 IN DS 1 13 2 %064x", i, i) }
	var manyDel, manyAdd []string
	for i := range 12 { // over a tenth of the zone's 83 names (unsigned)
		manyDel = append(manyDel, fmt.Sprintf("ns1.d%d.tld. 3600 IN A 10.0.0.%d", i, i))
		manyAdd = append(manyAdd, fmt.Sprintf("ns1.d%d.tld. 3600 IN A 10.0.1.%d", i, i))
	}
	cases := []struct {
		name     string
		del, add []string
		want     string
	}{
		{"glue", []string{"ns1.d3.tld. 3600 IN A 10.0.0.3"}, []string{"ns1.d3.tld. 3600 IN A 10.9.9.9"}, "incremental"},
		{"DS", []string{ds(4)}, []string{"d4.tld. 3600 IN DS 2 13 2 " + strings.Repeat("ab", 32)}, "incremental"},
		{"TTL", []string{"ns1.d5.tld. 3600 IN A 10.0.0.5"}, []string{"ns1.d5.tld. 60 IN A 10.0.0.5"}, "incremental"},
		{"new delegation", nil, []string{"new.tld. 3600 IN NS ns.example."}, "incremental"},
		{"new delegation with glue and DS", nil, []string{"new.tld. 3600 IN NS ns1.new.tld.", "ns1.new.tld. 3600 IN A 10.1.1.1", "new.tld. 3600 IN DS 7 13 2 " + strings.Repeat("cd", 32)}, "incremental"},
		{"delegation removed", []string{"d6.tld. 3600 IN NS ns1.d6.tld.", ds(6), "ns1.d6.tld. 3600 IN A 10.0.0.6"}, nil, "incremental"},
		{"delegation removed, glue kept", []string{"d6.tld. 3600 IN NS ns1.d6.tld.", ds(6)}, nil, "incremental"},
		{"cut removed", []string{"d7.tld. 3600 IN NS ns1.d7.tld."}, nil, "incremental"},
		{"cut made above data", []string{"www.tld. 3600 IN A 192.0.2.80"}, []string{"www.tld. 3600 IN NS ns1.d8.tld."}, "incremental"},
		{"sibling glue name added", nil, []string{"ns2.d9.tld. 3600 IN A 10.2.2.2", "d10.tld. 3600 IN NS ns2.d9.tld."}, "incremental"},
		{"empty non-terminals added", nil, []string{"a.b.c.tld. 3600 IN TXT \"deep\""}, "incremental"},
		{"empty non-terminal removed", []string{"host.sub.e.tld. 3600 IN A 10.5.5.5"}, nil, "incremental"},
		{"wildcard added", nil, []string{"*.tld. 3600 IN A 10.3.3.3"}, "incremental"},
		{"wildcard removed", []string{"*.w.tld. 3600 IN A 10.6.6.6"}, nil, "incremental"},
		{"wildcard's address", []string{"*.w.tld. 3600 IN A 10.6.6.6"}, []string{"*.w.tld. 3600 IN A 10.6.6.7"}, "incremental"},
		{"name under the wildcard's parent", nil, []string{"mail.w.tld. 3600 IN TXT \"not synthesized\""}, "incremental"},
		{"wildcard under a cut", nil, []string{"*.d11.tld. 3600 IN A 10.3.3.4"}, "incremental"},
		{"CNAME added", nil, []string{"c.tld. 3600 IN CNAME ns1.d12.tld."}, "incremental"},
		{"CNAME removed", []string{"alias.tld. 3600 IN CNAME www.tld."}, nil, "incremental"},
		{"NS target gets addresses", nil, []string{"ns.d13.tld. 3600 IN A 10.4.4.4", "d14.tld. 3600 IN NS ns.d13.tld."}, "incremental"},
		{"apex NS replaced", []string{"tld. 3600 IN NS ns1.nic.tld."}, []string{"tld. 3600 IN NS ns2.nic.tld.", "ns2.nic.tld. 3600 IN A 192.0.2.2"}, "incremental"},
		{"DNAME added", nil, []string{"dn.tld. 3600 IN DNAME example.net."}, "rebuilt: a name gains or loses its DNAME RRset"},
		{"over a tenth", manyDel, manyAdd, "rebuilt: over a tenth of the names change"},
	}
	for _, kind := range []string{"unsigned", "nsec", "nsec3"} {
		base := updZoneRecords(40)
		signed := func(recs []string) string {
			if kind == "unsigned" {
				return strings.Join(recs, "\n") + "\n"
			}
			return updSignZone(t, recs, kind == "nsec3")
		}
		z := mustParse(t, signed(base), "tld.")
		before := walkText(t, z)
		for _, c := range cases {
			t.Run(kind+"/"+c.name, func(t *testing.T) {
				next := slices.DeleteFunc(slices.Clone(base), func(s string) bool { return slices.Contains(c.del, s) })
				next = append(next, c.add...)
				del, add := updTextDiff(t, signed(base), signed(next))
				nz, err := z.Apply(del, add)
				if err != nil {
					t.Fatal(err)
				}
				want := c.want
				if kind == "nsec3" && c.name == "over a tenth" {
					want = "incremental" // the NSEC3 owners are names too
				}
				if nz.Applied() != want {
					t.Errorf("Applied() = %q, want %q", nz.Applied(), want)
				}
				if after := walkText(t, z); strings.Join(after, "\n") != strings.Join(before, "\n") {
					t.Error("the version applied to changed")
				}
				sameTable(t, nz, fromScratch(t, nz))
			})
		}
	}
}

// updZoneRecords is a small zone of n delegations with glue and DS, a
// wildcard (the apex MX's target), a CNAME, a name under empty
// non-terminals and a plain address.
func updZoneRecords(n int) []string {
	out := []string{
		"tld. 3600 IN SOA ns1.nic.tld. hostmaster.tld. 1 1800 900 604800 300",
		"tld. 3600 IN NS ns1.nic.tld.",
		"tld. 3600 IN MX 10 mail.w.tld.",
		"ns1.nic.tld. 3600 IN A 192.0.2.1",
		"www.tld. 3600 IN A 192.0.2.80",
		"alias.tld. 3600 IN CNAME www.tld.",
		"*.w.tld. 3600 IN A 10.6.6.6",
		"host.sub.e.tld. 3600 IN A 10.5.5.5",
	}
	for i := range n {
		out = append(out, fmt.Sprintf("d%d.tld. 3600 IN NS ns1.d%d.tld.", i, i), fmt.Sprintf("ns1.d%d.tld. 3600 IN A 10.0.0.%d", i, i%250),
			fmt.Sprintf("d%d.tld. 3600 IN DS 1 13 2 %064x", i, i))
	}
	return out
}

// applyText applies to z the difference between the zone texts cur and
// next (updTextDiff), failing t with the change set's error at step. It
// returns the new version and the change set, for the caller's messages.
func applyText(t *testing.T, z *Zone, cur, next string, step int) (nz *Zone, del, add []dns.RR) {
	t.Helper()
	del, add = updTextDiff(t, cur, next)
	nz, err := z.Apply(del, add)
	if err != nil {
		t.Fatalf("step %d: %v", step, err)
	}
	return nz, del, add
}

// updTextDiff returns the records of zone text a not in b and those of b
// not in a.
func updTextDiff(t *testing.T, a, b string) (del, add []dns.RR) {
	parse := func(s string) map[string]dns.RR {
		m := map[string]dns.RR{}
		zp := dns.NewZoneParser(strings.NewReader(s), "tld.", "")
		for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
			m[rr.String()] = rr
		}
		if err := zp.Err(); err != nil {
			t.Fatal(err)
		}
		return m
	}
	x, y := parse(a), parse(b)
	for k, rr := range x {
		if _, ok := y[k]; !ok {
			del = append(del, rr)
		}
	}
	for k, rr := range y {
		if _, ok := x[k]; !ok {
			add = append(add, rr)
		}
	}
	return del, add
}

// updSignZone signs the records as a signer that signs only what changed
// would: an RRSIG over every authoritative RRset derived from its
// content (so that an unchanged RRset keeps its signature), and an NSEC
// chain or an NSEC3 chain (no opt-out, empty non-terminals included). The
// signatures do not verify: the loader does not check them.
func updSignZone(t *testing.T, recs []string, nsec3 bool) string {
	var rrs []dns.RR
	for _, s := range recs {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		rrs = append(rrs, rr)
	}
	key, _ := dns.NewRR("tld. 3600 IN DNSKEY 257 3 13 " + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 64)))
	rrs = append(rrs, key)
	if nsec3 {
		p, _ := dns.NewRR("tld. 0 IN NSEC3PARAM 1 0 0 -")
		rrs = append(rrs, p)
	}
	type key2 struct {
		name string
		typ  uint16
	}
	sets := map[key2][]dns.RR{}
	cuts := map[string]bool{}
	for _, rr := range rrs {
		h := rr.Header()
		h.Name = strings.ToLower(h.Name)
		sets[key2{h.Name, h.Rrtype}] = append(sets[key2{h.Name, h.Rrtype}], rr)
		if h.Rrtype == dns.TypeNS && h.Name != "tld." {
			cuts[h.Name] = true
		}
	}
	below := func(n string) bool {
		for p := n; p != "tld."; {
			_, p, _ = strings.Cut(p, ".")
			if cuts[p] {
				return true
			}
		}
		return false
	}
	typesAt := map[string][]uint16{}
	all := map[string]bool{}
	out := slices.Clone(rrs)
	for k, set := range sets {
		if below(k.name) {
			continue
		}
		typesAt[k.name] = append(typesAt[k.name], k.typ)
		for p := k.name; p != "tld."; {
			all[p] = true
			_, p, _ = strings.Cut(p, ".")
		}
		all["tld."] = true
		if cuts[k.name] && k.typ == dns.TypeNS {
			continue
		}
		out = append(out, updSigOver(t, k.name, k.typ, set))
	}
	var chain []dns.RR
	if !nsec3 {
		var order []string
		for n := range typesAt {
			order = append(order, n)
		}
		slices.SortFunc(order, func(a, b string) int { return CompareCanonical(mustWire(a), mustWire(b)) })
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
		out = append(out, rr, updSigOver(t, rr.Header().Name, rr.Header().Rrtype, []dns.RR{rr}))
	}
	var sb strings.Builder
	for _, rr := range out {
		sb.WriteString(rr.String())
		sb.WriteByte('\n')
	}
	return sb.String()
}

// updSigOver returns an RRSIG over set whose signature is a digest of the
// set's text.
func updSigOver(t *testing.T, name string, covered uint16, set []dns.RR) dns.RR {
	h := sha256.New()
	var ss []string
	for _, rr := range set {
		ss = append(ss, rr.String())
	}
	slices.Sort(ss)
	h.Write([]byte(strings.Join(ss, "\n")))
	sum := h.Sum(nil)
	ttl := set[0].Header().Ttl
	rr, err := dns.NewRR(fmt.Sprintf("%s %d IN RRSIG %s 13 %d %d 20300101000000 20200101000000 %d tld. %s",
		name, ttl, dns.Type(covered), dns.CountLabel(name), ttl, int(sum[0])<<8|int(sum[1]), base64.StdEncoding.EncodeToString(sum)))
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

func mustWire(s string) []byte {
	w, err := toWire(s)
	if err != nil {
		panic(err)
	}
	return lowerWire(w)
}

// fromScratch builds a zone from z's records, written out and parsed.
func fromScratch(t testing.TB, z *Zone) *Zone {
	t.Helper()
	var sb strings.Builder
	z.Walk(func(r *Record) error {
		rr, err := r.RR()
		if err != nil {
			t.Fatal(err)
		}
		sb.WriteString(rr.String())
		sb.WriteByte('\n')
		return nil
	})
	f, err := Parse(strings.NewReader(sb.String()), z.Origin(), "")
	if err != nil {
		t.Fatalf("from scratch: %v", err)
	}
	return f
}

// blockText renders block bi of arenas a for comparison: its header (the
// offsets into the arenas aside), bytes, patch positions and trims, and
// the blocks of the additional signatures it refers to.
func blockText(z *Zone, a *arenas, bi uint32) string {
	if bi == None {
		return "none"
	}
	b := a.blocks[bi]
	s := fmt.Sprintf("len %d base %d count %d ntrim %d req %d labels %d flags %d sum %x wire %x patches %v trims %v",
		b.Len, b.Base, b.Count, b.NTrim, b.Req, b.Labels, b.Flags, b.Sum, a.wire[b.Off:b.Off+uint32(b.Len)],
		a.patches[b.Patch:b.Patch+uint32(b.NPatch)], a.trims[b.Trim:b.Trim+uint32(b.NTrim)])
	if b.NTrim > 0 {
		s += fmt.Sprintf(" addsum %x", a.trims[b.Trim+uint32(b.NTrim)].End)
	}
	if b.Flags&BlockAddSigs != 0 {
		for g := range int(b.NTrim) {
			x, y := z.AdditionalSigs(&b, g)
			s += " [" + blockText(z, a, x) + " | " + blockText(z, a, y) + "]"
		}
	}
	return s
}

// sameTable checks that a and b serve the same: every node, flag, RRset
// and block, the negative SOA, the kept records, the name index and the
// denial indexes, compared by content (the places in the arenas may
// differ).
func sameTable(t *testing.T, a, b *Zone) {
	t.Helper()
	if len(a.nodes) != len(b.nodes) {
		t.Fatalf("%d nodes, from scratch %d", len(a.nodes), len(b.nodes))
	}
	errs := 0
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
		if errs++; errs > 5 {
			t.FailNow()
		}
	}
	for n := range a.nodes {
		x, y := &a.nodes[n], &b.nodes[n]
		name := wireString(a.NodeName(x))
		if string(a.NodeName(x)) != string(b.NodeName(y)) || x.Flags != y.Flags || x.Labels != y.Labels || x.NSets != y.NSets {
			fail("node %d: %s flags %x labels %d sets %d, from scratch %s flags %x labels %d sets %d", n,
				name, x.Flags, x.Labels, x.NSets, wireString(b.NodeName(y)), y.Flags, y.Labels, y.NSets)
			continue
		}
		if f := a.find(a.NodeName(x), hashName(a.NodeName(x))); f != uint32(n) {
			fail("%s: the index finds node %d, not %d", name, f, n)
		}
		for i := range uint32(x.NSets) {
			r, s := a.sets[x.Set0+i], b.sets[y.Set0+i]
			if r.Type != s.Type || r.Count != s.Count || r.TTL != s.TTL {
				fail("%s: RRset %+v, from scratch %+v", name, r, s)
				continue
			}
			if (r.Target == None) != (s.Target == None) || r.Target != None && string(a.names[r.Target:r.Target+uint32(nameLen(a.names[r.Target:]))]) != string(b.names[s.Target:s.Target+uint32(nameLen(b.names[s.Target:]))]) {
				fail("%s %s: targets differ", name, typeName(r.Type))
			}
			if u, v := blockText(a, &a.arenas, r.Block), blockText(b, &b.arenas, s.Block); u != v {
				fail("%s %s: block\n%s\nfrom scratch\n%s", name, typeName(r.Type), u, v)
			}
			if u, v := blockText(a, &a.arenas, r.Sig), blockText(b, &b.arenas, s.Sig); u != v {
				fail("%s %s: signatures\n%s\nfrom scratch\n%s", name, typeName(r.Type), u, v)
			}
		}
	}
	if u, v := blockText(a, &a.arenas, a.negSOA)+blockText(a, &a.arenas, a.negSOASig), blockText(b, &b.arenas, b.negSOA)+blockText(b, &b.arenas, b.negSOASig); u != v {
		fail("negative SOA\n%s\nfrom scratch\n%s", u, v)
	}
	keptText := func(z *Zone) []string {
		var out []string
		if z.kept != nil {
			for _, k := range z.kept.sets {
				out = append(out, fmt.Sprintf("%d %d %x", k.node, k.count, z.kept.wire[k.off:k.off+uint32(k.len)]))
			}
		}
		return out
	}
	if u, v := keptText(a), keptText(b); strings.Join(u, "\n") != strings.Join(v, "\n") {
		fail("kept records\n%s\nfrom scratch\n%s", strings.Join(u, "\n"), strings.Join(v, "\n"))
	}
	if a.Denial() != b.Denial() {
		t.Fatalf("denial %d, from scratch %d", a.Denial(), b.Denial())
	}
	if a.denial == nil {
		return
	}
	da, db := a.denial, b.denial
	proof := func(z *Zone, bi uint32) string { return blockText(z, &z.denial.arenas, bi) }
	for n := range a.nodes {
		name := wireString(a.NodeName(&a.nodes[n]))
		switch a.denial.mode {
		case DenialNSEC:
			if u, v := proof(a, da.nsecAt[n]), proof(b, db.nsecAt[n]); u != v {
				fail("%s: NSECAt\n%s\nfrom scratch\n%s", name, u, v)
			}
			k1, c1, e1, ok1 := a.WideChildren(uint32(n))
			k2, c2, e2, ok2 := b.WideChildren(uint32(n))
			if ok1 != ok2 || fmt.Sprint(k1, c1, e1) != fmt.Sprint(k2, c2, e2) {
				fail("%s: children %v %v %v %v, from scratch %v %v %v %v", name, ok1, k1, c1, e1, ok2, k2, c2, e2)
			}
		case DenialNSEC3:
			if u, v := proof(a, da.match[n]), proof(b, db.match[n]); u != v {
				fail("%s: NSEC3 match\n%s\nfrom scratch\n%s", name, u, v)
			}
			if u, v := proof(a, da.wild[n]), proof(b, db.wild[n]); u != v {
				fail("%s: NSEC3 wild\n%s\nfrom scratch\n%s", name, u, v)
			}
		}
	}
	if da.mode == DenialNSEC3 {
		// The chain rank by rank: an updated chain's pages may lie
		// anywhere in its entries (denial.offs).
		if db.offs != nil {
			t.Fatalf("a chain built from scratch has its pages out of place")
		}
		if n := da.chainLen(); len(da.hashBlocks) > n+n/chainSlack {
			t.Fatalf("a chain of %d hashes in %d entries: more than chainSlack allows", n, len(da.hashBlocks))
		}
		if da.chainLen() != db.chainLen() {
			t.Fatalf("NSEC3 chain of %d hashes, from scratch %d", da.chainLen(), db.chainLen())
		}
		var flat []byte
		for r := range da.chainLen() {
			flat = append(flat, da.hashAt(r)...)
			if !bytes.Equal(da.hashAt(r), db.hashAt(r)) {
				t.Fatalf("NSEC3 hash of rank %d differs", r)
			}
			if u, v := proof(a, da.blockAt(r)), proof(b, db.blockAt(r)); u != v {
				fail("NSEC3 chain entry %d\n%s\nfrom scratch\n%s", r, u, v)
			}
		}
		if s, b := hashStarts(flat); !slices.Equal(da.starts, db.starts) || !slices.Equal(da.starts, s) || da.startBits != b || db.startBits != b {
			t.Fatalf("the index of the NSEC3 hashes' first bytes differs from the one made from scratch")
		}
	}
}

// TestApplyRandomTables applies random change sets, step by step, to an
// unsigned, an NSEC and an NSEC3 zone (signed again after each step, the
// difference being the change set) and compares each version's table with
// one built from scratch (sameTable). The changes add and remove
// delegations with glue, sibling glue and DS, wildcards, CNAMEs, names
// under empty non-terminals, MX and SRV targets, and zone cuts above
// existing data.
func TestApplyRandomTables(t *testing.T) {
	applyRandomTables(t, []uint64{1, 2, 3, 4})
}

// TestApplyRandomTablesHalves is TestApplyRandomTables with every change
// set grouped in two halves side by side (groupParallelMin), as a large
// zone's are.
func TestApplyRandomTablesHalves(t *testing.T) {
	defer func(n int) { groupParallelMin = n }(groupParallelMin)
	groupParallelMin = 1
	applyRandomTables(t, []uint64{5, 6})
}

// TestApplyRandomTablesParts is TestApplyRandomTables with every array an
// update copies or merges (the nodes, the index, match and wild, the
// NSEC3 chain) made in three parts side by side, as a large zone's are
// made in one part per core.
func TestApplyRandomTablesParts(t *testing.T) {
	defer func(n int) { partsMin = n }(partsMin)
	partsMin = 2
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3))
	applyRandomTables(t, []uint64{3, 4})
}

// TestApplyRandomTablesEarly is TestApplyRandomTables with the late
// arrays (updateearly.go), and the arrays for the next update
// (PrepareNext, updatenodes.go), made ahead for every zone, as they are
// for a large one, and filled with garbage, so that an entry the update
// does not write shows.
func TestApplyRandomTablesEarly(t *testing.T) {
	defer func(n int, p bool) { earlyMin, poisonEarly = n, p }(earlyMin, poisonEarly)
	earlyMin, poisonEarly = 0, true
	applyRandomTables(t, []uint64{14, 15})
}

func applyRandomTables(t *testing.T, seeds []uint64) {
	for _, kind := range []string{"unsigned", "nsec", "nsec3"} {
		for _, seed := range seeds {
			t.Run(fmt.Sprintf("%s/%d", kind, seed), func(t *testing.T) {
				r := rand.New(rand.NewPCG(seed, 14))
				u := newUpdRandomZone(t, kind, 30)
				cur := u.text()
				z := mustParse(t, cur, "tld.")
				how := map[string]int{}
				for step := 1; step <= 40; step++ {
					next := u.step(r)
					nz, del, add := applyText(t, z, cur, next, step)
					// As the catalog does after an update; a large
					// zone's arrays for its next update are made
					// ahead (TestApplyRandomTablesEarly has them
					// made for these small ones, poisoned).
					nz.PrepareNext()
					how[nz.Applied()]++
					sameTable(t, nz, fromScratch(t, nz))
					if t.Failed() {
						t.Fatalf("step %d (%s): deleted %v added %v", step, nz.Applied(), del, add)
					}
					z, cur = nz, next
				}
				t.Logf("applied: %v", how)
				if how["incremental"] < 30 {
					t.Errorf("only %d of 40 steps applied in place", how["incremental"])
				}
			})
		}
	}
}

// updRandomZone is the zone of a randomised test of Apply: its records as
// a set, signed as kind says (unsigned, nsec, nsec3), and its SOA serial.
type updRandomZone struct {
	t      *testing.T
	kind   string
	recs   map[string]bool
	serial int
}

// newUpdRandomZone starts from the records of updZoneRecords(n), serial 1.
func newUpdRandomZone(t *testing.T, kind string, n int) *updRandomZone {
	u := &updRandomZone{t: t, kind: kind, recs: map[string]bool{}, serial: 1}
	for _, s := range updZoneRecords(n) {
		u.recs[s] = true
	}
	return u
}

// text is the zone's file: its records in order, signed for its kind.
func (u *updRandomZone) text() string {
	l := make([]string, 0, len(u.recs))
	for s := range u.recs {
		l = append(l, s)
	}
	slices.Sort(l)
	if u.kind == "unsigned" {
		return strings.Join(l, "\n") + "\n"
	}
	return updSignZone(u.t, l, u.kind == "nsec3")
}

// step moves the zone to its next serial with one to four random changes
// (updRandomChange) and returns its new text.
func (u *updRandomZone) step(r *rand.Rand) string {
	soa := "tld. 3600 IN SOA ns1.nic.tld. hostmaster.tld. %d 1800 900 604800 300"
	delete(u.recs, fmt.Sprintf(soa, u.serial))
	u.serial++
	u.recs[fmt.Sprintf(soa, u.serial)] = true
	for k := r.IntN(4); k >= 0; k-- {
		updRandomChange(r, u.recs)
	}
	return u.text()
}

// updRandomChange makes one random change to the records.
func updRandomChange(r *rand.Rand, recs map[string]bool) {
	i := r.IntN(40)
	owner := fmt.Sprintf("d%d.tld.", i)
	dropUnder := func(name string) {
		for s := range recs {
			o, _, _ := strings.Cut(s, " ")
			if o == name || strings.HasSuffix(o, "."+name) {
				delete(recs, s)
			}
		}
	}
	switch r.IntN(12) {
	case 0, 1: // a delegation added or replaced, with glue and maybe DS and sibling glue
		dropUnder(owner)
		recs[fmt.Sprintf("%s 3600 IN NS ns1.%s", owner, owner)] = true
		recs[fmt.Sprintf("ns1.%s 3600 IN A 10.%d.%d.1", owner, i, r.IntN(200))] = true
		if r.IntN(2) == 0 {
			recs[fmt.Sprintf("%s 3600 IN DS %d 13 2 %064x", owner, i, r.IntN(100))] = true
		}
		if r.IntN(2) == 0 {
			recs[fmt.Sprintf("%s 3600 IN NS ns1.d%d.tld.", owner, r.IntN(40))] = true
		}
	case 2: // a delegation removed with its glue
		dropUnder(owner)
	case 3: // only the cut removed: the glue becomes data
		delete(recs, fmt.Sprintf("%s 3600 IN NS ns1.%s", owner, owner))
	case 4: // glue renumbered
		for _, s := range withPrefix(recs, "ns1."+owner+" 3600 IN A ") {
			delete(recs, s)
			recs[fmt.Sprintf("ns1.%s 3600 IN A 10.%d.%d.2", owner, i, r.IntN(200))] = true
		}
	case 5: // a wildcard added or removed
		w := fmt.Sprintf("*.w%d.tld. 3600 IN A 10.7.%d.1", i%4, i%4)
		if recs[w] {
			delete(recs, w)
		} else {
			recs[w] = true
		}
	case 6: // a CNAME added, retargeted or removed
		c := fmt.Sprintf("c%d.tld.", i%5)
		dropUnder(c)
		if r.IntN(3) > 0 {
			recs[fmt.Sprintf("%s 3600 IN CNAME %s", c, []string{"www.tld.", "x.w1.tld.", "ns1.d3.tld.", "nx.tld."}[r.IntN(4)])] = true
		}
	case 7: // a name under empty non-terminals added or removed
		h := fmt.Sprintf("h.s%d.e%d.tld. 3600 IN A 10.8.%d.1", i%3, i%2, i%3)
		if recs[h] {
			delete(recs, h)
		} else {
			recs[h] = true
		}
	case 8: // MX and SRV targets: in-zone names, wildcard-synthesized ones, missing ones
		t := []string{"ns1.d5.tld.", "mail.w1.tld.", "x.w2.tld.", "nope.tld.", "host.sub.e.tld."}[r.IntN(5)]
		if r.IntN(2) == 0 {
			recs[fmt.Sprintf("tld. 3600 IN MX %d %s", 10+i, t)] = true
		} else {
			recs[fmt.Sprintf("_s%d._tcp.tld. 3600 IN SRV 0 0 53 %s", i%3, t)] = true
		}
	case 9: // a cut made above existing data, or removed again
		s := "www.tld. 3600 IN NS ns1.www.tld."
		if recs[s] {
			delete(recs, s)
		} else {
			recs[s] = true
			recs[fmt.Sprintf("ns1.www.tld. 3600 IN A 10.9.%d.1", i)] = true
		}
	case 10: // a wildcard's address
		for _, s := range withPrefix(recs, "*.w.tld. 3600 IN A ") {
			delete(recs, s)
			recs[fmt.Sprintf("*.w.tld. 3600 IN A 10.6.6.%d", i)] = true
		}
	case 11: // sibling glue names added under other delegations
		recs[fmt.Sprintf("ns2.d%d.tld. 3600 IN AAAA fd00::%d", i, r.IntN(100))] = true
		recs[fmt.Sprintf("d%d.tld. 3600 IN NS ns2.d%d.tld.", (i+1)%40, i)] = true
	}
}

// withPrefix returns the records of recs that start with prefix, sorted:
// a change that replaces them in a loop over the map itself may meet the
// records it adds (Go leaves that open), and the random numbers a
// replacement draws would then depend on the map's order, which differs
// from run to run.
func withPrefix(recs map[string]bool, prefix string) []string {
	var out []string
	for s := range recs {
		if strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// TestApplyNSEC3Neighbours removes an NSEC3-signed delegation and adds one
// whose hash falls just before the removed one's, with no hash between:
// the chain's merge must insert the new hash and drop the old one at the
// same place (it sliced past its own end when it took the removal first).
func TestApplyNSEC3Neighbours(t *testing.T) {
	base := updZoneRecords(30)
	hash := func(n string) string { return strings.ToLower(dns.HashName(n, dns.SHA1, 0, "")) }
	var hashes []string
	for _, rr := range updRRsOf(t, updSignZone(t, base, true)) {
		if rr.Header().Rrtype == dns.TypeNSEC3 {
			hashes = append(hashes, strings.SplitN(rr.Header().Name, ".", 2)[0])
		}
	}
	slices.Sort(hashes)
	gone := hash("d6.tld.")
	k := slices.Index(hashes, gone)
	if k <= 0 {
		t.Fatalf("d6.tld.'s hash %s is not in the chain, or first", gone)
	}
	prev := hashes[k-1]
	var name string
	for i := 0; name == "" && i < 100000; i++ {
		n := fmt.Sprintf("n%d.tld.", i)
		if h := hash(n); prev < h && h < gone {
			name = n
		}
	}
	if name == "" {
		t.Fatal("no name hashes between the neighbours")
	}
	next := slices.DeleteFunc(slices.Clone(base), func(s string) bool { return strings.HasPrefix(s, "d6.tld. ") || strings.HasPrefix(s, "ns1.d6.tld. ") })
	next = append(next, name+" 3600 IN NS ns.example.net.", name+" 3600 IN DS 9 13 2 "+strings.Repeat("ef", 32))
	z := mustParse(t, updSignZone(t, base, true), "tld.")
	del, add := updTextDiff(t, updSignZone(t, base, true), updSignZone(t, next, true))
	nz, err := z.Apply(del, add)
	if err != nil {
		t.Fatal(err)
	}
	if nz.Applied() != "incremental" {
		t.Fatalf("Applied() = %q", nz.Applied())
	}
	sameTable(t, nz, fromScratch(t, nz))
}

func updRRsOf(t *testing.T, text string) []dns.RR {
	var out []dns.RR
	zp := dns.NewZoneParser(strings.NewReader(text), "tld.", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		out = append(out, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestApplyIndexResize adds names until the index must double and removes
// them until it must halve: the slots are placed afresh from their hashes
// then, and every name must still be found (sameTable looks each up).
func TestApplyIndexResize(t *testing.T) {
	var base []string
	base = append(base, "tld. 3600 IN SOA ns1.nic.tld. hostmaster.tld. 1 1800 900 604800 300", "tld. 3600 IN NS ns1.nic.tld.", "ns1.nic.tld. 3600 IN A 192.0.2.1")
	for i := range 60 {
		base = append(base, fmt.Sprintf("h%d.tld. 3600 IN A 10.0.0.%d", i, i))
	}
	z := mustParse(t, strings.Join(base, "\n")+"\n", "tld.")
	size := indexLen(z)
	var added []string
	for i := 0; indexLen(z) == size; i++ {
		rr := fmt.Sprintf("new%d.tld. 3600 IN A 10.1.0.%d", i, i)
		nz, err := z.Apply(nil, updRRsOf(t, rr))
		if err != nil {
			t.Fatal(err)
		}
		if nz.Applied() != "incremental" {
			t.Fatalf("Applied() = %q", nz.Applied())
		}
		sameTable(t, nz, fromScratch(t, nz))
		z = nz
		added = append(added, rr)
	}
	t.Logf("%d names added: index of %d slots, was %d", len(added), indexLen(z), size)
	grown := indexLen(z)
	for indexLen(z) == grown {
		rr := added[len(added)-1]
		added = added[:len(added)-1]
		nz, err := z.Apply(updRRsOf(t, rr), updRRsOf(t, "h0.tld. 3600 IN A 10.0.0.0")[:0])
		if err != nil {
			t.Fatal(err)
		}
		sameTable(t, nz, fromScratch(t, nz))
		z = nz
	}
	if indexLen(z) != size {
		t.Errorf("index of %d slots after the removals, want %d", indexLen(z), size)
	}
}

// indexLen is the slots of z's index, once it is made.
func indexLen(z *Zone) int {
	s, _ := z.indexSlots()
	return len(s)
}

// TestApplyNSECChildren adds children to a name of an NSEC zone until it
// has enough for the children index (wideChildren) and removes them
// again: the index entry is made from the nodes below the name when it
// had none, merged from the old one while it has one, and dropped when
// too few are left.
func TestApplyNSECChildren(t *testing.T) {
	base := updZoneRecords(4)
	for i := range wideChildren - 2 {
		base = append(base, fmt.Sprintf("h%d.sub.tld. 3600 IN A 10.9.0.%d", i, i))
	}
	z := mustParse(t, updSignZone(t, base, false), "tld.")
	sub := z.find(mustWire("sub.tld."), hashName(mustWire("sub.tld.")))
	if _, _, _, ok := z.WideChildren(sub); ok {
		t.Fatal("sub.tld. is indexed before it has enough children")
	}
	step := func(next []string) {
		t.Helper()
		del, add := updTextDiff(t, updSignZone(t, base, false), updSignZone(t, next, false))
		nz, err := z.Apply(del, add)
		if err != nil {
			t.Fatal(err)
		}
		if nz.Applied() != "incremental" {
			t.Fatalf("Applied() = %q", nz.Applied())
		}
		sameTable(t, nz, fromScratch(t, nz))
		z, base = nz, next
	}
	for i := range 4 {
		step(append(slices.Clone(base), fmt.Sprintf("n%d.sub.tld. 3600 IN A 10.9.1.%d", i, i)))
	}
	sub = z.find(mustWire("sub.tld."), hashName(mustWire("sub.tld.")))
	if _, kids, _, ok := z.WideChildren(sub); !ok || len(kids) != wideChildren+2 {
		t.Fatalf("sub.tld.'s children are not indexed (%v, %d)", ok, len(kids))
	}
	for i := range 4 {
		rr := fmt.Sprintf("n%d.sub.tld. 3600 IN A 10.9.1.%d", i, i)
		step(slices.DeleteFunc(slices.Clone(base), func(s string) bool { return s == rr }))
	}
	sub = z.find(mustWire("sub.tld."), hashName(mustWire("sub.tld.")))
	if _, _, _, ok := z.WideChildren(sub); ok {
		t.Fatal("sub.tld. is still indexed with too few children")
	}
}

// TestApplyRdataNameCase deletes and adds records whose RDATA names are
// spelled in another case than the zone's: the names of the types the
// block writer compresses (NS, CNAME, PTR, MX, SOA) are compared as Walk
// yields them, lowercased, as those of the other types always were. A
// deletion of "MX 10 MAIL.ex." was refused as not in the zone that loaded
// "MX 10 Mail".
func TestApplyRdataNameCase(t *testing.T) {
	z, err := Parse(strings.NewReader("$TTL 60\n@ SOA Ns Host 1 2 3 4 5\n@ NS Ns\nNs A 192.0.2.1\n@ MX 10 Mail\nMail A 192.0.2.2\nwww CNAME Mail\nsrv SRV 0 0 53 Mail\n"), "ex.", "case.zone")
	if err != nil {
		t.Fatal(err)
	}
	rrs := func(texts ...string) []dns.RR {
		var out []dns.RR
		for _, s := range texts {
			rr, err := dns.NewRR(s)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, rr)
		}
		return out
	}
	nz, err := z.Apply(
		rrs("ex. 60 SOA NS.EX. HOST.ex. 1 2 3 4 5", "ex. 60 MX 10 MAIL.ex.", "WWW.ex. 60 CNAME mAiL.ex.", "srv.ex. 60 SRV 0 0 53 MAIL.EX."),
		rrs("ex. 60 SOA ns.ex. host.ex. 2 2 3 4 5", "ex. 60 MX 20 MAIL.ex.", "www.ex. 60 CNAME NS.ex.", "srv.ex. 60 SRV 0 0 53 Ns.ex."))
	if err != nil {
		t.Fatalf("Apply with the RDATA names in another case: %v", err)
	}
	want, err := Parse(strings.NewReader("$TTL 60\n@ SOA ns host 2 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n@ MX 20 mail\nmail A 192.0.2.2\nwww CNAME ns\nsrv SRV 0 0 53 ns\n"), "ex.", "want.zone")
	if err != nil {
		t.Fatal(err)
	}
	var got, exp []string
	for _, p := range []struct {
		z   *Zone
		out *[]string
	}{{nz, &got}, {want, &exp}} {
		if err := p.z.Walk(func(r *Record) error {
			rr, err := r.RR()
			if err != nil {
				return err
			}
			*p.out = append(*p.out, rr.String())
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(got, exp) {
		t.Errorf("after Apply:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(exp, "\n"))
	}
}

// TestApplyRandomTablesStarts is TestApplyRandomTables with the NSEC3
// chains of its small zones indexed by their hashes' first bits
// (denial.starts), as a large zone's are: sameTable checks each version's
// index against one made from scratch.
//
// The chains are kept in pages (denial.offs): with chainSlack at 1 an
// update writes its pages again until they pass the chain's length, and
// at its default soon merges the chain whole. Each way must have been
// taken, from both layouts.
func TestApplyRandomTablesStarts(t *testing.T) {
	defer func(n, s int) { startsMin, chainSlack, chainMerged = n, s, nil }(startsMin, chainSlack)
	startsMin = 2
	var mu sync.Mutex
	how := map[string]int{}
	chainMerged = func(h string) {
		mu.Lock()
		how[h]++
		mu.Unlock()
	}
	for _, run := range []struct {
		slack int
		seeds []uint64
	}{{1, []uint64{9, 10}}, {16, []uint64{11}}} {
		chainSlack = run.slack
		t.Run(fmt.Sprintf("slack%d", run.slack), func(t *testing.T) {
			applyRandomTables(t, run.seeds)
		})
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("chains made: %v", how)
	for _, h := range []string{"pages", "whole", "whole from pages"} {
		if how[h] < 5 {
			t.Errorf("%d chains made %s, want 5 or more", how[h], h)
		}
	}
}

// TestApplyChainPagesReaders updates an NSEC3 zone whose chain is in
// pages (denial.offs, with chainSlack at 1 so that most updates write
// pages) while readers go over every published version's chain, rank by
// rank, and walk its records: a tip appends its pages past what the older
// versions read, which the race detector checks, and each version must
// read as it did when it was published and be the table built from
// scratch at the end.
func TestApplyChainPagesReaders(t *testing.T) {
	defer func(n, s int) { startsMin, chainSlack, chainMerged = n, s, nil }(startsMin, chainSlack)
	startsMin, chainSlack = 2, 1
	pages := 0
	chainMerged = func(h string) {
		if h == "pages" {
			pages++ // Apply runs on this goroutine
		}
	}
	digest := func(z *Zone) [32]byte {
		d := z.denial
		s := sha256.New()
		for r := range d.chainLen() {
			s.Write(d.hashAt(r))
			s.Write(d.proofData(d.blockAt(r)))
		}
		z.Walk(func(r *Record) error {
			s.Write(r.Owner)
			s.Write(r.Data)
			return nil
		})
		return [32]byte(s.Sum(nil))
	}
	type version struct {
		z    *Zone
		text string
		sum  [32]byte
	}
	r := rand.New(rand.NewPCG(31, 41))
	u := newUpdRandomZone(t, "nsec3", 40)
	cur := u.text()
	z := mustParse(t, cur, "tld.")
	var mu sync.Mutex
	vs := []version{{z, cur, digest(z)}}
	stop := make(chan struct{})
	bad := make(chan string, 1)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				list := slices.Clone(vs)
				mu.Unlock()
				for i, v := range list {
					if digest(v.z) != v.sum {
						select {
						case bad <- fmt.Sprintf("version %d read otherwise than when it was published", i):
						default:
						}
						return
					}
				}
			}
		})
	}
	for step := 1; step <= 40; step++ {
		next := u.step(r)
		nz, del, add := applyText(t, z, cur, next, step)
		if t.Failed() {
			t.Fatalf("step %d (%s): deleted %v added %v", step, nz.Applied(), del, add)
		}
		mu.Lock()
		vs = append(vs, version{nz, next, digest(nz)})
		mu.Unlock()
		z, cur = nz, next
	}
	close(stop)
	wg.Wait()
	select {
	case s := <-bad:
		t.Fatal(s)
	default:
	}
	for i, v := range vs {
		sameTable(t, v.z, mustParse(t, v.text, "tld."))
		if t.Failed() {
			t.Fatalf("version %d is not the table built from its records", i)
		}
	}
	if pages < 10 {
		t.Fatalf("%d of 40 updates wrote pages, want 10 or more", pages)
	}
}
