package zone

import (
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// TestApplyWarnings checks that a version made by Apply has the warnings
// a load of its zone file would give (their text after the zone's name;
// the lines differ): those about a name's records (an RRset's TTLs that
// differ, RRSIGs over no RRset) dropped when the name's records mend and
// found when they break, and the NSEC or NSEC3 chain's first gap found
// when a change breaks the chain and dropped when a later one mends it.
// Before Apply kept them right, every version kept the warnings of the
// loaded one.
func TestApplyWarnings(t *testing.T) {
	base := updZoneRecords(12)
	base = append(base, "ttl.tld. 3600 IN A 192.0.2.7", "ttl.tld. 60 IN A 192.0.2.8")
	hash := func(name string) string { return strings.ToLower(dns.HashName(name, dns.SHA1, 0, "")) + ".tld." }
	// pick selects records of a zone's text by owner and type (ANY: all
	// of the owner's).
	pick := func(text, owner string, typ uint16) []string {
		var out []string
		for _, rr := range updRRsOf(t, text) {
			if rr.Header().Name == owner && (typ == dns.TypeANY || rr.Header().Rrtype == typ) {
				out = append(out, rr.String())
			}
		}
		if len(out) == 0 {
			t.Fatalf("no %s %s in the zone", owner, dns.Type(typ))
		}
		return out
	}
	type step struct {
		name     string
		del, add func(text string) []string
	}
	lines := func(l ...string) func(string) []string { return func(string) []string { return l } }
	none := func(string) []string { return nil }
	cases := []struct {
		kind  string
		steps []step
	}{
		{"unsigned", []step{
			{"TTLs mended", lines("ttl.tld. 60 IN A 192.0.2.8"), lines("ttl.tld. 3600 IN A 192.0.2.8")},
			{"TTLs differ", none, lines("www.tld. 60 IN A 192.0.2.81")},
			{"glue TTLs differ", none, lines("ns1.d3.tld. 120 IN A 10.0.0.99")},
			{"name with the warning removed", lines("www.tld. 3600 IN A 192.0.2.80", "www.tld. 60 IN A 192.0.2.81"), none},
		}},
		{"nsec", []step{
			{"RRSIG over no RRset", none, lines("www.tld. 3600 IN RRSIG TXT 13 2 3600 20300101000000 20200101000000 1 tld. AAAA")},
			{"NSEC removed", func(text string) []string { return pick(text, "www.tld.", dns.TypeNSEC) }, none},
			{"NSEC back", none, func(text string) []string { return pick(text, "www.tld.", dns.TypeNSEC) }},
			{"RRSIG removed", lines("www.tld. 3600 IN RRSIG TXT 13 2 3600 20300101000000 20200101000000 1 tld. AAAA"), none},
			// sub.e.tld. is an empty non-terminal, which has no NSEC.
			{"data at a name without NSEC", none, lines("sub.e.tld. 3600 IN TXT \"now data\"")},
		}},
		{"nsec3", []step{
			// The NSEC3 record of www.tld. and its RRSIG: the chain
			// before it points to a hash no longer in the zone.
			{"NSEC3 removed", func(text string) []string { return pick(text, hash("www.tld."), dns.TypeANY) }, none},
			// With a change at www.tld. too: Apply finds the node an
			// NSEC3 record added matches among the names changed.
			{"NSEC3 back", lines("www.tld. 3600 IN A 192.0.2.80"), func(text string) []string {
				return append(pick(text, hash("www.tld."), dns.TypeANY), "www.tld. 3600 IN A 192.0.2.82")
			}},
			{"TTLs mended", lines("ttl.tld. 60 IN A 192.0.2.8"), lines("ttl.tld. 3600 IN A 192.0.2.8")},
		}},
	}
	// messages are a zone's warnings after the zone's name, sorted.
	messages := func(z *Zone) []string {
		var out []string
		for _, w := range z.Warnings() {
			_, m, ok := strings.Cut(w, "zone tld.: ")
			if !ok {
				t.Fatalf("warning %q does not name the zone", w)
			}
			out = append(out, m)
		}
		slices.Sort(out)
		return out
	}
	for _, c := range cases {
		t.Run(c.kind, func(t *testing.T) {
			text := strings.Join(base, "\n") + "\n"
			if c.kind != "unsigned" {
				text = updSignZone(t, base, c.kind == "nsec3")
			}
			// The text of each version, as a zone file, and the
			// signed zone's records removed in earlier steps.
			z := mustParse(t, text, "tld.")
			if len(z.Warnings()) == 0 {
				t.Fatal("the zone loads without warnings")
			}
			cur := text
			var removed []string
			for _, s := range c.steps {
				del := s.del(cur)
				add := s.add(cur + strings.Join(removed, "\n"))
				removed = append(removed, del...)
				var dels, adds []dns.RR
				next := updRRsOf(t, cur)
				for _, d := range del {
					rr := updRRsOf(t, d)[0]
					dels = append(dels, rr)
					next = slices.DeleteFunc(next, func(x dns.RR) bool { return dns.IsDuplicate(x, rr) && x.Header().Ttl == rr.Header().Ttl })
				}
				for _, a := range add {
					rr := updRRsOf(t, a)[0]
					adds = append(adds, rr)
					next = append(next, rr)
				}
				var sb strings.Builder
				for _, rr := range next {
					sb.WriteString(rr.String() + "\n")
				}
				cur = sb.String()
				nz, err := z.Apply(dels, adds)
				if err != nil {
					t.Fatalf("%s: %v", s.name, err)
				}
				if nz.Applied() != "incremental" {
					t.Fatalf("%s: applied: %s", s.name, nz.Applied())
				}
				want := messages(mustParse(t, cur, "tld."))
				if got := messages(nz); !slices.Equal(got, want) {
					t.Errorf("%s: warnings after Apply:\n  %s\nwant (the zone loaded):\n  %s", s.name, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
				}
				z = nz
			}
		})
	}
}
