package zone

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// parsedText is what a parse stage left in a builder, for comparing the
// fast path with miekg/dns: names in builder order and each record with
// its rdata.
func parsedText(b *builder) []string {
	out := make([]string, 0, len(b.names)+len(b.recs)+1)
	for _, w := range b.names {
		out = append(out, "name "+hex.EncodeToString(w))
	}
	for i := range b.recs {
		r := &b.recs[i]
		out = append(out, fmt.Sprintf("rec %d %d %d %d %d %x", r.node, r.typ, r.covered, r.ttl, r.ord, b.rdataOf(r)))
	}
	out = append(out, fmt.Sprintf("soa %v %d", b.sawSOA, b.soaMinimum))
	return out
}

// parseBoth parses text with the fast path and with miekg/dns alone under
// origin and checks that whatever the fast path accepted, miekg/dns
// accepted too, with the same names, records and rdata. It returns how
// many records the fast path read itself and whether miekg/dns accepted
// the text.
func parseBoth(t *testing.T, text, origin string) (fast int, ok bool) {
	t.Helper()
	apex, err := toWire(origin)
	if err != nil {
		t.Fatal(err)
	}
	newB := func() *builder {
		b := &builder{origin: origin, file: "fast.zone", apex: lowerWire(apex)}
		b.initIndex(16)
		return b
	}
	fb, mb := newB(), newB()
	fast, ferr := fb.parseFastCount(strings.NewReader(text), origin)
	merr := mb.parse(strings.NewReader(text), origin)
	if ferr != nil {
		// The caller parses the text again with miekg/dns alone.
		if merr != nil && testing.Verbose() {
			t.Logf("miekg/dns: %v", merr)
		}
		return fast, merr == nil
	}
	if merr != nil {
		t.Fatalf("fast path accepted what miekg/dns refuses (%v):\n%s", merr, text)
	}
	got, want := parsedText(fb), parsedText(mb)
	if !equalStrings(got, want) {
		t.Fatalf("fast path and miekg/dns differ on\n%s\nfast:  %q\nmiekg: %q", text, got, want)
	}
	return fast, true
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// fastSeeds are lines of every type the fast path reads and of forms
// next to them it must leave to miekg/dns or read the same.
var fastSeeds = []string{
	"www 60 IN A 192.0.2.1",
	"www IN 60 A 192.0.2.1 ; comment",
	"  A 192.0.2.1",
	"\t3600 AAAA 2001:db8::1",
	"WWW.Example.COM. 1h2m a 010.0.0.1",
	"x 60 A 1.2.3.4 5.6.7.8",
	"x 60 A 1.2.3",
	"x 60 AAAA ::ffff:1.2.3.4",
	"x 60 AAAA 2001:db8::1%eth0",
	"@ 60 NS ns1",
	"@ 60 NS ns1.example.net.",
	"@ 60 NS .",
	"@ 60 NS a..b",
	"sub 60 NS @",
	"@ 60 MX 10 mail",
	"@ 60 MX 65536 mail",
	"c 60 CNAME target.example.org.",
	"@ 60 SOA ns1 hostmaster 2024010101 1800 900 604800 86400",
	"@ 60 SOA ns1 hostmaster 2024010101 1h 15m 1w 1d",
	"@ 60 SOA ns1 hostmaster 1h 1 1 1 1",
	"d 60 DS 12345 13 2 0000000000000000000000000000000000000000000000000000000278dde6c4",
	"d 60 DS 12345 13 2 00000000000000000000000000000000 00000000000000000000000278dde6c4",
	"d 60 DS 12345 13 2 0",
	"d 60 DS 12345 RSASHA256 2 00",
	"@ 60 DNSKEY 257 3 13 mDhdK/nYkJP5I4/qQI+XX8FUC3AGRXY/RCva16qh/FU6nBZhhFBMD+4Cup9r7KFZ797E1wUJ5Mpq0Jxx3N3x2w==",
	"@ 60 DNSKEY 257 3 13 mDhdK/nYkJP5I4/qQI+X X8FUC3AGRXY/RCva16qh/FU6nBZhhFBMD+4Cup9r7KFZ797E1wUJ5Mpq0Jxx3N3x2w==",
	"@ 60 DNSKEY 257 3 13 mDhdK===",
	"@ 60 RRSIG SOA 13 2 86400 20270102215351 20261205215351 62413 example.com. 6lQ+pYltnN4TEgD7rXHJBo5MciWJ6EZnDRq0fYgJ89ogfflgJn7zQhWOrrNOmO1DGl0TL99Dy6nZooJAMwo5FQ==",
	"@ 60 RRSIG TYPE65534 13 2 86400 1 4294967295 62413 @ AAAA",
	"@ 60 RRSIG A 13 2 86400 21060207062816 19691231235959 62413 @ AAAA",
	"@ 60 RRSIG A 13 2 86400 99991231235959 00000000000001 62413 @ AAAA",
	"@ 60 RRSIG A 13 2 86400 20240230000000 20240229000000 62413 @ AAAA",
	"@ 60 RRSIG A 13 2 86400 20241301000000 20240229240000 62413 @ AAAA",
	"@ 60 NSEC next.example.com. A NS SOA RRSIG NSEC DNSKEY TYPE65534",
	"@ 60 NSEC next A NS A",
	"@ 60 NSEC next",
	"3ni5kvk2jm3slv8gv2bh03b54q3jnqee 86400 IN NSEC3 1 1 0 -  3ni6bhpakfdnba7hd025cu65mnt7nkdp NS SOA RRSIG DNSKEY NSEC3PARAM ",
	"h 60 NSEC3 1 0 10 AABBCCDD 3NI6BHPAKFDNBA7HD025CU65MNT7NKDP A RRSIG",
	"h 60 NSEC3 1 0 10 AABBCCD 3ni6bhpakfdnba7hd025cu65mnt7nkdp",
	"h 60 NSEC3 1 0 10 - 3ni6bhpakfdnba7hd025cu65mnt7nkd",
	"@ 60 NSEC3PARAM 1 0 0 -",
	"@ 60 NSEC3PARAM 1 0 10 aabb",
	"x 60 TXT hello",
	"x 60 CH A 1.2.3.4",
	"x 60 HS A 1.2.3.4",
	"x A 1.2.3.4",
	"x 60 60 A 1.2.3.4",
	"x IN IN A 1.2.3.4",
	"outside.example.net. 60 A 192.0.2.1",
	"x 60 A",
	"x 60 NS",
	"$TTL 1h",
	"$ORIGIN sub",
	"$ORIGIN other.example.",
	"$TTL",
	"$GENERATE 1-3 g$ A 192.0.2.1",
	"x 60 A 192.0.2.1 ; (comment",
	"x 60 TXT ( \"a\" )",
}

// FuzzFastLine parses arbitrary text after a few lines of state with the
// fast path and with miekg/dns alone: the fast path must read only what
// miekg/dns accepts, and give the same names, records and rdata.
func FuzzFastLine(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add(s + "\n")
		f.Add("$TTL 300\n" + s + "\n  60 A 192.0.2.9\n")
		f.Add(s + "\nx 60 TXT \"quoted\"\n  A 192.0.2.1\n" + s + "\n")
	}
	f.Fuzz(func(t *testing.T, text string) {
		if strings.Contains(strings.ToUpper(text), "$INCLUDE") {
			return
		}
		for _, pre := range []string{"", "$TTL 300\n", "@ 3600 IN SOA ns1 h 1 2 3 4 5\n"} {
			parseBoth(t, pre+text, "example.com.")
		}
	})
}

// TestFastSeeds runs the seeds alone and after each kind of state.
func TestFastSeeds(t *testing.T) {
	for _, s := range fastSeeds {
		for _, pre := range []string{"", "$TTL 300\n", "@ 3600 IN SOA ns1 h 1 2 3 4 5\n", "$ORIGIN sub.example.com.\nw 7 A 192.0.2.7\n"} {
			parseBoth(t, pre+s+"\n", "example.com.")
			parseBoth(t, pre+s, "example.com.") // no final newline
		}
	}
}

// TestFastRecords generates records of every type the fast path reads, in
// every form it reads (relative, absolute and @ names in any case, TTLs
// with units, class and TTL in either order or left out, lines starting
// with a blank, comments), interleaved with lines it leaves to miekg/dns
// (quoted and multi-line records, records of other types, $ORIGIN and
// $TTL), and requires that it read every record it should and that the
// result is miekg/dns's.
func TestFastRecords(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 14))
		var w strings.Builder
		want := 0 // records the fast path must read
		w.WriteString("$TTL 3600\n")
		b64 := func(n int) string {
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(rng.IntN(256))
			}
			s := base64.StdEncoding.EncodeToString(p)
			if rng.IntN(4) == 0 && len(s) > 8 {
				s = s[:8] + " " + s[8:] // split, as some signers write
			}
			return s
		}
		hexs := func(n int) string {
			p := make([]byte, n)
			for i := range p {
				p[i] = byte(rng.IntN(256))
			}
			s := hex.EncodeToString(p)
			if rng.IntN(2) == 0 {
				s = strings.ToUpper(s)
			}
			return s
		}
		caseMix := func(s string) string {
			p := []byte(s)
			for i := range p {
				if rng.IntN(3) == 0 && p[i] >= 'a' && p[i] <= 'z' {
					p[i] -= 32
				}
			}
			return string(p)
		}
		name := func() string {
			switch rng.IntN(6) {
			case 0:
				return "@"
			case 1:
				return caseMix(fmt.Sprintf("n%d.example.com.", rng.IntN(50)))
			case 2:
				return strings.Repeat("l", 1+rng.IntN(63)) + "." + strings.Repeat("m", 1+rng.IntN(63))
			case 3:
				return "*.w" + fmt.Sprint(rng.IntN(5))
			}
			return caseMix(fmt.Sprintf("h%d.s-%d_x", rng.IntN(100), rng.IntN(3)))
		}
		head := func() string {
			ttls := []string{"", " 60", " 1h30m", " 2W", " 0", " 4294967295"}
			ttl := ttls[rng.IntN(len(ttls))]
			switch rng.IntN(3) {
			case 0:
				return ttl + " IN"
			case 1:
				if ttl != "" {
					return " in" + ttl
				}
			}
			return ttl
		}
		types := []string{"A", "NS", "MX", "TXT", "AAAA", "SRV", "DS", "RRSIG", "NSEC", "DNSKEY", "NSEC3", "NSEC3PARAM", "CNAME", "CAA", "SOA"}
		hadOwner := false
		for range 600 {
			owner := name()
			if rng.IntN(4) == 0 && hadOwner {
				owner = ""
			}
			if owner == "" {
				owner = []string{" ", "\t", "  \t"}[rng.IntN(3)]
			} else {
				owner += []string{" ", "\t"}[rng.IntN(2)]
			}
			line := owner + head() + " "
			fast := true
			switch k := rng.IntN(40); {
			case k == 0:
				fmt.Fprintf(&w, "$ORIGIN %s\n", []string{"sub", "example.com.", "deep.sub.example.com.", "@"}[rng.IntN(4)])
				continue
			case k == 1:
				fmt.Fprintf(&w, "$TTL %d\n", rng.IntN(100000))
				continue
			case k == 2:
				w.WriteString("\n; a comment line\n   \n")
				continue
			case k == 3:
				line += "TXT \"a (quoted) string\" ; then a comment"
				fast = false
			case k == 4:
				line += "SOA ( ns1 hostmaster\n  1 2 3 4 5 )"
				fast = false
			default:
				switch typ := types[rng.IntN(len(types))]; typ {
				case "A":
					line += caseMix("a") + fmt.Sprintf(" %d.%d.%d.%d", rng.IntN(256), rng.IntN(256), rng.IntN(256), rng.IntN(256))
				case "AAAA":
					line += fmt.Sprintf("AAAA 2001:db8:%x::%x", rng.IntN(65536), rng.IntN(65536))
				case "NS", "CNAME":
					line += typ + " " + name()
				case "MX":
					line += fmt.Sprintf("MX %d %s", rng.IntN(65536), name())
				case "SOA":
					line += fmt.Sprintf("SOA %s %s %d %d 1h 1w %d", name(), name(), rng.Uint32(), rng.IntN(100000), rng.IntN(100000))
				case "DS":
					line += fmt.Sprintf("DS %d %d %d %s", rng.IntN(65536), rng.IntN(256), rng.IntN(256), hexs(1+rng.IntN(48)))
				case "DNSKEY":
					line += fmt.Sprintf("DNSKEY %d 3 %d %s", rng.IntN(65536), rng.IntN(256), b64(1+rng.IntN(300)))
				case "RRSIG":
					tm := func() string {
						if rng.IntN(3) == 0 {
							return fmt.Sprint(rng.Uint32())
						}
						return fmt.Sprintf("%04d%02d%02d%02d%02d%02d", 1900+rng.IntN(300), 1+rng.IntN(12), 1+rng.IntN(28), rng.IntN(24), rng.IntN(60), rng.IntN(60))
					}
					line += fmt.Sprintf("RRSIG %s %d %d %d %s %s %d %s %s", []string{"A", "ns", "TYPE65000", "NSEC3", "TXT"}[rng.IntN(5)],
						rng.IntN(256), rng.IntN(256), rng.Uint32(), tm(), tm(), rng.IntN(65536), name(), b64(1+rng.IntN(100)))
				case "NSEC", "NSEC3":
					var bm []string
					tp := 0
					for range rng.IntN(8) {
						tp += 1 + rng.IntN(300)
						if tp > 65535 {
							break
						}
						if s := typeName(uint16(tp)); rng.IntN(2) == 0 {
							bm = append(bm, s)
						} else {
							bm = append(bm, fmt.Sprintf("TYPE%d", tp))
						}
					}
					if typ == "NSEC" {
						line += "NSEC " + name() + " " + strings.Join(bm, " ")
					} else {
						salt := "-"
						if rng.IntN(2) == 0 {
							salt = hexs(rng.IntN(20) + 1)
						}
						var nh [20]byte
						for i := range nh {
							nh[i] = byte(rng.IntN(256))
						}
						line += fmt.Sprintf("NSEC3 1 %d %d %s %s %s", rng.IntN(2), rng.IntN(100), salt, caseMix(strings.ToLower(base32HexNoPad(nh[:]))), strings.Join(bm, " "))
					}
				case "NSEC3PARAM":
					line += fmt.Sprintf("NSEC3PARAM 1 0 %d %s", rng.IntN(65536), []string{"-", "aabbcc"}[rng.IntN(2)])
				default:
					line += typ + " 0 issue \"ca.example\""
					if typ == "SRV" {
						line = owner + head() + " SRV 1 2 3 target"
					}
					fast = false
				}
			}
			if rng.IntN(5) == 0 {
				line += " ; a comment"
			}
			w.WriteString(line + "\n")
			hadOwner = true
			if fast {
				want++
			}
		}
		text := w.String()
		fast, ok := parseBoth(t, text, "example.com.")
		if !ok {
			t.Fatalf("seed %d: miekg/dns refused the generated zone", seed)
		}
		if fast != want {
			t.Errorf("seed %d: the fast path read %d records, want %d", seed, fast, want)
		}
	}
}

// base32HexNoPad is NSEC3's encoding of a hash.
func base32HexNoPad(p []byte) string {
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUV"
	var out bytes.Buffer
	var acc uint64
	bitsN := 0
	for _, c := range p {
		acc = acc<<8 | uint64(c)
		bitsN += 8
		for bitsN >= 5 {
			out.WriteByte(digits[acc>>(bitsN-5)&31])
			bitsN -= 5
		}
	}
	if bitsN > 0 {
		out.WriteByte(digits[acc<<(5-bitsN)&31])
	}
	return out.String()
}
