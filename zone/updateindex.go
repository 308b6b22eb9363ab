package zone

import (
	"bytes"
	"slices"
	"sync/atomic"
)

// A version made by Apply with names added or removed needs a name index
// of its own: the old one's slots hold the old node numbers. Making it is
// the largest copy of an update (8 bytes a slot, one and a half slots a
// name or more: 32 MB for a TLD of 2.5 million names, the NSEC3 owners
// counted),
// so Apply does not wait for it. The new version is ready to publish with
// a provisional view of the index: a lookup finds the name in the index
// of the version it was made from and numbers the node as the version
// does (namePlan.newOf), or finds it among the names added. The index of
// its own is made meanwhile, in the background, and stored in its place;
// readers of either view see the same nodes. A version is updated only
// once its index is done, so that a provisional view looks through one
// index only.

// indexHolder holds a version's name index (see Zone.prov).
type indexHolder struct{ v atomic.Pointer[indexView] }

// view returns the index held, nil for none.
func (h *indexHolder) view() *indexView {
	if h == nil {
		return nil
	}
	return h.v.Load()
}

// indexView is a version's name index (see Zone.prov): slots and mask, or,
// while provisional, the version it was made from (base, whose index is
// done), the plan that numbers its nodes, and the added names' hashes and
// nodes (slot form, by hash); done is closed when the index of its own
// replaces the provisional view.
type indexView struct {
	slots []slot
	mask  uint32
	base  *Zone
	pl    *namePlan
	added []slot
	done  chan struct{}
}

// find is Zone.find through a provisional view of nz's index.
func (v *indexView) find(nz *Zone, name []byte, h uint32) uint32 {
	// A name is never both removed and added by one change set: a name
	// whose records all change is changed, not removed.
	if o := v.base.find(name, h); o != None && !v.pl.deleted(o) {
		return v.pl.newOf(o)
	}
	i, _ := slices.BinarySearchFunc(v.added, h, func(s slot, h uint32) int { return cmpUint32(s.hash, h) })
	for ; i < len(v.added) && v.added[i].hash == h; i++ {
		n := v.added[i].node - 1
		if bytes.Equal(nz.NodeName(&nz.nodes[n]), name) {
			return n
		}
	}
	return None
}

func cmpUint32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// startIndex runs the making of a version's index; a variable, so that
// tests can hold it back and look names up through the provisional view.
var startIndex = func(f func()) { go f() }

// deferIndex gives nz, whose nodes pl numbers, a provisional view of its
// index, and returns the function that starts the making of its own (see
// above). z's index must be done.
//
// Apply calls start once the new version is made, not before: on a
// machine of two cores the making (two parts side by side; for the signed
// TLD 64 MB of slots then, 32 MB since the index's load factor went to two
// thirds, and about 50 ms of CPU then) took a core from the update
// itself. The signed TLD's updates that take their memory fresh
// (BenchmarkApplyServed with RINGDNS_SERVED_RELEASE=1, 40 updates, three
// rounds alternating on a noisy VM): started at the renumbering, as it
// was, median 106-191 ms and first 118-182 ms; started after, 98-120 and
// 94-131 ms. The making takes its slots in huge pages as Apply's arrays
// do: without, it took 16,000 page faults more.
func (pl *namePlan) deferIndex(z, nz *Zone) (start func()) {
	v := &indexView{base: z, pl: pl, done: make(chan struct{})}
	for k, a := range pl.adds {
		v.added = append(v.added, slot{hash: hashName(a), node: pl.addNew[k] + 1})
	}
	slices.SortFunc(v.added, func(a, b slot) int { return cmpUint32(a.hash, b.hash) })
	nz.prov = &indexHolder{}
	nz.prov.v.Store(v)
	return func() {
		startIndex(func() {
			// The slots in huge pages, as Apply's own arrays are,
			// where the system leaves them to advice: the
			// advice Apply took is withdrawn when it returns.
			defer z.hugePages()()
			index, mask := pl.makeIndex(z)
			nz.prov.v.Store(&indexView{slots: index, mask: mask})
			close(v.done)
		})
	}
}

// Settle returns once the work Apply left to the background for z (its
// name index, and the copies of its arenas made ahead of need, see
// updatespare.go) is done. z answers the same before and after; the next
// update of z waits for the index anyway, and for a copy when the arena
// must grow. Benchmarks settle a version outside the time they measure,
// so that an update's time is its own.
func (z *Zone) Settle() {
	z.waitIndex()
	z.waitSpares()
}

// waitIndex returns once z's index is done.
func (z *Zone) waitIndex() {
	if v := z.prov.view(); v != nil && v.done != nil {
		<-v.done
	}
}

// indexSlots returns z's index once it is done.
func (z *Zone) indexSlots() ([]slot, uint32) {
	z.waitIndex()
	if v := z.prov.view(); v != nil {
		return v.slots, v.mask
	}
	return z.index, z.mask
}

// indexBytes is the memory of z's index; while the view is provisional,
// that of the index being made.
func (z *Zone) indexBytes() int {
	if v := z.prov.view(); v != nil {
		if v.base != nil {
			return indexSize(v.pl.n2) * 8
		}
		return len(v.slots) * 8
	}
	return len(z.index) * 8
}

// nodesOfHash is Zone.nodesOfHash through a provisional view of nz's
// index.
func (v *indexView) nodesOfHash(h uint32, out []uint32) []uint32 {
	for _, o := range v.base.nodesOfHash(h, nil) {
		if !v.pl.deleted(o) {
			out = append(out, v.pl.newOf(o))
		}
	}
	i, _ := slices.BinarySearchFunc(v.added, h, func(s slot, h uint32) int { return cmpUint32(s.hash, h) })
	for ; i < len(v.added) && v.added[i].hash == h; i++ {
		out = append(out, v.added[i].node-1)
	}
	return out
}
