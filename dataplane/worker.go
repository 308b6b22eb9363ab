package dataplane

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/ringdns/ringdns/nic"
)

// Defaults of Worker's optional fields.
const (
	DefaultBatch   = 64
	DefaultUDPPort = 53
	DefaultMTU     = 1500
)

// Worker answers the queries of one Port: one goroutine, ideally on its own
// CPU, per RX queue or per SO_REUSEPORT socket. It receives a batch, loads the
// current snapshot once for the whole batch, answers every packet in its own
// buffer and hands the batch back to the port to send. Nothing on that path
// allocates or locks.
type Worker struct {
	Port     nic.Port
	Snapshot *atomic.Pointer[Snapshot] // loaded once per batch
	Counters *Counters
	// CPU is the CPU to pin the worker's OS thread to, or -1 for none.
	CPU int
	// Batch is the number of packets per Receive; 0 means DefaultBatch.
	Batch int
	// UDPPort is the DNS port Ethernet frames must be addressed to; 0 means
	// DefaultUDPPort. Payload ports ignore it (the socket is bound to it).
	UDPPort uint16
	// MTU bounds the IP packet of a reply on Ethernet ports: the DNS reply
	// may use at most MTU minus the IP and UDP headers. 0 means DefaultMTU;
	// values above 65535 are taken as 65535.
	MTU int
}

// sendErrorCounter is implemented by ports that count the replies they
// failed to send (nic.UDPPort and the AF_XDP port), so that the worker can
// publish the count in Counters.SendErrs.
type sendErrorCounter interface {
	SendErrors() uint64
}

// Run serves the port until it is closed. It returns nil once the port
// reports nic.ErrClosed and any other error of Receive or Send as it is.
func (w *Worker) Run() error {
	if w.Port == nil || w.Snapshot == nil || w.Counters == nil {
		return errors.New("dataplane: worker needs a Port, a Snapshot pointer and Counters")
	}
	if w.CPU >= 0 {
		restore, err := pinThread(w.CPU)
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
	var st sendErrState
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

// sendErrState carries what Run needs to publish the port's send errors in
// Counters.SendErrs.
type sendErrState struct {
	sec               sendErrorCounter // nil when the port does not count them
	secBase, errsBase uint64
}

func (st *sendErrState) init(w *Worker) {
	st.sec, _ = w.Port.(sendErrorCounter)
	if st.sec != nil {
		st.secBase, st.errsBase = st.sec.SendErrors(), w.Counters.SendErrs.Load()
	}
}

// turn is one iteration of Run's loop: receive a batch into pkts, answer it
// and send it. It returns Receive's or Send's error as it is.
func (w *Worker) turn(pkts []nic.Packet, st *sendErrState) error {
	n, err := w.Port.Receive(pkts)
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

// ServeBatch answers the packets of one batch in place: it sets every
// pkts[i].Len to the length of the reply now in pkts[i].Buf, or to 0 for a
// packet that gets no reply, and counts each packet. It is Run's per-batch
// work, exported for tests and benchmarks that drive a port themselves.
func (w *Worker) ServeBatch(pkts []nic.Packet) {
	// The batch is counted on the stack and published once at the end; see
	// Counters.
	var t tally
	defer w.Counters.flush(&t)
	snap := w.Snapshot.Load()
	if snap == nil {
		// Until the control plane publishes the first snapshot there is
		// nothing to answer from.
		for i := range pkts {
			pkts[i].Len = 0
			t.count(Result{Kind: KindDrop, Drop: DropNoSnapshot, Zone: -1}, 0)
		}
		return
	}
	if w.Port.Framing() == nic.FramingEthernet {
		port := w.UDPPort
		if port == 0 {
			port = DefaultUDPPort
		}
		mtu := w.MTU
		if mtu <= 0 {
			mtu = DefaultMTU
		}
		mtu = min(mtu, 65535)
		for i := range pkts {
			serveFrame(snap, &pkts[i], port, mtu, &t)
		}
		return
	}
	for i := range pkts {
		p := &pkts[i]
		if p.Len <= 0 || p.Len > len(p.Buf) {
			p.Len = 0
			t.count(Result{Kind: KindDrop, Drop: DropShort, Zone: -1}, 0)
			continue
		}
		n, r := snap.Answer(p.Buf, p.Buf[:p.Len], false)
		if r.Kind == KindDrop {
			n = 0
		}
		p.Len = n
		t.count(r, n)
	}
}

// serveFrame answers one Ethernet frame in place and counts it in t.
func serveFrame(snap *Snapshot, p *nic.Packet, port uint16, mtu int, t *tally) {
	if p.Len < 0 || p.Len > len(p.Buf) {
		p.Len = 0
		t.count(Result{Kind: KindDrop, Drop: DropFrame, Zone: -1}, 0)
		return
	}
	f, ok := ParseFrame(p.Buf[:p.Len], port)
	if !ok {
		p.Len = 0
		t.count(Result{Kind: KindDrop, Drop: DropFrame, Zone: -1}, 0)
		return
	}
	// The engine gets at most the room that both the buffer and the MTU
	// allow. A reply that would need more is truncated by the engine to the
	// question and the OPT record, with TC set, so that the client retries
	// over TCP; it never exceeds the limit.
	limit := f.PayloadLimit(len(p.Buf), mtu)
	q := p.Buf[f.Payload : f.Payload+f.PayloadLen]
	n, sum, r := snap.answer(p.Buf[f.Payload:f.Payload+limit], q, false, true)
	if r.Kind == KindDrop || n <= 0 || n > limit {
		// An engine that wrote past its limit, or returned an empty reply
		// it did not call a drop, would be a bug; such a reply is not sent
		// rather than sent oversized.
		p.Len = 0
		if r.Kind != KindDrop {
			r = Result{Kind: KindDrop, Drop: DropNoSpace, Zone: r.Zone}
		}
		t.count(r, 0)
		return
	}
	p.Len = rewriteReply(p.Buf, &f, n, sum)
	// Bytes counts DNS payload, as on payload ports, so that the two
	// backends' figures compare.
	t.count(r, n)
}

// pinThread locks the calling goroutine to its OS thread and binds that
// thread to cpu. The returned function restores the thread's previous CPU
// set and unlocks it, so that a thread handed back to the runtime does not
// stay pinned.
func pinThread(cpu int) (restore func(), err error) {
	runtime.LockOSThread()
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("dataplane: reading the worker thread's CPU set: %w", err)
	}
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("dataplane: pinning the worker thread to CPU %d (is it online and allowed?): %w", cpu, err)
	}
	return func() {
		// If the old set cannot be restored the thread must not go back to
		// the runtime pinned; exiting the goroutine locked would end the
		// thread, but Run's caller continues on it, so keep it locked.
		if unix.SchedSetaffinity(0, &old) == nil {
			runtime.UnlockOSThread()
		}
	}, nil
}
