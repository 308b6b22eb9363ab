package dataplane

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/miekg/dns"
	"github.com/ringdns/ringdns/nic"
	"github.com/ringdns/ringdns/zone"
)

// TestLower8 checks the eight-byte lowercasing against the byte-at-a-time
// rule for every byte value at every position, beside random neighbours
// (a carry or borrow between bytes would show there).
func TestLower8(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 8; pos++ {
			for range 16 {
				var in, want [8]byte
				binary.LittleEndian.PutUint64(in[:], rng.Uint64())
				in[pos] = byte(c)
				for i, b := range in {
					if b >= 'A' && b <= 'Z' {
						b += 32
					}
					want[i] = b
				}
				var got [8]byte
				binary.LittleEndian.PutUint64(got[:], lower8(binary.LittleEndian.Uint64(in[:])))
				if got != want {
					t.Fatalf("lower8(% x) = % x, want % x", in, got, want)
				}
			}
		}
	}
}

// TestParseQNameCase checks that parseQName lowercases labels of every
// length, whether read eight bytes at a time or one by one.
func TestParseQNameCase(t *testing.T) {
	for l := 1; l <= 63; l++ {
		label := bytes.Repeat([]byte("AbZ@[`z{-"), 8)[:l]
		q := append(make([]byte, hdrLen), byte(l))
		q = append(q, label...)
		q = append(q, 0, 0, 1, 0, 1)
		var nm name
		if n := parseQName(q, &nm); n != l+2 {
			t.Fatalf("label of %d bytes: parsed %d bytes", l, n)
		}
		want := append([]byte{byte(l)}, bytes.ToLower(label)...)
		if want = append(want, 0); !bytes.Equal(nm.b[:nm.n], want) {
			t.Fatalf("label of %d bytes: %q, want %q", l, nm.b[:nm.n], want)
		}
	}
}

// TestAnswerReusedQuery answers queries of every kind with one query
// struct for all of them, as the worker does (answerWith), starting full
// of other data, and checks each reply, its sum and its Result against
// those of a new query (answer): whatever the parse of a query reads must
// be reset or written by it first. The queries come in a random order and
// cut short at random lengths too, so that a short or malformed one
// follows a long one with many labels, EDNS options and a cookie.
func TestAnswerReusedQuery(t *testing.T) {
	s, root := snapshots(t)
	ck := NewCookies()
	ck.Set(&CookieSecrets{Current: [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}})
	cfg := s.Config()
	cfg.Cookies = ck
	cookies := NewSnapshot(s.Zones(), cfg)
	peer := nic.AddrFrom(netip.MustParseAddrPort("192.0.2.1:40000"))
	var made query
	made.cookieLen = clientCookieLen
	copy(made.cookie[:], "\x01\x02\x03\x04\x05\x06\x07\x08")
	if v, _ := ck.check(&made, peerIP(&peer)); v != CookieClientOnly {
		t.Fatalf("verdict %d", v)
	}
	valid := hex.EncodeToString(made.cookie[:cookieReplyLen])
	qs := seedQueries()
	qs = append(qs, rootMix(t, false)[:512]...)
	qs = append(qs, rootMix(t, true)[:512]...)
	for _, name := range []string{"www.example.", "nope.example.", "A.Very.Long.Name.With.Many.Labels.In.It.WWW.example.", "junk."} {
		for _, opt := range []dns.EDNS0{
			&dns.EDNS0_NSID{Code: dns.EDNS0NSID},
			&dns.EDNS0_EXPIRE{Code: dns.EDNS0EXPIRE},
			&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"},
			&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708" + "01000000" + "5f5e1000" + "0011223344556677"},
			&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: valid},
			&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "01020304"},
		} {
			m := new(dns.Msg)
			m.SetQuestion(name, dns.TypeA)
			m.SetEdns0(1232, true)
			o := m.IsEdns0()
			o.Option = append(o.Option, opt)
			q, err := m.Pack()
			if err != nil {
				t.Fatal(err)
			}
			qs = append(qs, q)
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range len(qs) {
		q := qs[i]
		qs = append(qs, q[:rng.IntN(len(q)+1)])
	}
	rng.Shuffle(len(qs), func(i, j int) { qs[i], qs[j] = qs[j], qs[i] })
	var qy query
	qy.queryHead = queryHead{qsize: 300, qtype: 0xffff, qclass: 0xffff, edns: true, do: true, nsid: true, expire: true, udp: 0xffff, vers: 0xff, tsig: true, cookieLen: 40, cookieReply: true}
	for i := range qy.cookie {
		qy.cookie[i] = 0xff
	}
	for i := range qy.name.b {
		qy.name.b[i] = 0xff
	}
	for i := range qy.name.off {
		qy.name.off[i], qy.name.hs[i] = 0xff, 0xffffffff
	}
	qy.name.n, qy.name.labels = 255, zone.MaxLabels
	for i := range qy.ctx.pos {
		qy.ctx.pos[i] = 0xffff
	}
	qy.ctx.labels = zone.MaxLabels
	want, got := make([]byte, 4096), make([]byte, 4096)
	var verdicts [NumCookieVerdicts]int
	for _, q := range qs {
		for _, snap := range []*Snapshot{s, root, cookies} {
			for _, tcp := range []bool{false, true} {
				wn, wsum, wres := snap.answer(want, q, &peer, tcp, true)
				gn, gsum, gres := snap.answerWith(&qy, got, q, &peer, tcp, true)
				verdicts[gres.CookieVerdict]++
				if gn != wn || gsum != wsum || gres != wres || !bytes.Equal(got[:gn], want[:wn]) {
					t.Fatalf("query % x (tcp %v): reused query answered %d bytes, sum %#x, %+v\n% x\nnew one %d bytes, sum %#x, %+v\n% x",
						q, tcp, gn, gsum, gres, got[:gn], wn, wsum, wres, want[:wn])
				}
			}
		}
	}
	for v, n := range verdicts {
		if n == 0 {
			t.Errorf("no query with cookie verdict %s", CookieVerdictNames[v])
		}
	}
}
