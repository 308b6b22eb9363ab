package dataplane

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/nic"
	"github.com/ringdns/ringdns/nic/nictest"
)

// TestWorkerChecksumDrops serves an Ethernet ring, the stand-in for the
// AF_XDP port, with queries whose UDP checksums verify and queries whose
// checksums do not (a corrupted datagram over IPv4 and IPv6, a zero
// checksum over IPv6), among a frame that is not a query: the port drops
// the corrupted frames before the worker sees them, and the worker counts
// them as queries dropped for DropChecksum ("bad-checksum"), apart from the
// frame drops, so that queries = replies + drops still holds.
func TestWorkerChecksumDrops(t *testing.T) {
	q := packQuery(t, 7, "www.wk.test.", dns.TypeA, 0)
	corrupt := func(f []byte) []byte { f[len(f)-1] ^= 0x01; return f } // the query's class
	zeroSum := func(f []byte) []byte { f[14+40+6], f[14+40+7] = 0, 0; return f }
	frames := [][]byte{
		queryFrame(q, false, 40000),
		queryFrame(q, true, 40001),
		corrupt(queryFrame(q, false, 40002)),
		corrupt(queryFrame(q, true, 40003)),
		zeroSum(queryFrame(q, true, 40004)),
		{1, 2, 3},
	}
	replies := 0
	ring := nictest.NewRing(nictest.RingConfig{Ethernet: true, Inspect: func(i int, p *nic.Packet) {
		if i > 1 {
			t.Fatalf("frame %d, whose checksum is wrong or which is not a query, reached the worker", i)
		}
		replies++
	}}, frames)
	var c Counters
	w := &Worker{Port: ring, Snapshot: workerSnapshot(t), Counters: &c, CPU: -1}
	var st portState
	st.init(w)
	if err := w.turn(make([]nic.Packet, len(frames)), &st); err != nil {
		t.Fatal(err)
	}
	v := c.Values()
	if replies != 2 || v.Replies != 2 || v.Drops[DropChecksum] != 3 || v.Drops[DropFrame] != 1 || v.Queries != 6 {
		t.Fatalf("%d replies inspected, counters %+v", replies, v)
	}
	if DropNames[DropChecksum] != "bad-checksum" {
		t.Fatalf("DropChecksum is named %q, want bad-checksum", DropNames[DropChecksum])
	}
}
