package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/ringdns/ringdns/internal/netns"
	"github.com/ringdns/ringdns/internal/netns/netnstest"
	"github.com/ringdns/ringdns/internal/testenv"
)

// TestQuickMatrix runs the harness in quick mode: every server on the small
// zone for one short run of each load. It is a smoke test of the harness
// (topology, peers' check, servers, generators, parsing, result files), not
// a measurement. It fails when ringdns, the null responder or ringperf
// fails; a peer (Knot, NSD, kxdpgun, dnsperf) may be unavailable on this
// machine, but then the log and both result files must say so with a
// reason, and a peer reported available must have been measured.
func TestQuickMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("the quick matrix takes about two minutes")
	}
	netnstest.Require(t)
	requireTools(t, "taskset")
	out := t.TempDir()
	var log strings.Builder
	res, err := Run(Options{Quick: true, Servers: allServers, Out: out}, &log)
	t.Logf("harness output:\n%s", log.String())
	if err != nil {
		t.Fatal(err)
	}
	files, _ := os.ReadDir(out)
	if len(files) != 2 {
		t.Fatalf("results directory holds %d files, want a .md and a .csv", len(files))
	}
	bodies := map[string]string{"log": log.String()}
	for _, e := range files {
		b, err := os.ReadFile(filepath.Join(out, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		bodies[filepath.Ext(e.Name())] = string(b)
	}
	for _, s := range allServers {
		for _, ext := range []string{".md", ".csv"} {
			if !strings.Contains(bodies[ext], string(s)) {
				t.Errorf("%s does not mention %s", ext, s)
			}
		}
	}

	// measured reports whether name (a server or a generator) answered, or
	// drove answers, in at least one run.
	measured := func(name string) bool {
		for _, r := range res.Rows {
			for _, l := range r.Loads {
				if (string(r.Server) == name || l.Generator == name) && l.Answered > 0 {
					return true
				}
			}
		}
		return false
	}
	for _, name := range []string{string(RingdnsXDP), string(RingdnsUDP), string(NullXDP), string(Ringperf)} {
		if !measured(name) {
			t.Errorf("%s, the project's own, was not measured", name)
		}
	}
	// The summary README.md shows, with the null responder as the cost of
	// bare AF_XDP.
	if !strings.Contains(bodies[".md"], "## Summary") || !strings.Contains(bodies[".md"], "null-xdp (bare AF_XDP)") ||
		!strings.Contains(bodies[".md"], "What bare AF_XDP costs here") {
		t.Errorf("the .md has no summary with the null responder's line")
	}
	// ringperf against dnsperf on knot-udp: measured at both rates, or
	// said why not.
	if res.AgreementNote != "" {
		t.Logf("agreement: %s", res.AgreementNote)
		if res.usable(string(KnotUDP)) && res.usable(string(Dnsperf)) {
			t.Errorf("ringperf was not compared with dnsperf although both and knot-udp could run: %s", res.AgreementNote)
		}
	} else {
		for _, rate := range agreementRates {
			for _, gen := range []string{"ringperf", "dnsperf"} {
				r := res.findRow(agreementSet, KnotUDP, fmt.Sprintf("%s %dk/s", gen, rate/1000), true)
				if r == nil || len(r.Loads) == 0 || r.Loads[0].Answered == 0 || r.Loads[0].P50 == 0 {
					t.Errorf("no %s run at %dk/s with answers and latency against knot-udp: %+v", gen, rate/1000, r)
				}
			}
		}
		if !strings.Contains(bodies[".md"], "## ringperf against dnsperf") {
			t.Errorf("the .md has no comparison of ringperf with dnsperf")
		}
	}
	if len(res.Peers) != len(checkedPeers) {
		t.Fatalf("%d peers checked, want %d (%v)", len(res.Peers), len(checkedPeers), res.Peers)
	}
	for _, p := range res.Peers {
		if p.Available() {
			if !measured(p.Name) {
				t.Errorf("%s passed the check but was not measured", p.Name)
			}
			continue
		}
		t.Logf("%s is unavailable here: %s", p.Name, p.Reason)
		for where, body := range bodies {
			want := p.Reason
			if where == ".md" {
				want = cell(want)
			}
			if !strings.Contains(body, want) {
				t.Errorf("the %s does not report %s unavailable with its reason %q", where, p.Name, p.Reason)
			}
		}
	}
}

// TestPeerCheck tries the peers in a topology whose XDP attachments the
// kernel refuses on both sides (each end has fewer RX queues than its peer
// has TX queues, which veth does not allow under XDP): knotd's XDP mode and
// kxdpgun must be reported unavailable with the kernel's own message, and
// the peers that need no XDP must pass. This is what the harness must do on
// a kernel that refuses Knot's XDP program for another reason (NOTES.md:
// 6.18.44 refuses bpf_xdp_adjust_meta), and it is reproducible on any
// kernel.
func TestPeerCheck(t *testing.T) {
	netnstest.Require(t)
	requireTools(t, "taskset", "ethtool")
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bins, err := build(root, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range []struct{ name, path string }{{"knotd", bins.Knotd}, {"kxdpgun", bins.Kxdpgun}, {"nsd", bins.NSD}, {"dnsperf", bins.Dnsperf}} {
		if tool.path == "" {
			requireTools(t, tool.name)
		}
	}
	topo, err := NewTopology(2)
	if err != nil {
		t.Fatal(err)
	}
	defer topo.Close()
	for _, side := range []struct{ ns, dev string }{{topo.ServerNS, topo.ServerIf}, {topo.ClientNS, topo.ClientIf}} {
		if _, err := netns.Run("ip", "netns", "exec", side.ns, "ethtool", "-L", side.dev, "rx", "1"); err != nil {
			t.Fatal(err)
		}
	}
	peers, err := checkPeers(bins, topo, filepath.Join(dir, "peers"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		t.Logf("%s: available %v %s", p.Name, p.Available(), p.Reason)
	}
	const kernel = "veth: XDP expects number of rx queues not less than peer tx queues"
	for _, c := range []struct {
		name      string
		available bool
		reason    string // a part of the reason, when unavailable
	}{
		{string(KnotXDP), false, kernel},
		{string(Kxdpgun), false, kernel},
		{string(KnotUDP), true, ""},
		{string(NSD), true, ""},
		{string(Dnsperf), true, ""},
	} {
		i := slices.IndexFunc(peers, func(p PeerStatus) bool { return p.Name == c.name })
		if i < 0 {
			t.Errorf("%s was not checked", c.name)
			continue
		}
		p := peers[i]
		switch {
		case p.Available() != c.available:
			t.Errorf("%s: available %v (reason %q), want %v", c.name, p.Available(), p.Reason, c.available)
		case !c.available && !strings.Contains(p.Reason, c.reason):
			t.Errorf("%s: reason %q does not carry the kernel's %q", c.name, p.Reason, c.reason)
		}
	}
	// ringperf falls back to generic XDP, which this refusal does not
	// reach, so it may pass; either way it must have a status.
	if i := slices.IndexFunc(peers, func(p PeerStatus) bool { return p.Name == string(Ringperf) }); i < 0 || !peers[i].Required {
		t.Errorf("ringperf was not checked as a required generator: %v", peers)
	}

	// The reasons reach both result files.
	res := &Results{Peers: peers, Options: Options{Servers: allServers}}
	res.row(&ZoneSet{Name: "small"}, RingdnsXDP, "ringperf saturation", true).add(Load{Generator: string(Ringperf), Sent: 10, Answered: 10, Seconds: 1}, 0, 0)
	md, csvPath, err := res.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{md, csvPath} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), kernel) {
			t.Errorf("%s does not carry the kernel's reason %q:\n%s", f, kernel, b)
		}
	}
}

// TestRefusal picks the reason out of what peers printed when they could
// not run. The outputs are in testdata/refusals: knotd and kxdpgun refused
// by a veth whose queues do not allow XDP, as captured here, and knotd
// refused by a kernel that denies XDP programs bpf_xdp_adjust_meta, as
// libbpf prints it (its messages around the verifier's line NOTES.md
// records).
func TestRefusal(t *testing.T) {
	for _, c := range []struct {
		file string
		err  string
		want string
	}{
		{"knotd-adjust-meta.out", "exited during start-up",
			"program of this type cannot use helper bpf_xdp_adjust_meta#54; " +
				"warning: failed to initialize XDP interface rbenchs1@53, queue 0 (program not loaded); " +
				"critical: failed to configure server; " +
				"libbpf: prog 'xdp_redirect_dns': BPF program load failed: Invalid argument"},
		{"knotd-veth-queues.out", "exited during start-up",
			"libbpf: Kernel error message: veth: XDP expects number of rx queues not less than peer tx queues; " +
				"warning: failed to initialize XDP interface rpxs@53, queue 0 (file descriptor error); " +
				"critical: failed to configure server"},
		{"kxdpgun-veth-queues.out", "",
			"libbpf: Kernel error message: veth: XDP expects number of rx queues not less than peer tx queues; " +
				"error: failed to initialize XDP socket#0 (file descriptor error)"},
		{"", "no answer from 198.18.0.1 within 15s", "no answer from 198.18.0.1 within 15s"},
		{"quiet.out", "", "thread#00: sent 0, received 0"},
	} {
		var out []byte
		if c.file != "" {
			var err error
			if out, err = os.ReadFile(filepath.Join("testdata", "refusals", c.file)); err != nil {
				t.Fatal(err)
			}
		}
		var err error
		if c.err != "" {
			err = errors.New(c.err)
		}
		if got := refusal(out, err); got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.file, got, c.want)
		}
	}
}

// requireTools stops t as testenv.RequireTool does when one of the tools
// the harness runs is missing: CI must exercise the harness whole.
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		testenv.RequireTool(t, tool, "scripts/test.sh installs it")
	}
}

// TestFailedAttribution holds a failure against whoever failed: a
// generator's own failure against the generator, anything else against the
// server. Only the project's own programs fail the run; a peer that failed
// is reported and left out from then on.
func TestFailedAttribution(t *testing.T) {
	for _, c := range []struct {
		server   ServerKind
		err      error
		ours     bool   // counted in Errors, failing the run
		leftOut  string // the peer no longer used, if any
		stillRun string // a peer or server still used
	}{
		{KnotXDP, errors.New("exited during start-up"), false, string(KnotXDP), string(Kxdpgun)},
		{KnotUDP, &loadError{Kxdpgun, errors.New("printed no totals")}, false, string(Kxdpgun), string(KnotUDP)},
		{KnotUDP, &loadError{Ringperf, errors.New("exit status 1")}, true, "", string(KnotUDP)},
		{RingdnsXDP, &loadError{Dnsperf, errors.New("printed no summary")}, false, string(Dnsperf), string(RingdnsXDP)},
		{RingdnsXDP, errors.New("got no answer"), true, "", string(RingdnsXDP)},
		{NullXDP, &loadError{Ringperf, errors.New("killed")}, true, "", string(Ringperf)},
	} {
		res := &Results{Peers: append([]PeerStatus(nil), checkedPeers...)}
		res.failed("small", c.server, c.err)
		if got := len(res.Errors) == 1; got != c.ours || len(res.Errors)+len(res.PeerErrors) != 1 {
			t.Errorf("%s, %v: Errors %v, PeerErrors %v; want it counted as the project's own: %v", c.server, c.err, res.Errors, res.PeerErrors, c.ours)
		}
		if c.leftOut != "" && res.usable(c.leftOut) {
			t.Errorf("%s, %v: %s still used after it failed", c.server, c.err, c.leftOut)
		}
		if !res.usable(c.stillRun) {
			t.Errorf("%s, %v: %s left out, but it did not fail", c.server, c.err, c.stillRun)
		}
	}
}

// TestParseLoads reads each generator's output as captured here
// (testdata/loads: each generator sent 50-60 queries, "www.example. A",
// "nx.example. A" and "example. SOA" in turn, to knotd over the veth).
func TestParseLoads(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "loads", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rp, err := parseRingperf(read("ringperf.json"))
	if err != nil {
		t.Fatal(err)
	}
	dp, err := parseDnsperf(read("dnsperf.out"))
	if err != nil {
		t.Fatal(err)
	}
	kx, err := parseKxdpgun(read("kxdpgun.out"), 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		got, want Load
	}{
		{rp, Load{Generator: "ringperf", Sent: 50, Answered: 50, Lost: 0, Seconds: 0.9997265214285714,
			Min: 50.496, P50: 195.583, P90: 238.591, P99: 259.071, P999: 259.071, Max: 259.701,
			Rcodes: map[string]uint64{"NOERROR": 33, "NXDOMAIN": 17}, ReplyBytes: 3577,
			Queues: []QueueLoad{{Queue: 0, CPU: -1, Sent: 50, Answered: 50}}, Mode: "driver"}},
		// dnsperf's percentiles come from its per-answer lines.
		{dp, Load{Generator: "dnsperf", Sent: 50, Answered: 50, Lost: 0, Seconds: 1.000321,
			Min: 131, P50: 172, P90: 4024, P99: 4127, P999: 4127, Max: 4127,
			Rcodes: map[string]uint64{"NOERROR": 33, "NXDOMAIN": 17}}},
		{kx, Load{Generator: "kxdpgun", Sent: 60, Answered: 60, Lost: 0, Seconds: 1,
			Rcodes: map[string]uint64{"NOERROR": 40, "NXDOMAIN": 20}}},
	} {
		// Latencies are parsed from decimal seconds: compare them to the
		// nanosecond.
		near := func(a, b float64) bool { return a-b < 1e-3 && b-a < 1e-3 }
		g, w := c.got, c.want
		if !near(g.Min, w.Min) || !near(g.P50, w.P50) || !near(g.P90, w.P90) || !near(g.P99, w.P99) || !near(g.P999, w.P999) || !near(g.Max, w.Max) {
			t.Errorf("%s latency: got min %v p50 %v p90 %v p99 %v p999 %v max %v, want %v %v %v %v %v %v", w.Generator,
				g.Min, g.P50, g.P90, g.P99, g.P999, g.Max, w.Min, w.P50, w.P90, w.P99, w.P999, w.Max)
		}
		g.Min, g.P50, g.P90, g.P99, g.P999, g.Max = w.Min, w.P50, w.P90, w.P99, w.P999, w.Max
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s:\n got %+v\nwant %+v", w.Generator, g, w)
		}
	}

	// A ringperf result without the fields every result has is an error,
	// not a run of zeros.
	for _, bad := range []string{"", "ringperf: no such interface\n", `{"sent": 5, "answered": 5}`, `{"sent": 5,`} {
		if _, err := parseRingperf([]byte(bad)); err == nil {
			t.Errorf("parseRingperf(%q) accepted it", bad)
		}
	}
}
