package zone

import (
	"strings"
	"testing"
)

// signedHead is an NSEC-signed zone's apex (signatures are not checked at
// load time, so their data need not be valid).
const signedHead = "$ORIGIN example.com.\n$TTL 3600\n" +
	"@ SOA ns1 host 1 7200 3600 1209600 300\n" +
	"@ NS ns1\n" +
	"@ DNSKEY 257 3 13 AAAA\n" +
	"@ RRSIG SOA 13 2 3600 20300101000000 20200101000000 1 example.com. AAAA\n"

func TestDenialIndexNSEC(t *testing.T) {
	text := signedHead +
		"@ NSEC a.b.example.com. NS SOA RRSIG NSEC DNSKEY\n" +
		"a.b NSEC ns1.example.com. A RRSIG NSEC\n" +
		"a.b A 192.0.2.1\n" +
		"ns1 NSEC example.com. A RRSIG NSEC\n" +
		"ns1 RRSIG NSEC 13 3 300 20300101000000 20200101000000 1 example.com. AAAA\n" +
		"ns1 A 192.0.2.53\n"
	z := mustParse(t, text, "example.com.")
	if w := z.Warnings(); len(w) != 0 {
		t.Fatalf("warnings %q", w)
	}
	if z.Denial() != DenialNSEC {
		t.Fatalf("denial %d", z.Denial())
	}
	// The empty non-terminal b is covered by the apex's NSEC; each name
	// with an NSEC has its own.
	at := func(name string) uint32 {
		w, _ := toWire(name)
		return z.NSECAt(z.Find(lowerWire(w), hashName(lowerWire(w))))
	}
	if at("b.example.com.") != at("example.com.") || at("a.b.example.com.") == at("example.com.") || at("ns1.example.com.") == at("a.b.example.com.") {
		t.Errorf("NSECAt: apex %d, b %d, a.b %d, ns1 %d", at("example.com."), at("b.example.com."), at("a.b.example.com."), at("ns1.example.com."))
	}
	// The proof block holds the NSEC and its RRSIG, apart from the table.
	if b := z.ProofBlocks()[at("ns1.example.com.")]; b.Count != 2 {
		t.Errorf("ns1 proof block holds %d records, want 2", b.Count)
	}
}

func TestDenialWarnings(t *testing.T) {
	for _, c := range []struct {
		name, text, want string
	}{
		{"gap", signedHead +
			"@ NSEC www.example.com. NS SOA RRSIG NSEC DNSKEY\n" +
			"ns1 A 192.0.2.53\n" +
			"ns1 NSEC www.example.com. A RRSIG NSEC\n" +
			"www A 192.0.2.1\n" +
			"www NSEC example.com. A RRSIG NSEC\n",
			"mem.zone:7: zone example.com.: NSEC chain broken: the NSEC at example.com. points to www.example.com., but the next name with an NSEC is ns1.example.com."},
		{"missing NSEC", signedHead +
			"@ NSEC www.example.com. NS SOA RRSIG NSEC DNSKEY\n" +
			"ns1 A 192.0.2.53\n" +
			"www A 192.0.2.1\n" +
			"www NSEC example.com. A RRSIG NSEC\n",
			"ns1.example.com. has data but no NSEC record"},
		{"last NSEC", signedHead +
			"@ NSEC ns1.example.com. NS SOA RRSIG NSEC DNSKEY\n" +
			"ns1 A 192.0.2.53\n" +
			"ns1 NSEC zz.example.com. A RRSIG NSEC\n",
			"the last NSEC, at ns1.example.com., points to zz.example.com. instead of the apex"},
		{"no DNSKEY", strings.Replace(signedHead, "@ DNSKEY 257 3 13 AAAA\n", "", 1) + "ns1 A 192.0.2.53\n",
			"zone has RRSIG records but no DNSKEY at the apex"},
		{"iterations", signedHead + "@ NSEC3PARAM 1 0 150 ab\nns1 A 192.0.2.53\n",
			"NSEC3 uses 150 additional iterations, over 100"},
	} {
		z := mustParse(t, c.text, "example.com.")
		if w := z.Warnings(); len(w) == 0 || !strings.Contains(w[0], c.want) {
			t.Errorf("%s: warnings %q, want the first to contain %q", c.name, w, c.want)
		}
	}
}

// NSEC3 hashing at query time matches RFC 5155 appendix A's example.
func TestNSEC3Hash(t *testing.T) {
	var h [nsec3HashLen]byte
	w, _ := toWire("example.")
	nsec3Hash(&h, lowerWire(w), []byte{0xaa, 0xbb, 0xcc, 0xdd}, 12)
	if got := strings.ToLower(nsec3Base32.EncodeToString(h[:])); got != "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom" {
		t.Errorf("hash of example. = %s", got)
	}
	if a := testing.AllocsPerRun(10, func() { nsec3Hash(&h, w, []byte{0xaa}, 5) }); a != 0 {
		t.Errorf("%v allocations per hash", a)
	}
}
