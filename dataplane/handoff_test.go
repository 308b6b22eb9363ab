package dataplane

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/nic"
	"github.com/ringdns/ringdns/nic/nictest"
)

// tsigRR is a TSIG record as a signer appends it; the data plane reads
// nothing of it but its type and place, so its MAC need not be valid.
func tsigRR() *dns.TSIG {
	return &dns.TSIG{Hdr: dns.RR_Header{Name: "xfr-key.", Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
		Algorithm: dns.HmacSHA256, TimeSigned: uint64(time.Now().Unix()), Fudge: 300,
		MACSize: 32, MAC: string(bytes.Repeat([]byte("ab"), 32)), OrigId: 7}
}

// handoffMsg builds a message of opcode op asking for name and qtype, with
// extra as its additional section and, when answer is set, a TSIG in its
// answer section.
func handoffMsg(t testing.TB, op int, name string, qtype uint16, extra []dns.RR, answer bool) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = 7
	m.Opcode = op
	m.Authoritative = op == dns.OpcodeNotify
	m.Extra = extra
	if answer {
		m.Answer = []dns.RR{tsigRR()}
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func optRR() *dns.OPT {
	o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	o.SetUDPSize(1232)
	return o
}

// destPort is a fake port that tells each packet's destination, as the
// recvmmsg and AF_XDP ports do.
type destPort struct {
	*nictest.Port
	dest nic.Addr
}

func (p destPort) Destination(i int) nic.Addr { return p.dest }

// serveOne runs one packet through ServeBatch and returns its reply (nil
// for none).
func serveOne(w *Worker, q []byte) []byte {
	buf := make([]byte, 2048)
	pkts := []nic.Packet{{Buf: buf, Len: copy(buf, q), Peer: peer}}
	w.ServeBatch(pkts)
	if pkts[0].Len == 0 {
		return nil
	}
	return buf[:pkts[0].Len]
}

// TestWorkerHandoff checks which messages the worker hands to the control
// plane, whole and with their addresses, instead of answering them, and
// that a TSIG out of place is FORMERR from the worker itself.
func TestWorkerHandoff(t *testing.T) {
	dest := nic.AddrFrom(netip.MustParseAddrPort("198.18.0.1:53"))
	cases := []struct {
		name    string
		msg     []byte
		handoff bool
		rcode   int // of the worker's reply when not handed off
	}{
		{"notify", handoffMsg(t, dns.OpcodeNotify, "wk.test.", dns.TypeSOA, nil, false), true, 0},
		{"notify with OPT", handoffMsg(t, dns.OpcodeNotify, "wk.test.", dns.TypeSOA, []dns.RR{optRR()}, false), true, 0},
		{"notify signed", handoffMsg(t, dns.OpcodeNotify, "wk.test.", dns.TypeSOA, []dns.RR{tsigRR()}, false), true, 0},
		{"signed query", handoffMsg(t, dns.OpcodeQuery, "www.wk.test.", dns.TypeA, []dns.RR{tsigRR()}, false), true, 0},
		{"signed query with OPT", handoffMsg(t, dns.OpcodeQuery, "www.wk.test.", dns.TypeA, []dns.RR{optRR(), tsigRR()}, false), true, 0},
		{"signed query outside the zones", handoffMsg(t, dns.OpcodeQuery, "example.", dns.TypeA, []dns.RR{tsigRR()}, false), true, 0},
		{"TSIG before OPT", handoffMsg(t, dns.OpcodeQuery, "www.wk.test.", dns.TypeA, []dns.RR{tsigRR(), optRR()}, false), false, dns.RcodeFormatError},
		{"two TSIGs", handoffMsg(t, dns.OpcodeQuery, "www.wk.test.", dns.TypeA, []dns.RR{tsigRR(), tsigRR()}, false), false, dns.RcodeFormatError},
		{"TSIG in the answer section", handoffMsg(t, dns.OpcodeQuery, "www.wk.test.", dns.TypeA, nil, true), false, dns.RcodeFormatError},
		{"notify with TSIG before OPT", handoffMsg(t, dns.OpcodeNotify, "wk.test.", dns.TypeSOA, []dns.RR{tsigRR(), optRR()}, false), false, dns.RcodeFormatError},
		{"IXFR", handoffMsg(t, dns.OpcodeQuery, "wk.test.", dns.TypeIXFR, []dns.RR{optRR()}, false), true, 0},
		{"AXFR", handoffMsg(t, dns.OpcodeQuery, "wk.test.", dns.TypeAXFR, nil, false), false, dns.RcodeNotImplemented},
		{"update", handoffMsg(t, dns.OpcodeUpdate, "wk.test.", dns.TypeSOA, nil, false), false, dns.RcodeNotImplemented},
		{"query", handoffMsg(t, dns.OpcodeQuery, "www.wk.test.", dns.TypeA, []dns.RR{optRR()}, false), false, dns.RcodeSuccess},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cnt Counters
			h := NewHandoff(4)
			w := &Worker{Port: destPort{nictest.New(nictest.Config{}), dest}, Snapshot: workerSnapshot(t), Counters: &cnt, CPU: -1, Handoff: h}
			reply := serveOne(w, c.msg)
			v := cnt.Values()
			m := h.Peek()
			if !c.handoff {
				if m != nil || v.Kinds[KindHandoff] != 0 {
					t.Fatalf("handed off, want a reply")
				}
				var r dns.Msg
				if err := r.Unpack(reply); err != nil {
					t.Fatalf("reply %x: %v", reply, err)
				}
				if r.Rcode != c.rcode || r.Id != 7 || !r.Response {
					t.Errorf("reply rcode %s, id %d, want %s", dns.RcodeToString[r.Rcode], r.Id, dns.RcodeToString[c.rcode])
				}
				return
			}
			if reply != nil {
				t.Errorf("worker replied %x to a message it hands off", reply)
			}
			if m == nil {
				t.Fatal("nothing handed off")
			}
			if !bytes.Equal(m.Msg(), c.msg) {
				t.Errorf("handed off\n%x, want the message as it came\n%x", m.Msg(), c.msg)
			}
			if m.Peer != peer || m.Dest != dest {
				t.Errorf("handed off from %v to %v, want from %v to %v", m.Peer.AddrPort(), m.Dest.AddrPort(), peer.AddrPort(), dest.AddrPort())
			}
			if v.Queries != 1 || v.Replies != 0 || v.Kinds[KindHandoff] != 1 || v.Drops[DropHandoff] != 0 {
				t.Errorf("counted queries %d, replies %d, handoffs %d, drops %d; want 1, 0, 1, 0", v.Queries, v.Replies, v.Kinds[KindHandoff], v.Drops[DropHandoff])
			}
			h.Release()
			if h.Peek() != nil {
				t.Error("a second message in the ring")
			}
		})
	}
}

// TestWorkerHandoffFull checks that a full ring, a missing one and a
// message larger than a slot drop the message, counted as DropHandoff,
// and that released slots serve again.
func TestWorkerHandoffFull(t *testing.T) {
	notify := handoffMsg(t, dns.OpcodeNotify, "wk.test.", dns.TypeSOA, nil, false)
	var cnt Counters
	h := NewHandoff(2)
	w := &Worker{Port: nictest.New(nictest.Config{}), Snapshot: workerSnapshot(t), Counters: &cnt, CPU: -1, Handoff: h}
	batch := func(n int) {
		pkts := make([]nic.Packet, n)
		for i := range pkts {
			buf := make([]byte, 2048)
			pkts[i] = nic.Packet{Buf: buf, Len: copy(buf, notify), Peer: peer}
		}
		w.ServeBatch(pkts)
		for i := range pkts {
			if pkts[i].Len != 0 {
				t.Errorf("packet %d answered by the worker", i)
			}
		}
	}
	batch(5)
	if v := cnt.Values(); v.Queries != 5 || v.Kinds[KindHandoff] != 2 || v.Drops[DropHandoff] != 3 {
		t.Fatalf("5 NOTIFYs into 2 slots: %d queries, %d handed off, %d dropped; want 5, 2, 3", v.Queries, v.Kinds[KindHandoff], v.Drops[DropHandoff])
	}
	for range 2 {
		if h.Peek() == nil {
			t.Fatal("ring holds fewer than 2 messages")
		}
		h.Release()
	}
	if h.Peek() != nil {
		t.Fatal("ring holds more than 2 messages")
	}
	batch(1)
	if v := cnt.Values(); v.Kinds[KindHandoff] != 3 {
		t.Fatalf("after the ring drained, %d handed off, want 3", v.Kinds[KindHandoff])
	}
	h.Release()

	// A message larger than a slot.
	big := handoffMsg(t, dns.OpcodeNotify, "wk.test.", dns.TypeSOA, []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: "wk.test.", Rrtype: dns.TypeTXT, Class: dns.ClassINET},
		Txt: []string{string(bytes.Repeat([]byte("x"), 255)), string(bytes.Repeat([]byte("x"), 255)), string(bytes.Repeat([]byte("x"), 255)),
			string(bytes.Repeat([]byte("x"), 255)), string(bytes.Repeat([]byte("x"), 255)), string(bytes.Repeat([]byte("x"), 255)),
			string(bytes.Repeat([]byte("x"), 255)), string(bytes.Repeat([]byte("x"), 255))}}}, false)
	if len(big) <= HandoffSlotSize {
		t.Fatalf("test message of %d bytes fits a slot", len(big))
	}
	buf := make([]byte, 4096)
	pkts := []nic.Packet{{Buf: buf, Len: copy(buf, big), Peer: peer}}
	w.ServeBatch(pkts)
	if v := cnt.Values(); pkts[0].Len != 0 || v.Drops[DropHandoff] != 4 || h.Peek() != nil {
		t.Errorf("a message of %d bytes: reply %d bytes, %d dropped, ring empty %v; want no reply, 4 dropped, empty", len(big), pkts[0].Len, v.Drops[DropHandoff], h.Peek() == nil)
	}

	// No ring at all.
	var c2 Counters
	w2 := &Worker{Port: nictest.New(nictest.Config{}), Snapshot: workerSnapshot(t), Counters: &c2, CPU: -1}
	if r := serveOne(w2, notify); r != nil {
		t.Errorf("worker without a ring replied %x", r)
	}
	if v := c2.Values(); v.Drops[DropHandoff] != 1 {
		t.Errorf("worker without a ring: %d dropped, want 1", v.Drops[DropHandoff])
	}
}

// TestWorkerHandoffAllocs pins a batch mixing queries, NOTIFYs and signed
// queries, handed off and dropped on a full ring, to zero allocations.
func TestWorkerHandoffAllocs(t *testing.T) {
	in := [][]byte{
		handoffMsg(t, dns.OpcodeQuery, "www.wk.test.", dns.TypeA, []dns.RR{optRR()}, false),
		handoffMsg(t, dns.OpcodeNotify, "wk.test.", dns.TypeSOA, nil, false),
		handoffMsg(t, dns.OpcodeQuery, "www.wk.test.", dns.TypeA, []dns.RR{optRR(), tsigRR()}, false),
		handoffMsg(t, dns.OpcodeQuery, "www.wk.test.", dns.TypeA, []dns.RR{tsigRR(), optRR()}, false),
	}
	var cnt Counters
	h := NewHandoff(4)
	w := &Worker{Port: destPort{nictest.New(nictest.Config{}), nic.AddrFrom(netip.MustParseAddrPort("[fd53::1]:53"))},
		Snapshot: workerSnapshot(t), Counters: &cnt, CPU: -1, Handoff: h}
	pkts := make([]nic.Packet, 4*len(in))
	bufs := make([][]byte, len(pkts))
	for i := range bufs {
		bufs[i] = make([]byte, 2048)
	}
	allocs := testing.AllocsPerRun(100, func() {
		for i := range pkts {
			q := in[i%len(in)]
			pkts[i] = nic.Packet{Buf: bufs[i], Len: copy(bufs[i], q), Peer: peer}
		}
		w.ServeBatch(pkts)
		for h.Peek() != nil {
			h.Release()
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per batch, want 0", allocs)
	}
	if v := cnt.Values(); v.Kinds[KindHandoff] == 0 || v.Drops[DropHandoff] == 0 || v.Kinds[KindFormErr] == 0 || v.Kinds[KindAnswer] == 0 {
		t.Errorf("the batch did not take every path: kinds %v, drops %v", v.Kinds, v.Drops)
	}
}

// TestHandoffWait checks that a consumer asleep in Wait is woken by a
// batch that hands a message off, and that Wait returns once stop is
// closed. The bounds are generous (seconds) for a loaded machine: a
// wakeup that never comes fails them, a slow one does not.
func TestHandoffWait(t *testing.T) {
	notify := handoffMsg(t, dns.OpcodeNotify, "wk.test.", dns.TypeSOA, nil, false)
	var cnt Counters
	h := NewHandoff(8)
	w := &Worker{Port: nictest.New(nictest.Config{}), Snapshot: workerSnapshot(t), Counters: &cnt, CPU: -1, Handoff: h}
	stop := make(chan struct{})
	got := make(chan []byte)
	done := make(chan error, 1)
	go func() {
		for {
			if m := h.Peek(); m != nil {
				b := append([]byte(nil), m.Msg()...)
				h.Release()
				got <- b
				continue
			}
			if err := h.Wait(stop); err != nil {
				done <- err
				return
			}
		}
	}()
	for i := range 3 {
		// Let the consumer fall asleep before the next message.
		time.Sleep(20 * time.Millisecond)
		serveOne(w, notify)
		select {
		case b := <-got:
			if !bytes.Equal(b, notify) {
				t.Fatalf("message %d: got %x", i, b)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("message %d: consumer not woken", i)
		}
	}
	close(stop)
	select {
	case err := <-done:
		if err != ErrHandoffStopped {
			t.Errorf("Wait returned %v, want ErrHandoffStopped", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("Wait did not return after stop")
	}
}
