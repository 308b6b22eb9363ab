package nic

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestXDPPortSendEmptyBatch checks the rule of the Port contract that a
// worker may hand back the empty batch of an idle Receive: Send(pkts[:0])
// returns nil while the port is open and ErrClosed once it is closed, and
// a non-empty batch without a Receive is still refused. Receive clears busy
// before it returns nothing, so Send sees exactly this state after an idle
// interval; it must not touch the rings, which is why a port with none
// mapped serves here.
func TestXDPPortSendEmptyBatch(t *testing.T) {
	p := &XDPPort{closeFd: -1}
	pkts := make([]Packet, 4)
	if err := p.Send(pkts[:0]); err != nil {
		t.Errorf("Send of the empty batch of an idle Receive = %v, want nil", err)
	}
	if err := p.Send(nil); err != nil {
		t.Errorf("Send(nil) after an idle Receive = %v, want nil", err)
	}
	if err := p.Send(pkts[:1]); err == nil || errors.Is(err, ErrClosed) {
		t.Errorf("Send of one packet without a Receive = %v, want a contract error", err)
	}
	p.closed.Store(true)
	if err := p.Send(pkts[:0]); !errors.Is(err, ErrClosed) {
		t.Errorf("Send of the empty batch after Close = %v, want ErrClosed", err)
	}
}

// TestXDPSendEveryBatchNetns runs workers that call Send after every
// Receive, the empty batch of an idle interval included, as the Port
// contract allows. Such a worker used to
// get "Send without a preceding Receive" on its first idle interval and
// stop, so the socket stayed bound and the program kept redirecting into a
// ring nobody read: every query was lost. Here the workers go through
// several idle intervals before any traffic and must still echo it all.
func TestXDPSendEveryBatchNetns(t *testing.T) {
	for _, busyPoll := range []bool{false, true} {
		name := "poll"
		if busyPoll {
			name = "busypoll"
		}
		t.Run(name, func(t *testing.T) {
			v := newVethNet(t)
			x, err := v.openXDP(t, XDPConfig{Mode: "driver", Frames: 512, RingSize: 256, BusyPoll: busyPoll})
			if err != nil {
				t.Fatalf("OpenXDP: %v", err)
			}
			ports := x.Ports()
			idle := make([]atomic.Int64, len(ports))
			echoed := make([]atomic.Int64, len(ports))
			errc := make(chan error, len(ports))
			var wg sync.WaitGroup
			for i, p := range ports {
				wg.Add(1)
				go func() {
					defer wg.Done()
					pkts := make([]Packet, 32)
					for {
						n, err := p.Receive(pkts)
						if err != nil {
							if !errors.Is(err, ErrClosed) {
								errc <- err
							}
							return
						}
						if n == 0 {
							idle[i].Add(1)
						}
						for j := range pkts[:n] {
							echo(&pkts[j])
						}
						echoed[i].Add(int64(n))
						if err := p.Send(pkts[:n]); err != nil {
							if !errors.Is(err, ErrClosed) {
								errc <- err
							}
							return
						}
					}
				}()
			}
			closed := false
			defer func() {
				if !closed {
					x.Close()
					wg.Wait()
				}
			}()

			// Every worker must live through a few idle intervals (100 ms
			// each) before the first query arrives.
			deadline := time.Now().Add(10 * time.Second)
			for i := range ports {
				for idle[i].Load() < 3 && time.Now().Before(deadline) {
					select {
					case err := <-errc:
						t.Fatalf("a worker stopped after an idle Receive: %v", err)
					case <-time.After(20 * time.Millisecond):
					}
				}
				if n := idle[i].Load(); n < 3 {
					t.Fatalf("queue %d: %d idle Receives in 10 s, want 3", ports[i].Queue(), n)
				}
			}

			q := make([]byte, 64)
			r := make([]byte, 2048)
			c := v.newClients(t, netip.MustParseAddrPort("198.18.0.1:53"), 8)
			sent, ok := c.exchange(5, time.Now().Add(20*time.Second), q, r)
			if sent != 40 || ok != sent {
				t.Errorf("%d sent, %d echoed correctly, want 40", sent, ok)
				t.Log(v.Counters())
			}
			var total int64
			for i := range ports {
				total += echoed[i].Load()
			}
			if total != 40 {
				t.Errorf("the workers received %d frames, want 40", total)
			}

			// After Close the workers leave with ErrClosed, and the empty
			// batch of an idle Receive is refused with ErrClosed too.
			if err := x.Close(); err != nil {
				t.Errorf("XDP.Close: %v", err)
			}
			closed = true
			wg.Wait()
			close(errc)
			for err := range errc {
				t.Errorf("worker: %v", err)
			}
			for _, p := range ports {
				if err := p.Send(nil); !errors.Is(err, ErrClosed) {
					t.Errorf("queue %d: Send of an empty batch after Close = %v, want ErrClosed", p.Queue(), err)
				}
			}
		})
	}
}
