package zone

import "sync"

// parallelSetsMin is the node count from which buildSets prepares the
// blocks of ranges of nodes at once; below it the goroutines and the merge
// cost more than they save.
const parallelSetsMin = 1 << 15

// setsPart is one range of nodes whose RRsets and blocks a builder of its
// own prepares (see buildSetsParts), and where its arrays start in the
// table's: the sums of the estimates of the ranges before it.
type setsPart struct {
	b      *builder
	lo, hi int
	at     tableEstimate
	err    error
}

// buildSetsParts prepares the RRsets and blocks of the zone's nodes in the
// ranges reserveTable estimated (b.setsEst), at once. Each range is built
// by a copy of b (partBuilder) that reads the same records, names and
// nodes but appends to arrays of its own, numbering its RRsets, blocks,
// wire bytes, patches, trims, target names, kept records and references
// from 0. Those arrays are the range's part of the room reserveTable
// reserved in the table's, at the sum of the estimates of the ranges
// before it: a range that holds more than its estimate moves to an array
// of its own as it grows. mergePart then adds to every index and offset
// of a range the length of the table's arrays before it, and gather moves
// its arrays down to that place (or copies them there), which gives the
// arrays a serial build writes, byte for byte: the blocks of one range
// refer only to that range's wire, patches and trims, and a node's
// RRsets to its range's blocks, until resolveAddSigs, which runs after
// the merge. The table's pages are written once more by the move, but no
// second copy of them is made, which would raise the build's peak.
// Block building was a second of serial work for a million delegations.
func (b *builder) buildSetsParts() error {
	z := b.z
	parts := len(b.setsEst)
	if parts <= 1 {
		return b.buildSetsRange(0, len(z.nodes))
	}
	if b.keptWire > 0 && z.kept == nil {
		z.kept = b.reservedKept()
	}
	ps := make([]setsPart, parts)
	var at tableEstimate
	for p := range ps {
		ps[p].lo, ps[p].hi = len(z.nodes)*p/parts, len(z.nodes)*(p+1)/parts
		ps[p].at = at
		at.add(b.setsEst[p])
	}
	for p := range ps {
		ps[p].b = b.partBuilder(ps[p].at, b.setsEst[p])
		if b.released() {
			ps[p].b.recs, ps[p].b.rdata = b.rangeRecs[p], b.rangeRdata[p]
		}
	}
	if b.released() {
		b.buildRangesReleasing(ps)
	} else {
		var wg sync.WaitGroup
		for p := range ps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ps[p].err = ps[p].b.buildSetsRange(ps[p].lo, ps[p].hi)
			}()
		}
		wg.Wait()
	}
	// The first error in node order is the one a serial build returns:
	// the ranges before it built without one.
	for p := range ps {
		if ps[p].err != nil {
			return ps[p].err
		}
	}
	for p := range ps {
		if ps[p].b.z.kept != nil && z.kept == nil {
			z.kept = b.reservedKept()
		}
	}
	b.relocate(ps)
	z.sets = gather(z.sets, ps, func(p *setsPart) ([]RRset, int) { return p.b.z.sets, p.at.sets })
	z.blocks = gather(z.blocks, ps, func(p *setsPart) ([]Block, int) { return p.b.z.blocks, p.at.blocks })
	z.wire = gather(z.wire, ps, func(p *setsPart) ([]byte, int) { return p.b.z.wire, p.at.wire })
	z.patches = gather(z.patches, ps, func(p *setsPart) ([]uint16, int) { return p.b.z.patches, p.at.patches })
	z.trims = gather(z.trims, ps, func(p *setsPart) ([]Trim, int) { return p.b.z.trims, p.at.trims })
	b.refs = gather(b.refs, ps, func(p *setsPart) ([]uint64, int) { return p.b.refs, p.at.refs })
	if z.kept != nil {
		z.kept.wire = gather(z.kept.wire, ps, func(p *setsPart) ([]byte, int) {
			if p.b.z.kept == nil {
				return nil, 0
			}
			return p.b.z.kept.wire, p.at.keptWire
		})
		z.kept.sets = gather(z.kept.sets, ps, func(p *setsPart) ([]keptSet, int) {
			if p.b.z.kept == nil {
				return nil, 0
			}
			return p.b.z.kept.sets, p.at.keptSets
		})
	}
	for p := range ps {
		z.names = append(z.names, ps[p].b.z.names...)
		b.warnings = append(b.warnings, ps[p].b.warnings...)
		b.sigFix = append(b.sigFix, ps[p].b.sigFix...)
		ps[p].b = nil // its arrays are garbage once gathered
	}
	return nil
}

// region returns the part of the room after a's elements from lo to hi
// (counted from len(a)) as an empty slice whose appends stay in it until
// it is full.
func region[T any](a []T, lo, hi int) []T {
	l := len(a)
	return a[l+lo : l+lo : l+hi]
}

// gather appends each range's array (given by get with the place of its
// region after a's elements) to a, in order. An array still in its
// region is moved down to its place; one that must move up, because
// ranges before it outgrew their regions, is copied out first, so that
// moving those does not overwrite it.
func gather[T any](a []T, ps []setsPart, get func(p *setsPart) ([]T, int)) []T {
	full := a[:cap(a)]
	end := len(a)
	arrays := make([][]T, len(ps))
	for p := range ps {
		s, at := get(&ps[p])
		at += len(a)
		if cap(s) > 0 && at < len(full) && &s[:1][0] == &full[at] && end > at {
			s = append([]T(nil), s...)
		}
		arrays[p] = s
		end += len(s)
	}
	for _, s := range arrays {
		a = append(a, s...)
	}
	return a
}

// partBuilder returns a builder for a range of nodes of b's zone: it
// shares b's records, names, lookup index and nodes (each range writes
// only its own nodes' Set0 and NSets), and has its own zone for the sets,
// names and arenas it appends to, its own scratch, and its own warnings,
// references, signature slots and kept records. Its arrays are the
// regions of the table's room at and est (see buildSetsParts).
func (b *builder) partBuilder(at, est tableEstimate) *builder {
	z := b.z
	pz := &Zone{origin: z.origin, file: z.file, apex: z.apex, apexLabels: z.apexLabels, nodes: z.nodes,
		negSOA: None, negSOASig: None}
	pz.sets = region(z.sets, at.sets, at.sets+est.sets)
	pz.blocks = region(z.blocks, at.blocks, at.blocks+est.blocks)
	pz.wire = region(z.wire, at.wire, at.wire+est.wire)
	pz.patches = region(z.patches, at.patches, at.patches+est.patches)
	pz.trims = region(z.trims, at.trims, at.trims+est.trims)
	if z.kept != nil {
		pz.kept = &kept{arenas: arenas{wire: region(z.kept.wire, at.keptWire, at.keptWire+est.keptWire)},
			sets: region(z.kept.sets, at.keptSets, at.keptSets+est.keptSets)}
	}
	s := *b
	s.z, s.out = pz, &pz.arenas
	s.refs = region(b.refs, at.refs, at.refs+est.refs)
	s.warnings, s.sigFix, s.kept = nil, nil, nil
	s.wr, s.seen, s.trimBuf, s.sigNodes, s.packBuf = nil, nil, nil, nil, nil
	return &s
}

// relocate moves the indexes and offsets of what the builder of each
// range prepared past what the table holds before it (see
// buildSetsParts): the lengths of the table's arrays and of the ranges
// before it.
func (b *builder) relocate(ps []setsPart) {
	z := b.z
	names, sets, blocks := uint32(len(z.names)), uint32(len(z.sets)), uint32(len(z.blocks))
	wire, patches, trims := uint32(len(z.wire)), uint32(len(z.patches)), uint32(len(z.trims))
	keptWire := uint32(0)
	if z.kept != nil {
		keptWire = uint32(len(z.kept.wire))
	}
	for p := range ps {
		s, pz := ps[p].b, ps[p].b.z
		for n := ps[p].lo; n < ps[p].hi; n++ {
			z.nodes[n].Set0 += sets
		}
		for i := range pz.sets {
			rs := &pz.sets[i]
			if rs.Block != None {
				rs.Block += blocks
			}
			if rs.Sig != None {
				rs.Sig += blocks
			}
			if rs.Target != None {
				rs.Target += names
			}
		}
		for i := range pz.blocks {
			bl := &pz.blocks[i]
			bl.Off += wire
			bl.Patch += patches
			bl.Trim += trims
		}
		for i := range s.sigFix {
			s.sigFix[i].at += trims
		}
		if pz.negSOA != None {
			// The apex's range, the first.
			z.negSOA, z.negSOASig = pz.negSOA+blocks, pz.negSOASig
			if z.negSOASig != None {
				z.negSOASig += blocks
			}
		}
		if pz.kept != nil {
			for i := range pz.kept.sets {
				pz.kept.sets[i].off += keptWire
			}
			keptWire += uint32(len(pz.kept.wire))
		}
		names += uint32(len(pz.names))
		sets += uint32(len(pz.sets))
		blocks += uint32(len(pz.blocks))
		wire += uint32(len(pz.wire))
		patches += uint32(len(pz.patches))
		trims += uint32(len(pz.trims))
	}
}

// reservedKept returns the kept records' arrays, reserved from
// reserveTable's count: the runs exactly, the wire withRoom (without it
// the first update of the signed 1M-delegation TLD copied its 8 MB, 7-12
// ms).
func (b *builder) reservedKept() *kept {
	return &kept{arenas: arenas{wire: newArena[byte](b.z, withRoom(b.keptWire))}, sets: make([]keptSet, 0, b.keptSets)}
}
