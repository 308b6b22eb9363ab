package controlplane

import (
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestUDPIXFR checks the answer to an IXFR over UDP, which the workers hand
// off: the current SOA alone, AA set, to a client allow-transfer admits
// (RFC 1995 section 2, as Knot DNS answers), whatever its serial; REFUSED,
// NOTAUTH and FORMERR as over TCP; signed and with our OPT record, through
// the Handoff, when the query was.
func TestUDPIXFR(t *testing.T) {
	cfg := testXfrConfig(t, t.TempDir())
	e := startXfr(t, cfg, "127.0.0.1:0")
	e.publish(t, parseTestZone(t, xfrZoneText(7, 2, "")))
	h := NewHandoff(NewKeyring(cfg.TSIGKeys()), nil, &e.snap, quietLog())
	h.ixfr = e.x.UDPIXFR

	ixfr := func(name string, serial uint32, edns bool) *dns.Msg {
		m := new(dns.Msg)
		m.SetIxfr(name, serial, "ns1.example.", "hostmaster.example.")
		if edns {
			m.SetEdns0(1232, false)
		}
		return m
	}
	v4, v6, other := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1"), netip.MustParseAddr("192.0.2.9")
	cases := []struct {
		name   string
		m      *dns.Msg
		signed bool
		from   netip.Addr
		rcode  int
		serial uint32 // of the one SOA answered, 0 for no answer
	}{
		{"behind, unsigned from ::1", ixfr("example.", 3, false), false, v6, dns.RcodeSuccess, 7},
		{"up to date", ixfr("example.", 7, true), false, v6, dns.RcodeSuccess, 7},
		{"signed from 127.0.0.1", ixfr("example.", 3, true), true, v4, dns.RcodeSuccess, 7},
		{"unsigned where a key is required", ixfr("example.", 3, false), false, v4, dns.RcodeRefused, 0},
		{"not admitted", ixfr("example.", 3, false), false, other, dns.RcodeRefused, 0},
		{"zone not served", ixfr("example.org.", 3, false), false, v6, dns.RcodeNotAuth, 0},
		{"no SOA in the authority section", func() *dns.Msg {
			m := ixfr("example.", 3, false)
			m.Ns = nil
			return m
		}(), false, v6, dns.RcodeFormatError, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var wire []byte
			var err error
			if c.signed {
				c.m.SetTsig(testKeyName, dns.HmacSHA256, TSIGFudge, time.Now().Unix())
				wire, _, err = dns.TsigGenerate(c.m, testKeySecret, "", false)
			} else {
				wire, err = c.m.Pack()
			}
			if err != nil {
				t.Fatal(err)
			}
			rep := h.Answer(wire, c.from)
			var r dns.Msg
			if err := r.Unpack(rep); err != nil {
				t.Fatalf("reply %x: %v", rep, err)
			}
			if r.Rcode != c.rcode || r.Id != c.m.Id || !r.Response {
				t.Fatalf("rcode %s id %d, want %s id %d", RcodeName(r.Rcode), r.Id, RcodeName(c.rcode), c.m.Id)
			}
			if c.signed && r.IsTsig() == nil {
				t.Error("the reply to a signed IXFR is not signed")
			}
			if (c.m.IsEdns0() != nil) != (r.IsEdns0() != nil) {
				t.Errorf("OPT in the query %v, in the reply %v", c.m.IsEdns0() != nil, r.IsEdns0() != nil)
			}
			if c.serial == 0 {
				if len(r.Answer) != 0 {
					t.Errorf("answer %v, want none", r.Answer)
				}
				return
			}
			if !r.Authoritative || len(r.Answer) != 1 {
				t.Fatalf("AA %v, answer %v; want AA and one SOA", r.Authoritative, r.Answer)
			}
			if soa, ok := r.Answer[0].(*dns.SOA); !ok || soa.Serial != c.serial || soa.Hdr.Name != "example." {
				t.Errorf("answer %v, want the SOA of serial %d", r.Answer[0], c.serial)
			}
		})
	}
	if n := e.x.stats.done[kindIXFRUDP][resultOK].Load(); n != 3 {
		t.Errorf("counted %d IXFRs over UDP answered, want 3", n)
	}
}
