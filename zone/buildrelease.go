package zone

import (
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
)

// Releasing the parsed records while the blocks are prepared (issue 14).
// The builder's records and their rdata (150 MB for a million
// delegations) are read to the end of buildSets, when the table is all
// there, and were the largest part of the load's peak beside it. In a
// zone without DNSSEC records nothing reads them after buildSets, and a
// node's blocks read only its own records but for the addresses of NS,
// MX and SRV targets, which may be anywhere in the zone. So such a zone's
// addresses are copied first into a compact table of their own
// (addrTable), each range of nodes is given its records and their rdata
// in arrays of its own (splitRecords), and buildSets prepares the ranges,
// more of them than there are cores, in node order, dropping each range's
// arrays as soon as its blocks are prepared: the table grows as the
// records go. A zone signed with an NSEC3 chain is released too: its
// proof blocks are prepared from the ranges' records before buildSets
// (writeNSEC3Proofs), each range dropping its NSEC3 owners' records once
// their proofs are written (most of a signed TLD's rdata), and what the
// denial reads after buildSets is kept apart (the chain's parameters, each
// node's first record's ordinal, which addresses are signed). A zone with
// an NSEC chain, or with signatures and no chain, is built as before, its
// denial of existence reading every record after buildSets.

// releasePartsPerCore is how many node ranges per core buildSets prepares
// in a zone whose records it releases: more, smaller ranges release their
// records sooner, at the cost of a collection now and then (see
// releaseEvery) and of a merge step per range.
const releasePartsPerCore = 8

// releaseEvery is how many ranges buildSets prepares in a large zone
// between two returns of the released records' memory to the system (see
// freeGarbage): the table's arrays were reserved beforehand, so nothing
// else would reuse it.
const releaseEvery = 4

// addrTable holds, for a zone whose records buildSets releases, the A and
// AAAA records of every node, which the additional part of NS, MX and SRV
// blocks copies from any node of the zone: the records of node n are
// recs[start[n]:start[n+1]], in the order of the node's sorted records,
// their rdata in data. For a million delegations with half of them glued
// it is 24 MB, against the 150 MB of records it lets go.
type addrTable struct {
	start []uint32
	recs  []addrRec
	data  []byte
	// signed has a bit per node holding RRSIGs over its A or AAAA
	// records (see signedAddresses).
	signed []uint64
}

// addrRec is one record of an addrTable.
type addrRec struct {
	ttl uint32
	rd  uint32 // offset of the rdata in addrTable.data
	rdl uint16
	typ uint16
}

// of returns the A and AAAA records of node n.
func (a *addrTable) of(n int32) []addrRec { return a.recs[a.start[n]:a.start[n+1]] }

// rdata returns the rdata of r.
func (a *addrTable) rdata(r *addrRec) []byte { return a.data[r.rd : r.rd+uint32(r.rdl)] }

// releasable reports whether the zone's records may be released as its
// blocks are prepared: it has no RRSIG, NSEC or NSEC3 record, so that
// buildDenial makes nothing and reads nothing; or it is signed with an
// NSEC3 chain, whose proof blocks are prepared from the ranges' records
// before buildSets (writeNSEC3Proofs), and what buildDenial reads after it
// is kept apart (b.chain, firstOrds; the address table says which
// addresses are signed). markNSEC3Owners must have run.
func (b *builder) releasable() bool {
	c := b.chain
	return c.nsec3() || c.firstSig < 0 && c.firstNSEC3 < 0 && !c.anyNSEC
}

// released reports whether buildSets releases the records as it goes
// (splitRecords ran): none are left for anything after it.
func (b *builder) released() bool { return b.rangeRecs != nil }

// buildAddrTable copies the A and AAAA records of every node into b.addrs,
// from the records sorted by node.
func (b *builder) buildAddrTable() {
	isAddr := func(t uint16) bool { return t == dns.TypeA || t == dns.TypeAAAA }
	a := &addrTable{start: make([]uint32, len(b.z.nodes)+1), signed: make([]uint64, (len(b.z.nodes)+63)/64)}
	count, size := 0, 0
	for i := range b.recs {
		r := &b.recs[i]
		if isAddr(r.typ) {
			a.start[r.node+1]++
			count++
			size += int(r.rdl)
		}
		if r.typ == dns.TypeRRSIG && isAddr(r.covered) {
			a.signed[r.node/64] |= 1 << (r.node % 64)
		}
	}
	for n := 1; n < len(a.start); n++ {
		a.start[n] += a.start[n-1]
	}
	a.recs = make([]addrRec, 0, count)
	a.data = make([]byte, 0, size)
	for i := range b.recs {
		if r := &b.recs[i]; isAddr(r.typ) {
			a.recs = append(a.recs, addrRec{ttl: r.ttl, rd: uint32(len(a.data)), rdl: r.rdl, typ: r.typ})
			a.data = append(a.data, b.rdataOf(r)...)
		}
	}
	b.addrs = a
}

// splitRecords gives each of parts ranges of nodes (as reserveTable and
// buildSetsParts cut them) its records and their rdata in arrays of its
// own, b.rangeRecs and b.rangeRdata, with each node's first record and
// each record's rdata offset counted in its range's arrays, and drops the
// builder's own arrays. The rdata is copied first and its old array
// collected before the records are, so that at most one of the two is
// held twice.
func (b *builder) splitRecords(parts int) {
	nodes := len(b.z.nodes)
	recs := b.recs
	at := make([]int, parts+1)
	for p := range parts {
		lo := int32(nodes * p / parts)
		at[p] = sort.Search(len(recs), func(i int) bool { return recs[i].node >= lo })
	}
	at[parts] = len(recs)
	b.rangeRecs, b.rangeRdata = make([][]rec, parts), make([][]byte, parts)
	inRanges := func(f func(p int)) {
		var wg sync.WaitGroup
		sem := make(chan struct{}, runtime.GOMAXPROCS(0))
		for p := range parts {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				f(p)
			}()
		}
		wg.Wait()
	}
	inRanges(func(p int) {
		size := 0
		for i := at[p]; i < at[p+1]; i++ {
			size += int(recs[i].rdl)
		}
		d := make([]byte, 0, size)
		for i := at[p]; i < at[p+1]; i++ {
			r := &recs[i]
			off := len(d)
			d = append(d, b.rdataOf(r)...)
			r.rd = uint32(off)
		}
		b.rangeRdata[p] = d
	})
	b.rdata = nil
	if b.size > bigText {
		freeGarbage()
	}
	if b.chain.nsec3() {
		// buildNSEC3 names the line of a node's first record.
		b.firstOrds = make([]uint32, nodes)
		for n, f := range b.first {
			if f >= 0 {
				b.firstOrds[n] = recs[f].ord
			}
		}
	}
	inRanges(func(p int) {
		b.rangeRecs[p] = slices.Clone(recs[at[p]:at[p+1]])
		for n := nodes * p / parts; n < nodes*(p+1)/parts; n++ {
			if b.first[n] >= 0 {
				b.first[n] -= int32(at[p])
			}
		}
	})
	// The parents are read only by buildNSEC, which a zone released
	// never reaches.
	b.recs, b.parent = nil, nil
	if b.size > bigText {
		freeGarbage()
	}
}

// buildRangesReleasing prepares the blocks of the ranges ps (see
// buildSetsParts) in node order, as many at once as there are cores, and
// drops each range's records and rdata as soon as its blocks are
// prepared; in a large zone their memory goes back to the system every
// releaseEvery ranges, and after the last: what the build does after
// buildSets then grows into that memory, not above it (the benchmarks'
// 1M-delegation TLD peaked at 312-317 MiB near the end of its build
// without it, 308-312 with it, three loads each).
func (b *builder) buildRangesReleasing(ps []setsPart) {
	var next, done atomic.Int32
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(ps)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				p := int(next.Add(1)) - 1
				if p >= len(ps) {
					return
				}
				s := ps[p].b
				ps[p].err = s.buildSetsRange(ps[p].lo, ps[p].hi)
				s.recs, s.rdata = nil, nil
				b.rangeRecs[p], b.rangeRdata[p] = nil, nil
				if d := int(done.Add(1)); b.size > bigText && (d%releaseEvery == 0 || d == len(ps)) {
					freeGarbage()
				}
			}
		}()
	}
	wg.Wait()
}
