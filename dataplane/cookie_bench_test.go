package dataplane

import (
	"encoding/binary"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/nic"
	"github.com/ringdns/ringdns/nic/nictest"
)

// cookieMixFrames returns the frames of rootMixFrames with a COOKIE option
// added to each query: a client cookie of its own and, with server set, a
// valid server cookie made by c for the frame's client (client4 or
// client6, as queryFrame sends from), as a resolver that has queried us
// before sends them.
func cookieMixFrames(tb testing.TB, do, server bool, c *Cookies) [][]byte {
	qs := rootMix(tb, do)
	frames := make([][]byte, len(qs))
	for i, q := range qs {
		m := new(dns.Msg)
		if err := m.Unpack(q); err != nil {
			tb.Fatal(err)
		}
		v6 := i%2 == 1
		client := client4
		if v6 {
			client = client6
		}
		var qy query
		qy.cookieLen = clientCookieLen
		binary.LittleEndian.PutUint64(qy.cookie[:8], uint64(i)*0x9e3779b97f4a7c15+1)
		data := append([]byte(nil), qy.cookie[:8]...)
		if server {
			c.check(&qy, client.AsSlice())
			data = append([]byte(nil), qy.cookie[:cookieReplyLen]...)
		}
		o := m.IsEdns0()
		o.Option = append(o.Option, &dns.EDNS0_LOCAL{Code: optCookie, Data: data})
		b, err := m.Pack()
		if err != nil {
			tb.Fatal(err)
		}
		frames[i] = queryFrame(b, v6, uint16(32768+i))
	}
	return frames
}

// benchWorkerRootMixCookie is benchWorkerRootMix with cookies on and a
// COOKIE option in every query: with server set, a valid server cookie,
// which is checked (one SipHash) and echoed; without, a client cookie
// alone, which gets a new server cookie (one SipHash). Every reply must
// carry the cookie: the inspect function checks the verdicts counted.
func benchWorkerRootMixCookie(b *testing.B, do, server bool) {
	_, root := snapshots(b)
	c := NewCookies()
	c.Set(&CookieSecrets{Current: [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}})
	c.Tick(time.Now())
	cfg := root.Config()
	cfg.Cookies = c
	var snap atomic.Pointer[Snapshot]
	snap.Store(NewSnapshot(root.Zones(), cfg))
	ring := nictest.NewRing(nictest.RingConfig{Ethernet: true}, cookieMixFrames(b, do, server, c))
	w := &Worker{Port: ring, Snapshot: &snap, Counters: new(Counters), CPU: -1}
	st := new(portState)
	st.init(w)
	runTurns(b, w, st, nil)
	want := CookieClientOnly
	if server {
		want = CookieValid
	}
	if v := w.Counters.Values(); v.Replies != uint64(b.N) || v.Cookies[want] != uint64(b.N) {
		b.Fatalf("%d packets: %d replies, cookies %v", b.N, v.Replies, v.Cookies)
	}
}

// BenchmarkWorkerRootMixCookie and BenchmarkWorkerRootMixDOCookie: every
// query carries a client cookie and a valid server cookie (the steady state
// of a resolver that does cookies). BenchmarkWorkerRootMixClientCookie:
// a client cookie alone (a resolver's first query, or a spoofed one).
func BenchmarkWorkerRootMixCookie(b *testing.B)       { benchWorkerRootMixCookie(b, false, true) }
func BenchmarkWorkerRootMixDOCookie(b *testing.B)     { benchWorkerRootMixCookie(b, true, true) }
func BenchmarkWorkerRootMixClientCookie(b *testing.B) { benchWorkerRootMixCookie(b, false, false) }

// TestWorkerCookieAllocs pins the worker loop with cookies at zero
// allocations per batch, over the Ethernet ring of the benchmarks.
func TestWorkerCookieAllocs(t *testing.T) {
	c := NewCookies()
	c.Set(&CookieSecrets{Current: [16]byte{1}})
	_, root := snapshots(t)
	cfg := root.Config()
	cfg.Cookies = c
	var snap atomic.Pointer[Snapshot]
	snap.Store(NewSnapshot(root.Zones(), cfg))
	for _, server := range []bool{false, true} {
		ring := nictest.NewRing(nictest.RingConfig{Ethernet: true}, cookieMixFrames(t, true, server, c)[:256])
		w := &Worker{Port: ring, Snapshot: &snap, Counters: new(Counters), CPU: -1}
		st := new(portState)
		st.init(w)
		pkts := make([]nic.Packet, DefaultBatch)
		if a := testing.AllocsPerRun(50, func() {
			if err := w.turn(pkts, st); err != nil {
				t.Fatal(err)
			}
		}); a != 0 {
			t.Errorf("server cookie %v: %v allocations per batch", server, a)
		}
		if v := w.Counters.Values(); v.Cookies[CookieClientOnly]+v.Cookies[CookieValid] != v.Replies || v.Replies == 0 {
			t.Errorf("server cookie %v: cookies %v of %d replies", server, v.Cookies, v.Replies)
		}
	}
}
