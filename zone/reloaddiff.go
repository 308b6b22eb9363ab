package zone

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
)

// This file reloads a zone file as a change to the version served: the
// file is parsed as a load parses it, its records are compared with the
// served version's name by name, and a small difference is applied with
// Apply instead of building the whole table again (issue 14).

// Reloaded is a zone file read again as a new version of a served zone.
type Reloaded struct {
	// Zone is the new version: made by Apply from the served one, built
	// from the file, or the served version itself when the file holds
	// the same records.
	Zone *Zone
	// Del and Add are the difference applied to the served version (nil
	// when the zone was built from the file, or is unchanged), in
	// canonical form: lowercase owners and RDATA names where RFC 4034
	// section 6.2 asks. A record whose TTL alone changed is in Add.
	Del, Add []dns.RR
	// How says how Zone was made: "unchanged", "incremental" or
	// "rebuilt: ..." (Zone.Applied), or "built: ..." and why the
	// difference was not applied.
	How string
}

// ReloadFile reads the zone file at path, parsed as LoadFile parses it,
// as a new version of served. When at most maxChanges records differ,
// the difference is applied to served with Apply (see Reloaded.How),
// which leaves served untouched; otherwise the table is built from the
// file as LoadFile builds it. A file that fails to parse, or whose
// records break a zone rule, is an error naming its file and line, as
// from LoadFile: a difference that Apply refuses is built from the file
// for that error.
//
// The version made by Apply has the warnings a load of the file would
// give, but that those it found name no line; its RDATA names are served
// in lowercase (see the package documentation, "Updates").
func ReloadFile(served *Zone, path string, maxChanges int) (*Reloaded, error) {
	origin := served.origin
	f, err := os.Open(path)
	if err != nil {
		return nil, &LoadError{Origin: origin, File: path, Msg: err.Error(), Err: err}
	}
	defer f.Close()
	var size int64
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
	}
	want := chunkCount()
	if size < parallelMin {
		want = 1
	}
	lines, chunks, err := scanText(f, size, want, origin)
	if err != nil {
		return nil, &LoadError{Origin: origin, File: path, Msg: err.Error(), Err: err}
	}
	open := func(off, end int64) io.Reader {
		return io.NewSectionReader(f, off, end-off)
	}
	parse := func() (*builder, error) {
		return parseText(nil, lines, int(chunks[len(chunks)-1].end), chunks, open, origin, path)
	}
	return served.reload(parse, maxChanges)
}

// ReloadText is ReloadFile of a zone's text held in memory; file names it
// in errors.
func ReloadText(served *Zone, data []byte, file string, maxChanges int) (*Reloaded, error) {
	origin := served.origin
	want := chunkCount()
	if len(data) < parallelMin {
		want = 1
	}
	lines, chunks, err := scanText(bytes.NewReader(data), int64(len(data)), want, origin)
	if err != nil {
		return nil, &LoadError{Origin: origin, File: file, Msg: err.Error(), Err: err}
	}
	open := func(off, end int64) io.Reader { return bytes.NewReader(data[off:end]) }
	parse := func() (*builder, error) { return parseText(data, lines, len(data), chunks, open, origin, file) }
	return served.reload(parse, maxChanges)
}

// reload makes the new version of z from the records parse gathers.
func (z *Zone) reload(parse func() (*builder, error), maxChanges int) (*Reloaded, error) {
	b, err := parse()
	if err != nil {
		return nil, err
	}
	del, add, small, err := z.diffParsed(b, maxChanges)
	if err != nil {
		return nil, err
	}
	if !small {
		nz, err := b.buildParsed()
		if err != nil {
			return nil, err
		}
		return &Reloaded{Zone: nz, How: fmt.Sprintf("built: more than %d records changed", maxChanges)}, nil
	}
	if len(del) == 0 && len(add) == 0 {
		return &Reloaded{Zone: z, How: "unchanged"}, nil
	}
	r := &Reloaded{}
	if r.Del, err = recordsRR(del); err == nil {
		r.Add, err = recordsRR(add)
	}
	if err != nil {
		return nil, err
	}
	// The parsed records and the parser's garbage are several times the
	// size of what Apply adds: let them go first, as a build collects
	// its parser's garbage before it allocates (see buildParsed).
	file, big := b.file, b.size > bigText
	b = nil
	if big {
		runtime.GC()
	}
	nz, aerr := z.Apply(r.Del, r.Add)
	if aerr != nil {
		// The builder's checks name the file and line of the record at
		// fault, which Apply's cannot: parse again and build for the
		// error. A build that succeeds where Apply refused is served,
		// being what the file says.
		if b, err = parse(); err != nil {
			return nil, err
		}
		nz, err := b.buildParsed()
		if err != nil {
			return nil, err
		}
		return &Reloaded{Zone: nz, How: "built: the difference did not apply: " + aerr.Error()}, nil
	}
	nz.file = file
	r.Zone, r.How = nz, nz.Applied()
	return r, nil
}

// recordsRR converts records to miekg/dns's form.
func recordsRR(recs []Record) ([]dns.RR, error) {
	out := make([]dns.RR, 0, len(recs))
	for i := range recs {
		rr, err := recs[i].RR()
		if err != nil {
			return nil, fmt.Errorf("zone: record %s %s of the difference does not decode: %w",
				wireString(recs[i].Owner), typeName(recs[i].Type), err)
		}
		out = append(out, rr)
	}
	return out, nil
}

// parsedEnt is one parsed record of a node in canonical form.
type parsedEnt struct {
	typ      uint16
	ttl      uint32
	ord      uint32
	off, end uint32 // RDATA in the node's scratch
}

// diffParsed compares the records b parsed with z's, name by name: each
// parsed name's records with those of the same name in z (found through
// z's index), then the records of the names of z the file no longer has.
// It returns z's records the file lacks (del) and the file's records z
// lacks or holds with another TTL (add), each a copy in Walk's form, and
// small false, with nothing, as soon as more than maxChanges records
// differ. The names are compared in parallel, a range of them per CPU,
// as the file is parsed.
func (z *Zone) diffParsed(b *builder, maxChanges int) (del, add []Record, small bool, err error) {
	recs := b.recs
	// The records by builder node: a counting sort of their indexes.
	start := make([]int32, len(b.names)+1)
	for i := range recs {
		start[recs[i].node+1]++
	}
	for i := 1; i < len(start); i++ {
		start[i] += start[i-1]
	}
	byNode := make([]int32, len(recs))
	fill := slices.Clone(start[:len(start)-1])
	for i := range recs {
		n := recs[i].node
		byNode[fill[n]] = int32(i)
		fill[n]++
	}
	fill = nil

	d := &nodeDiff{z: z, b: b, start: start, byNode: byNode, max: int64(maxChanges),
		seen: make([]uint64, (len(z.nodes)+63)/64)}
	parts := make([]diffPart, chunkCount())
	inParallel := func(n int, fn func(p *diffPart, lo, hi int)) {
		var wg sync.WaitGroup
		for i := range parts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if parts[i].it == nil {
					parts[i].it = newWalkIter(z)
				}
				fn(&parts[i], n*i/len(parts), n*(i+1)/len(parts))
			}()
		}
		wg.Wait()
	}
	inParallel(len(b.names), d.parsedNames)
	// The names of z the file does not have lose all their records: seen
	// is whole once every parsed name has been compared.
	if !d.over.Load() {
		inParallel(len(z.nodes), d.goneNames)
	}
	for i := range parts {
		if parts[i].err != nil {
			return nil, nil, false, parts[i].err
		}
	}
	if d.over.Load() {
		return nil, nil, false, nil
	}
	for i := range parts {
		del, add = append(del, parts[i].del...), append(add, parts[i].add...)
	}
	return del, add, true, nil
}

// nodeDiff is the comparison of parsed records with a zone's, shared by
// the goroutines of diffParsed.
type nodeDiff struct {
	z             *Zone
	b             *builder
	start, byNode []int32 // the parsed records by builder node
	seen          []uint64
	max           int64
	changes       atomic.Int64
	over          atomic.Bool
}

// diffPart is what one goroutine of diffParsed found.
type diffPart struct {
	it       *walkIter
	scratch  []byte
	ents     []parsedEnt
	del, add []Record
	err      error
}

// keep copies a record of the difference to dst and reports whether the
// difference is still within its bound.
func (d *nodeDiff) keep(dst *[]Record, owner []byte, typ uint16, ttl uint32, data []byte) bool {
	*dst = append(*dst, Record{Owner: bytes.Clone(owner), Type: typ, TTL: ttl, Data: bytes.Clone(data)})
	if d.changes.Add(1) > d.max {
		d.over.Store(true)
		return false
	}
	return true
}

// parsedNames compares the records of the builder nodes lo to hi with the
// zone's at the same names.
func (d *nodeDiff) parsedNames(p *diffPart, lo, hi int) {
	z, b, recs, it := d.z, d.b, d.b.recs, p.it
	for n := lo; n < hi && !d.over.Load(); n++ {
		rs := d.byNode[d.start[n]:d.start[n+1]]
		if len(rs) == 0 {
			continue
		}
		owner := b.names[n]
		scratch, ents := p.scratch[:0], p.ents[:0]
		for _, ri := range rs {
			r := &recs[ri]
			off := len(scratch)
			scratch = append(scratch, b.rdataOf(r)...)
			canonicalRdata(r.typ, scratch[off:])
			ents = append(ents, parsedEnt{typ: r.typ, ttl: r.ttl, ord: r.ord, off: uint32(off), end: uint32(len(scratch))})
		}
		slices.SortFunc(ents, func(x, y parsedEnt) int {
			if x.typ != y.typ {
				return int(x.typ) - int(y.typ)
			}
			if c := bytes.Compare(scratch[x.off:x.end], scratch[y.off:y.end]); c != 0 {
				return c
			}
			return int(x.ord) - int(y.ord)
		})
		// Copies of a record count once; the first is the one built.
		ents = slices.CompactFunc(ents, func(x, y parsedEnt) bool {
			return x.typ == y.typ && bytes.Equal(scratch[x.off:x.end], scratch[y.off:y.end])
		})
		p.scratch, p.ents = scratch, ents
		sn := z.find(owner, hashName(owner))
		if sn != None {
			atomic.OrUint64(&d.seen[sn/64], 1<<(sn%64))
			if err := z.loadNode(it, int(sn)); err != nil {
				p.err = err
				d.over.Store(true)
				return
			}
		} else {
			it.ents, it.data = it.ents[:0], it.data[:0]
		}
		old := it.ents
		i, j := 0, 0
		for i < len(old) || j < len(ents) {
			c := 0
			switch {
			case i == len(old):
				c = 1
			case j == len(ents):
				c = -1
			default:
				o, e := &old[i], &ents[j]
				if o.typ != e.typ {
					c = int(o.typ) - int(e.typ)
				} else {
					c = bytes.Compare(it.data[o.off:o.end], scratch[e.off:e.end])
				}
			}
			ok := true
			switch {
			case c < 0:
				o := &old[i]
				ok = d.keep(&p.del, owner, o.typ, o.ttl, it.data[o.off:o.end])
				i++
			case c > 0:
				e := &ents[j]
				ok = d.keep(&p.add, owner, e.typ, e.ttl, scratch[e.off:e.end])
				j++
			default:
				o, e := &old[i], &ents[j]
				if o.ttl != e.ttl {
					ok = d.keep(&p.add, owner, e.typ, e.ttl, scratch[e.off:e.end])
				}
				i++
				j++
			}
			if !ok {
				return
			}
		}
	}
}

// goneNames deletes the records of the zone's nodes lo to hi that no
// parsed name matched.
func (d *nodeDiff) goneNames(p *diffPart, lo, hi int) {
	z, it := d.z, p.it
	for sn := lo; sn < hi && !d.over.Load(); sn++ {
		if d.seen[sn/64]&(1<<(sn%64)) != 0 || z.nodes[sn].NSets == 0 && z.nodes[sn].Flags&FlagNSEC3Owner == 0 && !z.hasKept(sn) {
			continue
		}
		if err := z.loadNode(it, sn); err != nil {
			p.err = err
			d.over.Store(true)
			return
		}
		nd := &z.nodes[sn]
		owner := z.names[nd.Name : nd.Name+uint32(nd.Len)]
		for k := range it.ents {
			o := &it.ents[k]
			if !d.keep(&p.del, owner, o.typ, o.ttl, it.data[o.off:o.end]) {
				return
			}
		}
	}
}

// loadNode decodes the records of node n into it.ents and it.data, sorted
// as Walk yields them, copies of a record once.
func (z *Zone) loadNode(it *walkIter, n int) error {
	it.node, it.ents, it.ent = n, it.ents[:0], 0
	it.kept = 0
	if z.kept != nil {
		it.kept, _ = slices.BinarySearchFunc(z.kept.sets, uint32(n), func(k keptSet, n uint32) int { return int(k.node) - int(n) })
	}
	if err := it.load(); err != nil {
		return err
	}
	it.ents = slices.CompactFunc(it.ents, func(a, b walkEnt) bool { return it.cmp(a, b) == 0 })
	return nil
}

// hasKept reports whether node n has kept records (glue, occluded data).
func (z *Zone) hasKept(n int) bool {
	if z.kept == nil {
		return false
	}
	_, found := slices.BinarySearchFunc(z.kept.sets, uint32(n), func(k keptSet, n uint32) int { return int(k.node) - int(n) })
	return found
}

// canonicalRdata puts the uncompressed RDATA rd of a record of type typ in
// the canonical form Walk yields (RFC 4034 section 6.2): the names of the
// types the block writer compresses lowercased, as Walk's expansion of
// them lowercases, and those of the other types section 6.2 lists.
func canonicalRdata(typ uint16, rd []byte) {
	if !compressedRdata(typ) {
		lowerRdataNames(typ, rd)
		return
	}
	// Label lengths are below 64, which lowercasing leaves alone: the
	// names' bytes can be lowercased as a whole.
	switch typ {
	case dns.TypeMX:
		if len(rd) > 2 {
			lowerInto(rd[2:], rd[2:])
		}
	case dns.TypeSOA:
		if len(rd) > 20 {
			lowerInto(rd[:len(rd)-20], rd[:len(rd)-20])
		}
	default:
		lowerInto(rd, rd)
	}
}
