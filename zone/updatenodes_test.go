package zone

import (
	"math/rand/v2"
	"testing"
)

// TestPrepareNext checks the arrays made ahead for a zone's next update:
// PrepareNext makes them only for its lineage's tip (a version loaded, or
// the last one an update made), the next update
// writes its nodes, match and wild to them (filled with garbage, so that
// an entry it does not write shows against a build from scratch), and
// takes them, so that the version it makes holds none until PrepareNext
// is called for it; DropAhead lets go of them.
func TestPrepareNext(t *testing.T) {
	defer func(n int, p bool) { earlyMin, poisonEarly = n, p }(earlyMin, poisonEarly)
	earlyMin, poisonEarly = 0, true
	r := rand.New(rand.NewPCG(7, 14))
	u := newUpdRandomZone(t, "nsec3", 30)
	cur := u.text()
	z := mustParse(t, cur, "tld.")
	if n := z.AheadBytes(); n != 0 {
		t.Fatalf("a loaded zone holds %d bytes ahead before PrepareNext", n)
	}
	z.PrepareNext() // as the catalog does with server.update-ahead-keep
	if n := z.AheadBytes(); n < len(z.nodes)*16 {
		t.Fatalf("a loaded zone holds %d bytes ahead for %d nodes", n, len(z.nodes))
	}
	took := 0
	for step := 1; step <= 20; step++ {
		next := u.step(r)
		nz, _, _ := applyText(t, z, cur, next, step)
		if nz.Applied() != "incremental" {
			z, cur = nz, next
			continue
		}
		if n := nz.AheadBytes(); n != 0 {
			t.Fatalf("step %d: %d bytes ahead before PrepareNext", step, n)
		}
		nz.PrepareNext()
		if n := nz.AheadBytes(); n < len(nz.nodes)*16 {
			t.Fatalf("step %d: %d bytes ahead for %d nodes", step, n, len(nz.nodes))
		}
		z.PrepareNext() // not the tip: nothing
		if n := z.AheadBytes(); n != 0 {
			t.Fatalf("step %d: the old version holds %d bytes ahead", step, n)
		}
		nz.Settle()
		a := nz.upd.line.ahead
		// The update takes the arrays out of a, so their first
		// entries are kept here.
		nodes0, match0, wild0 := &a.nodes[0], &a.early.match[0], &a.early.wild[0]
		next2 := u.step(r)
		nz2, _, _ := applyText(t, nz, next, next2, step)
		if nz2.Applied() == "incremental" {
			took++
			if &nz2.nodes[0] != nodes0 || &nz2.denial.match[0] != match0 || &nz2.denial.wild[0] != wild0 {
				t.Fatalf("step %d: the update did not write to the arrays made ahead", step)
			}
			if nz.upd.line.ahead != nil || nz2.AheadBytes() != 0 {
				t.Fatalf("step %d: the arrays ahead are left after the update took them", step)
			}
		}
		// Let go of (as the catalog's release does unless
		// server.update-ahead-keep), the next update makes its own.
		nz2.PrepareNext()
		nz2.DropAhead()
		if n := nz2.AheadBytes(); n != 0 {
			t.Fatalf("step %d: %d bytes ahead after DropAhead", step, n)
		}
		sameTable(t, nz2, fromScratch(t, nz2))
		if t.Failed() {
			t.Fatalf("step %d", step)
		}
		z, cur = nz2, next2
	}
	if took < 10 {
		t.Errorf("only %d of 20 updates took the arrays made ahead", took)
	}
}

// TestChainAhead checks the NSEC3 chain's arrays made ahead for an update
// expected to merge the chain whole (denial.chainAhead): with chains in
// pages and a small chainSlack, most updates of these small zones merge
// the chain whole, into the arrays PrepareNext made (filled with garbage,
// so that an entry the merge does not write shows against a build from
// scratch) or, when the update was not expected to merge, into its own.
func TestChainAhead(t *testing.T) {
	defer func(n int, p bool, s, c int) {
		earlyMin, poisonEarly, startsMin, chainSlack, chainMerged = n, p, s, c, nil
	}(earlyMin, poisonEarly, startsMin, chainSlack)
	earlyMin, poisonEarly, startsMin, chainSlack = 0, true, 2, 2
	// The chains of the versions made in place: an update may merge
	// the chain and still be rebuilt after (see Zone.Applied).
	how := map[string]int{}
	var merged []string
	chainMerged = func(h string) { merged = append(merged, h) }
	for _, seed := range []uint64{21, 22} {
		r := rand.New(rand.NewPCG(seed, 14))
		u := newUpdRandomZone(t, "nsec3", 30)
		cur := u.text()
		z := mustParse(t, cur, "tld.")
		for step := 1; step <= 30; step++ {
			next := u.step(r)
			merged = nil
			nz, del, add := applyText(t, z, cur, next, step)
			nz.PrepareNext()
			if nz.Applied() == "incremental" {
				for _, h := range merged {
					how[h]++
				}
				want := nz.denial.chainAhead()
				nz.Settle()
				if a := nz.upd.line.ahead; a == nil || a.early.chain != want || cap(a.early.hashBlocks) < want || cap(a.early.hashes) < want*nsec3HashLen {
					t.Fatalf("seed %d step %d: arrays ahead %+v, want the chain's for %d entries", seed, step, a, want)
				}
			}
			sameTable(t, nz, fromScratch(t, nz))
			if t.Failed() {
				t.Fatalf("seed %d step %d (%s): deleted %v added %v", seed, step, nz.Applied(), del, add)
			}
			z, cur = nz, next
		}
	}
	t.Logf("chains made: %v", how)
	ahead := how["whole, into arrays made ahead"] + how["whole from pages, into arrays made ahead"]
	if ahead < 10 {
		t.Errorf("%d chains merged whole into arrays made ahead, want 10 or more", ahead)
	}
	if how["pages"] < 5 {
		t.Errorf("%d chains written in pages, want 5 or more", how["pages"])
	}
}
