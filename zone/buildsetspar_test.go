package zone

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// buildInParts builds the zone text with buildSets in the given number of
// node ranges.
func buildInParts(t *testing.T, text []byte, origin string, parts int) *Zone {
	t.Helper()
	z, _ := buildParts(t, text, origin, parts)
	return z
}

// buildParts is buildInParts, and returns the builder too, for what the
// build did (released).
func buildParts(t *testing.T, text []byte, origin string, parts int) (*Zone, *builder) {
	t.Helper()
	lines, chunks, err := scanText(bytes.NewReader(text), int64(len(text)), 1, dns.Fqdn(origin))
	if err != nil {
		t.Fatal(err)
	}
	open := func(off, end int64) io.Reader { return bytes.NewReader(text[off:end]) }
	b, err := parseText(text, lines, len(text), chunks, open, origin, "test.zone")
	if err != nil {
		t.Fatal(err)
	}
	b.setsParts = parts
	z, err := b.buildParsed()
	if err != nil {
		t.Fatalf("%d parts: %v", parts, err)
	}
	return z, b
}

// sameTables reports the first array of the table, its kept records,
// references, proofs and warnings where a and b differ.
func sameTables(a, b *Zone) error {
	keptWire := func(z *Zone) []byte {
		if z.kept == nil {
			return nil
		}
		return z.kept.wire
	}
	keptSets := func(z *Zone) []keptSet {
		if z.kept == nil {
			return nil
		}
		return z.kept.sets
	}
	checks := []struct {
		what string
		x, y any
	}{
		{"names", a.names, b.names},
		{"nodes", a.nodes, b.nodes},
		{"sets", a.sets, b.sets},
		{"blocks", a.blocks, b.blocks},
		{"wire", a.wire, b.wire},
		{"patches", a.patches, b.patches},
		{"trims", a.trims, b.trims},
		{"negative SOA", [2]uint32{a.negSOA, a.negSOASig}, [2]uint32{b.negSOA, b.negSOASig}},
		{"kept wire", keptWire(a), keptWire(b)},
		{"kept sets", keptSets(a), keptSets(b)},
		{"references", a.upd.refBase, b.upd.refBase},
		{"warnings", a.warnings, b.warnings},
	}
	if a.Denial() != b.Denial() {
		return fmt.Errorf("denial %d against %d", a.Denial(), b.Denial())
	}
	if a.Denial() != DenialNone {
		checks = append(checks, []struct {
			what string
			x, y any
		}{
			{"proof blocks", a.ProofBlocks(), b.ProofBlocks()},
			{"proof wire", a.ProofWire(), b.ProofWire()},
			{"proof patches", a.ProofPatches(), b.ProofPatches()},
		}...)
	}
	for _, c := range checks {
		x, y := reflect.ValueOf(c.x), reflect.ValueOf(c.y)
		if x.Len() == 0 && y.Len() == 0 {
			continue // nil and empty alike
		}
		if !reflect.DeepEqual(c.x, c.y) {
			return fmt.Errorf("%s differ (%d against %d entries)", c.what, x.Len(), y.Len())
		}
	}
	for n := range a.nodes {
		if a.Denial() == DenialNSEC3 {
			if a.NSEC3Match(uint32(n)) != b.NSEC3Match(uint32(n)) || a.NSEC3Wild(uint32(n)) != b.NSEC3Wild(uint32(n)) {
				return fmt.Errorf("NSEC3 index of node %d differs", n)
			}
		} else if a.Denial() == DenialNSEC && a.NSECAt(uint32(n)) != b.NSECAt(uint32(n)) {
			return fmt.Errorf("NSEC index of node %d differs", n)
		}
	}
	return nil
}

// setsZone is a zone whose ranges of nodes hold every kind of thing
// buildSets numbers: CNAME and DNAME targets (offsets in the names), MX
// and NS blocks with signed authoritative addresses (additional signature
// slots in the trims), glue and occluded data (kept records), wildcards,
// an RRSIG covering nothing (a warning and kept records) and TTLs that
// differ within an RRset (warnings).
func setsZone() []byte {
	var sb strings.Builder
	sb.WriteString(`$ORIGIN sets.test.
$TTL 3600
@ SOA ns1 host 1 7200 3600 1209600 300
@ NS ns1
@ MX 10 mail
ns1 A 192.0.2.1
`)
	sig := func(owner, covered string) {
		fmt.Fprintf(&sb, "%s RRSIG %s 8 3 3600 20300101000000 20200101000000 12345 sets.test. AAAA\n", owner, covered)
	}
	sig("ns1", "A")
	for i := range 400 {
		switch i % 8 {
		case 0:
			fmt.Fprintf(&sb, "d%d NS ns.d%d\nd%d NS ns1\nns.d%d A 192.0.2.%d\nns.d%d AAAA 2001:db8::%x\nd%d DS 1 8 2 %064x\n", i, i, i, i, i%250, i, i, i, i)
			fmt.Fprintf(&sb, "x.ns.d%d TXT occluded\n", i)
		case 1:
			fmt.Fprintf(&sb, "c%d CNAME target%d.example.\n", i, i)
		case 2:
			fmt.Fprintf(&sb, "r%d DNAME t%d.sets.test.\n", i, i)
		case 3:
			fmt.Fprintf(&sb, "mail%d A 192.0.2.%d\nmx%d MX 10 mail%d\nmx%d MX 20 mail\n", i, i%250, i, i, i)
			sig(fmt.Sprintf("mail%d", i), "A")
		case 4:
			fmt.Fprintf(&sb, "*.w%d TXT wild\nm%d MX 5 a.w%d\n", i, i, i)
		case 5:
			fmt.Fprintf(&sb, "t%d TXT one\nt%d 60 TXT two\n", i, i)
		case 6:
			fmt.Fprintf(&sb, "s%d A 192.0.2.7\n", i)
			sig(fmt.Sprintf("s%d", i), "MX")
		default:
			fmt.Fprintf(&sb, "a.b.e%d AAAA 2001:db8::1\n", i)
		}
	}
	sb.WriteString("mail A 192.0.2.9\n")
	sig("mail", "A")
	return []byte(sb.String())
}

// TestBuildSetsParts builds zones with the blocks prepared in one node
// range and in several, and finds the tables identical: the merge of the
// ranges must move every index and offset by what the table held before
// (a wrong one makes blocks, RRsets, targets, kept records or signature
// slots point elsewhere).
func TestBuildSetsParts(t *testing.T) {
	root, err := os.ReadFile("testdata/root.zone")
	if err != nil {
		t.Fatal(err)
	}
	zones := []struct {
		name, origin string
		text         []byte
	}{
		{"sets", "sets.test.", setsZone()},
		{"root", ".", root},
	}
	for _, zc := range zones {
		serial := buildInParts(t, zc.text, zc.origin, 1)
		if zc.name == "sets" && (serial.kept == nil || len(serial.warnings) < 2 || !slices.ContainsFunc(serial.blocks, func(b Block) bool { return b.Flags&BlockAddSigs != 0 })) {
			t.Fatalf("sets zone lacks kept records, warnings or signed additional addresses")
		}
		for _, parts := range []int{2, 3, 7, 64} {
			if err := sameTables(serial, buildInParts(t, zc.text, zc.origin, parts)); err != nil {
				t.Errorf("%s in %d parts: %v", zc.name, parts, err)
			}
		}
	}
}

// withoutDNSSEC returns the zone text with its RRSIG, NSEC and NSEC3
// records left out, which makes a zone whose records buildSets releases.
func withoutDNSSEC(text []byte) []byte {
	var out []byte
	for _, l := range bytes.SplitAfter(text, []byte("\n")) {
		f := strings.Fields(string(l))
		if slices.ContainsFunc(f, func(s string) bool { return s == "RRSIG" || s == "NSEC" || s == "NSEC3" }) {
			continue
		}
		out = append(out, l...)
	}
	return out
}

// TestBuildSetsReleased builds unsigned zones with their blocks prepared
// in one node range and, releasing the records range by range as they
// are prepared, in several (see buildrelease.go), and finds the tables
// identical: the additional addresses of NS and MX blocks, read from the
// address table instead of the records (targets in other ranges: the
// apex's name server, the mail host at the zone's end, wildcards), and
// every record and rdata offset counted in its range's arrays.
func TestBuildSetsReleased(t *testing.T) {
	root, err := os.ReadFile("testdata/root.zone")
	if err != nil {
		t.Fatal(err)
	}
	zones := []struct {
		name, origin string
		text         []byte
	}{
		{"sets", "sets.test.", withoutDNSSEC(setsZone())},
		{"root", ".", withoutDNSSEC(root)},
	}
	for _, zc := range zones {
		serial := buildInParts(t, zc.text, zc.origin, 1)
		if serial.Denial() != DenialNone || serial.kept == nil {
			t.Fatalf("%s: the unsigned zone has a denial chain or no kept records", zc.name)
		}
		for _, parts := range []int{2, 3, 7, 64} {
			lines, chunks, err := scanText(bytes.NewReader(zc.text), int64(len(zc.text)), 1, zc.origin)
			if err != nil {
				t.Fatal(err)
			}
			open := func(off, end int64) io.Reader { return bytes.NewReader(zc.text[off:end]) }
			b, err := parseText(zc.text, lines, len(zc.text), chunks, open, zc.origin, "test.zone")
			if err != nil {
				t.Fatal(err)
			}
			b.setsParts = parts
			z, err := b.buildParsed()
			if err != nil {
				t.Fatalf("%s in %d parts: %v", zc.name, parts, err)
			}
			if !b.released() || b.addrs == nil {
				t.Fatalf("%s in %d parts: the records were not released", zc.name, parts)
			}
			if err := sameTables(serial, z); err != nil {
				t.Errorf("%s in %d parts, released: %v", zc.name, parts, err)
			}
		}
	}
}
