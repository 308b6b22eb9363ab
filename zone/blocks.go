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
}

func (b *builder) newWriter(owner []byte) *blockWriter {
	w := &blockWriter{z: b.z, start: len(b.z.wire), owner: owner, labels: countLabels(owner),
		sfx: map[string]int{}, dict: map[string]uint16{}}
	for i, o := range labelOffsets(owner) {
		w.sfx[string(owner[o:])] = i
	}
	return w
}

func (w *blockWriter) rel() int { return len(w.z.wire) - w.start }

// name writes a wire-format name. With compress set, the longest suffix
// already available (in the owner name or earlier in the block) becomes a
// pointer code. isOwner says the name is a record's owner; in a wildcard
// block only owners may refer to the whole owner name (which will be the
// query name), never rdata, whose "*" must stay literal.
func (w *blockWriter) name(n []byte, compress, isOwner bool) {
	offs := labelOffsets(n)
	lower := lowerWire(n)
	wild := w.owner[0] == 1 && w.owner[1] == '*'
	k := 0
	code := -1
	if compress {
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
	for j := 0; j < k; j++ {
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
	switch set[0].typ {
	case dns.TypeNS, dns.TypeMX, dns.TypeSRV:
		trims = b.additional(w, set, nil, &trims)
	}
	if w.err != nil {
		return None, w.err
	}
	return w.finish(len(set), base, trims, 0)
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

// addresses writes the A and AAAA records of name, if the zone has it, and
// returns how many were written.
func (b *builder) addresses(w *blockWriter, name []byte) int {
	n, ok := b.nameIdx[string(name)]
	if !ok {
		return 0
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
	b.additional(w, set, func(t []byte) bool { return isSubdomain(t, owner) }, &trims)
	req := len(trims)
	b.additional(w, set, func(t []byte) bool { return !isSubdomain(t, owner) }, &trims)
	return w.finish(len(set), base, trims, req)
}
