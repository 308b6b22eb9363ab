//go:build linux

package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
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

	"github.com/ringdns/ringdns/controlplane/control"
	"github.com/ringdns/ringdns/internal/netns"
	"github.com/ringdns/ringdns/internal/netns/netnstest"
)

// The AF_XDP end-to-end test runs the daemon in a network namespace of its
// own, attached to one end of a two-queue veth pair, and queries it from a
// second namespace at the other end. Only addresses of the benchmarking
// ranges are used, and only inside those namespaces.
const xdpZone = `$ORIGIN e2e.test.
$TTL 300
@    IN SOA ns1 hostmaster 1 3600 900 604800 300
@    IN NS  ns1
ns1  IN A    198.18.0.1
ns1  IN AAAA fd53::1
www  IN A    198.18.0.53
www  IN AAAA fd53::53
`

// xdpNet is a netns.Pair with two queues.
type xdpNet struct{ *netns.Pair }

// newXDPNet builds the pair. Its cleanup, which deletes the namespaces
// with the veth pair and whatever was left attached to it, is registered
// first, so it runs after the daemon's cleanup has stopped it.
func newXDPNet(t *testing.T) *xdpNet {
	t.Helper()
	return &xdpNet{netnstest.NewPair(t, netns.Config{Name: "rde", Queues: 2})}
}

// startXDPDaemon runs ringdns -xdp in the server namespace with a
// configuration that listens on the server's addresses (socket workers on
// port 53, and the XDP program redirecting that port) in the given attach
// mode, and waits until its control socket answers.
func startXDPDaemon(t *testing.T, n *xdpNet, mode string) *daemon {
	t.Helper()
	dir := t.TempDir()
	zoneFile := filepath.Join(dir, "e2e.test.zone")
	if err := os.WriteFile(zoneFile, []byte(xdpZone), 0o644); err != nil {
		t.Fatal(err)
	}
	control := filepath.Join(dir, "control.sock")
	conf := fmt.Sprintf(`[server]
listen = ["%s:53", "[%s]:53"]
control = %q
metrics = "%s:9153"

[[zone]]
origin = "e2e.test."
file = %q

[xdp]
mode = %q
`, netns.ServerV4, netns.ServerV6, control, netns.ServerV4, zoneFile, mode)
	confFile := filepath.Join(dir, "ringdns.toml")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, dir: dir, control: control, out: &syncBuffer{}, exited: make(chan struct{})}
	d.run(netns.Command(n.ServerNS, ringdnsBin, "-config", confFile, "-xdp", n.ServerIf), nil)
	return d
}

// ringctlJSON runs ringctl -json CMD, fails the test unless the daemon
// says OK, and decodes the reply's data into v.
func (d *daemon) ringctlJSON(cmd string, v any) {
	d.t.Helper()
	if rep, code := d.ctlJSON(v, cmd); code != 0 || !rep.OK {
		d.t.Fatalf("ringctl -json %s: exit status %d, ok %v, error %q", cmd, code, rep.OK, rep.Error)
	}
}

// xdpGoQueries sends count A (to the IPv4 address) or AAAA (to the IPv6
// address) queries for www.e2e.test from the client namespace with a
// miekg/dns client. Each exchange dials a new socket, so each query comes
// from its own source port and the flows hash over both queues. It returns
// how many queries were sent and an error describing the first wrong or
// missing answer.
func xdpGoQueries(n *xdpNet, v6 bool, count int) (sent int, err error) {
	server, qtype, want := netns.ServerV4+":53", dns.TypeA, "198.18.0.53"
	if v6 {
		server, qtype, want = "["+netns.ServerV6+"]:53", dns.TypeAAAA, "fd53::53"
	}
	err = netns.Do(n.ClientNS, func() error {
		c := &dns.Client{Net: "udp", Timeout: 3 * time.Second}
		for i := 0; i < count; i++ {
			m := new(dns.Msg)
			m.SetQuestion("www.e2e.test.", qtype)
			m.RecursionDesired = false
			sent++
			r, _, err := c.Exchange(m, server)
			if err != nil {
				return fmt.Errorf("query %d to %s: %w", i, server, err)
			}
			if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 1 {
				return fmt.Errorf("query %d to %s: unexpected reply\n%v", i, server, r)
			}
			var got string
			switch rr := r.Answer[0].(type) {
			case *dns.A:
				got = rr.A.String()
			case *dns.AAAA:
				got = rr.AAAA.String()
			}
			if got != want {
				return fmt.Errorf("query %d to %s: answer %v, want %s", i, server, r.Answer[0], want)
			}
		}
		return nil
	})
	return sent, err
}

// kdig runs kdig in the client namespace and returns its short answer.
func (n *xdpNet) kdig(t *testing.T, args ...string) string {
	t.Helper()
	kdig := requireTool(t, "kdig")
	args = append([]string{"netns", "exec", n.ClientNS, kdig, "+short", "+time=3", "+retry=1"}, args...)
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("kdig %s: %v\n%s", strings.Join(args[3:], " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// scrapeMetrics fetches the daemon's metrics from the client namespace over
// TCP, which also proves that TCP to the server's address reaches the
// kernel past the XDP program, and returns the page without its HTTP header.
func (n *xdpNet) scrapeMetrics() (string, error) {
	var conn net.Conn
	if err := netns.Do(n.ClientNS, func() error {
		var err error
		conn, err = net.DialTimeout("tcp", netns.ServerV4+":9153", 10*time.Second)
		return err
	}); err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "GET /metrics HTTP/1.0\r\nHost: ringdns\r\n\r\n"); err != nil {
		return "", err
	}
	body, err := io.ReadAll(conn)
	if err != nil {
		return "", err
	}
	if !bytes.HasPrefix(body, []byte("HTTP/1.0 200")) && !bytes.HasPrefix(body, []byte("HTTP/1.1 200")) {
		return "", fmt.Errorf("metrics: %.200s", body)
	}
	_, page, ok := bytes.Cut(body, []byte("\r\n\r\n"))
	if !ok {
		return "", fmt.Errorf("metrics: no end of the HTTP header in %.200s", body)
	}
	return string(page), nil
}

// linkShow returns ip -d link show of the server interface.
func (n *xdpNet) linkShow(t *testing.T) string {
	t.Helper()
	return netnstest.Run(t, "ip", "-n", n.ServerNS, "-d", "link", "show", "dev", n.ServerIf)
}

var xdpMACRE = regexp.MustCompile(`link/ether ([0-9a-f:]{17})`)

func TestXDPDaemon(t *testing.T) {
	netnstest.Require(t)
	requireTool(t, "kdig")
	for _, mode := range []string{"driver", "generic"} {
		t.Run(mode, func(t *testing.T) { testXDPDaemon(t, mode) })
	}
}

func testXDPDaemon(t *testing.T, mode string) {
	n := newXDPNet(t)
	d := startXDPDaemon(t, n, mode)

	var st control.Status
	d.ringctlJSON("status", &st)
	wantPlane := fmt.Sprintf("AF_XDP on %s (%s mode, 2 queues", n.ServerIf, mode)
	if !strings.HasPrefix(st.DataPlane, wantPlane) {
		t.Fatalf("status data plane %q, want it to start with %q", st.DataPlane, wantPlane)
	}
	if show := n.linkShow(t); !strings.Contains(show, "prog/xdp") || !strings.Contains(show, "ringdns_xdp") {
		t.Fatalf("no ringdns_xdp program on %s after start:\n%s", n.ServerIf, show)
	}
	m := xdpMACRE.FindStringSubmatch(n.linkShow(t))
	if m == nil {
		t.Fatalf("no MAC address in ip link show of %s", n.ServerIf)
	}
	serverMAC := m[1]

	// The neighbour tables start empty, so the first query of each family
	// waits for ARP or neighbour discovery, which the XDP program must pass
	// to the server's kernel.
	netnstest.Run(t, "ip", "-n", n.ClientNS, "neigh", "flush", "dev", n.ClientIf)

	// UDP: kdig and the Go client, both families, many source ports.
	sent := 0
	for i := 0; i < 6; i++ {
		if got := n.kdig(t, "@"+netns.ServerV4, "www.e2e.test", "A"); got != "198.18.0.53" {
			t.Fatalf("kdig A over IPv4: %q, want 198.18.0.53", got)
		}
		if got := n.kdig(t, "@"+netns.ServerV6, "www.e2e.test", "AAAA"); got != "fd53::53" {
			t.Fatalf("kdig AAAA over IPv6: %q, want fd53::53", got)
		}
		sent += 2
	}
	for _, v6 := range []bool{false, true} {
		k, err := xdpGoQueries(n, v6, 150)
		sent += k
		if err != nil {
			t.Fatal(err)
		}
	}

	// ARP and neighbour discovery went through the server's kernel.
	neigh := netnstest.Run(t, "ip", "-n", n.ClientNS, "neigh", "show", "dev", n.ClientIf)
	for _, a := range []string{netns.ServerV4, netns.ServerV6} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(a) + ` lladdr ` + serverMAC).MatchString(neigh) {
			t.Errorf("client has no neighbour entry %s lladdr %s:\n%s", a, serverMAC, neigh)
		}
	}
	// ICMP echo is answered by the kernel.
	for _, a := range []string{netns.ServerV4, netns.ServerV6} {
		if err := netns.Ping(n.ClientNS, netip.MustParseAddr(a), 3, time.Second); err != nil {
			t.Errorf("ping %s with the XDP program attached: %v", a, err)
		}
	}
	// TCP to port 53 reaches the daemon's TCP listener through the kernel.
	tcpSent := 0
	for _, q := range [][]string{{"@" + netns.ServerV4, "A", "198.18.0.53"}, {"@" + netns.ServerV6, "AAAA", "fd53::53"}} {
		if got := n.kdig(t, "+tcp", q[0], "www.e2e.test", q[1]); got != q[2] {
			t.Errorf("kdig +tcp %s %s: %q, want %s", q[0], q[1], got, q[2])
		}
		tcpSent++
	}

	// Every UDP answer went through the XDP rings, and none through the
	// socket workers listening on the same addresses and port: a silent
	// fallback to the kernel sockets fails here.
	var stats control.Stats
	d.ringctlJSON("stats", &stats)
	var xdpQueries, udpQueries, tcpQueries uint64
	perQueue := map[int]uint64{}
	for _, w := range stats.Workers {
		t.Logf("worker %s (%s, %s, queue %d): %d queries, %d replies; AF_XDP %+v",
			w.Name, w.Kind, w.Listen, w.Queue, w.Queries, w.Replies, w.XDP)
		switch w.Kind {
		case "xdp":
			xdpQueries += w.Queries
			if w.XDP == nil {
				t.Errorf("worker %s has no AF_XDP statistics", w.Name)
				continue
			}
			if w.XDP.TxPackets != w.Replies {
				t.Errorf("worker %s: %d replies counted, %d put on its TX ring", w.Name, w.Replies, w.XDP.TxPackets)
			}
			if w.SendErrs != 0 || w.XDP.TxRingFull != 0 || w.XDP.TxInvalidDescs != 0 {
				t.Errorf("worker %s: %d send errors, %d TX ring full, %d invalid TX descriptors",
					w.Name, w.SendErrs, w.XDP.TxRingFull, w.XDP.TxInvalidDescs)
			}
			perQueue[w.Queue] += w.XDP.TxPackets
		case "udp":
			udpQueries += w.Queries
		case "tcp":
			tcpQueries += w.Queries
		}
	}
	if udpQueries != 0 {
		t.Errorf("the kernel socket workers answered %d UDP queries: the XDP program passed them instead of redirecting", udpQueries)
	}
	// kdig retries after a timeout, so the rings may have answered more
	// than were counted as sent, never fewer.
	if xdpQueries < uint64(sent) {
		t.Errorf("the XDP workers answered %d queries, %d were sent and answered", xdpQueries, sent)
	}
	if tcpQueries < uint64(tcpSent) || stats.TCP.Accepted < uint64(tcpSent) {
		t.Errorf("TCP: %d queries and %d connections counted, want at least %d", tcpQueries, stats.TCP.Accepted, tcpSent)
	}
	// veth records the receive queue of a frame only on its NAPI path,
	// which a driver-mode program enables; generic mode sees every frame
	// as arriving on queue 0, so only driver mode spreads the flows.
	queues := []int{0, 1}
	if mode == "generic" {
		queues = []int{0}
	}
	for _, q := range queues {
		if perQueue[q] == 0 {
			t.Errorf("queue %d sent no reply through its TX ring (per-queue replies: %v)", q, perQueue)
		}
	}

	// The metrics endpoint, fetched over TCP from the client, reports the
	// same AF_XDP traffic.
	body, err := n.scrapeMetrics()
	if err != nil {
		t.Fatalf("metrics over TCP with the XDP program attached: %v", err)
	}
	metrics := parseMetrics(t, body)
	var metricTx float64
	for _, q := range []int{0, 1} {
		v, n := sumMetric(metrics, "ringdns_xdp_tx_packets_total", fmt.Sprintf(`worker="xdp%d"`, q))
		if n == 0 {
			t.Errorf("metrics have no ringdns_xdp_tx_packets_total for worker xdp%d", q)
		}
		metricTx += v
	}
	if metricTx < float64(sent) {
		t.Errorf("metrics: %v replies on the TX rings, want at least %d", metricTx, sent)
	}

	// kill -9 gives the daemon no chance to detach: the kernel must drop
	// the program with the bpf_link when the process dies.
	if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-d.exited
	var show string
	if !poll(5*time.Second, func() bool {
		show = n.linkShow(t)
		return !strings.Contains(show, "prog/xdp") && !strings.Contains(show, " xdp ")
	}) {
		t.Fatalf("XDP program still attached to %s 5 s after kill -9:\n%s", n.ServerIf, show)
	}
	// With the program gone the kernel handles port 53 again, and nothing
	// listens there any more.
	if err := netns.Do(n.ClientNS, func() error {
		c := &dns.Client{Net: "udp", Timeout: time.Second}
		m := new(dns.Msg)
		m.SetQuestion("www.e2e.test.", dns.TypeA)
		if _, _, err := c.Exchange(m, netns.ServerV4+":53"); err == nil {
			return errors.New("a query was answered after the daemon was killed")
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}
