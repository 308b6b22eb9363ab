package controlplane

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/zone"
)

// TestAppendRecordText: the lines appendRecordText writes are those of
// miekg/dns's String, byte for byte, and the records it does not write
// (escaped names, other types) are left to miekg/dns.
func TestAppendRecordText(t *testing.T) {
	for _, tc := range []struct {
		rr   string
		fast bool
	}{
		{"a.example. 300 IN A 192.0.2.1", true},
		{"a.example. 300 IN AAAA 2001:db8::1", true},
		{"a.example. 300 IN AAAA ::ffff:192.0.2.1", true},
		{"a.example. 300 IN AAAA ::", true},
		{"*.a-b_c.example. 86400 IN NS ns1.hoster7.example.net.", true},
		{"example. 86400 IN NS .", true},
		{"www.example. 60 IN CNAME host.example.", true},
		{"1.2.0.192.in-addr.arpa. 60 IN PTR host.example.", true},
		{"d1.example. 86400 IN DS 60485 13 2 d4b7d520e7bb5f0f67674a0cceb1e3e0614b93c4f9e99b8383f6a1e4469da50a", true},
		{"d1.example. 86400 IN DS 1 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118", true},
		{"a\\.b.example. 300 IN A 192.0.2.1", false},
		{"a.example. 300 IN NS we\\ ird.example.", false},
		{"a.example. 300 IN TXT \"hello\"", false},
		{"a.example. 300 IN MX 10 mail.example.", false},
		{"a.example. 300 IN TYPE65280 \\# 2 abcd", false},
	} {
		rr, err := dns.NewRR(tc.rr)
		if err != nil {
			t.Fatal(err)
		}
		r, err := zone.CanonicalRecord(rr)
		if err != nil {
			t.Fatal(err)
		}
		line, ok := appendRecordText(nil, &r)
		if ok != tc.fast {
			t.Errorf("%s: written %v, want %v", tc.rr, ok, tc.fast)
			continue
		}
		want, _ := r.RR()
		if ok && string(line) != want.String()+"\n" {
			t.Errorf("%s:\ngot  %q\nwant %q", tc.rr, line, want.String()+"\n")
		}
	}
}

// TestWriteZoneCopy: the copy on disk written from a table loads as the
// same records, whichever way each record was written.
func TestWriteZoneCopy(t *testing.T) {
	text := `$ORIGIN example.
$TTL 300
@ SOA ns1 hostmaster 7 3600 600 86400 300
@ NS ns1
@ MX 10 mail
ns1 A 192.0.2.53
ns1 AAAA 2001:db8::53
mail A 192.0.2.25
w\.eird TXT "a \"quoted\" text" "and more"
* A 192.0.2.99
sub NS ns.sub
sub DS 60485 13 2 D4B7D520E7BB5F0F67674A0CCEB1E3E0614B93C4F9E99B8383F6A1E4469DA50A
ns.sub A 192.0.2.100
alias CNAME www
srv._tcp SRV 0 5 5060 sip
`
	z, err := zone.Parse(strings.NewReader(text), "example.", "mem.zone")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "copy.zone")
	st, err := writeZoneCopy(path, z)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || !st.valid || fi.Size() != st.size {
		t.Fatalf("stamp %+v of a file %v (%v)", st, fi, err)
	}
	copyZ, err := zone.LoadFile("example.", path)
	if err != nil {
		b, _ := os.ReadFile(path)
		t.Fatalf("the copy does not load: %v\n%s", err, b)
	}
	zone.Diff(z, copyZ, func(del bool, r *zone.Record) error {
		rr, _ := r.RR()
		t.Errorf("the copy differs: del=%v %v", del, rr)
		return nil
	})
}
