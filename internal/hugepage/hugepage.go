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
// yet: memory once touched in 4 KiB pages keeps taking 4 KiB faults after
// the runtime gives it back. So Begin first makes the heap map the memory
// the load is expected to need, while none of it has been touched (a large
// array the heap has no room for is mapped afresh and not cleared), and
// then advises every mapping of the heap.
package hugepage

import (
	"runtime"
	"sync"
)

var (
	mu    sync.Mutex
	users int
)

// Begin prepares the heap for a load that is expected to use about expect
// bytes at its peak, when the system gives huge pages to advised memory
// only: it has the heap map what it lacks of expect bytes free, and
// advises all of the heap's mappings for transparent huge pages. It
// returns the function that withdraws the advice, once the last of the
// loads begun meanwhile ends; the huge pages already made stay.
//
// The advice is withdrawn after the load because a served table changes
// little, while the runtime gives free pages back to the system 4 KiB at a
// time and the kernel's khugepaged would fill an advised huge page again
// around the few pages still in use. Where the system's setting is
// "always" or "never", or on systems other than Linux, Begin does nothing.
func Begin(expect int) (end func()) {
	if !madviseMode() {
		return func() {}
	}
	mu.Lock()
	users++
	if users == 1 {
		reserve(expect)
		adviseHeap(true)
	}
	mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			mu.Lock()
			users--
			if users == 0 {
				adviseHeap(false)
			}
			mu.Unlock()
		})
	}
}

// reserve makes the heap map at least expect bytes it does not use. When
// the heap's idle memory falls short, an array of the difference cannot
// be placed in it: the heap maps new memory for it, which it does not
// clear (fresh mappings are zero), and a collection frees it again,
// mapped and untouched.
func reserve(expect int) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	idle := int(ms.HeapIdle)
	if idle >= expect {
		return
	}
	grow := make([]byte, expect-idle)
	runtime.KeepAlive(grow)
	grow = nil
	runtime.GC()
}
