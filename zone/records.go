package zone

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"

	"github.com/miekg/dns"
)

// Record is one resource record of a zone as served. Owner is the
// lowercase wire name; Data the RDATA in uncompressed wire format, in the
// canonical form of RFC 4034 section 6.2: the domain names inside the
// RDATA of the types that section lists (as RFC 6840 section 5.1 amends
// it: NSEC's next name keeps its case, RRSIG's signer is lowercased) are
// lowercase. Class is IN. A Record and its slices are valid only during
// the callback that receives it.
type Record struct {
	Owner []byte
	Type  uint16
	TTL   uint32
	Data  []byte
}

// RR returns the record in miekg/dns's form. It allocates.
func (r *Record) RR() (dns.RR, error) {
	buf := make([]byte, 0, len(r.Owner)+10+len(r.Data))
	buf = append(buf, r.Owner...)
	buf = binary.BigEndian.AppendUint16(buf, r.Type)
	buf = binary.BigEndian.AppendUint16(buf, dns.ClassINET)
	buf = binary.BigEndian.AppendUint32(buf, r.TTL)
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(r.Data)))
	buf = append(buf, r.Data...)
	rr, _, err := dns.UnpackRR(buf, 0)
	return rr, err
}

// kept holds the records of the zone that the table keeps no block for,
// because no answer is ever made of them: the RRsets of nodes below a zone
// cut or a DNAME (glue and occluded data; glue reaches answers only as the
// additional part of referral blocks, which hold addresses alone and only
// those of names the NS records name), and RRSIGs that cover no RRset of
// their node. Walk needs them: a transfer, a zone digest and a difference
// between versions are over every record. A node's kept records are one
// run of prepared records (two or more when they are over 65,535 bytes),
// written by the block writer, in node order; of the block only its place
// in the wire arena and its record count are kept, which is all Walk
// reads.
type kept struct {
	arenas
	sets []keptSet
}

// keptSet is one run of kept records: Count records at wire[Off:Off+Len],
// whose suffix codes refer to the owner name of node.
type keptSet struct {
	node  uint32
	off   uint32
	len   uint16
	count uint16
}

// keep prepares the records of node n that get no answer block (see
// kept).
func (b *builder) keep(n int32, recs []rec) error {
	z := b.z
	if z.kept == nil {
		z.kept = &kept{arenas: arenas{wire: make([]byte, 0, b.keptWire)}, sets: make([]keptSet, 0, b.keptSets)}
	}
	k := &z.kept.arenas
	start := len(k.wire)
	b.out = k
	blk, err := b.plainBlock(b.name(n), recs, 0)
	b.out = &z.arenas
	if err != nil {
		// A block holds at most 65,535 bytes: more records than that
		// are split.
		k.wire = k.wire[:start]
		if len(recs) > 1 {
			if err := b.keep(n, recs[:len(recs)/2]); err != nil {
				return err
			}
			return b.keep(n, recs[len(recs)/2:])
		}
		return b.locate(err, recs[0].ord)
	}
	bl := k.blocks[blk]
	z.kept.sets = append(z.kept.sets, keptSet{node: uint32(n), off: bl.Off, len: bl.Len, count: bl.Count})
	// Walk decodes the records themselves: the block, its patch
	// positions and trims are not needed.
	k.blocks, k.patches, k.trims = k.blocks[:0], k.patches[:0], k.trims[:0]
	return nil
}

// keptBytes is the memory held by the kept records.
func (z *Zone) keptBytes() int {
	if z.kept == nil {
		return 0
	}
	return len(z.kept.wire) + len(z.kept.sets)*12
}

// errBadBlock is a prepared block that does not decode; it means a defect
// in the builder, never a problem of the zone file.
var errBadBlock = errors.New("zone: a prepared block does not decode (a defect of package zone)")

// Walk calls fn for every record of the zone (class IN), including RRSIG,
// NSEC, NSEC3, glue and occluded data, in RFC 4034 section 6 canonical
// order: owner name (section 6.1; NSEC3 owners are names of the zone like
// any other, in their place), then type, then canonical RDATA (section
// 6.3). Records whose canonical forms are equal are one record (RFC 2181
// section 5). It stops at and returns fn's first error.
//
// The records are decoded from the prepared blocks, pointer codes
// expanded. Walk allocates buffers for one node's records, reused from
// node to node, and nothing per record.
func (z *Zone) Walk(fn func(r *Record) error) error {
	it := newWalkIter(z)
	for {
		r, err := it.next()
		if r == nil || err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
}

// walkIter yields a zone's records one at a time, in Walk's order, so
// that Diff can merge two zones' records. It decodes one node's records at
// a time into buffers reused from node to node.
type walkIter struct {
	z   *Zone
	rec Record
	// data holds the RDATA of the node's records in canonical form, one
	// after another; ents has an entry per record, ent the next one.
	data []byte
	ents []walkEnt
	ent  int
	node int // the next node to decode
	kept int // the next kept block
	// chain is the NSEC3 chain entry of the last NSEC3 owner decoded,
	// -1 before the first: the owners come in the chain's order (see
	// proofOf).
	chain    int
	chainEnd int // the end of chain's page
	cmp      func(a, b walkEnt) int
}

func newWalkIter(z *Zone) *walkIter {
	it := &walkIter{z: z, chain: -1}
	it.cmp = func(a, b walkEnt) int {
		if a.typ != b.typ {
			return int(a.typ) - int(b.typ)
		}
		return bytes.Compare(it.data[a.off:a.end], it.data[b.off:b.end])
	}
	return it
}

// next returns the next record, valid until the call after, or nil after
// the last.
func (it *walkIter) next() (*Record, error) {
	for it.ent >= len(it.ents) {
		if it.node >= len(it.z.nodes) {
			return nil, nil
		}
		if err := it.load(); err != nil {
			return nil, err
		}
	}
	e := it.ents[it.ent]
	it.ent++
	// Equal records are neighbours once sorted: one of them is
	// yielded.
	for it.ent < len(it.ents) && it.cmp(e, it.ents[it.ent]) == 0 {
		it.ent++
	}
	r := &it.rec
	r.Type, r.TTL, r.Data = e.typ, e.ttl, it.data[e.off:e.end]
	return r, nil
}

// load decodes the records of the next node.
func (it *walkIter) load() error {
	z := it.z
	n := it.node
	it.node++
	nd := &z.nodes[n]
	owner := z.names[nd.Name : nd.Name+uint32(nd.Len)]
	it.data, it.ents, it.ent = it.data[:0], it.ents[:0], 0
	for i := nd.Set0; i < nd.Set0+uint32(nd.NSets); i++ {
		rs := &z.sets[i]
		for _, bi := range [2]uint32{rs.Block, rs.Sig} {
			if bi != None {
				if err := it.block(&z.arenas, bi, owner); err != nil {
					return err
				}
			}
		}
	}
	if nd.Flags&FlagNSEC3Owner != 0 {
		// An NSEC3 owner's records are in its proof block alone (see
		// markNSEC3Owners), whose suffix codes refer to the apex.
		bi, ok := it.proofOf(owner)
		if !ok {
			return errBadBlock
		}
		if err := it.block(&z.denial.arenas, bi, z.apex); err != nil {
			return err
		}
	}
	for z.kept != nil && it.kept < len(z.kept.sets) && z.kept.sets[it.kept].node == uint32(n) {
		k := &z.kept.sets[it.kept]
		if err := it.records(z.kept.wire[k.off:k.off+uint32(k.len)], int(k.count), owner); err != nil {
			return err
		}
		it.kept++
	}
	// Sets come in type order and each block's records in the builder's
	// order, which compared RDATA before its names were lowercased, and
	// RRSIGs come per covered type: one sort per node settles all of it.
	slices.SortFunc(it.ents, it.cmp)
	it.rec.Owner = owner
	return nil
}

// proofOf returns the proof block of the NSEC3 owner named owner, a
// node with FlagNSEC3Owner, whose hash is in the chain. The owners are
// labels of one length directly below the apex, so canonical order is the
// order of their hashes: in a walk, the next owner's entry is most often
// the one after the last one's, and only when it is not is the chain
// searched.
func (it *walkIter) proofOf(owner []byte) (uint32, bool) {
	d := it.z.denial
	var h [nsec3HashLen]byte
	if d == nil || d.mode != DenialNSEC3 || !decodeHashLabel(&h, owner[1:1+int(owner[0])]) {
		return None, false
	}
	// it.chain is the entry of the last owner's hash: the next rank's is
	// the next entry, up to the end of its page (past it lie other
	// pages, or pages an update replaced).
	at := func(e int) bool {
		return e >= 0 && e < len(d.hashBlocks) && bytes.Equal(d.hashes[e*nsec3HashLen:(e+1)*nsec3HashLen], h[:])
	}
	e := it.chain + 1
	if e >= it.chainEnd || !at(e) {
		if _, e = d.coverEntry(h[:]); !at(e) {
			return None, false
		}
		it.chainEnd = d.pageEnd(h[:])
	}
	it.chain = e
	return d.hashBlocks[e], true
}

type walkEnt struct {
	typ      uint16
	ttl      uint32
	off, end uint32 // RDATA in walker.data
}

// block decodes the base part of block bi of arenas a, whose suffix codes
// refer to owner.
func (w *walkIter) block(a *arenas, bi uint32, owner []byte) error {
	b := &a.blocks[bi]
	return w.records(a.wire[b.Off:b.Off+uint32(b.Base)], int(b.Count), owner)
}

// records decodes count prepared records at the start of blk, whose suffix
// codes refer to owner.
func (w *walkIter) records(blk []byte, count int, owner []byte) error {
	p := 0
	for range count {
		q := skipName(blk, p)
		if q < 0 || q+10 > len(blk) {
			return errBadBlock
		}
		typ := binary.BigEndian.Uint16(blk[q:])
		ttl := binary.BigEndian.Uint32(blk[q+4:])
		rdl := int(binary.BigEndian.Uint16(blk[q+8:]))
		p = q + 10
		if p+rdl > len(blk) {
			return errBadBlock
		}
		start := len(w.data)
		var ok bool
		if w.data, ok = appendRdata(w.data, typ, blk, p, p+rdl, owner); !ok {
			return errBadBlock
		}
		w.ents = append(w.ents, walkEnt{typ: typ, ttl: ttl, off: uint32(start), end: uint32(len(w.data))})
		p += rdl
	}
	return nil
}

// skipName returns the position after the name written at blk[p:]
// (labels ended by the root or by a pointer code), or -1.
func skipName(blk []byte, p int) int {
	for p < len(blk) {
		c := blk[p]
		switch {
		case c == 0:
			return p + 1
		case c&0xC0 == 0xC0:
			return p + 2
		case c > 63:
			return -1
		}
		p += int(c) + 1
	}
	return -1
}

// appendRdata appends the RDATA at blk[p:end] of a record of type typ to
// dst in canonical form: pointer codes expanded to the names they stand
// for, and names lowercased where RFC 4034 section 6.2 asks.
func appendRdata(dst []byte, typ uint16, blk []byte, p, end int, owner []byte) ([]byte, bool) {
	var q int
	ok := true
	if compressedRdata(typ) {
		// The block writer compresses these (see blockWriter.rr); every
		// one of them is in section 6.2's list, so the expansion
		// lowercases as it goes.
		switch typ {
		case dns.TypeMX:
			if end-p < 2 {
				return dst, false
			}
			dst = append(dst, blk[p:p+2]...)
			dst, q, ok = appendName(dst, blk[:end], p+2, owner)
		case dns.TypeSOA:
			if dst, q, ok = appendName(dst, blk[:end], p, owner); ok {
				dst, q, ok = appendName(dst, blk[:end], q, owner)
			}
			if ok && end-q == 20 {
				dst = append(dst, blk[q:end]...)
				q = end
			}
		default:
			dst, q, ok = appendName(dst, blk[:end], p, owner)
		}
		return dst, ok && q == end
	}
	start := len(dst)
	dst = append(dst, blk[p:end]...)
	lowerRdataNames(typ, dst[start:])
	return dst, true
}

// appendName appends the name written at blk[p:], lowercased and with its
// pointer codes expanded, and returns the position just after the name as
// written at p.
func appendName(dst, blk []byte, p int, owner []byte) ([]byte, int, bool) {
	after := -1
	total := 0
	for hops := 0; p < len(blk); {
		c := blk[p]
		switch {
		case c == 0:
			if after < 0 {
				after = p + 1
			}
			return append(dst, 0), after, total < 255
		case c&0xC0 == 0xC0:
			if p+2 > len(blk) {
				return dst, -1, false
			}
			if after < 0 {
				after = p + 2
			}
			code := int(binary.BigEndian.Uint16(blk[p:]))
			if code&CodeSuffix == CodeSuffix {
				o := 0
				for i := code &^ CodeSuffix; i > 0 && o < len(owner) && owner[o] != 0; i-- {
					o += int(owner[o]) + 1
				}
				s := owner[o:]
				return append(dst, s...), after, total+len(s) <= 255
			}
			// An internal code points back into the block; a name
			// reached through more codes than a name has labels is
			// a loop.
			if hops++; hops > 128 {
				return dst, -1, false
			}
			p = code &^ CodeInternal
		case c > 63:
			return dst, -1, false
		default:
			l := int(c)
			if p+1+l > len(blk) {
				return dst, -1, false
			}
			dst = append(dst, c)
			for _, x := range blk[p+1 : p+1+l] {
				dst = append(dst, lowerASCII(x))
			}
			total += l + 1
			p += l + 1
		}
	}
	return dst, -1, false
}

// typeA6 is the A6 record's type (RFC 2874, historic), which miekg/dns
// does not name.
const typeA6 = 38

// lowerRdataNames lowercases in place the uncompressed names in the RDATA
// rd of the types RFC 4034 section 6.2 lists whose names the block writer
// does not compress (RFC 6840 section 5.1: NSEC's names keep their case,
// RRSIG's signer is lowercased; HINFO holds no names). Data that does not
// hold a well-formed name where the type has one is left as it is.
func lowerRdataNames(typ uint16, rd []byte) {
	var at int
	names := 1
	switch typ {
	case dns.TypeMD, dns.TypeMF, dns.TypeMB, dns.TypeMG, dns.TypeMR, dns.TypeDNAME, dns.TypeNXT:
	case dns.TypeMINFO, dns.TypeRP:
		names = 2
	case dns.TypeAFSDB, dns.TypeRT, dns.TypeKX:
		at = 2
	case dns.TypePX:
		at, names = 2, 2
	case dns.TypeSRV:
		at = 6
	case dns.TypeSIG, dns.TypeRRSIG:
		at = 18
	case dns.TypeNAPTR:
		// Order and preference, then flags, services and regexp as
		// character strings, then the replacement name.
		at = 4
		for range 3 {
			if at >= len(rd) {
				return
			}
			at += 1 + int(rd[at])
		}
	case typeA6:
		// The prefix length, the address suffix, then the prefix name
		// when the prefix length is not 0 (RFC 2874 section 3.1.1).
		if len(rd) == 0 || rd[0] == 0 || rd[0] > 128 {
			return
		}
		at = 1 + (128-int(rd[0])+7)/8
	default:
		return
	}
	for range names {
		if at > len(rd) {
			return
		}
		l := wireNameLen(rd[at:])
		if l < 0 {
			return
		}
		lowerInto(rd[at:at+l], rd[at:at+l])
		at += l
	}
}
