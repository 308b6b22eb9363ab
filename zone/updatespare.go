package zone

import (
	"reflect"
	"runtime"
)

// An arena that runs out of room is copied into one a sixteenth larger
// (reserve). For a TLD that copy is large (the NSEC3 proof wire of the
// 1M-delegation TLD is 176 MB), and the fresh memory's page faults cost
// hundreds of milliseconds: done inside an update, it made one update in
// a few dozen several times slower than the rest. So the copy is made
// ahead of need, in the background: when an update publishes a tip whose
// arena has less room left than spareAhead updates like it take (what the
// update reserved and appended), a goroutine copies the arena's first n0
// elements, its length then, into a spare a sixteenth larger (or four
// such updates' worth, when more). Nothing below a version's lengths is
// written again, and readers of the older versions only read there, so
// the copy takes no lock. The next update of the tip takes the spare when
// it must grow the arena (waiting for the copy if it is not done) or when
// the copy is done: it copies only what was appended since n0 and appends
// to the spare from then on. A spare belongs to the lineage and is keyed
// by the arena's backing array and n0; only the version that claimed the
// lineage's tip takes it, and only when its arena is that array with at
// least n0 elements, so the prefix copied is its own. A spare that no
// longer matches the tip's arena (the arena grew otherwise, or an older
// version's update became the tip) is dropped when the new tip is
// published; the spares die with the lineage. Until the next update takes
// it, a spare holds the arena a second time, as the copy made in the
// update did until the older versions were released; Zone.Settle waits
// for the copies.

// arenaKind names an arena a lineage may hold a spare of.
type arenaKind int

const (
	arNames arenaKind = iota
	arSets
	arBlocks
	arWire
	arPatches
	arTrims
	arKeptWire
	arProofBlocks
	arProofWire
	arProofPatches
	numArenaKinds
)

// spareAhead is how many updates' worth of room (what the last update
// reserved and appended) an arena of the tip must have left, or a spare
// is made of it; spareMinBytes the size under which an arena gets none
// (its copy in reserve is cheap). Variables, so that tests can make a
// spare of every arena after every update.
var (
	spareAhead    = 2
	spareMinBytes = 1 << 20
)

// startSpare runs the copy into a spare; a variable, so that tests can
// hold it back.
var startSpare = func(f func()) { go f() }

// tookSpare, when set, is told of each spare an update takes, and
// whether the arena had to grow; for tests.
var tookSpare func(k arenaKind, need bool)

// spare is an arena's copy made ahead of need: buf holds the first n0
// elements of the backing array whose first element is src, and room
// past them; done is closed once buf is written.
type spare struct {
	src  any // *T
	n0   int
	buf  any // []T, len n0
	done chan struct{}
}

// arenaID is what a spare of s is keyed by: its backing array's first
// element, nil when s has no capacity.
func arenaID[T any](s []T) any {
	if cap(s) == 0 {
		return nil
	}
	return &s[:1][0]
}

// spareMatches reports whether sp was copied from s's backing array, at
// most as long as s.
func spareMatches[T any](sp *spare, s []T) bool {
	return cap(s) > 0 && sp.src == arenaID(s) && sp.n0 <= len(s)
}

func (sp *spare) ready() bool {
	select {
	case <-sp.done:
		return true
	default:
		return false
	}
}

// growPlan is what an update that appends in place (the lineage's tip
// claimed) knows of its arenas' growth: how much each reserve asked for,
// which the spares made after it are sized by.
type growPlan struct {
	line  *lineage
	asked [numArenaKinds]int
}

// room is reserve for arena k of an update: s with room for extra more
// elements, taken from the lineage's spare of s when there is one and
// the arena must grow or the spare is ready; g is nil for an update that
// does not append in place.
func room[T any](g *growPlan, k arenaKind, s []T, extra int) []T {
	if g == nil {
		return reserve(s, extra)
	}
	g.asked[k] += extra
	need := cap(s)-len(s) < extra
	l := g.line
	l.mu.Lock()
	sp := l.spares[k]
	take := sp != nil && spareMatches(sp, s) && (need || sp.ready())
	if take {
		l.spares[k] = nil
	}
	l.mu.Unlock()
	if !take {
		return reserve(s, extra)
	}
	<-sp.done
	buf := sp.buf.([]T)
	if cap(buf) < len(s)+extra {
		// Outgrown while it was being copied: append would copy it
		// again.
		return reserve(s, extra)
	}
	if tookSpare != nil {
		tookSpare(k, need)
	}
	return append(buf, s[sp.n0:]...)
}

// planSpares runs when nz, made from z, is published as the lineage's
// tip (l.mu held): it drops the spares that are not of nz's arenas and
// starts those nz's arenas call for (see above). g is nil when nz was not
// made in place.
func (l *lineage) planSpares(z, nz *Zone, g *growPlan) {
	m := nz.mapped
	planSpare(l, g, m, arNames, nz.names, len(z.names))
	planSpare(l, g, m, arSets, nz.sets, len(z.sets))
	planSpare(l, g, m, arBlocks, nz.blocks, len(z.blocks))
	planSpare(l, g, m, arWire, nz.wire, len(z.wire))
	planSpare(l, g, m, arPatches, nz.patches, len(z.patches))
	planSpare(l, g, m, arTrims, nz.trims, len(z.trims))
	var kw, okw []byte
	if nz.kept != nil {
		kw = nz.kept.wire
	}
	if z.kept != nil {
		okw = z.kept.wire
	}
	planSpare(l, g, m, arKeptWire, kw, len(okw))
	var d, od arenas
	if nz.denial != nil {
		d = nz.denial.arenas
	}
	if z.denial != nil {
		od = z.denial.arenas
	}
	planSpare(l, g, m, arProofBlocks, d.blocks, len(od.blocks))
	planSpare(l, g, m, arProofWire, d.wire, len(od.wire))
	planSpare(l, g, m, arProofPatches, d.patches, len(od.patches))
}

// planSpare keeps the lineage's spare of arena k when it is of s, drops
// it otherwise, and starts one when s has less room left than spareAhead
// updates like the last (which reserved asked and grew s from oldLen).
// m holds s's region when it is one (an arena that outgrows its
// reservation): the copy keeps it.
func planSpare[T any](l *lineage, g *growPlan, m *mappedArenas, k arenaKind, s []T, oldLen int) {
	if sp := l.spares[k]; sp != nil {
		if spareMatches(sp, s) {
			return
		}
		l.spares[k] = nil
	}
	step := len(s) - oldLen
	if g != nil {
		step += g.asked[k]
	}
	if step <= 0 || len(s) == 0 || cap(s)-len(s) >= spareAhead*step ||
		cap(s)*int(reflect.TypeFor[T]().Size()) < spareMinBytes {
		return
	}
	n0 := len(s)
	src := s[:n0:n0]
	sp := &spare{src: arenaID(s), n0: n0, done: make(chan struct{})}
	size := n0 + max(n0/16, 4*step)
	startSpare(func() {
		buf := make([]T, n0, size)
		copy(buf, src)
		runtime.KeepAlive(m)
		sp.buf = buf
		close(sp.done)
	})
	l.spares[k] = sp
}

// waitSpares returns once the copies into the spares of z's lineage are
// done, and the arrays made ahead for its next update (PrepareNext), when
// z is its tip.
func (z *Zone) waitSpares() {
	l := z.line()
	if l == nil {
		return
	}
	l.mu.Lock()
	var wait []chan struct{}
	if l.tip == z {
		for _, sp := range l.spares {
			if sp != nil {
				wait = append(wait, sp.done)
			}
		}
		if a := l.ahead; a != nil {
			wait = append(wait, a.done, a.early.done)
		}
	}
	l.mu.Unlock()
	for _, c := range wait {
		<-c
	}
}
