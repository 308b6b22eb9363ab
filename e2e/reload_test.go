package e2e

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/controlplane/control"
)

// TestRingctl runs every ringctl command, as tables and as JSON.
func TestRingctl(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	zfile := filepath.Join(dir, "ctl.zone")
	writeFileAtomic(t, zfile, testZone("ctl.test.", 1))
	d := startDaemon(t, "-zone", "example.="+exampleZone(), "-zone", "ctl.test.="+zfile)
	for i := 0; i < 3; i++ {
		mustExchange(t, d.addr(false), false, "www.example.", dns.TypeA)
	}
	mustExchange(t, d.addr(true), true, "nothing.example.", dns.TypeA)

	t.Run("status", func(t *testing.T) {
		out, code := d.ringctl("status")
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		for _, w := range []string{"version", "pid", d.status.Listen[0], d.status.Listen[1], "data plane  sockets",
			"zones       2 serving, 0 failing, 2 configured", d.control} {
			if !strings.Contains(out, w) {
				t.Errorf("status lacks %q:\n%s", w, out)
			}
		}
		var st control.Status
		if rep, code := d.ctlJSON(&st, "status"); code != 0 || !rep.OK {
			t.Fatalf("status -json: exit %d, %+v", code, rep)
		}
		if st.PID != d.cmd.Process.Pid || st.ZonesServing != 2 || st.Control != d.control || st.Reloads != 1 {
			t.Errorf("status -json: %+v", st)
		}
	})
	t.Run("zones", func(t *testing.T) {
		out, code := d.ringctl("zones")
		if code != 0 || !strings.Contains(out, "ZONE") || !hasRow(out, "example.", "2026112501", "21") ||
			!hasRow(out, "ctl.test.", "1", "6") || !strings.Contains(out, zfile) {
			t.Errorf("zones: exit %d:\n%s", code, out)
		}
		var zs []control.ZoneStatus
		if rep, code := d.ctlJSON(&zs, "zones"); code != 0 || !rep.OK || len(zs) != 2 {
			t.Fatalf("zones -json: exit %d, %+v", code, rep)
		}
		if zs[1].Origin != "ctl.test." || zs[1].Serial != 1 || !zs[1].Serving || zs[1].Records != 6 || zs[1].Loads != 1 {
			t.Errorf("zones -json: %+v", zs[1])
		}
	})
	t.Run("stats", func(t *testing.T) {
		out, code := d.ringctl("stats")
		if code != 0 || !strings.Contains(out, "NXDOMAIN=1") || !strings.Contains(out, "tcp:    1 accepted") {
			t.Errorf("stats: exit %d:\n%s", code, out)
		}
		var s control.Stats
		if rep, code := d.ctlJSON(&s, "stats"); code != 0 || !rep.OK {
			t.Fatalf("stats -json: exit %d, %+v", code, rep)
		}
		if s.Total.Queries != 4 || s.Total.Replies != 4 || s.Total.Rcodes["NOERROR"] != 3 || s.Total.Rcodes["NXDOMAIN"] != 1 {
			t.Errorf("stats -json total: %+v", s.Total)
		}
		// Two UDP workers per address at least (one per CPU) and one TCP
		// server per address.
		kinds := map[string]int{}
		for _, w := range s.Workers {
			kinds[w.Kind]++
		}
		if kinds["tcp"] != 2 || kinds["udp"] != d.status.Workers {
			t.Errorf("stats -json workers by kind %v, status says %d workers", kinds, d.status.Workers)
		}
	})
	t.Run("reload", func(t *testing.T) {
		// An unchanged file is not rebuilt.
		var res control.ReloadResult
		rep, code := d.ctlJSON(&res, "reload", "ctl.test")
		if code != 0 || !rep.OK || len(res.Zones) != 1 || res.Zones[0].Status != control.StatusUnchanged {
			t.Errorf("reload of an unchanged zone: exit %d, %+v %+v", code, rep, res)
		}
		writeFileAtomic(t, zfile, testZone("ctl.test.", 2))
		out, code := d.ringctl("reload", "ctl.test.")
		if code != 0 || !hasRow(out, "ctl.test.", "loaded", "2") {
			t.Errorf("reload: exit %d:\n%s", code, out)
		}
		if s, _ := soaSerial(mustExchange(t, d.addr(false), false, "ctl.test.", dns.TypeSOA)); s != 2 {
			t.Errorf("serial %d served after the reload, want 2", s)
		}
		// Reloading everything reports both zones.
		rep, code = d.ctlJSON(&res, "reload")
		if code != 0 || !rep.OK || len(res.Zones) != 2 {
			t.Errorf("reload all: exit %d, %+v %+v", code, rep, res)
		}
		// A broken file is reported with file:line and the old version
		// keeps serving.
		writeFileAtomic(t, zfile, brokenZone("ctl.test.", 3))
		out, code = d.ringctl("reload", "ctl.test.")
		where := fmt.Sprintf("%s:%d:", zfile, brokenZoneLine)
		if code != 1 || !strings.Contains(out, where) || !strings.Contains(out, "serial 2 still served") {
			t.Errorf("reload of a broken zone: exit %d, want 1 and %q:\n%s", code, where, out)
		}
		rep, code = d.ctlJSON(&res, "reload", "ctl.test.")
		if code != 1 || rep.OK || len(res.Zones) != 1 || res.Zones[0].Line != brokenZoneLine ||
			!strings.Contains(res.Zones[0].Error, where) || !res.Zones[0].Serving || res.Zones[0].Serial != 2 {
			t.Errorf("reload -json of a broken zone: exit %d, %+v %+v", code, rep, res)
		}
		if s, _ := soaSerial(mustExchange(t, d.addr(true), true, "ctl.test.", dns.TypeSOA)); s != 2 {
			t.Errorf("serial %d served after the failed reload, want 2", s)
		}
		out, _ = d.ringctl("zones")
		if !strings.Contains(out, "stale") || !strings.Contains(out, where) {
			t.Errorf("zones after a failed reload should show the zone stale and the error:\n%s", out)
		}
		out, code = d.ringctl("reload", "nosuch.test")
		if code != 1 || !strings.Contains(out, "zone not configured: nosuch.test.") {
			t.Errorf("reload of an unknown zone: exit %d:\n%s", code, out)
		}
	})
	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{{}, {"frobnicate"}, {"status", "extra"}} {
			if out, code := d.ringctl(args...); code != 2 {
				t.Errorf("ringctl %v: exit %d, want 2:\n%s", args, code, out)
			}
		}
		out, code := d.ringctlAt(filepath.Join(dir, "none.sock"), "status")
		if code != 1 || !strings.Contains(out, "is ringdns running?") {
			t.Errorf("ringctl on a missing socket: exit %d:\n%s", code, out)
		}
	})
	d.alive()
}

// ringctlAt runs ringctl against another socket path.
func (d *daemon) ringctlAt(path string, args ...string) (string, int) {
	d.t.Helper()
	saved := d.control
	d.control = path
	defer func() { d.control = saved }()
	return d.ringctl(args...)
}

// TestSIGHUP reloads every zone on SIGHUP.
func TestSIGHUP(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.zone"), filepath.Join(dir, "b.zone")
	writeFileAtomic(t, a, testZone("a.test.", 1))
	writeFileAtomic(t, b, testZone("b.test.", 1))
	d := startDaemon(t, "-zone", "a.test.="+a, "-zone", "b.test.="+b)
	writeFileAtomic(t, a, testZone("a.test.", 2))
	writeFileAtomic(t, b, testZone("b.test.", 3))
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for origin, want := range map[string]uint32{"a.test.": 2, "b.test.": 3} {
		var got uint32
		ok := poll(20*time.Second, func() bool {
			got, _ = soaSerial(mustExchange(t, d.addr(false), false, origin, dns.TypeSOA))
			return got == want
		})
		if !ok {
			t.Errorf("%s serial %d 20 s after SIGHUP, want %d", origin, got, want)
		}
	}
	var st control.Status
	d.ctlJSON(&st, "status")
	if st.Reloads != 2 {
		t.Errorf("%d reloads after one SIGHUP, want 2 (the initial load and the signal's)", st.Reloads)
	}
	d.alive()
}

// loadClient asks one address over one transport, over and over, until
// stop is closed or it has sent maxQueries, and checks every reply: www
// must always have its one address, and the SOA serial seen must never go
// backwards nor be one that was never published.
type loadClient struct {
	addr       netip.AddrPort
	tcp        bool
	origin     string
	maxQueries int
	pause      time.Duration // between two pairs of queries

	queries  atomic.Int64
	failures atomic.Int64
	mu       sync.Mutex
	errs     []string
	serials  map[uint32]bool
}

func (c *loadClient) fail(format string, args ...any) {
	c.failures.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errs) < 10 {
		c.errs = append(c.errs, fmt.Sprintf(format, args...))
	}
}

func (c *loadClient) run(stop <-chan struct{}, published func(uint32) bool) {
	c.serials = map[uint32]bool{}
	var conn *dns.Conn
	if c.tcp {
		var err error
		conn, err = dns.DialTimeout(netOf(true, c.addr.Addr().Is6()), c.addr.String(), queryTimeout)
		if err != nil {
			c.fail("dial: %v", err)
			return
		}
		defer conn.Close()
	}
	ask := func(name string, qtype uint16) (*dns.Msg, error) {
		c.queries.Add(1)
		if conn == nil {
			return exchange(c.addr, false, name, qtype)
		}
		return connExchange(conn, name, qtype)
	}
	var last uint32
	// The pause keeps the clients from taking both CPUs of a small machine
	// away from the daemon and ringctl, which would make the test measure
	// the scheduler instead of the reloads.
	tick := time.NewTicker(c.pause)
	defer tick.Stop()
	for i := 0; i < c.maxQueries; i += 2 {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		r, err := ask("www."+c.origin, dns.TypeA)
		if err != nil {
			c.fail("www A: %v", err)
			if conn != nil {
				return
			}
			continue
		}
		if got := rrStrings(r.Answer); r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(got) != 1 ||
			got[0] != "www."+c.origin+" 300 IN A 192.0.2.80" {
			c.fail("www A: rcode %s, answer %q", dns.RcodeToString[r.Rcode], got)
		}
		r, err = ask(c.origin, dns.TypeSOA)
		if err != nil {
			c.fail("SOA: %v", err)
			if conn != nil {
				return
			}
			continue
		}
		s, err := soaSerial(r)
		switch {
		case err != nil:
			c.fail("%v", err)
		case s < last:
			c.fail("serial went back from %d to %d", last, s)
		case !published(s):
			c.fail("serial %d was never published", s)
		default:
			last = s
			c.mu.Lock()
			c.serials[s] = true
			c.mu.Unlock()
		}
	}
}

// TestReloadUnderLoad reloads a zone 50 times through ringctl, once from a
// broken file, while clients query it continuously over UDP and TCP, IPv4
// and IPv6. No query may fail or get a wrong answer, the broken reload must
// be reported with its file and line, and every reload that succeeded must
// be visible to the next query.
func TestReloadUnderLoad(t *testing.T) {
	t.Parallel()
	const (
		origin  = "load.test."
		reloads = 50
		broken  = 25 // the reload that reads a broken file
		base    = 1000
	)
	dir := t.TempDir()
	zfile := filepath.Join(dir, "load.zone")
	writeFileAtomic(t, zfile, testZone(origin, base))
	d := startDaemon(t, "-zone", origin+"="+zfile)

	// published holds the serials that were, or are about to be, served:
	// a serial is added before its reload starts, since clients may see it
	// before ringctl returns.
	var pubMu sync.Mutex
	pub := map[uint32]bool{base: true}
	published := func(s uint32) bool {
		pubMu.Lock()
		defer pubMu.Unlock()
		return pub[s]
	}

	stop := make(chan struct{})
	var clients []*loadClient
	for _, v6 := range []bool{false, true} {
		for _, tcp := range []bool{false, true} {
			clients = append(clients, &loadClient{addr: d.addr(v6), tcp: tcp, origin: origin,
				maxQueries: 200000, pause: 500 * time.Microsecond})
		}
	}
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.run(stop, published)
		}()
	}
	stopClients := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopClients()
	// The reloads start once every client is under way.
	if !poll(20*time.Second, func() bool {
		for _, c := range clients {
			if c.queries.Load() < 10 && c.failures.Load() == 0 {
				return false
			}
		}
		return true
	}) {
		t.Fatal("the clients did not get going within 20 s")
	}

	start := time.Now()
	var before int64
	for _, c := range clients {
		before += c.queries.Load()
	}
	// A connection opened before the reloads must see each of them too: a
	// TCP server that kept the snapshot of the connection's start would
	// pass a check made on fresh connections.
	persist, err := dns.DialTimeout("tcp", d.addr(true).String(), queryTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer persist.Close()
	persistSerial := func() (uint32, error) {
		r, err := connExchange(persist, origin, dns.TypeSOA)
		if err != nil {
			return 0, err
		}
		return soaSerial(r)
	}
	serial := uint32(base)
	where := fmt.Sprintf("%s:%d:", zfile, brokenZoneLine)
	var maxSwap float64
	for i := 1; i <= reloads; i++ {
		if i == broken {
			writeFileAtomic(t, zfile, brokenZone(origin, serial+1))
			out, code := d.ringctl("reload", origin)
			if code != 1 || !strings.Contains(out, where) {
				t.Errorf("reload %d of a broken file: exit %d, want 1 and %q:\n%s", i, code, where, out)
			}
		} else {
			serial++
			pubMu.Lock()
			pub[serial] = true
			pubMu.Unlock()
			writeFileAtomic(t, zfile, testZone(origin, serial))
			var res control.ReloadResult
			rep, code := d.ctlJSON(&res, "reload", origin)
			if code != 0 || !rep.OK || len(res.Zones) != 1 || res.Zones[0].Status != control.StatusLoaded ||
				res.Zones[0].Serial != serial {
				t.Fatalf("reload %d: exit %d, %+v %+v", i, code, rep, res)
			}
			maxSwap = max(maxSwap, res.SwapMicros)
		}
		// The reload is published when ringctl returns: the next query
		// sees it, on either transport.
		for _, tcp := range []bool{false, true} {
			if s, err := soaSerial(mustExchange(t, d.addr(false), tcp, origin, dns.TypeSOA)); s != serial {
				t.Errorf("after reload %d: serial %d (%v), want %d", i, s, err, serial)
			}
		}
		if s, err := persistSerial(); s != serial {
			t.Errorf("after reload %d: serial %d (%v) on a TCP connection open since before the reloads, want %d", i, s, err, serial)
		}
	}
	elapsed := time.Since(start)
	var during int64
	for _, c := range clients {
		during += c.queries.Load()
	}
	during -= before
	stopClients()

	var total, failed int64
	seen := map[uint32]bool{}
	for _, c := range clients {
		total += c.queries.Load()
		failed += c.failures.Load()
		for _, e := range c.errs {
			t.Errorf("%s client %s: %s", netOf(c.tcp, c.addr.Addr().Is6()), c.addr, e)
		}
		for s := range c.serials {
			seen[s] = true
		}
	}
	t.Logf("%d reloads in %v (largest swap %.2f µs); %d queries, %d of them during the reloads, %d failed; %d serials seen",
		reloads, elapsed.Round(time.Millisecond), maxSwap, total, during, failed, len(seen))
	if failed > 0 {
		t.Errorf("%d of %d queries failed or were answered wrongly", failed, total)
	}
	// The clients must have overlapped the reloads, or the test proves
	// nothing: they saw several versions of the zone.
	if during < reloads || len(seen) < 3 {
		t.Errorf("only %d queries during the reloads and %d serials seen: the load did not overlap the reloads", during, len(seen))
	}
	var st control.Status
	d.ctlJSON(&st, "status")
	if st.Reloads != reloads+1 || st.ReloadFailures != 1 {
		t.Errorf("status counts %d reloads, %d with failures; want %d and 1", st.Reloads, st.ReloadFailures, reloads+1)
	}
	d.alive()
}

// hasRow reports whether a line of a ringctl table starts with the given
// columns.
func hasRow(table string, cols ...string) bool {
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) >= len(cols) && slices.Equal(f[:len(cols)], cols) {
			return true
		}
	}
	return false
}
