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

// primaryProcess is a primary server run by a test: NSD or BIND's named,
// serving one zone from a file on a loopback port, allowing transfers
// signed with the key and sending NOTIFY, signed with it, to ringdns.
type primaryProcess struct {
	t      *testing.T
	name   string
	dir    string
	port   int
	file   string
	args   []string // the command line; args[0] is the program
	out    *syncBuffer
	cmd    *exec.Cmd
	exited chan struct{}
}

func (p *primaryProcess) addr() netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(p.port))
}

// start runs the server and waits (up to 10 s) until it answers the SOA of
// origin.
func (p *primaryProcess) start(origin string) {
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
	if !poll(10*time.Second, func() bool {
		r, err := exchange(p.addr(), false, origin, dns.TypeSOA)
		return err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0
	}) {
		t.Fatalf("%s does not answer the SOA of %s within 10 s:\n%s", p.name, origin, p.out.String())
	}
}

// stop ends the server by its PID (SIGTERM, then SIGKILL after 10 s).
func (p *primaryProcess) stop() {
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

// update writes a new version of the zone file and has the server reload
// it with SIGHUP, which both NSD and named take as a reload of their zones.
func (p *primaryProcess) update(text string) {
	p.t.Helper()
	if err := os.WriteFile(p.file, []byte(text), 0o644); err != nil {
		p.t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		p.t.Fatal(err)
	}
}

// newNSDPrimary configures nsd. NSD 4.6 keeps no differences between
// versions: it answers IXFR with the whole zone, which ringdns takes as an
// AXFR.
func newNSDPrimary(t *testing.T, port int, origin, text string, notifyTo netip.AddrPort) *primaryProcess {
	t.Helper()
	nsd := testenv.RequireTool(t, "nsd", "Debian package nsd; scripts/test.sh installs it")
	p := &primaryProcess{t: t, name: "nsd", dir: t.TempDir(), port: port}
	p.file = filepath.Join(p.dir, "zone.db")
	if err := os.WriteFile(p.file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`server:
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
    provide-xfr: 127.0.0.1 %[3]s
    notify: %[7]s@%[8]d %[3]s
`, p.dir, p.port, xfrKeyName, xfrSecret, origin, p.file, notifyTo.Addr(), notifyTo.Port())
	confPath := filepath.Join(p.dir, "nsd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p.args = []string{nsd, "-d", "-c", confPath}
	return p
}

// newNamedPrimary configures BIND's named with ixfr-from-differences, so
// that a reloaded file becomes an IXFR; max-ixfr-ratio is lifted, since
// the test zone is so small that any difference is larger than it, and
// named would answer with the whole zone (which ringdns takes as AXFR).
func newNamedPrimary(t *testing.T, port int, origin, text string, notifyTo netip.AddrPort) *primaryProcess {
	t.Helper()
	named := testenv.RequireTool(t, "named", "Debian package bind9; scripts/test.sh installs it")
	p := &primaryProcess{t: t, name: "named", dir: t.TempDir(), port: port}
	p.file = filepath.Join(p.dir, "zone.db")
	if err := os.WriteFile(p.file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`options {
	directory "%[1]s";
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	listen-on port %[2]d { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	dnssec-validation no;
	notify explicit;
	also-notify { %[7]s port %[8]d key "%[3]s"; };
	allow-transfer { key "%[3]s"; };
	ixfr-from-differences yes;
	max-ixfr-ratio unlimited;
};
key "%[3]s" { algorithm hmac-sha256; secret "%[4]s"; };
controls { };
zone "%[5]s" { type primary; file "%[6]s"; };
`, p.dir, p.port, xfrKeyName, xfrSecret, origin, p.file, notifyTo.Addr(), notifyTo.Port())
	confPath := filepath.Join(p.dir, "named.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p.args = []string{named, "-g", "-c", confPath, "-n", "1"}
	return p
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

// TestXfrInPeers: NSD and named as primaries with TSIG. ringdns transfers
// the zone, then a change on the primary reaches it by the primary's
// NOTIFY over UDP alone (IXFR from named; NSD 4.6 sends the whole zone),
// and its answers are then those of a ringdns that loaded the final file.
func TestXfrInPeers(t *testing.T) {
	t.Parallel()
	for _, peer := range []struct {
		name     string
		new      func(t *testing.T, port int, origin, text string, notifyTo netip.AddrPort) *primaryProcess
		wantKind string // the transfer after the change
	}{
		{"nsd", newNSDPrimary, "AXFR"},
		{"named", newNamedPrimary, "IXFR"},
	} {
		t.Run(peer.name, func(t *testing.T) {
			t.Parallel()
			const origin = "peer.example."
			dir := t.TempDir()
			copyFile := filepath.Join(dir, "copy.zone")
			port := freePort(t)
			primary := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
			d := startDaemon(t, "-config", secondaryConfig(t, dir, origin, copyFile, primary, xfrSecret))
			p := peer.new(t, port, origin, xfrZone(origin, 1), d.addr(false))
			p.start(origin)

			d.refresh(origin)
			if !d.waitSerial(origin, 1, transferWait) {
				t.Fatalf("serial 1 not served within %v: %+v\n%s", transferWait, d.zoneStatus(origin), d.out.String())
			}
			final := xfrZone(origin, 2, "new  IN A 192.0.2.99", "www  IN AAAA 2001:db8::80")
			final = strings.Replace(final, "www  IN A   192.0.2.80", "www  IN A   192.0.2.81", 1)
			p.update(final)
			if !d.waitSerial(origin, 2, transferWait) {
				t.Fatalf("the primary's NOTIFY did not bring serial 2 within %v: %+v\n%s", transferWait, d.zoneStatus(origin), d.out.String())
			}
			st := d.zoneStatus(origin)
			if st.Notifies == 0 {
				t.Errorf("no NOTIFY counted: %+v", st)
			}
			if st.LastTransfer == nil || st.LastTransfer.Kind != peer.wantKind || st.LastTransfer.Result != "ok" {
				t.Errorf("the transfer after the change: %+v, want %s", st.LastTransfer, peer.wantKind)
			}
			// A ringdns that loaded the final file answers the same.
			finalFile := filepath.Join(dir, "final.zone")
			if err := os.WriteFile(finalFile, []byte(final), 0o644); err != nil {
				t.Fatal(err)
			}
			ref := startDaemon(t, "-zone", origin+"="+finalFile)
			got, want := zoneAnswers(t, d, origin, final), zoneAnswers(t, ref, origin, final)
			if !slices.Equal(got, want) {
				t.Errorf("answers after the transfer differ from those of the final file:\ngot:\n%s\nwant:\n%s",
					strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}
