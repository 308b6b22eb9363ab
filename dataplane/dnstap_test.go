package dataplane

import (
	"bytes"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/nic"
)

// tapWorker returns a worker over the root mix (rootMixWorker) with a
// dnstap ring of slots slots of slotBytes under filter f, and the mix's
// queries, the frame of packet i carrying query i from port 32768+i.
func tapWorker(t testing.TB, f *DnstapFilter, slots, slotBytes int) (*Worker, *portState, *Dnstap, [][]byte) {
	t.Helper()
	frames, queries := rootMixFrames(t, false)
	w, _, st := rootMixWorker(t, false, frames, nil)
	tap, err := NewDnstap(slots, slotBytes, NewDnstapWake())
	if err != nil {
		t.Fatal(err)
	}
	tap.SetFilter(f)
	w.Dnstap = tap
	return w, st, tap, queries
}

// drainTap takes every slot out of the ring, checking each (checkSlot).
func drainTap(t testing.TB, tap *Dnstap, f *DnstapFilter, queries [][]byte) []*dns.Msg {
	t.Helper()
	var out []*dns.Msg
	for s := tap.Peek(); s != nil; s = tap.Peek() {
		m, err := checkSlot(s, f, queries)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
		tap.Release()
	}
	return out
}

// checkSlot checks that a slot's two messages belong together: the query
// is the one its client sent, and the reply has its ID. It returns the
// reply, or the query when responses are not logged.
func checkSlot(s *DnstapSlot, f *DnstapFilter, queries [][]byte) (*dns.Msg, error) {
	port := s.Peer.AddrPort().Port()
	i := int(port) - 32768
	if i < 0 || i >= len(queries) {
		return nil, fmt.Errorf("slot from port %d, not a client of the mix", port)
	}
	q := queries[i]
	if f.Queries != (len(s.Query()) > 0) || f.Responses != (len(s.Response()) > 0) {
		return nil, fmt.Errorf("slot holds a query of %d and a response of %d bytes; want queries %v, responses %v",
			len(s.Query()), len(s.Response()), f.Queries, f.Responses)
	}
	if f.Queries && !bytes.Equal(s.Query(), q) {
		return nil, fmt.Errorf("query from port %d is not the one sent:\n%x\n%x", port, s.Query(), q)
	}
	if s.Time == 0 || s.TCP {
		return nil, fmt.Errorf("slot time %d, TCP %v", s.Time, s.TCP)
	}
	m := new(dns.Msg)
	if !f.Responses {
		return m, m.Unpack(q)
	}
	if err := m.Unpack(s.Response()); err != nil {
		return nil, fmt.Errorf("response from port %d: %v", port, err)
	}
	if !m.Response || m.Id != be16(q) {
		return nil, fmt.Errorf("response from port %d: QR %v, ID %d, query's %d", port, m.Response, m.Id, be16(q))
	}
	return m, nil
}

// serveBatches runs n batches of DefaultBatch packets.
func serveBatches(t testing.TB, w *Worker, st *portState, n int) {
	t.Helper()
	pkts := make([]nic.Packet, DefaultBatch)
	for range n {
		if err := w.turn(pkts, st); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWorkerDnstap(t *testing.T) {
	const batches = 4 // 256 packets
	for _, tc := range []struct {
		name string
		f    DnstapFilter
		// want is whether the exchange of query q with reply rcode is
		// logged; sample aside.
		want func(q *dns.Msg, rcode int) bool
	}{
		{"both", DnstapFilter{Queries: true, Responses: true}, nil},
		{"responses", DnstapFilter{Responses: true}, nil},
		{"queries", DnstapFilter{Queries: true}, nil},
		{"sample 3", DnstapFilter{Sample: 3, Responses: true}, nil},
		{"nxdomain", DnstapFilter{Responses: true, Rcodes: 1 << dns.RcodeNameError},
			func(_ *dns.Msg, rc int) bool { return rc == dns.RcodeNameError }},
		{"noerror and formerr", DnstapFilter{Queries: true, Rcodes: 1<<dns.RcodeSuccess | 1<<dns.RcodeFormatError},
			func(_ *dns.Msg, rc int) bool { return rc == dns.RcodeSuccess }},
		{"aaaa and soa", DnstapFilter{Responses: true, Qtypes: []uint16{dns.TypeAAAA, dns.TypeSOA}},
			func(q *dns.Msg, _ int) bool {
				return q.Question[0].Qtype == dns.TypeAAAA || q.Question[0].Qtype == dns.TypeSOA
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, st, tap, queries := tapWorker(t, &tc.f, 1024, 2048)
			serveBatches(t, w, st, batches)
			got := drainTap(t, tap, &tc.f, queries)
			// The expected exchanges, from the queries and the rcodes an
			// engine of our own gives them.
			_, root := snapshots(t)
			want := 0
			buf := make([]byte, 4096)
			for i := range batches * DefaultBatch {
				if tc.f.Sample > 1 && (i+1)%int(tc.f.Sample) != 0 {
					continue
				}
				q := new(dns.Msg)
				if err := q.Unpack(queries[i]); err != nil {
					t.Fatal(err)
				}
				_, r := root.Answer(buf, queries[i], false)
				if tc.want == nil || tc.want(q, int(r.Rcode)) {
					want++
				}
			}
			if len(got) != want || want == 0 {
				t.Fatalf("%d exchanges logged, want %d", len(got), want)
			}
			for _, m := range got {
				if tc.want != nil && !tc.want(m, m.Rcode) {
					t.Errorf("logged %v rcode %d, which the filter excludes", m.Question, m.Rcode)
				}
			}
			if d := tap.Dropped(); d != 0 {
				t.Errorf("%d dropped", d)
			}
		})
	}
}

// TestDnstapRingFull: a full ring drops the exchanges the filter wants and
// counts their messages; an exchange larger than a slot is dropped and
// counted the same way; the worker goes on answering every query.
func TestDnstapRingFull(t *testing.T) {
	f := &DnstapFilter{Queries: true, Responses: true}
	w, st, tap, queries := tapWorker(t, f, 4, 2048)
	serveBatches(t, w, st, 1)
	if got := len(drainTap(t, tap, f, queries)); got != 4 {
		t.Fatalf("%d exchanges in a ring of 4", got)
	}
	if d := tap.Dropped(); d != 2*(DefaultBatch-4) {
		t.Fatalf("dropped %d messages, want %d", d, 2*(DefaultBatch-4))
	}
	serveBatches(t, w, st, 1)
	if got := len(drainTap(t, tap, f, queries)); got != 4 {
		t.Fatalf("after draining: %d exchanges", got)
	}
	if d := tap.Dropped(); d != 4*(DefaultBatch-4) {
		t.Fatalf("dropped %d messages, want %d", d, 4*(DefaultBatch-4))
	}
	if v := w.Counters.Values(); v.Replies != 2*DefaultBatch {
		t.Fatalf("%d replies to %d queries", v.Replies, 2*DefaultBatch)
	}

	// Slots of 100 bytes hold a query of the mix (under 60 bytes) but not
	// with its reply (a referral or an NXDOMAIN with the SOA); logging
	// only the query fits.
	small := &DnstapFilter{Queries: true, Responses: true}
	w, st, tap, queries = tapWorker(t, small, 1024, 100)
	serveBatches(t, w, st, 1)
	if tap.Peek() != nil || tap.Dropped() != 2*DefaultBatch {
		t.Fatalf("slots too small: dropped %d, want %d", tap.Dropped(), 2*DefaultBatch)
	}
	tap.SetFilter(&DnstapFilter{Queries: true})
	serveBatches(t, w, st, 1)
	if got := len(drainTap(t, tap, &DnstapFilter{Queries: true}, queries)); got != DefaultBatch {
		t.Fatalf("queries alone: %d logged, want %d", got, DefaultBatch)
	}
}

// TestDnstapConcurrent runs the worker and a consumer at once, under
// -race in CI: every exchange is either consumed whole (its query and
// reply match, so no slot was read while written) or counted as dropped.
func TestDnstapConcurrent(t *testing.T) {
	f := &DnstapFilter{Queries: true, Responses: true}
	w, st, tap, queries := tapWorker(t, f, 64, 2048)
	const batches = 200
	stop := make(chan struct{})
	var wg sync.WaitGroup
	consumed := 0
	wake := tap.wake
	wg.Add(1)
	drain := func() bool {
		for s := tap.Peek(); s != nil; s = tap.Peek() {
			if _, err := checkSlot(s, f, queries); err != nil {
				t.Error(err)
				return false
			}
			consumed++
			tap.Release()
		}
		return true
	}
	go func() {
		defer wg.Done()
		for drain() && wake.Wait([]*Dnstap{tap}, stop, nil) {
		}
		drain()
	}()
	serveBatches(t, w, st, batches)
	close(stop)
	wg.Wait()
	if total := uint64(consumed)*2 + tap.Dropped(); total != 2*batches*DefaultBatch {
		t.Fatalf("%d consumed, %d messages dropped: %d messages of %d", consumed, tap.Dropped(), total, 2*batches*DefaultBatch)
	}
	t.Logf("%d of %d exchanges consumed", consumed, batches*DefaultBatch)
}

// TestWorkerDnstapAllocs pins what logging adds to the packet path: no
// allocation, whether the exchange goes into the ring or is dropped.
func TestWorkerDnstapAllocs(t *testing.T) {
	f := &DnstapFilter{Queries: true, Responses: true}
	w, st, tap, _ := tapWorker(t, f, 128, 2048)
	pkts := make([]nic.Packet, DefaultBatch)
	if a := testing.AllocsPerRun(100, func() {
		if err := w.turn(pkts, st); err != nil {
			t.Fatal(err)
		}
		tap.tail.Store(tap.head.Load())
	}); a != 0 {
		t.Errorf("%v allocations per batch logged", a)
	}
	if a := testing.AllocsPerRun(100, func() {
		if err := w.turn(pkts, st); err != nil {
			t.Fatal(err)
		}
	}); a != 0 || tap.Dropped() == 0 {
		t.Errorf("%v allocations per batch dropped (%d dropped)", a, tap.Dropped())
	}
}

// TestDnstapPush: the TCP service's exchanges, one at a time.
func TestDnstapPush(t *testing.T) {
	tap, err := NewDnstap(2, 512, NewDnstapWake())
	if err != nil {
		t.Fatal(err)
	}
	q, r := []byte("0123456789ab-query"), []byte("0123456789ab-reply")
	tap.Push(timeAt(7), nil, nil, q, r, 0)
	if tap.Peek() != nil {
		t.Fatal("logged without a filter")
	}
	tap.SetFilter(&DnstapFilter{Queries: true, Responses: true, Rcodes: 1 << 3})
	peer, dest := nic.AddrFrom(addrPort("198.18.0.2:4000")), nic.AddrFrom(addrPort("198.18.0.1:53"))
	tap.Push(timeAt(7), &peer, &dest, q, r, 0) // rcode not wanted
	tap.Push(timeAt(8), &peer, &dest, q, r, 3)
	s := tap.Peek()
	if s == nil || !s.TCP || s.Time != 8 || s.Peer != peer || s.Dest != dest || string(s.Query()) != string(q) || string(s.Response()) != string(r) {
		t.Fatalf("slot %+v", s)
	}
	tap.Release()
	if tap.Peek() != nil {
		t.Fatal("the excluded rcode was logged")
	}
}

func timeAt(ns int64) time.Time { return time.Unix(0, ns) }

func addrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
