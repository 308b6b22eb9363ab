package zone

import "reflect"

// An update that adds or removes names renumbers the node array into a
// new one (renumber), and one that does not copies it: 16 bytes a name,
// 40 MB for the NSEC3-signed 1M-delegation TLD; an NSEC3 zone's update
// writes match and wild anew too, 4 bytes a name each. When the update
// takes that memory fresh from the system, as one does after the
// catalog's server.update-memory-hold gave the heap's free memory back,
// its pages cost more than the copy: on this project's VM the signed
// TLD's node array took 35-73 ms to make fresh against 4.5-7 ms from
// memory the heap still held (BenchmarkApplyServed/nsec3,
// RINGDNS_SERVED_RELEASE=4s against hot, 8 updates each, timed around
// makeNodes), and with the node array made ahead, the late arrays
// (updateearly.go), made fresh beside the update, held its NSEC3 part up
// for 15-20 ms more. So PrepareNext, which the catalog calls once it has
// had the collector free the old version's memory after an update, makes
// the arrays the next update of a large zone will write, the node array
// and the late arrays, a little larger than the version's, and touches
// them, in the background, and the lineage keeps them (ahead) for that
// update. Made from the memory just freed, they are resident at once and
// cost the heap nothing it did not hold already (made at the publication
// instead, before the collection, they were memory added to the heap's:
// 100 MB more resident while updates came one after another). When no
// update follows within server.update-memory-hold, the catalog lets go of
// them (DropAhead) before it gives the heap's free memory back, unless
// server.update-ahead-keep: kept, they are live memory the release does
// not give back, and the next update, however much later, finds them
// resident; the price is those arrays held between updates
// (Zone.AheadBytes): 64 MB for the signed TLD, a tenth of its resident
// size. Signed TLD, updates that find the heap's free memory given back
// (BenchmarkApplyServed/nsec3, RINGDNS_SERVED_RELEASE=4s, 8 updates, two
// rounds alternating): with the arrays kept, median 96.4 and 88.8 ms
// against 144.9 and 144.1, and the resident size at rest 64 MB higher.
// With server.update-ahead-keep the catalog has a version loaded make
// them too, so that the first update after a load finds them as well.
// Without it, the catalog calls PrepareNext again when an update is
// announced: a secondary that sees the primary's newer serial, a reload
// of a changed file. The arrays are then made, fresh, on the other core
// while the IXFR is read or the file parsed, and the update waits for
// what is not made yet (takeNodes, earlyArrays.wait).
//
// In an NSEC3 zone whose next update is expected to merge the chain whole
// (denial.chainAhead: its pages written again, as many as the last
// update's, would pass chainSlack's bound), the chain's two arrays are
// made ahead too, with the late arrays (26 MB for the signed TLD). Such a
// merge came every few updates and, made fresh, took 40-60 ms of the
// signed TLD's update after a quiet spell (a trace of Apply's phases, not
// in the tree), against 10-15 for the update's other NSEC3 work.

// ahead holds the arrays made ahead for the next update: nodes, of size
// entries, and the late arrays; done is closed once nodes is made and
// touched, early.done once the late arrays are too.
type ahead struct {
	size     int // nodes
	keptRuns int // early.kept
	bytes    int
	done     chan struct{}
	nodes    []Node
	early    *earlyArrays
}

// startAhead runs the making of the arrays ahead; a variable, so that
// tests can run it at once.
var startAhead = func(f func()) { go f() }

// PrepareNext makes, in the background, the arrays the next update of z
// will write (see above), when z is its lineage's tip (the version its
// last update made, or a version loaded or built, not updated yet) and
// its table is large, and keeps those made already when they fit; Settle
// waits for them. The catalog calls it once the old version's memory is
// freed, when an update is announced, and, with
// server.update-ahead-keep, for a version loaded.
func (z *Zone) PrepareNext() {
	l := z.ownLine()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tip == z {
		l.planAhead(z, z.upd.added, z.upd.changed)
	}
}

// planAhead makes the arrays ahead for the next update of nz, the
// lineage's tip (l.mu held), when its table is earlyMin or more: it keeps
// those it has when they are large enough for nz's nodes and the next
// update's growth (added, the names the last update added; changes, the
// names it changed), and otherwise makes new ones.
func (l *lineage) planAhead(nz *Zone, added, changes int) {
	if nz.MemoryBytes() < earlyMin {
		l.ahead = nil
		return
	}
	n := len(nz.nodes)
	grow := max(n/64, 4*added, 64)
	keptRuns := 0
	if nz.kept != nil {
		keptRuns = len(nz.kept.sets) + max(4*changes, 64)
	}
	chain := nz.denial.chainAhead()
	if a := l.ahead; a != nil && a.size >= n+grow/2 && a.keptRuns >= keptRuns && a.early.chain >= chain {
		return
	}
	size := n + grow
	nsec3 := nz.denial != nil && nz.denial.mode == DenialNSEC3
	a := &ahead{size: size, keptRuns: keptRuns, done: make(chan struct{}), early: &earlyArrays{done: make(chan struct{}), chain: chain}}
	a.bytes = size*int(reflect.TypeFor[Node]().Size()) + keptRuns*int(reflect.TypeFor[keptSet]().Size()) + chain*(nsec3HashLen+4)
	if nsec3 {
		a.bytes += 2 * size * 4
	}
	startAhead(func() {
		a.nodes = touched(size, Node{Name: 0xdeadbeef, Set0: 0xdeadbeef, NSets: 0xbeef, Flags: 0xbeef, Len: 0xbe, Labels: 0xef})
		close(a.done)
		a.early.make(size, keptRuns, nsec3)
	})
	l.ahead = a
}

// DropAhead lets go of the arrays made ahead for the next update of z's
// lineage (PrepareNext), so that the release of the heap's free memory
// that follows gives them back too; the next update makes its own.
func (z *Zone) DropAhead() {
	l := z.line()
	if l == nil {
		return
	}
	l.mu.Lock()
	l.ahead = nil
	l.mu.Unlock()
}

// takeAhead returns the lineage's arrays ahead for an update that appends
// in place (g) and leaves the lineage none, until PrepareNext makes the
// next; nil when there are none.
func (g *growPlan) takeAhead() *ahead {
	if g == nil {
		return nil
	}
	l := g.line
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.ahead
	l.ahead = nil
	return a
}

// takeNodes returns an array of n nodes, its contents whatever they are:
// a's when it has n or more (waiting for it to be made), a new one
// otherwise.
func (a *ahead) takeNodes(n int) []Node {
	if a == nil || a.size < n {
		return written[Node](n, n)
	}
	<-a.done
	return a.nodes[:n:n]
}

// AheadBytes is what z's lineage holds made ahead for its next update, in
// bytes, when z is its tip; 0 otherwise.
func (z *Zone) AheadBytes() int {
	l := z.line()
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tip != z || l.ahead == nil {
		return 0
	}
	return l.ahead.bytes
}
