package zone

import (
	"runtime"
	"sync"
	"time"

	"github.com/ringdns/ringdns/internal/vmem"
)

// The byte arenas Apply appends to (names, the prepared wire, the kept
// records' wire, the NSEC3 proofs' wire) are, from mappedMin bytes on,
// reserved address space (internal/vmem) instead of Go heap: twice the
// arena and 32 MB more, of which only what is written becomes resident.
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
// version they hold, so the version outlives every read; the grace is for
// a reader the compiler considers done with its version while it still
// reads a slice it took from it.

var (
	// mappedMin is the size from which a byte arena is a region; a
	// variable, so that tests can map every arena.
	mappedMin = 4 << 20
	// releaseGrace is how long after the last version of a build is
	// collected its regions are released; a variable for tests.
	releaseGrace = 10 * time.Second
)

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

// newArena returns an empty byte arena with room for n bytes: a region
// the zone's build holds when n is mappedMin or more and one can be
// reserved, otherwise Go heap.
func (z *Zone) newArena(n int) []byte {
	if n < max(mappedMin, 1) || vmem.Live() >= maxMapped {
		return make([]byte, 0, n)
	}
	r, err := vmem.Reserve(mappedSize(n))
	if err != nil {
		// Not Linux, or the system refused the mapping: the heap
		// serves, as it does for small arenas.
		return make([]byte, 0, n)
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
	return r.Bytes()
}

// reserveBytes is reserveRoom for a byte arena of z: an empty s becomes
// a new arena (newArena).
func (z *Zone) reserveBytes(s []byte, n int) []byte {
	if len(s) == 0 {
		return z.newArena(n)
	}
	return reserveRoom(s, n)
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
	if releaseGrace <= 0 {
		release()
		return
	}
	time.AfterFunc(releaseGrace, release)
}
