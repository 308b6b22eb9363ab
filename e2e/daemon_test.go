// Package e2e tests the ringdns and ringctl binaries from the outside: it
// builds them once, starts the daemon as a subprocess on loopback and talks
// to it with a miekg/dns client, kdig and ringctl.
package e2e

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ringdns/ringdns/controlplane/control"
	"github.com/ringdns/ringdns/internal/testenv"
)

var (
	binDir      string
	ringdnsBin  string
	ringctlBin  string
	ringperfBin string
	repoRoot    string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ringdns-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Dir(filepath.Dir(file))
	// The binaries are built once, with the race detector when the tests
	// themselves run with it, so that a race in the daemon fails the run.
	args := append([]string{"build"}, raceFlags...)
	args = append(args, "-o", dir+"/", "./cmd/ringdns", "./cmd/ringctl", "./cmd/ringperf")
	cmd := exec.Command("go", args...)
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the binaries: %v\n%s", err, out)
		return 1
	}
	ringdnsBin = filepath.Join(dir, "ringdns")
	ringctlBin = filepath.Join(dir, "ringctl")
	ringperfBin = filepath.Join(dir, "ringperf")
	return m.Run()
}

// childEnv is the environment of the binaries under test: the test's own
// plus extra. Binaries built with the race detector sleep a second at exit
// by default (GORACE atexit_sleep_ms), which would make every ringctl call
// take a second; the sleep is turned off.
func childEnv(extra ...string) []string {
	env := append(os.Environ(), "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	return append(env, extra...)
}

// requireTool returns the path of an external tool of knot-dnsutils (kdig),
// or stops t as testenv.RequireTool does.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	return testenv.RequireTool(t, name, "Debian package knot-dnsutils; scripts/test.sh installs it")
}

// syncBuffer collects a subprocess's output for the test log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// daemon is a ringdns subprocess.
type daemon struct {
	t       *testing.T
	cmd     *exec.Cmd
	dir     string
	control string
	out     *syncBuffer
	status  control.Status
	exited  chan struct{}
	waitErr error
}

// startDaemon runs ringdns with args and a private control socket, and
// waits until the control socket answers. Unless args name listen
// addresses, the daemon listens on free loopback ports (IPv4 and IPv6).
func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	d := &daemon{t: t, dir: t.TempDir(), out: &syncBuffer{}, exited: make(chan struct{})}
	d.control = filepath.Join(d.dir, "control.sock")
	hasListen := false
	for _, a := range args {
		if a == "-listen" {
			hasListen = true
		}
	}
	if !hasListen {
		args = append(args, "-listen", "127.0.0.1:0", "-listen", "[::1]:0")
	}
	args = append(args, "-control", d.control)
	d.start(args, []string{"XDG_RUNTIME_DIR=" + d.dir})
	return d
}

// start runs ringdns with args and env added to childEnv's; see run.
func (d *daemon) start(args, env []string) {
	d.t.Helper()
	d.run(exec.Command(ringdnsBin, args...), env)
}

// run starts cmd, which runs ringdns directly or execs it (ip netns exec
// does), with env added to childEnv's, and waits until the control socket
// d.control answers a status request, whose reply it keeps in d.status.
// The test's cleanup stops the daemon, fails the test when the race
// detector reported a race, and logs the daemon's output when the test
// failed.
func (d *daemon) run(cmd *exec.Cmd, env []string) {
	t := d.t
	t.Helper()
	d.cmd = cmd
	d.cmd.Env = childEnv(env...)
	d.cmd.Stdout = d.out
	d.cmd.Stderr = d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.waitErr = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		d.stop()
		if strings.Contains(d.out.String(), "WARNING: DATA RACE") {
			t.Errorf("the race detector found a data race in ringdns")
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", strings.Join(cmd.Args, " "), d.out.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		select {
		case <-d.exited:
			t.Fatalf("ringdns exited during startup: %v\n%s", d.waitErr, d.out.String())
		default:
		}
		if c, err := control.Dial(d.control, 2*time.Second); err == nil {
			rep, err := c.Do(control.Request{Cmd: control.CmdStatus}, &d.status)
			c.Close()
			if err == nil && rep.OK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("ringdns control socket not ready after 20 s\n%s", d.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the daemon with SIGTERM, or SIGKILL when it does not exit
// within 10 seconds. It returns the wait error.
func (d *daemon) stop() error {
	select {
	case <-d.exited:
		return d.waitErr
	default:
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		d.t.Errorf("ringdns did not exit within 10 s of SIGTERM; killing it")
		d.cmd.Process.Kill()
		<-d.exited
	}
	return d.waitErr
}

// alive fails the test when the daemon has exited.
func (d *daemon) alive() {
	d.t.Helper()
	select {
	case <-d.exited:
		d.t.Fatalf("ringdns exited: %v\n%s", d.waitErr, d.out.String())
	default:
	}
}

// addr returns the served address of the given family.
func (d *daemon) addr(v6 bool) netip.AddrPort {
	d.t.Helper()
	for _, l := range d.status.Listen {
		ap := netip.MustParseAddrPort(l)
		if ap.Addr().Is6() == v6 {
			return ap
		}
	}
	d.t.Fatalf("no listen address with v6=%v in %v", v6, d.status.Listen)
	return netip.AddrPort{}
}

// ringctl runs the ringctl binary against the daemon and returns its
// combined output and exit status.
func (d *daemon) ringctl(args ...string) (string, int) {
	d.t.Helper()
	cmd := exec.Command(ringctlBin, append([]string{"-s", d.control}, args...)...)
	cmd.Env = childEnv()
	out, err := cmd.CombinedOutput()
	return string(out), exitCode(d.t, fmt.Sprintf("ringctl %v", args), err)
}

// runRingdns runs ringdns to completion (the check subcommand).
func runRingdns(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(ringdnsBin, args...)
	cmd.Dir = repoRoot
	cmd.Env = childEnv()
	out, err := cmd.CombinedOutput()
	return string(out), exitCode(t, "ringdns", err)
}
