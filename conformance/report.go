package conformance

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/miekg/dns"
)

// examplesPerKind is how many examples of each kind a report shows: enough
// to see a pattern, few enough to read.
const examplesPerKind = 3

// Report groups the differences of a run by kind.
type Report struct {
	Name       string
	Total      int // Comparisons: one per query and transport.
	Identical  int
	Accepted   int // Comparisons whose differences are all deliberate.
	Gaps       int // Comparisons with a known gap and otherwise only deliberate differences.
	Unexpected int // Comparisons with at least one difference neither deliberate nor a known gap.
	Kinds      map[string]*KindReport
	// ByGap counts the differences each known-gaps entry accepted in this
	// run, to show what remains of each gap suite by suite.
	ByGap map[*Deliberate]int
}

// KindReport is one kind of difference: how often it was seen, how often a
// deliberate entry accepted it, and a few examples, unexpected ones first.
type KindReport struct {
	Kind       string
	Count      int
	Deliberate int
	Gaps       int
	// ByCategory counts the differences per zone and query category, which
	// usually points at the behaviour behind a kind faster than examples.
	ByCategory map[string]int
	Examples   []Example
}

// Example is one difference with the query and both replies in brief.
type Example struct {
	Outcome    *Outcome
	Diff       Difference
	Deliberate *Deliberate
}

// NewReport classifies the outcomes of a run against the deliberate list,
// counting in each entry how often it was used.
func NewReport(name string, outcomes []Outcome, deliberate []*Deliberate) *Report {
	r := &Report{Name: name, Kinds: map[string]*KindReport{}, ByGap: map[*Deliberate]int{}}
	for i := range outcomes {
		o := &outcomes[i]
		r.Total++
		if len(o.Diffs) == 0 {
			r.Identical++
			continue
		}
		unexpected, gap := false, false
		for _, d := range o.Diffs {
			k := r.Kinds[d.Kind]
			if k == nil {
				k = &KindReport{Kind: d.Kind, ByCategory: map[string]int{}}
				r.Kinds[d.Kind] = k
			}
			k.Count++
			k.ByCategory[categoryKey(o)]++
			var accepted *Deliberate
			for _, e := range deliberate {
				if e.Matches(o.Query, o.Transport, d) {
					accepted = e
					e.Used++
					break
				}
			}
			switch {
			case accepted == nil:
				unexpected = true
			case accepted.Gap:
				k.Gaps++
				r.ByGap[accepted]++
				gap = true
			default:
				k.Deliberate++
			}
			k.addExample(Example{Outcome: o, Diff: d, Deliberate: accepted})
		}
		switch {
		case unexpected:
			r.Unexpected++
		case gap:
			r.Gaps++
		default:
			r.Accepted++
		}
	}
	return r
}

// addExample keeps the first few examples, preferring unexpected ones since
// those are what a reader has to act on.
func (k *KindReport) addExample(e Example) {
	if len(k.Examples) < examplesPerKind {
		k.Examples = append(k.Examples, e)
		return
	}
	if e.Deliberate != nil {
		return
	}
	for i, old := range k.Examples {
		if old.Deliberate != nil {
			k.Examples[i] = e
			return
		}
	}
}

func categoryKey(o *Outcome) string {
	zone := o.Query.Zone
	if zone == "" {
		zone = "-"
	}
	return zone + "/" + o.Query.Category + "/" + o.Transport
}

// topCounts renders the n largest counts of m, largest first.
func topCounts(m map[string]int, n int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var parts []string
	for i, k := range keys {
		if i == n {
			parts = append(parts, fmt.Sprintf("... (%d more)", len(keys)-n))
			break
		}
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

// Dump writes every comparison that found a difference, with both replies
// in full, for reading with a pager or grep when examples are not enough.
func Dump(w io.Writer, outcomes []Outcome) error {
	for i := range outcomes {
		o := &outcomes[i]
		if len(o.Diffs) == 0 {
			continue
		}
		fmt.Fprintf(w, "=== %s %s\n", o.Transport, o.Query)
		for _, d := range o.Diffs {
			fmt.Fprintf(w, "  %s: %s\n", d.Kind, d.Detail)
		}
		for _, side := range []struct {
			name  string
			reply []byte
		}{{"reference", o.Ref}, {"test", o.Test}} {
			fmt.Fprintf(w, "--- %s\n", side.name)
			var m dns.Msg
			switch {
			case side.reply == nil:
				fmt.Fprintf(w, "no reply\n")
			case m.Unpack(side.reply) != nil:
				fmt.Fprintf(w, "%x\n", side.reply)
			default:
				fmt.Fprintf(w, "%s\n", m.String())
			}
		}
	}
	return nil
}

// Summary is the one-line result, "N/M identical" first.
func (r *Report) Summary() string {
	return fmt.Sprintf("%s: %d/%d identical, %d differ only deliberately, %d differ in known gaps, %d differ unexpectedly",
		r.Name, r.Identical, r.Total, r.Accepted, r.Gaps, r.Unexpected)
}

// GapEntries renders the differences accepted per known-gaps entry, in
// file order, as "; by entry: gaps.txt:LINE KIND=N ...", or "" when none was.
func (r *Report) GapEntries() string {
	entries := make([]*Deliberate, 0, len(r.ByGap))
	for e := range r.ByGap {
		entries = append(entries, e)
	}
	if len(entries) == 0 {
		return ""
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Line < entries[j].Line })
	var b strings.Builder
	b.WriteString("; by entry:")
	for _, e := range entries {
		fmt.Fprintf(&b, " gaps.txt:%d %s=%d", e.Line, e.Kind, r.ByGap[e])
	}
	return b.String()
}

// String renders the whole report: the summary and, kind by kind (most
// frequent first), the counts and examples.
func (r *Report) String() string {
	var b strings.Builder
	b.WriteString(r.Summary())
	b.WriteString("\n")
	kinds := make([]*KindReport, 0, len(r.Kinds))
	for _, k := range r.Kinds {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool {
		if kinds[i].Count != kinds[j].Count {
			return kinds[i].Count > kinds[j].Count
		}
		return kinds[i].Kind < kinds[j].Kind
	})
	for _, k := range kinds {
		fmt.Fprintf(&b, "  %s: %d (%d deliberate, %d known gap)\n", k.Kind, k.Count, k.Deliberate, k.Gaps)
		fmt.Fprintf(&b, "    by category: %s\n", topCounts(k.ByCategory, 6))
		for _, e := range k.Examples {
			o := e.Outcome
			fmt.Fprintf(&b, "    %s %s\n", o.Transport, o.Query)
			fmt.Fprintf(&b, "      %s\n", e.Diff.Detail)
			fmt.Fprintf(&b, "      reference: %s\n", Brief(o.Ref))
			fmt.Fprintf(&b, "      test:      %s\n", Brief(o.Test))
			switch {
			case e.Deliberate != nil && e.Deliberate.Gap:
				fmt.Fprintf(&b, "      known gap (gaps.txt line %d): %s\n", e.Deliberate.Line, e.Deliberate.Reason)
			case e.Deliberate != nil:
				fmt.Fprintf(&b, "      deliberate (line %d): %s\n", e.Deliberate.Line, e.Deliberate.Reason)
			}
		}
	}
	return b.String()
}

// Brief renders a reply in one line: rcode, flags, section counts and the
// first records of answer and authority.
func Brief(reply []byte) string {
	if reply == nil {
		return "no reply"
	}
	var m dns.Msg
	if err := m.Unpack(reply); err != nil {
		return fmt.Sprintf("%d octets, unpack: %v", len(reply), err)
	}
	var flags []string
	for _, f := range []struct {
		on   bool
		name string
	}{
		{m.Response, "qr"}, {m.Authoritative, "aa"}, {m.Truncated, "tc"}, {m.RecursionDesired, "rd"},
		{m.RecursionAvailable, "ra"}, {m.Zero, "z"}, {m.AuthenticatedData, "ad"}, {m.CheckingDisabled, "cd"},
	} {
		if f.on {
			flags = append(flags, f.name)
		}
	}
	s := fmt.Sprintf("%s [%s] an=%d ns=%d ar=%d len=%d", rcodeName(m.Rcode), strings.Join(flags, " "),
		len(m.Answer), len(m.Ns), len(m.Extra), len(reply))
	first := func(rrs []dns.RR) string {
		if len(rrs) == 0 {
			return ""
		}
		t := strings.ReplaceAll(rrs[0].String(), "\t", " ")
		if len(t) > 90 {
			t = t[:90] + "..."
		}
		return t
	}
	if a := first(m.Answer); a != "" {
		s += " | an: " + a
	}
	if a := first(m.Ns); a != "" {
		s += " | ns: " + a
	}
	if o := m.IsEdns0(); o != nil {
		s += fmt.Sprintf(" | opt: v%d do=%v size=%d", o.Version(), o.Do(), o.UDPSize())
	}
	return s
}

// Unused returns the deliberate entries no difference used in the runs so
// far; they are stale or too narrow and should be looked at.
func Unused(entries []*Deliberate) []*Deliberate {
	var out []*Deliberate
	for _, e := range entries {
		if e.Used == 0 {
			out = append(out, e)
		}
	}
	return out
}
