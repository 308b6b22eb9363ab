package dataplane

import (
	"bufio"
	"bytes"
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
// It is a variable so that TestApplyChurn can run the same generator on a
// smaller zone.
var bigUpdDelegations = 1_000_000

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

// bigLink is one NSEC3 record of the big signed zone's chain: its owner's
// hash (lowercase base32hex), the name it stands for (delegation num, or
// -1 for the apex and the nic names), the kind of types it lists
// (bigKinds) and the version of its signature.
type bigLink struct {
	hash [32]byte
	num  int32
	kind uint8
	sig  int32
}

var bigKinds = []string{"NS", "NS DS RRSIG", "NS SOA RRSIG DNSKEY NSEC3PARAM", "", "A RRSIG"}

func bigHash(name string) (h [32]byte) {
	copy(h[:], strings.ToLower(dns.HashName(name, dns.SHA1, 0, "")))
	return h
}

func bigLinkOf(i int) bigLink {
	l := bigLink{hash: bigHash(bigName(i)), num: int32(i)}
	if i%4 == 0 {
		l.kind = 1
	}
	return l
}

func (l *bigLink) owner() string { return string(l.hash[:]) + ".big." }

// text writes the NSEC3 record, whose next hash is next's, and its RRSIG.
func (l *bigLink) text(w *strings.Builder, next *bigLink) {
	fmt.Fprintf(w, "%s 86400 IN NSEC3 1 0 0 - %s %s\n", l.owner(), strings.ToUpper(string(next.hash[:])), bigKinds[l.kind])
	w.WriteString(updSig(l.owner(), "NSEC3", 2, int(l.sig)))
}

func bigCmp(a, b bigLink) int { return bytes.Compare(a.hash[:], b.hash[:]) }

// bigZone writes the TLD to a file and loads it; for a signed zone, it
// also returns the NSEC3 chain, in hash order.
func bigZone(tb testing.TB, signed bool) (*zone.Zone, []bigLink) {
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
	var chain []bigLink
	if signed {
		chain = make([]bigLink, 0, bigUpdDelegations+3)
		chain = append(chain, bigLink{hash: bigHash("big."), num: -1, kind: 2},
			bigLink{hash: bigHash("nic.big."), num: -1, kind: 3}, bigLink{hash: bigHash("ns1.nic.big."), num: -1, kind: 4})
		for i := range bigUpdDelegations {
			chain = append(chain, bigLinkOf(i))
		}
		slices.SortFunc(chain, bigCmp)
		for k := range chain {
			sb.Reset()
			chain[k].text(&sb, &chain[(k+1)%len(chain)])
			w.WriteString(sb.String())
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
	return z, chain
}

// bigChanges is a series of change sets over the big zone, each changing
// 1,000 delegations (glue renumbered, DS replaced and re-signed, one NS
// moved to another hoster, the NSEC3 re-signed) and the SOA (re-signed).
// With churn set, a third of the 1,000 are changed so, a third removed
// (NS, glue, DS, and in the signed zone their NSEC3 and signatures) and a
// third added (new names, with glue for the even ones and DS for every
// fourth), and the NSEC3 records before the names added and removed get
// their new next hashes, re-signed.
type bigChanges struct {
	signed bool
	churn  bool
	chain  []bigLink // the signed zone's NSEC3 chain, kept up to date with churn
	spare  []bigLink // the chain's array before the last change, for the next
	own    bool      // chain's array was made by rechain (the first is shared)
	state  map[int]bigDelegState
	gone   map[int]bool
	added  int // delegations numbered from bigUpdDelegations on that were added
	cursor int // picks the delegations changed and removed
	serial int
}

func newBigChanges(signed, churn bool, chain []bigLink) *bigChanges {
	return &bigChanges{signed: signed, churn: churn, chain: chain, state: map[int]bigDelegState{}, gone: map[int]bool{}, serial: 1}
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

// pick returns the next original delegation not removed.
func (c *bigChanges) pick() int {
	for {
		c.cursor++
		i := (c.cursor * 7919) % bigUpdDelegations
		if !c.gone[i] {
			return i
		}
	}
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
	// 1,000 delegations of the 1M-delegation TLD, in proportion for a
	// smaller one.
	per := bigUpdDelegations / 3000
	nChange := 3 * per
	if c.churn {
		nChange = per
	}
	var resign [][32]byte // the NSEC3 records re-signed
	for j := range nChange {
		i := (j*997 + k*7919) % bigUpdDelegations
		if c.churn {
			i = c.pick()
		}
		old := c.get(i)
		s := old
		s.glue++
		s.ds++
		s.hoster = (s.hoster + 1) % 997
		s.sig++
		c.state[i] = s
		bigDelegText(&d, i, old, c.signed)
		bigDelegText(&a, i, s, c.signed)
		if c.signed && !c.churn {
			// The chain stays: each NSEC3 is re-signed with its
			// delegation's version.
			h := bigHash(bigName(i))
			owner := string(h[:]) + ".big."
			d.WriteString(updSig(owner, "NSEC3", 2, old.sig))
			a.WriteString(updSig(owner, "NSEC3", 2, s.sig))
		}
		if c.signed && c.churn {
			resign = append(resign, bigHash(bigName(i)))
		}
	}
	if c.churn {
		var removed, inserted []bigLink
		for range per {
			i := c.pick()
			c.gone[i] = true
			bigDelegText(&d, i, c.get(i), c.signed)
			delete(c.state, i)
			removed = append(removed, bigLinkOf(i))
		}
		for range per + 1 {
			i := bigUpdDelegations + c.added
			c.added++
			bigDelegText(&a, i, bigInitial(i), c.signed)
			inserted = append(inserted, bigLinkOf(i))
		}
		if c.signed {
			c.rechain(&d, &a, resign, removed, inserted)
		}
	}
	return c.rrs(tb, d.String()), c.rrs(tb, a.String())
}

// rechain removes and inserts links in the chain and writes the NSEC3
// records that change to d (the old records) and a (the new): those
// removed and added, those re-signed, and those before a link added or
// removed, whose next hash changes (re-signed too).
func (c *bigChanges) rechain(d, a *strings.Builder, resign [][32]byte, removed, inserted []bigLink) {
	old := c.chain
	find := func(ch []bigLink, h [32]byte) int {
		k, _ := slices.BinarySearchFunc(ch, bigLink{hash: h}, bigCmp)
		return k
	}
	gone := map[[32]byte]bool{}
	for _, l := range removed {
		gone[l.hash] = true
	}
	slices.SortFunc(inserted, bigCmp)
	isNew := map[[32]byte]bool{}
	// The new chain goes into the array of the chain before the last
	// (and the old one's is kept for the next, unless it is the one
	// bigUpdZone shares with the other benchmarks): a new array of a million
	// links for each change set was garbage that BenchmarkApplyServed's
	// collections took with the zone's versions, and that the runtime
	// then kept resident.
	nc := slices.Grow(c.spare[:0], len(old)-len(removed)+len(inserted))
	j := 0
	for _, l := range old {
		for j < len(inserted) && bigCmp(inserted[j], l) < 0 {
			nc = append(nc, inserted[j])
			isNew[inserted[j].hash] = true
			j++
		}
		if !gone[l.hash] {
			nc = append(nc, l)
		}
	}
	for ; j < len(inserted); j++ {
		nc = append(nc, inserted[j])
		isNew[inserted[j].hash] = true
	}
	prev := func(k int) int { return (k + len(nc) - 1) % len(nc) }
	touched := map[[32]byte]bool{}
	for _, h := range resign {
		touched[h] = true
	}
	for _, l := range inserted {
		touched[l.hash] = true
		touched[nc[prev(find(nc, l.hash))].hash] = true
	}
	for _, l := range removed {
		// find gives the place the removed hash would take: the link
		// before it is the one whose next hash changes.
		touched[nc[prev(find(nc, l.hash))].hash] = true
	}
	for _, l := range removed {
		k := find(old, l.hash)
		old[k].text(d, &old[(k+1)%len(old)])
	}
	for h := range touched {
		if !isNew[h] {
			k := find(old, h)
			old[k].text(d, &old[(k+1)%len(old)])
			nc[find(nc, h)].sig++
		}
		k := find(nc, h)
		nc[k].text(a, &nc[(k+1)%len(nc)])
	}
	if c.own {
		c.spare = old
	}
	c.chain, c.own = nc, true
}

var bigUpd struct {
	sync.Mutex
	zones map[bool]*zone.Zone
	chain map[bool][]bigLink
	// used records that a base zone was updated: updating it again is
	// updating an older version, which copies its arenas, so only the
	// first update of each base measures a first update, which first
	// keeps (by benchmark name) for the runs that report it.
	used  map[bool]bool
	first map[string]time.Duration
}

// firstUse reports whether the base zone has not been updated before in
// this process, and marks it updated.
func firstUse(signed bool) bool {
	bigUpd.Lock()
	defer bigUpd.Unlock()
	if bigUpd.used == nil {
		bigUpd.used = map[bool]bool{}
	}
	first := !bigUpd.used[signed]
	bigUpd.used[signed] = true
	return first
}

// firstTook records or returns the first update's time for benchmark
// name: set is recorded when genuine; ok is false when none was.
func firstTook(name string, genuine bool, set time.Duration) (time.Duration, bool) {
	bigUpd.Lock()
	defer bigUpd.Unlock()
	if bigUpd.first == nil {
		bigUpd.first = map[string]time.Duration{}
	}
	if genuine {
		bigUpd.first[name] = set
	}
	d, ok := bigUpd.first[name]
	return d, ok
}

// bigUpdZone returns the big TLD, loaded once per test binary, and its
// NSEC3 chain when signed.
func bigUpdZone(tb testing.TB, signed bool) (*zone.Zone, []bigLink) {
	bigUpd.Lock()
	defer bigUpd.Unlock()
	if bigUpd.zones == nil {
		bigUpd.zones, bigUpd.chain = map[bool]*zone.Zone{}, map[bool][]bigLink{}
	}
	if bigUpd.zones[signed] == nil {
		bigUpd.zones[signed], bigUpd.chain[signed] = bigZone(tb, signed)
	}
	return bigUpd.zones[signed], bigUpd.chain[signed]
}

// BenchmarkApplyDelegations applies change sets of 1,000 changed
// delegations and the SOA to the 1M-delegation TLD, one after another,
// each to the version the one before made: the time per op is from the
// change set handed over to the new version ready to publish. In the
// churn variants a third of the delegations are added, a third removed
// and a third changed (with, in the NSEC3-signed TLD, their NSEC3 records
// and those before them re-pointed and re-signed); in the others all
// 1,000 are changed. The first update of a zone is made before the timer
// starts; it is reported as first-ms by the one run that updates the
// loaded zone first (the others update it again, an older version by
// then, which copies its arenas).
func BenchmarkApplyDelegations(b *testing.B) {
	for _, churn := range []bool{false, true} {
		for _, signed := range []bool{false, true} {
			name := "unsigned"
			if signed {
				name = "nsec3"
			}
			if churn {
				name += "-churn"
			}
			b.Run(name, func(b *testing.B) {
				requireBigUpd(b)
				z, chain := bigUpdZone(b, signed)
				c := newBigChanges(signed, churn, chain)
				del, add := c.next(b, 1)
				genuine := firstUse(signed)
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
				cpu0 := processCPU()
				for i := 0; i < b.N; i++ {
					if z, err = z.Apply(sets[i][0], sets[i][1]); err != nil {
						b.Fatal(err)
					}
					// The index Apply leaves to the background is made
					// before the next update, outside the time (see
					// BenchmarkApplyPublish); the CPU counts it.
					b.StopTimer()
					z.Settle()
					b.StartTimer()
				}
				cpu := processCPU() - cpu0
				b.StopTimer()
				if f, ok := firstTook(b.Name(), genuine, first); ok {
					b.ReportMetric(float64(f.Microseconds())/1000, "first-ms")
				}
				b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
				if z.Applied() != "incremental" {
					b.Fatalf("applied: %s", z.Applied())
				}
			})
		}
	}
}

// TestApplyHundredBig applies 100 change sets of 1,000 delegations (a
// third added, a third removed, a third changed, as in the churn variants
// of BenchmarkApplyDelegations) to the 1M-delegation TLD and compares the result with a table built from
// scratch from its records: the same answers for a sample of queries,
// the table's memory (MemoryBytes) and the heap held, and the time per
// query over both (the per-query figures are logged, not asserted: they
// are timings on a shared 2-core VM).
func TestApplyHundredBig(t *testing.T) {
	requireBigUpd(t)
	for _, signed := range []bool{false, true} {
		z, chain := bigUpdZone(t, signed)
		c := newBigChanges(signed, true, chain)
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
		t.Logf("signed=%v: updates 2-100 of 1,000 delegations: min %v median %v max %v (the first: %v)", signed, took[0], took[49], took[98], first)
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
		// chain of the generator (tens of megabytes) is not to be counted.
		delete(bigUpd.zones, signed)
		delete(bigUpd.chain, signed)
		bigUpd.Unlock()
		c.chain, chain = nil, nil
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
			// Delegations picked as the changes are (changed and
			// removed ones among them), added ones, and names that
			// do not exist.
			d := (i * 7919) % bigUpdDelegations
			n := bigUpdDelegations + i%c.added
			for _, qn := range []string{"www." + bigName(d), bigName(d), bigName(n), "ns1." + bigName(n), fmt.Sprintf("nx%d.big.", i)} {
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

// TestApplyChurn runs the generator of the big benchmarks on a TLD of
// 30,000 delegations: ten change sets of 31 delegations added, removed
// and changed, applied in place one after another, must give the records
// and answers of the zone loaded from scratch, and that zone must load
// without warnings (so the generator's NSEC3 chain is whole, and the
// benchmarks measure what they claim to).
func TestApplyChurn(t *testing.T) {
	defer func(n int) { bigUpdDelegations = n }(bigUpdDelegations)
	bigUpdDelegations = 30_000
	for _, signed := range []bool{false, true} {
		z, chain := bigZone(t, signed)
		c := newBigChanges(signed, true, chain)
		for k := 1; k <= 10; k++ {
			del, add := c.next(t, k)
			nz, err := z.Apply(del, add)
			if err != nil {
				t.Fatalf("signed=%v: change set %d: %v", signed, k, err)
			}
			if nz.Applied() != "incremental" {
				t.Fatalf("signed=%v: change set %d: %s", signed, k, nz.Applied())
			}
			z = nz
		}
		var sb strings.Builder
		z.Walk(func(r *zone.Record) error {
			rr, err := r.RR()
			if err != nil {
				return err
			}
			sb.WriteString(rr.String())
			sb.WriteByte('\n')
			return nil
		})
		fresh, err := zone.Parse(strings.NewReader(sb.String()), "big.", "big.zone")
		if err != nil {
			t.Fatal(err)
		}
		if w := fresh.Warnings(); len(w) > 0 {
			t.Fatalf("signed=%v: the changed zone loads with warnings: %q", signed, w[:min(3, len(w))])
		}
		var qs [][]byte
		for i := 0; i < 3000; i++ {
			d := (i * 7919) % bigUpdDelegations
			n := bigUpdDelegations + i%c.added
			for _, qn := range []string{"www." + bigName(d), bigName(d), bigName(n), "ns1." + bigName(n), fmt.Sprintf("nx%d.big.", i)} {
				for _, do := range []bool{false, true} {
					m := new(dns.Msg)
					m.SetQuestion(qn, dns.TypeA)
					m.SetEdns0(1232, do)
					q, _ := m.Pack()
					qs = append(qs, q)
				}
			}
		}
		updCompareZones(t, 10, z, fresh, qs)
	}
}
