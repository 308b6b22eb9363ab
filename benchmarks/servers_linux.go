package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"github.com/ringdns/ringdns/internal/netns"
)

// ServerKind names one server setup of the matrix.
type ServerKind string

const (
	RingdnsXDP ServerKind = "ringdns-xdp"
	RingdnsUDP ServerKind = "ringdns-udp"
	KnotXDP    ServerKind = "knot-xdp"
	KnotUDP    ServerKind = "knot-udp"
	NSD        ServerKind = "nsd"
	NullXDP    ServerKind = "null-xdp"
)

var allServers = []ServerKind{RingdnsXDP, RingdnsUDP, KnotXDP, KnotUDP, NSD, NullXDP}

// Binaries are the programs the harness runs.
type Binaries struct {
	Ringdns, Ringctl, Null string
	Ringperf               string
	Knotd, NSD             string
	Kxdpgun, Dnsperf       string
	// Missing says, per peer (checkedPeers' names), why its program is
	// not there: not installed, or ringperf did not build.
	Missing map[string]string
}

// StartError is a server's failure to start, with what it printed.
type StartError struct {
	Kind ServerKind
	Err  error
	Log  []byte
}

func (e *StartError) Error() string { return fmt.Sprintf("%s: %v\n%s", e.Kind, e.Err, e.Log) }
func (e *StartError) Unwrap() error { return e.Err }

// Server is one running server process in the server namespace.
type Server struct {
	Kind    ServerKind
	cmd     *exec.Cmd
	log     bytes.Buffer
	dir     string
	control string // ringdns control socket
	started time.Time
	done    chan struct{} // closed once the process has exited and been reaped
	Ready   time.Duration // from start to the first SOA answer
}

// ZoneFile is a zone to serve.
type ZoneFile struct {
	Origin, Path string
}

// StartServer starts kind in the topology's server namespace with zone,
// pinned to cpu (or unpinned when cpu < 0), and waits until it answers the
// zone's SOA over UDP (at most timeout).
func StartServer(kind ServerKind, bins Binaries, t *Topology, z ZoneFile, dir string, cpu int, timeout time.Duration) (*Server, error) {
	for attempt := 1; ; attempt++ {
		s, err := startServer(kind, bins, t, z, dir, cpu, timeout)
		// The kernel releases the AF_XDP sockets of the previous server
		// a moment after its process has exited, and the rounds start
		// the next server at once: a bind that finds the queue still
		// taken is tried again, as kxdpgun's is.
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "resource busy") {
			return s, err
		}
		time.Sleep(time.Second)
	}
}

func startServer(kind ServerKind, bins Binaries, t *Topology, z ZoneFile, dir string, cpu int, timeout time.Duration) (*Server, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := &Server{Kind: kind, dir: dir}
	var args []string
	cpus := ""
	if cpu >= 0 {
		cpus = strconv.Itoa(cpu)
	}
	switch kind {
	case RingdnsXDP, RingdnsUDP:
		s.control = filepath.Join(dir, "control.sock")
		args = []string{bins.Ringdns, "-zone", z.Origin + "=" + z.Path,
			"-listen", serverV4 + ":53", "-listen", "[" + serverV6 + "]:53", "-control", s.control}
		if cpus != "" {
			args = append(args, "-cpus", cpus)
		}
		if kind == RingdnsXDP {
			args = append(args, "-xdp", t.ServerIf)
		}
	case NullXDP:
		args = []string{bins.Null, "-interface", t.ServerIf}
		if cpus != "" {
			args = append(args, "-cpu", cpus)
		}
	case KnotXDP, KnotUDP:
		conf := filepath.Join(dir, "knot.conf")
		if err := os.WriteFile(conf, []byte(knotConfig(dir, z, kind == KnotXDP, t.ServerIf, t.Queues)), 0o644); err != nil {
			return nil, err
		}
		args = []string{bins.Knotd, "-c", conf}
	case NSD:
		conf := filepath.Join(dir, "nsd.conf")
		if err := os.WriteFile(conf, []byte(nsdConfig(dir, z)), 0o644); err != nil {
			return nil, err
		}
		args = []string{bins.NSD, "-d", "-c", conf}
	default:
		return nil, fmt.Errorf("unknown server %q", kind)
	}
	// ringdns and the null responder pin their packet workers themselves
	// (-cpus, -cpu) and leave the rest of the process (reloads, the garbage
	// collector) to the scheduler, as they would run in production. Knot
	// and NSD are confined to the CPU as a whole; they do no other work
	// during a run.
	selfPinned := kind == RingdnsXDP || kind == RingdnsUDP || kind == NullXDP
	full := t.InServer(args...)
	if cpu >= 0 && !selfPinned {
		full = t.InServer(append([]string{"taskset", "-c", cpus}, args...)...)
	}
	s.cmd = exec.Command(full[0], full[1:]...)
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	s.started = time.Now()
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	s.done = make(chan struct{})
	go func() { s.cmd.Wait(); close(s.done) }()
	if err := s.waitReady(t, z, timeout); err != nil {
		s.Stop(t)
		return nil, &StartError{kind, err, s.log.Bytes()}
	}
	s.Ready = time.Since(s.started)
	// knotd pins each worker thread to a CPU of its own choosing, whatever
	// taskset said (NOTES.md): pin all its threads again.
	if cpu >= 0 && !selfPinned {
		for _, pid := range s.PIDs() {
			run("taskset", "-a", "-p", "-c", cpus, strconv.Itoa(pid))
		}
	}
	return s, nil
}

// waitReady sends SOA queries for z's origin over the veth every 20 ms until
// one is answered (the null responder's REFUSED counts), the server exits or
// timeout passes. The socket is opened in the client namespace and used from
// here (netns.Do): kdig would wait at least a second for a lost first query,
// and start-up times are measured here.
func (s *Server) waitReady(t *Topology, z ZoneFile, timeout time.Duration) error {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(z.Origin), dns.TypeSOA)
	q, err := m.Pack()
	if err != nil {
		return err
	}
	var c net.Conn
	if err := netns.Do(t.ClientNS, func() (err error) {
		c, err = net.Dial("udp", serverV4+":53")
		return err
	}); err != nil {
		return err
	}
	defer c.Close()
	buf := make([]byte, 65535)
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); {
		select {
		case <-s.done:
			return errors.New("exited during start-up")
		default:
		}
		c.SetDeadline(time.Now().Add(20 * time.Millisecond))
		if _, err := c.Write(q); err != nil {
			// ICMP unreachable until the server listens: try again.
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if n, err := c.Read(buf); err == nil && n >= 12 && buf[0] == q[0] && buf[1] == q[1] {
			return nil
		}
	}
	return fmt.Errorf("no answer from %s within %v", serverV4, timeout)
}

// PIDs are the server's process and its descendants (NSD forks), read
// from /proc.
func (s *Server) PIDs() []int {
	root := s.cmd.Process.Pid
	parent := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := statFields(b)
		if len(f) > 3 {
			pp, _ := strconv.Atoi(f[3])
			parent[pid] = pp
		}
	}
	var out []int
	for pid := range parent {
		for p := pid; p > 1; p = parent[p] {
			if p == root {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// statFields splits /proc/PID/stat after the command name, which may hold
// spaces; field i of the result is field i+1 of proc(5).
func statFields(b []byte) []string {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return append([]string{"pid", "comm"}, strings.Fields(string(b[i+1:]))...)
}

// CPUTicks is the user and system time of the server's processes, in clock
// ticks.
func (s *Server) CPUTicks() uint64 {
	var sum uint64
	for _, pid := range s.PIDs() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		f := statFields(b)
		if len(f) > 15 {
			u, _ := strconv.ParseUint(f[13], 10, 64)
			st, _ := strconv.ParseUint(f[14], 10, 64)
			sum += u + st
		}
	}
	return sum
}

// MemoryKiB is the server's memory after loading: proportional set size
// summed over its processes (NSD shares pages between them), which equals
// the resident size for a single process.
func (s *Server) MemoryKiB() uint64 {
	var sum uint64
	for _, pid := range s.PIDs() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "Pss:" {
				v, _ := strconv.ParseUint(f[1], 10, 64)
				sum += v
			}
		}
	}
	return sum
}

// Reload asks ringdns to reload its zones through ringctl.
func (s *Server) Reload(bins Binaries) error {
	if s.control == "" {
		return fmt.Errorf("%s cannot be reloaded by the harness", s.Kind)
	}
	out, err := exec.Command(bins.Ringctl, "-s", s.control, "reload").CombinedOutput()
	if err != nil {
		return fmt.Errorf("ringctl reload: %v: %s", err, out)
	}
	return nil
}

// RepliesByKind reads ringdns's per-worker reply counts through ringctl,
// summed by worker kind ("xdp", "udp", "tcp"), so that a run can show how
// many answers went through the AF_XDP rings rather than kernel sockets.
func (s *Server) RepliesByKind(bins Binaries) (map[string]uint64, error) {
	if s.control == "" {
		return nil, nil
	}
	out, err := exec.Command(bins.Ringctl, "-s", s.control, "-json", "stats").Output()
	if err != nil {
		return nil, fmt.Errorf("ringctl stats: %v", err)
	}
	var reply struct {
		Data struct {
			Workers []struct {
				Name     string `json:"name"`
				Kind     string `json:"kind"`
				Counters struct {
					Replies uint64 `json:"replies"`
				} `json:"counters"`
			} `json:"workers"`
		} `json:"data"`
	}
	if err := json.Unmarshal(out, &reply); err != nil {
		return nil, fmt.Errorf("ringctl stats: %v", err)
	}
	m := map[string]uint64{}
	for _, w := range reply.Data.Workers {
		m[w.Kind] += w.Counters.Replies
		// Per worker too ("xdp0", "xdp1"): a multi-queue run shows
		// whether every queue carried answers.
		m[w.Name] += w.Counters.Replies
	}
	return m, nil
}

// Stop ends the server: SIGTERM, then SIGKILL after 5 s, and detaches any
// XDP program it left behind.
func (s *Server) Stop(t *Topology) {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	pids := s.PIDs()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		<-s.done
	}
	// NSD's children may outlive the parent for a moment.
	for _, pid := range pids {
		if pid != s.cmd.Process.Pid {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	t.DetachXDP()
}

func knotConfig(dir string, z ZoneFile, xdp bool, iface string, queues int) string {
	q := strconv.Quote
	var b strings.Builder
	fmt.Fprintf(&b, "server:\n    rundir: %s\n    user: root:root\n", q(dir))
	fmt.Fprintf(&b, "    listen: [ %s@53, %s@53 ]\n", serverV4, serverV6)
	// One worker of each kind per queue: the comparison is per core, and
	// Knot serves each XDP queue from a UDP worker of its own.
	fmt.Fprintf(&b, "    udp-workers: %d\n    tcp-workers: 1\n    background-workers: 1\n", max(queues, 1))
	if xdp {
		fmt.Fprintf(&b, "xdp:\n    listen: %s@53\n", iface)
	}
	fmt.Fprintf(&b, "database:\n    storage: %s\n", q(dir))
	fmt.Fprintf(&b, "log:\n  - target: stderr\n    any: warning\n")
	fmt.Fprintf(&b, "template:\n  - id: default\n    storage: %s\n", q(dir))
	fmt.Fprintf(&b, "    zonefile-sync: -1\n    zonefile-load: whole\n    journal-content: none\n    semantic-checks: off\n")
	fmt.Fprintf(&b, "zone:\n  - domain: %s\n    file: %s\n", q(z.Origin), q(z.Path))
	return b.String()
}

func nsdConfig(dir string, z ZoneFile) string {
	var b strings.Builder
	fmt.Fprintf(&b, "server:\n    ip-address: %s\n    ip-address: %s\n    port: 53\n", serverV4, serverV6)
	fmt.Fprintf(&b, "    server-count: 1\n    username: \"\"\n    chroot: \"\"\n")
	fmt.Fprintf(&b, "    zonesdir: %q\n    database: \"\"\n    zonelistfile: %q\n", dir, filepath.Join(dir, "zone.list"))
	fmt.Fprintf(&b, "    pidfile: %q\n    xfrdfile: %q\n    xfrdir: %q\n", filepath.Join(dir, "nsd.pid"), filepath.Join(dir, "xfrd.state"), dir)
	// Debian turns response rate limiting on (200/s per /24): a benchmark
	// from one address would measure the limiter (NOTES.md).
	fmt.Fprintf(&b, "    rrl-ratelimit: 0\n    verbosity: 0\n    hide-version: no\n")
	fmt.Fprintf(&b, "remote-control:\n    control-enable: no\n")
	fmt.Fprintf(&b, "zone:\n    name: %q\n    zonefile: %q\n", z.Origin, z.Path)
	return b.String()
}

// command makes an exec.Cmd of a whole command line.
func command(argv []string) *exec.Cmd { return exec.Command(argv[0], argv[1:]...) }
