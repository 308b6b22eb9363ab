// Command benchmarks measures ringdns side by side with Knot DNS and NSD on
// the same machine, zones, queries and load generator (ringperf, with
// kxdpgun and dnsperf as cross-checks), and writes the results as Markdown
// and CSV. See README.md in this directory.
//
//	sudo go run ./benchmarks            the full matrix (about 22 minutes)
//	sudo go run ./benchmarks -quick     one short run per server (a smoke test)
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Options of one harness run.
type Options struct {
	Quick      bool
	Runs       int
	Seconds    int
	FixedRate  int // queries per second of the fixed-rate runs
	ZoneSets   []string
	Servers    []ServerKind
	Unpinned   bool
	TwoQueues  bool
	NDR        bool
	NDRSockets bool // also search the kernel-socket servers' highest rate
	SignTLD    bool
	Reload     bool
	TLDSize    int
	Out        string // results directory
	Scratch    string // generated zones and query files
	RootZone   string
	Loads      map[string]bool // which loads to run: saturation, ndr, fixed, dnsperf
}

// allLoads are the loads -loads can select, in the order they run.
var allLoads = []string{"saturation", "ndr", "fixed", "kxdpgun", "dnsperf", "agreement"}

func main() {
	var o Options
	var zones, servers, loads string
	flag.BoolVar(&o.Quick, "quick", false, "one short run per server on the small zone: a smoke test of the harness")
	flag.IntVar(&o.Runs, "runs", 3, "saturation runs per server and load generator")
	flag.IntVar(&o.Seconds, "seconds", 4, "length of each saturation and dnsperf run")
	flag.IntVar(&o.FixedRate, "fixed-rate", 100000, "offered queries per second of the fixed-rate runs")
	flag.StringVar(&zones, "zones", "small,root,tld", "zone sets to measure")
	flag.StringVar(&servers, "servers", strings.Join(serverNames(allServers), ","), "servers to measure")
	flag.StringVar(&loads, "loads", strings.Join(allLoads, ","), "loads to run: per server saturation (ringperf flat out), ndr (ringperf's highest rate with <= 1% loss), fixed (ringperf at -fixed-rate), kxdpgun (saturation, where kxdpgun can run), dnsperf (saturation and 20k/s); once, agreement (ringperf against dnsperf at 20k and 100k/s on knot-udp)")
	flag.BoolVar(&o.Unpinned, "unpinned", false, "also run with server and generator unpinned")
	flag.BoolVar(&o.SignTLD, "sign-tld", true, "sign the generated TLD zone with NSEC3 (ldns-signzone) and set DO on 80% of its queries")
	flag.BoolVar(&o.NDR, "ndr", true, "search the AF_XDP servers' highest ringperf rate with at most 1% loss (small and root zone sets)")
	flag.BoolVar(&o.NDRSockets, "ndr-sockets", false, "search the kernel-socket servers' highest rate with at most 1% loss too (about 2.5 minutes more)")
	flag.BoolVar(&o.TwoQueues, "two-queues", true, "also measure the AF_XDP servers on a two-queue veth (small zone)")
	flag.BoolVar(&o.Reload, "reload", true, "measure ringdns reloading its zone every second under load")
	flag.IntVar(&o.TLDSize, "tld-size", 1000000, "delegations in the generated TLD zone")
	flag.StringVar(&o.Out, "out", "", "results directory (default: benchmarks/results beside this source)")
	flag.StringVar(&o.Scratch, "scratch", "", "scratch directory for zones and query files (default: a new temporary one)")
	flag.StringVar(&o.RootZone, "root-zone", "", "root zone file (default: zone/testdata/root.zone)")
	flag.Parse()
	o.ZoneSets = strings.Split(zones, ",")
	for _, s := range strings.Split(servers, ",") {
		o.Servers = append(o.Servers, ServerKind(s))
	}
	o.Loads = map[string]bool{}
	for _, l := range strings.Split(loads, ",") {
		if l == "" {
			continue
		}
		if !slices.Contains(allLoads, l) {
			fmt.Fprintf(os.Stderr, "benchmarks: unknown load %q in -loads (known: %s)\n", l, strings.Join(allLoads, ", "))
			os.Exit(2)
		}
		o.Loads[l] = true
	}
	if _, err := Run(o, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "benchmarks: %v\n", err)
		os.Exit(1)
	}
}

func serverNames(ks []ServerKind) []string {
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = string(k)
	}
	return out
}

// repoRoot finds the module root from the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the ringdns module")
		}
		dir = parent
	}
}

// Run measures the matrix of o, writes its results and returns them. Its
// error says which measurements of the project's own programs failed; peers
// that cannot run here, or fail during the run, are reported in the results
// instead.
func Run(o Options, log io.Writer) (*Results, error) {
	log = &stamped{w: log, start: time.Now()}
	if os.Geteuid() != 0 {
		return nil, errors.New("needs root: it creates network namespaces and attaches XDP programs")
	}
	if o.Loads == nil {
		o.Loads = map[string]bool{}
		for _, l := range allLoads {
			o.Loads[l] = true
		}
	}
	if o.Quick {
		o.Runs, o.Seconds, o.ZoneSets, o.Reload, o.FixedRate, o.TwoQueues = 1, 2, []string{"small"}, false, 20000, false
	}
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	if o.Out == "" {
		o.Out = filepath.Join(root, "benchmarks", "results")
	}
	if o.RootZone == "" {
		o.RootZone = filepath.Join(root, "zone", "testdata", "root.zone")
	}
	if o.Scratch == "" {
		if o.Scratch, err = os.MkdirTemp("", "ringdns-bench-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(o.Scratch)
	} else if o.Scratch, err = filepath.Abs(o.Scratch); err != nil {
		// The signer runs in the scratch directory with paths inside it.
		return nil, err
	}
	bins, err := build(root, o.Scratch, needSigner(o))
	if err != nil {
		return nil, err
	}
	cpus := runtime.NumCPU()
	if cpus < 2 {
		return nil, errors.New("needs two CPUs: one for the server, one for the load generator")
	}

	topo, err := NewTopology(1)
	if err != nil {
		return nil, err
	}
	defer topo.Close()

	res := &Results{Machine: machineInfo(), Versions: versions(bins), Options: o, Started: time.Now()}
	fmt.Fprintf(log, "== peers (each tried in the topology)\n")
	if res.Peers, err = checkPeers(bins, topo, filepath.Join(o.Scratch, "peers")); err != nil {
		return res, err
	}
	for _, p := range res.Peers {
		if p.Available() {
			fmt.Fprintf(log, "   %-12s available\n", p.Name)
			continue
		}
		fmt.Fprintf(log, "   %-12s unavailable: %s\n", p.Name, p.Reason)
		if p.Required {
			res.Errors = append(res.Errors, fmt.Sprintf("%s, the project's own %s, cannot run here: %s", p.Name, p.Role, p.Reason))
		}
	}
	// The zone sets are measured only for the loads run per server:
	// -loads agreement alone measures just that.
	perServer := o.Loads["saturation"] || o.Loads["ndr"] || o.Loads["fixed"] || o.Loads["kxdpgun"] || o.Loads["dnsperf"]
	for _, name := range o.ZoneSets {
		if name == "" || !perServer {
			continue
		}
		set, err := makeZoneSet(name, o)
		if err != nil {
			return res, fmt.Errorf("zone set %s: %v", name, err)
		}
		fmt.Fprintf(log, "== zone set %s: %d records\n", set.Name, set.Records)
		// The packet path on this VM drifts between a fast and a slow state
		// for tens of seconds at a time, whatever the server (README.md), so
		// measuring one server's runs back to back compares the servers at
		// different times. Where servers start in a second, the saturation
		// and fixed-rate runs go round the servers instead: round r is run r
		// of every server. The TLD set keeps its runs together, since its
		// servers take up to a minute to load.
		rounds := 1
		if set.Name != "tld" && !o.Quick {
			rounds = o.Runs
		}
		failed := map[ServerKind]bool{}
		for r := range rounds {
			if rounds > 1 {
				fmt.Fprintf(log, "-- round %d of %d\n", r+1, rounds)
			}
			for _, kind := range o.Servers {
				if kind == NullXDP && set.Name != "small" {
					// The null responder never looks at the zone: one zone
					// set measures it.
					continue
				}
				if failed[kind] || !res.usable(string(kind)) {
					continue
				}
				if err := measureServer(res, o, bins, topo, set, kind, round{r, rounds}, log); err != nil {
					fmt.Fprintf(log, "   %s: %v\n", kind, err)
					res.failed(set.Name, kind, err)
					failed[kind] = true
				}
			}
		}
	}
	if o.Loads["agreement"] {
		measureAgreement(res, o, bins, topo, log)
	}
	if o.TwoQueues && (o.Loads["saturation"] || o.Loads["fixed"]) {
		if err := measureTwoQueues(res, o, bins, log); err != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("two queues: %v", err))
		}
	}
	res.Finished = time.Now()
	res.sortRows()
	md, csv, err := res.Write(o.Out)
	if err != nil {
		return res, err
	}
	fmt.Fprintf(log, "results: %s and %s\n", md, csv)
	if len(res.PeerErrors) > 0 {
		fmt.Fprintf(log, "peers that failed during the run (reported, not a failure of the run): %s\n", strings.Join(res.PeerErrors, "; "))
	}
	if len(res.Errors) > 0 {
		return res, fmt.Errorf("%d measurements failed: %s", len(res.Errors), strings.Join(res.Errors, "; "))
	}
	return res, nil
}

func makeZoneSet(name string, o Options) (*ZoneSet, error) {
	dir := filepath.Join(o.Scratch, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	switch name {
	case "small":
		return SmallZone(dir, 1)
	case "root":
		return RootZone(dir, o.RootZone, 1)
	case "tld":
		return TLDZone(dir, o.TLDSize, 1, o.SignTLD)
	}
	return nil, fmt.Errorf("unknown zone set %q (small, root, tld)", name)
}

// build compiles ringdns, ringctl, the null responder and ringperf into dir
// and finds the peers' programs. The project's own servers must build; a
// peer that is not installed, or ringperf when it does not build, is
// recorded in Binaries.Missing for the peers' check to report.
func build(root, dir string, signer bool) (Binaries, error) {
	b := Binaries{Missing: map[string]string{}}
	for _, t := range []struct {
		pkg string
		out *string
	}{{"./cmd/ringdns", &b.Ringdns}, {"./cmd/ringctl", &b.Ringctl}, {"./benchmarks/nullresponder", &b.Null}, {"./cmd/ringperf", &b.Ringperf}} {
		out := filepath.Join(dir, filepath.Base(t.pkg))
		cmd := exec.Command("go", "build", "-o", out, t.pkg)
		cmd.Dir = root
		if msg, err := cmd.CombinedOutput(); err != nil {
			err = fmt.Errorf("go build %s: %v: %s", t.pkg, err, bytes.TrimSpace(msg))
			if t.out == &b.Ringperf {
				b.Missing[string(Ringperf)] = err.Error()
				continue
			}
			return b, err
		}
		*t.out = out
	}
	for _, t := range []struct {
		name, pkg string
		out       *string
		peers     []string
	}{
		{"knotd", "knot", &b.Knotd, []string{string(KnotXDP), string(KnotUDP)}},
		{"nsd", "nsd", &b.NSD, []string{string(NSD)}},
		{"kxdpgun", "knot-dnsutils", &b.Kxdpgun, []string{string(Kxdpgun)}},
		{"dnsperf", "dnsperf", &b.Dnsperf, []string{string(Dnsperf)}},
	} {
		p, err := exec.LookPath(t.name)
		if err != nil {
			p, err = exec.LookPath("/usr/sbin/" + t.name)
		}
		if err != nil {
			for _, peer := range t.peers {
				b.Missing[peer] = fmt.Sprintf("%s is not installed (Debian package %s)", t.name, t.pkg)
			}
			continue
		}
		*t.out = p
	}
	tools := []string{"taskset"}
	if signer {
		tools = append(tools, "ldns-keygen", "ldns-signzone")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			return b, fmt.Errorf("%s not found: install util-linux and ldnsutils", tool)
		}
	}
	return b, nil
}

// needSigner reports whether the run signs the TLD zone, so that a missing
// signer is reported before the first measurement rather than minutes in.
func needSigner(o Options) bool {
	return o.SignTLD && slices.Contains(o.ZoneSets, "tld")
}

// The CPUs of the pinned runs: the server's packet worker on one, the load
// generator on the other.
const serverCPU, loadCPU = 1, 0

// round says which of the interleaved rounds over the servers a call of
// measureServer is: round 0 of n runs every load, the others add one run to
// the saturation and fixed-rate rows.
type round struct{ i, n int }

// measureServer runs the loads of the matrix that round rd holds against one
// server.
func measureServer(res *Results, o Options, bins Binaries, topo *Topology, set *ZoneSet, kind ServerKind, rd round, log io.Writer) error {
	dir := filepath.Join(o.Scratch, "run-"+set.Name+"-"+string(kind))
	startTimeout := 120 * time.Second
	srv, err := StartServer(kind, bins, topo, set.Zone, dir, serverCPU, startTimeout)
	if err != nil {
		return err
	}
	defer srv.Stop(topo)
	row := func(load string, pinned bool) *Row { return res.row(set, kind, load, pinned) }
	// Within a round of several, each load adds one run; the loads that are
	// measured once (kxdpgun, dnsperf, the unpinned pass) run in the first
	// round, and those that build on the saturation median (the highest
	// rate with at most 1% loss, the reload test) in the last.
	runs, first, last := o.Runs, rd.i == 0, rd.i == rd.n-1
	if rd.n > 1 {
		runs = 1
	}
	start := row("start-up", true)
	if first {
		start.Ready, start.MemoryKiB = srv.Ready, srv.MemoryKiB()
	}
	fmt.Fprintf(log, "   %-12s ready in %v, %.1f MiB\n", kind, srv.Ready.Round(time.Millisecond), float64(srv.MemoryKiB())/1024)

	measure := func(r *Row, f func() (Load, error)) error {
		_, err := measureRun(srv, bins, r, f)
		return err
	}
	ringperf := func(rate int, seconds float64, cpu int) func() (Load, error) {
		return func() (Load, error) {
			return RingperfLoad(topo, bins.Ringperf, RingperfRun{Queries: set.Queries, Rate: rate, Seconds: seconds, CPU: cpu})
		}
	}
	logRow := func(r *Row) { fmt.Fprintf(log, "   %-12s %s: %s\n", kind, r.Load, r.summary()) }
	pinModes := []bool{true}
	if o.Unpinned && first {
		pinModes = append(pinModes, false)
	}
	var sat *Row // the pinned saturation row, which the search and the reload test start from
	for _, pinned := range pinModes {
		cpu := loadCPU
		if !pinned {
			cpu = -1
			for _, pid := range srv.PIDs() {
				run("taskset", "-a", "-p", "-c", "0-"+fmt.Sprint(runtime.NumCPU()-1), fmt.Sprint(pid))
			}
		}
		satName, satRate := saturationLoad(o)
		if (o.Loads["saturation"] || o.Loads["ndr"] || !pinned) && res.usable(string(Ringperf)) {
			r := row(satName, pinned)
			n := runs
			if !pinned {
				n = o.Runs
			}
			for range n {
				if err := measure(r, ringperf(satRate, float64(o.Seconds), cpu)); err != nil {
					return err
				}
			}
			logRow(r)
			if pinned {
				sat = r
			}
		}
		if !pinned {
			continue
		}
		xdp := kind == RingdnsXDP || kind == KnotXDP || kind == NullXDP
		if !o.Quick && o.NDR && (xdp || o.NDRSockets) && o.Loads["ndr"] && last && sat != nil && set.Name != "tld" {
			ndr := row("ringperf highest rate with loss <= 1%", pinned)
			if err := measureNDR(ndr, median(sat.QPS), measure,
				func(rate int) (Load, error) { return ringperf(rate, shortSeconds, cpu)() }); err != nil {
				return err
			}
			logRow(ndr)
		}
		if !o.Quick && o.Loads["fixed"] && res.usable(string(Ringperf)) {
			fixed := row(fmt.Sprintf("ringperf %dk/s", o.FixedRate/1000), pinned)
			for range runs {
				if err := measure(fixed, ringperf(o.FixedRate, shortSeconds, cpu)); err != nil {
					return err
				}
			}
			logRow(fixed)
		}
		// kxdpgun, where it can run, is a cross-check of ringperf and a
		// link to the figures measured with it before: one run per server
		// and zone set.
		if o.Loads["kxdpgun"] && first && res.usable(string(Kxdpgun)) {
			name, rate := "kxdpgun saturation", 2000000
			if o.Quick {
				name, rate = fmt.Sprintf("kxdpgun %dk/s", o.FixedRate/1000), o.FixedRate
			}
			kx := row(name, pinned)
			if err := measure(kx, func() (Load, error) {
				return KxdpgunLoad(topo, bins.Kxdpgun, set.Queries, rate, o.Seconds, cpu)
			}); err != nil {
				return err
			}
			logRow(kx)
		}
		if !o.Loads["dnsperf"] || !first || !res.usable(string(Dnsperf)) {
			continue
		}
		for _, rate := range []int{0, 20000} {
			name := "dnsperf saturation"
			if rate > 0 {
				name = fmt.Sprintf("dnsperf %dk/s", rate/1000)
			}
			r := row(name, pinned)
			if err := measure(r, func() (Load, error) {
				return DnsperfLoad(topo, bins.Dnsperf, set.DnsperfQueries, set.DO, rate, o.Seconds, cpu)
			}); err != nil {
				return err
			}
			logRow(r)
		}
	}
	if o.Reload && o.Loads["saturation"] && last && kind == RingdnsXDP && sat != nil && len(sat.QPS) > 0 {
		return measureReload(res, bins, topo, set, srv, median(sat.QPS), log)
	}
	return nil
}

// saturationLoad names the load of the saturation rows and gives its rate.
// ringperf flat out (rate 0) saturates every server here from one core; in
// quick mode it offers the fixed rate instead, which exercises the same path
// without loading the machine.
func saturationLoad(o Options) (string, int) {
	if o.Quick {
		return fmt.Sprintf("ringperf %dk/s", o.FixedRate/1000), o.FixedRate
	}
	return "ringperf saturation", 0
}

// measureReload offers half of the server's saturation rate for 30 s with
// and without a zone reload every second, and compares the loss.
func measureReload(res *Results, bins Binaries, topo *Topology, set *ZoneSet, srv *Server, saturation float64, log io.Writer) error {
	rate := int(saturation / 2)
	// The reload phase lasts 30 s; the baseline at
	// the same rate only has to show the loss without reloads, which at half
	// of saturation is steady within seconds.
	for _, reload := range []bool{false, true} {
		seconds := 10
		if reload {
			seconds = 30
		}
		name := fmt.Sprintf("ringperf %dk/s, no reloads", rate/1000)
		if reload {
			name = fmt.Sprintf("ringperf %dk/s, reload every 1 s", rate/1000)
		}
		r := res.row(set, srv.Kind, name, true)
		stop := make(chan struct{})
		reloads, failures := 0, 0
		done := make(chan struct{})
		go func() {
			defer close(done)
			if !reload {
				return
			}
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					// A comment appended changes the file's content, so
					// the reload rebuilds the zone instead of keeping an
					// unchanged one, without changing what it serves.
					if f, err := os.OpenFile(set.Zone.Path, os.O_APPEND|os.O_WRONLY, 0); err == nil {
						fmt.Fprintf(f, "; benchmark reload %d\n", reloads)
						f.Close()
					}
					if err := srv.Reload(bins); err != nil {
						failures++
					}
					reloads++
				}
			}
		}()
		_, err := measureRun(srv, bins, r, func() (Load, error) {
			l, err := RingperfLoad(topo, bins.Ringperf, RingperfRun{Queries: set.Queries, Rate: rate, Seconds: float64(seconds), CPU: loadCPU})
			close(stop)
			<-done
			return l, err
		})
		if err != nil {
			return err
		}
		r.Reloads, r.ReloadFailures = reloads, failures
		if reload && failures > 0 {
			return fmt.Errorf("%d of %d reloads failed", failures, reloads)
		}
		fmt.Fprintf(log, "   %-12s %s: %s, %d reloads (%d failed)\n", srv.Kind, name, r.summary(), reloads, failures)
	}
	return nil
}

// agreementRates are the rates at which ringperf is compared with dnsperf:
// both reach them here (dnsperf saturates its core at 100-180k/s).
var agreementRates = []int{20000, 100000}

// agreementSet names the rows of the comparison of ringperf with dnsperf.
const agreementSet = "small, ringperf against dnsperf"

// measureAgreement measures how far ringperf's figures agree with
// dnsperf's, an independent generator over kernel sockets: both offer
// knot-udp, a peer that serves the same way whoever asks, the same queries
// (dnsperf's file, no EDNS unless the set asks for DO, as dnsperf sends
// them) at the same rates from the same CPU, in alternate runs so that both
// meet the same drift. The figures compared are the answered rate and the
// median latency.
func measureAgreement(res *Results, o Options, bins Binaries, topo *Topology, log io.Writer) {
	fmt.Fprintf(log, "== %s (knot-udp)\n", agreementSet)
	for _, need := range []string{string(KnotUDP), string(Dnsperf), string(Ringperf)} {
		if !res.usable(need) {
			why := res.unavailable(need)
			if why == "" {
				why = "it failed earlier in the run"
			}
			res.AgreementNote = fmt.Sprintf("not measured: %s cannot run here: %s", need, why)
			fmt.Fprintf(log, "   %s\n", res.AgreementNote)
			return
		}
	}
	set, err := makeZoneSet("small", o)
	if err != nil {
		res.Errors = append(res.Errors, fmt.Sprintf("%s: %v", agreementSet, err))
		return
	}
	set.Name = agreementSet
	runs, seconds := o.Runs, o.Seconds
	if o.Quick {
		runs = 1
	}
	err = func() error {
		srv, err := StartServer(KnotUDP, bins, topo, set.Zone, filepath.Join(o.Scratch, "run-agreement"), serverCPU, 120*time.Second)
		if err != nil {
			return err
		}
		defer srv.Stop(topo)
		for _, rate := range agreementRates {
			rr := res.row(set, KnotUDP, fmt.Sprintf("ringperf %dk/s", rate/1000), true)
			dr := res.row(set, KnotUDP, fmt.Sprintf("dnsperf %dk/s", rate/1000), true)
			for range runs {
				if _, err := measureRun(srv, bins, rr, func() (Load, error) {
					return RingperfLoad(topo, bins.Ringperf, RingperfRun{Queries: set.DnsperfQueries, Rate: rate,
						Seconds: float64(seconds), CPU: loadCPU, NoEDNS: !set.DO, DO: set.DO})
				}); err != nil {
					return err
				}
				if _, err := measureRun(srv, bins, dr, func() (Load, error) {
					return DnsperfLoad(topo, bins.Dnsperf, set.DnsperfQueries, set.DO, rate, seconds, loadCPU)
				}); err != nil {
					return err
				}
			}
			fmt.Fprintf(log, "   %s: %s\n   %s: %s\n", rr.Load, rr.summary(), dr.Load, dr.summary())
		}
		return nil
	}()
	if err != nil {
		fmt.Fprintf(log, "   %v\n", err)
		res.failed(agreementSet, KnotUDP, err)
	}
}

// measureTwoQueues serves the small zone from both queues of a two-queue
// veth with the AF_XDP servers, each free to use both CPUs (ringdns pins a
// worker per queue to its own CPU; Knot gets a UDP worker per queue), and
// ringperf sending from both client queues: on a veth the client's TX queue
// i arrives on the server's RX queue i, so each server queue gets a share.
// With two cores shared by server and generator, added throughput is not
// expected: the figure that matters is the whole-machine CPU per answer at
// the fixed rate, against one queue.
func measureTwoQueues(res *Results, o Options, bins Binaries, log io.Writer) error {
	if !res.usable(string(Ringperf)) {
		return nil
	}
	topo, err := NewTopology(2)
	if err != nil {
		return err
	}
	defer topo.Close()
	set, err := makeZoneSet("small", o)
	if err != nil {
		return err
	}
	set.Name = "small, 2 queues"
	fmt.Fprintf(log, "== zone set %s\n", set.Name)
	for _, kind := range []ServerKind{RingdnsXDP, KnotXDP} {
		if !slices.Contains(o.Servers, kind) || !res.usable(string(kind)) {
			continue
		}
		dir := filepath.Join(o.Scratch, "run-2q-"+string(kind))
		srv, err := StartServer(kind, bins, topo, set.Zone, dir, -1, 120*time.Second)
		if err == nil {
			err = func() error {
				defer srv.Stop(topo)
				for _, l := range []struct {
					name string
					rate int
				}{{"ringperf saturation, 2 queues", 0}, {fmt.Sprintf("ringperf %dk/s, 2 queues", o.FixedRate/1000), o.FixedRate}} {
					r := res.row(set, kind, l.name, false)
					for range o.Runs {
						d, err := measureRun(srv, bins, r, func() (Load, error) {
							return RingperfLoad(topo, bins.Ringperf, RingperfRun{Queries: set.Queries, Rate: l.rate,
								Seconds: float64(o.Seconds), CPU: -1, Queues: "0,1"})
						})
						if err != nil {
							return err
						}
						if d != nil {
							r.QueueReplies = []uint64{d["xdp0"], d["xdp1"]}
						}
					}
					perQueue := ""
					if len(r.QueueReplies) > 0 {
						perQueue = fmt.Sprintf(", server answers per queue %v", r.QueueReplies)
					}
					fmt.Fprintf(log, "   %-12s %s: %s%s\n", kind, l.name, r.summary(), perQueue)
				}
				return nil
			}()
		}
		if err != nil {
			fmt.Fprintf(log, "   %s: %v\n", kind, err)
			res.failed(set.Name, kind, err)
		}
	}
	return nil
}

// shortSeconds is the length of each step of the loss-bounded rate search
// and of each fixed-rate run: at a steady offered rate, 3 s measure loss and
// CPU per answer as well as a longer run here.
const shortSeconds = 3

// measureRun runs f, one load against srv, and adds to r what it measured:
// answers, loss, the server's and the whole machine's CPU per answer, and
// for ringdns the share of answers sent through the rings. It also returns
// the change of ringdns's replies by kind ("xdp", "udp", "xdp0", ...), or
// nil for the other servers.
func measureRun(srv *Server, bins Binaries, r *Row, f func() (Load, error)) (map[string]uint64, error) {
	k0, _ := srv.RepliesByKind(bins)
	m0, s0 := SampleMachine(), srv.CPUTicks()
	l, err := f()
	m1, s1 := SampleMachine(), srv.CPUTicks()
	if err != nil {
		return nil, err
	}
	r.add(l, float64(s1-s0)/clockTick, BusySeconds(m0, m1, runtime.NumCPU()))
	if l.Answered == 0 {
		return nil, fmt.Errorf("%s: %s sent %d queries and got no answer", r.Load, l.Generator, l.Sent)
	}
	k1, err := srv.RepliesByKind(bins)
	if err != nil || k1 == nil || k0 == nil {
		return nil, nil
	}
	d := map[string]uint64{}
	for k, v := range k1 {
		d[k] = v - k0[k]
	}
	if all := d["xdp"] + d["udp"]; all > 0 {
		r.XDPShare = append(r.XDPShare, float64(d["xdp"])/float64(all))
	}
	return d, nil
}

// measureNDR finds, by bisection between a tenth of the saturation rate and
// the rate offered at saturation, the highest offered rate the server
// answers with at most 1% loss (the RFC 2544 throughput, with a 1% bound as
// issue 5 states it). The row keeps the answers of the best passing step.
func measureNDR(r *Row, saturation float64, measure func(*Row, func() (Load, error)) error, load func(rate int) (Load, error)) error {
	// Five halvings of [1/3, 1.15] x saturation settle within 2.6% of it;
	// every server here answers over half its saturation rate with no loss.
	lo, hi := int(saturation/3), int(saturation*1.15)
	var best *Row
	for range 5 {
		mid := (lo + hi) / 2
		step := &Row{}
		if err := measure(step, func() (Load, error) { return load(mid) }); err != nil {
			return err
		}
		if step.Loss[0] <= 0.01 {
			lo, best = mid, step
		} else {
			hi = mid
		}
	}
	if best == nil {
		return fmt.Errorf("no rate above %d/s was answered with at most 1%% loss", lo)
	}
	r.QPS, r.Loss, r.ServerNs, r.WholeNs, r.XDPShare = best.QPS, best.Loss, best.ServerNs, best.WholeNs, best.XDPShare
	return nil
}

// stamped prefixes every line written through it with the time since the
// run started, so that a log shows where a full run spends its minutes.
type stamped struct {
	w     io.Writer
	start time.Time
	mid   bool // the last write ended inside a line
}

func (s *stamped) Write(p []byte) (int, error) {
	n := len(p)
	var b bytes.Buffer
	for len(p) > 0 {
		if !s.mid {
			d := time.Since(s.start).Round(time.Second)
			fmt.Fprintf(&b, "[%02d:%02d] ", int(d.Minutes()), int(d.Seconds())%60)
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			b.Write(p)
			s.mid = true
			break
		}
		b.Write(p[:i+1])
		p = p[i+1:]
		s.mid = false
	}
	_, err := s.w.Write(b.Bytes())
	return n, err
}
