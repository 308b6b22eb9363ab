package conformance

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/miekg/dns"
)

// Difference is one way in which two replies to the same query differ. Kind
// groups differences in reports and is what deliberate.txt entries name;
// Detail says what each side had.
type Difference struct {
	Kind   string
	Detail string
}

// Header flag bits in the second 16-bit word of a DNS header (RFC 1035 4.1.1,
// RFC 4035 for AD and CD).
const (
	bitQR = 1 << 15
	bitAA = 1 << 10
	bitTC = 1 << 9
	bitRD = 1 << 8
	bitRA = 1 << 7
	bitZ  = 1 << 6
	bitAD = 1 << 5
	bitCD = 1 << 4
)

var headerFlags = []struct {
	kind string
	bit  uint16
}{
	{"flag-qr", bitQR},
	{"flag-aa", bitAA},
	{"flag-tc", bitTC},
	{"flag-rd", bitRD},
	{"flag-ra", bitRA},
	{"flag-z", bitZ},
	{"flag-ad", bitAD},
	{"flag-cd", bitCD},
}

// errShort is returned for a reply too short to hold a DNS header.
var errShort = errors.New("shorter than a DNS header")

// Compare returns the differences between two replies to one query, a from
// the reference server and b from the server under test. nil stands for no
// reply at all. The policy is described in the package documentation.
func Compare(a, b []byte) []Difference {
	switch {
	case a == nil && b == nil:
		return nil
	case a == nil:
		return []Difference{{"missing-reply", "reference sent none, test server replied"}}
	case b == nil:
		return []Difference{{"missing-reply", "reference replied, test server sent none"}}
	}
	if len(a) < 12 || len(b) < 12 {
		if len(a) < 12 && len(b) < 12 && bytes.Equal(a, b) {
			return nil
		}
		return []Difference{{"malformed-reply", fmt.Sprintf("lengths %d and %d, a reply needs 12 octets", len(a), len(b))}}
	}
	var diffs []Difference
	add := func(kind, format string, args ...any) {
		diffs = append(diffs, Difference{kind, fmt.Sprintf(format, args...)})
	}

	if ida, idb := binary.BigEndian.Uint16(a), binary.BigEndian.Uint16(b); ida != idb {
		add("id", "%d vs %d", ida, idb)
	}
	fa, fb := binary.BigEndian.Uint16(a[2:]), binary.BigEndian.Uint16(b[2:])
	if oa, ob := (fa>>11)&0xf, (fb>>11)&0xf; oa != ob {
		add("opcode", "%d vs %d", oa, ob)
	}
	for _, f := range headerFlags {
		if fa&f.bit != fb&f.bit {
			add(f.kind, "%v vs %v", fa&f.bit != 0, fb&f.bit != 0)
		}
	}

	qa, erra := questionBytes(a)
	qb, errb := questionBytes(b)
	switch {
	case erra != nil || errb != nil:
		if erra == nil || errb == nil || erra.Error() != errb.Error() {
			add("question", "unreadable question: %v vs %v", erra, errb)
		}
	case !bytes.Equal(qa, qb):
		add("question", "% x vs % x", qa, qb)
	}

	var ma, mb dns.Msg
	erra = ma.Unpack(a)
	errb = mb.Unpack(b)
	if erra != nil || errb != nil {
		// Without both messages parsed only the header and question can be
		// compared; two equally broken replies are the same reply.
		if !bytes.Equal(a, b) {
			add("unpack", "%v vs %v", erra, errb)
		}
		return diffs
	}

	optA, nOptA := findOPT(ma.Extra)
	optB, nOptB := findOPT(mb.Extra)
	if ra, rb := fullRcode(fa, optA), fullRcode(fb, optB); ra != rb {
		add("rcode", "%s vs %s", rcodeName(ra), rcodeName(rb))
	}
	diffs = append(diffs, compareOPT(optA, optB, nOptA, nOptB)...)

	if fa&bitTC != 0 && fb&bitTC != 0 {
		// Both truncated: the client retries over TCP, where the content is
		// compared, so what each server squeezed into the UDP reply is moot.
		return diffs
	}
	diffs = append(diffs, compareSection("answer", ma.Answer, mb.Answer)...)
	diffs = append(diffs, compareSection("authority", ma.Ns, mb.Ns)...)
	diffs = append(diffs, compareSection("additional", withoutOPT(ma.Extra), withoutOPT(mb.Extra))...)
	return diffs
}

// questionBytes returns the raw question section of msg: QDCOUNT entries of
// name, type and class, walked without decompression so that the bytes (and
// the letter case) are exactly what the server wrote.
func questionBytes(msg []byte) ([]byte, error) {
	if len(msg) < 12 {
		return nil, errShort
	}
	n := int(binary.BigEndian.Uint16(msg[4:]))
	off := 12
	for i := 0; i < n; i++ {
		for {
			if off >= len(msg) {
				return nil, errors.New("question runs past the end")
			}
			l := int(msg[off])
			if l&0xc0 == 0xc0 {
				// A compression pointer ends the name in two octets.
				off += 2
				break
			}
			if l&0xc0 != 0 {
				return nil, fmt.Errorf("label type %#x in question", l&0xc0)
			}
			off += 1 + l
			if l == 0 {
				break
			}
		}
		off += 4
		if off > len(msg) {
			return nil, errors.New("question runs past the end")
		}
	}
	return msg[12:off], nil
}

// findOPT returns the first OPT record in extra and how many there are.
func findOPT(extra []dns.RR) (*dns.OPT, int) {
	var first *dns.OPT
	n := 0
	for _, rr := range extra {
		if o, ok := rr.(*dns.OPT); ok {
			if first == nil {
				first = o
			}
			n++
		}
	}
	return first, n
}

func withoutOPT(extra []dns.RR) []dns.RR {
	var out []dns.RR
	for _, rr := range extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			out = append(out, rr)
		}
	}
	return out
}

// fullRcode joins the header's four rcode bits with the OPT's eight extended
// bits (RFC 6891 6.1.3), so that BADVERS and NOERROR are told apart.
func fullRcode(flags uint16, opt *dns.OPT) int {
	rc := int(flags & 0xf)
	if opt != nil {
		rc |= int(opt.Hdr.Ttl>>24) << 4
	}
	return rc
}

func rcodeName(rc int) string {
	if rc == dns.RcodeBadVers {
		return "BADVERS"
	}
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", rc)
}

func compareOPT(a, b *dns.OPT, na, nb int) []Difference {
	var diffs []Difference
	add := func(kind, format string, args ...any) {
		diffs = append(diffs, Difference{kind, fmt.Sprintf(format, args...)})
	}
	if na != nb {
		if na == 0 || nb == 0 {
			add("opt-missing", "%d OPT vs %d OPT", na, nb)
			return diffs
		}
		add("opt-count", "%d OPT vs %d OPT", na, nb)
	}
	if a == nil || b == nil {
		return diffs
	}
	if a.Hdr.Name != b.Hdr.Name {
		add("opt-owner", "%q vs %q", a.Hdr.Name, b.Hdr.Name)
	}
	if a.Version() != b.Version() {
		add("opt-version", "%d vs %d", a.Version(), b.Version())
	}
	if a.Do() != b.Do() {
		add("opt-do", "%v vs %v", a.Do(), b.Do())
	}
	// The flag bits other than DO are reserved and must be zero (RFC 6891 6.1.4).
	if za, zb := a.Hdr.Ttl&0x7fff, b.Hdr.Ttl&0x7fff; za != zb {
		add("opt-flags", "%#04x vs %#04x", za, zb)
	}
	if a.UDPSize() != b.UDPSize() {
		add("opt-size", "%d vs %d", a.UDPSize(), b.UDPSize())
	}
	if sa, sb := optionStrings(a), optionStrings(b); sa != sb {
		add("opt-options", "[%s] vs [%s]", sa, sb)
	}
	return diffs
}

// optionStrings renders an OPT's options in order as code=hexdata, the form
// in which two OPTs are compared: order is kept because clients may rely on
// it no more than on anything else, but a reordering is still worth seeing.
func optionStrings(o *dns.OPT) string {
	var parts []string
	for _, opt := range o.Option {
		var data []byte
		if l, ok := opt.(*dns.EDNS0_LOCAL); ok {
			data = l.Data
		} else {
			// Every EDNS0 option type miekg/dns knows can pack itself.
			data, _ = packOption(opt)
		}
		parts = append(parts, fmt.Sprintf("%d=%x", opt.Option(), data))
	}
	return strings.Join(parts, " ")
}

func packOption(opt dns.EDNS0) ([]byte, error) {
	// The unexported pack method is reached through a throwaway OPT record.
	o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}, Option: []dns.EDNS0{opt}}
	buf := make([]byte, dns.Len(o)+16)
	n, err := dns.PackRR(o, buf, 0, nil, false)
	if err != nil {
		return nil, err
	}
	// The option's data follows the root name (1 octet), type, class, TTL and
	// RDLENGTH (10) and the option's own code and length (4).
	if n < 15 {
		return nil, nil
	}
	return buf[15:n], nil
}

// compareSection compares two sections as multisets of records. The
// additional section's kind says which way the sets differ, because a
// server adding fewer or more optional records is a policy (RFC 1034 4.3.2
// step 6) that deliberate.txt may accept one way and not the other.
func compareSection(section string, a, b []dns.RR) []Difference {
	ca, cb := canonicalKeys(a, true), canonicalKeys(b, true)
	if onlyA, onlyB := multisetDiffIndex(ca, cb); len(onlyA)+len(onlyB) > 0 {
		kind := section
		switch {
		case onlyDNSSEC(section, a, onlyA) && onlyDNSSEC(section, b, onlyB):
			// DNSSEC serving (RRSIG, NSEC, NSEC3, and DS in referrals) is
			// a feature of its own; its differences are kept apart so
			// that they do not hide the others.
			kind = section + "-dnssec"
		case section == "additional":
			switch {
			case len(onlyB) == 0:
				kind = "additional-missing"
			case len(onlyA) == 0:
				kind = "additional-extra"
			}
		}
		return []Difference{{kind, describeSetDiff(pickRR(a, onlyA), pickRR(b, onlyB))}}
	}
	ta, tb := canonicalKeys(a, false), canonicalKeys(b, false)
	if onlyA, onlyB := multisetDiffIndex(ta, tb); len(onlyA)+len(onlyB) > 0 {
		return []Difference{{section + "-ttl", describeSetDiff(pickRR(a, onlyA), pickRR(b, onlyB))}}
	}
	ea, eb := exactKeys(a), exactKeys(b)
	if onlyA, onlyB := multisetDiffIndex(ea, eb); len(onlyA)+len(onlyB) > 0 {
		return []Difference{{section + "-case", describeSetDiff(pickRR(a, onlyA), pickRR(b, onlyB))}}
	}
	return nil
}

// onlyDNSSEC reports whether the records at idx are all DNSSEC records:
// RRSIG, NSEC and NSEC3 anywhere, DS outside the answer (in the answer a DS
// is what was asked for, and answering it is no DNSSEC feature).
func onlyDNSSEC(section string, rrs []dns.RR, idx []int) bool {
	for _, i := range idx {
		switch rrs[i].Header().Rrtype {
		case dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3:
		case dns.TypeDS:
			if section == "answer" {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// pickRR renders the records at the given indexes as they were received,
// TTL and case included, sorted, so that a report shows what was on the wire.
func pickRR(rrs []dns.RR, idx []int) []string {
	out := make([]string, len(idx))
	for i, j := range idx {
		out[i] = strings.ReplaceAll(rrs[j].String(), "\t", " ")
	}
	sort.Strings(out)
	return out
}

func describeSetDiff(onlyA, onlyB []string) string {
	const max = 4
	clip := func(s []string) string {
		if len(s) > max {
			return strings.Join(s[:max], "; ") + fmt.Sprintf("; ... (%d more)", len(s)-max)
		}
		return strings.Join(s, "; ")
	}
	return fmt.Sprintf("only reference: [%s] only test: [%s]", clip(onlyA), clip(onlyB))
}

// multisetDiffIndex returns the indexes of the elements of a not matched in
// b and of those of b not matched in a.
func multisetDiffIndex(a, b []string) (onlyA, onlyB []int) {
	count := make(map[string]int, len(a))
	for _, s := range a {
		count[s]++
	}
	for i, s := range b {
		if count[s] > 0 {
			count[s]--
		} else {
			onlyB = append(onlyB, i)
		}
	}
	for i, s := range a {
		if count[s] > 0 {
			count[s]--
			onlyA = append(onlyA, i)
		}
	}
	return onlyA, onlyB
}

func exactKeys(rrs []dns.RR) []string {
	out := make([]string, len(rrs))
	for i, rr := range rrs {
		out[i] = strings.ReplaceAll(rr.String(), "\t", " ")
	}
	return out
}

// canonicalKeys renders records with owner and RDATA names lowercased, the
// canonical form of RFC 4034 6.2, and with the TTL zeroed when ignoreTTL.
func canonicalKeys(rrs []dns.RR, ignoreTTL bool) []string {
	out := make([]string, len(rrs))
	for i, rr := range rrs {
		c := dns.Copy(rr)
		lowerNames(c)
		if ignoreTTL {
			c.Header().Ttl = 0
		}
		out[i] = strings.ReplaceAll(c.String(), "\t", " ")
	}
	return out
}

// lowerNames lowercases the owner and the domain names in the RDATA of the
// types whose canonical form does so (RFC 4034 6.2, RFC 6840 5.1).
func lowerNames(rr dns.RR) {
	h := rr.Header()
	h.Name = strings.ToLower(h.Name)
	l := strings.ToLower
	switch r := rr.(type) {
	case *dns.NS:
		r.Ns = l(r.Ns)
	case *dns.CNAME:
		r.Target = l(r.Target)
	case *dns.DNAME:
		r.Target = l(r.Target)
	case *dns.PTR:
		r.Ptr = l(r.Ptr)
	case *dns.MX:
		r.Mx = l(r.Mx)
	case *dns.SRV:
		r.Target = l(r.Target)
	case *dns.SOA:
		r.Ns, r.Mbox = l(r.Ns), l(r.Mbox)
	case *dns.NAPTR:
		r.Replacement = l(r.Replacement)
	case *dns.RRSIG:
		r.SignerName = l(r.SignerName)
	case *dns.NSEC:
		r.NextDomain = l(r.NextDomain)
	case *dns.KX:
		r.Exchanger = l(r.Exchanger)
	case *dns.RP:
		r.Mbox, r.Txt = l(r.Mbox), l(r.Txt)
	case *dns.AFSDB:
		r.Hostname = l(r.Hostname)
	case *dns.RT:
		r.Host = l(r.Host)
	}
}
