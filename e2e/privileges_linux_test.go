//go:build linux

package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/internal/netns"
	"github.com/ringdns/ringdns/internal/netns/netnstest"
	"github.com/ringdns/ringdns/internal/privdrop"
	"github.com/ringdns/ringdns/internal/testenv"
)

// The least-privilege tests start ringdns as root with server.user set, or
// as an unprivileged user with ambient capabilities as systemd does, and
// read what the serving process holds from /proc/PID/task/*/status, every
// thread of it.
//
// They run a ringdns built with CGO_ENABLED=0, as README says to build it
// for production: the race detector, which the other tests' binary has,
// links cgo, and a binary that links cgo cannot change the capabilities of
// all its threads (internal/privdrop says why). TestPrivilegeDropCgo checks
// what such a binary does instead.

var noCgo struct {
	once sync.Once
	bin  string
	err  error
}

// ringdnsNoCgo builds ringdns with CGO_ENABLED=0, once.
func ringdnsNoCgo(t *testing.T) string {
	t.Helper()
	noCgo.once.Do(func() {
		bin := filepath.Join(binDir, "ringdns-nocgo")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/ringdns")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			noCgo.err = fmt.Errorf("building ringdns with CGO_ENABLED=0: %v\n%s", err, out)
		}
		noCgo.bin = bin
	})
	if noCgo.err != nil {
		t.Fatal(noCgo.err)
	}
	return noCgo.bin
}

// nobody is the unprivileged user the tests switch to: Debian's nobody
// and nogroup, which every Debian system has.
func nobody(t *testing.T) privdrop.Identity {
	t.Helper()
	id, err := privdrop.Lookup("nobody", "")
	testenv.Require(t, err)
	return id
}

// ownedDir makes a directory that id owns, mode 0755, in the temporary
// directory (t.TempDir's are 0700 under a root-owned parent, which id could
// not enter). It holds the zone files, so that the journals and transferred
// copies can be written there after the switch, and the control socket.
func ownedDir(t *testing.T, id privdrop.Identity) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ringdns-priv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, id.UID, id.GID); err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeOwned writes a file that id owns.
func writeOwned(t *testing.T, id privdrop.Identity, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, id.UID, id.GID); err != nil {
		t.Fatal(err)
	}
}

// wantCreds is what every thread of the serving process must hold.
type wantCreds struct {
	id       privdrop.Identity
	eff, bnd privdrop.CapSet // CapEff and CapPrm; CapBnd
	seccomp  bool            // a seccomp filter (server.seccomp)
}

// checkCreds reads /proc/PID/task/*/status of the daemon and compares each
// thread's ids, groups and capability sets with want: nothing inheritable
// or ambient, and no_new_privs set.
func checkCreds(t *testing.T, d *daemon, want wantCreds) {
	t.Helper()
	// The control socket answers from the end of set-up, moments before
	// the switch; "serving" is logged after it.
	if !poll(20*time.Second, func() bool { return strings.Contains(d.out.String(), "msg=serving") }) {
		t.Fatalf("ringdns did not log msg=serving within 20 s:\n%s", d.out.String())
	}
	pid := d.cmd.Process.Pid
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no threads of ringdns (pid %d): %v", pid, err)
	}
	main, err := privdrop.ReadStatus(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ringdns pid %d, %d threads: %s", pid, len(tasks), main)
	for _, path := range tasks {
		c, err := privdrop.ReadStatus(path)
		if err != nil {
			t.Fatal(err)
		}
		id := want.id
		ok := c.UID == [4]int{id.UID, id.UID, id.UID, id.UID} && c.GID == [4]int{id.GID, id.GID, id.GID, id.GID} &&
			slices.Equal(c.Groups, id.Groups) && c.Eff == want.eff && c.Prm == want.eff && c.Inh == 0 && c.Amb == 0 &&
			c.Bnd == want.bnd && c.NoNewPrivs && (c.Seccomp == 2) == want.seccomp
		if !ok {
			t.Errorf("%s: %s\nwant uid %d, gid %d, groups %v, CapEff and CapPrm %s, CapInh and CapAmb none, CapBnd %#x, NoNewPrivs, seccomp filter %v",
				path, c, id.UID, id.GID, id.Groups, want.eff, uint64(want.bnd), want.seccomp)
		}
	}
}

// TestPrivilegeDropSockets starts ringdns as root with server.user =
// "nobody", serving a zone from its file and a secondary zone transferred
// from a second ringdns, over kernel sockets on loopback. Once it serves,
// every thread runs as nobody:nogroup with no capability at all, not even
// in its bounding set; it answers; a reload of a changed file is served
// and journaled, and a change on the primary reaches it by NOTIFY and
// IXFR and is written to its copy, both written by nobody. A journal and
// a copy left by root are given to nobody at start. All of it
// again under server.seccomp's filter.
func TestPrivilegeDropSockets(t *testing.T) {
	testenv.RequireRoot(t, "to start ringdns as root and have it switch to nobody")
	id := nobody(t)
	bin := ringdnsNoCgo(t)
	t.Parallel()
	for _, seccomp := range []bool{false, true} {
		t.Run(fmt.Sprintf("seccomp=%v", seccomp), func(t *testing.T) { testPrivilegeDropSockets(t, id, bin, seccomp) })
	}
}

func testPrivilegeDropSockets(t *testing.T, id privdrop.Identity, bin string, seccomp bool) {

	// The primary, an ordinary root ringdns of the race-detector build.
	const secOrigin = "sec.example."
	pDir := t.TempDir()
	src := filepath.Join(pDir, "src.zone")
	if err := os.WriteFile(src, []byte(xfrZone(secOrigin, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	pAddr, sAddr := loopback(freePort(t)), loopback(freePort(t))
	p := startDaemon(t, "-config", primaryConfig(t, pDir, secOrigin, src, sAddr), "-listen", pAddr.String())

	dir := ownedDir(t, id)
	const origin = "priv.example."
	own := filepath.Join(dir, "own.zone")
	writeOwned(t, id, own, testZone(origin, 1))
	copyFile := filepath.Join(dir, "sec.zone")
	// Root's files from a run without server.user: a secondary copy
	// (whose modification time the expiry timer sets, which only its
	// owner may) and a journal that does not parse, which ringdns
	// rewrites at start, as root, before the switch. Both must be given
	// to nobody.
	for path, text := range map[string]string{copyFile: xfrZone(secOrigin, 1), own + ".journal": "not a journal"} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctl := filepath.Join(dir, "control.sock")
	conf := ringdnsKey(xfrSecret) + fmt.Sprintf(`[server]
listen = [%q]
control = %q
user = "nobody"
seccomp = %v

[[zone]]
origin = %q
file = %q

[[zone]]
origin = %q
file = %q
primaries = [%q]
key = %q
`, sAddr, ctl, seccomp, origin, own, secOrigin, copyFile, pAddr, xfrKeyName)
	confFile := filepath.Join(dir, "ringdns.toml")
	writeOwned(t, id, confFile, conf)
	s := &daemon{t: t, dir: dir, control: ctl, out: &syncBuffer{}, exited: make(chan struct{})}
	s.run(exec.Command(bin, "-config", confFile), nil)

	checkCreds(t, s, wantCreds{id: id, seccomp: seccomp})
	ownedBy(t, copyFile, id)
	ownedBy(t, own+".journal", id)
	if r := mustExchange(t, sAddr, false, "www."+origin, dns.TypeA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("www.%s A after the switch: %v", origin, r)
	}

	// A reload after the switch reads the file and writes the journal.
	writeOwned(t, id, own+".tmp", testZone(origin, 2))
	if err := os.Rename(own+".tmp", own); err != nil {
		t.Fatal(err)
	}
	s.reload(origin)
	if !pollSerial(sAddr, origin, 2, transferWait) {
		t.Errorf("serial 2 of %s not served after the reload", origin)
	}
	// The journal is written by a goroutine of its own after the
	// publication; 10 s covers a loaded machine.
	poll(10*time.Second, func() bool { _, err := os.Stat(own + ".journal"); return err == nil })
	ownedBy(t, own+".journal", id)

	// A transfer in after the switch writes the copy.
	if !s.waitSerial(secOrigin, 1, transferWait) {
		t.Fatalf("serial 1 of %s not transferred within %v: %+v", secOrigin, transferWait, s.zoneStatus(secOrigin))
	}
	if err := os.WriteFile(src, []byte(xfrZone(secOrigin, 2, "new IN A 192.0.2.99")), 0o644); err != nil {
		t.Fatal(err)
	}
	p.reload(secOrigin)
	if !s.waitSerial(secOrigin, 2, transferWait) {
		t.Fatalf("serial 2 of %s not transferred after NOTIFY within %v: %+v", secOrigin, transferWait, s.zoneStatus(secOrigin))
	}
	if st := s.zoneStatus(secOrigin); st.LastTransfer == nil || st.LastTransfer.Result != "ok" {
		t.Errorf("last transfer of %s: %+v", secOrigin, st.LastTransfer)
	}
	ownedBy(t, copyFile, id)
	b, err := os.ReadFile(copyFile)
	if err != nil || !strings.Contains(string(b), "192.0.2.99") {
		t.Errorf("the copy %s does not hold serial 2's record: %v\n%s", copyFile, err, b)
	}
	checkCreds(t, s, wantCreds{id: id, seccomp: seccomp})
	if err := s.stop(); err != nil {
		t.Errorf("ringdns exited with %v after SIGTERM", err)
	}
}

// ownedBy fails t unless path exists and belongs to id's user.
func ownedBy(t *testing.T, path string, id privdrop.Identity) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != id.UID {
		t.Errorf("%s belongs to uid %d, want %d (%s)", path, st.Uid, id.UID, id.User)
	}
}

// TestPrivilegeDropRefused: ringdns refuses to start, saying why and what
// to do, with a user that does not exist (before it opens anything), and
// with a zone whose directory the user it switches to may not write (the
// journal and transferred copies would fail later, one by one).
func TestPrivilegeDropRefused(t *testing.T) {
	testenv.RequireRoot(t, "to start ringdns as root and have it switch to nobody")
	id := nobody(t)
	bin := ringdnsNoCgo(t)
	t.Parallel()
	rootDir := t.TempDir() // root's, mode 0700
	zoneFile := filepath.Join(rootDir, "z.zone")
	if err := os.WriteFile(zoneFile, []byte(testZone("z.example.", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, user, group, file string
		want                    []string
	}{
		{"unknown-user", "ringdns-no-such-user", "", zoneFile,
			[]string{`server.user "ringdns-no-such-user": unknown user`, "useradd --system"}},
		{"numeric-user-without-group", "4242424", "", zoneFile,
			[]string{"server.user 4242424: unknown user", "set server.group too"}},
		{"unknown-group", "nobody", "ringdns-no-such-group", zoneFile,
			[]string{`server.group "ringdns-no-such-group": unknown group`, "groupadd --system"}},
		{"group-without-user", "", "nogroup", zoneFile,
			[]string{`server.group "nogroup" is set, but server.user is not`}},
		{"unwritable", "nobody", "", zoneFile,
			[]string{"zone z.example.: the directory of its file", rootDir, fmt.Sprintf("not writable by uid %d", id.UID), "ReadWritePaths="}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := ownedDir(t, id)
			port := freePort(t)
			conf := fmt.Sprintf("[server]\nlisten = [\"127.0.0.1:%d\"]\ncontrol = %q\nuser = %q\ngroup = %q\n\n[[zone]]\norigin = \"z.example.\"\nfile = %q\n",
				port, filepath.Join(dir, "control.sock"), tc.user, tc.group, tc.file)
			confFile := filepath.Join(dir, "ringdns.toml")
			writeOwned(t, id, confFile, conf)
			// A ringdns that starts serving instead of refusing is
			// killed after 20 s (it refuses in milliseconds).
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "-config", confFile)
			cmd.Env = childEnv()
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("ringdns did not refuse to start: still running after 20 s\n%s", out)
			}
			if code := exitCode(t, "ringdns", err); code != 1 {
				t.Fatalf("exit status %d, want 1\n%s", code, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "control.sock")); !os.IsNotExist(err) {
				t.Errorf("the control socket is left behind: %v", err)
			}
		})
	}
}

// TestPrivilegeDropCgo: a ringdns that links cgo (the race detector's
// build) switches to nobody all the same, the C library changing the ids
// of every thread and the kernel then clearing every capability of each;
// only the bounding set and no_new_privs, which it cannot set on every
// thread, stay as they were, which it logs.
func TestPrivilegeDropCgo(t *testing.T) {
	testenv.RequireRoot(t, "to start ringdns as root and have it switch to nobody")
	id := nobody(t)
	t.Parallel()
	dir := ownedDir(t, id)
	zoneFile := filepath.Join(dir, "z.zone")
	writeOwned(t, id, zoneFile, testZone("z.example.", 1))
	confFile := filepath.Join(dir, "ringdns.toml")
	ctl := filepath.Join(dir, "control.sock")
	writeOwned(t, id, confFile, fmt.Sprintf("[server]\ncontrol = %q\nuser = \"nobody\"\n\n[[zone]]\norigin = \"z.example.\"\nfile = %q\n", ctl, zoneFile))
	d := &daemon{t: t, dir: dir, control: ctl, out: &syncBuffer{}, exited: make(chan struct{})}
	// ringdnsBin, the race detector's build, links cgo.
	d.start([]string{"-config", confFile, "-listen", "127.0.0.1:0"}, nil)
	// The control socket may answer a few milliseconds before the switch
	// is made and logged (CI once read the log just before the line).
	if !poll(10*time.Second, func() bool { return strings.Contains(d.out.String(), "privileges dropped") }) {
		t.Fatalf("no \"privileges dropped\" in the log within 10 s:\n%s", d.out.String())
	}
	c, err := privdrop.ReadStatus(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if c.UID != [4]int{id.UID, id.UID, id.UID, id.UID} || c.Eff != 0 || c.Prm != 0 || c.Amb != 0 {
		t.Errorf("cgo build after the switch: %s; want uid %d and no capability", c, id.UID)
	}
	if !strings.Contains(d.out.String(), "all_threads=false") {
		t.Errorf("the log does not say the switch was made without all-thread calls:\n%s", d.out.String())
	}
	if r := mustExchange(t, d.addr(false), false, "www.z.example.", dns.TypeA); r.Rcode != dns.RcodeSuccess {
		t.Errorf("www.z.example. A: %v", r)
	}
}

// xdpPrivConfig writes the configuration of an AF_XDP test daemon serving
// from dir as nobody: listen on the server's addresses, the e2e.test zone,
// a secondary zone whose primary is the client's IPv6 address (so that
// the client may send it NOTIFY), user, when not empty, and seccomp.
func xdpPrivConfig(t *testing.T, id privdrop.Identity, dir string, listen []string, user string, seccomp bool) (confFile, ctl string) {
	t.Helper()
	zoneFile := filepath.Join(dir, "e2e.test.zone")
	writeOwned(t, id, zoneFile, xdpZone)
	ctl = filepath.Join(dir, "control.sock")
	conf := fmt.Sprintf(`[server]
listen = ["%s"]
control = %q
`, strings.Join(listen, `", "`), ctl)
	if user != "" {
		conf += fmt.Sprintf("user = %q\n", user)
	}
	if seccomp {
		conf += "seccomp = true\n"
	}
	conf += fmt.Sprintf(`
[[zone]]
origin = "e2e.test."
file = %q

[[zone]]
origin = "sec.test."
file = %q
primaries = ["[%s]:53"]

[xdp]
mode = "generic"
`, zoneFile, filepath.Join(dir, "sec.test.zone"), netns.ClientV6)
	confFile = filepath.Join(dir, "ringdns.toml")
	writeOwned(t, id, confFile, conf)
	return confFile, ctl
}

// notifyV6 sends an unsigned NOTIFY for sec.test. from the client's IPv6
// address, the zone's primary, to the server's IPv6 address on port 53,
// and returns the reply's rcode.
func notifyV6(n *xdpNet) (int, error) {
	rcode := -1
	err := netns.Do(n.ClientNS, func() error {
		c := &dns.Client{Net: "udp", Timeout: 3 * time.Second}
		var err error
		for range 3 {
			m := new(dns.Msg)
			m.SetNotify("sec.test.")
			var r *dns.Msg
			if r, _, err = c.Exchange(m, net.JoinHostPort(netns.ServerV6, "53")); err == nil {
				rcode = r.Rcode
				return nil
			}
		}
		return err
	})
	return rcode, err
}

// TestPrivilegeDropXDP starts ringdns -xdp as root with server.user =
// "nobody" in a network namespace. Serving from AF_XDP needs no capability
// once its sockets are bound and its program attached: with every listen
// address on the XDP port, every thread holds none, and the queries
// answered from the rings and a reload prove it serves. When an address
// the XDP program takes in has no socket on that port (here the IPv6
// address, listened on port 5353 only), the reply to a NOTIFY handed off
// from AF_XDP goes out from a socket bound to port 53 when it arrives, and
// ringdns keeps CAP_NET_BIND_SERVICE, alone, for it; the NOTIFY is
// answered. Under server.seccomp's filter all of this works the same, and
// the program is detached at exit.
func TestPrivilegeDropXDP(t *testing.T) {
	netnstest.Require(t)
	id := nobody(t)
	bin := ringdnsNoCgo(t)
	for _, tc := range []struct {
		name    string
		listen  []string
		keep    privdrop.CapSet
		seccomp bool
	}{
		{"every-address-listened", []string{netns.ServerV4 + ":53", "[" + netns.ServerV6 + "]:53"}, 0, false},
		{"late-bind", []string{netns.ServerV4 + ":53", "[" + netns.ServerV6 + "]:5353"}, privdrop.Caps(privdrop.CapNetBindService), false},
		{"seccomp", []string{netns.ServerV4 + ":53", "[" + netns.ServerV6 + "]:5353"}, privdrop.Caps(privdrop.CapNetBindService), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newXDPNet(t)
			dir := ownedDir(t, id)
			confFile, ctl := xdpPrivConfig(t, id, dir, tc.listen, "nobody", tc.seccomp)
			d := &daemon{t: t, dir: dir, control: ctl, out: &syncBuffer{}, exited: make(chan struct{})}
			d.run(netns.Command(n.ServerNS, bin, "-config", confFile, "-xdp", n.ServerIf), nil)
			checkCreds(t, d, wantCreds{id: id, eff: tc.keep, bnd: tc.keep, seccomp: tc.seccomp})
			if sent, err := xdpGoQueries(n, false, 20); err != nil {
				t.Fatalf("after the switch, %d queries sent: %v", sent, err)
			}
			var st struct {
				Workers []struct {
					Kind     string
					Counters struct{ Replies uint64 }
				}
			}
			d.ringctlJSON("stats", &st)
			var xdpReplies uint64
			for _, w := range st.Workers {
				if w.Kind == "xdp" {
					xdpReplies += w.Counters.Replies
				}
			}
			if xdpReplies < 20 {
				t.Errorf("the AF_XDP workers sent %d replies, want the 20 queries' at least", xdpReplies)
			}
			if rcode, err := notifyV6(n); err != nil || rcode != dns.RcodeSuccess {
				t.Errorf("NOTIFY to [%s]:53 through AF_XDP: rcode %d, %v", netns.ServerV6, rcode, err)
			}
			writeOwned(t, id, filepath.Join(dir, "e2e.test.zone"), strings.Replace(xdpZone, "hostmaster 1 ", "hostmaster 2 ", 1))
			if out, code := d.ringctl("reload", "e2e.test."); code != 0 {
				t.Errorf("ringctl reload after the switch: exit %d\n%s", code, out)
			}
			checkCreds(t, d, wantCreds{id: id, eff: tc.keep, bnd: tc.keep, seccomp: tc.seccomp})
			if err := d.stop(); err != nil {
				t.Errorf("ringdns exited with %v after SIGTERM", err)
			}
			if show := n.linkShow(t); strings.Contains(show, "prog/xdp") {
				t.Errorf("the XDP program is still attached after ringdns exited:\n%s", show)
			}
		})
	}
}

// TestPrivilegeAmbient starts ringdns unprivileged from the start, as
// systemd does with User=, Group= and AmbientCapabilities=: setpriv runs
// it as nobody with the capabilities set-up needs as ambient ones, and no
// server.user. After set-up it gives up every one of them (its bounding
// set, which it may not change without CAP_SETPCAP, stays the one it was
// given), and serves.
func TestPrivilegeAmbient(t *testing.T) {
	netnstest.Require(t)
	setpriv := testenv.RequireTool(t, "setpriv", "Debian package util-linux")
	id := nobody(t)
	bin := ringdnsNoCgo(t)
	self, err := privdrop.ReadStatus("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		caps string // setpriv's list
		xdp  bool
	}{
		// Port 53: CAP_NET_BIND_SERVICE for the sockets, nothing more.
		{"sockets", "+net_bind_service", false},
		// AF_XDP: CAP_NET_RAW for the sockets, CAP_BPF and CAP_NET_ADMIN
		// for the XSKMAP and the program, CAP_IPC_LOCK for UMEM over
		// RLIMIT_MEMLOCK (this machine's hard limit is 8 MiB, which the
		// test cannot raise; systemd's LimitMEMLOCK= can instead).
		{"xdp", "+net_bind_service,+net_raw,+net_admin,+bpf,+ipc_lock", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newXDPNet(t)
			dir := ownedDir(t, id)
			confFile, ctl := xdpPrivConfig(t, id, dir, []string{netns.ServerV4 + ":53", "[" + netns.ServerV6 + "]:53"}, "", false)
			args := []string{setpriv, fmt.Sprintf("--reuid=%d", id.UID), fmt.Sprintf("--regid=%d", id.GID), "--init-groups",
				"--inh-caps=" + tc.caps, "--ambient-caps=" + tc.caps, bin, "-config", confFile}
			if tc.xdp {
				args = append(args, "-xdp", n.ServerIf)
			} else {
				// Without [xdp]: the configuration names it; a copy without.
				b, _ := os.ReadFile(confFile)
				writeOwned(t, id, confFile, strings.Replace(string(b), "[xdp]\nmode = \"generic\"\n", "", 1))
			}
			d := &daemon{t: t, dir: dir, control: ctl, out: &syncBuffer{}, exited: make(chan struct{})}
			d.run(netns.Command(n.ServerNS, args...), nil)
			checkCreds(t, d, wantCreds{id: id, eff: 0, bnd: self.Bnd})
			if sent, err := xdpGoQueries(n, true, 10); err != nil {
				t.Fatalf("%d queries sent: %v", sent, err)
			}
			if tc.xdp && !strings.Contains(d.out.String(), "AF_XDP attached") {
				t.Errorf("AF_XDP not attached:\n%s", d.out.String())
			}
			if err := d.stop(); err != nil {
				t.Errorf("ringdns exited with %v after SIGTERM", err)
			}
		})
	}
}
