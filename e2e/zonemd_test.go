package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/internal/testenv"
)

// writeZONEMDConf configures k's zone to be loaded whole from its file,
// with transfers allowed to 127.0.0.0/8 with the test key, and with knotd's
// own ZONEMD generation set to generate ("zonemd-sha384" or "none", which
// serves a ZONEMD written in the file as it is).
func writeZONEMDConf(k *peer, generate string) {
	k.writeConf(knotConf(k, xfrSecret, fmt.Sprintf(`acl:
  - id: xfr
    address: 127.0.0.0/8
    key: %[1]s
    action: transfer
template:
  - id: default
    storage: %[2]s
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
  - domain: %[3]s
    file: %[4]s
    acl: xfr
    zonemd-generate: %[5]s
`, xfrKeyName, k.dir, k.origin, k.file, generate)))
}

// TestXfrInZONEMDKnot: knotd generates its zone's ZONEMD (zonemd-generate,
// SHA-384); ringdns, with zonemd = "require", transfers the zone and
// reports its ZONEMD verified, an interoperability check of the digest.
// Then knotd serves a newer version whose ZONEMD does not match: ringdns
// refuses it, keeps serving the verified version and says why.
func TestXfrInZONEMDKnot(t *testing.T) {
	t.Parallel()
	testenv.RequireTool(t, "knotd", "Debian package knot; scripts/test.sh installs it")
	const origin = "zmd.example."
	dir := t.TempDir()
	copyFile := filepath.Join(dir, "zmd.example.zone")
	knotPort := freePort(t)
	conf := secondaryConfig(t, dir, origin, copyFile, loopback(knotPort), xfrSecret, `zonemd = "require"`)
	d := startDaemon(t, "-config", conf)

	k := newPeer(t, "knotd", knotPort, origin)
	k.primary = true
	k.writeZone(xfrZone(origin, 1))
	writeZONEMDConf(k, "zonemd-sha384")
	k.start()
	// knotd raises the serial when it adds the ZONEMD: ask it which.
	r := mustExchange(t, k.addr(), false, origin, dns.TypeSOA)
	serial, err := soaSerial(r)
	if err != nil {
		t.Fatal(err)
	}
	if r := mustExchange(t, k.addr(), false, origin, dns.TypeZONEMD); len(r.Answer) != 1 {
		t.Fatalf("knotd generated no ZONEMD: %v", r)
	}
	d.refresh(origin)
	if !d.waitSerial(origin, serial, transferWait) {
		t.Fatalf("serial %d not served within %v: %+v\n%s", serial, transferWait, d.zoneStatus(origin), d.out.String())
	}
	if st := d.zoneStatus(origin); st.ZONEMD != "verified sha384" {
		t.Errorf("knotd's zone: ZONEMD %q, want verified sha384 (error %q)", st.ZONEMD, st.LastError)
	}

	// A newer version with a ZONEMD that does not match its data.
	k.stop()
	bad := xfrZone(origin, int(serial)+10, "new  IN A 192.0.2.99",
		fmt.Sprintf("@ IN ZONEMD %d 1 1 %s", serial+10, strings.Repeat("5a", 48)))
	k.writeZone(bad)
	writeZONEMDConf(k, "none")
	k.start()
	d.refresh(origin)
	if !poll(transferWait, func() bool { return strings.Contains(d.zoneStatus(origin).LastError, "ZONEMD") }) {
		t.Fatalf("no ZONEMD failure recorded within %v: %+v\n%s", transferWait, d.zoneStatus(origin), d.out.String())
	}
	st := d.zoneStatus(origin)
	if st.Serial != serial || st.ZONEMD != "verified sha384" || !strings.Contains(st.LastError, "ZONEMD verification failed") {
		t.Errorf("after a version failing ZONEMD: serial %d (want %d kept), ZONEMD %q, error %q", st.Serial, serial, st.ZONEMD, st.LastError)
	}
	if r := mustExchange(t, d.addr(false), false, "new."+origin, dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("new.%s after the refused version: %s, want NXDOMAIN", origin, dns.RcodeToString[r.Rcode])
	}
}
