//go:build linux

package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/controlplane/control"
	"github.com/ringdns/ringdns/internal/privdrop"
	"github.com/ringdns/ringdns/internal/testenv"
)

// The hitless upgrade (issue 17) on the kernel-socket path: a client sends
// queries at a steady rate over UDP, and some over TCP, while the daemon
// hands its sockets to new binaries; not one query may go unanswered or be
// answered wrongly. The hand-over passes the very sockets, so the
// datagrams that arrive while no worker reads wait in their buffers.

// upgradeBins builds ringdns once per version string (and link-time
// flags), with the race detector when the tests run with it.
var upgradeBins struct {
	mu   sync.Mutex
	bins map[string]string
}

func buildRingdnsVersion(t *testing.T, version string, ldflags ...string) string {
	t.Helper()
	upgradeBins.mu.Lock()
	defer upgradeBins.mu.Unlock()
	key := version + " " + strings.Join(ldflags, " ")
	if b := upgradeBins.bins[key]; b != "" {
		return b
	}
	bin := filepath.Join(binDir, fmt.Sprintf("ringdns-%s-%d", version, len(upgradeBins.bins)))
	flags := append([]string{"-X", "github.com/ringdns/ringdns/controlplane.Version=" + version}, ldflags...)
	args := append([]string{"build"}, raceFlags...)
	args = append(args, "-ldflags", strings.Join(flags, " "), "-o", bin, "./cmd/ringdns")
	cmd := exec.Command("go", args...)
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building ringdns %s: %v\n%s", version, err, out)
	}
	if upgradeBins.bins == nil {
		upgradeBins.bins = map[string]string{}
	}
	upgradeBins.bins[key] = bin
	return bin
}

// upgradable is a ringdns whose successors, started by upgrades, are not
// the test's children: it is followed by its control socket and pid.
type upgradable struct {
	t       *testing.T
	control string
	log     string
	first   *exec.Cmd
	exited  chan error
	mu      sync.Mutex
	pids    []int // every process that served, in order
}

// startUpgradable runs bin with args and a private control socket. Its
// output goes to a file, not a pipe: a pipe would stay open in every
// process that takes over, and the test's wait for the first one would
// last as long as the last.
func startUpgradable(t *testing.T, bin string, args ...string) *upgradable {
	t.Helper()
	dir := t.TempDir()
	control := filepath.Join(dir, "control.sock")
	return startUpgradableCmd(t, exec.Command(bin, append(args, "-control", control)...), control)
}

// startUpgradableCmd is startUpgradable of a prepared command (one that
// enters a network namespace first) whose daemon uses the control socket
// control.
func startUpgradableCmd(t *testing.T, cmd *exec.Cmd, control string, env ...string) *upgradable {
	t.Helper()
	dir := t.TempDir()
	u := &upgradable{t: t, control: control, log: filepath.Join(dir, "ringdns.log"), exited: make(chan error, 1)}
	out, err := os.Create(u.log)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	u.first = cmd
	u.first.Env = childEnv(append([]string{"XDG_RUNTIME_DIR=" + dir}, env...)...)
	u.first.Stdout, u.first.Stderr = out, out
	if err := u.first.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { u.exited <- u.first.Wait() }()
	u.pids = append(u.pids, u.first.Process.Pid)
	t.Cleanup(func() {
		u.mu.Lock()
		pids := append([]int(nil), u.pids...)
		u.mu.Unlock()
		for _, pid := range pids {
			if processAlive(pid) {
				syscall.Kill(pid, syscall.SIGTERM)
				if !poll(10*time.Second, func() bool { return !processAlive(pid) }) {
					t.Errorf("ringdns pid %d did not exit within 10 s of SIGTERM; killing it", pid)
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		b, _ := os.ReadFile(u.log)
		if strings.Contains(string(b), "WARNING: DATA RACE") {
			t.Errorf("the race detector found a data race in ringdns")
		}
		if t.Failed() {
			t.Logf("ringdns output:\n%s", b)
		}
	})
	if !poll(20*time.Second, func() bool { _, err := u.status(); return err == nil }) {
		b, _ := os.ReadFile(u.log)
		t.Fatalf("ringdns control socket not ready after 20 s\n%s", b)
	}
	return u
}

// processAlive reports whether pid runs (a zombie does not).
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name's closing parenthesis.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func (u *upgradable) status() (control.Status, error) {
	var st control.Status
	c, err := control.Dial(u.control, 2*time.Second)
	if err != nil {
		return st, err
	}
	defer c.Close()
	rep, err := c.Do(control.Request{Cmd: control.CmdStatus}, &st)
	if err == nil && !rep.OK {
		err = errors.New(rep.Error)
	}
	return st, err
}

func (u *upgradable) ringctl(args ...string) (string, int) {
	u.t.Helper()
	cmd := exec.Command(ringctlBin, append([]string{"-s", u.control}, args...)...)
	cmd.Env = childEnv()
	out, err := cmd.CombinedOutput()
	return string(out), exitCode(u.t, fmt.Sprintf("ringctl %v", args), err)
}

// upgrade runs ringctl upgrade (with path when not empty) and checks that
// the new process serves version want.
func (u *upgradable) upgrade(path, want string) control.UpgradeResult {
	u.t.Helper()
	args := []string{"-json", "upgrade"}
	if path != "" {
		args = append(args, path)
	}
	out, code := u.ringctl(args...)
	if code != 0 {
		u.t.Fatalf("ringctl upgrade %s: exit %d\n%s", path, code, out)
	}
	var rep control.Reply
	var res control.UpgradeResult
	if err := json.Unmarshal([]byte(out), &rep); err != nil || json.Unmarshal(rep.Data, &res) != nil {
		u.t.Fatalf("ringctl upgrade: reply %q: %v", out, err)
	}
	u.followed(res.NewPID, want)
	return res
}

// followed waits until the control socket answers from pid with version
// want, and records pid.
func (u *upgradable) followed(pid int, want string) {
	u.t.Helper()
	var st control.Status
	ok := poll(60*time.Second, func() bool {
		var err error
		st, err = u.status()
		return err == nil && st.Version == want && (pid == 0 || st.PID == pid)
	})
	if !ok {
		u.t.Fatalf("after the upgrade the daemon reports version %q pid %d, want %q pid %d", st.Version, st.PID, want, pid)
	}
	u.mu.Lock()
	u.pids = append(u.pids, st.PID)
	u.mu.Unlock()
}

// current is the pid serving now.
func (u *upgradable) current() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.pids[len(u.pids)-1]
}

// openFDs counts pid's descriptors.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// steadyLoad sends www.example. A over UDP every interval from one socket,
// each query with its own ID, and one over a new TCP connection every
// tcpEvery, until stop; then it waits for late replies and reports.
type steadyLoad struct {
	addr     netip.AddrPort
	interval time.Duration
	tcpEvery time.Duration

	sent, answered, wrong atomic.Int64
	tcpSent, tcpAnswered  atomic.Int64
	tcpWrong              atomic.Int64
	firstWrong            atomic.Value
	stop                  chan struct{}
	done                  sync.WaitGroup
	seen                  [65536]atomic.Bool
}

func newSteadyLoad(t *testing.T, addr netip.AddrPort, interval, tcpEvery time.Duration) *steadyLoad {
	l := &steadyLoad{addr: addr, interval: interval, tcpEvery: tcpEvery, stop: make(chan struct{})}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadBuffer(4 << 20)
	q := new(dns.Msg)
	q.SetQuestion("www.example.", dns.TypeA)
	wire, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				// ECONNREFUSED: an ICMP port unreachable reached the
				// connected socket while no server had the port (the
				// restart's gap); the replies after it still count.
				continue
			}
			var m dns.Msg
			if m.Unpack(buf[:n]) != nil || !goodAnswer(&m) || !l.seen[m.Id].CompareAndSwap(false, true) {
				l.noteWrong(fmt.Sprintf("UDP reply %v", m.String()))
				continue
			}
			l.answered.Add(1)
		}
	}()
	l.done.Add(2)
	go func() {
		defer l.done.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for id := 0; id < 65536; id++ {
			select {
			case <-l.stop:
				id = 65536
				continue
			case <-tick.C:
			}
			wire[0], wire[1] = byte(id>>8), byte(id)
			// A write refused for an earlier ICMP port unreachable is a
			// query the client meant to send and got no answer to.
			c.Write(wire)
			l.sent.Add(1)
		}
		// Late replies: the bound is generous for a loaded two-core VM
		// with race-detector binaries; a reply never comes later than
		// this unless it was lost.
		time.Sleep(3 * time.Second)
		c.Close()
		<-recvDone
	}()
	go func() {
		defer l.done.Done()
		tick := time.NewTicker(tcpEvery)
		defer tick.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			l.tcpSent.Add(1)
			cl := &dns.Client{Net: "tcp", Timeout: queryTimeout}
			m := new(dns.Msg)
			m.SetQuestion("www.example.", dns.TypeA)
			r, _, err := cl.Exchange(m, addr.String())
			switch {
			case err != nil:
				l.noteWrong("TCP: " + err.Error())
			case !goodAnswer(r):
				l.tcpWrong.Add(1)
				l.noteWrong("TCP reply " + r.String())
			default:
				l.tcpAnswered.Add(1)
			}
		}
	}()
	return l
}

func (l *steadyLoad) noteWrong(s string) {
	l.wrong.Add(1)
	l.firstWrong.CompareAndSwap(nil, s)
}

// finish stops sending and waits for the late replies.
func (l *steadyLoad) finish() {
	close(l.stop)
	l.done.Wait()
}

func (l *steadyLoad) report() string {
	first, _ := l.firstWrong.Load().(string)
	return fmt.Sprintf("UDP: %d sent, %d answered, %d lost; TCP: %d sent, %d answered; wrong or failed: %d (first: %s)",
		l.sent.Load(), l.answered.Load(), l.sent.Load()-l.answered.Load(), l.tcpSent.Load(), l.tcpAnswered.Load(), l.wrong.Load(), first)
}

// goodAnswer is the example zone's answer to www.example. A.
func goodAnswer(m *dns.Msg) bool {
	if m == nil || m.Rcode != dns.RcodeSuccess || !m.Authoritative || len(m.Answer) != 1 {
		return false
	}
	a, ok := m.Answer[0].(*dns.A)
	return ok && a.A.String() == "192.0.2.80"
}

// TestUpgradeUnderLoad: three upgrades in a row under a steady load, each
// to a new build with its own version string, by the three ways there are
// (ringctl upgrade of the path the daemon was started from, replaced on
// disk as a package upgrade does; SIGUSR2, the same; ringctl upgrade PATH):
// no query lost, none answered wrongly, each old process gone with status
// 0 (the first, the test's child) or at least gone.
func TestUpgradeUnderLoad(t *testing.T) {
	v0 := buildRingdnsVersion(t, "upgrade-v0")
	v1 := buildRingdnsVersion(t, "upgrade-v1")
	v2 := buildRingdnsVersion(t, "upgrade-v2")
	v3 := buildRingdnsVersion(t, "upgrade-v3")
	dir := t.TempDir()
	installed := filepath.Join(dir, "ringdns")
	install := func(bin string) {
		t.Helper()
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		// Written aside and renamed over, as dpkg does: the running
		// binary's file is replaced, not rewritten.
		if err := os.WriteFile(installed+".new", b, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(installed+".new", installed); err != nil {
			t.Fatal(err)
		}
	}
	install(v0)
	u := startUpgradable(t, installed, "-zone", "example.="+exampleZone(), "-listen", "127.0.0.1:0", "-cpus", "0-1")
	st, _ := u.status()
	addr := netip.MustParseAddrPort(st.Listen[0])
	// 1000 queries a second: steady, and well within what a race-detector
	// build answers on this VM while it also starts another.
	load := newSteadyLoad(t, addr, time.Millisecond, 50*time.Millisecond)
	time.Sleep(time.Second)

	install(v1)
	res := u.upgrade("", "upgrade-v1")
	t.Logf("upgrade 1 (ringctl upgrade, path re-read): %+v", res)
	select {
	case err := <-u.exited:
		if err != nil {
			t.Errorf("the first ringdns exited with %v after handing over, want status 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("the first ringdns has not exited 10 s after handing over")
	}
	time.Sleep(time.Second)

	install(v2)
	old := u.current()
	if err := syscall.Kill(old, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	u.followed(0, "upgrade-v2")
	t.Logf("upgrade 2 (SIGUSR2): pid %d -> %d", old, u.current())
	time.Sleep(time.Second)

	old = u.current()
	res = u.upgrade(v3, "upgrade-v3")
	t.Logf("upgrade 3 (ringctl upgrade PATH): %+v", res)
	time.Sleep(time.Second)
	load.finish()
	t.Log(load.report())

	u.mu.Lock()
	pids := append([]int(nil), u.pids...)
	u.mu.Unlock()
	for _, pid := range pids[:len(pids)-1] {
		if !poll(10*time.Second, func() bool { return !processAlive(pid) }) {
			t.Errorf("old ringdns pid %d still runs after handing over", pid)
		}
	}
	if lost := load.sent.Load() - load.answered.Load(); lost != 0 || load.wrong.Load() != 0 {
		t.Errorf("%d UDP queries lost and %d wrong or failed over three upgrades, want none: %s", lost, load.wrong.Load(), load.report())
	}
	if load.tcpAnswered.Load() == 0 || load.answered.Load() < 3000 {
		t.Errorf("too little load to tell anything: %s", load.report())
	}
	_ = old
}

// TestRestartLoses is the comparison the upgrade is measured against: the
// same load while the daemon is stopped and started again on the same
// port, as a package upgrade's restart does. It reports the queries lost
// and fails only when none is, which would mean the load tells nothing.
func TestRestartLoses(t *testing.T) {
	v0 := buildRingdnsVersion(t, "upgrade-v0")
	v1 := buildRingdnsVersion(t, "upgrade-v1")
	u := startUpgradable(t, v0, "-zone", "example.="+exampleZone(), "-listen", "127.0.0.1:0", "-cpus", "0-1")
	st, _ := u.status()
	addr := netip.MustParseAddrPort(st.Listen[0])
	load := newSteadyLoad(t, addr, time.Millisecond, 50*time.Millisecond)
	time.Sleep(time.Second)
	start := time.Now()
	u.first.Process.Signal(syscall.SIGTERM)
	if err := <-u.exited; err != nil {
		t.Fatalf("ringdns exited with %v on SIGTERM", err)
	}
	u2 := startUpgradable(t, v1, "-zone", "example.="+exampleZone(), "-listen", addr.String(), "-cpus", "0-1")
	gap := time.Since(start)
	time.Sleep(time.Second)
	load.finish()
	_ = u2
	lost := load.sent.Load() - load.answered.Load()
	t.Logf("plain restart (SIGTERM, start, control socket answering after %v): %d of %d UDP queries lost; %s", gap.Round(time.Millisecond), lost, load.sent.Load(), load.report())
	if lost == 0 {
		t.Errorf("a restart lost no query: the load is too light to compare the upgrade with")
	}
}

var failedPID = regexp.MustCompile(`\(pid (\d+)\) failed`)

// TestUpgradeFailures: a new binary that exits at once, one whose zone
// fails to load, and one that speaks another hand-over protocol version
// change nothing: ringctl upgrade exits 1 with the new binary's error, the
// old process serves on (no query lost meanwhile), and neither a process
// nor a descriptor is left behind.
func TestUpgradeFailures(t *testing.T) {
	v0 := buildRingdnsVersion(t, "upgrade-v0")
	v1 := buildRingdnsVersion(t, "upgrade-v1")
	other := buildRingdnsVersion(t, "upgrade-proto2", "-X", "github.com/ringdns/ringdns/internal/handover.pretendVersion=2")
	dir := t.TempDir()
	zoneFile := filepath.Join(dir, "example.zone")
	good, err := os.ReadFile(exampleZone())
	if err != nil {
		t.Fatal(err)
	}
	writeFileAtomic(t, zoneFile, string(good))
	exitsAtOnce := filepath.Join(dir, "exits-at-once")
	if err := os.WriteFile(exitsAtOnce, []byte("#!/bin/sh\necho 'cannot start: missing library libfoo.so.1' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	u := startUpgradable(t, v0, "-zone", "example.="+zoneFile, "-listen", "127.0.0.1:0", "-cpus", "0-1")
	st, _ := u.status()
	addr := netip.MustParseAddrPort(st.Listen[0])
	load := newSteadyLoad(t, addr, time.Millisecond, 100*time.Millisecond)
	time.Sleep(500 * time.Millisecond)
	pid := u.current()
	time.Sleep(500 * time.Millisecond) // the status connection of startUpgradable closes
	fds := openFDs(t, pid)

	cases := []struct {
		name  string
		bin   string
		setup func()
		want  []string
	}{
		{name: "exits at once", bin: exitsAtOnce,
			want: []string{"exit status 3", "cannot start: missing library libfoo.so.1"}},
		{name: "zone fails", bin: v1,
			setup: func() { writeFileAtomic(t, zoneFile, string(good)+"broken line !\n") },
			want:  []string{"zone example., which the running ringdns serves, failed to load", zoneFile + ":"}},
		{name: "other protocol version", bin: other,
			want: []string{"hand-over protocol version mismatch", "version 2"}},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "-"), func(t *testing.T) {
			if c.setup != nil {
				c.setup()
				defer writeFileAtomic(t, zoneFile, string(good))
			}
			out, code := u.ringctl("upgrade", c.bin)
			if code != 1 {
				t.Errorf("ringctl upgrade: exit %d, want 1\n%s", code, out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("ringctl upgrade's error does not say %q:\n%s", w, out)
				}
			}
			if m := failedPID.FindStringSubmatch(out); m == nil {
				t.Errorf("the error does not name the new process's pid:\n%s", out)
			} else if child, _ := strconv.Atoi(m[1]); !poll(5*time.Second, func() bool { return !processAlive(child) }) {
				t.Errorf("the failed new process %d still runs", child)
			}
			st, err := u.status()
			if err != nil || st.PID != pid || st.Version != "upgrade-v0" {
				t.Errorf("after the failed upgrade: pid %d version %q (%v), want the old one, pid %d", st.PID, st.Version, err, pid)
			}
			// The daemon closes its side of a control connection (ringctl's,
			// the status request's) a moment after the client: the count
			// is given a few seconds to settle.
			n := 0
			if !poll(5*time.Second, func() bool { n = openFDs(t, pid); return n == fds }) {
				t.Errorf("the old process holds %d descriptors, %d before the upgrade", n, fds)
			}
			if r := mustExchange(t, addr, false, "www.example.", dns.TypeA); !goodAnswer(r) {
				t.Errorf("the old process answers %v", r)
			}
		})
	}
	load.finish()
	t.Log(load.report())
	if lost := load.sent.Load() - load.answered.Load(); lost != 0 || load.wrong.Load() != 0 {
		t.Errorf("queries lost or wrong during the failed upgrades: %s", load.report())
	}
	// The old process still stops as usual, and removes its control
	// socket: a failed new process took nothing with it.
	u.first.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-u.exited:
		if err != nil {
			t.Errorf("ringdns exited with %v on SIGTERM after the failed upgrades", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("ringdns did not exit within 10 s of SIGTERM after the failed upgrades")
	}
	if _, err := os.Lstat(u.control); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("control socket left behind: %v", err)
	}
}

// TestUpgradePrivilegeDropped: a daemon started as root with server.user
// = "nobody" runs as nobody when it is asked to upgrade, and so does the
// binary it starts, which can open no socket on a privileged port, bind no
// AF_XDP socket and attach nothing. Everything it serves is passed to it,
// so the upgrade works all the same: the new process runs as nobody with
// no capability and answers on the sockets root opened.
func TestUpgradePrivilegeDropped(t *testing.T) {
	testenv.RequireRoot(t, "to start ringdns as root and have it switch to nobody")
	id := nobody(t)
	dir := ownedDir(t, id)
	zoneFile := filepath.Join(dir, "z.zone")
	writeOwned(t, id, zoneFile, testZone("z.example.", 1))
	confFile := filepath.Join(dir, "ringdns.toml")
	writeOwned(t, id, confFile, "[server]\nuser = \"nobody\"\n\n[[zone]]\norigin = \"z.example.\"\nfile = \"z.zone\"\n")
	// nobody must be able to run the new binary: it lies in nobody's
	// directory, not in the test's binaries' (0700, root's).
	install := func(src, name string) string {
		t.Helper()
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	v0 := install(buildRingdnsVersion(t, "upgrade-v0"), "ringdns-v0")
	v1 := install(buildRingdnsVersion(t, "upgrade-v1"), "ringdns-v1")
	u := startUpgradable(t, v0, "-config", confFile, "-listen", "127.0.0.1:0")
	st, _ := u.status()
	addr := netip.MustParseAddrPort(st.Listen[0])
	checkNobody := func(pid int) {
		t.Helper()
		c, err := privdrop.ReadStatus(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatal(err)
		}
		if c.UID != [4]int{id.UID, id.UID, id.UID, id.UID} || c.Eff != 0 || c.Prm != 0 {
			t.Errorf("pid %d: %s; want uid %d and no capability", pid, c, id.UID)
		}
	}
	checkNobody(u.current())
	res := u.upgrade(v1, "upgrade-v1")
	checkNobody(res.NewPID)
	r := mustExchange(t, addr, false, "www.z.example.", dns.TypeA)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("www.z.example. A from the new process: %v", r)
	}
	r = mustExchange(t, addr, true, "www.z.example.", dns.TypeA)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("www.z.example. A over TCP from the new process: %v", r)
	}
	if err := <-u.exited; err != nil {
		t.Errorf("the old process exited with %v, want status 0", err)
	}
}

// TestUpgradeSystemdNotify: under Type=notify, systemd must follow the new
// process. Against a socket standing in for systemd's: the new process
// sends MAINPID= with its own pid and READY=1, the old one MAINPID= with
// the new one's pid (what NotifyAccess=main accepts, from the main
// process) and never STOPPING=1, which would make systemd think the
// service stops.
func TestUpgradeSystemdNotify(t *testing.T) {
	v0 := buildRingdnsVersion(t, "upgrade-v0")
	v1 := buildRingdnsVersion(t, "upgrade-v1")
	sock := filepath.Join(t.TempDir(), "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var msgs []string
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ln.Read(buf)
			if err != nil {
				return
			}
			mu.Lock()
			msgs = append(msgs, string(buf[:n]))
			mu.Unlock()
		}
	}()
	dir := t.TempDir()
	control := filepath.Join(dir, "control.sock")
	cmd := exec.Command(v0, "-zone", "example.="+exampleZone(), "-listen", "127.0.0.1:0", "-control", control)
	u := startUpgradableCmd(t, cmd, control, "NOTIFY_SOCKET="+sock)
	old := u.current()
	res := u.upgrade(v1, "upgrade-v1")
	if err := <-u.exited; err != nil {
		t.Errorf("the old process exited with %v", err)
	}
	want := []string{"MAINPID=" + strconv.Itoa(res.NewPID), "READY=1"}
	var all string
	ok := poll(10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		all = strings.Join(msgs, "\n--\n")
		n := 0
		for _, m := range msgs {
			if strings.Contains(m, want[0]) {
				n++
			}
		}
		// Once from the old process, once from the new one, and the new
		// one's READY=1 after the old one's first.
		return n >= 2 && strings.Count(all, want[1]) >= 2
	})
	if !ok {
		t.Errorf("notifications after upgrading pid %d to %d do not carry %v twice:\n%s", old, res.NewPID, want, all)
	}
	if strings.Contains(all, "STOPPING=1") {
		t.Errorf("STOPPING=1 sent during an upgrade:\n%s", all)
	}
}
