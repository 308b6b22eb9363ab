package e2e

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// The NOTIFY and TSIG tests over UDP (issue 13): the socket workers hand
// NOTIFY and signed messages to the control plane, which answers them from
// the address and port they were sent to.

// notifyConfig writes ringdns's configuration: the secondary zone
// sec.example. from primary, with the key xfr-key, and the primary zone
// example. from the example file.
func notifyConfig(t *testing.T, dir string, primary netip.AddrPort, metrics string) string {
	t.Helper()
	conf := fmt.Sprintf(`[server]
metrics = %q

[[key]]
name = %q
algorithm = "hmac-sha256"
secret = %q

[[zone]]
origin = "sec.example."
file = %q
primaries = [%q]
key = %q

[[zone]]
origin = "example."
file = %q
`, metrics, xfrKeyName, xfrSecret, filepath.Join(dir, "sec.example.zone"), primary.String(), xfrKeyName, exampleZone())
	path := filepath.Join(dir, "ringdns.toml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// rawExchange sends msg over UDP to addr and returns the reply unpacked,
// with its wire form, without checking its TSIG: miekg/dns's client
// refuses to send a message signed with a key it does not have.
func rawExchange(t *testing.T, addr netip.AddrPort, msg []byte) (*dns.Msg, []byte) {
	t.Helper()
	c, err := net.Dial("udp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no reply from %s: %v", addr, err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf[:n]); err != nil {
		t.Fatalf("reply from %s does not parse: %v", addr, err)
	}
	return r, buf[:n]
}

// signWith packs m signed with the key name and secret at time signed.
func signWith(t *testing.T, m *dns.Msg, name, secret string, signed time.Time) ([]byte, string) {
	t.Helper()
	m.SetTsig(name, dns.HmacSHA256, 300, signed.Unix())
	b, mac, err := dns.TsigGenerate(m, secret, "", false)
	if err != nil {
		t.Fatal(err)
	}
	return b, mac
}

// TestNotifyUDP sends NOTIFY and signed queries to a running ringdns over
// UDP, IPv4 and IPv6, with socket workers: a NOTIFY from the primary
// signed with the zone's key is accepted (NOERROR, AA, signed, and counted
// by zone-status), one unsigned or from elsewhere is REFUSED, one for a
// zone that is not a secondary here is NOTAUTH; a signed query gets a
// signed answer that miekg/dns verifies, and a wrong key, MAC or time gets
// NOTAUTH with BADKEY, BADSIG or BADTIME.
func TestNotifyUDP(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// The primary is never reached: nothing listens there, so the refresh
	// a NOTIFY starts fails, and only the count of NOTIFYs is checked.
	primary := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(freePort(t)))
	metrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	d := startDaemon(t, "-config", notifyConfig(t, dir, primary, metrics))
	v4, v6 := d.addr(false), d.addr(true)
	client := &dns.Client{Net: "udp", Timeout: 5 * time.Second, TsigSecret: map[string]string{xfrKeyName + ".": xfrSecret}}
	notify := func(origin string) *dns.Msg {
		m := new(dns.Msg)
		m.SetNotify(origin)
		return m
	}

	t.Run("signed NOTIFY from the primary", func(t *testing.T) {
		m := notify("sec.example.")
		m.SetTsig(xfrKeyName+".", dns.HmacSHA256, 300, time.Now().Unix())
		r, _, err := client.Exchange(m, v4.String())
		if err != nil {
			t.Fatalf("NOTIFY: %v (the client verifies the reply's TSIG)", err)
		}
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative || r.Opcode != dns.OpcodeNotify || r.IsTsig() == nil ||
			len(r.Question) != 1 || r.Question[0].Name != "sec.example." {
			t.Errorf("reply:\n%s", r)
		}
		if !poll(5*time.Second, func() bool { return d.zoneStatus("sec.example.").Notifies >= 1 }) {
			t.Errorf("zone-status counts no NOTIFY: %+v", d.zoneStatus("sec.example."))
		}
	})
	for _, c := range []struct {
		name   string
		to     netip.AddrPort
		origin string
		signed bool
		rcode  int
	}{
		{"unsigned NOTIFY from the primary", v4, "sec.example.", false, dns.RcodeRefused},
		{"signed NOTIFY from elsewhere", v6, "sec.example.", true, dns.RcodeRefused},
		{"NOTIFY for a primary zone", v4, "example.", false, dns.RcodeNotAuth},
		{"NOTIFY for a primary zone over IPv6", v6, "example.", false, dns.RcodeNotAuth},
		{"NOTIFY for no zone here", v4, "elsewhere.test.", false, dns.RcodeNotAuth},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := notify(c.origin)
			if c.signed {
				m.SetTsig(xfrKeyName+".", dns.HmacSHA256, 300, time.Now().Unix())
			}
			r, _, err := client.Exchange(m, c.to.String())
			if err != nil {
				t.Fatalf("NOTIFY to %s: %v", c.to, err)
			}
			if r.Rcode != c.rcode || r.Opcode != dns.OpcodeNotify || (r.IsTsig() != nil) != c.signed {
				t.Errorf("reply %s, want %s, signed %v:\n%s", dns.RcodeToString[r.Rcode], dns.RcodeToString[c.rcode], c.signed, r)
			}
		})
	}

	for _, to := range []netip.AddrPort{v4, v6} {
		t.Run("signed query to "+to.String(), func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion("www.example.", dns.TypeA)
			m.SetEdns0(1232, true)
			m.SetTsig(xfrKeyName+".", dns.HmacSHA256, 300, time.Now().Unix())
			r, _, err := client.Exchange(m, to.String())
			if err != nil {
				t.Fatalf("signed query: %v (the client verifies the reply's TSIG)", err)
			}
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || !r.Authoritative || r.IsTsig() == nil || r.IsEdns0() == nil {
				t.Errorf("reply:\n%s", r)
			}
		})
	}
	otherSecret := wrongSecret
	for _, c := range []struct {
		name       string
		key        string
		secret     string
		signed     time.Time
		tsigError  uint16
		verifiable bool
	}{
		{"unknown key", "other-key.", xfrSecret, time.Now(), dns.RcodeBadKey, false},
		{"bad MAC", xfrKeyName + ".", otherSecret, time.Now(), dns.RcodeBadSig, false},
		{"old time", xfrKeyName + ".", xfrSecret, time.Now().Add(-time.Hour), dns.RcodeBadTime, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion("www.example.", dns.TypeA)
			msg, _ := signWith(t, m, c.key, c.secret, c.signed)
			r, _ := rawExchange(t, v4, msg)
			ts := r.IsTsig()
			if r.Rcode != dns.RcodeNotAuth || ts == nil || ts.Error != c.tsigError || len(r.Answer) != 0 {
				t.Errorf("reply rcode %s, TSIG %v, want NOTAUTH with TSIG error %d:\n%s", dns.RcodeToString[r.Rcode], ts, c.tsigError, r)
			}
		})
	}
	t.Run("TSIG not last", func(t *testing.T) {
		m := new(dns.Msg)
		m.SetQuestion("www.example.", dns.TypeA)
		m.Extra = []dns.RR{&dns.TSIG{Hdr: dns.RR_Header{Name: xfrKeyName + ".", Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
			Algorithm: dns.HmacSHA256, TimeSigned: uint64(time.Now().Unix()), Fudge: 300, MACSize: 32, MAC: fmt.Sprintf("%064x", 1)}}
		m.SetEdns0(1232, false)
		b, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		r, _ := rawExchange(t, v4, b)
		if r.Rcode != dns.RcodeFormatError {
			t.Errorf("reply %s, want FORMERR:\n%s", dns.RcodeToString[r.Rcode], r)
		}
	})
	// The control plane counted what the workers handed it: the NOTIFYs,
	// the signed messages, those whose TSIG failed, and its replies.
	m, _ := scrape(t, metrics)
	for _, event := range []string{"notify", "signed", "tsig-failed", "replied"} {
		if v, n := sumMetric(m, "ringdns_udp_handoff_total", `event="`+event+`"`); n != 1 || v < 1 {
			t.Errorf("ringdns_udp_handoff_total{event=%q} = %v (%d samples), want at least 1", event, v, n)
		}
	}
}
