package dataplane

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/nic"
	"github.com/ringdns/ringdns/nic/nictest"
)

// TestServerCookieHash holds serverCookieHash, written out for messages of
// 20 and 32 bytes, to sipHash24 over the same bytes, for many keys and
// messages.
func TestServerCookieHash(t *testing.T) {
	var m [32]byte
	for i := range 1000 {
		for j := range m {
			m[j] = byte(i*31 + j*7 + i*j)
		}
		key := [2]uint64{uint64(i) * 0x9e3779b97f4a7c15, ^uint64(i)}
		for _, n := range []int{4, 16} {
			if got, want := serverCookieHash(&key, m[:16], m[16:16+n]), sipHash24(key[0], key[1], m[:16+n]); got != want {
				t.Fatalf("%d bytes, case %d: %x, sipHash24 %x", 16+n, i, got, want)
			}
		}
	}
}

// mustHex decodes a hex string of a test table.
func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// secretHex makes a secret of a test table.
func secretHex(t testing.TB, s string) (k [16]byte) {
	if copy(k[:], mustHex(t, s)) != 16 {
		t.Fatalf("secret %q is not 16 bytes", s)
	}
	return k
}

// cookieQuery is a query for www.example. A with EDNS and a COOKIE option
// holding data (none when nil).
func cookieQuery(t testing.TB, data []byte) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("www.example.", dns.TypeA)
	m.Id = 0x1234
	m.SetEdns0(1232, false)
	if data != nil {
		o := m.IsEdns0()
		o.Option = append(o.Option, &dns.EDNS0_LOCAL{Code: optCookie, Data: data})
	}
	q, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// replyCookieOf returns the COOKIE option of a reply, nil when it has none,
// and the reply.
func replyCookieOf(t testing.TB, reply []byte) ([]byte, *dns.Msg) {
	t.Helper()
	m := new(dns.Msg)
	if err := m.Unpack(reply); err != nil {
		t.Fatalf("reply does not unpack: %v: % x", err, reply)
	}
	o := m.IsEdns0()
	if o == nil {
		return nil, m
	}
	var ck []byte
	for _, e := range o.Option {
		if e.Option() == optCookie {
			if ck != nil {
				t.Fatalf("two COOKIE options in %v", m)
			}
			c := e.(*dns.EDNS0_COOKIE)
			ck = mustHex(t, c.Cookie)
		}
	}
	return ck, m
}

// cookieSnap returns a snapshot of the example zone with cookies made with
// the secrets s at the time now.
func cookieSnap(t testing.TB, s *CookieSecrets, now int64) (*Snapshot, *Cookies) {
	t.Helper()
	ex, _ := snapshots(t)
	c := NewCookies()
	c.Set(s)
	c.Tick(time.Unix(now, 0))
	cfg := ex.Config()
	cfg.Cookies = c
	return NewSnapshot(ex.Zones(), cfg), c
}

// TestRFC9018Vectors runs the examples of RFC 9018 Appendix A through the
// engine, as wire-format queries from the example's client address at the
// example's time: the COOKIE option of each reply must be the example's,
// byte for byte. A.3's server cookie (reserved bytes set) is checked to be
// valid when it was made, and its reply is the new cookie the example shows,
// since by then (1 h 52 min later) it is past the hour RFC 9018 section 4.3
// allows.
func TestRFC9018Vectors(t *testing.T) {
	const secret1 = "e5e973e5a6b2a43f48e7dc849e37bfcf"
	for _, tc := range []struct {
		name       string
		cur, prev  string
		client     string
		query      string
		now        int64
		verdict    CookieVerdict
		wantCookie string
	}{
		{"A.1 new server cookie", secret1, "", "198.51.100.100", "2464c4abcf10c957", 1559731985,
			CookieClientOnly, "2464c4abcf10c957010000005cf79f111f8130c3eee29480"},
		{"A.2 renewed after 40 minutes", secret1, "", "198.51.100.100", "2464c4abcf10c957010000005cf79f111f8130c3eee29480", 1559734385,
			CookieValid, "2464c4abcf10c957010000005cf7a871d4a564a1442aca77"},
		{"A.3 reserved bytes set, valid when made", secret1, "", "203.0.113.203", "fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5", 1559727985 + 60,
			CookieValid, "fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5"},
		{"A.3 reserved bytes set, expired", secret1, "", "203.0.113.203", "fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5", 1559734700,
			CookieInvalid, "fc93fc62807ddb86010000005cf7a9acf73a7810aca2381e"},
		{"A.4 IPv6, rolled over secret", "445536bcd2513298075a5d379663c962", "dd3bdf9344b678b185a6f5cb60fca715",
			"2001:db8:220:1:59de:d0f4:8769:82b8", "22681ab97d52c298010000005cf7c57926556bd0934c72f8", 1559741961,
			CookieValid, "22681ab97d52c298010000005cf7c609a6bb79d16625507a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sec := &CookieSecrets{Current: secretHex(t, tc.cur)}
			if tc.prev != "" {
				sec.Previous, sec.HasPrevious = secretHex(t, tc.prev), true
			}
			snap, _ := cookieSnap(t, sec, tc.now)
			peer := nic.AddrFrom(netip.AddrPortFrom(netip.MustParseAddr(tc.client), 40000))
			dst := make([]byte, 1232)
			n, res := snap.AnswerFrom(dst, cookieQuery(t, mustHex(t, tc.query)), &peer, false)
			if res.CookieVerdict != tc.verdict || res.Cookie != (tc.verdict == CookieValid) {
				t.Errorf("verdict %d, Cookie %v; want %d", res.CookieVerdict, res.Cookie, tc.verdict)
			}
			ck, m := replyCookieOf(t, dst[:n])
			if hex.EncodeToString(ck) != tc.wantCookie {
				t.Errorf("reply cookie %x, want %s", ck, tc.wantCookie)
			}
			if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 1 {
				t.Errorf("reply: %v", m)
			}
		})
	}
}

// TestCookies checks the engine's answer to each kind of COOKIE option
// (RFC 7873 section 5.2): the rcode, the verdict, and the server cookie of
// the reply, which must be the query's own (echoed) or a new one made now
// with the current secret.
func TestCookies(t *testing.T) {
	const now = 1_800_000_000
	cur := secretHex(t, "000102030405060708090a0b0c0d0e0f")
	prev := secretHex(t, "f0e0d0c0b0a090807060504030201000")
	other := secretHex(t, "55555555555555555555555555555555")
	client := netip.MustParseAddr("198.18.0.2")
	peer := nic.AddrFrom(netip.AddrPortFrom(client, 40000))
	cc := mustHex(t, "0102030405060708")
	// made returns a client cookie with a server cookie made with secret
	// at time at, for client.
	made := func(secret [16]byte, at int64, ip netip.Addr) []byte {
		c := NewCookies()
		c.Set(&CookieSecrets{Current: secret})
		c.Tick(time.Unix(at, 0))
		var qy query
		qy.cookieLen = clientCookieLen
		copy(qy.cookie[:], cc)
		c.check(&qy, ip.AsSlice())
		return append([]byte(nil), qy.cookie[:cookieReplyLen]...)
	}
	fresh := made(cur, now-60, client)
	const (
		echo   = 1 // the query's cookie comes back
		newer  = 2 // a new cookie made now
		absent = 3 // no COOKIE option in the reply
	)
	for _, tc := range []struct {
		name      string
		opt       []byte // the COOKIE option's data; nil: none
		require   bool
		off       bool // cookies not configured
		tcp       bool
		rcode     int
		verdict   CookieVerdict
		want      int
		noPrevKey bool
	}{
		{name: "no cookie", rcode: 0, verdict: CookieNone, want: absent},
		{name: "client cookie alone", opt: cc, verdict: CookieClientOnly, want: newer},
		{name: "valid, a minute old", opt: fresh, verdict: CookieValid, want: echo},
		{name: "valid, 29 minutes old", opt: made(cur, now-1740, client), verdict: CookieValid, want: echo},
		{name: "valid, 31 minutes old: renewed", opt: made(cur, now-1860, client), verdict: CookieValid, want: newer},
		{name: "valid, 59 minutes old: renewed", opt: made(cur, now-3540, client), verdict: CookieValid, want: newer},
		{name: "61 minutes old: expired", opt: made(cur, now-3660, client), verdict: CookieInvalid, want: newer},
		{name: "4 minutes ahead", opt: made(cur, now+240, client), verdict: CookieValid, want: echo},
		{name: "6 minutes ahead", opt: made(cur, now+360, client), verdict: CookieInvalid, want: newer},
		{name: "previous secret: renewed", opt: made(prev, now-60, client), verdict: CookieValid, want: newer},
		{name: "previous secret no longer kept", opt: made(prev, now-60, client), verdict: CookieInvalid, want: newer, noPrevKey: true},
		{name: "unknown secret", opt: made(other, now-60, client), verdict: CookieInvalid, want: newer},
		{name: "another client's", opt: made(cur, now-60, netip.MustParseAddr("198.18.0.3")), verdict: CookieInvalid, want: newer},
		{name: "version 2", opt: append(append(append([]byte{}, fresh[:8]...), 2), fresh[9:]...), verdict: CookieInvalid, want: newer},
		{name: "8-byte server cookie", opt: append(append([]byte{}, cc...), fresh[8:16]...), verdict: CookieInvalid, want: newer},
		{name: "32-byte server cookie", opt: append(append([]byte{}, fresh...), make([]byte, 16)...), verdict: CookieInvalid, want: newer},
		{name: "empty: malformed", opt: []byte{}, rcode: dns.RcodeFormatError, verdict: CookieMalformed, want: absent},
		{name: "7 bytes: malformed", opt: cc[:7], rcode: dns.RcodeFormatError, verdict: CookieMalformed, want: absent},
		{name: "9 bytes: malformed", opt: fresh[:9], rcode: dns.RcodeFormatError, verdict: CookieMalformed, want: absent},
		{name: "15 bytes: malformed", opt: fresh[:15], rcode: dns.RcodeFormatError, verdict: CookieMalformed, want: absent},
		{name: "41 bytes: malformed", opt: make([]byte, 41), rcode: dns.RcodeFormatError, verdict: CookieMalformed, want: absent},
		{name: "required, client cookie alone", opt: cc, require: true, rcode: dns.RcodeBadCookie, verdict: CookieClientOnly, want: newer},
		{name: "required, invalid", opt: made(other, now, client), require: true, rcode: dns.RcodeBadCookie, verdict: CookieInvalid, want: newer},
		{name: "required, valid", opt: fresh, require: true, verdict: CookieValid, want: echo},
		{name: "required, no cookie", require: true, verdict: CookieNone, want: absent},
		{name: "required, over TCP", opt: cc, require: true, tcp: true, verdict: CookieClientOnly, want: newer},
		{name: "off: ignored", opt: cc, off: true, verdict: CookieNone, want: absent},
		{name: "off: malformed ignored", opt: cc[:3], off: true, verdict: CookieNone, want: absent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sec := &CookieSecrets{Current: cur, Previous: prev, HasPrevious: !tc.noPrevKey, Require: tc.require}
			if tc.off {
				sec = nil
			}
			snap, _ := cookieSnap(t, sec, now)
			q := cookieQuery(t, tc.opt)
			dst := make([]byte, 65535)
			n, res := snap.AnswerFrom(dst, q, &peer, tc.tcp)
			ck, m := replyCookieOf(t, dst[:n])
			if m.Rcode != tc.rcode || res.Rcode != uint16(tc.rcode) {
				t.Errorf("rcode %d (result %d), want %d: %v", m.Rcode, res.Rcode, tc.rcode, m)
			}
			if res.CookieVerdict != tc.verdict || res.Cookie != (tc.verdict == CookieValid) {
				t.Errorf("verdict %d, Cookie %v; want %d", res.CookieVerdict, res.Cookie, tc.verdict)
			}
			switch tc.rcode {
			case dns.RcodeSuccess:
				if len(m.Answer) != 1 || !m.Authoritative {
					t.Errorf("not answered: %v", m)
				}
			case dns.RcodeBadCookie:
				if len(m.Answer) != 0 || m.Authoritative || res.Kind != KindBadCookie || len(m.Question) != 1 {
					t.Errorf("BADCOOKIE reply: kind %d, %v", res.Kind, m)
				}
			}
			switch tc.want {
			case absent:
				if ck != nil {
					t.Errorf("reply has a cookie %x", ck)
				}
			case echo:
				if !bytes.Equal(ck, tc.opt) {
					t.Errorf("reply cookie %x, want the query's %x", ck, tc.opt)
				}
			case newer:
				// Every query but two (malformed, other
				// lengths) has the client cookie cc.
				want := made(cur, now, client)
				if len(ck) != cookieReplyLen || !bytes.Equal(ck[:8], tc.opt[:8]) {
					t.Fatalf("reply cookie %x, want client cookie %x", ck, tc.opt[:8])
				}
				if tc.opt[0] == cc[0] && !bytes.Equal(ck, want) {
					t.Errorf("reply cookie %x, want a new one %x", ck, want)
				}
			}
		})
	}
}

// TestCookieMappedAddress checks that a client is the same client for its
// cookies from an IPv4 socket and, as an IPv4-mapped address, from a
// dual-stack IPv6 socket (or a TCP connection to one).
func TestCookieMappedAddress(t *testing.T) {
	const now = 1_800_000_000
	snap, c := cookieSnap(t, &CookieSecrets{Current: secretHex(t, "000102030405060708090a0b0c0d0e0f"), Require: true}, now)
	var qy query
	qy.cookieLen = clientCookieLen
	copy(qy.cookie[:], "clientck")
	c.check(&qy, netip.MustParseAddr("198.18.0.2").AsSlice())
	ck := append([]byte(nil), qy.cookie[:cookieReplyLen]...)
	for _, tc := range []struct {
		peer string
		want int
	}{
		{"198.18.0.2:40000", dns.RcodeSuccess},
		{"[::ffff:198.18.0.2]:40000", dns.RcodeSuccess},
		{"[::198.18.0.2]:40000", dns.RcodeBadCookie},
		{"[fd53::ffff:c612:2]:40000", dns.RcodeBadCookie},
	} {
		// As the kernel gives it, an IPv6 address as it is: AddrFrom
		// would unmap it.
		ap := netip.MustParseAddrPort(tc.peer)
		peer := nic.AddrFrom(netip.MustParseAddrPort("[fd53::1]:40000"))
		if ap.Addr().Is4() {
			peer = nic.AddrFrom(ap)
		} else {
			b := ap.Addr().As16()
			copy(peer.Raw[8:24], b[:])
		}
		dst := make([]byte, 1232)
		n, _ := snap.AnswerFrom(dst, cookieQuery(t, ck), &peer, false)
		if _, m := replyCookieOf(t, dst[:n]); m.Rcode != tc.want {
			t.Errorf("from %s: rcode %d, want %d", tc.peer, m.Rcode, tc.want)
		}
	}
}

// TestCookieOptionPlacement checks the COOKIE option beside the EXPIRE and
// NSID options (cookie first, their offsets moved by it), with the
// reply's checksum sum, in a reply truncated to its question, and that a
// second COOKIE option is ignored.
func TestCookieOptionPlacement(t *testing.T) {
	cur := secretHex(t, "000102030405060708090a0b0c0d0e0f")
	snap, _ := cookieSnap(t, &CookieSecrets{Current: cur}, 1_800_000_000)
	peer := nic.AddrFrom(netip.MustParseAddrPort("[fd53::2]:40000"))
	cc := mustHex(t, "0102030405060708")
	for _, tc := range []struct {
		name         string
		qname        string
		qtype        uint16
		size         uint16
		nsid, second bool
	}{
		{name: "with NSID", qname: "www.example.", qtype: dns.TypeA, size: 1232, nsid: true},
		{name: "truncated", qname: "big.example.", qtype: dns.TypeTXT, size: 512, nsid: true},
		{name: "NXDOMAIN", qname: "nope.example.", qtype: dns.TypeA, size: 1232},
		{name: "second option", qname: "www.example.", qtype: dns.TypeA, size: 1232, second: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion(tc.qname, tc.qtype)
			m.SetEdns0(tc.size, true)
			o := m.IsEdns0()
			if tc.nsid {
				o.Option = append(o.Option, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
			}
			o.Option = append(o.Option, &dns.EDNS0_LOCAL{Code: optCookie, Data: cc})
			if tc.second {
				o.Option = append(o.Option, &dns.EDNS0_LOCAL{Code: optCookie, Data: []byte{1}})
			}
			q, err := m.Pack()
			if err != nil {
				t.Fatal(err)
			}
			for _, inPlace := range []bool{false, true} {
				dst := make([]byte, 4096)
				var n int
				var sum uint32
				var res Result
				if inPlace {
					copy(dst, q)
					n, sum, res = snap.answer(dst, dst[:len(q)], &peer, false, true)
				} else {
					n, sum, res = snap.answer(dst, q, &peer, false, true)
				}
				checkAnswerSum(t, dst[:n], sum)
				ck, r := replyCookieOf(t, dst[:n])
				if len(ck) != cookieReplyLen || !bytes.Equal(ck[:8], cc) || res.CookieVerdict != CookieClientOnly {
					t.Errorf("in place %v: cookie %x, verdict %d: %v", inPlace, ck, res.CookieVerdict, r)
				}
				if tc.nsid {
					var got string
					for _, e := range r.IsEdns0().Option {
						if e.Option() == dns.EDNS0NSID {
							got = e.(*dns.EDNS0_NSID).Nsid
						}
					}
					if got != hex.EncodeToString(snap.Config().NSID) {
						t.Errorf("NSID %q: %v", got, r)
					}
				}
			}
		})
	}
}

// TestCookiesNoAlloc pins the cookie path at zero allocations: a client
// cookie alone, a valid server cookie echoed, and one renewed, over IPv4
// and IPv6.
func TestCookiesNoAlloc(t *testing.T) {
	const now = 1_800_000_000
	cur := secretHex(t, "000102030405060708090a0b0c0d0e0f")
	snap, c := cookieSnap(t, &CookieSecrets{Current: cur, Previous: cur, HasPrevious: true}, now)
	cc := mustHex(t, "0102030405060708")
	dst := make([]byte, 1232)
	for _, ap := range []string{"198.18.0.2:40000", "[fd53::2]:40000"} {
		peer := nic.AddrFrom(netip.MustParseAddrPort(ap))
		var res Result
		// A server cookie 2000 s old, which is renewed.
		var qy query
		qy.cookieLen = 8
		copy(qy.cookie[:], cc)
		c.Tick(time.Unix(now-2000, 0))
		c.check(&qy, peerIP(&peer))
		old := append([]byte(nil), qy.cookie[:24]...)
		c.Tick(time.Unix(now, 0))
		for _, q := range [][]byte{cookieQuery(t, cc), cookieQuery(t, old)} {
			if a := testing.AllocsPerRun(100, func() { _, res = snap.AnswerFrom(dst, q, &peer, false) }); a != 0 {
				t.Errorf("%s: %v allocations per query", ap, a)
			}
			if res.CookieVerdict == CookieNone {
				t.Errorf("%s: no verdict", ap)
			}
		}
	}
}

// TestWorkerCookies serves cookie queries through workers over Ethernet
// rings (the AF_XDP path, the client's address taken from each frame):
// the server cookie of a first reply, sent back, is valid (Result.Cookie,
// counted as valid) also for a second worker whose Cookies have the same
// secret, as within a fleet; the counters count each verdict, and BADCOOKIE
// among the rcodes when a cookie is required.
func TestWorkerCookies(t *testing.T) {
	cur := secretHex(t, "000102030405060708090a0b0c0d0e0f")
	cc := mustHex(t, "a1a2a3a4a5a6a7a8")
	now := time.Now().Unix()
	// serve answers q, sent from sport over IPv6 when v6, through a worker
	// over snap and returns the reply's COOKIE option and rcode.
	serve := func(w *Worker, q []byte, v6 bool) ([]byte, int) {
		t.Helper()
		var reply []byte
		ring := nictest.NewRing(nictest.RingConfig{Ethernet: true, Inspect: func(_ int, p *nic.Packet) {
			reply = append([]byte(nil), p.Buf[:p.Len]...)
		}}, [][]byte{queryFrame(q, v6, 40000)})
		w.Port = ring
		st := new(portState)
		st.init(w)
		if err := w.turn(make([]nic.Packet, 1), st); err != nil {
			t.Fatal(err)
		}
		if reply == nil {
			t.Fatal("no reply")
		}
		ck, m := replyCookieOf(t, reply)
		return ck, m.Rcode
	}
	worker := func(require bool) *Worker {
		snap, _ := cookieSnap(t, &CookieSecrets{Current: cur, Require: require}, now)
		p := new(atomic.Pointer[Snapshot])
		p.Store(snap)
		return &Worker{Snapshot: p, Counters: new(Counters), CPU: -1}
	}
	for _, v6 := range []bool{false, true} {
		a, b := worker(false), worker(false)
		first, rc := serve(a, cookieQuery(t, cc), v6)
		if len(first) != cookieReplyLen || rc != dns.RcodeSuccess {
			t.Fatalf("v6 %v: first reply cookie %x, rcode %d", v6, first, rc)
		}
		for i, w := range []*Worker{a, b} {
			again, rc := serve(w, cookieQuery(t, first), v6)
			if !bytes.Equal(again, first) || rc != dns.RcodeSuccess {
				t.Errorf("v6 %v, worker %d: cookie sent back answered with %x, rcode %d", v6, i, again, rc)
			}
		}
		va, vb := a.Counters.Values(), b.Counters.Values()
		if va.Cookies[CookieClientOnly] != 1 || va.Cookies[CookieValid] != 1 || vb.Cookies[CookieValid] != 1 || vb.Cookies[CookieInvalid] != 0 {
			t.Errorf("v6 %v: counters %v and %v", v6, va.Cookies, vb.Cookies)
		}
		// Another secret: the cookie is invalid, and with a cookie
		// required, BADCOOKIE with a new cookie.
		c := worker(true)
		c.Snapshot.Load().cfg.Cookies.Set(&CookieSecrets{Current: secretHex(t, "ffeeddccbbaa99887766554433221100"), Require: true})
		ck, rc := serve(c, cookieQuery(t, first), v6)
		if rc != dns.RcodeBadCookie || len(ck) != cookieReplyLen || bytes.Equal(ck, first) {
			t.Errorf("v6 %v: another secret: rcode %d, cookie %x", v6, rc, ck)
		}
		if v := c.Counters.Values(); v.Cookies[CookieInvalid] != 1 || v.Rcodes[rcodeBadCookie] != 1 || v.Kinds[KindBadCookie] != 1 {
			t.Errorf("v6 %v: counters: cookies %v, BADCOOKIE %d", v6, v.Cookies, v.Rcodes[rcodeBadCookie])
		}
		// The new cookie BADCOOKIE carried is then accepted.
		if again, rc := serve(c, cookieQuery(t, ck), v6); rc != dns.RcodeSuccess || !bytes.Equal(again, ck) {
			t.Errorf("v6 %v: cookie of BADCOOKIE sent back: rcode %d, cookie %x", v6, rc, again)
		}
	}
}

// FuzzCookie runs arbitrary COOKIE options, and queries around them,
// through the engine with cookies on: no panic, no write past the reply,
// a reply sum that matches, and a reply that unpacks with at most one
// COOKIE option.
func FuzzCookie(f *testing.F) {
	f.Add(mustHex(f, "0102030405060708"), false)
	f.Add(mustHex(f, "2464c4abcf10c957010000005cf79f111f8130c3eee29480"), true)
	f.Add(make([]byte, 9), false)
	f.Add(make([]byte, 40), true)
	snap, _ := cookieSnap(f, &CookieSecrets{Current: secretHex(f, "e5e973e5a6b2a43f48e7dc849e37bfcf")}, 1559734385)
	peer := nic.AddrFrom(netip.MustParseAddrPort("198.51.100.100:40000"))
	dst := make([]byte, 65535)
	f.Fuzz(func(t *testing.T, data []byte, tcp bool) {
		if len(data) > 512 {
			return
		}
		q := cookieQuery(t, data)
		n, sum, _ := snap.answer(dst, q, &peer, tcp, true)
		checkAnswerSum(t, dst[:n], sum)
		if n == 0 {
			t.Fatal("no reply")
		}
		replyCookieOf(t, dst[:n])
	})
}
