package dataplane

import (
	"encoding/binary"
	"errors"
	"runtime"
	"sync/atomic"

	"github.com/ringdns/ringdns/nic"
)

// DefaultBatch is the number of packets per Receive when Worker.Batch is 0.
const DefaultBatch = 64

// Worker answers the queries of one Port: one goroutine, ideally on its own
// CPU, per RX queue or per SO_REUSEPORT socket. It receives a batch, loads the
// current snapshot once for the whole batch, answers every packet in its own
// buffer and hands the batch back to the port to send. Nothing on that path
// allocates or locks.
type Worker struct {
	Port     nic.Port
	Snapshot *atomic.Pointer[Snapshot] // loaded once per batch
	Counters *Counters
	// CPU is the CPU to pin the worker's OS thread to (nic.PinThread), or
	// -1 for none, as on a system that cannot pin (nic.CanPinThreads).
	CPU int
	// Batch is the number of packets per Receive; 0 means DefaultBatch.
	Batch int
	// Handoff receives the messages the control plane answers (NOTIFY,
	// and messages signed with TSIG: KindHandoff); nil drops them, counted
	// as DropHandoff.
	Handoff *Handoff
	// Dnstap, when not nil, is the ring the worker logs its exchanges to
	// for dnstap (dnstap.go); set before Run.
	Dnstap *Dnstap
	// RRL is the worker's response rate limiter, loaded once per batch;
	// nil (the zero value) limits nothing. The control plane stores a new
	// one on reload (NewRRL); the worker alone uses it.
	RRL atomic.Pointer[RRL]
	// RSSAC, when not nil, counts the RSSAC002 statistics (rssac.go); set
	// before Run.
	RSSAC *RSSAC

	// qy is the query every packet of the worker is parsed into
	// (Snapshot.answerWith): kept here, it is not cleared for each one,
	// as a new one on the stack would be.
	qy query
}

// sendErrorCounter is implemented by ports that count the replies they
// failed to send (nic.UDPPort and the AF_XDP port), so that the worker can
// publish the count in Counters.SendErrs.
type sendErrorCounter interface {
	SendErrors() uint64
}

// frameDropCounter is implemented by ports that drop received packets
// themselves before the worker sees them (the AF_XDP port, for frames that
// are not queries), so that the worker can count them as DropFrame.
type frameDropCounter interface {
	FrameDrops() uint64
}

// checksumDropCounter is implemented by ports that drop received frames
// whose checksums do not verify (the AF_XDP port; see
// nic.VerifyChecksums), so that the worker can count them as
// DropChecksum.
type checksumDropCounter interface {
	ChecksumDrops() uint64
}

// Run serves the port until it is closed. It returns nil once the port
// reports nic.ErrClosed and any other error of Receive or Send as it is.
func (w *Worker) Run() error {
	if w.Port == nil || w.Snapshot == nil || w.Counters == nil {
		return errors.New("dataplane: worker needs a Port, a Snapshot pointer and Counters")
	}
	if w.CPU >= 0 {
		restore, err := nic.PinThread(w.CPU)
		if err != nil {
			return err
		}
		defer restore()
	}
	batch := w.Batch
	if batch <= 0 {
		batch = DefaultBatch
	}
	pkts := make([]nic.Packet, batch)
	var st portState
	st.init(w)
	for {
		if err := w.turn(pkts, &st); err != nil {
			if errors.Is(err, nic.ErrClosed) {
				return nil
			}
			return err
		}
	}
}

// portState carries what Run needs to publish the counts the port keeps:
// its send errors in Counters.SendErrs, the packets it dropped itself as
// DropFrame and DropChecksum drops.
type portState struct {
	sec               sendErrorCounter // nil when the port does not count them
	secBase, errsBase uint64
	fdc               frameDropCounter    // nil when the port drops nothing itself
	fdSeen            uint64              // the port's count already published
	csc               checksumDropCounter // nil when the port verifies no checksums
	csSeen            uint64
}

func (st *portState) init(w *Worker) {
	st.sec, _ = w.Port.(sendErrorCounter)
	if st.sec != nil {
		st.secBase, st.errsBase = st.sec.SendErrors(), w.Counters.SendErrs.Load()
	}
	st.fdc, _ = w.Port.(frameDropCounter)
	if st.fdc != nil {
		st.fdSeen = st.fdc.FrameDrops()
	}
	st.csc, _ = w.Port.(checksumDropCounter)
	if st.csc != nil {
		st.csSeen = st.csc.ChecksumDrops()
	}
}

// turn is one iteration of Run's loop: receive a batch into pkts, answer it
// and send it. It returns Receive's or Send's error as it is.
func (w *Worker) turn(pkts []nic.Packet, st *portState) error {
	n, err := w.Port.Receive(pkts)
	// The port's drops count as queries dropped, as they did when the
	// worker parsed frames itself: queries = replies + drops.
	if st.fdc != nil {
		w.publishPortDrops(st.fdc.FrameDrops(), &st.fdSeen, DropFrame)
	}
	if st.csc != nil {
		w.publishPortDrops(st.csc.ChecksumDrops(), &st.csSeen, DropChecksum)
	}
	if err != nil || n == 0 {
		return err
	}
	w.ServeBatch(pkts[:n])
	err = w.Port.Send(pkts[:n])
	if st.sec != nil {
		// The port's count is cumulative; the worker is the only writer of
		// its Counters, so a store keeps them in step.
		w.Counters.SendErrs.Store(st.errsBase + st.sec.SendErrors() - st.secBase)
	}
	return err
}

// publishPortDrops counts as dropped queries, for reason, what a port's
// cumulative count of frames it dropped itself (total) has grown by since
// *seen, and moves *seen up to it.
func (w *Worker) publishPortDrops(total uint64, seen *uint64, reason DropReason) {
	if d := total - *seen; d != 0 {
		*seen = total
		add(&w.Counters.Queries, d)
		add(&w.Counters.Drops[reason], d)
	}
}

// ServeBatch answers the packets of one batch in place: it sets every
// pkts[i].Len to the length of the reply now in pkts[i].Buf, or to 0 for a
// packet that gets no reply, with pkts[i].Sum the reply's partial
// ones'-complement sum when the port uses it (nic.SumUser), and counts each
// packet. It is Run's per-batch
// work, exported for tests and benchmarks that drive a port themselves.
func (w *Worker) ServeBatch(pkts []nic.Packet) {
	// The batch is counted on the stack and published once at the end; see
	// Counters.
	var t tally
	defer w.Counters.flush(&t)
	// The reply's sum goes to a port that finishes the UDP checksum from
	// it (the AF_XDP port); building it costs a few additions per reply,
	// since the prepared answers carry their sums, but no other port needs
	// it.
	su, _ := w.Port.(nic.SumUser)
	withSum := su != nil && su.UsesSum()
	snap := w.Snapshot.Load()
	rl := w.RRL.Load()
	rs, src := w.RSSAC, (*Sources)(nil)
	if rs != nil {
		src = &rs.Sketches[rs.Day.Load()&1]
		full := len(pkts) == w.Batch || w.Batch <= 0 && len(pkts) == DefaultBatch
		defer rs.flush(&t, full)
	}
	var now int64
	if rl != nil {
		now = rl.clock()
	}
	if snap == nil {
		// Until the control plane publishes the first snapshot there is
		// nothing to answer from.
		for i := range pkts {
			pkts[i].Len = 0
			t.count(Result{Kind: KindDrop, Drop: DropNoSnapshot, Zone: -1}, 0)
		}
		return
	}
	// dnstap: each exchange its filter selects is copied into the ring,
	// the query before the reply overwrites it; see Dnstap.
	tap, tb := w.Dnstap, dnstapBatch{}
	if tap != nil {
		tap.begin(&tb, w.Port)
	}
	for i := range pkts {
		p := &pkts[i]
		fam := -1
		if rs != nil && p.Len <= len(p.Buf) {
			fam = rs.received(p.Buf[:p.Len], &p.Peer, src)
		}
		if port, ok := peerPort(&p.Peer); ok && reflectionPort(port) {
			p.Len = 0
			t.count(Result{Kind: KindDrop, Drop: DropReflection, Zone: -1}, 0)
			continue
		}
		if p.Len < hdrLen || p.Len > len(p.Buf) {
			// Shorter than a header: the engine would drop it as
			// DropShort too (acceptMessage), but the test here also
			// tells the compiler that the header's bytes below are in
			// the buffer.
			p.Len = 0
			t.count(Result{Kind: KindDrop, Drop: DropShort, Zone: -1}, 0)
			continue
		}
		// The header, kept in two registers' worth for a message the
		// engine hands off (KindHandoff): its reply overwrites the header
		// in place but leaves the rest of the message as it came, and the
		// control plane needs the message whole (a TSIG MAC covers the
		// header too). Two loads and two stores, cheaper than a second
		// parse to decide before answering.
		h0, h1 := binary.LittleEndian.Uint64(p.Buf[0:8]), binary.LittleEndian.Uint32(p.Buf[8:12])
		var ts *DnstapSlot
		if tap != nil {
			ts = tap.query(&tb, p, i)
		}
		// The engine gets the whole buffer, which the port sized to the
		// largest reply it can send (on the AF_XDP port, what the frame and
		// the MTU allow). A reply that would need more is truncated by the
		// engine to the question and the OPT record, with TC set, so that
		// the client retries over TCP; it never exceeds the buffer.
		n, sum, r := snap.answerWith(&w.qy, p.Buf, p.Buf[:p.Len], &p.Peer, false, withSum)
		if r.Kind == KindHandoff {
			binary.LittleEndian.PutUint64(p.Buf[0:8], h0)
			binary.LittleEndian.PutUint32(p.Buf[8:12], h1)
			w.handoff(i, p, &t)
			continue
		}
		if r.Kind == KindDrop || n <= 0 || n > len(p.Buf) {
			// An engine that wrote past its buffer, or returned an empty
			// reply it did not call a drop, would be a bug; such a reply
			// is not sent rather than sent oversized.
			p.Len = 0
			if r.Kind != KindDrop {
				r = Result{Kind: KindDrop, Drop: DropNoSpace, Zone: r.Zone}
			}
			t.count(r, 0)
			continue
		}
		if rl != nil && !r.Cookie {
			// A valid server cookie proves the source is not spoofed
			// (RFC 7873 section 5.2.3): it is never limited. The
			// reply is keyed now, while it is in the cache, and sent
			// as if it passed: it is counted in its bucket with the
			// others of the batch (settleRRL), whose buckets are
			// loaded together, and taken back there when it does not
			// pass, which while no client is over its rate is never.
			class := rrlClassOf[r.Kind]
			if key, ok := rl.key(&w.qy, p.Buf, n, &r, class, &p.Peer); ok {
				if ts == nil {
					q := &rl.pending
					e := &q.e[q.n&(rrlBatchLen-1)]
					q.n++
					e.key, e.r, e.i, e.class, e.fam = key, r, int32(i), class, int8(fam)
					// Its RSSAC002 size is counted by settleRRL,
					// once the reply sent is known.
					p.Len, p.Sum = n, sum
					t.count(r, n)
					if q.n == rrlBatchLen {
						w.settleRRL(pkts, rl, now, withSum, &t)
					}
					continue
				}
				// A reply dnstap logs is limited at once, before
				// it is logged, after the replies pending: its slot
				// is published before the next query takes one
				// (Dnstap.query).
				if rl.pending.n != 0 {
					w.settleRRL(pkts, rl, now, withSum, &t)
				}
				if !rl.pass(key, now) {
					if v := rl.verdict(key, now, &p.Peer); v != rrlPass {
						if n, sum = limitReply(p, v, class, &r, n, sum, withSum, &t); n == 0 {
							continue
						}
					}
				}
			}
		}
		if ts != nil {
			tap.reply(&tb, ts, p.Buf[:n], r.Rcode)
		}
		p.Len, p.Sum = n, sum
		t.count(r, n)
		if fam >= 0 {
			rs.sent(fam, n)
		}
	}
	if rl != nil && rl.pending.n != 0 {
		w.settleRRL(pkts, rl, now, withSum, &t)
	}
	if tap != nil {
		tap.end(&tb)
	}
	if t.kinds[KindHandoff] != 0 {
		w.Handoff.notify()
	}
	// The snapshot, and through it the zones' tables, stays reachable
	// until the batch is answered: a large table's arenas are memory the
	// collector does not see (zone's regions), released once their last
	// version is collected, and the replies are copied from slices of
	// them that outlive the last use of the snapshot itself.
	runtime.KeepAlive(snap)
}

// settleRRL counts the replies rl has pending, keyed and sent as passed
// by ServeBatch, in their buckets at time now, in the order they came,
// and takes back those the limiter does not pass (settleLimited). The
// buckets' cache lines are loaded first, all of them at once (RRL.touch),
// so that a batch of replies to as many clients waits for about one miss
// rather than one each. It counts the RSSAC002 size of each reply sent.
func (w *Worker) settleRRL(pkts []nic.Packet, rl *RRL, now int64, withSum bool, t *tally) {
	q := &rl.pending
	rl.touch()
	for k := range q.e[:q.n] {
		e := &q.e[k]
		if !rl.pass(e.key, now) {
			settleLimited(pkts, rl, e, now, withSum, t)
		}
		if e.fam >= 0 {
			if n := pkts[e.i].Len; n > 0 {
				w.RSSAC.sent(int(e.fam), n)
			}
		}
	}
	q.n = 0
}

// settleLimited delivers the pending reply e, sent as passed, as the
// limiter has it when its bucket's common case does not pass it
// (RRL.verdict at time now): in full, slipped, or not at all, setting its
// packet and taking back its count for the one of what is sent instead.
func settleLimited(pkts []nic.Packet, rl *RRL, e *rrlPending, now int64, withSum bool, t *tally) {
	p := &pkts[e.i]
	v := rl.verdict(e.key, now, &p.Peer)
	if v == rrlPass {
		return
	}
	r := e.r
	t.uncount(r, p.Len)
	if n, sum := limitReply(p, v, e.class, &r, p.Len, p.Sum, withSum, t); n > 0 {
		p.Len, p.Sum = n, sum
		t.count(r, n)
	}
}

// limitReply carries out the limiter's verdict v, rrlDrop or rrlSlip, on
// the reply of n bytes with sum sum in packet p, of class class, and
// counts it as limited: a drop empties p and is counted as a dropped
// query; a slip cuts the reply to its empty TC=1 form (slipReply) and sets
// r.TC. It returns the length and sum of the reply to send, 0 for a drop;
// the caller counts that reply.
func limitReply(p *nic.Packet, v int, class RRLClass, r *Result, n int, sum uint32, withSum bool, t *tally) (int, uint32) {
	if v == rrlDrop {
		p.Len = 0
		t.rrlDropped[class]++
		t.count(Result{Kind: KindDrop, Drop: DropRRL, Zone: r.Zone}, 0)
		return 0, 0
	}
	t.rrlSlipped[class]++
	n, r.TC = slipReply(p.Buf[:n]), true
	if withSum {
		sum = slipSum(p.Buf[:n])
	}
	return n, sum
}

// handoff copies packet i of the batch, a message the control plane
// answers, into the worker's Handoff ring with its destination address
// when the port tells it (nic.Destinations), and gives the packet no reply
// of the worker's own. It counts the message as a query and as
// Kinds[KindHandoff], or as dropped (DropHandoff) when the ring is full or
// absent: queries = replies + drops + hand-offs.
func (w *Worker) handoff(i int, p *nic.Packet, t *tally) {
	t.queries++
	var dest nic.Addr
	if d, ok := w.Port.(nic.Destinations); ok {
		dest = d.Destination(i)
	}
	if w.Handoff != nil && w.Handoff.push(p.Buf[:p.Len], &p.Peer, dest) {
		t.kinds[KindHandoff]++
	} else {
		t.drops[DropHandoff]++
	}
	p.Len = 0
}

// reflectionPorts are the UDP source ports whose queries get no reply at
// all, not even a FORMERR or NOTIMP: what arrives "from" them is forged or
// comes from a service that answers whatever it is sent, and a reply would
// start a loop (our reply draws its answer, which we would answer again) or
// turn us into a reflector aimed at that service. BIND drops queries from
// a shorter list (7, 13, 19 and 37: ns_client_dropport in lib/ns/client.c);
// Knot DNS 3.2 answers queries from any port (checked on loopback from
// ports 7 and 19), though it sends nothing back to a datagram it cannot
// parse, to which ringdns answers FORMERR. The list is chosen so that real
// DNS clients keep being answered:
//
//   - 0: reserved (RFC 6335); no host sends from it and no reply can be
//     addressed to it.
//   - 7 echo, 13 daytime, 17 qotd, 19 chargen, 37 time: answer any datagram
//     whatever it holds (RFC 862, 867, 865, 864, 868): BIND's list, and
//     qotd, which behaves alike.
//   - 69 tftp, 111 sunrpc, 123 ntp, 137 netbios-ns, 138 netbios-dgm,
//     161 snmp, 162 snmptrap, 177 xdmcp, 389 cldap, 427 slp, 520 rip,
//     623 ipmi, 1900 ssdp, 3283 apple-arms, 3702 ws-discovery, 5683 coap,
//     11211 memcached: the UDP services on the published amplification
//     lists (US-CERT TA14-017A and its updates, CVE-2023-29552 for SLP),
//     several of which answer a malformed datagram with an error that we
//     would in turn answer with FORMERR.
//
// Below 1024 a port needs privilege to bind, and the one DNS clients query
// from is 53 (resolvers with a fixed query source port; a DNS server that
// gets our reply drops it as a response, so no loop): 53 stays answered. Above 1023 only ports below every common ephemeral range
// (Linux 32768-60999, Windows and macOS 49152-65535) are listed; a client
// whose range starts lower (FreeBSD 10000, OpenBSD 1024) and happens to
// pick one of the five loses that query and retries from another port.
// Reflectors inside the ephemeral ranges (10001, 27015, 37810, ...) are not
// listed, since any resolver may query from them. 5353 stays answered: mDNS
// queriers send unicast queries from it (RFC 6762 section 6.7).
var reflectionPorts = [...]uint16{
	0, 7, 13, 17, 19, 37, 69, 111, 123, 137, 138, 161, 162, 177, 389, 427, 520, 623,
	1900, 3283, 3702, 5683, 11211,
}

// reflectionLow is the bitmap of reflectionPorts below 1024, which
// reflectionPort reads with one load instead of comparing.
var reflectionLow = func() (b [1024 / 64]uint64) {
	for _, p := range reflectionPorts {
		if p < 1024 {
			b[p/64] |= 1 << (p % 64)
		}
	}
	return b
}()

// reflectionPort reports whether a UDP query from source port p is dropped
// unanswered (see reflectionPorts). It is the rule of both the AF_XDP and
// the socket path, and costs a compare and a load below 1024, two compares
// from an ephemeral port, a few more in between; TestReflectionPorts checks
// it against the list for every port.
func reflectionPort(p uint16) bool {
	if p < 1024 {
		return reflectionLow[p/64]&(1<<(p%64)) != 0
	}
	if p > 11211 {
		return false
	}
	switch p {
	case 1900, 3283, 3702, 5683, 11211:
		return true
	}
	return false
}

// peerPort returns the UDP port of a packet's peer address: sin_port and
// sin6_port both sit at bytes 2 and 3 of the socket address, in network
// order, on the kernel-socket and AF_XDP ports alike. ok is false when the
// port gave no address (Len below 4), which leaves nothing to check.
func peerPort(a *nic.Addr) (port uint16, ok bool) {
	if a.Len < 4 {
		return 0, false
	}
	return be16(a.Raw[2:4]), true
}
