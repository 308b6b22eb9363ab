// Package hugepage lets the load of a large zone fault the Go heap in
// transparent huge pages (2 MiB) instead of 4 KiB pages.
//
// A large zone's load writes about a gigabyte of memory that is fresh from
// the system or was given back to it (zone's freeGarbage). On this
// project's 2-vCPU VM a 4 KiB page fault costs about 6 µs, and the faults
// were a third of the CPU of a million delegations' load: 289,000 faults,
// 1.9 s of system time of 5.8 s. Go's runtime leaves huge pages to the
// system's setting, and where that is "madvise", Debian's default, the
// heap gets none unless someone advises its mappings, which Begin does for
// the time of a load.
//
// A huge page is only made where a fault finds no page table for its 2 MiB
// yet: memory touched in 4 KiB pages before it was advised keeps them. The
// heap maps memory in pieces as it grows, each a mapping of its own that
// the advice given at Begin does not cover, so while a load runs the
// mappings are advised again every adviseEvery, and memory the load maps
// is advised before most of it is written.
//
// Begin used to have the heap map what the load was expected to need
// first, with an array it allocated untouched and let go, so that one
// advice covered it all. But the runtime clears memory it has allocated
// once when it allocates it again, and the load's reserved arrays (whose
// room is resident only once written when they come from fresh memory)
// were then cleared whole when they landed there: the signed TLD of the
// benchmarks peaked at 842-868 MiB instead of 787-812 in about half of its
// loads. The periodic advice leaves about 45,000-65,000 4 KiB faults in
// that load instead of 15,000-17,000 (570,000 without huge pages).
package hugepage

import (
	"sync"
	"time"
)

// adviseEvery is how often the heap's mappings are advised again while a
// load runs. Each time reads /proc/self/maps and makes a system call for
// each of the heap's mappings.
const adviseEvery = 10 * time.Millisecond

var (
	mu    sync.Mutex
	users int
	stop  chan struct{}
)

// Begin advises the heap's mappings for transparent huge pages for the
// time of a load, when the system gives huge pages to advised memory only,
// and advises the mappings the heap adds every adviseEvery until the load
// ends. It returns the function that withdraws the advice, once the last
// of the loads begun meanwhile ends; the huge pages already made stay.
//
// The advice is withdrawn after the load because a served table changes
// little, while the runtime gives free pages back to the system 4 KiB at a
// time and the kernel's khugepaged would fill an advised huge page again
// around the few pages still in use. Where the system's setting is
// "always" or "never", or on systems other than Linux, Begin does nothing.
func Begin() (end func()) {
	if !madviseMode() {
		return func() {}
	}
	mu.Lock()
	users++
	if users == 1 {
		adviseHeap(true)
		stop = make(chan struct{})
		go readvise(stop)
	}
	mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			mu.Lock()
			users--
			if users == 0 {
				close(stop)
				adviseHeap(false)
			}
			mu.Unlock()
		})
	}
}

// readvise advises the heap's mappings every adviseEvery until stop is
// closed.
func readvise(stop chan struct{}) {
	t := time.NewTicker(adviseEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		mu.Lock()
		select {
		case <-stop:
		default:
			adviseHeap(true)
		}
		mu.Unlock()
	}
}
