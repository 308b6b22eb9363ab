package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Load is what one run of a load generator measured.
type Load struct {
	Generator string
	Sent      uint64
	Answered  uint64
	Lost      uint64  // queries that got no reply in time
	Seconds   float64 // from the first query sent to the last
	// Latency in microseconds: ringperf measures every answer, dnsperf's
	// verbose output gives every answer's; zero for kxdpgun, which does not
	// measure latency.
	Min, P50, P90, P99, P999, Max float64
	Rcodes                        map[string]uint64 // answers by RCODE name, as the generator names them
	Truncated                     uint64            // answers with TC set (ringperf)
	ReplyBytes                    uint64            // DNS payload bytes of the answers (ringperf)
	Unmatched                     uint64            // replies that matched no outstanding query (ringperf)
	Queues                        []QueueLoad       // per client queue (ringperf)
	Mode                          string            // ringperf's XDP attach mode, "driver" or "generic"
	ZeroCopy                      bool              // whether ringperf's sockets ran in zero-copy mode
}

// QueueLoad is what one of ringperf's queue threads sent and got answered.
type QueueLoad struct {
	Queue, CPU     int
	Sent, Answered uint64
}

// QPS is the answers per second of the run.
func (l Load) QPS() float64 {
	if l.Seconds <= 0 {
		return 0
	}
	return float64(l.Answered) / l.Seconds
}

// Loss is the fraction of queries sent that got no answer.
func (l Load) Loss() float64 {
	if l.Sent == 0 {
		return 0
	}
	return float64(l.Lost) / float64(l.Sent)
}

// loadError is a load generator's failure to run, as opposed to a server's
// failure to answer: the harness holds the generator to account for it.
type loadError struct {
	gen Generator
	err error
}

func (e *loadError) Error() string { return fmt.Sprintf("%s: %v", e.gen, e.err) }
func (e *loadError) Unwrap() error { return e.err }

// RingperfRun is one run of ringperf, the project's AF_XDP load generator
// (cmd/ringperf; its command line and JSON output are the contract in
// cmd/ringperf's documentation).
type RingperfRun struct {
	Queries string  // query file, "NAME TYPE [E|D]" per line
	Rate    int     // queries per second over all queues; 0 = flat out
	Seconds float64 // duration bound
	CPU     int     // CPU of its one queue thread; < 0 = not pinned
	Queues  string  // -queues: "" for queue 0 only, "0,1", "all"
	// NoEDNS sends no OPT record for lines that do not ask for one, as
	// dnsperf does without -e: the agreement runs send dnsperf's queries.
	NoEDNS bool
	DO     bool // DO=1 on every line without a flag (dnsperf -D)
}

// Ringperf runs ringperf from the client namespace with -json and reads its
// result.
func RingperfLoad(t *Topology, bin string, r RingperfRun) (Load, error) {
	args := []string{bin, "-i", t.ClientIf, "-s", serverV4, "-d", r.Queries,
		"-l", strconv.FormatFloat(r.Seconds, 'f', -1, 64), "-json"}
	if r.Rate > 0 {
		args = append(args, "-rate", strconv.Itoa(r.Rate))
	}
	if r.CPU >= 0 {
		args = append(args, "-cpus", strconv.Itoa(r.CPU))
	}
	if r.Queues != "" {
		args = append(args, "-queues", r.Queues)
	}
	if r.NoEDNS {
		args = append(args, "-edns", "0")
	}
	if r.DO {
		args = append(args, "-do", "1")
	}
	var stdout, stderr []byte
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		stdout, stderr, err = runSplit(command(t.InClient(args...)), time.Duration(r.Seconds+30)*time.Second)
		// As for the servers and kxdpgun: the previous run's sockets may
		// not be released yet when the next starts.
		if err == nil || !bytes.Contains(stderr, []byte("busy")) {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		return Load{}, &loadError{Ringperf, fmt.Errorf("%v: %s", err, tail(stderr))}
	}
	l, err := parseRingperf(stdout)
	if err != nil {
		return l, &loadError{Ringperf, fmt.Errorf("%v (stderr: %s)", err, tail(stderr))}
	}
	return l, nil
}

// ringperfResult is ringperf's -json output. The fields that every result
// has are pointers, so that a result without them is told from a zero.
type ringperfResult struct {
	Sent        *uint64           `json:"sent"`
	Answered    *uint64           `json:"answered"`
	Lost        *uint64           `json:"lost"`
	Loss        float64           `json:"loss"`
	Seconds     *float64          `json:"seconds"`
	SentQPS     float64           `json:"sent_qps"`
	AnsweredQPS float64           `json:"answered_qps"`
	Rcodes      map[string]uint64 `json:"rcodes"`
	Truncated   uint64            `json:"truncated"`
	ReplyBytes  uint64            `json:"reply_bytes"`
	Unmatched   uint64            `json:"unmatched"`
	Latency     struct {
		Min  float64 `json:"min"`
		P50  float64 `json:"p50"`
		P90  float64 `json:"p90"`
		P99  float64 `json:"p99"`
		P999 float64 `json:"p999"`
		Max  float64 `json:"max"`
	} `json:"latency_us"`
	Queues []struct {
		Queue    int    `json:"queue"`
		CPU      int    `json:"cpu"`
		Sent     uint64 `json:"sent"`
		Answered uint64 `json:"answered"`
	} `json:"queues"`
	Mode     string `json:"mode"`
	ZeroCopy bool   `json:"zero_copy"`
}

// parseRingperf reads the one JSON object ringperf -json prints on stdout.
func parseRingperf(stdout []byte) (Load, error) {
	l := Load{Generator: string(Ringperf)}
	i := bytes.IndexByte(stdout, '{')
	if i < 0 {
		return l, fmt.Errorf("printed no JSON result: %q", tail(stdout))
	}
	var r ringperfResult
	if err := json.NewDecoder(bytes.NewReader(stdout[i:])).Decode(&r); err != nil {
		return l, fmt.Errorf("JSON result: %v: %q", err, tail(stdout))
	}
	if r.Sent == nil || r.Answered == nil || r.Lost == nil || r.Seconds == nil {
		return l, fmt.Errorf("JSON result lacks sent, answered, lost or seconds: %q", tail(stdout))
	}
	l.Sent, l.Answered, l.Lost, l.Seconds = *r.Sent, *r.Answered, *r.Lost, *r.Seconds
	l.Min, l.P50, l.P90, l.P99, l.P999, l.Max = r.Latency.Min, r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.P999, r.Latency.Max
	l.Rcodes, l.Truncated, l.ReplyBytes, l.Unmatched = r.Rcodes, r.Truncated, r.ReplyBytes, r.Unmatched
	l.Mode, l.ZeroCopy = r.Mode, r.ZeroCopy
	for _, q := range r.Queues {
		l.Queues = append(l.Queues, QueueLoad{Queue: q.Queue, CPU: q.CPU, Sent: q.Sent, Answered: q.Answered})
	}
	return l, nil
}

var (
	kxdpQueries = regexp.MustCompile(`total queries:\s+(\d+)`)
	kxdpReplies = regexp.MustCompile(`total replies:\s+(\d+)`)
	kxdpDur     = regexp.MustCompile(`duration:\s+([0-9.]+) s`)
	kxdpRcode   = regexp.MustCompile(`(?m)^responded (\S+):\s+(\d+)`)
)

// kxdpgunArgs is the command line of one kxdpgun run from the client
// namespace, for seconds at rate queries per second (a rate above the
// server's capacity saturates it) on cpu (or unpinned when cpu < 0).
func kxdpgunArgs(t *Topology, bin, queryFile string, rate, seconds, cpu int) []string {
	args := []string{bin, "-t", strconv.Itoa(seconds), "-Q", strconv.Itoa(rate),
		"-i", queryFile, "-I", t.ClientIf}
	if cpu >= 0 {
		args = append(args, "-F", strconv.Itoa(cpu))
	}
	return t.InClient(append(args, serverV4)...)
}

// KxdpgunLoad runs kxdpgun (see kxdpgunArgs).
func KxdpgunLoad(t *Topology, bin, queryFile string, rate, seconds, cpu int) (Load, error) {
	var out []byte
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		out, err = runBounded(command(kxdpgunArgs(t, bin, queryFile, rate, seconds, cpu)), time.Duration(seconds+30)*time.Second)
		// kxdpgun leaves its XDP program on the client's interface.
		t.DetachClientXDP()
		// The socket of the previous run may not be released yet when the
		// next starts ("requested resource is busy"): wait and try again.
		if !bytes.Contains(out, []byte("resource is busy")) {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		return Load{}, &loadError{Kxdpgun, fmt.Errorf("%v: %s", err, tail(out))}
	}
	l, err := parseKxdpgun(out, seconds)
	if err != nil {
		return l, &loadError{Kxdpgun, err}
	}
	return l, nil
}

// parseKxdpgun reads kxdpgun's totals. It exits 0 even when it could not
// start, printing an error and no totals.
func parseKxdpgun(out []byte, seconds int) (Load, error) {
	l := Load{Generator: string(Kxdpgun)}
	m1, m2 := kxdpQueries.FindSubmatch(out), kxdpReplies.FindSubmatch(out)
	if m1 == nil || m2 == nil {
		return l, fmt.Errorf("printed no totals: %s", tail(out))
	}
	l.Sent, _ = strconv.ParseUint(string(m1[1]), 10, 64)
	l.Answered, _ = strconv.ParseUint(string(m2[1]), 10, 64)
	if l.Answered <= l.Sent {
		l.Lost = l.Sent - l.Answered
	}
	l.Seconds = float64(seconds)
	if m := kxdpDur.FindSubmatch(out); m != nil {
		if d, err := strconv.ParseFloat(string(m[1]), 64); err == nil && d > 0 {
			l.Seconds = d
		}
	}
	for _, m := range kxdpRcode.FindAllSubmatch(out, -1) {
		if l.Rcodes == nil {
			l.Rcodes = map[string]uint64{}
		}
		l.Rcodes[string(m[1])], _ = strconv.ParseUint(string(m[2]), 10, 64)
	}
	return l, nil
}

// dnsperfArgs is the command line of one dnsperf run from the client
// namespace. rate 0 means as fast as it can (it saturates its own core
// first here, NOTES.md).
func dnsperfArgs(t *Topology, bin, queryFile string, do bool, rate, seconds, cpu int) []string {
	args := []string{bin, "-s", serverV4, "-d", queryFile, "-l", strconv.Itoa(seconds),
		"-c", "8", "-q", "500", "-t", "1", "-v"}
	if rate > 0 {
		args = append(args, "-Q", strconv.Itoa(rate))
	}
	if do {
		args = append(args, "-D")
	}
	if cpu >= 0 {
		args = append([]string{"taskset", "-c", strconv.Itoa(cpu)}, args...)
	}
	return t.InClient(args...)
}

// DnsperfLoad runs dnsperf (see dnsperfArgs). Every reply's latency is read
// from its verbose output to give percentiles.
func DnsperfLoad(t *Topology, bin, queryFile string, do bool, rate, seconds, cpu int) (Load, error) {
	out, err := runBounded(command(dnsperfArgs(t, bin, queryFile, do, rate, seconds, cpu)), time.Duration(seconds+30)*time.Second)
	if err != nil {
		return Load{}, &loadError{Dnsperf, fmt.Errorf("%v: %s", err, tail(out))}
	}
	l, err := parseDnsperf(out)
	if err != nil {
		return l, &loadError{Dnsperf, err}
	}
	return l, nil
}

// parseDnsperf reads dnsperf's summary and, from its verbose lines
// ("> NOERROR name type 0.000123"), the latency of every answer.
func parseDnsperf(out []byte) (Load, error) {
	l := Load{Generator: string(Dnsperf)}
	var lat []float64
	lost, haveLost := uint64(0), false
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "> ") && len(f) >= 5:
			if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
				lat = append(lat, v*1e6)
			}
		case strings.HasPrefix(line, "Queries sent:") && len(f) >= 3:
			l.Sent, _ = strconv.ParseUint(f[2], 10, 64)
		case strings.HasPrefix(line, "Queries completed:") && len(f) >= 3:
			l.Answered, _ = strconv.ParseUint(f[2], 10, 64)
		case strings.HasPrefix(line, "Queries lost:") && len(f) >= 3:
			lost, _ = strconv.ParseUint(f[2], 10, 64)
			haveLost = true
		case strings.HasPrefix(line, "Run time (s):") && len(f) >= 4:
			l.Seconds, _ = strconv.ParseFloat(f[3], 64)
		case strings.HasPrefix(line, "Response codes:"):
			// "Response codes:       NOERROR 9000 (90.00%), NXDOMAIN 1000 (10.00%)"
			for _, part := range strings.Split(strings.TrimPrefix(line, "Response codes:"), ",") {
				if p := strings.Fields(part); len(p) >= 2 {
					if n, err := strconv.ParseUint(p[1], 10, 64); err == nil {
						if l.Rcodes == nil {
							l.Rcodes = map[string]uint64{}
						}
						l.Rcodes[p[0]] = n
					}
				}
			}
		}
	}
	if l.Seconds == 0 || l.Sent == 0 {
		return l, fmt.Errorf("printed no summary: %s", tail(out))
	}
	l.Lost = lost
	if !haveLost && l.Answered <= l.Sent {
		l.Lost = l.Sent - l.Answered
	}
	sort.Float64s(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	l.P50, l.P90, l.P99, l.P999 = pct(0.50), pct(0.90), pct(0.99), pct(0.999)
	if len(lat) > 0 {
		l.Min, l.Max = lat[0], lat[len(lat)-1]
	}
	return l, nil
}

// runBounded runs cmd and kills it if it outlives limit, so that no load
// generator can run away.
func runBounded(cmd *exec.Cmd, limit time.Duration) ([]byte, error) {
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return buf.Bytes(), err
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		return buf.Bytes(), fmt.Errorf("killed after %v", limit)
	}
}

// runSplit is runBounded with the command's standard output and standard
// error kept apart: ringperf prints its JSON result on one and its progress
// on the other.
func runSplit(cmd *exec.Cmd, limit time.Duration) (stdout, stderr []byte, err error) {
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		err = fmt.Errorf("killed after %v", limit)
	}
	return o.Bytes(), e.Bytes(), err
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// MachineCPU samples /proc/stat: busy time of all CPUs is the wall time
// times the CPUs minus the idle time, which NOTES.md found more reliable on
// this VM than summing the busy ticks.
type MachineCPU struct {
	at   time.Time
	idle uint64 // ticks of idle and iowait over all CPUs
}

func SampleMachine() MachineCPU {
	s := MachineCPU{at: time.Now()}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) > 5 && f[0] == "cpu" {
		idle, _ := strconv.ParseUint(f[4], 10, 64)
		iow, _ := strconv.ParseUint(f[5], 10, 64)
		s.idle = idle + iow
	}
	return s
}

// clockTick is USER_HZ, the unit of /proc/stat and /proc/PID/stat times;
// Linux reports it as 100 on every architecture it runs on.
const clockTick = 100

// BusySeconds is the CPU time the whole machine spent busy between a and b.
func BusySeconds(a, b MachineCPU, cpus int) float64 {
	wall := b.at.Sub(a.at).Seconds() * float64(cpus)
	idle := float64(b.idle-a.idle) / clockTick
	return max(wall-idle, 0)
}
