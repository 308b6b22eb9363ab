package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/internal/testenv"
)

// The interop tests of a ringdns primary (issue 13): ringdns serves a zone
// from a file with allow-transfer and NOTIFY to knotd, nsd or named, its
// secondary on loopback ports (the peers of peers_test.go).

// TestXfrOutKnot: ringdns is the primary of a zone with TSIG and NOTIFY;
// knotd, its secondary, transfers it by AXFR at start; after ringdns
// reloads a changed file, its NOTIFY makes knotd ask for IXFR, which
// ringdns answers from its journal, and knotd answers the changed
// records. kdig transfers the whole zone with the key; an unsigned
// transfer is REFUSED, a wrongly signed one NOTAUTH, and AXFR over UDP
// NOTIMP.
func TestXfrOutKnot(t *testing.T) {
	t.Parallel()
	kdig := requireTool(t, "kdig")
	testenv.RequireTool(t, "knotd", "Debian package knot; scripts/test.sh installs it")
	const origin = "out.example."
	dir := t.TempDir()
	zf := filepath.Join(dir, "out.example.zone")
	writeFileAtomic(t, zf, xfrZone(origin, 1, "old IN A 192.0.2.1", "keep IN TXT \"version one\""))
	knotPort := freePort(t)
	d := startDaemon(t, "-config", primaryConfig(t, dir, origin, zf, loopback(knotPort)))
	primary := d.addr(false)

	k := startKnotSecondary(t, knotPort, origin, primary)
	if !k.waitSerial(1, transferWait) {
		t.Fatalf("knotd does not serve serial 1 within %v", transferWait)
	}
	if r := mustExchange(t, k.addr(), false, "old."+origin, dns.TypeA); len(r.Answer) != 1 {
		t.Fatalf("knotd after AXFR: old.%s A: %v", origin, r)
	}

	// kdig with the key gets the whole zone, SOA first and last.
	out, err := exec.Command(kdig, "-y", "hmac-sha256:"+xfrKeyName+":"+xfrSecret, "@"+primary.Addr().String(),
		"-p", fmt.Sprint(primary.Port()), "+noall", "+answer", "AXFR", origin).CombinedOutput()
	if err != nil {
		t.Fatalf("kdig AXFR: %v\n%s", err, out)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" && !strings.HasPrefix(l, ";") {
			lines = append(lines, l)
		}
	}
	// The zone's 7 records and the closing SOA.
	if len(lines) != 8 || !strings.Contains(lines[0], "SOA") || !strings.Contains(lines[len(lines)-1], "SOA") {
		t.Fatalf("kdig AXFR gave %d records:\n%s", len(lines), out)
	}

	// Refusals: no key, the wrong secret, over UDP.
	m := new(dns.Msg)
	m.SetAxfr(origin)
	c := &dns.Client{Net: "tcp", Timeout: queryTimeout}
	if r, _, err := c.Exchange(m, primary.String()); err != nil || r.Rcode != dns.RcodeRefused {
		t.Errorf("unsigned AXFR: %v %v, want REFUSED", r, err)
	}
	bad := &dns.Client{Net: "tcp", Timeout: queryTimeout, TsigSecret: map[string]string{xfrKeyName + ".": wrongSecret}}
	mb := m.Copy()
	mb.SetTsig(xfrKeyName+".", dns.HmacSHA256, 300, time.Now().Unix())
	if r, _, _ := bad.Exchange(mb, primary.String()); r == nil || r.Rcode != dns.RcodeNotAuth {
		t.Errorf("AXFR with the wrong secret: %v, want NOTAUTH", r)
	}
	u := &dns.Client{Net: "udp", Timeout: queryTimeout}
	if r, _, err := u.Exchange(m, primary.String()); err != nil || r.Rcode != dns.RcodeNotImplemented {
		t.Errorf("AXFR over UDP: %v %v, want NOTIMP", r, err)
	}
	// IXFR over UDP, which the workers hand off to the control plane: the
	// current SOA alone (RFC 1995 section 2) when signed with the key,
	// signed back, and REFUSED unsigned.
	mi := new(dns.Msg)
	mi.SetIxfr(origin, 0, "ns1."+origin, "hostmaster."+origin)
	if r, _, err := u.Exchange(mi, primary.String()); err != nil || r.Rcode != dns.RcodeRefused {
		t.Errorf("unsigned IXFR over UDP: %v %v, want REFUSED", r, err)
	}
	mi.SetTsig(xfrKeyName+".", dns.HmacSHA256, 300, time.Now().Unix())
	us := &dns.Client{Net: "udp", Timeout: queryTimeout, TsigSecret: map[string]string{xfrKeyName + ".": xfrSecret}}
	if r, _, err := us.Exchange(mi, primary.String()); err != nil || r.Rcode != dns.RcodeSuccess || !r.Authoritative ||
		len(r.Answer) != 1 || r.Answer[0].(*dns.SOA).Serial != 1 || r.IsTsig() == nil {
		t.Errorf("signed IXFR over UDP: %v %v, want AA, the SOA of serial 1 alone, signed", r, err)
	}

	// A new version: one record gone, one added, one changed.
	writeFileAtomic(t, zf, xfrZone(origin, 2, "new IN A 192.0.2.2", "keep IN TXT \"version two\""))
	d.reload(origin)
	if !k.waitSerial(2, transferWait) {
		t.Fatalf("knotd does not serve serial 2 within %v after the NOTIFY\nringdns:\n%s", transferWait, d.out.String())
	}
	if r := mustExchange(t, k.addr(), false, "new."+origin, dns.TypeA); len(r.Answer) != 1 {
		t.Errorf("knotd after IXFR: new.%s A: %v", origin, r)
	}
	if r := mustExchange(t, k.addr(), false, "old."+origin, dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("knotd after IXFR: old.%s A: %v, want NXDOMAIN", origin, r)
	}
	if r := mustExchange(t, k.addr(), false, "keep."+origin, dns.TypeTXT); len(r.Answer) != 1 ||
		!strings.Contains(r.Answer[0].String(), "version two") {
		t.Errorf("knotd after IXFR: keep.%s TXT: %v", origin, r)
	}
	// knotd took it by IXFR (its log says so), which ringdns served from
	// its journal, not as a whole zone.
	if !poll(transferWait, func() bool { return strings.Contains(k.out.String(), "IXFR, incoming") }) {
		t.Errorf("knotd's log does not show an incoming IXFR:\n%s", k.out.String())
	}
	if !strings.Contains(d.out.String(), "kind=ixfr ") {
		t.Errorf("ringdns's log shows no IXFR served from the journal:\n%s", d.out.String())
	}
	if _, err := os.Stat(zf + ".journal"); err != nil {
		t.Errorf("no journal beside the zone file: %v", err)
	}
	// knotd's copy on disk (zonefile-sync: 0 writes it after each
	// transfer) is the source file, record for record.
	want := zoneFileRRs(t, zf, origin)
	if len(want) != 7 {
		t.Fatalf("the source file reads as %d records, want 7: %q", len(want), want)
	}
	var got []string
	if !poll(transferWait, func() bool {
		got = zoneFileRRs(t, k.file, origin)
		return slices.Equal(got, want)
	}) {
		t.Errorf("knotd's copy differs from the source:\n got %q\nwant %q", got, want)
	}
}

// zoneFileRRs reads a zone file with miekg/dns and returns its records as
// text, lowercased and sorted; nil when the file does not parse (yet).
func zoneFileRRs(t *testing.T, path, origin string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	zp := dns.NewZoneParser(f, origin, path)
	var out []string
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		out = append(out, strings.ToLower(rr.String()))
	}
	if zp.Err() != nil {
		return nil
	}
	slices.Sort(out)
	return out
}

// TestXfrOutPeers: nsd and BIND's named as ringdns's secondaries, with the
// key: AXFR at start, then the change after a reload, by NOTIFY and IXFR
// from the journal.
func TestXfrOutPeers(t *testing.T) {
	t.Parallel()
	for _, kind := range []struct {
		name  string
		start func(t *testing.T, port int, origin string, primary netip.AddrPort) *peer
	}{
		{"nsd", startNSDSecondary},
		{"named", startNamedSecondary},
	} {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			const origin = "nsd.example."
			dir := t.TempDir()
			zf := filepath.Join(dir, "nsd.example.zone")
			writeFileAtomic(t, zf, xfrZone(origin, 1, "old IN A 192.0.2.1"))
			port := freePort(t)
			d := startDaemon(t, "-config", primaryConfig(t, dir, origin, zf, loopback(port)))
			sec := kind.start(t, port, origin, d.addr(false))
			if !sec.waitSerial(1, transferWait) {
				t.Fatalf("the secondary does not serve serial 1 within %v\nringdns:\n%s", transferWait, d.out.String())
			}
			writeFileAtomic(t, zf, xfrZone(origin, 2, "new IN A 192.0.2.2"))
			d.reload(origin)
			if !sec.waitSerial(2, transferWait) {
				t.Fatalf("the secondary does not serve serial 2 within %v after the NOTIFY\nringdns:\n%s", transferWait, d.out.String())
			}
			if r := mustExchange(t, sec.addr(), false, "new."+origin, dns.TypeA); len(r.Answer) != 1 {
				t.Errorf("after the change: new.%s A: %v", origin, r)
			}
			if r := mustExchange(t, sec.addr(), false, "old."+origin, dns.TypeA); r.Rcode != dns.RcodeNameError {
				t.Errorf("after the change: old.%s A: %v, want NXDOMAIN", origin, r)
			}
			if !strings.Contains(d.out.String(), "kind=ixfr ") {
				t.Errorf("ringdns's log shows no IXFR served from the journal:\n%s", d.out.String())
			}
		})
	}
}
