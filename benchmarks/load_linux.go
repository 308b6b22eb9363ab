package main

import (
	"bufio"
	"bytes"
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
	Seconds   float64
	// Latency percentiles in microseconds, from dnsperf's per-query output;
	// zero for kxdpgun, which does not measure latency.
	P50, P99, P999 float64
}

// QPS is the answers per second of the run.
func (l Load) QPS() float64 { return float64(l.Answered) / l.Seconds }

// Loss is the fraction of queries sent that got no answer.
func (l Load) Loss() float64 {
	if l.Sent == 0 {
		return 0
	}
	return 1 - float64(l.Answered)/float64(l.Sent)
}

var (
	kxdpQueries = regexp.MustCompile(`total queries:\s+(\d+)`)
	kxdpReplies = regexp.MustCompile(`total replies:\s+(\d+)`)
	kxdpDur     = regexp.MustCompile(`duration:\s+([0-9.]+) s`)
)

// Kxdpgun runs kxdpgun from the client namespace for seconds at rate
// queries per second (a rate above the server's capacity saturates it) on
// cpu (or unpinned when cpu < 0).
func Kxdpgun(t *Topology, queryFile string, rate int, seconds int, cpu int) (Load, error) {
	args := []string{"kxdpgun", "-t", strconv.Itoa(seconds), "-Q", strconv.Itoa(rate),
		"-i", queryFile, "-I", t.ClientIf}
	if cpu >= 0 {
		args = append(args, "-F", strconv.Itoa(cpu))
	}
	args = append(args, serverV4)
	var out []byte
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		out, err = runBounded(command(t.InClient(args...)), time.Duration(seconds+30)*time.Second)
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
		return Load{}, fmt.Errorf("kxdpgun: %v: %s", err, out)
	}
	l := Load{Generator: "kxdpgun"}
	m1, m2 := kxdpQueries.FindSubmatch(out), kxdpReplies.FindSubmatch(out)
	if m1 == nil || m2 == nil {
		return l, fmt.Errorf("kxdpgun printed no totals: %s", out)
	}
	l.Sent, _ = strconv.ParseUint(string(m1[1]), 10, 64)
	l.Answered, _ = strconv.ParseUint(string(m2[1]), 10, 64)
	l.Seconds = float64(seconds)
	if m := kxdpDur.FindSubmatch(out); m != nil {
		if d, err := strconv.ParseFloat(string(m[1]), 64); err == nil && d > 0 {
			l.Seconds = d
		}
	}
	return l, nil
}

// Dnsperf runs dnsperf from the client namespace. rate 0 means as fast as
// it can (it saturates its own core first here, NOTES.md). Every reply's
// latency is read from its verbose output to give percentiles.
func Dnsperf(t *Topology, queryFile string, do bool, rate int, seconds int, cpu int) (Load, error) {
	args := []string{"dnsperf", "-s", serverV4, "-d", queryFile, "-l", strconv.Itoa(seconds),
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
	cmd := command(t.InClient(args...))
	out, err := runBounded(cmd, time.Duration(seconds+30)*time.Second)
	if err != nil {
		return Load{}, fmt.Errorf("dnsperf: %v: %s", err, tail(out))
	}
	return parseDnsperf(out, float64(rate))
}

// parseDnsperf reads dnsperf's summary and, from its verbose lines
// ("> NOERROR name type 0.000123"), the latency of every answer.
func parseDnsperf(out []byte, rate float64) (Load, error) {
	l := Load{Generator: "dnsperf"}
	var lat []float64
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
		case strings.HasPrefix(line, "Run time (s):") && len(f) >= 4:
			l.Seconds, _ = strconv.ParseFloat(f[3], 64)
		}
	}
	if l.Seconds == 0 || l.Sent == 0 {
		return l, fmt.Errorf("dnsperf printed no summary: %s", tail(out))
	}
	sort.Float64s(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	l.P50, l.P99, l.P999 = pct(0.50), pct(0.99), pct(0.999)
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
