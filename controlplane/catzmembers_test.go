package controlplane

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/controlplane/control"
)

// catzPrimary is a primary serving several zones from one address, as a
// catalog's primary serves the catalog and its members: each zone is a
// fakePrimary (xfrin_test.go) that is not listening itself, reached
// through a mux by the query's name.
type catzPrimary struct {
	addr  netip.AddrPort
	mux   *dns.ServeMux
	zones map[string]*fakePrimary
}

func startCatzPrimary(t *testing.T) *catzPrimary {
	t.Helper()
	cp := &catzPrimary{mux: dns.NewServeMux(), zones: map[string]*fakePrimary{}}
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
	cp.addr = netip.MustParseAddrPort(ln.Addr().String())
	udp := &dns.Server{PacketConn: pc, Handler: cp.mux}
	tcp := &dns.Server{Listener: ln, Handler: cp.mux}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() {
		udp.Shutdown()
		tcp.Shutdown()
	})
	return cp
}

// setZone serves a new version of origin, from text.
func (cp *catzPrimary) setZone(t *testing.T, origin, text string) {
	t.Helper()
	p := cp.zones[origin]
	if p == nil {
		p = &fakePrimary{origin: origin, versions: map[uint32][]dns.RR{}, perMsg: 20, addr: cp.addr}
		cp.zones[origin] = p
		var h dns.Handler = p
		if strings.HasPrefix(origin, "catz") {
			// Knot DNS refuses queries for a catalog zone over UDP.
			h = dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
				if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
					m := new(dns.Msg)
					m.SetRcode(r, dns.RcodeRefused)
					w.WriteMsg(m)
					return
				}
				p.ServeDNS(w, r)
			})
		}
		cp.mux.Handle(origin, h)
	}
	p.setZone(t, text)
}

// catzText is a catalog zone of serial serial listing members, each
// "UNIQUE-ID NAME", with the version TXT record version.
func catzText(serial int, version string, members ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$TTL 0\n@ IN SOA invalid. invalid. %d 3600 600 2147483646 0\n@ IN NS invalid.\n", serial)
	fmt.Fprintf(&b, "version IN TXT %q\n", version)
	for _, m := range members {
		id, name, _ := strings.Cut(m, " ")
		fmt.Fprintf(&b, "%s.zones IN PTR %s\n", id, name)
	}
	return b.String()
}

// memberText is a member zone whose www has address addr.
func memberText(serial int, addr string) string {
	return fmt.Sprintf("$TTL 300\n@ IN SOA ns1 hostmaster %d 3600 600 86400 300\n@ IN NS ns1\nns1 IN A 192.0.2.53\nwww IN A %s\n", serial, addr)
}

// catzCatalog configures catz.example. as a catalog zone from cp, its
// copy and its members' in dir.
func catzCatalog(t *testing.T, cp *catzPrimary, dir string, mod func(*Config)) *Catalog {
	t.Helper()
	c := &Config{Zones: []ZoneConfig{{Origin: "catz.example.", File: filepath.Join(dir, "catz.zone"),
		Primaries: []string{cp.addr.String()}, CatalogMembers: filepath.Join(dir, "members")}}}
	if mod != nil {
		mod(c)
	}
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	return NewCatalog(c, testLog())
}

// runCatalog loads the catalog and runs its secondaries until the test ends.
func runCatalog(t *testing.T, c *Catalog) {
	t.Helper()
	if _, err := c.Load(); err != nil && err != ErrNoZones {
		t.Fatal(err)
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		c.RunSecondaries(done)
		close(stopped)
	}()
	t.Cleanup(func() {
		close(done)
		<-stopped
	})
}

// eventually waits for cond, polling; the bound is generous for a loaded
// 2-core machine, where each step is a transfer over loopback of a few
// records and takes milliseconds when nothing else runs.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// statusOf returns zone-status for origin, or nil when it is not a zone.
func statusOf(t *testing.T, c *Catalog, origin string) *control.ZoneTransferStatus {
	t.Helper()
	st, err := c.TransferStatus(nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range st {
		if st[i].Origin == origin {
			return &st[i]
		}
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// TestCatalogZoneMembers follows a catalog zone's members through the
// catalog's versions: transferred after the catalog, one added, one
// removed, one reset by a new unique ID, a catalog of an unknown version
// that changes nothing, and a restart that serves the copies on disk at
// once.
func TestCatalogZoneMembers(t *testing.T) {
	cp := startCatzPrimary(t)
	cp.setZone(t, "catz.example.", catzText(1, "2", "m1 one.example.", "m2 two.example."))
	cp.setZone(t, "one.example.", memberText(1, "192.0.2.1"))
	cp.setZone(t, "two.example.", memberText(1, "192.0.2.2"))
	cp.setZone(t, "three.example.", memberText(1, "192.0.2.3"))
	dir := t.TempDir()
	members := filepath.Join(dir, "members")
	c := catzCatalog(t, cp, dir, nil)
	runCatalog(t, c)

	// The catalog is transferred, then each member from its primaries.
	eventually(t, "both members served", func() bool {
		return answerA(t, c, "www.one.example.") == "192.0.2.1" && answerA(t, c, "www.two.example.") == "192.0.2.2"
	})
	if st := statusOf(t, c, "one.example."); st.Role != "secondary" || st.Catalog != "catz.example." ||
		len(st.Primaries) != 1 || st.Primaries[0] != cp.addr.String() {
		t.Errorf("member's zone-status = %+v, want a secondary of catalog catz.example. from %s", st, cp.addr)
	}
	if st := statusOf(t, c, "catz.example."); st.CatalogMembers == nil || *st.CatalogMembers != 2 {
		t.Errorf("catalog's zone-status members = %v, want 2", st.CatalogMembers)
	}
	if got := c.catalogCounts(); len(got) != 1 || got[0] != (catalogCount{"catz.example.", 2}) {
		t.Errorf("catalog counts for the metrics = %+v, want catz.example. 2", got)
	}
	if !exists(filepath.Join(members, "one.example.m1.zone")) {
		t.Errorf("no copy of one.example. in %s", members)
	}
	if got := answerA(t, c, "www.three.example."); got != "REFUSED" {
		t.Errorf("three.example. before it is listed: %s, want REFUSED", got)
	}

	// A member added: served after the catalog's refresh (a NOTIFY here).
	cp.setZone(t, "catz.example.", catzText(2, "2", "m1 one.example.", "m2 two.example.", "m3 three.example."))
	if rc := c.Notify("catz.example.", cp.addr.Addr(), ""); rc != dns.RcodeSuccess {
		t.Fatalf("NOTIFY for the catalog: %s", dns.RcodeToString[rc])
	}
	eventually(t, "three.example. served once listed", func() bool {
		return answerA(t, c, "www.three.example.") == "192.0.2.3"
	})
	// A member takes NOTIFY from the catalog's primaries.
	if rc := c.Notify("three.example.", cp.addr.Addr(), ""); rc != dns.RcodeSuccess {
		t.Errorf("NOTIFY for a member: %s, want NOERROR", dns.RcodeToString[rc])
	}

	// A member removed: no longer served, its copy deleted.
	cp.setZone(t, "catz.example.", catzText(3, "2", "m1 one.example.", "m3 three.example."))
	c.Refresh("catz.example.", false)
	eventually(t, "two.example. refused once unlisted", func() bool {
		return answerA(t, c, "www.two.example.") == "REFUSED"
	})
	if statusOf(t, c, "two.example.") != nil {
		t.Error("two.example. still in zone-status after its removal")
	}
	eventually(t, "the removed member's copy deleted", func() bool {
		return !exists(filepath.Join(members, "two.example.m2.zone"))
	})
	if rc := c.Notify("two.example.", cp.addr.Addr(), ""); rc != dns.RcodeNotAuth {
		t.Errorf("NOTIFY for a removed member: %s, want NOTAUTH", dns.RcodeToString[rc])
	}

	// A member reset by a new unique ID: its copy dropped and transferred
	// afresh by AXFR, though the serial is the same.
	before := statusOf(t, c, "one.example.")
	cp.setZone(t, "catz.example.", catzText(4, "2", "m1new one.example.", "m3 three.example."))
	c.Refresh("catz.example.", false)
	eventually(t, "one.example. transferred again under its new ID", func() bool {
		st := statusOf(t, c, "one.example.")
		return exists(filepath.Join(members, "one.example.m1new.zone")) && st != nil && st.Serving && st.Transfers == 1
	})
	eventually(t, "the old copy of the reset member deleted", func() bool {
		return !exists(filepath.Join(members, "one.example.m1.zone"))
	})
	if st := statusOf(t, c, "one.example."); st.LastTransfer == nil || st.LastTransfer.Kind != "AXFR" ||
		!st.LastTransfer.Started.After(before.LastTransfer.Started) {
		t.Errorf("reset member's last transfer = %+v, want a new AXFR", st.LastTransfer)
	}
	if got := answerA(t, c, "www.one.example."); got != "192.0.2.1" {
		t.Errorf("reset member answers %s", got)
	}

	// A catalog of a version this consumer does not understand changes
	// nothing, and zone-status says why.
	cp.setZone(t, "catz.example.", catzText(5, "3"))
	c.Refresh("catz.example.", false)
	eventually(t, "the catalog's serial 5 served", func() bool {
		st := statusOf(t, c, "catz.example.")
		return st.Serial == 5
	})
	if st := statusOf(t, c, "catz.example."); !strings.Contains(st.LastError, "version") || *st.CatalogMembers != 2 {
		t.Errorf("catalog of version 3: members %d, last error %q; want 2 and the version named", *st.CatalogMembers, st.LastError)
	}
	if got := answerA(t, c, "www.three.example."); got != "192.0.2.3" {
		t.Errorf("three.example. after a catalog of version 3: %s, want still served", got)
	}

	// A restart, with the primary gone: the members are known from the
	// catalog's copy and served from theirs at once.
	cp.setZone(t, "catz.example.", catzText(6, "2", "m1new one.example.", "m3 three.example."))
	c.Refresh("catz.example.", false)
	eventually(t, "the catalog's serial 6 served", func() bool { return statusOf(t, c, "catz.example.").Serial == 6 })
	// A restart follows a shutdown, which waits for the copies of the
	// versions applied from IXFR that are still being written.
	waitCopies(c)
	c2 := catzCatalog(t, cp, dir, func(cfg *Config) { cfg.Zones[0].Primaries = []string{"127.0.0.1:1"} })
	if _, err := c2.Load(); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"www.one.example.": "192.0.2.1", "www.three.example.": "192.0.2.3", "www.two.example.": "REFUSED"} {
		if got := answerA(t, c2, name); got != want {
			t.Errorf("after a restart, %s: %s, want %s", name, got, want)
		}
	}
	if st := statusOf(t, c2, "three.example."); st == nil || st.Catalog != "catz.example." || st.Primaries[0] != "127.0.0.1:1" {
		t.Errorf("after a restart, three.example.'s zone-status = %+v", st)
	}
}

// TestCatalogZoneClash: a member whose name is a configured zone, or a
// member of another catalog, is ignored (RFC 9432 section 5.4); the zone
// goes on being served as it was.
func TestCatalogZoneClash(t *testing.T) {
	cp := startCatzPrimary(t)
	cp.setZone(t, "catz.example.", catzText(1, "2", "a prim.example.", "b shared.example."))
	cp.setZone(t, "catz2.example.", catzText(1, "2", "c shared.example."))
	cp.setZone(t, "prim.example.", memberText(1, "192.0.2.99"))
	cp.setZone(t, "shared.example.", memberText(1, "192.0.2.7"))
	dir := t.TempDir()
	primFile := filepath.Join(dir, "prim.zone")
	if err := os.WriteFile(primFile, []byte(memberText(1, "198.51.100.1")), 0o644); err != nil {
		t.Fatal(err)
	}
	c := catzCatalog(t, cp, dir, func(cfg *Config) {
		cfg.Zones = append(cfg.Zones,
			ZoneConfig{Origin: "prim.example.", File: primFile},
			ZoneConfig{Origin: "catz2.example.", File: filepath.Join(dir, "catz2.zone"),
				Primaries: []string{cp.addr.String()}, CatalogMembers: filepath.Join(dir, "members2")})
	})
	runCatalog(t, c)
	eventually(t, "both catalogs read", func() bool {
		a, b := statusOf(t, c, "catz.example."), statusOf(t, c, "catz2.example.")
		return a.Serving && b.Serving && answerA(t, c, "www.shared.example.") == "192.0.2.7"
	})
	if got := answerA(t, c, "www.prim.example."); got != "198.51.100.1" {
		t.Errorf("the configured zone answers %s, want its file's 198.51.100.1", got)
	}
	if st := statusOf(t, c, "prim.example."); st.Role != "primary" || st.Catalog != "" {
		t.Errorf("the configured zone's status = %+v, want a primary of no catalog", st)
	}
	st := statusOf(t, c, "shared.example.")
	n1, n2 := *statusOf(t, c, "catz.example.").CatalogMembers, *statusOf(t, c, "catz2.example.").CatalogMembers
	if n1+n2 != 1 {
		t.Errorf("members: catz %d, catz2 %d; want shared.example. counted once", n1, n2)
	}
	if st.Catalog != "catz.example." && st.Catalog != "catz2.example." {
		t.Errorf("shared.example.'s catalog = %q", st.Catalog)
	}
	entries := 0
	for _, s := range mustStatus(t, c) {
		if s.Origin == "shared.example." {
			entries++
		}
	}
	if entries != 1 {
		t.Errorf("shared.example. is %d zones, want 1", entries)
	}
}

func mustStatus(t *testing.T, c *Catalog) []control.ZoneTransferStatus {
	t.Helper()
	st, err := c.TransferStatus(nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestCatalogZoneMembersMax: the members past catalog-members-max, in
// name order, are not served, and the catalog's status says so.
func TestCatalogZoneMembersMax(t *testing.T) {
	cp := startCatzPrimary(t)
	cp.setZone(t, "catz.example.", catzText(1, "2", "a one.example.", "b two.example.", "c three.example."))
	for i, n := range []string{"one", "two", "three"} {
		cp.setZone(t, n+".example.", memberText(1, fmt.Sprintf("192.0.2.%d", i+1)))
	}
	c := catzCatalog(t, cp, t.TempDir(), func(cfg *Config) { cfg.Zones[0].CatalogMembersMax = 2 })
	runCatalog(t, c)
	eventually(t, "the first two members by name served", func() bool {
		return answerA(t, c, "www.one.example.") == "192.0.2.1" && answerA(t, c, "www.three.example.") == "192.0.2.3"
	})
	if got := answerA(t, c, "www.two.example."); got != "REFUSED" {
		t.Errorf("the member past the bound answers %s, want REFUSED", got)
	}
	if st := statusOf(t, c, "catz.example."); *st.CatalogMembers != 2 || !strings.Contains(st.LastError, "catalog-members-max") {
		t.Errorf("catalog status: %d members, last error %q", *st.CatalogMembers, st.LastError)
	}
}

// TestCatalogMembersConfig: only a secondary zone can be a catalog, and
// the setting is spelled as documented.
func TestCatalogMembersConfig(t *testing.T) {
	c, err := ParseConfig([]byte(`
[[zone]]
origin = "catz.example."
file = "catz.zone"
catalog-members = "members"
catalog-members-max = 50
`), "test.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Normalize(); err == nil || !strings.Contains(err.Error(), "only a secondary zone can be a catalog") {
		t.Errorf("a catalog without primaries: %v", err)
	}
	c.Zones[0].Primaries = []string{"192.0.2.1"}
	if err := c.Normalize(); err != nil {
		t.Errorf("a secondary catalog: %v", err)
	}
	c.Zones[0].CatalogMembersMax = -1
	if err := c.Normalize(); err == nil {
		t.Error("a negative catalog-members-max accepted")
	}
	c.Zones[0].CatalogMembersMax = 0
	if err := c.Normalize(); err != nil || c.Zones[0].CatalogMembersMax != DefaultCatalogMembersMax {
		t.Errorf("catalog-members-max left out: %v, %d; want the default", err, c.Zones[0].CatalogMembersMax)
	}
	c.Zones[0].CatalogMembers = ""
	if err := c.Normalize(); err == nil || !strings.Contains(err.Error(), "catalog-members-max is set") {
		t.Errorf("catalog-members-max without catalog-members: %v", err)
	}
	if _, err := ParseConfig([]byte("[[zone]]\norigin = \"x.\"\ncatalog-member = \"m\"\n"), "t.toml"); err == nil {
		t.Error("a misspelt catalog-members accepted")
	}
}

func TestMemberFile(t *testing.T) {
	for _, tc := range []struct{ origin, id, want string }{
		{"example.com.", "abc", "example.com.abc.zone"},
		{`a\/b.example.`, "x", "a%5C%2Fb.example.x.zone"},
		{"x.", "Upper", "x.%55pper.zone"},
	} {
		if got := filepath.Base(memberFile("/d", catalogMember{Origin: tc.origin, ID: tc.id})); got != tc.want {
			t.Errorf("memberFile(%q, %q) = %q, want %q", tc.origin, tc.id, got, tc.want)
		}
	}
	long := catalogMember{Origin: strings.Repeat(strings.Repeat("a", 63)+".", 3) + strings.Repeat("b", 61) + ".", ID: "id"}
	if got := filepath.Base(memberFile("/d", long)); len(got) != 64+5 {
		t.Errorf("a long member's file name %q: want its SHA-256", got)
	}
}

// TestCatalogZoneServer runs a Server with a catalog zone whose settings
// feed a further tier: a member may be transferred out under the
// catalog's allow-transfer, and its new versions are sent NOTIFY to the
// catalog's notify targets; the metrics count the members.
func TestCatalogZoneServer(t *testing.T) {
	cp := startCatzPrimary(t)
	cp.setZone(t, "catz.example.", catzText(1, "2", "m1 one.example.", "m2 two.example."))
	cp.setZone(t, "one.example.", memberText(1, "192.0.2.1"))
	cp.setZone(t, "two.example.", memberText(1, "192.0.2.2"))
	// The further tier's NOTIFY listener.
	tier, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tier.Close()
	dir := t.TempDir()
	c := &Config{Server: ServerConfig{Listen: []string{"127.0.0.1:0"}, CPUs: "0", Control: dir + "/c.sock", Metrics: "127.0.0.1:0"},
		Zones: []ZoneConfig{{Origin: "catz.example.", File: filepath.Join(dir, "catz.zone"),
			Primaries: []string{cp.addr.String()}, CatalogMembers: filepath.Join(dir, "members"),
			AllowTransfer: []string{"127.0.0.0/8"}, Notify: []string{tier.LocalAddr().String()}}}}
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, c)
	eventually(t, "both members served", func() bool {
		return answerA(t, s.Catalog, "www.one.example.") == "192.0.2.1" && answerA(t, s.Catalog, "www.two.example.") == "192.0.2.2"
	})

	// NOTIFY for each member's first version, to the catalog's target.
	notified := map[string]bool{}
	buf := make([]byte, 512)
	for !notified["one.example."] || !notified["two.example."] {
		tier.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, from, err := tier.ReadFrom(buf)
		if err != nil {
			t.Fatalf("NOTIFY for the members to the catalog's notify target: %v (got %v)", err, notified)
		}
		m := new(dns.Msg)
		if m.Unpack(buf[:n]) != nil || m.Opcode != dns.OpcodeNotify || len(m.Question) != 1 {
			continue
		}
		notified[m.Question[0].Name] = true
		r := new(dns.Msg)
		r.SetReply(m)
		if out, err := r.Pack(); err == nil {
			tier.WriteTo(out, from)
		}
	}

	// AXFR of a member, as the catalog's allow-transfer allows.
	tr := new(dns.Transfer)
	q := new(dns.Msg)
	q.SetAxfr("one.example.")
	env, err := tr.In(q, s.Listen()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for e := range env {
		if e.Error != nil {
			t.Fatalf("AXFR of a member: %v", e.Error)
		}
		for _, rr := range e.RR {
			got = append(got, rr.String())
		}
	}
	if len(got) != 5 || !strings.Contains(strings.Join(got, "\n"), "192.0.2.1") {
		t.Errorf("AXFR of one.example. from ringdns: %q", got)
	}

	resp, err := http.Get("http://" + s.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	// A member's journal, for IXFR to the further tier, goes with it.
	cp.setZone(t, "one.example.", memberText(2, "192.0.2.11"))
	s.Catalog.Refresh("one.example.", false)
	eventually(t, "one.example.'s journal holds its change", func() bool {
		n, _ := s.journals.Versions("one.example.")
		return n == 1
	})
	journal := filepath.Join(dir, "members", "one.example.m1.zone.journal")
	if !exists(journal) {
		t.Errorf("no journal file %s beside the member's copy", journal)
	}
	cp.setZone(t, "catz.example.", catzText(2, "2", "m2 two.example."))
	s.Catalog.Refresh("catz.example.", false)
	eventually(t, "one.example. refused once unlisted", func() bool {
		return answerA(t, s.Catalog, "www.one.example.") == "REFUSED"
	})
	if n, _ := s.journals.Versions("one.example."); n != 0 {
		t.Errorf("the removed member's journal keeps %d versions", n)
	}
	eventually(t, "the removed member's journal file deleted", func() bool { return !exists(journal) })

	for _, want := range []string{
		`ringdns_catalog_members{zone="catz.example."} 2`,
		`ringdns_zone_serial{zone="two.example."} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
