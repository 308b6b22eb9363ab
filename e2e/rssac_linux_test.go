//go:build linux

package e2e

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/controlplane/control"
	"github.com/ringdns/ringdns/internal/netns"
	"github.com/ringdns/ringdns/internal/netns/netnstest"
	"github.com/ringdns/ringdns/internal/testenv"
)

// rssmPlugin is where Debian's dnscap package installs its RSSAC002
// plugin.
const rssmPlugin = "/usr/lib/x86_64-linux-gnu/dnscap/rssm.so"

// rssacZone answers the test's mix: an address, texts of five lengths
// for a spread of response sizes (the longest truncated without EDNS), and
// NXDOMAIN below.
var rssacZone = func() string {
	var b strings.Builder
	b.WriteString(`$ORIGIN rssac.test.
$TTL 300
@	SOA	ns.rssac.test. hostmaster.rssac.test. 1 3600 600 86400 300
@	NS	ns
ns	A	198.18.0.1
www	A	198.18.0.53
www	AAAA	fd53::53
`)
	for i, n := range []int{10, 100, 300, 600, 1100} {
		fmt.Fprintf(&b, "t%d\tTXT\t", i)
		for n > 0 {
			k := min(n, 200)
			fmt.Fprintf(&b, "%q ", strings.Repeat("x", k))
			n -= k
		}
		b.WriteString("\n")
	}
	return b.String()
}()

// rssacQuery is query kind k of the mix for source i: NOERROR without
// EDNS, NXDOMAIN with EDNS, texts of several sizes with EDNS and DO,
// REFUSED (outside the zone), BADVERS (EDNS version 1, extended rcode 16)
// and a text too long for a reply without EDNS (TC).
func rssacQuery(k, i int) *dns.Msg {
	m := new(dns.Msg)
	switch k % 6 {
	case 0:
		m.SetQuestion("www.rssac.test.", dns.TypeA)
	case 1:
		m.SetQuestion(fmt.Sprintf("nx-%d.rssac.test.", i), dns.TypeA)
		m.SetEdns0(1232, false)
	case 2:
		m.SetQuestion(fmt.Sprintf("t%d.rssac.test.", i%5), dns.TypeTXT)
		m.SetEdns0(4096, i%2 == 1)
	case 3:
		m.SetQuestion("example.org.", dns.TypeA)
	case 4:
		m.SetQuestion("www.rssac.test.", dns.TypeAAAA)
		m.SetEdns0(1232, false)
		m.IsEdns0().SetVersion(1)
	case 5:
		m.SetQuestion("t4.rssac.test.", dns.TypeTXT)
	}
	m.RecursionDesired = false
	return m
}

// rssacDocs parses RSSAC002 YAML documents of the flat form dnscap and
// ringdns write (a mapping per document, one level of nested mappings)
// into metric -> key -> value, a nested key written "outer/inner".
func rssacDocs(t *testing.T, text string) map[string]map[string]string {
	t.Helper()
	docs := map[string]map[string]string{}
	var cur map[string]string
	outer := ""
	for _, line := range strings.Split(text, "\n") {
		if line == "" {
			continue
		}
		if line == "---" {
			cur, outer = map[string]string{}, ""
			continue
		}
		if cur == nil {
			t.Fatalf("YAML before the first ---: %q", line)
		}
		nested := strings.HasPrefix(line, "  ")
		k, v, ok := strings.Cut(strings.TrimSpace(line), ": ")
		if !ok {
			k, v = strings.TrimSuffix(strings.TrimSpace(line), ":"), ""
		}
		switch {
		case nested:
			cur[outer+"/"+k] = v
		case v == "":
			outer = k
		case v == "{}":
		default:
			cur[k] = v
			if k == "metric" {
				docs[v] = cur
			}
		}
	}
	return docs
}

// TestRSSACDnscap checks ringdns's RSSAC002 documents against DNS-OARC's
// dnscap with its rssm plugin, run over a capture of the same traffic: a
// mix of rcodes and sizes over UDP from 2,000 IPv4 and 1,000 IPv6 sources
// (in 198.18.128.0/17 and fd53::1:0:0/96, routed to the client namespace's
// loopback so that one process can send from any of them) and over TCP
// from 20 of each; -short sends a fifth. traffic-volume, traffic-sizes
// and rcode-volume must agree exactly, unique-sources within 2% (ringdns
// estimates, dnscap counts every address). The IPv6 sources are all in
// fd53::/64, so the /64 aggregate is 1 on both sides; TestSketchAccuracy
// covers many /64s.
//
// tcpdump captures, and says when it listens, so that the capture holds
// every packet ringdns counts; dnscap then reads the file (live, it says
// nothing when it starts listening and misses what came before). Over
// kernel sockets the capture is on the server's interface. Over AF_XDP
// the server's kernel never sees the UDP packets the XDP program
// redirects, so the capture is on the client's end of the veth, which
// carries both directions.
func TestRSSACDnscap(t *testing.T) {
	netnstest.Require(t)
	dnscap := testenv.RequireTool(t, "dnscap", "apt-get install dnscap")
	tcpdump := testenv.RequireTool(t, "tcpdump", "apt-get install tcpdump")
	if _, err := os.Stat(rssmPlugin); err != nil {
		testenv.Require(t, fmt.Errorf("dnscap's rssm plugin at %s (apt-get install dnscap): %w", rssmPlugin, err))
	}
	for _, mode := range []string{"sockets", "xdp"} {
		t.Run(mode, func(t *testing.T) { testRSSACDnscap(t, dnscap, tcpdump, mode) })
	}
}

func testRSSACDnscap(t *testing.T, dnscap, tcpdump, mode string) {
	n := netnstest.NewPair(t, netns.Config{Name: "rss", Queues: 1})
	for _, cmd := range [][]string{
		{"ip", "-n", n.ClientNS, "route", "add", "local", "198.18.128.0/17", "dev", "lo"},
		{"ip", "-n", n.ClientNS, "-6", "route", "add", "local", "fd53::1:0:0/96", "dev", "lo"},
		// IPv6 binds only to assigned addresses unless told otherwise;
		// IPv4 takes the local route as enough.
		{"ip", "netns", "exec", n.ClientNS, "sysctl", "-qw", "net.ipv6.ip_nonlocal_bind=1"},
		{"ip", "-n", n.ServerNS, "route", "add", "198.18.128.0/17", "via", netns.ClientV4},
		{"ip", "-n", n.ServerNS, "-6", "route", "add", "fd53::1:0:0/96", "via", netns.ClientV6},
	} {
		netnstest.Run(t, cmd[0], cmd[1:]...)
	}
	dir := t.TempDir()
	zoneFile := filepath.Join(dir, "rssac.test.zone")
	if err := os.WriteFile(zoneFile, []byte(rssacZone), 0o644); err != nil {
		t.Fatal(err)
	}
	ctl := filepath.Join(dir, "control.sock")
	conf := fmt.Sprintf(`[server]
listen = ["%s:53", "[%s]:53"]
control = %q

[[zone]]
origin = "rssac.test."
file = %q

[rssac002]
service = "test"
dir = %q
`, netns.ServerV4, netns.ServerV6, ctl, zoneFile, filepath.Join(dir, "rssac002"))
	if mode == "xdp" {
		conf += "\n[xdp]\nmode = \"driver\"\n"
	}
	confFile := filepath.Join(dir, "ringdns.toml")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}

	// The packets are captured with tcpdump first, which says when it is
	// listening, so that the capture holds everything ringdns will count,
	// and dnscap reads the capture afterwards (dnscap capturing live says
	// nothing when it starts, and misses the packets before).
	capNS, capIf := n.ServerNS, n.ServerIf
	if mode == "xdp" {
		capNS, capIf = n.ClientNS, n.ClientIf
	}
	pcap := filepath.Join(dir, "capture.pcap")
	capOut := &syncBuffer{}
	capCmd := netns.Command(capNS, tcpdump, "-n", "-i", capIf, "-w", pcap, "-U", "--immediate-mode", "-B", "65536", "-Z", "root", "port", "53")
	capCmd.Stdout, capCmd.Stderr = capOut, capOut
	if err := capCmd.Start(); err != nil {
		t.Fatal(err)
	}
	capDone := make(chan error, 1)
	go func() { capDone <- capCmd.Wait() }()
	t.Cleanup(func() {
		capCmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-capDone:
		case <-time.After(10 * time.Second):
			capCmd.Process.Kill()
		}
	})
	if !poll(20*time.Second, func() bool { return strings.Contains(capOut.String(), "listening on") }) {
		t.Fatalf("tcpdump did not start listening:\n%s", capOut.String())
	}

	var args []string
	if mode == "xdp" {
		args = []string{"-xdp", n.ServerIf}
	}
	d := &daemon{t: t, dir: dir, control: ctl, out: &syncBuffer{}, exited: make(chan struct{})}
	d.run(netns.Command(n.ServerNS, append([]string{ringdnsBin, "-config", confFile}, args...)...), nil)

	sources4, sources6, tcpSources := 2000, 1000, 20
	if testing.Short() {
		sources4, sources6, tcpSources = 400, 200, 10
	}
	var lost int
	err := netns.Do(n.ClientNS, func() error {
		base4 := netip.MustParseAddr("198.18.128.0").As4()
		base6 := netip.MustParseAddr("fd53::1:0:0").As16()
		for i := range sources4 + sources6 {
			var src netip.Addr
			server := netip.AddrPortFrom(netip.MustParseAddr(netns.ServerV4), 53)
			if i < sources4 {
				a := base4
				a[2], a[3] = 128|byte(i>>8), byte(i)
				src = netip.AddrFrom4(a)
			} else {
				a := base6
				a[14], a[15] = byte(i>>8), byte(i)
				src = netip.AddrFrom16(a)
				server = netip.AddrPortFrom(netip.MustParseAddr(netns.ServerV6), 53)
			}
			c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)))
			if err != nil {
				return fmt.Errorf("source %v: %w", src, err)
			}
			for k := 2 * i; k < 2*i+2; k++ {
				q, err := rssacQuery(k, i).Pack()
				if err != nil {
					c.Close()
					return err
				}
				if _, err := c.WriteToUDPAddrPort(q, server); err != nil {
					c.Close()
					return fmt.Errorf("source %v: %w", src, err)
				}
				// Waiting for each reply keeps the server's socket
				// buffers from overflowing: a query dropped there would
				// be seen by dnscap but never by ringdns.
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				buf := make([]byte, 65535)
				if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
					// A lost reply still counts on both sides; many
					// mean the network is not as the test set it up.
					if lost++; lost > 20 {
						c.Close()
						return fmt.Errorf("source %v: more than 20 replies lost, the last: %w", src, err)
					}
				}
			}
			c.Close()
			if i < tcpSources || i >= sources4 && i < sources4+tcpSources {
				cl := &dns.Client{Net: "tcp", Timeout: 3 * time.Second,
					Dialer: &net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, 0)), Timeout: 3 * time.Second}}
				if _, _, err := cl.Exchange(rssacQuery(2, i), server.String()); err != nil {
					return fmt.Errorf("TCP from %v: %w", src, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if lost > 0 {
		// A lost reply is still counted by both sides; it is only worth
		// a line in the log.
		t.Logf("%d UDP replies not received within 2 s", lost)
	}
	// The last replies reach the capture within microseconds; a second
	// leaves a loaded machine plenty.
	time.Sleep(time.Second)
	capCmd.Process.Signal(syscall.SIGINT)
	select {
	case <-capDone:
	case <-time.After(20 * time.Second):
		t.Fatalf("tcpdump did not stop\n%s", capOut.String())
	}
	if !strings.Contains(capOut.String(), "\n0 packets dropped by kernel") {
		t.Fatalf("tcpdump lost packets:\n%s", capOut.String())
	}
	prefix := filepath.Join(dir, "rssm")
	rssm := exec.Command(dnscap, "-N", "-T", "-r", pcap, "-e", "ny", "-s", "ir",
		"-P", rssmPlugin, "-w", prefix, "-Y", "-n", "test", "-D")
	if out, err := rssm.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(rssm.Args, " "), err, out)
	}
	files, _ := filepath.Glob(prefix + ".*")
	if len(files) != 1 {
		t.Fatalf("dnscap wrote %v", files)
	}
	theirsText, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var rep control.RSSACReport
	d.ringctlJSON("rssac002", &rep)
	ours, theirs := rssacDocs(t, rep.YAML), rssacDocs(t, string(theirsText))
	t.Logf("ringdns:\n%s", rep.YAML)
	t.Logf("dnscap:\n%s", theirsText)

	for _, metric := range []string{"traffic-volume", "traffic-sizes", "rcode-volume"} {
		o, th := ours[metric], theirs[metric]
		if o == nil || th == nil {
			t.Errorf("%s: ringdns %v, dnscap %v", metric, o != nil, th != nil)
			continue
		}
		keys := map[string]bool{}
		for k := range o {
			keys[k] = true
		}
		for k := range th {
			keys[k] = true
		}
		var sorted []string
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			switch k {
			case "version", "service", "start-period", "metric":
				continue
			}
			if o[k] != th[k] && !(o[k] == "0" && th[k] == "") && !(o[k] == "" && th[k] == "0") {
				t.Errorf("%s %s: ringdns %q, dnscap %q", metric, k, o[k], th[k])
			}
		}
	}
	for _, c := range []struct {
		key  string
		want int
	}{{"num-sources-ipv4", sources4}, {"num-sources-ipv6", sources6}, {"num-sources-ipv6-aggregate", 1}} {
		o, err1 := strconv.ParseFloat(ours["unique-sources"][c.key], 64)
		th, err2 := strconv.ParseFloat(theirs["unique-sources"][c.key], 64)
		switch {
		case err1 != nil || err2 != nil:
			t.Errorf("unique-sources %s: ringdns %q, dnscap %q", c.key, ours["unique-sources"][c.key], theirs["unique-sources"][c.key])
		case th != float64(c.want):
			// dnscap counts every address: this is the test's own error.
			t.Errorf("unique-sources %s: dnscap %v, want %d", c.key, th, c.want)
		case math.Abs(o-th)/th > 0.02:
			t.Errorf("unique-sources %s: ringdns %v, dnscap %v: more than 2%% apart", c.key, o, th)
		default:
			t.Logf("unique-sources %s: ringdns %v, dnscap %v (%+.2f%%)", c.key, o, th, 100*(o-th)/th)
		}
	}
	if v := ours["traffic-volume"]["dns-udp-queries-received-ipv4"]; v != strconv.Itoa(2*sources4) {
		t.Errorf("ringdns counted %s UDP IPv4 queries of %d sent", v, 2*sources4)
	}
}
