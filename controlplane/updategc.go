package controlplane

import (
	"sync"
	"time"

	"github.com/ringdns/ringdns/zone"
)

// A version made by zone.Apply (an IXFR's deltas, a reload applied as a
// change) copies the arrays its change renumbers: for the NSEC3-signed
// 1M-delegation TLD of the benchmarks about 170 MB an update, 70 MB
// unsigned, the old version's copies garbage once the workers have moved
// on. Left to itself the collector runs when the heap has doubled, so the
// updates in between take their memory fresh from the system, and on this
// project's VM a 4 KiB page touched for the first time costs about 6 µs.
// Measured on the signed TLD, ten updates one after another from a loaded
// zone (load average 3, another engineer's tests running): without a
// collection between them 120-660 ms each (up to 40,000 faults and 0.3 s
// of system time) while the resident size grew by 1.1 GB; with one after
// each, 70-130 ms from the third on, without faults, and the resident size
// 150 MB above the load's. So after publishing a large zone's applied
// version, once the workers have surely left the old one, the catalog
// has the collector run: the old version's memory is free for the next
// update, which reuses pages still resident (the runtime keeps freed
// memory below its heap goal), and the heap stays about one update's
// garbage above the live tables. The first two updates after a load
// still take memory fresh: the load gave its garbage back to the kernel
// (see reload). BenchmarkApplyServed (dataplane) measures updates so.
//
// The collection does not give the freed memory back to the kernel, as
// the load does: the next update would take it fresh again. Measured with
// BenchmarkApplyServed on the signed TLD, 100 updates, quiet: with
// debug.FreeOSMemory after each, the resident size stayed about 40 MB
// (5%) above the load's, against about 300 MB with runtime.GC, but each
// update touched 6,174 fresh pages, and the median update took 123 ms
// and the slowest 309, against 58-70 and 87-190.
//
// So the memory is kept for as long as updates keep coming, and given
// back once they stop: server.update-memory-hold (a minute by default)
// after the collection of the last update, with no update since, the
// catalog returns the heap's free memory to the kernel. A secondary's
// copy on disk, written after the update's publication (seconds for a
// TLD), has a collection of its own when written, and the hold counts
// from the later of the two (writeCopy). A zone updated every few
// seconds (a burst of IXFRs, a dynamic zone) keeps reusing the memory;
// one updated every few minutes, as TLDs publish, serves between its
// updates at about the resident size of a fresh load, and pays the fresh
// pages on each update (the figures in the README, "What an update costs,
// and its memory").
//
// After each collection the catalog has the zones just updated (and,
// with server.update-ahead-keep, those just loaded) make the arrays their
// next update writes (zone.Zone.PrepareNext), from the memory the
// collection freed. The release lets go of them first
// (DropAhead), unless server.update-ahead-keep: then they stay resident
// through quiet spells (64 MB for the signed TLD), and an update minutes
// after the last does not take its largest arrays fresh.
//
// Without that setting a zone updated minutes apart finds them given back,
// and would make them fresh inside its update. But an update is announced
// before its change set is there: a secondary learns the primary's newer
// serial (its SOA answer, after a NOTIFY or at the refresh timer) before
// it asks for the IXFR and reads it, and a reload hashes and parses the
// whole file before it compares it with the version served. So at that
// notice the catalog has the version served make them (expectUpdate), in
// the background, on the core the transfer or the parse leaves idle, and
// the update finds them made or being made. If no version is applied
// after all (the transfer failed, the file did not load or did not
// change, or it was built afresh), a collection and the hold's release
// follow as after an update (unexpected), and the release lets go of them.

// collectAfterUpdateDelay is how long after the publication the collection
// runs: the workers load the snapshot once per batch, so they have left
// the old version long before; transfers out and TCP answers still
// holding it keep it, for the next collection.
const collectAfterUpdateDelay = 100 * time.Millisecond

// collectAfterUpdateAbove is the size of a zone's table below which its
// updates' garbage is left to the collector's own pace.
const collectAfterUpdateAbove = freeAfterBuild

// updateCollector schedules the collection after an applied update,
// coalescing the updates published meanwhile into one, and the release of
// the free memory hold after the last collection. NewCatalog sets its
// bound, delay, hold, collection and release (collectAfterUpdateAbove
// and Delay, server.update-memory-hold, runtime.GC and
// debug.FreeOSMemory); tests set their own.
type updateCollector struct {
	mu      sync.Mutex
	pending bool
	above   int
	delay   time.Duration
	collect func()
	hold    time.Duration
	release func()
	// gen counts the collections; a release scheduled after one runs
	// only if no other followed it.
	gen uint64
	// next are what run after the pending collection (zone.PrepareNext of
	// the versions it is for).
	next []func()
}

// soon schedules a collection for an applied version of size bytes (or
// for the copy on disk of one, once written), unless one is pending or
// the version is below the size that calls for it, and has next (nil for
// none) run after it: for an applied version, its PrepareNext, which
// makes the arrays its next update will write from the memory the
// collection frees (see zone/updatenodes.go).
func (u *updateCollector) soon(size int, next func()) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if size < u.above {
		return
	}
	if next != nil {
		u.next = append(u.next, next)
	}
	if u.pending {
		return
	}
	u.pending = true
	time.AfterFunc(u.delay, func() {
		u.mu.Lock()
		u.pending = false
		u.gen++
		gen := u.gen
		collect, hold, release, next := u.collect, u.hold, u.release, u.next
		u.next = nil
		u.mu.Unlock()
		collect()
		for _, f := range next {
			f()
		}
		if release == nil {
			return
		}
		time.AfterFunc(hold, func() {
			u.mu.Lock()
			quiet := u.gen == gen && !u.pending
			u.mu.Unlock()
			if quiet {
				release()
			}
		})
	})
}

// expectUpdate tells the catalog that a new version of z, the version
// served, is on its way: a newer serial was noticed, or a changed file is
// being read. A large zone makes the arrays its update writes now, in the
// background (zone.Zone.PrepareNext; kept when made already). It returns z,
// for unexpected.
func (c *Catalog) expectUpdate(z *zone.Zone) *zone.Zone {
	if z == nil || z.MemoryBytes() < c.afterUpdate.above {
		return nil
	}
	if c.prepareNext != nil {
		c.prepareNext(z)
	} else {
		z.PrepareNext()
	}
	return z
}

// unexpected follows an expectUpdate(z) that no applied version of z
// followed: a collection and the hold's release are scheduled as after an
// update, and the release lets go of what z made ahead (unless
// server.update-ahead-keep), so that a failed transfer does not leave it
// resident at rest. Nothing for a nil z.
func (c *Catalog) unexpected(z *zone.Zone) {
	if z != nil {
		c.afterUpdate.soon(z.MemoryBytes(), nil)
	}
}
