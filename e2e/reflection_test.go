package e2e

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/controlplane/control"
	"github.com/ringdns/ringdns/internal/testenv"
)

// TestReflectionPortDropped sends a query and a garbage datagram (which
// would get FORMERR) from UDP source port 7 (echo) over loopback, IPv4 and
// IPv6: the socket path must answer neither, since an echo service would
// send the reply straight back, and must count both as reflection-port
// drops in ringctl stats and in ringdns_drops_total.
func TestReflectionPortDropped(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "-zone", "example.="+exampleZone(), "-metrics", "127.0.0.1:0")
	q := new(dns.Msg)
	q.SetQuestion("www.example.", dns.TypeA)
	query, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	garbage := append(query[:12:12], 0xc0) // the header of a query, then a truncated name
	var conns []*net.UDPConn
	for _, v6 := range []bool{false, true} {
		server := d.addr(v6)
		local := netip.AddrPortFrom(server.Addr(), 7)
		c, err := net.ListenUDP(netOf(false, v6), net.UDPAddrFromAddrPort(local))
		switch {
		case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
			testenv.Require(t, fmt.Errorf("this test binds %s, which needs root or CAP_NET_BIND_SERVICE: %w", local, err))
		case errors.Is(err, syscall.EADDRINUSE):
			// An echo service of the host's own holds the port; the test
			// cannot borrow it.
			t.Skipf("skipping: %s is in use on this host: %v", local, err)
		case err != nil:
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
		for _, b := range [][]byte{query, garbage} {
			if _, err := c.WriteToUDPAddrPort(b, server); err != nil {
				t.Fatalf("sending from %s: %v", local, err)
			}
		}
	}
	const want = 4
	var s control.Stats
	if !poll(10*time.Second, func() bool {
		d.ctlJSON(&s, "stats")
		return s.Total.Drops["reflection-port"] >= want
	}) {
		t.Fatalf("ringctl stats counts %d reflection-port drops after 10 s, want %d (drops %v)", s.Total.Drops["reflection-port"], want, s.Total.Drops)
	}
	// A reply, had there been one, was sent right after the batch was
	// counted; a second is ample on a loaded machine.
	buf := make([]byte, 65535)
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(time.Second))
		if n, from, err := c.ReadFromUDPAddrPort(buf); err == nil {
			t.Errorf("%s got a reply of %d bytes from %s", c.LocalAddr(), n, from)
		}
	}
	if s.Total.Drops["reflection-port"] != want || s.Total.Replies != 0 {
		t.Errorf("stats: %d reflection-port drops and %d replies, want %d and 0", s.Total.Drops["reflection-port"], s.Total.Replies, want)
	}
	m, _ := scrape(t, d.status.Metrics)
	if v, n := sumMetric(m, "ringdns_drops_total", `reason="reflection-port"`); v != want || n == 0 {
		t.Errorf("ringdns_drops_total{reason=\"reflection-port\"} sums to %v over %d series, want %d", v, n, want)
	}
	// The same query from an ordinary port is answered.
	mustExchange(t, d.addr(false), false, "www.example.", dns.TypeA)
	d.alive()
}
