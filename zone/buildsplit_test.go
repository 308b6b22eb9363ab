package zone

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// walkText lists what Walk yields, one record a line, for comparing zones.
func walkText(t testing.TB, z *Zone) []string {
	t.Helper()
	var out []string
	err := z.Walk(func(r *Record) error {
		out = append(out, fmt.Sprintf("%s %d %d %x", wireString(r.Owner), r.TTL, r.Type, r.Data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sameLoad checks that a zone parsed in chunks (z, err) is the zone of the
// same text parsed whole (wz, werr): the same error, to the line and
// column, or the same table byte for byte, the same records through Walk
// and the same warnings.
func sameLoad(t *testing.T, what string, z *Zone, err error, wz *Zone, werr error) {
	t.Helper()
	if (err == nil) != (werr == nil) || err != nil && err.Error() != werr.Error() {
		t.Fatalf("%s: error %v, parsed whole: %v", what, err, werr)
	}
	if err != nil {
		return
	}
	if got, want := tableHash(z), tableHash(wz); got != want {
		t.Errorf("%s: table digest %s, parsed whole %s", what, got, want)
	}
	if got, want := walkText(t, z), walkText(t, wz); !slices.Equal(got, want) {
		t.Errorf("%s: Walk yields %d records, parsed whole %d (or they differ)", what, len(got), len(want))
	}
	if got, want := z.Warnings(), wz.Warnings(); !slices.Equal(got, want) {
		t.Errorf("%s: warnings %q, parsed whole %q", what, got, want)
	}
}

// trickyZone writes a zone under tricky.test. that puts in the way of a
// split what the master file format allows: $ORIGIN changes, relative and
// absolute, $TTL changes (or, with noTTL, no $TTL at all, so that a record
// without a TTL takes the previous record's), records that omit the TTL
// and the class or give them in either order, TTLs with units, lines that
// start with a blank and so continue the previous owner, records over
// several lines in parentheses (their lines starting with a blank or
// not), comments and quoted strings holding
// parentheses, semicolons and quotes, blank and comment lines, RRsets
// spread over the file, RRSIGs, and, with inc, $INCLUDEs of a file that
// changes its own origin and TTL. The output is a pure function of its
// arguments.
func trickyZone(seed uint64, n int, noTTL bool, inc string) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	var w bytes.Buffer
	w.WriteString("; a zone to split\n$ORIGIN tricky.test.\n")
	if !noTTL {
		w.WriteString("$TTL 3600\n")
	}
	w.WriteString("@ 3600 IN SOA ns1 hostmaster ( 2024010101 ; serial (the \"first\n" +
		"\t7200 3600 ; refresh retry ) ;\n\t1209600 300 )\n@ 3600 NS ns1\nns1 3600 A 192.0.2.1\n")
	depth := 0
	ttl := func() string {
		switch rng.IntN(4) {
		case 0:
			return fmt.Sprintf(" %d", 60+rng.IntN(4)*60)
		case 1:
			return " 1h"
		case 2:
			return " IN 300"
		}
		if noTTL {
			return " IN" // the previous record's TTL
		}
		return ""
	}
	for i := range n {
		name := fmt.Sprintf("h%d", rng.IntN(n/4+1))
		switch k := rng.IntN(20); {
		case k == 0 && depth < 3:
			fmt.Fprintf(&w, "$ORIGIN s%d\n", rng.IntN(3))
			depth++
		case k == 0 || k == 1:
			w.WriteString("$ORIGIN tricky.test. ; back to the apex\n")
			depth = 0
		case k == 2 && !noTTL:
			fmt.Fprintf(&w, "$TTL %d\n", 100+rng.IntN(50))
		case k == 3:
			fmt.Fprintf(&w, "%s%s A 192.0.2.%d\n  AAAA 2001:db8::%x\n\tTXT \"continued\"\n", name, ttl(), rng.IntN(256), i)
		case k == 4:
			fmt.Fprintf(&w, "t%d%s TXT ( \"a;b(c\" ; a comment )\n    \"d)e\\\"f\" )\n", i, ttl())
		case k == 5:
			fmt.Fprintf(&w, "%s%s A 192.0.2.%d\n%s RRSIG A 8 3 3600 20300101000000 20200101000000 12345 tricky.test. (\n"+
				"    aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd29y\n    aGVsbG8h )\n", name, ttl(), rng.IntN(256), name)
		case k == 6:
			w.WriteString("\n; ( a comment with a parenthesis and a \" quote\n\n")
		case k == 7 && inc != "":
			if rng.IntN(2) == 0 {
				fmt.Fprintf(&w, "$INCLUDE %s\n", inc)
			} else {
				fmt.Fprintf(&w, "$INCLUDE %s i%d.tricky.test.\n", inc, i)
			}
		case k == 8:
			fmt.Fprintf(&w, "@%s MX %d mail%d\n", ttl(), rng.IntN(20), rng.IntN(5))
		case k == 9:
			fmt.Fprintf(&w, "%s%s A 192.0.2.%d ; same name again, maybe another TTL\n", name, ttl(), rng.IntN(256))
		case k == 10:
			// Lines inside parentheses that start at the first column.
			fmt.Fprintf(&w, "w%d%s TXT (\nword%d ; comment\nmore \"x\" )\n", i, ttl(), i)
		default:
			fmt.Fprintf(&w, "%s%s A 10.%d.%d.%d\n", name, ttl(), i>>16&255, i>>8&255, i&255)
		}
	}
	return w.Bytes()
}

// includedText is the file trickyZone $INCLUDEs: it changes its own origin
// and default TTL, which must not reach the including file.
const includedText = "$TTL 42\nin1 A 192.0.2.42\n$ORIGIN deeper.tricky.test.\nin2 A 192.0.2.43\n  AAAA 2001:db8::43\n"

func writeTricky(t *testing.T, dir string) string {
	t.Helper()
	inc := filepath.Join(dir, "inc.zone")
	if err := os.WriteFile(inc, []byte(includedText), 0o644); err != nil {
		t.Fatal(err)
	}
	return inc
}

// TestParallelParseIdentical parses zones whole and in 2 to 9 chunks and
// requires the same zone: the fixtures, both root zone snapshots, the
// generated delegations and generated zones with splits at every kind of
// place. For the generated zones it also checks that the text was really
// cut as asked, so that the comparison is not of two whole parses.
func TestParallelParseIdentical(t *testing.T) {
	dir := t.TempDir()
	inc := writeTricky(t, dir)
	type text struct {
		name, origin, file string
		data               []byte
		mustCut            bool
	}
	var texts []text
	for _, f := range []struct{ origin, file string }{
		{".", rootFile},
		{".", "/work/shared/zones/root.zone"},
		{"big.test.", "testdata/identity/big.test.zone"},
		{"chain.test.", "testdata/identity/chain.test.zone"},
		{"wild.test.", "testdata/identity/wild.test.zone"},
		{"deleg.test.", "testdata/identity/deleg.test.zone"},
		{"example.", "testdata/identity/example.zone"},
		{"walk.test.", "testdata/walk/walk.test.zone"},
		{"inc.test.", "testdata/include/main.zone"},
	} {
		data, err := os.ReadFile(f.file)
		if os.IsNotExist(err) && strings.HasPrefix(f.file, "/") {
			continue // the shared copy of the root zone is not on every machine
		}
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, text{f.file, f.origin, f.file, data, false})
	}
	var deleg bytes.Buffer
	dw := bufio.NewWriter(&deleg)
	delegationZone(dw, 3000)
	dw.Flush()
	texts = append(texts, text{"delegations", "deleg.", "deleg.zone", deleg.Bytes(), true})
	// Chunks that outgrow their regions of the record and rdata arrays
	// (see parseChunks): a $GENERATE line makes a thousand records, and
	// under a long origin a short relative name is long rdata.
	var gen, long bytes.Buffer
	gen.WriteString(head)
	long.WriteString("$ORIGIN " + strings.Repeat(strings.Repeat("o", 60)+".", 3) + "\n" + head)
	for i := range 4000 {
		fmt.Fprintf(&gen, "h%d A 192.0.2.%d\n", i, i%256)
		fmt.Fprintf(&long, "n%d NS a\n", i)
		if i == 2500 {
			gen.WriteString("$GENERATE 1-1000 g$ A 192.0.2.1\n")
		}
	}
	texts = append(texts, text{"generate", "example.com.", "gen.zone", gen.Bytes(), true},
		text{"long names", strings.Repeat(strings.Repeat("o", 60)+".", 3), "long.zone", long.Bytes(), true})
	for seed := range uint64(4) {
		for _, noTTL := range []bool{false, true} {
			name := fmt.Sprintf("tricky seed %d noTTL %v", seed, noTTL)
			texts = append(texts, text{name, "tricky.test.", filepath.Join(dir, "tricky.zone"), trickyZone(seed, 3000, noTTL, inc), true})
		}
	}
	for _, tx := range texts {
		wz, werr := parseChunked(tx.data, tx.origin, tx.file, 1)
		if werr != nil && tx.mustCut {
			t.Fatalf("%s: %v", tx.name, werr)
		}
		for k := 2; k <= 9; k++ {
			z, err := parseChunked(tx.data, tx.origin, tx.file, k)
			sameLoad(t, fmt.Sprintf("%s in %d chunks", tx.name, k), z, err, wz, werr)
			if _, chunks, _ := scanText(bytes.NewReader(tx.data), int64(len(tx.data)), k, tx.origin); tx.mustCut && len(chunks) != k {
				t.Errorf("%s: cut in %d chunks, want %d", tx.name, len(chunks), k)
			}
		}
	}
}

// TestParallelLoadFileIdentical is TestParallelParseIdentical for files
// read in chunks from disk (LoadFile's way), with $INCLUDEs.
func TestParallelLoadFileIdentical(t *testing.T) {
	dir := t.TempDir()
	inc := writeTricky(t, dir)
	path := filepath.Join(dir, "tricky.zone")
	if err := os.WriteFile(path, trickyZone(7, 5000, false, inc), 0o644); err != nil {
		t.Fatal(err)
	}
	wz, werr := loadFile("tricky.test.", path, 1, 0)
	if werr != nil {
		t.Fatal(werr)
	}
	for k := 2; k <= 5; k++ {
		z, err := loadFile("tricky.test.", path, k, 0)
		sameLoad(t, fmt.Sprintf("%d chunks", k), z, err, wz, werr)
	}
}

// TestParallelParseErrors puts errors of each kind in the later chunks of
// a generated zone and requires the error a whole parse gives, to the
// file, line and column, and that line to be the one the error was put on:
// an error of the parser (line and column from miekg/dns, offset by the
// chunk's first line and by the $TTL line its parser is given first), an
// error in a record the parse stage refuses (located by ordinal, offset by
// the records of the chunks before) and one the build finds (by ordinal
// in the whole zone).
func TestParallelParseErrors(t *testing.T) {
	dir := t.TempDir()
	inc := writeTricky(t, dir)
	file := filepath.Join(dir, "bad.zone")
	for _, tc := range []struct {
		name, bad string
		line      int // the error's line in bad
		msg       string
	}{
		{"parser", "bad 60 A 192.0.2.300\n", 1, `bad A A: "192.0.2.300"`},
		{"parser in parentheses", "bad 60 TXT ( \"x\"\n  \"y\" ) )\n", 2, "extra closing brace"},
		{"record", "outside.example. 60 A 192.0.2.1\n", 1, "outside.example. is outside the zone"},
		{"build", "$ORIGIN tricky.test.\ncn 60 CNAME h1\ncn 60 A 192.0.2.1\n", 2, "CNAME at cn.tricky.test. beside other data (A)"},
	} {
		for _, noTTL := range []bool{false, true} {
			for _, at := range []float64{0.55, 0.8, 0.97} {
				good := trickyZone(11, 3000, noTTL, inc)
				cut := int(float64(len(good)) * at)
				cut = bytes.IndexByte(good[cut:], '\n') + cut + 1
				// A line that starts a record, so that the bad one is not
				// read as a continuation of the one before it.
				for good[cut] == ' ' || good[cut] == '\t' || good[cut] == '\n' {
					cut = bytes.IndexByte(good[cut:], '\n') + cut + 1
				}
				data := slices.Concat(good[:cut], []byte(tc.bad), good[cut:])
				line := bytes.Count(data[:cut], []byte{'\n'}) + tc.line
				_, werr := parseChunked(data, "tricky.test.", file, 1)
				le, ok := werr.(*LoadError)
				if !ok {
					t.Fatalf("%s: parsed whole: %v", tc.name, werr)
				}
				if le.File != file || le.Line != line || !strings.Contains(le.Msg, tc.msg) {
					t.Errorf("%s at %.2f: parsed whole: %v, want line %d %q", tc.name, at, werr, line, tc.msg)
				}
				for k := 2; k <= 6; k++ {
					z, err := parseChunked(data, "tricky.test.", file, k)
					sameLoad(t, fmt.Sprintf("%s at %.2f noTTL %v in %d chunks", tc.name, at, noTTL, k), z, err, nil, werr)
				}
			}
		}
	}
}

// FuzzParallelParse parses arbitrary text whole and in chunks: the result
// must be the same, the error to its line and column or the table byte for
// byte.
func FuzzParallelParse(f *testing.F) {
	f.Add([]byte(head + "www A 192.0.2.2\n  AAAA 2001:db8::1\n$ORIGIN sub.example.com.\nx 60 A 192.0.2.3\n"))
	f.Add([]byte("$ORIGIN example.com.\n@ 60 SOA ( ns1 h 1 2 3\n 4 5 )\n@ 60 NS ns1\nx 60 TXT \"a;(\"\ny IN 60 A 192.0.2.1\n  A 192.0.2.2\n"))
	f.Add(trickyZone(1, 60, false, ""))
	f.Add(trickyZone(2, 60, true, ""))
	f.Fuzz(func(t *testing.T, data []byte) {
		if bytes.Contains(bytes.ToUpper(data), []byte("$INCLUDE")) {
			return // would read files; the include cases are TestParallelLoadFileIdentical's
		}
		wz, werr := parseChunked(data, "example.com.", "fuzz.zone", 1)
		for _, k := range []int{2, 3, 7} {
			z, err := parseChunked(data, "example.com.", "fuzz.zone", k)
			sameLoad(t, fmt.Sprintf("%d chunks", k), z, err, wz, werr)
		}
	})
}
