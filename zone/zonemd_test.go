package zone

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ringdns/ringdns/internal/testenv"
)

// TestVerifyZONEMD: the examples of RFC 8976 appendix A (A.4's signatures
// validate: ldns-verify-zone -ZZ -t 20210201000000 accepts it), zones signed with
// a ZONEMD by ldns-signzone (NSEC3 with SHA-384, NSEC with SHA-512, the
// RRSIG over the ZONEMD left out of the digest), and what must not
// verify.
func TestVerifyZONEMD(t *testing.T) {
	a1, err := os.ReadFile("testdata/zonemd/rfc8976-a1.zone")
	if err != nil {
		t.Fatal(err)
	}
	a3, err := os.ReadFile("testdata/zonemd/rfc8976-a3.zone")
	if err != nil {
		t.Fatal(err)
	}
	signed, err := os.ReadFile("testdata/zonemd/walk-nsec-sha512.zone")
	if err != nil {
		t.Fatal(err)
	}
	// dropLines removes the lines of a text that hold any of the given
	// fragments.
	dropLines := func(text []byte, frags ...string) string {
		var out []string
		for _, l := range strings.SplitAfter(string(text), "\n") {
			if !slices.ContainsFunc(frags, func(f string) bool { return strings.Contains(l, f) }) {
				out = append(out, l)
			}
		}
		return strings.Join(out, "")
	}
	const a1Digest = "c68090d90a7aed716bc459f9340e3d7c1370d4d24b7e2fc3a1ddc0b9a87153b9a9713b3c9ae5cc27777f98b8e730044c"
	for _, tc := range []struct {
		name, origin, file, text string
		want                     string // the result's String, or its prefix before "..."
	}{
		{name: "A.1 simple", origin: "example.", file: "testdata/zonemd/rfc8976-a1.zone", want: "verified sha384"},
		{name: "A.2 complex", origin: "example.", file: "testdata/zonemd/rfc8976-a2.zone", want: "verified sha384"},
		{name: "A.3 multiple digests", origin: "example.", file: "testdata/zonemd/rfc8976-a3.zone", want: "verified sha384"},
		{name: "A.3 SHA-512 alone", origin: "example.", text: strings.Replace(string(a3), "2018031900 1 1 (", "2018031900 1 240 (", 1),
			want: "verified sha512"},
		{name: "A.3 unsupported only", origin: "example.",
			text: strings.NewReplacer("2018031900 1 1 (", "2018031900 1 241 (", "2018031900 1 2 (", "2018031900 1 242 (").Replace(string(a3)),
			want: "unsupported: ..."},
		{name: "A.4 uri.arpa, signed", origin: "uri.arpa.", file: "testdata/zonemd/rfc8976-a4.zone", want: "verified sha384"},
		{name: "A.5 root-servers.net", origin: "root-servers.net.", file: "testdata/zonemd/rfc8976-a5.zone", want: "verified sha384"},
		{name: "ldns NSEC3 SHA-384", origin: "walk.test.", file: "testdata/zonemd/walk-nsec3-sha384.zone", want: "verified sha384"},
		{name: "ldns NSEC SHA-512", origin: "walk.test.", file: "testdata/zonemd/walk-nsec-sha512.zone", want: "verified sha512"},
		{name: "absent", origin: "example.", text: dropLines(a1, "ZONEMD", "c68090d90a7aed71", "6bc459f9340e3d7c", "1370d4d24b7e2fc3",
			"a1ddc0b9a87153b9", "a9713b3c9ae5cc27", "777f98b8e730044c"), want: "absent"},
		{name: "a changed address", origin: "example.", text: strings.Replace(string(a1), "203.0.113.63", "203.0.113.64", 1),
			want: "failed: the zone's sha384 digest is ..."},
		{name: "a changed TTL", origin: "example.", text: strings.Replace(string(a1), "ns1           3600", "ns1           3601", 1),
			want: "failed: the zone's sha384 digest is ..."},
		{name: "a record added", origin: "example.", text: string(a1) + "new 300 IN TXT \"added\"\n",
			want: "failed: the zone's sha384 digest is ..."},
		{name: "serial not the SOA's", origin: "example.", text: strings.Replace(string(a1), "ZONEMD  2018031900", "ZONEMD  2018031901", 1),
			want: "failed: the ZONEMD (scheme 1, sha384) has serial 2018031901, the SOA 2018031900"},
		{name: "two with one scheme and hash", origin: "example.",
			text: string(a1) + "example. 86400 IN ZONEMD 2018031900 1 1 " + strings.Repeat("ab", 48) + "\n",
			want: "failed: more than one ZONEMD with scheme 1, sha384; more than one ZONEMD with scheme 1, sha384"},
		{name: "a ZONEMD below the apex is digested", origin: "example.",
			text: string(a1) + "sub 300 IN ZONEMD 2018031900 1 1 " + a1Digest + "\n",
			want: "failed: the zone's sha384 digest is ..."},
		{name: "signed: RRSIG over ZONEMD changed, still verifies", origin: "walk.test.",
			text: strings.Replace(string(signed), "RRSIG\tZONEMD 13 2 3600 20370101000000 20260101000000 50960 walk.test. V", "RRSIG\tZONEMD 13 2 3600 20370101000000 20260101000000 50960 walk.test. W", 1),
			want: "verified sha512"},
		{name: "signed: an RRSIG changed", origin: "walk.test.",
			text: strings.Replace(string(signed), "RRSIG\tSOA 13 2 3600 20370101000000 20260101000000", "RRSIG\tSOA 13 2 3600 20370101000000 20260101000001", 1),
			want: "failed: the zone's sha512 digest is ..."},
		{name: "signed: glue changed", origin: "walk.test.", text: strings.Replace(string(signed), "192.0.2.53", "192.0.2.153", 1),
			want: "failed: the zone's sha512 digest is ..."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var z *Zone
			var err error
			if tc.file != "" {
				z, err = LoadFile(tc.origin, tc.file)
			} else {
				z, err = Parse(strings.NewReader(tc.text), tc.origin, "test.zone")
			}
			if err != nil {
				t.Fatal(err)
			}
			res, err := z.VerifyZONEMD()
			if err != nil {
				t.Fatal(err)
			}
			got := res.String()
			if p, ok := strings.CutSuffix(tc.want, "..."); ok && strings.HasPrefix(got, p) || got == tc.want {
				return
			}
			t.Errorf("VerifyZONEMD = %q, want %q", got, tc.want)
		})
	}
}

// TestZONEMDDigest: the digest of appendix A.1's zone is the one its
// ZONEMD holds.
func TestZONEMDDigest(t *testing.T) {
	z, err := LoadFile("example.", "testdata/zonemd/rfc8976-a1.zone")
	if err != nil {
		t.Fatal(err)
	}
	d, err := z.ZONEMDDigest(ZONEMDSHA384)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(d); got != "c68090d90a7aed716bc459f9340e3d7c1370d4d24b7e2fc3a1ddc0b9a87153b9a9713b3c9ae5cc27777f98b8e730044c" {
		t.Errorf("digest %s", got)
	}
	if _, err := z.ZONEMDDigest(3); err == nil {
		t.Error("hash algorithm 3 gave a digest")
	}
}

// TestZONEMDLdns runs ldns-signzone on fresh keys, with -z 1 and -z 2, and
// over the real root zone; the results verify, a tampered copy does not.
// The root zone is signed with RRSIGs that ldns-signzone would drop, so
// its ZONEMD is computed here and checked by ldns-verify-zone instead.
func TestZONEMDLdns(t *testing.T) {
	signzone := testenv.RequireTool(t, "ldns-signzone", "ldnsutils")
	keygen := testenv.RequireTool(t, "ldns-keygen", "ldnsutils")
	verify := testenv.RequireTool(t, "ldns-verify-zone", "ldnsutils")
	dir := t.TempDir()
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	key := run(keygen, "-a", "ECDSAP256SHA256", "walk.test.")
	src, err := filepath.Abs("testdata/walk/walk.test.zone")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-z", "1"}, "verified sha384"},
		{[]string{"-z", "2"}, "verified sha512"},
		{[]string{"-n", "-z", "sha512"}, "verified sha512"},
		{[]string{"-z", "1", "-z", "2"}, "verified sha384"},
	} {
		out := filepath.Join(dir, "signed.zone")
		run(signzone, append(append([]string{"-o", "walk.test.", "-f", out}, tc.args...), src, key)...)
		z, err := LoadFile("walk.test.", out)
		if err != nil {
			t.Fatal(err)
		}
		if res, err := z.VerifyZONEMD(); err != nil || res.String() != tc.want {
			t.Errorf("ldns-signzone %v: VerifyZONEMD = %v, %v; want %s", tc.args, res, err, tc.want)
		}
		text, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		bad := strings.Replace(string(text), "\"occluded, named by nothing\"", "\"occluded, named by no one\"", 1)
		z, err = Parse(strings.NewReader(bad), "walk.test.", "tampered")
		if err != nil {
			t.Fatal(err)
		}
		if res, err := z.VerifyZONEMD(); err != nil || res.Status != ZONEMDFailed {
			t.Errorf("ldns-signzone %v, tampered: VerifyZONEMD = %v, %v; want a failure", tc.args, res, err)
		}
	}

	// The root zone, its RRSIGs dropped by ldns-signzone -Z, with both
	// digests computed by ldns.
	root, err := filepath.Abs(rootFile)
	if err != nil {
		t.Fatal(err)
	}
	run(signzone, "-Z", "-z", "1", "-z", "2", "-o", ".", "-f", "root-zonemd.zone", root)
	z, err := LoadFile(".", filepath.Join(dir, "root-zonemd.zone"))
	if err != nil {
		t.Fatal(err)
	}
	if res, err := z.VerifyZONEMD(); err != nil || res.String() != "verified sha384" {
		t.Errorf("root zone digested by ldns-signzone: VerifyZONEMD = %v, %v", res, err)
	}

	// The root zone as it is, signatures included: ringdns's digest in
	// a ZONEMD, which ldns-verify-zone checks (at a time within the
	// signatures' validity; -ZZZ demands the ZONEMD and allows it to be
	// unsigned).
	z, err = LoadFile(".", rootFile)
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(rootFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []uint8{ZONEMDSHA384, ZONEMDSHA512} {
		d, err := z.ZONEMDDigest(h)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, fmt.Sprintf("root-%d.zone", h))
		withMD := fmt.Appendf(text, ". 86400 IN ZONEMD %d 1 %d %x\n", z.Serial(), h, d)
		if err := os.WriteFile(f, withMD, 0o644); err != nil {
			t.Fatal(err)
		}
		out := run(verify, "-ZZZ", "-t", "20170825000000", f)
		if !strings.Contains(out, "verified") {
			t.Errorf("ldns-verify-zone on the root zone with ringdns's %s digest: %s", zonemdHashName(h), out)
		}
		zz, err := LoadFile(".", f)
		if err != nil {
			t.Fatal(err)
		}
		if res, err := zz.VerifyZONEMD(); err != nil || res.Status != ZONEMDVerified || res.Hash != h {
			t.Errorf("root zone with a ZONEMD: VerifyZONEMD = %v, %v", res, err)
		}
	}
}

func BenchmarkVerifyZONEMDRoot(b *testing.B) {
	for _, h := range []uint8{ZONEMDSHA384, ZONEMDSHA512} {
		b.Run(zonemdHashName(h), func(b *testing.B) {
			z, err := LoadFile(".", rootFile)
			if err != nil {
				b.Fatal(err)
			}
			d, err := z.ZONEMDDigest(h)
			if err != nil {
				b.Fatal(err)
			}
			text, err := os.ReadFile(rootFile)
			if err != nil {
				b.Fatal(err)
			}
			text = fmt.Appendf(text, ". 86400 IN ZONEMD %d 1 %d %x\n", z.Serial(), h, d)
			z, err = Parse(strings.NewReader(string(text)), ".", "root-zonemd")
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			// verifyZONEMD, not VerifyZONEMD, which keeps its result.
			for b.Loop() {
				if res, err := z.verifyZONEMD(); err != nil || res.Status != ZONEMDVerified {
					b.Fatal(res, err)
				}
			}
		})
	}
}

// BenchmarkZONEMDDigestDelegations digests a TLD-like zone of 100,000
// delegations (325,005 records) with SHA-384; MB/s is of the zone's
// master-file text.
func BenchmarkZONEMDDigestDelegations(b *testing.B) {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	delegationZone(w, 100_000)
	w.Flush()
	b.SetBytes(int64(buf.Len()))
	z, err := Parse(&buf, "deleg.", "generated")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := z.ZONEMDDigest(ZONEMDSHA384); err != nil {
			b.Fatal(err)
		}
	}
}
