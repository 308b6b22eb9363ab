package zone

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestGroupJoin checks that grouping a change set in two halves split at
// any owner and joined gives what one pass over it gives: the same
// changes, or the same error, reason to rebuild or limit reached, for
// change sets with deletions of records the zone does not hold, a DNAME
// added (which must be rebuilt) and valid changes at random places, and
// limits from one owner to more than all.
func TestGroupJoin(t *testing.T) {
	z := mustParse(t, strings.Join(updZoneRecords(30), "\n")+"\n", "tld.")
	r := rand.New(rand.NewPCG(14, 2))
	rr := func(s string) dns.RR {
		x, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	describe := func(g groupResult) string {
		var owners []string // only where it went through: Apply uses no other
		for _, c := range g.chg {
			if g.stopped() {
				break
			}
			owners = append(owners, fmt.Sprintf("%s:%d", wireString(c.owner), len(c.recs)))
		}
		return fmt.Sprintf("err=%v why=%q over=%v chg=%v", g.err, g.why, g.over, owners)
	}
	for round := range 60 {
		var del, add []dns.RR
		for i := range 30 {
			switch r.IntN(12) {
			case 0:
				del = append(del, rr(fmt.Sprintf("ns1.d%d.tld. 3600 IN A 10.9.9.%d", i, i))) // not held
			case 1:
				add = append(add, rr(fmt.Sprintf("d%d.tld. 3600 IN DNAME example.net.", i)))
			case 2, 3, 4:
				del = append(del, rr(fmt.Sprintf("ns1.d%d.tld. 3600 IN A 10.0.0.%d", i, i)))
				add = append(add, rr(fmt.Sprintf("ns1.d%d.tld. 3600 IN A 10.0.1.%d", i, i)))
			case 5, 6:
				add = append(add, rr(fmt.Sprintf("new%d.tld. 3600 IN NS ns.example.", i)))
			}
		}
		cs, err := z.changeSet(del, add)
		if err != nil {
			t.Fatal(err)
		}
		var owners [][]byte
		for _, c := range append(append([]change{}, cs.del...), cs.add...) {
			owners = append(owners, c.Owner)
		}
		for _, limit := range []int{1, 2, 5, 10, 20, 100} {
			want := describe(z.group(cs.del, cs.add, limit))
			for _, at := range owners {
				below := func(c []change) int {
					n := 0
					for n < len(c) && CompareCanonical(c[n].Owner, at) < 0 {
						n++
					}
					return n
				}
				d, a := below(cs.del), below(cs.add)
				g := z.group(cs.del[:d], cs.add[:a], limit).join(z.group(cs.del[d:], cs.add[a:], limit), limit)
				if got := describe(g); got != want {
					t.Fatalf("round %d, limit %d, split at %s:\n got %s\nwant %s", round, limit, wireString(at), got, want)
				}
			}
		}
	}
}

// TestCanonicalHalves checks that a change set converted in two halves
// side by side reports the first record refused in its order, and comes
// out as one conversion makes it.
func TestCanonicalHalves(t *testing.T) {
	z := mustParse(t, strings.Join(updZoneRecords(4), "\n")+"\n", "tld.")
	var rrs []dns.RR
	for _, s := range []string{"b.tld. 60 IN A 192.0.2.2", "out.example. 60 IN A 192.0.2.3", "a.tld. 60 IN A 192.0.2.1",
		"a.tld. 60 IN A 192.0.2.1", "c.other. 60 IN A 192.0.2.4", "c.tld. 60 IN TXT \"x\""} {
		x, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		rrs = append(rrs, x)
	}
	defer func(n int) { groupParallelMin = n }(groupParallelMin)
	for _, min := range []int{1 << 30, 1} {
		groupParallelMin = min
		_, err := z.canonical(rrs, "added")
		if err == nil || !strings.Contains(err.Error(), "out.example.") {
			t.Errorf("groupParallelMin %d: error %v, want the first record outside the zone (out.example.)", min, err)
		}
		ok := []dns.RR{rrs[0], rrs[2], rrs[3], rrs[5]}
		got, err := z.canonical(ok, "added")
		if err != nil {
			t.Fatal(err)
		}
		var owners []string
		for _, c := range got {
			owners = append(owners, wireString(c.Owner)+" "+dns.TypeToString[c.Type])
		}
		if want := "a.tld. A,b.tld. A,c.tld. TXT"; strings.Join(owners, ",") != want {
			t.Errorf("groupParallelMin %d: %s, want %s", min, strings.Join(owners, ","), want)
		}
	}
}
