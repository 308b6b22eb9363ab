// Package dataplane answers packets. It breaks "dataplane imports no
// controlplane", imports miekg/dns, and calls fmt and the DNS library per
// packet; its setup (Run, pin) calls fmt as it may.
package dataplane

import (
	"fmt"

	"example.com/house/controlplane/control"
	"example.com/house/nic"
	"example.com/house/zone"
	"github.com/miekg/dns"
)

// Worker serves one port.
type Worker struct {
	Port  nic.Port
	Snap  *Snapshot
	Stats control.Stats
	hook  func(p *nic.Packet)
}

// Run is setup: fmt here is allowed.
func (w *Worker) Run(cpu int) error {
	if err := pin(cpu); err != nil {
		return err
	}
	pkts := make([]nic.Packet, 8)
	for {
		if err := w.turn(pkts); err != nil {
			return err
		}
	}
}

func pin(cpu int) error {
	if cpu < 0 {
		return fmt.Errorf("dataplane: CPU %d", cpu)
	}
	return nil
}

func (w *Worker) turn(pkts []nic.Packet) error {
	n, err := w.Port.Receive(pkts)
	if err != nil {
		return err
	}
	w.ServeBatch(pkts[:n])
	return w.Port.Send(pkts[:n])
}

// ServeBatch calls a closure of its own, which is followed, and a function
// value it was given, which cannot be.
func (w *Worker) ServeBatch(pkts []nic.Packet) {
	count := func(n int) { w.Stats.Queries += uint64(n) }
	for i := range pkts {
		pkts[i].Len = w.Snap.answer(pkts[i].Buf)
		w.hook(&pkts[i])
	}
	count(len(pkts))
}

// Snapshot is what the worker answers from.
type Snapshot struct{ z *zone.Zone }

// Answer is the engine's entry, calling the DNS library per query.
func (s *Snapshot) Answer(q []byte) int {
	return dns.Pack(q) + s.answer(q)
}

func (s *Snapshot) answer(q []byte) int {
	if s.z.Find(q) < 0 {
		return len(fmt.Sprint(len(q)))
	}
	return 0
}
