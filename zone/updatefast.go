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
	// warns says what each of the zone's warnings is about (see
	// updatewarn.go), so that Apply can keep them right; nil for a
	// loaded version, whose warnings are attributed by their text.
	warns []warnInfo
	// line is shared by the versions that grew from one another by
	// Apply; nil until the first incremental Apply.
	line *lineage
	// refBase is the reverse index of the names NS, MX and SRV blocks
	// read addresses from: sorted hash(name)<<32 | hash(owner of the
	// block), for every in-zone target of such a block and, for a target
	// that does not exist, every name its wildcard lookup tried (see
	// builder.ref). The builder records it as it writes the blocks, so
	// that no update has to find the targets again; refExtra holds those
	// recorded by the updates since, sorted. Entries may be stale (a
	// target no longer named, an owner gone, two names of one hash):
	// they only make Apply rebuild a block that comes out the same.
	refBase, refExtra []uint64
	// how says how Apply made the zone (see Zone.Applied).
	how string
	// appended is what the updates of the zone's line appended to the
	// arenas the line shares (see Zone.Appended).
	appended int
	// added and changed are the names the update that made the zone
	// added and changed, which the arrays made ahead for the next are
	// sized by (PrepareNext).
	added, changed int
}

// lineage records which version of a line of zones may append to the
// arenas they share: the last one made, its tip. Appending in place past
// the tip's lengths is safe because no version reads past its own lengths
// and no other version has written there; a version that is not the tip
// (an older one updated a second time) must copy what it appends to.
type lineage struct {
	mu  sync.Mutex
	tip *Zone
	// spares are the tip's arenas copied ahead of need, by kind (see
	// updatespare.go).
	spares [numArenaKinds]*spare
	// ahead holds the arrays made ahead for the next update (see
	// updatenodes.go).
	ahead *ahead
}

// lineageMu guards the creation of a zone's lineage.
var lineageMu sync.Mutex

// claim reports whether nz (being made from z) may append in place to the
// arenas it shares with z, and if so makes it the lineage's tip, so that
// no other version appends there. release undoes a claim that came to
// nothing.
func (z *Zone) claim() (*lineage, bool) {
	l := z.ownLine()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tip != z {
		return l, false
	}
	l.tip = nil // claimed: nothing else appends until the new tip is set
	return l, true
}

// line returns z's lineage, nil before z is first updated or prepared
// for an update.
func (z *Zone) line() *lineage {
	lineageMu.Lock()
	defer lineageMu.Unlock()
	return z.upd.line
}

// ownLine returns z's lineage, made with z as its tip when z has none.
func (z *Zone) ownLine() *lineage {
	lineageMu.Lock()
	defer lineageMu.Unlock()
	if z.upd.line == nil {
		z.upd.line = &lineage{tip: z}
	}
	return z.upd.line
}

// maxIncrementalDiv sets the share of a zone's names above which a change
// set is applied by a rebuild (a tenth): past it, copying each changed
// name's data costs about what building the table does.
const maxIncrementalDiv = 10

// nodeChange is one name the change set touches, or whose derived data
// must be prepared again: its records after the change, and the types
// whose RRsets (or signatures over them) changed.
type nodeChange struct {
	old     uint32 // the node in the old version, None for a name added
	node    uint32 // the node in the new version, None for a name removed
	owner   []byte
	recs    []Record // after the change, in Walk's order
	oldN    int
	changed map[uint16]bool // RRset types changed; RRSIG changes count for their covered type
	// reflag is set when what the node's ancestors decide (a zone cut
	// above it, FlagOccluded) changed: every RRset is prepared anew.
	reflag bool
	// hadNSEC3 says the old records held an NSEC3 RRset.
	hadNSEC3 bool
}

// incremental applies cs without rebuilding the table, when it can (see
// the package documentation); it returns (nil, reason, nil) when it
// cannot.
func (z *Zone) incremental(cs *changeSet) (*Zone, string, error) {
	limit := len(z.nodes)/maxIncrementalDiv + 1
	var r groupResult
	if len(cs.del)+len(cs.add) < groupParallelMin {
		r = z.group(cs.del, cs.add, limit)
	} else {
		// Reading each owner's records, most of the time of grouping,
		// waits on memory (the index, the names and blocks of a large
		// table): two halves of the owners are grouped side by side,
		// split at an owner, so that no owner is in both.
		split := cs.add
		if len(cs.del) > len(cs.add) {
			split = cs.del
		}
		at := split[len(split)/2].Owner
		below := func(c []change) int {
			i, _ := slices.BinarySearchFunc(c, at, func(c change, at []byte) int { return CompareCanonical(c.Owner, at) })
			return i
		}
		d, a := below(cs.del), below(cs.add)
		var r2 groupResult
		var wg sync.WaitGroup
		wg.Go(func() { r2 = z.group(cs.del[d:], cs.add[a:], limit) })
		r = z.group(cs.del[:d], cs.add[:a], limit)
		wg.Wait()
		r = r.join(r2, limit)
	}
	switch {
	case r.err != nil:
		return nil, "", r.err
	case r.why != "":
		return nil, r.why, nil
	case r.over:
		return nil, "over a tenth of the names change", nil
	}
	cs.checked = true
	return z.applyNodes(r.chg, limit)
}

// groupParallelMin is the number of records from which canonical converts
// a side of a change set, and incremental groups a change set, in two
// halves side by side.
var groupParallelMin = 512

// groupResult is what group made of a run of a change set's owners: the
// changes of each owner, in canonical order, up to where it stopped, if it
// did: at a change set that cannot be applied (err), at one that must be
// rebuilt (why), or at the limit of owners (over).
type groupResult struct {
	chg  []*nodeChange
	err  error
	why  string
	over bool
}

// stopped reports whether group stopped before the end of its run.
func (r *groupResult) stopped() bool { return r.err != nil || r.why != "" || r.over }

// join returns what group would have made of r's run followed by r2's (the
// owners of r2 all after r's) in one pass: r if it stopped; else what
// stopped r2, where it stopped below the limit counted from r's start; else
// the changes of both, or over when they pass the limit.
func (r groupResult) join(r2 groupResult, limit int) groupResult {
	if r.stopped() {
		return r
	}
	chg := append(r.chg, r2.chg...)
	switch {
	case len(chg) > limit || r2.over || (r2.stopped() && len(chg) >= limit):
		return groupResult{over: true}
	case r2.stopped():
		return groupResult{chg: chg, err: r2.err, why: r2.why}
	}
	return groupResult{chg: chg}
}

// group groups del and add, sorted, by owner: each owner's records (the
// zone's, less its deletions, with its additions), checking that the zone
// holds each record deleted. It stops at the limit of owners, and at the
// first owner whose change cannot be applied in place.
func (z *Zone) group(del, add []change, limit int) groupResult {
	var r groupResult
	it := newWalkIter(z)
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
		if len(r.chg) >= limit {
			r.over = true
			return r
		}
		n := z.find(owner, hashName(owner))
		var old []Record
		if n != None {
			old = it.nodeRecords(int(n))
		}
		c := &nodeChange{old: n, node: None, owner: owner, oldN: len(old), changed: map[uint16]bool{}}
		recs := slices.Clone(old)
		for len(del) > 0 && bytes.Equal(del[0].Owner, owner) {
			// checkDeletions' check, made from the records read
			// anyway (it read them a second time: 8 of the 75 ms of
			// a signed TLD's update of 1,000 delegations). A change
			// set holds each record once, so that each deletion finds
			// its record among those the ones before left.
			d := &del[0]
			k := -1
			if n != None {
				k = indexRecord(recs, d.Type, d.Data)
			}
			if k < 0 {
				r.err = z.notHeld(d, n == None)
				return r
			}
			recs = slices.Delete(recs, k, k+1)
			c.mark(d)
			del = del[1:]
		}
		for len(add) > 0 && bytes.Equal(add[0].Owner, owner) {
			// An addition of a record held replaces it (its TTL).
			a := &add[0]
			if k := indexRecord(recs, a.Type, a.Data); k >= 0 {
				recs[k] = a.Record
			} else {
				recs = append(recs, a.Record)
			}
			c.mark(a)
			add = add[1:]
		}
		slices.SortFunc(recs, func(a, b Record) int { return compareRecords(&a, &b) })
		c.recs = recs
		c.hadNSEC3 = slices.ContainsFunc(old, func(r Record) bool { return r.Type == dns.TypeNSEC3 })
		if why := z.sameShape(n, owner, old, recs); why != "" {
			r.why = why
			return r
		}
		r.chg = append(r.chg, c)
	}
	return r
}

func (c *nodeChange) mark(r *change) {
	if r.Type == dns.TypeRRSIG {
		c.changed[r.covered] = true
	} else {
		c.changed[r.Type] = true
	}
}

// markAll marks every type of the node's records as changed.
func (c *nodeChange) markAll() {
	for i := range c.recs {
		r := &c.recs[i]
		if r.Type == dns.TypeRRSIG && len(r.Data) >= 2 {
			c.changed[uint16(r.Data[0])<<8|uint16(r.Data[1])] = true
		} else {
			c.changed[r.Type] = true
		}
	}
}

func countType(rs []Record, t uint16) int {
	k := 0
	for i := range rs {
		if rs[i].Type == t {
			k++
		}
	}
	return k
}

// sameShape returns why the name owner (node n, None when it is new)
// cannot change from old to recs in place ("" when it can). What the
// builder would refuse is left to the builder: such a change set is
// rebuilt, and the rebuild's error is the one returned.
func (z *Zone) sameShape(n uint32, owner []byte, old, recs []Record) string {
	has := func(rs []Record, t uint16) bool { return countType(rs, t) > 0 }
	apex := n == z.apexNode
	if apex && len(recs) == 0 {
		return "the apex loses all its records"
	}
	if has(old, dns.TypeDNAME) != has(recs, dns.TypeDNAME) {
		return "a name gains or loses its DNAME RRset"
	}
	if apex && has(old, dns.TypeNS) != has(recs, dns.TypeNS) {
		return "the apex gains or loses its NS RRset"
	}
	if len(old) > 0 && len(recs) > 0 && has(old, dns.TypeNSEC3) != has(recs, dns.TypeNSEC3) {
		return "a name gains or loses its NSEC3 RRset"
	}
	if has(recs, dns.TypeCNAME) {
		for i := range recs {
			switch recs[i].Type {
			case dns.TypeCNAME, dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3:
			default:
				return "CNAME beside other data"
			}
		}
	}
	if countType(recs, dns.TypeCNAME) > 1 || countType(recs, dns.TypeDNAME) > 1 {
		return "more than one CNAME or DNAME"
	}
	if !apex && (has(recs, dns.TypeSOA) || has(recs, dns.TypeNSEC3PARAM)) || apex && countType(recs, dns.TypeSOA) != 1 {
		return "an SOA or NSEC3PARAM record away from the apex, or not one SOA"
	}
	if apex {
		for _, t := range []uint16{dns.TypeNSEC3PARAM, dns.TypeDNSKEY} {
			if !slices.EqualFunc(ofRecType(old, t), ofRecType(recs, t), func(a, b Record) bool { return bytes.Equal(a.Data, b.Data) }) {
				return "the apex's " + typeName(t) + " RRset changes"
			}
		}
	}
	switch {
	case z.denial == nil:
		for i := range recs {
			switch recs[i].Type {
			case dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3:
				return "an unsigned zone gets DNSSEC records"
			}
		}
	case z.denial.mode == DenialNSEC:
		if has(recs, dns.TypeNSEC3) {
			return "an NSEC3 record in an NSEC zone"
		}
	case z.denial.mode == DenialNSEC3:
		if has(recs, dns.TypeNSEC) {
			return "an NSEC record in an NSEC3 zone"
		}
		owns := n != None && z.nodes[n].Flags&FlagNSEC3Owner != 0
		if has(recs, dns.TypeNSEC3) || owns {
			for i := range recs {
				if recs[i].Type != dns.TypeNSEC3 && recs[i].Type != dns.TypeRRSIG {
					return "an NSEC3 RRset beside other data"
				}
			}
		}
		if has(recs, dns.TypeNSEC3) {
			if _, ok := nsec3OwnerHash(owner, z.apex); !ok {
				return "an NSEC3 owner that is not a hash directly below the apex"
			}
		}
	}
	return ""
}

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
// records replaced, names added and removed.
func (z *Zone) applyNodes(chg []*nodeChange, limit int) (*Zone, string, error) {
	pl, why := z.planNames(chg)
	if why != "" {
		return nil, why, nil
	}
	if len(chg)+pl.extra > limit {
		return nil, "over a tenth of the names change", nil
	}
	nz := &Zone{origin: z.origin, file: z.file, serial: z.serial, records: z.records, warnings: z.warnings,
		apex: z.apex, apexLabels: z.apexLabels, names: z.names, sets: z.sets,
		arenas: z.arenas, negSOA: z.negSOA, negSOASig: z.negSOASig, apexHash: z.apexHash, mapped: z.mapped}
	nz.upd.refBase, nz.upd.refExtra = z.upd.refBase, z.upd.refExtra
	line, inPlace := z.claim()
	var g *growPlan
	if inPlace {
		g = &growPlan{line: line}
	}
	ah := g.takeAhead()
	early := z.startEarly(pl, len(chg), ah)
	ok := false
	var indexStart func()
	defer func() {
		if ok && indexStart != nil {
			indexStart()
		}
		line.mu.Lock()
		defer line.mu.Unlock()
		switch {
		case ok:
			line.tip = nz
			nz.upd.line = line
			line.planSpares(z, nz, g)
			nz.upd.added, nz.upd.changed = len(pl.adds), len(chg)
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

	// The new version's names, nodes and provisional index; the index of
	// its own is started once the version is made (see deferIndex).
	indexStart = pl.makeNodes(z, nz, g, ah)
	for _, c := range chg {
		switch {
		case c.old == None:
			c.node = pl.addNew[pl.addIndex(c.owner)]
		case !pl.deleted(c.old):
			c.node = pl.newOf(c.old)
		}
	}
	fl, why := z.flagNodes(nz, pl, chg, limit)
	if why != "" {
		return nil, why, nil
	}
	chg = fl.chg

	// The nodes prepared anew, and the nodes whose NS, MX or SRV blocks
	// read addresses (and their signatures) from a name that changed,
	// was added or removed, or changed between glue and authoritative
	// data, and so are prepared again too.
	p := newPartial(z, nz, pl)
	p.early, p.inPlace = early, inPlace
	var moved [][]byte
	for _, c := range chg {
		if c.node != None {
			p.addNode(c.node, c.recs)
			nz.records += len(c.recs)
		}
		nz.records -= c.oldN
		if c.old == None || c.node == None || c.reflag || c.changed[dns.TypeA] || c.changed[dns.TypeAAAA] {
			moved = append(moved, c.owner)
		}
	}
	for i, a := range pl.adds {
		if !pl.addOwner[i] {
			moved = append(moved, a)
		}
	}
	for _, o := range pl.del {
		if pl.delENT(z, o) {
			moved = append(moved, z.NodeName(&z.nodes[o]))
		}
	}
	changed := map[uint32]*nodeChange{}
	for _, c := range chg {
		if c.node != None {
			changed[c.node] = c
		}
	}
	var deps []uint32
	for _, name := range moved {
		for _, d := range nz.referrers(name) {
			if !p.rebuild[d] && nz.hasReferrals(d) {
				p.rebuild[d] = true
				if changed[d] == nil {
					deps = append(deps, d)
				}
			}
		}
	}
	slices.Sort(deps)
	for _, d := range deps {
		p.addOld(d)
	}
	// Every name a rebuilt block takes addresses from, or may look a
	// wildcard up for, must be known to the partial builder.
	for _, n := range slices.Clone(p.glob) {
		if c := changed[n]; c != nil || p.rebuild[n] {
			for _, r := range p.recs[n] {
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
	// update that takes more has the arena grown by append. room takes
	// the copy of an arena grown ahead of need, in the background, when
	// there is one (updatespare.go).
	k := len(p.glob)
	nz.sets = room(g, arSets, nz.sets, 3*k)
	nz.blocks, nz.wire = room(g, arBlocks, nz.blocks, 3*k), room(g, arWire, nz.wire, 256*k)
	nz.patches, nz.trims = room(g, arPatches, nz.patches, 6*k), room(g, arTrims, nz.trims, 4*k)
	if nz.kept != nil {
		nz.kept.wire = room(g, arKeptWire, nz.kept.wire, 64*len(chg))
	}
	if d := nz.denial; d != nil {
		d.blocks, d.wire = room(g, arProofBlocks, d.blocks, 2*len(chg)), room(g, arProofWire, d.wire, 256*len(chg))
		d.patches = room(g, arProofPatches, d.patches, 2*len(chg))
	}

	keptNodes := map[uint32][]keptSet{}
	for _, c := range chg {
		if c.node == None {
			continue
		}
		if err := p.rebuildNode(c, keptNodes); err != nil {
			return nil, "", err
		}
	}
	for _, d := range deps {
		if err := p.rebuildReferrals(d); err != nil {
			return nil, "", err
		}
	}
	p.resolveSigs()
	if err := p.updateDenial(chg, fl.touched); err != nil {
		if fb, isFB := err.(fallbackError); isFB {
			return nil, string(fb), nil
		}
		return nil, "", err
	}
	if z.kept != nil || len(keptNodes) > 0 {
		p.mergeKept(keptNodes)
	}
	z.updateWarnings(nz, p, chg)
	nz.upd.refBase = z.upd.refBase
	nz.upd.refExtra = mergeSorted(z.upd.refExtra, sortRefs(p.b.refs))
	if len(nz.upd.refExtra) > len(nz.upd.refBase)/8 {
		// Each update copies refExtra: once it has grown, it is merged
		// into refBase, so that an update's copy stays small.
		nz.upd.refBase, nz.upd.refExtra = mergeSorted(nz.upd.refBase, nz.upd.refExtra), nil
	}
	nz.upd.appended = z.upd.appended + nz.arenaBytes() - z.arenaBytes()
	nz.upd.how = "incremental"
	ok = true
	return nz, "", nil
}

// sortRefs sorts recorded references and drops duplicates; the result's
// capacity is its length (the builder's slice is kept when it was sized
// about right, so that a large zone's load does not hold two copies).
func sortRefs(r []uint64) []uint64 {
	slices.Sort(r)
	r = slices.Compact(r)
	if len(r) >= cap(r)-cap(r)/16 {
		return r[:len(r):len(r)]
	}
	out := make([]uint64, len(r))
	copy(out, r)
	return out
}

// mergeSorted merges two sorted slices into a new one, without
// duplicates.
func mergeSorted(a, b []uint64) []uint64 {
	out := make([]uint64, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var v uint64
		if j >= len(b) || i < len(a) && a[i] <= b[j] {
			v = a[i]
			i++
		} else {
			v = b[j]
			j++
		}
		if len(out) == 0 || out[len(out)-1] != v {
			out = append(out, v)
		}
	}
	return out
}

// referrers returns the nodes that may hold an NS, MX or SRV block that
// read the addresses of name, or looked for them.
func (z *Zone) referrers(name []byte) []uint32 {
	h := uint64(hashName(name)) << 32
	var out []uint32
	for _, refs := range [2][]uint64{z.upd.refBase, z.upd.refExtra} {
		i, _ := slices.BinarySearch(refs, h)
		for ; i < len(refs) && refs[i]&^0xFFFFFFFF == h; i++ {
			out = z.nodesOfHash(uint32(refs[i]), out)
		}
	}
	return out
}

// nodesOfHash appends to out the nodes whose names hash to h, found by
// probing the index as find does.
func (z *Zone) nodesOfHash(h uint32, out []uint32) []uint32 {
	index, mask := z.index, z.mask
	if v := z.prov.view(); v != nil {
		if v.base != nil {
			return v.nodesOfHash(h, out)
		}
		index, mask = v.slots, v.mask
	}
	for i := slotOf(h, mask); ; i = (i + 1) & mask {
		s := index[i]
		if s.node == 0 {
			return out
		}
		if s.hash == h {
			out = append(out, s.node-1)
		}
	}
}
