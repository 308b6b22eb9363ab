package zone

import (
	"bytes"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// partial is a builder over a few nodes of a zone: the changed ones, the
// ones whose blocks are rebuilt because they hold a changed node's
// addresses, and those their blocks read (targets, the ancestors and
// wildcards a target may be synthesized from). The builder's own block
// writers run over it unchanged, with local node numbers; the blocks go
// to the new version's arenas.
type partial struct {
	z, nz   *Zone
	b       *builder
	scratch *Zone // b.z: the local nodes' flags, negative SOA and kept records
	glob    []uint32
	loc     map[uint32]int32
	recs    map[uint32][]Record
	it      *walkIter
	rebuild map[uint32]bool // nodes whose NS, MX and SRV blocks are rebuilt
}

func newPartial(z, nz *Zone) *partial {
	return &partial{z: z, nz: nz, loc: map[uint32]int32{}, recs: map[uint32][]Record{}, it: newWalkIter(z), rebuild: map[uint32]bool{}}
}

// addNode adds global node g with its records (read from the old zone
// when recs is nil).
func (p *partial) addNode(g uint32, recs []Record) {
	if _, ok := p.loc[g]; ok {
		if recs != nil {
			p.recs[g] = recs
		}
		return
	}
	if recs == nil {
		recs = p.it.nodeRecords(int(g))
	}
	p.loc[g] = int32(len(p.glob))
	p.glob = append(p.glob, g)
	p.recs[g] = recs
}

func (p *partial) recsOfGlobal(g uint32) []Record { return p.recs[g] }

// addTarget adds what the builder looks up for target t: the node itself,
// or, when it does not exist, its closest existing ancestor and that
// ancestor's wildcard (see builder.wildcardFor).
func (p *partial) addTarget(t []byte) {
	z := p.z
	if !isSubdomain(t, z.apex) {
		return
	}
	if n := z.find(t, hashName(t)); n != None {
		p.addNode(n, nil)
		return
	}
	for w := t; len(w) > len(z.apex); {
		w = parentWire(w)
		if n := z.find(w, hashName(w)); n != None {
			p.addNode(n, nil)
			var buf [256]byte
			buf[0], buf[1] = 1, '*'
			s := append(buf[:2], w...)
			if m := z.find(s, hashName(s)); m != None {
				p.addNode(m, nil)
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
		nd := z.nodes[g]
		p.scratch.nodes[l] = nd
		b.addName(z.names[nd.Name : nd.Name+uint32(nd.Len)])
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
	old := &z.nodes[g]
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
		reuse := !c.changed[t] && !(p.rebuild[g] && targetOf(b.tgt[:], t, b.rdataOf(&set[0])) != nil)
		if oi := z.SetOf(old, t); reuse && oi != None {
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
	z, nz, b := p.z, p.nz, p.b
	l := p.loc[g]
	old := &z.nodes[g]
	lnd := &p.scratch.nodes[l]
	recs := b.recsOf(l)
	nd := &nz.nodes[g]
	start := uint32(len(nz.sets))
	for i := old.Set0; i < old.Set0+uint32(old.NSets); i++ {
		rs := z.sets[i]
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

// updateDenial prepares anew the proof blocks of the changed NSEC and
// NSEC3 RRsets (or of their signatures), and points the denial indexes
// from the old blocks to the new ones. The chain's names do not change
// (sameShape), so neither does its order nor which block covers which
// name.
func (p *partial) updateDenial(chg []*nodeChange) error {
	nz, z, b := p.nz, p.z, p.b
	d := nz.denial
	if d == nil {
		return nil
	}
	t := dns.TypeNSEC
	if d.mode == DenialNSEC3 {
		t = dns.TypeNSEC3
	}
	repl := map[uint32]uint32{}
	var hashBlocks []uint32
	for _, c := range chg {
		if !c.changed[t] {
			continue
		}
		g := c.node
		l := p.loc[g]
		set, sigs := ofType(b.recsOf(l), t)
		if len(set) == 0 {
			continue
		}
		var oldBlk uint32
		var at int
		switch t {
		case dns.TypeNSEC:
			oldBlk = z.denial.nsecAt[g]
		case dns.TypeNSEC3:
			w := b.names[l]
			h, err := nsec3Base32.DecodeString(strings.ToUpper(string(w[1 : 1+int(w[0])])))
			if err != nil || len(h) != nsec3HashLen || !bytes.Equal(parentWire(w), z.apex) {
				return fallbackError("an NSEC3 owner that is not a hash changes")
			}
			rd := b.rdataOf(&set[0])
			if len(rd) < 6 || 6+int(rd[4]) > len(rd) || 6+int(rd[4])+int(rd[5+int(rd[4])]) > len(rd) ||
				!bytes.Equal(rd[5:5+int(rd[4])], d.salt) || uint16(rd[2])<<8|uint16(rd[3]) != d.iterations {
				return fallbackError("an NSEC3 record changes its parameters")
			}
			at = d.cover(h)
			if !bytes.Equal(d.hashes[at*nsec3HashLen:(at+1)*nsec3HashLen], h) {
				return fallbackError("an NSEC3 record the chain did not hold changes")
			}
			oldBlk = z.denial.hashBlocks[at]
		}
		b.out = &d.arenas
		blk, err := b.proofBlock(b.names[l], set, sigs)
		b.out = &nz.arenas
		if err != nil {
			return p.changeErr(err)
		}
		repl[oldBlk] = blk
		if t == dns.TypeNSEC3 {
			if hashBlocks == nil {
				hashBlocks = slices.Clone(d.hashBlocks)
			}
			hashBlocks[at] = blk
		}
	}
	if len(repl) == 0 {
		return nil
	}
	// A bitmap of the old blocks spares the map lookup for the millions
	// of entries that keep theirs.
	old := make([]uint64, (len(z.denial.blocks)+64)/64)
	for o := range repl {
		old[o/64] |= 1 << (o % 64)
	}
	swap := func(s []uint32) []uint32 {
		s = slices.Clone(s)
		for i, v := range s {
			if v != None && old[v/64]&(1<<(v%64)) != 0 {
				s[i] = repl[v]
			}
		}
		return s
	}
	switch t {
	case dns.TypeNSEC:
		d.nsecAt = swap(d.nsecAt)
	case dns.TypeNSEC3:
		d.hashBlocks = hashBlocks
		d.match = swap(d.match)
		d.wild = swap(d.wild)
	}
	return nil
}

// mergeKept makes the new version's list of kept runs: the old list with
// the runs of the nodes in keptNodes replaced by theirs, in node order.
func (p *partial) mergeKept(keptNodes map[uint32][]keptSet) {
	nz := p.nz
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
	out := make([]keptSet, 0, len(old)+len(nodes))
	i := 0
	for _, g := range nodes {
		for i < len(old) && old[i].node < g {
			out = append(out, old[i])
			i++
		}
		for i < len(old) && old[i].node == g {
			i++
		}
		out = append(out, keptNodes[g]...)
	}
	out = append(out, old[i:]...)
	nz.kept = &kept{arenas: arenas{wire: k.wire}, sets: out}
	if len(out) == 0 && len(k.wire) == 0 {
		nz.kept = nil
	}
}
