//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/ringdns/ringdns/controlplane"
)

// The AF_XDP end-to-end test runs the daemon in a network namespace of its
// own, attached to one end of a two-queue veth pair, and queries it from a
// second namespace at the other end. Only addresses of the benchmarking
// ranges are used, and only inside those namespaces.
const (
	xdpServerV4 = "198.18.0.1"
	xdpClientV4 = "198.18.0.2"
	xdpServerV6 = "fd53::1"
	xdpClientV6 = "fd53::2"
	xdpZone     = `$ORIGIN e2e.test.
$TTL 300
@    IN SOA ns1 hostmaster 1 3600 900 604800 300
@    IN NS  ns1
ns1  IN A    198.18.0.1
ns1  IN AAAA fd53::1
www  IN A    198.18.0.53
www  IN AAAA fd53::53
`
)

// requireXDPPrivileges skips the test unless it runs as root with iproute2,
// the only way to create the namespaces and attach XDP programs. Under
// CI=true, where the tests run as root, it never skips: it fails instead.
func requireXDPPrivileges(t *testing.T) {
	t.Helper()
	reason := ""
	if os.Geteuid() != 0 {
		reason = "needs root (network namespaces, CAP_BPF, CAP_NET_ADMIN, CAP_NET_RAW)"
	} else if _, err := exec.LookPath("ip"); err != nil {
		reason = "needs iproute2 (ip) to create network namespaces"
	}
	if reason == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("AF_XDP end-to-end test %s, and CI=true forbids skipping it", reason)
	}
	t.Skipf("skipping the AF_XDP end-to-end test: it %s", reason)
}

// xdpNet is a pair of namespaces joined by a two-queue veth pair.
type xdpNet struct {
	serverNS, clientNS string
	serverIf, clientIf string
}

var xdpNetSeq atomic.Int32

// xdpRun runs a command and fails the test with its output if it fails.
func xdpRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newXDPNet(t *testing.T) *xdpNet {
	t.Helper()
	id := fmt.Sprintf("%d-%d", os.Getpid()%100000, xdpNetSeq.Add(1))
	n := &xdpNet{
		serverNS: "rde-" + id + "-s", clientNS: "rde-" + id + "-c",
		serverIf: "rdes" + id, clientIf: "rdec" + id,
	}
	if len(n.serverIf) > 15 {
		n.serverIf, n.clientIf = n.serverIf[:15], n.clientIf[:15]
	}
	// Deleting the namespaces deletes the veth pair and whatever was left
	// attached to it; registered first, so it runs after the daemon's
	// cleanup has killed it.
	xdpRun(t, "ip", "netns", "add", n.serverNS)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.serverNS).Run() })
	xdpRun(t, "ip", "netns", "add", n.clientNS)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.clientNS).Run() })
	xdpRun(t, "ip", "-n", n.serverNS, "link", "add", n.serverIf, "numtxqueues", "2", "numrxqueues", "2",
		"type", "veth", "peer", "name", n.clientIf, "netns", n.clientNS, "numtxqueues", "2", "numrxqueues", "2")
	for _, s := range []struct{ ns, dev, v4, v6 string }{
		{n.serverNS, n.serverIf, xdpServerV4 + "/24", xdpServerV6 + "/64"},
		{n.clientNS, n.clientIf, xdpClientV4 + "/24", xdpClientV6 + "/64"},
	} {
		xdpRun(t, "ip", "-n", s.ns, "addr", "add", s.v4, "dev", s.dev)
		// nodad: the daemon binds the address at once, which a tentative
		// address refuses.
		xdpRun(t, "ip", "-n", s.ns, "addr", "add", s.v6, "dev", s.dev, "nodad")
		xdpRun(t, "ip", "-n", s.ns, "link", "set", "lo", "up")
		xdpRun(t, "ip", "-n", s.ns, "link", "set", s.dev, "up")
	}
	return n
}

// xdpInNS runs fn on an OS thread switched into the named namespace. Sockets
// that fn creates belong to that namespace for their whole life. A thread
// that cannot be switched back stays locked, so the runtime retires it.
func xdpInNS(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open("/var/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns back from %s: %w", name, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// xdpLog collects the daemon's output for the test log.
type xdpLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *xdpLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *xdpLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// xdpDaemon is ringdns running inside the server namespace.
type xdpDaemon struct {
	cmd     *exec.Cmd
	control string
	out     *xdpLog
	exited  chan struct{}
	waitErr error
}

// startXDPDaemon runs ringdns -xdp in the server namespace with a
// configuration that listens on the server's addresses (socket workers on
// port 53, and the XDP program redirecting that port) in the given attach
// mode, and waits until its control socket answers.
func startXDPDaemon(t *testing.T, n *xdpNet, mode string) *xdpDaemon {
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
`, xdpServerV4, xdpServerV6, control, xdpServerV4, zoneFile, mode)
	confFile := filepath.Join(dir, "ringdns.toml")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &xdpDaemon{control: control, out: &xdpLog{}, exited: make(chan struct{})}
	// ip netns exec switches namespace and execs the program, so the PID
	// started here is the daemon's own and signals reach it directly.
	d.cmd = exec.Command("ip", "netns", "exec", n.serverNS, ringdnsBin, "-config", confFile, "-xdp", n.serverIf)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.waitErr = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		if !d.hasExited() {
			d.cmd.Process.Kill()
			<-d.exited
		}
		if t.Failed() {
			t.Logf("ringdns output:\n%s", d.out.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if d.hasExited() {
			t.Fatalf("ringdns exited during startup: %v\n%s", d.waitErr, d.out.String())
		}
		if c, err := controlplane.DialControl(control, 2*time.Second); err == nil {
			rep, err := c.Do(controlplane.Request{Cmd: controlplane.CmdStatus}, nil)
			c.Close()
			if err == nil && rep.OK {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("ringdns control socket not ready after 20 s\n%s", d.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (d *xdpDaemon) hasExited() bool {
	select {
	case <-d.exited:
		return true
	default:
		return false
	}
}

// ringctlJSON runs ringctl -json CMD and decodes the reply's data into v.
func (d *xdpDaemon) ringctlJSON(t *testing.T, cmd string, v any) {
	t.Helper()
	out, err := exec.Command(ringctlBin, "-s", d.control, "-json", cmd).CombinedOutput()
	if err != nil {
		t.Fatalf("ringctl -json %s: %v\n%s", cmd, err, out)
	}
	var rep struct {
		OK   bool            `json:"ok"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(out, &rep); err != nil || !rep.OK {
		t.Fatalf("ringctl -json %s: %v\n%s", cmd, err, out)
	}
	if err := json.Unmarshal(rep.Data, v); err != nil {
		t.Fatalf("ringctl -json %s: decoding the data: %v\n%s", cmd, err, out)
	}
}

// xdpGoQueries sends count A (to the IPv4 address) or AAAA (to the IPv6
// address) queries for www.e2e.test from the client namespace with a
// miekg/dns client. Each exchange dials a new socket, so each query comes
// from its own source port and the flows hash over both queues. It returns
// how many queries were sent and an error describing the first wrong or
// missing answer.
func xdpGoQueries(n *xdpNet, v6 bool, count int) (sent int, err error) {
	server, qtype, want := xdpServerV4+":53", dns.TypeA, "198.18.0.53"
	if v6 {
		server, qtype, want = "["+xdpServerV6+"]:53", dns.TypeAAAA, "fd53::53"
	}
	err = xdpInNS(n.clientNS, func() error {
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
	args = append([]string{"netns", "exec", n.clientNS, kdig, "+short", "+time=3", "+retry=1"}, args...)
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("kdig %s: %v\n%s", strings.Join(args[3:], " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// ping sends ICMP or ICMPv6 echo requests from the client namespace until
// one is answered, at most three of them, 1 s apart.
func (n *xdpNet) ping(dst netip.Addr) error {
	var fd int
	err := xdpInNS(n.clientNS, func() error {
		var err error
		if dst.Is4() {
			fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
		} else {
			// The kernel computes the checksum of raw ICMPv6 sockets.
			fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6)
		}
		return err
	})
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	tv := unix.Timeval{Sec: 1}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return err
	}
	var sa unix.Sockaddr = &unix.SockaddrInet6{Addr: dst.As16()}
	reqType, replyType := byte(128), byte(129)
	if dst.Is4() {
		sa = &unix.SockaddrInet4{Addr: dst.As4()}
		reqType, replyType = 8, 0
	}
	id := uint16(os.Getpid())
	buf := make([]byte, 1500)
	for seq := uint16(1); seq <= 3; seq++ {
		req := []byte{reqType, 0, 0, 0, byte(id >> 8), byte(id), byte(seq >> 8), byte(seq), 'r', 'd', 'e', 0}
		if dst.Is4() {
			binary.BigEndian.PutUint16(req[2:4], xdpICMPChecksum(req))
		}
		if err := unix.Sendto(fd, req, 0, sa); err != nil {
			return err
		}
		for {
			k, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				break // timed out: the next sequence number
			}
			b := buf[:k]
			if dst.Is4() && k >= 20 {
				b = b[int(b[0]&0x0f)*4:] // raw IPv4 sockets include the IP header
			}
			if len(b) >= 8 && b[0] == replyType && binary.BigEndian.Uint16(b[4:6]) == id &&
				binary.BigEndian.Uint16(b[6:8]) == seq {
				return nil
			}
		}
	}
	return errors.New("no echo reply to 3 requests")
}

func xdpICMPChecksum(b []byte) uint16 {
	var s uint32
	for ; len(b) >= 2; b = b[2:] {
		s += uint32(b[0])<<8 | uint32(b[1])
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// scrapeMetrics fetches the daemon's metrics from the client namespace over
// TCP, which also proves that TCP to the server's address reaches the
// kernel past the XDP program.
func (n *xdpNet) scrapeMetrics() (string, error) {
	var conn net.Conn
	if err := xdpInNS(n.clientNS, func() error {
		var err error
		conn, err = net.DialTimeout("tcp", xdpServerV4+":9153", 10*time.Second)
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
	return string(body), nil
}

// xdpMetricValue returns the value of one sample in Prometheus text format.
func xdpMetricValue(body, name, labels string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(body))
	prefix := name + "{" + labels + "} "
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// linkShow returns ip -d link show of the server interface.
func (n *xdpNet) linkShow(t *testing.T) string {
	t.Helper()
	return xdpRun(t, "ip", "-n", n.serverNS, "-d", "link", "show", "dev", n.serverIf)
}

var xdpMACRE = regexp.MustCompile(`link/ether ([0-9a-f:]{17})`)

func TestXDPDaemon(t *testing.T) {
	requireXDPPrivileges(t)
	requireTool(t, "kdig")
	for _, mode := range []string{"driver", "generic"} {
		t.Run(mode, func(t *testing.T) { testXDPDaemon(t, mode) })
	}
}

func testXDPDaemon(t *testing.T, mode string) {
	n := newXDPNet(t)
	d := startXDPDaemon(t, n, mode)

	var st controlplane.Status
	d.ringctlJSON(t, "status", &st)
	wantPlane := fmt.Sprintf("AF_XDP on %s (%s mode, 2 queues", n.serverIf, mode)
	if !strings.HasPrefix(st.DataPlane, wantPlane) {
		t.Fatalf("status data plane %q, want it to start with %q", st.DataPlane, wantPlane)
	}
	if show := n.linkShow(t); !strings.Contains(show, "prog/xdp") || !strings.Contains(show, "ringdns_xdp") {
		t.Fatalf("no ringdns_xdp program on %s after start:\n%s", n.serverIf, show)
	}
	m := xdpMACRE.FindStringSubmatch(n.linkShow(t))
	if m == nil {
		t.Fatalf("no MAC address in ip link show of %s", n.serverIf)
	}
	serverMAC := m[1]

	// The neighbour tables start empty, so the first query of each family
	// waits for ARP or neighbour discovery, which the XDP program must pass
	// to the server's kernel.
	xdpRun(t, "ip", "-n", n.clientNS, "neigh", "flush", "dev", n.clientIf)

	// UDP: kdig and the Go client, both families, many source ports.
	sent := 0
	for i := 0; i < 6; i++ {
		if got := n.kdig(t, "@"+xdpServerV4, "www.e2e.test", "A"); got != "198.18.0.53" {
			t.Fatalf("kdig A over IPv4: %q, want 198.18.0.53", got)
		}
		if got := n.kdig(t, "@"+xdpServerV6, "www.e2e.test", "AAAA"); got != "fd53::53" {
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
	neigh := xdpRun(t, "ip", "-n", n.clientNS, "neigh", "show", "dev", n.clientIf)
	for _, a := range []string{xdpServerV4, xdpServerV6} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(a) + ` lladdr ` + serverMAC).MatchString(neigh) {
			t.Errorf("client has no neighbour entry %s lladdr %s:\n%s", a, serverMAC, neigh)
		}
	}
	// ICMP echo is answered by the kernel.
	for _, a := range []string{xdpServerV4, xdpServerV6} {
		if err := n.ping(netip.MustParseAddr(a)); err != nil {
			t.Errorf("ping %s with the XDP program attached: %v", a, err)
		}
	}
	// TCP to port 53 reaches the daemon's TCP listener through the kernel.
	tcpSent := 0
	for _, q := range [][]string{{"@" + xdpServerV4, "A", "198.18.0.53"}, {"@" + xdpServerV6, "AAAA", "fd53::53"}} {
		if got := n.kdig(t, "+tcp", q[0], "www.e2e.test", q[1]); got != q[2] {
			t.Errorf("kdig +tcp %s %s: %q, want %s", q[0], q[1], got, q[2])
		}
		tcpSent++
	}

	// Every UDP answer went through the XDP rings, and none through the
	// socket workers listening on the same addresses and port: a silent
	// fallback to the kernel sockets fails here.
	var stats controlplane.Stats
	d.ringctlJSON(t, "stats", &stats)
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
	var metricTx float64
	for _, q := range []int{0, 1} {
		v, ok := xdpMetricValue(body, "ringdns_xdp_tx_packets_total", fmt.Sprintf(`worker="xdp%d"`, q))
		if !ok {
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
	deadline := time.Now().Add(5 * time.Second)
	for {
		show := n.linkShow(t)
		if !strings.Contains(show, "prog/xdp") && !strings.Contains(show, " xdp ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("XDP program still attached to %s 5 s after kill -9:\n%s", n.serverIf, show)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// With the program gone the kernel handles port 53 again, and nothing
	// listens there any more.
	if err := xdpInNS(n.clientNS, func() error {
		c := &dns.Client{Net: "udp", Timeout: time.Second}
		m := new(dns.Msg)
		m.SetQuestion("www.e2e.test.", dns.TypeA)
		if _, _, err := c.Exchange(m, xdpServerV4+":53"); err == nil {
			return errors.New("a query was answered after the daemon was killed")
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}
