package zone

import (
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// updZoneText is a small zone of delegations with glue, for the tests of
// which way Apply makes a version.
func updZoneText(n int) string {
	var sb strings.Builder
	sb.WriteString("$ORIGIN tld.\n$TTL 3600\n@ SOA ns1.nic hostmaster 1 1800 900 604800 300\n@ NS ns1.nic\nns1.nic A 192.0.2.1\n")
	for i := range n {
		fmt.Fprintf(&sb, "d%d NS ns1.d%d\nns1.d%d A 10.0.0.%d\nd%d DS 1 13 2 %064x\n", i, i, i, i%250, i, i)
	}
	return sb.String()
}

func updRRs(t *testing.T, lines ...string) []dns.RR {
	t.Helper()
	var out []dns.RR
	for _, l := range lines {
		rr, err := dns.NewRR(l)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rr)
	}
	return out
}

// TestApplyHow checks which change sets are applied in place and which are
// rebuilt, and that the version applied to keeps its records either way.
func TestApplyHow(t *testing.T) {
	z := mustParse(t, updZoneText(40), "tld.")
	var before []string
	z.Walk(func(r *Record) error {
		rr, _ := r.RR()
		before = append(before, rr.String())
		return nil
	})
	soa := func(s int) string {
		return fmt.Sprintf("tld. 3600 IN SOA ns1.nic.tld. hostmaster.tld. %d 1800 900 604800 300", s)
	}
	var manyDel, manyAdd []string
	for i := range 12 { // over a tenth of the zone's 83 names
		manyDel = append(manyDel, fmt.Sprintf("ns1.d%d.tld. 3600 IN A 10.0.0.%d", i, i))
		manyAdd = append(manyAdd, fmt.Sprintf("ns1.d%d.tld. 3600 IN A 10.0.1.%d", i, i))
	}
	for _, c := range []struct {
		name     string
		del, add []string
		want     string
	}{
		{"glue and SOA", []string{soa(1), "ns1.d3.tld. 3600 IN A 10.0.0.3"}, []string{soa(2), "ns1.d3.tld. 3600 IN A 10.9.9.9"}, "incremental"},
		{"DS", []string{fmt.Sprintf("d4.tld. 3600 IN DS 1 13 2 %064x", 4)}, []string{"d4.tld. 3600 IN DS 2 13 2 " + strings.Repeat("ab", 32)}, "incremental"},
		{"TTL", []string{"ns1.d5.tld. 3600 IN A 10.0.0.5"}, []string{"ns1.d5.tld. 60 IN A 10.0.0.5"}, "incremental"},
		{"new delegation", nil, []string{"new.tld. 3600 IN NS ns.example."}, "rebuilt: a name is added"},
		{"delegation removed", []string{"d6.tld. 3600 IN NS ns1.d6.tld.", fmt.Sprintf("d6.tld. 3600 IN DS 1 13 2 %064x", 6)}, nil, "rebuilt: a name loses all its records"},
		{"cut removed", []string{"d7.tld. 3600 IN NS ns1.d7.tld."}, nil, "rebuilt: a name gains or loses its NS RRset"},
		{"over a tenth", manyDel, manyAdd, "rebuilt: over a tenth of the names change"},
	} {
		t.Run(c.name, func(t *testing.T) {
			nz, err := z.Apply(updRRs(t, c.del...), updRRs(t, c.add...))
			if err != nil {
				t.Fatal(err)
			}
			if nz.Applied() != c.want {
				t.Errorf("Applied() = %q, want %q", nz.Applied(), c.want)
			}
			var after []string
			z.Walk(func(r *Record) error {
				rr, _ := r.RR()
				after = append(after, rr.String())
				return nil
			})
			if strings.Join(after, "\n") != strings.Join(before, "\n") {
				t.Error("the version applied to changed")
			}
		})
	}
}
