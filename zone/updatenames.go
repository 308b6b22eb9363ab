package zone

import (
	"container/heap"
	"slices"
	"sort"
	"sync"

	"github.com/miekg/dns"
)

// namePlan is how a change set changes the zone's names, and how the new
// version numbers its nodes: the old nodes keep their canonical order, the
// names added are inserted in theirs, and the names removed are taken out,
// so that a node's number is still its place in canonical order (which
// the answer engine's NSEC search relies on).
type namePlan struct {
	n, n2 int // nodes of the old and of the new version
	// adds are the names added, in canonical order: the owners of the
	// change set that the zone did not have and the empty non-terminals
	// above them. addOwner says which are owners; ins is, per added name,
	// the old node it goes before (n when it goes last), and addNew its
	// node in the new version.
	adds     [][]byte
	addOwner []bool
	ins      []uint32
	addNew   []uint32
	// del are the old nodes removed, ascending: names that lost all
	// their records and have no name below them left, and the empty
	// non-terminals left with nothing below.
	del []uint32
	// extra counts the names added or removed that the change set does
	// not name (empty non-terminals).
	extra int
	// delta is, per bucket of 1<<renBits old nodes, what numbers the
	// bucket's first node in the new version (new = old + delta); dirty
	// marks the buckets in which a name is inserted or removed, whose
	// nodes are numbered by a search instead. Renumbering the millions of
	// entries of the index then costs an add for nearly all of them.
	delta []int32
	dirty []uint64
}

const renBits = 6

// planNames finds the names chg adds and removes and numbers the new
// version's nodes; it returns why the change set is not applied in place
// when it is not.
func (z *Zone) planNames(chg []*nodeChange) (*namePlan, string) {
	pl := &namePlan{n: len(z.nodes)}
	added := map[string]bool{} // name -> an owner (else an empty non-terminal)
	byOld := map[uint32]*nodeChange{}
	for _, c := range chg {
		if c.old == None {
			added[string(c.owner)] = true
		} else {
			byOld[c.old] = c
		}
	}
	for _, c := range chg {
		if c.old != None {
			continue
		}
		for w := c.owner; len(w) > len(z.apex); {
			w = parentWire(w)
			if _, ok := added[string(w)]; ok || z.find(w, hashName(w)) != None {
				break
			}
			added[string(w)] = false
			pl.extra++
		}
	}
	for w := range added {
		pl.adds = append(pl.adds, []byte(w))
	}
	slices.SortFunc(pl.adds, CompareCanonical)
	for _, a := range pl.adds {
		pl.addOwner = append(pl.addOwner, added[string(a)])
	}

	// A name left without records is removed when nothing below it is
	// left either; then its parent, if it has no records, is looked at
	// in turn. Nodes are visited from the last: a node's descendants
	// follow it in canonical order, so they are settled before it.
	emptyAfter := func(o uint32) bool {
		if c := byOld[o]; c != nil {
			return len(c.recs) == 0
		}
		return z.nodes[o].Flags&FlagEmpty != 0
	}
	var todo maxHeap
	for _, c := range chg {
		if c.old != None && len(c.recs) == 0 {
			heap.Push(&todo, c.old)
		}
	}
	removed := map[uint32]bool{}
	for todo.Len() > 0 {
		x := heap.Pop(&todo).(uint32)
		if removed[x] || x == z.apexNode {
			continue
		}
		xn := z.NodeName(&z.nodes[x])
		keep := false
		for i := x + 1; int(i) < len(z.nodes) && isSubdomain(z.NodeName(&z.nodes[i]), xn); i++ {
			if !removed[i] {
				keep = true
				break
			}
		}
		if !keep {
			i, _ := slices.BinarySearchFunc(pl.adds, xn, CompareCanonical)
			keep = i < len(pl.adds) && isSubdomain(pl.adds[i], xn)
		}
		if keep {
			continue
		}
		removed[x] = true
		if byOld[x] == nil {
			pl.extra++
		}
		pw := parentWire(xn)
		if p := z.find(pw, hashName(pw)); p != None && p != z.apexNode && emptyAfter(p) {
			heap.Push(&todo, p)
		}
	}
	for o := range removed {
		pl.del = append(pl.del, o)
	}
	slices.Sort(pl.del)

	for k, a := range pl.adds {
		o := sort.Search(pl.n, func(o int) bool { return CompareCanonical(z.NodeName(&z.nodes[o]), a) > 0 })
		pl.ins = append(pl.ins, uint32(o))
		d, _ := slices.BinarySearch(pl.del, uint32(o))
		pl.addNew = append(pl.addNew, uint32(o+k-d))
	}
	pl.n2 = pl.n - len(pl.del) + len(pl.adds)
	buckets := pl.n>>renBits + 1
	pl.delta = make([]int32, buckets)
	pl.dirty = make([]uint64, (buckets+63)/64)
	i, j := 0, 0
	for b := range buckets {
		o := uint32(b << renBits)
		for i < len(pl.ins) && pl.ins[i] <= o {
			i++
		}
		for j < len(pl.del) && pl.del[j] < o {
			j++
		}
		pl.delta[b] = int32(i - j)
	}
	for _, p := range pl.ins {
		b := p >> renBits
		pl.dirty[b/64] |= 1 << (b % 64)
	}
	for _, p := range pl.del {
		b := p >> renBits
		pl.dirty[b/64] |= 1 << (b % 64)
	}
	return pl, ""
}

// parallel runs fn over [0, n) split in one part per core (GOMAXPROCS),
// each part in a goroutine of its own, and waits for them: the arrays an
// update renumbers hold millions of entries, and the parts write
// disjoint ranges. A small n is one part.
func parallel(n int, fn func(lo, hi int)) {
	parts := chunkCount()
	if n < partsMin || parts < 2 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for k := range parts {
		lo, hi := n*k/parts, n*(k+1)/parts
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}

// partsMin is the n from which parallel splits; a variable, so that
// tests split small tables too.
var partsMin = 1 << 16

// maxHeap is a heap of node numbers, the greatest first.
type maxHeap []uint32

func (h maxHeap) Len() int           { return len(h) }
func (h maxHeap) Less(i, j int) bool { return h[i] > h[j] }
func (h maxHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *maxHeap) Push(x any)        { *h = append(*h, x.(uint32)) }
func (h *maxHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// same reports that no name is added or removed: node numbers stay.
func (pl *namePlan) same() bool { return len(pl.adds) == 0 && len(pl.del) == 0 }

// deleted reports whether old node o is removed.
func (pl *namePlan) deleted(o uint32) bool {
	_, found := slices.BinarySearch(pl.del, o)
	return found
}

// newOf returns the new node of old node o, which must not be removed.
func (pl *namePlan) newOf(o uint32) uint32 {
	if b := o >> renBits; pl.dirty[b/64]&(1<<(b%64)) == 0 {
		return uint32(int32(o) + pl.delta[b])
	}
	return pl.newOfSlow(o)
}

// newOfSlow is newOf by counting the insertions and removals before o;
// for a removed node, it is the new node that takes its place.
func (pl *namePlan) newOfSlow(o uint32) uint32 {
	i, _ := slices.BinarySearch(pl.ins, o+1)
	j, _ := slices.BinarySearch(pl.del, o)
	return o + uint32(i) - uint32(j)
}

// oldOf returns the old node of new node q; false for an added name.
func (pl *namePlan) oldOf(q uint32) (uint32, bool) {
	if pl.same() {
		return q, true
	}
	if _, found := slices.BinarySearch(pl.addNew, q); found {
		return 0, false
	}
	o := sort.Search(pl.n, func(o int) bool { return pl.newOfSlow(uint32(o)) >= q })
	for o < pl.n && pl.deleted(uint32(o)) {
		o++
	}
	if o >= pl.n || pl.newOfSlow(uint32(o)) != q {
		return 0, false
	}
	return uint32(o), true
}

// addIndex returns the index in adds of the added name a.
func (pl *namePlan) addIndex(a []byte) int {
	i, _ := slices.BinarySearchFunc(pl.adds, a, CompareCanonical)
	return i
}

// delENT reports whether removed node o is one the change set does not
// name (an empty non-terminal left with nothing below).
func (pl *namePlan) delENT(z *Zone, o uint32) bool {
	return z.nodes[o].Flags&FlagEmpty != 0
}

// renumber returns, for an array with an entry per old node, the array
// with an entry per new node: the entries of removed nodes taken out,
// fill in the places of added names, the runs between moved by copy (in
// parallel when the array is large).
func renumber[T any](pl *namePlan, old []T, fill T) []T {
	return renumberInto(pl, make([]T, pl.n2), old, fill)
}

// renumberInto is renumber into out, pl.n2 entries whose contents are
// overwritten.
func renumberInto[T any](pl *namePlan, out, old []T, fill T) []T {
	for _, q := range pl.addNew {
		out[q] = fill
	}
	runs := pl.runs()
	parallel(pl.n2, func(lo, hi int) { copyRuns(out, old, runs, lo, hi) })
	return out
}

// renRun is a run of old entries that renumber moves: old entries from
// to to (not included) go to at.
type renRun struct{ from, to, at int }

// runs returns the runs of old entries between insertions and removals,
// and where each goes, in order.
func (pl *namePlan) runs() []renRun {
	var runs []renRun
	o, w, ai, di := 0, 0, 0, 0
	for {
		next := pl.n
		if ai < len(pl.ins) {
			next = min(next, int(pl.ins[ai]))
		}
		if di < len(pl.del) {
			next = min(next, int(pl.del[di]))
		}
		if next > o {
			runs = append(runs, renRun{o, next, w})
			w += next - o
		}
		o = next
		switch {
		case ai < len(pl.ins) && int(pl.ins[ai]) == o:
			w++
			ai++
		case di < len(pl.del) && int(pl.del[di]) == o:
			o++
			di++
		default:
			return runs
		}
	}
}

// copyRuns copies into out[lo:hi] what runs move there from old.
func copyRuns[T any](out, old []T, runs []renRun, lo, hi int) {
	i := sort.Search(len(runs), func(i int) bool { return runs[i].at+runs[i].to-runs[i].from > lo })
	for ; i < len(runs) && runs[i].at < hi; i++ {
		r := runs[i]
		s, e := max(r.at, lo), min(r.at+r.to-r.from, hi)
		copy(out[s:e], old[r.from+s-r.at:r.from+e-r.at])
	}
}

// makeNodes makes the new version's names and nodes, and gives it a
// provisional index (see deferIndex): the added names are appended to the
// name arena and get nodes with no RRsets yet, whose flags flagNodes sets.
// It returns the function that starts the making of the index of its own,
// nil when the version shares the old one's. g is the update's growPlan,
// nil when it does not append in place.
func (pl *namePlan) makeNodes(z, nz *Zone, g *growPlan, ah *ahead) (start func()) {
	if pl.same() {
		nz.index, nz.mask = z.indexSlots()
		nz.nodes, nz.apexNode = ah.takeNodes(len(z.nodes)), z.apexNode
		parallel(len(z.nodes), func(lo, hi int) { copy(nz.nodes[lo:hi], z.nodes[lo:hi]) })
		return nil
	}
	total := 0
	for _, a := range pl.adds {
		total += len(a)
	}
	nz.names = room(g, arNames, nz.names, total)
	nz.apexNode = pl.newOf(z.apexNode)
	// No lookup runs in nz before makeNodes returns, when its nodes are
	// in place.
	start = pl.deferIndex(z, nz)
	nz.nodes = renumberInto(pl, ah.takeNodes(pl.n2), z.nodes, Node{})
	for k, a := range pl.adds {
		nd := Node{Name: uint32(len(nz.names)), Len: uint8(len(a)), Labels: uint8(countLabels(a)), Set0: uint32(len(nz.sets))}
		if a[0] == 1 && a[1] == '*' {
			nd.Flags |= FlagIsWildcard
		}
		nz.names = append(nz.names, a...)
		nz.nodes[pl.addNew[k]] = nd
	}
	return start
}

// makeIndex makes the new version's name index from the old one's: the
// slots copied with their nodes renumbered, the removed names' slots
// deleted and the added names' inserted. When the node count calls for
// another size, the slots are placed afresh from the hashes they hold;
// no name is hashed again either way. z's index must be done.
func (pl *namePlan) makeIndex(z *Zone) ([]slot, uint32) {
	zindex, _ := z.indexSlots()
	const gone = ^uint32(0)
	size := indexSize(pl.n2)
	mask := uint32(size - 1)
	renum := func(s slot) slot {
		o := s.node - 1
		if b := o >> renBits; pl.dirty[b/64]&(1<<(b%64)) == 0 {
			s.node = uint32(int32(o)+pl.delta[b]) + 1
		} else if pl.deleted(o) {
			s.node = gone
		} else {
			s.node = pl.newOfSlow(o) + 1
		}
		return s
	}
	var idx []slot
	if size == len(zindex) {
		idx = written[slot](size, size)
		parallel(size, func(lo, hi int) {
			dst, delta, dirty := idx[lo:hi], pl.delta, pl.dirty
			for i, s := range zindex[lo:hi] {
				// The common case inline: an occupied slot whose
				// node's bucket has no insertion or removal.
				if o := s.node - 1; s.node != 0 {
					if b := o >> renBits; dirty[b>>6]&(1<<(b&63)) == 0 {
						s.node = uint32(int32(o)+delta[b]) + 1
					} else {
						s = renum(s)
					}
				}
				dst[i] = s
			}
		})
		for _, o := range pl.del {
			h := hashName(z.NodeName(&z.nodes[o]))
			for i := slotOf(h, mask); idx[i].node != 0; i = (i + 1) & mask {
				if idx[i].node == gone && idx[i].hash == h {
					deleteSlot(idx, i, mask)
					break
				}
			}
		}
	} else {
		idx = written[slot](size, size)
		for _, s := range zindex {
			if s.node == 0 {
				continue
			}
			if s = renum(s); s.node == gone {
				continue
			}
			i := slotOf(s.hash, mask)
			for idx[i].node != 0 {
				i = (i + 1) & mask
			}
			idx[i] = s
		}
	}
	for k, a := range pl.adds {
		h := hashName(a)
		i := slotOf(h, mask)
		for idx[i].node != 0 {
			i = (i + 1) & mask
		}
		idx[i] = slot{hash: h, node: pl.addNew[k] + 1}
	}
	return idx, mask
}

// deleteSlot empties slot i of a linear-probing index, moving back the
// slots after it that would no longer be found (backward-shift deletion),
// so that no tombstone is left.
func deleteSlot(idx []slot, i, mask uint32) {
	j := i
	for {
		j = (j + 1) & mask
		if idx[j].node == 0 {
			break
		}
		k := slotOf(idx[j].hash, mask)
		// The slot at j stays when its home k lies cyclically in (i, j].
		if i <= j {
			if i < k && k <= j {
				continue
			}
		} else if i < k || k <= j {
			continue
		}
		idx[i] = idx[j]
		i = j
	}
	idx[i] = slot{}
}

// flagResult is what flagNodes found.
type flagResult struct {
	// chg is the change set's nodes and the nodes prepared anew because
	// a zone cut above them was made or removed.
	chg []*nodeChange
	// touched are the new nodes whose records or flags changed,
	// ascending.
	touched []uint32
}

// flagNodes sets the flags of the new version's nodes that change: those
// a node's own records decide for the changed and added names, FlagOccluded
// below them and below a zone cut made or removed (whose nodes, glue
// becoming data or data becoming glue, are prepared anew), FlagWildcard
// at the parents of wildcards added or removed.
func (z *Zone) flagNodes(nz *Zone, pl *namePlan, chg []*nodeChange, limit int) (*flagResult, string) {
	byNew := map[uint32]*nodeChange{}
	set := map[uint32]bool{}
	isAdded := map[uint32]bool{}
	for _, c := range chg {
		if c.node != None {
			byNew[c.node] = c
			set[c.node] = true
		}
	}
	for k := range pl.adds {
		set[pl.addNew[k]] = true
		isAdded[pl.addNew[k]] = true
	}
	extra := 0
	for _, c := range chg {
		if c.old == None || c.node == None {
			continue
		}
		was := z.nodes[c.old].Flags&FlagDelegation != 0
		is := c.node != nz.apexNode && countType(c.recs, dns.TypeNS) > 0
		if was == is {
			continue
		}
		w := nz.NodeName(&nz.nodes[c.node])
		for q := c.node + 1; int(q) < len(nz.nodes) && isSubdomain(nz.NodeName(&nz.nodes[q]), w); q++ {
			if !set[q] {
				set[q] = true
				if extra++; len(chg)+pl.extra+extra > limit {
					return nil, "over a tenth of the names change"
				}
			}
		}
	}
	touched := make([]uint32, 0, len(set))
	for q := range set {
		touched = append(touched, q)
	}
	slices.Sort(touched)
	nsec3 := z.denial != nil && z.denial.mode == DenialNSEC3
	it := newWalkIter(z)
	for _, q := range touched {
		nd := &nz.nodes[q]
		w := nz.NodeName(nd)
		c := byNew[q]
		oldF := nd.Flags
		f := oldF &^ FlagOccluded
		if c != nil || isAdded[q] {
			var recs []Record
			if c != nil {
				recs = c.recs
			}
			f &= FlagApex | FlagWildcard | FlagIsWildcard
			if len(recs) == 0 {
				f |= FlagEmpty
			}
			if countType(recs, dns.TypeNS) > 0 && f&FlagApex == 0 {
				f |= FlagDelegation
			}
			if countType(recs, dns.TypeCNAME) > 0 {
				f |= FlagCNAME
			}
			if countType(recs, dns.TypeDNAME) > 0 {
				f |= FlagDNAME
			}
			if nsec3 && nsec3Only(recs) {
				f |= FlagNSEC3Owner
				if c != nil && oldF&FlagNSEC3Owner == 0 {
					// A name left with its NSEC3 RRset alone
					// keeps it in the proof block only, which
					// updateNSEC3 then prepares (or refuses, for
					// a record the chain did not hold).
					c.changed[dns.TypeNSEC3] = true
				}
			}
		}
		if q != nz.apexNode {
			pw := parentWire(w)
			pn := nz.find(pw, hashName(pw))
			if pn == None {
				return nil, "a name's parent is missing (a defect of package zone)"
			}
			if nz.nodes[pn].Flags&(FlagDelegation|FlagOccluded|FlagDNAME) != 0 {
				f |= FlagOccluded
				if c != nil && len(c.recs) > 0 && nz.belowDNAME(pn) {
					return nil, "data below a DNAME"
				}
			}
		}
		nd.Flags = f
		switch {
		case c == nil && !isAdded[q]:
			if (f^oldF)&FlagOccluded != 0 {
				o, _ := pl.oldOf(q)
				recs := it.nodeRecords(int(o))
				nc := &nodeChange{old: o, node: q, owner: w, recs: recs, oldN: len(recs), changed: map[uint16]bool{}, reflag: true}
				nc.markAll()
				chg = append(chg, nc)
			}
		case c != nil && c.old != None && (f^oldF)&FlagOccluded != 0:
			c.reflag = true
			c.markAll()
		}
	}
	var more []uint32
	for _, a := range pl.adds {
		if a[0] == 1 && a[1] == '*' {
			pw := parentWire(a)
			if pn := nz.find(pw, hashName(pw)); pn != None {
				nz.nodes[pn].Flags |= FlagWildcard
				more = append(more, pn)
			}
		}
	}
	for _, o := range pl.del {
		if w := z.NodeName(&z.nodes[o]); w[0] == 1 && w[1] == '*' {
			pw := parentWire(w)
			if pn := nz.find(pw, hashName(pw)); pn != None {
				nz.nodes[pn].Flags &^= FlagWildcard
				more = append(more, pn)
			}
		}
	}
	if len(more) > 0 {
		touched = append(touched, more...)
		slices.Sort(touched)
		touched = slices.Compact(touched)
	}
	return &flagResult{chg: chg, touched: touched}, ""
}

// nsec3Only reports whether recs are an NSEC3 RRset and the RRSIGs over
// it, and nothing else: an NSEC3 owner (see FlagNSEC3Owner).
func nsec3Only(recs []Record) bool {
	n := 0
	for i := range recs {
		r := &recs[i]
		switch {
		case r.Type == dns.TypeNSEC3:
			n++
		case r.Type == dns.TypeRRSIG && len(r.Data) >= 2 && uint16(r.Data[0])<<8|uint16(r.Data[1]) == dns.TypeNSEC3:
		default:
			return false
		}
	}
	return n > 0
}

// belowDNAME reports whether node n or one of its ancestors has a DNAME.
func (z *Zone) belowDNAME(n uint32) bool {
	for {
		if z.nodes[n].Flags&FlagDNAME != 0 {
			return true
		}
		if n == z.apexNode {
			return false
		}
		w := parentWire(z.NodeName(&z.nodes[n]))
		if n = z.find(w, hashName(w)); n == None {
			return false
		}
	}
}

// nsec3OwnerHash returns the hash an NSEC3 owner name stands for, when it
// is a base32hex hash label directly below the apex.
func nsec3OwnerHash(w, apex []byte) ([]byte, bool) {
	if len(w) < 2 || int(w[0])+1 > len(w) || !bytesEqual(parentWire(w), apex) {
		return nil, false
	}
	h, err := nsec3Base32.DecodeString(upperASCII(w[1 : 1+int(w[0])]))
	if err != nil || len(h) != nsec3HashLen {
		return nil, false
	}
	return h, true
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

func upperASCII(b []byte) string {
	out := make([]byte, len(b))
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		out[i] = c
	}
	return string(out)
}
