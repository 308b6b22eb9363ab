package dataplane

import (
	"github.com/ringdns/ringdns/internal/onessum"
	"github.com/ringdns/ringdns/zone"
)

// msgName locates a name already written in the message: pos[i] is the
// offset of the suffix that starts at label i. Suffix codes in prepared
// blocks resolve through it.
type msgName struct {
	pos    [zone.MaxLabels]uint16
	labels int
}

// reply is the message being built in dst. Its methods here copy the
// zone's prepared blocks into it, additional records as many as fit, and
// resolve their pointer codes against the names already written; those in
// dnssec.go add the denial proofs.
type reply struct {
	buf        []byte // dst up to the size limit, less the room kept for the OPT record
	n          int
	an, ns, ar uint16
	aa, tc     bool
	rcode      uint16
	full       bool // a record of the answer or authority section did not fit
	bad        bool // the reply could not be built (SERVFAIL)
	do         bool

	// proofs are the proof blocks (NSEC or NSEC3 with RRSIGs) of the
	// authority section, in order: proofs[:nproved] are written, the rest
	// wait for the end of the answer section (dnssec.go).
	proofs  [maxProofs]uint32
	nproofs int
	nproved int
	// wildCE is the closest encloser of the name a wildcard answered.
	wildCE uint32

	// acc is the ones'-complement sum (RFC 1071) of the records written
	// after the question, for the UDP checksum: acc[0] of words at even
	// message offsets, acc[1] of words at odd offsets, whose bytes are
	// swapped when the two are combined (at the end of answer). Blocks come
	// with their sums, so most of the reply is never read again; see
	// addBytes and patch.
	acc [2]uint64
}

// addBytes adds the bytes written at buf[from:to] to the reply's sum.
func (r *reply) addBytes(from, to int) {
	r.acc[from&1] += uint64(onessum.Sum(r.buf[from:to], 0))
}

// repatch adds to the reply's sum the change of the 16-bit word at w from
// old to v: in ones' complement, subtracting old is adding its complement.
func (r *reply) repatch(w int, old, v uint16) {
	r.acc[w&1] += uint64(^old) + uint64(v)
}

// dropRecords takes back every record of a reply that could not be built
// whole: one that did not fit is cut to its question with TC set, one that
// could not be built at all (SERVFAIL) keeps no data and no AA. qend is
// where the question ends.
func (r *reply) dropRecords(qend int) {
	r.n = qend
	r.acc = [2]uint64{}
	r.an, r.ns, r.ar = 0, 0, 0
	r.aa = r.aa && !r.bad
	r.tc = r.full && !r.bad
}

// locate fills ctx with the label positions of the name written at p.
func (r *reply) locate(p int, ctx *msgName) bool {
	ctx.labels = 0
	for hops := 0; hops < 2*zone.MaxLabels; hops++ {
		if p >= r.n {
			return false
		}
		l := int(r.buf[p])
		switch {
		case l == 0:
			return true
		case l&0xC0 == 0xC0:
			if p+1 >= r.n {
				return false
			}
			p = int(be16(r.buf[p:]) & 0x3FFF)
		default:
			if ctx.labels >= zone.MaxLabels {
				return false
			}
			ctx.pos[ctx.labels] = uint16(p)
			ctx.labels++
			p += l + 1
		}
	}
	return false
}

// negative writes the SOA (and with DO its RRSIGs) in the authority section.
func (r *reply) negative(z *zone.Zone, ctx *msgName) {
	if !r.block(z, z.NegSOA(), ctx, false, &r.ns) {
		return
	}
	if r.do && z.NegSOASig() != zone.None {
		r.block(z, z.NegSOASig(), ctx, false, &r.ns)
	}
}

// rrset writes an RRset's block and, with DO, its signatures.
func (r *reply) rrset(z *zone.Zone, rs *zone.RRset, ctx *msgName, wild bool, sec *uint16) bool {
	if !r.block(z, rs.Block, ctx, wild, sec) {
		return false
	}
	if r.do && rs.Sig != zone.None {
		return r.block(z, rs.Sig, ctx, wild, sec)
	}
	return true
}

// block copies the base part of a prepared block and patches its pointers.
func (r *reply) block(z *zone.Zone, b uint32, ctx *msgName, wild bool, sec *uint16) bool {
	if r.full || r.bad {
		return false
	}
	blk := &z.Blocks()[b]
	n := int(blk.Base)
	at := r.n
	if at+n > len(r.buf) {
		r.full = true
		return false
	}
	copy(r.buf[at:at+n], z.Wire()[blk.Off:blk.Off+uint32(n)])
	r.acc[at&1] += uint64(blk.Sum)
	if !r.patch(z, blk, at, 0, n, at, ctx, wild) {
		r.bad = true
		return false
	}
	r.n += n
	*sec += blk.Count
	return true
}

// additional copies the additional records of block b, whose base part was
// written at at, as Knot DNS chooses them: group by group (one name's A and
// AAAA records), each RRset that fits, the AAAA skipped when the A did not
// fit. If a required group (in-domain glue) does not fit whole, TC is set
// (RFC 9471). The groups never point into each other, so any may be left
// out. With DO, the RRSIGs of the signed RRsets among them follow
// (additionalSigs).
func (r *reply) additional(z *zone.Zone, b uint32, at int, ctx *msgName, wild bool) {
	if r.full || r.bad {
		return
	}
	blk := &z.Blocks()[b]
	if blk.NTrim == 0 {
		return
	}
	trims := z.Trims()[blk.Trim : blk.Trim+uint32(blk.NTrim)]
	base := int(blk.Base)
	last := &trims[len(trims)-1]
	from, room := r.n, len(r.buf)-r.n
	if int(last.End)-base <= room {
		// Everything fits: one copy.
		r.piece(z, blk, at, base, int(last.End), last.Count, ctx, wild)
	} else {
		r.additionalGroups(z, blk, trims, at, ctx, wild)
	}
	if r.do && blk.Flags&zone.BlockAddSigs != 0 && !r.bad {
		r.additionalSigs(z, blk, trims, from, room)
	}
}

// additionalGroups copies the additional groups of blk one by one, as many
// as fit (see additional).
func (r *reply) additionalGroups(z *zone.Zone, blk *zone.Block, trims []zone.Trim, at int, ctx *msgName, wild bool) {
	wire := z.Wire()[blk.Off:]
	start, before := int(blk.Base), uint16(0)
	for g := range trims {
		end, count := int(trims[g].End), trims[g].Count-before
		room := len(r.buf) - r.n
		switch {
		case end-start <= room:
			r.piece(z, blk, at, start, end, count, ctx, wild)
		default:
			if g < int(blk.Req) {
				r.tc = true
			}
			// The A records lead the group; they go in alone when
			// they fit, and the AAAA records then cannot.
			aEnd, aCount := leadingA(wire, start, end, count)
			if aCount > 0 && aEnd-start <= room {
				r.piece(z, blk, at, start, aEnd, aCount, ctx, wild)
			}
		}
		if r.bad {
			return
		}
		start, before = end, trims[g].Count
	}
}

// leadingA returns the end and number of the A records that lead the
// additional group of count records in wire[start:end]; AAAA records, if
// any, follow them.
func leadingA(wire []byte, start, end int, count uint16) (aEnd int, aCount uint16) {
	aEnd = start
	for aEnd < end && aCount < count {
		t, next := recordAt(wire, aEnd)
		if t != typeA {
			break
		}
		aEnd = next
		aCount++
	}
	return aEnd, aCount
}

// additionalSigs appends the RRSIGs of the signed address RRsets that
// additional wrote from message offset from, with room bytes free then, as
// Knot DNS adds them: after all the addresses, in their order, each
// optional, the first that does not fit ending them (no TC: RFC 4035
// section 3.1.1 lets additional signatures go). Glue has none. The
// choices of additional are replayed from the group sizes rather than
// recorded, so that the reply carries no state for them.
func (r *reply) additionalSigs(z *zone.Zone, blk *zone.Block, trims []zone.Trim, from, room int) {
	wire := z.Wire()[blk.Off:]
	start, before := int(blk.Base), uint16(0)
	p := from // where the group's records start in the message
	for g := range trims {
		end, count := int(trims[g].End), trims[g].Count-before
		start0 := start
		start, before = end, trims[g].Count
		aEnd, aCount := leadingA(wire, start0, end, count)
		whole := end-start0 <= room
		if !whole && (aCount == 0 || aEnd-start0 > room) {
			continue // not written
		}
		sigA, sigAAAA := z.AdditionalSigs(blk, g)
		if aCount > 0 && sigA != zone.None && !r.sig(z, sigA, p) {
			return
		}
		if whole && aEnd < end && sigAAAA != zone.None && !r.sig(z, sigAAAA, p+aEnd-start0) {
			return
		}
		if !whole {
			end = aEnd
		}
		room -= end - start0
		p += end - start0
	}
}

// sig appends the RRSIG block b covering the RRset whose first record was
// written at message offset p, and reports whether it fitted. The block's
// owners are codes for its whole owner name (zone.plainBlock): each becomes
// a pointer to that record's owner, which also names a wildcard's
// expansion as the covered records do.
func (r *reply) sig(z *zone.Zone, b uint32, p int) bool {
	blk := &z.Blocks()[b]
	n := int(blk.Base)
	at := r.n
	if at+n > len(r.buf) {
		return false
	}
	if r.buf[p]&0xC0 == 0xC0 {
		// The owner is itself a pointer: point where it does.
		p = int(be16(r.buf[p:]) & 0x3FFF)
	}
	if p > 0x3FFF {
		// Beyond a pointer's reach (a large TCP reply): the signatures
		// are optional and end here.
		return false
	}
	copy(r.buf[at:at+n], z.Wire()[blk.Off:blk.Off+uint32(n)])
	r.acc[at&1] += uint64(blk.Sum)
	for _, pp := range z.Patches()[blk.Patch : blk.Patch+uint32(blk.NPatch)] {
		w := at + int(pp)
		if be16(r.buf[w:]) != zone.CodeSuffix {
			r.bad = true
			return false
		}
		put16(r.buf[w:], 0xC000|uint16(p))
		r.repatch(w, zone.CodeSuffix, 0xC000|uint16(p))
	}
	r.n += n
	r.ar += blk.Count
	return true
}

// piece copies the additional records at block offsets [from, to).
func (r *reply) piece(z *zone.Zone, blk *zone.Block, at, from, to int, count uint16, ctx *msgName, wild bool) {
	dest := r.n
	copy(r.buf[dest:dest+to-from], z.Wire()[blk.Off+uint32(from):blk.Off+uint32(to)])
	if from == int(blk.Base) && to == int(blk.Len) {
		// The whole additional part, whose sum the block carries.
		r.acc[dest&1] += uint64(z.AdditionalSum(blk))
	} else {
		r.addBytes(dest, dest+to-from)
	}
	if !r.patch(z, blk, at, from, to, dest, ctx, wild) {
		r.bad = true
		return
	}
	r.n += to - from
	r.ar += count
}

// recordAt returns the type of the prepared record at offset p of a block
// and the offset after it. Its owner is literal labels ending in a root
// label or a two-byte pointer code.
func recordAt(b []byte, p int) (uint16, int) {
	for b[p] != 0 && b[p] < 0xC0 {
		p += int(b[p]) + 1
	}
	if b[p] == 0 {
		p++
	} else {
		p += 2
	}
	return be16(b[p:]), p + 10 + int(be16(b[p+8:]))
}

// patch resolves the pointer codes at block offsets [from, to), which were
// copied to dest; the block's base part was written at at.
func (r *reply) patch(z *zone.Zone, blk *zone.Block, at, from, to, dest int, ctx *msgName, wild bool) bool {
	ps := z.Patches()[blk.Patch : blk.Patch+uint32(blk.NPatch)]
	gap := dest - from - at
	for _, p := range ps {
		if int(p) < from {
			continue
		}
		if int(p) >= to {
			break
		}
		w := dest + int(p) - from
		code := be16(r.buf[w:])
		var v int
		if code >= zone.CodeSuffix {
			i := int(code & 0x1FFF)
			if i == 0 && wild {
				v = int(ctx.pos[0])
			} else {
				j := i + ctx.labels - int(blk.Labels)
				if j < 0 || j >= ctx.labels {
					return false
				}
				v = int(ctx.pos[j])
			}
		} else {
			rel := int(code & 0x1FFF)
			v = at + rel
			if rel >= int(blk.Base) {
				v += gap
			}
		}
		if v > 0x3FFF {
			return false
		}
		put16(r.buf[w:], 0xC000|uint16(v))
		r.repatch(w, code, 0xC000|uint16(v))
	}
	return true
}
