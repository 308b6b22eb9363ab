package zone

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// internedLoad builds a zone the way Apply's rebuild does, and every load
// did before sortParsed: each owner interned in the builder's name index
// as it is read (miekg/dns parsing the whole text), the empty
// non-terminals added by lookups, then the canonical sort.
func internedLoad(t *testing.T, data []byte, origin, file string) *Zone {
	t.Helper()
	origin = dns.Fqdn(origin)
	apex, err := toWire(origin)
	if err != nil {
		t.Fatal(err)
	}
	b := &builder{origin: origin, file: file, data: data, size: len(data), apex: lowerWire(apex)}
	b.initIndex(16)
	if err := b.parse(bytes.NewReader(data), origin); err != nil {
		t.Fatalf("%s: interned parse: %v", file, err)
	}
	z, err := b.build()
	if err != nil {
		t.Fatalf("%s: interned build: %v", file, err)
	}
	return z
}

// scatteredZone writes a zone whose names come back far apart (more owners
// between than runFor compares with), in other case, across the places
// where a parallel parse cuts, with empty non-terminals at several depths
// (some first met below a deeper name, some only above a wildcard or
// below a delegation), so that sortParsed must make one node of many
// runs and insertEmptyNonTerminals must find every missing ancestor.
func scatteredZone(n int) []byte {
	var w bytes.Buffer
	w.WriteString("$ORIGIN scatter.test.\n$TTL 3600\n")
	w.WriteString("@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n")
	for i := range n {
		fmt.Fprintf(&w, "h%d A 192.0.2.%d\n", i, i%250+1)
		switch i % 7 {
		case 0:
			fmt.Fprintf(&w, "a.b.c%d TXT \"deep\"\n", i/7)
		case 1:
			fmt.Fprintf(&w, "*.w%d.e%d MX 10 h%d\n", i, i, i)
		case 2:
			fmt.Fprintf(&w, "d%d NS ns.d%d\nx.y.d%d A 192.0.2.9\n", i, i, i)
		case 3:
			fmt.Fprintf(&w, "C%d TXT \"above\"\n", (i-3)/7) // the parent of a.b.c, later
		}
		if i >= 10 && i%3 == 0 {
			// An owner seen long before, in other case.
			fmt.Fprintf(&w, "H%d AAAA 2001:db8::%x\n", i-10, i)
		}
	}
	return w.Bytes()
}

// TestParsedNamesAsInterned requires a load (owners numbered by run in
// the parse, made unique by the canonical sort, empty non-terminals added
// in order; parsed whole and in 2 to 5 chunks) to build the zone the
// interned way does: the same table, records and warnings.
func TestParsedNamesAsInterned(t *testing.T) {
	dir := t.TempDir()
	inc := writeTricky(t, dir)
	var deleg bytes.Buffer
	dw := bufio.NewWriter(&deleg)
	delegationZone(dw, 3000)
	dw.Flush()
	texts := []struct {
		origin, file string
		data         []byte
	}{
		{"scatter.test.", "scatter.zone", scatteredZone(3000)},
		{"deleg.", "deleg.zone", deleg.Bytes()},
		{"tricky.test.", filepath.Join(dir, "tricky.zone"), trickyZone(3, 3000, false, inc)},
		{"tricky.test.", filepath.Join(dir, "tricky.zone"), trickyZone(5, 3000, true, inc)},
	}
	for _, f := range []struct{ origin, file string }{
		{".", rootFile},
		{"big.test.", "testdata/identity/big.test.zone"},
		{"chain.test.", "testdata/identity/chain.test.zone"},
		{"wild.test.", "testdata/identity/wild.test.zone"},
		{"deleg.test.", "testdata/identity/deleg.test.zone"},
		{"example.", "testdata/identity/example.zone"},
		{"walk.test.", "testdata/walk/walk.test.zone"},
	} {
		data, err := os.ReadFile(f.file)
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, struct {
			origin, file string
			data         []byte
		}{f.origin, f.file, data})
	}
	for _, tx := range texts {
		want := internedLoad(t, tx.data, tx.origin, tx.file)
		for k := 1; k <= 5; k++ {
			z, err := parseChunked(tx.data, tx.origin, tx.file, k)
			sameLoad(t, fmt.Sprintf("%s in %d chunks", tx.file, k), z, err, want, nil)
			if err == nil {
				for i := range z.Nodes() {
					name := z.NodeName(&z.Nodes()[i])
					if got := z.Find(name, hashName(name)); got != uint32(i) {
						t.Fatalf("%s in %d chunks: Find(%s) = %d, want node %d", tx.file, k, wireString(name), got, i)
					}
				}
			}
		}
	}
}

// TestSortParsedRuns gives sortParsed names that repeat, in runs of
// every length and order, and requires one node per name in canonical
// order, every record renumbered to its name's node.
func TestSortParsedRuns(t *testing.T) {
	for _, parts := range []int{1, 2, 3} {
		b := &builder{apex: []byte("\x04test\x00")}
		b.initRuns(0)
		var want []string
		for i := range 400 {
			name := fmt.Sprintf("n%d.test.", (i*7919)%97)
			if i%5 == 0 {
				name = strings.ToUpper(name[:1]) + name[1:]
			}
			w, err := toWire(name)
			if err != nil {
				t.Fatal(err)
			}
			w = lowerWire(w)
			want = append(want, string(w))
			for range 1 + i%3 {
				b.recs = append(b.recs, rec{node: b.runFor(w)})
			}
		}
		b.sortParsedParts(parts)
		for i := 1; i < len(b.names); i++ {
			if CompareCanonical(b.names[i-1], b.names[i]) >= 0 {
				t.Fatalf("%d parts: names %d and %d out of order or the same: %s, %s", parts, i-1, i, wireString(b.names[i-1]), wireString(b.names[i]))
			}
		}
		if len(b.names) != 97 {
			t.Errorf("%d parts: %d names, want 97", parts, len(b.names))
		}
		k := 0
		for i, w := range want {
			for range 1 + i%3 {
				if got := string(b.names[b.recs[k].node]); got != w {
					t.Fatalf("%d parts: record %d at %s, want %s", parts, k, wireString([]byte(got)), wireString([]byte(w)))
				}
				k++
			}
		}
	}
}

// TestCanonicalKeyLen requires canonicalKeyLen to give the length of
// appendCanonicalKey's key, zero bytes inside labels and the root name
// included: the sort writes each key into exactly that room.
func TestCanonicalKeyLen(t *testing.T) {
	for _, w := range []string{"\x00", "\x01a\x00", "\x03a\x00b\x02\x00\x00\x00", "\x02ab\x01c\x00", "\x01\x00\x00"} {
		if got, want := canonicalKeyLen([]byte(w)), len(appendCanonicalKey(nil, []byte(w))); got != want {
			t.Errorf("canonicalKeyLen(%q) = %d, want %d", w, got, want)
		}
	}
}

// TestFindBelowAsLookup builds zones with findBelow reading no node (every
// target looked up in the index), at most two, and as many as it reads,
// and requires the same table: delegations whose name servers are the
// delegation itself, its first and its fortieth descendant, a name below
// it that is not in the zone (or only under a wildcard there), and the
// delegations of the generated zone and the root zone.
func TestFindBelowAsLookup(t *testing.T) {
	var fb bytes.Buffer
	fb.WriteString("$ORIGIN fb.test.\n$TTL 3600\n@ SOA ns hostmaster 1 7200 3600 1209600 300\n@ NS ns\nns A 192.0.2.1\n")
	fb.WriteString("big NS big\nbig NS a0.big\nbig NS a39.big\nbig NS missing.big\nbig NS q.w.big\nbig A 192.0.2.2\n")
	for i := range 40 {
		fmt.Fprintf(&fb, "a%d.big A 192.0.2.%d\n", i, 10+i)
	}
	fb.WriteString("*.w.big AAAA 2001:db8::7\nlast NS a.last\nlast NS b.last\nb.last A 192.0.2.99\n")
	var deleg bytes.Buffer
	dw := bufio.NewWriter(&deleg)
	delegationZone(dw, 2000)
	dw.Flush()
	root, err := os.ReadFile(rootFile)
	if err != nil {
		t.Fatal(err)
	}
	defer func(m int32) { findBelowMax = m }(findBelowMax)
	for _, tx := range []struct {
		origin string
		data   []byte
	}{{"fb.test.", fb.Bytes()}, {"deleg.", deleg.Bytes()}, {".", root}} {
		findBelowMax = 0
		want, werr := Parse(bytes.NewReader(tx.data), tx.origin, "fb.zone")
		if werr != nil {
			t.Fatal(werr)
		}
		for _, m := range []int32{2, 16, 1000} {
			findBelowMax = m
			z, err := Parse(bytes.NewReader(tx.data), tx.origin, "fb.zone")
			sameLoad(t, fmt.Sprintf("%s reading %d descendants", tx.origin, m), z, err, want, werr)
		}
	}
}

// TestBuildIndexParts makes the name index of the root zone and of a
// small zone in 1 to 5 parts (entries spill over the parts' ranges and
// past the end of the index) and requires every node found and names
// that are not nodes not.
func TestBuildIndexParts(t *testing.T) {
	small, err := Parse(strings.NewReader("$ORIGIN s.test.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\na A 192.0.2.2\nb.c A 192.0.2.3\n"), "s.test.", "small.zone")
	if err != nil {
		t.Fatal(err)
	}
	root, err := LoadFile(".", rootFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, z := range []*Zone{small, root} {
		for parts := 1; parts <= 5; parts++ {
			z.buildIndexParts(parts)
			for i := range z.Nodes() {
				name := z.NodeName(&z.Nodes()[i])
				if got := z.Find(name, hashName(name)); got != uint32(i) {
					t.Fatalf("%s in %d parts: Find(%s) = %d, want node %d", z.Origin(), parts, wireString(name), got, i)
				}
				absent := append([]byte("\x07absent-"), name...)
				absent[0] = byte(len("absent-"))
				if got := z.Find(absent, hashName(absent)); got != None {
					t.Fatalf("%s in %d parts: Find(%s) = %d, want none", z.Origin(), parts, wireString(absent), got)
				}
			}
		}
	}
}
