package zone

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// walkZones are the zone files Walk is checked against: every fixture of
// the package and of the conformance suite, the example configuration's
// zone and the real signed root zone.
var walkZones = []struct{ origin, file string }{
	{".", rootFile},
	{".", "/work/shared/zones/root.zone"},
	{"walk.test.", "testdata/walk/walk.test.zone"},
	{"walk.test.", "testdata/walk/walk-nsec.zone"},
	{"walk.test.", "testdata/walk/walk-nsec3.zone"},
	{"big.test.", "testdata/identity/big.test.zone"},
	{"chain.test.", "testdata/identity/chain.test.zone"},
	{"wild.test.", "testdata/identity/wild.test.zone"},
	{"deleg.test.", "testdata/identity/deleg.test.zone"},
	{"example.", "testdata/identity/example.zone"},
	{"inc.test.", "testdata/include/main.zone"},
	{"big.test.", "../conformance/testdata/big.test.zone"},
	{"chain.test.", "../conformance/testdata/chain.test.zone"},
	{"child.deleg.test.", "../conformance/testdata/child.deleg.test.zone"},
	{"deleg.test.", "../conformance/testdata/deleg.test.zone"},
	{"wild.test.", "../conformance/testdata/wild.test.zone"},
	{"example.", "../configs/example.zone"},
}

// canonicalText is the presentation form of rr in canonical form (RFC 4034
// section 6.2, RFC 6840 section 5.1): owner and the domain names in the
// RDATA of the listed types lowercased (lowerNames).
func canonicalText(rr dns.RR) string {
	rr = dns.Copy(rr)
	rr.Header().Name = asciiLower(rr.Header().Name)
	lowerNames(rr)
	// Through wire format and back, so that the text is miekg/dns's
	// own rendering (hex and base32 in its case, say) and not the
	// file's spelling.
	buf := make([]byte, 65536)
	n, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return "unpackable: " + rr.String()
	}
	back, _, err := dns.UnpackRR(buf[:n], 0)
	if err != nil {
		return "unpackable: " + rr.String()
	}
	return back.String()
}

// lowerNames lowercases the domain names in rr's RDATA that RFC 4034
// section 6.2 lists (RFC 6840 section 5.1 amending it), through
// miekg/dns's fields, so that the canonical form is reached independently
// of Walk's wire-format decoding.
func lowerNames(rr dns.RR) {
	l := asciiLower
	switch v := rr.(type) {
	case *dns.NS:
		v.Ns = l(v.Ns)
	case *dns.CNAME:
		v.Target = l(v.Target)
	case *dns.PTR:
		v.Ptr = l(v.Ptr)
	case *dns.MX:
		v.Mx = l(v.Mx)
	case *dns.SOA:
		v.Ns, v.Mbox = l(v.Ns), l(v.Mbox)
	case *dns.SRV:
		v.Target = l(v.Target)
	case *dns.DNAME:
		v.Target = l(v.Target)
	case *dns.RRSIG:
		v.SignerName = l(v.SignerName)
	case *dns.RP:
		v.Mbox, v.Txt = l(v.Mbox), l(v.Txt)
	case *dns.AFSDB:
		v.Hostname = l(v.Hostname)
	case *dns.NAPTR:
		v.Replacement = l(v.Replacement)
	case *dns.KX:
		v.Exchanger = l(v.Exchanger)
	case *dns.RT:
		v.Host = l(v.Host)
	case *dns.PX:
		v.Map822, v.Mapx400 = l(v.Map822), l(v.Mapx400)
	case *dns.MINFO:
		v.Rmail, v.Email = l(v.Rmail), l(v.Email)
	case *dns.MB:
		v.Mb = l(v.Mb)
	case *dns.MG:
		v.Mg = l(v.Mg)
	case *dns.MR:
		v.Mr = l(v.Mr)
	case *dns.MD:
		v.Md = l(v.Md)
	case *dns.MF:
		v.Mf = l(v.Mf)
	}
}

// canonicalWire is rr in canonical form (as canonicalText lowercases it)
// and uncompressed wire format, as a string; "" when it cannot be packed.
func canonicalWire(rr dns.RR) string {
	rr = dns.Copy(rr)
	rr.Header().Name = asciiLower(rr.Header().Name)
	lowerNames(rr)
	buf := make([]byte, 65536+512)
	n, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

// checkWalk checks, for a zone built from text, that Walk yields in
// canonical order exactly the distinct records miekg/dns parses from it,
// compared in canonical wire form (which, unlike the text form, needs no
// unpacking of what the parser packed).
func checkWalk(t *testing.T, z *Zone, text []byte, origin, file string) {
	t.Helper()
	zp := dns.NewZoneParser(bytes.NewReader(text), origin, file)
	zp.SetIncludeAllowed(true)
	want := map[string]bool{}
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		want[canonicalWire(rr)] = true
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("Parse accepted what miekg/dns refuses: %v", err)
	}
	var prev Record
	var prevBuf, w []byte
	n := 0
	err := z.Walk(func(r *Record) error {
		if n > 0 && compareRecords(&prev, r) >= 0 {
			return fmt.Errorf("%s %s out of canonical order", wireString(r.Owner), typeName(r.Type))
		}
		n++
		prevBuf = append(append(prevBuf[:0], r.Owner...), r.Data...)
		prev = Record{Owner: prevBuf[:len(r.Owner)], Type: r.Type, Data: prevBuf[len(r.Owner):]}
		w = append(w[:0], r.Owner...)
		w = append(w, byte(r.Type>>8), byte(r.Type), 0, 1, byte(r.TTL>>24), byte(r.TTL>>16), byte(r.TTL>>8), byte(r.TTL),
			byte(len(r.Data)>>8), byte(len(r.Data)))
		w = append(w, r.Data...)
		if !want[string(w)] {
			return fmt.Errorf("Walk yields %s %s %x, which the text does not hold", wireString(r.Owner), typeName(r.Type), r.Data)
		}
		delete(want, string(w))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(want) > 0 {
		t.Fatalf("Walk misses %d records of the text", len(want))
	}
}

// asciiLower lowercases A-Z alone, as DNS names compare (RFC 4343);
// strings.ToLower would turn bytes that are not UTF-8 into U+FFFD.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = lowerASCII(c)
	}
	return string(b)
}

// fileRecords parses a zone file with miekg/dns and returns the canonical
// text of each distinct record, sorted.
func fileRecords(t testing.TB, r io.Reader, origin, file string) []string {
	t.Helper()
	zp := dns.NewZoneParser(r, origin, file)
	zp.SetIncludeAllowed(true)
	seen := map[string]bool{}
	var out []string
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		s := canonicalText(rr)
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// walkRecords walks z and returns the canonical text of each record,
// sorted, failing when Walk's order is not canonical or a record comes
// twice.
func walkRecords(t testing.TB, z *Zone) []string {
	t.Helper()
	var out []string
	var prevOwner, prevData []byte
	var prevType uint16
	n := 0
	err := z.Walk(func(r *Record) error {
		if !bytes.Equal(r.Owner, lowerWire(r.Owner)) {
			return fmt.Errorf("owner %s is not lowercase", wireString(r.Owner))
		}
		if n > 0 {
			c := CompareCanonical(prevOwner, r.Owner)
			if c == 0 {
				c = int(prevType) - int(r.Type)
			}
			if c == 0 {
				c = bytes.Compare(prevData, r.Data)
			}
			if c >= 0 {
				return fmt.Errorf("record %d (%s %s) does not follow %s %s in canonical order",
					n, wireString(r.Owner), typeName(r.Type), wireString(prevOwner), typeName(prevType))
			}
		}
		n++
		prevOwner = append(prevOwner[:0], r.Owner...)
		prevType = r.Type
		prevData = append(prevData[:0], r.Data...)
		rr, err := r.RR()
		if err != nil {
			return fmt.Errorf("record %d (%s %s): %v", n, wireString(r.Owner), typeName(r.Type), err)
		}
		out = append(out, canonicalText(rr))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// diffStrings reports the first few strings in one sorted list and not the
// other.
func diffStrings(t testing.TB, name string, got, want []string) {
	t.Helper()
	var missing, extra []string
	i, j := 0, 0
	for i < len(got) || j < len(want) {
		switch {
		case j == len(want) || i < len(got) && got[i] < want[j]:
			extra = append(extra, got[i])
			i++
		case i == len(got) || got[i] > want[j]:
			missing = append(missing, want[j])
			j++
		default:
			i++
			j++
		}
	}
	if len(missing)+len(extra) > 0 {
		t.Errorf("%s: Walk gave %d records, the file has %d; %d missing (first %q), %d extra (first %q)",
			name, len(got), len(want), len(missing), first(missing), len(extra), first(extra))
	}
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// TestWalkMatchesFile: for every zone file, the records Walk yields are
// those the file holds as miekg/dns parses them (compared in canonical
// form, duplicates counting once), each once, in canonical order, with
// every record's own TTL (the builder keeps each record's TTL in its
// block, and the answer engine serves the block as it is).
func TestWalkMatchesFile(t *testing.T) {
	for _, tc := range walkZones {
		t.Run(strings.ReplaceAll(tc.file, "/", "_"), func(t *testing.T) {
			if _, err := os.Stat(tc.file); err != nil {
				t.Skipf("%s: %v", tc.file, err)
			}
			z, err := LoadFile(tc.origin, tc.file)
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			diffStrings(t, tc.file, walkRecords(t, z), fileRecords(t, f, tc.origin, tc.file))
		})
	}
}

// TestWalkKeptRecords covers the records the table keeps no answer block
// for, inline: an RRSIG covering a type its node lacks, an RRSIG covering
// RRSIG, and a signed RRset below a zone cut.
func TestWalkKeptRecords(t *testing.T) {
	const text = `$ORIGIN kept.test.
$TTL 300
@ IN SOA ns hostmaster 1 7200 3600 1209600 300
@ IN NS ns
ns IN A 192.0.2.1
ns IN RRSIG MX 8 3 300 20370101000000 20260101000000 1 kept.test. AAAA
ns IN RRSIG RRSIG 8 3 300 20370101000000 20260101000000 1 kept.test. AAAA
cut IN NS ns.cut
ns.cut IN A 192.0.2.2
ns.cut IN RRSIG A 8 4 300 20370101000000 20260101000000 1 kept.test. AAAA
below.ns.cut IN TXT "deep"
`
	z, err := Parse(strings.NewReader(text), "kept.test.", "kept.zone")
	if err != nil {
		t.Fatal(err)
	}
	diffStrings(t, "kept.zone", walkRecords(t, z), fileRecords(t, strings.NewReader(text), "kept.test.", "kept.zone"))
}

// TestWalkStops: Walk returns fn's first error and calls fn no more.
func TestWalkStops(t *testing.T) {
	z, err := LoadFile("walk.test.", "testdata/walk/walk.test.zone")
	if err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	calls := 0
	if err := z.Walk(func(*Record) error { calls++; return stop }); err != stop || calls != 1 {
		t.Errorf("Walk = %v after %d calls, want %v after 1", err, calls, stop)
	}
}

// TestWalkCaseDuplicates: records equal in canonical form but for the case
// of a name in their RDATA are one record, as RFC 8976 section 3.3.1.1 and
// RFC 2181 section 5 count them.
func TestWalkCaseDuplicates(t *testing.T) {
	const text = `$ORIGIN dup.test.
@ 300 IN SOA ns hostmaster 1 7200 3600 1209600 300
@ 300 IN NS ns.dup.test.
@ 300 IN NS NS.DUP.TEST.
ns 300 IN A 192.0.2.1
`
	z, err := Parse(strings.NewReader(text), "dup.test.", "dup.zone")
	if err != nil {
		t.Fatal(err)
	}
	got := walkRecords(t, z)
	if len(got) != 3 {
		t.Errorf("Walk gave %d records, want 3: %q", len(got), got)
	}
}

// TestWalkRandomZones builds random zones (names at random depths, cuts
// with glue and occluded data below, types whose RDATA names are
// compressed or kept literal, random case) and checks Walk against the
// text, as TestWalkMatchesFile does for the fixtures.
func TestWalkRandomZones(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 2026))
	labels := []string{"a", "B", "c", "ns", "Mail", "x-y", "*", "zz", "\\000", "Sub", "deep"}
	randName := func() string {
		var parts []string
		for range 1 + rng.IntN(3) {
			l := labels[rng.IntN(len(labels))]
			if l == "*" && len(parts) > 0 {
				l = "w"
			}
			parts = append(parts, l)
		}
		return strings.Join(parts, ".")
	}
	rdatas := []func(string) string{
		func(n string) string { return "A 192.0.2." + fmt.Sprint(rng.IntN(255)) },
		func(n string) string { return "AAAA 2001:db8::" + fmt.Sprintf("%x", rng.IntN(65535)) },
		func(n string) string { return "NS " + randName() },
		func(n string) string { return fmt.Sprintf("MX %d %s", rng.IntN(100), randName()) },
		func(n string) string { return "TXT \"" + randName() + "\"" },
		func(n string) string { return fmt.Sprintf("SRV 1 2 %d %s", rng.IntN(9999), randName()) },
		func(n string) string { return "PTR " + randName() + ".other.example." },
		func(n string) string { return "RP " + randName() + " " + randName() },
		func(n string) string { return "NSEC " + randName() + " A NS" },
	}
	for round := range 40 {
		var sb strings.Builder
		sb.WriteString("$ORIGIN r.test.\n@ 300 IN SOA ns hostmaster 1 7200 3600 1209600 300\n@ 300 IN NS ns\n")
		for range 20 + rng.IntN(60) {
			owner := randName()
			rd := rdatas[rng.IntN(len(rdatas))](owner)
			fmt.Fprintf(&sb, "%s %d IN %s\n", owner, 60+rng.IntN(3)*60, rd)
		}
		text := sb.String()
		z, err := Parse(strings.NewReader(text), "r.test.", "random.zone")
		if err != nil {
			// CNAMEs and DNAMEs are not generated, so every zone loads;
			// a failure is the test's.
			t.Fatalf("round %d: %v\n%s", round, err, text)
		}
		got, want := walkRecords(t, z), fileRecords(t, strings.NewReader(text), "r.test.", "random.zone")
		if !slices.Equal(got, want) {
			diffStrings(t, fmt.Sprintf("round %d", round), got, want)
			t.Fatalf("zone:\n%s", text)
		}
	}
}

// TestWalkAllocs: Walk allocates its buffers once, not per record.
func TestWalkAllocs(t *testing.T) {
	z, err := LoadFile(".", rootFile)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	allocs := testing.AllocsPerRun(2, func() {
		if err := z.Walk(func(*Record) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
	})
	// The buffers grow to the largest node's records: a few dozen
	// allocations at most, against 22,772 records.
	if allocs > 64 {
		t.Errorf("Walk over the root zone: %.0f allocations, want at most 64", allocs)
	}
}

func BenchmarkWalkRoot(b *testing.B) {
	z, err := LoadFile(".", rootFile)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n = 0
		if err := z.Walk(func(*Record) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(z.keptBytes()), "kept-bytes")
	b.ReportMetric(float64(z.MemoryBytes()), "table-bytes")
}

// BenchmarkWalkDelegations walks a TLD-like zone of 100,000 delegations
// with glue, most of whose records are kept apart from the answer blocks.
func BenchmarkWalkDelegations(b *testing.B) {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	delegationZone(w, 100_000)
	w.Flush()
	z, err := Parse(&buf, "deleg.", "generated")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n = 0
		if err := z.Walk(func(*Record) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(n), "records")
	b.ReportMetric(float64(z.keptBytes()), "kept-bytes")
	b.ReportMetric(float64(z.MemoryBytes()), "table-bytes")
}

// TestWalkKeptLarge: a node below a zone cut whose records are more than
// one prepared block holds (65,535 bytes) is kept in several, all walked.
func TestWalkKeptLarge(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("$ORIGIN big.test.\n$TTL 300\n@ SOA ns hostmaster 1 7200 3600 1209600 300\n@ NS ns\nns A 192.0.2.1\ncut NS ns.cut\n")
	chunk := strings.Repeat("x", 240)
	for i := range 160 {
		fmt.Fprintf(&sb, "deep.cut TXT \"%03d%s\"\n", i, chunk)
		fmt.Fprintf(&sb, "deep.cut TYPE65280 \\# 243 %x\n", fmt.Sprintf("%03d%s", i, chunk))
	}
	text := sb.String()
	z, err := Parse(strings.NewReader(text), "big.test.", "big.zone")
	if err != nil {
		t.Fatal(err)
	}
	if len(z.kept.sets) < 2 {
		t.Errorf("%d kept runs for about 80,000 bytes of records", len(z.kept.sets))
	}
	diffStrings(t, "big.zone", walkRecords(t, z), fileRecords(t, strings.NewReader(text), "big.test.", "big.zone"))
}
