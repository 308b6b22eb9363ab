package zone

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"os"
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

// TestKeptReserved requires the kept records (glue, occluded data) of
// zones with delegations to be written into arenas reserved from
// reserveTable's count, not grown by appending: as many runs reserved as
// kept, and the wire within its reservation.
func TestKeptReserved(t *testing.T) {
	var deleg bytes.Buffer
	dw := bufio.NewWriter(&deleg)
	delegationZone(dw, 3000)
	dw.Flush()
	for _, tc := range []struct {
		origin string
		data   []byte
	}{{"deleg.", deleg.Bytes()}, {".", mustRead(t, rootFile)}} {
		z, err := Parse(bytes.NewReader(tc.data), tc.origin, "kept.zone")
		if err != nil {
			t.Fatal(err)
		}
		k := z.kept
		if k == nil || len(k.sets) == 0 {
			t.Fatalf("%s: no kept records", tc.origin)
		}
		if cap(k.sets) != len(k.sets) {
			t.Errorf("%s: %d kept runs in an array of %d", tc.origin, len(k.sets), cap(k.sets))
		}
		if len(k.wire) > cap(k.wire) || cap(k.wire) > len(k.wire)*5/4 {
			t.Errorf("%s: %d bytes of kept wire in an arena of %d", tc.origin, len(k.wire), cap(k.wire))
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestHasSplitSpecial compares hasSplitSpecial with bytes.IndexAny, which
// it replaces, on lines with each special byte at each place.
func TestHasSplitSpecial(t *testing.T) {
	base := []byte("d0000001.bench.\t86400\tIN\tNS\tns1.hoster1.example.\n")
	for n := 0; n <= len(base); n++ {
		p := base[:n]
		if hasSplitSpecial(p) != (bytes.IndexAny(p, "\"();\\") >= 0) {
			t.Fatalf("%q: %v", p, hasSplitSpecial(p))
		}
		for i := range p {
			for _, c := range []byte("\"();\\$\t") {
				q := slices.Clone(p)
				q[i] = c
				if got, want := hasSplitSpecial(q), bytes.IndexAny(q, "\"();\\") >= 0; got != want {
					t.Fatalf("%q: %v, want %v", q, got, want)
				}
			}
		}
	}
}

func BenchmarkHasSplitSpecial(b *testing.B) {
	line := []byte("li9alt4cljaqgf2gk8bkg2dt07n5r152.bench.\t86400\tIN\tRRSIG\tNSEC3 13 2 86400 20270102215351 20261205215351 62413 bench. DscMvPLSHwfvJ2cfJyRR0v3cgrZ6HFnjSGh8gkxMfo5xXr+MQE1pmQXJEU2Sfg/L7pFv36dTWmitidcXVvtrrw==\n")
	b.SetBytes(int64(len(line)))
	b.Run("table", func(b *testing.B) {
		for range b.N {
			if hasSplitSpecial(line) {
				b.Fatal()
			}
		}
	})
	b.Run("IndexAny", func(b *testing.B) {
		for range b.N {
			if bytes.IndexAny(line, "\"();\\") >= 0 {
				b.Fatal()
			}
		}
	})
}
