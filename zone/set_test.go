package zone

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

const tinyZone = "$TTL 60\n@ SOA ns hostmaster 1 7200 3600 1209600 60\n@ NS ns\nns A 192.0.2.1\n"

// selectZone is the longest-suffix walk the answer engine does over a Set:
// from the root toward the full name, probing only depths some apex has;
// the last match is the longest.
func selectZone(s *Set, w []byte) int {
	hs := suffixHashes(w)
	offs := labelOffsets(w)
	labels := len(offs)
	zi := -1
	for k := labels; k >= 0; k-- {
		if !s.HasDepth(labels - k) {
			continue
		}
		suffix := w[len(w)-1:]
		if k < labels {
			suffix = w[offs[k]:]
		}
		if i := s.Find(suffix, hs[k]); i >= 0 {
			zi = i
		}
	}
	return zi
}

// bruteSelect is the reference: scan every zone, keep the longest apex the
// name is at or below.
func bruteSelect(s *Set, w []byte) int {
	best, bestLen := -1, -1
	for i, z := range s.Zones() {
		if isSubdomain(w, z.Apex()) && len(z.Apex()) > bestLen {
			best, bestLen = i, len(z.Apex())
		}
	}
	return best
}

func TestSetLongestSuffix(t *testing.T) {
	origins := []string{".", "com.", "example.com.", "a.b.z7.example.com.", "NET.", "deep.a.b.c.d.e.f.g.org."}
	for i := range 2000 {
		origins = append(origins, "z"+strconv.Itoa(i)+".example.com.")
	}
	zones := make([]*Zone, len(origins))
	for i, o := range origins {
		zones[i] = mustParse(t, tinyZone, o)
	}
	s, err := NewSet(zones)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Zones()) != len(origins) || s.Zone(3) != zones[3] {
		t.Fatal("Zones/Zone do not return the zones given")
	}

	cases := map[string]string{
		"www.z7.example.com.":         "z7.example.com.",
		"b.z7.example.com.":           "z7.example.com.",
		"a.b.z7.example.com.":         "a.b.z7.example.com.",
		"X.A.B.Z7.EXAMPLE.COM.":       "a.b.z7.example.com.",
		"z1999.example.com.":          "z1999.example.com.",
		"z2000.example.com.":          "example.com.",
		"example.com.":                "example.com.",
		"www.example.net.":            "net.",
		"org.":                        ".",
		"c.d.e.f.g.org.":              ".",
		"x.deep.a.b.c.d.e.f.g.org.":   "deep.a.b.c.d.e.f.g.org.",
		".":                           ".",
		"nothing.here.":               ".",
		"com.z7.example.com.invalid.": ".",
	}
	for q, want := range cases {
		i := selectZone(s, wire(t, q))
		if i < 0 || !strings.EqualFold(s.Zone(i).Origin(), want) {
			t.Errorf("select(%s) = %d, want %s", q, i, want)
		}
	}

	// Random names, most of them under some zone of the set, compared
	// with a scan of every zone.
	r := rand.New(rand.NewPCG(5, 6))
	labels := []string{"a", "b", "www", "z7", "z1", "z19", "z1999", "example", "com", "net", "org", "deep"}
	for range 5000 {
		var parts []string
		for range r.IntN(7) + 1 {
			parts = append(parts, labels[r.IntN(len(labels))])
		}
		q := strings.Join(parts, ".") + "."
		w := wire(t, q)
		if got, want := selectZone(s, w), bruteSelect(s, w); got != want {
			t.Fatalf("select(%s) = %d, brute force %d", q, got, want)
		}
	}

	// Without the root zone, names under no zone select nothing.
	s2, err := NewSet(zones[1:])
	if err != nil {
		t.Fatal(err)
	}
	if i := selectZone(s2, wire(t, "www.example.org.")); i != -1 {
		t.Errorf("select(www.example.org.) without a root zone = %d", i)
	}
	if s2.HasDepth(0) || !s2.HasDepth(1) || !s2.HasDepth(3) || !s2.HasDepth(5) || s2.HasDepth(4) || !s2.HasDepth(9) || s2.HasDepth(8) {
		t.Error("HasDepth does not match the apexes' label counts")
	}
}

func TestSetLookupAndDuplicates(t *testing.T) {
	a := mustParse(t, tinyZone, "example.com.")
	b := mustParse(t, tinyZone, "example.net.")
	s, err := NewSet([]*Zone{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if s.Lookup("EXAMPLE.com") != a || s.Lookup("example.net.") != b {
		t.Error("Lookup does not find the zones by origin, case-insensitively")
	}
	if s.Lookup("example.org.") != nil || s.Lookup("com.") != nil || s.Lookup("a..b") != nil {
		t.Error("Lookup finds a zone that is not in the set")
	}

	dup := mustParse(t, tinyZone, "Example.Com.")
	if _, err := NewSet([]*Zone{a, b, dup}); err == nil || !strings.Contains(strings.ToLower(err.Error()), "example.com. is configured twice") {
		t.Errorf("duplicate origin: %v", err)
	}

	empty, err := NewSet(nil)
	if err != nil {
		t.Fatal(err)
	}
	if i := selectZone(empty, wire(t, "example.com.")); i != -1 {
		t.Errorf("empty set selects %d", i)
	}
}

// TestSetFindAllocatesNothing: zone selection runs per packet.
func TestSetFindAllocatesNothing(t *testing.T) {
	var zones []*Zone
	for i := range 100 {
		zones = append(zones, mustParse(t, tinyZone, "z"+strconv.Itoa(i)+".test."))
	}
	s, err := NewSet(zones)
	if err != nil {
		t.Fatal(err)
	}
	w := wire(t, "z42.test.")
	h := hashName(w)
	if allocs := testing.AllocsPerRun(100, func() { _ = s.Find(w, h); _ = s.HasDepth(2) }); allocs != 0 {
		t.Errorf("%v allocations per Find", allocs)
	}
}
