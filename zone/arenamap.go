package zone

import (
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringdns/ringdns/internal/vmem"
)

// The arenas Apply appends to (names; the table's RRsets, blocks, wire,
// patches and trims; the kept records' wire; the NSEC3 proofs' blocks,
// wire and patches) are, from mappedMin bytes on, reserved address space
// (internal/vmem) instead of Go heap: twice the arena and 32 MB more, of
// which only what is written becomes resident.
// A lineage's tip then appends in place for as long as a lineage
// normally lives (server.rebuild-superseded rebuilds a zone once its
// superseded data passes a quarter of its memory by default), and the
// arena is never copied: on the heap the copy of a TLD's arena took
// hundreds of megabytes of fresh memory while both copies lived (made
// ahead, in updatespare.go), and the freed copy then stayed in the heap's
// free memory, counted in the resident size, after the versions that read
// it were gone. An arena that outgrows its reservation all the same is
// copied onto the heap by reserve, as any other.
//
// The regions of a build are held by its table and by every version
// Apply makes from it (they share the arenas), through one mappedArenas;
// when the last of them has been collected, a cleanup releases the
// regions releaseGrace later. Readers reach the arenas only through a
// version they hold, and keep it reachable until they are done with the
// slices they took from it (the data plane's batches and answers keep
// their snapshot, runtime.KeepAlive; a spare's copy keeps the regions);
// the grace guards a reader that did not, which would otherwise fault.

var (
	// mappedMin is the size in bytes from which an arena is a region; a
	// variable, so that tests can map every arena. Atomic, as is
	// releaseGrace: builds in the background and the cleanups read them
	// while a test that set them restores them.
	mappedMin atomic.Int64
	// releaseGrace is how long after the last version of a build is
	// collected its regions are released; a variable for tests.
	releaseGrace atomic.Int64
)

func init() {
	mappedMin.Store(4 << 20)
	releaseGrace.Store(int64(10 * time.Second))
}

// maxMapped bounds the regions the process holds: each is a mapping, and
// the system bounds the mappings of a process (vm.max_map_count, 65,530
// by default), the Go heap's included. Past it arenas stay on the heap.
const maxMapped = 4096

// mappedSize is the address space reserved for an arena of n bytes.
func mappedSize(n int) int { return 2*n + 32<<20 }

// mappedArenas holds the regions of a build's arenas (see above).
type mappedArenas struct{ list *regionList }

// regionList is what the cleanup of a mappedArenas releases; apart from
// it, so that the cleanup does not keep it reachable.
type regionList struct {
	mu      sync.Mutex
	regions []*vmem.Region
}

// newArena returns an empty arena of z with room for n elements: a
// region the zone's build holds when that is mappedMin bytes or more and
// one can be reserved, otherwise Go heap.
func newArena[T any](z *Zone, n int) []T {
	size := n * int(reflect.TypeFor[T]().Size())
	if int64(size) < max(mappedMin.Load(), 1) || vmem.Live() >= maxMapped {
		return make([]T, 0, n)
	}
	r, err := vmem.Reserve(mappedSize(size))
	if err != nil {
		// Not Linux, or the system refused the mapping: the heap
		// serves, as it does for small arenas.
		return make([]T, 0, n)
	}
	if z.mapped == nil {
		m := &mappedArenas{list: &regionList{}}
		runtime.AddCleanup(m, releaseRegions, m.list)
		z.mapped = m
	}
	l := z.mapped.list
	l.mu.Lock()
	l.regions = append(l.regions, r)
	l.mu.Unlock()
	return vmem.Slice[T](r)
}

// reserveArena is reserveRoom for an arena of z: an empty s becomes a new
// arena (newArena).
func reserveArena[T any](z *Zone, s []T, n int) []T {
	if len(s) == 0 {
		return newArena[T](z, n)
	}
	return reserveRoom(s, n)
}

// built withdraws the huge-page advice from the build's regions once the
// table z is built (vmem.Region.Settle): the load wrote them in huge pages,
// and Apply's appends, a few kilobytes an arena, take small ones rather
// than a 2 MiB page each time one crosses into the next (about 4 ms on
// this project's VM, and resident whole). Its effect on the first update
// after a load was within the VM's noise in the runs measured (the
// signed TLD's, 99-131 ms with it and 95-122 without, three each). m may
// be nil.
//
// It also gives back each region's memory past its arena (vmem.Trim): the
// last huge page of each arena, 2 MiB resident however little the arena
// reached into it, and whatever of the room left for updates (withRoom)
// that page covered. For the 1M-delegation TLD of the benchmarks the
// regions held 193 MiB resident for 176 MiB of arenas.
func (m *mappedArenas) built(z *Zone) {
	if m == nil {
		return
	}
	m.list.mu.Lock()
	defer m.list.mu.Unlock()
	for _, r := range m.list.regions {
		r.Settle()
		z.trimRegion(r)
	}
}

// trimRegion has the arena of z that region r holds give back the memory
// of r past it (vmem.Trim); it reports whether one of z's arenas is r's.
func (z *Zone) trimRegion(r *vmem.Region) bool {
	return vmem.Trim(r, z.names) || vmem.Trim(r, z.sets) || z.arenas.trim(r) ||
		z.kept != nil && z.kept.arenas.trim(r) ||
		z.denial != nil && z.denial.arenas.trim(r)
}

// trim is trimRegion for the arenas of a.
func (a *arenas) trim(r *vmem.Region) bool {
	return vmem.Trim(r, a.blocks) || vmem.Trim(r, a.wire) || vmem.Trim(r, a.patches) || vmem.Trim(r, a.trims)
}

// releaseRegions releases l's regions releaseGrace from now.
func releaseRegions(l *regionList) {
	release := func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, r := range l.regions {
			// munmap of a mapping the process made whole fails only
			// on a bad address, which a Region does not hold; nothing
			// could be done about it here.
			_ = r.Release()
		}
		l.regions = nil
	}
	grace := time.Duration(releaseGrace.Load())
	if grace <= 0 {
		release()
		return
	}
	time.AfterFunc(grace, release)
}
