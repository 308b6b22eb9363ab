package controlplane

import (
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"net/netip"
	"strconv"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/zone"
)

// appendRecordText appends the master-file line of r, as miekg/dns's
// String writes it (owner, TTL, IN, type, RDATA, tab-separated), for the
// records a TLD's copy on disk is made of: A, AAAA, NS, CNAME, PTR, DS,
// and a signed TLD's RRSIG, NSEC3 and NSEC, whose names hold only letters,
// digits, '-', '_' and a '*' label. It reports false for any other
// record, which the caller writes through miekg/dns. Writing the copy of
// a 1M-delegation TLD through miekg/dns alone (an unpacked record and a
// string per record) took 2 s of CPU after every IXFR. now is the Unix
// time signature times are read against (see appendSigTime), taken once
// for a whole copy.
func appendRecordText(dst []byte, r *zone.Record, now int64) ([]byte, bool) {
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
		dst = appendNum(dst, uint64(binary.BigEndian.Uint16(d)))
		dst = appendNum(dst, uint64(d[2]))
		dst = appendNum(dst, uint64(d[3]))
		// Uppercase, as miekg/dns writes a digest.
		for _, c := range d[4:] {
			dst = append(dst, hexUpper[c>>4], hexUpper[c&15])
		}
	case dns.TypeRRSIG:
		if dst, ok = appendRRSIG(dst, d, now); !ok {
			return dst[:start], false
		}
	case dns.TypeNSEC3:
		if dst, ok = appendNSEC3(dst, d); !ok {
			return dst[:start], false
		}
	case dns.TypeNSEC:
		n := nameEnd(d)
		if n < 0 {
			return dst[:start], false
		}
		dst = append(dst, "NSEC\t"...)
		if dst, ok = appendPlainName(dst, d[:n]); !ok {
			return dst[:start], false
		}
		if dst, ok = appendTypes(dst, d[n:]); !ok {
			return dst[:start], false
		}
	default:
		return dst[:start], false
	}
	return append(dst, '\n'), true
}

// appendRRSIG appends the RDATA of an RRSIG record after its type, as
// miekg/dns writes it: the signature times in the form of RFC 4034
// section 3.2, within 68 years of now (RFC 1982's serial arithmetic, as
// dns.TimeToString), and the signature in base64.
func appendRRSIG(dst, d []byte, now int64) ([]byte, bool) {
	if len(d) < 18 {
		return dst, false
	}
	n := nameEnd(d[18:])
	if n < 0 {
		return dst, false
	}
	dst = append(dst, "RRSIG\t"...)
	dst = append(appendType(dst, binary.BigEndian.Uint16(d)), ' ')
	dst = appendNum(dst, uint64(d[2]))
	dst = appendNum(dst, uint64(d[3]))
	dst = appendNum(dst, uint64(binary.BigEndian.Uint32(d[4:])))
	dst = append(appendSigTime(dst, binary.BigEndian.Uint32(d[8:]), now), ' ')
	dst = append(appendSigTime(dst, binary.BigEndian.Uint32(d[12:]), now), ' ')
	dst = appendNum(dst, uint64(binary.BigEndian.Uint16(d[16:])))
	var ok bool
	if dst, ok = appendPlainName(dst, d[18:18+n]); !ok {
		return dst, false
	}
	dst = append(dst, ' ')
	return base64.StdEncoding.AppendEncode(dst, d[18+n:]), true
}

// appendNum appends v in decimal and a space.
func appendNum(dst []byte, v uint64) []byte {
	return append(strconv.AppendUint(dst, v, 10), ' ')
}

// year68 is 1<<31 seconds, RFC 1982's window for a signature's times.
const year68 = 1 << 31

// appendSigTime appends a signature time as dns.TimeToString writes it:
// YYYYMMDDHHmmSS in UTC, the 32-bit value taken to be the time within 68
// years of now (Unix time) that it stands for. dns.TimeToString reads the
// clock for each time; a copy reads it once, which moves no time but one
// within a second of the 68 years' edge.
func appendSigTime(dst []byte, t uint32, now int64) []byte {
	mod := (int64(t)-now)/year68 - 1
	if mod < 0 {
		mod = 0
	}
	return time.Unix(int64(t)-mod*year68, 0).UTC().AppendFormat(dst, "20060102150405")
}

// appendNSEC3 appends the RDATA of an NSEC3 record after its type, as
// miekg/dns writes it: the salt in uppercase hex ("-" for none), the next
// hash in base32hex (RFC 4648 section 7) and the types. A next hash whose
// text would need padding is left to miekg/dns.
func appendNSEC3(dst, d []byte) ([]byte, bool) {
	if len(d) < 5 {
		return dst, false
	}
	sl := int(d[4])
	if 5+sl+1 > len(d) {
		return dst, false
	}
	salt := d[5 : 5+sl]
	hl := int(d[5+sl])
	if 6+sl+hl > len(d) || hl%5 != 0 {
		return dst, false
	}
	next := d[6+sl : 6+sl+hl]
	dst = append(dst, "NSEC3\t"...)
	dst = appendNum(dst, uint64(d[0]))
	dst = appendNum(dst, uint64(d[1]))
	dst = appendNum(dst, uint64(binary.BigEndian.Uint16(d[2:])))
	if len(salt) == 0 {
		dst = append(dst, '-')
	}
	for _, c := range salt {
		dst = append(dst, hexUpper[c>>4], hexUpper[c&15])
	}
	dst = append(dst, ' ')
	dst = base32.HexEncoding.AppendEncode(dst, next)
	return appendTypes(dst, d[6+sl+hl:])
}

// appendTypes appends the types of an NSEC or NSEC3 type bit map (RFC 4034
// section 4.1.2), each after a space, by name (TYPEnnn for a type without
// one), and reports false for a bit map miekg/dns would refuse: windows
// out of order, empty, longer than 32 bytes or cut short.
func appendTypes(dst, m []byte) ([]byte, bool) {
	last := -1
	for off := 0; off < len(m); {
		if off+2 > len(m) {
			return dst, false
		}
		window, length := int(m[off]), int(m[off+1])
		off += 2
		if window <= last || length == 0 || length > 32 || off+length > len(m) {
			return dst, false
		}
		for j, b := range m[off : off+length] {
			for bit := range 8 {
				if b&(0x80>>bit) != 0 {
					dst = append(dst, ' ')
					dst = appendType(dst, uint16(window*256+j*8+bit))
				}
			}
		}
		off += length
		last = window
	}
	return dst, true
}

// appendType appends type t's name, or TYPEnnn for one without (RFC 3597).
func appendType(dst []byte, t uint16) []byte {
	if s, ok := dns.TypeToString[t]; ok {
		return append(dst, s...)
	}
	return strconv.AppendUint(append(dst, "TYPE"...), uint64(t), 10)
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
