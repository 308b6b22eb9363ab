package zone

import (
	"bytes"
	"encoding/binary"
	"slices"

	"github.com/miekg/dns"
)

// blockWriter prepares one block: records written into the zone's wire
// arena with names compressed against the owner name's suffixes (resolved
// when the block is copied into a message) and against names earlier in
// the block.
type blockWriter struct {
	a      *arenas // where the blocks go: the table's or the proofs'
	b      *builder
	start  int
	owner  []byte // lowercase wire owner the suffix codes refer to
	labels int
	// ownerOffs are the owner's label offsets: the owner's suffix with i
	// labels stripped starts at ownerOffs[i] (see ownerSuffix).
	ownerOffs []uint8
	dict      *nameTable // lowercase suffix written in this block -> offset
	patch     []uint16
	// frozen stops names written from becoming compression targets. The
	// additional part is written frozen, so that its groups point only
	// into the base part and may be copied one by one, any of them left
	// out.
	frozen bool
	// suf is the one name a compressible rdata name is compared with, as
	// Knot DNS compresses: the query name at first (the owner stands for
	// it), then the last name written with at least one literal label.
	// Knot's replies then have our replies' sizes, so that the same
	// optional additional records fit in both.
	suf []byte

	// lower holds the lowercase copy of the name being written, sufBuf
	// the copy of suf when suf is not the owner.
	lower  [256]byte
	sufBuf [256]byte
}

// newWriter starts a block for owner. The builder has one writer, reset
// here for each block with its scratch kept (see nameTable): blocks are
// prepared one at a time, and a writer is not used after its block's
// finish.
func (b *builder) newWriter(owner []byte) *blockWriter {
	w := b.wr
	if w == nil {
		w = &blockWriter{dict: newNameTable()}
		b.wr = w
	}
	w.dict.reset()
	w.a, w.b, w.start, w.owner, w.labels = b.out, b, len(b.out.wire), owner, countLabels(owner)
	w.ownerOffs = labelOffsetsInto(w.ownerOffs[:0], owner)
	w.patch, w.frozen, w.suf = w.patch[:0], false, owner
	return w
}

// ownerSuffix returns how many labels must be stripped from the owner to
// leave the lowercase name s, if s is a suffix of the owner (the root
// aside). Only one suffix of the owner has the length of s.
func (w *blockWriter) ownerSuffix(s []byte) (int, bool) {
	for i, o := range w.ownerOffs {
		if len(w.owner)-int(o) == len(s) {
			return i, bytes.Equal(w.owner[o:], s)
		}
	}
	return 0, false
}

func (w *blockWriter) rel() int { return len(w.a.wire) - w.start }

// name writes a wire-format name. With compress set, an owner's longest
// suffix already available (in the owner name or earlier in the block)
// becomes a pointer code; an rdata name is compressed only as far as it
// shares trailing labels with w.suf. isOwner says the name is a record's
// owner; in a wildcard block only owners may refer to the whole owner
// name (which will be the query name), never rdata, whose "*" must stay
// literal.
func (w *blockWriter) name(n []byte, compress, isOwner bool) {
	var offArr [MaxLabels]uint8
	offs := labelOffsetsInto(offArr[:0], n)
	lower := lowerInto(w.lower[:], n)
	wild := w.owner[0] == 1 && w.owner[1] == '*'
	k := 0
	code := -1
	if compress && !isOwner {
		// Only the labels n shares with w.suf may be replaced by a
		// pointer; the suffix is found in the owner or the block.
		k = len(offs) - commonLabels(lower, w.suf)
		if k < len(offs) {
			suf := lower[offs[k]:]
			if i, ok := w.ownerSuffix(suf); ok && !(i == 0 && wild) {
				code = CodeSuffix | i
			} else if r, ok := w.dict.get(suf); ok {
				code = CodeInternal | int(r)
			} else {
				k = len(offs)
			}
		}
		if k > 0 {
			// lower is scratch for the next name: keep a copy.
			w.suf = w.sufBuf[:copy(w.sufBuf[:], lower)]
		}
	} else if compress {
		for ; k < len(offs); k++ {
			suf := lower[offs[k]:]
			if i, ok := w.ownerSuffix(suf); ok && !(i == 0 && wild && !isOwner) {
				code = CodeSuffix | i
				break
			}
			if r, ok := w.dict.get(suf); ok {
				code = CodeInternal | int(r)
				break
			}
		}
	} else {
		k = len(offs)
	}
	base := w.rel()
	for j := 0; j < k && !w.frozen; j++ {
		if r := base + int(offs[j]); r < MaxInternal {
			w.dict.add(lower[offs[j]:], uint16(r))
		}
	}
	if code >= 0 {
		w.a.wire = append(w.a.wire, n[:offs[k]]...)
		w.patch = append(w.patch, uint16(w.rel()))
		w.a.wire = binary.BigEndian.AppendUint16(w.a.wire, uint16(code))
		return
	}
	w.a.wire = append(w.a.wire, n...)
}

// commonLabels counts the trailing labels two lowercase wire names share.
func commonLabels(a, b []byte) int {
	var aa, ba [MaxLabels]uint8
	ao, bo := labelOffsetsInto(aa[:0], a), labelOffsetsInto(ba[:0], b)
	n := 0
	for n < len(ao) && n < len(bo) && bytes.Equal(a[ao[len(ao)-1-n]:], b[bo[len(bo)-1-n]:]) {
		n++
	}
	return n
}

// compressedRdata reports the types whose rdata names may be compressed
// (RFC 3597 section 4) and so are written through name().
func compressedRdata(t uint16) bool {
	switch t {
	case dns.TypeNS, dns.TypeCNAME, dns.TypePTR, dns.TypeMX, dns.TypeSOA:
		return true
	}
	return false
}

// nameLen is the length of the uncompressed wire name at the start of p.
func nameLen(p []byte) int {
	i := 0
	for p[i] != 0 {
		i += int(p[i]) + 1
	}
	return i + 1
}

// rr writes one record.
func (w *blockWriter) rr(owner []byte, typ uint16, ttl uint32, rd []byte) {
	z := w.a
	// Knot DNS writes the root owner without its compression hint, which
	// sets the compared name back to the query name (here the owner).
	if len(owner) == 1 {
		w.suf = w.owner
	}
	w.name(owner, true, true)
	z.wire = binary.BigEndian.AppendUint16(z.wire, typ)
	z.wire = binary.BigEndian.AppendUint16(z.wire, dns.ClassINET)
	z.wire = binary.BigEndian.AppendUint32(z.wire, ttl)
	lenAt := len(z.wire)
	z.wire = append(z.wire, 0, 0)
	if compressedRdata(typ) {
		switch typ {
		case dns.TypeMX:
			z.wire = append(z.wire, rd[:2]...)
			w.name(rd[2:], true, false)
		case dns.TypeSOA:
			m := nameLen(rd)
			w.name(rd[:m], true, false)
			r := nameLen(rd[m:])
			w.name(rd[m:m+r], true, false)
			z.wire = append(z.wire, rd[m+r:]...)
		default:
			w.name(rd, true, false)
		}
	} else {
		// Names inside other rdata are written as they are; later names
		// may still point into them when they are plain uncompressed
		// names at known places.
		switch typ {
		case dns.TypeDNAME, dns.TypeSRV:
			at := w.rel()
			if typ == dns.TypeSRV {
				at += 6
			}
			z.wire = append(z.wire, rd...)
			w.remember(rd[at-w.rel()+len(rd):], at)
		default:
			z.wire = append(z.wire, rd...)
		}
	}
	rdlen := len(z.wire) - lenAt - 2
	binary.BigEndian.PutUint16(z.wire[lenAt:], uint16(rdlen))
}

// remember makes the uncompressed name n, written at block offset at, a
// compression target for later names.
func (w *blockWriter) remember(n []byte, at int) {
	if w.frozen {
		return
	}
	var offArr [MaxLabels]uint8
	lower := lowerInto(w.lower[:], n)
	for _, o := range labelOffsetsInto(offArr[:0], n) {
		if r := at + int(o); r < MaxInternal {
			w.dict.add(lower[o:], uint16(r))
		}
	}
}

// finish records the block and returns its index. sigNodes, when not
// nil, holds per additional group the node whose address RRsets it holds
// if they are signed, else -1 (see additional).
func (w *blockWriter) finish(count int, base int, trims []Trim, req int, sigNodes []int32) (uint32, error) {
	z := w.a
	total := w.rel()
	if total > 65535 {
		return None, &LoadError{Msg: "RRset of " + wireString(w.owner) + " is too large (over 65535 bytes)"}
	}
	blk := Block{Off: uint32(w.start), Patch: uint32(len(z.patches)), Trim: uint32(len(z.trims)),
		Len: uint16(total), Base: uint16(base), NPatch: uint16(len(w.patch)), Count: uint16(count),
		NTrim: uint16(len(trims)), Req: uint16(req), Labels: uint8(w.labels)}
	wire := z.wire[w.start : w.start+total]
	blk.Sum = onesSum(wire[:base])
	z.patches = append(z.patches, w.patch...)
	z.trims = append(z.trims, trims...)
	if len(trims) > 0 {
		z.trims = append(z.trims, Trim{End: onesSum(wire[base:])})
	}
	if slices.ContainsFunc(sigNodes, func(n int32) bool { return n >= 0 }) {
		// The RRSIG blocks of the groups' addresses may not be built
		// yet (their nodes may come later): the slots are reserved
		// here and filled once every RRset has its blocks
		// (resolveAddSigs).
		blk.Flags |= BlockAddSigs
		for _, n := range sigNodes {
			if n >= 0 {
				w.b.sigFix = append(w.b.sigFix, sigFix{at: uint32(len(z.trims)), node: n})
			}
			z.trims = append(z.trims, sigTrim(None), sigTrim(None))
		}
	}
	z.blocks = append(z.blocks, blk)
	return uint32(len(z.blocks) - 1), nil
}

// sigFix is a pair of additional-signature slots to fill: the A and AAAA
// RRSIG blocks of node, at Trims()[at] and [at+1].
type sigFix struct {
	at   uint32
	node int32
}

// resolveAddSigs fills the additional-signature slots that finish
// reserved, now that every RRset has its blocks.
func (b *builder) resolveAddSigs() {
	z := b.z
	for _, f := range b.sigFix {
		nd := &z.nodes[f.node]
		for k, t := range [2]uint16{dns.TypeA, dns.TypeAAAA} {
			if si := z.SetOf(nd, t); si != None {
				z.trims[f.at+uint32(k)] = sigTrim(z.sets[si].Sig)
			}
		}
	}
	b.sigFix = nil
}

// signedAddresses reports whether node n holds RRSIGs over its A or AAAA
// records that the table keeps: those of authoritative data, not glue
// (nodes below a zone cut get no blocks, signatures included).
func (b *builder) signedAddresses(n int32) bool {
	if b.z.nodes[n].Flags&FlagOccluded != 0 {
		return false
	}
	if b.addrs != nil {
		// The records of a zone whose records are released may be
		// gone (see releasable).
		return b.addrs.signed[n/64]&(1<<(n%64)) != 0
	}
	for _, r := range b.recsOf(n) {
		if r.typ == dns.TypeRRSIG && (r.covered == dns.TypeA || r.covered == dns.TypeAAAA) {
			return true
		}
	}
	return false
}

// plainBlock prepares the records of one RRset (or RRSIG group) with no
// additional part. ttl, when not 0, replaces the records' TTL.
func (b *builder) plainBlock(owner []byte, recs []rec, ttl uint32) (uint32, error) {
	w := b.newWriter(owner)
	for i := range recs {
		t := recs[i].ttl
		if ttl != 0 {
			t = ttl
		}
		w.rr(owner, recs[i].typ, t, b.rdataOf(&recs[i]))
	}
	return w.finish(len(recs), w.rel(), nil, 0, nil)
}

// targetOf returns the lowercase name in an NS, MX or SRV rdata, written
// into dst (at least 255 bytes), or nil for other types.
func targetOf(dst []byte, typ uint16, rd []byte) []byte {
	switch typ {
	case dns.TypeNS:
		return lowerInto(dst, rd)
	case dns.TypeMX:
		return lowerInto(dst, rd[2:])
	case dns.TypeSRV:
		return lowerInto(dst, rd[6:])
	}
	return nil
}

// rrsetBlock prepares an RRset as an answer; NS, MX and SRV RRsets carry
// the addresses of their targets found in the zone as additional records.
func (b *builder) rrsetBlock(node int32, set []rec) (uint32, error) {
	owner := b.name(node)
	w := b.newWriter(owner)
	for i := range set {
		w.rr(owner, set[i].typ, set[i].ttl, b.rdataOf(&set[i]))
	}
	base := w.rel()
	// The builder's trim scratch is reused: finish copies the trims.
	trims := b.trimBuf[:0]
	b.sigNodes = b.sigNodes[:0]
	defer func() { b.trimBuf = trims[:0] }()
	w.frozen = true
	switch set[0].typ {
	case dns.TypeNS, dns.TypeMX, dns.TypeSRV:
		b.refOwner = hashName(owner)
	}
	switch set[0].typ {
	case dns.TypeNS:
		// Name servers that are glue (at or below a zone cut) come
		// first, then those with authoritative addresses, as Knot DNS
		// orders them; each group is optional outside a referral.
		b.additional(w, set, b.isGlue, -1, &trims)
		b.additional(w, set, func(t []byte) bool { return !b.isGlue(t) }, -1, &trims)
	case dns.TypeMX, dns.TypeSRV:
		b.additional(w, set, nil, -1, &trims)
	}
	return w.finish(len(set), base, trims, 0, b.sigNodes)
}

// isGlue reports whether the name is a node at or below a zone cut of the
// zone: its addresses are glue, not authoritative data.
func (b *builder) isGlue(name []byte) bool {
	n, ok := b.lookup(name)
	return ok && b.z.nodes[n].Flags&(FlagDelegation|FlagOccluded) != 0
}

// additional appends, for each distinct target of set that want accepts
// (all when want is nil), its A and AAAA records as one group, and a Trim
// for the group to trims. above, when not -1, is a node every target
// lies below (see addresses).
func (b *builder) additional(w *blockWriter, set []rec, want func(t []byte) bool, above int32, trims *[]Trim) {
	// The targets already considered; one table reused for every call.
	if b.seen == nil {
		b.seen = newNameTable()
	}
	seen := b.seen
	seen.reset()
	total := 0
	if len(*trims) > 0 {
		total = int((*trims)[len(*trims)-1].Count)
	}
	for i := range set {
		// b.tgt is free until the next target: addresses writes from
		// it into the block before this loop comes round again.
		t := targetOf(b.tgt[:], set[i].typ, b.rdataOf(&set[i]))
		if t == nil || !seen.add(t, 0) {
			continue
		}
		if want != nil && !want(t) {
			continue
		}
		n, node := b.addresses(w, t, above)
		if n == 0 {
			continue
		}
		total += n
		*trims = append(*trims, Trim{End: uint16(w.rel()), Count: uint16(total)})
		if !b.signedAddresses(node) {
			node = -1
		}
		b.sigNodes = append(b.sigNodes, node)
	}
}

// addresses writes the A and AAAA records of name, if the zone has it or a
// wildcard that covers it, and returns how many were written and the node
// they came from. above, when not -1, is a node name lies below (a
// delegation, for its in-bailiwick name servers).
func (b *builder) addresses(w *blockWriter, name []byte, above int32) (int, int32) {
	// A name outside the zone is neither a node nor under a wildcard; a
	// big zone's out-of-zone name servers are spared the lookup.
	if !isSubdomain(name, b.apex) {
		return 0, -1
	}
	h := hashName(name)
	b.ref(h)
	n, ok, sure := b.findBelow(name, above)
	if !sure {
		n, ok = b.lookupHash(name, h)
	}
	if !ok {
		if n, ok = b.wildcardFor(name); !ok {
			return 0, -1
		}
	}
	written := 0
	if b.addrs != nil {
		// The records themselves may be released (see buildrelease.go).
		for _, r := range b.addrs.of(n) {
			w.rr(name, r.typ, r.ttl, b.addrs.rdata(&r))
			written++
		}
		return written, n
	}
	for _, r := range b.recsOf(n) {
		if r.typ == dns.TypeA || r.typ == dns.TypeAAAA {
			w.rr(name, r.typ, r.ttl, b.rdataOf(&r))
			written++
		}
	}
	return written, n
}

// findBelow looks for name among the first nodes after above, a node
// name lies below: in canonical order a node's descendants follow it, so
// name is a node only if it is one of them. sure is false when the search
// gave up (above is -1, or has too many descendants before name) or the
// builder's nodes are not the whole zone's in that order (Apply's partial
// builders): the caller then looks name up in the index. The nodes after
// above lie next to it in memory, where the index's slot for name is
// anywhere in tens of megabytes: for a million delegations' glue the
// lookups were a third of the blocks' time.
func (b *builder) findBelow(name []byte, above int32) (n int32, ok, sure bool) {
	if above < 0 || !b.runs.ranked {
		return 0, false, false
	}
	owner := b.name(above)
	if bytes.Equal(owner, name) {
		return above, true, true
	}
	for k := above + 1; k < int32(len(b.z.nodes)) && k <= above+findBelowMax; k++ {
		w := b.name(k)
		if bytes.Equal(w, name) {
			return k, true, true
		}
		if !isSubdomain(w, owner) {
			return 0, false, true
		}
	}
	return 0, false, above+findBelowMax >= int32(len(b.z.nodes))-1
}

// findBelowMax is how many descendants findBelow reads before it leaves
// the search to the index (a variable for the tests).
var findBelowMax int32 = 16

// wildcardFor returns the wildcard node that would synthesize the missing
// name, which must be in the zone: the "*" child of its closest existing
// ancestor. Each name it looks up is recorded as a reference of the block
// being written (see builder.refs): a name added or removed there, or the
// wildcard's addresses changed, changes what the block holds.
func (b *builder) wildcardFor(name []byte) (int32, bool) {
	for w := name; len(w) > len(b.apex); {
		w = parentWire(w)
		h := hashName(w)
		b.ref(h)
		if _, ok := b.lookupHash(w, h); ok {
			// w is at least one label shorter than a name of at most
			// 255 bytes, so "*" and w fit the stack buffer.
			var buf [256]byte
			buf[0], buf[1] = 1, '*'
			s := append(buf[:2], w...)
			h = hashName(s)
			b.ref(h)
			return b.lookupHash(s, h)
		}
	}
	return 0, false
}

// ref records that the NS, MX or SRV block being written, whose owner's
// hash is b.refOwner, read the addresses of the name whose hash is h, or
// looked it up and found none (see updState.refBase).
func (b *builder) ref(h uint32) {
	b.refs = append(b.refs, uint64(h)<<32|uint64(b.refOwner))
}

// recsOf returns the records of node n, from the per-node runs the build
// records (b.first, b.count) once the records are sorted, before any block
// is prepared.
func (b *builder) recsOf(n int32) []rec {
	if b.first[n] < 0 {
		return nil
	}
	return b.recs[b.first[n] : b.first[n]+b.count[n]]
}

// referralBlock prepares the referral at a zone cut: the NS RRset for the
// authority section, then glue: the addresses of in-domain name servers
// first (they must fit, RFC 9471), then those of other name servers the zone
// holds (sibling glue, dropped first when space runs out).
func (b *builder) referralBlock(node int32, set []rec) (uint32, error) {
	owner := b.name(node)
	w := b.newWriter(owner)
	for i := range set {
		w.rr(owner, set[i].typ, set[i].ttl, b.rdataOf(&set[i]))
	}
	base := w.rel()
	trims := b.trimBuf[:0]
	b.sigNodes = b.sigNodes[:0]
	defer func() { b.trimBuf = trims[:0] }()
	w.frozen = true
	b.refOwner = hashName(owner)
	b.additional(w, set, func(t []byte) bool { return isSubdomain(t, owner) }, node, &trims)
	req := len(trims)
	b.additional(w, set, func(t []byte) bool { return !isSubdomain(t, owner) }, -1, &trims)
	return w.finish(len(set), base, trims, req, b.sigNodes)
}
