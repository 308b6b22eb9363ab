package dataplane

import (
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringdns/ringdns/nic"
	"github.com/ringdns/ringdns/nic/nictest"
)

// Addresses of the worker tests' Ethernet frames: a server, and clients
// from the benchmarking ranges.
var (
	server4 = netip.MustParseAddr("198.18.0.1")
	server6 = netip.MustParseAddr("fd53::1")
	client4 = netip.MustParseAddr("198.18.0.2")
	client6 = netip.MustParseAddr("fd53::2")
)

// queryFrame wraps a DNS query in the Ethernet frame an AF_XDP port would
// receive from a client at source port sport, over IPv6 when v6 is set.
func queryFrame(q []byte, v6 bool, sport uint16) []byte {
	if v6 {
		return nictest.Frame(netip.AddrPortFrom(client6, sport), netip.AddrPortFrom(server6, 53), q)
	}
	return nictest.Frame(netip.AddrPortFrom(client4, sport), netip.AddrPortFrom(server4, 53), q)
}

// rootMixFrames wraps the queries of rootMix (the mix BenchmarkAnswerRootMix
// measures, so that the two figures compare) in Ethernet frames, IPv4 and
// IPv6 in turn, each from its own client port in the Linux ephemeral range
// (ports from 1024 up would meet reflection ports, which get no reply). It
// returns the queries too.
func rootMixFrames(tb testing.TB, do bool) (frames, queries [][]byte) {
	qs := rootMix(tb, do)
	frames = make([][]byte, len(qs))
	for i, q := range qs {
		frames[i] = queryFrame(q, i%2 == 1, uint16(32768+i))
	}
	return frames, qs
}

// rootMixWorker returns a Worker over an Ethernet ring, the stand-in for an
// AF_XDP port, replaying frames (nil: a new rootMixFrames), with Run's loop
// state ready for turn.
func rootMixWorker(tb testing.TB, do bool, frames [][]byte, inspect func(int, *nic.Packet)) (*Worker, *nictest.Ring, *portState) {
	_, root := snapshots(tb)
	var snap atomic.Pointer[Snapshot]
	snap.Store(root)
	if frames == nil {
		frames, _ = rootMixFrames(tb, do)
	}
	ring := nictest.NewRing(nictest.RingConfig{Ethernet: true, Inspect: inspect}, frames)
	w := &Worker{Port: ring, Snapshot: &snap, Counters: new(Counters), CPU: -1}
	st := new(portState)
	st.init(w)
	return w, ring, st
}

// benchWorkerRootMix runs the worker loop (Receive, ServeBatch, Send) in
// batches of DefaultBatch over an Ethernet ring that replays the root mix.
// One operation is one packet, so ns/op is the cost per packet of the
// AF_XDP path short of its rings: the ring's copy of each frame into its
// buffer, stripping the headers, the answer, and writing the reply headers
// with their checksums (nic.Headers, as XDPPort does).
func benchWorkerRootMix(b *testing.B, do bool) {
	w, ring, st := rootMixWorker(b, do, nil, nil)
	runTurns(b, w, st, nil)
	// Every query of the mix is answered; a benchmark of drops would
	// measure nothing.
	if s, v := ring.Stats(), w.Counters.Values(); s.Replies != uint64(b.N) || v.Replies != uint64(b.N) {
		b.Fatalf("%d packets: ring saw %d replies, counters %d", b.N, s.Replies, v.Replies)
	}
}

func BenchmarkWorkerRootMix(b *testing.B)   { benchWorkerRootMix(b, false) }
func BenchmarkWorkerRootMixDO(b *testing.B) { benchWorkerRootMix(b, true) }

// runTurns runs b.N packets through the worker loop (w.turn) in batches of
// DefaultBatch on a locked OS thread, calling after (when not nil) after
// each batch, and reports the thread's CPU time per packet (cpu-ns/op)
// beside the wall time. The timer is stopped when it returns.
func runTurns(b *testing.B, w *Worker, st *portState, after func()) {
	pkts := make([]nic.Packet, DefaultBatch)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := threadCPU(b)
	for done := 0; done < b.N; {
		n := min(len(pkts), b.N-done)
		if err := w.turn(pkts[:n], st); err != nil {
			b.Fatal(err)
		}
		if after != nil {
			after()
		}
		done += n
	}
	cpu := threadCPU(b) - cpu0
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// threadCPU returns the CPU time the calling thread has used. Benchmarks
// that lock their OS thread report it beside the wall time: on a machine
// shared with other work, wall time also counts the time the thread waited
// for a CPU, and varies with the neighbours' load far more than this does.
func threadCPU(tb testing.TB) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ts.Nano())
}
