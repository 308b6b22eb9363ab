package dataplane

import (
	"runtime"
	"time"

	"github.com/ringdns/ringdns/internal/onessum"
	"github.com/ringdns/ringdns/nic"
	"github.com/ringdns/ringdns/zone"
)

const (
	rcodeNoError  = 0
	rcodeFormErr  = 1
	rcodeServFail = 2
	rcodeNXDomain = 3
	rcodeNotImp   = 4
	rcodeRefused  = 5
	rcodeYXDomain = 6
	rcodeNotAuth  = 9
	rcodeBadVers  = 16

	// maxChain bounds the CNAME and DNAME records followed for one query:
	// five, as Knot DNS follows. A sixth is neither written nor followed,
	// and the reply ends there without a negative answer.
	maxChain = 5
)

// Answer writes the reply to the DNS query q into dst and returns its length,
// 0 when the query gets no reply. dst may start at the same address as q (the
// reply is built in place); it must not otherwise overlap q. tcp selects the
// size limit: 65535 bytes over TCP (and len(dst)), the client's EDNS size
// bounded by Config.UDPSize (at least 512) or 512 without EDNS over UDP.
// Answer allocates nothing and never reads outside q or writes outside dst.
func (s *Snapshot) Answer(dst, q []byte, tcp bool) (int, Result) {
	n, _, res := s.answer(dst, q, nil, tcp, false)
	runtime.KeepAlive(s) // see ServeBatch
	return n, res
}

// AnswerFrom is Answer for a query from the client at peer, whose address
// DNS cookies (RFC 7873) are made and checked with when Config.Cookies is
// set; Answer ignores COOKIE options, as a server without cookies does.
func (s *Snapshot) AnswerFrom(dst, q []byte, peer *nic.Addr, tcp bool) (int, Result) {
	n, _, res := s.answer(dst, q, peer, tcp, false)
	runtime.KeepAlive(s) // see ServeBatch
	return n, res
}

// answer is Answer that, when withSum is set, also returns the
// ones'-complement sum of the reply (onessum.Sum(dst[:n], 0), up to the equivalence
// of 0 and 0xffff), which it builds from the prepared blocks' own sums
// rather than by reading the reply again: the AF_XDP port finishes the
// reply's UDP checksum from it (nic.Packet.Sum). The other ports and TCP
// have no use for it and skip its final assembly; the sum returned is then
// 0. The accept rules (accept.go) decide which queries are looked up. peer,
// when not nil, is the client's address, for DNS cookies (cookie.go).
func (s *Snapshot) answer(dst, q []byte, peer *nic.Addr, tcp, withSum bool) (int, uint32, Result) {
	var qy query
	return s.answerWith(&qy, dst, q, peer, tcp, withSum)
}

// answerWith is answer parsing the query into qy, whatever qy held before
// (see query): the worker's, which it keeps for all its queries.
func (s *Snapshot) answerWith(qy *query, dst, q []byte, peer *nic.Addr, tcp, withSum bool) (int, uint32, Result) {
	res := Result{Zone: -1}
	if res.Drop = acceptMessage(q); res.Drop != DropNone {
		return 0, 0, res
	}
	if len(dst) < hdrLen {
		res.Drop = DropNoSpace
		return 0, 0, res
	}
	// acceptMessage made sure of the header, but the compiler does not
	// see it through the reason returned: this one check tells it, which
	// spares a dozen on the header's fields below.
	_ = q[hdrLen-1]
	op := opcode(q)
	// The question, the one QDCOUNT must announce, and the records after
	// it (accept.go, rule 2). The parse is written out here, as the
	// NXDOMAIN answer is in lookup.step: as functions of their own the two
	// cost 2-4% of an NXDOMAIN answer's time.
	qy.reset()
	qd, an, ns, ar := be16(q[4:]), int(be16(q[6:])), int(be16(q[8:])), int(be16(q[10:]))
	if qd == 1 {
		if l := parseQName(q, &qy.name); l > 0 && hdrLen+l+4 <= len(q) {
			qy.qsize = l + 4
			qy.qtype = be16(q[hdrLen+l:])
			qy.qclass = be16(q[hdrLen+l+2:])
		}
	}
	// A query that does not parse gets an error reply; when the question
	// and the OPT can be read, it carries them like any other (RFC 6891
	// section 7: OPT in every reply to a query with OPT).
	switch {
	case qy.qsize == 0:
		// Without a question the other sections may still be sound:
		// the error reply then carries our OPT when the query had one.
		if qd == 0 && !parseRecords(q, hdrLen, an, ns, ar, qy) {
			qy.edns = false
		}
		return s.headerOnly(dst, q, qy, op, &res, withSum)
	case !parseRecords(q, hdrLen+qy.qsize, an, ns, ar, qy):
		// An OPT in a message that does not parse is not trusted.
		qy.edns = false
		return s.headerOnly(dst, q, qy, op, &res, withSum)
	}
	id0, id1, fl2, fl3 := q[0], q[1], q[2], q[3]
	res.EDNS, res.DO = qy.edns, qy.do
	// A COOKIE option is judged before the reply's size is known: the
	// reply carries one (client and server cookie) whatever it answers.
	require := false
	if qy.cookieLen != 0 && s.cfg.Cookies != nil && peer != nil {
		res.CookieVerdict, require = s.cfg.Cookies.check(qy, peerIP(peer))
	}
	limit, optLen := s.limits(qy, tcp, len(dst))
	if hdrLen+qy.qsize+optLen > limit {
		res.Drop = DropNoSpace
		return 0, 0, res
	}
	copy(dst[hdrLen:hdrLen+qy.qsize], q[hdrLen:hdrLen+qy.qsize])
	r := reply{buf: dst[:limit-optLen], n: hdrLen + qy.qsize, do: qy.do}
	rcode, kind := acceptQuery(qy, op, tcp)
	if res.CookieVerdict != CookieNone {
		rcode, kind = cookieRule(qy, &res, require, tcp, rcode, kind)
	}
	switch kind {
	case KindAnswer:
		s.resolve(qy, &r, &res)
	case KindChaos:
		s.chaos(qy, &r, &res)
	default:
		r.rcode, res.Kind = rcode, kind
	}
	if r.bad {
		r.rcode, res.Kind = rcodeServFail, KindServFail
	}
	if r.full || r.bad {
		r.dropRecords(hdrLen + qy.qsize)
	}
	n := r.n
	exp := int64(-1)
	if qy.edns {
		if qy.expire && r.aa && s.expire != nil {
			exp = s.expireLeft(res.Zone)
		}
		n = s.writeOPT(dst, n, r.rcode, qy, exp)
		r.ar++
	}
	dst[0], dst[1] = id0, id1
	b2 := 0x80 | fl2&0x79 // QR, opcode and RD kept
	if r.aa {
		b2 |= 0x04
	}
	if r.tc {
		b2 |= 0x02
	}
	dst[2] = b2
	dst[3] = fl3&0x10 | byte(r.rcode&0xF) // CD kept (RFC 4035 section 3.1.6)
	put16(dst[4:], 1)
	put16(dst[6:], r.an)
	put16(dst[8:], r.ns)
	put16(dst[10:], r.ar)
	res.Rcode, res.TC = r.rcode, r.tc
	if !withSum {
		return n, 0, res
	}
	// The header and the OPT record are summed from the values just
	// written rather than read back, which would stall loads on the
	// byte stores not yet retired; the question is summed as copied,
	// and the records between come with r.acc.
	sum := uint64(id0)<<8 | uint64(id1)
	sum += uint64(b2)<<8 | uint64(dst[3])
	sum += 1 + uint64(r.an) + uint64(r.ns) + uint64(r.ar)
	if q := dst[hdrLen:]; qy.qsize/8*8+8 <= len(q) {
		sum += uint64(onessum.SumMasked(q, qy.qsize))
	} else {
		sum += uint64(onessum.Sum(q[:qy.qsize], 0))
	}
	if qy.edns {
		r.acc[r.n&1] += s.optSum(r.rcode, qy, exp)
	}
	sum += r.acc[0] + uint64(onessum.Swap(r.acc[1]))
	return n, onessum.Reduce(sum), res
}

// limits returns the most the reply to qy may hold, n at most (the size of
// its buffer), and the room kept in it for our OPT record: over TCP 65535
// bytes, over UDP the client's EDNS size bounded by Config.UDPSize (and at
// least 512), or 512 without EDNS.
func (s *Snapshot) limits(qy *query, tcp bool, n int) (limit, optLen int) {
	limit = 512
	switch {
	case tcp:
		limit = 65535
	case qy.edns:
		limit = min(max(int(qy.udp), 512), s.cfg.UDPSize)
	}
	if qy.edns {
		optLen = 11
		if qy.nsid && len(s.cfg.NSID) > 0 {
			optLen += 4 + len(s.cfg.NSID)
		}
		if qy.expire {
			optLen += 8
		}
		if qy.cookieReply {
			optLen += 4 + cookieReplyLen
		}
	}
	return min(limit, n), optLen
}

// headerOnly answers a query that does not parse, whose header holds
// opcode op, with the rcode malformedRcode gives: the header and, when they
// were parsed, the question and an OPT record; see answer for withSum.
func (s *Snapshot) headerOnly(dst, q []byte, qy *query, op uint8, res *Result, withSum bool) (int, uint32, Result) {
	rcode, kind := malformedRcode(op)
	id0, id1, fl2, fl3 := q[0], q[1], q[2], q[3]
	n := hdrLen
	qd := uint16(0)
	if qy.qsize > 0 && hdrLen+qy.qsize <= len(dst) && hdrLen+qy.qsize <= 512 {
		copy(dst[hdrLen:hdrLen+qy.qsize], q[hdrLen:hdrLen+qy.qsize])
		n += qy.qsize
		qd = 1
	}
	arc := uint16(0)
	// The query's cookie was not judged, its parse having failed first:
	// the OPT record carries none.
	if qy.edns && n+15+len(s.cfg.NSID) <= len(dst) {
		n = s.writeOPT(dst, n, rcode, qy, -1)
		arc = 1
	}
	dst[0], dst[1] = id0, id1
	dst[2] = 0x80 | fl2&0x79
	dst[3] = fl3&0x10 | byte(rcode)
	put16(dst[4:], qd)
	put16(dst[6:], 0)
	put16(dst[8:], 0)
	put16(dst[10:], arc)
	res.Kind, res.Rcode = kind, rcode
	res.EDNS, res.DO = qy.edns, qy.do
	if !withSum {
		return n, 0, *res
	}
	return n, onessum.Sum(dst[:n], 0), *res
}

// optSum returns the ones'-complement sum (unfolded) of the OPT record
// writeOPT writes with the same arguments, as if it started at an even
// offset: bytes 0, 0, 41, size, size, extended rcode, 0, DO, 0, rdlen,
// rdlen, then the COOKIE, EXPIRE and NSID options.
func (s *Snapshot) optSum(rcode uint16, qy *query, exp int64) uint64 {
	size := uint64(uint16(s.cfg.UDPSize))
	sum := uint64(typeOPT)<<8 + size>>8 + (size&0xff)<<8 + uint64(rcode>>4&0xff)
	if qy.do {
		sum += 0x80
	}
	rdlen := uint64(0)
	// The options start at the odd offset 11: their words are swapped.
	// COOKIE is 28 bytes and EXPIRE 8, so what follows them stays at an
	// odd offset.
	if qy.cookieReply {
		ck := qy.cookie[:cookieReplyLen]
		rdlen += 4 + uint64(len(ck))
		sum += uint64(onessum.Swap(optCookie + uint64(len(ck)) + uint64(onessum.Sum(ck, 0))))
	}
	if exp >= 0 {
		rdlen += 8
		sum += uint64(onessum.Swap(optExpire + 4 + uint64(exp)>>16 + uint64(exp)&0xffff))
	}
	if qy.nsid && len(s.cfg.NSID) > 0 {
		rdlen += 4 + uint64(len(s.cfg.NSID))
		sum += uint64(onessum.Swap(optNSID + uint64(len(s.cfg.NSID)) + uint64(onessum.Sum(s.cfg.NSID, 0))))
	}
	sum += rdlen>>8 + (rdlen&0xff)<<8
	return sum
}

// expireLeft is the EXPIRE option's value for an answer from zone zi:
// the seconds left before a secondary zone expires, a primary zone's SOA
// expire field.
func (s *Snapshot) expireLeft(zi int32) int64 {
	e := &s.expire[zi]
	if e.At == nil {
		return int64(e.SOA)
	}
	return min(max(e.At.Load()-time.Now().Unix(), 0), 0xffffffff)
}

// writeOPT appends our OPT record (RFC 6891) for the reply to qy at n and
// returns the new length: with the DO bit as the query's, a COOKIE option
// (RFC 7873) when the query's cookie was judged (query.cookieReply), NSID
// when asked for and configured, and EXPIRE (RFC 7314) with the value exp
// when it is not negative. It takes the query rather than these as
// arguments of their own, which with the reply's buffer were more than
// the registers Go passes arguments in.
func (s *Snapshot) writeOPT(dst []byte, n int, rcode uint16, qy *query, exp int64) int {
	dst[n] = 0
	put16(dst[n+1:], typeOPT)
	put16(dst[n+3:], uint16(s.cfg.UDPSize))
	dst[n+5] = byte(rcode >> 4)
	dst[n+6] = 0 // version
	dst[n+7] = 0
	if qy.do {
		dst[n+7] = 0x80
	}
	dst[n+8] = 0
	rdlen := 0
	if qy.cookieReply {
		ck := qy.cookie[:cookieReplyLen]
		put16(dst[n+11:], optCookie)
		put16(dst[n+13:], uint16(len(ck)))
		copy(dst[n+15:], ck)
		rdlen = 4 + len(ck)
	}
	if exp >= 0 {
		o := n + 11 + rdlen
		put16(dst[o:], optExpire)
		put16(dst[o+2:], 4)
		put32(dst[o+4:], uint32(exp))
		rdlen += 8
	}
	if qy.nsid && len(s.cfg.NSID) > 0 {
		o := n + 11 + rdlen
		rdlen += 4 + len(s.cfg.NSID)
		put16(dst[o:], optNSID)
		put16(dst[o+2:], uint16(len(s.cfg.NSID)))
		copy(dst[o+4:], s.cfg.NSID)
	}
	put16(dst[n+9:], uint16(rdlen))
	return n + 11 + rdlen
}

// resolve selects the zone by longest suffix and answers from it.
func (s *Snapshot) resolve(qy *query, r *reply, res *Result) {
	nm := &qy.name
	nm.hashAll()
	// The zone is the one whose apex is the longest suffix of the name.
	// This loop is not a function of its own: the call cost about 20
	// instructions per answer, 1% of an NXDOMAIN.
	set := s.zones
	zi := -1
	if set != nil {
		for k := nm.labels; k >= 0; k-- {
			if !set.HasDepth(nm.labels - k) {
				continue
			}
			// DS at a zone's apex belongs to its parent (RFC 4035 section
			// 3.1.4.1): answer it from the parent when we serve that too.
			if k == 0 && qy.qtype == typeDS && zi >= 0 && nm.labels > 0 {
				break
			}
			if i := set.Find(nm.suffix(k), nm.hs[k]); i >= 0 {
				zi = i
			}
		}
	}
	if zi < 0 {
		r.rcode, res.Kind = rcodeRefused, KindRefused
		return
	}
	res.Zone = int32(zi)
	if s.expired != nil && s.expired[zi] {
		r.rcode, res.Kind = rcodeServFail, KindServFail
		return
	}
	l := lookup{z: set.Zone(zi), qt: qy.qtype, r: r, res: res}
	// The query name sits uncompressed after the header. Its positions
	// are the query's (query.ctx), written here for each query rather
	// than cleared: only those of its labels are read, but for the first
	// (a wildcard's owner, a DNAME's synthesis), which a query for the
	// root, without labels, leaves 0, as cleared.
	ctx := &qy.ctx
	ctx.labels = nm.labels
	ctx.pos[0] = 0
	for i := 0; i < nm.labels; i++ {
		ctx.pos[i] = uint16(hdrLen + int(nm.off[i]))
	}
	if follow, tgt, at, node := l.step(nm, ctx, nil); follow {
		l.chase(tgt, at, node, nm, ctx)
	}
	r.flushProofs(l.z)
}

// lookup is the answer to one query from one zone while it is written:
// what each of its steps reads (the zone, the type asked for) and writes
// (the reply, the result), and how far the chain of CNAME and DNAME
// records has gone. resolve keeps it on its stack and the steps are its
// methods; the name a step answers changes along the chain and is passed
// to it.
type lookup struct {
	z   *zone.Zone
	qt  uint16
	r   *reply
	res *Result

	// follows counts the CNAME and DNAME records followed so far.
	follows int
	// dnames are the DNAME records written, with where their targets
	// are in the message: a DNAME met again in a chain is not written
	// twice, its synthesis points to the first copy.
	dnNode  [maxChain]uint32
	dnTgtAt [maxChain]uint16
	ndnames int
	// pending is a DNAME synthesis found at the first step, which has no
	// buffer for the synthesized name: chase performs it in its own frame.
	pending synthesis
}

// synthesis is a CNAME to synthesize from a DNAME (RFC 6672 section 2.2):
// the labels of the query name below the DNAME's owner followed by its
// target.
type synthesis struct {
	node   uint32 // the DNAME's node
	tgtOff uint32 // offset of the DNAME target in the zone's names arena
	tgtLen int
	tgtAt  int // where the target was written in the message
	keep   int // labels of the query name below the DNAME owner
	prefix int // their bytes
	ttl    uint32
}

// chase follows a CNAME (or a name synthesized from a DNAME) inside the
// zone, step by step, stopping at names outside the zone, at loops and
// after maxChain steps. The first step returned what to follow: the target
// tgt, written at at in the message, which node led to; tgt is nil when it
// left a DNAME synthesis pending, which needs the query name nm0 and its
// place in the message, ctx0.
func (l *lookup) chase(tgt []byte, at int, node uint32, nm0 *name, ctx0 *msgName) {
	var cur struct {
		nm   name
		ctx  msgName
		syn  [255]byte
		seen [maxChain + 1]uint32
	}
	if tgt == nil {
		var follow bool
		if follow, tgt, at, node = l.synthesize(&l.pending, nm0, ctx0, cur.syn[:]); !follow {
			return
		}
	}
	z := l.z
	cur.seen[0] = node
	nseen := 1
	apex := z.Apex()
	for range maxChain {
		if !inZone(tgt, apex) {
			return
		}
		// A target already answered in this chain is a loop: stop before
		// writing it again.
		for _, v := range cur.seen[:nseen] {
			if string(z.NodeName(&z.Nodes()[v])) == string(tgt) {
				return
			}
		}
		if !loadName(&cur.nm, tgt) || !l.r.locate(at, &cur.ctx) || cur.ctx.labels != cur.nm.labels {
			return
		}
		follow, next, nat, nnode := l.step(&cur.nm, &cur.ctx, cur.syn[:])
		if !follow {
			return
		}
		// A DNAME met again still synthesizes a new name (the chain
		// limit ends such a loop); a CNAME node met again is a loop.
		if z.Nodes()[nnode].Flags&zone.FlagDNAME == 0 {
			for _, v := range cur.seen[:nseen] {
				if v == nnode {
					return
				}
			}
		}
		cur.seen[nseen] = nnode
		nseen++
		tgt, at = next, nat
	}
}

// inZone reports whether the lowercase wire name n is at or below apex.
func inZone(n, apex []byte) bool {
	if len(n) < len(apex) {
		return false
	}
	d := len(n) - len(apex)
	for i := 0; i < len(apex); i++ {
		if n[d+i] != apex[i] {
			return false
		}
	}
	for i := 0; i < len(n); i += int(n[i]) + 1 {
		if i == d {
			return true
		}
	}
	return false
}

// loadName fills nm from a lowercase wire name.
func loadName(nm *name, w []byte) bool {
	nm.labels = 0
	n := 0
	for {
		if n >= len(w) || n >= len(nm.b) {
			return false
		}
		l := int(w[n])
		if l == 0 {
			nm.b[n] = 0
			nm.off[nm.labels] = uint8(n)
			nm.n = n + 1
			break
		}
		if n+l+1 > len(w) || n+l+1 >= len(nm.b) || nm.labels >= zone.MaxLabels-1 {
			return false
		}
		nm.off[nm.labels] = uint8(n)
		nm.labels++
		copy(nm.b[n:n+l+1], w[n:n+l+1])
		n += l + 1
	}
	nm.hashAll()
	return true
}

// step answers the name nm (at ctx in the message). When a CNAME or DNAME
// must be followed it returns follow=true with the next name, its position
// in the message and the node that led there; the name is nil when the
// synthesis from a DNAME is left pending (see lookup.pending). syn is the
// buffer for a synthesized name, nil at the first step. The steps it takes
// return the same. They return four results rather than one struct: a
// struct result was copied through the stack, and the copy's wide load
// over the narrower stores just made could not be forwarded from them,
// which cost about 15 ns per answer.
func (l *lookup) step(nm *name, ctx *msgName, syn []byte) (follow bool, tgt []byte, at int, node uint32) {
	z := l.z
	nodes := z.Nodes()
	al := z.ApexLabels()
	node = z.ApexNode()
	if nodes[node].Flags&zone.FlagDNAME != 0 && nm.labels > al {
		return l.dname(nm, ctx, node, syn)
	}
	k := nm.labels - al - 1
	for ; k >= 0; k-- {
		n := z.Find(nm.suffix(k), nm.hs[k])
		if n == zone.None || nodes[n].Flags&zone.FlagNSEC3Owner != 0 {
			break
		}
		node = n
		f := nodes[n].Flags
		if f&zone.FlagDelegation != 0 && (k > 0 || l.qt != typeDS) {
			l.referral(nm, ctx, n, k)
			return false, nil, 0, 0
		}
		if f&zone.FlagDNAME != 0 && k > 0 {
			return l.dname(nm, ctx, n, syn)
		}
	}
	if k < 0 {
		return l.exact(nm, ctx, node, false)
	}
	// node is the closest encloser; the name below it does not exist.
	// Most queries to a root or TLD server end here, which is why this
	// is not a function of its own (see the parse in answer).
	r := l.r
	if nodes[node].Flags&zone.FlagWildcard != 0 {
		if w := z.FindChild(starLabel[:], node, nm.hs[k+1]); w != zone.None {
			if r.proving(z) {
				r.wildCE = node
				r.denyCloser(z, nm, k, node, w, l.qt == typeNSEC)
			}
			return l.exact(nm, ctx, w, true)
		}
	}
	r.aa = true
	r.rcode, l.res.Kind = rcodeNXDomain, KindNXDomain
	r.negative(z, ctx)
	if r.proving(z) {
		r.denyName(z, nm, k, node)
	}
	return false, nil, 0, 0
}

var starLabel = [2]byte{1, '*'}

// exact answers from node, which matches the name nm (or, with wild set,
// is the wildcard that does).
func (l *lookup) exact(nm *name, ctx *msgName, node uint32, wild bool) (bool, []byte, int, uint32) {
	z, r, res := l.z, l.r, l.res
	nd := &z.Nodes()[node]
	sets := z.Sets()
	qt := l.qt
	r.aa = true
	if nd.Flags&zone.FlagCNAME != 0 && qt != typeCNAME && qt != typeANY && qt != typeRRSIG && qt != typeNSEC {
		return l.cname(ctx, node, wild)
	}
	si := zone.None
	switch qt {
	case typeANY:
		// RFC 8482: one RRset is enough.
		if nd.NSets > 0 {
			si = nd.Set0
		}
	case typeRRSIG:
		// RRSIGs are kept with the RRsets they cover; like ANY, one
		// group is enough: the signatures of the first signed RRset
		// (RFC 8482 section 7 leaves RRSIG queries to the same policy).
		for i := nd.Set0; i < nd.Set0+uint32(nd.NSets); i++ {
			if sets[i].Sig != zone.None {
				res.Kind = KindAnswer
				r.block(z, sets[i].Sig, ctx, wild, &r.an)
				return false, nil, 0, 0
			}
		}
	default:
		si = z.SetOf(nd, qt)
	}
	if si == zone.None {
		res.Kind = KindNoData
		r.negative(z, ctx)
		if r.proving(z) {
			r.denyType(z, nm, node, wild)
		}
		return false, nil, 0, 0
	}
	rs := &sets[si]
	at := r.n
	res.Kind = KindAnswer
	if !r.rrset(z, rs, ctx, wild, &r.an) {
		return false, nil, 0, 0
	}
	// The step that writes a block with additional records is always the
	// last, so they can follow at once, after the authority section.
	r.flushProofs(z)
	r.additional(z, rs.Block, at, ctx, wild)
	return false, nil, 0, 0
}

// cname writes the CNAME at node, which matches the name at ctx (or, with
// wild set, is the wildcard that does), and returns its target to follow.
func (l *lookup) cname(ctx *msgName, node uint32, wild bool) (bool, []byte, int, uint32) {
	z, r := l.z, l.r
	if l.follows >= maxChain {
		l.res.Kind = KindAnswer
		return false, nil, 0, 0
	}
	l.follows++
	rs := &z.Sets()[z.SetOf(&z.Nodes()[node], typeCNAME)]
	at := r.n
	// Kind is set before writing: an RRset that does not fit still gets
	// a (truncated) reply, which must not be counted as a drop.
	l.res.Kind = KindAnswer
	if !r.rrset(z, rs, ctx, wild, &r.an) {
		return false, nil, 0, 0
	}
	// The owner of the CNAME record is one compression pointer, so its
	// target starts 12 bytes into the block.
	return true, wireName(z.Names()[rs.Target:]), at + 12, node
}

// referral writes the delegation at node, nm's suffix at label k: NS (and
// with DO, DS and its RRSIGs) in the authority section, glue as additional
// records.
func (l *lookup) referral(nm *name, ctx *msgName, node uint32, k int) {
	z, r := l.z, l.r
	nd := &z.Nodes()[node]
	sets := z.Sets()
	l.res.Kind = KindReferral
	nsi := z.SetOf(nd, typeNS)
	ns := &sets[nsi]
	at := r.n
	if !r.block(z, ns.Block, ctx, false, &r.ns) {
		return
	}
	// DS goes with DO from a signed zone only: unsigned, it proves
	// nothing (Knot DNS adds no DNSSEC records from unsigned zones).
	if r.do && z.NegSOASig() != zone.None {
		if dsi := z.SetOf(nd, typeDS); dsi != zone.None {
			if !r.rrset(z, &sets[dsi], ctx, false, &r.ns) {
				return
			}
		} else if r.proving(z) {
			// An insecure delegation: prove that no DS exists (RFC
			// 4035 section 3.1.4, RFC 5155 section 7.2.7).
			r.denyDS(z, nm, k, node)
		}
	}
	r.flushProofs(z)
	r.additional(z, ns.Block, at, ctx, false)
}

// dname writes the DNAME at node and the CNAME synthesized from it (RFC
// 6672), and returns the synthesized target to follow.
func (l *lookup) dname(nm *name, ctx *msgName, node uint32, syn []byte) (bool, []byte, int, uint32) {
	z, r := l.z, l.r
	nd := &z.Nodes()[node]
	rs := &z.Sets()[z.SetOf(nd, typeDNAME)]
	r.aa = true
	l.res.Kind = KindAnswer
	if l.follows >= maxChain {
		return false, nil, 0, 0
	}
	l.follows++
	// The target written in the DNAME record (uncompressed) starts 12 bytes
	// into its block; the synthesized CNAME points to it after copying the
	// labels of the query name that lie below the DNAME owner.
	tgtAt := -1
	for i, n := range l.dnNode[:l.ndnames] {
		if n == node {
			tgtAt = int(l.dnTgtAt[i])
		}
	}
	if tgtAt < 0 {
		at := r.n
		if !r.rrset(z, rs, ctx, false, &r.an) {
			return false, nil, 0, 0
		}
		tgtAt = at + 12
		l.dnNode[l.ndnames], l.dnTgtAt[l.ndnames] = node, uint16(tgtAt)
		l.ndnames++
	}
	keep := nm.labels - int(nd.Labels)
	d := synthesis{
		node:   node,
		tgtOff: rs.Target,
		tgtLen: len(wireName(z.Names()[rs.Target:])),
		tgtAt:  tgtAt,
		keep:   keep,
		prefix: int(nm.off[keep]),
		ttl:    rs.TTL,
	}
	if d.prefix+d.tgtLen > 255 {
		r.rcode = rcodeYXDomain
		return false, nil, 0, 0
	}
	if syn == nil {
		// The first step has no buffer for the synthesized name: chase
		// synthesizes in its own frame.
		l.pending = d
		return true, nil, 0, node
	}
	return l.synthesize(&d, nm, ctx, syn)
}

// synthesize writes the CNAME record synthesized from a DNAME for the name
// nm (at ctx in the message) and returns its target (lowercase, in syn) to
// follow, unless the query is for CNAME: the synthesized CNAME is then the
// answer to the question and the reply ends with it (RFC 1034 section
// 4.3.2 step 3a, RFC 6672 section 3.2), as Knot DNS and NSD answer, rather
// than with its target's data or denial.
func (l *lookup) synthesize(d *synthesis, nm *name, ctx *msgName, syn []byte) (bool, []byte, int, uint32) {
	r := l.r
	rdlen := d.prefix + 2
	if r.n+12+rdlen > len(r.buf) || d.tgtAt > 0x3FFF {
		r.full = true
		return false, nil, 0, 0
	}
	p := r.n
	b := r.buf
	put16(b[p:], 0xC000|ctx.pos[0])
	put16(b[p+2:], typeCNAME)
	put16(b[p+4:], classIN)
	put32(b[p+6:], d.ttl)
	put16(b[p+10:], uint16(rdlen))
	w := p + 12
	for i := 0; i < d.keep; i++ {
		lp := int(ctx.pos[i])
		size := int(b[lp]) + 1
		copy(b[w:w+size], b[lp:lp+size])
		w += size
	}
	put16(b[w:], 0xC000|uint16(d.tgtAt))
	r.addBytes(p, w+2)
	r.n = w + 2
	r.an++
	if l.qt == typeCNAME {
		return false, nil, 0, 0
	}
	n := copy(syn, nm.b[:d.prefix])
	n += copy(syn[n:], l.z.Names()[d.tgtOff:d.tgtOff+uint32(d.tgtLen)])
	return true, syn[:n], p + 12, d.node
}
