package zone

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestNSEC3Parts builds NSEC3 zones with the nodes hashed in one part and
// in several (buildNSEC3's parallel matching, which a large zone uses),
// and requires the same table, the same denial indexes and the same
// warnings. The zones are the walk fixture and copies with one NSEC3
// taken out of the chain (its predecessor pointing past it), so that a
// name has no NSEC3 and the warning must name the first such name in
// node order whichever part finds it (with two taken out, the two names
// often fall in different parts).
func TestNSEC3Parts(t *testing.T) {
	data, err := os.ReadFile("testdata/walk/walk-nsec3.zone")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	// dropNSEC3 takes the NSEC3 of hash h out of lines and points its
	// predecessor at its successor.
	dropNSEC3 := func(lines []string, h string) []string {
		var succ string
		for _, l := range lines {
			if f := strings.Fields(l); len(f) >= 9 && f[3] == "NSEC3" && strings.HasPrefix(f[0], h+".") {
				succ = f[8]
			}
		}
		var out []string
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) > 0 && strings.HasPrefix(f[0], h+".") {
				continue
			}
			if len(f) >= 9 && f[3] == "NSEC3" && f[8] == h {
				l = strings.Replace(l, h, succ, 1)
			}
			out = append(out, l)
		}
		return out
	}
	var hashes []string
	for _, l := range lines {
		if f := strings.Fields(l); len(f) >= 9 && f[3] == "NSEC3" {
			h, _, _ := strings.Cut(f[0], ".")
			hashes = append(hashes, h)
		}
	}
	// The fixture, and copies without one NSEC3 or two.
	texts := []string{string(data)}
	for i, a := range hashes {
		texts = append(texts, strings.Join(dropNSEC3(lines, a), "\n"))
		for _, b := range hashes[i+1:] {
			texts = append(texts, strings.Join(dropNSEC3(dropNSEC3(lines, a), b), "\n"))
		}
	}
	defer func(m int) { nsec3PartsMin = m }(nsec3PartsMin)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	missing := 0
	for i, text := range texts {
		nsec3PartsMin = 1 << 30
		want, err := Parse(strings.NewReader(text), "walk.test.", "walk.zone")
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want.Warnings() {
			if strings.Contains(w, "has no NSEC3 record") {
				missing++
			}
		}
		nsec3PartsMin = 0
		for _, procs := range []int{2, 3, 5} {
			runtime.GOMAXPROCS(procs)
			got, err := Parse(strings.NewReader(text), "walk.test.", "walk.zone")
			if err != nil {
				t.Fatal(err)
			}
			what := fmt.Sprintf("text %d in %d parts", i, procs)
			if tableHash(got) != tableHash(want) {
				t.Errorf("%s: table differs", what)
			}
			if !slices.Equal(got.denial.match, want.denial.match) || !slices.Equal(got.denial.wild, want.denial.wild) {
				t.Errorf("%s: NSEC3 match or wildcard index differs", what)
			}
			if !slices.Equal(got.Warnings(), want.Warnings()) {
				t.Errorf("%s: warnings %q, in one part %q", what, got.Warnings(), want.Warnings())
			}
		}
	}
	if missing == 0 {
		t.Fatal("no text has a name without an NSEC3: the test checks nothing of the warning")
	}
}

// TestHashBucketsCover compares hashBuckets.cover with denial.cover on
// chains of random hashes, some sharing their first two or eight bytes,
// for random hashes, the chain's own, and hashes below and above all.
func TestHashBucketsCover(t *testing.T) {
	rng := rand.New(rand.NewPCG(5155, 3))
	for _, n := range []int{1, 2, 3, 50, 5000} {
		seen := map[string]bool{}
		var hs [][]byte
		for len(hs) < n {
			h := make([]byte, nsec3HashLen)
			for i := range h {
				h[i] = byte(rng.IntN(256))
			}
			switch k := rng.IntN(4); {
			case k == 0 && len(hs) > 0:
				copy(h, hs[rng.IntN(len(hs))][:8]) // the same first eight bytes
			case k == 1 && len(hs) > 0:
				copy(h, hs[rng.IntN(len(hs))][:2]) // the same bucket
			}
			if !seen[string(h)] {
				seen[string(h)] = true
				hs = append(hs, h)
			}
		}
		slices.SortFunc(hs, bytes.Compare)
		d := &denial{}
		for i, h := range hs {
			d.hashes = append(d.hashes, h...)
			d.hashBlocks = append(d.hashBlocks, uint32(i))
		}
		// The buckets share the chain's starts; denial.cover is
		// asked of a copy without them, a binary search of the whole
		// chain.
		ref := *d
		d.starts, d.startBits = hashStarts(d.hashes)
		bk := newHashBuckets(d)
		queries := [][]byte{make([]byte, nsec3HashLen), bytes.Repeat([]byte{0xff}, nsec3HashLen)}
		for range 20000 {
			q := slices.Clone(hs[rng.IntN(len(hs))])
			switch rng.IntN(4) {
			case 0: // a chain member
			case 1:
				q[nsec3HashLen-1-rng.IntN(12)] ^= byte(1 + rng.IntN(255))
			default:
				for i := range q {
					q[i] = byte(rng.IntN(256))
				}
			}
			queries = append(queries, q)
		}
		for _, q := range queries {
			if got, want := bk.cover(d.hashes, q), ref.cover(q); got != want {
				t.Fatalf("%d hashes: cover of %x is %d, denial.cover %d", n, q, got, want)
			}
		}
	}
}
