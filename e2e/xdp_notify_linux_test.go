//go:build linux

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/controlplane/control"
	"github.com/ringdns/ringdns/internal/netns"
	"github.com/ringdns/ringdns/internal/netns/netnstest"
)

// TestXDPNotify sends a signed NOTIFY and a signed query to ringdns -xdp
// from the client namespace, IPv4 and IPv6: the AF_XDP workers hand them
// to the control plane (counted as hand-offs of the xdp workers), whose
// replies go out through the kernel's stack from the address the client
// asked, signed, and verified by miekg/dns's client.
func TestXDPNotify(t *testing.T) {
	netnstest.Require(t)
	n := newXDPNet(t)
	dir := t.TempDir()
	zoneFile := filepath.Join(dir, "e2e.test.zone")
	if err := os.WriteFile(zoneFile, []byte(xdpZone), 0o644); err != nil {
		t.Fatal(err)
	}
	ctlPath := filepath.Join(dir, "control.sock")
	// The client's addresses are the secondary zone's primaries: the
	// NOTIFY comes from them. Nothing serves the zone there, so the
	// refresh it starts fails; only the NOTIFY's reply is checked.
	conf := fmt.Sprintf(`[server]
listen = ["%s:53", "[%s]:53"]
control = %q

[[key]]
name = %q
algorithm = "hmac-sha256"
secret = %q

[[zone]]
origin = "e2e.test."
file = %q

[[zone]]
origin = "sec.test."
file = %q
primaries = ["%s:53", "[%s]:53"]
key = %q

[xdp]
mode = "driver"
`, netns.ServerV4, netns.ServerV6, ctlPath, xfrKeyName, xfrSecret, zoneFile,
		filepath.Join(dir, "sec.test.zone"), netns.ClientV4, netns.ClientV6, xfrKeyName)
	confFile := filepath.Join(dir, "ringdns.toml")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, dir: dir, control: ctlPath, out: &syncBuffer{}, exited: make(chan struct{})}
	d.run(netns.Command(n.ServerNS, ringdnsBin, "-config", confFile, "-xdp", n.ServerIf), nil)

	client := &dns.Client{Net: "udp", Timeout: 3 * time.Second, TsigSecret: map[string]string{xfrKeyName + ".": xfrSecret}}
	for _, server := range []string{netns.ServerV4 + ":53", "[" + netns.ServerV6 + "]:53"} {
		err := netns.Do(n.ClientNS, func() error {
			// The first exchange may wait for neighbour resolution; the
			// client's timeout and a retry cover it.
			var r *dns.Msg
			var err error
			for range 3 {
				m := new(dns.Msg)
				m.SetNotify("sec.test.")
				m.SetTsig(xfrKeyName+".", dns.HmacSHA256, 300, time.Now().Unix())
				if r, _, err = client.Exchange(m, server); err == nil {
					break
				}
			}
			if err != nil {
				return fmt.Errorf("NOTIFY to %s: %w", server, err)
			}
			if r.Rcode != dns.RcodeSuccess || !r.Authoritative || r.Opcode != dns.OpcodeNotify || r.IsTsig() == nil {
				return fmt.Errorf("NOTIFY to %s: reply\n%s", server, r)
			}
			q := new(dns.Msg)
			q.SetQuestion("www.e2e.test.", dns.TypeA)
			q.SetTsig(xfrKeyName+".", dns.HmacSHA256, 300, time.Now().Unix())
			if r, _, err = client.Exchange(q, server); err != nil {
				return fmt.Errorf("signed query to %s: %w", server, err)
			}
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.IsTsig() == nil {
				return fmt.Errorf("signed query to %s: reply\n%s", server, r)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var st control.Stats
	d.ringctlJSON("stats", &st)
	handed := uint64(0)
	for _, w := range st.Workers {
		if w.Kind == "xdp" {
			handed += w.Kinds["handoff"]
		}
	}
	if handed < 4 {
		t.Errorf("the xdp workers handed off %d messages, want at least 4: %+v", handed, st.Workers)
	}
}
