package controlplane

import (
	"encoding/binary"
	"encoding/hex"
	"io"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const (
	testKeyName   = "xfr-key."
	testKeySecret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ=="
	otherSecret   = "b3RoZXItb3RoZXItb3RoZXItb3RoZXItb3RoZXI="
)

func testKeyring() *Keyring {
	return NewKeyring(map[string]TSIGKey{
		testKeyName: {Name: testKeyName, Algorithm: dns.HmacSHA256, Secret: testKeySecret},
	})
}

// signedQuery packs an AXFR query for example. signed by miekg/dns with
// the key name, algorithm and secret given, at time signed ts.
func signedQuery(t *testing.T, name, alg, secret string, ts time.Time) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("example.", dns.TypeAXFR)
	m.SetTsig(name, alg, TSIGFudge, ts.Unix())
	b, _, err := dns.TsigGenerate(m, secret, "", false)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// packRaw packs m without signing it, whatever its TSIG records.
func packRaw(t *testing.T, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fakeTSIG() *dns.TSIG {
	return &dns.TSIG{Hdr: dns.RR_Header{Name: testKeyName, Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
		Algorithm: dns.HmacSHA256, TimeSigned: uint64(time.Now().Unix()), Fudge: 300,
		MACSize: 32, MAC: hex.EncodeToString(make([]byte, 32))}
}

func TestTSIGVerify(t *testing.T) {
	now := time.Now()
	unsigned := new(dns.Msg)
	unsigned.SetQuestion("example.", dns.TypeSOA)

	notLast := new(dns.Msg)
	notLast.SetQuestion("example.", dns.TypeAXFR)
	notLast.Extra = []dns.RR{fakeTSIG(), &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: 1232}}}
	twice := new(dns.Msg)
	twice.SetQuestion("example.", dns.TypeAXFR)
	twice.Extra = []dns.RR{fakeTSIG(), fakeTSIG()}
	inAnswer := new(dns.Msg)
	inAnswer.SetQuestion("example.", dns.TypeAXFR)
	inAnswer.Answer = []dns.RR{fakeTSIG()}

	// A MAC truncated to 16 of its 32 bytes, correctly computed: miekg/dns
	// cannot make one, so the whole MAC is computed and cut.
	trunc := func(macLen int) []byte {
		b := signedQuery(t, testKeyName, dns.HmacSHA256, testKeySecret, now)
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			t.Fatal(err)
		}
		ts := m.Extra[len(m.Extra)-1].(*dns.TSIG)
		ts.MAC = ts.MAC[:2*macLen]
		ts.MACSize = uint16(macLen)
		return packRaw(t, m)
	}

	cases := []struct {
		name  string
		msg   []byte
		rcode int
		err   uint16
		key   string
	}{
		{"unsigned", packRaw(t, unsigned), dns.RcodeSuccess, 0, ""},
		{"valid", signedQuery(t, testKeyName, dns.HmacSHA256, testKeySecret, now), dns.RcodeSuccess, 0, testKeyName},
		{"valid, key name in capitals", signedQuery(t, "XFR-Key.", dns.HmacSHA256, testKeySecret, now), dns.RcodeSuccess, 0, testKeyName},
		{"unknown key", signedQuery(t, "other-key.", dns.HmacSHA256, testKeySecret, now), dns.RcodeNotAuth, dns.RcodeBadKey, ""},
		{"other algorithm", signedQuery(t, testKeyName, dns.HmacSHA512, testKeySecret, now), dns.RcodeNotAuth, dns.RcodeBadKey, ""},
		{"wrong secret", signedQuery(t, testKeyName, dns.HmacSHA256, otherSecret, now), dns.RcodeNotAuth, dns.RcodeBadSig, ""},
		{"an hour early", signedQuery(t, testKeyName, dns.HmacSHA256, testKeySecret, now.Add(-time.Hour)), dns.RcodeNotAuth, dns.RcodeBadTime, testKeyName},
		{"an hour late", signedQuery(t, testKeyName, dns.HmacSHA256, testKeySecret, now.Add(time.Hour)), dns.RcodeNotAuth, dns.RcodeBadTime, testKeyName},
		{"truncated MAC", trunc(16), dns.RcodeNotAuth, dns.RcodeBadTrunc, testKeyName},
		{"MAC too short", trunc(8), dns.RcodeFormatError, 0, ""},
		{"TSIG not last", packRaw(t, notLast), dns.RcodeFormatError, 0, ""},
		{"two TSIGs", packRaw(t, twice), dns.RcodeFormatError, 0, ""},
		{"TSIG in the answer section", packRaw(t, inAnswer), dns.RcodeFormatError, 0, ""},
	}
	k := testKeyring()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			orig := append([]byte(nil), c.msg...)
			r := k.Verify(c.msg)
			if r.Rcode != c.rcode || r.Error != c.err || r.Key != c.key {
				t.Fatalf("Verify: rcode %s error %s key %q, want %s %s %q", RcodeName(r.Rcode), tsigErrorName(r.Error), r.Key,
					RcodeName(c.rcode), tsigErrorName(c.err), c.key)
			}
			if string(orig) != string(c.msg) {
				t.Fatal("Verify changed the message")
			}
			if r.Rcode == dns.RcodeSuccess {
				// The body is the message without its TSIG, for the
				// answer engine.
				var m dns.Msg
				if err := m.Unpack(r.Body); err != nil {
					t.Fatalf("body does not unpack: %v", err)
				}
				if m.IsTsig() != nil {
					t.Fatal("body still carries the TSIG")
				}
			}
		})
	}
}

// TestTSIGErrorReplies checks the replies to failed TSIGs (RFC 8945
// section 5.3.2): NOTAUTH, BADKEY and BADSIG unsigned, BADTIME signed over
// the request MAC with the server's time in Other Data; FORMERR without
// TSIG.
func TestTSIGErrorReplies(t *testing.T) {
	now := time.Now()
	k := testKeyring()
	cases := []struct {
		name   string
		q      []byte
		rcode  int
		err    uint16
		signed bool
	}{
		{"BADKEY", signedQuery(t, "other-key.", dns.HmacSHA256, testKeySecret, now), dns.RcodeNotAuth, dns.RcodeBadKey, false},
		{"BADSIG", signedQuery(t, testKeyName, dns.HmacSHA256, otherSecret, now), dns.RcodeNotAuth, dns.RcodeBadSig, false},
		{"BADTIME", signedQuery(t, testKeyName, dns.HmacSHA256, testKeySecret, now.Add(-time.Hour)), dns.RcodeNotAuth, dns.RcodeBadTime, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := k.Verify(c.q)
			rep, err := k.TSIGErrorReply(c.q, &r)
			if err != nil {
				t.Fatal(err)
			}
			var m dns.Msg
			if err := m.Unpack(rep); err != nil {
				t.Fatal(err)
			}
			if m.Rcode != c.rcode || !m.Response || m.Id != binary.BigEndian.Uint16(c.q) || len(m.Question) != 1 {
				t.Fatalf("reply header: %v", m.MsgHdr)
			}
			ts := m.IsTsig()
			if ts == nil || ts.Error != c.err {
				t.Fatalf("reply TSIG %v, want error %s", ts, RcodeName(int(c.err)))
			}
			if !c.signed {
				if ts.MACSize != 0 || ts.MAC != "" {
					t.Fatalf("error reply signed: %v", ts)
				}
				return
			}
			var req dns.Msg
			req.Unpack(c.q)
			// miekg/dns's TsigVerify refuses any NOTAUTH message, so its
			// TsigGenerate signs the same reply with the same TSIG
			// variables over the request MAC, and the MACs must agree.
			stub := *ts
			stub.MAC, stub.MACSize = "", 0
			m.Extra[len(m.Extra)-1] = &stub
			_, want, err := dns.TsigGenerate(&m, testKeySecret, req.IsTsig().MAC, false)
			if err != nil {
				t.Fatal(err)
			}
			if ts.MAC != want {
				t.Fatalf("BADTIME reply's MAC %s, miekg/dns computes %s", ts.MAC, want)
			}
			if ts.TimeSigned != req.IsTsig().TimeSigned {
				t.Fatalf("BADTIME reply's time signed %d, want the request's %d", ts.TimeSigned, req.IsTsig().TimeSigned)
			}
			if ts.OtherLen != 6 {
				t.Fatalf("BADTIME reply's other data %q, want the server's time", ts.OtherData)
			}
		})
	}
	// FORMERR is not signed.
	m := new(dns.Msg)
	m.SetQuestion("example.", dns.TypeAXFR)
	m.Extra = []dns.RR{fakeTSIG(), fakeTSIG()}
	q := packRaw(t, m)
	r := k.Verify(q)
	rep, err := k.TSIGErrorReply(q, &r)
	if err != nil {
		t.Fatal(err)
	}
	var rm dns.Msg
	if err := rm.Unpack(rep); err != nil {
		t.Fatal(err)
	}
	if rm.Rcode != dns.RcodeFormatError || rm.IsTsig() != nil {
		t.Fatalf("FORMERR reply: %v", &rm)
	}
}

// serveSigned answers each query on ln with n messages, each signed by the
// keyring's Signer: a reply stream as an AXFR sends it, holding the SOA
// first and last.
func serveSigned(t *testing.T, ln net.Listener, k *Keyring, n int) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			var l [2]byte
			if _, err := io.ReadFull(c, l[:]); err != nil {
				return
			}
			q := make([]byte, binary.BigEndian.Uint16(l[:]))
			if _, err := io.ReadFull(c, q); err != nil {
				return
			}
			r := k.Verify(q)
			if r.Rcode != dns.RcodeSuccess {
				rep, err := k.TSIGErrorReply(q, &r)
				if err != nil {
					t.Error(err)
					return
				}
				binary.BigEndian.PutUint16(l[:], uint16(len(rep)))
				c.Write(append(l[:], rep...))
				return
			}
			var qm dns.Msg
			qm.Unpack(r.Body)
			s := k.Signer(&r)
			soa, _ := dns.NewRR("example. 300 IN SOA ns.example. h.example. 1 2 3 4 5")
			for i := 0; i < n; i++ {
				m := new(dns.Msg)
				m.SetReply(&qm)
				m.Authoritative = true
				rr, _ := dns.NewRR("a.example. 300 IN A 192.0.2." + string(rune('1'+i%9)))
				m.Answer = []dns.RR{rr}
				if i == 0 {
					m.Answer = append([]dns.RR{soa}, m.Answer...)
				}
				if i == n-1 {
					m.Answer = append(m.Answer, soa)
				}
				b, err := m.Pack()
				if err != nil {
					t.Error(err)
					return
				}
				if b, err = s.Sign(b); err != nil {
					t.Error(err)
					return
				}
				binary.BigEndian.PutUint16(l[:], uint16(len(b)))
				c.Write(append(l[:], b...))
			}
		}()
	}
}

// TestTSIGSignedExchange has miekg/dns's client check the keyring's
// signatures: one reply, and a transfer of five messages, each signed over
// the previous one's MAC (RFC 8945 section 5.3.1), which miekg/dns's
// Transfer verifies message by message.
func TestTSIGSignedExchange(t *testing.T) {
	k := testKeyring()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go serveSigned(t, ln, k, 5)

	m := new(dns.Msg)
	m.SetQuestion("example.", dns.TypeAXFR)
	m.SetTsig(testKeyName, dns.HmacSHA256, TSIGFudge, time.Now().Unix())
	tr := &dns.Transfer{TsigSecret: map[string]string{testKeyName: testKeySecret}}
	ch, err := tr.In(m, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	records := 0
	for env := range ch {
		if env.Error != nil {
			t.Fatalf("transfer: %v", env.Error)
		}
		records += len(env.RR)
	}
	if records != 5+2 {
		t.Fatalf("%d records transferred, want 7", records)
	}

	// With the wrong secret, the client rejects the first message.
	m.SetTsig(testKeyName, dns.HmacSHA256, TSIGFudge, time.Now().Unix())
	bad := &dns.Transfer{TsigSecret: map[string]string{testKeyName: otherSecret}}
	// The server answers the query signed with the wrong secret NOTAUTH
	// with BADSIG, which the client reports.
	ch, err = bad.In(m, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	failed := false
	for env := range ch {
		failed = failed || env.Error != nil
	}
	if !failed {
		t.Fatal("transfer signed with the wrong secret succeeded")
	}
}

// TestSignerRequestAndReply checks SignerFor and VerifyReply against each
// other, as NOTIFY out uses them, and a reply signed by miekg/dns.
func TestSignerRequestAndReply(t *testing.T) {
	k := testKeyring()
	s, err := k.SignerFor(testKeyName)
	if err != nil {
		t.Fatal(err)
	}
	q := new(dns.Msg)
	q.SetNotify("example.")
	qb, _ := q.Pack()
	if qb, err = s.Sign(qb); err != nil {
		t.Fatal(err)
	}
	r := k.Verify(qb)
	if r.Rcode != dns.RcodeSuccess || r.Key != testKeyName {
		t.Fatalf("our own request: %s", r.Reason())
	}
	// miekg/dns signs the reply over our request's MAC.
	var qm dns.Msg
	qm.Unpack(qb)
	rep := new(dns.Msg)
	rep.SetReply(&qm)
	rep.SetTsig(testKeyName, dns.HmacSHA256, TSIGFudge, time.Now().Unix())
	rb, _, err := dns.TsigGenerate(rep, testKeySecret, qm.IsTsig().MAC, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.VerifyReply(rb); err != nil {
		t.Fatalf("VerifyReply: %v", err)
	}
	// An unsigned reply is rejected.
	s2, _ := k.SignerFor(testKeyName)
	if _, err := s2.Sign(append([]byte(nil), qb...)); err != nil {
		t.Fatal(err)
	}
	plain, _ := rep.Pack() // TsigGenerate took the TSIG out of rep.Extra

	if err := s2.VerifyReply(plain); err == nil {
		t.Fatal("VerifyReply accepted an unsigned reply")
	}
	if _, err := k.SignerFor("nope."); err == nil {
		t.Fatal("SignerFor of an unknown key succeeded")
	}
}
