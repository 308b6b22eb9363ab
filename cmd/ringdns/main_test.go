package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringdns/ringdns/zone"
)

// TestCheckZONEMD: ringdns check prints each zone's ZONEMD state, fails a
// zone whose ZONEMD does not verify, and under zonemd = "require" one
// without ZONEMD.
func TestCheckZONEMD(t *testing.T) {
	dir := t.TempDir()
	const text = `$ORIGIN z.test.
$TTL 300
@    IN SOA ns1 hostmaster 7 7200 3600 1209600 300
@    IN NS  ns1
ns1  IN A   192.0.2.53
`
	z, err := zone.Parse(strings.NewReader(text), "z.test.", "z")
	if err != nil {
		t.Fatal(err)
	}
	d, err := z.ZONEMDDigest(zone.ZONEMDSHA512)
	if err != nil {
		t.Fatal(err)
	}
	signed := text + fmt.Sprintf("@ 300 IN ZONEMD 7 1 2 %x\n", d)
	files := map[string]string{
		"plain.zone":        text,
		"zonemd.zone":       signed,
		"tampered.zone":     strings.Replace(signed, "192.0.2.53", "192.0.2.54", 1),
		"require.toml":      "[[zone]]\norigin = \"z.test.\"\nfile = \"plain.zone\"\nzonemd = \"require\"\n",
		"secondary.toml":    "[[zone]]\norigin = \"z.test.\"\nfile = \"copy.zone\"\nprimaries = [\"192.0.2.1\"]\n",
		"user.toml":         "[server]\nuser = \"nobody\"\n\n[[zone]]\norigin = \"z.test.\"\nfile = \"plain.zone\"\n",
		"unknown-user.toml": "[server]\nuser = \"ringdns-no-such-user\"\n\n[[zone]]\norigin = \"z.test.\"\nfile = \"plain.zone\"\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"verified", []string{"-zone", "z.test.=" + filepath.Join(dir, "zonemd.zone")}, 0, "ZONEMD verified sha512", ""},
		{"absent", []string{"-zone", "z.test.=" + filepath.Join(dir, "plain.zone")}, 0, "ZONEMD absent", ""},
		{"tampered", []string{"-zone", "z.test.=" + filepath.Join(dir, "tampered.zone")}, 1, "", "ZONEMD verification failed"},
		{"require", []string{"-config", filepath.Join(dir, "require.toml")}, 1, "", `zonemd = "require"`},
		// A secondary zone has no copy on disk before its first transfer:
		// that is no error.
		{"secondary", []string{"-config", filepath.Join(dir, "secondary.toml")}, 0, "secondary with no copy in", ""},
		// server.user is looked up as the daemon would at start.
		{"user", []string{"-config", filepath.Join(dir, "user.toml")}, 0, "ok: server.user: uid 65534 (nobody)", ""},
		{"unknown-user", []string{"-config", filepath.Join(dir, "unknown-user.toml")}, 1, "", `server.user "ringdns-no-such-user": unknown user`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := check(tc.args, &out, &errOut)
			if code != tc.code || !strings.Contains(out.String(), tc.stdout) || !strings.Contains(errOut.String(), tc.stderr) {
				t.Errorf("exit %d (want %d)\nstdout: %s\nstderr: %s\nwant %q on stdout, %q on stderr", code, tc.code, out.String(), errOut.String(), tc.stdout, tc.stderr)
			}
		})
	}
}
