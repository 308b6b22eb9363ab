package controlplane

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringdns/ringdns/dataplane"
	"github.com/ringdns/ringdns/nic"
)

// countingPort is a port that counts the Receive calls made on it and
// reports itself closed, so that a worker running on it returns at once.
type countingPort struct{ receives atomic.Int32 }

func (p *countingPort) Receive(pkts []nic.Packet) (int, error) {
	p.receives.Add(1)
	return 0, nic.ErrClosed
}
func (p *countingPort) Send(pkts []nic.Packet) error { return nil }
func (p *countingPort) Close() error                 { return nil }

// gateServer is a server with one worker on a countingPort, and only what
// starting and stopping workers needs.
func gateServer() (*Server, *countingPort, *workerSlot) {
	port := &countingPort{}
	w := &workerSlot{Name: "xdp0", CPU: -1, port: port, counters: new(dataplane.Counters)}
	w.worker = &dataplane.Worker{Port: port, Snapshot: new(atomic.Pointer[dataplane.Snapshot]), Counters: w.counters, CPU: -1}
	s := &Server{ho: newHandoverState(nil), done: make(chan struct{}), workers: []*workerSlot{w}, log: quietLog()}
	return s, port, w
}

// waitExited waits for w's worker to return, within a bound far above the
// microseconds it takes, so that a loaded machine does not fail the test.
func waitExited(t *testing.T, s *Server, w *workerSlot) {
	t.Helper()
	s.ho.mu.Lock()
	ch := s.ho.exited[w]
	s.ho.mu.Unlock()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("the worker did not return within 5 s")
	}
}

// TestPrestartWorkersGate: a worker PrestartWorkers starts does not touch
// its port, which the old process still serves, until ReleaseWorkers; Run's
// start of it is then skipped (one worker per port), while a later start
// (ResumeWorkers after a failed upgrade of this process) runs it again.
func TestPrestartWorkersGate(t *testing.T) {
	s, port, w := gateServer()
	s.PrestartWorkers()
	// Nothing may read the port while the gate is closed: 100 ms is ample
	// for a worker that wrongly ran to have called Receive.
	time.Sleep(100 * time.Millisecond)
	if n := port.receives.Load(); n != 0 {
		t.Fatalf("%d Receive calls before ReleaseWorkers, want none", n)
	}
	s.ReleaseWorkers()
	s.ReleaseWorkers() // a second release is harmless
	waitExited(t, s, w)
	if n := port.receives.Load(); n != 1 {
		t.Fatalf("%d Receive calls after ReleaseWorkers, want 1", n)
	}
	s.startWorker(w) // Run's start: skipped, the worker was prestarted
	time.Sleep(100 * time.Millisecond)
	if n := port.receives.Load(); n != 1 {
		t.Fatalf("%d Receive calls after Run's start of a prestarted worker, want 1", n)
	}
	s.startWorker(w) // a restart, as ResumeWorkers makes
	waitExited(t, s, w)
	if n := port.receives.Load(); n != 2 {
		t.Fatalf("%d Receive calls after a restart, want 2", n)
	}
	s.wg.Wait()
}

// TestPrestartWorkersShutdown: when the hand-over fails after the workers
// were prestarted, the server's shutdown ends them without their touching
// the port, which the old process goes on serving.
func TestPrestartWorkersShutdown(t *testing.T) {
	s, port, w := gateServer()
	s.PrestartWorkers()
	close(s.done)
	waitExited(t, s, w)
	s.wg.Wait()
	if n := port.receives.Load(); n != 0 {
		t.Fatalf("%d Receive calls by a worker whose gate never opened, want none", n)
	}
}
