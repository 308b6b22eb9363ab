package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/controlplane/control"
)

// queryTimeout bounds every DNS exchange of the tests. Loopback answers
// take well under a millisecond; the margin is for the race detector on a
// busy two-core machine.
const queryTimeout = 3 * time.Second

// exampleZone is the example zone shipped in configs/, which the tests
// serve with -zone so that its answers below are the reference.
func exampleZone() string { return filepath.Join(repoRoot, "configs", "example.zone") }

// testZone returns a small zone for origin with the given serial. Every
// version has the same www address, so a client can tell a wrong answer
// from a newer one, and a TXT record naming the serial, so that the served
// version is visible in more than the SOA.
func testZone(origin string, serial uint32) string {
	return fmt.Sprintf(`$ORIGIN %[1]s
$TTL 300
@     IN SOA ns1 hostmaster %[2]d 7200 3600 1209600 300
      IN NS  ns1
ns1   IN A   192.0.2.53
www   IN A   192.0.2.80
www   IN AAAA 2001:db8::80
ver   IN TXT "serial %[2]d"
`, origin, serial)
}

// brokenZoneLine is the line of brokenZone that holds its error.
const brokenZoneLine = 6

// brokenZone is testZone with an unparsable address on brokenZoneLine.
func brokenZone(origin string, serial uint32) string {
	return strings.Replace(testZone(origin, serial), "A   192.0.2.80\n", "A   192.0.2.800\n", 1)
}

// writeFileAtomic replaces path with text through a rename, so that the
// daemon reads either the old or the new content, never a half-written
// file.
func writeFileAtomic(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// netOf is the miekg/dns network name for a transport and family.
func netOf(tcp, v6 bool) string {
	switch {
	case tcp && v6:
		return "tcp6"
	case tcp:
		return "tcp4"
	case v6:
		return "udp6"
	default:
		return "udp4"
	}
}

// exchange sends one query with a fresh miekg/dns client and returns the
// reply.
func exchange(addr netip.AddrPort, tcp bool, name string, qtype uint16) (*dns.Msg, error) {
	c := &dns.Client{Net: netOf(tcp, addr.Addr().Is6()), Timeout: queryTimeout}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	q.RecursionDesired = false
	r, _, err := c.Exchange(q, addr.String())
	if err != nil {
		return nil, fmt.Errorf("%s %s over %s to %s: %w", name, dns.TypeToString[qtype], c.Net, addr, err)
	}
	if r.Id != q.Id {
		return nil, fmt.Errorf("%s: reply id %d, query id %d", name, r.Id, q.Id)
	}
	return r, nil
}

// connExchange asks one question over an open DNS connection (TCP), for
// the tests that keep a connection across reloads or hold it open, and
// checks the reply's ID.
func connExchange(c *dns.Conn, name string, qtype uint16) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	c.SetDeadline(time.Now().Add(queryTimeout))
	if err := c.WriteMsg(q); err != nil {
		return nil, err
	}
	r, err := c.ReadMsg()
	if err == nil && r.Id != q.Id {
		err = fmt.Errorf("reply id %d to query %d", r.Id, q.Id)
	}
	return r, err
}

// mustExchange is exchange that fails the test on error.
func mustExchange(t *testing.T, addr netip.AddrPort, tcp bool, name string, qtype uint16) *dns.Msg {
	t.Helper()
	r, err := exchange(addr, tcp, name, qtype)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// rrStrings renders records without their owner-independent padding, for
// comparison with expected text.
func rrStrings(rrs []dns.RR) []string {
	out := make([]string, len(rrs))
	for i, rr := range rrs {
		out[i] = strings.Join(strings.Fields(rr.String()), " ")
	}
	return out
}

// soaSerial returns the serial of the single SOA in the answer section.
func soaSerial(r *dns.Msg) (uint32, error) {
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		return 0, fmt.Errorf("SOA query: rcode %s, %d answers", dns.RcodeToString[r.Rcode], len(r.Answer))
	}
	soa, ok := r.Answer[0].(*dns.SOA)
	if !ok {
		return 0, fmt.Errorf("SOA query answered with %s", r.Answer[0])
	}
	return soa.Serial, nil
}

// ctlJSON runs ringctl -json with args and decodes its reply; data, when
// not nil, receives the reply's data.
func (d *daemon) ctlJSON(data any, args ...string) (control.Reply, int) {
	d.t.Helper()
	out, code := d.ringctl(append([]string{"-json"}, args...)...)
	var rep control.Reply
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		d.t.Fatalf("ringctl -json %v: output is not a JSON reply: %v\n%s", args, err, out)
	}
	if data != nil && len(rep.Data) > 0 {
		if err := json.Unmarshal(rep.Data, data); err != nil {
			d.t.Fatalf("ringctl -json %v: data: %v\n%s", args, err, out)
		}
	}
	return rep, code
}

// waitExit waits up to limit for the daemon to exit by itself and returns
// its exit code.
func (d *daemon) waitExit(limit time.Duration) int {
	d.t.Helper()
	select {
	case <-d.exited:
	case <-time.After(limit):
		d.t.Fatalf("ringdns still running after %v\n%s", limit, d.out.String())
	}
	return exitCode(d.t, "waiting for ringdns", d.waitErr)
}

// exitCode is the exit status err reports from waiting for a process: 0
// for nil, the status for an *exec.ExitError. Any other error (the process
// could not be started or waited for) fails t.
func exitCode(t testing.TB, what string, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	t.Fatalf("%s: %v", what, err)
	return -1
}

// poll calls cond every 20 ms until it returns true or limit passes.
func poll(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// portsFree reports whether UDP and TCP port on both loopback addresses can
// be bound right now, and why not when they cannot.
func portsFree(port int) error {
	for _, host := range []string{"127.0.0.1", "::1"} {
		addr := net.JoinHostPort(host, fmt.Sprint(port))
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return err
		}
		pc.Close()
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		ln.Close()
	}
	return nil
}

// runDaemonToExit runs ringdns with args to completion, for invocations
// that must fail at startup, with a limit in case it serves instead.
func runDaemonToExit(t *testing.T, limit time.Duration, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(ringdnsBin, args...)
	cmd.Dir = repoRoot
	cmd.Env = childEnv("XDG_RUNTIME_DIR=" + t.TempDir())
	buf := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = buf, buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return buf.String(), exitCode(t, "ringdns", err)
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		t.Fatalf("ringdns %v did not exit within %v:\n%s", args, limit, buf.String())
		return "", -1
	}
}
