package loadgen

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/miekg/dns"
)

// EDNS says whether a query line asks for EDNS and DO.
type EDNS uint8

const (
	// EDNSDefault takes the generator's settings (-edns, -do).
	EDNSDefault EDNS = iota
	// EDNSOn sends an OPT record with DO clear ("E" in kxdpgun's files).
	EDNSOn
	// EDNSDO sends an OPT record with DO set ("D").
	EDNSDO
)

// Query is one line of a query file.
type Query struct {
	Name string // absolute, as dns.Fqdn makes it
	Type uint16
	EDNS EDNS
}

// ParseQueries reads a query file in dnsperf's format: one "NAME TYPE" per
// line, with blank lines and lines starting with ';' or '#' skipped. A third
// field "E" or "D", as kxdpgun's files have, asks for EDNS, and for DO with
// it, on that line. Errors name the line.
func ParseQueries(r io.Reader, file string) ([]Query, error) {
	var qs []Query
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || s[0] == ';' || s[0] == '#' {
			continue
		}
		f := strings.Fields(s)
		if len(f) < 2 || len(f) > 3 {
			return nil, fmt.Errorf("%s:%d: want NAME TYPE [E|D], got %q", file, line, s)
		}
		name := dns.Fqdn(f[0])
		if _, ok := dns.IsDomainName(name); !ok || len(name) > 254 {
			return nil, fmt.Errorf("%s:%d: %q is not a domain name", file, line, f[0])
		}
		t, ok := dns.StringToType[strings.ToUpper(f[1])]
		if !ok {
			var n uint16
			if _, err := fmt.Sscanf(strings.ToUpper(f[1]), "TYPE%d", &n); err != nil || n == 0 {
				return nil, fmt.Errorf("%s:%d: unknown query type %q", file, line, f[1])
			}
			t = n
		}
		q := Query{Name: name, Type: t}
		if len(f) == 3 {
			switch strings.ToUpper(f[2]) {
			case "E":
				q.EDNS = EDNSOn
			case "D":
				q.EDNS = EDNSDO
			default:
				return nil, fmt.Errorf("%s:%d: flag %q: want E (EDNS) or D (EDNS with DO)", file, line, f[2])
			}
		}
		qs = append(qs, q)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(qs) == 0 {
		return nil, fmt.Errorf("%s: no queries", file)
	}
	return qs, nil
}
