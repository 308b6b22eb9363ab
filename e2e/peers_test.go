package e2e

import (
	"fmt"
	"math/rand/v2"
	"net"
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

	"github.com/ringdns/ringdns/controlplane/control"
	"github.com/ringdns/ringdns/internal/testenv"
)

// The harness of the zone-transfer interop tests (issue 13): knotd, nsd and
// BIND's named run as ringdns's primaries or secondaries on loopback ports,
// each with its configuration and files in a directory of its own, and all
// sharing one TSIG key with ringdns.

// xfrKeyName and xfrSecret are the TSIG key every peer and ringdns share;
// wrongSecret is another secret under the same name.
const (
	xfrKeyName  = "xfr-key"
	xfrSecret   = "q83wtcOHqRc0oZ8gYE7CbxpERNVxY0WBeBRuPSkN30A="
	wrongSecret = "o0Qx6o0ZpFOU6Ey9NQw9a7aV1X6ymWGbmDbqRDpzzBo="
)

// transferWait bounds each wait for a transfer on loopback: a zone of ten
// records is transferred in milliseconds; the bound only covers a loaded
// machine running the race detector.
const transferWait = 10 * time.Second

// peerStartWait bounds the wait for a primary peer to answer its zone's
// SOA after it is started: knotd, nsd and named load a ten-record zone in
// milliseconds, and the bound covers a loaded two-core machine.
const peerStartWait = 10 * time.Second

// freePort returns a port free for UDP and TCP on 127.0.0.1 now, drawn
// from below the ephemeral ports (portsBelowEphemeral).
func freePort(t *testing.T) int {
	t.Helper()
	lo, hi := portsBelowEphemeral()
	for range 50 {
		port := lo + rand.IntN(hi-lo)
		pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		pc.Close()
		if err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatal("no port free for both UDP and TCP")
	return 0
}

// portsBelowEphemeral is the range freePort draws from: below the
// system's ephemeral ports (ip_local_port_range), which the kernel hands
// to every socket bound to port 0 and to every outgoing connection. A
// port taken from that range (by binding port 0, as freePort did) could
// be handed to another test's connection between freePort's check and
// the peer's bind: knotd once failed to start, "cannot bind address
// 127.0.0.1@53064 TCP (address already in use)".
func portsBelowEphemeral() (lo, hi int) {
	lo, hi = 10000, 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var first, last int
		if _, err := fmt.Sscan(string(b), &first, &last); err == nil && first > lo+1000 {
			hi = first
		}
	}
	return lo, hi
}

// loopback is port on 127.0.0.1.
func loopback(port int) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
}

// pollSerial waits up to limit for the server at addr to answer serial in
// origin's SOA over UDP.
func pollSerial(addr netip.AddrPort, origin string, serial uint32, limit time.Duration) bool {
	return poll(limit, func() bool {
		r, err := exchange(addr, false, origin, dns.TypeSOA)
		if err != nil || r.Rcode != dns.RcodeSuccess {
			return false
		}
		s, err := soaSerial(r)
		return err == nil && s == serial
	})
}

// xfrZone is version serial of the test zone; extra lines are added.
func xfrZone(origin string, serial int, extra ...string) string {
	return fmt.Sprintf(`$ORIGIN %s
$TTL 300
@    IN SOA ns1 hostmaster %d 3600 600 86400 300
@    IN NS  ns1
ns1  IN A   192.0.2.53
www  IN A   192.0.2.80
mail IN MX  10 www
%s
`, origin, serial, strings.Join(extra, "\n"))
}

// peer is another implementation's server run by a test: knotd, nsd or
// named, serving one zone on a loopback port.
type peer struct {
	t      *testing.T
	name   string // the program: knotd, nsd or named
	dir    string // its configuration, zone file, journal and sockets
	port   int
	origin string
	file   string // its zone file: the source of a primary, the copy of a secondary
	conf   string
	args   []string // the command line; args[0] is the program
	// primary says the peer loads the zone from its file, so that start
	// waits until it answers the zone's SOA.
	primary bool
	// startWait bounds start's wait for a primary's SOA; 0 is
	// peerStartWait.
	startWait time.Duration
	out       *syncBuffer
	cmd       *exec.Cmd
	exited    chan struct{}
}

// newPeer prepares name (knotd, nsd or named) for origin on port, with a
// directory of its own, and skips or fails the test (testenv.RequireTool)
// when the program is not installed.
func newPeer(t *testing.T, name string, port int, origin string) *peer {
	t.Helper()
	pkg := map[string]string{"knotd": "knot", "nsd": "nsd", "named": "bind9"}[name]
	prog := testenv.RequireTool(t, name, "Debian package "+pkg+"; scripts/test.sh installs it")
	p := &peer{t: t, name: name, dir: t.TempDir(), port: port, origin: origin}
	p.file = filepath.Join(p.dir, "zone.db")
	p.conf = filepath.Join(p.dir, name+".conf")
	switch name {
	case "knotd":
		p.args = []string{prog, "-c", p.conf}
	case "nsd":
		p.args = []string{prog, "-d", "-c", p.conf}
	case "named":
		p.args = []string{prog, "-g", "-c", p.conf, "-n", "1"}
	}
	return p
}

func (p *peer) addr() netip.AddrPort { return loopback(p.port) }

// writeZone writes text as the peer's zone file.
func (p *peer) writeZone(text string) {
	p.t.Helper()
	if err := os.WriteFile(p.file, []byte(text), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// writeConf writes text as the peer's configuration file.
func (p *peer) writeConf(text string) {
	p.t.Helper()
	if err := os.WriteFile(p.conf, []byte(text), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// start runs the peer in the foreground, to be stopped when the test ends,
// and, for a primary, waits until it answers the zone's SOA.
func (p *peer) start() {
	t := p.t
	t.Helper()
	p.out = &syncBuffer{}
	p.exited = make(chan struct{})
	p.cmd = exec.Command(p.args[0], p.args[1:]...)
	p.cmd.Dir = p.dir
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd, exited, out := p.cmd, p.exited, p.out
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s's output:\n%s", p.name, out.String())
			if b, err := os.ReadFile(filepath.Join(p.dir, "log")); err == nil {
				t.Logf("%s's log file:\n%s", p.name, b)
			}
		}
	})
	if !p.primary {
		return
	}
	wait := peerStartWait
	if p.startWait > 0 {
		wait = p.startWait
	}
	if !poll(wait, func() bool {
		r, err := exchange(p.addr(), false, p.origin, dns.TypeSOA)
		return err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0
	}) {
		t.Fatalf("%s does not answer the SOA of %s within %v:\n%s", p.name, p.origin, wait, p.out.String())
	}
}

// stop ends the peer by its PID (SIGTERM, then SIGKILL after 10 s) and
// waits for it; it does nothing when the peer is not running.
func (p *peer) stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// update writes a new version of the zone file and has the peer reload it:
// knotd by knotc zone-reload, nsd and named by SIGHUP, which both take as
// a reload of their zones.
func (p *peer) update(text string) {
	p.t.Helper()
	p.writeZone(text)
	if p.name == "knotd" {
		out, err := exec.Command("knotc", "-c", p.conf, "-b", "zone-reload", p.origin).CombinedOutput()
		if err != nil {
			p.t.Fatalf("knotc zone-reload: %v\n%s", err, out)
		}
		return
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		p.t.Fatal(err)
	}
}

// waitSerial waits up to limit for the peer to answer serial in the zone's
// SOA.
func (p *peer) waitSerial(serial uint32, limit time.Duration) bool {
	return pollSerial(p.addr(), p.origin, serial, limit)
}

// knotConf is knotd's configuration of p: the settings every test shares
// (one worker of each kind, the control socket and storage in p.dir, the
// log on stderr, the test key with secret), then body.
func knotConf(p *peer, secret, body string) string {
	return fmt.Sprintf(`server:
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
`, p.dir, p.port, xfrKeyName, secret) + body
}

// newKnotPrimary prepares knotd as the primary of origin with text: see
// writeKnotPrimaryConf.
func newKnotPrimary(t *testing.T, port int, origin, text string, notifyTo netip.AddrPort) *peer {
	t.Helper()
	k := newPeer(t, "knotd", port, origin)
	k.primary = true
	k.writeZone(text)
	writeKnotPrimaryConf(k, xfrSecret, notifyTo)
	return k
}

// writeKnotPrimaryConf configures k to allow transfers to 127.0.0.0/8 with
// the key of secret and to send NOTIFY to notifyTo when it is valid.
// zonefile-load: difference makes knotd keep the difference between the
// file's versions in its journal, so that it answers IXFR after the file
// changes.
func writeKnotPrimaryConf(k *peer, secret string, notifyTo netip.AddrPort) {
	notify, remote := "", ""
	if notifyTo.IsValid() {
		remote = fmt.Sprintf("remote:\n  - id: ringdns\n    address: %s@%d\n    key: %s\n", notifyTo.Addr(), notifyTo.Port(), xfrKeyName)
		notify = "    notify: ringdns\n"
	}
	k.writeConf(knotConf(k, secret, fmt.Sprintf(`%[1]sacl:
  - id: xfr
    address: 127.0.0.0/8
    key: %[2]s
    action: transfer
template:
  - id: default
    storage: %[3]s
    zonefile-sync: -1
    zonefile-load: difference
    journal-content: changes
    semantic-checks: off
zone:
  - domain: %[4]s
    file: %[5]s
    acl: xfr
%[6]s`, remote, xfrKeyName, k.dir, k.origin, k.file, notify)))
}

// startKnotSecondary runs knotd as a secondary of origin from primary with
// the key, taking NOTIFY from loopback signed with it, and writing its
// copy to its zone file after each transfer (zonefile-sync: 0).
func startKnotSecondary(t *testing.T, port int, origin string, primary netip.AddrPort) *peer {
	t.Helper()
	k := newPeer(t, "knotd", port, origin)
	k.writeConf(knotConf(k, xfrSecret, fmt.Sprintf(`remote:
  - id: ringdns
    address: %[1]s@%[2]d
    key: %[3]s
acl:
  - id: notify
    address: 127.0.0.0/8
    key: %[3]s
    action: notify
template:
  - id: default
    storage: %[4]s
    zonefile-sync: 0
    semantic-checks: off
zone:
  - domain: %[5]s
    file: %[6]s
    master: ringdns
    acl: notify
`, primary.Addr(), primary.Port(), xfrKeyName, k.dir, origin, k.file)))
	k.start()
	return k
}

// nsdConf is nsd's configuration of p: the server settings every test
// shares (files in p.dir, in the foreground as the current user, one
// server process, no response rate limit, its log in p.dir/log, no
// control socket), the test key, then the zone settings of zone.
func nsdConf(p *peer, zone string) string {
	return fmt.Sprintf(`server:
    ip-address: 127.0.0.1@%[2]d
    port: %[2]d
    zonesdir: "%[1]s"
    database: ""
    pidfile: "%[1]s/nsd.pid"
    xfrdfile: "%[1]s/xfrd.state"
    zonelistfile: "%[1]s/zone.list"
    xfrdir: "%[1]s"
    logfile: "%[1]s/log"
    username: ""
    chroot: ""
    verbosity: 2
    server-count: 1
    rrl-ratelimit: 0
remote-control:
    control-enable: no
key:
    name: "%[3]s"
    algorithm: hmac-sha256
    secret: "%[4]s"
zone:
    name: "%[5]s"
    zonefile: "%[6]s"
`, p.dir, p.port, xfrKeyName, xfrSecret, p.origin, p.file) + zone
}

// newNSDPrimary prepares nsd as the primary of origin with text, allowing
// transfers with the key and sending NOTIFY to notifyTo. NSD 4.6 keeps no
// differences between versions: it answers IXFR with the whole zone, which
// ringdns takes as an AXFR.
func newNSDPrimary(t *testing.T, port int, origin, text string, notifyTo netip.AddrPort) *peer {
	t.Helper()
	p := newPeer(t, "nsd", port, origin)
	p.primary = true
	p.writeZone(text)
	p.writeConf(nsdConf(p, fmt.Sprintf("    provide-xfr: 127.0.0.1 %[1]s\n    notify: %[2]s@%[3]d %[1]s\n",
		xfrKeyName, notifyTo.Addr(), notifyTo.Port())))
	return p
}

// startNSDSecondary runs nsd as a secondary of origin from primary with the
// key, taking NOTIFY from loopback signed with it.
func startNSDSecondary(t *testing.T, port int, origin string, primary netip.AddrPort) *peer {
	t.Helper()
	p := newPeer(t, "nsd", port, origin)
	p.writeConf(nsdConf(p, fmt.Sprintf("    request-xfr: %[2]s@%[3]d %[1]s\n    allow-notify: 127.0.0.1 %[1]s\n",
		xfrKeyName, primary.Addr(), primary.Port())))
	p.start()
	return p
}

// namedConf is named's configuration of p: the options every test shares
// (files in p.dir, IPv4 loopback only, no recursion or validation), then
// options, the test key, no control channel, and zone.
func namedConf(p *peer, options, zone string) string {
	return fmt.Sprintf(`options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	listen-on port %[2]d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
%[5]s};
key "%[3]s" { algorithm hmac-sha256; secret "%[4]s"; };
controls { };
`, p.dir, p.port, xfrKeyName, xfrSecret, options) + zone
}

// newNamedPrimary prepares BIND's named as the primary of origin with text,
// allowing transfers with the key and sending NOTIFY to notifyTo, with
// ixfr-from-differences, so that a reloaded file becomes an IXFR;
// max-ixfr-ratio is lifted, since the test zone is so small that any
// difference is larger than it, and named would answer with the whole zone
// (which ringdns takes as AXFR).
func newNamedPrimary(t *testing.T, port int, origin, text string, notifyTo netip.AddrPort) *peer {
	t.Helper()
	p := newPeer(t, "named", port, origin)
	p.primary = true
	p.writeZone(text)
	p.writeConf(namedConf(p, fmt.Sprintf(`	notify explicit;
	also-notify { %[2]s port %[3]d key "%[1]s"; };
	allow-transfer { key "%[1]s"; };
	ixfr-from-differences yes;
	max-ixfr-ratio unlimited;
`, xfrKeyName, notifyTo.Addr(), notifyTo.Port()),
		fmt.Sprintf("zone %q { type primary; file %q; };\n", origin, p.file)))
	return p
}

// startNamedSecondary runs BIND's named as a secondary of origin from
// primary with the key, taking NOTIFY signed with it, and keeping its copy
// as text.
func startNamedSecondary(t *testing.T, port int, origin string, primary netip.AddrPort) *peer {
	t.Helper()
	p := newPeer(t, "named", port, origin)
	p.writeConf(namedConf(p, "\tnotify no;\n", fmt.Sprintf(`zone "%[1]s" {
	type secondary;
	file "%[2]s";
	masterfile-format text;
	primaries { %[3]s port %[4]d key "%[5]s"; };
	allow-notify { key "%[5]s"; };
};
`, origin, p.file, primary.Addr(), primary.Port(), xfrKeyName)))
	p.start()
	return p
}

// ringdnsKey is the test key as a ringdns [[key]] table with secret. Its
// algorithm, hmac-sha256, is left to the default, which the peers, naming
// it, then check.
func ringdnsKey(secret string) string {
	return fmt.Sprintf("[[key]]\nname = %q\nsecret = %q\n\n", xfrKeyName, secret)
}

// writeRingdnsConf writes conf as dir/ringdns.toml and returns its path.
func writeRingdnsConf(t *testing.T, dir, conf string) string {
	t.Helper()
	path := filepath.Join(dir, "ringdns.toml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// primaryConfig writes ringdns's configuration of one zone served from
// file, transferable from loopback with the key, and NOTIFY to notifyTo
// signed with it.
func primaryConfig(t *testing.T, dir, origin, file string, notifyTo netip.AddrPort) string {
	t.Helper()
	return writeRingdnsConf(t, dir, ringdnsKey(xfrSecret)+fmt.Sprintf(`[[zone]]
origin = %q
file = %q
allow-transfer = ["127.0.0.0/8 %s"]
notify = ["%s %s"]
`, origin, file, xfrKeyName, notifyTo, xfrKeyName))
}

// secondaryConfig writes ringdns's configuration of one secondary zone
// from primary, its copy at file, signed with the key of secret; extra
// lines join the zone's table.
func secondaryConfig(t *testing.T, dir, origin, file string, primary netip.AddrPort, secret string, extra ...string) string {
	t.Helper()
	conf := ringdnsKey(secret) + fmt.Sprintf(`[[zone]]
origin = %q
file = %q
primaries = [%q]
key = %q
`, origin, file, primary.String(), xfrKeyName)
	for _, l := range extra {
		conf += l + "\n"
	}
	return writeRingdnsConf(t, dir, conf)
}

// zoneStatus returns ringdns's zone-status of origin.
func (d *daemon) zoneStatus(origin string) control.ZoneTransferStatus {
	d.t.Helper()
	var zs []control.ZoneTransferStatus
	if rep, code := d.ctlJSON(&zs, "zone-status", origin); code != 0 || len(zs) != 1 {
		d.t.Fatalf("ringctl zone-status %s: exit %d, %+v", origin, code, rep)
	}
	return zs[0]
}

// aheadBytes is what the daemon holds made ahead for the next update of
// origin (ringctl zones, ahead_bytes).
func (d *daemon) aheadBytes(origin string) int {
	d.t.Helper()
	var zs []control.ZoneStatus
	if rep, code := d.ctlJSON(&zs, "zones"); code != 0 {
		d.t.Fatalf("ringctl zones: exit %d, %+v", code, rep)
	}
	for _, z := range zs {
		if z.Origin == origin {
			return z.AheadBytes
		}
	}
	d.t.Fatalf("ringctl zones: no %s in %+v", origin, zs)
	return 0
}

// waitSerial waits up to limit for the daemon to answer serial in the
// zone's SOA over UDP.
func (d *daemon) waitSerial(origin string, serial uint32, limit time.Duration) bool {
	return pollSerial(d.addr(false), origin, serial, limit)
}

// refresh asks the daemon for a refresh of origin.
func (d *daemon) refresh(origin string) {
	d.t.Helper()
	if out, code := d.ringctl("refresh", origin); code != 0 {
		d.t.Fatalf("ringctl refresh %s: exit %d\n%s", origin, code, out)
	}
}

// reload has the daemon reload origin from its file.
func (d *daemon) reload(origin string) {
	d.t.Helper()
	if out, code := d.ringctl("reload", origin); code != 0 {
		d.t.Fatalf("ringctl reload: %d\n%s", code, out)
	}
}

// zoneAnswers asks the daemon every name of the zone text for every type
// it has, over TCP, and returns the answers as text, sorted: two servers
// with the same zone give the same.
func zoneAnswers(t *testing.T, d *daemon, origin, text string) []string {
	t.Helper()
	zp := dns.NewZoneParser(strings.NewReader(text), origin, "")
	type q struct {
		name string
		typ  uint16
	}
	seen := map[q]bool{}
	var qs []q
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		k := q{strings.ToLower(rr.Header().Name), rr.Header().Rrtype}
		if !seen[k] {
			seen[k] = true
			qs = append(qs, k)
		}
	}
	qs = append(qs, q{"nothere." + origin, dns.TypeA})
	var out []string
	for _, k := range qs {
		r := mustExchange(t, d.addr(false), true, k.name, k.typ)
		out = append(out, fmt.Sprintf("%s %s %s aa=%v an=%v ns=%v", k.name, dns.TypeToString[k.typ],
			dns.RcodeToString[r.Rcode], r.Authoritative, rrStrings(r.Answer), rrStrings(r.Ns)))
	}
	slices.Sort(out)
	return out
}

// sameAnswersAsFile starts a ringdns that loads text, the final version of
// origin, from a file in dir, and reports (as an error of t, saying after
// what) where d's answers differ from that reference's, name by name and
// type by type.
func sameAnswersAsFile(t *testing.T, d *daemon, after, dir, origin, text string) {
	t.Helper()
	final := filepath.Join(dir, "final.zone")
	if err := os.WriteFile(final, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := startDaemon(t, "-zone", origin+"="+final)
	if got, want := zoneAnswers(t, d, origin, text), zoneAnswers(t, ref, origin, text); !slices.Equal(got, want) {
		t.Errorf("answers after %s differ from those of the final file:\ngot:\n%s\nwant:\n%s",
			after, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
