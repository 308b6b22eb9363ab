package zone

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// nsec3OwnerZone is an NSEC3-signed zone (updSignZone) with the cases an
// NSEC3 owner's records may be in: owners holding their NSEC3 RRset and
// its RRSIGs alone, one of them with two NSEC3 records of different TTLs
// (a warning), one with other data beside them (mixed), and an NSEC3
// record whose owner is not a hash, which the chain ignores. It returns
// the text and the mixed owner's name.
func nsec3OwnerZone(t *testing.T) (string, string) {
	text := updSignZone(t, updZoneRecords(20), true)
	var owners []string
	zp := dns.NewZoneParser(strings.NewReader(text), "tld.", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if rr.Header().Rrtype == dns.TypeNSEC3 {
			owners = append(owners, rr.Header().Name)
		}
	}
	if len(owners) < 3 {
		t.Fatalf("%d NSEC3 records", len(owners))
	}
	mixed := owners[1]
	text += mixed + " 3600 IN TXT \"beside an NSEC3\"\n"
	text += owners[2] + " 60 IN NSEC3 1 0 0 - " + strings.ToUpper(strings.TrimSuffix(owners[0], ".tld.")) + " A\n"
	text += "nothash.tld. 300 IN NSEC3 1 0 0 - " + strings.ToUpper(strings.TrimSuffix(owners[0], ".tld.")) + " A\n"
	return text, mixed
}

// An NSEC3 record whose salt runs past its RDATA, at a hash below the
// apex, which the chain ignores, and other data beside it. (Walk yields
// the record, which miekg/dns does not unpack: a zone holding it is not
// compared with one built from scratch.)
const (
	badNSEC3 = "f000000000000000000000000000000v.tld. 300 IN NSEC3 \\# 5 0100000001\n"
	badTXT   = "f000000000000000000000000000000v.tld. 3600 IN TXT \"beside a malformed NSEC3\"\n"
)

// checkNSEC3Owners fails the test unless every node flagged FlagNSEC3Owner
// has no RRset in the table, every other node's NSEC3 records are an
// RRset of it (kept or answered), and every block of the table's arenas
// is one that an RRset or the negative SOA refers to: an NSEC3 owner's
// records are held once, in its proof block. It returns how many owners
// are flagged.
func checkNSEC3Owners(t *testing.T, z *Zone) int {
	t.Helper()
	owners := 0
	used := make([]bool, len(z.blocks))
	for n := range z.nodes {
		nd := &z.nodes[n]
		if nd.Flags&FlagNSEC3Owner != 0 {
			owners++
			if nd.NSets != 0 {
				t.Errorf("NSEC3 owner %s has %d RRsets in the table", wireString(z.NodeName(nd)), nd.NSets)
			}
		}
		for s := nd.Set0; s < nd.Set0+uint32(nd.NSets); s++ {
			for _, b := range [2]uint32{z.sets[s].Block, z.sets[s].Sig} {
				if b != None {
					used[b] = true
				}
			}
		}
	}
	used[z.negSOA] = true
	if z.negSOASig != None {
		used[z.negSOASig] = true
	}
	unused := 0
	for _, u := range used {
		if !u {
			unused++
		}
	}
	if unused > 0 && z.Applied() == "" {
		// A version made by Apply leaves the blocks it replaced.
		t.Errorf("%d of %d blocks are referred to by no RRset", unused, len(z.blocks))
	}
	return owners
}

// TestNSEC3OwnersInProofs checks that an NSEC3-signed zone keeps the
// records of its NSEC3 owners in their proof blocks alone, with no RRset
// in the table, and that Walk still yields every record of the file in
// canonical order; the mixed owner and the ignored records keep their
// RRsets; and that the same holds through Apply's changes (owners added,
// removed and re-pointed by re-signing, the mixed owner becoming a pure
// one and back, a malformed record left alone), ReloadText and Rebuild.
func TestNSEC3OwnersInProofs(t *testing.T) {
	text, mixed := nsec3OwnerZone(t)
	bad := text + badNSEC3 + badTXT
	z := mustParse(t, bad, "tld.")
	if z.Denial() != DenialNSEC3 {
		t.Fatalf("denial %d", z.Denial())
	}
	owners := checkNSEC3Owners(t, z)
	if want := len(z.denial.hashBlocks) - 1; owners != want {
		t.Errorf("%d NSEC3 owners flagged, want %d (the chain's but the mixed one)", owners, want)
	}
	for _, name := range []string{mixed, "nothash.tld.", "f000000000000000000000000000000v.tld."} {
		nd := node(t, z, name)
		if nd.Flags&FlagNSEC3Owner != 0 || z.SetOf(nd, dns.TypeNSEC3) == None {
			t.Errorf("%s: flags %x, its NSEC3 RRset not in the table", name, nd.Flags)
		}
	}
	checkWalk(t, z, []byte(bad), "tld.", "")
	ttlWarned := false
	for _, w := range z.Warnings() {
		ttlWarned = ttlWarned || strings.Contains(w, " NSEC3 differs from the RRset's TTL ")
	}
	if !ttlWarned {
		t.Errorf("no warning about the NSEC3 RRset's TTLs: %q", z.Warnings())
	}
	// The table holds no NSEC3 record but those of the three nodes that
	// keep their RRsets: one NSEC3 block and one RRSIG block at the
	// mixed owner (whose TXT is unsigned), one NSEC3 block at each of
	// the others.
	nsec3Blocks := 0
	for n := range z.nodes {
		nd := &z.nodes[n]
		if si := z.SetOf(nd, dns.TypeNSEC3); si != None {
			for _, b := range [2]uint32{z.sets[si].Block, z.sets[si].Sig} {
				if b != None {
					nsec3Blocks++
				}
			}
		}
	}
	if nsec3Blocks != 4 {
		t.Errorf("%d blocks of NSEC3 RRsets in the table, want 4", nsec3Blocks)
	}

	// The malformed NSEC3 record left alone would make an NSEC3 owner
	// whose records no proof block holds: the change is rebuilt.
	noTXT := strings.Replace(bad, badTXT, "", 1)
	del, add := updTextDiff(t, bad, noTXT)
	nz, err := z.Apply(del, add)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(nz.Applied(), "rebuilt: ") {
		t.Errorf("a malformed NSEC3 record left alone: %s", nz.Applied())
	}
	checkNSEC3Owners(t, nz)
	checkWalk(t, nz, []byte(noTXT), "tld.", "")

	// The mixed owner left with its NSEC3 RRset alone becomes an owner,
	// in place; given other data again, it is one no longer.
	z = mustParse(t, text, "tld.")
	del, add = updTextDiff(t, text, strings.Replace(text, mixed+" 3600 IN TXT \"beside an NSEC3\"\n", "", 1))
	nz, err = z.Apply(del, add)
	if err != nil {
		t.Fatal(err)
	}
	if nz.Applied() != "incremental" {
		t.Errorf("the mixed owner's data removed: %s", nz.Applied())
	}
	if nd := node(t, nz, mixed); nd.Flags&FlagNSEC3Owner == 0 || nd.NSets != 0 {
		t.Errorf("%s left with its NSEC3 RRset: flags %x, %d RRsets", mixed, nd.Flags, nd.NSets)
	}
	checkNSEC3Owners(t, nz)
	sameTable(t, nz, fromScratch(t, nz))
	checkWalk(t, nz, []byte(strings.Replace(text, mixed+" 3600 IN TXT \"beside an NSEC3\"\n", "", 1)), "tld.", "")
	back, err := nz.Apply(add, del)
	if err != nil {
		t.Fatal(err)
	}
	checkNSEC3Owners(t, back)
	sameTable(t, back, fromScratch(t, back))
	checkWalk(t, back, []byte(text), "tld.", "")

	// Random change sets re-sign the zone: owners come and go and their
	// next hashes move. Each version's records are the text's, and a
	// reload of the text and a rebuild hold the same.
	for _, seed := range []uint64{5, 6} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 14))
			u := newUpdRandomZone(t, "nsec3", 30)
			cur := u.text()
			z := mustParse(t, cur, "tld.")
			for step := 1; step <= 15; step++ {
				next := u.step(r)
				nz, del, add := applyText(t, z, cur, next, step)
				if checkNSEC3Owners(t, nz) == 0 {
					t.Fatalf("step %d: no NSEC3 owner flagged", step)
				}
				checkWalk(t, nz, []byte(next), "tld.", "")
				rl, err := ReloadText(z, []byte(next), "", 1000)
				if err != nil {
					t.Fatalf("step %d: reload: %v", step, err)
				}
				checkNSEC3Owners(t, rl.Zone)
				checkWalk(t, rl.Zone, []byte(next), "tld.", "")
				if t.Failed() {
					t.Fatalf("step %d (%s, reload %s): deleted %v added %v", step, nz.Applied(), rl.How, del, add)
				}
				z, cur = nz, next
			}
			rb, err := z.Rebuild()
			if err != nil {
				t.Fatal(err)
			}
			checkNSEC3Owners(t, rb)
			checkWalk(t, rb, []byte(cur), "tld.", "")
			if s := rb.Superseded(); s != 0 {
				t.Errorf("rebuilt: %d bytes superseded", s)
			}
		})
	}
}

// TestNSEC3Released builds an NSEC3-signed zone with its records split
// into ranges and released range by range (see buildrelease.go): each
// range's NSEC3 owners' records as soon as their proof blocks are
// written, before buildSets, the rest as the table's blocks are
// prepared. The tables, proofs, NSEC3 indexes and warnings (in a load's
// order, the chain's after the table's) are those of a build in one range,
// which releases nothing; the zone has signed in-zone addresses (the
// apex's name server, read from the address table) and the cases of
// nsec3OwnerZone.
func TestNSEC3Released(t *testing.T) {
	text, _ := nsec3OwnerZone(t)
	text += badNSEC3 + badTXT
	serial := buildInParts(t, []byte(text), "tld.", 1)
	if serial.Denial() != DenialNSEC3 || len(serial.Warnings()) < 4 {
		t.Fatalf("denial %d, warnings %q", serial.Denial(), serial.Warnings())
	}
	for _, parts := range []int{2, 3, 7, 64} {
		z, b := buildParts(t, []byte(text), "tld.", parts)
		if !b.released() || b.addrs == nil {
			t.Fatalf("%d parts: the records were not released", parts)
		}
		if err := sameTables(serial, z); err != nil {
			t.Errorf("%d parts, released: %v", parts, err)
		}
		checkNSEC3Owners(t, z)
		checkWalk(t, z, []byte(text), "tld.", "")
	}
}
