package controlplane

import (
	"encoding/binary"
	"net/netip"
	"strconv"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/zone"
)

// appendRecordText appends the master-file line of r, as miekg/dns's
// String writes it (owner, TTL, IN, type, RDATA, tab-separated), for the
// records a TLD's copy on disk is made of: A, AAAA, NS, CNAME, PTR and DS
// whose names hold only letters, digits, '-', '_' and a '*' label. It
// reports false for any other record, which the caller writes through
// miekg/dns. Writing the copy of a 1M-delegation TLD through miekg/dns
// alone (an unpacked record and a string per record) took 2 s of CPU
// after every IXFR.
func appendRecordText(dst []byte, r *zone.Record) ([]byte, bool) {
	start := len(dst)
	var ok bool
	if dst, ok = appendPlainName(dst, r.Owner); !ok {
		return dst[:start], false
	}
	dst = append(dst, '\t')
	dst = strconv.AppendUint(dst, uint64(r.TTL), 10)
	dst = append(dst, "\tIN\t"...)
	d := r.Data
	switch r.Type {
	case dns.TypeA:
		if len(d) != 4 {
			return dst[:start], false
		}
		dst = append(dst, "A\t"...)
		dst = netip.AddrFrom4([4]byte(d)).AppendTo(dst)
	case dns.TypeAAAA:
		if len(d) != 16 {
			return dst[:start], false
		}
		dst = append(dst, "AAAA\t"...)
		dst = netip.AddrFrom16([16]byte(d)).AppendTo(dst)
	case dns.TypeNS, dns.TypeCNAME, dns.TypePTR:
		dst = append(dst, dns.TypeToString[r.Type]...)
		dst = append(dst, '\t')
		if dst, ok = appendPlainName(dst, d); !ok || nameEnd(d) != len(d) {
			return dst[:start], false
		}
	case dns.TypeDS:
		if len(d) < 5 {
			return dst[:start], false
		}
		dst = append(dst, "DS\t"...)
		dst = strconv.AppendUint(dst, uint64(binary.BigEndian.Uint16(d)), 10)
		dst = append(dst, ' ')
		dst = strconv.AppendUint(dst, uint64(d[2]), 10)
		dst = append(dst, ' ')
		dst = strconv.AppendUint(dst, uint64(d[3]), 10)
		dst = append(dst, ' ')
		// Uppercase, as miekg/dns writes a digest.
		for _, c := range d[4:] {
			dst = append(dst, hexUpper[c>>4], hexUpper[c&15])
		}
	default:
		return dst[:start], false
	}
	return append(dst, '\n'), true
}

const hexUpper = "0123456789ABCDEF"

// appendPlainName appends the wire name at the start of w in presentation
// form when none of its labels needs escaping.
func appendPlainName(dst, w []byte) ([]byte, bool) {
	if len(w) == 0 {
		return dst, false
	}
	if w[0] == 0 {
		return append(dst, '.'), true
	}
	for i := 0; i < len(w) && w[i] != 0; {
		l := int(w[i])
		if l > 63 || i+1+l > len(w) {
			return dst, false
		}
		label := w[i+1 : i+1+l]
		if !(l == 1 && label[0] == '*') {
			for _, c := range label {
				if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
					return dst, false
				}
			}
		}
		dst = append(append(dst, label...), '.')
		i += 1 + l
	}
	return dst, true
}

// nameEnd returns the length of the wire name at the start of w, or -1.
func nameEnd(w []byte) int {
	for i := 0; i < len(w); {
		if w[i] == 0 {
			return i + 1
		}
		i += 1 + int(w[i])
	}
	return -1
}
