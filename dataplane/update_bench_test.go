package dataplane

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/ringdns/ringdns/zone"
)

// The big update benchmarks load a TLD of bigUpdDelegations delegations
// (NS, in-domain glue for the even ones, a DS for every fourth), unsigned
// or NSEC3-signed, and apply change sets of 1,000 changed delegations to
// it: set RINGDNS_BIG=1 to run them (a minute and a few GB).
const bigUpdDelegations = 1_000_000

func requireBigUpd(tb testing.TB) {
	if os.Getenv("RINGDNS_BIG") == "" {
		tb.Skip("set RINGDNS_BIG=1 to load the generated 1,000,000-delegation zones")
	}
}

// updSigB64 is a made-up signature: the loader does not verify signatures.
var updSigB64 = base64.StdEncoding.EncodeToString(make([]byte, 64))

// updSig returns the text of an RRSIG over type t at name with version v
// in its signature bytes.
func updSig(name string, t string, labels, v int) string {
	sig := make([]byte, 64)
	sig[0], sig[1], sig[2] = byte(v), byte(v>>8), byte(v>>16)
	return fmt.Sprintf("%s 86400 IN RRSIG %s 13 %d 86400 20300101000000 20200101000000 4242 big. %s\n", name, t, labels, base64.StdEncoding.EncodeToString(sig))
}

// bigDelegState is the part of a delegation the change sets change.
type bigDelegState struct{ glue, ds, hoster, sig int }

func bigInitial(i int) bigDelegState { return bigDelegState{glue: 0, ds: 0, hoster: i % 997, sig: 0} }

func bigName(i int) string { return fmt.Sprintf("d%d.big.", i) }

// bigDelegText writes delegation i's records in state s.
func bigDelegText(w *strings.Builder, i int, s bigDelegState, signed bool) {
	n := bigName(i)
	if i%2 == 0 {
		fmt.Fprintf(w, "%s 86400 IN NS ns1.%s\nns1.%s 86400 IN A 10.%d.%d.%d\n", n, n, n, (i>>16)&255, (i>>8)&255, (i+s.glue)&255)
	}
	fmt.Fprintf(w, "%s 86400 IN NS ns.hoster%d.example.net.\n", n, s.hoster)
	if i%4 == 0 {
		fmt.Fprintf(w, "%s 86400 IN DS %d 13 2 %064x\n", n, i%65536, uint64(i)*2654435761+uint64(s.ds))
		if signed {
			w.WriteString(updSig(n, "DS", 2, s.ds))
		}
	}
}

// bigZone writes the TLD to a file and loads it; for a signed zone, it
// also returns the NSEC3 owner of each delegation.
func bigZone(tb testing.TB, signed bool) (*zone.Zone, []string) {
	tb.Helper()
	dir := tb.TempDir()
	path := filepath.Join(dir, "big.zone")
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString("big. 86400 IN SOA ns1.nic.big. hostmaster.nic.big. 1 1800 900 604800 86400\n")
	w.WriteString("big. 86400 IN NS ns1.nic.big.\nns1.nic.big. 86400 IN A 192.0.2.1\n")
	var owners []string
	if signed {
		w.WriteString("big. 86400 IN DNSKEY 257 3 13 " + updSigB64 + "\nbig. 0 IN NSEC3PARAM 1 0 0 -\n")
		for _, t := range []string{"SOA", "NS", "DNSKEY", "NSEC3PARAM"} {
			w.WriteString(updSig("big.", t, 1, 1)) // version 1: the SOA's serial
		}
		w.WriteString(updSig("ns1.nic.big.", "A", 3, 0))
	}
	var sb strings.Builder
	for i := range bigUpdDelegations {
		sb.Reset()
		bigDelegText(&sb, i, bigInitial(i), signed)
		w.WriteString(sb.String())
	}
	if signed {
		type hn struct {
			hash  string
			name  string
			types string
		}
		var chain []hn
		add := func(name, types string) {
			chain = append(chain, hn{strings.ToLower(dns.HashName(name, dns.SHA1, 0, "")), name, types})
		}
		add("big.", "NS SOA RRSIG DNSKEY NSEC3PARAM")
		add("nic.big.", "")
		add("ns1.nic.big.", "A RRSIG")
		for i := range bigUpdDelegations {
			if i%4 == 0 {
				add(bigName(i), "NS DS RRSIG")
			} else {
				add(bigName(i), "NS")
			}
		}
		slices.SortFunc(chain, func(a, b hn) int { return strings.Compare(a.hash, b.hash) })
		owners = make([]string, bigUpdDelegations)
		for k, e := range chain {
			next := strings.ToUpper(chain[(k+1)%len(chain)].hash)
			o := e.hash + ".big."
			fmt.Fprintf(w, "%s 86400 IN NSEC3 1 0 0 - %s %s\n", o, next, e.types)
			w.WriteString(updSig(o, "NSEC3", 2, 0))
			var i int
			if _, err := fmt.Sscanf(e.name, "d%d.big.", &i); err == nil {
				owners[i] = o + " 86400 IN NSEC3 1 0 0 - " + next + " " + e.types
			}
		}
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	f.Close()
	z, err := zone.LoadFile("big.", path)
	if err != nil {
		tb.Fatal(err)
	}
	os.Remove(path)
	return z, owners
}

// bigChanges is a series of change sets over the big zone, each changing
// 1,000 delegations (glue renumbered, DS replaced and re-signed, one NS
// moved to another hoster, the NSEC3 re-signed) and the SOA (re-signed).
type bigChanges struct {
	signed bool
	owners []string
	state  map[int]bigDelegState
	serial int
}

func (c *bigChanges) get(i int) bigDelegState {
	if s, ok := c.state[i]; ok {
		return s
	}
	return bigInitial(i)
}

func (c *bigChanges) rrs(tb testing.TB, text string) []dns.RR {
	var out []dns.RR
	zp := dns.NewZoneParser(strings.NewReader(text), "big.", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		out = append(out, rr)
	}
	if err := zp.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// next returns change set k (from 1).
func (c *bigChanges) next(tb testing.TB, k int) (del, add []dns.RR) {
	var d, a strings.Builder
	soa := func(w *strings.Builder, s int) {
		fmt.Fprintf(w, "big. 86400 IN SOA ns1.nic.big. hostmaster.nic.big. %d 1800 900 604800 86400\n", s)
		if c.signed {
			w.WriteString(updSig("big.", "SOA", 1, s))
		}
	}
	soa(&d, c.serial)
	c.serial++
	soa(&a, c.serial)
	for j := range 1000 {
		i := (j*997 + k*7919) % bigUpdDelegations
		old := c.get(i)
		s := old
		s.glue++
		s.ds++
		s.hoster = (s.hoster + 1) % 997
		s.sig++
		c.state[i] = s
		bigDelegText(&d, i, old, c.signed)
		bigDelegText(&a, i, s, c.signed)
		if c.signed {
			o := c.owners[i]
			owner := o[:strings.IndexByte(o, ' ')]
			d.WriteString(updSig(owner, "NSEC3", 2, old.sig))
			a.WriteString(updSig(owner, "NSEC3", 2, s.sig))
		}
	}
	return c.rrs(tb, d.String()), c.rrs(tb, a.String())
}

var bigUpd struct {
	sync.Mutex
	zones map[bool]*zone.Zone
	owner map[bool][]string
}

func bigUpdZone(tb testing.TB, signed bool) (*zone.Zone, []string) {
	bigUpd.Lock()
	defer bigUpd.Unlock()
	if bigUpd.zones == nil {
		bigUpd.zones, bigUpd.owner = map[bool]*zone.Zone{}, map[bool][]string{}
	}
	if bigUpd.zones[signed] == nil {
		bigUpd.zones[signed], bigUpd.owner[signed] = bigZone(tb, signed)
	}
	return bigUpd.zones[signed], bigUpd.owner[signed]
}

// BenchmarkApplyDelegations applies change sets of 1,000 changed
// delegations and the SOA to the 1M-delegation TLD, one after another,
// each to the version the one before made: the time per op is from the
// change set handed over to the new version ready to publish. The first
// update of a zone also builds its index of NS/MX/SRV targets; it is
// made before the timer starts and reported as first-ms.
func BenchmarkApplyDelegations(b *testing.B) {
	for _, signed := range []bool{false, true} {
		name := "unsigned"
		if signed {
			name = "nsec3"
		}
		b.Run(name, func(b *testing.B) {
			requireBigUpd(b)
			z, owners := bigUpdZone(b, signed)
			c := &bigChanges{signed: signed, owners: owners, state: map[int]bigDelegState{}, serial: 1}
			del, add := c.next(b, 1)
			t0 := time.Now()
			z, err := z.Apply(del, add)
			if err != nil {
				b.Fatal(err)
			}
			first := time.Since(t0)
			if z.Applied() != "incremental" {
				b.Fatalf("applied: %s", z.Applied())
			}
			sets := make([][2][]dns.RR, b.N)
			for i := range sets {
				sets[i][0], sets[i][1] = c.next(b, i+2)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if z, err = z.Apply(sets[i][0], sets[i][1]); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(first.Microseconds())/1000, "first-ms")
			if z.Applied() != "incremental" {
				b.Fatalf("applied: %s", z.Applied())
			}
		})
	}
}

// TestApplyHundredBig applies 100 change sets of 1,000 delegations to the
// 1M-delegation TLD and compares the result with a table built from
// scratch from its records: the same answers for a sample of queries,
// the table's memory (MemoryBytes) and the heap held, and the time per
// query over both (the per-query figures are logged, not asserted: they
// are timings on a shared 2-core VM).
func TestApplyHundredBig(t *testing.T) {
	requireBigUpd(t)
	for _, signed := range []bool{false, true} {
		z, owners := bigUpdZone(t, signed)
		c := &bigChanges{signed: signed, owners: owners, state: map[int]bigDelegState{}, serial: 1}
		var took []time.Duration
		for k := 1; k <= 100; k++ {
			del, add := c.next(t, k+1000)
			t0 := time.Now()
			nz, err := z.Apply(del, add)
			if err != nil {
				t.Fatal(err)
			}
			took = append(took, time.Since(t0))
			if nz.Applied() != "incremental" {
				t.Fatalf("update %d: %s", k, nz.Applied())
			}
			z = nz
		}
		first := took[0]
		took = took[1:]
		slices.Sort(took)
		t.Logf("signed=%v: updates 2-100 of 1,000 delegations: min %v median %v max %v (the first, which builds the target index: %v)", signed, took[0], took[49], took[98], first)
		// The same records, from scratch: written out and loaded.
		dir := t.TempDir()
		path := filepath.Join(dir, "final.zone")
		f, _ := os.Create(path)
		w := bufio.NewWriterSize(f, 1<<20)
		z.Walk(func(r *zone.Record) error {
			rr, err := r.RR()
			if err != nil {
				return err
			}
			w.WriteString(rr.String())
			w.WriteByte('\n')
			return nil
		})
		w.Flush()
		f.Close()
		bigUpd.Lock()
		// The base version is now only the lineage's, and the NSEC3
		// owners' texts (over a hundred megabytes) are not to be counted.
		delete(bigUpd.zones, signed)
		delete(bigUpd.owner, signed)
		bigUpd.Unlock()
		c.owners, owners = nil, nil
		heapWith := func(keep func()) uint64 {
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			keep()
			return m.HeapInuse
		}
		hUpd := heapWith(func() { runtime.KeepAlive(z) })
		fresh, err := zone.LoadFile("big.", path)
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(path)
		hBoth := heapWith(func() { runtime.KeepAlive(z); runtime.KeepAlive(fresh) })
		t.Logf("signed=%v: MemoryBytes updated %d, fresh %d (%.2f%%); heap with the updated zone %d MB, with both %d MB (fresh alone about %d MB)",
			signed, z.MemoryBytes(), fresh.MemoryBytes(), 100*float64(z.MemoryBytes()-fresh.MemoryBytes())/float64(fresh.MemoryBytes()),
			hUpd>>20, hBoth>>20, (hBoth-hUpd)>>20)
		// Queries: changed and unchanged delegations, glue, nonexistent
		// names, with and without DO.
		var qs [][]byte
		for i := 0; i < 20000; i++ {
			d := (i * 7919) % bigUpdDelegations
			for _, qn := range []string{"www." + bigName(d), bigName(d), fmt.Sprintf("nx%d.big.", i)} {
				m := new(dns.Msg)
				m.SetQuestion(qn, dns.TypeA)
				m.SetEdns0(1232, i%2 == 0)
				q, _ := m.Pack()
				qs = append(qs, q)
			}
		}
		sa, sb := updSnapshot(t, z), updSnapshot(t, fresh)
		da, db := make([]byte, 65535), make([]byte, 65535)
		for _, q := range qs {
			na, _ := sa.Answer(da, q, false)
			nb, _ := sb.Answer(db, q, false)
			if string(da[:na]) != string(db[:nb]) {
				m := new(dns.Msg)
				m.Unpack(q)
				t.Fatalf("signed=%v: %s: the updated and the fresh zone answer differently", signed, m.Question[0].String())
			}
		}
		per := func(s *Snapshot) time.Duration {
			best := time.Duration(1 << 62)
			for range 5 {
				t0 := time.Now()
				for _, q := range qs {
					s.Answer(da, q, false)
				}
				best = min(best, time.Since(t0))
			}
			return best / time.Duration(len(qs))
		}
		for range 2 {
			t.Logf("signed=%v: per query (best of 5 passes over %d queries): updated %v, fresh %v", signed, len(qs), per(sa), per(sb))
		}
		_ = net.IPv4len
	}
}
