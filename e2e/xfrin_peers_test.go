package e2e

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
)

// TestXfrInPeers: NSD and named as primaries with TSIG. ringdns transfers
// the zone, then a change on the primary reaches it by the primary's
// NOTIFY over UDP alone (IXFR from named; NSD 4.6 sends the whole zone),
// and its answers are then those of a ringdns that loaded the final file.
func TestXfrInPeers(t *testing.T) {
	t.Parallel()
	for _, kind := range []struct {
		name     string
		new      func(t *testing.T, port int, origin, text string, notifyTo netip.AddrPort) *peer
		wantKind string // the transfer after the change
	}{
		{"nsd", newNSDPrimary, "AXFR"},
		{"named", newNamedPrimary, "IXFR"},
	} {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			const origin = "peer.example."
			dir := t.TempDir()
			copyFile := filepath.Join(dir, "copy.zone")
			port := freePort(t)
			d := startDaemon(t, "-config", secondaryConfig(t, dir, origin, copyFile, loopback(port), xfrSecret))
			p := kind.new(t, port, origin, xfrZone(origin, 1), d.addr(false))
			p.start()

			d.refresh(origin)
			if !d.waitSerial(origin, 1, transferWait) {
				t.Fatalf("serial 1 not served within %v: %+v\n%s", transferWait, d.zoneStatus(origin), d.out.String())
			}
			final := xfrZone(origin, 2, "new  IN A 192.0.2.99", "www  IN AAAA 2001:db8::80")
			final = strings.Replace(final, "www  IN A   192.0.2.80", "www  IN A   192.0.2.81", 1)
			p.update(final)
			if !d.waitSerial(origin, 2, transferWait) {
				t.Fatalf("the primary's NOTIFY did not bring serial 2 within %v: %+v\n%s", transferWait, d.zoneStatus(origin), d.out.String())
			}
			st := d.zoneStatus(origin)
			if st.Notifies == 0 {
				t.Errorf("no NOTIFY counted: %+v", st)
			}
			if st.LastTransfer == nil || st.LastTransfer.Kind != kind.wantKind || st.LastTransfer.Result != "ok" {
				t.Errorf("the transfer after the change: %+v, want %s", st.LastTransfer, kind.wantKind)
			} else if kind.wantKind == "IXFR" && !appliedToServed(st.LastTransfer.Applied) {
				t.Errorf("the IXFR after the change was not applied to the version served: %+v", st.LastTransfer)
			}
			// A ringdns that loaded the final file answers the same.
			sameAnswersAsFile(t, d, "the transfer", dir, origin, final)
		})
	}
}
