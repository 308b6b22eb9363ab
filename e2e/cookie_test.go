package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/internal/testenv"
)

// cookieConfig writes a configuration serving the example zone with the
// [cookies] table given, and returns its path.
func cookieConfig(t *testing.T, table string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ringdns.toml")
	text := table + fmt.Sprintf("[[zone]]\norigin = \"example.\"\nfile = %q\n", exampleZone())
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// cookieRE finds the COOKIE option in kdig's and dig's output (kdig writes
// it in upper case, dig in lower case and follows it with "(good)" when the
// client cookie is its own).
var cookieRE = regexp.MustCompile(`(?m)^;+ COOKIE: ([0-9A-Fa-f]+)`)

// digCookie runs tool (kdig or dig) against d with args and returns the
// reply's status and COOKIE option (lower case hex, "" when none) and the
// whole output.
func digCookie(t *testing.T, tool string, d *daemon, args ...string) (status, cookie, out string) {
	t.Helper()
	a := d.addr(false)
	tries := []string{"+tries=1", "+timeout=5"}
	if filepath.Base(tool) == "kdig" {
		tries = []string{"+retry=0", "+time=5"}
	}
	args = append(append([]string{"@" + a.Addr().String(), "-p", fmt.Sprint(a.Port())}, tries...), args...)
	b, err := exec.Command(tool, append(args, "www.example.", "A")...).CombinedOutput()
	out = string(b)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
	if m := regexp.MustCompile(`status: ([A-Z]+)`).FindStringSubmatch(out); m != nil {
		status = m[1]
	}
	// The last COOKIE option printed is the final reply's (dig prints
	// every reply when it retries after BADCOOKIE).
	if ms := cookieRE.FindAllStringSubmatch(out, -1); len(ms) > 0 {
		cookie = strings.ToLower(ms[len(ms)-1][1])
	}
	return status, cookie, out
}

// TestCookiesKdigDig serves DNS cookies to Knot's kdig and BIND's dig: the
// server cookie a first reply carries is sent back and accepted (echoed,
// since it is fresh), a second ringdns with the same secret accepts it too
// (a fleet: with cookies required there, it answers NOERROR where an
// unknown cookie gets BADCOOKIE), one with another secret does not, and
// dig, whose retry after BADCOOKIE is automatic, ends with an answer.
// Rotating the second server's secret with ringctl keeps the first
// server's cookies valid there (renewed) until a further rotation.
func TestCookiesKdigDig(t *testing.T) {
	t.Parallel()
	kdig := requireTool(t, "kdig")
	dig := testenv.RequireTool(t, "dig", "Debian package bind9-dnsutils; scripts/test.sh installs it")
	const secret = "e5e973e5a6b2a43f48e7dc849e37bfcf"
	a := startDaemon(t, "-config", cookieConfig(t, "[cookies]\nsecret = \""+secret+"\"\n"), "-metrics", "127.0.0.1:0")
	b := startDaemon(t, "-config", cookieConfig(t, "[cookies]\nsecret = \""+secret+"\"\nrequire = true\n"))
	c := startDaemon(t, "-config", cookieConfig(t, "[cookies]\nsecret = \"00112233445566778899aabbccddeeff\"\nrequire = true\n"))

	for _, tool := range []string{kdig, dig} {
		name := filepath.Base(tool)
		st, first, out := digCookie(t, tool, a, "+cookie")
		if st != "NOERROR" || len(first) != 48 {
			t.Fatalf("%s +cookie: status %s, cookie %q\n%s", name, st, first, out)
		}
		for _, d := range []*daemon{a, b} {
			st, again, out := digCookie(t, tool, d, "+cookie="+first)
			if st != "NOERROR" || again != first {
				t.Errorf("%s +cookie=%s at %v: status %s, cookie %s, want it echoed\n%s", name, first, d.addr(false), st, again, out)
			}
		}
		// Another secret: kdig, told not to retry, shows BADCOOKIE with
		// a new cookie; dig retries with it and gets the answer.
		args := []string{"+cookie=" + first}
		if tool == kdig {
			args = append(args, "+nobadcookie")
		}
		st, other, out := digCookie(t, tool, c, args...)
		switch {
		case tool == kdig && (st != "BADCOOKIE" || len(other) != 48 || other == first || other[:16] != first[:16]):
			t.Errorf("kdig to another secret: status %s, cookie %s\n%s", st, other, out)
		case tool == dig && (st != "NOERROR" || !strings.Contains(out, "BADCOOKIE") || other == first):
			t.Errorf("dig to another secret: status %s, cookie %s\n%s", st, other, out)
		}
	}

	// Over TCP: the reply carries a cookie too, and a cookie that is not
	// valid is answered, not BADCOOKIE, even where one is required (the
	// connection proves the address).
	st, overTCP, out := digCookie(t, kdig, a, "+tcp", "+cookie")
	if st != "NOERROR" || len(overTCP) != 48 {
		t.Errorf("kdig +tcp +cookie: status %s, cookie %q\n%s", st, overTCP, out)
	}
	if st, again, out := digCookie(t, kdig, b, "+tcp", "+cookie="+overTCP); st != "NOERROR" || again != overTCP {
		t.Errorf("kdig +tcp, the cookie sent back: status %s, cookie %s\n%s", st, again, out)
	}
	if st, other, out := digCookie(t, kdig, c, "+tcp", "+nobadcookie", "+cookie="+overTCP); st != "NOERROR" || len(other) != 48 || other == overTCP {
		t.Errorf("kdig +tcp, a cookie of another secret: status %s, cookie %s\n%s", st, other, out)
	}

	// Rotation on b: the cookie a made is valid there for one rotation
	// (answered with a new cookie), and no longer after a second.
	_, first, _ := digCookie(t, kdig, a, "+cookie")
	if out, code := b.ringctl("cookie-rotate", "0f0e0d0c0b0a09080706050403020100"); code != 0 || !strings.Contains(out, "rotated") {
		t.Fatalf("ringctl cookie-rotate: exit %d\n%s", code, out)
	}
	st, renewed, out := digCookie(t, kdig, b, "+cookie="+first, "+nobadcookie")
	if st != "NOERROR" || renewed == first || renewed[:16] != first[:16] {
		t.Errorf("after one rotation: status %s, cookie %s (sent %s)\n%s", st, renewed, first, out)
	}
	if out, code := b.ringctl("cookie-rotate"); code != 0 {
		t.Fatalf("ringctl cookie-rotate: exit %d\n%s", code, out)
	}
	if st, _, out := digCookie(t, kdig, b, "+cookie="+first, "+nobadcookie"); st != "BADCOOKIE" {
		t.Errorf("after two rotations: status %s\n%s", st, out)
	}
	// The cookie made with the secret now previous is valid, and renewed.
	if st, again, out := digCookie(t, kdig, b, "+cookie="+renewed, "+nobadcookie"); st != "NOERROR" || again == renewed || again[:16] != renewed[:16] {
		t.Errorf("the renewed cookie after a second rotation: status %s, cookie %s\n%s", st, again, out)
	}

	// a's metrics count what it received.
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, _ := scrape(t, a.status.Metrics)
		client, _ := sumMetric(m, "ringdns_cookies_total", `result="client-only"`)
		valid, _ := sumMetric(m, "ringdns_cookies_total", `result="valid"`)
		if client >= 3 && valid >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ringdns_cookies_total: client-only %v, valid %v", client, valid)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCookiesKnot checks server cookies across implementations: knotd with
// its cookies module (mod-cookies, which answers BADCOOKIE to any query
// without a valid server cookie) and ringdns with cookies required, both
// with one secret, each accept the other's cookie and refuse one made with
// another secret.
func TestCookiesKnot(t *testing.T) {
	t.Parallel()
	kdig := requireTool(t, "kdig")
	knotd := testenv.RequireTool(t, "knotd", "Debian package knot; scripts/test.sh installs it")
	const secret = "e5e973e5a6b2a43f48e7dc849e37bfcf"
	d := startDaemon(t, "-config", cookieConfig(t, "[cookies]\nsecret = \""+secret+"\"\nrequire = true\n"))

	dir := t.TempDir()
	port := freePort(t)
	conf := filepath.Join(dir, "knot.conf")
	text := fmt.Sprintf(`server:
    rundir: %[1]s
    listen: 127.0.0.1@%[2]d
    background-workers: 1
    tcp-workers: 1
    udp-workers: 1
control:
    listen: %[1]s/knot.sock
database:
    storage: %[1]s
log:
  - target: stderr
    any: info
mod-cookies:
  - id: fleet
    secret: 0x%[3]s
template:
  - id: default
    storage: %[1]s
    global-module: mod-cookies/fleet
zone:
  - domain: example.
    file: %[4]s
`, dir, port, secret, exampleZone())
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	cmd := exec.Command(knotd, "-c", conf)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		// By PID: SIGTERM, then SIGKILL after 10 s.
		select {
		case <-exited:
		default:
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
		}
		if t.Failed() {
			t.Logf("knotd's output:\n%s", out.String())
		}
	})
	kaddr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	if !poll(10*time.Second, func() bool {
		r, err := exchange(kaddr, true, "example.", dns.TypeSOA)
		return err == nil && r.Rcode == dns.RcodeSuccess
	}) {
		t.Fatalf("knotd does not answer within 10 s:\n%s", out.String())
	}
	// ask sends kdig's query with the COOKIE option ck, without retrying
	// after BADCOOKIE, to ap.
	ask := func(ap netip.AddrPort, ck string) (status, cookie string) {
		t.Helper()
		args := []string{"@" + ap.Addr().String(), "-p", fmt.Sprint(ap.Port()), "+retry=0", "+time=5", "+nobadcookie", "+cookie=" + ck, "www.example.", "A"}
		b, err := exec.Command(kdig, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("kdig %s: %v\n%s", strings.Join(args, " "), err, b)
		}
		if m := regexp.MustCompile(`status: ([A-Z]+)`).FindSubmatch(b); m != nil {
			status = string(m[1])
		}
		if ms := cookieRE.FindAllSubmatch(b, -1); len(ms) > 0 {
			cookie = strings.ToLower(string(ms[len(ms)-1][1]))
		}
		return status, cookie
	}
	const client = "0102030405060708"
	raddr := d.addr(false)
	// Each server's cookie, learned from its BADCOOKIE reply.
	_, fromKnot := ask(kaddr, client)
	_, fromRingdns := ask(raddr, client)
	if len(fromKnot) != 48 || len(fromRingdns) != 48 {
		t.Fatalf("cookies learned: knotd %q, ringdns %q", fromKnot, fromRingdns)
	}
	for _, tc := range []struct {
		name string
		to   netip.AddrPort
		ck   string
		want string
	}{
		{"ringdns's cookie at knotd", kaddr, fromRingdns, "NOERROR"},
		{"knotd's cookie at ringdns", raddr, fromKnot, "NOERROR"},
		{"a forged cookie at knotd", kaddr, fromRingdns[:32] + "0123456789abcdef", "BADCOOKIE"},
		{"a forged cookie at ringdns", raddr, fromKnot[:32] + "0123456789abcdef", "BADCOOKIE"},
	} {
		if st, _ := ask(tc.to, tc.ck); st != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, st, tc.want)
		}
	}
}

// TestCookiesSIGHUP changes the secret in the configuration file and sends
// SIGHUP: the new secret makes the cookies from then on (a ringdns started
// with it, cookies required, accepts them), and the one it replaced still
// validates the cookies it made.
func TestCookiesSIGHUP(t *testing.T) {
	t.Parallel()
	kdig := requireTool(t, "kdig")
	const old, next = "000102030405060708090a0b0c0d0e0f", "f0e0d0c0b0a090807060504030201000"
	conf := cookieConfig(t, "[cookies]\nsecret = \""+old+"\"\nrequire = true\n")
	a := startDaemon(t, "-config", conf)
	b := startDaemon(t, "-config", cookieConfig(t, "[cookies]\nsecret = \""+next+"\"\nrequire = true\n"))
	_, before, _ := digCookie(t, kdig, a, "+cookie=0102030405060708", "+nobadcookie")
	if st, _, out := digCookie(t, kdig, b, "+cookie="+before, "+nobadcookie"); st != "BADCOOKIE" {
		t.Fatalf("a cookie made with another secret: %s\n%s", st, out)
	}
	text, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	writeFileAtomic(t, conf, strings.Replace(string(text), old, next, 1))
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// The reload runs on its own goroutine: wait, bounded generously for
	// a loaded machine, for a's new cookies to be b's.
	var after string
	if !poll(10*time.Second, func() bool {
		_, after, _ = digCookie(t, kdig, a, "+cookie=0102030405060708", "+nobadcookie")
		st, _, _ := digCookie(t, kdig, b, "+cookie="+after, "+nobadcookie")
		return st == "NOERROR"
	}) {
		t.Fatalf("after SIGHUP, the cookie %s is not valid with the new secret\n%s", after, a.out.String())
	}
	if st, _, out := digCookie(t, kdig, a, "+cookie="+before, "+nobadcookie"); st != "NOERROR" {
		t.Errorf("the cookie of the replaced secret after SIGHUP: %s\n%s", st, out)
	}
}
