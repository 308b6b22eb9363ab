package zone

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestLoadFileLines checks that LoadFile, which parses the file as it reads
// it and keeps no copy, still names the line of a build error and of each
// warning (it reads the file again for them), as Parse does from memory.
func TestLoadFileLines(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const head = "$ORIGIN example.com.\n$TTL 3600\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n"

	bad := write("bad.zone", head+"; a comment\n\nwww CNAME ns1\nwww A 192.0.2.2\n")
	_, err := LoadFile("example.com.", bad)
	var le *LoadError
	if !errors.As(err, &le) || le.File != bad || le.Line != 8 || !strings.Contains(le.Msg, "CNAME") {
		t.Errorf("LoadFile(bad) = %v, want %s:8 naming the CNAME", err, bad)
	}

	warn := write("warn.zone", head+"a 60 TXT \"x\"\na 120 TXT \"y\"\nb 60 TXT \"x\"\n\nb 120 TXT \"y\"\n")
	z, err := LoadFile("example.com.", warn)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{warn + ":7:", warn + ":10:"}
	if w := z.Warnings(); len(w) != len(want) || !strings.HasPrefix(w[0], want[0]) || !strings.HasPrefix(w[1], want[1]) {
		t.Errorf("Warnings = %q, want them at %q", w, want)
	}
}

// TestNameTable checks the block writer's name table against a map:
// first value wins, reset empties it, and growth keeps every entry.
func TestNameTable(t *testing.T) {
	tab := newNameTable()
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		tab.reset()
		ref := map[string]uint16{}
		// Some rounds outgrow the table several times over.
		n := rng.IntN(3000)
		if round%10 == 0 {
			n = 20000
		}
		for i := range n {
			k := []byte{byte(rng.IntN(8)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(i % 3)}
			k = k[:1+rng.IntN(len(k))]
			v := uint16(rng.Uint32())
			_, had := ref[string(k)]
			if added := tab.add(k, v); added == had {
				t.Fatalf("round %d: add(%x) = %v with the key present %v", round, k, added, had)
			}
			if !had {
				ref[string(k)] = v
			}
		}
		for k, v := range ref {
			if got, ok := tab.get([]byte(k)); !ok || got != v {
				t.Fatalf("round %d: get(%x) = %d, %v; want %d", round, k, got, ok, v)
			}
		}
		if _, ok := tab.get([]byte("absent key longer than any")); ok {
			t.Fatalf("round %d: an absent key was found", round)
		}
	}
}

// TestSortRecs checks the radix sort of records against a comparison sort
// of the same records by node, type, covered type, rdata and ordinal,
// with node counts that need one, two and three radix passes.
func TestSortRecs(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, nodes := range []int{1, 2, 1000, 1 << 12, 1<<22 + 5} {
		b := &builder{}
		for i := range 20000 {
			rd := []byte(strconv.Itoa(rng.IntN(5)))
			b.recs = append(b.recs, rec{node: int32(rng.IntN(nodes)), typ: uint16(rng.IntN(4)), covered: uint16(rng.IntN(2)),
				rd: uint32(len(b.rdata)), rdl: uint16(len(rd)), ord: uint32(i)})
			b.rdata = append(b.rdata, rd...)
		}
		want := slices.Clone(b.recs)
		slices.SortFunc(want, func(x, y rec) int {
			if x.node != y.node {
				return int(x.node) - int(y.node)
			}
			if x.typ != y.typ {
				return int(x.typ) - int(y.typ)
			}
			if x.covered != y.covered {
				return int(x.covered) - int(y.covered)
			}
			if c := bytes.Compare(b.rdataOf(&x), b.rdataOf(&y)); c != 0 {
				return c
			}
			return int(x.ord) - int(y.ord)
		})
		b.sortRecs(nodes)
		if !slices.Equal(b.recs, want) {
			t.Errorf("%d nodes: radix order differs from the comparison sort's", nodes)
		}
	}
}
