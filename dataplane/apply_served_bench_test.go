//go:build linux

package dataplane

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/ringdns/ringdns/internal/testenv"
	"github.com/ringdns/ringdns/zone"
)

// BenchmarkApplyServed measures updates as the daemon makes them, where
// BenchmarkApplyPublish makes them back to back: it starts from the heap
// as a load leaves it (its garbage given back to the kernel, as the
// catalog does after building large tables), and after each update is
// published it has the collector run, as the catalog does once the
// workers have left the old version (controlplane/updategc.go), and then
// the zone make the arrays its next update writes (PrepareNext), so that
// each update finds the heap as the next of a burst of updates would.
// One op is one change set of 1,000 delegations (as in
// BenchmarkApplyPublish), from handing it over to the new serial
// answered. It reports the first update after the load (first-ms), the
// median and slowest of the others, the minor page faults per op (the
// update's and its settling's), the resident size after the load
// (rss-load-MB), how much it grew since (rss-growth-MB, after the last
// collection), the heap in use with it (heap-growth-MB; the difference is
// freed memory the runtime keeps) and what the updates appended to the
// arenas (appended-MB). Run each zone in a
// process of its own (-bench BenchmarkApplyServed/nsec3), without the
// other benchmarks of the big zones: an earlier benchmark's updates of
// the same loaded zone make its first update copy the arenas, and it
// drops the loaded zone the others share (they load it again). Set
// RINGDNS_BIG=1 to run it.
func BenchmarkApplyServed(b *testing.B) {
	runBigChurn(b, func(b *testing.B, signed bool) {
		// The framework's runs of one benchmark go on from the
		// version the run before published, as a server's
		// updates do; the first run takes the loaded zone.
		servedLines.Lock()
		defer servedLines.Unlock()
		ln := servedLines.m[signed]
		genuine := ln == nil
		if genuine {
			z, chain := bigUpdZone(b, signed)
			ln = &servedLine{z: z, c: newBigChanges(signed, true, chain)}
			servedLines.m[signed] = ln
			// The line holds the loaded version until its first
			// update replaces it, as a server does: the other
			// benchmarks' copy would keep its arrays alive and
			// count them in the resident size's growth (the
			// arenas the line's updates copy). They load the
			// zone again if they run after this one.
			bigUpd.Lock()
			delete(bigUpd.zones, signed)
			bigUpd.Unlock()
		}
		z := ln.z
		// Each change set is made just before its update and collected
		// with the old version, so that the update finds the heap as
		// the catalog's collection leaves it (a server's change set, an
		// IXFR or a reload's difference, is a few megabytes of garbage
		// beside the hundreds of megabytes an update copies). With
		// RINGDNS_SERVED_RELEASE=1 the collection gives the freed
		// memory back to the system (debug.FreeOSMemory), as the
		// catalog does once server.update-memory-hold has passed
		// without an update: each update then takes its memory fresh.
		// RINGDNS_SERVED_RELEASE=DURATION (say 5s) waits that long
		// after each release, and after the load's, outside the time
		// measured: a VM that reports its free memory to its host (a
		// virtio balloon with free page reporting, as this project's
		// VM has) hands the released pages over a few seconds later,
		// and touching them again then costs the host's page faults
		// too, as it does after the catalog's hold.
		// After the collection the zone makes the arrays its next
		// update writes (PrepareNext), as the catalog has it do, and
		// the release comes after them, as the catalog's hold does:
		// it lets go of them first (DropAhead), unless
		// RINGDNS_SERVED_KEEP=1 (server.update-ahead-keep).
		keep := os.Getenv("RINGDNS_SERVED_KEEP") == "1"
		free := func() {
			if !keep {
				ln.z.DropAhead()
			}
			debug.FreeOSMemory()
		}
		var release func()
		var rest time.Duration
		switch v := os.Getenv("RINGDNS_SERVED_RELEASE"); v {
		case "", "0":
		case "1":
			release = free
		default:
			d, err := time.ParseDuration(v)
			if err != nil {
				b.Fatalf("RINGDNS_SERVED_RELEASE=%s: want 1 or a duration: %v", v, err)
			}
			rest = d
			release = func() {
				free()
				time.Sleep(rest)
			}
		}
		// RINGDNS_SERVED_NOTICE=DURATION has the zone make its next
		// update's arrays (PrepareNext) that long before the update,
		// outside the time measured, as the catalog has a secondary do
		// once it learns of a newer serial, while it asks for the IXFR
		// and reads it, and a reload while it reads the file
		// (controlplane's expectUpdate): DURATION stands for that
		// transfer or read.
		notice := func() {}
		if v := os.Getenv("RINGDNS_SERVED_NOTICE"); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				b.Fatalf("RINGDNS_SERVED_NOTICE=%s: want a duration: %v", v, err)
			}
			notice = func() {
				ln.z.PrepareNext()
				time.Sleep(d)
			}
		}
		collect := func() {
			runtime.GC()
			ln.z.PrepareNext()
			ln.z.Settle()
			if release != nil {
				release()
			}
		}
		next := func() (del, add []dns.RR) {
			ln.k++
			return ln.c.next(b, ln.k)
		}
		soaQ, buf := bigSOAQuery(), make([]byte, 65535)
		var cur atomic.Pointer[Snapshot]
		walls := make([]time.Duration, 0, b.N)
		del, add := next()
		if genuine {
			// The generator's second chain array, which its next
			// change set would make (rechain), is made and written
			// (memory fresh from the system is not resident until
			// then) before the resident size is taken: the growth
			// reported is the server's, not the benchmark's.
			spare := make([]bigLink, cap(ln.c.chain))
			clear(spare)
			ln.c.spare = spare[:0]
			debug.FreeOSMemory()
			ln.rss0, ln.heap0 = residentBytes(b), heapInUse()
			time.Sleep(rest)
		} else {
			collect()
		}
		notice()
		b.ReportAllocs()
		b.ResetTimer()
		var flt int64
		// RINGDNS_SERVED_TRACE=1 prints each update's time, its page
		// faults, and the heap and resident size right after it.
		trace := os.Getenv("RINGDNS_SERVED_TRACE") == "1"
		for i := 0; i < b.N; i++ {
			flt0 := minorFaults()
			nz, wall := publishUpdate(b, &cur, z, del, add, soaQ, buf)
			walls = append(walls, wall)
			b.StopTimer()
			if trace {
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				fmt.Fprintf(os.Stderr, "update %d: %.1f ms, %d faults, heap in use %d MiB, heap mapped %d MiB, released %d MiB; resident %d MiB\n",
					ln.k, float64(wall.Microseconds())/1000, minorFaults()-flt0, ms.HeapInuse>>20, ms.HeapSys>>20, ms.HeapReleased>>20, residentBytes(b)>>20)
			}
			nz.Settle()
			flt += minorFaults() - flt0
			z, ln.z = nz, nz
			if i+1 < b.N {
				del, add = next()
			}
			collect()
			if i+1 < b.N {
				notice()
			}
			b.StartTimer()
		}
		b.StopTimer()
		if genuine {
			ln.first = walls[0]
			walls = walls[1:]
		}
		b.ReportMetric(float64(ln.first.Microseconds())/1000, "first-ms")
		reportWalls(b, walls)
		b.ReportMetric(float64(flt)/float64(b.N), "faults/op")
		b.ReportMetric(float64(ln.rss0)/(1<<20), "rss-load-MB")
		b.ReportMetric(float64(residentBytes(b)-ln.rss0)/(1<<20), "rss-growth-MB")
		b.ReportMetric(float64(heapInUse()-ln.heap0)/(1<<20), "heap-growth-MB")
		// What the line's updates appended to the arenas, which stays
		// until the zone is rebuilt (server.rebuild-superseded).
		b.ReportMetric(float64(z.Appended())/(1<<20), "appended-MB")
		// What the zone holds made ahead for its next update (the
		// node array and the late arrays, zone/updatenodes.go).
		ahead := z.AheadBytes()
		if os.Getenv("RINGDNS_SERVED_REST") == "1" {
			// What the catalog gives back once updates stop
			// (server.update-memory-hold): the resident size at rest.
			// The framework's next run then starts from fresh memory.
			free()
			b.ReportMetric(float64(residentBytes(b)-ln.rss0)/(1<<20), "rest-rss-growth-MB")
			ahead = z.AheadBytes()
		}
		b.ReportMetric(float64(ahead)/(1<<20), "ahead-MB")
		if z.Applied() != "incremental" {
			b.Fatalf("applied: %s", z.Applied())
		}
	})
}

// servedLines holds, for BenchmarkApplyServed's unsigned and signed zones,
// the last version published, the change sets' generator and the number
// of the last change set made.
var servedLines = struct {
	sync.Mutex
	m map[bool]*servedLine
}{m: map[bool]*servedLine{}}

type servedLine struct {
	z     *zone.Zone
	c     *bigChanges
	k     int
	first time.Duration // the first update after the load
	rss0  int64         // the resident size before it
	heap0 int64         // and the heap in use
}

// heapInUse is the heap's spans in use (runtime.MemStats.HeapInuse): the
// live heap, where the resident size counts the freed memory the runtime
// keeps too.
func heapInUse() int64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// residentBytes is the process's resident size (VmRSS).
func residentBytes(tb testing.TB) int64 { return testenv.ProcStatusKiB(tb, 0, "VmRSS")[0] << 10 }
