package zone

import (
	"strings"
	"sync"
	"testing"
)

// TestApplyProvisionalIndex holds back the making of the index of
// versions made by Apply, so that their lookups go through the
// provisional view (the old version's index, renumbered, and the names
// added), and checks that the table is one built from scratch would be
// (sameTable finds every name through the index), that the names removed
// are not found and that wildcard lookups (FindChild) find the wildcards;
// then lets the index be made and checks again, and updates the version
// once more (which waits for its index).
func TestApplyProvisionalIndex(t *testing.T) {
	var mu sync.Mutex
	var held []func()
	defer func(f func(func())) { startIndex = f }(startIndex)
	startIndex = func(f func()) {
		mu.Lock()
		held = append(held, f)
		mu.Unlock()
	}
	release := func() {
		mu.Lock()
		fs := held
		held = nil
		mu.Unlock()
		for _, f := range fs {
			f()
		}
	}
	for _, kind := range []string{"unsigned", "nsec", "nsec3"} {
		t.Run(kind, func(t *testing.T) {
			base := updZoneRecords(120) // so that the change is under a tenth of the names
			signed := func(recs []string) string {
				if kind == "unsigned" {
					return strings.Join(recs, "\n") + "\n"
				}
				return updSignZone(t, recs, kind == "nsec3")
			}
			z := mustParse(t, signed(base), "tld.")
			gone := map[string]bool{"d6.tld.": true, "ns1.d6.tld.": true, "host.sub.e.tld.": true, "sub.e.tld.": true, "e.tld.": true}
			next := make([]string, 0, len(base))
			for _, r := range base {
				if f := strings.Fields(r); !gone[f[0]] && f[3] != "SOA" {
					next = append(next, r)
				}
			}
			next = append(next, "tld. 3600 IN SOA ns1.nic.tld. hostmaster.tld. 2 1800 900 604800 300",
				"new.tld. 3600 IN NS ns1.new.tld.", "ns1.new.tld. 3600 IN A 10.1.1.1", "*.new2.tld. 3600 IN TXT \"w\"", "a.b.c.tld. 3600 IN TXT \"deep\"")
			del, add := updTextDiff(t, signed(base), signed(next))
			nz, err := z.Apply(del, add)
			if err != nil {
				t.Fatal(err)
			}
			if nz.Applied() != "incremental" {
				t.Fatalf("applied: %s", nz.Applied())
			}
			check := func(state string) {
				t.Helper()
				sameTable(t, nz, fromScratch(t, nz))
				for name := range gone {
					w := mustWire(name)
					if n := nz.find(w, hashName(w)); n != None {
						t.Errorf("%s: %s, removed, is found (node %d)", state, name, n)
					}
				}
				p := mustWire("new2.tld.")
				pn := nz.find(p, hashName(p))
				if pn == None {
					t.Fatalf("%s: new2.tld. not found", state)
				}
				if w := nz.FindChild([]byte{1, '*'}, pn, hashName(p)); w == None || string(nz.NodeName(&nz.nodes[w])) != string(mustWire("*.new2.tld.")) {
					t.Errorf("%s: FindChild does not find *.new2.tld. (%d)", state, w)
				}
			}
			if v := nz.prov.view(); v == nil || v.base == nil {
				t.Fatal("the version's index is not provisional while its making is held")
			}
			check("provisional")
			release()
			if v := nz.prov.view(); v == nil || v.base != nil {
				t.Fatal("the version's index is still provisional once made")
			}
			check("done")
			// The next version is made from nz's index.
			next2 := append(next[:len(next):len(next)], "later.tld. 3600 IN NS ns1.new.tld.")
			for i, r := range next2 {
				if strings.Contains(r, " SOA ") {
					next2[i] = "tld. 3600 IN SOA ns1.nic.tld. hostmaster.tld. 3 1800 900 604800 300"
				}
			}
			del, add = updTextDiff(t, signed(next), signed(next2))
			n2, err := nz.Apply(del, add)
			if err != nil {
				t.Fatal(err)
			}
			release()
			sameTable(t, n2, fromScratch(t, n2))
		})
	}
}
