package zone

import (
	"path/filepath"
	"testing"

	"github.com/miekg/dns"
)

const rootFile = "testdata/root.zone"

// TestLoadRoot loads the real signed root zone and checks its record counts
// per type against those stated in the shared notes (22,772 records).
func TestLoadRoot(t *testing.T) {
	z, err := LoadFile(".", rootFile)
	if err != nil {
		t.Fatal(err)
	}
	if z.Records() != 22772 {
		t.Errorf("Records = %d, want 22772", z.Records())
	}
	if z.Serial() != 2017082100 {
		t.Errorf("Serial = %d", z.Serial())
	}
	if len(z.Warnings()) != 0 {
		t.Errorf("%d warnings, first %q", len(z.Warnings()), z.Warnings()[0])
	}
	counts := map[uint16]int{}
	for _, rs := range z.Sets() {
		counts[rs.Type] += int(rs.Count)
		if rs.Sig != None {
			counts[dns.TypeRRSIG] += int(z.Blocks()[rs.Sig].Count)
		}
	}
	want := map[uint16]int{
		dns.TypeSOA: 1, dns.TypeNS: 7376, dns.TypeA: 4348, dns.TypeAAAA: 3774,
		dns.TypeRRSIG: 2950, dns.TypeDS: 2772, dns.TypeNSEC: 1548, dns.TypeDNSKEY: 3,
	}
	for typ, n := range want {
		if counts[typ] != n {
			t.Errorf("%s: %d records, want %d", dns.TypeToString[typ], counts[typ], n)
		}
	}
	if len(counts) != len(want) {
		t.Errorf("types present: %v", counts)
	}

	// Every TLD is a delegation; the root servers' addresses are glue
	// below the root-servers.net delegation, so they are occluded.
	delegations := 0
	for i := range z.Nodes() {
		if z.Nodes()[i].Flags&FlagDelegation != 0 {
			delegations++
		}
	}
	if delegations != 1547 {
		t.Errorf("%d delegations, want 1547 (one per NSEC beside the apex's)", delegations)
	}
	if n := node(t, z, "a.root-servers.net."); n.Flags&FlagOccluded == 0 {
		t.Errorf("a.root-servers.net. flags %08b: not occluded", n.Flags)
	}
	// The root's NS RRset answers with the root servers' addresses as
	// additional records: 13 names, each with an A and an AAAA.
	ns := rrset(t, z, ".", dns.TypeNS)
	base, extra := blockRRs(t, z, ns.Block, ".")
	if len(base) != 13 || len(extra) != 26 {
		t.Errorf("root NS block: %d NS, %d additional", len(base), len(extra))
	}
	// Uppercase owners in the file (AAA. DS) land on the lowercase node.
	if ds := rrset(t, z, "aaa.", dns.TypeDS); ds.Count != 4 || ds.Sig == None {
		t.Errorf("aaa. DS = %+v", ds)
	}
	if z.NegSOASig() == None {
		t.Error("signed zone without a negative SOA signature block")
	}

	abs, _ := filepath.Abs(rootFile)
	if _, err := LoadFile(".", abs); err != nil {
		t.Errorf("absolute path: %v", err)
	}
}
