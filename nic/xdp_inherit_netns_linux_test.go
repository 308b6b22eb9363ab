//go:build linux

package nic

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestXDPInheritKeepsRingSizes hands an AF_XDP data path over within one
// process, as an upgrade hands it to another: the old ports stop, say which
// frames they hold free, and the inherited ones, built on the same sockets,
// answer. The configuration of the inheriting side asks for other ring and
// UMEM sizes (a new binary with another default, or xdp.rx-ring-size
// changed in the file): the sockets keep the sizes they were bound with,
// which cannot change, and the inheritance says so instead of refusing the
// hand-over, which made every upgrade to a binary with other sizes fail.
// Each inherited queue reports when it resumed, after the old worker's
// stop, and how many frames waited in its RX ring.
func TestXDPInheritKeepsRingSizes(t *testing.T) {
	v := newVethNet(t)
	old, err := v.openXDP(t, XDPConfig{Mode: "driver", Frames: 384, RingSize: 128, RxRingSize: 256})
	if err != nil {
		t.Fatalf("OpenXDP: %v", err)
	}
	e := startEcho(old)
	q := make([]byte, 64)
	r := make([]byte, 2048)
	server := netip.MustParseAddrPort("198.18.0.1:53")
	c := v.newClients(t, server, 16)
	// The receive timeout of the clients (1 s) bounds a lost reply; the
	// deadline is far above what 160 exchanges take on a loaded machine.
	if sent, ok := c.exchange(10, time.Now().Add(20*time.Second), q, r); sent != 160 || ok != sent {
		t.Fatalf("before the hand-over: %d sent, %d echoed, want 160", sent, ok)
	}

	old.StopReceiving()
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		// An idle worker notices the stop within its idle wait (100 ms).
		t.Fatal("the old workers did not stop within 5 s of StopReceiving")
	}
	st := old.State()
	if st.RxRingSize != 256 || st.RingSize != 128 || st.Frames != 384 {
		t.Fatalf("state %+v: want RX rings of 256, TX rings of 128, 384 frames", st)
	}
	files, err := old.Files()
	if err != nil {
		t.Fatal(err)
	}
	// The queue states travel as JSON, as in MsgGo.
	b, err := json.Marshal(old.QueueStates())
	if err != nil {
		t.Fatal(err)
	}
	var qs []XDPQueueState
	if err := json.Unmarshal(b, &qs); err != nil {
		t.Fatal(err)
	}
	for _, s := range qs {
		if s.StoppedNs == 0 || s.Dropped == nil {
			t.Errorf("queue %d: no stop time or drop count in the state handed over", s.Queue)
		}
	}

	heir, err := InheritXDP(XDPConfig{Interface: v.ServerIf, Mode: "driver", RxRingSize: 1024}, st, files)
	for _, f := range files {
		f.Close()
	}
	if err != nil {
		t.Fatalf("InheritXDP with other ring sizes configured: %v", err)
	}
	if note := heir.GeometryNote(); !strings.Contains(note, "RX and fill rings of 256") || !strings.Contains(note, "restart") {
		t.Errorf("GeometryNote() = %q, want the sizes kept and that a restart applies the new ones", note)
	}
	for _, p := range heir.Ports() {
		if p.rx.size != 256 || p.fill.size != 256 || p.tx.size != 128 || p.comp.size != 128 || p.umem.frames != 384 {
			t.Errorf("inherited queue %d: rings fill %d RX %d TX %d completion %d, %d frames; want the old sizes",
				p.Queue(), p.fill.size, p.rx.size, p.tx.size, p.comp.size, p.umem.frames)
		}
	}
	if err := heir.Adopt(qs); err != nil {
		t.Fatal(err)
	}
	e2 := startEcho(heir)
	defer e2.stop(t, heir)
	// The old process closes its side once the new one serves; the
	// sockets and the program live on in the new one.
	old.Close()
	if sent, ok := c.exchange(10, time.Now().Add(20*time.Second), q, r); sent != 160 || ok != sent {
		t.Errorf("after the hand-over: %d sent, %d echoed, want 160", sent, ok)
	}
	for _, res := range heir.Resumes() {
		if !res.Resumed || res.Pause <= 0 || res.RxRing != 256 || res.Backlog > res.RxRing {
			t.Errorf("queue %d resumed %+v: want a positive pause from the old worker's stop and an RX ring of 256", res.Queue, res)
		}
		t.Logf("queue %d: %+v", res.Queue, res)
	}
}

// TestXDPStopReceivingWakesIdleWorker: a worker idle in its port's poll
// when a hand-over stops the ports returns ErrClosed from that very
// Receive, woken by StopReceiving, instead of sleeping out its idle wait
// (100 ms) and returning an empty batch: the hand-over waits for every
// AF_XDP worker, so an idle queue held up the stop, and the pause of the
// busy queues with it, by up to that much. The check does not time
// anything: without the wake-up the call can only end at its idle
// deadline, with no error. A failed hand-over's ResumeReceiving then
// drains the wake-up, and Receive serves again.
func TestXDPStopReceivingWakesIdleWorker(t *testing.T) {
	v := newVethNet(t)
	x, err := v.openXDP(t, XDPConfig{Mode: "driver", Queues: []int{0}, Frames: 256, RingSize: 128})
	if err != nil {
		t.Fatalf("OpenXDP: %v", err)
	}
	p := x.Ports()[0]
	pkts := make([]Packet, 16)
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := p.Receive(pkts)
		done <- result{n, err}
	}()
	// Nothing is sent to the port: once Receive has begun (busy set) it
	// can only be in its idle wait. The margin after lets it reach poll.
	for !p.busy.Load() {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	x.StopReceiving()
	r := <-done
	if r.err != ErrClosed {
		t.Fatalf("Receive idle at StopReceiving returned %d, %v; want ErrClosed from the same call", r.n, r.err)
	}
	if p.stoppedAt.Load() == 0 {
		t.Error("the stop was not noted for the new process's pause")
	}
	x.ResumeReceiving()
	// The wake-up must not stay pending: a readable eventfd would make
	// every later poll return at once and the idle worker spin.
	// A signal (the runtime's preemption, frequent under -race on a
	// loaded machine) interrupts even a poll that does not wait: EINTR
	// is asked again, not taken for an answer.
	fds := []unix.PollFd{{Fd: int32(p.closeFd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	for err == unix.EINTR {
		n, err = unix.Poll(fds, 0)
	}
	if err != nil || n != 0 {
		t.Errorf("the port's eventfd after ResumeReceiving: poll %d, %v; want it drained", n, err)
	}
	if n, err := p.Receive(pkts); err != nil || n != 0 {
		t.Fatalf("Receive after ResumeReceiving: %d, %v; want an empty batch after the idle wait", n, err)
	}
}
