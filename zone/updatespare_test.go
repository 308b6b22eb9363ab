package zone

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestApplySpares makes a spare of every arena after every update
// (spareAhead and spareMinBytes forced), with the copies into them held
// back at random, so that an update finds some done and takes them early,
// some not done and leaves them, and must wait for some, while readers
// read every block of the versions published (run it with -race). Every
// version must be the table built from scratch: a prefix copied wrong or
// a tail appended since the copy lost shows in the blocks read through
// the spare. Every few steps an older version is updated again: it must
// not take the tip's spares, and its update, the lineage's tip then,
// drops them.
func TestApplySpares(t *testing.T) {
	defer func(a, m int, s func(func()), took func(arenaKind, bool)) {
		spareAhead, spareMinBytes, startSpare, tookSpare = a, m, s, took
	}(spareAhead, spareMinBytes, startSpare, tookSpare)
	spareAhead, spareMinBytes = 1<<20, 0
	var delays atomic.Uint64
	startSpare = func(f func()) {
		// Two copies in three run at once; the others wait up to 3 ms.
		d := delays.Add(1)
		go func() {
			if d%3 == 0 {
				time.Sleep(time.Duration(d%4) * time.Millisecond)
			}
			f()
		}()
	}
	var mu sync.Mutex
	taken := map[arenaKind]int{}
	waited := 0
	tookSpare = func(k arenaKind, need bool) {
		mu.Lock()
		defer mu.Unlock()
		taken[k]++
		if need {
			waited++
		}
	}
	for _, kind := range []string{"unsigned", "nsec3"} {
		t.Run(kind, func(t *testing.T) {
			mu.Lock()
			clear(taken)
			waited = 0
			mu.Unlock()
			r := rand.New(rand.NewPCG(9, 14))
			u := newUpdRandomZone(t, kind, 30)
			cur := u.text()
			z := mustParse(t, cur, "tld.")
			var live atomic.Pointer[Zone]
			live.Store(z)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					// Every block of the version, through its index.
					zz := live.Load()
					sameTable(t, zz, zz)
				}
			}()
			type version struct {
				z    *Zone
				text string
			}
			var versions []version
			incremental := 0
			for step := 1; step <= 40; step++ {
				next := u.step(r)
				nz, del, add := applyText(t, z, cur, next, step)
				if nz.Applied() == "incremental" {
					incremental++
				}
				live.Store(nz)
				sameTable(t, nz, fromScratch(t, nz))
				if t.Failed() {
					t.Fatalf("step %d (%s): deleted %v added %v", step, nz.Applied(), del, add)
				}
				if step%8 == 0 {
					// z, no longer the tip, updated again: the serial
					// alone, which this line of versions never takes.
					soa := fmt.Sprintf("tld. 3600 IN SOA ns1.nic.tld. hostmaster.tld. %d 1800 900 604800 300", u.serial-1)
					side, err := z.Apply(updRRsOf(t, soa), updRRsOf(t, "tld. 3600 IN SOA ns1.nic.tld. hostmaster.tld. 99999 1800 900 604800 300"))
					if err != nil {
						t.Fatalf("step %d, the older version: %v", step, err)
					}
					sameTable(t, side, fromScratch(t, side))
					// Its arenas are copies: the tip's spares are
					// dropped, and any left are of its own arenas.
					ids := arenaIDs(side)
					if l := side.upd.line; l != nil && l.tip == side {
						for k, sp := range l.spares {
							if sp != nil && sp.src != ids[k] {
								t.Errorf("step %d: a spare of arena %d left after an older version's update", step, k)
							}
						}
					}
				}
				versions = append(versions, version{nz, next})
				z, cur = nz, next
			}
			close(stop)
			wg.Wait()
			// The versions published before are intact.
			for i, v := range versions {
				sameTable(t, v.z, mustParse(t, v.text, "tld."))
				if t.Failed() {
					t.Fatalf("version %d changed after it was published", i+1)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			t.Logf("%d of 40 in place; spares taken by arena %v, %d when the arena had to grow", incremental, taken, waited)
			want := []arenaKind{arNames, arSets, arBlocks, arWire, arPatches, arTrims}
			if kind == "nsec3" {
				want = append(want, arProofBlocks, arProofWire, arProofPatches)
			}
			for _, k := range want {
				if taken[k] == 0 {
					t.Errorf("no spare of arena %d taken", k)
				}
			}
			if waited == 0 {
				t.Errorf("no spare taken by an update that had to grow the arena")
			}
		})
	}
}

// arenaIDs returns what the spares of z's arenas are keyed by, by kind.
func arenaIDs(z *Zone) [numArenaKinds]any {
	var ids [numArenaKinds]any
	ids[arNames], ids[arSets] = arenaID(z.names), arenaID(z.sets)
	ids[arBlocks], ids[arWire] = arenaID(z.blocks), arenaID(z.wire)
	ids[arPatches], ids[arTrims] = arenaID(z.patches), arenaID(z.trims)
	if z.kept != nil {
		ids[arKeptWire] = arenaID(z.kept.wire)
	}
	if d := z.denial; d != nil {
		ids[arProofBlocks], ids[arProofWire], ids[arProofPatches] = arenaID(d.blocks), arenaID(d.wire), arenaID(d.patches)
	}
	return ids
}
