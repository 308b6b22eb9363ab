package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/internal/testenv"
)

// The interop tests of a ringdns primary (issue 13): ringdns serves a zone
// from a file with allow-transfer and NOTIFY to knotd, which is its
// secondary on loopback ports.

// primaryConfig writes ringdns's configuration of one zone served from
// file, transferable from loopback with the key, and NOTIFY to notifyTo
// signed with it.
func primaryConfig(t *testing.T, dir, origin, file string, notifyTo netip.AddrPort) string {
	t.Helper()
	conf := fmt.Sprintf(`[[key]]
name = %q
algorithm = "hmac-sha256"
secret = %q

[[zone]]
origin = %q
file = %q
allow-transfer = ["127.0.0.0/8 %s"]
notify = ["%s %s"]
`, xfrKeyName, xfrSecret, origin, file, xfrKeyName, notifyTo, xfrKeyName)
	path := filepath.Join(dir, "ringdns.toml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// knotSecondary is a knotd transferring one zone from ringdns with the
// key, taking NOTIFY from it, and writing its copy to file at once.
type knotSecondary struct {
	t      *testing.T
	dir    string
	conf   string
	port   int
	file   string
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
}

func startKnotSecondary(t *testing.T, port int, origin string, primary netip.AddrPort) *knotSecondary {
	t.Helper()
	testenv.RequireTool(t, "knotd", "Debian package knot; scripts/test.sh installs it")
	k := &knotSecondary{t: t, dir: t.TempDir(), port: port}
	k.file = filepath.Join(k.dir, "secondary.zone")
	k.conf = filepath.Join(k.dir, "knot.conf")
	conf := fmt.Sprintf(`server:
    rundir: %[1]s
    listen: 127.0.0.1@%[2]d
    background-workers: 1
    tcp-workers: 1
    udp-workers: 1
control:
    listen: %[1]s/knot.sock
database:
    storage: %[1]s
log:
  - target: stderr
    any: info
key:
  - id: %[3]s
    algorithm: hmac-sha256
    secret: %[4]s
remote:
  - id: ringdns
    address: %[5]s@%[6]d
    key: %[3]s
acl:
  - id: notify
    address: 127.0.0.0/8
    key: %[3]s
    action: notify
template:
  - id: default
    storage: %[1]s
    zonefile-sync: 0
    semantic-checks: off
zone:
  - domain: %[7]s
    file: %[8]s
    master: ringdns
    acl: notify
`, k.dir, k.port, xfrKeyName, xfrSecret, primary.Addr(), primary.Port(), origin, k.file)
	if err := os.WriteFile(k.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	k.out = &syncBuffer{}
	k.exited = make(chan struct{})
	k.cmd = exec.Command("knotd", "-c", k.conf)
	k.cmd.Stdout, k.cmd.Stderr = k.out, k.out
	if err := k.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd, exited := k.cmd, k.exited
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("knotd's output:\n%s", k.out.String())
		}
	})
	return k
}

func (k *knotSecondary) addr() netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(k.port))
}

// waitSerial waits up to limit for knotd to answer serial in the zone's
// SOA.
func (k *knotSecondary) waitSerial(origin string, serial uint32, limit time.Duration) bool {
	return poll(limit, func() bool {
		r, err := exchange(k.addr(), false, origin, dns.TypeSOA)
		if err != nil || r.Rcode != dns.RcodeSuccess {
			return false
		}
		s, err := soaSerial(r)
		return err == nil && s == serial
	})
}

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
	knotAddr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(knotPort))
	d := startDaemon(t, "-config", primaryConfig(t, dir, origin, zf, knotAddr))
	primary := d.addr(false)

	k := startKnotSecondary(t, knotPort, origin, primary)
	if !k.waitSerial(origin, 1, transferWait) {
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

	// A new version: one record gone, one added, one changed.
	writeFileAtomic(t, zf, xfrZone(origin, 2, "new IN A 192.0.2.2", "keep IN TXT \"version two\""))
	if out, code := d.ringctl("reload", origin); code != 0 {
		t.Fatalf("ringctl reload: %d\n%s", code, out)
	}
	if !k.waitSerial(origin, 2, transferWait) {
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

// startNSDSecondary runs nsd in the foreground as a secondary of origin
// from primary with the key, taking NOTIFY from loopback with it.
func startNSDSecondary(t *testing.T, port int, origin string, primary netip.AddrPort) netip.AddrPort {
	t.Helper()
	testenv.RequireTool(t, "nsd", "Debian package nsd; scripts/test.sh installs it")
	dir := t.TempDir()
	conf := filepath.Join(dir, "nsd.conf")
	text := fmt.Sprintf(`server:
    ip-address: 127.0.0.1@%[2]d
    zonesdir: "%[1]s"
    database: ""
    pidfile: "%[1]s/nsd.pid"
    xfrdfile: "%[1]s/xfrd.state"
    zonelistfile: "%[1]s/zone.list"
    xfrdir: "%[1]s"
    username: ""
    chroot: ""
    verbosity: 2
    server-count: 1
remote-control:
    control-enable: no
key:
    name: "%[3]s"
    algorithm: hmac-sha256
    secret: "%[4]s"
zone:
    name: "%[5]s"
    zonefile: "%[1]s/secondary.zone"
    request-xfr: %[6]s@%[7]d %[3]s
    allow-notify: 127.0.0.1 %[3]s
`, dir, port, xfrKeyName, xfrSecret, origin, primary.Addr(), primary.Port())
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	cmd := exec.Command("nsd", "-d", "-c", conf)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("nsd's output:\n%s", out.String())
		}
	})
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
}

// startNamedSecondary runs BIND's named in the foreground as a secondary
// of origin from primary with the key, taking NOTIFY signed with it, and
// keeping its copy as text.
func startNamedSecondary(t *testing.T, port int, origin string, primary netip.AddrPort) netip.AddrPort {
	t.Helper()
	named := testenv.RequireTool(t, "named", "Debian package bind9; scripts/test.sh installs it")
	dir := t.TempDir()
	conf := filepath.Join(dir, "named.conf")
	text := fmt.Sprintf(`options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	listen-on port %[2]d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	notify no;
};
key "%[3]s" { algorithm hmac-sha256; secret "%[4]s"; };
controls { };
zone "%[5]s" {
	type secondary;
	file "%[1]s/secondary.db";
	masterfile-format text;
	primaries { %[6]s port %[7]d key "%[3]s"; };
	allow-notify { key "%[3]s"; };
};
`, dir, port, xfrKeyName, xfrSecret, origin, primary.Addr(), primary.Port())
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	cmd := exec.Command(named, "-g", "-c", conf, "-n", "1")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("named's output:\n%s", out.String())
		}
	})
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
}

// TestXfrOutPeers: nsd and BIND's named as ringdns's secondaries, with the
// key: AXFR at start, then the change after a reload, by NOTIFY and IXFR
// from the journal.
func TestXfrOutPeers(t *testing.T) {
	t.Parallel()
	for _, peer := range []struct {
		name  string
		start func(t *testing.T, port int, origin string, primary netip.AddrPort) netip.AddrPort
	}{
		{"nsd", startNSDSecondary},
		{"named", startNamedSecondary},
	} {
		t.Run(peer.name, func(t *testing.T) {
			t.Parallel()
			xfrOutPeer(t, peer.start)
		})
	}
}

func xfrOutPeer(t *testing.T, start func(t *testing.T, port int, origin string, primary netip.AddrPort) netip.AddrPort) {
	const origin = "nsd.example."
	dir := t.TempDir()
	zf := filepath.Join(dir, "nsd.example.zone")
	writeFileAtomic(t, zf, xfrZone(origin, 1, "old IN A 192.0.2.1"))
	port := freePort(t)
	nsdAddr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	d := startDaemon(t, "-config", primaryConfig(t, dir, origin, zf, nsdAddr))
	sec := start(t, port, origin, d.addr(false))
	serial := func(want uint32) bool {
		return poll(transferWait, func() bool {
			r, err := exchange(sec, false, origin, dns.TypeSOA)
			if err != nil || r.Rcode != dns.RcodeSuccess {
				return false
			}
			s, err := soaSerial(r)
			return err == nil && s == want
		})
	}
	if !serial(1) {
		t.Fatalf("the secondary does not serve serial 1 within %v\nringdns:\n%s", transferWait, d.out.String())
	}
	writeFileAtomic(t, zf, xfrZone(origin, 2, "new IN A 192.0.2.2"))
	if out, code := d.ringctl("reload", origin); code != 0 {
		t.Fatalf("ringctl reload: %d\n%s", code, out)
	}
	if !serial(2) {
		t.Fatalf("the secondary does not serve serial 2 within %v after the NOTIFY\nringdns:\n%s", transferWait, d.out.String())
	}
	if r := mustExchange(t, sec, false, "new."+origin, dns.TypeA); len(r.Answer) != 1 {
		t.Errorf("after the change: new.%s A: %v", origin, r)
	}
	if r := mustExchange(t, sec, false, "old."+origin, dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("after the change: old.%s A: %v, want NXDOMAIN", origin, r)
	}
	if !strings.Contains(d.out.String(), "kind=ixfr ") {
		t.Errorf("ringdns's log shows no IXFR served from the journal:\n%s", d.out.String())
	}
}
