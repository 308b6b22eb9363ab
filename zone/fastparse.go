package zone

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// The fast path of the zone parser. miekg/dns's ZoneParser allocates a
// string per token and an object per record, and was most of the CPU a
// large zone's load took. Most lines of a TLD's zone file are simple: a
// record on one line, without parentheses, quotes or escapes, of one of a
// few types (NS, A, AAAA, DS; in a signed zone RRSIG, NSEC3, NSEC, and
// the apex's SOA, DNSKEY and NSEC3PARAM; MX and CNAME). parseFast reads
// such lines itself and writes their wire-format rdata straight into the
// builder's arrays. Every other line, and every line the fast path is not
// sure of, is handed to miekg/dns, which stays the reference parser: the
// fast path accepts only what miekg/dns accepts, and gives byte for byte
// the records it gives (FuzzFastLine and TestFastRecords compare them).
//
// The lines handed to miekg/dns are parsed in segments: each run of them
// by a ZoneParser of its own, given first the state the fast path holds
// (the origin, the $TTL, and a record that sets the previous owner and
// TTL, which is dropped), and ended by a marker record, so that a segment
// stands only if its parse stopped at its end, as the chunks of a
// parallel parse do (see parseChunks). A directive other than a simple
// $ORIGIN or $TTL ($INCLUDE, $GENERATE), a line longer than the reader's
// buffer, or a state the fast path cannot hand over, leaves the rest of
// the text to one ZoneParser. Any error at all makes the caller parse the
// whole text again with miekg/dns alone, so that a zone's errors are
// exactly those of a serial miekg/dns parse.

// errSegment is the error of a segment whose parse did not stop at its
// marker; the caller parses the text again serially.
var errSegment = errors.New("zone: a segment's parse did not end at its marker")

// fastParser is the state of the fast path over one text: what
// miekg/dns's ZoneParser would hold at the same place.
type fastParser struct {
	b          *builder
	origin     string // as the ZoneParser holds it
	originWire []byte // its wire form, case kept
	// ttl is the default TTL: the last $TTL's when byDirective, else the
	// last record's; ttlSet is false until either came.
	ttl         uint32
	ttlSet      bool
	byDirective bool
	lastNode    int32 // the previous record's node, -1 before any
	ord         uint32
	fast        int // records the fast path read
	// ownerTok is the owner token of the last record the fast path read,
	// as written, and ownerNode its node: a record whose owner is written
	// the same way (most lines of a delegation's RRsets) needs no
	// conversion, lowercasing or check of its owner. Only $ORIGIN changes
	// what a token names; it forgets the token.
	ownerTok  []byte
	ownerNode int32

	toks    [][]byte
	owner   [256]byte
	scratch []byte
	types   []uint16
	upper   [24]byte
}

// The kinds of line tokenize finds.
const (
	lineSkip      = iota // blank or only a comment
	lineRecord           // a candidate for the fast path
	lineDirective        // starts with $
	lineOther            // for miekg/dns
)

// parseFast is parse (into b, from src, a text whose parser starts with
// origin) with the fast path. An error of any kind means the text must be
// parsed again by parse.
func (b *builder) parseFast(src io.Reader, origin string) error {
	_, err := b.parseFastCount(src, origin)
	return err
}

// parseFastCount is parseFast, which also says how many records the
// fast path read itself (for the tests).
func (b *builder) parseFastCount(src io.Reader, origin string) (fast int, err error) {
	ow, err := toWire(origin)
	if err != nil {
		return 0, b.parse(src, origin)
	}
	fp := &fastParser{b: b, origin: origin, originWire: ow, lastNode: -1, toks: make([][]byte, 0, 32)}
	if b.segMarker == "" {
		b.segMarker = chunkMarker()
	}
	br, ok := src.(*bufio.Reader)
	if !ok || br.Size() < 64<<10 {
		br = bufio.NewReaderSize(src, 64<<10)
	}
	var seg []byte
	var cont splitScanner // the paren, quote and comment state of seg's last record
	for {
		line, rerr := br.ReadSlice('\n')
		if rerr == bufio.ErrBufferFull {
			return fp.fast, fp.giveUp(seg, line, br)
		}
		if rerr != nil && rerr != io.EOF {
			return fp.fast, rerr
		}
		if len(line) > 0 {
			if cont.paren > 0 || cont.inQuote || cont.escape {
				seg = append(seg, line...)
				if cont.piece(line); cont.unsure {
					return fp.fast, fp.giveUp(seg, nil, br)
				}
			} else {
				switch fp.tokenize(line) {
				case lineSkip:
				case lineDirective:
					if len(seg) > 0 {
						if !fp.ttlSet {
							return fp.fast, fp.giveUp(seg, line, br)
						}
						if err := fp.flush(seg); err != nil {
							return fp.fast, err
						}
						seg = seg[:0]
					}
					if !fp.directive() {
						return fp.fast, fp.giveUp(nil, line, br)
					}
				case lineRecord:
					if len(seg) > 0 {
						if !fp.ttlSet {
							return fp.fast, fp.giveUp(seg, line, br)
						}
						if err := fp.flush(seg); err != nil {
							return fp.fast, err
						}
						seg = seg[:0]
					}
					if fp.record(line[0] == ' ' || line[0] == '\t') {
						break
					}
					fallthrough
				default:
					seg = append(seg, line...)
					if cont.piece(line); cont.unsure {
						return fp.fast, fp.giveUp(seg, nil, br)
					}
				}
			}
		}
		if rerr == io.EOF {
			break
		}
	}
	if len(seg) > 0 {
		if !fp.ttlSet {
			return fp.fast, fp.giveUp(seg, nil, br)
		}
		return fp.fast, fp.flush(seg)
	}
	return fp.fast, nil
}

// preamble is the text that puts a fresh ZoneParser in the state the fast
// path holds: the $TTL, and a record of the previous owner with the
// default TTL (dropped by parseRecords), which sets both the owner a line
// starting with a blank inherits and, when no $TTL came, the TTL a record
// without one takes.
func (fp *fastParser) preamble() ([]byte, bool) {
	var p []byte
	if fp.byDirective {
		p = append(p, "$TTL "...)
		p = strconv.AppendUint(p, uint64(fp.ttl), 10)
		p = append(p, '\n')
	}
	if fp.lastNode < 0 {
		return p, false
	}
	p = append(p, wireString(fp.b.names[fp.lastNode])...)
	if fp.ttlSet {
		p = append(p, ' ')
		p = strconv.AppendUint(p, uint64(fp.ttl), 10)
	}
	p = append(p, " IN TYPE65534 \\# 0\n"...)
	return p, true
}

// flush parses a segment with miekg/dns and takes the state it leaves.
func (fp *fastParser) flush(seg []byte) error {
	b := fp.b
	pre, dummy := fp.preamble()
	end := "\n" + b.segMarker + " 0 IN TYPE65534 \\# 0\n"
	if seg[len(seg)-1] == '\n' {
		end = end[1:]
	}
	r := io.MultiReader(bytes.NewReader(pre), bytes.NewReader(seg), strings.NewReader(end))
	zp := dns.NewZoneParser(r, fp.origin, b.file)
	zp.SetIncludeAllowed(true)
	n0 := len(b.recs)
	b.sawSegMarker = false
	ord, err := b.parseRecords(zp, fp.ord, dummy)
	if err != nil {
		return err
	}
	if !b.sawSegMarker && !b.sawMarker {
		return errSegment
	}
	fp.ord = ord
	if len(b.recs) > n0 {
		last := &b.recs[len(b.recs)-1]
		fp.lastNode = last.node
		if !fp.byDirective {
			// Each record left the parser's default TTL its own.
			fp.ttl = last.ttl
		}
	}
	return nil
}

// giveUp leaves the rest of the text (seg, then line, then what br has
// not yet given) to one ZoneParser.
func (fp *fastParser) giveUp(seg, line []byte, br *bufio.Reader) error {
	b := fp.b
	pre, dummy := fp.preamble()
	rest := slices2(seg, line)
	zp := dns.NewZoneParser(io.MultiReader(bytes.NewReader(pre), bytes.NewReader(rest), br), fp.origin, b.file)
	zp.SetIncludeAllowed(true)
	_, err := b.parseRecords(zp, fp.ord, dummy)
	return err
}

// slices2 returns a copy of a followed by b.
func slices2(a, b []byte) []byte {
	out := make([]byte, 0, len(a)+len(b))
	return append(append(out, a...), b...)
}

// lineClass classes the bytes of a line for tokenize: 1 a blank, 2 the
// end of the line or a comment, 3 a byte the fast path leaves to
// miekg/dns (quotes, parentheses, escapes, a carriage return).
var lineClass = func() (t [256]uint8) {
	t[' '], t['\t'] = 1, 1
	t['\n'], t[';'] = 2, 2
	t['"'], t['('], t[')'], t['\\'], t['\r'] = 3, 3, 3, 3, 3
	return
}()

// tokenize splits a line into fp.toks and says what kind of line it is.
func (fp *fastParser) tokenize(line []byte) int {
	fp.toks = fp.toks[:0]
	if line[0] == '$' {
		// A directive the fast path does not read ($INCLUDE, $GENERATE,
		// or one with quotes or escapes) leaves the rest of the text to
		// miekg/dns (see directive): a $GENERATE's records, say, do not
		// set the owner a line starting with a blank inherits.
		if fp.split(line) != lineRecord {
			fp.toks = fp.toks[:0]
		}
		return lineDirective
	}
	return fp.split(line)
}

// split is tokenize's splitting of a line into tokens.
func (fp *fastParser) split(line []byte) int {
	i, n := 0, len(line)
	for i < n {
		c := lineClass[line[i]]
		if c == 1 {
			i++
			continue
		}
		if c == 2 {
			// A comment may hold anything but what would change the
			// reading of the line by miekg/dns's lexer; be strict.
			for _, x := range line[i:] {
				if lineClass[x] == 3 {
					return lineOther
				}
			}
			break
		}
		if c == 3 {
			return lineOther
		}
		j := i
		for j < n && lineClass[line[j]] == 0 {
			j++
		}
		fp.toks = append(fp.toks, line[i:j])
		i = j
	}
	if len(fp.toks) == 0 {
		return lineSkip
	}
	return lineRecord
}

// directive follows a $TTL or $ORIGIN line; it reports false for any
// other directive or form.
func (fp *fastParser) directive() bool {
	if len(fp.toks) != 2 {
		return false
	}
	d, v := fp.toks[0], fp.toks[1]
	switch {
	case bytes.EqualFold(d, []byte("$TTL")):
		ttl, ok := ttlValue(v)
		if !ok {
			return false
		}
		fp.ttl, fp.ttlSet, fp.byDirective = ttl, true, true
		return true
	case bytes.EqualFold(d, []byte("$ORIGIN")):
		w, ok := fp.appendName(fp.owner[:0], v)
		if !ok {
			return false
		}
		switch {
		case len(v) == 1 && v[0] == '@':
		case v[len(v)-1] == '.':
			fp.origin = string(v)
		case fp.origin == ".":
			fp.origin = string(v) + "."
		default:
			fp.origin = string(v) + "." + fp.origin
		}
		fp.originWire = append(fp.originWire[:0], w...)
		fp.ownerTok = fp.ownerTok[:0]
		return true
	}
	return false
}

// nameByte marks the bytes the fast path takes in a name.
var nameByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-32] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['-'], t['_'], t['*'] = true, true, true
	return
}()

// appendName appends the wire form (case kept) of the name tok, relative
// to the origin, as miekg/dns reads it; ok is false for a name the fast
// path leaves to miekg/dns.
func (fp *fastParser) appendName(dst, tok []byte) ([]byte, bool) {
	start := len(dst)
	if len(tok) == 1 {
		switch tok[0] {
		case '@':
			return append(dst, fp.originWire...), true
		case '.':
			return append(dst, 0), true
		}
	}
	abs := tok[len(tok)-1] == '.'
	if abs {
		tok = tok[:len(tok)-1]
	}
	for len(tok) > 0 {
		k := bytes.IndexByte(tok, '.')
		if k < 0 {
			k = len(tok)
		}
		if k == 0 || k > 63 {
			return dst, false
		}
		dst = append(dst, byte(k))
		for _, c := range tok[:k] {
			if !nameByte[c] {
				return dst, false
			}
		}
		dst = append(dst, tok[:k]...)
		if k == len(tok) {
			break
		}
		tok = tok[k+1:]
		if len(tok) == 0 {
			return dst, false // two dots, or a dot before the final one
		}
	}
	if len(dst) == start {
		return dst, false
	}
	if abs {
		dst = append(dst, 0)
	} else {
		dst = append(dst, fp.originWire...)
	}
	return dst, len(dst)-start <= 255
}

// number parses a decimal number up to max as strconv.ParseUint does
// (digits only, any leading zeros).
func number(tok []byte, max uint64) (uint64, bool) {
	var v uint64
	for _, c := range tok {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
		if v > max {
			return 0, false
		}
	}
	return v, len(tok) > 0
}

// ttlValue is miekg/dns's stringToTTL (1h2m and the like) for a token
// that starts with a digit (one that does not might be read as a type or
// class) and is short enough that the sum cannot overflow.
func ttlValue(tok []byte) (uint32, bool) {
	if len(tok) == 0 || len(tok) > 12 || tok[0] < '0' || tok[0] > '9' {
		return 0, false
	}
	var s, i uint64
	for _, c := range tok {
		switch c {
		case 's', 'S':
			s, i = s+i, 0
		case 'm', 'M':
			s, i = s+i*60, 0
		case 'h', 'H':
			s, i = s+i*3600, 0
		case 'd', 'D':
			s, i = s+i*86400, 0
		case 'w', 'W':
			s, i = s+i*604800, 0
		default:
			if c < '0' || c > '9' {
				return 0, false
			}
			i = i*10 + uint64(c-'0')
		}
	}
	if s+i > math.MaxUint32 {
		return 0, false
	}
	return uint32(s + i), true
}

// fastType returns the type the fast path reads by the mnemonic u (in
// capitals), or 0. A switch, not a map: hashing the mnemonic of every
// line was a tenth of the fast path's time.
func fastType(u []byte) uint16 {
	switch string(u) {
	case "A":
		return dns.TypeA
	case "NS":
		return dns.TypeNS
	case "CNAME":
		return dns.TypeCNAME
	case "SOA":
		return dns.TypeSOA
	case "MX":
		return dns.TypeMX
	case "AAAA":
		return dns.TypeAAAA
	case "DS":
		return dns.TypeDS
	case "RRSIG":
		return dns.TypeRRSIG
	case "NSEC":
		return dns.TypeNSEC
	case "DNSKEY":
		return dns.TypeDNSKEY
	case "NSEC3":
		return dns.TypeNSEC3
	case "NSEC3PARAM":
		return dns.TypeNSEC3PARAM
	}
	return 0
}

// upperTok returns tok in capitals in fp's scratch (false when too long
// for any mnemonic).
func (fp *fastParser) upperTok(tok []byte) ([]byte, bool) {
	if len(tok) > len(fp.upper) {
		return nil, false
	}
	u := fp.upper[:len(tok)]
	for i, c := range tok {
		if c >= 'a' && c <= 'z' {
			c -= 32
		}
		u[i] = c
	}
	return u, true
}

// typeToken reads a type as the RRSIG and NSEC readers of miekg/dns do: a
// mnemonic, or TYPE and a number.
func (fp *fastParser) typeToken(tok []byte) (uint16, bool) {
	u, ok := fp.upperTok(tok)
	if !ok {
		return 0, false
	}
	if t, ok := dns.StringToType[string(u)]; ok {
		return t, true
	}
	if len(u) > 4 && string(u[:4]) == "TYPE" {
		v, ok := number(u[4:], math.MaxUint16)
		return uint16(v), ok
	}
	return 0, false
}

// record reads a record line that tokenize found a candidate, adding it
// to the builder and reporting true, or leaves everything as it was and
// reports false.
func (fp *fastParser) record(blankStart bool) bool {
	b := fp.b
	toks := fp.toks
	var owner []byte
	ownerNode := int32(-1)
	i := 0
	if !blankStart {
		if len(fp.ownerTok) > 0 && bytes.Equal(fp.ownerTok, toks[0]) {
			ownerNode = fp.ownerNode
		} else {
			w, ok := fp.appendName(fp.owner[:0], toks[0])
			if !ok {
				return false
			}
			owner = lowerWireBytes(w)
			if !isSubdomain(owner, b.apex) {
				return false
			}
		}
		i = 1
	} else if fp.lastNode < 0 {
		return false
	}
	var ttl uint32
	var typ uint16
	hasTTL, hasClass := false, false
	for ; i < len(toks) && typ == 0; i++ {
		t := toks[i]
		switch {
		case t[0] >= '0' && t[0] <= '9':
			v, ok := ttlValue(t)
			if !ok || hasTTL {
				return false
			}
			ttl, hasTTL = v, true
		case len(t) == 2 && (t[0] == 'I' || t[0] == 'i') && (t[1] == 'N' || t[1] == 'n'):
			if hasClass {
				return false
			}
			hasClass = true
		default:
			u, ok := fp.upperTok(t)
			if !ok {
				return false
			}
			if typ = fastType(u); typ == 0 {
				return false
			}
		}
	}
	if typ == 0 {
		return false
	}
	if !hasTTL {
		if !fp.ttlSet {
			return false
		}
		ttl = fp.ttl
	}
	rd0 := len(b.rdata)
	r := rec{typ: typ, ttl: ttl, rd: uint32(rd0), ord: fp.ord}
	var ok bool
	b.rdata, ok = fp.rdata(b.rdata, typ, toks[i:], &r)
	if !ok || len(b.rdata)-rd0 > 65535 || len(b.rdata) == rd0 {
		b.rdata = b.rdata[:rd0]
		return false
	}
	r.rdl = uint16(len(b.rdata) - rd0)
	switch {
	case blankStart:
		r.node = fp.lastNode
	case ownerNode >= 0:
		r.node = ownerNode
	case fp.lastNode >= 0 && bytes.Equal(b.names[fp.lastNode], owner):
		r.node = fp.lastNode
	default:
		r.node = b.nodeFor(owner)
	}
	if !blankStart && ownerNode < 0 {
		fp.ownerTok = append(fp.ownerTok[:0], toks[0]...)
		fp.ownerNode = r.node
	}
	if typ == dns.TypeSOA {
		b.soaMinimum, b.sawSOA = be32(b.rdata[len(b.rdata)-4:]), true
	}
	b.recs = append(b.recs, r)
	fp.lastNode = r.node
	fp.ord++
	fp.fast++
	if hasTTL && !fp.byDirective {
		fp.ttl, fp.ttlSet = ttl, true
	}
	return true
}

// rdata appends the wire rdata of a record of type typ given by the
// tokens rd, or reports false.
func (fp *fastParser) rdata(dst []byte, typ uint16, rd [][]byte, r *rec) ([]byte, bool) {
	var ok bool
	switch typ {
	case dns.TypeA:
		if len(rd) != 1 {
			return dst, false
		}
		return appendIPv4(dst, rd[0])
	case dns.TypeAAAA:
		if len(rd) != 1 {
			return dst, false
		}
		for _, c := range rd[0] {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':') {
				return dst, false
			}
		}
		a, err := netip.ParseAddr(string(rd[0]))
		if err != nil || !a.Is6() {
			return dst, false
		}
		b := a.As16()
		return append(dst, b[:]...), true
	case dns.TypeNS, dns.TypeCNAME:
		if len(rd) != 1 {
			return dst, false
		}
		return fp.appendName(dst, rd[0])
	case dns.TypeMX:
		if len(rd) != 2 {
			return dst, false
		}
		v, ok := number(rd[0], math.MaxUint16)
		if !ok {
			return dst, false
		}
		return fp.appendName(append(dst, byte(v>>8), byte(v)), rd[1])
	case dns.TypeSOA:
		if len(rd) != 7 {
			return dst, false
		}
		if dst, ok = fp.appendName(dst, rd[0]); !ok {
			return dst, false
		}
		if dst, ok = fp.appendName(dst, rd[1]); !ok {
			return dst, false
		}
		for k, t := range rd[2:] {
			v, ok := number(t, math.MaxUint32)
			if !ok && k > 0 && !allDigits(t) {
				var v32 uint32
				v32, ok = ttlValue(t)
				v = uint64(v32)
			}
			if !ok {
				return dst, false
			}
			dst = append(dst, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
		}
		return dst, true
	case dns.TypeDS:
		if len(rd) < 4 {
			return dst, false
		}
		tag, ok1 := number(rd[0], math.MaxUint16)
		alg, ok2 := number(rd[1], math.MaxUint8)
		dt, ok3 := number(rd[2], math.MaxUint8)
		if !ok1 || !ok2 || !ok3 {
			return dst, false
		}
		return fp.appendHex(append(dst, byte(tag>>8), byte(tag), byte(alg), byte(dt)), rd[3:])
	case dns.TypeDNSKEY:
		if len(rd) < 4 {
			return dst, false
		}
		flags, ok1 := number(rd[0], math.MaxUint16)
		proto, ok2 := number(rd[1], math.MaxUint8)
		alg, ok3 := number(rd[2], math.MaxUint8)
		if !ok1 || !ok2 || !ok3 {
			return dst, false
		}
		return fp.appendBase64(append(dst, byte(flags>>8), byte(flags), byte(proto), byte(alg)), rd[3:])
	case dns.TypeRRSIG:
		if len(rd) < 9 {
			return dst, false
		}
		covered, ok := fp.typeToken(rd[0])
		if !ok {
			return dst, false
		}
		alg, ok1 := number(rd[1], math.MaxUint8)
		labels, ok2 := number(rd[2], math.MaxUint8)
		origTTL, ok3 := number(rd[3], math.MaxUint32)
		exp, ok4 := sigTime(rd[4])
		inc, ok5 := sigTime(rd[5])
		tag, ok6 := number(rd[6], math.MaxUint16)
		if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 {
			return dst, false
		}
		r.covered = covered
		dst = append(dst, byte(covered>>8), byte(covered), byte(alg), byte(labels),
			byte(origTTL>>24), byte(origTTL>>16), byte(origTTL>>8), byte(origTTL),
			byte(exp>>24), byte(exp>>16), byte(exp>>8), byte(exp),
			byte(inc>>24), byte(inc>>16), byte(inc>>8), byte(inc), byte(tag>>8), byte(tag))
		if dst, ok = fp.appendName(dst, rd[7]); !ok {
			return dst, false
		}
		return fp.appendBase64(dst, rd[8:])
	case dns.TypeNSEC:
		if len(rd) < 1 {
			return dst, false
		}
		if dst, ok = fp.appendName(dst, rd[0]); !ok {
			return dst, false
		}
		return fp.appendBitmap(dst, rd[1:])
	case dns.TypeNSEC3:
		if len(rd) < 5 {
			return dst, false
		}
		hash, ok1 := number(rd[0], math.MaxUint8)
		flags, ok2 := number(rd[1], math.MaxUint8)
		iter, ok3 := number(rd[2], math.MaxUint16)
		if !ok1 || !ok2 || !ok3 {
			return dst, false
		}
		dst = append(dst, byte(hash), byte(flags), byte(iter>>8), byte(iter))
		if dst, ok = appendSalt(dst, rd[3]); !ok {
			return dst, false
		}
		if dst, ok = appendHash32(dst, rd[4]); !ok {
			return dst, false
		}
		return fp.appendBitmap(dst, rd[5:])
	case dns.TypeNSEC3PARAM:
		if len(rd) != 4 {
			return dst, false
		}
		hash, ok1 := number(rd[0], math.MaxUint8)
		flags, ok2 := number(rd[1], math.MaxUint8)
		iter, ok3 := number(rd[2], math.MaxUint16)
		if !ok1 || !ok2 || !ok3 {
			return dst, false
		}
		return appendSalt(append(dst, byte(hash), byte(flags), byte(iter>>8), byte(iter)), rd[3])
	}
	return dst, false
}

func allDigits(t []byte) bool {
	for _, c := range t {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// appendIPv4 appends a dotted quad written as Go's parser requires it (no
// leading zeros).
func appendIPv4(dst, tok []byte) ([]byte, bool) {
	var parts int
	for len(tok) > 0 {
		k := bytes.IndexByte(tok, '.')
		if k < 0 {
			k = len(tok)
		}
		if k == 0 || k > 3 || k > 1 && tok[0] == '0' {
			return dst, false
		}
		v, ok := number(tok[:k], 255)
		if !ok || parts == 4 {
			return dst, false
		}
		dst = append(dst, byte(v))
		parts++
		if k == len(tok) {
			break
		}
		tok = tok[k+1:]
		if len(tok) == 0 {
			return dst, false
		}
	}
	return dst, parts == 4
}

// concat joins the tokens of a field that runs to the end of the line
// (miekg/dns's endingToString) in fp's scratch.
func (fp *fastParser) concat(toks [][]byte) []byte {
	fp.scratch = fp.scratch[:0]
	for _, t := range toks {
		fp.scratch = append(fp.scratch, t...)
	}
	return fp.scratch
}

// appendHex appends the hex digits of toks, decoded (a DS digest).
func (fp *fastParser) appendHex(dst []byte, toks [][]byte) ([]byte, bool) {
	s := fp.concat(toks)
	if len(s) == 0 || len(s)%2 != 0 {
		return dst, false
	}
	n := len(dst)
	dst = append(dst, make([]byte, len(s)/2)...)
	if _, err := hex.Decode(dst[n:], s); err != nil {
		return dst, false
	}
	return dst, true
}

// appendBase64 appends the base64 text of toks, decoded (a key or a
// signature), as miekg/dns's fromBase64 decodes it.
func (fp *fastParser) appendBase64(dst []byte, toks [][]byte) ([]byte, bool) {
	s := fp.concat(toks)
	if len(s) == 0 {
		return dst, false
	}
	n := len(dst)
	dst = append(dst, make([]byte, base64.StdEncoding.DecodedLen(len(s)))...)
	m, err := base64.StdEncoding.Decode(dst[n:], s)
	if err != nil {
		return dst, false
	}
	return dst[:n+m], true
}

// appendSalt appends an NSEC3 or NSEC3PARAM salt with its length: "-" is
// none, else an even number of hex digits (short enough that miekg/dns's
// length byte holds it).
func appendSalt(dst, tok []byte) ([]byte, bool) {
	if len(tok) == 1 && tok[0] == '-' {
		return append(dst, 0), true
	}
	if len(tok)%2 != 0 || len(tok) > 254 {
		return dst, false
	}
	n := len(dst)
	dst = append(dst, byte(len(tok)/2))
	dst = append(dst, make([]byte, len(tok)/2)...)
	if _, err := hex.Decode(dst[n+1:], tok); err != nil {
		return dst, false
	}
	return dst, true
}

// appendHash32 appends an NSEC3 next hashed owner, which miekg/dns packs
// with the hash length 20 whatever the text holds: only 32 base32hex
// digits (20 bytes) are taken here.
func appendHash32(dst, tok []byte) ([]byte, bool) {
	if len(tok) != 32 {
		return dst, false
	}
	dst = append(dst, 20)
	var acc uint64
	for i, c := range tok {
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'v':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'V':
			v = c - 'A' + 10
		default:
			return dst, false
		}
		acc = acc<<5 | uint64(v)
		if i%8 == 7 {
			dst = append(dst, byte(acc>>32), byte(acc>>24), byte(acc>>16), byte(acc>>8), byte(acc))
			acc = 0
		}
	}
	return dst, true
}

// appendBitmap appends the NSEC/NSEC3 type bitmap of the type tokens,
// which must be in increasing order (miekg/dns packs them as given, and
// the fast path takes only the form every signer writes).
func (fp *fastParser) appendBitmap(dst []byte, toks [][]byte) ([]byte, bool) {
	fp.types = fp.types[:0]
	for _, t := range toks {
		v, ok := fp.typeToken(t)
		if !ok || len(fp.types) > 0 && v <= fp.types[len(fp.types)-1] {
			return dst, false
		}
		fp.types = append(fp.types, v)
	}
	for i := 0; i < len(fp.types); {
		win := fp.types[i] >> 8
		j := i
		for j < len(fp.types) && fp.types[j]>>8 == win {
			j++
		}
		n := int(fp.types[j-1]&0xff)/8 + 1
		at := len(dst)
		dst = append(dst, byte(win), byte(n))
		dst = append(dst, make([]byte, n)...)
		for _, t := range fp.types[i:j] {
			lo := t & 0xff
			dst[at+2+int(lo/8)] |= 0x80 >> (lo % 8)
		}
		i = j
	}
	return dst, true
}

// sigTime reads an RRSIG expiration or inception as miekg/dns does: a
// YYYYMMDDHHmmSS time (as time.Parse takes it), taken modulo 2^32 the way
// dns.StringToTime does, or else a decimal number of seconds.
func sigTime(tok []byte) (uint32, bool) {
	if len(tok) == 14 && allDigits(tok) {
		d := func(i, n int) int {
			v := 0
			for _, c := range tok[i : i+n] {
				v = v*10 + int(c-'0')
			}
			return v
		}
		year, month, day := d(0, 4), d(4, 2), d(6, 2)
		hour, minute, sec := d(8, 2), d(10, 2), d(12, 2)
		if month >= 1 && month <= 12 && day >= 1 && day <= daysIn(month, year) && hour < 24 && minute < 60 && sec < 60 {
			u := daysFromCivil(year, month, day)*86400 + int64(hour*3600+minute*60+sec)
			const year68 = 1 << 31
			mod := u/year68 - 1
			if mod < 0 {
				mod = 0
			}
			return uint32(u - mod*year68), true
		}
	}
	v, ok := number(tok, math.MaxUint32)
	return uint32(v), ok
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil is the number of days from 1970-01-01 to the given date
// of the proleptic Gregorian calendar (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}
