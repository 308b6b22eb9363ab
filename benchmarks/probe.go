package main

import (
	"fmt"
	"net"
	"os"
	"time"

	"github.com/miekg/dns"
)

// probeMain sends an SOA query for zone to addr every 20 ms until any reply
// comes back (the null responder's REFUSED counts) or timeout passes, and
// exits 0 on a reply. The harness runs it inside the client namespace.
func probeMain(addr, zone string, timeout time.Duration) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(zone), dns.TypeSOA)
	q, err := m.Pack()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 65535)
	for time.Now().Before(deadline) {
		c, err := net.Dial("udp", addr)
		if err == nil {
			c.SetDeadline(time.Now().Add(20 * time.Millisecond))
			if _, err = c.Write(q); err == nil {
				var n int
				if n, err = c.Read(buf); err == nil && n >= 12 && buf[0] == q[0] && buf[1] == q[1] {
					c.Close()
					os.Exit(0)
				}
			}
			c.Close()
		}
		if err != nil {
			time.Sleep(20 * time.Millisecond)
		}
	}
	fmt.Fprintf(os.Stderr, "no reply from %s within %v\n", addr, timeout)
	os.Exit(1)
}
