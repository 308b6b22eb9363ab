package dataplane

import (
	"github.com/ringdns/ringdns/internal/onessum"
	"github.com/ringdns/ringdns/zone"
)

// maxProofs bounds the proof blocks of one reply: three for an NSEC3 name
// error, two for a wildcard NODATA, one per wildcard met in a CNAME chain.
const maxProofs = 16

// Authenticated denial of existence (RFC 4035 section 3.1.3, RFC 5155
// section 7.2). The zone prepares each NSEC and NSEC3 RRset with its
// RRSIGs as one proof block (zone/dnssec.go); the functions here choose
// the blocks a reply needs, as Knot DNS chooses them, and queue them for
// the end of the authority section: a wildcard met early in a CNAME chain
// is proved after the last answer record. Every proof is mandatory: one
// that does not fit truncates the reply like any other authority record.

// proving reports whether denial proofs go into this reply: the client
// asked for DNSSEC records and the zone has an NSEC or NSEC3 chain.
func (r *reply) proving(z *zone.Zone) bool {
	return r.do && z.Denial() != zone.DenialNone
}

// prove queues proof block b, once.
func (r *reply) prove(b uint32) {
	if b == zone.None {
		return
	}
	for _, p := range r.proofs[:r.nproofs] {
		if p == b {
			return
		}
	}
	if r.nproofs < len(r.proofs) {
		r.proofs[r.nproofs] = b
		r.nproofs++
	}
}

// flushProofs writes the queued proofs into the authority section.
func (r *reply) flushProofs(z *zone.Zone) {
	if r.nproved == r.nproofs {
		return
	}
	// The proofs' owners are compressed against the query name, which
	// sits uncompressed after the header.
	var q qname
	for p := hdrLen; r.buf[p] != 0 && q.labels < len(q.pos); p += int(r.buf[p]) + 1 {
		q.pos[q.labels] = uint16(p)
		q.labels++
	}
	for r.nproved < r.nproofs {
		if !r.writeProof(z, r.proofs[r.nproved], &q) {
			return
		}
		r.nproved++
	}
}

// qname locates the labels of the query name in the message.
type qname struct {
	pos    [zone.MaxLabels]uint16
	labels int
}

// writeProof copies proof block b into the authority section. The block's
// owner is its literal labels followed by a code for the zone's apex (or
// the root label in the root zone). It is written as Knot DNS writes an
// owner name with no compression hint: the labels it shares at its end
// with the query name become a pointer into the question, the others are
// written out. The rest of the block follows: records whose owner points
// to the first record's owner, and rdata that is never compressed.
func (r *reply) writeProof(z *zone.Zone, b uint32, q *qname) bool {
	if r.full || r.bad {
		return false
	}
	blk := &z.ProofBlocks()[b]
	src := z.ProofWire()[blk.Off : blk.Off+uint32(blk.Len)]
	// The owner's literal labels, and where it ends.
	var lit [zone.MaxLabels]uint8
	nlit, p := 0, 0
	for src[p] != 0 && src[p] < 0xC0 && nlit < len(lit) && p < 255 {
		lit[nlit] = uint8(p)
		nlit++
		p += int(src[p]) + 1
	}
	matched := 0
	ownerEnd := p + 1
	if src[p] != 0 {
		// The apex code: the apex ends the query name too.
		ownerEnd = p + 2
		matched = int(blk.Labels)
	}
	keep := nlit
	for keep > 0 && matched < q.labels {
		o := int(lit[keep-1])
		if !labelEqualFold(src[o:], r.buf[q.pos[q.labels-1-matched]:]) {
			break
		}
		keep--
		matched++
	}
	// lb is the length of the labels written out.
	lb := p
	if keep < nlit {
		lb = int(lit[keep])
	}
	nw := lb + 1
	if matched > 0 {
		nw = lb + 2
	}
	rest := src[ownerEnd:]
	at := r.n
	if at+nw+len(rest) > len(r.buf) {
		r.full = true
		return false
	}
	buf := r.buf
	copy(buf[at:at+lb], src[:lb])
	if matched > 0 {
		v := q.pos[q.labels-matched]
		put16(buf[at+lb:], 0xC000|v)
	} else {
		buf[at+lb] = 0
	}
	copy(buf[at+nw:], rest)
	if matched == 0 && nw == ownerEnd {
		// The owner is written as stored: the block's sum is the sum.
		r.acc[at&1] += uint64(blk.Sum)
	} else {
		// The owner as written is its kept labels and a pointer; the
		// rest is the block's sum less that of the owner as stored,
		// placed where the block would start if the rest kept its
		// offset in it (ones' complement: subtracting is adding the
		// complement). The sums read the zone's bytes, not the ones
		// just stored in the message.
		r.acc[at&1] += uint64(onessum.Sum(src[:lb], 0))
		r.acc[(at+lb)&1] += 0xC000 | uint64(q.pos[q.labels-matched])
		r.acc[(at+nw-ownerEnd)&1] += uint64(blk.Sum) + uint64(^uint16(onessum.Sum(src[:ownerEnd], 0)))
	}
	delta := nw - ownerEnd
	for _, pp := range z.ProofPatches()[blk.Patch : blk.Patch+uint32(blk.NPatch)] {
		if int(pp) < ownerEnd {
			continue
		}
		w := at + int(pp) + delta
		code := be16(buf[w:])
		var v int
		switch rel := int(code & 0x1FFF); {
		case code >= zone.CodeSuffix:
			j := q.labels - int(blk.Labels) + rel
			if j < 0 || j >= q.labels {
				r.bad = true
				return false
			}
			v = int(q.pos[j])
		case rel == 0 || rel < lb:
			// The owner, or one of its labels that were kept.
			v = at + rel
		case rel >= ownerEnd:
			v = at + rel + delta
		default:
			r.bad = true
			return false
		}
		if v > 0x3FFF {
			r.bad = true
			return false
		}
		put16(buf[w:], 0xC000|uint16(v))
		r.repatch(w, code, 0xC000|uint16(v))
	}
	r.n += nw + len(rest)
	r.ns += blk.Count
	return true
}

// labelEqualFold reports whether the labels at the start of a (lowercase)
// and b are equal, ASCII case ignored.
func labelEqualFold(a, b []byte) bool {
	l := int(a[0])
	if int(b[0]) != l {
		return false
	}
	for i := 1; i <= l; i++ {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 32
		}
		if a[i] != c {
			return false
		}
	}
	return true
}

// label returns the bytes of label i of the name, without its length.
func (nm *name) label(i int) []byte {
	o := int(nm.off[i])
	return nm.b[o+1 : o+1+int(nm.b[o])]
}

// below returns the last node, in canonical order, before the name made of
// label (its bytes) under node ce, which must not exist: ce itself when no
// descendant of ce sorts before it. Every name between a missing name and
// its missing descendants would descend from it too, so the result also
// precedes any name below the missing one. The nodes after ce are its
// descendants then names that sort after them all, so a binary search that
// compares only the label of each descendant just below ce finds it.
//
// A node with many children (the apex of a TLD or the root, which every
// NXDOMAIN reaches) has them indexed with the first bytes of their labels
// (zone.WideChildren): the search then runs over those keys, which lie
// together in memory, and reads a child's name only when the keys tie.
func below(z *zone.Zone, ce uint32, label []byte) uint32 {
	nodes := z.Nodes()
	names := z.Names()
	if keys, kids, end, ok := z.WideChildren(ce); ok {
		key := zone.LabelKey(label)
		// lo becomes the number of children that sort before label.
		lo, hi := 0, len(keys)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			k := keys[m]
			if k < key || k == key && childBefore(names, &nodes[kids[m]], label) {
				lo = m + 1
			} else {
				hi = m
			}
		}
		switch {
		case lo == 0:
			return ce
		case lo < len(kids):
			return kids[lo] - 1
		default:
			return end - 1
		}
	}
	return belowSearch(z, ce, label)
}

// belowSearch is below by a binary search over the nodes that follow ce.
func belowSearch(z *zone.Zone, ce uint32, label []byte) uint32 {
	nodes := z.Nodes()
	names := z.Names()
	c := &nodes[ce]
	cname := string(names[c.Name : c.Name+uint32(c.Len)])
	before := func(m int) bool {
		nd := &nodes[m]
		if nd.Labels <= c.Labels {
			return false
		}
		w := names[nd.Name : nd.Name+uint32(nd.Len)]
		p := 0
		for i := int(nd.Labels-c.Labels) - 1; i > 0; i-- {
			p += int(w[p]) + 1
		}
		l := int(w[p])
		return string(w[p+1+l:]) == cname && string(w[p+1:p+1+l]) < string(label)
	}
	lo, hi := int(ce)+1, len(nodes)
	// Most names sort after the first name below ce ("*", the wildcard
	// label, sorts before nearly all): one comparison settles them.
	if lo == hi || !before(lo) {
		return ce
	}
	lo++
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if before(m) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return uint32(lo - 1)
}

// childBefore reports whether the first label of node nd sorts before label.
func childBefore(names []byte, nd *zone.Node, label []byte) bool {
	w := names[nd.Name : nd.Name+uint32(nd.Len)]
	return string(w[1:1+int(w[0])]) < string(label)
}

// denyName adds the proof that nm does not exist (RFC 4035 section
// 3.1.3.2, RFC 5155 section 7.2.2): nm's label k starts the next closer
// name, and ce, the name after it, is the closest encloser.
func (r *reply) denyName(z *zone.Zone, nm *name, k int, ce uint32) {
	switch z.Denial() {
	case zone.DenialNSEC:
		// The NSEC covering the name, then the one covering the
		// wildcard at the closest encloser (often the same).
		r.prove(z.NSECAt(below(z, ce, nm.label(k))))
		r.prove(z.NSECAt(below(z, ce, starLabel[1:])))
	case zone.DenialNSEC3:
		if pe := r.closestEncloser(z, nm, k+1, ce); pe != zone.None {
			r.prove(z.NSEC3Wild(pe))
		}
	}
}

// denyCloser adds the proof that no name closer than the wildcard matched
// nm (RFC 4035 section 3.1.3.3, RFC 5155 section 7.2.6): the NSEC or NSEC3
// covering the next closer name, nm's suffix at label k, below ce. When
// the query is for NSEC and that NSEC is the wildcard w's own, it is left
// out, as Knot DNS leaves out an RRset already in the reply (the answer
// holds it, expanded).
func (r *reply) denyCloser(z *zone.Zone, nm *name, k int, ce, w uint32, qNSEC bool) {
	switch z.Denial() {
	case zone.DenialNSEC:
		b := z.NSECAt(below(z, ce, nm.label(k)))
		if qNSEC && b == z.NSECAt(w) {
			return
		}
		r.prove(b)
	case zone.DenialNSEC3:
		r.prove(z.NSEC3Cover(nm.suffix(k)))
	}
}

// denyType adds the proof that node n, which matched nm (or, with wild, is
// the wildcard that did), has no RRset of the type asked for (RFC 4035
// section 3.1.3.1, RFC 5155 sections 7.2.3 to 7.2.5). An empty
// non-terminal has no NSEC: it is proved like a missing name, by the NSEC
// that covers it and the one covering the wildcard below it.
func (r *reply) denyType(z *zone.Zone, nm *name, n uint32, wild bool) {
	switch z.Denial() {
	case zone.DenialNSEC:
		r.prove(z.NSECAt(n))
		if z.Nodes()[n].Flags&zone.FlagEmpty != 0 {
			r.prove(z.NSECAt(below(z, n, starLabel[1:])))
		}
	case zone.DenialNSEC3:
		if m := z.NSEC3Match(n); m != zone.None {
			r.prove(m)
			if wild {
				// With the covering NSEC3 of the next closer name
				// (queued by denyCloser), the closest encloser proof.
				r.prove(z.NSEC3Match(r.wildCE))
			}
			return
		}
		// No NSEC3 of its own: an insecure delegation under opt-out
		// (a DS query). The closest encloser proof shows the opt-out
		// span (RFC 5155 section 7.2.4).
		if nm.labels > z.ApexLabels() {
			if p := z.Find(nm.suffix(1), nm.hs[1]); p != zone.None {
				r.closestEncloser(z, nm, 1, p)
			}
		}
	}
}

// denyDS adds the proof that the delegation at node cut, nm's suffix at
// label k, has no DS (RFC 4035 section 3.1.4, RFC 5155 section 7.2.7): its
// NSEC or NSEC3, or under opt-out the closest encloser proof.
func (r *reply) denyDS(z *zone.Zone, nm *name, k int, cut uint32) {
	switch z.Denial() {
	case zone.DenialNSEC:
		r.prove(z.NSECAt(cut))
	case zone.DenialNSEC3:
		if m := z.NSEC3Match(cut); m != zone.None {
			r.prove(m)
			return
		}
		if p := z.Find(nm.suffix(k+1), nm.hs[k+1]); p != zone.None {
			r.closestEncloser(z, nm, k+1, p)
		}
	}
}

// closestEncloser adds the NSEC3 closest encloser proof for nm (RFC 5155
// section 7.2.1) starting from node n, nm's suffix at label j: the closest
// provable encloser is n or the first ancestor with an NSEC3 (an empty
// non-terminal or delegation under opt-out has none). It adds the NSEC3
// matching that encloser and the one covering the next closer name, and
// returns the encloser (None when nothing is provable).
func (r *reply) closestEncloser(z *zone.Zone, nm *name, j int, n uint32) uint32 {
	top := nm.labels - z.ApexLabels()
	for z.NSEC3Match(n) == zone.None {
		if j >= top {
			return zone.None
		}
		j++
		if n = z.Find(nm.suffix(j), nm.hs[j]); n == zone.None {
			return zone.None
		}
	}
	r.prove(z.NSEC3Match(n))
	r.prove(z.NSEC3Cover(nm.suffix(j - 1)))
	return n
}
