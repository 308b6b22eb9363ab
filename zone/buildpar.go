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
	parts := 1
	if len(names) >= parallelSortMin {
		parts = runtime.GOMAXPROCS(0)
	}
	return canonicalOrderParts(names, parts)
}

// canonicalOrderParts is canonicalOrderOf in the given number of parts.
func canonicalOrderParts(names [][]byte, parts int) []int32 {
	n := len(names)
	if n == 0 {
		return nil
	}
	parts = max(1, min(parts, n))
	// The keys' offsets first, so that the parts write their keys into
	// one array: a key is each label's bytes (a 0x00 doubled) and two
	// bytes after each label.
	keyOff := make([]uint32, n+1)
	for i, w := range names {
		k := 0
		for j := 0; w[j] != 0; j += int(w[j]) + 1 {
			l := w[j+1 : j+1+int(w[j])]
			k += len(l) + 2 + bytes.Count(l, []byte{0})
		}
		keyOff[i+1] = keyOff[i] + uint32(k)
	}
	keys := make([]byte, keyOff[n])
	key := func(i int32) []byte { return keys[keyOff[i]:keyOff[i+1]] }
	bounds := make([]int, parts+1)
	for p := range bounds {
		bounds[p] = n * p / parts
	}
	// inParts runs f over each part's range of names at once.
	var wg sync.WaitGroup
	inParts := func(f func(p, lo, hi int)) {
		for p := range parts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f(p, bounds[p], bounds[p+1])
			}()
		}
		wg.Wait()
	}
	inParts(func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			appendCanonicalKey(keys[keyOff[i]:keyOff[i]:keyOff[i+1]], names[i])
		}
	})
	// The bytes every key starts with (a zone's apex) order nothing: the
	// sort compares the sixteen bytes after them, held beside each
	// name's number, and reads the keys themselves only on a tie. The
	// keys of millions of names lie all over memory, and the cache misses
	// of reading them at every comparison were most of the sort's time.
	skips := make([]int, parts)
	inParts(func(p, lo, hi int) {
		k0 := key(0)
		skip := len(k0)
		for i := lo; i < hi; i++ {
			k := key(int32(i))
			m := min(skip, len(k))
			j := 0
			for j < m && k[j] == k0[j] {
				j++
			}
			skip = j
		}
		skips[p] = skip
	})
	skip := slices.Min(skips)
	ents := make([]sortEnt, n)
	cmp := func(x, y sortEnt) int {
		switch {
		case x.p0 != y.p0:
			return cmpUint64(x.p0, y.p0)
		case x.p1 != y.p1:
			return cmpUint64(x.p1, y.p1)
		}
		return bytes.Compare(key(x.i)[skip:], key(y.i)[skip:])
	}
	inParts(func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			var pre [16]byte
			copy(pre[:], key(int32(i))[skip:])
			ents[i] = sortEnt{binary.BigEndian.Uint64(pre[:8]), binary.BigEndian.Uint64(pre[8:]), int32(i)}
		}
		slices.SortFunc(ents[lo:hi], cmp)
	})
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
				mergeFront(merged[lo:lo+half], ents[lo:mid], ents[mid:hi], cmp)
			}()
			go func() {
				defer wg.Done()
				mergeBack(merged[lo+half:hi], ents[lo:mid], ents[mid:hi], cmp)
			}()
		}
		wg.Wait()
		ents = merged
		bounds = append(next, n)
		parts = len(bounds) - 1
	}
	order := make([]int32, n)
	for i := range ents {
		order[i] = ents[i].i
	}
	return order
}

// sortEnt is a name being sorted: the sixteen bytes of its key after the
// bytes all keys share, big-endian, and its number.
type sortEnt struct {
	p0, p1 uint64
	i      int32
}

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
// the whole merge, the elements being different.
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
