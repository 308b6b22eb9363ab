package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/controlplane/control"
	"github.com/ringdns/ringdns/internal/netns"
	"github.com/ringdns/ringdns/internal/netns/netnstest"
)

// TestDnstapXDP: the AF_XDP workers log what they answer as the socket
// workers do, with the address the query was sent to read from the
// frame's headers (response_address), on both families; dnstap-ldns reads
// the file.
func TestDnstapXDP(t *testing.T) {
	netnstest.Require(t)
	_, ldns := tapTools(t)
	n := newXDPNet(t)
	dir := t.TempDir()
	zoneFile := filepath.Join(dir, "e2e.test.zone")
	if err := os.WriteFile(zoneFile, []byte(xdpZone), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "tap.fstrm")
	ctl := filepath.Join(dir, "control.sock")
	conf := fmt.Sprintf("[server]\nlisten = [\"%s:53\", \"[%s]:53\"]\ncontrol = %q\n\n[[zone]]\norigin = \"e2e.test.\"\nfile = %q\n\n"+
		"[xdp]\nmode = \"driver\"\n\n[dnstap]\nfile = %q\nidentity = \"xdp\"\nversion = \"v\"\n",
		netns.ServerV4, netns.ServerV6, ctl, zoneFile, file)
	confFile := filepath.Join(dir, "ringdns.toml")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, dir: dir, control: ctl, out: &syncBuffer{}, exited: make(chan struct{})}
	d.run(netns.Command(n.ServerNS, ringdnsBin, "-config", confFile, "-xdp", n.ServerIf), nil)

	var want []tapRecord
	err := netns.Do(n.ClientNS, func() error {
		for i := range 8 {
			server, qtype := netip.MustParseAddrPort(netns.ServerV4+":53"), dns.TypeA
			if i%2 == 1 {
				server, qtype = netip.AddrPortFrom(netip.MustParseAddr(netns.ServerV6), 53), dns.TypeAAAA
			}
			name := "www.e2e.test."
			if i%4 >= 2 {
				name = fmt.Sprintf("nothere%d.e2e.test.", i)
			}
			aq, ar, err := tapExchange(server, false, name, qtype, "xdp", "v")
			if err != nil {
				return err
			}
			want = append(want, aq, ar)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var st control.Stats
	d.ringctlJSON("stats", &st)
	xdp := uint64(0)
	for _, w := range st.Workers {
		if w.Kind == "xdp" {
			xdp += w.Counters.Queries
		}
	}
	if xdp != 8 {
		t.Fatalf("the AF_XDP workers answered %d queries of 8", xdp)
	}
	if err := d.stop(); err != nil {
		t.Fatalf("ringdns: %v", err)
	}
	compareTap(t, readTap(t, ldns, file), want)
}
