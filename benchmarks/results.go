//go:build linux

package main

import (
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Row is one server under one load on one zone set, over its runs.
type Row struct {
	ZoneSet string
	Server  ServerKind
	Load    string
	Pinned  bool
	Records int

	Loads             []Load    // what the generator reported, per run
	QPS, Loss         []float64 // per run
	XDPShare          []float64 // ringdns: fraction of UDP answers sent through the AF_XDP rings, per run
	ServerNs, WholeNs []float64 // CPU nanoseconds per answer, per run
	Ready             time.Duration
	MemoryKiB         uint64
	QueueReplies      []uint64 // ringdns on a multi-queue veth: answers per queue in the last run
	Reloads           int
	ReloadFailures    int
}

func (r *Row) add(l Load, serverSec, wholeSec float64) {
	r.Loads = append(r.Loads, l)
	r.QPS = append(r.QPS, l.QPS())
	r.Loss = append(r.Loss, l.Loss())
	if l.Answered > 0 {
		r.ServerNs = append(r.ServerNs, serverSec*1e9/float64(l.Answered))
		r.WholeNs = append(r.WholeNs, wholeSec*1e9/float64(l.Answered))
	}
}

// latency is the median over the runs that measured latency of the
// percentile pick takes from each.
func (r *Row) latency(pick func(Load) float64) float64 {
	var v []float64
	for _, l := range r.Loads {
		if l.P50 > 0 {
			v = append(v, pick(l))
		}
	}
	return median(v)
}

func (r *Row) summary() string {
	s := fmt.Sprintf("%s qps, loss %.1f%%, server %s ns/answer, machine %s ns/answer",
		spread(r.QPS, 1), 100*median(r.Loss), spread(r.ServerNs, 1), spread(r.WholeNs, 1))
	if len(r.XDPShare) > 0 {
		s += fmt.Sprintf(", %.1f%% through AF_XDP", 100*median(r.XDPShare))
	}
	if p50 := r.latency(func(l Load) float64 { return l.P50 }); p50 > 0 {
		s += fmt.Sprintf(", latency p50 %.0f µs, p99 %.0f µs", p50, r.latency(func(l Load) float64 { return l.P99 }))
	}
	return s
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// spread renders the median and, over several runs, the minimum and maximum.
func spread(v []float64, unit float64) string {
	if len(v) == 0 {
		return "-"
	}
	f := func(x float64) string {
		x /= unit
		switch {
		case x >= 10000:
			return fmt.Sprintf("%.0fk", x/1000)
		default:
			return fmt.Sprintf("%.0f", x)
		}
	}
	if len(v) == 1 {
		return f(v[0])
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return fmt.Sprintf("%s (%s-%s)", f(median(s)), f(s[0]), f(s[len(s)-1]))
}

// Results is a whole harness run.
type Results struct {
	Machine, Versions []string
	Options           Options
	Started, Finished time.Time
	Peers             []PeerStatus // what the check at start found
	Rows              []*Row
	// Errors are the failed measurements of the project's own programs
	// (ringdns, the null responder, ringperf): they fail the run.
	// PeerErrors are those of peers that passed the check at start but
	// failed later: reported, and the peer is left out from then on.
	Errors, PeerErrors []string
	// AgreementNote says why ringperf was not compared with dnsperf, when
	// it was not.
	AgreementNote string
	// gone holds the peers, servers and generators, that failed during the
	// run.
	gone map[string]bool
}

// ours reports whether name is one of the project's own programs, whose
// failure fails the run.
func ours(name string) bool {
	switch name {
	case string(RingdnsXDP), string(RingdnsUDP), string(NullXDP), string(Ringperf):
		return true
	}
	return false
}

// usable reports whether a server or generator passed the check at start
// (the project's own servers are not checked) and has not failed since.
func (res *Results) usable(name string) bool {
	if res.gone[name] {
		return false
	}
	for _, p := range res.Peers {
		if p.Name == name {
			return p.Available()
		}
	}
	return true
}

// unavailable returns why peer name could not run here, or "".
func (res *Results) unavailable(name string) string {
	for _, p := range res.Peers {
		if p.Name == name {
			return p.Reason
		}
	}
	return ""
}

// failed records err, a failed measurement of server kind on zone set
// where, against whoever failed: the generator for a generator's own
// failure, else the server. A peer that failed is left out from then on;
// the project's own programs are tried again on the next zone set.
func (res *Results) failed(where string, kind ServerKind, err error) {
	who := string(kind)
	var le *loadError
	if errors.As(err, &le) {
		who = string(le.gen)
	}
	msg := fmt.Sprintf("%s/%s: %v", where, kind, err)
	if ours(who) {
		res.Errors = append(res.Errors, msg)
		return
	}
	res.PeerErrors = append(res.PeerErrors, msg)
	if res.gone == nil {
		res.gone = map[string]bool{}
	}
	res.gone[who] = true
}

// Write stores the results as Markdown and CSV named by the start time.
func (res *Results) Write(dir string) (md, csvPath string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	stamp := res.Started.UTC().Format("20060102-150405")
	if res.Options.Quick {
		stamp += "-quick"
	}
	md = filepath.Join(dir, stamp+".md")
	csvPath = filepath.Join(dir, stamp+".csv")
	if err := os.WriteFile(md, []byte(res.Markdown()), 0o644); err != nil {
		return "", "", err
	}
	f, err := os.Create(csvPath)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	w := csv.NewWriter(f)
	w.Write([]string{"zone_set", "records", "server", "generator", "load", "pinned", "run", "qps", "sent", "answered", "lost", "loss",
		"server_ns_per_answer", "machine_ns_per_answer", "xdp_share", "min_us", "p50_us", "p90_us", "p99_us", "p999_us", "max_us",
		"rcodes", "truncated", "unmatched", "ready_ms", "memory_kib", "reloads", "reload_failures", "unavailable"})
	// The peers that could not run come first, with the reason the system
	// gave: a reader of the CSV alone sees why their rows are missing.
	for _, p := range res.Peers {
		if p.Available() {
			continue
		}
		server, gen := p.Name, ""
		if p.Role != "server" {
			server, gen = "", p.Name
		}
		w.Write([]string{"", "", server, gen, "unavailable", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", p.Reason})
	}
	for _, r := range res.Rows {
		n := max(len(r.QPS), 1)
		for i := range n {
			at := func(v []float64) string {
				if i < len(v) {
					return strconv.FormatFloat(v[i], 'f', 1, 64)
				}
				return ""
			}
			var l Load
			if i < len(r.Loads) {
				l = r.Loads[i]
			}
			us := func(v float64) string {
				if l.P50 == 0 {
					return ""
				}
				return strconv.FormatFloat(v, 'f', 1, 64)
			}
			loss := ""
			if i < len(r.Loss) {
				loss = strconv.FormatFloat(r.Loss[i], 'f', 5, 64)
			}
			w.Write([]string{r.ZoneSet, strconv.Itoa(r.Records), string(r.Server), l.Generator, r.Load, strconv.FormatBool(r.Pinned),
				strconv.Itoa(i + 1), at(r.QPS), count(l.Sent, l), count(l.Answered, l), count(l.Lost, l), loss,
				at(r.ServerNs), at(r.WholeNs), at(r.XDPShare),
				us(l.Min), us(l.P50), us(l.P90), us(l.P99), us(l.P999), us(l.Max),
				rcodes(l.Rcodes), count(l.Truncated, l), count(l.Unmatched, l),
				strconv.FormatInt(r.Ready.Milliseconds(), 10), strconv.FormatUint(r.MemoryKiB, 10),
				strconv.Itoa(r.Reloads), strconv.Itoa(r.ReloadFailures), ""})
		}
	}
	w.Flush()
	return md, csvPath, w.Error()
}

// count renders a counter of a run, or nothing for a row without runs
// (start-up).
func count(v uint64, l Load) string {
	if l.Generator == "" {
		return ""
	}
	return strconv.FormatUint(v, 10)
}

// rcodes renders answers by RCODE as "NOERROR=9000 NXDOMAIN=1000", sorted
// by name.
func rcodes(m map[string]uint64) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// cell makes s safe inside a Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// Markdown renders the results as tables, one per zone set.
func (res *Results) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# ringdns benchmarks, %s\n\n", res.Started.UTC().Format(time.RFC3339))
	for _, m := range res.Machine {
		fmt.Fprintf(&b, "- %s\n", m)
	}
	for _, v := range res.Versions {
		fmt.Fprintf(&b, "- %s\n", v)
	}
	o := res.Options
	fmt.Fprintf(&b, "- %d run(s) per saturation and fixed-rate figure, of %d s (saturation, dnsperf) and %d s (fixed rate, each step of the highest-rate search); server on CPU %d, load generator on CPU %d; one veth queue\n",
		o.Runs, o.Seconds, shortSeconds, serverCPU, loadCPU)
	fmt.Fprintf(&b, "- command: `sudo go run ./benchmarks %s`\n\n", strings.Join(os.Args[1:], " "))
	if len(res.Peers) > 0 {
		b.WriteString("## Peers on this machine\n\nEach was tried in the topology before the measurements; one that could not run is left out, with the reason the system gave.\n\n")
		b.WriteString("| peer | role | status |\n| --- | --- | --- |\n")
		for _, p := range res.Peers {
			status := "available"
			if !p.Available() {
				status = "unavailable: " + p.Reason
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", p.Name, p.Role, cell(status))
		}
		b.WriteString("\n")
	}
	res.summary(&b)
	res.agreement(&b)
	sets := []string{}
	seen := map[string]bool{}
	for _, r := range res.Rows {
		if !seen[r.ZoneSet] {
			seen[r.ZoneSet] = true
			sets = append(sets, r.ZoneSet)
		}
	}
	for _, s := range sets {
		fmt.Fprintf(&b, "## Zone set %s\n\n", s)
		fmt.Fprintf(&b, "| server | load | pinned | answers/s median (min-max) | loss | server CPU ns/answer | whole-machine ns/answer | latency p50/p90/p99/p99.9 µs |\n")
		fmt.Fprintf(&b, "| --- | --- | --- | --- | --- | --- | --- | --- |\n")
		for _, r := range res.Rows {
			if r.ZoneSet != s || r.Load == "start-up" {
				continue
			}
			lat := "-"
			if p50 := r.latency(func(l Load) float64 { return l.P50 }); p50 > 0 {
				lat = fmt.Sprintf("%.0f / %.0f / %.0f / %.0f", p50, r.latency(func(l Load) float64 { return l.P90 }),
					r.latency(func(l Load) float64 { return l.P99 }), r.latency(func(l Load) float64 { return l.P999 }))
			}
			load := r.Load
			if r.Server == RingdnsXDP && len(r.XDPShare) > 0 {
				load += fmt.Sprintf(" (%.1f%% via rings)", 100*median(r.XDPShare))
			}
			if len(r.QueueReplies) > 0 {
				load += fmt.Sprintf(" (server answers per queue %v)", r.QueueReplies)
			}
			if n := len(r.Loads); n > 0 && len(r.Loads[n-1].Queues) > 1 {
				var qs []string
				for _, q := range r.Loads[n-1].Queues {
					qs = append(qs, fmt.Sprintf("%d: %d/%d", q.Queue, q.Answered, q.Sent))
				}
				load += fmt.Sprintf(" (ringperf answered/sent per queue %s)", strings.Join(qs, ", "))
			}
			if r.Reloads > 0 {
				load += fmt.Sprintf(" (%d reloads, %d failed)", r.Reloads, r.ReloadFailures)
			}
			fmt.Fprintf(&b, "| %s | %s | %v | %s | %.2f%% | %s | %s | %s |\n", r.Server, load, r.Pinned,
				spread(r.QPS, 1), 100*median(r.Loss), spread(r.ServerNs, 1), spread(r.WholeNs, 1), lat)
		}
		for _, kind := range o.Servers {
			if why := res.unavailable(string(kind)); why != "" {
				fmt.Fprintf(&b, "| %s | %s | | - | - | - | - | - |\n", kind, cell("unavailable: "+why))
			}
		}
		head := "\n| server | start to first answer | memory after load (PSS) |\n| --- | --- | --- |\n"
		for _, r := range res.Rows {
			if r.ZoneSet == s && r.Load == "start-up" {
				b.WriteString(head)
				head = ""
				fmt.Fprintf(&b, "| %s | %.3f s | %.1f MiB |\n", r.Server, r.Ready.Seconds(), float64(r.MemoryKiB)/1024)
			}
		}
		b.WriteString("\n")
	}
	if len(res.Errors)+len(res.PeerErrors) > 0 {
		b.WriteString("## Failed measurements\n\n")
		for _, e := range res.Errors {
			fmt.Fprintf(&b, "- %s\n", e)
		}
		for _, e := range res.PeerErrors {
			fmt.Fprintf(&b, "- (peer) %s\n", e)
		}
	}
	return b.String()
}

// findRow returns the row of zone set, server and load, or nil.
func (res *Results) findRow(set string, kind ServerKind, load string, pinned bool) *Row {
	for _, r := range res.Rows {
		if r.ZoneSet == set && r.Server == kind && r.Load == load && r.Pinned == pinned {
			return r
		}
	}
	return nil
}

// summary writes the table README.md shows: per zone set and server,
// ringperf's saturation rate, the highest rate with at most 1% loss, CPU
// per answer at saturation and at the fixed rate, and the latency at the
// fixed rate. The null responder's line is what bare AF_XDP costs here.
// Servers that could not run are listed with "unavailable".
func (res *Results) summary(b *strings.Builder) {
	o := res.Options
	fixed := fmt.Sprintf("ringperf %dk/s", o.FixedRate/1000)
	sat, _ := saturationLoad(o)
	var sets []string
	for _, r := range res.Rows {
		// The one-queue zone sets only: the comparison of generators and
		// the two-queue runs have sections of their own.
		if r.Load == sat && r.Pinned && r.ZoneSet != agreementSet && !strings.Contains(r.ZoneSet, "queues") && !slices.Contains(sets, r.ZoneSet) {
			sets = append(sets, r.ZoneSet)
		}
	}
	if len(sets) == 0 {
		return
	}
	fmt.Fprintf(b, "## Summary\n\nringperf on CPU %d, the server on CPU %d, one veth queue. Answers/s under %s: median (min-max) of the runs; "+
		"≤1%% loss: the highest rate answered with at most 1%% loss; CPU in ns per answer, medians; latency at %dk/s in µs, medians.\n\n", loadCPU, serverCPU, sat, o.FixedRate/1000)
	fmt.Fprintf(b, "| zone set | server | answers/s, %s | ≤1%% loss | server CPU/answer | whole machine/answer, %s | whole machine/answer at %dk/s | latency p50 / p99 at %dk/s |\n",
		sat, sat, o.FixedRate/1000, o.FixedRate/1000)
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, set := range sets {
		label := set
		for _, r := range res.Rows {
			if r.ZoneSet != set || r.Load != sat || !r.Pinned {
				continue
			}
			name := string(r.Server)
			if r.Server == NullXDP {
				name += " (bare AF_XDP)"
			}
			ndr, fx := "-", "-"
			if n := res.findRow(set, r.Server, "ringperf highest rate with loss <= 1%", true); n != nil {
				ndr = spread(n.QPS, 1)
			}
			lat := "-"
			if f := res.findRow(set, r.Server, fixed, true); f != nil {
				fx = medianOf(f.WholeNs)
				if p50 := f.latency(func(l Load) float64 { return l.P50 }); p50 > 0 {
					lat = fmt.Sprintf("%.0f / %.0f", p50, f.latency(func(l Load) float64 { return l.P99 }))
				}
			}
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", label, name, spread(r.QPS, 1), ndr,
				medianOf(r.ServerNs), medianOf(r.WholeNs), fx, lat)
			label = ""
		}
		for _, kind := range o.Servers {
			if why := res.unavailable(string(kind)); why != "" && (kind != NullXDP || set == "small") {
				fmt.Fprintf(b, "| %s | %s | unavailable here (see Peers) | | | | | |\n", label, kind)
				label = ""
			}
		}
	}
	b.WriteString("\n")
	// The floor, in words: the null responder does no DNS work at all.
	if r := res.findRow("small", NullXDP, sat, true); r != nil && len(r.QPS) > 0 {
		fmt.Fprintf(b, "What bare AF_XDP costs here (null-xdp on the small set: the project's nic package turning every query around as REFUSED, no DNS work, driven by ringperf): %s answers/s under %s, %s ns of server CPU and %s ns of whole-machine CPU per answer",
			spread(r.QPS, 1), sat, medianOf(r.ServerNs), medianOf(r.WholeNs))
		if f := res.findRow("small", NullXDP, fixed, true); f != nil && f != r {
			fmt.Fprintf(b, "; %s ns of whole-machine CPU per answer at %dk/s", medianOf(f.WholeNs), o.FixedRate/1000)
		}
		b.WriteString(".\n\n")
	}
}

// medianOf renders the median of v as spread does, or "-" for no runs.
func medianOf(v []float64) string {
	if len(v) == 0 {
		return "-"
	}
	return spread([]float64{median(v)}, 1)
}

// agreement writes how far ringperf's answered rate and median latency
// agree with dnsperf's at the rates both reach.
func (res *Results) agreement(b *strings.Builder) {
	if res.AgreementNote != "" {
		fmt.Fprintf(b, "## ringperf against dnsperf\n\n%s\n\n", res.AgreementNote)
		return
	}
	var lines []string
	for _, rate := range agreementRates {
		rp := res.findRow(agreementSet, KnotUDP, fmt.Sprintf("ringperf %dk/s", rate/1000), true)
		dp := res.findRow(agreementSet, KnotUDP, fmt.Sprintf("dnsperf %dk/s", rate/1000), true)
		if rp == nil || dp == nil || len(rp.QPS) == 0 || len(dp.QPS) == 0 {
			continue
		}
		p50 := func(l Load) float64 { return l.P50 }
		rq, dq, rl, dl := median(rp.QPS), median(dp.QPS), rp.latency(p50), dp.latency(p50)
		// Full figures: the differences sought are of a few percent.
		exact := func(v []float64) string {
			sorted := append([]float64(nil), v...)
			sort.Float64s(sorted)
			return fmt.Sprintf("%.0f (%.0f-%.0f)", median(v), sorted[0], sorted[len(sorted)-1])
		}
		lines = append(lines, fmt.Sprintf("| %dk/s | %d | %s | %s | %+.1f%% | %.2f%% | %.2f%% | %.0f | %.0f | %+.1f%% |", rate/1000, len(rp.QPS),
			exact(rp.QPS), exact(dp.QPS), 100*(rq/dq-1), 100*median(rp.Loss), 100*median(dp.Loss), rl, dl, 100*(rl/dl-1)))
	}
	if len(lines) == 0 {
		return
	}
	b.WriteString("## ringperf against dnsperf\n\nknot-udp on the small zone, the same queries (dnsperf's file, no EDNS) at the same rate from the same CPU, runs alternating. " +
		"Answers/s: median (min-max); loss: median; p50: median over the runs of each run's median latency, µs; differences are ringperf's relative to dnsperf's.\n\n")
	b.WriteString("| offered | runs | ringperf answers/s | dnsperf answers/s | difference | ringperf loss | dnsperf loss | ringperf p50 | dnsperf p50 | difference |\n" +
		"| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	b.WriteString("\n")
}

func machineInfo() []string {
	var out []string
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		out = append(out, "kernel "+strings.TrimSpace(string(b)))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				out = append(out, "CPU "+strings.TrimSpace(v))
				break
			}
		}
	}
	out = append(out, fmt.Sprintf("%d CPUs, %s", runtime.NumCPU(), runtime.Version()))
	return out
}

func versions(b Binaries) []string {
	var out []string
	for _, c := range [][]string{{b.Knotd, "--version"}, {b.NSD, "-v"}, {b.Kxdpgun, "--version"}, {b.Dnsperf, "-h"}} {
		if c[0] == "" {
			continue // not installed: the peers' check reports it
		}
		o, _ := exec.Command(c[0], c[1:]...).CombinedOutput()
		for _, line := range strings.Split(string(o), "\n") {
			if strings.Contains(strings.ToLower(line), "version") {
				out = append(out, filepath.Base(c[0])+": "+strings.TrimSpace(line))
				break
			}
		}
	}
	if o, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		out = append(out, "ringdns and ringperf: "+strings.TrimSpace(string(o)))
	}
	return out
}

// sortRows orders the rows as a reader looks for them: by zone set and
// server in the order they were first measured, then pinned before
// unpinned, then by load (saturation first, the reload pair last), whatever
// order the interleaved rounds added them in.
func (res *Results) sortRows() {
	first := func(key func(*Row) string) map[string]int {
		m := map[string]int{}
		for _, r := range res.Rows {
			if _, ok := m[key(r)]; !ok {
				m[key(r)] = len(m)
			}
		}
		return m
	}
	sets := first(func(r *Row) string { return r.ZoneSet })
	servers := first(func(r *Row) string { return string(r.Server) })
	rank := func(load string) int {
		for i, p := range []string{"start-up", "ringperf saturation", "ringperf highest", "ringperf", "kxdpgun", "dnsperf saturation", "dnsperf"} {
			if strings.HasPrefix(load, p) {
				if strings.Contains(load, "reload") || strings.Contains(load, "no reloads") {
					return 10
				}
				return i
			}
		}
		return 20
	}
	slices.SortStableFunc(res.Rows, func(a, b *Row) int {
		return cmp.Or(
			cmp.Compare(sets[a.ZoneSet], sets[b.ZoneSet]),
			cmp.Compare(servers[string(a.Server)], servers[string(b.Server)]),
			cmp.Compare(boolRank(!a.Pinned), boolRank(!b.Pinned)),
			cmp.Compare(rank(a.Load), rank(b.Load)))
	})
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// row returns the row of set, server, load and pinning, adding it when
// there is none yet: the interleaved rounds add runs to the rows earlier
// rounds made.
func (res *Results) row(set *ZoneSet, kind ServerKind, load string, pinned bool) *Row {
	if r := res.findRow(set.Name, kind, load, pinned); r != nil {
		return r
	}
	r := &Row{ZoneSet: set.Name, Server: kind, Load: load, Pinned: pinned, Records: set.Records}
	res.Rows = append(res.Rows, r)
	return r
}
