package zone

import (
	"bytes"
	"hash/maphash"
	"io"
	"math/bits"
	"os"
	"runtime"
	"slices"
	"sync"

	"github.com/miekg/dns"
)

// nameTable is a small set of lowercase wire names (or name suffixes), each
// with a 16-bit value, for the block writer: the compression targets of the
// block being written and the targets whose addresses were already added.
// A writer prepares one block after another, millions of them in a large
// zone; with Go maps (string keys, a map per block) that was the largest
// allocation of a build. This table is reused from block to block: reset
// starts a new generation instead of clearing, and keys are copied into
// one reused byte arena, so a block costs no allocation at all.
type nameTable struct {
	seed  maphash.Seed
	gen   uint32
	n     int
	slots []nameSlot // power-of-two length, at most half full
	keys  []byte
}

type nameSlot struct {
	gen  uint32 // the slot is in use when gen equals the table's
	hash uint32
	off  uint32 // of the key in keys
	len  uint16
	val  uint16
}

// newNameTable returns an empty table with room for 32 names before it grows.
func newNameTable() *nameTable {
	return &nameTable{seed: maphash.MakeSeed(), gen: 1, slots: make([]nameSlot, 64)}
}

// reset empties the table in constant time.
func (t *nameTable) reset() {
	t.gen++
	if t.gen == 0 {
		// After 2^32 resets, stale slots could look current: clear them.
		clear(t.slots)
		t.gen = 1
	}
	t.n = 0
	t.keys = t.keys[:0]
}

func (t *nameTable) hash(k []byte) uint32 { return uint32(maphash.Bytes(t.seed, k)) }

// get returns the value stored for k.
func (t *nameTable) get(k []byte) (uint16, bool) {
	h := t.hash(k)
	mask := uint32(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.gen != t.gen {
			return 0, false
		}
		if s.hash == h && int(s.len) == len(k) && bytes.Equal(t.keys[s.off:s.off+uint32(s.len)], k) {
			return s.val, true
		}
	}
}

// add stores v for k unless k is present already (the first value wins, as
// the block writer's first occurrence of a name is its compression
// target); it reports whether k was added.
func (t *nameTable) add(k []byte, v uint16) bool {
	h := t.hash(k)
	mask := uint32(len(t.slots) - 1)
	i := h & mask
	for ; t.slots[i].gen == t.gen; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.hash == h && int(s.len) == len(k) && bytes.Equal(t.keys[s.off:s.off+uint32(s.len)], k) {
			return false
		}
	}
	t.slots[i] = nameSlot{gen: t.gen, hash: h, off: uint32(len(t.keys)), len: uint16(len(k)), val: v}
	t.keys = append(t.keys, k...)
	t.n++
	if t.n*2 > len(t.slots) {
		t.grow()
	}
	return true
}

// grow doubles the slots, moving the current generation's entries.
func (t *nameTable) grow() {
	old := t.slots
	t.slots = make([]nameSlot, 2*len(old))
	mask := uint32(len(t.slots) - 1)
	for _, s := range old {
		if s.gen != t.gen {
			continue
		}
		i := s.hash & mask
		for t.slots[i].gen == t.gen {
			i = (i + 1) & mask
		}
		t.slots[i] = s
	}
}

// lowerInto writes the lowercase form of the wire name w into dst (at
// least len(w) long) and returns it. dst may be w itself: each byte is read
// before it is written.
func lowerInto(dst, w []byte) []byte {
	dst = dst[:len(w)]
	for i := 0; i < len(w); {
		l := int(w[i])
		dst[i] = w[i]
		for j := i + 1; j <= i+l; j++ {
			dst[j] = lowerASCII(w[j])
		}
		i += l + 1
	}
	return dst
}

// labelOffsetsInto appends the offset of each label of the wire name w,
// leftmost first and without the root, to dst, which the caller
// reuses (or keeps on its stack) so that no slice is allocated per name.
func labelOffsetsInto(dst []uint8, w []byte) []uint8 {
	for i := 0; w[i] != 0; i += int(w[i]) + 1 {
		dst = append(dst, uint8(i))
	}
	return dst
}

// indexSize is the slot count of a zone index for n nodes, as buildIndex
// sizes it: the least power of two at least one and a half times n (and
// at least 2), a load factor of two thirds at most. Linear probing then
// takes two slots a successful lookup and five an unsuccessful one on
// average at worst, nearly always in the cache line of the first slot
// (eight slots). At a load factor of one half at most, as before, the
// signed TLD's index took 64 MB instead of 32, which every update that
// adds or removes names copies: its MemoryBytes went from 618 to 585 MB,
// the resident size after its load from 760 to 730 MiB and after 30
// updates from 225 to 177-188 MiB over that, and its queries took the
// same time within the noise (TestApplyHundredBig, alternating: 842-923
// ns against 871-940 on a fresh table). The 1M-delegation TLD's index
// keeps its size.
func indexSize(n int) int {
	size := 2
	for size < n+n/2 {
		size <<= 1
	}
	return size
}

// initIndex sizes the builder's name index and name list for about hint
// names. Growing the list by appending was a tenth of the parse of a
// million delegations, each step copying all the names so far.
func (b *builder) initIndex(hint int) {
	b.idx = make([]slot, max(16, indexSize(hint)))
	b.idxN = 0
	b.names = make([][]byte, 0, hint)
}

// lookup returns the node of the lowercase wire name w: in builder order
// before the canonical sort, the final node after it.
func (b *builder) lookup(w []byte) (int32, bool) { return b.lookupHash(w, hashName(w)) }

// lookupHash is lookup of a name whose hash is h.
func (b *builder) lookupHash(w []byte, h uint32) (int32, bool) {
	mask := uint32(len(b.idx) - 1)
	for i := slotOf(h, mask); ; i = (i + 1) & mask {
		s := b.idx[i]
		if s.node == 0 {
			return 0, false
		}
		if s.hash == h && bytes.Equal(b.name(int32(s.node-1)), w) {
			return int32(s.node - 1), true
		}
	}
}

// addName returns the builder node of the lowercase wire name w and
// whether it was added now. w may be a scratch buffer: a new name is
// copied into the name arena, so that a zone of millions of names costs no
// allocation per name.
func (b *builder) addName(w []byte) (int32, bool) {
	h := hashName(w)
	mask := uint32(len(b.idx) - 1)
	i := slotOf(h, mask)
	for ; b.idx[i].node != 0; i = (i + 1) & mask {
		if s := b.idx[i]; s.hash == h && bytes.Equal(b.names[s.node-1], w) {
			return int32(s.node - 1), false
		}
	}
	if len(b.arena)+len(w) > cap(b.arena) {
		b.arena = make([]byte, 0, max(1<<20, len(w)))
	}
	b.arena = append(b.arena, w...)
	w = b.arena[len(b.arena)-len(w):]
	n := int32(len(b.names))
	b.names = append(b.names, w)
	b.idx[i] = slot{hash: h, node: uint32(n) + 1}
	b.idxN++
	if b.idxN*3 > len(b.idx)*2 {
		old := b.idx
		b.idx = make([]slot, 2*len(old))
		mask = uint32(len(b.idx) - 1)
		for _, s := range old {
			if s.node == 0 {
				continue
			}
			j := slotOf(s.hash, mask)
			for b.idx[j].node != 0 {
				j = (j + 1) & mask
			}
			b.idx[j] = s
		}
	}
	return n, true
}

// name returns the lowercase wire name of node n: from the name list
// while the builder has one, else (after the canonical sort) from the
// zone's node and name arena.
func (b *builder) name(n int32) []byte {
	if b.names != nil {
		return b.names[n]
	}
	nd := &b.z.nodes[n]
	end := nd.Name + uint32(nd.Len)
	return b.nameArena[nd.Name:end:end]
}

// placeNames copies the names into the zone's name arena in canonical
// order (order lists builder nodes by final node) and makes the zone's
// nodes. The builder's own arena and its name list are dropped: from here
// on each name exists once, and name reads it from the zone.
func (b *builder) placeNames(order []int32) {
	z := b.z
	total := 0
	for _, w := range b.names {
		total += len(w)
	}
	// CNAME and DNAME targets are appended later (buildSets).
	for i := range b.recs {
		if t := b.recs[i].typ; t == dns.TypeCNAME || t == dns.TypeDNAME {
			total += int(b.recs[i].rdl)
		}
	}
	// With room for the names the first updates add (Apply appends
	// them, see makeNodes): without it the first update that adds a name
	// copied the whole arena, 60 MB for the benchmarks' NSEC3-signed TLD
	// of a million delegations.
	z.names = newArena[byte](z, withRoom(total))
	for _, old := range order {
		z.names = append(z.names, b.names[old]...)
	}
	z.nodes = make([]Node, len(order))
	off := 0
	for n := range z.nodes {
		l := nameLen(z.names[off:])
		w := z.names[off : off+l : off+l]
		nd := &z.nodes[n]
		nd.Name = uint32(off)
		nd.Len = uint8(l)
		nd.Labels = uint8(countLabels(w))
		nd.Set0 = None
		if w[0] == 1 && w[1] == '*' {
			nd.Flags |= FlagIsWildcard
		}
		off += l
	}
	b.arena, b.names, b.nameArena = nil, nil, z.names
}

// renumberIndex turns the builder's name index into the zone's: node
// numbers become final ones (newIdx maps builder nodes to final nodes).
// It is the index buildIndex would make, but costs no second hashing of
// every name and no second table; when its size is not the one
// buildIndex would choose (the size hint was far off), the zone's index
// is built afresh instead.
func (b *builder) renumberIndex(newIdx []int32) {
	z := b.z
	size := indexSize(len(z.nodes))
	if size != len(b.idx) {
		b.idx = nil
		z.buildIndex()
		b.idx = z.index
		return
	}
	for i := range b.idx {
		if s := &b.idx[i]; s.node != 0 {
			s.node = uint32(newIdx[s.node-1]) + 1
		}
	}
	z.index, z.mask = b.idx, uint32(size-1)
	z.apexHash = hashName(z.apex)
	z.apexNode = z.find(z.apex, z.apexHash)
}

// reserveTable sizes the table's arenas (RRsets, blocks, wire, patches,
// trims) before the blocks are prepared, so that they are not copied again
// and again as they grow (each copy leaves the old array behind until the
// next collection, which raised the peak of a big build). It follows the
// rules of buildSets: an RRset gets a block unless it is occluded (DS at a
// delegation aside), and its covering RRSIGs another. The wire is
// estimated, not bounded: each record with a 2-byte owner code, an NS
// target below the owner compressed to its own labels and a code, and
// each glue address once with its owner a code (it follows the NS record
// naming it). A zone whose blocks need more grows the arena; one that
// needs less leaves pages of it that are never written, and so never
// resident. The kept records (glue, occluded data; see keep) are counted
// the same way, for keep to reserve their arenas when it makes them:
// grown by appending, a million delegations' glue allocated five times
// what it holds, at the build's peak.
func (b *builder) reserveTable() {
	z := b.z
	parts := b.setsParts
	if parts == 0 {
		parts = 1
		if len(z.nodes) >= parallelSetsMin {
			parts = runtime.GOMAXPROCS(0)
		}
	}
	parts = max(1, min(parts, len(z.nodes)))
	release := parts > 1 && b.releasable()
	if release && b.setsParts == 0 {
		parts = min(releasePartsPerCore*runtime.GOMAXPROCS(0), len(z.nodes))
	}
	// The estimate is made per range of nodes that buildSets builds at
	// once, over the ranges at once: each range's blocks are written at
	// the place its estimate gives it in the arenas (see buildSetsParts).
	b.setsEst = make([]tableEstimate, parts)
	var wg sync.WaitGroup
	for p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.setsEst[p] = b.estimateRange(len(z.nodes)*p/parts, len(z.nodes)*(p+1)/parts)
		}()
	}
	wg.Wait()
	// The negative answers' SOA and its RRSIGs are two more blocks, of
	// the apex, in the first range.
	b.setsEst[0].blocks += 2
	var t tableEstimate
	for _, e := range b.setsEst {
		t.add(e)
	}
	b.keptWire, b.keptSets = t.keptWire, t.keptSets
	// With room for the first updates (Apply appends to these arenas):
	// without it the first update of a large zone copied every arena,
	// hundreds of megabytes.
	z.sets = reserveArena(z, z.sets, withRoom(t.sets))
	z.blocks = reserveArena(z, z.blocks, withRoom(t.blocks))
	z.wire = reserveArena(z, z.wire, withRoom(t.wire))
	z.patches = reserveArena(z, z.patches, withRoom(t.patches))
	z.trims = reserveArena(z, z.trims, withRoom(t.trims))
	// A target that does not exist adds the names its wildcard lookup
	// tries: they are few, and grow the slice by appending.
	b.refs = slices.Grow(b.refs, t.refs)
	// The sort keys and the sort's second array of records are garbage
	// now. They are collected only after the table's arrays are
	// reserved: memory the heap had used before is cleared when it is
	// allocated again, which would make every page of the reserved room
	// resident at once, while the records are all still there; room
	// taken from fresh memory becomes resident only as it is written.
	if b.size > bigText {
		freeGarbage()
	}
	if release {
		b.buildAddrTable()
		b.splitRecords(parts)
	}
}

// withRoom is n and a thirty-second more: the size the builder reserves
// for an arena of n elements that Apply appends to, so that the first
// updates of a zone append in place instead of copying the arena (see the
// package documentation, "Updates"). Room never written is never resident
// (reserveRoom).
func withRoom(n int) int { return n + n/32 }

// reserveRoom returns s with room for n more elements. An empty s gets an
// array made for it, not grown by slices.Grow, which clears the room it
// adds: clearing writes every page, and made the whole of a large
// table's reserved arrays resident at once, before the blocks were
// written and while the builder's records were all still held. Memory
// the heap takes fresh from the system is zero already and is not
// cleared (memory it used before is), so that room is resident only as
// it is written.
func reserveRoom[T any](s []T, n int) []T {
	if len(s) == 0 {
		return make([]T, 0, n)
	}
	return slices.Grow(s, n)
}

// tableEstimate is reserveTable's estimate of what the blocks of a range
// of nodes take: RRsets, blocks, wire bytes, patch positions and trims of
// the table, in-zone targets of NS, MX and SRV blocks (see builder.refs),
// and the kept records' wire bytes and runs.
type tableEstimate struct {
	sets, blocks, wire, patches, trims, refs, keptWire, keptSets int
}

func (t *tableEstimate) add(e tableEstimate) {
	t.sets += e.sets
	t.blocks += e.blocks
	t.wire += e.wire
	t.patches += e.patches
	t.trims += e.trims
	t.refs += e.refs
	t.keptWire += e.keptWire
	t.keptSets += e.keptSets
}

// estimateRange is reserveTable's estimate for the nodes lo to hi (not
// included).
func (b *builder) estimateRange(lo, hi int) (e tableEstimate) {
	z := b.z
	var tgt [256]byte
	for n := lo; n < hi; n++ {
		recs := b.recsOf(int32(n))
		nd := &z.nodes[n]
		if recs == nil || nd.Flags&FlagNSEC3Owner != 0 {
			// An NSEC3 owner gets no RRset (see markNSEC3Owners).
			continue
		}
		owner := b.name(int32(n))
		kept := false
		for i := 0; i < len(recs); {
			j := i
			for j < len(recs) && recs[j].typ == recs[i].typ && recs[j].covered == recs[i].covered {
				j++
			}
			t := recs[i].typ
			switch {
			case t == dns.TypeRRSIG:
				c := recs[i].covered
				if c != dns.TypeRRSIG && hasBlock(nd, c) && slices.ContainsFunc(recs, func(r rec) bool { return r.typ == c }) {
					e.blocks++
					for _, r := range recs[i:j] {
						e.wire += 12 + int(r.rdl)
						e.patches++
					}
				} else {
					kept = true
					for _, r := range recs[i:j] {
						e.keptWire += 12 + int(r.rdl)
					}
				}
			default:
				e.sets++
				if hasBlock(nd, t) {
					e.blocks++
					for k := i; k < j; k++ {
						r := &recs[k]
						rdl := int(r.rdl)
						e.patches++
						if compressedRdata(t) {
							e.patches++
						}
						if t == dns.TypeNS {
							if rd := b.rdataOf(r); isSubdomain(rd, owner) {
								rdl = len(rd) - len(owner) + 2
							}
						}
						if tg := targetOf(tgt[:], t, b.rdataOf(r)); tg != nil && isSubdomain(tg, b.apex) {
							e.refs++
						}
						e.wire += 12 + rdl
					}
				} else {
					kept = true
					for _, r := range recs[i:j] {
						e.keptWire += 12 + int(r.rdl)
					}
				}
				if !hasBlock(nd, t) && (t == dns.TypeA || t == dns.TypeAAAA) {
					e.trims++
					for _, r := range recs[i:j] {
						e.wire += 12 + int(r.rdl)
						e.patches++
					}
				}
				if t == dns.TypeSOA {
					// The SOA of negative answers is a second block.
					for _, r := range recs[i:j] {
						e.wire += 12 + int(r.rdl)
					}
				}
			}
			i = j
		}
		if kept {
			e.keptSets++
		}
	}
	return e
}

// readAll reads r to its end. A reader that knows its length (a
// bytes.Reader over a file read whole, as the control plane passes) is
// read into one buffer of that size: io.ReadAll would grow its buffer
// step by step, copying a large zone file several times over.
func readAll(r io.Reader) ([]byte, error) {
	l, ok := r.(interface{ Len() int })
	if !ok {
		return io.ReadAll(r)
	}
	var buf bytes.Buffer
	// ReadFrom wants MinRead bytes free before each read, including the
	// last one, which finds the end.
	buf.Grow(l.Len() + bytes.MinRead)
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

// text returns the zone's text for locating a record's line: the data it
// was parsed from, or the file read again (a file is parsed as it is read
// and not kept). If the file cannot be read now, or has changed since, the
// line numbers are missing or off; the messages themselves are not.
func (b *builder) text() []byte {
	if b.data == nil && b.file != "" {
		b.data, _ = os.ReadFile(b.file)
	}
	return b.data
}

// bigText is the size of zone text above which the build collects the
// parser's garbage before building the table (see load).
const bigText = 32 << 20

// sortRecs sorts the records by node, then type, covered type, rdata and
// input position (the ordinal), a total order, so the result is the one a
// stable sort by the first four keys gives, and of duplicates the first
// comes first. Nodes are dense numbers: a least-significant-digit radix
// sort on the node (stable, passes of radixBits bits, reading and writing
// the records in sequence) orders them by node, and then only each
// node's few records are compared. A comparison sort of a TLD's millions
// of records took most of a second; moving records straight to their
// node's place in one array was no better, every move a cache miss. The
// cost is a second array of records while sorting.
func (b *builder) sortRecs(nodes int) {
	const radixBits = 11
	const buckets = 1 << radixBits
	src := b.recs
	if nodes > 1 && len(src) > 1 {
		// The garbage of the phases before (the names' sort, the name
		// list placeNames dropped) is returned first, for the second
		// array of records to take its place in the peak rather than
		// add to it.
		if b.size > bigText {
			freeGarbage()
		}
		dst := make([]rec, len(src))
		for shift := 0; shift < bits.Len32(uint32(nodes-1)); shift += radixBits {
			var at [buckets]int
			for i := range src {
				at[uint32(src[i].node)>>shift&(buckets-1)]++
			}
			sum := 0
			for d := range at {
				at[d], sum = sum, sum+at[d]
			}
			for i := range src {
				d := uint32(src[i].node) >> shift & (buckets - 1)
				dst[at[d]] = src[i]
				at[d]++
			}
			src, dst = dst, src
		}
		b.recs = src
		// The other array is garbage: collected now, its memory holds
		// the per-node arrays the next phases make, instead of
		// adding them to the peak.
		if b.size > bigText {
			freeGarbage()
		}
	}
	recs := b.recs
	for i := 0; i < len(recs); {
		j := i + 1
		for j < len(recs) && recs[j].node == recs[i].node {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(recs[i:j], func(x, y rec) int {
				if x.typ != y.typ {
					return int(x.typ) - int(y.typ)
				}
				if x.covered != y.covered {
					return int(x.covered) - int(y.covered)
				}
				if c := bytes.Compare(b.rdataOf(&x), b.rdataOf(&y)); c != 0 {
					return c
				}
				return int(x.ord) - int(y.ord)
			})
		}
		i = j
	}
}

// parentFinder finds each node's parent while the nodes are visited in
// canonical order, with no lookup: a node's descendants follow it in that
// order, so the parent of a node is on the stack of the previous node's
// ancestors (every ancestor down to the apex is a node).
type parentFinder struct{ stack []int32 }

// visit returns the parent of node n (-1 for the apex) and makes n the
// current node.
func (f *parentFinder) visit(b *builder, n int32) int32 {
	w := b.name(n)
	if len(w) == len(b.apex) {
		f.stack = append(f.stack[:0], n)
		return -1
	}
	pw := parentWire(w)
	for len(f.stack) > 0 && !bytes.Equal(b.name(f.stack[len(f.stack)-1]), pw) {
		f.stack = f.stack[:len(f.stack)-1]
	}
	var p int32
	if len(f.stack) > 0 {
		p = f.stack[len(f.stack)-1]
	} else {
		// Not reached when every ancestor is a node; kept so that the
		// answer never depends on that.
		p, _ = b.lookup(pw)
	}
	f.stack = append(f.stack, n)
	return p
}
