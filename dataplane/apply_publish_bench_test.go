//go:build linux

package dataplane

import (
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/ringdns/ringdns/zone"
)

// BenchmarkApplyPublish measures what issue 14's update targets name:
// from handing a change set of 1,000 delegations over (a third added, a
// third removed, a third changed, as in the churn variants of
// BenchmarkApplyDelegations) to the new serial answered. Each op applies
// the change set to the version the one before published, makes the
// snapshot over it, publishes it with an atomic pointer swap and answers
// an SOA query from the snapshot loaded back, which must carry the new
// serial. A reader goroutine answers queries from the published snapshot
// all along, a batch of 64 every millisecond (a steady load that leaves
// the cores to the update, as idle workers would). Besides the mean (ns/op) it reports the
// median and the slowest op's wall time, the process CPU per op (the
// garbage collector's included) and the minor page faults per op (fresh
// memory the update touched), and the time each version still took to
// settle (zone.Zone.Settle: its index made in the background) after its
// serial was answered, which is outside the time measured: updates come
// minutes apart, and one right after another would wait for it. The CPU
// and the faults include it. Set RINGDNS_BIG=1 to run it.
func BenchmarkApplyPublish(b *testing.B) {
	runBigChurn(b, func(b *testing.B, signed bool) {
		z, chain := bigUpdZone(b, signed)
		c := newBigChanges(signed, true, chain)
		var cur atomic.Pointer[Snapshot]
		cur.Store(updSnapshot(b, z))
		// The first update of the loaded zone is made before the
		// timer starts (BenchmarkApplyDelegations reports it).
		del, add := c.next(b, 1)
		z, err := z.Apply(del, add)
		if err != nil {
			b.Fatal(err)
		}
		cur.Store(updSnapshot(b, z))
		sets := make([][2][]dns.RR, b.N)
		for i := range sets {
			sets[i][0], sets[i][1] = c.next(b, i+2)
		}
		soaQ := bigSOAQuery()
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 65535)
			var qs [][]byte
			for i := range 64 {
				m := new(dns.Msg)
				m.SetQuestion(bigName((i*7919)%bigUpdDelegations), dns.TypeA)
				m.SetEdns0(1232, i%2 == 0)
				q, _ := m.Pack()
				qs = append(qs, q)
			}
			t := time.NewTicker(time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
				}
				s := cur.Load()
				for _, q := range qs {
					s.Answer(buf, q, false)
				}
			}
		}()
		buf := make([]byte, 65535)
		walls := make([]time.Duration, 0, b.N)
		var settle time.Duration
		b.ReportAllocs()
		b.ResetTimer()
		cpu0, flt0 := processCPU(), minorFaults()
		for i := 0; i < b.N; i++ {
			nz, wall := publishUpdate(b, &cur, z, sets[i][0], sets[i][1], soaQ, buf)
			walls = append(walls, wall)
			// The index Apply makes in the background is done
			// before the next update, outside the time measured,
			// as it is when updates come minutes apart; its time
			// is reported apart.
			b.StopTimer()
			t1 := time.Now()
			nz.Settle()
			settle += time.Since(t1)
			b.StartTimer()
			z = nz
		}
		cpu, flt := processCPU()-cpu0, minorFaults()-flt0
		b.StopTimer()
		close(stop)
		<-done
		reportWalls(b, walls)
		// The reader's own CPU is in cpu: it is one core's worth of
		// the wall time, reported apart by the ns/op.
		b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
		b.ReportMetric(float64(flt)/float64(b.N), "faults/op")
		b.ReportMetric(float64(settle.Microseconds())/1000/float64(b.N), "settle-ms/op")
		if z.Applied() != "incremental" {
			b.Fatalf("applied: %s", z.Applied())
		}
	})
}

// runBigChurn runs fn as a sub-benchmark for the unsigned and the
// NSEC3-signed TLD of the update benchmarks (unsigned-churn, nsec3-churn),
// which need RINGDNS_BIG=1.
func runBigChurn(b *testing.B, fn func(b *testing.B, signed bool)) {
	for _, signed := range []bool{false, true} {
		name := "unsigned-churn"
		if signed {
			name = "nsec3-churn"
		}
		b.Run(name, func(b *testing.B) {
			requireBigUpd(b)
			fn(b, signed)
		})
	}
}

// bigSOAQuery is a query for the SOA of the big zones' apex.
func bigSOAQuery() []byte {
	m := new(dns.Msg)
	m.SetQuestion("big.", dns.TypeSOA)
	q, _ := m.Pack()
	return q
}

// publishUpdate is what the update benchmarks time: it applies del and
// add to z, publishes the new version in cur as the control plane does (a
// Set, a Snapshot, the pointer swap), and answers soaQ, bigSOAQuery, from
// the snapshot loaded back, into buf. It fails b unless the SOA answered
// carries the new version's serial, one past z's.
func publishUpdate(b *testing.B, cur *atomic.Pointer[Snapshot], z *zone.Zone, del, add []dns.RR, soaQ, buf []byte) (*zone.Zone, time.Duration) {
	t0 := time.Now()
	nz, err := z.Apply(del, add)
	if err != nil {
		b.Fatal(err)
	}
	set, err := zone.NewSet([]*zone.Zone{nz})
	if err != nil {
		b.Fatal(err)
	}
	cur.Store(NewSnapshot(set, Config{}))
	n, _ := cur.Load().Answer(buf, soaQ, false)
	wall := time.Since(t0)
	if got := answerSerial(buf[:n]); got != nz.Serial() || nz.Serial() != z.Serial()+1 {
		b.Fatalf("the SOA answered after the update of serial %d has serial %d, want %d", z.Serial(), got, z.Serial()+1)
	}
	return nz, wall
}

// reportWalls reports the median and the slowest of the updates' times
// walls (sorted in place) as p50-ms and max-ms.
func reportWalls(b *testing.B, walls []time.Duration) {
	if len(walls) == 0 {
		return
	}
	slices.Sort(walls)
	b.ReportMetric(float64(walls[len(walls)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(walls[len(walls)-1].Microseconds())/1000, "max-ms")
}

// answerSerial returns the serial of the SOA record in the answer section
// of reply, 0 when there is none.
func answerSerial(reply []byte) uint32 {
	m := new(dns.Msg)
	if m.Unpack(reply) != nil {
		return 0
	}
	for _, rr := range m.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa.Serial
		}
	}
	return 0
}

// minorFaults is the process's count of minor page faults so far.
func minorFaults() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Minflt
}
