package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The interop tests of a ringdns secondary (issue 13): knotd is the
// primary, on loopback ports, with its zone file in the test's directory
// (the peers of peers_test.go).

// TestXfrInKnot: knotd is the primary of a zone with TSIG. ringdns
// transfers it by AXFR, serves it and keeps the copy on disk; after a
// change on knotd, on knotd's NOTIFY, it transfers the difference by IXFR
// and answers the new record; restarted with knotd stopped it serves the copy on disk; and a
// primary that does not have our key refuses the transfer and the old
// version keeps serving.
func TestXfrInKnot(t *testing.T) {
	t.Parallel()
	const origin = "xfr.example."
	dir := t.TempDir()
	copyFile := filepath.Join(dir, "xfr.example.zone")
	knotPort := freePort(t)
	conf := secondaryConfig(t, dir, origin, copyFile, loopback(knotPort), xfrSecret)
	d := startDaemon(t, "-config", conf)

	k := newKnotPrimary(t, knotPort, origin, xfrZone(origin, 1), d.addr(false))
	k.start()

	// Before the first transfer the zone is answered SERVFAIL.
	if r := mustExchange(t, d.addr(false), false, "www."+origin, dns.TypeA); r.Rcode != dns.RcodeServerFailure &&
		!d.waitSerial(origin, 1, 0) {
		t.Errorf("before the first transfer: %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
	d.refresh(origin)
	if !d.waitSerial(origin, 1, transferWait) {
		t.Fatalf("serial 1 not served within %v: %+v\n%s", transferWait, d.zoneStatus(origin), d.out.String())
	}
	st := d.zoneStatus(origin)
	if st.LastTransfer == nil || st.LastTransfer.Kind != "AXFR" || st.LastTransfer.Result != "ok" || st.Role != "secondary" {
		t.Errorf("after the first transfer: %+v %+v", st, st.LastTransfer)
	}
	r := mustExchange(t, d.addr(false), false, "www."+origin, dns.TypeA)
	if len(r.Answer) != 1 || !r.Authoritative {
		t.Errorf("www after AXFR: %v", r)
	}
	if b, err := os.ReadFile(copyFile); err != nil || !strings.Contains(string(b), "www.xfr.example.") {
		t.Errorf("the copy on disk: %v\n%s", err, b)
	}

	// A change on knotd: its NOTIFY (knotd 3.2 sends it over TCP) alone
	// brings the new serial, transferred by IXFR.
	v2 := xfrZone(origin, 2, "new  IN A 192.0.2.99", "www  IN AAAA 2001:db8::80")
	v2 = strings.Replace(v2, "mail IN MX  10 www", "mail IN MX  20 www", 1)
	k.update(v2)
	if !d.waitSerial(origin, 2, transferWait) {
		t.Fatalf("knotd's NOTIFY did not bring serial 2 within %v: %+v\n%s", transferWait, d.zoneStatus(origin), d.out.String())
	}
	st = d.zoneStatus(origin)
	if st.Notifies == 0 {
		t.Errorf("no NOTIFY counted: %+v", st)
	}
	if st.LastTransfer == nil || st.LastTransfer.Kind != "IXFR" || !appliedToServed(st.LastTransfer.Applied) {
		t.Errorf("after the change: %+v %+v, want IXFR applied to the version served", st, st.LastTransfer)
	}
	if r := mustExchange(t, d.addr(false), true, "new."+origin, dns.TypeA); len(r.Answer) != 1 {
		t.Errorf("new after IXFR: %v", r)
	}
	// A ringdns that loaded the final file answers the same.
	sameAnswersAsFile(t, d, "IXFR", dir, origin, v2)

	// Restarted with knotd stopped, ringdns serves the copy on disk.
	k.stop()
	if err := d.stop(); err != nil {
		t.Fatalf("stopping ringdns: %v", err)
	}
	d2 := startDaemon(t, "-config", conf)
	if r := mustExchange(t, d2.addr(false), false, "new."+origin, dns.TypeA); len(r.Answer) != 1 || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("restarted without its primary: new is %v", r)
	}

	// knotd comes back with a new version and another secret: the transfer
	// is refused, and version 2 keeps serving.
	writeKnotPrimaryConf(k, wrongSecret, netip.AddrPort{})
	k.writeZone(xfrZone(origin, 3, "third IN A 192.0.2.3"))
	k.start()
	d2.refresh(origin)
	if !poll(transferWait, func() bool { return d2.zoneStatus(origin).LastError != "" }) {
		t.Fatalf("no failure recorded with the wrong key: %+v", d2.zoneStatus(origin))
	}
	st = d2.zoneStatus(origin)
	if st.Serial != 2 || !strings.Contains(st.LastError, "NOTAUTH") {
		t.Errorf("with the wrong key: serial %d, error %q; want 2 kept, NOTAUTH", st.Serial, st.LastError)
	}
	if r := mustExchange(t, d2.addr(false), false, "new."+origin, dns.TypeA); len(r.Answer) != 1 {
		t.Errorf("with the wrong key: new is %v", r)
	}
}

// TestXfrInRootKnot transfers the root zone (22,772 records, signed) from
// knotd by AXFR with TSIG and reports the time from the request to the
// serial answered; the target is 1 s. It then reports the time from
// a new serial on knotd to the serial answered, by NOTIFY and IXFR. The bound asserted is the
// generous transferWait, not the target: this is a 2-core VM shared with
// other tests, and the figure is logged for the benchmark note.
func TestXfrInRootKnot(t *testing.T) {
	root := filepath.Join(repoRoot, "zone", "testdata", "root.zone")
	text, err := os.ReadFile(root)
	if err != nil {
		t.Skipf("no root zone: %v", err)
	}
	dir := t.TempDir()
	knotPort := freePort(t)
	conf := secondaryConfig(t, dir, ".", filepath.Join(dir, "root.zone"), loopback(knotPort), xfrSecret)
	d := startDaemon(t, "-config", conf)
	k := newKnotPrimary(t, knotPort, ".", string(text), d.addr(false))
	k.start()
	// The first transfer, then a retransfer by AXFR timed on its own.
	const serial = 2017082100
	d.refresh(".")
	if !d.waitSerial(".", serial, 30*time.Second) {
		t.Fatalf("root zone not served within 30 s: %+v\n%s", d.zoneStatus("."), d.out.String())
	}
	before := d.zoneStatus(".").Transfers
	start := time.Now()
	if out, code := d.ringctl("retransfer", "."); code != 0 {
		t.Fatalf("ringctl retransfer: %d\n%s", code, out)
	}
	if !poll(30*time.Second, func() bool { return d.zoneStatus(".").Transfers > before }) {
		t.Fatalf("retransfer not done within 30 s: %+v", d.zoneStatus("."))
	}
	took := time.Since(start)
	st := d.zoneStatus(".")
	t.Logf("root zone AXFR in from knotd: %.3f s from ringctl retransfer to published (transfer itself %.3f s, %d bytes)",
		took.Seconds(), st.LastTransfer.Seconds, st.LastTransfer.Bytes)
	if r := mustExchange(t, d.addr(false), true, "com.", dns.TypeNS); r.Rcode != dns.RcodeSuccess || len(r.Ns) == 0 {
		t.Errorf("com. NS after the transfer: %v", r)
	}

	// A new serial on knotd: from knotc zone-reload (knotd then sends
	// NOTIFY) to the new serial answered, by IXFR of the difference.
	newText := strings.Replace(string(text), fmt.Sprint(serial), fmt.Sprint(serial+1), 1)
	start = time.Now()
	k.update(newText)
	if !d.waitSerial(".", serial+1, 30*time.Second) {
		t.Fatalf("serial %d not served within 30 s of the reload: %+v", serial+1, d.zoneStatus("."))
	}
	took = time.Since(start)
	st = d.zoneStatus(".")
	t.Logf("root zone, new serial on knotd: %.3f s from knotc zone-reload to the serial answered (%s of %d bytes in %.3f s, applied %q)",
		took.Seconds(), st.LastTransfer.Kind, st.LastTransfer.Bytes, st.LastTransfer.Seconds, st.LastTransfer.Applied)
	// A new SOA alone changes no name: applied in place.
	if st.LastTransfer.Kind != "IXFR" || st.LastTransfer.Applied != "incremental" {
		t.Errorf("the new serial came by %s, applied %q; want IXFR applied in place", st.LastTransfer.Kind, st.LastTransfer.Applied)
	}
}

// appliedToServed reports whether an IXFR in was applied to the version
// served (zone.Zone.Apply, in place or rebuilt from its records) rather
// than loaded from a file or replaced by AXFR (TransferStatus.Applied).
func appliedToServed(how string) bool {
	return how == "incremental" || strings.HasPrefix(how, "rebuilt: ")
}

// TestXfrInRingdns chains two ringdns: the first serves a zone from its
// file with allow-transfer and NOTIFY to the second, a secondary of it.
// After a reload of a changed file, the first's NOTIFY brings the change to
// the second by IXFR from the first's journal, and the second answers the
// EDNS EXPIRE option with the time left of the SOA expire.
func TestXfrInRingdns(t *testing.T) {
	t.Parallel()
	const origin = "chain.example."
	dir := t.TempDir()
	src := filepath.Join(dir, "src.zone")
	if err := os.WriteFile(src, []byte(xfrZone(origin, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	pAddr, sAddr := loopback(freePort(t)), loopback(freePort(t))
	pConf := primaryConfig(t, dir, origin, src, sAddr)
	sDir := t.TempDir()
	p := startDaemon(t, "-config", pConf, "-listen", pAddr.String())
	s := startDaemon(t, "-config", secondaryConfig(t, sDir, origin, filepath.Join(sDir, "copy.zone"), pAddr, xfrSecret),
		"-listen", sAddr.String())
	if !s.waitSerial(origin, 1, transferWait) {
		t.Fatalf("serial 1 not transferred within %v: %+v\n%s", transferWait, s.zoneStatus(origin), s.out.String())
	}
	if err := os.WriteFile(src, []byte(xfrZone(origin, 2, "new IN A 192.0.2.99")), 0o644); err != nil {
		t.Fatal(err)
	}
	p.reload(origin)
	if !s.waitSerial(origin, 2, transferWait) {
		t.Fatalf("the primary's NOTIFY did not bring serial 2 within %v: %+v\n%s", transferWait, s.zoneStatus(origin), s.out.String())
	}
	if st := s.zoneStatus(origin); st.LastTransfer == nil || st.LastTransfer.Kind != "IXFR" || st.Notifies == 0 ||
		!appliedToServed(st.LastTransfer.Applied) {
		t.Errorf("after the change: %+v %+v, want IXFR on NOTIFY, applied to the version served", st, st.LastTransfer)
	}
	m := new(dns.Msg)
	m.SetQuestion(origin, dns.TypeSOA)
	o := m.SetEdns0(1232, false).IsEdns0()
	o.Option = append(o.Option, &dns.EDNS0_EXPIRE{Code: dns.EDNS0EXPIRE, Empty: true})
	r, err := dns.Exchange(m, s.addr(false).String())
	if err != nil {
		t.Fatal(err)
	}
	var exp int64 = -1
	for _, op := range r.IsEdns0().Option {
		if e, ok := op.(*dns.EDNS0_EXPIRE); ok {
			exp = int64(e.Expire)
		}
	}
	// 86400 is the SOA expire of xfrZone; the transfer was moments ago,
	// and 100 s covers a loaded machine.
	if exp < 86300 || exp > 86400 {
		t.Errorf("the secondary's EXPIRE option: %d, want about 86400", exp)
	}
}
