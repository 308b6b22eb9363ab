package zone

import "bytes"

// The names of a parse. A parse used to intern every owner name in a hash
// index as it read it (addName), so that each name had one node from the
// start; for a million delegations that was over a third of the load's
// CPU, nearly all of it cache and TLB misses in an index of tens of
// megabytes, and merging the chunks of a parallel parse interned every
// name of the later chunks again, serially. A parse now gives each run of
// records with one owner a node of its own (runFor: only the few owners
// just seen are compared, in memory the parser has just written), and
// sortParsed makes one node of each name afterwards, in the canonical sort
// the build needs anyway: names that are the same sort next to each
// other. The build then adds the empty non-terminals in one pass over the
// sorted names and hashes each name once, into the zone's index.

// nameRuns is the state of a parse that numbers runs of owners, not
// names (see runFor).
type nameRuns struct {
	on     bool     // nodeFor gives a new node to an owner not seen just before
	sorted bool     // sortParsed made the names unique and sorted them
	recent [4]int32 // the last owners' nodes, plus one (0 for none)
	next   int      // where in recent the next new owner goes
	// ranked says that the nodes are the whole zone's, numbered in
	// canonical order (placeNodes made them), so that a node's
	// descendants follow it; Apply's partial builders know only some
	// nodes, in no such order.
	ranked bool
}

// recentOwners is how many of the last owners runFor compares a new
// owner with: a delegation's DS record follows its glue (ns1.d, ns2.d,
// then d again), and one node for all of a name's records spares the
// sort and its merge work.
const recentOwners = len(nameRuns{}.recent)

// initRuns makes b a builder whose parse numbers runs of owners, with
// room for about hint of them.
func (b *builder) initRuns(hint int) {
	b.runs = nameRuns{on: true}
	b.names = make([][]byte, 0, hint)
}

// runFor returns the node of the lowercase wire name w in a parse that
// numbers runs of owners: the node of one of the last few owners when w
// is one of them, else a new node. w may be a scratch buffer: a new name
// is copied into the name arena.
func (b *builder) runFor(w []byte) int32 {
	for _, n := range b.runs.recent {
		if n > 0 && bytes.Equal(b.names[n-1], w) {
			return n - 1
		}
	}
	if len(b.arena)+len(w) > cap(b.arena) {
		b.arena = make([]byte, 0, max(1<<20, len(w)))
	}
	b.arena = append(b.arena, w...)
	n := int32(len(b.names))
	b.names = append(b.names, b.arena[len(b.arena)-len(w):len(b.arena):len(b.arena)])
	b.runs.recent[b.runs.next] = n + 1
	b.runs.next = (b.runs.next + 1) % recentOwners
	return n
}

// chunkNodes returns, for each node of a chunk's builder sb, b's node for
// the same name, adding to b what it lacks: in a parse that numbers runs
// of owners, the chunk's nodes follow b's, with no lookup.
func (b *builder) chunkNodes(sb *builder) []int32 {
	node := make([]int32, len(sb.names))
	if b.runs.on && sb.runs.on {
		base := int32(len(b.names))
		b.names = append(b.names, sb.names...)
		for k := range node {
			node[k] = base + int32(k)
		}
		b.runs.recent = [recentOwners]int32{}
		return node
	}
	for k, w := range sb.names {
		node[k] = b.nodeFor(w)
	}
	return node
}

// sortParsed makes the names of a parse unique and puts them in canonical
// order: one node per name, numbered by rank, its records renumbered to
// match, and its name copied into one arena in that order (so that the
// build reads the names in order, not all over memory). It works on the
// names of any parse (a fallback to miekg/dns interns them, so they are
// unique already). The name index is dropped: the build makes the zone's
// once the empty non-terminals are in (placeSorted).
func (b *builder) sortParsed() { b.sortParsedParts(sortParts(len(b.names))) }

// sortParsedParts is sortParsed in the given number of parts.
func (b *builder) sortParsedParts(parts int) {
	s := sortCanonical(b.names, parts)
	// The parse's garbage and the sort's own (the entries before their
	// merge) go before the arena and the ranks are made, else they are
	// made from fresh memory beside it: the 1M-delegation load's peak
	// was 478 MiB with them, 404 without.
	if b.size > bigText {
		freeGarbage()
	}
	ents := s.ents
	n := len(ents)
	parts = max(1, min(parts, n))
	bounds := partBounds(n, parts)
	// dup reports whether entry k names the same as the entry before it.
	dup := func(k int) bool { return k > 0 && s.same(ents[k-1], ents[k]) }
	type count struct{ names, bytes int }
	counts := make([]count, parts+1)
	inParts(bounds, func(p, lo, hi int) {
		var c count
		for k := lo; k < hi; k++ {
			if !dup(k) {
				c.names++
				c.bytes += ents[k].wl()
			}
		}
		counts[p+1] = c
	})
	for p := 1; p <= parts; p++ {
		counts[p].names += counts[p-1].names
		counts[p].bytes += counts[p-1].bytes
	}
	arena := make([]byte, counts[parts].bytes)
	ends := make([]uint32, counts[parts].names)
	rank := make([]int32, n)
	inParts(bounds, func(p, lo, hi int) {
		u, off := counts[p].names-1, counts[p].bytes
		for k := lo; k < hi; k++ {
			if !dup(k) {
				off += copy(arena[off:], b.names[ents[k].i])
				u++
				ends[u] = uint32(off)
			}
			rank[ents[k].i] = int32(u)
		}
	})
	s = nil
	// The parse's names are read no more: their slice's array takes the
	// unique names, in order, rather than a new one beside it (24 bytes a
	// name, 32 MB of the 1M-delegation TLD's, at the moment of its load's
	// highest resident size).
	uniq := b.names[:len(ends):len(ends)]
	clear(b.names[len(ends):])
	start := uint32(0)
	for u, end := range ends {
		uniq[u] = arena[start:end:end]
		start = end
	}
	inParts(partBounds(len(b.recs), max(1, min(parts, len(b.recs)))), func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			b.recs[i].node = rank[b.recs[i].node]
		}
	})
	b.names, b.arena, b.idx, b.idxN = uniq, nil, nil, 0
	b.runs = nameRuns{sorted: true}
}

// apexNode is the apex's node before the table is made, when it has one.
func (b *builder) apexNode() (int32, bool) {
	if b.runs.sorted {
		// Every name is at or below the apex, which sorts first.
		return 0, len(b.names) > 0 && bytes.Equal(b.names[0], b.apex)
	}
	return b.lookup(b.apex)
}

// placeNodes makes the zone's nodes, one per name and empty non-terminal,
// in canonical order, and their index.
func (b *builder) placeNodes() {
	if b.runs.sorted {
		b.placeSorted()
	} else {
		b.addEmptyNonTerminals()
		b.sortNames()
	}
	b.runs.ranked = true
}

// placeSorted is sortNames and addEmptyNonTerminals for names sortParsed
// sorted: it adds the empty non-terminals, makes the zone's nodes in
// that order and its name index.
func (b *builder) placeSorted() {
	b.insertEmptyNonTerminals()
	order := make([]int32, len(b.names))
	for i := range order {
		order[i] = int32(i)
	}
	b.placeNames(order)
	b.z.buildIndexParts(sortParts(len(b.z.nodes)))
	b.idx = b.z.index
}

// insertEmptyNonTerminals adds every missing ancestor of every name, down
// to the apex, to names sorted in canonical order, in its place in that
// order, and renumbers the records to match: one pass that keeps the
// chain of the current name's ancestors, since a name's descendants
// follow it. A zone without empty non-terminals (a TLD's delegations)
// changes nothing.
func (b *builder) insertEmptyNonTerminals() {
	var stack [][]byte
	var out [][]byte // nil until the first empty non-terminal
	var renum []int32
	var anc [MaxLabels][]byte
	for k, w := range b.names {
		// The stack's names are each an ancestor of the next: pop those
		// that are not w's (a name no shorter than w is not).
		for len(stack) > 0 {
			top := stack[len(stack)-1]
			if len(top) < len(w) && isSubdomain(w, top) {
				break
			}
			stack = stack[:len(stack)-1]
		}
		if len(w) > len(b.apex) {
			// The ancestors of w missing between the nearest one present
			// (or above the apex, when none is) and w.
			na := 0
			for q := parentWire(w); len(stack) == 0 || len(q) > len(stack[len(stack)-1]); q = parentWire(q) {
				anc[na] = q
				na++
				if len(q) == len(b.apex) {
					break
				}
			}
			if na > 0 && out == nil {
				out = make([][]byte, k, len(b.names)+len(b.names)/8)
				copy(out, b.names[:k])
				renum = make([]int32, len(b.names))
				for i := range k {
					renum[i] = int32(i)
				}
			}
			for j := na - 1; j >= 0; j-- {
				out = append(out, anc[j])
				stack = append(stack, anc[j])
			}
		}
		if out != nil {
			renum[k] = int32(len(out))
			out = append(out, w)
		}
		stack = append(stack, w)
	}
	if out == nil {
		return
	}
	for i := range b.recs {
		b.recs[i].node = renum[b.recs[i].node]
	}
	b.names = out
}

// buildIndexParts makes the zone's name index (sized by indexSize, probed
// linearly from slotOf) with the names hashed, and the slots filled, in
// the given number of parts at once. Filled in node order, each slot written is anywhere in an index of tens of
// megabytes, a cache and TLB miss each: for a million delegations that
// was the largest serial step of the build after the parse. Here the
// nodes are first put in the order of their slots' neighbourhoods
// (indexWindow slots each, a few kilobytes of the index), and each part
// fills the neighbourhoods of one range of the index. An entry whose
// probe runs past its part's range (or past the end of the index) is
// placed afterwards, serially, from where its part stopped. Linear
// probing finds an entry placed in any order: every slot from its home to
// its place is filled when it is placed, and slots are never emptied.
func (z *Zone) buildIndexParts(parts int) {
	n := len(z.nodes)
	size := indexSize(n)
	z.index = make([]slot, size)
	z.mask = uint32(size - 1)
	parts = max(1, min(parts, n))
	hashes := make([]uint32, n)
	inParts(partBounds(n, parts), func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			nd := &z.nodes[i]
			hashes[i] = hashName(z.names[nd.Name : nd.Name+uint32(nd.Len)])
		}
	})
	shift := 0
	for size>>shift > indexWindows {
		shift++
	}
	windows := size >> shift
	// The nodes by window: a counting sort.
	start := make([]int32, windows+1)
	for _, h := range hashes {
		start[slotOf(h, z.mask)>>shift+1]++
	}
	for w := 1; w <= windows; w++ {
		start[w] += start[w-1]
	}
	byWindow := make([]int32, n)
	fill := append([]int32(nil), start[:windows]...)
	for i, h := range hashes {
		w := slotOf(h, z.mask) >> shift
		byWindow[fill[w]] = int32(i)
		fill[w]++
	}
	fill = nil
	parts = min(parts, windows)
	wb := partBounds(windows, parts)
	spill := make([][]int32, parts)
	inParts(wb, func(p, lo, hi int) {
		end := uint32(hi) << shift
		for _, i := range byWindow[start[lo]:start[hi]] {
			h := hashes[i]
			j := slotOf(h, z.mask)
			for z.index[j].node != 0 {
				if j++; j == end {
					break
				}
			}
			if j == end {
				spill[p] = append(spill[p], int32(i))
				continue
			}
			z.index[j] = slot{hash: h, node: uint32(i) + 1}
		}
	})
	for _, sp := range spill {
		for _, i := range sp {
			h := hashes[i]
			j := slotOf(h, z.mask)
			for z.index[j].node != 0 {
				j = (j + 1) & z.mask
			}
			z.index[j] = slot{hash: h, node: uint32(i) + 1}
		}
	}
	z.apexHash = hashName(z.apex)
	z.apexNode = z.find(z.apex, z.apexHash)
}

// indexWindows is the most neighbourhoods buildIndexParts orders the
// nodes in: a 4M-slot index (two million names) in windows of 1,024
// slots, 8 KB.
const indexWindows = 4096
