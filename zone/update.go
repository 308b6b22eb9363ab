package zone

import (
	"bytes"
	"fmt"
	"slices"
	"sync"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/internal/hugepage"
)

// Apply returns a new zone: z with the records of del removed and those of
// add added, the way an IXFR's difference (RFC 1995) or the difference
// between the served zone and a reloaded file is applied. z itself is not
// changed and may go on serving, so that the new version is published by
// one pointer swap and readers of either version take no lock.
//
// A record of del matches a record of the zone with the same owner, type
// and RDATA (compared in canonical form, RFC 4034 section 6.2), whatever
// its TTL. A record of add that the zone already holds replaces it (its
// TTL is the one served). The change set is checked whole before anything
// is built: a deletion of a record the zone does not hold, a record
// outside the zone or of a class other than IN, or a result that breaks a
// rule the loader enforces (one SOA at the apex, NS at the apex, CNAME and
// other data, data below a DNAME, ...) is an error, and z is as it was.
//
// The new zone answers exactly as a zone loaded from its records would;
// see the package documentation ("Updates") for how it is built.
func (z *Zone) Apply(del, add []dns.RR) (*Zone, error) {
	// A version made in place may still be making its index (see
	// updateindex.go): the new version's starts from it.
	z.waitIndex()
	// A large zone's update copies the arrays it renumbers, tens to
	// hundreds of megabytes, much of it memory fresh from the system or
	// given back to it: in huge pages where the system leaves them to
	// advice, as a load does (internal/hugepage). 100 updates of 1,000
	// delegations (BenchmarkApplyServed), alternating with and without,
	// twice, load average 1.5-1.9: the signed TLD's first update after its
	// load 123-203 ms against 430-461, the slowest of the others 240-267
	// against 398-449, the median 88-89 against 87-102, the mean 94-95
	// against 94-105, the resident size's growth the same (296-309 MB);
	// unsigned, one run: the first 46 ms (146-217 without), the slowest
	// 49 (126-145), the median 19.5 (18-24).
	defer z.hugePages()()
	cs, err := z.changeSet(del, add)
	if err != nil {
		return nil, err
	}
	nz, why, err := z.incremental(cs)
	if err != nil || nz != nil {
		return nz, err
	}
	if !cs.checked {
		if err := z.checkDeletions(cs.del); err != nil {
			return nil, err
		}
	}
	if nz, err = z.rebuild(cs); err != nil {
		return nil, err
	}
	nz.upd.how = "rebuilt: " + why
	return nz, nil
}

// hugePages has the heap advised for huge pages (hugepage.Begin) while an
// update of z works, when z's table is applyHugePagesAbove or more, and
// returns the function that ends it: Apply's own arrays, and the index it
// leaves to the background (deferIndex).
func (z *Zone) hugePages() (end func()) {
	if z.MemoryBytes() < applyHugePagesAbove {
		return func() {}
	}
	return hugepage.Begin()
}

// applyHugePagesAbove is the size of a zone's table (MemoryBytes) from
// which Apply has the heap advised for huge pages while it runs.
const applyHugePagesAbove = 32 << 20

// Applied says how Apply made the zone: "incremental", or "rebuilt: " and
// why the change set could not be applied incrementally; "" for a zone
// that was loaded.
func (z *Zone) Applied() string { return z.upd.how }

// change is one record of a change set in the form Walk yields records:
// lowercase wire owner, canonical RDATA.
type change struct {
	Record
	covered uint16 // for RRSIG: the type covered
	ord     int32  // its place in the change set as given
}

// changeSet is a checked change set, each side sorted as Walk yields
// records, without duplicates.
type changeSet struct {
	del, add []change
	// checked is set once every deletion is known to be of a record the
	// zone holds: incremental checks them as it reads the nodes they
	// name, and a rebuild checks them first unless it did.
	checked bool
}

// changeError is an error of a change set: it names the zone and the record
// the operator (or the primary that sent the difference) must look at.
func (z *Zone) changeError(format string, args ...any) error {
	return &LoadError{Origin: z.origin, File: z.file, Msg: "change not applied: " + fmt.Sprintf(format, args...)}
}

// changeSet converts del and add to canonical records, checks each on its
// own and sorts them. Whether the zone holds the deleted records is
// checked apart (checkDeletions, or incremental as it groups them).
func (z *Zone) changeSet(del, add []dns.RR) (*changeSet, error) {
	cs := &changeSet{}
	var err error
	if cs.del, err = z.canonical(del, "deleted"); err != nil {
		return nil, err
	}
	if cs.add, err = z.canonical(add, "added"); err != nil {
		return nil, err
	}
	return cs, nil
}

// canonical converts rrs to changes in canonical form (Walk's: the owner
// and the RDATA names of RFC 4034 section 6.2 lowercased, those of the
// types the block writer compresses too), sorted, duplicates (equal owner,
// type and RDATA) removed, the last of them kept.
func (z *Zone) canonical(rrs []dns.RR, verb string) ([]change, error) {
	var out []change
	if len(rrs) < groupParallelMin {
		var err error
		if out, err = z.convert(rrs, verb); err != nil {
			return nil, err
		}
	} else {
		// Two halves side by side; the first record refused in the
		// input's order is the one reported.
		h := len(rrs) / 2
		var out2 []change
		var err, err2 error
		var wg sync.WaitGroup
		wg.Go(func() { out2, err2 = z.convert(rrs[h:], verb) })
		out, err = z.convert(rrs[:h], verb)
		wg.Wait()
		if err == nil {
			err = err2
		}
		if err != nil {
			return nil, err
		}
		out = append(out, out2...)
	}
	// Equal records stay in the input's order, so that the last of them
	// is the one kept. (A stable sort did that in O(n log² n) steps,
	// each a comparison of names: about 6 ms of CPU of a signed TLD's
	// update of 1,000 delegations, 8,700 records.)
	for i := range out {
		out[i].ord = int32(i)
	}
	slices.SortFunc(out, func(a, b change) int {
		if c := compareRecords(&a.Record, &b.Record); c != 0 {
			return c
		}
		return int(a.ord - b.ord)
	})
	j := 0
	for i := range out {
		if j > 0 && compareRecords(&out[j-1].Record, &out[i].Record) == 0 {
			out[j-1] = out[i]
			continue
		}
		out[j] = out[i]
		j++
	}
	return out[:j], nil
}

// convert converts rrs to changes in canonical form, in their order, for
// canonical.
func (z *Zone) convert(rrs []dns.RR, verb string) ([]change, error) {
	out := make([]change, 0, len(rrs))
	buf := make([]byte, 65536+512)
	for _, rr := range rrs {
		h := rr.Header()
		if h.Class != dns.ClassINET {
			return nil, z.changeError("record %s: class %s not supported (only IN)", rr, dns.Class(h.Class))
		}
		switch h.Rrtype {
		case dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY, dns.TypeANY, dns.TypeAXFR, dns.TypeIXFR:
			return nil, z.changeError("record %s: %s is not allowed in a zone", rr, dns.Type(h.Rrtype))
		}
		n, err := dns.PackRR(rr, buf, 0, nil, false)
		if err != nil {
			return nil, z.changeError("record %s cannot be encoded: %v", rr, err)
		}
		on := wireNameLen(buf[:n])
		if on < 0 || n < on+10 {
			return nil, z.changeError("record %s cannot be encoded", rr)
		}
		owner := lowerWire(buf[:on])
		if !isSubdomain(owner, z.apex) {
			return nil, z.changeError("%s %s is outside the zone", verb, rr)
		}
		data := bytes.Clone(buf[on+10 : n])
		if len(data) == 0 && h.Rrtype != dns.TypeNULL && h.Rrtype != dns.TypeAPL {
			if _, known := dns.TypeToRR[h.Rrtype]; known {
				return nil, z.changeError("%s record %s has no data", verb, rr)
			}
		}
		if !rdataNamesOK(h.Rrtype, data) {
			return nil, z.changeError("%s record %s has malformed data", verb, rr)
		}
		canonicalRdata(h.Rrtype, data)
		c := change{Record: Record{Owner: owner, Type: h.Rrtype, TTL: h.Ttl, Data: data}}
		if h.Rrtype == dns.TypeRRSIG && len(data) >= 2 {
			c.covered = uint16(data[0])<<8 | uint16(data[1])
		}
		out = append(out, c)
	}
	return out, nil
}

// checkDeletions establishes that the zone holds every record of del. It
// reads only the nodes del names.
func (z *Zone) checkDeletions(del []change) error {
	it := newWalkIter(z)
	for i := 0; i < len(del); {
		owner := del[i].Owner
		j := i
		for j < len(del) && bytes.Equal(del[j].Owner, owner) {
			j++
		}
		n := z.find(owner, hashName(owner))
		if n == None {
			return z.notHeld(&del[i], true)
		}
		held := it.nodeRecords(int(n))
		for k := range del[i:j] {
			if d := &del[i+k]; indexRecord(held, d.Type, d.Data) < 0 {
				return z.notHeld(d, false)
			}
		}
		i = j
	}
	return nil
}

// notHeld is the error of a deletion of record d, which the zone does not
// hold; noName when it holds no name of d's owner either.
func (z *Zone) notHeld(d *change, noName bool) error {
	if noName {
		return z.changeError("deleted record %s is not in the zone (no such name)", d.String())
	}
	return z.changeError("deleted record %s is not in the zone", d.String())
}

// indexRecord returns the index in rs of the record of type t with RDATA
// data, -1 when rs holds none.
func indexRecord(rs []Record, t uint16, data []byte) int {
	return slices.IndexFunc(rs, func(r Record) bool { return r.Type == t && bytes.Equal(r.Data, data) })
}

// nodeRecords returns copies of the records of node n, in Walk's order.
func (it *walkIter) nodeRecords(n int) []Record {
	it.node, it.ents, it.ent = n, it.ents[:0], 0
	it.kept = it.keptFor(n)
	if err := it.load(); err != nil {
		return nil
	}
	var out []Record
	for {
		if it.ent >= len(it.ents) {
			return out
		}
		r, _ := it.next()
		out = append(out, Record{Owner: bytes.Clone(r.Owner), Type: r.Type, TTL: r.TTL, Data: bytes.Clone(r.Data)})
	}
}

// keptFor returns the index of the first kept run of node n or after it.
func (it *walkIter) keptFor(n int) int {
	if it.z.kept == nil {
		return 0
	}
	s := it.z.kept.sets
	i, _ := slices.BinarySearchFunc(s, uint32(n), func(k keptSet, n uint32) int { return int(k.node) - int(n) })
	return i
}

// String renders a change's record in presentation format for errors.
func (c *change) String() string {
	rr, err := c.RR()
	if err != nil {
		return wireString(c.Owner) + " " + typeName(c.Type)
	}
	return rr.String()
}

// rebuild builds the changed zone from scratch: the zone's records as Walk
// yields them, less del, with add merged in, fed straight to the builder
// (no text is written or parsed).
func (z *Zone) rebuild(cs *changeSet) (*Zone, error) {
	// The builder is given no file, so that an error does not send it
	// reading the zone's file for a line number: the records it would
	// count are not that file's.
	b := &builder{origin: z.origin, apex: z.apex, data: []byte{}}
	b.initIndex(len(z.nodes) + len(cs.add))
	b.recs = make([]rec, 0, z.records+len(cs.add))
	var ord uint32
	feed := func(r *Record, covered uint16) {
		n := b.nodeFor(r.Owner)
		b.recs = append(b.recs, rec{node: n, typ: r.Type, covered: covered, ttl: r.TTL, rd: uint32(len(b.rdata)), rdl: uint16(len(r.Data)), ord: ord})
		b.rdata = append(b.rdata, r.Data...)
		if r.Type == dns.TypeSOA && len(r.Data) >= 4 {
			b.soaMinimum = be32(r.Data[len(r.Data)-4:])
		}
		ord++
	}
	del, add := cs.del, cs.add
	err := z.Walk(func(r *Record) error {
		for len(add) > 0 && compareRecords(&add[0].Record, r) < 0 {
			feed(&add[0].Record, add[0].covered)
			add = add[1:]
		}
		if len(del) > 0 && compareRecords(&del[0].Record, r) == 0 {
			del = del[1:]
			return nil
		}
		if len(add) > 0 && compareRecords(&add[0].Record, r) == 0 {
			return nil // replaced by the addition, fed when Walk passes it
		}
		var covered uint16
		if r.Type == dns.TypeRRSIG && len(r.Data) >= 2 {
			covered = uint16(r.Data[0])<<8 | uint16(r.Data[1])
		}
		feed(r, covered)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range add {
		feed(&add[i].Record, add[i].covered)
	}
	nz, err := b.build()
	if err != nil {
		if le, ok := err.(*LoadError); ok {
			le.File, le.Line, le.Column = z.file, 0, 0
			le.Msg = "change not applied: the changed zone is not valid: " + le.Msg
		}
		return nil, err
	}
	nz.file = z.file
	return nz, nil
}
