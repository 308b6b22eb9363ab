package zone

import (
	"fmt"

	"github.com/miekg/dns"
)

// CanonicalRecord returns rr in the form Walk yields records: the owner
// as lowercase wire, the RDATA uncompressed with the names RFC 4034
// section 6.2 lists lowercased (as RFC 6840 section 5.1 amends it), so
// that records from elsewhere (an IXFR from a primary, in any case) are
// compared with and stored beside a zone's own. The slices are the
// caller's. Only class IN is a zone's.
func CanonicalRecord(rr dns.RR) (Record, error) {
	h := rr.Header()
	if h.Class != dns.ClassINET {
		return Record{}, fmt.Errorf("record %s: class %s not supported (only IN)", rr, dns.Class(h.Class))
	}
	buf := make([]byte, dns.Len(rr)+len(h.Name)+16)
	n, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return Record{}, fmt.Errorf("record %s cannot be encoded: %w", rr, err)
	}
	on := wireNameLen(buf[:n])
	if on < 0 || n < on+10 {
		return Record{}, fmt.Errorf("record %s cannot be encoded", rr)
	}
	data := buf[on+10 : n]
	if !rdataNamesOK(h.Rrtype, data) {
		return Record{}, fmt.Errorf("record %s has malformed data", rr)
	}
	canonicalRdata(h.Rrtype, data)
	return Record{Owner: lowerInto(buf[:on], buf[:on]), Type: h.Rrtype, TTL: h.Ttl, Data: data}, nil
}
