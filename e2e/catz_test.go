package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/controlplane/control"
	"github.com/ringdns/ringdns/internal/testenv"
)

// The interop test of catalog zones (RFC 9432, issue 13): knotd generates
// a catalog zone from its member zones (catalog-role: generate, Knot DNS
// 3.2), and ringdns, its secondary for the catalog, serves the members.

// catzWait bounds each wait for ringdns to follow knotd: a transfer of a
// few records over loopback takes milliseconds, NOTIFY is sent at once,
// and 15 s leaves room for a loaded 2-core machine.
const catzWait = 15 * time.Second

// catzKnot is a knotd serving member zones and the catalog it generates.
type catzKnot struct {
	t      *testing.T
	dir    string
	conf   string
	port   int
	notify netip.AddrPort // ringdns
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
}

// writeConf writes knotd's configuration with members, each a zone of its
// own file in k.dir, in catalog catz. which knotd generates; every zone
// may be transferred from loopback and is sent NOTIFY to ringdns.
func (k *catzKnot) writeConf(members ...string) {
	k.t.Helper()
	var zones strings.Builder
	for i, m := range members {
		file := filepath.Join(k.dir, m+"zone")
		text := fmt.Sprintf("$ORIGIN %s\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 300\n@ IN NS ns1\nns1 IN A 192.0.2.53\nwww IN A 192.0.2.%d\n", m, i+1)
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			k.t.Fatal(err)
		}
		fmt.Fprintf(&zones, "  - domain: %s\n    file: %s\n    catalog-role: member\n    catalog-zone: catz.\n", m, file)
	}
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
remote:
  - id: ringdns
    address: %[3]s@%[4]d
acl:
  - id: xfr
    address: 127.0.0.0/8
    action: transfer
template:
  - id: default
    storage: %[1]s
    zonefile-sync: -1
    semantic-checks: off
    acl: xfr
    notify: ringdns
zone:
  - domain: catz.
    catalog-role: generate
%[5]s`, k.dir, k.port, k.notify.Addr(), k.notify.Port(), zones.String())
	if err := os.WriteFile(k.conf, []byte(conf), 0o644); err != nil {
		k.t.Fatal(err)
	}
}

func (k *catzKnot) addr() netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(k.port))
}

// start runs knotd and waits until it answers the catalog's SOA.
func (k *catzKnot) start() {
	t := k.t
	t.Helper()
	k.out = &syncBuffer{}
	k.exited = make(chan struct{})
	k.cmd = exec.Command("knotd", "-c", k.conf)
	k.cmd.Stdout, k.cmd.Stderr = k.out, k.out
	if err := k.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd, exited, out := k.cmd, k.exited, k.out
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		// By PID: SIGTERM, then SIGKILL after 10 s.
		select {
		case <-exited:
		default:
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
		}
		if t.Failed() {
			t.Logf("knotd's output:\n%s", out.String())
		}
	})
	if !poll(catzWait, func() bool {
		// Over TCP: knotd refuses queries for a catalog zone over UDP.
		r, err := exchange(k.addr(), true, "catz.", dns.TypeSOA)
		return err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0
	}) {
		t.Fatalf("knotd does not answer the catalog's SOA within %v:\n%s", catzWait, k.out.String())
	}
}

// reload has knotd read its configuration again (knotc reload): members
// added or removed change the catalog it generates.
func (k *catzKnot) reload() {
	k.t.Helper()
	out, err := exec.Command("knotc", "-c", k.conf, "-b", "reload").CombinedOutput()
	if err != nil {
		k.t.Fatalf("knotc reload: %v\n%s", err, out)
	}
}

// catzAnswer is ringdns's answer to www.ORIGIN A: the address, or the
// rcode when it is not NOERROR.
func catzAnswer(d *daemon, origin string) string {
	r, err := exchange(d.addr(false), false, "www."+origin, dns.TypeA)
	if err != nil {
		return err.Error()
	}
	if r.Rcode != dns.RcodeSuccess {
		return dns.RcodeToString[r.Rcode]
	}
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			return a.A.String()
		}
	}
	return "no A"
}

// TestCatalogKnot: ringdns, knotd's secondary for the catalog zone knotd
// generates, transfers the catalog and then each member; a member zone
// added on knotd is served after knotd's NOTIFY of the catalog, and one
// removed is no longer served (REFUSED, as any name outside its zones).
func TestCatalogKnot(t *testing.T) {
	testenv.RequireTool(t, "knotd", "Debian package knot; scripts/test.sh installs it")
	testenv.RequireTool(t, "knotc", "Debian package knot; scripts/test.sh installs it")
	ringPort := freePort(t)
	k := &catzKnot{t: t, dir: t.TempDir(), port: freePort(t),
		notify: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(ringPort))}
	k.conf = filepath.Join(k.dir, "knot.conf")
	k.writeConf("one.example.", "two.example.")
	k.start()

	dir := t.TempDir()
	conf := filepath.Join(dir, "ringdns.toml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`[[zone]]
origin = "catz."
file = "catz.zone"
primaries = [%q]
catalog-members = "members"
`, k.addr())), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	d := startDaemon(t, "-config", conf, "-listen", fmt.Sprintf("127.0.0.1:%d", ringPort))

	want := map[string]string{"one.example.": "192.0.2.1", "two.example.": "192.0.2.2"}
	if !poll(catzWait, func() bool {
		for m, a := range want {
			if catzAnswer(d, m) != a {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("after %v: one.example. answers %s, two.example. %s; want the members served",
			catzWait, catzAnswer(d, "one.example."), catzAnswer(d, "two.example."))
	}
	t.Logf("the catalog and its 2 members transferred and served %v after the start", time.Since(start).Round(time.Millisecond))
	var zs []control.ZoneTransferStatus
	if rep, code := d.ctlJSON(&zs, "zone-status"); code != 0 {
		t.Fatalf("zone-status: %d %+v", code, rep)
	}
	for _, z := range zs {
		switch z.Origin {
		case "catz.":
			if z.CatalogMembers == nil || *z.CatalogMembers != 2 {
				t.Errorf("the catalog's zone-status: members %v, want 2", z.CatalogMembers)
			}
		case "one.example.", "two.example.":
			if z.Role != "secondary" || z.Catalog != "catz." {
				t.Errorf("%s's zone-status: role %s, catalog %q; want a secondary of catz.", z.Origin, z.Role, z.Catalog)
			}
		}
	}
	if out, code := d.ringctl("zone-status", "one.example."); code != 0 || !strings.Contains(out, "member of catz.") {
		t.Errorf("ringctl zone-status one.example.: exit %d\n%s", code, out)
	}

	// A member added on knotd: its NOTIFY of the catalog's new serial
	// brings it.
	k.writeConf("one.example.", "two.example.", "three.example.")
	t0 := time.Now()
	k.reload()
	if !poll(catzWait, func() bool { return catzAnswer(d, "three.example.") == "192.0.2.3" }) {
		t.Fatalf("three.example., added on knotd, answers %s after %v", catzAnswer(d, "three.example."), catzWait)
	}
	t.Logf("a member added on knotd served %v after knotc reload", time.Since(t0).Round(time.Millisecond))

	// A member removed on knotd: no longer served.
	k.writeConf("one.example.", "three.example.")
	t0 = time.Now()
	k.reload()
	if !poll(catzWait, func() bool { return catzAnswer(d, "two.example.") == "REFUSED" }) {
		t.Fatalf("two.example., removed on knotd, answers %s after %v", catzAnswer(d, "two.example."), catzWait)
	}
	t.Logf("a member removed on knotd refused %v after knotc reload", time.Since(t0).Round(time.Millisecond))
	for m, a := range map[string]string{"one.example.": "192.0.2.1", "three.example.": "192.0.2.3"} {
		if got := catzAnswer(d, m); got != a {
			t.Errorf("%s answers %s after another member's removal, want %s", m, got, a)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "members")); err != nil {
		t.Errorf("the members' directory: %v", err)
	}
}
