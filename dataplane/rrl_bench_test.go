package dataplane

import (
	"net/netip"
	"testing"

	"github.com/ringdns/ringdns/nic/nictest"
)

// BenchmarkWorkerRootMixRRL is BenchmarkWorkerRootMix and
// BenchmarkWorkerRootMixDO with response rate limiting off and on, side by
// side (compare with benchstat -col /rrl). On, the rate is one nothing
// reaches, the steady state of a server not under attack: every reply is
// classified, keyed and counted in its bucket, and passes. "on" has the
// mix's two clients (one IPv4, one IPv6 address, a port per query), so
// that the buckets are the mix's names and stay in the caches;
// "on-spread" has each query from another of 4,096 IPv4 /24s and IPv6
// /56s, so that the buckets are spread over a table of 65,536 entries (1
// MiB), as many clients would spread them. "on-spread-cookies" is
// "on-spread" with DNS cookies on as well: every feature of issue 15 that
// a query without a COOKIE option meets (RRL, the cookie check, and the
// checksums the Ethernet ring verifies), most resolvers sending none.
func BenchmarkWorkerRootMixRRL(b *testing.B) {
	for _, do := range []bool{false, true} {
		name := "do=false"
		if do {
			name = "do=true"
		}
		for _, mode := range []string{"off", "on", "on-spread", "on-spread-cookies"} {
			b.Run(name+"/rrl="+mode, func(b *testing.B) { benchWorkerRootMixRRL(b, do, mode) })
		}
	}
}

func benchWorkerRootMixRRL(b *testing.B, do bool, mode string) {
	var frames [][]byte
	if mode == "on-spread" || mode == "on-spread-cookies" {
		_, qs := rootMixFrames(b, do)
		for i, q := range qs {
			src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}), uint16(32768+i))
			dst := netip.AddrPortFrom(server4, 53)
			if i%2 == 1 {
				src = netip.AddrPortFrom(netip.AddrFrom16([16]byte{0xfd, 0x53, 5: byte(i >> 8), 6: byte(i), 15: 1}), uint16(32768+i))
				dst = netip.AddrPortFrom(server6, 53)
			}
			frames = append(frames, nictest.Frame(src, dst, q))
		}
	}
	w, ring, st := rootMixWorker(b, do, frames, nil)
	if mode == "on-spread-cookies" {
		c := NewCookies()
		c.Set(&CookieSecrets{Current: [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}})
		snap := w.Snapshot.Load()
		cfg := snap.Config()
		cfg.Cookies = c
		w.Snapshot.Store(NewSnapshot(snap.Zones(), cfg))
	}
	if mode != "off" {
		l, err := NewRRL(RRLConfig{Rate: 1 << 30, Burst: 1 << 30, Slip: 2, Workers: 1, TableSize: 1 << 16, IPv4Prefix: 24, IPv6Prefix: 56}, nil)
		if err != nil {
			b.Fatal(err)
		}
		w.RRL.Store(l)
	}
	runTurns(b, w, st, nil)
	if s, v := ring.Stats(), w.Counters.Values(); s.Replies != uint64(b.N) || v.Replies != uint64(b.N) || v.RRLSlipped != [NumRRLClasses]uint64{} {
		b.Fatalf("%d packets: ring saw %d replies, counters %d, %v slipped", b.N, s.Replies, v.Replies, v.RRLSlipped)
	}
}
