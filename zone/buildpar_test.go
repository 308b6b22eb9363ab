package zone

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestCanonicalOrderParts sorts random names (with capitals made
// lowercase, zero bytes, labels that are prefixes of others, long labels
// that tie past sixteen bytes), and the same names under one apex, in 1
// to 7 parts, and requires the order CompareCanonical gives.
func TestCanonicalOrderParts(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 1))
	seen := map[string]bool{}
	var names [][]byte
	for len(names) < 5000 {
		var w []byte
		for range 1 + rng.IntN(4) {
			l := 1 + rng.IntN(3)
			long := rng.IntN(4) == 0 // ties past the sixteen bytes the sort holds
			if long {
				l = 20 + rng.IntN(3)
			}
			w = append(w, byte(l))
			for k := range l {
				if long && k < 18 {
					w = append(w, 'q')
					continue
				}
				w = append(w, []byte{0, 'a', 'b', 'z', 0xff}[rng.IntN(5)])
			}
		}
		w = append(w, 0)
		if !seen[string(w)] {
			seen[string(w)] = true
			names = append(names, w)
		}
	}
	// The same names under one apex, as a zone's are: every key then
	// starts with the same bytes.
	var zoneNames [][]byte
	for _, w := range names {
		zoneNames = append(zoneNames, append(slices.Clone(w[:len(w)-1]), "\x04apex\x04test\x00"...))
	}
	zoneNames = append(zoneNames, []byte("\x04apex\x04test\x00"))
	for _, names := range [][][]byte{names, zoneNames} {
		want := make([]int32, len(names))
		for i := range want {
			want[i] = int32(i)
		}
		slices.SortFunc(want, func(x, y int32) int { return CompareCanonical(names[x], names[y]) })
		for parts := 1; parts <= 7; parts++ {
			if got := canonicalOrderParts(names, parts); !slices.Equal(got, want) {
				t.Errorf("%d names in %d parts: order differs from CompareCanonical's", len(names), parts)
			}
		}
	}
	if got := canonicalOrderParts(names[:1], 4); !slices.Equal(got, []int32{0}) {
		t.Errorf("one name: %v", got)
	}
	if got := canonicalOrderParts(nil, 2); len(got) != 0 {
		t.Errorf("no names: %v", got)
	}
}
