package conformance

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestZoneMatcherServerWide pins that zone=. means the root zone only: a
// server-wide probe has no zone and must not pass for one in the root, or
// a root entry would accept the server-wide differences of every suite.
func TestZoneMatcherServerWide(t *testing.T) {
	entries, err := ParseGaps(strings.NewReader("flag-tc zone=. | issue 3\nflag-tc zone=none | issue 3\n"), "gaps")
	if err != nil {
		t.Fatal(err)
	}
	root, none := entries[0], entries[1]
	d := Difference{Kind: "flag-tc"}
	wide := &Query{Zone: "", Name: "big.test."}
	inRoot := &Query{Zone: ".", Name: "com."}
	if root.Matches(wide, "udp", d) || !root.Matches(inRoot, "udp", d) {
		t.Error("zone=. matches a server-wide probe or misses a root query")
	}
	if !none.Matches(wide, "udp", d) || none.Matches(inRoot, "udp", d) {
		t.Error("zone=none misses a server-wide probe or matches a root query")
	}
}

// TestOptedOut pins which names an opt-out chain of deleg.test leaves out:
// the insecure delegations and the empty non-terminal above deep.ent, and
// nothing secure.
func TestOptedOut(t *testing.T) {
	z, err := LoadZone("deleg.test.", "testdata/deleg.test.zone")
	if err != nil {
		t.Fatal(err)
	}
	got := optedOut(z)
	sort.Strings(got)
	want := []string{"deep.ent.deleg.test.", "ent.deleg.test.", "inb.deleg.test.", "many.deleg.test.", "mixed.deleg.test.", "noglue.deleg.test.", "sib.deleg.test."}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("opted out %v, want %v", got, want)
	}
}

// TestSignZones signs the crafted zones each way and checks what the
// signed suites rely on: the denial records of the kind asked for and no
// other, the NSEC3 parameters, the opt-out chain's gaps, the child's real DS
// in its parent, signatures valid around now, and a corpus that treats the
// NSEC3 owners as the names that do not exist that they are.
func TestSignZones(t *testing.T) {
	tools := signTools(t)
	now := time.Now()
	for _, tc := range []struct {
		name   string
		denial Denial
	}{{"nsec", DenialNSEC}, {"nsec3", DenialNSEC3}, {"nsec3-optout", DenialNSEC3OptOut}} {
		t.Run(tc.name, func(t *testing.T) {
			zones, err := SignZones(tools, t.TempDir(), craftedZones(t), tc.denial, now)
			if err != nil {
				t.Fatal(err)
			}
			byOrigin := map[string]*Zone{}
			for _, z := range zones {
				byOrigin[z.Origin] = z
				counts := map[uint16]int{}
				for _, rr := range z.Records {
					counts[rr.Header().Rrtype]++
					switch r := rr.(type) {
					case *dns.RRSIG:
						if !r.ValidityPeriod(now) || !r.ValidityPeriod(now.Add(24*time.Hour)) {
							t.Errorf("%s: signature not valid from now to a day later: %s", z.Origin, r)
						}
					case *dns.NSEC3:
						wantFlags, wantSalt := uint8(0), ""
						if tc.denial == DenialNSEC3OptOut {
							wantFlags, wantSalt = 1, strings.ToUpper(nsec3Salt)
						}
						if r.Flags != wantFlags || r.Iterations != 0 || strings.ToUpper(r.Salt) != wantSalt || r.Hash != dns.SHA1 {
							t.Errorf("%s: NSEC3 parameters %s", z.Origin, r)
						}
					}
				}
				if counts[dns.TypeDNSKEY] != 2 || counts[dns.TypeRRSIG] == 0 {
					t.Errorf("%s: %d DNSKEY, %d RRSIG", z.Origin, counts[dns.TypeDNSKEY], counts[dns.TypeRRSIG])
				}
				nsec := tc.denial == DenialNSEC
				if nsec != (counts[dns.TypeNSEC] > 0) || nsec == (counts[dns.TypeNSEC3] > 0) || nsec == (counts[dns.TypeNSEC3PARAM] == 1) {
					t.Errorf("%s: %d NSEC, %d NSEC3, %d NSEC3PARAM", z.Origin, counts[dns.TypeNSEC], counts[dns.TypeNSEC3], counts[dns.TypeNSEC3PARAM])
				}
			}

			// The child's DS in the parent is the digest of its KSK.
			var ksk *dns.DNSKEY
			for _, rr := range byOrigin["child.deleg.test."].Records {
				if k, ok := rr.(*dns.DNSKEY); ok && k.Flags&dns.SEP != 0 {
					ksk = k
				}
			}
			var ds *dns.DS
			for _, rr := range byOrigin["deleg.test."].Records {
				if d, ok := rr.(*dns.DS); ok && strings.EqualFold(d.Hdr.Name, "child.deleg.test.") {
					ds = d
				}
			}
			if ksk == nil || ds == nil || ksk.ToDS(ds.DigestType) == nil || !strings.EqualFold(ksk.ToDS(ds.DigestType).Digest, ds.Digest) {
				t.Errorf("deleg.test's DS for child.deleg.test is not its KSK's: %v %v", ds, ksk)
			}

			if tc.denial == DenialNSEC {
				return
			}
			// An opt-out chain has no NSEC3 for an insecure delegation; the
			// others have one for every delegation.
			ix := indexZone(byOrigin["deleg.test."])
			salt := ""
			if tc.denial == DenialNSEC3OptOut {
				salt = nsec3Salt
			}
			if len(ix.nsec3) == 0 {
				t.Fatal("the index found no NSEC3 owners")
			}
			has := map[string]bool{}
			for _, o := range ix.nsec3 {
				has[firstLabel(o)] = true
			}
			for name, secure := range map[string]bool{"inb.deleg.test.": false, "ent.deleg.test.": false, "withds.deleg.test.": true, "child.deleg.test.": true} {
				want := secure || tc.denial != DenialNSEC3OptOut
				if got := has[strings.ToLower(dns.HashName(name, dns.SHA1, 0, salt))]; got != want {
					t.Errorf("NSEC3 for %s: %v, want %v", name, got, want)
				}
			}
			// The corpus asks NSEC3 owners as such, never as ordinary names.
			for _, q := range Generate([]*Zone{byOrigin["deleg.test."]}, 1, false) {
				if has[strings.ToLower(firstLabel(q.Name))] && q.Category != "nsec3-owner" {
					t.Errorf("NSEC3 owner asked as %s: %s", q.Category, &q)
				}
			}
		})
	}
}
