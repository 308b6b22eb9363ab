package netns_test

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ringdns/ringdns/internal/netns"
	"github.com/ringdns/ringdns/internal/netns/netnstest"
)

// namespaces returns the names ip netns list shows.
func namespaces(t *testing.T) []string {
	t.Helper()
	out, err := netns.Run("ip", "netns", "list")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

func hasNamespace(t *testing.T, prefix string) bool {
	t.Helper()
	for _, n := range namespaces(t) {
		if strings.HasPrefix(n, prefix) {
			return true
		}
	}
	return false
}

// TestNewPairRefusesConfig checks the configurations NewPair refuses
// before it creates anything, so it needs no privileges.
func TestNewPairRefusesConfig(t *testing.T) {
	for _, c := range []netns.Config{
		{Name: ""},
		{Name: "ninechars"},
		{Name: "Upper"},
		{Name: "a-b"},
		{Name: "ok", Queues: -1},
	} {
		if p, err := netns.NewPair(c); err == nil {
			p.Close()
			t.Errorf("netns.NewPair(%+v) succeeded, want an error", c)
		}
	}
}

func TestDoMissingNamespace(t *testing.T) {
	called := false
	err := netns.Do(fmt.Sprintf("netns-test-missing-%d", os.Getpid()), func() error {
		called = true
		return nil
	})
	if err == nil || called {
		t.Errorf("netns.Do in a namespace that does not exist: error %v, fn called %v; want an error and no call", err, called)
	}
}

func TestPair(t *testing.T) {
	netnstest.Require(t)
	p, err := netns.NewPair(netns.Config{Name: "nstest", Queues: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	for _, ns := range []string{p.ServerNS, p.ClientNS} {
		if !hasNamespace(t, ns) {
			t.Fatalf("namespace %s not in ip netns list %v", ns, namespaces(t))
		}
	}

	// Each end is in its own namespace with the configured queues, its
	// addresses and the state up.
	for _, s := range []struct{ ns, dev, v4, v6 string }{
		{p.ServerNS, p.ServerIf, netns.ServerV4 + "/24", netns.ServerV6 + "/64"},
		{p.ClientNS, p.ClientIf, netns.ClientV4 + "/24", netns.ClientV6 + "/64"},
	} {
		show, err := netns.Run("ip", "-n", s.ns, "-d", "link", "show", "dev", s.dev)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(show, "numtxqueues 3 numrxqueues 3") || !strings.Contains(show, "state UP") {
			t.Errorf("%s in %s is not up with 3 queues:\n%s", s.dev, s.ns, show)
		}
		var addrs []string
		if err := netns.Do(s.ns, func() error {
			ifi, err := net.InterfaceByName(s.dev)
			if err != nil {
				return err
			}
			as, err := ifi.Addrs()
			for _, a := range as {
				addrs = append(addrs, a.String())
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{s.v4, s.v6} {
			if !strings.Contains(strings.Join(addrs, " "), want) {
				t.Errorf("%s in %s has addresses %v, want %s among them", s.dev, s.ns, addrs, want)
			}
		}
		if _, err := netns.Run("ip", "link", "show", "dev", s.dev); err == nil {
			t.Errorf("%s exists in the test's own namespace", s.dev)
		}
	}

	// Do runs in the namespace and leaves the caller's thread alone.
	self, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	var inside string
	if err := netns.Do(p.ServerNS, func() error {
		var err error
		inside, err = os.Readlink("/proc/thread-self/ns/net")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if inside == self {
		t.Errorf("netns.Do ran fn in the caller's namespace %s", self)
	}
	if after, _ := os.Readlink("/proc/thread-self/ns/net"); after != self {
		t.Errorf("the caller's namespace changed from %s to %s", self, after)
	}
	wantErr := fmt.Errorf("from fn")
	if err := netns.Do(p.ServerNS, func() error { return wantErr }); err != wantErr {
		t.Errorf("netns.Do returned %v, want fn's error", err)
	}

	// Both families reach the other end, in both directions.
	for _, c := range []struct{ ns, dst string }{
		{p.ClientNS, netns.ServerV4}, {p.ClientNS, netns.ServerV6}, {p.ServerNS, netns.ClientV4}, {p.ServerNS, netns.ClientV6},
	} {
		if err := netns.Ping(c.ns, netip.MustParseAddr(c.dst), 3, time.Second); err != nil {
			t.Errorf("ping %s from %s: %v", c.dst, c.ns, err)
		}
	}
	// A datagram from the client's socket arrives at the server's.
	for _, addr := range []string{netns.ServerV4 + ":5300", "[" + netns.ServerV6 + "]:5300"} {
		var srv, cli net.PacketConn
		if err := netns.Do(p.ServerNS, func() (err error) { srv, err = net.ListenPacket("udp", addr); return err }); err != nil {
			t.Fatal(err)
		}
		if err := netns.Do(p.ClientNS, func() (err error) { cli, err = net.ListenPacket("udp", ":0"); return err }); err != nil {
			srv.Close()
			t.Fatal(err)
		}
		ua, _ := net.ResolveUDPAddr("udp", addr)
		cli.WriteTo([]byte("hello"), ua)
		srv.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 64)
		n, from, err := srv.ReadFrom(buf)
		if err != nil || string(buf[:n]) != "hello" {
			t.Errorf("UDP to %s: %q from %v, %v", addr, buf[:n], from, err)
		}
		srv.Close()
		cli.Close()
	}

	// Command runs in the namespace, and HardwareAddr reads the same MAC.
	mac, err := netns.HardwareAddr(p.ServerNS, p.ServerIf)
	if err != nil {
		t.Fatal(err)
	}
	out, err := netns.Command(p.ServerNS, "cat", "/sys/class/net/"+p.ServerIf+"/address").Output()
	if err != nil || strings.TrimSpace(string(out)) != mac.String() {
		t.Errorf("cat the address of %s in %s: %q, %v; want %s", p.ServerIf, p.ServerNS, out, err, mac)
	}

	// PinNeighbours makes the other end's addresses permanent neighbours.
	if err := p.PinNeighbours(); err != nil {
		t.Fatal(err)
	}
	neigh, err := netns.Run("ip", "-n", p.ClientNS, "neigh", "show", "dev", p.ClientIf)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{netns.ServerV4, netns.ServerV6} {
		if !strings.Contains(neigh, a+" lladdr "+mac.String()+" PERMANENT") {
			t.Errorf("client has no permanent neighbour %s lladdr %s:\n%s", a, mac, neigh)
		}
	}

	if c := p.Counters(); !strings.Contains(c, p.ServerNS) || !strings.Contains(c, p.ClientIf) {
		t.Errorf("Counters does not cover both namespaces:\n%s", c)
	}

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{p.ServerNS, p.ClientNS} {
		if hasNamespace(t, ns) {
			t.Errorf("namespace %s still there after Close", ns)
		}
	}
	if err := p.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

// TestNewPairCleansUpAfterError makes NewPair fail after it has created
// both namespaces (the kernel refuses 5000 queues) and checks that it
// deleted them.
func TestNewPairCleansUpAfterError(t *testing.T) {
	netnstest.Require(t)
	prefix := fmt.Sprintf("nsfail-%d-", os.Getpid())
	p, err := netns.NewPair(netns.Config{Name: "nsfail", Queues: 5000})
	if err == nil {
		p.Close()
		t.Fatal("netns.NewPair with 5000 queues succeeded, want the kernel's refusal")
	}
	t.Logf("refusal: %v", err)
	if !strings.Contains(err.Error(), "queues") {
		t.Errorf("error %q does not name the queues", err)
	}
	if hasNamespace(t, prefix) {
		t.Errorf("netns.NewPair left a namespace %s* behind: %v", prefix, namespaces(t))
	}
}
