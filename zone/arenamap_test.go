package zone

import (
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/ringdns/ringdns/internal/vmem"
)

// mapEveryArena makes every byte arena of the zones built until the
// test ends a region (arenamap.go), released as soon as its last version
// is collected.
func mapEveryArena(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("regions are reserved on Linux only; elsewhere arenas stay on the heap")
	}
	m, g := mappedMin.Load(), releaseGrace.Load()
	t.Cleanup(func() { mappedMin.Store(m); releaseGrace.Store(g) })
	mappedMin.Store(1)
	releaseGrace.Store(0)
}

// TestMappedArenas updates zones whose byte arenas are regions: every
// version must be the table built from scratch, the lineage's tip must
// append in place (its arenas never move), an older version updated again
// must leave the tip's arenas as they were, and once no version is left
// the regions must be released. A region released while a version still
// reads it faults, and fails the test as a crash.
func TestMappedArenas(t *testing.T) {
	mapEveryArena(t)
	live0 := vmem.Live()
	for _, kind := range []string{"unsigned", "nsec", "nsec3"} {
		t.Run(kind, func(t *testing.T) {
			r := rand.New(rand.NewPCG(21, 14))
			u := newUpdRandomZone(t, kind, 30)
			cur := u.text()
			z := mustParse(t, cur, "tld.")
			if z.mapped == nil {
				t.Fatal("the loaded zone's arenas are not regions")
			}
			names, wire, blocks := &z.names[:1][0], &z.wire[:1][0], &z.blocks[:1][0]
			type version struct {
				z    *Zone
				text string
			}
			vs := []version{{z, cur}}
			inPlace := 0
			for step := 1; step <= 30; step++ {
				next := u.step(r)
				from := vs[len(vs)-1]
				if step%7 == 0 {
					// An older version again: it must copy what it
					// appends, and the versions after it stay as
					// they were.
					from = vs[len(vs)-3]
				}
				nz, del, add := applyText(t, from.z, from.text, next, step)
				sameTable(t, nz, fromScratch(t, nz))
				if t.Failed() {
					t.Fatalf("step %d (%s): deleted %v added %v", step, nz.Applied(), del, add)
				}
				if nz.Applied() == "incremental" && from.z == vs[len(vs)-1].z {
					// The tip's update appends in place to the
					// arenas still in the loaded zone's regions.
					for _, a := range []struct{ from, to, region *byte }{
						{&from.z.names[:1][0], &nz.names[:1][0], names},
						{&from.z.wire[:1][0], &nz.wire[:1][0], wire},
					} {
						if a.from == a.region {
							inPlace++
							if a.to != a.region {
								t.Fatalf("step %d: the tip's update moved a byte arena out of its region", step)
							}
						}
					}
					if &from.z.blocks[:1][0] == blocks && &nz.blocks[:1][0] != blocks {
						t.Fatalf("step %d: the tip's update moved the blocks out of their region", step)
					}
				}
				vs = append(vs, version{nz, next})
			}
			if inPlace < 10 {
				t.Fatalf("the tip's updates appended in place to a region %d times, want 10 or more", inPlace)
			}
			for _, v := range vs {
				sameTable(t, v.z, fromScratch(t, v.z))
			}
			if t.Failed() {
				t.Fatal("an older version changed after the updates that followed it")
			}
			// The last version alone keeps the build's regions once the
			// loaded zone and the versions between are collected.
			last := vs[len(vs)-1].z
			vs = nil
			for range 3 {
				runtime.GC()
				time.Sleep(5 * time.Millisecond)
			}
			sameTable(t, last, fromScratch(t, last))
		})
	}
	// Nothing holds a version now: their regions go at the next
	// collections.
	deadline := time.Now().Add(10 * time.Second)
	for vmem.Live() > live0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d regions still reserved after every version was dropped, want %d", vmem.Live(), live0)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// TestApplyRandomTablesMapped is TestApplyRandomTables with every byte
// arena a region.
func TestApplyRandomTablesMapped(t *testing.T) {
	mapEveryArena(t)
	applyRandomTables(t, []uint64{7, 8})
}

// TestTrimEveryRegion: every region of a loaded zone, unsigned, NSEC and
// NSEC3, is one of its arenas, which built has give back the memory past
// it (trimRegion): an arena made a region that trimRegion does not know
// would keep its last huge page resident.
func TestTrimEveryRegion(t *testing.T) {
	mapEveryArena(t)
	for _, kind := range []string{"unsigned", "nsec", "nsec3"} {
		u := newUpdRandomZone(t, kind, 30)
		z := mustParse(t, u.text(), "tld.")
		if z.mapped == nil {
			t.Fatalf("%s: no arena is a region", kind)
		}
		l := z.mapped.list
		l.mu.Lock()
		n := len(l.regions)
		for i, r := range l.regions {
			if !z.trimRegion(r) {
				t.Errorf("%s: region %d of %d is none of the zone's arenas", kind, i, n)
			}
		}
		l.mu.Unlock()
		if n < 6 {
			t.Errorf("%s: %d regions, want at least the names, RRsets, blocks, wire, patches and trims", kind, n)
		}
		runtime.KeepAlive(z)
	}
}
