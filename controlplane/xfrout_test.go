package controlplane

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/controlplane/control"
	"github.com/ringdns/ringdns/dataplane"
	"github.com/ringdns/ringdns/zone"
)

// xfrZoneText is example. at serial with the hosts h0..h(hosts-1), the
// odd ones removed when drop is set, and extra lines.
func xfrZoneText(serial, hosts int, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `$ORIGIN example.
$TTL 300
@    IN SOA ns1 hostmaster %d 7200 3600 1209600 300
@    IN NS  ns1
@    IN MX  10 mail
ns1  IN A   192.0.2.53
mail IN A   192.0.2.25
sub  IN NS  ns.sub
ns.sub IN A 192.0.2.99
`, serial)
	for i := 0; i < hosts; i++ {
		fmt.Fprintf(&b, "h%d.hosts IN A 198.18.%d.%d\n", i, i/250, i%250+1)
		fmt.Fprintf(&b, "h%d.hosts IN TXT \"host number %d of the transfer test\"\n", i, i)
	}
	b.WriteString(extra)
	return b.String()
}

func parseTestZone(t testing.TB, text string) *zone.Zone {
	t.Helper()
	z, err := zone.Parse(strings.NewReader(text), "example.", "example.zone")
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// xfrTest is a TCP server with transfers out over a snapshot the test
// publishes.
type xfrTest struct {
	addr    string
	snap    atomic.Pointer[dataplane.Snapshot]
	x       *XfrOut
	journal *Journals
}

func (e *xfrTest) publish(t testing.TB, z *zone.Zone) {
	t.Helper()
	set, err := zone.NewSet([]*zone.Zone{z})
	if err != nil {
		t.Fatal(err)
	}
	e.snap.Store(dataplane.NewSnapshot(set, dataplane.Config{UDPSize: 1232}))
	e.journal.Published("example.", z)
	if !e.journal.Idle(10 * time.Second) {
		t.Fatal("journal not done within 10 s")
	}
}

// testXfrConfig allows transfers of example. from 127.0.0.1 with the key,
// and from ::1 unsigned.
func testXfrConfig(t testing.TB, dir string) *Config {
	t.Helper()
	cfg := &Config{
		Server: ServerConfig{TransfersMax: 2, JournalVersions: 10, JournalBytes: 1 << 20},
		Keys:   []KeyConfig{{Name: testKeyName, Algorithm: "hmac-sha256", Secret: testKeySecret}},
	}
	acl, err := ParseACL([]string{"127.0.0.1 " + testKeyName, "::1"}, cfg.TSIGKeys())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Zones = []ZoneConfig{{Origin: "example.", File: dir + "/example.zone", TransferACL: acl}}
	return cfg
}

func startXfr(t testing.TB, cfg *Config, listen string, prepare ...func(*XfrOut)) *xfrTest {
	t.Helper()
	e := &xfrTest{}
	e.journal = NewJournals(cfg, nil, quietLog())
	t.Cleanup(e.journal.Close)
	e.x = NewXfrOut(cfg, NewKeyring(cfg.TSIGKeys()), &e.snap, e.journal, quietLog())
	for _, p := range prepare {
		p(e.x)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewTCPServer(ln, SnapshotAnswer(&e.snap), TCPLimits{Idle: 10 * time.Second, Message: 10 * time.Second, MaxConns: 16},
		new(dataplane.Counters), quietLog())
	srv.ServeTransfers(e.x)
	go srv.Serve()
	t.Cleanup(func() { srv.Close() })
	e.addr = ln.Addr().String()
	return e
}

// zoneRRs lists z's records as text, sorted.
func zoneRRs(t testing.TB, z *zone.Zone) []string {
	t.Helper()
	var out []string
	err := z.Walk(func(r *zone.Record) error {
		rr, err := r.RR()
		if err != nil {
			return err
		}
		out = append(out, strings.ToLower(rr.String()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// transfer runs an AXFR or IXFR (from serial) of example. against addr,
// signed with secret when it is not "", and returns the records and the
// number of messages, or the error.
func transfer(addr string, qtype uint16, serial uint32, secret string) ([]dns.RR, int, error) {
	m := new(dns.Msg)
	if qtype == dns.TypeIXFR {
		m.SetIxfr("example.", serial, "ns1.example.", "hostmaster.example.")
	} else {
		m.SetAxfr("example.")
	}
	tr := &dns.Transfer{DialTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second}
	if secret != "" {
		m.SetTsig(testKeyName, dns.HmacSHA256, TSIGFudge, time.Now().Unix())
		tr.TsigSecret = map[string]string{testKeyName: secret}
	}
	ch, err := tr.In(m, addr)
	if err != nil {
		return nil, 0, err
	}
	var rrs []dns.RR
	msgs := 0
	for env := range ch {
		if env.Error != nil {
			return rrs, msgs, env.Error
		}
		msgs++
		rrs = append(rrs, env.RR...)
	}
	return rrs, msgs, nil
}

// exchangeTCP sends m over TCP and returns the reply.
func exchangeTCP(t *testing.T, addr string, m *dns.Msg, secret string) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
	if secret != "" {
		c.TsigSecret = map[string]string{testKeyName: secret}
	}
	r, _, err := c.Exchange(m, addr)
	if err != nil && r == nil {
		t.Fatal(err)
	}
	return r
}

func rrStrings(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, strings.ToLower(rr.String()))
	}
	return out
}

func TestAXFROut(t *testing.T) {
	cfg := testXfrConfig(t, t.TempDir())
	e := startXfr(t, cfg, "127.0.0.1:0")
	// 3,000 hosts make about 190 KB: several messages, each signed over
	// the one before.
	z := parseTestZone(t, xfrZoneText(7, 3000, ""))
	e.publish(t, z)

	rrs, msgs, err := transfer(e.addr, dns.TypeAXFR, 0, testKeySecret)
	if err != nil {
		t.Fatalf("signed AXFR: %v", err)
	}
	if msgs < 3 {
		t.Fatalf("%d messages; want several for a zone of this size", msgs)
	}
	if rrs[0].Header().Rrtype != dns.TypeSOA || rrs[len(rrs)-1].Header().Rrtype != dns.TypeSOA {
		t.Fatal("AXFR does not begin and end with the SOA")
	}
	got := rrStrings(rrs[:len(rrs)-1])
	slices.Sort(got)
	if want := zoneRRs(t, z); !slices.Equal(got, want) {
		t.Fatalf("AXFR holds %d records, the zone %d, or they differ", len(got), len(want))
	}
	var st [len(xfrResults)]uint64
	for i := range st {
		st[i] = e.x.stats.done[kindAXFR][i].Load()
	}
	if st[resultOK] != 1 || e.x.stats.bytes[kindAXFR].Load() < 100000 {
		t.Fatalf("counters: %v, %d bytes", st, e.x.stats.bytes[kindAXFR].Load())
	}
}

// TestTransferDenied covers the refusals: no key where the ACL wants one
// (REFUSED), the wrong secret (NOTAUTH, BADSIG), an unknown key (NOTAUTH,
// BADKEY), a zone not served (NOTAUTH), the bound on transfers (SERVFAIL).
func TestTransferDenied(t *testing.T) {
	cfg := testXfrConfig(t, t.TempDir())
	e := startXfr(t, cfg, "127.0.0.1:0")
	e.publish(t, parseTestZone(t, xfrZoneText(1, 3, "")))

	axfr := func(name string) *dns.Msg {
		m := new(dns.Msg)
		m.SetAxfr(name)
		return m
	}
	cases := []struct {
		name   string
		m      *dns.Msg
		key    string // key name to sign with, "" unsigned
		secret string
		rcode  int
		tsig   uint16
	}{
		{"unsigned where a key is required", axfr("example."), "", "", dns.RcodeRefused, 0},
		{"wrong secret", axfr("example."), testKeyName, otherSecret, dns.RcodeNotAuth, dns.RcodeBadSig},
		{"unknown key", axfr("example."), "nokey.", testKeySecret, dns.RcodeNotAuth, dns.RcodeBadKey},
		{"zone not served", axfr("example.org."), testKeyName, testKeySecret, dns.RcodeNotAuth, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := c.m.Copy()
			var wire []byte
			var err error
			if c.key != "" {
				q.SetTsig(c.key, dns.HmacSHA256, TSIGFudge, time.Now().Unix())
				wire, _, err = dns.TsigGenerate(q, c.secret, "", false)
			} else {
				wire, err = q.Pack()
			}
			if err != nil {
				t.Fatal(err)
			}
			r := rawTCP(t, e.addr, wire)
			if r.Rcode != c.rcode {
				t.Fatalf("rcode %s, want %s", RcodeName(r.Rcode), RcodeName(c.rcode))
			}
			if ts := r.IsTsig(); c.tsig != 0 && (ts == nil || ts.Error != c.tsig) {
				t.Fatalf("reply TSIG %v, want error %d", ts, c.tsig)
			}
			if len(r.Answer) != 0 {
				t.Fatal("a denied transfer got records")
			}
		})
	}

	// Over the bound: both slots taken, the next transfer is SERVFAIL.
	e.x.sem <- struct{}{}
	e.x.sem <- struct{}{}
	if _, _, err := transfer(e.addr, dns.TypeAXFR, 0, testKeySecret); err == nil || !strings.Contains(err.Error(), "rcode: 2") {
		t.Fatalf("transfer over the bound: %v, want SERVFAIL", err)
	}
	<-e.x.sem
	<-e.x.sem
	if _, _, err := transfer(e.addr, dns.TypeAXFR, 0, testKeySecret); err != nil {
		t.Fatalf("transfer after the bound freed: %v", err)
	}
}

// rawTCP sends a packed message over TCP and unpacks the one reply.
func rawTCP(t *testing.T, addr string, wire []byte) *dns.Msg {
	t.Helper()
	c, err := dns.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(wire); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	var m dns.Msg
	if err := m.Unpack(buf[:n]); err != nil {
		t.Fatal(err)
	}
	return &m
}

// TestSignedQueryOverTCP: a signed query that is no transfer is answered by
// the answer engine and the reply signed, which miekg/dns's client checks.
func TestSignedQueryOverTCP(t *testing.T) {
	cfg := testXfrConfig(t, t.TempDir())
	e := startXfr(t, cfg, "127.0.0.1:0")
	e.publish(t, parseTestZone(t, xfrZoneText(1, 3, "")))
	m := new(dns.Msg)
	m.SetQuestion("mail.example.", dns.TypeA)
	m.SetTsig(testKeyName, dns.HmacSHA256, TSIGFudge, time.Now().Unix())
	r := exchangeTCP(t, e.addr, m, testKeySecret)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.IsTsig() == nil {
		t.Fatalf("signed query: %v", r)
	}
}

// applyIXFR applies an IXFR reply (RFC 1995 section 4) to the records of
// the old version, given as sorted text, and returns the new ones sorted.
func applyIXFR(t *testing.T, old []string, rrs []dns.RR) []string {
	t.Helper()
	set := map[string]bool{}
	for _, s := range old {
		set[s] = true
	}
	if len(rrs) < 2 {
		t.Fatalf("IXFR of %d records", len(rrs))
	}
	final := strings.ToLower(rrs[0].String())
	if strings.ToLower(rrs[len(rrs)-1].String()) != final {
		t.Fatal("IXFR does not end with the SOA it began with")
	}
	body := rrs[1 : len(rrs)-1]
	deleting := false
	for _, rr := range body {
		s := strings.ToLower(rr.String())
		if rr.Header().Rrtype == dns.TypeSOA {
			deleting = !deleting
			if deleting {
				delete(set, s)
			} else {
				set[s] = true
			}
			continue
		}
		if deleting {
			if !set[s] {
				t.Fatalf("IXFR deletes %s, which the old version does not hold", s)
			}
			delete(set, s)
		} else {
			set[s] = true
		}
	}
	var out []string
	for s := range set {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func TestIXFROut(t *testing.T) {
	cfg := testXfrConfig(t, t.TempDir())
	e := startXfr(t, cfg, "127.0.0.1:0")
	v1 := parseTestZone(t, xfrZoneText(1, 20, "gone IN A 192.0.2.1\n"))
	v2 := parseTestZone(t, xfrZoneText(2, 20, "new IN A 192.0.2.2\n"))
	v3 := parseTestZone(t, xfrZoneText(3, 25, "new IN A 192.0.2.3\n"))
	for _, v := range []*zone.Zone{v1, v2, v3} {
		e.publish(t, v)
	}
	// From either older version, the differences lead to v3.
	for _, from := range []*zone.Zone{v1, v2} {
		rrs, _, err := transfer(e.addr, dns.TypeIXFR, from.Serial(), testKeySecret)
		if err != nil {
			t.Fatalf("IXFR from %d: %v", from.Serial(), err)
		}
		if got, want := applyIXFR(t, zoneRRs(t, from), rrs), zoneRRs(t, v3); !slices.Equal(got, want) {
			t.Fatalf("IXFR from %d applied gives %d records, v3 has %d, or they differ", from.Serial(), len(got), len(want))
		}
		if len(rrs) > 40 {
			t.Fatalf("IXFR from %d sent %d records: the whole zone, not the difference", from.Serial(), len(rrs))
		}
	}
	// Up to date, or newer: the SOA alone.
	for _, serial := range []uint32{3, 4} {
		rrs, _, err := transfer(e.addr, dns.TypeIXFR, serial, testKeySecret)
		if err != nil || len(rrs) != 1 || rrs[0].(*dns.SOA).Serial != 3 {
			t.Fatalf("IXFR from %d: %v %v, want the SOA of 3 alone", serial, rrs, err)
		}
	}
	// A serial the journal does not know: the whole zone, AXFR-style.
	rrs, _, err := transfer(e.addr, dns.TypeIXFR, 100000, testKeySecret)
	if err == nil {
		// 100000 is newer than 3 in serial arithmetic: SOA alone.
		if len(rrs) != 1 {
			t.Fatalf("IXFR from a newer serial: %d records", len(rrs))
		}
	}
	rrs, _, err = transfer(e.addr, dns.TypeIXFR, 0xFFFFFF00, testKeySecret)
	if err != nil {
		t.Fatalf("IXFR from an unknown older serial: %v", err)
	}
	got := rrStrings(rrs[:len(rrs)-1])
	slices.Sort(got)
	if !slices.Equal(got, zoneRRs(t, v3)) {
		t.Fatalf("IXFR from an unknown serial: %d records, want the whole zone's %d", len(got), len(zoneRRs(t, v3)))
	}
	if n := e.x.stats.done[kindIXFRAsAXFR][resultOK].Load(); n != 1 {
		t.Fatalf("ixfr-as-axfr counted %d", n)
	}
	// An IXFR without the client's SOA is FORMERR.
	m := new(dns.Msg)
	m.SetQuestion("example.", dns.TypeIXFR)
	m.SetTsig(testKeyName, dns.HmacSHA256, TSIGFudge, time.Now().Unix())
	if r := exchangeTCP(t, e.addr, m, testKeySecret); r.Rcode != dns.RcodeFormatError {
		t.Fatalf("IXFR without SOA: %s", RcodeName(r.Rcode))
	}
}

// TestTransferOverIPv6Unsigned: the ACL entry for ::1 takes no key.
func TestTransferOverIPv6Unsigned(t *testing.T) {
	cfg := testXfrConfig(t, t.TempDir())
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	ln.Close()
	e := startXfr(t, cfg, "[::1]:0")
	e.publish(t, parseTestZone(t, xfrZoneText(1, 3, "")))
	if _, _, err := transfer(e.addr, dns.TypeAXFR, 0, ""); err != nil {
		t.Fatalf("unsigned AXFR from ::1: %v", err)
	}
}

func TestHandles(t *testing.T) {
	var x XfrOut
	pack := func(m *dns.Msg) []byte {
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a := new(dns.Msg)
	a.SetQuestion("example.", dns.TypeA)
	a.SetEdns0(1232, true)
	ax := new(dns.Msg)
	ax.SetAxfr("example.")
	ix := new(dns.Msg)
	ix.SetIxfr("example.", 1, "a.", "b.")
	signed := new(dns.Msg)
	signed.SetQuestion("example.", dns.TypeA)
	signed.SetTsig(testKeyName, dns.HmacSHA256, 300, time.Now().Unix())
	sb, _, _ := dns.TsigGenerate(signed, testKeySecret, "", false)
	for _, c := range []struct {
		name string
		q    []byte
		want bool
	}{
		{"A with EDNS", pack(a), false},
		{"AXFR", pack(ax), true},
		{"IXFR", pack(ix), true},
		{"signed A", sb, true},
		{"short", []byte{1, 2, 3}, false},
	} {
		if got := x.Handles(c.q); got != c.want {
			t.Errorf("%s: Handles %v, want %v", c.name, got, c.want)
		}
	}
}

// BenchmarkAXFR measures packing and signing a transfer of 10,000 hosts
// (20,000 records) into messages, without the network.
func BenchmarkAXFR(b *testing.B) {
	z := parseTestZone(b, xfrZoneText(1, 10000, ""))
	k := testKeyring()
	s, _ := k.SignerFor(testKeyName)
	q := new(dns.Msg)
	q.SetAxfr("example.")
	qb, _ := q.Pack()
	b.ReportAllocs()
	var bytes int
	for b.Loop() {
		w := newXfrWriter(qb, s, func(msg []byte) error { return nil })
		if err := writeAXFR(w, z); err != nil {
			b.Fatal(err)
		}
		bytes = w.bytes
	}
	b.ReportMetric(float64(bytes), "bytes/op")
}

// TestServerTransfersOut runs the whole server: NOTIFY at start and after
// a reload with a new serial, a signed AXFR and an IXFR from the journal
// that the publish hook filled, and the metrics that count them.
func TestServerTransfersOut(t *testing.T) {
	k := testKeyring()
	target := startNotifyTarget(t, 0, k)
	dir := t.TempDir()
	zf := dir + "/example.zone"
	writeFile(t, zf, xfrZoneText(1, 10, ""))
	c := &Config{Server: ServerConfig{Listen: []string{"127.0.0.1:0"}, CPUs: "0", Control: dir + "/c.sock", Metrics: "127.0.0.1:0"},
		Keys: []KeyConfig{{Name: testKeyName, Algorithm: "hmac-sha256", Secret: testKeySecret}}}
	c.AddZone("example.", zf)
	c.Zones[0].AllowTransfer = []string{"127.0.0.1 " + testKeyName}
	c.Zones[0].Notify = []string{target.addr().String() + " " + testKeyName}
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, c)
	addr := s.Listen()[0].String()
	waitSerial := func(want uint32) {
		t.Helper()
		// NOTIFY is sent once the journal has the version; 10 s is far
		// beyond what a loaded machine needs for a zone of 30 records.
		end := time.Now().Add(10 * time.Second)
		for target.serial.Load() != want || target.verified.Load() == 0 {
			if time.Now().After(end) {
				t.Fatalf("no signed NOTIFY for serial %d within 10 s (last %d)", want, target.serial.Load())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitSerial(1)
	if _, _, err := transfer(addr, dns.TypeAXFR, 0, testKeySecret); err != nil {
		t.Fatalf("AXFR: %v", err)
	}
	if _, _, err := transfer(addr, dns.TypeAXFR, 0, ""); err == nil {
		t.Fatal("unsigned AXFR succeeded")
	}
	writeFile(t, zf, xfrZoneText(2, 12, ""))
	if _, err := s.Catalog.Reload(nil); err != nil {
		t.Fatal(err)
	}
	waitSerial(2)
	rrs, _, err := transfer(addr, dns.TypeIXFR, 1, testKeySecret)
	if err != nil {
		t.Fatalf("IXFR: %v", err)
	}
	v1, v2 := parseTestZone(t, xfrZoneText(1, 10, "")), parseTestZone(t, xfrZoneText(2, 12, ""))
	if got := applyIXFR(t, zoneRRs(t, v1), rrs); !slices.Equal(got, zoneRRs(t, v2)) {
		t.Fatal("IXFR from the journal does not lead to the reloaded version")
	}

	// ringctl notify sends it again at once.
	before := target.received.Load()
	if rep := s.HandleControl(control.Request{Cmd: control.CmdNotify, Zones: []string{"example"}}); !rep.OK {
		t.Fatalf("notify: %+v", rep)
	}
	if !poll(10*time.Second, func() bool { return target.received.Load() > before }) {
		t.Fatal("ringctl notify sent nothing within 10 s")
	}
	if rep := s.HandleControl(control.Request{Cmd: control.CmdNotify, Zones: []string{"example.org"}}); rep.OK {
		t.Fatal("notify of a zone not configured succeeded")
	}
	s.notify.Wait()

	resp, err := http.Get("http://" + s.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`ringdns_transfers_out_total{kind="axfr",result="ok"} 1`,
		`ringdns_transfers_out_total{kind="axfr",result="refused"} 1`,
		`ringdns_transfers_out_total{kind="ixfr",result="ok"} 1`,
		`ringdns_notify_out_total{result="sent"} 3`,
		`ringdns_tsig_verified_total 2`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// BenchmarkAXFRRoot packs and signs a transfer of the root zone (22,772
// records, zone/testdata/root.zone), without the network.
func BenchmarkAXFRRoot(b *testing.B) {
	z, err := zone.LoadFile(".", "../zone/testdata/root.zone")
	if err != nil {
		b.Skipf("root zone: %v", err)
	}
	k := testKeyring()
	q := new(dns.Msg)
	q.SetAxfr(".")
	qb, _ := q.Pack()
	b.ReportAllocs()
	var bytes, msgs int
	for b.Loop() {
		s, _ := k.SignerFor(testKeyName)
		w := newXfrWriter(qb, s, func(msg []byte) error { return nil })
		if err := writeAXFR(w, z); err != nil {
			b.Fatal(err)
		}
		bytes, msgs = w.bytes, w.msgs
	}
	b.ReportMetric(float64(bytes), "bytes/op")
	b.ReportMetric(float64(msgs), "msgs/op")
}

// TestNotifyOverTCP: a NOTIFY over TCP goes to notifyIn with the key that
// signed it, and the reply is signed.
func TestNotifyOverTCP(t *testing.T) {
	cfg := testXfrConfig(t, t.TempDir())
	keys := make(chan string, 2)
	e := startXfr(t, cfg, "127.0.0.1:0", func(x *XfrOut) {
		x.notifyIn = func(body []byte, from netip.Addr, key string) []byte {
			keys <- key
			rep, _ := bareReply(body, dns.RcodeSuccess)
			rep[2] |= 0x04
			return rep
		}
	})
	e.publish(t, parseTestZone(t, xfrZoneText(1, 3, "")))
	for _, key := range []string{testKeyName, ""} {
		m := new(dns.Msg)
		m.SetNotify("example.")
		secret := ""
		if key != "" {
			m.SetTsig(key, dns.HmacSHA256, TSIGFudge, time.Now().Unix())
			secret = testKeySecret
		}
		r := exchangeTCP(t, e.addr, m, secret)
		if r.Rcode != dns.RcodeSuccess || r.Opcode != dns.OpcodeNotify || !r.Authoritative || (key != "") != (r.IsTsig() != nil) {
			t.Fatalf("NOTIFY over TCP (key %q): %v", key, r)
		}
		if got := <-keys; got != key {
			t.Fatalf("notifyIn got key %q, want %q", got, key)
		}
	}
}

// poll calls cond every 10 ms until it holds or limit has passed.
func poll(limit time.Duration, cond func() bool) bool {
	end := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(end) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// TestIXFRLargerThanZone: when the differences hold more records than the
// zone, the whole zone is sent instead.
func TestIXFRLargerThanZone(t *testing.T) {
	cfg := testXfrConfig(t, t.TempDir())
	e := startXfr(t, cfg, "127.0.0.1:0")
	var other strings.Builder
	for i := 0; i < 30; i++ {
		fmt.Fprintf(&other, "x%d IN A 192.0.2.%d\n", i, i+1)
	}
	v1 := parseTestZone(t, xfrZoneText(1, 20, ""))
	v2 := parseTestZone(t, xfrZoneText(2, 0, other.String()))
	e.publish(t, v1)
	e.publish(t, v2)
	rrs, _, err := transfer(e.addr, dns.TypeIXFR, 1, testKeySecret)
	if err != nil {
		t.Fatal(err)
	}
	got := rrStrings(rrs[:len(rrs)-1])
	slices.Sort(got)
	if !slices.Equal(got, zoneRRs(t, v2)) {
		t.Fatalf("IXFR larger than the zone: %d records, want the zone's %d", len(got), len(zoneRRs(t, v2)))
	}
	if n := e.x.stats.done[kindIXFRAsAXFR][resultOK].Load(); n != 1 {
		t.Fatalf("ixfr-as-axfr counted %d, want 1", n)
	}
}

// TestAXFRClientGone: a client that closes its connection after the first
// message of a large transfer frees the transfer's slot, and the next
// transfer is served.
func TestAXFRClientGone(t *testing.T) {
	cfg := testXfrConfig(t, t.TempDir())
	cfg.Server.TransfersMax = 1
	e := startXfr(t, cfg, "127.0.0.1:0")
	e.publish(t, parseTestZone(t, xfrZoneText(1, 20000, "")))
	for range 3 {
		c, err := dns.DialTimeout("tcp", e.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		m := new(dns.Msg)
		m.SetAxfr("example.")
		m.SetTsig(testKeyName, dns.HmacSHA256, TSIGFudge, time.Now().Unix())
		c.TsigSecret = map[string]string{testKeyName: testKeySecret}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if err := c.WriteMsg(m); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ReadMsg(); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	// The slot is free again once the server has noticed; 10 s is far
	// beyond what that takes on a loaded machine.
	if !poll(10*time.Second, func() bool { return len(e.x.sem) == 0 }) {
		t.Fatal("the transfer's slot is still taken 10 s after its client left")
	}
	if _, _, err := transfer(e.addr, dns.TypeAXFR, 0, testKeySecret); err != nil {
		t.Fatalf("transfer after clients left mid-way: %v", err)
	}
}
