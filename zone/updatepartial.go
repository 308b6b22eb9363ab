package zone

import (
	"slices"
	"sync"

	"github.com/miekg/dns"
)

// partial is a builder over a few nodes of a new version: the ones
// prepared anew, the ones whose blocks are rebuilt because they hold a
// changed node's addresses, and those their blocks read (targets, the
// ancestors and wildcards a target may be synthesized from). The
// builder's own block writers run over it unchanged, with local node
// numbers; the blocks go to the new version's arenas. Global node numbers
// are the new version's.
type partial struct {
	z, nz   *Zone
	pl      *namePlan
	b       *builder
	scratch *Zone // b.z: the local nodes' flags, negative SOA and kept records
	glob    []uint32
	loc     map[uint32]int32
	recs    map[uint32][]Record
	it      *walkIter
	rebuild map[uint32]bool // nodes whose NS, MX and SRV blocks are rebuilt
	// What the denial update changed, for the chain's warning (see
	// updateWarnings): the NSEC3 hashes inserted, replaced and removed
	// and the nodes whose match was computed again; the nodes from
	// which nsecAt was set again.
	chainHashes [][]byte
	nsec3Nodes  []uint32
	nsecStarts  []uint32
	// early holds the late arrays made ahead (updateearly.go), nil for
	// a small zone.
	early *earlyArrays
	// inPlace is whether the version is made in place, appending to the
	// arenas of its lineage's tip (see Zone.claim).
	inPlace bool
}

func newPartial(z, nz *Zone, pl *namePlan) *partial {
	return &partial{z: z, nz: nz, pl: pl, loc: map[uint32]int32{}, recs: map[uint32][]Record{}, it: newWalkIter(z), rebuild: map[uint32]bool{}}
}

// addNode adds new node g with its records after the change.
func (p *partial) addNode(g uint32, recs []Record) {
	if _, ok := p.loc[g]; !ok {
		p.loc[g] = int32(len(p.glob))
		p.glob = append(p.glob, g)
	}
	p.recs[g] = recs
}

// addOld adds new node g, unless known already, with the records it held
// in the old version (none for a name added).
func (p *partial) addOld(g uint32) {
	if _, ok := p.loc[g]; ok {
		return
	}
	var recs []Record
	if o, ok := p.pl.oldOf(g); ok {
		recs = p.it.nodeRecords(int(o))
	}
	p.addNode(g, recs)
}

// addTarget adds what the builder looks up for target t: the node itself,
// or, when it does not exist, its closest existing ancestor and that
// ancestor's wildcard (see builder.wildcardFor).
func (p *partial) addTarget(t []byte) {
	nz := p.nz
	if !isSubdomain(t, nz.apex) {
		return
	}
	if n := nz.find(t, hashName(t)); n != None {
		p.addOld(n)
		return
	}
	for w := t; len(w) > len(nz.apex); {
		w = parentWire(w)
		if n := nz.find(w, hashName(w)); n != None {
			p.addOld(n)
			var buf [256]byte
			buf[0], buf[1] = 1, '*'
			s := append(buf[:2], w...)
			if m := nz.find(s, hashName(s)); m != None {
				p.addOld(m)
			}
			return
		}
	}
}

// finishNodes makes the builder over the local nodes.
func (p *partial) finishNodes() {
	z, nz := p.z, p.nz
	p.scratch = &Zone{origin: z.origin, apex: z.apex, apexLabels: z.apexLabels, nodes: make([]Node, len(p.glob)), kept: nz.kept}
	b := &builder{origin: z.origin, apex: z.apex, data: []byte{}, z: p.scratch, out: &nz.arenas}
	b.initIndex(len(p.glob))
	for l, g := range p.glob {
		nd := nz.nodes[g]
		p.scratch.nodes[l] = nd
		b.addName(nz.names[nd.Name : nd.Name+uint32(nd.Len)])
	}
	b.first = make([]int32, len(p.glob))
	b.count = make([]int32, len(p.glob))
	for l, g := range p.glob {
		rs := p.recs[g]
		b.first[l] = -1
		if len(rs) > 0 {
			b.first[l] = int32(len(b.recs))
			b.count[l] = int32(len(rs))
		}
		for i := range rs {
			r := &rs[i]
			var covered uint16
			if r.Type == dns.TypeRRSIG && len(r.Data) >= 2 {
				covered = uint16(r.Data[0])<<8 | uint16(r.Data[1])
			}
			if r.Type == dns.TypeSOA && len(r.Data) >= 4 {
				b.soaMinimum = be32(r.Data[len(r.Data)-4:])
			}
			b.recs = append(b.recs, rec{node: int32(l), typ: r.Type, covered: covered, ttl: r.TTL, rd: uint32(len(b.rdata)), rdl: uint16(len(r.Data))})
			b.rdata = append(b.rdata, r.Data...)
		}
	}
	p.b = b
}

// rebuildNode gives changed node c its new RRsets: those of the types that
// changed are prepared anew (as buildSets does), the others kept as they
// are, blocks and all. Its kept records are prepared anew and recorded in
// keptNodes.
func (p *partial) rebuildNode(c *nodeChange, keptNodes map[uint32][]keptSet) error {
	z, nz, b := p.z, p.nz, p.b
	g := c.node
	l := p.loc[g]
	var old *Node
	if c.old != None && !c.reflag {
		old = &z.nodes[c.old]
	}
	nd := &nz.nodes[g]
	lnd := &p.scratch.nodes[l]
	recs := b.recsOf(l)
	var sigs []rec
	for i := range recs {
		if recs[i].typ == dns.TypeRRSIG {
			j := i
			for j < len(recs) && recs[j].typ == dns.TypeRRSIG {
				j++
			}
			sigs = recs[i:j]
			break
		}
	}
	var sets []RRset
	var keptRecs []rec
	for i := 0; i < len(recs); {
		j := i
		for j < len(recs) && recs[j].typ == recs[i].typ {
			j++
		}
		t := recs[i].typ
		if t == dns.TypeRRSIG {
			i = j
			continue
		}
		set := recs[i:j]
		i = j
		if t == dns.TypeNSEC3 && lnd.Flags&FlagNSEC3Owner != 0 {
			// An NSEC3 owner's records are in its proof block alone
			// (see markNSEC3Owners), which updateNSEC3 prepares.
			continue
		}
		reuse := old != nil && !c.changed[t] && !(p.rebuild[g] && targetOf(b.tgt[:], t, b.rdataOf(&set[0])) != nil)
		oi := None
		if reuse {
			oi = z.SetOf(old, t)
		}
		if oi != None {
			sets = append(sets, z.sets[oi])
			if !hasBlock(lnd, t) {
				keptRecs = append(keptRecs, set...)
				keptRecs = append(keptRecs, coveringRun(sigs, t)...)
			}
			continue
		}
		if len(set) > 65535 {
			return p.z.changeError("RRset %s %s too large", wireString(c.owner), typeName(t))
		}
		rs := RRset{Type: t, Count: uint16(len(set)), TTL: set[0].ttl, Block: None, Sig: None, Target: None}
		if t == dns.TypeCNAME || t == dns.TypeDNAME {
			rs.Target = uint32(len(nz.names))
			nz.names = append(nz.names, b.rdataOf(&set[0])...)
			tn := nz.names[rs.Target:]
			lowerInto(tn, tn)
		}
		if hasBlock(lnd, t) {
			var err error
			if lnd.Flags&FlagDelegation != 0 && t == dns.TypeNS {
				rs.Block, err = b.referralBlock(l, set)
			} else {
				rs.Block, err = b.rrsetBlock(l, set)
			}
			if err != nil {
				return p.changeErr(err)
			}
			if s := coveringRun(sigs, t); len(s) > 0 {
				if rs.Sig, err = b.plainBlock(b.names[l], s, 0); err != nil {
					return p.changeErr(err)
				}
			}
		} else {
			keptRecs = append(keptRecs, set...)
			keptRecs = append(keptRecs, coveringRun(sigs, t)...)
		}
		sets = append(sets, rs)
	}
	for i := 0; i < len(sigs); {
		t := sigs[i].covered
		run := coveringRun(sigs[i:], t)
		if t == dns.TypeRRSIG || !slices.ContainsFunc(recs, func(r rec) bool { return r.typ == t }) {
			keptRecs = append(keptRecs, run...)
		}
		i += len(run)
	}
	nd.Set0 = uint32(len(nz.sets))
	nz.sets = append(nz.sets, sets...)
	nd.NSets = uint16(len(sets))
	keptNodes[g] = []keptSet{}
	if len(keptRecs) > 0 {
		sk := p.scratch.kept
		if sk != nil {
			sk.sets = sk.sets[:0]
		}
		if err := b.keep(l, keptRecs); err != nil {
			return p.changeErr(err)
		}
		b.out = &nz.arenas
		for _, k := range p.scratch.kept.sets {
			k.node = g
			keptNodes[g] = append(keptNodes[g], k)
		}
		p.scratch.kept.sets = p.scratch.kept.sets[:0]
	}
	if lnd.Flags&FlagApex != 0 && (c.changed[dns.TypeSOA]) {
		if err := b.negSOABlocks(recs); err != nil {
			return p.changeErr(err)
		}
		nz.negSOA, nz.negSOASig = p.scratch.negSOA, p.scratch.negSOASig
		soa, _ := ofType(recs, dns.TypeSOA)
		rd := b.rdataOf(&soa[0])
		m := nameLen(rd)
		m += nameLen(rd[m:])
		nz.serial = be32(rd[m:])
	}
	return nil
}

// changeErr turns a block writer's error into a change set's.
func (p *partial) changeErr(err error) error {
	if le, ok := err.(*LoadError); ok && le.Origin == "" {
		return p.z.changeError("%s", le.Msg)
	}
	return err
}

// rebuildReferrals prepares anew the NS, MX and SRV blocks of node g, whose
// records did not change but whose targets' addresses did.
func (p *partial) rebuildReferrals(g uint32) error {
	nz, b := p.nz, p.b
	l := p.loc[g]
	cur := nz.nodes[g]
	lnd := &p.scratch.nodes[l]
	recs := b.recsOf(l)
	nd := &nz.nodes[g]
	start := uint32(len(nz.sets))
	for i := cur.Set0; i < cur.Set0+uint32(cur.NSets); i++ {
		rs := nz.sets[i]
		if rs.Block != None && (rs.Type == dns.TypeNS || rs.Type == dns.TypeMX || rs.Type == dns.TypeSRV) {
			set, _ := ofType(recs, rs.Type)
			var err error
			if lnd.Flags&FlagDelegation != 0 && rs.Type == dns.TypeNS {
				rs.Block, err = b.referralBlock(l, set)
			} else {
				rs.Block, err = b.rrsetBlock(l, set)
			}
			if err != nil {
				return p.changeErr(err)
			}
		}
		nz.sets = append(nz.sets, rs)
	}
	nd.Set0 = start
	return nil
}

// hasReferrals reports whether node n holds an NS, MX or SRV block.
func (z *Zone) hasReferrals(n uint32) bool {
	nd := &z.nodes[n]
	for i := nd.Set0; i < nd.Set0+uint32(nd.NSets); i++ {
		if rs := &z.sets[i]; rs.Block != None && (rs.Type == dns.TypeNS || rs.Type == dns.TypeMX || rs.Type == dns.TypeSRV) {
			return true
		}
	}
	return false
}

// resolveSigs fills the additional-signature slots of the blocks prepared
// (see builder.resolveAddSigs) from the new version's RRsets.
func (p *partial) resolveSigs() {
	nz := p.nz
	for _, f := range p.b.sigFix {
		nd := &nz.nodes[p.glob[f.node]]
		for k, t := range [2]uint16{dns.TypeA, dns.TypeAAAA} {
			if si := nz.SetOf(nd, t); si != None {
				nz.trims[f.at+uint32(k)] = sigTrim(nz.sets[si].Sig)
			}
		}
	}
	p.b.sigFix = nil
}

// fallbackError makes Apply rebuild instead.
type fallbackError string

func (e fallbackError) Error() string { return string(e) }

// updateDenial brings the denial indexes to the new version: the proof
// blocks of the changed NSEC and NSEC3 RRsets (or of their signatures)
// prepared anew, the entries of removed names taken out and those of added
// names put in.
func (p *partial) updateDenial(chg []*nodeChange, touched []uint32) error {
	d := p.nz.denial
	if d == nil {
		return nil
	}
	if d.mode == DenialNSEC3 {
		return p.updateNSEC3(chg, touched)
	}
	return p.updateNSEC(chg)
}

// proof prepares the proof block of node g's RRset of type t (NSEC or
// NSEC3) with its signatures; ok is false when the node has none.
func (p *partial) proof(g uint32, t uint16) (uint32, bool, error) {
	b := p.b
	l := p.loc[g]
	set, sigs := ofType(b.recsOf(l), t)
	if len(set) == 0 {
		return None, false, nil
	}
	b.out = &p.nz.denial.arenas
	blk, err := b.proofBlock(b.names[l], set, sigs)
	b.out = &p.nz.arenas
	if err != nil {
		return None, false, p.changeErr(err)
	}
	return blk, true, nil
}

// updateNSEC updates an NSEC zone's index: nsecAt, renumbered, is set
// again from each node prepared anew, added or removed up to the next node
// with an NSEC of its own; the children index is brought to the new
// node numbers.
func (p *partial) updateNSEC(chg []*nodeChange) error {
	z, nz, pl := p.z, p.nz, p.pl
	d := nz.denial
	at := z.denial.nsecAt
	if pl.same() {
		at = slices.Clone(at)
	} else {
		at = renumber(pl, at, None)
	}
	// own holds the new proof blocks, and None for the nodes prepared
	// anew that have no NSEC now.
	own := map[uint32]uint32{}
	var starts []uint32
	for _, c := range chg {
		if c.node == None || !c.changed[dns.TypeNSEC] && !c.reflag && c.old != None {
			continue
		}
		blk, _, err := p.proof(c.node, dns.TypeNSEC)
		if err != nil {
			return err
		}
		own[c.node] = blk
		starts = append(starts, c.node)
	}
	starts = append(starts, pl.addNew...)
	for _, o := range pl.del {
		if q := pl.newOfSlow(o); int(q) < pl.n2 {
			starts = append(starts, q)
		}
	}
	slices.Sort(starts)
	p.nsecStarts = starts
	hasNSEC := func(q uint32) (uint32, bool) {
		if blk, ok := own[q]; ok {
			return blk, blk != None
		}
		if nz.SetOf(&nz.nodes[q], dns.TypeNSEC) != None {
			return at[q], true
		}
		return None, false
	}
	done := uint32(0)
	for _, s := range starts {
		if s < done {
			continue
		}
		for q := s; int(q) < len(at); q++ {
			v, has := hasNSEC(q)
			if has && q != s {
				done = q
				break
			}
			if !has {
				v = None
				if q > 0 {
					v = at[q-1]
				}
			}
			at[q] = v
			done = q + 1
		}
	}
	d.nsecAt = at
	if !pl.same() {
		p.updateChildren()
	}
	return nil
}

// updateChildren brings the NSEC children index (see denial.kids) to the
// new version: the entries of nodes with no name added or removed below
// them are copied with their nodes renumbered; those of the others, the
// ancestors of the names added and removed, are made again from their
// old entries or, for a node that had none, from the nodes below it.
func (p *partial) updateChildren() {
	z, nz, pl := p.z, p.nz, p.pl
	od, d := z.denial, nz.denial
	affected := map[uint32]bool{}
	mark := func(name []byte) {
		for w := name; len(w) > len(nz.apex); {
			w = parentWire(w)
			if n := nz.find(w, hashName(w)); n != None {
				affected[n] = true
			}
		}
	}
	for _, a := range pl.adds {
		mark(a)
	}
	for _, o := range pl.del {
		mark(z.NodeName(&z.nodes[o]))
	}
	kids := make([]uint32, pl.n2)
	for i := range kids {
		kids[i] = None
	}
	var kn []uint32
	var kk []uint64
	entry := func(q uint32, children []uint32, keys []uint64, end uint32) {
		kids[q] = uint32(len(kn))
		kn = append(kn, uint32(len(children)))
		kk = append(kk, 0)
		kn = append(kn, children...)
		kk = append(kk, keys...)
		kn = append(kn, end)
		kk = append(kk, 0)
	}
	if od.kids != nil {
		for o, e := range od.kids {
			if e == None || pl.deleted(uint32(o)) {
				continue
			}
			q := pl.newOf(uint32(o))
			if affected[q] {
				continue
			}
			c := od.kidNodes[e]
			ch := make([]uint32, c)
			for i, k := range od.kidNodes[e+1 : e+1+c] {
				ch[i] = pl.newOf(k)
			}
			entry(q, ch, od.kidKeys[e+1:e+1+c], q+(od.kidNodes[e+1+c]-uint32(o)))
		}
	}
	aff := make([]uint32, 0, len(affected))
	for q := range affected {
		aff = append(aff, q)
	}
	slices.Sort(aff)
	for _, q := range aff {
		pn := nz.NodeName(&nz.nodes[q])
		var ch []uint32
		var keys []uint64
		if o, ok := pl.oldOf(q); ok && od.kids != nil && od.kids[o] != None {
			// The old children, renumbered, merged with the added ones.
			e := od.kids[o]
			c := od.kidNodes[e]
			var added []uint32
			for k, a := range pl.adds {
				if bytesEqual(parentWire(a), pn) {
					added = append(added, pl.addNew[k])
				}
			}
			j := 0
			for i, k := range od.kidNodes[e+1 : e+1+c] {
				if pl.deleted(k) {
					continue
				}
				nk := pl.newOf(k)
				for j < len(added) && added[j] < nk {
					ch = append(ch, added[j])
					keys = append(keys, labelKeyOf(nz, added[j]))
					j++
				}
				ch = append(ch, nk)
				keys = append(keys, od.kidKeys[e+1+uint32(i)])
			}
			for ; j < len(added); j++ {
				ch = append(ch, added[j])
				keys = append(keys, labelKeyOf(nz, added[j]))
			}
		} else {
			labels := nz.nodes[q].Labels + 1
			for i := q + 1; int(i) < len(nz.nodes); i++ {
				nd := &nz.nodes[i]
				if nd.Labels <= nz.nodes[q].Labels || !isSubdomain(nz.NodeName(nd), pn) {
					break
				}
				if nd.Labels == labels {
					ch = append(ch, i)
					keys = append(keys, labelKeyOf(nz, i))
				}
			}
		}
		if len(ch) >= wideChildren {
			entry(q, ch, keys, nz.subtreeEnd(q))
		}
	}
	if len(kn) == 0 {
		d.kids, d.kidNodes, d.kidKeys = nil, nil, nil
		return
	}
	d.kids, d.kidNodes, d.kidKeys = kids, kn, kk
}

// labelKeyOf is the LabelKey of node n's first label.
func labelKeyOf(z *Zone, n uint32) uint64 {
	w := z.NodeName(&z.nodes[n])
	return LabelKey(w[1 : 1+int(w[0])])
}

// subtreeEnd returns the node after the last descendant of node q.
func (z *Zone) subtreeEnd(q uint32) uint32 {
	if q == z.apexNode {
		return uint32(len(z.nodes))
	}
	w := z.NodeName(&z.nodes[q])
	lo, hi := int(q)+1, len(z.nodes)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if isSubdomain(z.NodeName(&z.nodes[m]), w) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return uint32(lo)
}

// updateNSEC3 updates an NSEC3 zone's index: the chain's hashes and proof
// blocks (NSEC3 owners added, removed and changed), and the per-node
// match and wild entries, renumbered. An entry that pointed at a proof
// block replaced in place points at the new one; one that pointed at a
// block removed, or at the block before an inserted hash (whose range the
// insertion splits), is computed again from the node's hash, as are the
// entries of the nodes touched.
func (p *partial) updateNSEC3(chg []*nodeChange, touched []uint32) error {
	z, nz, pl := p.z, p.nz, p.pl
	od, d := z.denial, nz.denial
	var inserted []chainInsert
	replaced := map[int]uint32{}
	removed := map[int]bool{}
	// entry is the entry of each rank replaced or removed, as coverEntry
	// found it (a chain in pages has no entry at a rank's place).
	entry := map[int]int{}
	hashOf := func(e int) []byte { return od.hashes[e*nsec3HashLen : (e+1)*nsec3HashLen] }
	for _, c := range chg {
		if c.node == None {
			continue
		}
		if !c.changed[dns.TypeNSEC3] && !c.reflag && c.old != None {
			continue
		}
		l := p.loc[c.node]
		set, _ := ofType(p.b.recsOf(l), dns.TypeNSEC3)
		if len(set) == 0 {
			continue
		}
		h, ok := nsec3OwnerHash(p.b.names[l], nz.apex)
		if !ok {
			return fallbackError("an NSEC3 owner that is not a hash changes")
		}
		rd := p.b.rdataOf(&set[0])
		if len(rd) < 6 || 6+int(rd[4]) > len(rd) || 6+int(rd[4])+int(rd[5+int(rd[4])]) > len(rd) ||
			!bytesEqual(rd[5:5+int(rd[4])], d.salt) || uint16(rd[2])<<8|uint16(rd[3]) != d.iterations {
			return fallbackError("an NSEC3 record changes its parameters")
		}
		blk, _, err := p.proof(c.node, dns.TypeNSEC3)
		if err != nil {
			return err
		}
		at, e := od.coverEntry(h)
		if bytesEqual(hashOf(e), h) {
			if c.old == None {
				return fallbackError("an NSEC3 record the chain held is added")
			}
			replaced[at], entry[at] = blk, e
		} else {
			if c.old != None && c.hadNSEC3 {
				return fallbackError("an NSEC3 record the chain did not hold changes")
			}
			inserted = append(inserted, chainInsert{h, blk, od.hashBlocks[e]})
		}
	}
	for _, o := range pl.del {
		if h, ok := nsec3OwnerHash(z.NodeName(&z.nodes[o]), z.apex); ok {
			at, e := od.coverEntry(h)
			if bytesEqual(hashOf(e), h) {
				removed[at], entry[at] = true, e
			}
		}
	}
	if len(inserted) == 0 && len(removed) == 0 && len(replaced) == 0 && pl.same() && len(touched) == 0 {
		return nil
	}
	for _, e := range inserted {
		p.chainHashes = append(p.chainHashes, e.h)
	}
	for at := range replaced {
		p.chainHashes = append(p.chainHashes, hashOf(entry[at]))
	}
	for at := range removed {
		p.chainHashes = append(p.chainHashes, hashOf(entry[at]))
	}
	slices.SortFunc(inserted, func(a, b chainInsert) int { return bytesCompare(a.h, b.h) })
	// The blocks whose entries must be computed again, and those
	// replaced in place.
	rehash := make([]uint64, (len(od.blocks)+64)/64)
	repl := map[uint32]uint32{}
	for at := range removed {
		b := od.hashBlocks[entry[at]]
		rehash[b/64] |= 1 << (b % 64)
	}
	for _, e := range inserted {
		rehash[e.cover/64] |= 1 << (e.cover % 64)
	}
	bits := slices.Clone(rehash)
	for at, blk := range replaced {
		b := od.hashBlocks[entry[at]]
		repl[b] = blk
		bits[b/64] |= 1 << (b % 64)
	}
	if len(inserted) > 0 || len(removed) > 0 || len(replaced) > 0 {
		if err := p.mergeChain(od, d, inserted, removed, replaced); err != nil {
			return err
		}
	}
	// match and wild renumbered, and scanned as they are copied, a
	// block of entries at a time while it is in the cache: entries
	// pointing at a replaced block point at the new one; those pointing
	// at a block removed or split are computed again.
	early := p.early.wait()
	match, wild := take(&early.match, pl.n2), take(&early.wild, pl.n2)
	for _, q := range pl.addNew {
		match[q], wild[q] = None, None
	}
	runs := pl.runs()
	var mu sync.Mutex
	var again []uint32
	parallel(pl.n2, func(lo, hi int) {
		var mine []uint32
		// One array at a time, in a loop of its own: a signed TLD's
		// match and wild hold about 2.5 million entries each, nearly
		// none of them flagged, and a loop over both arrays per node
		// took 13 ms of CPU an update.
		scan := func(s []uint32, b, e int) {
			for i, v := range s[b:e] {
				if v == None || bits[v/64]&(1<<(v%64)) == 0 {
					continue
				}
				if rehash[v/64]&(1<<(v%64)) != 0 {
					mine = append(mine, uint32(b+i))
				} else {
					s[b+i] = repl[v]
				}
			}
		}
		const block = 1 << 14
		for b := lo; b < hi; b += block {
			e := min(b+block, hi)
			copyRuns(match, od.match, runs, b, e)
			copyRuns(wild, od.wild, runs, b, e)
			scan(match, b, e)
			scan(wild, b, e)
		}
		mu.Lock()
		again = append(again, mine...)
		mu.Unlock()
	})
	matched := 0
	var h [nsec3HashLen]byte
	var star [256]byte
	star[0], star[1] = 1, '*'
	for _, list := range [2][]uint32{touched, again} {
		for _, q := range list {
			match[q], wild[q] = None, None
			nd := &nz.nodes[q]
			if nd.Flags&(FlagOccluded|FlagNSEC3Owner) != 0 {
				continue
			}
			w := nz.NodeName(nd)
			nsec3Hash(&h, w, d.salt, int(d.iterations))
			_, c := d.coverEntry(h[:])
			if !bytesEqual(d.hashes[c*nsec3HashLen:(c+1)*nsec3HashLen], h[:]) {
				continue
			}
			match[q] = d.hashBlocks[c]
			if _, found := slices.BinarySearchFunc(inserted, h[:], func(e chainInsert, t []byte) int { return bytesCompare(e.h, t) }); found {
				matched++
			}
			if len(w)+2 <= 255 && nd.Flags&FlagWildcard == 0 {
				copy(star[2:], w)
				nsec3Hash(&h, star[:2+len(w)], d.salt, int(d.iterations))
				_, c = d.coverEntry(h[:])
				wild[q] = d.hashBlocks[c]
			}
		}
	}
	p.nsec3Nodes = append(slices.Clone(touched), again...)
	slices.Sort(p.nsec3Nodes)
	if matched < len(inserted) {
		// A hash inserted for a name the change set did not touch (a
		// name that had none): which node it matches is not known here.
		return fallbackError("an NSEC3 record is added for a name the change set does not add or change")
	}
	d.match, d.wild = match, wild
	return nil
}

// chainInsert is a hash an update inserts into the NSEC3 chain, with its
// proof block and the old chain's block that covered it (whose range the
// insertion splits).
type chainInsert struct {
	h     []byte
	blk   uint32
	cover uint32
}

// mergeChain makes d's chain from od's, with the hashes inserted (in
// order), the ranks removed and the ranks whose proof blocks are
// replaced. A chain with starts keeps its starts' bits: only the pages
// with a change are written again, appended past the entries, and the
// others keep theirs (see denial.offs). The chain is written whole,
// compact and in rank order, when it has no starts or its length calls
// for other bits, when the version is not made in place (its arrays
// would be copied anyway), and when the pages the updates wrote again
// would pass n/chainSlack or the arrays' room: so a lineage's chain
// holds at most that much it no longer reads, and its arrays never grow
// by copying.
func (p *partial) mergeChain(od, d *denial, inserted []chainInsert, removed map[int]bool, replaced map[int]uint32) error {
	const hl = nsec3HashLen
	n0 := od.chainLen()
	n := n0 + len(inserted) - len(removed)
	if n == 0 {
		return fallbackError("the NSEC3 chain loses all its records")
	}
	if od.starts == nil {
		c := chainRoom(n)
		d.hashes, d.hashBlocks = mergeRun(make([]byte, 0, c*hl), make([]uint32, 0, c), od, 0, n0, 0, inserted, removed, replaced)
		d.starts, d.startBits = hashStarts(d.hashes)
		if chainMerged != nil {
			chainMerged("whole")
		}
		return nil
	}
	// The pages changed (those of the hashes inserted, removed and
	// replaced, p.chainHashes), in order, and the entries they take once
	// written again.
	ob := od.startBits
	var vs []int
	for _, h := range p.chainHashes {
		vs = append(vs, startOf(h, ob))
	}
	slices.Sort(vs)
	vs = slices.Compact(vs)
	extra := len(inserted)
	for _, v := range vs {
		extra += int(od.starts[v+1] - od.starts[v])
	}
	d.pageExtra = extra
	entries := len(od.hashBlocks) + extra
	whole := startBits(n) != ob || !p.inPlace || od.pagesFull(entries, n)
	how := "pages"
	hashes, blocks, offs := d.hashes, d.hashBlocks, od.offs
	if whole {
		how = "whole"
		if od.offs != nil {
			how = "whole from pages"
		}
		c := chainRoom(n)
		var ahead bool
		hashes, blocks, ahead = p.chainArrays(n, c)
		offs = nil
		if ahead {
			how += ", into arrays made ahead"
		}
	} else {
		// The tip's arrays, appended to in place: the room is there
		// (above), and older versions read only the entries below
		// their lengths.
		if offs == nil {
			offs = od.starts[:len(od.starts)-1]
		}
		offs = slices.Clone(offs)
	}
	// Page by page: a changed page merged (appended past the entries
	// unless whole), an unchanged one copied when whole and otherwise
	// left where it is; each value's start moved by what the changed
	// pages before it gained or lost.
	starts := make([]uint32, len(od.starts))
	i, k, moved := 0, 0, 0
	for v := range len(od.starts) - 1 {
		first, end := int(od.starts[v]), int(od.starts[v+1])
		e0 := od.pageEntry(v)
		starts[v] = uint32(first + moved)
		at := len(blocks)
		switch {
		case i < len(vs) && vs[i] == v:
			i++
			k0 := k
			for k < len(inserted) && startOf(inserted[k].h, ob) == v {
				k++
			}
			hashes, blocks = mergeRun(hashes, blocks, od, first, end, e0, inserted[k0:k], removed, replaced)
			moved += len(blocks) - at - (end - first)
		case whole:
			hashes = append(hashes, od.hashes[e0*hl:(e0+end-first)*hl]...)
			blocks = append(blocks, od.hashBlocks[e0:e0+end-first]...)
			continue
		default:
			continue
		}
		if !whole {
			offs[v] = uint32(at)
		}
	}
	starts[len(starts)-1] = uint32(n)
	d.hashes, d.hashBlocks, d.offs, d.starts = hashes, blocks, offs, starts
	if startBits(n) != ob {
		d.starts, d.startBits = hashStarts(hashes)
	}
	if chainMerged != nil {
		chainMerged(how)
	}
	return nil
}

// chainArrays returns the arrays, empty with room for c entries, that a
// chain merged whole writes its n entries to: those made ahead for the
// update (chainAhead) when they have the room, reported by ahead, and
// otherwise new ones, their n entries' pages mapped (written).
func (p *partial) chainArrays(n, c int) (hashes []byte, blocks []uint32, ahead bool) {
	const hl = nsec3HashLen
	if p.early != nil && p.early.chain >= c {
		// Waited for only when they are being made.
		e := p.early.wait()
		h, b := e.hashes, e.hashBlocks
		e.hashes, e.hashBlocks = nil, nil
		if cap(h) >= c*hl && cap(b) >= c {
			return h[:0], b[:0], true
		}
	}
	return written[byte](n*hl, c*hl)[:0], written[uint32](n, c)[:0], false
}

// mergeRun appends to hs and bs od's entries of ranks first to end, which
// lie from entry e0 on, with ins (the hashes inserted among them, in
// order) merged in, the ranks removed left out and the ranks replaced
// given their new proof blocks.
func mergeRun(hs []byte, bs []uint32, od *denial, first, end, e0 int, ins []chainInsert, removed map[int]bool, replaced map[int]uint32) ([]byte, []uint32) {
	const hl = nsec3HashLen
	k := 0
	for r := first; r < end; r++ {
		e := e0 + r - first
		h := od.hashes[e*hl : (e+1)*hl]
		for ; k < len(ins) && bytesCompare(ins[k].h, h) < 0; k++ {
			hs, bs = append(hs, ins[k].h...), append(bs, ins[k].blk)
		}
		if removed[r] {
			continue
		}
		blk, ok := replaced[r]
		if !ok {
			blk = od.hashBlocks[e]
		}
		hs, bs = append(hs, h...), append(bs, blk)
	}
	for ; k < len(ins); k++ {
		hs, bs = append(hs, ins[k].h...), append(bs, ins[k].blk)
	}
	return hs, bs
}

func bytesCompare(a, b []byte) int {
	switch {
	case string(a) < string(b):
		return -1
	case string(a) > string(b):
		return 1
	}
	return 0
}

// mergeKept makes the new version's list of kept runs: the old list,
// renumbered and without the runs of removed nodes, with the runs of the
// nodes in keptNodes replaced by theirs, in node order.
func (p *partial) mergeKept(keptNodes map[uint32][]keptSet) {
	nz, pl := p.nz, p.pl
	k := p.scratch.kept
	if k == nil {
		k = &kept{}
	}
	var old []keptSet
	if p.z.kept != nil {
		old = p.z.kept.sets
	}
	nodes := make([]uint32, 0, len(keptNodes))
	for g := range keptNodes {
		nodes = append(nodes, g)
	}
	slices.Sort(nodes)
	out := take(&p.early.wait().kept, len(old)+len(nodes))[:0]
	same := pl.same()
	i, di := 0, 0
	// next returns the old run i renumbered, skipping removed nodes (the
	// runs and the removed nodes are both in node order).
	next := func() (keptSet, bool) {
		for i < len(old) {
			ks := old[i]
			if same {
				return ks, true
			}
			for di < len(pl.del) && pl.del[di] < ks.node {
				di++
			}
			if di < len(pl.del) && pl.del[di] == ks.node {
				i++
				continue
			}
			ks.node = pl.newOf(ks.node)
			return ks, true
		}
		return keptSet{}, false
	}
	for _, g := range nodes {
		for {
			ks, ok := next()
			if !ok || ks.node > g {
				break
			}
			if ks.node < g {
				out = append(out, ks)
			}
			i++
		}
		out = append(out, keptNodes[g]...)
	}
	for {
		ks, ok := next()
		if !ok {
			break
		}
		out = append(out, ks)
		i++
	}
	nz.kept = &kept{arenas: arenas{wire: k.wire}, sets: out}
	if len(out) == 0 && len(k.wire) == 0 {
		nz.kept = nil
	}
}
