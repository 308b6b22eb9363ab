package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/controlplane/control"
	"github.com/ringdns/ringdns/internal/testenv"
)

// queryCase is one query against the example zone and the reply expected.
type queryCase struct {
	name   string
	qtype  uint16
	rcode  int
	aa     bool
	answer []string // records of the answer section, in order
	ns     []string // records of the authority section, any order
}

var exampleCases = []queryCase{
	{name: "example.", qtype: dns.TypeSOA, rcode: dns.RcodeSuccess, aa: true,
		answer: []string{"example. 3600 IN SOA ns1.example. hostmaster.example. 2026112501 7200 3600 1209600 300"}},
	{name: "www.example.", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true,
		answer: []string{"www.example. 3600 IN A 192.0.2.80"}},
	{name: "WWW.Example.", qtype: dns.TypeAAAA, rcode: dns.RcodeSuccess, aa: true,
		answer: []string{"WWW.Example. 3600 IN AAAA 2001:db8::80"}},
	{name: "web.example.", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true,
		answer: []string{"web.example. 3600 IN CNAME www.example.", "www.example. 3600 IN A 192.0.2.80"}},
	{name: "x.apps.example.", qtype: dns.TypeTXT, rcode: dns.RcodeSuccess, aa: true,
		answer: []string{`x.apps.example. 3600 IN TXT "served by the wildcard"`}},
	{name: "nothing.example.", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true,
		ns: []string{"example. 300 IN SOA ns1.example. hostmaster.example. 2026112501 7200 3600 1209600 300"}},
	{name: "host.sub.example.", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: false,
		ns: []string{"sub.example. 3600 IN NS ns1.sub.example.", "sub.example. 3600 IN NS ns.elsewhere.test."}},
	{name: "outside.test.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
}

func (c queryCase) check(r *dns.Msg) error {
	if r.Rcode != c.rcode {
		return fmt.Errorf("%s %s: rcode %s, want %s", c.name, dns.TypeToString[c.qtype],
			dns.RcodeToString[r.Rcode], dns.RcodeToString[c.rcode])
	}
	if r.Authoritative != c.aa {
		return fmt.Errorf("%s %s: AA=%v, want %v", c.name, dns.TypeToString[c.qtype], r.Authoritative, c.aa)
	}
	if got := rrStrings(r.Answer); !slices.Equal(got, c.answer) {
		return fmt.Errorf("%s %s: answer %q, want %q", c.name, dns.TypeToString[c.qtype], got, c.answer)
	}
	got, want := rrStrings(r.Ns), slices.Clone(c.ns)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		return fmt.Errorf("%s %s: authority %q, want %q", c.name, dns.TypeToString[c.qtype], got, want)
	}
	return nil
}

// TestQueries asks the example zone over UDP and TCP, IPv4 and IPv6, with a
// miekg/dns client and with kdig.
func TestQueries(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "-zone", "example.="+exampleZone())
	for _, v6 := range []bool{false, true} {
		for _, tcp := range []bool{false, true} {
			addr := d.addr(v6)
			t.Run(netOf(tcp, v6), func(t *testing.T) {
				for _, c := range exampleCases {
					if err := c.check(mustExchange(t, addr, tcp, c.name, c.qtype)); err != nil {
						t.Error(err)
					}
				}
			})
		}
	}

	// A TCP connection carries many queries, one after the other.
	t.Run("tcp-reuse", func(t *testing.T) {
		conn, err := dns.DialTimeout("tcp", d.addr(false).String(), queryTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for i := 0; i < 20; i++ {
			c := exampleCases[i%len(exampleCases)]
			q := new(dns.Msg)
			q.SetQuestion(c.name, c.qtype)
			conn.SetDeadline(time.Now().Add(queryTimeout))
			if err := conn.WriteMsg(q); err != nil {
				t.Fatal(err)
			}
			r, err := conn.ReadMsg()
			if err != nil {
				t.Fatalf("query %d on one connection: %v", i, err)
			}
			if r.Id != q.Id {
				t.Fatalf("query %d: reply id %d, want %d", i, r.Id, q.Id)
			}
			if err := c.check(r); err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("kdig", func(t *testing.T) {
		kdig := requireTool(t, "kdig")
		for _, v6 := range []bool{false, true} {
			for _, tcp := range []bool{false, true} {
				addr := d.addr(v6)
				args := []string{"@" + addr.Addr().String(), "-p", fmt.Sprint(addr.Port()),
					"+timeout=3", "+retry=0", "+norecurse"}
				if tcp {
					args = append(args, "+tcp")
				}
				for _, q := range []struct{ name, qtype, status, flags, want string }{
					{"web.example.", "A", "NOERROR", "qr aa", "www.example.\t3600\tIN\tA\t192.0.2.80"},
					{"example.", "MX", "NOERROR", "qr aa", "example.\t3600\tIN\tMX\t10 mail.example."},
					{"nothing.example.", "A", "NXDOMAIN", "qr aa", "example.\t300\tIN\tSOA\tns1.example. hostmaster.example. 2026112501"},
				} {
					out, err := exec.Command(kdig, append(args, q.name, q.qtype)...).CombinedOutput()
					if err != nil {
						t.Fatalf("kdig %v %s %s: %v\n%s", args, q.name, q.qtype, err, out)
					}
					s := string(out)
					// kdig pads names with spaces to align columns; squeeze
					// them so that the expected lines need no padding.
					s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == ' ' }), " ")
					s = strings.ReplaceAll(strings.ReplaceAll(s, " \t", "\t"), "\t ", "\t")
					proto := "UDP"
					if tcp {
						proto = "TCP"
					}
					for _, want := range []string{"status: " + q.status, "Flags: " + q.flags + ";", q.want,
						fmt.Sprintf("From %s@%d(%s)", addr.Addr(), addr.Port(), proto)} {
						if !strings.Contains(s, want) {
							t.Errorf("kdig %s %s over %s to %s: output lacks %q:\n%s", q.name, q.qtype, proto, addr, want, out)
						}
					}
				}
			}
		}
	})
	d.alive()
}

// TestDefaultRun starts ringdns with no arguments at all: it must serve the
// embedded example zone on 127.0.0.1:5353 and [::1]:5353 and say how to
// query it, and ringctl must find its control socket without -s.
func TestDefaultRun(t *testing.T) {
	t.Parallel()
	if err := portsFree(5353); err != nil {
		// The default ports are fixed by design; another program (an mDNS
		// responder, or another ringdns) holding them is no fault of ours.
		testenv.Require(t, fmt.Errorf("this test needs the default port 5353 free on loopback: %w", err))
	}
	d := &daemon{t: t, dir: t.TempDir(), out: &syncBuffer{}, exited: make(chan struct{})}
	d.control = filepath.Join(d.dir, "ringdns.sock")
	d.start(nil, []string{"XDG_RUNTIME_DIR=" + d.dir})

	want := []string{"127.0.0.1:5353", "[::1]:5353"}
	if !slices.Equal(d.status.Listen, want) {
		t.Errorf("listening on %v, want %v", d.status.Listen, want)
	}
	if d.status.DataPlane != "sockets" {
		t.Errorf("data plane %q, want sockets", d.status.DataPlane)
	}
	// The control socket answers as soon as it exists, a moment before
	// the daemon prints its hint: wait for the hint a little.
	for _, hint := range []string{"kdig @127.0.0.1 -p 5353 example. SOA", "kdig @::1 -p 5353 example. SOA",
		"ringctl -s " + d.control + " status"} {
		if !poll(5*time.Second, func() bool { return strings.Contains(d.out.String(), hint) }) {
			t.Errorf("startup output lacks the hint %q:\n%s", hint, d.out.String())
		}
	}
	for _, a := range want {
		addr := netip.MustParseAddrPort(a)
		for _, tcp := range []bool{false, true} {
			if err := exampleCases[0].check(mustExchange(t, addr, tcp, "example.", dns.TypeSOA)); err != nil {
				t.Error(err)
			}
		}
	}

	// ringctl and ringdns agree on the default control socket path.
	cmd := exec.Command(ringctlBin, "status")
	cmd.Env = childEnv("XDG_RUNTIME_DIR=" + d.dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "1 serving, 0 failing, 1 configured") {
		t.Errorf("ringctl status with the default socket: %v\n%s", err, out)
	}
	if code := d.stopCode(); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
}

// stopCode sends SIGTERM and returns the exit code.
func (d *daemon) stopCode() int {
	d.t.Helper()
	return exitCode(d.t, "ringdns", d.stop())
}

// TestConfigFile serves from a TOML file and checks the flags that override
// it.
func TestConfigFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFileAtomic(t, filepath.Join(dir, "a.zone"), testZone("a.test.", 7))
	writeFileAtomic(t, filepath.Join(dir, "b.zone"), testZone("b.test.", 8))
	conf := filepath.Join(dir, "ringdns.toml")
	writeFileAtomic(t, conf, `
[server]
listen = ["127.0.0.1:0"]
nsid = "e2e"
identity = "e2e-host"

[[zone]]
origin = "a.test"
file = "a.zone"   # relative to this file
`)
	// -zone adds b.test.; -listen replaces the file's list; -cpus picks one
	// worker per address.
	d := startDaemon(t, "-config", conf, "-zone", "b.test.="+filepath.Join(dir, "b.zone"), "-cpus", "0")
	if d.status.ZonesServing != 2 || d.status.Workers != 2 || !slices.Equal(d.status.CPUs, []int{0}) {
		t.Errorf("status: %d zones serving, %d workers on %v; want 2 zones, 2 workers on [0]",
			d.status.ZonesServing, d.status.Workers, d.status.CPUs)
	}
	for origin, serial := range map[string]uint32{"a.test.": 7, "b.test.": 8} {
		s, err := soaSerial(mustExchange(t, d.addr(false), false, origin, dns.TypeSOA))
		if err != nil || s != serial {
			t.Errorf("%s SOA serial %d (%v), want %d", origin, s, err, serial)
		}
	}
	// identity from the file answers CHAOS id.server.
	q := new(dns.Msg)
	q.SetQuestion("id.server.", dns.TypeTXT)
	q.Question[0].Qclass = dns.ClassCHAOS
	r, err := dns.Exchange(q, d.addr(true).String())
	if err != nil || len(r.Answer) != 1 || !strings.Contains(r.Answer[0].String(), `"e2e-host"`) {
		t.Errorf("CHAOS id.server: %v %v", r, err)
	}

	t.Run("unknown-key", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.toml")
		writeFileAtomic(t, bad, "[server]\nlisten = [\"127.0.0.1:0\"]\nlisten-backlog = 5\n")
		for _, args := range [][]string{{"-config", bad}, {"check", "-config", bad}} {
			out, code := runDaemonToExit(t, 20*time.Second, args...)
			if code == 0 || !strings.Contains(out, "server.listen-backlog") || !strings.Contains(out, bad) {
				t.Errorf("ringdns %v: exit %d, want non-zero and the key and file named:\n%s", args, code, out)
			}
		}
	})
	t.Run("bad-flags", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"-zone", "example."}, "want ORIGIN=PATH"},
			{[]string{"-zone", "example.=" + exampleZone(), "-listen", "localhost:53"}, `server.listen "localhost:53"`},
			{[]string{"-zone", "example.=" + exampleZone(), "-cpus", "1-0"}, "bad CPU range"},
			{[]string{"-zone", "example.=" + exampleZone(), "-metrics", "nowhere"}, `server.metrics "nowhere"`},
			{[]string{"-zone", "example.=" + filepath.Join(dir, "missing.zone"), "-listen", "127.0.0.1:0"}, "no zone loaded"},
			{[]string{"-zone", "example.=" + exampleZone(), "-listen", "127.0.0.1:0", "-xdp", "ringdns-e2e-none"}, "ringdns-e2e-none"},
			{[]string{"-bogus"}, "flag provided but not defined: -bogus"},
			{[]string{"extra"}, `unexpected argument "extra"`},
		} {
			out, code := runDaemonToExit(t, 20*time.Second, c.args...)
			if code == 0 || !strings.Contains(out, c.want) {
				t.Errorf("ringdns %v: exit %d, want non-zero and %q:\n%s", c.args, code, c.want, out)
			}
		}
	})
	d.alive()
}

// TestCheck runs `ringdns check` on good and bad configurations.
func TestCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.zone")
	bad := filepath.Join(dir, "bad.zone")
	writeFileAtomic(t, good, testZone("good.test.", 1))
	writeFileAtomic(t, bad, brokenZone("bad.test.", 1))
	conf := filepath.Join(dir, "mixed.toml")
	writeFileAtomic(t, conf, "[[zone]]\norigin = \"good.test.\"\nfile = \"good.zone\"\n[[zone]]\norigin = \"bad.test.\"\nfile = \"bad.zone\"\n")

	for _, c := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"shipped", []string{"-config", "configs/ringdns.toml"}, 0, []string{"ok: zone example.: serial 2026112501", "1 zones ok"}},
		{"embedded", nil, 0, []string{"ok: zone example.", "(embedded default config): 1 zones ok"}},
		{"zone-flag", []string{"-zone", "good.test.=" + good}, 0, []string{"ok: zone good.test.: serial 1", "1 zones ok"}},
		{"bad-zone", []string{"-zone", "bad.test.=" + bad}, 1, []string{fmt.Sprintf("%s:%d:", bad, brokenZoneLine), "failed"}},
		{"one-bad-of-two", []string{"-config", conf}, 1, []string{"ok: zone good.test.", fmt.Sprintf("%s:%d:", bad, brokenZoneLine), conf + ": failed"}},
		{"missing-file", []string{"-zone", "x.=" + filepath.Join(dir, "none.zone")}, 1, []string{filepath.Join(dir, "none.zone")}},
		{"serving-flag", []string{"-listen", "127.0.0.1:53"}, 2, []string{"flag provided but not defined: -listen"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, code := runRingdns(t, append([]string{"check"}, c.args...)...)
			if code != c.code {
				t.Errorf("exit %d, want %d:\n%s", code, c.code, out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestSIGTERM stops a daemon that has open TCP and control connections: it
// must exit 0, close its sockets and remove the control socket.
func TestSIGTERM(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "-zone", "example.="+exampleZone())
	fi, err := os.Stat(d.control)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("control socket mode %v, want a socket with 0600", fi.Mode())
	}
	addr := d.addr(false)
	idle, err := dns.DialTimeout("tcp", addr.String(), queryTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	ctl, err := control.Dial(d.control, queryTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()

	start := time.Now()
	if code := d.stopCode(); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0\n%s", code, d.out.String())
	}
	t.Logf("exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	if _, err := os.Lstat(d.control); !os.IsNotExist(err) {
		t.Errorf("control socket %s still there after exit: %v", d.control, err)
	}
	if !strings.Contains(d.out.String(), "msg=stopped") {
		t.Errorf("no orderly stop in the log:\n%s", d.out.String())
	}
	if _, err := exchange(addr, true, "example.", dns.TypeSOA); err == nil {
		t.Errorf("TCP %s still answers after exit", addr)
	}
	// The UDP sockets are closed: their port can be bound again.
	for _, v6 := range []bool{false, true} {
		pc, err := net.ListenUDP(netOf(false, v6), net.UDPAddrFromAddrPort(d.addr(v6)))
		if err != nil {
			t.Errorf("UDP %s not free after exit: %v", d.addr(v6), err)
		} else {
			pc.Close()
		}
	}
	idle.SetReadDeadline(time.Now().Add(queryTimeout))
	if _, err := idle.ReadMsg(); err == nil {
		t.Errorf("the open TCP connection got a message instead of being closed")
	}
}
