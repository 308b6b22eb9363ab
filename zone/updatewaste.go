package zone

import "github.com/miekg/dns"

// This file measures what a line of versions made by Apply leaves behind
// in the arenas its versions share (names, RRsets, blocks and their wire
// bytes, patches and trims, the kept records' wire, the proof blocks):
// every update appends the blocks it prepares anew, and the blocks they
// replace stay, unread by the newest version, as long as the line lives
// (see the package documentation, "Updates"). Rebuild makes a version of
// the same records with none of that, a line of its own; the control
// plane rebuilds a zone so, off the serving path, when what its version
// no longer reads passes a share of its memory.

// arenaBytes is the memory of the arenas a line of versions shares, as
// far as zone z's lengths reach: what an update appends to.
func (z *Zone) arenaBytes() int {
	n := len(z.names) + len(z.sets)*20 + z.arenas.bytes()
	if z.kept != nil {
		n += len(z.kept.wire)
	}
	if d := z.denial; d != nil {
		// Not the NSEC3 chain's entries: an update bounds the pages it
		// no longer reads to a sixteenth of the chain (mergeChain).
		n += d.arenas.bytes()
	}
	return n
}

// Appended is the memory the updates of the line of versions that led to
// z appended to the arenas they share (see Superseded), since the line's
// first version was built; 0 for a zone loaded or rebuilt. Each update
// appends about what it leaves superseded, unless the zone shrinks (a
// removal appends nothing and supersedes the name's data): it costs
// nothing to read, and tells when Superseded is worth measuring.
func (z *Zone) Appended() int { return z.upd.appended }

// Superseded is the memory of the arenas z shares with the versions of
// its line (see Appended) that z itself does not read: the blocks, RRsets
// and names its updates replaced or removed. It reads the whole table:
// tens of milliseconds for a TLD of millions of names.
func (z *Zone) Superseded() int {
	if z.upd.appended == 0 {
		return 0
	}
	live := 0
	seen := make([]uint64, (len(z.blocks)+63)/64)
	block := func(a *arenas, seen []uint64, b uint32) int {
		if b == None || int(b) >= len(a.blocks) || seen[b/64]&(1<<(b%64)) != 0 {
			return 0
		}
		seen[b/64] |= 1 << (b % 64)
		bl := &a.blocks[b]
		trims := 0
		if bl.NTrim > 0 {
			trims = int(bl.NTrim) + 1
			if bl.Flags&BlockAddSigs != 0 {
				trims += 2 * int(bl.NTrim)
			}
		}
		return 28 + int(bl.Len) + 2*int(bl.NPatch) + 4*trims
	}
	for i := range z.nodes {
		nd := &z.nodes[i]
		live += int(nd.Len) + 20*int(nd.NSets)
		for s := nd.Set0; s < nd.Set0+uint32(nd.NSets); s++ {
			rs := &z.sets[s]
			live += block(&z.arenas, seen, rs.Block) + block(&z.arenas, seen, rs.Sig)
			if rs.Target != None && (rs.Type == dns.TypeCNAME || rs.Type == dns.TypeDNAME) {
				live += nameLen(z.names[rs.Target:])
			}
		}
	}
	live += block(&z.arenas, seen, z.negSOA) + block(&z.arenas, seen, z.negSOASig)
	if z.kept != nil {
		for _, k := range z.kept.sets {
			live += int(k.len)
		}
	}
	if d := z.denial; d != nil {
		pseen := make([]uint64, (len(d.blocks)+63)/64)
		for _, b := range d.nsecAt {
			live += block(&d.arenas, pseen, b)
		}
		d.eachEntry(func(e int) { live += block(&d.arenas, pseen, d.hashBlocks[e]) })
	}
	return max(z.arenaBytes()-live, 0)
}

// Rebuild builds z's records again into a table of their own, as a load
// of them would: it answers as z does, holds nothing z's updates left
// behind (Superseded is 0), and starts a line of versions of its own. z is
// not changed and may go on serving. The warnings are z's (the same
// records give the same), with the lines they named.
func (z *Zone) Rebuild() (*Zone, error) {
	nz, err := z.rebuild(&changeSet{})
	if err != nil {
		return nil, err
	}
	nz.warnings, nz.upd.warns = z.warnings, z.upd.warns
	if r := z.zonemd.Load(); r != nil {
		nz.zonemd.Store(r)
	}
	return nz, nil
}
