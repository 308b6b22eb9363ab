package zone

import (
	"bytes"
	"slices"
	"sync"

	"github.com/miekg/dns"
)

// updState is what a zone carries for incremental updates (see the
// package documentation, "Updates").
type updState struct {
	// line is shared by the versions that grew from one another by
	// Apply; nil until the first incremental Apply.
	line *lineage
	// refs indexes the nodes whose NS, MX or SRV records name a target:
	// sorted hash(target)<<32 | node. base is built once per lineage,
	// on the first incremental Apply; extra holds the targets of the
	// RRsets changed since, sorted. Entries may be stale (a target no
	// longer named): they only make Apply rebuild a block that comes
	// out the same.
	refBase, refExtra []uint64
	// how says how Apply made the zone (see Zone.Applied).
	how string
}

// lineage records which version of a line of zones may append to the
// arenas they share: the last one made, its tip. Appending in place past
// the tip's lengths is safe because no version reads past its own lengths
// and no other version has written there; a version that is not the tip
// (an older one updated a second time) must copy what it appends to.
type lineage struct {
	mu  sync.Mutex
	tip *Zone
}

// lineageMu guards the creation of a zone's lineage.
var lineageMu sync.Mutex

// claim reports whether nz (being made from z) may append in place to the
// arenas it shares with z, and if so makes it the lineage's tip, so that
// no other version appends there. release undoes a claim that came to
// nothing.
func (z *Zone) claim() (*lineage, bool) {
	lineageMu.Lock()
	if z.upd.line == nil {
		z.upd.line = &lineage{tip: z}
	}
	l := z.upd.line
	lineageMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tip != z {
		return l, false
	}
	l.tip = nil // claimed: nothing else appends until the new tip is set
	return l, true
}

// maxIncremental is the share of a zone's names above which a change set
// is applied by a rebuild: past it, copying each changed name's data costs
// about what building the table does.
const maxIncrementalDiv = 10

// nodeChange is one changed node: its records after the change, and the
// types whose RRsets (or signatures over them) changed.
type nodeChange struct {
	node    uint32
	owner   []byte
	recs    []Record // after the change, in Walk's order
	oldN    int
	changed map[uint16]bool // RRset types changed; RRSIG changes count for their covered type
}

// incremental applies cs without rebuilding the table, when it can: the
// change set names only existing nodes, none of which gains or loses all
// its records, a delegation, a CNAME or a DNAME, and touches at most a
// tenth of them. It returns (nil, reason, nil) when it cannot.
func (z *Zone) incremental(cs *changeSet) (*Zone, string, error) {
	// Group the changes by owner, in canonical order.
	var chg []*nodeChange
	it := newWalkIter(z)
	del, add := cs.del, cs.add
	limit := len(z.nodes)/maxIncrementalDiv + 1
	for len(del) > 0 || len(add) > 0 {
		var owner []byte
		switch {
		case len(del) == 0:
			owner = add[0].Owner
		case len(add) == 0:
			owner = del[0].Owner
		case CompareCanonical(del[0].Owner, add[0].Owner) <= 0:
			owner = del[0].Owner
		default:
			owner = add[0].Owner
		}
		n := z.find(owner, hashName(owner))
		if n == None {
			return nil, "a name is added", nil
		}
		if len(chg) >= limit {
			return nil, "over a tenth of the names change", nil
		}
		old := it.nodeRecords(int(n))
		c := &nodeChange{node: n, owner: owner, oldN: len(old), changed: map[uint16]bool{}}
		recs := slices.Clone(old)
		for len(del) > 0 && bytes.Equal(del[0].Owner, owner) {
			d := &del[0]
			recs = slices.DeleteFunc(recs, func(r Record) bool { return r.Type == d.Type && bytes.Equal(r.Data, d.Data) })
			c.mark(d)
			del = del[1:]
		}
		for len(add) > 0 && bytes.Equal(add[0].Owner, owner) {
			a := &add[0]
			recs = slices.DeleteFunc(recs, func(r Record) bool { return r.Type == a.Type && bytes.Equal(r.Data, a.Data) })
			recs = append(recs, a.Record)
			c.mark(a)
			add = add[1:]
		}
		slices.SortFunc(recs, func(a, b Record) int { return compareRecords(&a, &b) })
		c.recs = recs
		if why := z.sameShape(n, old, recs); why != "" {
			return nil, why, nil
		}
		chg = append(chg, c)
	}
	return z.applyNodes(chg)
}

func (c *nodeChange) mark(r *change) {
	if r.Type == dns.TypeRRSIG {
		c.changed[r.covered] = true
	} else {
		c.changed[r.Type] = true
	}
}

// sameShape returns why node n cannot change from old to recs in place
// ("" when it can): what the node's flags, its children's and the denial
// method depend on must not change, and what the builder would refuse is
// left to the builder.
func (z *Zone) sameShape(n uint32, old, recs []Record) string {
	if len(recs) == 0 {
		return "a name loses all its records"
	}
	if len(old) == 0 {
		return "an empty non-terminal gets records"
	}
	has := func(rs []Record, t uint16) int {
		k := 0
		for i := range rs {
			if rs[i].Type == t {
				k++
			}
		}
		return k
	}
	nd := &z.nodes[n]
	apex := nd.Flags&FlagApex != 0
	for _, t := range []uint16{dns.TypeNS, dns.TypeCNAME, dns.TypeDNAME, dns.TypeNSEC, dns.TypeNSEC3} {
		if (has(old, t) > 0) != (has(recs, t) > 0) {
			return "a name gains or loses its " + typeName(t) + " RRset"
		}
	}
	if has(recs, dns.TypeCNAME) > 0 {
		// The builder's check, and its error, decide.
		for i := range recs {
			switch recs[i].Type {
			case dns.TypeCNAME, dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3:
			default:
				return "CNAME beside other data"
			}
		}
	}
	if has(recs, dns.TypeCNAME) > 1 || has(recs, dns.TypeDNAME) > 1 {
		return "more than one CNAME or DNAME"
	}
	if !apex && (has(recs, dns.TypeSOA) > 0 || has(recs, dns.TypeNSEC3PARAM) > 0) || apex && has(recs, dns.TypeSOA) != 1 {
		return "an SOA or NSEC3PARAM record away from the apex, or not one SOA"
	}
	if apex {
		for _, t := range []uint16{dns.TypeNSEC3PARAM, dns.TypeDNSKEY} {
			if !slices.EqualFunc(ofRecType(old, t), ofRecType(recs, t), func(a, b Record) bool { return bytes.Equal(a.Data, b.Data) }) {
				return "the apex's " + typeName(t) + " RRset changes"
			}
		}
	}
	if nd.Flags&FlagNSEC3Owner != 0 {
		for i := range recs {
			if recs[i].Type != dns.TypeNSEC3 && recs[i].Type != dns.TypeRRSIG {
				return "an NSEC3 owner gets other data"
			}
		}
	} else if has(recs, dns.TypeNSEC3) > 0 && z.denial != nil && z.denial.mode == DenialNSEC3 {
		return "an NSEC3 RRset beside other data"
	}
	if z.denial == nil {
		for i := range recs {
			switch recs[i].Type {
			case dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3:
				return "an unsigned zone gets DNSSEC records"
			}
		}
	}
	if len(nd.nameOf(z)) > 2 && nd.nameOf(z)[0] == 1 && nd.nameOf(z)[1] == '*' {
		for i := range recs {
			if recs[i].Type == dns.TypeA || recs[i].Type == dns.TypeAAAA || recs[i].Type == dns.TypeRRSIG {
				// Any target below the wildcard's parent may take its
				// addresses, which the reverse index does not know.
				return "a wildcard's addresses or signatures change"
			}
		}
	}
	return ""
}

func (nd *Node) nameOf(z *Zone) []byte { return z.names[nd.Name : nd.Name+uint32(nd.Len)] }

func ofRecType(rs []Record, t uint16) []Record {
	var out []Record
	for i := range rs {
		if rs[i].Type == t {
			out = append(out, rs[i])
		}
	}
	return out
}

// reserve returns s with room for at least extra more elements, grown (a
// copy) by a sixteenth of its length when it has not: an arena is copied
// once in many updates, and the room it keeps is at most that sixteenth.
func reserve[T any](s []T, extra int) []T {
	if cap(s)-len(s) >= extra {
		return s
	}
	n := make([]T, len(s), len(s)+max(extra, len(s)/16))
	copy(n, s)
	return n
}

// clip returns s with its capacity cut to its length, so that an append
// copies rather than writes into the backing array it shares.
func clip[T any](s []T) []T { return s[:len(s):len(s)] }

// applyNodes makes the new version from the old with the changed nodes'
// records replaced.
func (z *Zone) applyNodes(chg []*nodeChange) (*Zone, string, error) {
	lineageMu.Lock()
	if z.upd.refBase == nil {
		z.buildRefs()
	}
	lineageMu.Unlock()
	nz := &Zone{origin: z.origin, file: z.file, serial: z.serial, records: z.records, warnings: z.warnings,
		apex: z.apex, apexLabels: z.apexLabels, names: z.names, nodes: slices.Clone(z.nodes), sets: z.sets,
		arenas: z.arenas, index: z.index, mask: z.mask, negSOA: z.negSOA, negSOASig: z.negSOASig,
		apexNode: z.apexNode, apexHash: z.apexHash}
	line, inPlace := z.claim()
	ok := false
	defer func() {
		line.mu.Lock()
		defer line.mu.Unlock()
		switch {
		case ok:
			line.tip = nz
			nz.upd.line = line
		case inPlace:
			line.tip = z
		}
	}()
	if !inPlace {
		nz.names, nz.sets = clip(nz.names), clip(nz.sets)
		nz.blocks, nz.wire, nz.patches, nz.trims = clip(nz.blocks), clip(nz.wire), clip(nz.patches), clip(nz.trims)
	}
	if z.kept != nil {
		nz.kept = &kept{arenas: arenas{wire: z.kept.wire}}
		if !inPlace {
			nz.kept.wire = clip(nz.kept.wire)
		}
	}
	if z.denial != nil {
		d := *z.denial
		if !inPlace {
			d.blocks, d.wire, d.patches, d.trims = clip(d.blocks), clip(d.wire), clip(d.patches), clip(d.trims)
		}
		nz.denial = &d
	}

	// The changed nodes, and the nodes whose NS, MX or SRV blocks hold the
	// addresses (and their signatures) of a changed node.
	p := newPartial(z, nz)
	rebuild := p.rebuild
	for _, c := range chg {
		p.addNode(c.node, c.recs)
		nz.records += len(c.recs) - c.oldN
		if c.changed[dns.TypeA] || c.changed[dns.TypeAAAA] {
			for _, d := range z.referrers(c.owner) {
				rebuild[d] = true
			}
		}
	}
	changed := map[uint32]*nodeChange{}
	for _, c := range chg {
		changed[c.node] = c
	}
	var deps []uint32
	for d := range rebuild {
		if changed[d] == nil {
			deps = append(deps, d)
			p.addNode(d, nil)
		}
	}
	slices.Sort(deps)
	// Every name a rebuilt block takes addresses from, or may look a
	// wildcard up for, must be known to the partial builder.
	for _, n := range p.glob {
		if c := changed[n]; c != nil || rebuild[n] {
			for _, r := range p.recsOfGlobal(n) {
				if t := targetOf(make([]byte, 256), r.Type, r.Data); t != nil {
					p.addTarget(t)
				}
			}
		}
	}
	p.finishNodes()
	// Room for what is about to be appended, so that the arenas grow by
	// a small step when they must, not by the quarter an append grows a
	// large slice by: that slack would stay allocated in every version.
	// The figures are what a delegation's change takes, about: an
	// update that takes more has the arena grown by append.
	k := len(p.glob)
	nz.sets = reserve(nz.sets, 3*k)
	nz.blocks, nz.wire = reserve(nz.blocks, 3*k), reserve(nz.wire, 256*k)
	nz.patches, nz.trims = reserve(nz.patches, 6*k), reserve(nz.trims, 4*k)
	if nz.kept != nil {
		nz.kept.wire = reserve(nz.kept.wire, 64*len(chg))
	}
	if d := nz.denial; d != nil {
		d.blocks, d.wire = reserve(d.blocks, len(chg)), reserve(d.wire, 256*len(chg))
		d.patches = reserve(d.patches, 2*len(chg))
	}

	var newRefs []uint64
	keptNodes := map[uint32][]keptSet{}
	for _, c := range chg {
		if err := p.rebuildNode(c, keptNodes); err != nil {
			return nil, "", err
		}
		for _, r := range c.recs {
			if t := targetOf(make([]byte, 256), r.Type, r.Data); t != nil && isSubdomain(t, z.apex) {
				newRefs = append(newRefs, uint64(hashName(t))<<32|uint64(c.node))
			}
		}
	}
	for _, d := range deps {
		if err := p.rebuildReferrals(d); err != nil {
			return nil, "", err
		}
	}
	p.resolveSigs()
	if err := p.updateDenial(chg); err != nil {
		if fb, isFB := err.(fallbackError); isFB {
			return nil, string(fb), nil
		}
		return nil, "", err
	}
	if z.kept != nil || len(keptNodes) > 0 {
		p.mergeKept(keptNodes)
	}
	slices.Sort(newRefs)
	nz.upd.refBase = z.upd.refBase
	nz.upd.refExtra = mergeSorted(z.upd.refExtra, newRefs)
	nz.upd.how = "incremental"
	ok = true
	return nz, "", nil
}

// mergeSorted merges two sorted slices into a new one.
func mergeSorted(a, b []uint64) []uint64 {
	out := make([]uint64, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if a[i] <= b[j] {
			out = append(out, a[i])
			i++
		} else {
			out = append(out, b[j])
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// buildRefs builds the reverse index of targets (see updState) from the
// zone's NS, MX and SRV RRsets, answered ones and kept ones alike. It runs
// once per lineage.
func (z *Zone) buildRefs() {
	var refs []uint64
	it := newWalkIter(z)
	var tgt [256]byte
	for n := range z.nodes {
		nd := &z.nodes[n]
		owner := z.names[nd.Name : nd.Name+uint32(nd.Len)]
		for i := nd.Set0; i < nd.Set0+uint32(nd.NSets); i++ {
			rs := &z.sets[i]
			if rs.Block == None || (rs.Type != dns.TypeNS && rs.Type != dns.TypeMX && rs.Type != dns.TypeSRV) {
				continue
			}
			it.data, it.ents = it.data[:0], it.ents[:0]
			if it.block(&z.arenas, rs.Block, owner) != nil {
				continue
			}
			for _, e := range it.ents {
				// A target outside the zone has no addresses here to
				// change.
				if t := targetOf(tgt[:], e.typ, it.data[e.off:e.end]); t != nil && isSubdomain(t, z.apex) {
					refs = append(refs, uint64(hashName(t))<<32|uint64(n))
				}
			}
		}
	}
	slices.Sort(refs)
	if len(refs) == 0 {
		refs = []uint64{}
	}
	z.upd.refBase = refs
}

// referrers returns the nodes that may hold an NS, MX or SRV record naming
// name.
func (z *Zone) referrers(name []byte) []uint32 {
	h := uint64(hashName(name)) << 32
	var out []uint32
	for _, refs := range [2][]uint64{z.upd.refBase, z.upd.refExtra} {
		i, _ := slices.BinarySearch(refs, h)
		for ; i < len(refs) && refs[i]&^0xFFFFFFFF == h; i++ {
			out = append(out, uint32(refs[i]))
		}
	}
	return out
}
