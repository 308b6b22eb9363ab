package zone

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"slices"
	"sync"
)

// parallelSortMin is the name count from which canonicalOrder builds its
// keys and sorts in parallel; below it the goroutines cost more than they
// save.
const parallelSortMin = 1 << 16

// canonicalOrderOf returns the indexes of names (lowercase wire names,
// all different) in canonical order. Each name gets a sort key whose plain
// byte order is canonical order (see appendCanonicalKey), so the sort
// compares with one memory comparison instead of walking labels. A large
// zone's keys are written and sorted by as many goroutines as there are
// cores, each over a part of the names, and the sorted parts merged: the
// sort was most of the serial time of a million delegations' build after
// the parse. The order does not depend on the parts, the names being
// different.
func canonicalOrderOf(names [][]byte) []int32 {
	return canonicalOrderParts(names, sortParts(len(names)))
}

// sortParts is the number of parts a sort of n names runs in.
func sortParts(n int) int {
	if n >= parallelSortMin {
		return runtime.GOMAXPROCS(0)
	}
	return 1
}

// canonicalOrderParts is canonicalOrderOf in the given number of parts.
func canonicalOrderParts(names [][]byte, parts int) []int32 {
	s := sortCanonical(names, parts)
	order := make([]int32, len(s.ents))
	for i := range s.ents {
		order[i] = s.ents[i].i
	}
	return order
}

// canonicalSort is a sort of names in canonical order: ents holds the
// names' numbers in that order, names that are the same in the order of
// their numbers.
type canonicalSort struct {
	keys   []byte
	keyOff []uint32 // name i's key is keys[keyOff[i]:keyOff[i+1]]
	skip   int      // the bytes every key starts with, which ents leave out
	ents   []sortEnt
}

func (s *canonicalSort) key(i int32) []byte { return s.keys[s.keyOff[i]:s.keyOff[i+1]] }

// cmp orders two names by their keys, then by their numbers.
func (s *canonicalSort) cmp(x, y sortEnt) int {
	switch {
	case x.p0 != y.p0:
		return cmpUint64(x.p0, y.p0)
	case x.p1 != y.p1:
		return cmpUint64(x.p1, y.p1)
	case x.short() && y.short():
		// Both keys lie whole in the sixteen bytes: they are the same
		// (one key is never the other and zero bytes, as every key ends a
		// label and a label never starts with a plain zero byte).
	default:
		if c := bytes.Compare(s.key(x.i)[s.skip:], s.key(y.i)[s.skip:]); c != 0 {
			return c
		}
	}
	if x.kn() != y.kn() {
		return int(x.kn()) - int(y.kn())
	}
	return int(x.i) - int(y.i)
}

// same reports whether two names have the same key, that is, are the
// same name.
func (s *canonicalSort) same(x, y sortEnt) bool {
	if x.p0 != y.p0 || x.p1 != y.p1 || x.kn() != y.kn() {
		return false
	}
	return x.short() || bytes.Equal(s.key(x.i)[s.skip:], s.key(y.i)[s.skip:])
}

// inParts runs f over each part's range of the n items at once.
func inParts(bounds []int, f func(p, lo, hi int)) {
	var wg sync.WaitGroup
	for p := range len(bounds) - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(p, bounds[p], bounds[p+1])
		}()
	}
	wg.Wait()
}

// partBounds cuts n items into parts ranges.
func partBounds(n, parts int) []int {
	bounds := make([]int, parts+1)
	for p := range bounds {
		bounds[p] = n * p / parts
	}
	return bounds
}

// sortCanonical sorts names, which may repeat, in the given number of
// parts (see canonicalOrderOf).
func sortCanonical(names [][]byte, parts int) *canonicalSort {
	n := len(names)
	s := &canonicalSort{}
	if n == 0 {
		return s
	}
	parts = max(1, min(parts, n))
	// The keys' offsets first, so that the parts write their keys into
	// one array: each part's keys' lengths, then their sums in one pass.
	keyOff := make([]uint32, n+1)
	bounds := partBounds(n, parts)
	inParts(bounds, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			keyOff[i+1] = uint32(canonicalKeyLen(names[i]))
		}
	})
	for i := 1; i <= n; i++ {
		keyOff[i] += keyOff[i-1]
	}
	s.keys, s.keyOff = make([]byte, keyOff[n]), keyOff
	inParts(bounds, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			appendCanonicalKey(s.keys[keyOff[i]:keyOff[i]:keyOff[i+1]], names[i])
		}
	})
	// The bytes every key starts with (a zone's apex) order nothing: the
	// sort compares the sixteen bytes after them, held beside each
	// name's number, and reads the keys themselves only on a tie. The
	// keys of millions of names lie all over memory, and the cache misses
	// of reading them at every comparison were most of the sort's time.
	skips := make([]int, parts)
	inParts(bounds, func(p, lo, hi int) {
		k0 := s.key(0)
		skip := len(k0)
		for i := lo; i < hi; i++ {
			k := s.key(int32(i))
			m := min(skip, len(k))
			j := 0
			for j < m && k[j] == k0[j] {
				j++
			}
			skip = j
		}
		skips[p] = skip
	})
	s.skip = slices.Min(skips)
	ents := make([]sortEnt, n)
	inParts(bounds, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			var pre [16]byte
			k := s.key(int32(i))[s.skip:]
			copy(pre[:], k)
			ents[i] = sortEnt{binary.BigEndian.Uint64(pre[:8]), binary.BigEndian.Uint64(pre[8:]), int32(i), uint32(min(len(k), 0xffff)) | uint32(len(names[i]))<<16}
		}
		slices.SortFunc(ents[lo:hi], s.cmp)
	})
	var wg sync.WaitGroup
	for parts > 1 {
		// Merge neighbouring sorted parts, pairs of them concurrently.
		merged := make([]sortEnt, n)
		var next []int
		for p := 0; p < parts; p += 2 {
			lo := bounds[p]
			next = append(next, lo)
			if p+1 == parts {
				copy(merged[lo:], ents[lo:bounds[p+1]])
				continue
			}
			mid, hi := bounds[p+1], bounds[p+2]
			// The front half of the result is merged from the parts'
			// fronts and the back half from their backs, at once.
			half := (hi - lo) / 2
			wg.Add(2)
			go func() {
				defer wg.Done()
				mergeFront(merged[lo:lo+half], ents[lo:mid], ents[mid:hi], s.cmp)
			}()
			go func() {
				defer wg.Done()
				mergeBack(merged[lo+half:hi], ents[lo:mid], ents[mid:hi], s.cmp)
			}()
		}
		wg.Wait()
		ents = merged
		bounds = append(next, n)
		parts = len(bounds) - 1
	}
	s.ents = ents
	return s
}

// canonicalKeyLen is the length of appendCanonicalKey's key for w: a byte
// less than the name per label (the length byte and the root's zero give
// way to the two bytes that end each label), and one more per zero byte
// inside a label.
func canonicalKeyLen(w []byte) int {
	labels := 0
	for i := 0; w[i] != 0; i += int(w[i]) + 1 {
		labels++
	}
	return len(w) - 1 + labels + bytes.Count(w, []byte{0}) - 1
}

// sortEnt is a name being sorted: the sixteen bytes of its key after the
// bytes all keys share, big-endian, its number, and in n the length of
// its key after those bytes (capped, the low 16 bits) and the length of
// the name. Four fields, no more: a struct of five is not kept in
// registers, and the sort moved and compared it three times slower.
type sortEnt struct {
	p0, p1 uint64
	i      int32
	n      uint32
}

// kn is the length of the entry's key after the bytes all keys share.
func (e sortEnt) kn() uint32 { return e.n & 0xffff }

// wl is the length of the entry's name.
func (e sortEnt) wl() int { return int(e.n >> 16) }

// short reports whether the entry's key lies whole in p0 and p1.
func (e sortEnt) short() bool { return e.kn() <= 16 }

func cmpUint64(a, b uint64) int {
	if a < b {
		return -1
	}
	return 1
}

// mergeFront fills dst with the len(dst) least elements of the sorted a
// and b, in order.
func mergeFront[T any](dst, a, b []T, cmp func(x, y T) int) {
	i, j := 0, 0
	for k := range dst {
		if j < len(b) && (i == len(a) || cmp(b[j], a[i]) < 0) {
			dst[k] = b[j]
			j++
		} else {
			dst[k] = a[i]
			i++
		}
	}
}

// mergeBack fills dst with the len(dst) greatest elements of the sorted a
// and b, in order. With mergeFront over the rest of the result it makes
// the whole merge, the elements being different (cmp never returns 0 for
// two of them).
func mergeBack[T any](dst, a, b []T, cmp func(x, y T) int) {
	i, j := len(a)-1, len(b)-1
	for k := len(dst) - 1; k >= 0; k-- {
		if j >= 0 && (i < 0 || cmp(b[j], a[i]) > 0) {
			dst[k] = b[j]
			j--
		} else {
			dst[k] = a[i]
			i--
		}
	}
}
