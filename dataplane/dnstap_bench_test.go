package dataplane

import (
	"testing"
)

// BenchmarkWorkerRootMixDnstap is BenchmarkWorkerRootMix and
// BenchmarkWorkerRootMixDO with dnstap off, logging every response, and
// logging every query and response (compare with benchstat -col
// /dnstap). The ring is emptied after each batch by moving its tail, so
// that what is measured is the worker's side alone: the clock reading per
// batch, the copies into the slots and the publication; the writer's
// encoding runs on another core (dnstap.BenchmarkAppendFrame measures
// it). The Ethernet ring does not tell destinations, so the AF_XDP port's
// Destination, which reads the frame's headers again, is not counted.
func BenchmarkWorkerRootMixDnstap(b *testing.B) {
	for _, do := range []bool{false, true} {
		name := "do=false"
		if do {
			name = "do=true"
		}
		for _, mode := range []string{"off", "responses", "both"} {
			b.Run(name+"/dnstap="+mode, func(b *testing.B) { benchWorkerRootMixDnstap(b, do, mode) })
		}
	}
}

func benchWorkerRootMixDnstap(b *testing.B, do bool, mode string) {
	w, ring, st := rootMixWorker(b, do, nil, nil)
	var tap *Dnstap
	if mode != "off" {
		var err error
		if tap, err = NewDnstap(1024, 1232+512, NewDnstapWake()); err != nil {
			b.Fatal(err)
		}
		tap.SetFilter(&DnstapFilter{Responses: true, Queries: mode == "both"})
		w.Dnstap = tap
	}
	runTurns(b, w, st, func() {
		if tap != nil {
			tap.tail.Store(tap.head.Load())
		}
	})
	if s, v := ring.Stats(), w.Counters.Values(); s.Replies != uint64(b.N) || v.Replies != uint64(b.N) {
		b.Fatalf("%d packets: ring saw %d replies, counters %d", b.N, s.Replies, v.Replies)
	}
	if tap != nil && tap.Dropped() != 0 {
		b.Fatalf("%d dropped", tap.Dropped())
	}
}
