package conformance

import (
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func mustRR(t *testing.T, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

// baseReply is a referral-shaped reply with every section filled, so that
// each mutation below changes exactly one thing.
func baseReply(t *testing.T) *dns.Msg {
	m := new(dns.Msg)
	m.Id = 0x1234
	m.Response = true
	m.Authoritative = true
	m.RecursionDesired = true
	m.Question = []dns.Question{{Name: "WwW.Example.", Qtype: dns.TypeMX, Qclass: dns.ClassINET}}
	m.Answer = []dns.RR{
		mustRR(t, "www.example. 300 IN MX 10 mx1.example."),
		mustRR(t, "www.example. 300 IN MX 20 mx2.example."),
	}
	m.Ns = []dns.RR{mustRR(t, "example. 3600 IN NS ns1.example.")}
	m.Extra = []dns.RR{
		mustRR(t, "mx1.example. 300 IN A 192.0.2.1"),
		mustRR(t, "mx2.example. 300 IN AAAA 2001:db8::2"),
	}
	o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	o.SetUDPSize(1232)
	o.SetDo()
	o.Option = []dns.EDNS0{&dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: "6e73"}}
	m.Extra = append(m.Extra, o)
	return m
}

func pack(t *testing.T, m *dns.Msg) []byte {
	t.Helper()
	m.Compress = true
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func opt(m *dns.Msg) *dns.OPT { return m.IsEdns0() }

func TestCompareKinds(t *testing.T) {
	cases := []struct {
		name string
		// msg mutates the test server's message before packing; wire then
		// mutates its packed bytes. Either may be nil.
		msg  func(t *testing.T, m *dns.Msg)
		wire func(b []byte) []byte
		want []string
	}{
		{name: "identical", want: nil},
		{name: "records reordered", msg: func(t *testing.T, m *dns.Msg) {
			m.Answer[0], m.Answer[1] = m.Answer[1], m.Answer[0]
			m.Extra[0], m.Extra[1] = m.Extra[1], m.Extra[0]
		}, want: nil},
		{name: "uncompressed", wire: func(b []byte) []byte {
			var m dns.Msg
			_ = m.Unpack(b)
			m.Compress = false
			out, _ := m.Pack()
			return out
		}, want: nil},
		{name: "id", msg: func(t *testing.T, m *dns.Msg) { m.Id++ }, want: []string{"id"}},
		{name: "opcode", msg: func(t *testing.T, m *dns.Msg) { m.Opcode = dns.OpcodeNotify }, want: []string{"opcode"}},
		{name: "qr", msg: func(t *testing.T, m *dns.Msg) { m.Response = false }, want: []string{"flag-qr"}},
		{name: "aa", msg: func(t *testing.T, m *dns.Msg) { m.Authoritative = false }, want: []string{"flag-aa"}},
		{name: "rd", msg: func(t *testing.T, m *dns.Msg) { m.RecursionDesired = false }, want: []string{"flag-rd"}},
		{name: "ra", msg: func(t *testing.T, m *dns.Msg) { m.RecursionAvailable = true }, want: []string{"flag-ra"}},
		{name: "z", msg: func(t *testing.T, m *dns.Msg) { m.Zero = true }, want: []string{"flag-z"}},
		{name: "ad", msg: func(t *testing.T, m *dns.Msg) { m.AuthenticatedData = true }, want: []string{"flag-ad"}},
		{name: "cd", msg: func(t *testing.T, m *dns.Msg) { m.CheckingDisabled = true }, want: []string{"flag-cd"}},
		{name: "tc on one side", msg: func(t *testing.T, m *dns.Msg) {
			m.Truncated = true
			m.Answer = nil
		}, want: []string{"flag-tc", "answer"}},
		{name: "both tc, different content", wire: nil, want: nil}, // Built specially below.
		{name: "rcode", msg: func(t *testing.T, m *dns.Msg) { m.Rcode = dns.RcodeNameError }, want: []string{"rcode"}},
		{name: "extended rcode", msg: func(t *testing.T, m *dns.Msg) { m.Rcode = dns.RcodeBadVers }, want: []string{"rcode"}},
		{name: "question case", msg: func(t *testing.T, m *dns.Msg) { m.Question[0].Name = "www.example." }, want: []string{"question"}},
		{name: "question type", msg: func(t *testing.T, m *dns.Msg) { m.Question[0].Qtype = dns.TypeA }, want: []string{"question"}},
		{name: "question missing", msg: func(t *testing.T, m *dns.Msg) { m.Question = nil }, want: []string{"question"}},
		{name: "answer extra", msg: func(t *testing.T, m *dns.Msg) {
			m.Answer = append(m.Answer, mustRR(t, "www.example. 300 IN MX 30 mx3.example."))
		}, want: []string{"answer"}},
		{name: "answer duplicate", msg: func(t *testing.T, m *dns.Msg) {
			m.Answer = append(m.Answer, m.Answer[0])
		}, want: []string{"answer"}},
		{name: "answer ttl", msg: func(t *testing.T, m *dns.Msg) { m.Answer[1].Header().Ttl = 299 }, want: []string{"answer-ttl"}},
		{name: "answer owner case", msg: func(t *testing.T, m *dns.Msg) { m.Answer[0].Header().Name = "WWW.example." }, want: []string{"answer-case"}},
		{name: "answer rdata name case", msg: func(t *testing.T, m *dns.Msg) { m.Answer[0].(*dns.MX).Mx = "MX1.example." }, want: []string{"answer-case"}},
		{name: "txt case is data", wire: nil, want: nil}, // Built specially below.
		{name: "authority", msg: func(t *testing.T, m *dns.Msg) { m.Ns = nil }, want: []string{"authority"}},
		{name: "authority dnssec", msg: func(t *testing.T, m *dns.Msg) {
			m.Ns = append(m.Ns, mustRR(t, "example. 3600 IN NSEC www.example. NS SOA RRSIG NSEC"))
		}, want: []string{"authority-dnssec"}},
		{name: "authority dnssec and more", msg: func(t *testing.T, m *dns.Msg) {
			m.Ns = []dns.RR{mustRR(t, "example. 3600 IN NSEC www.example. NS SOA RRSIG NSEC")}
		}, want: []string{"authority"}},
		{name: "answer ds is no dnssec feature", msg: func(t *testing.T, m *dns.Msg) {
			m.Answer = append(m.Answer, mustRR(t, "www.example. 300 IN DS 1 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"))
		}, want: []string{"answer"}},
		{name: "authority ttl", msg: func(t *testing.T, m *dns.Msg) { m.Ns[0].Header().Ttl = 1 }, want: []string{"authority-ttl"}},
		{name: "additional missing", msg: func(t *testing.T, m *dns.Msg) { m.Extra = m.Extra[1:] }, want: []string{"additional-missing"}},
		{name: "additional extra", msg: func(t *testing.T, m *dns.Msg) {
			m.Extra = append(m.Extra, mustRR(t, "ns1.example. 300 IN A 192.0.2.53"))
		}, want: []string{"additional-extra"}},
		{name: "additional replaced", msg: func(t *testing.T, m *dns.Msg) {
			m.Extra[0] = mustRR(t, "ns1.example. 300 IN A 192.0.2.53")
		}, want: []string{"additional"}},
		{name: "additional ttl", msg: func(t *testing.T, m *dns.Msg) { m.Extra[0].Header().Ttl = 7 }, want: []string{"additional-ttl"}},
		{name: "opt missing", msg: func(t *testing.T, m *dns.Msg) { m.Extra = m.Extra[:2] }, want: []string{"opt-missing"}},
		{name: "opt twice", msg: func(t *testing.T, m *dns.Msg) { m.Extra = append(m.Extra, dns.Copy(m.Extra[2])) }, want: []string{"opt-count"}},
		{name: "opt version", msg: func(t *testing.T, m *dns.Msg) { opt(m).SetVersion(1) }, want: []string{"opt-version"}},
		{name: "opt do", msg: func(t *testing.T, m *dns.Msg) { opt(m).SetDo(false) }, want: []string{"opt-do"}},
		{name: "opt flags", msg: func(t *testing.T, m *dns.Msg) { opt(m).SetZ(1) }, want: []string{"opt-flags"}},
		{name: "opt size", msg: func(t *testing.T, m *dns.Msg) { opt(m).SetUDPSize(4096) }, want: []string{"opt-size"}},
		{name: "opt nsid value", msg: func(t *testing.T, m *dns.Msg) {
			opt(m).Option = []dns.EDNS0{&dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: "6e74"}}
		}, want: []string{"opt-options"}},
		{name: "opt nsid absent", msg: func(t *testing.T, m *dns.Msg) { opt(m).Option = nil }, want: []string{"opt-options"}},
		{name: "unpack", wire: func(b []byte) []byte { return b[:len(b)-3] }, want: []string{"unpack"}},
		{name: "malformed", wire: func(b []byte) []byte { return b[:5] }, want: []string{"malformed-reply"}},
		{name: "missing", wire: func(b []byte) []byte { return nil }, want: []string{"missing-reply"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ref := pack(t, baseReply(t))
			m := baseReply(t)
			if c.msg != nil {
				c.msg(t, m)
			}
			test := pack(t, m)
			if c.wire != nil {
				test = c.wire(test)
			}
			switch c.name {
			case "both tc, different content":
				r := baseReply(t)
				r.Truncated = true
				ref = pack(t, r)
				m.Truncated = true
				m.Answer, m.Ns, m.Extra = nil, nil, m.Extra[2:]
				test = pack(t, m)
			case "txt case is data":
				r := baseReply(t)
				r.Answer = []dns.RR{mustRR(t, `www.example. 300 IN TXT "Hello"`)}
				ref = pack(t, r)
				m.Answer = []dns.RR{mustRR(t, `www.example. 300 IN TXT "hello"`)}
				test = pack(t, m)
				c.want = []string{"answer"}
			}
			got := kinds(Compare(ref, test))
			want := append([]string(nil), c.want...)
			sort.Strings(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("kinds %v, want %v; differences: %v", got, want, Compare(ref, test))
			}
			// Symmetry: swapping the servers finds the same kinds, with
			// missing and extra swapped.
			swapped := map[string]string{"additional-missing": "additional-extra", "additional-extra": "additional-missing"}
			for i, k := range want {
				if s, ok := swapped[k]; ok {
					want[i] = s
				}
			}
			if got2 := kinds(Compare(test, ref)); !reflect.DeepEqual(got2, want) {
				t.Errorf("swapped: kinds %v, want %v", got2, want)
			}
		})
	}
}

func kinds(ds []Difference) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Kind)
	}
	sort.Strings(out)
	return out
}

func TestCompareNoReplies(t *testing.T) {
	if d := Compare(nil, nil); d != nil {
		t.Errorf("two dropped queries differ: %v", d)
	}
}

func TestQuestionBytesKeepsCase(t *testing.T) {
	m := baseReply(t)
	b := pack(t, m)
	q, err := questionBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("\x03WwW\x07Example\x00\x00\x0f\x00\x01")
	if string(q) != string(want) {
		t.Errorf("question % x, want % x", q, want)
	}
	if _, err := questionBytes(b[:20]); err == nil {
		t.Error("a question cut short was read without error")
	}
}

func TestParseDeliberate(t *testing.T) {
	good := `# comment

additional zone=deleg.test. category=cut,below-cut qtype=A,NS edns=none,512 do=0 | RFC 9471 section 3: only in-bailiwick glue is required
flag-aa qname=*.wild.test transport=tcp | RFC 1034 4.3.2
flag-cd detail="false vs true" | RFC 4035 3.1.6
`
	entries, err := ParseDeliberate(strings.NewReader(good), "good")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 || entries[0].Line != 3 || entries[1].Line != 4 {
		t.Fatalf("entries %+v", entries)
	}
	e := entries[0]
	q := &Query{Zone: "deleg.test.", Category: "cut", Name: "INB.deleg.test.", Type: dns.TypeNS, Class: dns.ClassINET, EDNS: 512}
	d := Difference{Kind: "additional"}
	if !e.Matches(q, "udp", d) {
		t.Error("entry does not match a query it lists")
	}
	for name, mutate := range map[string]func(q *Query){
		"zone":     func(q *Query) { q.Zone = "other.test." },
		"category": func(q *Query) { q.Category = "wildcard" },
		"qtype":    func(q *Query) { q.Type = dns.TypeAAAA },
		"edns":     func(q *Query) { q.EDNS = 1232 },
		"do":       func(q *Query) { q.DO = true },
	} {
		q2 := *q
		mutate(&q2)
		if e.Matches(&q2, "udp", d) {
			t.Errorf("entry matches a query with another %s", name)
		}
	}
	if e.Matches(q, "udp", Difference{Kind: "answer"}) {
		t.Error("entry matches another kind")
	}
	w := entries[1]
	wq := &Query{Name: "a.B.wild.test.", Zone: "wild.test."}
	if !w.Matches(wq, "tcp", Difference{Kind: "flag-aa"}) {
		t.Error("*.suffix does not match a name below the suffix")
	}
	if w.Matches(&Query{Name: "wild.test."}, "tcp", Difference{Kind: "flag-aa"}) {
		t.Error("*.suffix matches the suffix itself")
	}
	if w.Matches(wq, "udp", Difference{Kind: "flag-aa"}) {
		t.Error("transport=tcp matches udp")
	}

	cd := entries[2]
	if !cd.Matches(q, "udp", Difference{Kind: "flag-cd", Detail: "false vs true"}) || cd.Matches(q, "udp", Difference{Kind: "flag-cd", Detail: "true vs false"}) {
		t.Error("a quoted detail with spaces does not match as written")
	}

	for _, bad := range []string{
		`flag-cd detail="false vs true | RFC 4035`, // Unterminated quote.
		"additional zone=x.",                       // No reason.
		"additional zone=x. | because",             // No RFC.
		"additional color=red | RFC 1034",          // Unknown key.
		"additional qtype=NOPE | RFC 1034",         // Unknown type.
		"additional do=yes | RFC 1034",             // Bad value.
		"additional transport=quic | RFC 1034",
		"| RFC 1034", // No kind.
	} {
		if _, err := ParseDeliberate(strings.NewReader(bad), "bad"); err == nil {
			t.Errorf("%q parsed without error", bad)
		}
	}
}

func TestReportGroupsAndCounts(t *testing.T) {
	q1 := &Query{Zone: "a.", Category: "cut", Name: "x.a.", Type: dns.TypeA, Class: dns.ClassINET}
	q2 := &Query{Zone: "a.", Category: "wildcard", Name: "y.a.", Type: dns.TypeA, Class: dns.ClassINET}
	outcomes := []Outcome{
		{Query: q1, Transport: "udp"},
		{Query: q1, Transport: "udp", Diffs: []Difference{{"additional", "x"}}},
		{Query: q2, Transport: "udp", Diffs: []Difference{{"additional", "y"}, {"flag-aa", "z"}}},
	}
	entries, err := ParseDeliberate(strings.NewReader("additional category=cut | RFC 9471\n"), "t")
	if err != nil {
		t.Fatal(err)
	}
	r := NewReport("t", outcomes, entries)
	if r.Total != 3 || r.Identical != 1 || r.Accepted != 1 || r.Unexpected != 1 {
		t.Errorf("report %s", r.Summary())
	}
	if k := r.Kinds["additional"]; k == nil || k.Count != 2 || k.Deliberate != 1 {
		t.Errorf("additional: %+v", k)
	}
	if entries[0].Used != 1 {
		t.Errorf("entry used %d times, want 1", entries[0].Used)
	}
	if !strings.HasPrefix(r.Summary(), "t: 1/3 identical") {
		t.Errorf("summary %q", r.Summary())
	}
	if s := r.String(); !strings.Contains(s, "flag-aa: 1 (0 deliberate, 0 known gap)") || !strings.Contains(s, "y.a.") {
		t.Errorf("report does not show the unexpected example:\n%s", s)
	}
}

// TestGapsApart pins that a known gap is accepted like a deliberate
// difference but counted and shown apart, and that a gap must name its issue.
func TestGapsApart(t *testing.T) {
	q := &Query{Zone: "a.", Category: "nx", Name: "x.a.", Type: dns.TypeA, Class: dns.ClassINET}
	outcomes := []Outcome{
		{Query: q, Transport: "udp", Diffs: []Difference{{"authority-dnssec", "nsec"}}},
		{Query: q, Transport: "udp", Diffs: []Difference{{"authority-dnssec", "nsec"}, {"flag-cd", "false vs true"}}},
		{Query: q, Transport: "udp", Diffs: []Difference{{"flag-cd", "false vs true"}}},
		{Query: q, Transport: "udp", Diffs: []Difference{{"flag-aa", "false vs true"}}},
	}
	gaps, err := ParseGaps(strings.NewReader("authority-dnssec | issue 3: NSEC proofs are not served yet\n"), "gaps")
	if err != nil {
		t.Fatal(err)
	}
	deliberate, err := ParseDeliberate(strings.NewReader("flag-cd | RFC 4035 section 3.1.6\n"), "d")
	if err != nil {
		t.Fatal(err)
	}
	r := NewReport("t", outcomes, append(deliberate, gaps...))
	if r.Gaps != 2 || r.Accepted != 1 || r.Unexpected != 1 {
		t.Errorf("report %s", r.Summary())
	}
	if k := r.Kinds["authority-dnssec"]; k == nil || k.Gaps != 2 || k.Deliberate != 0 {
		t.Errorf("authority-dnssec: %+v", k)
	}
	if s := r.String(); !strings.Contains(s, "known gap (gaps.txt line 1): issue 3") {
		t.Errorf("report does not name the gap's issue:\n%s", s)
	}
	for _, bad := range []string{
		"authority-dnssec | RFC 4035 allows nothing of the kind\n",
		"authority-dnssec\n",
	} {
		if _, err := ParseGaps(strings.NewReader(bad), "gaps"); err == nil {
			t.Errorf("ParseGaps(%q) accepted a gap without an issue", bad)
		}
	}
}
