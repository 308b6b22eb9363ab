package zone

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSupersededRebuild applies random change sets one after another, as
// TestApplyRandomTables does, and checks after each that what the version
// reads of the arenas its line shares (their memory less Superseded) is
// what a table built from scratch from its records holds, and that
// Rebuild gives that table: the same table (sameTable), nothing
// superseded, the same warnings.
func TestSupersededRebuild(t *testing.T) {
	for _, kind := range []string{"unsigned", "nsec", "nsec3"} {
		t.Run(kind, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 14))
			u := newUpdRandomZone(t, kind, 30)
			u.recs["ttl.tld. 3600 IN A 192.0.2.7"], u.recs["ttl.tld. 60 IN A 192.0.2.8"] = true, true
			cur := u.text()
			z := mustParse(t, cur, "tld.")
			if z.Superseded() != 0 || z.Appended() != 0 {
				t.Fatalf("a loaded zone has %d bytes superseded, %d appended", z.Superseded(), z.Appended())
			}
			grew := false
			for step := 1; step <= 25; step++ {
				next := u.step(r)
				nz, del, add := applyText(t, z, cur, next, step)
				z, cur = nz, next
				if z.Applied() != "incremental" {
					continue
				}
				fresh := fromScratch(t, z)
				sup := z.Superseded()
				if live := z.arenaBytes() - sup; live != fresh.arenaBytes() {
					t.Errorf("step %d: the version reads %d bytes of its arenas (%d, %d superseded), a table built from scratch holds %d",
						step, live, z.arenaBytes(), sup, fresh.arenaBytes())
				}
				grew = grew || sup > 0
				rb, err := z.Rebuild()
				if err != nil {
					t.Fatalf("step %d: Rebuild: %v", step, err)
				}
				if rb.Superseded() != 0 || rb.Appended() != 0 || rb.arenaBytes() != fresh.arenaBytes() {
					t.Errorf("step %d: rebuilt: %d superseded, %d appended, %d arena bytes (from scratch %d)",
						step, rb.Superseded(), rb.Appended(), rb.arenaBytes(), fresh.arenaBytes())
				}
				if !slices.Equal(rb.Warnings(), z.Warnings()) {
					t.Errorf("step %d: rebuilt warnings %q, want %q", step, rb.Warnings(), z.Warnings())
				}
				sameTable(t, rb, fresh)
				if t.Failed() {
					t.Fatalf("step %d: deleted %v added %v", step, del, add)
				}
			}
			if !grew {
				t.Error("no update left anything superseded")
			}
		})
	}
}
