package dataplane

import (
	"encoding/binary"

	"github.com/ringdns/ringdns/zone"
)

const (
	hdrLen    = 12
	typeA     = 1
	typeNS    = 2
	typeCNAME = 5
	typeSOA   = 6
	typeTXT   = 16
	typeDS    = 43
	typeRRSIG = 46
	typeNSEC  = 47
	typeDNAME = 39
	typeOPT   = 41
	typeTSIG  = 250
	typeIXFR  = 251
	typeAXFR  = 252
	typeANY   = 255
	classIN   = 1
	classCH   = 3
	classANY  = 255

	optNSID   = 3
	optExpire = 9
)

// query is what the engine needs of a parsed query. The worker keeps one
// for all its queries (Worker.qy) rather than a new one on the stack, which
// Go would clear, more than a kilobyte, for every packet: the parse resets
// its head (reset), and writes what it reads of the name, the cookie and
// the name's place in the reply before it is read.
type query struct {
	queryHead

	// cookie is the data of the first COOKIE option (RFC 7873), copied
	// out of the query because the reply is written over it; its length
	// is cookieLen. Cookies.check then leaves there the option the reply
	// carries, and sets cookieReply.
	cookie [40]byte

	name name // the query name, lowercase, with label offsets and suffix hashes
	// ctx is where the query name's labels sit in the reply, which
	// Snapshot.resolve writes for the name it answers.
	ctx msgName
}

// queryHead is what a query's parse sets besides the name and the cookie's
// bytes, all of it zero before the parse (query.reset).
type queryHead struct {
	qsize  int // bytes of the question section (name, type, class)
	qtype  uint16
	qclass uint16

	edns bool
	do   bool
	nsid bool
	// expire is set when the query asks for the EDNS EXPIRE option (RFC
	// 7314).
	expire bool
	udp    uint16 // the client's EDNS UDP payload size
	vers   uint8
	// tsig is set when the message ends in a TSIG record (RFC 8945): it
	// is handed off to the control plane, which verifies and signs.
	tsig bool

	// cookieLen is the length of the COOKIE option's data in cookie: 0
	// without one, -1 when its length is none a cookie can have.
	cookieLen   int8
	cookieReply bool
}

// reset readies qy for the parse of another query: its head zero and its
// name empty, as a new query's. The name's bytes, offsets and hashes and
// the cookie's bytes are left as they were: each is written before it is
// read, within the name's length and label count and the cookie's length
// (TestAnswerReusedQuery answers with a query left full of other data).
func (qy *query) reset() {
	qy.queryHead = queryHead{}
	qy.name.n, qy.name.labels = 0, 0
}

// name is a lowercase wire-format name with what lookups need: the offset
// of each label and the hash of each suffix (zone.HashLabel, root-first).
type name struct {
	b      [255]byte
	n      int // bytes, root label included
	labels int
	off    [zone.MaxLabels + 1]uint8  // off[labels] is the root label's offset
	hs     [zone.MaxLabels + 1]uint32 // hs[i]: hash of the suffix starting at label i; hs[labels] is the root's
}

// suffix returns the suffix of the name starting at label i.
func (nm *name) suffix(i int) []byte { return nm.b[nm.off[i]:nm.n] }

// hashAll fills hs from the root leftwards.
func (nm *name) hashAll() {
	h := zone.HashSeed
	nm.hs[nm.labels] = h
	for i := nm.labels - 1; i >= 0; i-- {
		o := int(nm.off[i])
		h = zone.HashLabel(h, nm.b[o:o+int(nm.b[o])+1])
		nm.hs[i] = h
	}
}

// lower8 maps A-Z to a-z in each of the eight bytes of x and leaves every
// other byte alone, with no branches: per byte, the low seven bits plus
// 0x80-'A' reach the top bit when the byte is at least 'A', plus 0x80-'Z'-1
// when it is above 'Z' (neither sum carries into the next byte), and a byte
// with its top bit set is no letter.
func lower8(x uint64) uint64 {
	const low7, top = 0x7f7f7f7f7f7f7f7f, 0x8080808080808080
	b := x & low7
	ge := b + 0x0101010101010101*(0x80-'A')
	gt := b + 0x0101010101010101*(0x80-'Z'-1)
	return x | (ge&^gt&^x&top)>>2
}

// parseQName reads the uncompressed query name at q[12:] into nm, lowered.
// It returns the name's length in q, or 0 when the name is malformed
// (compressed, a label over 63 bytes, over 255 bytes, or cut short).
func parseQName(q []byte, nm *name) int {
	p := hdrLen
	n := 0
	for {
		if p >= len(q) {
			return 0
		}
		l := int(q[p])
		if l == 0 {
			if n >= len(nm.b) {
				return 0
			}
			nm.b[n] = 0
			nm.off[nm.labels] = uint8(n)
			n++
			break
		}
		if l > 63 || nm.labels >= zone.MaxLabels-1 || n+l+1 >= 255 || p+l+1 > len(q) {
			return 0
		}
		nm.off[nm.labels] = uint8(n)
		nm.labels++
		nm.b[n] = byte(l)
		// Eight bytes at a time while the query and nm.b hold eight more,
		// the last word running past the label: the bytes it writes
		// beyond are overwritten by the next label or the root's, and
		// those past the name are never read.
		i := 1
		for ; i <= l && p+i+8 <= len(q) && n+i+8 <= len(nm.b); i += 8 {
			binary.LittleEndian.PutUint64(nm.b[n+i:], lower8(binary.LittleEndian.Uint64(q[p+i:])))
		}
		for ; i <= l; i++ {
			c := q[p+i]
			if c >= 'A' && c <= 'Z' {
				c += 32
			}
			nm.b[n+i] = c
		}
		n += l + 1
		p += l + 1
	}
	nm.n = n
	return p + 1 - hdrLen
}

// parseRecords walks the answer, authority and additional sections of a
// query from offset p, picking up the OPT record and noting a TSIG record.
// It reports false when they are malformed: a record cut short, an OPT not
// in the additional section, two OPTs, an OPT not owned by the root, bad
// options, a TSIG that is not the last record of the additional section
// (FORMERR, RFC 8945 section 5.1: that also refuses a second one), or
// bytes left over after the last record.
func parseRecords(q []byte, p int, an, ns, ar int, qy *query) bool {
	total := an + ns + ar
	for i := 0; i < total; i++ {
		s := p
		p = skipName(q, p)
		if p < 0 || p+10 > len(q) {
			return false
		}
		t := be16(q[p:])
		rdlen := int(be16(q[p+8:]))
		rd := p + 10
		if rd+rdlen > len(q) {
			return false
		}
		if t == typeOPT {
			// An OPT whose payload size field reads 1 (class IN) with
			// no options is malformed to Knot DNS, which like every
			// record of a known type in class IN must have rdata there.
			if i < an+ns || qy.edns || p != s+1 || be16(q[p+2:]) == classIN && rdlen == 0 {
				return false
			}
			qy.edns = true
			qy.udp = be16(q[p+2:])
			qy.vers = q[p+5]
			qy.do = q[p+6]&0x80 != 0
			for o := rd; o < rd+rdlen; {
				if o+4 > rd+rdlen {
					return false
				}
				code, olen := be16(q[o:]), int(be16(q[o+2:]))
				if o+4+olen > rd+rdlen {
					return false
				}
				switch code {
				case optNSID:
					qy.nsid = true
				case optExpire:
					qy.expire = true
				case optCookie:
					// A client cookie alone, or with a server
					// cookie of 8 to 32 bytes; any other length
					// is malformed (RFC 7873 section 5.2.2). A
					// second COOKIE option is ignored, as BIND
					// ignores it.
					if qy.cookieLen == 0 {
						qy.cookieLen = -1
						if cookieLenValid(olen) {
							qy.cookieLen = int8(olen)
							// Byte by byte rather than by
							// copy, whose call would make
							// parseRecords spill and check its
							// stack for every query: a COOKIE
							// option is rare, and short.
							for j, c := range q[o+4 : o+4+olen] {
								qy.cookie[j] = c
							}
						}
					}
				}
				o += 4 + olen
			}
		} else if t == typeTSIG {
			// Only the last record may be a TSIG; it is read and
			// verified by the control plane (the worker hands the
			// message off), so nothing of it is read here.
			if i != total-1 || i < an+ns {
				return false
			}
			qy.tsig = true
		}
		p = rd + rdlen
	}
	return p == len(q)
}
