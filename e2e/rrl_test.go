package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// rrlAsk sends n queries for the SOA of example. over UDP from one socket
// and counts the replies that carry the answer and the empty ones with TC
// set (slipped); with slip 1 every query gets one or the other.
func rrlAsk(t *testing.T, server netip.AddrPort, n int) (full, slipped int) {
	t.Helper()
	c, err := net.DialUDP(netOf(false, server.Addr().Is6()), nil, net.UDPAddrFromAddrPort(server))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 4096)
	for i := 0; i < n; i++ {
		q := new(dns.Msg)
		q.SetQuestion("example.", dns.TypeSOA)
		b, _ := q.Pack()
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(queryTimeout))
		m, err := c.Read(buf)
		if err != nil {
			t.Fatalf("query %d: %v (with slip 1 every query gets a reply)", i, err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:m]); err != nil || r.Id != q.Id {
			t.Fatalf("query %d: %v %v", i, r, err)
		}
		switch {
		case len(r.Answer) == 1 && !r.Truncated:
			full++
		case len(r.Answer)+len(r.Ns)+len(r.Extra) == 0 && r.Truncated && len(r.Question) == 1:
			slipped++
		default:
			t.Fatalf("query %d: neither the answer nor a slipped reply:\n%v", i, r)
		}
	}
	return full, slipped
}

// TestRRLDaemon: the daemon, configured with [rrl] rate 5 and burst 5
// and slip 1, serving over kernel sockets, answers a client over its rate
// with the burst and then empty TC=1 replies, counted in the metrics,
// while TCP stays unlimited; a SIGHUP after the table is removed from the
// file turns limiting off, and ringctl reload turns it on again.
func TestRRLDaemon(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	conf := filepath.Join(dir, "ringdns.toml")
	write := func(rrl string) {
		text := fmt.Sprintf("[[zone]]\norigin = \"example.\"\nfile = %q\n\n%s", exampleZone(), rrl)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const table = "[rrl]\nrate = 5\nburst = 5\nslip = 1\n"
	write(table)
	d := startDaemon(t, "-config", conf, "-metrics", "127.0.0.1:0")
	for _, v6 := range []bool{false, true} {
		// The burst of 5 is shared by the socket workers of the address
		// (one per CPU), one of which gets this socket's queries: at most
		// 5, and the rate's 5 per second more for each second the queries
		// take (milliseconds, unless the machine is very loaded).
		start := time.Now()
		full, slipped := rrlAsk(t, d.addr(v6), 40)
		if most := 6 + int(5*time.Since(start).Seconds()); full < 1 || full > most || slipped != 40-full {
			t.Errorf("v6 %v: %d answers and %d slipped of 40, want at most %d answers", v6, full, slipped, most)
		}
	}
	for i := 0; i < 10; i++ {
		if r := mustExchange(t, d.addr(false), true, "example.", dns.TypeSOA); len(r.Answer) != 1 || r.Truncated {
			t.Fatalf("TCP query %d while UDP is limited: %v", i, r)
		}
	}
	m, _ := scrape(t, d.status.Metrics)
	if n, _ := sumMetric(m, "ringdns_rrl_slipped_total", `class="answer"`); n < 68 {
		t.Errorf("ringdns_rrl_slipped_total{class=\"answer\"} %v, want at least 68", n)
	}
	if n, _ := sumMetric(m, "ringdns_rrl_limited_total"); n < 68 {
		t.Errorf("ringdns_rrl_limited_total %v, want at least 68", n)
	}

	write("")
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !poll(20*time.Second, func() bool { full, _ := rrlAsk(t, d.addr(false), 20); return full == 20 }) {
		t.Error("limiting still on 20 s after a SIGHUP with no [rrl] table")
	}
	write(table)
	if out, code := d.ringctl("reload"); code != 0 {
		t.Fatalf("ringctl reload: exit status %d\n%s", code, out)
	}
	start := time.Now()
	if full, _ := rrlAsk(t, d.addr(false), 40); full > 6+int(5*time.Since(start).Seconds()) {
		t.Errorf("after ringctl reload with the table back: %d answers of 40 in %v, want at most 6 and 5 a second", full, time.Since(start))
	}
	d.alive()
}
