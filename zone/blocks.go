package zone

import (
	"encoding/binary"

	"github.com/miekg/dns"
)

// blockWriter prepares one block: records written into the zone's wire
// arena with names compressed against the owner name's suffixes (resolved
// when the block is copied into a message) and against names earlier in
// the block.
type blockWriter struct {
	z      *Zone
	start  int
	owner  []byte // lowercase wire owner the suffix codes refer to
	labels int
	sfx    map[string]int    // lowercase suffix of the owner -> labels stripped
	dict   map[string]uint16 // lowercase suffix written in this block -> offset
	patch  []uint16
	err    error
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
}

func (b *builder) newWriter(owner []byte) *blockWriter {
	w := &blockWriter{z: b.z, start: len(b.z.wire), owner: owner, labels: countLabels(owner),
		sfx: map[string]int{}, dict: map[string]uint16{}, suf: owner}
	for i, o := range labelOffsets(owner) {
		w.sfx[string(owner[o:])] = i
	}
	return w
}

func (w *blockWriter) rel() int { return len(w.z.wire) - w.start }

// name writes a wire-format name. With compress set, an owner's longest
// suffix already available (in the owner name or earlier in the block)
// becomes a pointer code; an rdata name is compressed only as far as it
// shares trailing labels with w.suf. isOwner says the name is a record's
// owner; in a wildcard block only owners may refer to the whole owner
// name (which will be the query name), never rdata, whose "*" must stay
// literal.
func (w *blockWriter) name(n []byte, compress, isOwner bool) {
	offs := labelOffsets(n)
	lower := lowerWire(n)
	wild := w.owner[0] == 1 && w.owner[1] == '*'
	k := 0
	code := -1
	if compress && !isOwner {
		// Only the labels n shares with w.suf may be replaced by a
		// pointer; the suffix is found in the owner or the block.
		k = len(offs) - commonLabels(lower, w.suf)
		if k < len(offs) {
			suf := string(lower[offs[k]:])
			if i, ok := w.sfx[suf]; ok && !(i == 0 && wild) {
				code = CodeSuffix | i
			} else if r, ok := w.dict[suf]; ok {
				code = CodeInternal | int(r)
			} else {
				k = len(offs)
			}
		}
		if k > 0 {
			w.suf = lower
		}
	} else if compress {
		for ; k < len(offs); k++ {
			suf := string(lower[offs[k]:])
			if i, ok := w.sfx[suf]; ok && !(i == 0 && wild && !isOwner) {
				code = CodeSuffix | i
				break
			}
			if r, ok := w.dict[suf]; ok {
				code = CodeInternal | int(r)
				break
			}
		}
	} else {
		k = len(offs)
	}
	base := w.rel()
	for j := 0; j < k && !w.frozen; j++ {
		if r := base + offs[j]; r < MaxInternal {
			if _, ok := w.dict[string(lower[offs[j]:])]; !ok {
				w.dict[string(lower[offs[j]:])] = uint16(r)
			}
		}
	}
	if code >= 0 {
		w.z.wire = append(w.z.wire, n[:offs[k]]...)
		w.patch = append(w.patch, uint16(w.rel()))
		w.z.wire = binary.BigEndian.AppendUint16(w.z.wire, uint16(code))
		return
	}
	w.z.wire = append(w.z.wire, n...)
}

// commonLabels counts the trailing labels two lowercase wire names share.
func commonLabels(a, b []byte) int {
	ao, bo := labelOffsets(a), labelOffsets(b)
	n := 0
	for n < len(ao) && n < len(bo) && string(a[ao[len(ao)-1-n]:]) == string(b[bo[len(bo)-1-n]:]) {
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
	z := w.z
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
	lower := lowerWire(n)
	for _, o := range labelOffsets(n) {
		if r := at + o; r < MaxInternal {
			if _, ok := w.dict[string(lower[o:])]; !ok {
				w.dict[string(lower[o:])] = uint16(r)
			}
		}
	}
}

// finish records the block and returns its index.
func (w *blockWriter) finish(count int, base int, trims []Trim, req int) (uint32, error) {
	z := w.z
	total := w.rel()
	if total > 65535 {
		return None, &LoadError{Msg: "RRset of " + wireString(w.owner) + " is too large (over 65535 bytes)"}
	}
	blk := Block{Off: uint32(w.start), Patch: uint32(len(z.patches)), Trim: uint32(len(z.trims)),
		Len: uint16(total), Base: uint16(base), NPatch: uint16(len(w.patch)), Count: uint16(count),
		NTrim: uint16(len(trims)), Req: uint16(req), Labels: uint8(w.labels)}
	z.patches = append(z.patches, w.patch...)
	z.trims = append(z.trims, trims...)
	z.blocks = append(z.blocks, blk)
	return uint32(len(z.blocks) - 1), nil
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
	return w.finish(len(recs), w.rel(), nil, 0)
}

// targetOf returns the lowercase name in an NS, MX or SRV rdata.
func targetOf(typ uint16, rd []byte) []byte {
	switch typ {
	case dns.TypeNS:
		return lowerWire(rd)
	case dns.TypeMX:
		return lowerWire(rd[2:])
	case dns.TypeSRV:
		return lowerWire(rd[6:])
	}
	return nil
}

// rrsetBlock prepares an RRset as an answer; NS, MX and SRV RRsets carry
// the addresses of their targets found in the zone as additional records.
func (b *builder) rrsetBlock(node int32, set []rec) (uint32, error) {
	owner := b.names[node]
	w := b.newWriter(owner)
	for i := range set {
		w.rr(owner, set[i].typ, set[i].ttl, b.rdataOf(&set[i]))
	}
	base := w.rel()
	var trims []Trim
	w.frozen = true
	switch set[0].typ {
	case dns.TypeNS:
		// Name servers that are glue (at or below a zone cut) come
		// first, then those with authoritative addresses, as Knot DNS
		// orders them; each group is optional outside a referral.
		b.additional(w, set, b.isGlue, &trims)
		b.additional(w, set, func(t []byte) bool { return !b.isGlue(t) }, &trims)
	case dns.TypeMX, dns.TypeSRV:
		b.additional(w, set, nil, &trims)
	}
	if w.err != nil {
		return None, w.err
	}
	return w.finish(len(set), base, trims, 0)
}

// isGlue reports whether the name is a node at or below a zone cut of the
// zone: its addresses are glue, not authoritative data.
func (b *builder) isGlue(name []byte) bool {
	n, ok := b.nameIdx[string(name)]
	return ok && b.z.nodes[n].Flags&(FlagDelegation|FlagOccluded) != 0
}

// additional appends, for each distinct target of set that want accepts
// (all when want is nil), its A and AAAA records as one group.
func (b *builder) additional(w *blockWriter, set []rec, want func(t []byte) bool, trims *[]Trim) []Trim {
	seen := map[string]bool{}
	total := 0
	if len(*trims) > 0 {
		total = int((*trims)[len(*trims)-1].Count)
	}
	for i := range set {
		t := targetOf(set[i].typ, b.rdataOf(&set[i]))
		if t == nil || seen[string(t)] {
			continue
		}
		seen[string(t)] = true
		if want != nil && !want(t) {
			continue
		}
		n := b.addresses(w, t)
		if n == 0 {
			continue
		}
		total += n
		*trims = append(*trims, Trim{End: uint16(w.rel()), Count: uint16(total)})
	}
	return *trims
}

// addresses writes the A and AAAA records of name, if the zone has it or a
// wildcard that covers it, and returns how many were written.
func (b *builder) addresses(w *blockWriter, name []byte) int {
	n, ok := b.nameIdx[string(name)]
	if !ok {
		if n, ok = b.wildcardFor(name); !ok {
			return 0
		}
	}
	written := 0
	for _, r := range b.recsOf(n) {
		if r.typ == dns.TypeA || r.typ == dns.TypeAAAA {
			w.rr(name, r.typ, r.ttl, b.rdataOf(&r))
			written++
		}
	}
	return written
}

// wildcardFor returns the wildcard node that would synthesize the missing
// name: the "*" child of its closest existing ancestor in the zone.
func (b *builder) wildcardFor(name []byte) (int32, bool) {
	if !isSubdomain(name, b.apex) {
		return 0, false
	}
	for w := name; len(w) > len(b.apex); {
		w = parentWire(w)
		if _, ok := b.nameIdx[string(w)]; ok {
			star := append([]byte{1, '*'}, w...)
			n, ok := b.nameIdx[string(star)]
			return n, ok
		}
	}
	return 0, false
}

// recsOf returns the records of builder node n (records are sorted by node).
func (b *builder) recsOf(n int32) []rec {
	lo, hi := 0, len(b.recs)
	for lo < hi {
		m := (lo + hi) / 2
		if b.recs[m].node < n {
			lo = m + 1
		} else {
			hi = m
		}
	}
	e := lo
	for e < len(b.recs) && b.recs[e].node == n {
		e++
	}
	return b.recs[lo:e]
}

// referralBlock prepares the referral at a zone cut: the NS RRset for the
// authority section, then glue: the addresses of in-domain name servers
// first (they must fit, RFC 9471), then those of other name servers the zone
// holds (sibling glue, dropped first when space runs out).
func (b *builder) referralBlock(node int32, set []rec) (uint32, error) {
	owner := b.names[node]
	w := b.newWriter(owner)
	for i := range set {
		w.rr(owner, set[i].typ, set[i].ttl, b.rdataOf(&set[i]))
	}
	base := w.rel()
	var trims []Trim
	w.frozen = true
	b.additional(w, set, func(t []byte) bool { return isSubdomain(t, owner) }, &trims)
	req := len(trims)
	b.additional(w, set, func(t []byte) bool { return !isSubdomain(t, owner) }, &trims)
	return w.finish(len(set), base, trims, req)
}
