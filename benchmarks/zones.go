//go:build linux

package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/miekg/dns"
)

// ZoneSet is a zone and the queries it is measured with.
type ZoneSet struct {
	Name string
	Zone ZoneFile
	// Queries holds "name type E|D" lines (EDNS on every query, DO where
	// the line says D) for ringperf and kxdpgun; DnsperfQueries the same
	// queries as "name type" lines for dnsperf, which sets DO for all or
	// none (DO).
	Queries, DnsperfQueries string
	DO                      bool
	Records                 int
}

// queryLine is one query of a mix.
type queryLine struct {
	name, typ string
	do        bool
}

func writeQueries(dir, name string, qs []queryLine, set *ZoneSet) error {
	qf, err := os.Create(filepath.Join(dir, name+".queries"))
	if err != nil {
		return err
	}
	defer qf.Close()
	dp, err := os.Create(filepath.Join(dir, name+".dnsperf"))
	if err != nil {
		return err
	}
	defer dp.Close()
	wq, wd := bufio.NewWriter(qf), bufio.NewWriter(dp)
	dos := 0
	for _, q := range qs {
		flag := "E"
		if q.do {
			flag = "D"
			dos++
		}
		fmt.Fprintf(wq, "%s %s %s\n", q.name, q.typ, flag)
		fmt.Fprintf(wd, "%s %s\n", q.name, q.typ)
	}
	if err := wq.Flush(); err != nil {
		return err
	}
	if err := wd.Flush(); err != nil {
		return err
	}
	set.Queries, set.DnsperfQueries = qf.Name(), dp.Name()
	set.DO = dos*2 > len(qs)
	return nil
}

// SmallZone writes a zone of about 320 records (hosts with A and AAAA, mail,
// text, a delegation with glue) and a mix of 90% existing names and 10%
// names that do not exist.
func SmallZone(dir string, seed uint64) (*ZoneSet, error) {
	rng := rand.New(rand.NewPCG(seed, 1))
	origin := "bench.test."
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN %s\n$TTL 3600\n", origin)
	fmt.Fprintf(&b, "@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\n@ NS ns2\n@ MX 10 mail\n@ A 192.0.2.1\n")
	fmt.Fprintf(&b, "ns1 A 192.0.2.53\nns2 A 192.0.2.54\nmail A 192.0.2.25\n")
	fmt.Fprintf(&b, "sub NS ns1.sub\nns1.sub A 192.0.2.153\n")
	records := 11
	var hosts []string
	for i := 0; len(hosts) < 100; i++ {
		h := fmt.Sprintf("host%d", i)
		hosts = append(hosts, h)
		fmt.Fprintf(&b, "%s A 192.0.2.%d\n%s AAAA 2001:db8::%x\n%s TXT \"host %d\"\n", h, i%250+1, h, i+1, h, i)
		records += 3
	}
	for i := 0; records < 321; i++ {
		fmt.Fprintf(&b, "alias%d CNAME host%d\n", i, i)
		records++
	}
	path := filepath.Join(dir, "bench.test.zone")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	set := &ZoneSet{Name: "small", Zone: ZoneFile{origin, path}, Records: records}
	types := []string{"A", "AAAA", "TXT"}
	var qs []queryLine
	for range 10000 {
		if rng.IntN(10) == 0 {
			qs = append(qs, queryLine{fmt.Sprintf("nx%d.%s", rng.IntN(1e6), origin), "A", false})
			continue
		}
		qs = append(qs, queryLine{hosts[rng.IntN(len(hosts))] + "." + origin, types[rng.IntN(len(types))], false})
	}
	return set, writeQueries(dir, "small", qs, set)
}

// RootZone uses the real signed root zone with the mix root servers see
// most: queries for names under TLDs that do not exist (NXDOMAIN with two
// NSECs when DO is set), referrals to existing TLDs, and a few apex
// queries; DO=1 on 80%, as resolvers validate.
func RootZone(dir, src string, seed uint64) (*ZoneSet, error) {
	// The zone is served from a copy in the scratch directory: the reload
	// measurement appends to the file it serves, and the repository's copy
	// must stay as it is.
	data, err := os.ReadFile(src)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "root.zone")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zp := dns.NewZoneParser(f, ".", path)
	tlds := map[string]bool{}
	records := 0
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		records++
		h := rr.Header()
		if h.Rrtype == dns.TypeNS && dns.CountLabel(h.Name) == 1 {
			tlds[strings.ToLower(h.Name)] = true
		}
	}
	if err := zp.Err(); err != nil {
		return nil, err
	}
	list := make([]string, 0, len(tlds))
	for t := range tlds {
		list = append(list, t)
	}
	sort.Strings(list)
	rng := rand.New(rand.NewPCG(seed, 2))
	var qs []queryLine
	for range 20000 {
		do := rng.IntN(10) < 8
		switch r := rng.IntN(100); {
		case r < 55:
			qs = append(qs, queryLine{fmt.Sprintf("%s.%s.", randLabel(rng, 3+rng.IntN(8)), randLabel(rng, 4+rng.IntN(10))), "A", do})
		case r < 95:
			qs = append(qs, queryLine{fmt.Sprintf("%s.%s", randLabel(rng, 4+rng.IntN(8)), list[rng.IntN(len(list))]), []string{"A", "AAAA", "NS"}[rng.IntN(3)], do})
		default:
			qs = append(qs, queryLine{".", []string{"SOA", "NS", "DNSKEY"}[rng.IntN(3)], do})
		}
	}
	set := &ZoneSet{Name: "root", Zone: ZoneFile{".", path}, Records: records}
	return set, writeQueries(dir, "root", qs, set)
}

// TLDZone writes a TLD-sized zone: n delegations, each with two NS records
// (one in the zone with A glue for a third of them), and DS records for a
// third, signed offline with NSEC3 (opt-out flag set, no salt, no extra
// iterations) by ldns-signzone with fresh ECDSA keys when sign is set. The
// query mix sets DO on 80%, as resolvers validate.
func TLDZone(dir string, n int, seed uint64, sign bool) (*ZoneSet, error) {
	origin := "bench."
	path := filepath.Join(dir, "bench.zone")
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fmt.Fprintf(w, "$ORIGIN %s\n$TTL 86400\n", origin)
	fmt.Fprintf(w, "@ SOA a.nic hostmaster 1 1800 900 604800 86400\n@ NS a.nic\n@ NS b.nic\na.nic A 198.51.100.1\nb.nic A 198.51.100.2\n")
	records := 5
	for i := range n {
		d := fmt.Sprintf("d%07d", i)
		if i%3 == 0 {
			fmt.Fprintf(w, "%s NS ns1.%s\n%s NS ns.hoster%d.example.\nns1.%s A 203.0.113.%d\n", d, d, d, i%97, d, i%250+1)
			records += 3
		} else {
			fmt.Fprintf(w, "%s NS ns1.hoster%d.example.\n%s NS ns2.hoster%d.example.\n", d, i%97, d, i%97)
			records += 2
		}
		if i%3 == 1 {
			fmt.Fprintf(w, "%s DS %d 13 2 %064x\n", d, i%65536, uint64(i)*0x9e3779b97f4a7c15)
			records++
		}
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if sign {
		signed, added, err := signNSEC3(dir, origin, path)
		if err != nil {
			return nil, err
		}
		path, records = signed, records+added
	}
	rng := rand.New(rand.NewPCG(seed, 3))
	var qs []queryLine
	for range 20000 {
		do := sign && rng.IntN(10) < 8
		if rng.IntN(10) < 7 {
			qs = append(qs, queryLine{fmt.Sprintf("www.d%07d.%s", rng.IntN(n), origin), "A", do})
		} else {
			qs = append(qs, queryLine{fmt.Sprintf("%s.%s", randLabel(rng, 8), origin), "A", do})
		}
	}
	set := &ZoneSet{Name: "tld", Zone: ZoneFile{origin, path}, Records: records}
	return set, writeQueries(dir, "tld", qs, set)
}

func randLabel(rng *rand.Rand, n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = letters[rng.IntN(len(letters))]
	}
	// A leading digit-free label keeps the junk names looking like names.
	b[0] = letters[rng.IntN(26)]
	return string(b)
}

// signNSEC3 signs the zone file at path with fresh keys made in dir and
// returns the signed file and how many records signing added.
func signNSEC3(dir, origin, path string) (string, int, error) {
	keygen := func(args ...string) (string, error) {
		cmd := exec.Command("ldns-keygen", append(args, origin)...)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("ldns-keygen (Debian package ldnsutils): %v", err)
		}
		return strings.TrimSpace(string(out)), nil
	}
	ksk, err := keygen("-a", "ECDSAP256SHA256", "-k")
	if err != nil {
		return "", 0, err
	}
	zsk, err := keygen("-a", "ECDSAP256SHA256")
	if err != nil {
		return "", 0, err
	}
	signed := path + ".signed"
	cmd := exec.Command("ldns-signzone", "-n", "-p", "-t", "0", "-f", signed, path, ksk, zsk)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", 0, fmt.Errorf("ldns-signzone: %v: %s", err, out)
	}
	count := func(p string) (int, error) {
		f, err := os.Open(p)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		n := 0
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if l := sc.Bytes(); len(l) > 0 && l[0] != ';' && l[0] != '$' {
				n++
			}
		}
		return n, sc.Err()
	}
	before, err := count(path)
	if err != nil {
		return "", 0, err
	}
	after, err := count(signed)
	if err != nil {
		return "", 0, err
	}
	return signed, after - before, nil
}
