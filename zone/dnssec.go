package zone

import (
	"bytes"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"math/bits"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// Denial-of-existence methods of a signed zone.
const (
	DenialNone  uint8 = iota // unsigned, or signed without an NSEC or NSEC3 chain
	DenialNSEC               // NSEC (RFC 4034, RFC 4035)
	DenialNSEC3              // NSEC3 (RFC 5155)
)

// FlagNSEC3Owner marks a node that holds only NSEC3 records (and their
// RRSIGs): a hashed owner name, which is not a name of the zone's data
// (RFC 5155 section 7.2.8) and is answered as if it did not exist.
const FlagNSEC3Owner uint16 = 1 << 8

// MaxNSEC3Iterations is the most additional NSEC3 iterations a zone loads
// with no warning (RFC 9276 section 3.2 asks for 0; validators may treat
// more than 100 as insecure, section 3.2 and RFC 9276 appendix).
const MaxNSEC3Iterations = 100

// nsec3HashLen is the length of an NSEC3 SHA-1 hash, the only hash
// algorithm defined (RFC 5155 section 11).
const nsec3HashLen = sha1.Size

// denial holds what the answer engine needs to prove that names and types
// do not exist. Proof blocks hold one NSEC or NSEC3 RRset followed by its
// RRSIGs; their owner names are written out in full up to the zone's apex,
// which is their only compression target, so that they can be copied into
// any reply for a name of the zone (the apex is always a suffix of it).
type denial struct {
	mode uint8

	// The proof blocks live in arenas of their own, apart from the
	// table's, laid out alike (see Block).
	arenas

	// nsecAt is, per node, the proof block of the nearest node at or
	// before it in canonical order that has an NSEC RRset: the node's own
	// NSEC when it has one, otherwise the NSEC that covers it. None before
	// the first NSEC.
	nsecAt []uint32

	// NSEC3: the parameters, the hashes of the NSEC3 owners (nsec3HashLen
	// bytes each) and the proof block of each, by entry. The chain is
	// the hashes in ascending order; an entry's place in it is its rank.
	// A build lays the entries out in that order, rank for entry; an
	// update writes the pages it changes again at the end (see offs).
	salt       []byte
	iterations uint16
	hashes     []byte
	hashBlocks []uint32
	// starts is, per value of a hash's first startBits bits, the rank of
	// the first hash with that value or above (1<<startBits+1 entries, the
	// last the count), so that cover searches among the few hashes of one
	// value instead of the whole chain: hashes are uniform, and startBits
	// gives about 8 to 16 a value (16 bits for a chain of a million, 256
	// KB). nil for a chain of fewer than 128, whose entries are always
	// in rank order.
	starts    []uint32
	startBits uint8
	// offs is, per value (a page of the chain), the entry of the page's
	// first hash; nil when every page lies at its rank (a build, or a
	// merge of the whole chain). An update of a chain with starts copies
	// only the pages whose hashes it inserts, removes or re-points,
	// appending them past the entries (to the lineage's arrays, as the
	// proof blocks are: older versions read only their own pages),
	// instead of the whole chain (24 MB for the signed TLD's million
	// hashes), until the pages left behind would pass chainSlack's bound
	// (mergeChain).
	offs []uint32
	// pageExtra is what the update that made this chain wrote again past
	// its entries, or would have had it not merged the chain whole
	// (entries of the pages changed and hashes inserted): the estimate of
	// the next update's, for chainAhead.
	pageExtra int
	// match is, per node, the proof block of the NSEC3 whose hash is the
	// node's, or None (an opt-out delegation, say); wild is, for nodes
	// with a match, the proof block of the NSEC3 covering the wildcard
	// below the node (None when the wildcard exists).
	match []uint32
	wild  []uint32

	// NSEC: the children of the nodes with many of them (see
	// WideChildren), for the search of the name before a missing one.
	// kids is, per node, its entry in kidNodes and kidKeys, or None;
	// kidNodes[e] is the number of children c, kidNodes[e+1:e+1+c] the
	// children in order and kidNodes[e+1+c] the end of the node's
	// subtree; kidKeys[e+1:e+1+c] the children's label keys (LabelKey).
	kids     []uint32
	kidNodes []uint32
	kidKeys  []uint64
}

// wideChildren is the fewest children a node of an NSEC zone needs for
// its children to be indexed: below it, a binary search over the nodes
// that follow costs little more.
const wideChildren = 16

// Denial is the zone's denial-of-existence method (DenialNone, DenialNSEC
// or DenialNSEC3).
func (z *Zone) Denial() uint8 {
	if z.denial == nil {
		return DenialNone
	}
	return z.denial.mode
}

// ProofBlocks, ProofWire and ProofPatches are the arenas of the proof
// blocks that NSECAt, NSEC3Match, NSEC3Wild and NSEC3Cover return indexes
// into. They are shared, immutable data: callers must not modify them.
func (z *Zone) ProofBlocks() []Block   { return z.denial.blocks }
func (z *Zone) ProofWire() []byte      { return z.denial.wire }
func (z *Zone) ProofPatches() []uint16 { return z.denial.patches }

// denialBytes is the memory held by the denial index.
func (z *Zone) denialBytes() int {
	d := z.denial
	if d == nil {
		return 0
	}
	return d.arenas.bytes() + len(d.nsecAt)*4 +
		len(d.hashes) + len(d.hashBlocks)*4 + len(d.starts)*4 + len(d.offs)*4 + len(d.match)*4 + len(d.wild)*4 +
		len(d.kids)*4 + len(d.kidNodes)*4 + len(d.kidKeys)*8
}

// LabelKey is the first eight bytes of a lowercase label (without its
// length byte), big-endian, zero-padded. Keys order as labels do in
// canonical order (RFC 4034 section 6.1) wherever they differ: a padding
// zero only meets a real byte where the shorter label ends, and a label
// sorts before any it is a prefix of. Equal keys say nothing.
func LabelKey(label []byte) uint64 {
	var k uint64
	for i := range 8 {
		k <<= 8
		if i < len(label) {
			k |= uint64(label[i])
		}
	}
	return k
}

// WideChildren returns, in an NSEC zone, the children of node n in
// canonical order with their LabelKeys, and the end of n's subtree (the
// index of the first node after its last descendant), when n has at least
// wideChildren children; ok is false otherwise.
func (z *Zone) WideChildren(n uint32) (keys []uint64, kids []uint32, end uint32, ok bool) {
	d := z.denial
	if d == nil || d.kids == nil || d.kids[n] == None {
		return nil, nil, 0, false
	}
	e := d.kids[n]
	c := d.kidNodes[e]
	return d.kidKeys[e+1 : e+1+c], d.kidNodes[e+1 : e+1+c], d.kidNodes[e+1+c], true
}

// buildChildren indexes the children of the nodes that have many, from
// each node's parent as the build found it (-1 for the apex).
func (d *denial) buildChildren(z *Zone, parent []int32) {
	n := len(z.nodes)
	// Nodes are in canonical order, so each node's subtree is the run of
	// nodes from it up to end, which a pass from the last node up collects.
	nkids := make([]uint32, n)
	end := make([]uint32, n)
	for i := n - 1; i >= 0; i-- {
		end[i] = max(end[i], uint32(i)+1)
		if p := parent[i]; p >= 0 {
			nkids[p]++
			end[p] = max(end[p], end[i])
		}
	}
	kids := make([]uint32, n)
	total := 0
	for i := range kids {
		kids[i] = None
		if nkids[i] >= wideChildren {
			kids[i] = uint32(total)
			total += int(nkids[i]) + 2
		}
	}
	if total == 0 {
		return
	}
	d.kids = kids
	d.kidNodes = make([]uint32, total)
	d.kidKeys = make([]uint64, total)
	fill := make([]uint32, n) // per wide node, its children placed so far
	for i := range z.nodes {
		p := parent[i]
		if p < 0 || kids[p] == None {
			continue
		}
		e := kids[p]
		j := e + 1 + fill[p]
		fill[p]++
		nd := &z.nodes[i]
		w := z.names[nd.Name : nd.Name+uint32(nd.Len)]
		d.kidNodes[j] = uint32(i)
		d.kidKeys[j] = LabelKey(w[1 : 1+int(w[0])])
	}
	for i, e := range kids {
		if e != None {
			d.kidNodes[e] = nkids[i]
			d.kidNodes[e+1+nkids[i]] = end[i]
		}
	}
}

// NSECAt returns the proof block of node n's NSEC or, when n has none (an
// empty non-terminal, say), of the NSEC that covers it; None when there is
// none. In an NSEC zone only.
func (z *Zone) NSECAt(n uint32) uint32 { return z.denial.nsecAt[n] }

// NSEC3Match returns the proof block of the NSEC3 matching node n, or None.
// In an NSEC3 zone only.
func (z *Zone) NSEC3Match(n uint32) uint32 { return z.denial.match[n] }

// NSEC3Wild returns the proof block of the NSEC3 that covers the wildcard
// below node n, or None. In an NSEC3 zone only.
func (z *Zone) NSEC3Wild(n uint32) uint32 { return z.denial.wild[n] }

// NSEC3Cover returns the proof block of the NSEC3 that covers (or, when
// the name's hash is an NSEC3 owner, matches) the lowercase wire name. It
// hashes the name with the zone's salt and iterations and allocates
// nothing. In an NSEC3 zone only.
func (z *Zone) NSEC3Cover(name []byte) uint32 {
	var h [nsec3HashLen]byte
	d := z.denial
	nsec3Hash(&h, name, d.salt, int(d.iterations))
	_, e := d.coverEntry(h[:])
	return d.hashBlocks[e]
}

// nsec3Hash computes the NSEC3 hash of a lowercase wire name (RFC 5155
// section 5): SHA-1 over the name and the salt, then iterations times over
// the previous digest and the salt. The buffer lives on the stack.
func nsec3Hash(out *[nsec3HashLen]byte, name, salt []byte, iterations int) {
	var buf [255 + 255]byte
	n := copy(buf[:], name)
	n += copy(buf[n:], salt)
	h := sha1.Sum(buf[:n])
	for range iterations {
		n = copy(buf[:], h[:])
		n += copy(buf[n:], salt)
		h = sha1.Sum(buf[:n])
	}
	*out = h
}

// cover returns the rank of the hash that covers or matches h: the
// greatest one not above it, or the last when h is below them all (the
// chain wraps around).
func (d *denial) cover(h []byte) int {
	r, _ := d.coverEntry(h)
	return r
}

// coverEntry is cover, with the entry of the hash it returns: a binary
// search of h's page (the whole chain without starts), and, when h is
// below the page's hashes, the last hash of the nearest page before it
// that has any (the chain's last for a hash below them all).
func (d *denial) coverEntry(h []byte) (rank, entry int) {
	v, lo, hi, base := 0, 0, len(d.hashBlocks), 0
	if d.starts != nil {
		// Every hash before the value of h's first startBits bits is
		// below h, every one from the next value on above it.
		v = startOf(h, d.startBits)
		lo, hi = int(d.starts[v]), int(d.starts[v+1])
		base = d.pageEntry(v) - lo
	}
	first := lo
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		e := m + base
		if bytes.Compare(d.hashes[e*nsec3HashLen:(e+1)*nsec3HashLen], h) <= 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo > first {
		return lo - 1, lo - 1 + base
	}
	n := d.chainLen()
	r := (first + n - 1) % n
	if d.offs == nil {
		return r, r
	}
	if first == 0 {
		v = len(d.starts) - 1
	}
	for v--; d.starts[v] == d.starts[v+1]; v-- {
	}
	return r, int(d.offs[v]) + r - int(d.starts[v])
}

// pageEnd returns the entry after the last of the page of hash h.
func (d *denial) pageEnd(h []byte) int {
	if d.offs == nil {
		return len(d.hashBlocks)
	}
	v := startOf(h, d.startBits)
	return int(d.offs[v] + d.starts[v+1] - d.starts[v])
}

// chainLen is the number of hashes of the chain.
func (d *denial) chainLen() int {
	if d.starts == nil {
		return len(d.hashBlocks)
	}
	return int(d.starts[len(d.starts)-1])
}

// entry returns the entry of the hash of rank r.
func (d *denial) entry(r int) int {
	if d.offs == nil {
		return r
	}
	// The page of r: the last value whose first rank is r or below, of
	// those with hashes.
	v := sort.Search(len(d.starts)-1, func(v int) bool { return int(d.starts[v+1]) > r })
	return int(d.offs[v]) + r - int(d.starts[v])
}

// pageEntry returns the entry of the first hash of page v.
func (d *denial) pageEntry(v int) int {
	if d.offs == nil {
		return int(d.starts[v])
	}
	return int(d.offs[v])
}

// chainRoom is the room made for a chain of n hashes: twice what
// chainSlack allows more when it has starts, for the pages updates write
// again (mergeChain), none otherwise.
func chainRoom(n int) int {
	if startBits(n) == 0 {
		return n
	}
	return n + 2*n/chainSlack
}

// chainAhead returns the room, in entries, of the arrays an update of d's
// version merging its chain whole would write (chainRoom), when the next
// update is expected to merge it whole: its pages written again, as many
// as the last update's (pageExtra), would pass the bound of chainSlack or
// the arrays' room (see mergeChain). 0 otherwise, and for a chain without
// starts (short, and merged whole by every update).
func (d *denial) chainAhead() int {
	if d == nil || d.mode != DenialNSEC3 || d.starts == nil {
		return 0
	}
	n := d.chainLen()
	if d.pagesFull(len(d.hashBlocks)+d.pageExtra, n) {
		// The merge needs chainRoom of the chain's length after the
		// update, which its insertions may lengthen.
		return chainRoom(n + n/64 + 64)
	}
	return 0
}

// pagesFull reports whether entries, the entries a chain of n hashes
// would hold with an update's pages written again, pass chainSlack's
// bound or the room of d's arrays, so that the update merges the chain
// whole instead (mergeChain).
func (d *denial) pagesFull(entries, n int) bool {
	return entries > n+n/chainSlack || entries > cap(d.hashBlocks) || entries*nsec3HashLen > cap(d.hashes)
}

// chainSlack bounds the entries of a chain's pages written again that
// its version no longer reads: a chain of n hashes is written whole again
// by the update that would take it past n/chainSlack of them. A variable,
// so that tests write pages many times over.
var chainSlack = 16

// chainMerged, when set (by tests), is called by each update of an NSEC3
// chain with how it made the new chain: "pages" written again, "whole"
// from a chain in rank order, or "whole from pages" (denial.offs).
var chainMerged func(how string)

// eachEntry calls f with the entry of every hash of the chain, in rank
// order, a page at a time (entry would search for each rank).
func (d *denial) eachEntry(f func(e int)) {
	if d.offs == nil {
		for e := range d.chainLen() {
			f(e)
		}
		return
	}
	for v := range len(d.starts) - 1 {
		o := int(d.offs[v])
		for k := range int(d.starts[v+1] - d.starts[v]) {
			f(o + k)
		}
	}
}

// hashAt returns the hash of rank r.
func (d *denial) hashAt(r int) []byte {
	e := d.entry(r)
	return d.hashes[e*nsec3HashLen : (e+1)*nsec3HashLen]
}

// blockAt returns the proof block of the hash of rank r.
func (d *denial) blockAt(r int) uint32 { return d.hashBlocks[d.entry(r)] }

// startBits returns how many of a hash's first bits denial.starts indexes
// for a chain of n hashes: 0 for none below startsMin.
func startBits(n int) uint8 {
	if n < startsMin {
		return 0
	}
	return uint8(max(1, min(16, bits.Len(uint(n/8))-1)))
}

// startsMin is the shortest chain that has denial.starts; a variable, so
// that tests give one to small zones.
var startsMin = 128

// startOf is the value of h's first b bits.
func startOf(h []byte, b uint8) int { return (int(h[0])<<8 | int(h[1])) >> (16 - b) }

var nsec3Base32 = base32.HexEncoding.WithPadding(base32.NoPadding)

// nsec3PartsMin is the node count from which buildNSEC3 hashes the nodes
// in parallel (a variable, so that tests split small zones).
var nsec3PartsMin = 1 << 16

// matchNSEC3 sets d.match and d.wild of the nodes lo to hi-1, and
// returns the first of them that should have an NSEC3 record of its own
// and has none, or -1.
func (b *builder) matchNSEC3(d *denial, bk *hashBuckets, entries []nsec3Entry, lo, hi int) int {
	z := b.z
	first := -1
	var h [nsec3HashLen]byte
	var star [256]byte
	star[0], star[1] = 1, '*'
	for n := lo; n < hi; n++ {
		d.match[n], d.wild[n] = None, None
		nd := &z.nodes[n]
		if nd.Flags&(FlagOccluded|FlagNSEC3Owner) != 0 {
			continue
		}
		w := b.name(int32(n))
		nsec3Hash(&h, w, d.salt, int(d.iterations))
		c := bk.cover(d.hashes, h[:])
		if bytes.Equal(d.hashes[c*nsec3HashLen:(c+1)*nsec3HashLen], h[:]) {
			d.match[n] = d.hashBlocks[c]
		} else {
			// An insecure delegation covered by an opt-out NSEC3 has
			// none of its own (RFC 5155 section 6), nor has an empty
			// non-terminal that leads only to such delegations.
			if first < 0 && b.first[n] >= 0 && !(nd.Flags&FlagDelegation != 0 && entries[c].optOut) {
				first = n
			}
			continue
		}
		if len(w)+2 <= 255 && nd.Flags&FlagWildcard == 0 {
			copy(star[2:], w)
			nsec3Hash(&h, star[:2+len(w)], d.salt, int(d.iterations))
			d.wild[n] = d.hashBlocks[bk.cover(d.hashes, h[:])]
		}
	}
	return first
}

// hashBuckets finds, while the zone is built, the NSEC3 hash that covers
// a name's as denial.cover does, for each of a TLD's million names and
// their wildcards: among the hashes of one value of their first bits
// (denial.starts, which it shares), scanned on their first eight bytes,
// kept in an array of their own, so that the scan reads 8 bytes a hash
// rather than 20.
type hashBuckets struct {
	starts []uint32 // denial.starts, or the whole chain as one value for a chain without
	bits   uint8    // denial.startBits
	prefix []uint64 // each hash's first eight bytes
}

// newHashBuckets indexes d's chain, whose starts are made.
func newHashBuckets(d *denial) *hashBuckets {
	n := len(d.hashBlocks)
	bk := &hashBuckets{starts: d.starts, bits: d.startBits, prefix: make([]uint64, n)}
	if bk.starts == nil {
		bk.starts = []uint32{0, uint32(n)}
	}
	for i := range n {
		bk.prefix[i] = binary.BigEndian.Uint64(d.hashes[i*nsec3HashLen:])
	}
	return bk
}

// hashStarts makes denial.starts for a chain's hashes, and returns it
// with startBits.
func hashStarts(hashes []byte) ([]uint32, uint8) {
	b := startBits(len(hashes) / nsec3HashLen)
	if b == 0 {
		return nil, 0
	}
	return valueStarts(hashes, b), b
}

// valueStarts returns, for each value of the first b bits of sorted
// hashes, the first hash with that value or above (1<<b+1 entries, the
// last the count).
func valueStarts(hashes []byte, b uint8) []uint32 {
	n := len(hashes) / nsec3HashLen
	starts := make([]uint32, 1<<b+1)
	next := 0
	for i := range n {
		for v := startOf(hashes[i*nsec3HashLen:], b); next <= v; next++ {
			starts[next] = uint32(i)
		}
	}
	for ; next <= 1<<b; next++ {
		starts[next] = uint32(n)
	}
	return starts
}

// cover is denial.cover of h over hashes, the chain bk indexes.
func (bk *hashBuckets) cover(hashes []byte, h []byte) int {
	n := len(bk.prefix)
	k := binary.BigEndian.Uint64(h)
	// i ends as the last hash whose prefix is not above h's.
	v := k >> (64 - bk.bits) // 0 for no bits: Go shifts by 64 to 0
	i := int(bk.starts[v]) - 1
	for end := int(bk.starts[v+1]); i+1 < end && bk.prefix[i+1] <= k; i++ {
	}
	// Of hashes with h's prefix, the last one not above h.
	for i >= 0 && bk.prefix[i] == k && bytes.Compare(hashes[i*nsec3HashLen:(i+1)*nsec3HashLen], h) > 0 {
		i--
	}
	if i < 0 {
		return n - 1
	}
	return i
}

// decodeHashLabel decodes an NSEC3 owner's first label, the base32hex
// text of a hash (RFC 5155 section 3.3), into h as nsec3Base32 does,
// case aside, but allocating nothing: only 32 digits make a hash of
// nsec3HashLen bytes.
func decodeHashLabel(h *[nsec3HashLen]byte, label []byte) bool {
	if len(label) != 32 {
		return false
	}
	var acc uint64
	for i, c := range label {
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'v':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'V':
			v = c - 'A' + 10
		default:
			return false
		}
		acc = acc<<5 | uint64(v)
		if i%8 == 7 {
			o := i / 8 * 5
			h[o], h[o+1], h[o+2], h[o+3], h[o+4] = byte(acc>>32), byte(acc>>24), byte(acc>>16), byte(acc>>8), byte(acc)
			acc = 0
		}
	}
	return true
}

// proofBlock prepares an NSEC or NSEC3 RRset with its RRSIGs as one block
// whose only compression target outside itself is the zone's apex.
func (b *builder) proofBlock(owner []byte, set, sigs []rec) (uint32, error) {
	w := b.newWriter(b.apex)
	for i := range set {
		w.rr(owner, set[i].typ, set[i].ttl, b.rdataOf(&set[i]))
	}
	for i := range sigs {
		w.rr(owner, sigs[i].typ, sigs[i].ttl, b.rdataOf(&sigs[i]))
	}
	return w.finish(len(set)+len(sigs), w.rel(), nil, 0, nil)
}

// ofType returns the records of recs of type t, and the RRSIGs among recs
// covering t.
func ofType(recs []rec, t uint16) (set, sigs []rec) {
	for i := range recs {
		switch {
		case recs[i].typ == t:
			set = append(set, recs[i])
		case recs[i].typ == dns.TypeRRSIG && recs[i].covered == t:
			sigs = append(sigs, recs[i])
		}
	}
	return set, sigs
}

// buildDenial checks the zone's DNSSEC data and prepares the indexes of its
// NSEC or NSEC3 chain. Problems are warnings: the zone is served as it is,
// and validators judge the answers (a broken chain makes some of them
// bogus, which the operator must hear about but which does not stop the
// rest of the zone from being served). An NSEC3 chain's proof blocks are
// prepared before buildSets (writeNSEC3Proofs); its warnings come here.
func (b *builder) buildDenial() error {
	c := b.chain
	if c == nil || c.firstSig < 0 && !c.hasNSEC && c.firstNSEC3 < 0 {
		return nil
	}
	if c.firstSig >= 0 && !c.hasKey {
		b.warnAt(c.firstSigOrd, "zone has RRSIG records but no DNSKEY at the apex: validators cannot use its signatures")
	}
	switch {
	case c.hasNSEC:
		// Proof blocks are written by the table's block writer into
		// arenas of their own, which become the denial index's.
		z := b.z
		var proof arenas
		b.out = &proof
		defer func() {
			b.out = &z.arenas
			if z.denial != nil {
				z.denial.arenas = proof
			}
		}()
		return b.buildNSEC()
	case c.hasParam:
		return b.buildNSEC3()
	}
	return nil
}

// chainKind is what buildDenial decides its work from, found before
// buildSets (the records may be released as it goes, see buildrelease.go):
// whether the apex has a DNSKEY and an NSEC record, the first RRSIG and
// NSEC3 records of the zone (indexes in b.recs, -1 for none; the RRSIG's
// ordinal), and the RDATA, ordinal and type of the record whose
// parameters an NSEC3 chain is built with (the apex's first NSEC3PARAM,
// else the first NSEC3 record; hasParam false for neither).
type chainKind struct {
	hasKey, hasNSEC      bool
	anyNSEC              bool // an NSEC record anywhere in the zone
	firstSig, firstNSEC3 int
	firstSigOrd          uint32
	hasParam             bool
	param                []byte
	paramOrd             uint32
	paramTyp             uint16
}

// nsec3 reports whether buildNSEC3 builds a chain: the zone has NSEC3
// parameters, well-formed and of the SHA-1 hash, and no NSEC chain.
func (c *chainKind) nsec3() bool {
	return c != nil && !c.hasNSEC && c.hasParam && nsec3ParamOK(c.param)
}

func (b *builder) chainOf() *chainKind {
	c := &chainKind{firstSig: -1, firstNSEC3: -1}
	var param *rec
	apexRecs := b.recsOf(int32(b.z.apexNode))
	for i := range apexRecs {
		switch apexRecs[i].typ {
		case dns.TypeDNSKEY:
			c.hasKey = true
		case dns.TypeNSEC:
			c.hasNSEC = true
		case dns.TypeNSEC3PARAM:
			if param == nil {
				param = &apexRecs[i]
			}
		}
	}
	for i := range b.recs {
		switch b.recs[i].typ {
		case dns.TypeRRSIG:
			if c.firstSig < 0 {
				c.firstSig, c.firstSigOrd = i, b.recs[i].ord
			}
		case dns.TypeNSEC3:
			if c.firstNSEC3 < 0 {
				c.firstNSEC3 = i
			}
		case dns.TypeNSEC:
			c.anyNSEC = true
		}
		if c.firstSig >= 0 && c.firstNSEC3 >= 0 && c.anyNSEC {
			break
		}
	}
	if param == nil && c.firstNSEC3 >= 0 {
		param = &b.recs[c.firstNSEC3]
	}
	if param != nil {
		c.hasParam, c.param, c.paramOrd, c.paramTyp = true, slices.Clone(b.rdataOf(param)), param.ord, param.typ
	}
	return c
}

// nsec3ParamOK reports whether the NSEC3 parameters prd (the RDATA of an
// NSEC3PARAM or NSEC3 record) are ones buildNSEC3 builds a chain with:
// well-formed, of the SHA-1 hash.
func nsec3ParamOK(prd []byte) bool {
	return len(prd) >= 5 && int(prd[4]) <= len(prd)-5 && prd[0] == dns.SHA1
}

// markNSEC3Owners finds what buildDenial will do (b.chain) and sets
// FlagNSEC3Owner, before buildSets, on the nodes that hold an NSEC3 RRset
// the chain will take (the owner a hash directly below the apex, the
// record well-formed, the zone's parameters usable) and nothing but it
// and the RRSIGs over it. Such a node is never answered from (RFC 5155
// section 7.2.8; see the answer engine's lookup), and its records are all
// in its proof block: buildSets prepares no RRset for it, and Walk reads
// its records from the proof block. In a TLD signed with NSEC3 nearly
// every other node is one: a second copy of their records as RRsets in
// the table was about 200 MB of a million delegations' 856 MiB. A node
// with other data beside its NSEC3 RRset keeps the RRset in the table, as
// do NSEC3 records the chain ignores (see writeNSEC3Proofs).
func (b *builder) markNSEC3Owners() {
	b.chain = b.chainOf()
	if !b.chain.nsec3() {
		return
	}
	z := b.z
	parallel(len(z.nodes), func(lo, hi int) {
		for n := lo; n < hi; n++ {
			recs := b.recsOf(int32(n))
			set, sigs := nsec3Run(recs)
			if len(set) == 0 || len(set)+len(sigs) != len(recs) {
				continue
			}
			if _, bad := nsec3Fields(b.name(int32(n)), b.rdataOf(&set[0]), b.apex); bad == nsec3Usable {
				z.nodes[n].Flags |= FlagNSEC3Owner
			}
		}
	})
}

// nsec3Run returns a node's NSEC3 records (recs are a node's records,
// sorted by type) and the RRSIGs among them that cover NSEC3. The run is
// taken from its first record: taken from each of them, as it once was,
// it ended as the last record alone, and the proof block of an owner with
// two NSEC3 records held one of them (Apply's held both).
func nsec3Run(recs []rec) (set, sigs []rec) {
	for i := range recs {
		if recs[i].typ == dns.TypeNSEC3 && (i == 0 || recs[i-1].typ != dns.TypeNSEC3) {
			j := i
			for j < len(recs) && recs[j].typ == dns.TypeNSEC3 {
				j++
			}
			set = recs[i:j]
		}
		if recs[i].typ == dns.TypeRRSIG && (i == 0 || recs[i-1].typ != dns.TypeRRSIG) {
			j := i
			for j < len(recs) && recs[j].typ == dns.TypeRRSIG {
				j++
			}
			sigs = coveringRun(recs[i:j], dns.TypeNSEC3)
		}
	}
	return set, sigs
}

// What nsec3Fields finds wrong with an NSEC3 record, in the order
// buildNSEC3 checks it.
const (
	nsec3Usable    = iota
	nsec3BadOwner  // the owner is not a hash directly below the apex
	nsec3Short     // no salt, or no hash length after it
	nsec3BadLength // the next hash runs past the RDATA
)

// nsec3Fields reads the NSEC3 record of owner w with RDATA rd: the hash
// the owner stands for, or what makes the chain ignore the record. RDATA
// is the hash algorithm, flags, iterations, salt, then the next hash.
func nsec3Fields(w, rd, apex []byte) (h [nsec3HashLen]byte, bad int) {
	if !decodeHashLabel(&h, w[1:1+int(w[0])]) || !bytes.Equal(parentWire(w), apex) {
		return h, nsec3BadOwner
	}
	if len(rd) < 5 || 5+int(rd[4])+1 > len(rd) {
		return h, nsec3Short
	}
	sl := int(rd[4])
	hl := int(rd[5+sl])
	if 6+sl+hl > len(rd) {
		return h, nsec3BadLength
	}
	return h, nsec3Usable
}

// authoritative reports whether node n is data the zone answers for (not
// glue or occluded) and has records: the names an NSEC chain must list.
func (b *builder) authoritative(n int) bool {
	return b.first[n] >= 0 && b.z.nodes[n].Flags&(FlagOccluded|FlagNSEC3Owner) == 0
}

func (b *builder) buildNSEC() error {
	z := b.z
	d := &denial{mode: DenialNSEC, nsecAt: make([]uint32, len(z.nodes))}
	prev := None
	// The chain is checked as it is walked: each NSEC's next name must be
	// the next name that has an NSEC, the last one's the apex, and every
	// authoritative name must have one.
	var pendNext []byte // the next name the previous NSEC announced
	var pendOrd uint32
	pendOwner := -1
	gap := false
	warnGap := func(ord uint32, format string, args ...any) {
		if !gap {
			gap = true
			b.warnAt(ord, "NSEC chain broken: "+format+"; the first gap is reported, denials near it will not validate", args...)
		}
	}
	for n := range z.nodes {
		if recs := b.recsOf(int32(n)); recs != nil {
			set, sigs := ofType(recs, dns.TypeNSEC)
			if len(set) > 0 {
				blk, err := b.proofBlock(b.name(int32(n)), set, sigs)
				if err != nil {
					return b.locate(err, set[0].ord)
				}
				prev = blk
				if pendOwner >= 0 && !bytes.Equal(pendNext, b.name(int32(n))) {
					warnGap(pendOrd, "the NSEC at %s points to %s, but the next name with an NSEC is %s",
						wireString(b.name(int32(pendOwner))), wireString(pendNext), wireString(b.name(int32(n))))
				}
				pendNext = lowerWire(b.rdataOf(&set[0])[:nameLen(b.rdataOf(&set[0]))])
				pendOwner, pendOrd = n, set[0].ord
			} else if b.authoritative(n) {
				warnGap(recs[0].ord, "%s has data but no NSEC record", wireString(b.name(int32(n))))
			}
		}
		d.nsecAt[n] = prev
	}
	if pendOwner >= 0 && !bytes.Equal(pendNext, b.apex) {
		warnGap(pendOrd, "the last NSEC, at %s, points to %s instead of the apex", wireString(b.name(int32(pendOwner))), wireString(pendNext))
	}
	d.buildChildren(z, b.parent)
	z.denial = d
	return nil
}

// nsec3Entry is one NSEC3 RRset while the chain is built; its next hash
// is read from its proof block (see proofData).
type nsec3Entry struct {
	hash   [nsec3HashLen]byte
	node   int32
	block  uint32
	ord    uint32
	optOut bool
}

// nsec3Proofs is what writeNSEC3Proofs prepared for buildNSEC3: the
// denial index with its proof blocks, the chain's entries in node order,
// the warnings about the records (given after buildSets's, in the order a
// load has always given them), those about an NSEC3 owner's TTLs (given by
// buildSets at the owner's place), and the error it stopped at.
type nsec3Proofs struct {
	d        *denial
	entries  []nsec3Entry
	warnings []pendingWarning
	ownerTTL map[int32]pendingWarning
	err      error
}

// recordRange is a range of nodes and a builder whose records and rdata
// hold theirs: the builder itself, or a view of one of the ranges the
// records were split into (see splitRecords).
type recordRange struct {
	lo, hi int
	b      *builder
	part   int // the range's index in b.rangeRecs, -1 for the builder's own records
}

// recordRanges returns the ranges the zone's records are held in.
func (b *builder) recordRanges() []recordRange {
	if !b.released() {
		return []recordRange{{0, len(b.z.nodes), b, -1}}
	}
	parts := len(b.rangeRecs)
	out := make([]recordRange, parts)
	for p := range parts {
		v := *b
		v.recs, v.rdata = b.rangeRecs[p], b.rangeRdata[p]
		v.warnings = nil
		out[p] = recordRange{len(b.z.nodes) * p / parts, len(b.z.nodes) * (p + 1) / parts, &v, p}
	}
	return out
}

// writeNSEC3Proofs prepares the proof blocks of an NSEC3 chain (see
// markNSEC3Owners for when there is one), before buildSets: an NSEC3
// owner's records are read for its proof block and never again, so that
// in a zone whose records are split into ranges (splitRecords) each
// range's owners' records and rdata are dropped as soon as its proofs are
// written, before buildSets prepares the table; in a TLD signed with NSEC3
// they are most of the rdata, and held to the end of the table and the
// proofs they took the load's peak to 1.67 times its final size. Its
// warnings and error wait in b.proofs for buildNSEC3 and build.
func (b *builder) writeNSEC3Proofs() {
	c := b.chain
	if !c.nsec3() {
		return
	}
	prd := c.param
	pf := &nsec3Proofs{d: &denial{mode: DenialNSEC3, iterations: uint16(prd[2])<<8 | uint16(prd[3]), salt: slices.Clone(prd[5 : 5+int(prd[4])])}}
	b.proofs = pf
	d := pf.d
	ranges := b.recordRanges()
	// A first pass finds the NSEC3 RRsets, to reserve the proof arenas
	// and the entries: appending to them unreserved, in a TLD of a
	// million delegations, allocated and dropped several hundred
	// megabytes.
	count, wire, patches := 0, 0, 0
	for _, r := range ranges {
		for n := r.lo; n < r.hi; n++ {
			set, sigs := nsec3Run(r.b.recsOf(int32(n)))
			if len(set) == 0 {
				continue
			}
			count++
			wire += len(b.name(int32(n)))
			for _, x := range set {
				wire += 12 + int(x.rdl)
			}
			for _, x := range sigs {
				wire += 12 + int(x.rdl)
			}
			patches += 2 * (len(set) + len(sigs))
		}
	}
	// With room for the first updates (Apply appends proof blocks
	// here): without it a TLD's first update copied the whole proof
	// arena, a quarter of a gigabyte.
	d.blocks = reserveArena(b.z, d.blocks, withRoom(count))
	d.wire = reserveArena(b.z, d.wire, withRoom(wire))
	d.patches = reserveArena(b.z, d.patches, withRoom(patches))
	pf.entries = make([]nsec3Entry, 0, count)
	warn := func(ord uint32, format string, args ...any) {
		pf.warnings = append(pf.warnings, pendingWarning{ord, fmt.Sprintf(format, args...)})
	}
	for k, r := range ranges {
		v := r.b
		v.out = &d.arenas
		for n := r.lo; n < r.hi; n++ {
			set, sigs := nsec3Run(v.recsOf(int32(n)))
			if len(set) == 0 {
				continue
			}
			w := b.name(int32(n))
			rd := v.rdataOf(&set[0])
			h, bad := nsec3Fields(w, rd, b.apex)
			switch bad {
			case nsec3BadOwner:
				warn(set[0].ord, "NSEC3 owner %s is not a hash directly below the apex; the record is ignored", wireString(w))
				continue
			case nsec3Short:
				warn(set[0].ord, "malformed NSEC3 record at %s; the record is ignored", wireString(w))
				continue
			}
			if sl := int(rd[4]); !bytes.Equal(rd[5:5+sl], d.salt) || uint16(rd[2])<<8|uint16(rd[3]) != d.iterations {
				warn(set[0].ord, "NSEC3 at %s has other parameters than the zone's NSEC3PARAM", wireString(w))
			}
			if bad == nsec3BadLength {
				warn(set[0].ord, "malformed NSEC3 record at %s; the record is ignored", wireString(w))
				continue
			}
			blk, err := v.proofBlock(w, set, sigs)
			if err != nil {
				pf.err = b.locate(err, set[0].ord)
				return
			}
			if b.z.nodes[n].Flags&FlagNSEC3Owner != 0 {
				// buildSets prepares no RRset for it, and gives
				// this warning in its place.
				if tw, ok := ttlWarning(w, set); ok {
					if pf.ownerTTL == nil {
						pf.ownerTTL = map[int32]pendingWarning{}
					}
					pf.ownerTTL[int32(n)] = tw
				}
			}
			pf.entries = append(pf.entries, nsec3Entry{hash: h, node: int32(n), block: blk, optOut: rd[1]&1 != 0, ord: set[0].ord})
		}
		v.out = &b.z.arenas
		if r.part >= 0 {
			b.dropOwners(r)
			if b.size > bigText && (k+1)%releaseEvery == 0 && k+1 < len(ranges) {
				freeGarbage()
			}
		}
	}
}

// dropOwners gives range r of the split records (see splitRecords) its
// records and rdata less those of the NSEC3 owners, whose proof blocks
// are written: nothing reads those again. The range's arrays are copied,
// the old ones left to the collector.
func (b *builder) dropOwners(r recordRange) {
	v := r.b
	keep, size := 0, 0
	for n := r.lo; n < r.hi; n++ {
		if b.z.nodes[n].Flags&FlagNSEC3Owner == 0 {
			for _, x := range v.recsOf(int32(n)) {
				keep++
				size += int(x.rdl)
			}
		}
	}
	recs, data := make([]rec, 0, keep), make([]byte, 0, size)
	for n := r.lo; n < r.hi; n++ {
		old := v.recsOf(int32(n))
		if old == nil {
			continue
		}
		if b.z.nodes[n].Flags&FlagNSEC3Owner != 0 {
			b.first[n], b.count[n] = -1, 0
			continue
		}
		b.first[n] = int32(len(recs))
		for _, x := range old {
			rd := v.rdataOf(&x)
			x.rd = uint32(len(data))
			data = append(data, rd...)
			recs = append(recs, x)
		}
	}
	b.rangeRecs[r.part], b.rangeRdata[r.part] = recs, data
	v.recs, v.rdata = nil, nil
}

// firstOrd returns the ordinal of node n's first record, which must have
// one: from the records, or, once they were split into ranges, from
// what splitRecords kept of them.
func (b *builder) firstOrd(n int32) uint32 {
	if b.firstOrds != nil {
		return b.firstOrds[n]
	}
	return b.recs[b.first[n]].ord
}

// proofData returns the RDATA of the first record of proof block blk,
// nil when it does not decode: its owner (labels ending in a root label
// or a pointer code, see Block), type, class, TTL, length, then the data.
func (a *arenas) proofData(blk uint32) []byte {
	bl := &a.blocks[blk]
	w := a.wire[bl.Off : bl.Off+uint32(bl.Len)]
	p := skipName(w, 0)
	if p < 0 || p+10 > len(w) {
		return nil
	}
	rdl := int(w[p+8])<<8 | int(w[p+9])
	if p+10+rdl > len(w) {
		return nil
	}
	return w[p+10 : p+10+rdl]
}

// buildNSEC3 finishes the NSEC3 chain writeNSEC3Proofs prepared: its
// warnings, the chain's order and gaps, and the index of each node's
// matching and wildcard-covering NSEC3.
func (b *builder) buildNSEC3() error {
	z := b.z
	c := b.chain
	prd := c.param
	// markNSEC3Owners and writeNSEC3Proofs took these conditions too.
	if len(prd) < 5 || int(prd[4]) > len(prd)-5 {
		b.warnAt(c.paramOrd, "malformed %s record: NSEC3 denials are not served", typeName(c.paramTyp))
		return nil
	}
	if prd[0] != dns.SHA1 {
		b.warnAt(c.paramOrd, "NSEC3 hash algorithm %d is unknown: NSEC3 denials are not served", prd[0])
		return nil
	}
	pf := b.proofs
	d := pf.d
	if d.iterations > MaxNSEC3Iterations {
		b.warnAt(c.paramOrd, "NSEC3 uses %d additional iterations, over %d: validators may treat the zone as insecure or bogus (RFC 9276)", d.iterations, MaxNSEC3Iterations)
	}
	b.warnings = append(b.warnings, pf.warnings...)
	entries := pf.entries
	b.proofs = nil
	if len(entries) == 0 {
		b.warnAt(c.paramOrd, "zone has NSEC3PARAM but no usable NSEC3 records: NSEC3 denials are not served")
		return nil
	}
	slices.SortFunc(entries, func(x, y nsec3Entry) int { return bytes.Compare(x.hash[:], y.hash[:]) })
	gap := false
	warnGap := func(ord uint32, format string, args ...any) {
		if !gap {
			gap = true
			b.warnAt(ord, "NSEC3 chain broken: "+format+"; the first gap is reported, denials near it will not validate", args...)
		}
	}
	for i := range entries {
		e := &entries[i]
		nx := &entries[(i+1)%len(entries)]
		if next, _ := nsec3Next(d.proofData(e.block)); !bytes.Equal(next, nx.hash[:]) {
			warnGap(e.ord, "the NSEC3 at %s points to %s, but the next hash in the zone is %s",
				wireString(b.name(e.node)), strings.ToLower(nsec3Base32.EncodeToString(next)), strings.ToLower(nsec3Base32.EncodeToString(nx.hash[:])))
		}
	}
	// The rdata has been read for the last time (in a zone whose records
	// were split it is gone already). Returned before the chain's
	// indexes are allocated, it leaves the load's peak.
	b.rdata = nil
	if b.size > bigText {
		freeGarbage()
	}
	// With the table's room (a thirty-second) for the pages the first
	// updates write again (see denial.offs); the first merge of the whole
	// chain makes chainRoom's. A load's final size counts the room where
	// the runtime clears reused memory, so the build keeps it small.
	d.hashes = make([]byte, 0, withRoom(len(entries))*nsec3HashLen)
	d.hashBlocks = make([]uint32, 0, withRoom(len(entries)))
	for i := range entries {
		d.hashes = append(d.hashes, entries[i].hash[:]...)
		d.hashBlocks = append(d.hashBlocks, entries[i].block)
	}
	d.starts, d.startBits = hashStarts(d.hashes)
	d.match = make([]uint32, len(z.nodes))
	d.wild = make([]uint32, len(z.nodes))
	// Each node's hash and its wildcard's are independent of the others':
	// the nodes are hashed in parts, one per core, and of the nodes with
	// no NSEC3 the first (in node order, as one pass would find it) is
	// reported.
	parts := 1
	if len(z.nodes) >= nsec3PartsMin {
		parts = runtime.GOMAXPROCS(0)
	}
	missing := make([]int, parts)
	bk := newHashBuckets(d)
	var wg sync.WaitGroup
	for p := range parts {
		lo, hi := len(z.nodes)*p/parts, len(z.nodes)*(p+1)/parts
		wg.Add(1)
		go func() {
			defer wg.Done()
			missing[p] = b.matchNSEC3(d, bk, entries, lo, hi)
		}()
	}
	wg.Wait()
	for _, n := range missing {
		if n >= 0 {
			warnGap(b.firstOrd(int32(n)), "%s has no NSEC3 record", wireString(b.name(int32(n))))
			break
		}
	}
	z.denial = d
	return nil
}
