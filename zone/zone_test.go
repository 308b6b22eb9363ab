package zone

import (
	"bytes"
	"errors"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

// head is the start of most inline test zones: an apex with SOA and NS,
// so that each case adds only the lines it is about.
const head = "$TTL 3600\n" +
	"@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n" +
	"@ NS ns1\n" +
	"ns1 A 192.0.2.1\n"

func mustParse(t testing.TB, text, origin string) *Zone {
	t.Helper()
	z, err := Parse(strings.NewReader(text), origin, "mem.zone")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return z
}

// wire returns the lowercase wire form of a presentation name.
func wire(t testing.TB, name string) []byte {
	t.Helper()
	w, err := toWire(name)
	if err != nil {
		t.Fatalf("toWire(%q): %v", name, err)
	}
	return lowerWire(w)
}

// node returns the node named name, failing the test when it is absent.
func node(t testing.TB, z *Zone, name string) *Node {
	t.Helper()
	w := wire(t, name)
	i := z.Find(w, hashName(w))
	if i == None {
		t.Fatalf("node %s not found", name)
	}
	return &z.Nodes()[i]
}

// rrset returns the RRset of type typ at name, failing when it is absent.
func rrset(t testing.TB, z *Zone, name string, typ uint16) *RRset {
	t.Helper()
	n := node(t, z, name)
	i := z.SetOf(n, typ)
	if i == None {
		t.Fatalf("%s has no %s RRset", name, dns.TypeToString[typ])
	}
	return &z.Sets()[i]
}

// blockRRs unpacks the base part of a block (answer or authority records)
// and its additional part, resolving the pointer codes against owner, the
// way the answer engine does when it copies a block into a message.
func blockRRs(t testing.TB, z *Zone, bi uint32, owner string) (base, extra []dns.RR) {
	t.Helper()
	blk := z.Blocks()[bi]
	raw := slices.Clone(z.Wire()[blk.Off : blk.Off+uint32(blk.Len)])
	// The message is a 12-byte header, the owner name, then the block;
	// suffix codes become pointers into the owner name, internal codes
	// pointers into the block.
	ow, err := toWire(owner)
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, 12, 12+len(ow)+len(raw))
	msg = append(msg, ow...)
	blockAt := len(msg)
	offs := labelOffsets(ow)
	for _, p := range z.Patches()[blk.Patch : blk.Patch+uint32(blk.NPatch)] {
		c := int(raw[p])<<8 | int(raw[p+1])
		var target int
		switch {
		case c&0xE000 == CodeSuffix:
			i := c &^ 0xE000
			if i == len(offs) {
				// The root: written as a zero byte would change the
				// length, so point at the owner's final zero octet.
				target = 12 + len(ow) - 1
			} else {
				target = 12 + offs[i]
			}
		default:
			target = blockAt + c&^0xC000
		}
		raw[p], raw[p+1] = byte(0xC0|target>>8), byte(target)
	}
	msg = append(msg, raw...)
	off := blockAt
	for off < len(msg) {
		rr, next, err := dns.UnpackRR(msg, off)
		if err != nil {
			t.Fatalf("block %d: unpack at %d: %v", bi, off-blockAt, err)
		}
		if off-blockAt < int(blk.Base) {
			base = append(base, rr)
		} else {
			extra = append(extra, rr)
		}
		off = next
	}
	if len(base) != int(blk.Count) {
		t.Fatalf("block %d has %d base records, Count says %d", bi, len(base), blk.Count)
	}
	return base, extra
}

func TestLoadSmallZone(t *testing.T) {
	text := `$ORIGIN Example.COM.
$TTL 300
@        IN SOA ns1 hostmaster ( 2024060101 7200 3600
                                 1209600 60 )
@        IN NS  ns1
@        IN NS  ns2.example.net.
@        IN MX  10 mail
ns1      IN A   192.0.2.1
ns1      IN A   192.0.2.1 ; an exact duplicate is dropped
mail     IN A   192.0.2.2
mail 600 IN AAAA 2001:db8::2
www      IN CNAME mail
*.wild   IN TXT "wildcard"
a.b.c    IN A   192.0.2.3
sub      IN NS  ns.sub
ns.sub   IN A   192.0.2.4
deep.ns.sub IN A 192.0.2.5
sub      IN DS  12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
`
	z := mustParse(t, text, "example.com")
	if z.Origin() != "example.com." || z.File() != "mem.zone" {
		t.Errorf("Origin, File = %q, %q", z.Origin(), z.File())
	}
	if z.Serial() != 2024060101 {
		t.Errorf("Serial = %d", z.Serial())
	}
	if z.Records() != 14 {
		t.Errorf("Records = %d, want 14 (15 records, one an exact duplicate)", z.Records())
	}
	if len(z.Warnings()) != 0 {
		t.Errorf("Warnings = %q", z.Warnings())
	}
	if z.ApexLabels() != 2 || string(z.Apex()) != "\x07example\x03com\x00" {
		t.Errorf("Apex = %q with %d labels", z.Apex(), z.ApexLabels())
	}

	flags := []struct {
		name      string
		set, zero uint16
	}{
		{"example.com.", FlagApex, FlagDelegation | FlagOccluded | FlagEmpty},
		{"www.example.com.", FlagCNAME, FlagEmpty},
		{"wild.example.com.", FlagWildcard | FlagEmpty, FlagIsWildcard},
		{"*.wild.example.com.", FlagIsWildcard, FlagEmpty | FlagWildcard},
		{"b.c.example.com.", FlagEmpty, 0},
		{"c.example.com.", FlagEmpty, 0},
		{"a.b.c.example.com.", 0, FlagEmpty},
		{"sub.example.com.", FlagDelegation, FlagOccluded | FlagApex},
		{"ns.sub.example.com.", FlagOccluded, FlagDelegation},
		{"deep.ns.sub.example.com.", FlagOccluded, 0},
	}
	for _, f := range flags {
		n := node(t, z, f.name)
		if n.Flags&f.set != f.set || n.Flags&f.zero != 0 {
			t.Errorf("%s flags %08b: want %08b set and %08b clear", f.name, n.Flags, f.set, f.zero)
		}
	}

	// The TTL of each RRset is its own; the MX target's addresses come
	// along as additional records.
	if rs := rrset(t, z, "mail.example.com.", dns.TypeAAAA); rs.TTL != 600 {
		t.Errorf("AAAA TTL = %d", rs.TTL)
	}
	mx := rrset(t, z, "example.com.", dns.TypeMX)
	base, extra := blockRRs(t, z, mx.Block, "example.com.")
	if len(base) != 1 || base[0].(*dns.MX).Mx != "mail.example.com." {
		t.Errorf("MX block base = %v", base)
	}
	if len(extra) != 2 {
		t.Errorf("MX block additional = %v, want mail's A and AAAA", extra)
	}

	// The CNAME's target is kept in lowercase wire format for chasing.
	cn := rrset(t, z, "www.example.com.", dns.TypeCNAME)
	if got := z.Names()[cn.Target : cn.Target+uint32(len("\x04mail\x07example\x03com\x00"))]; string(got) != "\x04mail\x07example\x03com\x00" {
		t.Errorf("CNAME target = %q", got)
	}

	// Data below the cut is glue: it has an RRset but no answer block.
	if rs := rrset(t, z, "deep.ns.sub.example.com.", dns.TypeA); rs.Block != None {
		t.Errorf("occluded A has block %d", rs.Block)
	}
	// The referral carries the NS RRset and the in-domain glue, which
	// must fit (RFC 9471); the DS at the cut is answered from this side.
	ns := rrset(t, z, "sub.example.com.", dns.TypeNS)
	base, extra = blockRRs(t, z, ns.Block, "sub.example.com.")
	if len(base) != 1 || len(extra) != 1 || extra[0].Header().Name != "ns.sub.example.com." {
		t.Errorf("referral = %v + %v", base, extra)
	}
	if blk := z.Blocks()[ns.Block]; blk.Req != 1 {
		t.Errorf("referral Req = %d, want 1 (in-domain glue group)", blk.Req)
	}
	if ds := rrset(t, z, "sub.example.com.", dns.TypeDS); ds.Block == None {
		t.Error("DS at the cut has no block")
	}

	// Negative answers carry the SOA at min(TTL, MINIMUM) = 60.
	neg, _ := blockRRs(t, z, z.NegSOA(), "example.com.")
	if len(neg) != 1 || neg[0].Header().Ttl != 60 {
		t.Errorf("negative SOA = %v", neg)
	}
	if z.NegSOASig() != None {
		t.Errorf("NegSOASig = %d in an unsigned zone", z.NegSOASig())
	}
	if z.ApexNode() == None || z.Nodes()[z.ApexNode()].Flags&FlagApex == 0 {
		t.Errorf("ApexNode = %d", z.ApexNode())
	}
}

// TestLoadErrors feeds one zone per validation rule and checks that the
// error is a *LoadError naming the file and the line of the offending
// record (and for a syntax error the column where the parser stood), with
// a message a zone's author can act on.
func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name string
		text string
		line int // 0: the error concerns the zone as a whole
		col  int // 0 but for syntax errors, which the parser finds
		msg  string
	}{
		{"syntax error", head + "www A 192.0.2.300\n", 5, 17, `bad A A: "192.0.2.300"`},
		{"unknown type", head + "www FOO bar\n", 5, 8, "FOO"},
		{"missing TTL", "@ SOA ns1 hostmaster 1 2 3 4 5\n", 1, 6, "missing TTL"},
		{"class CH", head + "www CH TXT hi\n", 5, 0, "class CH not supported (only IN)"},
		{"class HS in generic form", head + "www CLASS4 TXT hi\n", 5, 0, "class HS not supported (only IN)"},
		{"outside the origin", head + "www.example.org. A 192.0.2.2\n", 5, 0, "www.example.org. is outside the zone"},
		{"sibling of the origin", head + "notexample.com. A 192.0.2.2\n", 5, 0, "notexample.com. is outside the zone"},
		{"origin changed away", head + "$ORIGIN example.net.\nwww A 192.0.2.2\n", 6, 0, "www.example.net. is outside the zone"},
		{"no SOA", "$TTL 3600\n@ NS ns1\nns1 A 192.0.2.1\n", 0, 0, "no SOA record at the apex"},
		{"empty file", "", 0, 0, "no SOA record at the apex"},
		{"second SOA", head + "@ SOA ns1 hostmaster 2 7200 3600 1209600 300\n", 5, 0, "more than one SOA record at the apex"},
		{"SOA below the apex", head + "sub SOA ns1 hostmaster 1 7200 3600 1209600 300\n", 5, 0, "SOA record at sub.example.com., not at the apex"},
		{"no NS at the apex", "$TTL 3600\n\n@ SOA ns1 hostmaster 1 2 3 4 5\nns1 A 192.0.2.1\n", 3, 0, "no NS records at the apex"},
		// The apex's records are sorted by type before this check, so the
		// A record sorts ahead of the SOA: the error must still name the
		// SOA's line, not whatever record took its place in the sort.
		{"no NS at the apex, A beside the SOA", "$TTL 3600\n@ SOA ns1 hostmaster 1 2 3 4 5\n@ A 192.0.2.1\n", 2, 0, "no NS records at the apex"},
		{"CNAME beside A", head + "www CNAME ns1\nwww A 192.0.2.2\n", 5, 0, "CNAME at www.example.com. beside other data (A)"},
		{"A before CNAME", head + "www A 192.0.2.2\nwww CNAME ns1\n", 6, 0, "CNAME at www.example.com. beside other data (A)"},
		{"CNAME at the apex", head + "@ CNAME elsewhere.example.net.\n", 5, 0, "CNAME at example.com. beside other data (NS)"},
		{"CNAME beside a delegation", head + "sub NS ns.example.net.\nsub CNAME ns1\n", 6, 0, "CNAME at sub.example.com. beside other data (NS)"},
		{"two CNAMEs", head + "www CNAME ns1\nwww CNAME ns2\n", 6, 0, "more than one CNAME record at www.example.com."},
		{"two DNAMEs", head + "old DNAME new.example.\nold DNAME newer.example.\n", 6, 0, "more than one DNAME record at old.example.com."},
		{"data below a DNAME", head + "old DNAME new.example.\nwww.old A 192.0.2.2\n", 6, 0, "www.old.example.com. is below the DNAME at old.example.com."},
		{"data far below a DNAME", head + "old DNAME new.example.\na.b.old A 192.0.2.2\n", 6, 0, "a.b.old.example.com. is below the DNAME at old.example.com."},
		{"NS without data", head + "sub NS\n", 5, 0, "NS record without data"},
		{"SOA without data", "$TTL 3600\n@ TYPE6 \\# 0\n@ NS ns1\n", 2, 0, "SOA record"},
		{"MX without data in generic form", head + "@ TYPE15 \\# 0\n", 5, 0, "MX record with malformed data"},
		{"MX without data", head + "@ MX\n", 5, 0, "MX record"},
		{"OPT record", head + "www TYPE41 \\# 0\n", 5, 0, "OPT is not allowed in a zone"},
		{"include missing", head + "$INCLUDE does-not-exist.inc\n", 5, 27, "does-not-exist.inc"},
		{
			"multi-line record",
			"$TTL 3600\n@ SOA ns1 hostmaster (\n  1 ; serial\n  7200 3600 1209600 300 )\n@ NS ns1\n" +
				"; a comment line\n\nwww TXT ( \"one\"\n \"two\" )\nwww CNAME ns1\n",
			10, 0, "CNAME at www.example.com. beside other data (TXT)",
		},
		{
			"owner carried over",
			head + "www A 192.0.2.2\n    CNAME ns1\n",
			6, 0, "CNAME at www.example.com. beside other data (A)",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			z, err := Parse(strings.NewReader(tc.text), "example.com.", "mem.zone")
			if err == nil {
				t.Fatalf("loaded a bad zone (%d records)", z.Records())
			}
			if z != nil {
				t.Error("a zone was returned with the error")
			}
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("error %T %v is not a *LoadError", err, err)
			}
			if le.File != "mem.zone" || le.Line != tc.line || le.Column != tc.col || le.Origin != "example.com." {
				t.Errorf("error at %s:%d:%d in zone %s, want mem.zone:%d:%d in example.com.", le.File, le.Line, le.Column, le.Origin, tc.line, tc.col)
			}
			if !strings.Contains(le.Msg, tc.msg) {
				t.Errorf("message %q does not contain %q", le.Msg, tc.msg)
			}
			prefix := "mem.zone: zone example.com.: "
			switch {
			case tc.col > 0:
				prefix = "mem.zone:" + strconv.Itoa(tc.line) + ":" + strconv.Itoa(tc.col) + ": zone example.com.: "
			case tc.line > 0:
				prefix = "mem.zone:" + strconv.Itoa(tc.line) + ": zone example.com.: "
			}
			if !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("Error() = %q, want prefix %q", err.Error(), prefix)
			}
		})
	}
}

func TestLoadErrorFormat(t *testing.T) {
	cases := []struct {
		e    LoadError
		want string
	}{
		{LoadError{Origin: "a.", File: "f", Line: 3, Column: 7, Msg: "m"}, "f:3:7: zone a.: m"},
		{LoadError{Origin: "a.", File: "f", Line: 3, Msg: "m"}, "f:3: zone a.: m"},
		// A column without a line places nothing.
		{LoadError{Origin: "a.", File: "f", Column: 7, Msg: "m"}, "f: zone a.: m"},
		{LoadError{Origin: "a.", File: "f", Msg: "m"}, "f: zone a.: m"},
		{LoadError{Origin: "a.", Msg: "m"}, "zone a.: m"},
	}
	for _, c := range cases {
		if got := c.e.Error(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.e, got, c.want)
		}
	}
}

func TestLoadBadOrigin(t *testing.T) {
	for _, origin := range []string{"a..b.", strings.Repeat("x", 64) + ".", strings.Repeat("abcdefg.", 40)} {
		_, err := Parse(strings.NewReader(head), origin, "mem.zone")
		var le *LoadError
		if !errors.As(err, &le) || !strings.Contains(le.Msg, "invalid origin") {
			t.Errorf("origin %q: %v", origin, err)
		}
	}
}

func TestLoadFileMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.zone")
	_, err := LoadFile("example.com.", path)
	var le *LoadError
	if !errors.As(err, &le) || le.File != path || !strings.Contains(le.Msg, "no such file") {
		t.Errorf("LoadFile(absent) = %v", err)
	}
}

// TestLoadErrorUnwrap: the error underneath a LoadError is reached through
// it, miekg/dns's *dns.ParseError for a syntax error or an $INCLUDE that
// cannot be opened (and through that, the operating system's error), the
// operating system's error for a zone file that cannot be opened; and a
// syntax error is placed at file:line:column, even when the offending
// token quotes the very words the parser's message is made of.
func TestLoadErrorUnwrap(t *testing.T) {
	parse := func(text, file string) func() error {
		return func() error {
			_, err := Parse(strings.NewReader(text), "example.com.", file)
			return err
		}
	}
	load := func(path string) func() error {
		return func() error {
			_, err := LoadFile("inc.test.", path)
			return err
		}
	}
	cases := []struct {
		name     string
		load     func() error
		parseErr bool // errors.As reaches a *dns.ParseError
		notExist bool // errors.Is reaches fs.ErrNotExist
		prefix   string
	}{
		{"syntax error", parse(head+"www A 192.0.2.300\n", "mem.zone"), true, false,
			`mem.zone:5:17: zone example.com.: bad A A: "192.0.2.300"`},
		{"syntax error, no file name", parse(head+"www A 192.0.2.300\n", ""), true, false,
			`zone example.com.: bad A A: "192.0.2.300"`},
		{"token quoting the parser's words", parse(head+`www NS "x: dns: y at line: 9:9"`+"\n", "mem.zone"), true, false,
			`mem.zone:5:31: zone example.com.: garbage after rdata: "x: dns: y at line: 9:9"`},
		{"include missing", load(filepath.Join("testdata", "include", "missing.zone")), true, true,
			filepath.Join("testdata", "include", "missing.zone") + ":5:28: zone inc.test.: failed to open"},
		{"file missing", load(filepath.Join("testdata", "absent.zone")), false, true,
			filepath.Join("testdata", "absent.zone") + ": zone inc.test.: open "},
		{"check error", parse(head+"www CNAME ns1\nwww A 192.0.2.2\n", "mem.zone"), false, false,
			"mem.zone:5: zone example.com.: CNAME at www.example.com. beside other data (A)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.load()
			if err == nil {
				t.Fatal("loaded a bad zone")
			}
			var pe *dns.ParseError
			if got := errors.As(err, &pe); got != tc.parseErr {
				t.Errorf("errors.As(%v, *dns.ParseError) = %t, want %t", err, got, tc.parseErr)
			}
			if got := errors.Is(err, fs.ErrNotExist); got != tc.notExist {
				t.Errorf("errors.Is(%v, fs.ErrNotExist) = %t, want %t", err, got, tc.notExist)
			}
			if !strings.HasPrefix(err.Error(), tc.prefix) {
				t.Errorf("Error() = %q, want prefix %q", err.Error(), tc.prefix)
			}
		})
	}
}

// TestSplitParseError reads the parts of the text of a dns.ParseError: the
// place from the end, the file from the start, whatever the quoted token in
// between holds.
func TestSplitParseError(t *testing.T) {
	cases := []struct {
		text, file string
		want       parsePlace
		ok         bool
	}{
		{`z.zone: dns: bad A A: "1.2.3" at line: 5:17`, "z.zone", parsePlace{"z.zone", `bad A A: "1.2.3"`, 5, 17}, true},
		{`dns: bad A A: "1.2.3" at line: 5:17`, "", parsePlace{"", `bad A A: "1.2.3"`, 5, 17}, true},
		{`sub/a.inc: dns: bad A A: "1.2.3" at line: 3:9`, "z.zone", parsePlace{"sub/a.inc", `bad A A: "1.2.3"`, 3, 9}, true},
		{`sub/a.inc: dns: bad A A: "1.2.3" at line: 3:9`, "", parsePlace{"sub/a.inc", `bad A A: "1.2.3"`, 3, 9}, true},
		{`z.zone: dns: bad A A: "x: dns: y at line: 9:9" at line: 5:40`, "z.zone",
			parsePlace{"z.zone", `bad A A: "x: dns: y at line: 9:9"`, 5, 40}, true},
		{`dns: bad A A: "x: dns: y" at line: 5:30`, "", parsePlace{"", `bad A A: "x: dns: y"`, 5, 30}, true},
		// A file whose name ends in "dns" is not mistaken for no name.
		{`dns: dns: bad A A: "1.2.3" at line: 5:17`, "dns", parsePlace{"dns", `bad A A: "1.2.3"`, 5, 17}, true},
		{`dns: bad initial origin name: "" at line: 0:0`, "", parsePlace{"", `bad initial origin name: ""`, 0, 0}, true},
		{`z.zone: dns: bad A A at line: five:17`, "z.zone", parsePlace{}, false},
		{`z.zone: dns: bad A A at line: 5`, "z.zone", parsePlace{}, false},
		{`read z.zone: input/output error`, "z.zone", parsePlace{}, false},
	}
	for _, tc := range cases {
		got, ok := splitParseError(tc.text, tc.file)
		if got != tc.want || ok != tc.ok {
			t.Errorf("splitParseError(%q, %q) = %+v, %t, want %+v, %t", tc.text, tc.file, got, ok, tc.want, tc.ok)
		}
	}
}

// TestLoadAcceptsDNSSECBesideCNAME: RRSIG and NSEC may share a name with a
// CNAME (RFC 4035 section 2.5); an RRSIG whose RRset is absent is only a
// warning that names its line.
func TestLoadAcceptsDNSSECBesideCNAME(t *testing.T) {
	text := head +
		"www CNAME ns1\n" +
		"www RRSIG CNAME 13 3 3600 20300101000000 20200101000000 1 example.com. AAAA\n" +
		"www NSEC zz.example.com. CNAME RRSIG NSEC\n" +
		"www RRSIG NSEC 13 3 3600 20300101000000 20200101000000 1 example.com. AAAA\n" +
		"www RRSIG MX 13 3 3600 20300101000000 20200101000000 1 example.com. AAAA\n"
	z := mustParse(t, text, "example.com.")
	cn := rrset(t, z, "www.example.com.", dns.TypeCNAME)
	if cn.Sig == None {
		t.Error("CNAME has no signature block")
	}
	// The zone is signed without a DNSKEY at its apex, which is the
	// second warning.
	if w := z.Warnings(); len(w) != 2 || !strings.HasPrefix(w[0], "mem.zone:9: ") || !strings.Contains(w[0], "RRSIG covering MX") ||
		!strings.Contains(w[1], "no DNSKEY at the apex") {
		t.Errorf("Warnings = %q", w)
	}
}

func TestLoadTTLMismatchWarns(t *testing.T) {
	z := mustParse(t, head+"www 300 A 192.0.2.2\nwww 600 A 192.0.2.3\n", "example.com.")
	if rs := rrset(t, z, "www.example.com.", dns.TypeA); rs.TTL != 300 || rs.Count != 2 {
		t.Errorf("A RRset = %+v", rs)
	}
	if w := z.Warnings(); len(w) != 1 || !strings.HasPrefix(w[0], "mem.zone:6: ") || !strings.Contains(w[0], "TTL 600 of www.example.com. A differs from the RRset's TTL 300; 300 is served") {
		t.Errorf("Warnings = %q", w)
	}
}

// TestLoadTooLargeRRset: an RRset whose prepared block cannot fit in a
// DNS message is refused with the file and line of the RRset.
func TestLoadTooLargeRRset(t *testing.T) {
	var sb strings.Builder
	sb.WriteString(head)
	long := strings.Repeat("x", 250)
	for i := range 300 {
		sb.WriteString("big TXT \"" + strconv.Itoa(i+1) + long + "\"\n")
	}
	_, err := Parse(strings.NewReader(sb.String()), "example.com.", "mem.zone")
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("err = %v, want a *LoadError", err)
	}
	if le.File != "mem.zone" || le.Line != 5 || le.Origin != "example.com." || !strings.Contains(le.Msg, "too large") {
		t.Errorf("err = %#v", le)
	}
}

func TestInclude(t *testing.T) {
	z, err := LoadFile("inc.test.", filepath.Join("testdata", "include", "main.zone"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		"www.inc.test.", "mail.inc.test.", // sub/hosts.inc and sub/more.inc under the zone's origin
		"www.other.inc.test.", "mail.other.inc.test.", // the same files under the $INCLUDE origin
		"after.inc.test.", // the origin is restored after the include
	} {
		rrset(t, z, name, dns.TypeA)
	}
	if z.Records() != 8 {
		t.Errorf("Records = %d, want 8", z.Records())
	}
}

func TestIncludeErrorsNameTheIncludedFile(t *testing.T) {
	dir := filepath.Join("testdata", "include")
	cases := []struct {
		file, wantFile string
		line, col      int
		msg            string
	}{
		{"badparse.zone", filepath.Join(dir, "sub", "badparse.inc"), 3, 27, `bad A A: "192.0.2.300"`},
		{"badcheck.zone", filepath.Join(dir, "sub", "badcheck.inc"), 4, 0, "CNAME at alias.inc.test. beside other data (A)"},
		{"missing.zone", filepath.Join(dir, "missing.zone"), 5, 28, "sub/nonexistent.inc"},
	}
	for _, c := range cases {
		_, err := LoadFile("inc.test.", filepath.Join(dir, c.file))
		var le *LoadError
		if !errors.As(err, &le) {
			t.Errorf("%s: %v", c.file, err)
			continue
		}
		if le.File != c.wantFile || le.Line != c.line || le.Column != c.col || !strings.Contains(le.Msg, c.msg) {
			t.Errorf("%s: error %s:%d:%d %q, want %s:%d:%d containing %q", c.file, le.File, le.Line, le.Column, le.Msg, c.wantFile, c.line, c.col, c.msg)
		}
	}
}

// TestGenericSyntax: RFC 3597 \# rdata for unknown and known types, and
// TYPEnnn/CLASSnnn mnemonics, load to the same records as the usual form.
func TestGenericSyntax(t *testing.T) {
	generic := head +
		"www CLASS1 TYPE1 \\# 4 C0000202\n" +
		"www TYPE16 \\# 6 05 68656c6c6f\n" +
		"www TYPE65280 \\# 3 abcdef\n" +
		"www TYPE65281 \\# 0\n" +
		"alias TYPE5 \\# 17 03777777076578616d706c6503636f6d00\n"
	plain := head +
		"www IN A 192.0.2.2\n" +
		"www TXT hello\n" +
		"www TYPE65280 \\# 3 ABCDEF\n" +
		"www TYPE65281 \\# 0\n" +
		"alias CNAME www\n"
	zg := mustParse(t, generic, "example.com.")
	zp := mustParse(t, plain, "example.com.")
	for _, typ := range []uint16{dns.TypeA, dns.TypeTXT, 65280, 65281} {
		g, p := rrset(t, zg, "www.example.com.", typ), rrset(t, zp, "www.example.com.", typ)
		bg, _ := blockRRs(t, zg, g.Block, "www.example.com.")
		bp, _ := blockRRs(t, zp, p.Block, "www.example.com.")
		if len(bg) != 1 || len(bp) != 1 || bg[0].String() != bp[0].String() {
			t.Errorf("type %d: generic %v, plain %v", typ, bg, bp)
		}
	}
	if n := node(t, zg, "alias.example.com."); n.Flags&FlagCNAME == 0 {
		t.Error("a CNAME in generic form is not flagged as a CNAME")
	}
	u, _ := blockRRs(t, zg, rrset(t, zg, "www.example.com.", 65280).Block, "www.example.com.")
	if g, ok := u[0].(*dns.RFC3597); !ok || g.Rdata != "abcdef" {
		t.Errorf("TYPE65280 = %#v", u[0])
	}
}

// TestCompareCanonicalRFC4034 checks the example ordering of RFC 4034
// section 6.1, after shuffling.
func TestCompareCanonicalRFC4034(t *testing.T) {
	want := []string{
		"example.",
		"a.example.",
		"yljkjljk.a.example.",
		"Z.a.example.",
		"zABC.a.EXAMPLE.",
		"z.example.",
		"\\001.z.example.",
		"*.z.example.",
		"\\200.z.example.",
	}
	names := make([][]byte, len(want))
	for i, s := range want {
		names[i] = wire(t, s)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		got := slices.Clone(names)
		r.Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
		slices.SortFunc(got, CompareCanonical)
		for i := range got {
			if string(got[i]) != string(names[i]) {
				t.Fatalf("position %d: %s, want %s", i, wireString(got[i]), want[i])
			}
		}
	}
	for i := range names {
		if c := CompareCanonical(names[i], names[i]); c != 0 {
			t.Errorf("%s vs itself: %d", want[i], c)
		}
	}
	if CompareCanonical([]byte{0}, names[0]) >= 0 {
		t.Error("the root does not sort first")
	}
}

// refCompare is an independent statement of RFC 4034 section 6.1: reverse
// the labels, then compare label lists lexicographically.
func refCompare(a, b []byte) int {
	labels := func(w []byte) []string {
		var ls []string
		for i := 0; w[i] != 0; i += int(w[i]) + 1 {
			ls = append(ls, string(w[i+1:i+1+int(w[i])]))
		}
		slices.Reverse(ls)
		return ls
	}
	return slices.Compare(labels(a), labels(b))
}

func TestCompareCanonicalMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	alphabet := []byte{'a', 'b', 'z', '0', '-', 0, 0xff, '*'}
	randName := func() []byte {
		var w []byte
		for range r.IntN(5) {
			l := r.IntN(4) + 1
			w = append(w, byte(l))
			for range l {
				w = append(w, alphabet[r.IntN(len(alphabet))])
			}
		}
		return append(w, 0)
	}
	for range 20000 {
		a, b := randName(), randName()
		if got, want := CompareCanonical(a, b), refCompare(a, b); got != want {
			t.Fatalf("CompareCanonical(%q, %q) = %d, want %d", a, b, got, want)
		}
		// The build sorts by keys: their byte order must be the same.
		if got, want := bytes.Compare(appendCanonicalKey(nil, a), appendCanonicalKey(nil, b)), refCompare(a, b); got != want {
			t.Fatalf("keys of %q and %q compare %d, want %d", a, b, got, want)
		}
	}
}

// TestNodesInCanonicalOrder: node index order is canonical order, so the
// predecessor of any name (for NSEC-style proofs and range searches) is a
// binary search over the nodes.
func TestNodesInCanonicalOrder(t *testing.T) {
	z := mustParse(t, head+
		"b A 192.0.2.1\nB.a A 192.0.2.1\nz.a A 192.0.2.1\n\\000.a A 192.0.2.1\n*.c TXT x\nyljkjljk.a A 192.0.2.1\n",
		"example.com.")
	nodes := z.Nodes()
	for i := 1; i < len(nodes); i++ {
		a, b := z.NodeName(&nodes[i-1]), z.NodeName(&nodes[i])
		if CompareCanonical(a, b) >= 0 {
			t.Errorf("node %d %s does not sort before node %d %s", i-1, wireString(a), i, wireString(b))
		}
	}
	pred := func(name string) string {
		w := wire(t, name)
		i := sort.Search(len(nodes), func(i int) bool { return CompareCanonical(z.NodeName(&nodes[i]), w) > 0 })
		return wireString(z.NodeName(&nodes[i-1]))
	}
	for q, want := range map[string]string{
		"aa.example.com.":           "z.a.example.com.",
		"a.example.com.":            "a.example.com.",
		"c.a.example.com.":          "b.a.example.com.",
		"zz.example.com.":           "ns1.example.com.",
		"d.example.com.":            "*.c.example.com.",
		"0.example.com.":            "example.com.",
		"x.yljkjljk.a.example.com.": "yljkjljk.a.example.com.",
	} {
		if got := pred(q); got != want {
			t.Errorf("predecessor of %s = %s, want %s", q, got, want)
		}
	}
}

// suffixHashes returns the hash of every suffix of a wire name computed in
// one right-to-left pass with HashLabel, as the answer engine does:
// hs[k] is the hash of the name with k leftmost labels stripped.
func suffixHashes(w []byte) []uint32 {
	offs := labelOffsets(w)
	hs := make([]uint32, len(offs)+1)
	hs[len(offs)] = HashSeed
	for k := len(offs) - 1; k >= 0; k-- {
		o := offs[k]
		hs[k] = HashLabel(hs[k+1], w[o:o+int(w[o])+1])
	}
	return hs
}

func TestFindFindChildSetOf(t *testing.T) {
	var sb strings.Builder
	sb.WriteString(head)
	sb.WriteString("*.wild TXT any\nwild2 TXT x\n")
	// Enough names that the open-addressing index has long probe runs.
	for i := range 3000 {
		sb.WriteString("h" + strconv.Itoa(i) + ".hosts A 192.0.2.7\n")
	}
	z := mustParse(t, sb.String(), "example.com.")
	for i := range 3000 {
		w := wire(t, "H"+strconv.Itoa(i)+".hosts.example.com.")
		hs := suffixHashes(w)
		if hs[0] != hashName(w) {
			t.Fatalf("HashLabel pass and hashName disagree for %s", wireString(w))
		}
		n := z.Find(w, hs[0])
		if n == None || string(z.NodeName(&z.Nodes()[n])) != string(w) {
			t.Fatalf("Find(%s) = %d", wireString(w), n)
		}
		nd := &z.Nodes()[n]
		if si := z.SetOf(nd, dns.TypeA); si == None || z.Sets()[si].Type != dns.TypeA {
			t.Fatalf("SetOf(%s, A) = %d", wireString(w), si)
		}
		if si := z.SetOf(nd, dns.TypeAAAA); si != None {
			t.Fatalf("SetOf(%s, AAAA) = %d, want None", wireString(w), si)
		}
		// The parent is an empty non-terminal: found, but with no RRsets.
		if p := z.Find(w[w[0]+1:], hs[1]); p == None || z.Nodes()[p].Flags&FlagEmpty == 0 || z.SetOf(&z.Nodes()[p], dns.TypeA) != None {
			t.Fatalf("parent of %s: %d", wireString(w), p)
		}
	}
	for _, absent := range []string{"h3000.hosts.example.com.", "hosts.example.org.", "example.", ".", "x.h1.hosts.example.com."} {
		w := wire(t, absent)
		if n := z.Find(w, hashName(w)); n != None {
			t.Errorf("Find(%s) = %d, want None", absent, n)
		}
	}

	star := []byte{1, '*'}
	for _, c := range []struct {
		parent string
		found  bool
	}{{"wild.example.com.", true}, {"wild2.example.com.", false}, {"example.com.", false}, {"hosts.example.com.", false}} {
		pw := wire(t, c.parent)
		p := z.Find(pw, hashName(pw))
		w := z.FindChild(star, p, hashName(pw))
		if (w != None) != c.found {
			t.Errorf("FindChild(*, %s) = %d, want found=%v", c.parent, w, c.found)
			continue
		}
		if c.found && wireString(z.NodeName(&z.Nodes()[w])) != "*."+c.parent {
			t.Errorf("FindChild(*, %s) = %s", c.parent, wireString(z.NodeName(&z.Nodes()[w])))
		}
	}
	// FindChild with an ordinary label finds that child.
	pw := wire(t, "hosts.example.com.")
	p := z.Find(pw, hashName(pw))
	if c := z.FindChild([]byte("\x04h123"), p, hashName(pw)); c == None || wireString(z.NodeName(&z.Nodes()[c])) != "h123.hosts.example.com." {
		t.Errorf("FindChild(h123, hosts) = %d", c)
	}
}

// TestFindAllocatesNothing: the lookups run per packet.
func TestFindAllocatesNothing(t *testing.T) {
	z := mustParse(t, head+"*.wild TXT any\n", "example.com.")
	w := wire(t, "ns1.example.com.")
	h := hashName(w)
	pw := wire(t, "wild.example.com.")
	ph := hashName(pw)
	p := z.Find(pw, ph)
	allocs := testing.AllocsPerRun(100, func() {
		n := z.Find(w, h)
		_ = z.SetOf(&z.Nodes()[n], dns.TypeA)
		_ = z.FindChild([]byte{1, '*'}, p, ph)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per lookup", allocs)
	}
}

func TestMemoryBytes(t *testing.T) {
	z := mustParse(t, head+"www A 192.0.2.2\n", "example.com.")
	if m := z.MemoryBytes(); m < len(z.Wire())+len(z.Names()) || m > 1<<16 {
		t.Errorf("MemoryBytes = %d for a 4-record zone", m)
	}
}

// TestMemoryBytesElementSizes: MemoryBytes counts each arena element at
// its real size.
func TestMemoryBytesElementSizes(t *testing.T) {
	z := mustParse(t, head+"www A 192.0.2.2\n*.w TXT x\nsub NS ns.sub\nns.sub A 192.0.2.3\n", "example.com.")
	want := len(z.names) + len(z.nodes)*int(reflect.TypeFor[Node]().Size()) +
		len(z.sets)*int(reflect.TypeFor[RRset]().Size()) + len(z.blocks)*int(reflect.TypeFor[Block]().Size()) +
		len(z.wire) + len(z.patches)*2 + len(z.trims)*int(reflect.TypeFor[Trim]().Size()) +
		len(z.index)*int(reflect.TypeFor[slot]().Size()) + 8*len(z.upd.refBase)
	if len(z.upd.refBase) == 0 {
		t.Error("no reverse index of the NS target ns.sub")
	}
	// The glue below sub is kept apart from the answer blocks (see kept).
	if k := z.kept; k != nil {
		want += len(k.blocks)*int(reflect.TypeFor[Block]().Size()) + len(k.wire) + len(k.patches)*2 +
			len(k.trims)*int(reflect.TypeFor[Trim]().Size()) + len(k.sets)*int(reflect.TypeFor[keptSet]().Size())
	} else {
		t.Error("the glue below sub is not kept")
	}
	if got := z.MemoryBytes(); got != want {
		t.Errorf("MemoryBytes = %d, want %d", got, want)
	}
}

// TestLoadManyWarningsNameTheirLines: each of thousands of warnings names
// its own line (the lines are found in one pass, not one pass each).
func TestLoadManyWarningsNameTheirLines(t *testing.T) {
	var sb strings.Builder
	sb.WriteString(head)
	const n = 5000
	for i := range n {
		h := "h" + strconv.Itoa(i)
		sb.WriteString(h + " 300 A 192.0.2.1\n" + h + " 600 A 192.0.2.2\n")
	}
	z := mustParse(t, sb.String(), "example.com.")
	if len(z.Warnings()) != n {
		t.Fatalf("%d warnings, want %d", len(z.Warnings()), n)
	}
	// Warnings come in canonical order of the names; h<i>'s second record
	// is on line 6+2i.
	for _, w := range z.Warnings() {
		var i int
		rest, _ := strings.CutPrefix(w, "mem.zone:")
		line, _, _ := strings.Cut(rest, ":")
		l, _ := strconv.Atoi(line)
		name := w[strings.Index(w, " of h")+4:]
		name = name[:strings.IndexByte(name, '.')]
		i, _ = strconv.Atoi(strings.TrimPrefix(name, "h"))
		if l != 6+2*i {
			t.Fatalf("warning %q: line %d, want %d", w, l, 6+2*i)
		}
	}
}

// labelOffsets returns the offset of each label of a wire name, leftmost
// first, without the root.
func labelOffsets(w []byte) []int {
	var offs []int
	for i := 0; w[i] != 0; i += int(w[i]) + 1 {
		offs = append(offs, i)
	}
	return offs
}
