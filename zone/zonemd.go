package zone

import (
	"bytes"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"

	"github.com/miekg/dns"
)

// ZONEMD schemes and hash algorithms (RFC 8976 sections 5.2 and 5.3) that
// VerifyZONEMD supports.
const (
	ZONEMDSimple = 1 // the SIMPLE scheme
	ZONEMDSHA384 = 1
	ZONEMDSHA512 = 2
)

// ZONEMDStatus is what a zone's ZONEMD records say of it.
type ZONEMDStatus uint8

const (
	// ZONEMDAbsent: the apex has no ZONEMD record.
	ZONEMDAbsent ZONEMDStatus = iota
	// ZONEMDVerified: a ZONEMD record of a supported scheme and hash
	// algorithm, with the SOA's serial, holds the zone's digest.
	ZONEMDVerified
	// ZONEMDFailed: the apex has ZONEMD records of a supported scheme and
	// hash algorithm, and none of them verifies.
	ZONEMDFailed
	// ZONEMDUnsupported: the apex has ZONEMD records, none of a scheme
	// and hash algorithm supported here; RFC 8976 section 4 has them
	// ignored.
	ZONEMDUnsupported
)

// ZONEMDResult is the outcome of VerifyZONEMD.
type ZONEMDResult struct {
	Status ZONEMDStatus
	// Scheme and Hash are those of the record that verified.
	Scheme, Hash uint8
	// Reason says why verification failed, or which records were not
	// supported.
	Reason string
}

// String is the result as an operator reads it: "absent", "verified
// sha384", "failed: REASON" or "unsupported: REASON".
func (r ZONEMDResult) String() string {
	switch r.Status {
	case ZONEMDAbsent:
		return "absent"
	case ZONEMDVerified:
		return "verified " + zonemdHashName(r.Hash)
	case ZONEMDFailed:
		return "failed: " + r.Reason
	default:
		return "unsupported: " + r.Reason
	}
}

func zonemdHashName(h uint8) string {
	switch h {
	case ZONEMDSHA384:
		return "sha384"
	case ZONEMDSHA512:
		return "sha512"
	}
	return fmt.Sprintf("hash algorithm %d", h)
}

// zonemdRR is one apex ZONEMD record's RDATA.
type zonemdRR struct {
	serial       uint32
	scheme, hash uint8
	digest       []byte
}

// VerifyZONEMD verifies the zone's digest against the ZONEMD records at
// its apex (RFC 8976 section 4), with the SIMPLE scheme (section 3.3.1)
// and the SHA-384 and SHA-512 hash algorithms: over every record Walk
// yields, in canonical form and order, duplicates once, but for the apex
// ZONEMD RRset and the apex RRSIGs covering ZONEMD. Records whose scheme
// or hash algorithm is not supported are ignored; one whose serial is not
// the SOA's, or two with the same scheme and hash algorithm, cannot
// verify. The zone verifies when one supported record's digest matches.
//
// It does not validate the ZONEMD RRset's DNSSEC signature (section 4
// step 1 asks a validating recipient to): ringdns does not validate
// DNSSEC, so in a signed zone the digest guards against damage in
// transit and on disk, not against a forged zone. The error is not nil
// only when the zone's table cannot be read, a defect.
//
// A zone is immutable: the result is computed once and kept, so that
// asking again (for a status report, say) costs nothing.
func (z *Zone) VerifyZONEMD() (ZONEMDResult, error) {
	if r := z.zonemd.Load(); r != nil {
		return *r, nil
	}
	res, err := z.verifyZONEMD()
	if err == nil {
		z.zonemd.Store(&res)
	}
	return res, err
}

func (z *Zone) verifyZONEMD() (ZONEMDResult, error) {
	rrs, err := z.apexZONEMD()
	if err != nil || len(rrs) == 0 {
		return ZONEMDResult{}, err
	}
	// The records that may verify, one hasher per hash algorithm; the
	// reasons the others cannot, to report when none verifies.
	var usable []zonemdRR
	var reasons, unsupported []string
	for i, r := range rrs {
		name := fmt.Sprintf("scheme %d, %s", r.scheme, zonemdHashName(r.hash))
		switch {
		case r.scheme != ZONEMDSimple || r.hash != ZONEMDSHA384 && r.hash != ZONEMDSHA512:
			unsupported = append(unsupported, name)
			continue
		case r.serial != z.serial:
			reasons = append(reasons, fmt.Sprintf("the ZONEMD (%s) has serial %d, the SOA %d", name, r.serial, z.serial))
			continue
		}
		dup := false
		for j, o := range rrs {
			if j != i && o.scheme == r.scheme && o.hash == r.hash {
				dup = true
			}
		}
		if dup {
			reasons = append(reasons, fmt.Sprintf("more than one ZONEMD with %s", name))
			continue
		}
		usable = append(usable, r)
	}
	if len(usable) == 0 && len(reasons) == 0 {
		return ZONEMDResult{Status: ZONEMDUnsupported, Reason: "no ZONEMD of a supported scheme and hash algorithm (SIMPLE with SHA-384 or SHA-512); the zone has " + joinComma(unsupported)}, nil
	}
	var h384, h512 hash.Hash
	for _, r := range usable {
		if r.hash == ZONEMDSHA384 {
			h384 = sha512.New384()
		} else {
			h512 = sha512.New()
		}
	}
	if len(usable) > 0 {
		if err := z.digest(h384, h512); err != nil {
			return ZONEMDResult{}, err
		}
	}
	for _, r := range usable {
		h := h384
		if r.hash == ZONEMDSHA512 {
			h = h512
		}
		sum := h.Sum(nil)
		if subtle.ConstantTimeCompare(sum, r.digest) == 1 {
			return ZONEMDResult{Status: ZONEMDVerified, Scheme: r.scheme, Hash: r.hash}, nil
		}
		reasons = append(reasons, fmt.Sprintf("the zone's %s digest is %s, its ZONEMD says %s",
			zonemdHashName(r.hash), shortHex(sum), shortHex(r.digest)))
	}
	return ZONEMDResult{Status: ZONEMDFailed, Reason: joinComma(reasons)}, nil
}

// shortHex renders a digest's first 8 bytes, enough to tell two apart in
// a message.
func shortHex(b []byte) string {
	if len(b) > 8 {
		return hex.EncodeToString(b[:8]) + "..."
	}
	return hex.EncodeToString(b)
}

func joinComma(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(x)
	}
	return b.String()
}

// apexZONEMD returns the ZONEMD records at the apex.
func (z *Zone) apexZONEMD() ([]zonemdRR, error) {
	var out []zonemdRR
	it := newWalkIter(z)
	for {
		r, err := it.next()
		if r == nil || err != nil {
			return out, err
		}
		if !bytes.Equal(r.Owner, z.apex) {
			return out, nil
		}
		// RDATA shorter than the fixed fields is no ZONEMD of any
		// scheme: it is skipped as an unsupported one would be.
		if r.Type == dns.TypeZONEMD && len(r.Data) >= 6 {
			out = append(out, zonemdRR{serial: binary.BigEndian.Uint32(r.Data), scheme: r.Data[4], hash: r.Data[5],
				digest: bytes.Clone(r.Data[6:])})
		}
	}
}

// ZONEMDDigest computes the zone's digest with the SIMPLE scheme and hash
// algorithm h (ZONEMDSHA384 or ZONEMDSHA512), as a ZONEMD record of the
// zone would hold it.
func (z *Zone) ZONEMDDigest(h uint8) ([]byte, error) {
	var hh hash.Hash
	switch h {
	case ZONEMDSHA384:
		hh = sha512.New384()
	case ZONEMDSHA512:
		hh = sha512.New()
	default:
		return nil, fmt.Errorf("zone %s: ZONEMD hash algorithm %d is not supported (1, SHA-384, and 2, SHA-512, are)", z.origin, h)
	}
	if err := z.digest(hh); err != nil {
		return nil, err
	}
	return hh.Sum(nil), nil
}

// digest feeds the zone's records to the hashers that are not nil, in the
// SIMPLE scheme's form (RFC 8976 section 3.3.1): each record in RFC 4034
// section 6.2's canonical wire form (owner, type, class, TTL, RDATA
// length, RDATA), in canonical order, the apex ZONEMD RRset and the apex
// RRSIGs covering ZONEMD left out.
func (z *Zone) digest(hs ...hash.Hash) error {
	var hdr [10]byte
	return z.Walk(func(r *Record) error {
		apex := bytes.Equal(r.Owner, z.apex)
		if apex && (r.Type == dns.TypeZONEMD ||
			r.Type == dns.TypeRRSIG && len(r.Data) >= 2 && binary.BigEndian.Uint16(r.Data) == dns.TypeZONEMD) {
			return nil
		}
		binary.BigEndian.PutUint16(hdr[0:], r.Type)
		binary.BigEndian.PutUint16(hdr[2:], dns.ClassINET)
		binary.BigEndian.PutUint32(hdr[4:], r.TTL)
		binary.BigEndian.PutUint16(hdr[8:], uint16(len(r.Data)))
		for _, h := range hs {
			if h != nil {
				h.Write(r.Owner)
				h.Write(hdr[:])
				h.Write(r.Data)
			}
		}
		return nil
	})
}
