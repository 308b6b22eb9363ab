package zone

// An update of a large zone writes its largest arrays late: the NSEC3
// chain, match and wild, and the kept runs, after the nodes are renumbered
// and the blocks prepared. Each is memory the update takes, from the heap's
// free memory when an update came shortly before, and otherwise fresh from
// the system, page by page: on this project's 2-vCPU VM a 4 KiB page
// touched for the first time costs about 11 µs, and a 2 MiB huge page that
// the VM's host has taken back (the guest reports its free memory to the
// host a few seconds after freeing it) about 3.6 ms. So those arrays are
// made at the plan, by a goroutine of their own, which touches every page
// of them while the update renumbers the nodes and prepares the blocks;
// the update takes them when it gets there (earlyArrays). The signed TLD's
// updates that take their memory fresh (BenchmarkApplyServed/nsec3 with
// RINGDNS_SERVED_RELEASE=1, 30 updates, two rounds alternating with the
// build before): median 80.6 and 101.4 ms against 94.3 and 112.0; the
// chain's merge, match and wild and the kept runs went from 25-100 ms to
// about 12 ms of the update's time.

// earlyMin is the size of a zone's table (MemoryBytes) from which an
// update makes its late arrays early; a variable, so that tests make
// them for small zones too.
var earlyMin = applyHugePagesAbove

// poisonEarly has the late arrays made ahead filled with garbage instead
// of zeros, so that tests find an entry the update leaves unwritten.
var poisonEarly = false

// earlyArrays are the late arrays of one update, made by a goroutine of
// their own; done is closed when they are made and touched. Each is
// taken at most once, by the part of the update that writes it, and only
// when it is large enough; one not taken is garbage with the update.
type earlyArrays struct {
	done        chan struct{}
	match, wild []uint32 // pl.n2 entries
	hashes      []byte   // room for the chain's hashes after the update
	hashBlocks  []uint32
	kept        []keptSet // room for the kept runs after the update
}

// startEarly starts making the late arrays of an update of z that changes
// the nodes of chg (the plan pl), nil for a zone below earlyMin.
func (z *Zone) startEarly(pl *namePlan, changes int) *earlyArrays {
	if z.MemoryBytes() < earlyMin {
		return nil
	}
	e := &earlyArrays{done: make(chan struct{})}
	d := z.denial
	nsec3 := d != nil && d.mode == DenialNSEC3
	// The chain's length after the update is known once its hashes are
	// found (updateNSEC3); each changed name adds one at most. Names
	// neither added nor removed leave the hashes as they are.
	chain := 0
	if nsec3 && !pl.same() {
		chain = len(d.hashBlocks) + changes
	}
	keptRuns := 0
	if z.kept != nil {
		keptRuns = len(z.kept.sets) + changes
	}
	go func() {
		defer close(e.done)
		if nsec3 {
			e.match, e.wild = make([]uint32, pl.n2), make([]uint32, pl.n2)
			touchPages(e.match, 1024)
			touchPages(e.wild, 1024)
		}
		if chain > 0 {
			e.hashes, e.hashBlocks = make([]byte, 0, chain*nsec3HashLen), make([]uint32, 0, chain)
			touchPages(e.hashes[:cap(e.hashes)], 4096)
			touchPages(e.hashBlocks[:cap(e.hashBlocks)], 1024)
		}
		if keptRuns > 0 {
			e.kept = make([]keptSet, 0, keptRuns)
			touchPages(e.kept[:cap(e.kept)], 4096/12)
		}
		if poisonEarly {
			for _, s := range [][]uint32{e.match, e.wild, e.hashBlocks[:cap(e.hashBlocks)]} {
				for i := range s {
					s[i] = 0xdeadbeef
				}
			}
			h, k := e.hashes[:cap(e.hashes)], e.kept[:cap(e.kept)]
			for i := range h {
				h[i] = 0xab
			}
			for i := range k {
				k[i] = keptSet{node: 0xdeadbeef, off: 0xdeadbeef, len: 0xbeef, count: 0xbeef}
			}
		}
	}()
	return e
}

// touchPages writes every per-th element of s, one a 4 KiB page for per
// elements to a page, so that the system gives s its pages now. The heap
// may hand a large array over untouched (memory fresh from the system is
// zero already), and its pages are then taken where it is first written.
func touchPages[T any](s []T, per int) {
	var zero T
	for i := 0; i < len(s); i += per {
		s[i] = zero
	}
}

// matchWild returns arrays of n entries for NSEC3's match and wild, the
// early ones when made; their contents are whatever they hold.
func (e *earlyArrays) matchWild(n int) ([]uint32, []uint32) {
	if e != nil {
		<-e.done
		if m, w := e.match, e.wild; len(m) == n {
			e.match, e.wild = nil, nil
			return m, w
		}
	}
	return make([]uint32, n), make([]uint32, n)
}

// chain returns arrays for an NSEC3 chain of n hashes, the early ones when
// made with room enough (cut to n, so that no append reaches past them);
// their contents are whatever they hold.
func (e *earlyArrays) chain(n int) ([]byte, []uint32) {
	if e != nil {
		<-e.done
		if h, b := e.hashes, e.hashBlocks; cap(b) >= n {
			e.hashes, e.hashBlocks = nil, nil
			return h[: n*nsec3HashLen : n*nsec3HashLen], b[:n:n]
		}
	}
	return make([]byte, n*nsec3HashLen), make([]uint32, n)
}

// keptRuns returns an empty array with room for n kept runs, the early one
// when made with room enough.
func (e *earlyArrays) keptRuns(n int) []keptSet {
	if e != nil {
		<-e.done
		if k := e.kept; cap(k) >= n {
			e.kept = nil
			return k[:0]
		}
	}
	return make([]keptSet, 0, n)
}
