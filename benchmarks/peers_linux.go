package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// A peer is a program the harness compares ringdns with (Knot, NSD) or
// drives its loads with (ringperf, kxdpgun, dnsperf). Whether a peer can run
// depends on the machine: on kernel 6.18.44 every XDP program that calls
// bpf_xdp_adjust_meta is refused, which stops knotd's XDP mode and kxdpgun
// (NOTES.md). So each run starts by trying every peer in the topology, and a
// peer that cannot run is reported with the reason the system gave, not
// counted as a failure. The project's own programs (ringdns, the null
// responder and ringperf) are not excused: a run in which they fail fails.

// Generator names a load generator.
type Generator string

const (
	Ringperf Generator = "ringperf"
	Kxdpgun  Generator = "kxdpgun"
	Dnsperf  Generator = "dnsperf"
)

// PeerStatus is what the check at the start of a run found about one peer.
type PeerStatus struct {
	Name     string // a ServerKind or a Generator
	Role     string // "server" or "load generator"
	Required bool   // the project's own: if it cannot run, the run fails
	Reason   string // why it cannot run here; empty when it can
}

// Available reports whether the peer ran when tried.
func (p PeerStatus) Available() bool { return p.Reason == "" }

// checkedPeers are the peers checked at start, in the order reports list
// them.
var checkedPeers = []PeerStatus{
	{Name: string(KnotXDP), Role: "server"},
	{Name: string(KnotUDP), Role: "server"},
	{Name: string(NSD), Role: "server"},
	{Name: string(Ringperf), Role: "load generator", Required: true},
	{Name: string(Kxdpgun), Role: "load generator"},
	{Name: string(Dnsperf), Role: "load generator"},
}

// probeTimeout bounds each try: a server must answer its first query within
// it, a generator must finish its one-second run within it.
const probeTimeout = 15 * time.Second

// checkPeers tries every peer of checkedPeers in t, one at a time: each
// server is started on a small zone and must answer its SOA (knotd's XDP
// mode must also have attached its program), each generator sends for one
// second at a low rate and must report what it sent. No server answers the
// generators' queries; whether the generator can run is all that is asked.
// dir receives the zone, the queries and the servers' files.
func checkPeers(bins Binaries, t *Topology, dir string) ([]PeerStatus, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	set, err := SmallZone(dir, 1)
	if err != nil {
		return nil, err
	}
	out := make([]PeerStatus, 0, len(checkedPeers))
	for _, p := range checkedPeers {
		if why, ok := bins.Missing[p.Name]; ok {
			p.Reason = why
		} else {
			p.Reason = probe(p.Name, bins, t, set, filepath.Join(dir, p.Name))
		}
		out = append(out, p)
	}
	return out, nil
}

// probe tries one peer and returns why it cannot run, or "" when it can.
func probe(name string, bins Binaries, t *Topology, set *ZoneSet, dir string) string {
	switch name {
	case string(KnotXDP), string(KnotUDP), string(NSD):
		return probeServer(ServerKind(name), bins, t, set.Zone, dir)
	case string(Kxdpgun):
		out, err := runBounded(command(kxdpgunArgs(t, bins.Kxdpgun, set.Queries, 1000, 1, -1)), probeTimeout)
		// kxdpgun leaves its program attached, and exits 0 even when it
		// could not start (it prints an error and no totals).
		t.DetachClientXDP()
		if l, perr := parseKxdpgun(out, 1); err == nil && perr == nil && l.Sent > 0 {
			return ""
		}
		return refusal(out, err)
	case string(Dnsperf):
		out, err := runBounded(command(dnsperfArgs(t, bins.Dnsperf, set.DnsperfQueries, false, 200, 1, -1)), probeTimeout)
		if l, perr := parseDnsperf(out); err == nil && perr == nil && l.Sent > 0 {
			return ""
		}
		return refusal(out, err)
	case string(Ringperf):
		stdout, stderr, err := runSplit(command(t.InClient(bins.Ringperf, "-i", t.ClientIf, "-s", serverV4,
			"-d", set.Queries, "-l", "1", "-rate", "1000", "-json")), probeTimeout)
		l, perr := parseRingperf(stdout)
		if err == nil && perr == nil && l.Sent > 0 {
			return ""
		}
		if err == nil {
			err = perr
		}
		return refusal(append(stderr, stdout...), err)
	}
	return "no check for this peer"
}

// probeServer starts kind on z and stops it again.
func probeServer(kind ServerKind, bins Binaries, t *Topology, z ZoneFile, dir string) string {
	srv, err := StartServer(kind, bins, t, z, dir, -1, probeTimeout)
	if err != nil {
		var se *StartError
		if errors.As(err, &se) {
			return refusal(se.Log, se.Err)
		}
		return err.Error()
	}
	defer srv.Stop(t)
	if kind == KnotXDP {
		// knotd answered; an XDP program on the interface says the answer
		// came through its rings rather than a fall back to its UDP
		// workers.
		if !t.ServerXDPAttached() {
			return fmt.Sprintf("knotd started but attached no XDP program to %s", t.ServerIf)
		}
	}
	return ""
}

// libbpf prints the kernel verifier's log of a refused program between
// these two lines.
var (
	verifierBegin = regexp.MustCompile(`-- BEGIN PROG LOAD LOG --\s*$`)
	verifierEnd   = regexp.MustCompile(`^-- END PROG LOAD LOG --`)
	// The verifier's trace (instructions, register states, statistics)
	// surrounds the one line that says why the program was refused.
	verifierTrace = regexp.MustCompile(`^(\d+: |; |processed \d+ insns|verification time|stack depth|func#|last_idx|regs=|parent |from \d+ to \d+|mark_precise)`)
	// knotd stamps its log lines with the time.
	knotStamp = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} `)
	// The lines of a program's output that say something failed.
	failureLine = regexp.MustCompile(`(?i)error|fail|critical|cannot|refused|denied|not permitted|not found|no such`)
)

// refusal picks out of a peer's output the lines that say why it could not
// run, exactly as printed (knotd's timestamps aside): the verifier's reason
// when the kernel refused a program, libbpf's "Kernel error message", then
// the peer's own error lines. With none of those it falls back to err and
// the output's last line.
func refusal(out []byte, err error) string {
	var lines []string
	seen := map[string]bool{}
	add := func(s string) {
		s = strings.TrimSpace(s)
		if s != "" && !seen[s] && len(lines) < 4 {
			seen[s] = true
			lines = append(lines, s)
		}
	}
	var verifier, other []string
	inLog := false
	last := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := knotStamp.ReplaceAllString(strings.TrimSpace(sc.Text()), "")
		switch {
		case verifierBegin.MatchString(line):
			inLog = true
		case inLog && verifierEnd.MatchString(line):
			inLog = false
		case inLog:
			if line != "" && !verifierTrace.MatchString(line) {
				verifier = append(verifier, line)
			}
		case line != "":
			last = line
			if failureLine.MatchString(line) {
				other = append(other, line)
			}
		}
	}
	// The verifier names the reason last, after the trace that led to it.
	if len(verifier) > 0 {
		add(verifier[len(verifier)-1])
	}
	// Then the kernel's message for a refused attachment, the peer's own
	// lines (which name the interface and the step), and libbpf's.
	for _, l := range other {
		if strings.Contains(l, "Kernel error message") {
			add(l)
		}
	}
	for _, l := range other {
		if !strings.HasPrefix(l, "libbpf:") {
			add(l)
		}
	}
	for _, l := range other {
		add(l)
	}
	if len(lines) == 0 {
		if err != nil {
			add(err.Error())
		}
		add(last)
	}
	if len(lines) == 0 {
		return "it ran but reported nothing it sent or answered"
	}
	// Semicolons, not bars: the reason goes into Markdown tables.
	s := strings.Join(lines, "; ")
	if len(s) > 400 {
		s = s[:400] + "..."
	}
	return s
}
