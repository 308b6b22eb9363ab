package controlplane

import (
	"encoding/hex"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/dataplane"
	"github.com/ringdns/ringdns/nic"
	"github.com/ringdns/ringdns/zone"
)

const (
	handoffKey    = "xfr-key."
	handoffSecret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ=="
	handoffZone   = `$ORIGIN ho.test.
$TTL 300
@    IN SOA ns1 hostmaster 7 7200 3600 1209600 300
@    IN NS  ns1
ns1  IN A   198.18.0.1
www  IN A   198.18.0.10
`
)

// fakeNotifier records the NOTIFYs it is given and answers rcode.
type fakeNotifier struct {
	mu    sync.Mutex
	rcode int
	got   []string // "origin from key"
}

func (f *fakeNotifier) Notify(origin string, from netip.Addr, key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, origin+" "+from.String()+" "+key)
	return f.rcode
}

func (f *fakeNotifier) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.got...)
}

// handoffFixture returns a Handoff over the zone ho.test. and the key
// xfr-key., whose NOTIFYs go to the returned fake.
func handoffFixture(t *testing.T) (*Handoff, *fakeNotifier) {
	t.Helper()
	return handoffFixtureConfig(t, dataplane.Config{})
}

// handoffFixtureConfig is handoffFixture with the snapshot's configuration
// cfg.
func handoffFixtureConfig(t *testing.T, cfg dataplane.Config) (*Handoff, *fakeNotifier) {
	t.Helper()
	z, err := zone.Parse(strings.NewReader(handoffZone), "ho.test.", "handoff_test.go")
	if err != nil {
		t.Fatal(err)
	}
	set, err := zone.NewSet([]*zone.Zone{z})
	if err != nil {
		t.Fatal(err)
	}
	snap := new(atomic.Pointer[dataplane.Snapshot])
	snap.Store(dataplane.NewSnapshot(set, cfg))
	keys := NewKeyring(map[string]TSIGKey{handoffKey: {Name: handoffKey, Algorithm: dns.HmacSHA256, Secret: handoffSecret}})
	f := &fakeNotifier{rcode: dns.RcodeSuccess}
	return NewHandoff(keys, f, snap, slog.New(slog.NewTextHandler(io.Discard, nil))), f
}

// signedMsg packs m signed with key and secret at time signed, returning
// the message and its MAC.
func signedMsg(t *testing.T, m *dns.Msg, key, secret string, signed time.Time) ([]byte, string) {
	t.Helper()
	m.SetTsig(key, dns.HmacSHA256, 300, signed.Unix())
	b, mac, err := dns.TsigGenerate(m, secret, "", false)
	if err != nil {
		t.Fatal(err)
	}
	return b, mac
}

func notifyMsg(origin string) *dns.Msg {
	m := new(dns.Msg)
	m.SetNotify(origin)
	m.Id = 4242
	return m
}

func queryMsg(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = 4243
	m.RecursionDesired = false
	return m
}

// TestHandoffAnswers checks the replies of the control plane to the
// messages the workers hand off: a signed query answered and signed (the
// signature verified by miekg/dns), the TSIG errors of RFC 8945 5.3.2, and
// NOTIFY, signed or not, passed to the catalog with the key that signed it.
func TestHandoffAnswers(t *testing.T) {
	from := netip.MustParseAddr("198.18.0.2")
	now := time.Now()
	otherSecret := "b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldCE="
	type check struct {
		rcode     int
		tsigError uint16 // of the reply's TSIG record
		signed    bool   // the reply carries a TSIG record
		verifyMAC bool   // and miekg/dns verifies it
		answers   int
		aa        bool
		notify    string // what the catalog was told, "" for nothing
	}
	cases := []struct {
		name  string
		msg   func() ([]byte, string)
		check check
	}{
		{"signed query", func() ([]byte, string) {
			return signedMsg(t, queryMsg("www.ho.test.", dns.TypeA), handoffKey, handoffSecret, now)
		}, check{rcode: dns.RcodeSuccess, signed: true, verifyMAC: true, answers: 1, aa: true}},
		{"signed query with EDNS", func() ([]byte, string) {
			m := queryMsg("www.ho.test.", dns.TypeA)
			m.SetEdns0(1232, true)
			return signedMsg(t, m, handoffKey, handoffSecret, now)
		}, check{rcode: dns.RcodeSuccess, signed: true, verifyMAC: true, answers: 1, aa: true}},
		{"unknown key", func() ([]byte, string) {
			return signedMsg(t, queryMsg("www.ho.test.", dns.TypeA), "other-key.", handoffSecret, now)
		}, check{rcode: dns.RcodeNotAuth, tsigError: dns.RcodeBadKey, signed: true}},
		{"bad MAC", func() ([]byte, string) {
			return signedMsg(t, queryMsg("www.ho.test.", dns.TypeA), handoffKey, otherSecret, now)
		}, check{rcode: dns.RcodeNotAuth, tsigError: dns.RcodeBadSig, signed: true}},
		{"old time", func() ([]byte, string) {
			return signedMsg(t, queryMsg("www.ho.test.", dns.TypeA), handoffKey, handoffSecret, now.Add(-time.Hour))
		}, check{rcode: dns.RcodeNotAuth, tsigError: dns.RcodeBadTime, signed: true}},
		{"notify", func() ([]byte, string) {
			b, _ := notifyMsg("ho.test.").Pack()
			return b, ""
		}, check{rcode: dns.RcodeSuccess, aa: true, notify: "ho.test. 198.18.0.2 "}},
		{"signed notify", func() ([]byte, string) {
			return signedMsg(t, notifyMsg("ho.test."), handoffKey, handoffSecret, now)
		}, check{rcode: dns.RcodeSuccess, aa: true, signed: true, verifyMAC: true, notify: "ho.test. 198.18.0.2 " + handoffKey}},
		{"notify with a bad MAC", func() ([]byte, string) {
			return signedMsg(t, notifyMsg("ho.test."), handoffKey, otherSecret, now)
		}, check{rcode: dns.RcodeNotAuth, tsigError: dns.RcodeBadSig, signed: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, f := handoffFixture(t)
			msg, mac := c.msg()
			rep := h.Answer(msg, from)
			if rep == nil {
				t.Fatal("no reply")
			}
			var r dns.Msg
			if err := r.Unpack(rep); err != nil {
				t.Fatalf("reply does not parse: %v", err)
			}
			var req dns.Msg
			_ = req.Unpack(msg)
			if r.Id != req.Id || !r.Response || r.Opcode != req.Opcode || len(r.Question) != 1 || r.Question[0] != req.Question[0] {
				t.Errorf("reply header or question not the request's:\n%s", &r)
			}
			if r.Rcode != c.check.rcode || r.Authoritative != c.check.aa || len(r.Answer) != c.check.answers {
				t.Errorf("reply rcode %s, AA %v, %d answers; want %s, %v, %d:\n%s", dns.RcodeToString[r.Rcode], r.Authoritative, len(r.Answer),
					dns.RcodeToString[c.check.rcode], c.check.aa, c.check.answers, &r)
			}
			ts := r.IsTsig()
			if (ts != nil) != c.check.signed {
				t.Fatalf("reply signed %v, want %v:\n%s", ts != nil, c.check.signed, &r)
			}
			if ts != nil && ts.Error != c.check.tsigError {
				t.Errorf("TSIG error %d, want %d", ts.Error, c.check.tsigError)
			}
			if c.check.verifyMAC {
				if err := dns.TsigVerify(rep, handoffSecret, mac, false); err != nil {
					t.Errorf("miekg/dns does not verify the reply's TSIG: %v", err)
				}
			}
			got := f.calls()
			if c.check.notify == "" && len(got) != 0 || c.check.notify != "" && (len(got) != 1 || got[0] != c.check.notify) {
				t.Errorf("catalog told %q, want %q", got, c.check.notify)
			}
		})
	}
}

// TestHandoffNotifyRcode checks that the reply to a NOTIFY carries the
// catalog's rcode (REFUSED, NOTAUTH), and that a NOTIFY without a question
// is FORMERR without reaching it.
func TestHandoffNotifyRcode(t *testing.T) {
	from := netip.MustParseAddr("::1")
	for _, rc := range []int{dns.RcodeSuccess, dns.RcodeRefused, dns.RcodeNotAuth} {
		for _, edns := range []bool{false, true} {
			h, f := handoffFixture(t)
			f.rcode = rc
			m := notifyMsg("example.")
			if edns {
				m.SetEdns0(4096, true)
			}
			b, _ := m.Pack()
			var r dns.Msg
			if err := r.Unpack(h.Answer(b, from)); err != nil || r.Rcode != rc {
				t.Errorf("catalog said %s: reply rcode %s (%v)", dns.RcodeToString[rc], dns.RcodeToString[r.Rcode], err)
			}
			// AA only on acceptance, and our OPT (1232 bytes, DO
			// echoed) when the NOTIFY had one, as Knot DNS answers.
			if r.Authoritative != (rc == dns.RcodeSuccess) {
				t.Errorf("catalog said %s: AA %v", dns.RcodeToString[rc], r.Authoritative)
			}
			o := r.IsEdns0()
			if (o != nil) != edns || o != nil && (o.UDPSize() != 1232 || !o.Do() || o.Version() != 0) {
				t.Errorf("catalog said %s, EDNS %v: reply's OPT %v", dns.RcodeToString[rc], edns, o)
			}
		}
	}
	h, f := handoffFixture(t)
	m := notifyMsg("ho.test.")
	m.Question = nil
	b, _ := m.Pack()
	var r dns.Msg
	if err := r.Unpack(h.Answer(b, from)); err != nil || r.Rcode != dns.RcodeFormatError || len(f.calls()) != 0 {
		t.Errorf("NOTIFY without a question: rcode %s (%v), catalog told %q; want FORMERR, nothing", dns.RcodeToString[r.Rcode], err, f.calls())
	}
}

// TestHandoffOverUDP runs a socket worker with its ring drained by a
// Handoff, as the server wires them, and queries it with miekg/dns's
// client: a signed query gets a signed reply that the client verifies, a
// NOTIFY reaches the catalog and its reply comes back, from the address
// the client sent to (the client would not accept it from another), over
// IPv4 and IPv6.
func TestHandoffOverUDP(t *testing.T) {
	type port interface {
		nic.Port
		LocalAddr() netip.AddrPort
		Close() error
	}
	// Both kernel-socket ports: ListenUDP's (recvmmsg on Linux) and the
	// ConnPort that FreeBSD and macOS serve from.
	ports := []struct {
		name   string
		listen func(addr string, batch int) (port, error)
	}{
		{"ListenUDP", func(addr string, batch int) (port, error) { return nic.ListenUDP(addr, batch) }},
		{"ListenUDPConn", func(addr string, batch int) (port, error) { return nic.ListenUDPConn(addr, batch) }},
	}
	for _, kind := range ports {
		for _, addr := range []string{"127.0.0.1:0", "[::1]:0", "0.0.0.0:0"} {
			t.Run(kind.name+"/"+addr, func(t *testing.T) {
				h, f := handoffFixture(t)
				p, err := kind.listen(addr, 8)
				if err != nil {
					t.Fatal(err)
				}
				out, ok := any(p).(nic.ReplySender)
				if !ok {
					p.Close()
					t.Fatalf("%T sends no replies outside its batches (nic.ReplySender): NOTIFY and signed messages over UDP would be dropped", p)
				}
				w := &dataplane.Worker{Port: p, Snapshot: h.snap, Counters: new(dataplane.Counters), CPU: -1, Batch: 8, Handoff: dataplane.NewHandoff(0)}
				h.Attach(w.Handoff, out)
				stop := make(chan struct{})
				var wg sync.WaitGroup
				wg.Add(2)
				go func() { defer wg.Done(); h.Run(stop) }()
				go func() { defer wg.Done(); w.Run() }()
				defer func() { p.Close(); close(stop); wg.Wait() }()

				server := p.LocalAddr()
				if server.Addr().IsUnspecified() {
					server = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), server.Port())
				}
				c := &dns.Client{Net: "udp", Timeout: 5 * time.Second, TsigSecret: map[string]string{handoffKey: handoffSecret}}
				q := queryMsg("www.ho.test.", dns.TypeA)
				q.SetTsig(handoffKey, dns.HmacSHA256, 300, time.Now().Unix())
				r, _, err := c.Exchange(q, server.String())
				if err != nil {
					t.Fatalf("signed query: %v", err)
				}
				if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.IsTsig() == nil {
					t.Errorf("signed query: reply\n%s", r)
				}
				n, _, err := (&dns.Client{Net: "udp", Timeout: 5 * time.Second}).Exchange(notifyMsg("ho.test."), server.String())
				if err != nil {
					t.Fatalf("NOTIFY: %v", err)
				}
				if n.Rcode != dns.RcodeSuccess || !n.Authoritative || n.Opcode != dns.OpcodeNotify {
					t.Errorf("NOTIFY: reply\n%s", n)
				}
				if got := f.calls(); len(got) != 1 || !strings.HasPrefix(got[0], "ho.test. ") {
					t.Errorf("catalog told %q", got)
				}
				// The worker counts its batch after handing the message
				// off, and the control plane a reply after sending it: the
				// client may have the reply before either count. Wait for
				// them, as long as the exchanges may take.
				poll(5*time.Second, func() bool {
					return w.Counters.Values().Kinds[dataplane.KindHandoff] == 2 && h.Stats().Replies == 2
				})
				if v := w.Counters.Values(); v.Kinds[dataplane.KindHandoff] != 2 {
					t.Errorf("worker counted %d hand-offs, want 2", v.Kinds[dataplane.KindHandoff])
				}
				if st := h.Stats(); st.Replies != 2 || st.Notifies != 1 || st.Signed != 1 {
					t.Errorf("stats %+v, want 2 replies, 1 NOTIFY, 1 signed", st)
				}
			})
		}
	}
}

// TestHandoffCookies: the replies to handed-off messages carry a server
// cookie for a client cookie (RFC 7873 section 5.2), as the workers'
// replies do: a NOTIFY's, a signed query's (inside what the TSIG covers),
// one the client's address then finds valid; a COOKIE option of a length
// no cookie has is FORMERR without reaching the catalog; with
// cookies.require a signed query without a valid server cookie gets
// BADCOOKIE, and with one its answer.
func TestHandoffCookies(t *testing.T) {
	from := netip.MustParseAddr("198.18.0.2")
	now := time.Now()
	cookies := dataplane.NewCookies()
	secrets := &dataplane.CookieSecrets{Current: [16]byte{0xc0, 0x0c, 0x1e}}
	cookies.Set(secrets)
	fixture := func(t *testing.T) (*Handoff, *fakeNotifier) {
		return handoffFixtureConfig(t, dataplane.Config{Cookies: cookies})
	}
	withCookie := func(m *dns.Msg, cookie string) *dns.Msg {
		m.SetEdns0(1232, false)
		o := m.IsEdns0()
		o.Option = append(o.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: cookie})
		return m
	}
	replyCookie := func(t *testing.T, rep []byte) (*dns.Msg, string) {
		t.Helper()
		var r dns.Msg
		if err := r.Unpack(rep); err != nil {
			t.Fatalf("reply does not parse: %v", err)
		}
		if o := r.IsEdns0(); o != nil {
			for _, opt := range o.Option {
				if c, ok := opt.(*dns.EDNS0_COOKIE); ok {
					return &r, c.Cookie
				}
			}
		}
		return &r, ""
	}
	const client = "0102030405060708"
	valid := func(t *testing.T, ck string) {
		t.Helper()
		raw, err := hex.DecodeString(ck)
		if err != nil || len(raw) != 24 || ck[:16] != client {
			t.Fatalf("reply's cookie %q: want the client cookie %s and a 16-byte server cookie", ck, client)
		}
		if v, _ := cookies.HandoffCookie(raw, from); v != dataplane.CookieValid {
			t.Errorf("reply's server cookie: %v from its client, want valid", v)
		}
	}

	t.Run("notify", func(t *testing.T) {
		h, f := fixture(t)
		b, _ := withCookie(notifyMsg("ho.test."), client).Pack()
		r, ck := replyCookie(t, h.Answer(b, from))
		if r.Rcode != dns.RcodeSuccess || len(f.calls()) != 1 {
			t.Errorf("NOTIFY with a cookie: rcode %s, catalog told %q", dns.RcodeToString[r.Rcode], f.calls())
		}
		valid(t, ck)
	})
	t.Run("signed query", func(t *testing.T) {
		h, _ := fixture(t)
		b, mac := signedMsg(t, withCookie(queryMsg("www.ho.test.", dns.TypeA), client), handoffKey, handoffSecret, now)
		rep := h.Answer(b, from)
		r, ck := replyCookie(t, rep)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || r.IsTsig() == nil {
			t.Errorf("signed query with a cookie: rcode %s, %d answers, signed %v", dns.RcodeToString[r.Rcode], len(r.Answer), r.IsTsig() != nil)
		}
		if err := dns.TsigVerify(rep, handoffSecret, mac, false); err != nil {
			t.Errorf("miekg/dns does not verify the reply's TSIG: %v", err)
		}
		valid(t, ck)
	})
	t.Run("malformed notify", func(t *testing.T) {
		h, f := fixture(t)
		b, _ := withCookie(notifyMsg("ho.test."), "0102030405").Pack()
		r, ck := replyCookie(t, h.Answer(b, from))
		if r.Rcode != dns.RcodeFormatError || ck != "" || len(f.calls()) != 0 {
			t.Errorf("NOTIFY with a 5-byte COOKIE option: rcode %s, cookie %q, catalog told %q; want FORMERR, none, nothing",
				dns.RcodeToString[r.Rcode], ck, f.calls())
		}
	})
	t.Run("require", func(t *testing.T) {
		req := *secrets
		req.Require = true
		cookies.Set(&req)
		defer cookies.Set(secrets)
		h, _ := fixture(t)
		b, _ := signedMsg(t, withCookie(queryMsg("www.ho.test.", dns.TypeA), client), handoffKey, handoffSecret, now)
		r, ck := replyCookie(t, h.Answer(b, from))
		if r.Rcode != dns.RcodeBadCookie || len(r.Answer) != 0 {
			t.Fatalf("require, a client cookie alone: rcode %s, %d answers; want BADCOOKIE, none", dns.RcodeToString[r.Rcode], len(r.Answer))
		}
		valid(t, ck)
		b, _ = signedMsg(t, withCookie(queryMsg("www.ho.test.", dns.TypeA), ck), handoffKey, handoffSecret, now)
		if r, _ := replyCookie(t, h.Answer(b, from)); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Errorf("require, the server cookie back: rcode %s, %d answers; want the answer", dns.RcodeToString[r.Rcode], len(r.Answer))
		}
	})
}
