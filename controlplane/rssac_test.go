package controlplane

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringdns/ringdns/controlplane/control"
	"github.com/ringdns/ringdns/dataplane"
	"github.com/ringdns/ringdns/nic"
)

func TestRSSACConfig(t *testing.T) {
	for _, c := range []struct {
		name, toml string
		want       *RSSACConfig
		err        string
	}{
		{"defaults", "[rssac002]\nservice = \"x.example\"\n", &RSSACConfig{Service: "x.example", KeepDays: 30, Zone: "."}, ""},
		{"all", "[rssac002]\nservice = \"a.root-servers.net\"\ndir = \"/var/lib/ringdns/rssac002\"\nkeep-days = 7\nzone = \"example\"\n",
			&RSSACConfig{Service: "a.root-servers.net", Dir: "/var/lib/ringdns/rssac002", KeepDays: 7, Zone: "example."}, ""},
		{"no service", "[rssac002]\ndir = \"/tmp\"\n", nil, "rssac002.service: missing"},
		{"slash", "[rssac002]\nservice = \"a/b\"\n", nil, "no slash"},
		{"keep", "[rssac002]\nservice = \"x\"\nkeep-days = -1\n", nil, "rssac002.keep-days -1"},
		{"unknown key", "[rssac002]\nservice = \"x\"\nserver-name = \"y\"\n", nil, "server-name"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := ParseConfig([]byte("[[zone]]\norigin = \"example.\"\nfile = \"x.zone\"\n"+c.toml), "test.toml")
			if err == nil {
				err = cfg.Normalize()
			}
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one with %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *cfg.RSSAC002 != *c.want {
				t.Errorf("got %+v, want %+v", *cfg.RSSAC002, *c.want)
			}
		})
	}
}

// rssacFixture is an rssacStats on a stopped clock with two workers and
// a TCP server.
func rssacFixture(t *testing.T, dir string, now time.Time) (*rssacStats, []*dataplane.RSSAC) {
	t.Helper()
	old := rssacGrace
	rssacGrace = 0
	t.Cleanup(func() { rssacGrace = old })
	cfg := &RSSACConfig{Service: "test.example", Dir: dir, KeepDays: 2}
	if errs := cfg.normalize(); errs != nil {
		t.Fatal(errs)
	}
	r, err := newRSSACStats(cfg, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	r.now = func() time.Time { return now }
	r.day, r.since = now.Truncate(24*time.Hour), now.Truncate(24*time.Hour)
	return r, []*dataplane.RSSAC{r.newCounter(false), r.newCounter(false), r.newCounter(true)}
}

// count sends through c queries of qlen bytes from addr answered with
// rlen bytes and rcode rc.
func count(c *dataplane.RSSAC, addr string, n, qlen, rlen int, rc uint16) {
	a := nic.AddrFrom(netip.MustParseAddrPort(addr))
	for range n {
		c.Count(qlen, false, &a, rlen, dataplane.Result{Kind: dataplane.KindAnswer, Rcode: rc})
	}
}

// TestRSSACDays counts a day's traffic in two workers and a TCP server,
// rolls the day over and checks the documents of the day that ended,
// byte for byte, then that the new day starts from nothing, that the
// files are where RSSAC002 puts them, that a day older than keep-days is
// removed and that a finished day can be read back from memory and from
// the directory.
func TestRSSACDays(t *testing.T) {
	dir := t.TempDir()
	day1 := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	r, c := rssacFixture(t, dir, day1.Add(13*time.Hour))
	count(c[0], "198.18.0.1:5000", 3, 40, 100, 0)
	count(c[1], "198.18.0.2:5000", 2, 16, 15, 3)
	count(c[1], "198.18.0.1:5000", 1, 52, 700, 0) // a source both workers saw
	count(c[0], "[fd53::1]:5000", 4, 31, 48, 0)
	count(c[0], "[fd53::1:2]:5000", 1, 31, 48, 5)
	count(c[1], "[fd53:0:0:1::1]:5000", 1, 31, 48, 5)
	count(c[2], "198.18.0.3:5000", 2, 60, 1300, 0)
	count(c[2], "[fd53::7]:5000", 1, 60, 0, 0) // no response
	c[0].Count(11, false, nil, 12, dataplane.Result{})
	a := nic.AddrFrom(netip.MustParseAddrPort("198.18.0.9:1"))
	c[0].Count(40, true, &a, 0, dataplane.Result{}) // a response: not a query
	c[0].Count(8, false, &a, 0, dataplane.Result{}) // shorter than a header
	r.loadTime(".", 2026120501, 1500*time.Millisecond)
	r.loadTime("example.", 7, time.Second) // not the zone reported
	r.loadTime(".", 2026120502, 3*time.Second)

	const want = `---
version: rssac002v3
service: test.example
start-period: 2026-12-05T00:00:00Z
metric: load-time
2026120501: 2
2026120502: 3
---
version: rssac002v3
service: test.example
start-period: 2026-12-05T00:00:00Z
metric: traffic-volume
dns-udp-queries-received-ipv4: 6
dns-udp-queries-received-ipv6: 6
dns-tcp-queries-received-ipv4: 2
dns-tcp-queries-received-ipv6: 1
dns-udp-responses-sent-ipv4: 6
dns-udp-responses-sent-ipv6: 6
dns-tcp-responses-sent-ipv4: 2
dns-tcp-responses-sent-ipv6: 0
---
version: rssac002v3
service: test.example
start-period: 2026-12-05T00:00:00Z
metric: traffic-sizes
udp-request-sizes:
  16-31: 8
  32-47: 3
  48-63: 1
udp-response-sizes:
  0-15: 2
  48-63: 6
  96-111: 3
  688-703: 1
tcp-request-sizes:
  48-63: 3
tcp-response-sizes:
  1296-1311: 2
---
version: rssac002v3
service: test.example
start-period: 2026-12-05T00:00:00Z
metric: rcode-volume
0: 10
3: 2
5: 2
---
version: rssac002v3
service: test.example
start-period: 2026-12-05T00:00:00Z
metric: unique-sources
num-sources-ipv4: 3
num-sources-ipv6: 4
num-sources-ipv6-aggregate: 2
`
	day, _, doc := r.today()
	if !day.Equal(day1) {
		t.Errorf("day %v", day)
	}
	if doc != want {
		t.Errorf("day so far:\n%s\nwant:\n%s", doc, want)
	}

	day2 := day1.Add(24 * time.Hour)
	r.roll(day2)
	rep, err := r.report("2026-12-05")
	if err != nil || rep.YAML != want || rep.Partial {
		t.Errorf("report of the day ended: %v %+v", err, rep)
	}
	for _, m := range rssacMetrics {
		name := filepath.Join(dir, "2026", "12", m, "test.example-20261205-"+m+".yaml")
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(data), "---\nversion: rssac002v3\n") || !strings.Contains(want, string(data)) {
			t.Errorf("%s:\n%s", name, data)
		}
	}
	// The new day begins empty, sources included.
	_, _, doc = r.today()
	for _, line := range []string{"dns-udp-queries-received-ipv4: 0\n", "udp-request-sizes: {}\n", "num-sources-ipv4: 0\n", "num-sources-ipv6-aggregate: 0\n", "metric: rcode-volume\n---"} {
		if !strings.Contains(doc, line) {
			t.Errorf("new day lacks %q:\n%s", line, doc)
		}
	}
	count(c[1], "198.18.0.1:5000", 1, 40, 100, 0)
	if _, _, doc = r.today(); !strings.Contains(doc, "dns-udp-queries-received-ipv4: 1\n") || !strings.Contains(doc, "num-sources-ipv4: 1\n") {
		t.Errorf("new day after one query:\n%s", doc)
	}

	// Read back from the directory by another instance (a restart).
	r2, _ := rssacFixture(t, dir, day2.Add(time.Hour))
	if rep, err := r2.report("2026-12-05"); err != nil || rep.YAML != want {
		t.Errorf("from the directory: %v\n%s", err, rep.YAML)
	}
	// keep-days 2: after the roll-over to 12-08, 12-05 is removed.
	r.roll(day2.Add(24 * time.Hour))
	r.roll(day2.Add(48 * time.Hour))
	if _, err := os.Stat(filepath.Join(dir, "2026", "12", "load-time", "test.example-20261205-load-time.yaml")); !os.IsNotExist(err) {
		t.Errorf("12-05 kept past keep-days: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "2026", "12", "load-time", "test.example-20261207-load-time.yaml")); err != nil {
		t.Errorf("12-07: %v", err)
	}
	if _, err := r2.report("2026-12-05"); err == nil || !strings.Contains(err.Error(), "keep-days") {
		t.Errorf("12-05 after it was removed: %v", err)
	}
	if _, err := r.report("2026-13-01"); err == nil {
		t.Error("no error for a bad date")
	}
}

// TestRSSACRunRolls checks that run rolls the day over by itself once the
// clock has passed midnight.
func TestRSSACRunRolls(t *testing.T) {
	day1 := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	r, c := rssacFixture(t, "", day1.Add(23*time.Hour))
	count(c[0], "198.18.0.1:5000", 5, 40, 100, 0)
	done := make(chan struct{})
	stopped := make(chan struct{})
	// The clock passes midnight while the day's counts are kept.
	r.now = func() time.Time { return day1.Add(24*time.Hour + time.Second) }
	go func() { r.run(done); close(stopped) }()
	// run rolls at once; 60 s leaves a loaded machine plenty.
	deadline := time.Now().Add(60 * time.Second)
	for {
		r.mu.Lock()
		_, ok := r.kept["2026-12-05"]
		r.mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the day did not roll over")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(done)
	<-stopped
	rep, err := r.report("2026-12-05")
	if err != nil || !strings.Contains(rep.YAML, "dns-udp-queries-received-ipv4: 5\n") {
		t.Errorf("%v\n%s", err, rep.YAML)
	}
}

// TestHandleRSSAC checks the control command's errors.
func TestHandleRSSAC(t *testing.T) {
	s := &Server{}
	if rep := s.handleRSSAC(control.Request{Cmd: control.CmdRSSAC002}); rep.OK || !strings.Contains(rep.Error, "[rssac002]") {
		t.Errorf("off: %+v", rep)
	}
	s.rssac, _ = rssacFixture(t, "", time.Now())
	if rep := s.handleRSSAC(control.Request{Cmd: control.CmdRSSAC002, Zones: []string{"a", "b"}}); rep.OK {
		t.Errorf("two dates: %+v", rep)
	}
	if rep := s.handleRSSAC(control.Request{Cmd: control.CmdRSSAC002}); !rep.OK || !strings.Contains(string(rep.Data), "traffic-volume") {
		t.Errorf("today: %+v", rep)
	}
}

// TestRSSACLoadTime transfers a secondary zone in twice, by AXFR and by
// IXFR, with the catalog's load-time hook wired to an rssacStats as the
// server wires it, and checks that load-time lists both serials, and that
// an up-to-date refresh adds nothing.
func TestRSSACLoadTime(t *testing.T) {
	p := startFakePrimary(t, "sec.example.", "xfr-key")
	p.setZone(t, secV1)
	c := secondaryCatalog(t, p, filepath.Join(t.TempDir(), "sec.zone"), nil)
	if _, err := c.Load(); err != nil {
		t.Fatal(err)
	}
	r, _ := rssacFixture(t, "", time.Now())
	r.cfg.Zone = "sec.example."
	c.onLoadTime = r.loadTime
	e := secondaryEntry(c)
	c.refreshZone(context.Background(), e, refreshSOA)
	p.setZone(t, secV2)
	c.refreshZone(context.Background(), e, refreshSOA)
	c.refreshZone(context.Background(), e, refreshSOA)
	_, _, doc := r.today()
	// Each transfer takes well under a second here: rounded up, 1.
	if !strings.Contains(doc, "metric: load-time\n1: 1\n2: 1\n---") {
		t.Errorf("load-time after two transfers:\n%s", doc)
	}
}
