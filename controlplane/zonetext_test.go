package controlplane

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
		{"d1.example. 86400 IN RRSIG DS 13 2 86400 20270101000000 20261201000000 60485 example. oJB1W6WNGv+ldvQ3WDG0MQkg5IEhjRip8WTrPYGv07h108dUKGMeDPKijVCHX3DDKdfb+v6oB9wfuh3DTJXUAfI/M0zmO/zz8bW0Rznl8O3tGNazPwQKkRN20XPXV6nwwfoXmJQbsLNrLfkGJ5D6fwFm8nN+6pBzeDQfsS3Ap3o=", true},
		{"a.example. 300 IN RRSIG TYPE65280 8 2 300 20991231235959 19700101000000 1 example. AAAA", true},
		{"a.example. 300 IN RRSIG A 8 2 300 4294967295 0 65535 . ", true},
		{"a.example. 300 IN RRSIG A 8 2 300 20270101000000 20261201000000 1 we\\.ird.example. AAAA", false},
		{"0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.example. 86400 IN NSEC3 1 1 0 - 0P9MHAVEQVM6T7VBL5LOP2U3T2RP3TON NS DS RRSIG", true},
		{"0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.example. 86400 IN NSEC3 1 0 12 aabbccdd 0P9MHAVEQVM6T7VBL5LOP2U3T2RP3TON A TXT AAAA RRSIG TYPE1234 TYPE65534", true},
		{"0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.example. 86400 IN NSEC3 1 0 0 - 0P9MHAVEQVM6T7VBL5LOP2U3T2RP3TON", true},
		{"a.example. 300 IN NSEC b.example. A NS SOA MX TXT AAAA RRSIG NSEC DNSKEY TYPE1000", true},
		{"a.example. 300 IN NSEC *.b.example. NSEC", true},
		{"a.example. 300 IN NSEC w\\ eird.example. A", false},
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
		line, ok := appendRecordText(nil, &r, time.Now().Unix())
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

// TestAppendRecordTextRandom: for RRSIG, NSEC3 and NSEC records of random
// RDATA, appendRecordText writes miekg/dns's line byte for byte, or
// leaves the record to miekg/dns; and it never writes a record that
// miekg/dns cannot unpack.
func TestAppendRecordTextRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 5))
	names := [][]byte{{0}, []byte("\x07example\x00"), []byte("\x01*\x03a-b\x00"), []byte("\x04we.d\x00")}
	bitmap := func() []byte {
		var m []byte
		w := -1
		for range rng.IntN(4) {
			w += 1 + rng.IntN(3)
			if rng.IntN(20) == 0 {
				w -= 2 // out of order, now and then
			}
			l := rng.IntN(34) // 0 and 33 refused
			m = append(m, byte(w), byte(l))
			for range l {
				m = append(m, byte(rng.IntN(256)))
			}
		}
		if rng.IntN(20) == 0 && len(m) > 0 {
			m = m[:len(m)-1] // cut short
		}
		return m
	}
	written := map[uint16]int{}
	for i := range 6000 {
		r := zone.Record{Owner: []byte("\x01a\x07example\x00"), TTL: rng.Uint32()}
		switch i % 3 {
		case 0:
			r.Type = dns.TypeRRSIG
			d := make([]byte, 18)
			for j := range d {
				d[j] = byte(rng.IntN(256))
			}
			d = append(d, names[rng.IntN(len(names))]...)
			for range rng.IntN(80) {
				d = append(d, byte(rng.IntN(256)))
			}
			r.Data = d[:len(d)-rng.IntN(2)*min(len(d), rng.IntN(25))]
		case 1:
			r.Type = dns.TypeNSEC3
			d := []byte{byte(rng.IntN(3)), byte(rng.IntN(3)), byte(rng.IntN(256)), byte(rng.IntN(256))}
			sl := rng.IntN(4)
			d = append(d, byte(sl))
			for range sl {
				d = append(d, byte(rng.IntN(256)))
			}
			hl := []int{20, 20, 20, 0, 7, 32}[rng.IntN(6)]
			d = append(d, byte(hl))
			for range hl {
				d = append(d, byte(rng.IntN(256)))
			}
			r.Data = append(d, bitmap()...)
		case 2:
			r.Type = dns.TypeNSEC
			r.Data = append(append([]byte(nil), names[rng.IntN(len(names))]...), bitmap()...)
		}
		line, ok := appendRecordText(nil, &r, time.Now().Unix())
		rr, err := r.RR()
		if err != nil {
			if ok {
				t.Fatalf("%s %x: written %q, which miekg/dns refuses: %v", dns.TypeToString[r.Type], r.Data, line, err)
			}
			continue
		}
		if !ok {
			continue
		}
		written[r.Type]++
		if want := rr.String() + "\n"; string(line) != want {
			t.Fatalf("%s %x:\ngot  %q\nwant %q", dns.TypeToString[r.Type], r.Data, line, want)
		}
	}
	t.Logf("written by appendRecordText: %d RRSIG, %d NSEC3, %d NSEC of 2000 each", written[dns.TypeRRSIG], written[dns.TypeNSEC3], written[dns.TypeNSEC])
	// So that the test cannot pass by writing nothing itself.
	for _, typ := range []uint16{dns.TypeRRSIG, dns.TypeNSEC3, dns.TypeNSEC} {
		if written[typ] < 300 {
			t.Errorf("%d %s records written of 2000", written[typ], dns.TypeToString[typ])
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

// BenchmarkWriteZoneCopy writes the copy on disk of the signed root zone
// (zone/testdata/root.zone): most of its records are RRSIGs and NSECs.
func BenchmarkWriteZoneCopy(b *testing.B) {
	z, err := zone.LoadFile(".", "../zone/testdata/root.zone")
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "root.zone")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := writeZoneCopy(path, z); err != nil {
			b.Fatal(err)
		}
	}
}
