package zone

import (
	"reflect"

	"github.com/ringdns/ringdns/internal/vmem"
)

// An update of a large zone writes its largest arrays late: the NSEC3
// proofs' match and wild, and the kept runs, after the nodes are renumbered
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
// about 12 ms of the update's time. The chain itself is no longer among
// them: an update rewrites only the pages of it that change (denial.offs,
// dnssec.go), a few hundred kilobytes appended to its arenas.

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
	match, wild []uint32  // pl.n2 entries
	kept        []keptSet // room for the kept runs after the update
	// The NSEC3 chain's arrays, empty with room for chain entries, which
	// the update writes when it merges the chain whole (see chainAhead):
	// made only when it is expected to (chain > 0, set before they are
	// made), a merge that finds none makes its own.
	chain      int
	hashes     []byte
	hashBlocks []uint32
}

// startEarly starts making the late arrays of an update of z that changes
// the nodes of chg (the plan pl), nil for a zone below earlyMin; those
// made ahead (a, see updatenodes.go) when there are.
func (z *Zone) startEarly(pl *namePlan, changes int, a *ahead) *earlyArrays {
	if z.MemoryBytes() < earlyMin {
		return nil
	}
	if a != nil {
		return a.early
	}
	d := z.denial
	e := &earlyArrays{done: make(chan struct{}), chain: d.chainAhead()}
	nsec3 := d != nil && d.mode == DenialNSEC3
	keptRuns := 0
	if z.kept != nil {
		keptRuns = len(z.kept.sets) + changes
	}
	go e.make(pl.n2, keptRuns, nsec3)
	return e
}

// make makes e's arrays, match and wild of n entries when nsec3, the
// chain's with room for e.chain entries when that is above 0, and closes
// e.done.
func (e *earlyArrays) make(n, keptRuns int, nsec3 bool) {
	defer close(e.done)
	if nsec3 {
		e.match, e.wild = touched(n, uint32(0xdeadbeef)), touched(n, uint32(0xdeadbeef))
	}
	e.kept = touched(keptRuns, keptSet{node: 0xdeadbeef, off: 0xdeadbeef, len: 0xbeef, count: 0xbeef})
	if e.chain > 0 {
		e.hashes = touched(e.chain*nsec3HashLen, byte(0xbe))[:0]
		e.hashBlocks = touched(e.chain, uint32(0xdeadbeef))[:0]
	}
}

// touched returns an array of n elements whose pages the system has given
// now: the heap may hand a large array over untouched (memory fresh from
// the system is zero already), and its pages are then taken where it is
// first written. The system maps them in one call first (vmem.Populate),
// then each page gets one write; with poisonEarly every element is bad
// instead. nil for none.
//
// Both, because on this project's VM a page fresh from the system costs
// twice (see vmem.Populate): the guest's fault, which Populate spares, and
// a cost taken at the first write to the page whether it was mapped ahead
// or not, which the touch takes here, in the background, so that the
// update's writes into the array cost what writes into memory the heap
// held do. Populated and touched, a 64 MiB array fresh from the system
// took 112 ms, against 199-215 touched alone (vmem.BenchmarkFresh).
func touched[T any](n int, bad T) []T {
	if n == 0 {
		return nil
	}
	if poisonEarly {
		s := make([]T, n)
		for i := range s {
			s[i] = bad
		}
		return s
	}
	s := written[T](n, n)
	var zero T
	per := max(1, 4096/int(reflect.TypeFor[T]().Size()))
	for i := 0; i < n; i += per {
		s[i] = zero
	}
	return s
}

// written returns an array of n elements, with room for c, that its caller
// is about to write whole: the system maps the pages of its n elements in
// one call (vmem.Populate) rather than at a fault each as they are
// written, which takes about 40% off the time to write it where its
// memory is fresh from the system.
func written[T any](n, c int) []T {
	s := make([]T, n, c)
	if n*int(reflect.TypeFor[T]().Size()) >= populateMin {
		vmem.Populate(s)
	}
	return s
}

// populateMin is the size of an array from which touched and written have
// the system map its pages in one call: below it, the call would cost
// more than the faults of the few pages it spares.
const populateMin = 256 << 10

// wait returns e once its arrays are made; for nil, a set with none.
func (e *earlyArrays) wait() *earlyArrays {
	if e == nil {
		return &earlyArrays{}
	}
	<-e.done
	return e
}

// take returns the first n elements of *a, an array of a set wait
// returned, and leaves none there, or a new array when *a has fewer; the
// contents are whatever they hold. The result's capacity is n, so that no
// append reaches past it.
func take[T any](a *[]T, n int) []T {
	s := *a
	*a = nil
	if len(s) < n {
		return written[T](n, n)
	}
	return s[:n:n]
}
