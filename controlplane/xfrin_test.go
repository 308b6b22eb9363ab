package controlplane

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/controlplane/control"
	"github.com/ringdns/ringdns/zone"
)

// xfrinTestSecret is a TSIG secret for the tests (32 bytes, base64).
const xfrinTestSecret = "dGhpcyBpcyBhIHRzaWcgc2VjcmV0IGZvciB0ZXN0cyE="

// fakePrimary is a primary server for the tests, over miekg/dns's server:
// it answers SOA (with the EDNS EXPIRE option when asked), AXFR and IXFR
// from versions of one zone, signing with a TSIG key when one is set, and
// can be told to misbehave.
type fakePrimary struct {
	origin string
	key    string // "" for none
	secret string
	addr   netip.AddrPort

	mu       sync.Mutex
	versions map[uint32][]dns.RR
	serial   uint32
	expire   uint32 // EXPIRE option value, 0 for none
	perMsg   int    // records per transfer message
	breakAt  int    // close the connection after this many messages, 0 never
	ixfr     func(from uint32) []dns.RR
	noIXFR   bool // answer IXFR with NOTIMP
	requests []uint16

	udp, tcp *dns.Server
}

func startFakePrimary(t *testing.T, origin, key string) *fakePrimary {
	t.Helper()
	p := &fakePrimary{origin: origin, key: key, secret: xfrinTestSecret, versions: map[uint32][]dns.RR{}, perMsg: 2}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		pc.Close()
		t.Skipf("TCP port %d taken: %v", port, err)
	}
	p.addr = netip.MustParseAddrPort(ln.Addr().String())
	var secrets map[string]string
	if key != "" {
		secrets = map[string]string{dns.Fqdn(key): xfrinTestSecret}
	}
	p.udp = &dns.Server{PacketConn: pc, Handler: p, TsigSecret: secrets}
	p.tcp = &dns.Server{Listener: ln, Handler: p, TsigSecret: secrets}
	go p.udp.ActivateAndServe()
	go p.tcp.ActivateAndServe()
	t.Cleanup(func() {
		p.udp.Shutdown()
		p.tcp.Shutdown()
	})
	return p
}

// setZone adds a version of the zone from text and makes it current.
func (p *fakePrimary) setZone(t *testing.T, text string) {
	t.Helper()
	zp := dns.NewZoneParser(strings.NewReader(text), p.origin, "")
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		t.Fatal(err)
	}
	soa := rrs[0].(*dns.SOA)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.versions[soa.Serial] = rrs
	p.serial = soa.Serial
}

func (p *fakePrimary) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := r.Question[0]
	p.requests = append(p.requests, q.Qtype)
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	signed := false
	if p.key != "" {
		if r.IsTsig() == nil || w.TsigStatus() != nil {
			m.Rcode = dns.RcodeNotAuth
			w.WriteMsg(m)
			return
		}
		signed = true
	}
	sign := func(m *dns.Msg) {
		if signed {
			m.SetTsig(dns.Fqdn(p.key), dns.HmacSHA256, 300, time.Now().Unix())
		}
	}
	cur := p.versions[p.serial]
	switch q.Qtype {
	case dns.TypeSOA:
		m.Answer = []dns.RR{cur[0]}
		if o := r.IsEdns0(); o != nil {
			m.SetEdns0(1232, false)
			for _, op := range o.Option {
				if _, ok := op.(*dns.EDNS0_EXPIRE); ok && p.expire > 0 {
					m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_EXPIRE{Code: dns.EDNS0EXPIRE, Expire: p.expire})
				}
			}
		}
		sign(m)
		w.WriteMsg(m)
	case dns.TypeAXFR, dns.TypeIXFR:
		var rrs []dns.RR
		switch {
		case q.Qtype == dns.TypeIXFR && p.noIXFR:
			m.Rcode = dns.RcodeNotImplemented
			sign(m)
			w.WriteMsg(m)
			return
		case q.Qtype == dns.TypeIXFR && p.ixfr != nil:
			rrs = p.ixfr(r.Ns[0].(*dns.SOA).Serial)
		case q.Qtype == dns.TypeIXFR && p.versions[r.Ns[0].(*dns.SOA).Serial] != nil:
			rrs = diffIXFR(p.versions[r.Ns[0].(*dns.SOA).Serial], cur)
		default:
			rrs = append(append([]dns.RR{}, cur...), cur[0])
		}
		for i, n := 0, 0; i < len(rrs); i, n = i+p.perMsg, n+1 {
			if p.breakAt > 0 && n == p.breakAt {
				w.Close()
				return
			}
			m := new(dns.Msg)
			m.SetReply(r)
			m.Authoritative = true
			m.Answer = rrs[i:min(i+p.perMsg, len(rrs))]
			sign(m)
			if err := w.WriteMsg(m); err != nil {
				return
			}
			w.TsigTimersOnly(true)
		}
	}
}

// diffIXFR is the IXFR reply from old to new: new SOA, old SOA, deletions,
// new SOA, additions, new SOA.
func diffIXFR(old, new []dns.RR) []dns.RR {
	set := func(rrs []dns.RR) map[string]bool {
		m := make(map[string]bool, len(rrs))
		for _, rr := range rrs {
			m[rr.String()] = true
		}
		return m
	}
	inOld, inNew := set(old), set(new)
	out := []dns.RR{new[0], old[0]}
	for _, rr := range old[1:] {
		if !inNew[rr.String()] {
			out = append(out, rr)
		}
	}
	out = append(out, new[0])
	for _, rr := range new[1:] {
		if !inOld[rr.String()] {
			out = append(out, rr)
		}
	}
	return append(out, new[0])
}

// secondaryCatalog configures one secondary zone of origin from p, its copy
// at file, signed with p's key.
func secondaryCatalog(t *testing.T, p *fakePrimary, file string, mod func(*Config)) *Catalog {
	t.Helper()
	c := &Config{}
	z := ZoneConfig{Origin: p.origin, File: file, Primaries: []string{p.addr.String()}}
	if p.key != "" {
		c.Keys = []KeyConfig{{Name: p.key, Algorithm: "hmac-sha256", Secret: p.secret}}
		z.Key = p.key
	}
	c.Zones = append(c.Zones, z)
	if mod != nil {
		mod(c)
	}
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	cat := NewCatalog(c, testLog())
	// The copies on disk written after a publication are done before
	// the test's directory goes.
	t.Cleanup(func() { waitCopies(cat) })
	return cat
}

// waitCopies waits until the copies on disk of every secondary zone of c
// are written.
func waitCopies(c *Catalog) {
	c.emu.RLock()
	entries := c.entries
	c.emu.RUnlock()
	for _, e := range entries {
		if e.sec != nil {
			e.sec.waitCopy(false)
		}
	}
}

// testLog logs to stderr with -v, for a failing test's story.
func testLog() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return quietLog()
}

// ask answers a query for name and type from the catalog's snapshot.
func ask(t *testing.T, c *Catalog, name string, qt uint16) *dns.Msg {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(name, qt)
	wire, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	snap := c.Current.Load()
	if snap == nil {
		t.Fatal("nothing published")
	}
	buf := make([]byte, 65535)
	n, _ := snap.Answer(buf, wire, true)
	r := new(dns.Msg)
	if err := r.Unpack(buf[:n]); err != nil {
		t.Fatalf("reply to %s does not parse: %v", name, err)
	}
	return r
}

// answerA returns the addresses of the A answer to name, or the rcode.
func answerA(t *testing.T, c *Catalog, name string) string {
	t.Helper()
	r := ask(t, c, name, dns.TypeA)
	if r.Rcode != dns.RcodeSuccess {
		return dns.RcodeToString[r.Rcode]
	}
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return strings.Join(out, ",")
}

func secondaryEntry(c *Catalog) *zoneEntry {
	for _, e := range c.entries {
		if e.sec != nil {
			return e
		}
	}
	return nil
}

func transferState(t *testing.T, c *Catalog) control.ZoneTransferStatus {
	t.Helper()
	st, err := c.TransferStatus(nil)
	if err != nil {
		t.Fatal(err)
	}
	return st[0]
}

const secV1 = `$TTL 300
@    IN SOA ns1 hostmaster 1 3600 600 86400 300
@    IN NS  ns1
ns1  IN A   192.0.2.53
www  IN A   192.0.2.80
mail IN A   192.0.2.25
`

const secV2 = `$TTL 300
@    IN SOA ns1 hostmaster 2 3600 600 86400 300
@    IN NS  ns1
ns1  IN A   192.0.2.53
www  IN A   192.0.2.81
mail IN A   192.0.2.25
new  IN A   192.0.2.99
`

// TestSecondaryTransfers follows a secondary zone from nothing: SERVFAIL
// before the first transfer, AXFR with TSIG and the copy on disk, IXFR
// applied to the served version, and the failures that must leave the
// served version alone.
func TestSecondaryTransfers(t *testing.T) {
	p := startFakePrimary(t, "sec.example.", "xfr-key")
	p.setZone(t, secV1)
	dir := t.TempDir()
	file := filepath.Join(dir, "sec.zone")
	c := secondaryCatalog(t, p, file, nil)
	if _, err := c.Load(); err != nil {
		t.Fatalf("Load with a secondary zone and no copy on disk: %v", err)
	}
	if got := answerA(t, c, "www.sec.example."); got != "SERVFAIL" {
		t.Fatalf("before the first transfer: got %s, want SERVFAIL", got)
	}
	e := secondaryEntry(c)
	ctx := context.Background()

	c.refreshZone(ctx, e, refreshSOA)
	if got := answerA(t, c, "www.sec.example."); got != "192.0.2.80" {
		t.Fatalf("after AXFR: www is %s (last error %q)", got, transferState(t, c).LastError)
	}
	st := transferState(t, c)
	if st.LastTransfer == nil || st.LastTransfer.Kind != "AXFR" || st.Serial != 1 || st.Expired {
		t.Fatalf("after AXFR: %+v %+v", st, st.LastTransfer)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("no copy on disk: %v", err)
	}

	p.setZone(t, secV2)
	c.refreshZone(ctx, e, refreshSOA)
	st = transferState(t, c)
	// The name added is applied in place or by Apply's rebuild of the
	// version served, depending on what Apply does in place; either way
	// not loaded from a file.
	if a := st.LastTransfer.Applied; st.LastTransfer.Kind != "IXFR" || st.Serial != 2 || a != "incremental" && !strings.HasPrefix(a, "rebuilt: ") {
		t.Fatalf("after the change: %+v %+v", st, st.LastTransfer)
	}
	if lt := st.LastTransfer; lt.ApplySeconds <= 0 || lt.ApplySeconds > lt.Seconds {
		t.Errorf("the IXFR's apply took %g s of its %g s: want a part of it", lt.ApplySeconds, lt.Seconds)
	}
	for name, want := range map[string]string{"www": "192.0.2.81", "new": "192.0.2.99", "mail": "192.0.2.25"} {
		if got := answerA(t, c, name+".sec.example."); got != want {
			t.Errorf("after IXFR: %s is %s, want %s", name, got, want)
		}
	}
	// The copy on disk is version 2, written after the publication: a
	// catalog started from it serves it.
	e.sec.waitCopy(false)
	c2 := secondaryCatalog(t, p, file, nil)
	if _, err := c2.Load(); err != nil {
		t.Fatal(err)
	}
	if got := answerA(t, c2, "new.sec.example."); got != "192.0.2.99" {
		t.Errorf("restarted from the copy on disk: new is %s", got)
	}

	// Failures, each leaving version 2 served. A difference that does not
	// apply falls back to AXFR (TestSecondaryIXFRFallback); here the
	// whole zone fails too.
	const secV3 = `$TTL 300
@    IN SOA ns1 hostmaster 3 3600 600 86400 300
@    IN NS  ns1
ns1  IN A   192.0.2.53
www  IN A   192.0.2.82
`
	failures := []struct {
		name  string
		setup func()
		want  string // in the error
	}{
		{"broken midway", func() { p.breakAt = 1 }, "broke off"},
		{"zone checks", func() {
			// Version 3 has a CNAME beside other data: its difference
			// does not apply, and the whole zone does not load.
			cname, _ := dns.NewRR("www.sec.example. 300 IN CNAME elsewhere.example.")
			p.versions[3] = append(p.versions[3], cname)
		}, "zone checks"},
	}
	for _, f := range failures {
		t.Run(f.name, func(t *testing.T) {
			p.mu.Lock()
			p.ixfr, p.breakAt = nil, 0
			p.mu.Unlock()
			p.setZone(t, secV3)
			p.mu.Lock()
			f.setup()
			p.mu.Unlock()
			before := transferState(t, c).Failures
			c.refreshZone(ctx, e, refreshSOA)
			st := transferState(t, c)
			if st.Serial != 2 || st.Failures != before+1 || !strings.Contains(st.LastError, f.want) {
				t.Errorf("serial %d, failures %d (were %d), error %q; want serial 2 kept and an error with %q",
					st.Serial, st.Failures, before, st.LastError, f.want)
			}
			if got := answerA(t, c, "www.sec.example."); got != "192.0.2.81" {
				t.Errorf("www is %s, want version 2's 192.0.2.81", got)
			}
		})
	}
	p.setZone(t, secV3)
	p.mu.Lock()
	p.ixfr, p.breakAt = nil, 0
	p.noIXFR = true
	p.mu.Unlock()
	c.refreshZone(ctx, e, refreshSOA)
	if st := transferState(t, c); st.Serial != 3 || st.LastTransfer.Kind != "AXFR" {
		t.Errorf("IXFR answered NOTIMP: serial %d by %s, want 3 by AXFR (error %q)", st.Serial, st.LastTransfer.Kind, st.LastError)
	}
	if got := answerA(t, c, "mail.sec.example."); got != "NXDOMAIN" {
		t.Errorf("after AXFR of version 3, mail is %s, want NXDOMAIN", got)
	}
}

// TestSecondaryWrongKey: a primary that does not know our key refuses the
// transfer (NOTAUTH), and one that signs with another secret fails TSIG;
// either way the served version is kept.
func TestSecondaryWrongKey(t *testing.T) {
	p := startFakePrimary(t, "sec.example.", "xfr-key")
	p.setZone(t, secV1)
	file := filepath.Join(t.TempDir(), "sec.zone")
	c := secondaryCatalog(t, p, file, nil)
	if _, err := c.Load(); err != nil {
		t.Fatal(err)
	}
	e := secondaryEntry(c)
	c.refreshZone(context.Background(), e, refreshSOA)
	if got := answerA(t, c, "www.sec.example."); got != "192.0.2.80" {
		t.Fatalf("www is %s", got)
	}
	// Our key is now another: the primary's verification fails.
	k := c.xfr.keys["xfr-key."]
	k.Secret = "b3RoZXIgc2VjcmV0IG9mIDMyIGJ5dGVzIGZvciB0ZXN0cw=="
	c.xfr.keys["xfr-key."] = k
	p.setZone(t, secV2)
	c.refreshZone(context.Background(), e, refreshSOA)
	st := transferState(t, c)
	if st.Serial != 1 || !strings.Contains(st.LastError, "NOTAUTH") {
		t.Errorf("wrong key: serial %d, error %q; want 1 kept and NOTAUTH", st.Serial, st.LastError)
	}
	if got := answerA(t, c, "www.sec.example."); got != "192.0.2.80" {
		t.Errorf("www is %s after a refused transfer", got)
	}
}

// TestSecondaryNotify checks who may NOTIFY and what a NOTIFY does.
func TestSecondaryNotify(t *testing.T) {
	p := startFakePrimary(t, "sec.example.", "xfr-key")
	p.setZone(t, secV1)
	file := filepath.Join(t.TempDir(), "sec.zone")
	c := secondaryCatalog(t, p, file, func(c *Config) {
		c.Zones[0].AllowNotify = []string{"192.0.2.0/24", "198.51.100.7 xfr-key"}
		c.Zones = append(c.Zones, ZoneConfig{Origin: "prim.example.", File: filepath.Join(t.TempDir(), "p.zone")})
	})
	prim := p.addr.Addr()
	for _, tc := range []struct {
		origin, from, key string
		want              int
	}{
		{"sec.example.", prim.String(), "xfr-key.", dns.RcodeSuccess},
		{"SEC.example", prim.String(), "xfr-key.", dns.RcodeSuccess},
		{"sec.example.", prim.String(), "", dns.RcodeRefused}, // the primary, unsigned: the zone has a key
		{"sec.example.", "192.0.2.9", "", dns.RcodeSuccess},
		{"sec.example.", "198.51.100.7", "", dns.RcodeRefused},
		{"sec.example.", "198.51.100.7", "xfr-key.", dns.RcodeSuccess},
		{"sec.example.", "203.0.113.1", "xfr-key.", dns.RcodeRefused},
		{"prim.example.", prim.String(), "", dns.RcodeNotAuth},
		{"other.example.", prim.String(), "", dns.RcodeNotAuth},
	} {
		got := c.Notify(tc.origin, netip.MustParseAddr(tc.from), tc.key)
		if got != tc.want {
			t.Errorf("Notify(%s from %s key %q) = %s, want %s", tc.origin, tc.from, tc.key,
				dns.RcodeToString[got], dns.RcodeToString[tc.want])
		}
	}
	// An accepted NOTIFY queues one refresh, whatever their number.
	e := secondaryEntry(c)
	select {
	case k := <-e.sec.kick:
		if k != refreshSOA {
			t.Errorf("queued %d, want an SOA refresh", k)
		}
	default:
		t.Fatal("no refresh queued by NOTIFY")
	}
	select {
	case <-e.sec.kick:
		t.Error("more than one refresh queued")
	default:
	}
	// An AXFR request is not lost to a pending SOA refresh.
	e.sec.request(refreshSOA)
	e.sec.request(refreshAXFR)
	e.sec.request(refreshSOA)
	if k := <-e.sec.kick; k != refreshAXFR {
		t.Errorf("queued %d, want AXFR", k)
	}
}

// TestSecondaryExpiry: a zone whose primaries cannot confirm it within the
// expire time answers SERVFAIL, and answers again once a primary does. The
// catalog's clock is moved instead of waiting.
func TestSecondaryExpiry(t *testing.T) {
	p := startFakePrimary(t, "sec.example.", "")
	p.setZone(t, secV1)
	p.mu.Lock()
	p.expire = 7200 // the EXPIRE option: less than the SOA's 86400
	p.mu.Unlock()
	file := filepath.Join(t.TempDir(), "sec.zone")
	c := secondaryCatalog(t, p, file, nil)
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	c.xfr.now = func() time.Time { return now }
	if _, err := c.Load(); err != nil {
		t.Fatal(err)
	}
	e := secondaryEntry(c)
	c.refreshZone(context.Background(), e, refreshSOA)
	st := transferState(t, c)
	if want := now.Add(7200 * time.Second); !st.Expires.Equal(want) {
		t.Errorf("expires %s, want %s from the EXPIRE option", st.Expires, want)
	}
	if c.expireIfDue(e, now.Add(7199*time.Second)) {
		t.Fatal("expired before its time")
	}
	if got := answerA(t, c, "www.sec.example."); got != "192.0.2.80" {
		t.Fatalf("www is %s", got)
	}
	if !c.expireIfDue(e, now.Add(7200*time.Second)) {
		t.Fatal("not expired at its time")
	}
	for _, name := range []string{"www.sec.example.", "sec.example.", "nothere.sec.example."} {
		if got := answerA(t, c, name); got != "SERVFAIL" {
			t.Errorf("expired: %s answered %s, want SERVFAIL", name, got)
		}
	}
	if st := transferState(t, c); !st.Expired || !st.Serving {
		t.Errorf("zone-status of the expired zone: expired %v serving %v", st.Expired, st.Serving)
	}
	// The primary confirms the same serial: served again.
	now = now.Add(8000 * time.Second)
	c.refreshZone(context.Background(), e, refreshSOA)
	if got := answerA(t, c, "www.sec.example."); got != "192.0.2.80" {
		t.Errorf("after the primary confirmed the zone: www is %s", got)
	}
	if st := transferState(t, c); st.Expired || !st.Expires.Equal(now.Add(7200*time.Second)) {
		t.Errorf("after the confirmation: expired %v, expires %s", st.Expired, st.Expires)
	}
}

// TestSerialNewer checks RFC 1982 serial arithmetic.
func TestSerialNewer(t *testing.T) {
	for _, tc := range []struct {
		a, b uint32
		want bool
	}{
		{2, 1, true}, {1, 2, false}, {1, 1, false},
		{0, 0xffffffff, true}, {0xffffffff, 0, false},
		{1 << 31, 0, false}, {0, 1 << 31, false}, // undefined: not newer
		{1<<31 - 1, 0, true},
	} {
		if got := serialNewer(tc.a, tc.b); got != tc.want {
			t.Errorf("serialNewer(%d, %d) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestCanonicalRecords: the records IXFR deletes are matched against the
// served version's, which zone.Walk gives with the RDATA names of RFC 4034
// section 6.2 in lowercase, whatever the case the primary sends: the
// canonical form Apply and the journal make of them
// (zone.CanonicalRecord) must be the same record where the case of the
// owner and of those names alone differ (the TTL does not count in a
// match), and another record where text or NSEC's next name differ.
func TestCanonicalRecords(t *testing.T) {
	key := func(rr dns.RR) string {
		r, err := zone.CanonicalRecord(rr)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%x %d %x", r.Owner, r.Type, r.Data)
	}
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"a.example. 300 IN NS NS1.Example.", "A.EXAMPLE. 60 IN NS ns1.example.", true},
		{"a.example. 300 IN MX 10 Mail.example.", "a.example. 300 IN MX 10 mail.example.", true},
		{"example. 300 IN SOA NS1.example. Host.example. 1 2 3 4 5", "example. 300 IN SOA ns1.example. host.example. 1 2 3 4 5", true},
		{"a.example. 300 IN TXT \"Hello\"", "a.example. 300 IN TXT \"hello\"", false},
		{"a.example. 300 IN A 192.0.2.1", "a.example. 300 IN A 192.0.2.2", false},
		{"a.example. 300 IN NSEC B.example. A", "a.example. 300 IN NSEC b.example. A", false},
	} {
		a, err := dns.NewRR(tc.a)
		if err != nil {
			t.Fatal(err)
		}
		b, err := dns.NewRR(tc.b)
		if err != nil {
			t.Fatal(err)
		}
		if got := key(a) == key(b); got != tc.same {
			t.Errorf("%q and %q: same %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}

// TestXfrConnTSIGError: a reply whose TSIG carries an error (the primary
// could not verify our request) is refused whatever its rcode, unsigned as
// RFC 8945 section 5.3.2 sends it for BADKEY and BADSIG: a NOERROR with a
// TSIG error must not pass for an answer.
func TestXfrConnTSIGError(t *testing.T) {
	key := &TSIGKey{Name: "xfr-key.", Algorithm: dns.HmacSHA256, Secret: xfrinTestSecret}
	for _, tc := range []struct {
		rcode    int
		tsigErr  uint16
		wantText string
	}{
		{dns.RcodeSuccess, dns.RcodeBadSig, "TSIG error BADSIG"},
		{dns.RcodeNotAuth, dns.RcodeBadKey, "TSIG error BADKEY"},
		{dns.RcodeNotAuth, dns.RcodeBadTime, "TSIG error BADTIME"},
	} {
		q := new(dns.Msg)
		q.SetQuestion("sec.example.", dns.TypeSOA)
		q.Id = 4242
		r := new(dns.Msg)
		r.SetRcode(q, tc.rcode)
		soa, _ := dns.NewRR("sec.example. 300 IN SOA ns1.sec.example. h.sec.example. 9 1 1 1 1")
		r.Answer = []dns.RR{soa}
		r.Extra = []dns.RR{&dns.TSIG{Hdr: dns.RR_Header{Name: "xfr-key.", Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
			Algorithm: dns.HmacSHA256, TimeSigned: uint64(time.Now().Unix()), Fudge: 300, OrigId: 4242, Error: tc.tsigErr}}
		wire, err := r.Pack()
		if err != nil {
			t.Fatal(err)
		}
		a, b := net.Pipe()
		go func() {
			b.Write(append([]byte{byte(len(wire) >> 8), byte(len(wire))}, wire...))
			b.Close()
		}()
		x := &xfrConn{conn: a, stream: true, key: key}
		got, _, err := x.recv(q)
		a.Close()
		if err == nil || !strings.Contains(err.Error(), tc.wantText) {
			t.Errorf("rcode %s, TSIG error %s: got %v, err %v; want an error with %q", dns.RcodeToString[tc.rcode],
				dns.RcodeToString[int(tc.tsigErr)], got, err, tc.wantText)
		}
	}
}

// TestSecondaryServer runs a whole Server with a secondary zone: it
// transfers the zone at start by itself, ringctl's zone-status, refresh and
// retransfer reach the catalog, and the metrics count the transfers in,
// the NOTIFY received and the time left before expiry.
func TestSecondaryServer(t *testing.T) {
	p := startFakePrimary(t, "sec.example.", "xfr-key")
	p.setZone(t, secV1)
	dir := t.TempDir()
	c := &Config{Server: ServerConfig{Listen: []string{"127.0.0.1:0"}, CPUs: "0", Control: dir + "/c.sock", Metrics: "127.0.0.1:0"},
		Keys: []KeyConfig{{Name: "xfr-key", Algorithm: "hmac-sha256", Secret: xfrinTestSecret}},
		Zones: []ZoneConfig{{Origin: "sec.example.", File: filepath.Join(dir, "sec.zone"),
			Primaries: []string{p.addr.String()}, Key: "xfr-key"}}}
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, c)
	status := func() control.ZoneTransferStatus {
		t.Helper()
		rep := s.HandleControl(control.Request{Cmd: control.CmdZoneStatus, Zones: []string{"sec.example"}})
		var zs []control.ZoneTransferStatus
		if !rep.OK || json.Unmarshal(rep.Data, &zs) != nil || len(zs) != 1 {
			t.Fatalf("zone-status: %+v", rep)
		}
		return zs[0]
	}
	// The transfer at start, and one each after refresh and retransfer;
	// 10 s bounds transfers of a few hundred bytes over loopback.
	if !poll(10*time.Second, func() bool { return status().Serial == 1 }) {
		t.Fatalf("the zone was not transferred at start: %+v", status())
	}
	p.setZone(t, secV2)
	if rep := s.HandleControl(control.Request{Cmd: control.CmdRefresh, Zones: []string{"sec.example."}}); !rep.OK {
		t.Fatalf("refresh: %+v", rep)
	}
	if !poll(10*time.Second, func() bool { return status().Serial == 2 }) {
		t.Fatalf("refresh did not transfer serial 2: %+v", status())
	}
	if rep := s.HandleControl(control.Request{Cmd: control.CmdRetransfer, Zones: []string{"sec.example."}}); !rep.OK {
		t.Fatalf("retransfer: %+v", rep)
	}
	if !poll(10*time.Second, func() bool { return status().Transfers == 3 }) {
		t.Fatalf("retransfer did not transfer: %+v", status())
	}
	if st := status(); st.LastTransfer.Kind != "AXFR" || st.Role != "secondary" || st.Expired {
		t.Errorf("after retransfer: %+v %+v", st, st.LastTransfer)
	}
	for _, bad := range []control.Request{
		{Cmd: control.CmdRefresh},
		{Cmd: control.CmdRefresh, Zones: []string{"other.example."}},
		{Cmd: control.CmdZoneStatus, Zones: []string{"other.example."}},
	} {
		if rep := s.HandleControl(bad); rep.OK {
			t.Errorf("%+v succeeded", bad)
		}
	}
	s.Catalog.Notify("other.example.", netip.MustParseAddr("127.0.0.1"), "")

	resp, err := http.Get("http://" + s.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`ringdns_transfers_in_total{kind="axfr",result="ok"} 2`,
		`ringdns_transfers_in_total{kind="ixfr",result="ok"} 1`,
		`ringdns_transfers_in_total{kind="ixfr",result="failed"} 0`,
		`ringdns_notify_in_total{result="notauth"} 1`,
		`ringdns_zone_expire_seconds{zone="sec.example."} 86`,
		`ringdns_transfers_in_ixfr_applied_total{how="axfr-fallback"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Version 2 adds a name: applied in place, or rebuilt by Apply while
	// names added are not applied in place.
	if !strings.Contains(string(body), `ringdns_transfers_in_ixfr_applied_total{how="incremental"} 1`) &&
		!strings.Contains(string(body), `ringdns_transfers_in_ixfr_applied_total{how="rebuilt"} 1`) {
		t.Error("metrics lack the IXFR applied to the version served")
	}
}

// TestExpireOptionAnswered: the published snapshot answers the EDNS EXPIRE
// option (RFC 7314) with a primary zone's SOA expire field and with the
// time left before a secondary zone expires, which moves on when a primary
// confirms the zone without a new publication.
func TestExpireOptionAnswered(t *testing.T) {
	expireOf := func(c *Catalog, name string) int64 {
		t.Helper()
		q := new(dns.Msg)
		q.SetQuestion(name, dns.TypeSOA)
		o := q.SetEdns0(1232, false).IsEdns0()
		o.Option = append(o.Option, &dns.EDNS0_EXPIRE{Code: dns.EDNS0EXPIRE, Empty: true})
		wire, _ := q.Pack()
		buf := make([]byte, 4096)
		n, _ := c.Current.Load().Answer(buf, wire, false)
		r := new(dns.Msg)
		if err := r.Unpack(buf[:n]); err != nil {
			t.Fatal(err)
		}
		for _, op := range r.IsEdns0().Option {
			if e, ok := op.(*dns.EDNS0_EXPIRE); ok {
				return int64(e.Expire)
			}
		}
		return -1
	}
	prim, _ := newTestCatalog(t, "example.", zoneText("example.", 1))
	if _, err := prim.Load(); err != nil {
		t.Fatal(err)
	}
	if got := expireOf(prim, "example."); got != 1209600 {
		t.Errorf("primary zone: EXPIRE %d, want the SOA's 1209600", got)
	}

	p := startFakePrimary(t, "sec.example.", "")
	p.setZone(t, secV1)
	c := secondaryCatalog(t, p, filepath.Join(t.TempDir(), "sec.zone"), nil)
	if _, err := c.Load(); err != nil {
		t.Fatal(err)
	}
	e := secondaryEntry(c)
	c.refreshZone(context.Background(), e, refreshSOA)
	// secV1's SOA expire is 86400; the answer is made within a few
	// seconds of the transfer even on a loaded machine.
	if got := expireOf(c, "sec.example."); got < 86300 || got > 86400 {
		t.Errorf("secondary zone: EXPIRE %d, want about 86400", got)
	}
	p.mu.Lock()
	p.expire = 600
	p.mu.Unlock()
	before := c.Current.Load()
	c.refreshZone(context.Background(), e, refreshSOA)
	if c.Current.Load() != before {
		t.Error("a confirmation of the same serial published a new snapshot")
	}
	if got := expireOf(c, "sec.example."); got < 500 || got > 600 {
		t.Errorf("after the primary's EXPIRE of 600: EXPIRE %d", got)
	}
}

// TestTransfersInBounded: a transfer waits for a token of the bound on
// transfers in, and an SOA query for one of the bound on SOA queries; with
// every token taken, neither reaches the primary, and both give up when
// the server stops.
func TestTransfersInBounded(t *testing.T) {
	p := startFakePrimary(t, "sec.example.", "")
	p.setZone(t, secV1)
	c := secondaryCatalog(t, p, filepath.Join(t.TempDir(), "sec.zone"), nil)
	if _, err := c.Load(); err != nil {
		t.Fatal(err)
	}
	e := secondaryEntry(c)
	for range cap(c.xfr.sem) {
		c.xfr.sem <- struct{}{}
	}
	for range cap(c.xfr.soa) {
		c.xfr.soa <- struct{}{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, _, _, err := c.querySOA(ctx, p.addr, e.origin, "", false); err == nil {
		t.Error("an SOA query went out over the bound")
	}
	if _, _, err := c.transferIn(ctx, e, p.addr, nil); err == nil {
		t.Error("a transfer went out over the bound")
	}
	p.mu.Lock()
	n := len(p.requests)
	p.mu.Unlock()
	if n != 0 {
		t.Errorf("the primary got %d requests", n)
	}
	// One token back: the transfer goes through.
	<-c.xfr.sem
	if _, res, err := c.transferIn(context.Background(), e, p.addr, nil); err != nil || res.z.Serial() != 1 {
		t.Errorf("with a token free: %v", err)
	}
}

// secTLD is a zone of delegations with glue and DS for the tests of IXFR
// applied to the version served; edit rewrites its text.
func secTLD(serial int, edit func(string) string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "$TTL 300\n@ IN SOA ns1 hostmaster %d 3600 600 86400 300\n@ IN NS ns1\nns1 IN A 192.0.2.53\n", serial)
	for i := range 30 {
		fmt.Fprintf(&sb, "d%d IN NS ns1.d%d\nns1.d%d IN A 10.0.0.%d\nd%d IN DS 1 13 2 %064x\n", i, i, i, i, i, i)
	}
	if edit != nil {
		return edit(sb.String())
	}
	return sb.String()
}

// sameAnswers fails the test unless catalogs a and b give byte-identical
// replies to queries for every name of the zone text and a few more, of
// several types, with and without DNSSEC OK.
func sameAnswers(t *testing.T, a, b *Catalog, origin, text string) {
	t.Helper()
	names := map[string]bool{origin: true, "nothere." + origin: true, "x.d3." + origin: true}
	for _, l := range strings.Split(text, "\n") {
		if f := strings.Fields(l); len(f) > 0 && !strings.HasPrefix(f[0], "$") && f[0] != "@" {
			names[f[0]+"."+origin] = true
		}
	}
	buf := make([]byte, 65535)
	reply := func(c *Catalog, q []byte) []byte {
		n, _ := c.Current.Load().Answer(buf, q, true)
		return append([]byte(nil), buf[:n]...)
	}
	for name := range names {
		for _, qt := range []uint16{dns.TypeA, dns.TypeNS, dns.TypeDS, dns.TypeSOA, dns.TypeAAAA} {
			for _, do := range []bool{false, true} {
				m := new(dns.Msg)
				m.SetQuestion(name, qt)
				m.SetEdns0(1232, do)
				q, err := m.Pack()
				if err != nil {
					t.Fatal(err)
				}
				if ra, rb := reply(a, q), reply(b, q); !bytes.Equal(ra, rb) {
					t.Errorf("%s %s DO=%v: the replies differ:\n%x\n%x", name, dns.TypeToString[qt], do, ra, rb)
				}
			}
		}
	}
}

// loadedCatalog serves text as a primary zone loaded from a file, the
// reference a transferred or reloaded version must answer as.
func loadedCatalog(t *testing.T, origin, text string) *Catalog {
	t.Helper()
	file := filepath.Join(t.TempDir(), "ref.zone")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &Config{Zones: []ZoneConfig{{Origin: origin, File: file}}}
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	cat := NewCatalog(c, testLog())
	if _, err := cat.Load(); err != nil {
		t.Fatal(err)
	}
	return cat
}

// TestSecondaryIXFRCase: an IXFR whose records name their owners in
// capitals, as a primary may send them, is applied in place (the deletion
// finds the record the zone holds in lowercase), and the journal is handed
// the difference in the zone's own case.
func TestSecondaryIXFRCase(t *testing.T) {
	const origin = "tld.example."
	p := startFakePrimary(t, origin, "")
	v1 := secTLD(1, nil)
	v2 := secTLD(2, func(s string) string { return strings.Replace(s, "ns1.d3 IN A 10.0.0.3", "ns1.d3 IN A 10.9.9.3", 1) })
	p.setZone(t, v1)
	c := secondaryCatalog(t, p, filepath.Join(t.TempDir(), "tld.zone"), nil)
	var known []*changeset
	c.onKnown = func(_ string, from, to *zone.Zone, sets []*changeset) {
		if from.Serial() == 1 && to.Serial() == 2 {
			known = sets
		}
	}
	if _, err := c.Load(); err != nil {
		t.Fatal(err)
	}
	e := secondaryEntry(c)
	ctx := context.Background()
	c.refreshZone(ctx, e, refreshSOA)
	p.setZone(t, v2)
	p.ixfr = func(from uint32) []dns.RR {
		var out []dns.RR
		for _, rr := range diffIXFR(p.versions[1], p.versions[2]) {
			rr = dns.Copy(rr)
			rr.Header().Name = strings.ToUpper(rr.Header().Name)
			out = append(out, rr)
		}
		return out
	}
	c.refreshZone(ctx, e, refreshSOA)
	st := transferState(t, c)
	if st.Serial != 2 || st.LastTransfer.Kind != "IXFR" || st.LastTransfer.Applied != "incremental" {
		t.Fatalf("after IXFR: serial %d, %+v (error %q)", st.Serial, st.LastTransfer, st.LastError)
	}
	sameAnswers(t, c, loadedCatalog(t, origin, v2), origin, v2)
	if len(known) != 1 {
		t.Fatalf("the journal was handed %d differences, want 1", len(known))
	}
	lower, upper := []byte("\x03ns1\x02d3\x03tld"), []byte("\x03NS1\x02D3\x03TLD")
	for what, b := range map[string][]byte{"deleted": known[0].del, "added": known[0].add} {
		if !bytes.Contains(b, lower) || bytes.Contains(b, upper) {
			t.Errorf("the journal's %s records name ns1.d3 in another case than the zone's: %q", what, b)
		}
	}
}

// TestSecondaryIXFRApplied: an IXFR of two differences (glue, DS, a TTL and
// the SOA) is applied to the version served with zone.Zone.Apply, not
// loaded from a file: the answers are byte-identical to those of the final
// zone loaded from its file, the journal is handed the two differences as
// received, and the copy on disk, written after the publication, holds the
// final zone.
func TestSecondaryIXFRApplied(t *testing.T) {
	const origin = "tld.example."
	p := startFakePrimary(t, origin, "")
	p.perMsg = 50
	v1 := secTLD(1, nil)
	v2 := secTLD(2, func(s string) string {
		s = strings.Replace(s, "ns1.d3 IN A 10.0.0.3", "ns1.d3 IN A 10.9.9.3", 1)
		return strings.Replace(s, fmt.Sprintf("d4 IN DS 1 13 2 %064x", 4), "d4 IN DS 2 13 2 "+strings.Repeat("ab", 32), 1)
	})
	v3 := secTLD(3, func(s string) string {
		s = strings.Replace(s, "ns1.d3 IN A 10.0.0.3", "ns1.d3 IN A 10.9.9.3", 1)
		s = strings.Replace(s, fmt.Sprintf("d4 IN DS 1 13 2 %064x", 4), "d4 IN DS 2 13 2 "+strings.Repeat("ab", 32), 1)
		s = strings.Replace(s, "ns1.d5 IN A 10.0.0.5", "ns1.d5 60 IN A 10.0.0.5", 1)
		return strings.Replace(s, "ns1.d6 IN A 10.0.0.6", "ns1.d6 IN A 10.0.0.6\nns1.d6 IN A 10.0.0.66", 1)
	})
	p.setZone(t, v1)
	file := filepath.Join(t.TempDir(), "tld.zone")
	c := secondaryCatalog(t, p, file, nil)
	var known [][]*changeset
	c.onKnown = func(_ string, from, to *zone.Zone, sets []*changeset) {
		if from.Serial() == 1 && to.Serial() == 3 {
			known = append(known, sets)
		}
	}
	if _, err := c.Load(); err != nil {
		t.Fatal(err)
	}
	e := secondaryEntry(c)
	ctx := context.Background()
	c.refreshZone(ctx, e, refreshSOA)
	if st := transferState(t, c); st.Serial != 1 {
		t.Fatalf("after AXFR: %+v", st)
	}
	p.setZone(t, v2)
	p.setZone(t, v3)
	// The primary sends the differences from 1 to 2 and from 2 to 3.
	p.ixfr = func(from uint32) []dns.RR {
		d12, d23 := diffIXFR(p.versions[1], p.versions[2]), diffIXFR(p.versions[2], p.versions[3])
		out := append([]dns.RR{p.versions[3][0]}, d12[1:len(d12)-1]...)
		return append(out, d23[1:]...)
	}
	c.refreshZone(ctx, e, refreshSOA)
	st := transferState(t, c)
	if st.Serial != 3 || st.LastTransfer.Kind != "IXFR" || st.LastTransfer.Applied != "incremental" {
		t.Fatalf("after IXFR: serial %d, %+v (error %q)", st.Serial, st.LastTransfer, st.LastError)
	}
	if got := c.xfr.stats.applied[0].Load(); got != 1 {
		t.Errorf("IXFRs applied in place: %d, want 1", got)
	}
	if e.cur.Applied() != "incremental" {
		t.Errorf("the version served was made %q", e.cur.Applied())
	}
	sameAnswers(t, c, loadedCatalog(t, origin, v3), origin, v3)
	if len(known) != 1 || len(known[0]) != 2 || known[0][0].from != 1 || known[0][0].to != 2 || known[0][1].to != 3 {
		t.Errorf("the journal was handed %v, want the differences 1-2 and 2-3", known)
	} else if r := known[0][1].records; r != 3 {
		// The TTL changed (deleted and added) and one address added.
		t.Errorf("the difference 2-3 has %d records, want 3", r)
	}
	// The copy on disk, once written, is the final zone.
	e.sec.waitCopy(false)
	c2 := secondaryCatalog(t, p, file, nil)
	if _, err := c2.Load(); err != nil {
		t.Fatal(err)
	}
	sameAnswers(t, c2, loadedCatalog(t, origin, v3), origin, v3)
	// A reload of the copy just written finds it unchanged.
	res, err := c.Reload(nil)
	if err != nil || res.Zones[0].Status != control.StatusUnchanged {
		t.Errorf("reload of the copy written: %+v, %v; want unchanged", res, err)
	}
}

// TestSecondaryIXFRFallback: differences that do not apply to the version
// served (a deletion of a record it does not hold, a serial that does not
// chain) are not served in part: the zone is transferred by AXFR instead,
// and the fallback is counted and reported.
func TestSecondaryIXFRFallback(t *testing.T) {
	soa := func(n uint32) dns.RR {
		rr, _ := dns.NewRR(fmt.Sprintf("sec.example. 300 IN SOA ns1.sec.example. hostmaster.sec.example. %d 3600 600 86400 300", n))
		return rr
	}
	gone, _ := dns.NewRR("nothere.sec.example. 300 IN A 192.0.2.1")
	www, _ := dns.NewRR("www.sec.example. 300 IN A 192.0.2.81")
	for _, tc := range []struct {
		name string
		ixfr []dns.RR
		want string
	}{
		{"deletion of a record not there", []dns.RR{soa(2), soa(1), gone, soa(2), soa(2)}, "is not in the zone"},
		{"serials that do not chain", []dns.RR{soa(2), soa(1), soa(5), www, soa(2)}, "end at serial 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startFakePrimary(t, "sec.example.", "")
			p.setZone(t, secV1)
			c := secondaryCatalog(t, p, filepath.Join(t.TempDir(), "sec.zone"), nil)
			if _, err := c.Load(); err != nil {
				t.Fatal(err)
			}
			e := secondaryEntry(c)
			c.refreshZone(context.Background(), e, refreshSOA)
			p.setZone(t, secV2)
			p.mu.Lock()
			p.ixfr = func(uint32) []dns.RR { return tc.ixfr }
			p.mu.Unlock()
			c.refreshZone(context.Background(), e, refreshSOA)
			st := transferState(t, c)
			if st.Serial != 2 || st.LastTransfer.Kind != "AXFR" || !strings.HasPrefix(st.LastTransfer.Applied, "axfr-fallback") ||
				!strings.Contains(st.LastTransfer.Applied, tc.want) {
				t.Errorf("serial %d by %s, applied %q; want 2 by AXFR after a fallback naming %q",
					st.Serial, st.LastTransfer.Kind, st.LastTransfer.Applied, tc.want)
			}
			if got := c.xfr.stats.applied[2].Load(); got != 1 {
				t.Errorf("fallbacks counted: %d, want 1", got)
			}
			if got := answerA(t, c, "new.sec.example."); got != "192.0.2.99" {
				t.Errorf("after the fallback: new is %s", got)
			}
			p.mu.Lock()
			defer p.mu.Unlock()
			if n := len(p.requests); n < 2 || p.requests[n-1] != dns.TypeAXFR || p.requests[n-2] != dns.TypeIXFR {
				t.Errorf("requests %v, want IXFR then AXFR last", p.requests)
			}
		})
	}
}

// TestSecondaryCopyAfterPublication: the copy on disk of a version applied
// from an IXFR is written after the version is published. Until it is,
// the file holds the version before, whole: a server started from it (as
// after a crash between the publication and the write) serves that
// version and refreshes from it by IXFR; then the copy is written.
func TestSecondaryCopyAfterPublication(t *testing.T) {
	p := startFakePrimary(t, "sec.example.", "")
	p.setZone(t, secV1)
	file := filepath.Join(t.TempDir(), "sec.zone")
	c := secondaryCatalog(t, p, file, nil)
	if _, err := c.Load(); err != nil {
		t.Fatal(err)
	}
	e := secondaryEntry(c)
	ctx := context.Background()
	c.refreshZone(ctx, e, refreshSOA)
	// A write still in progress, which the copy of the next version
	// waits for: the window between the publication and the write.
	held := make(chan struct{})
	e.sec.mu.Lock()
	e.sec.copying = held
	e.sec.mu.Unlock()
	p.setZone(t, secV2)
	c.refreshZone(ctx, e, refreshSOA)
	if got := answerA(t, c, "www.sec.example."); got != "192.0.2.81" {
		t.Fatalf("version 2 not published while its copy waits: www is %s", got)
	}
	c2 := secondaryCatalog(t, p, file, nil)
	if _, err := c2.Load(); err != nil {
		t.Fatalf("the copy on disk before the write: %v", err)
	}
	if got := answerA(t, c2, "www.sec.example."); got != "192.0.2.80" {
		t.Errorf("started from the copy before the write: www is %s, want version 1's", got)
	}
	e2 := secondaryEntry(c2)
	c2.refreshZone(ctx, e2, refreshSOA)
	if st := transferState(t, c2); st.Serial != 2 || st.LastTransfer.Kind != "IXFR" {
		t.Errorf("the restarted server's refresh: serial %d by %+v, want 2 by IXFR", st.Serial, st.LastTransfer)
	}
	close(held)
	e.sec.waitCopy(false)
	c3 := secondaryCatalog(t, p, file, nil)
	if _, err := c3.Load(); err != nil {
		t.Fatal(err)
	}
	if got := answerA(t, c3, "new.sec.example."); got != "192.0.2.99" {
		t.Errorf("the copy written after the publication: new is %s", got)
	}
}

// TestSecondaryReloadOlderCopy: when the copy on disk of a version applied
// from an IXFR was not written (a full disk), a reload of the zone does not
// load the older copy over the version served: it keeps it, and writes its
// copy again.
func TestSecondaryReloadOlderCopy(t *testing.T) {
	p := startFakePrimary(t, "sec.example.", "")
	p.setZone(t, secV1)
	file := filepath.Join(t.TempDir(), "sec.zone")
	c := secondaryCatalog(t, p, file, nil)
	if _, err := c.Load(); err != nil {
		t.Fatal(err)
	}
	e := secondaryEntry(c)
	ctx := context.Background()
	c.refreshZone(ctx, e, refreshSOA)
	// The write of version 2's copy waits behind held, and is given up
	// (copyWant cleared) as a failed write would leave it.
	held := make(chan struct{})
	e.sec.mu.Lock()
	e.sec.copying = held
	e.sec.mu.Unlock()
	p.setZone(t, secV2)
	c.refreshZone(ctx, e, refreshSOA)
	done := make(chan struct{})
	close(done)
	e.sec.mu.Lock()
	given, gone := e.sec.copying, e.sec.copyWant
	e.sec.copying, e.sec.copyWant = done, nil
	e.sec.mu.Unlock()
	// The write given up ends before the test does.
	defer func() {
		close(held)
		<-given
	}()
	if gone == nil || gone.Serial() != 2 {
		t.Fatalf("the copy asked for is %v, want version 2's", gone)
	}
	res, err := c.Reload(nil)
	if err != nil {
		t.Fatal(err)
	}
	if zr := res.Zones[0]; zr.Status != control.StatusUnchanged || zr.Serial != 2 {
		t.Errorf("reload over an older copy: %+v, want version 2 kept", zr)
	}
	if got := answerA(t, c, "new.sec.example."); got != "192.0.2.99" {
		t.Errorf("after the reload: new is %s, want version 2's", got)
	}
	e.sec.waitCopy(false)
	if s, _, err := readCopySOA(file, "sec.example."); err != nil || s.Serial != 2 {
		t.Errorf("the copy written again: %v, %v; want serial 2", s, err)
	}
}
