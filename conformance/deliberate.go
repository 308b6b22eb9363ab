package conformance

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// Deliberate is one entry of the deliberate-differences file: differences of
// Kind on queries that every matcher accepts are expected, for Reason.
//
// A line of the file reads
//
//	KIND KEY=VALUE[,VALUE...] ... | REASON
//
// where KEY is one of zone, category, qname, qtype, qclass, opcode, edns, do,
// transport, mutation or detail; a value in double quotes may hold spaces. Values of one key are alternatives; keys are
// all required to match. qname matches a name exactly or, written *.SUFFIX,
// any name below SUFFIX; detail matches a substring of the difference's
// detail. The reason must cite the RFC that allows the difference. Lines
// starting with # and blank lines are ignored.
type Deliberate struct {
	Kind     string
	Matchers []Matcher
	Reason   string
	Line     int
	Used     int // How many differences the entry accepted in a run.
	// Gap marks an entry of the known-gaps file: a difference that is a
	// missing ringdns feature, tracked by the issue its reason names, not a
	// choice. Gaps are reported apart from deliberate differences so that
	// nobody mistakes one for the other.
	Gap bool
}

// Matcher is one KEY=VALUE,... condition of a Deliberate entry.
type Matcher struct {
	Key    string
	Values []string
}

var deliberateKeys = map[string]bool{
	"zone": true, "category": true, "qname": true, "qtype": true, "qclass": true,
	"opcode": true, "edns": true, "do": true, "transport": true, "mutation": true,
	"detail": true,
}

var (
	rfcCitation   = regexp.MustCompile(`RFC ?[0-9]{3,4}`)
	issueCitation = regexp.MustCompile(`issue [0-9]+`)
)

// LoadDeliberate reads a deliberate-differences file.
func LoadDeliberate(path string) ([]*Deliberate, error) { return loadEntries(path, ParseDeliberate) }

// LoadGaps reads a known-gaps file. Its lines have the deliberate format,
// but each reason names the open issue ("issue N") whose work removes the
// difference instead of an RFC that allows it.
func LoadGaps(path string) ([]*Deliberate, error) { return loadEntries(path, ParseGaps) }

func loadEntries(path string, parse func(io.Reader, string) ([]*Deliberate, error)) ([]*Deliberate, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parse(f, path)
}

// ParseGaps parses known-gaps entries; name is used in errors.
func ParseGaps(r io.Reader, name string) ([]*Deliberate, error) {
	return parseEntries(r, name, true)
}

// ParseDeliberate parses deliberate-differences entries; name is used in
// errors, which give the line.
func ParseDeliberate(r io.Reader, name string) ([]*Deliberate, error) {
	return parseEntries(r, name, false)
}

func parseEntries(r io.Reader, name string, gap bool) ([]*Deliberate, error) {
	var out []*Deliberate
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		spec, reason, ok := strings.Cut(text, "|")
		reason = strings.TrimSpace(reason)
		if !ok || reason == "" {
			return nil, fmt.Errorf("%s:%d: no reason after '|'", name, line)
		}
		switch {
		case gap && !issueCitation.MatchString(reason):
			return nil, fmt.Errorf("%s:%d: the reason names no open issue (\"issue N\")", name, line)
		case !gap && !rfcCitation.MatchString(reason):
			return nil, fmt.Errorf("%s:%d: the reason cites no RFC", name, line)
		}
		fields, err := splitFields(spec)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, line, err)
		}
		if len(fields) == 0 {
			return nil, fmt.Errorf("%s:%d: no kind", name, line)
		}
		d := &Deliberate{Kind: fields[0], Reason: reason, Line: line, Gap: gap}
		for _, f := range fields[1:] {
			k, v, ok := strings.Cut(f, "=")
			if !ok || !deliberateKeys[k] || v == "" {
				return nil, fmt.Errorf("%s:%d: bad matcher %q", name, line, f)
			}
			m := Matcher{Key: k, Values: strings.Split(v, ",")}
			for _, val := range m.Values {
				if err := checkValue(k, val); err != nil {
					return nil, fmt.Errorf("%s:%d: %v", name, line, err)
				}
			}
			d.Matchers = append(d.Matchers, m)
		}
		out = append(out, d)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// splitFields splits a line at spaces outside double quotes and drops the
// quotes, so that a detail value may hold spaces: detail="false vs true".
func splitFields(s string) ([]string, error) {
	var fields []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote = !inQuote
			have = true
		case !inQuote && (r == ' ' || r == '\t'):
			if have {
				fields = append(fields, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if inQuote {
		return nil, fmt.Errorf("unterminated quote")
	}
	if have {
		fields = append(fields, cur.String())
	}
	return fields, nil
}

func checkValue(key, val string) error {
	switch key {
	case "qtype":
		if _, ok := parseType(val); !ok {
			return fmt.Errorf("unknown type %q", val)
		}
	case "qclass":
		if _, ok := parseClass(val); !ok {
			return fmt.Errorf("unknown class %q", val)
		}
	case "opcode":
		if _, err := strconv.Atoi(val); err != nil {
			return fmt.Errorf("opcode %q is not a number", val)
		}
	case "edns":
		if _, err := strconv.Atoi(val); err != nil && val != "none" {
			return fmt.Errorf("edns %q is neither none nor a size", val)
		}
	case "do":
		if val != "0" && val != "1" {
			return fmt.Errorf("do must be 0 or 1, not %q", val)
		}
	case "transport":
		if val != "udp" && val != "tcp" {
			return fmt.Errorf("transport must be udp or tcp, not %q", val)
		}
	}
	return nil
}

func parseType(s string) (uint16, bool) {
	s = strings.ToUpper(s)
	if t, ok := dns.StringToType[s]; ok {
		return t, true
	}
	if n, ok := strings.CutPrefix(s, "TYPE"); ok {
		v, err := strconv.ParseUint(n, 10, 16)
		return uint16(v), err == nil
	}
	return 0, false
}

func parseClass(s string) (uint16, bool) {
	s = strings.ToUpper(s)
	if c, ok := dns.StringToClass[s]; ok {
		return c, true
	}
	if n, ok := strings.CutPrefix(s, "CLASS"); ok {
		v, err := strconv.ParseUint(n, 10, 16)
		return uint16(v), err == nil
	}
	return 0, false
}

// Matches reports whether the entry accepts the difference d seen on
// query q over transport.
func (e *Deliberate) Matches(q *Query, transport string, d Difference) bool {
	if e.Kind != d.Kind {
		return false
	}
	for _, m := range e.Matchers {
		if !m.matches(q, transport, d) {
			return false
		}
	}
	return true
}

func (m Matcher) matches(q *Query, transport string, d Difference) bool {
	for _, v := range m.Values {
		if m.matchOne(v, q, transport, d) {
			return true
		}
	}
	return false
}

func (m Matcher) matchOne(v string, q *Query, transport string, d Difference) bool {
	switch m.Key {
	case "zone":
		// A server-wide probe belongs to no zone and matches only "none":
		// dns.Fqdn would turn its empty zone into the root's ".".
		if q.Zone == "" {
			return v == "none"
		}
		return strings.EqualFold(dns.Fqdn(v), dns.Fqdn(q.Zone))
	case "category":
		return v == q.Category
	case "qname":
		name := strings.ToLower(q.Name)
		if suffix, ok := strings.CutPrefix(v, "*."); ok {
			return dns.IsSubDomain(strings.ToLower(dns.Fqdn(suffix)), name) && !strings.EqualFold(dns.Fqdn(suffix), name)
		}
		return strings.EqualFold(dns.Fqdn(v), name)
	case "qtype":
		t, _ := parseType(v)
		return t == q.Type
	case "qclass":
		c, _ := parseClass(v)
		return c == q.Class
	case "opcode":
		n, _ := strconv.Atoi(v)
		return n == q.Opcode
	case "edns":
		if v == "none" {
			return q.EDNS == 0
		}
		n, _ := strconv.Atoi(v)
		return q.EDNS != 0 && n == q.EDNS
	case "do":
		return (v == "1") == q.DO
	case "transport":
		return v == transport
	case "mutation":
		return v == q.Mutation
	case "detail":
		return strings.Contains(d.Detail, v)
	}
	return false
}
