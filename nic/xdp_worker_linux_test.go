package nic_test

import (
	"encoding/binary"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/ringdns/ringdns/dataplane"
	"github.com/ringdns/ringdns/nic"
	"github.com/ringdns/ringdns/zone"
)

const workerZone = `$TTL 300
@    IN SOA ns1 hostmaster 1 3600 900 604800 300
@    IN NS  ns1
ns1  IN A    198.18.0.1
www  IN A    198.18.0.53
www  IN AAAA fd53::53
`

// dnsClients sends prepared queries from connected client sockets and checks
// the replies, without allocating, so that it can run inside an allocation
// measurement of the whole process.
type dnsClients struct {
	fds   []int
	query []byte // the query, its ID rewritten for every send
	reply []byte
}

// exchange sends rounds queries from every socket, one outstanding per
// socket, and returns how many were sent and how many got a reply with the
// right ID, QR and AA set, NOERROR and one answer record.
func (c *dnsClients) exchange(rounds int, deadline time.Time) (sent, ok int) {
	for round := 0; round < rounds && time.Now().Before(deadline); round++ {
		for i, fd := range c.fds {
			binary.BigEndian.PutUint16(c.query[0:2], uint16(round<<6|i))
			if _, err := unix.Write(fd, c.query); err == nil {
				sent++
			}
		}
		for i, fd := range c.fds {
			id := uint16(round<<6 | i)
			for {
				n, err := unix.Read(fd, c.reply)
				if err != nil {
					break
				}
				r := c.reply[:n]
				if n < 12 || binary.BigEndian.Uint16(r[0:2]) != id {
					continue // a late reply to an earlier round
				}
				flags := binary.BigEndian.Uint16(r[2:4])
				if flags&0x8000 != 0 && flags&0x0400 != 0 && flags&0x000f == 0 && binary.BigEndian.Uint16(r[6:8]) == 1 {
					ok++
				}
				break
			}
		}
	}
	return sent, ok
}

// TestXDPWorkerNoAllocs runs the data plane worker, the daemon's own loop,
// over real AF_XDP sockets and pins its steady state to zero allocations
// per packet: frames come off the RX ring, are answered in place from a zone
// snapshot and go out on the TX ring.
func TestXDPWorkerNoAllocs(t *testing.T) {
	v := nic.NewTestVeth(t)
	x, err := v.OpenXDP(t, nic.XDPConfig{Mode: "driver", Frames: 1024, RingSize: 512})
	if err != nil {
		t.Fatalf("OpenXDP: %v", err)
	}
	z, err := zone.Parse(strings.NewReader(workerZone), "e2e.test.", "xdp_worker_linux_test.go")
	if err != nil {
		t.Fatal(err)
	}
	set, err := zone.NewSet([]*zone.Zone{z})
	if err != nil {
		t.Fatal(err)
	}
	var snap atomic.Pointer[dataplane.Snapshot]
	snap.Store(dataplane.NewSnapshot(set, dataplane.Config{}))

	var wg sync.WaitGroup
	var workers []*dataplane.Worker
	runErrs := make(chan error, len(x.Ports()))
	for _, p := range x.Ports() {
		w := &dataplane.Worker{Port: p, Snapshot: &snap, Counters: new(dataplane.Counters), CPU: -1}
		workers = append(workers, w)
		wg.Add(1)
		go func() {
			defer wg.Done()
			runErrs <- w.Run()
		}()
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		if err := x.Close(); err != nil {
			t.Errorf("XDP.Close: %v", err)
		}
		wg.Wait()
		close(runErrs)
		for err := range runErrs {
			if err != nil {
				t.Errorf("worker: %v", err)
			}
		}
	}
	defer stop()

	var clients []*dnsClients
	for _, c := range []struct {
		server string
		qtype  uint16
	}{{"198.18.0.1:53", dns.TypeA}, {"[fd53::1]:53", dns.TypeAAAA}} {
		m := new(dns.Msg)
		m.SetQuestion("www.e2e.test.", c.qtype)
		q, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, &dnsClients{
			fds:   v.ClientFDs(t, netip.MustParseAddrPort(c.server), 8),
			query: q, reply: make([]byte, 2048),
		})
	}
	deadline := time.Now().Add(30 * time.Second)
	warm := 0
	for _, c := range clients {
		_, ok := c.exchange(5, deadline)
		warm += ok
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	sent, ok := 0, 0
	for _, c := range clients {
		s, k := c.exchange(125, deadline)
		sent, ok = sent+s, ok+k
	}
	runtime.ReadMemStats(&after)
	if sent != 2000 || ok != sent {
		t.Fatalf("%d queries sent, %d answered correctly, want 2000", sent, ok)
	}
	allocs := after.Mallocs - before.Mallocs
	t.Logf("%d allocations over %d queries answered by the worker through the rings (whole process)", allocs, ok)
	// The whole process is measured, runtime included, so a handful of
	// background allocations are tolerated; one per packet would be 2000.
	if allocs > 20 {
		t.Errorf("%d allocations over %d queries: the AF_XDP worker path allocates per packet", allocs, ok)
	}

	stop()
	var replies uint64
	for _, w := range workers {
		replies += w.Counters.Values().Replies
	}
	if want := uint64(warm + ok); replies != want {
		t.Errorf("workers counted %d replies, the clients got %d", replies, want)
	}
}
