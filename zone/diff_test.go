package zone

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
)

// diffOf runs Diff and returns the canonical text of the records deleted
// and added, failing when an addition comes before a deletion or either
// run is out of canonical order.
func diffOf(t testing.TB, old, new *Zone) (dels, adds []string) {
	t.Helper()
	var prev Record
	var prevBuf []byte
	havePrev, adding := false, false
	err := Diff(old, new, func(del bool, r *Record) error {
		if del && adding {
			return errors.New("a deletion after an addition")
		}
		if !del && !adding {
			adding, havePrev = true, false
		}
		if havePrev && compareRecords(&prev, r) > 0 {
			return fmt.Errorf("%s %s out of canonical order", wireString(r.Owner), typeName(r.Type))
		}
		prevBuf = append(append(prevBuf[:0], r.Owner...), r.Data...)
		prev = Record{Owner: prevBuf[:len(r.Owner)], Type: r.Type, Data: prevBuf[len(r.Owner):]}
		havePrev = true
		rr, err := r.RR()
		if err != nil {
			return err
		}
		if del {
			dels = append(dels, canonicalText(rr))
		} else {
			adds = append(adds, canonicalText(rr))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(dels)
	slices.Sort(adds)
	return dels, adds
}

// setMinus returns the strings of sorted a not in sorted b.
func setMinus(a, b []string) []string {
	var out []string
	for _, s := range a {
		if _, ok := slices.BinarySearch(b, s); !ok {
			out = append(out, s)
		}
	}
	return out
}

// canon renders presentation-format records as canonicalText does, sorted.
func canon(t testing.TB, origin string, lines ...string) []string {
	t.Helper()
	if len(lines) == 0 {
		return nil
	}
	return fileRecords(t, strings.NewReader("$ORIGIN "+origin+"\n"+strings.Join(lines, "\n")+"\n"), origin, "want")
}

func TestDiff(t *testing.T) {
	const base = `$ORIGIN d.test.
$TTL 300
@ IN SOA ns hostmaster 1 7200 3600 1209600 300
@ IN NS ns
ns IN A 192.0.2.1
www IN A 192.0.2.2
www IN A 192.0.2.3
sub IN NS ns.sub
ns.sub IN A 192.0.2.53
`
	const soa1, soa2 = "@ 300 IN SOA ns hostmaster 1 7200 3600 1209600 300", "@ 300 IN SOA ns hostmaster 2 7200 3600 1209600 300"
	bump := func(s string) string { return strings.Replace(s, " 1 7200", " 2 7200", 1) }
	for _, tc := range []struct {
		name       string
		old, new   string
		dels, adds []string
	}{
		{"same", base, base, nil, nil},
		{"serial only", base, bump(base), []string{soa1}, []string{soa2}},
		{"added", base, bump(base) + "mail IN MX 10 www\n",
			[]string{soa1}, []string{soa2, "mail 300 IN MX 10 www"}},
		{"removed", base, bump(strings.Replace(base, "www IN A 192.0.2.3\n", "", 1)),
			[]string{soa1, "www 300 IN A 192.0.2.3"}, []string{soa2}},
		{"ttl change is delete and add", base, bump(strings.Replace(base, "www IN A 192.0.2.3", "www 600 IN A 192.0.2.3", 1)),
			[]string{soa1, "www 300 IN A 192.0.2.3"}, []string{soa2, "www 600 IN A 192.0.2.3"}},
		{"glue below a cut", base, bump(strings.Replace(base, "192.0.2.53", "192.0.2.54", 1)),
			[]string{soa1, "ns.sub 300 IN A 192.0.2.53"}, []string{soa2, "ns.sub 300 IN A 192.0.2.54"}},
		{"delegation removed", base, bump(strings.Replace(base, "sub IN NS ns.sub\nns.sub IN A 192.0.2.53\n", "", 1)),
			[]string{soa1, "sub 300 IN NS ns.sub", "ns.sub 300 IN A 192.0.2.53"}, []string{soa2}},
		{"new names under an empty non-terminal", base, bump(base) + "a.b.c IN TXT x\n",
			[]string{soa1}, []string{soa2, "a.b.c 300 IN TXT x"}},
		{"case of an RDATA name is no change", base, strings.Replace(base, "@ IN NS ns", "@ IN NS NS.D.TEST.", 1), nil, nil},
		{"RRSIG changed", base + "www IN RRSIG A 13 3 300 20370101000000 20260101000000 1 d.test. AAAA\n",
			bump(base) + "www IN RRSIG A 13 3 300 20370101000000 20260101000000 1 d.test. AAAB\n",
			[]string{soa1, "www 300 IN RRSIG A 13 3 300 20370101000000 20260101000000 1 d.test. AAAA"},
			[]string{soa2, "www 300 IN RRSIG A 13 3 300 20370101000000 20260101000000 1 d.test. AAAB"}},
		{"NSEC3 changed", base + "2t7b4g4vsa5smi47k61mv5bv1a22bojr IN NSEC3 1 0 0 - 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR A\n",
			bump(base) + "2t7b4g4vsa5smi47k61mv5bv1a22bojr IN NSEC3 1 0 0 - 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR A AAAA\n",
			[]string{soa1, "2t7b4g4vsa5smi47k61mv5bv1a22bojr 300 IN NSEC3 1 0 0 - 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR A"},
			[]string{soa2, "2t7b4g4vsa5smi47k61mv5bv1a22bojr 300 IN NSEC3 1 0 0 - 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR A AAAA"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old, err := Parse(strings.NewReader(tc.old), "d.test.", "old")
			if err != nil {
				t.Fatal(err)
			}
			new, err := Parse(strings.NewReader(tc.new), "d.test.", "new")
			if err != nil {
				t.Fatal(err)
			}
			dels, adds := diffOf(t, old, new)
			if want := canon(t, "d.test.", tc.dels...); !slices.Equal(dels, want) {
				t.Errorf("deleted %q, want %q", dels, want)
			}
			if want := canon(t, "d.test.", tc.adds...); !slices.Equal(adds, want) {
				t.Errorf("added %q, want %q", adds, want)
			}
		})
	}
}

// TestDiffStops: Diff returns fn's first error and calls fn no more.
func TestDiffStops(t *testing.T) {
	old := mustParse(t, head, "example.com.")
	new := mustParse(t, head+"www A 192.0.2.99\n", "example.com.")
	stop := errors.New("stop")
	calls := 0
	if err := Diff(old, new, func(bool, *Record) error { calls++; return stop }); err != stop || calls != 1 {
		t.Errorf("Diff = %v after %d calls, want %v after 1", err, calls, stop)
	}
}

// TestDiffRoot diffs the root zone against a copy with records dropped,
// TTLs changed and records added, every one of them, against the
// difference of the two files' records.
func TestDiffRoot(t *testing.T) {
	text, err := os.ReadFile(rootFile)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(8976, 13))
	var mod bytes.Buffer
	for i, line := range strings.SplitAfter(string(text), "\n") {
		switch r := rng.IntN(100); {
		case i > 0 && r < 3: // dropped (the SOA on the first line stays)
		case r < 5:
			// A changed TTL: the second field of every line of this
			// file, which has one record a line and no quoted text.
			if f := strings.Fields(line); len(f) > 2 {
				f[1] = "7" + f[1]
				line = strings.Join(f, "\t") + "\n"
			}
			mod.WriteString(line)
		case r < 7:
			mod.WriteString(line)
			fmt.Fprintf(&mod, "added%d.example. 300 IN TXT \"new %d\"\n", i, i)
		default:
			mod.WriteString(line)
		}
	}
	old, err := Parse(bytes.NewReader(text), ".", rootFile)
	if err != nil {
		t.Fatal(err)
	}
	new, err := Parse(bytes.NewReader(mod.Bytes()), ".", "modified")
	if err != nil {
		t.Fatal(err)
	}
	ro := fileRecords(t, bytes.NewReader(text), ".", rootFile)
	rn := fileRecords(t, bytes.NewReader(mod.Bytes()), ".", "modified")
	dels, adds := diffOf(t, old, new)
	wantDels, wantAdds := setMinus(ro, rn), setMinus(rn, ro)
	if len(wantDels) < 100 || len(wantAdds) < 100 {
		t.Fatalf("the modification changed too little: %d deletions, %d additions", len(wantDels), len(wantAdds))
	}
	diffStrings(t, "deletions", dels, wantDels)
	diffStrings(t, "additions", adds, wantAdds)
	if d, a := diffOf(t, old, old); len(d)+len(a) > 0 {
		t.Errorf("the root zone against itself: %d deletions, %d additions", len(d), len(a))
	}
}

func BenchmarkDiffRoot(b *testing.B) {
	z, err := LoadFile(".", rootFile)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := Diff(z, z, func(bool, *Record) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
