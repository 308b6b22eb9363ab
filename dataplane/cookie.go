package dataplane

import (
	"encoding/binary"
	"sync/atomic"
	"time"

	"github.com/ringdns/ringdns/nic"
)

// DNS cookies (RFC 7873) with the interoperable server cookies of RFC 9018:
// a client puts an 8-byte client cookie in a COOKIE option of its OPT
// record; the server answers with that client cookie and a server cookie
// of its own, which the client sends back from then on. A valid server
// cookie proves that the query comes from an address that received an
// earlier reply, which a forged source cannot: RRL lets such queries pass
// (Result.Cookie).
//
// A server cookie of RFC 9018 is 16 bytes: version 1, three reserved bytes
// (zero when made, hashed as received), the time it was made in Unix
// seconds (32 bits, compared in serial arithmetic), and SipHash-2-4 under
// the server's 16-byte secret of the client cookie, those 8 bytes and the
// client's IP address. Every server of a fleet with the same secret makes
// and accepts the same cookies, whatever its implementation (BIND 9.16+,
// Knot DNS 3.0+, PowerDNS, NSD).

const (
	optCookie = 10

	clientCookieLen = 8
	// serverCookieLen is the length of an RFC 9018 server cookie; other
	// lengths (8 to 32 bytes are allowed, RFC 7873 section 4) are not
	// ours and never valid here.
	serverCookieLen = 16
	// cookieReplyLen is the length of the COOKIE option's data in every
	// reply that carries one: the client cookie and our server cookie.
	cookieReplyLen = clientCookieLen + serverCookieLen
	cookieVersion  = 1

	// A server cookie made more than an hour ago, or more than five
	// minutes in the future, is not valid; one valid but made more than
	// half an hour ago is answered with a new one (RFC 9018 section 4.3).
	cookieMaxAge   = 3600
	cookieMaxAhead = 300
	cookieRenewAge = 1800

	rcodeBadCookie = RcodeBadCookie
)

// RcodeBadCookie is the extended rcode BADCOOKIE (RFC 7873 section 8), the
// index of its count in Counters.Rcodes.
const RcodeBadCookie = 23

// cookieLenValid reports whether a COOKIE option of n bytes can be a
// cookie: a client cookie alone, or with a server cookie of 8 to 32 bytes
// (RFC 7873 section 4); any other length is malformed (section 5.2.2).
func cookieLenValid(n int) bool {
	return n == clientCookieLen || n >= clientCookieLen+8 && n <= clientCookieLen+32
}

// CookieVerdict says what a query's COOKIE option (RFC 7873) was.
type CookieVerdict uint8

const (
	CookieNone       CookieVerdict = iota // no COOKIE option, or cookies are off
	CookieClientOnly                      // a client cookie alone (RFC 7873 section 5.2.3)
	CookieValid                           // a server cookie made here (or by the fleet) and not expired (section 5.2.5)
	CookieInvalid                         // a server cookie that is not ours, expired or from the future (section 5.2.4)
	CookieMalformed                       // an option of a length no cookie has: FORMERR (section 5.2.2)
	NumCookieVerdicts
)

// CookieVerdictNames name the verdicts for metrics labels.
var CookieVerdictNames = [NumCookieVerdicts]string{"none", "client-only", "valid", "invalid", "malformed"}

// CookieSecrets are the settings of DNS cookies that the control plane may
// change while serving.
type CookieSecrets struct {
	// Current makes every server cookie sent and checks those received.
	Current [16]byte
	// Previous, when HasPrevious is set, also checks received server
	// cookies, so that the cookies clients hold stay valid while the
	// servers of a fleet move to a new secret one by one. A query whose
	// cookie Previous made is answered with a new one made with Current.
	Previous    [16]byte
	HasPrevious bool
	// Require answers a UDP query that has a COOKIE option but no valid
	// server cookie with BADCOOKIE and a new server cookie (RFC 7873
	// section 5.2.3, choice 2), as BIND's require-server-cookie does,
	// instead of its answer. Queries without a COOKIE option are
	// answered as always, and over TCP no query gets BADCOOKIE.
	Require bool
}

// cookieKeys are CookieSecrets as the hash takes them.
type cookieKeys struct {
	cur, prev [2]uint64
	hasPrev   bool
	require   bool
}

// Cookies is the state of DNS cookies that the workers share with the
// control plane: the secrets, which the control plane replaces (rotation,
// reload) with a pointer swap, and a coarse clock, which it advances about
// once a second (Tick), so that a worker reads the time a cookie needs
// with one load of a cache line that changes once a second, instead of
// asking the system's clock for every packet. The zero Cookies is off;
// NewCookies starts its clock.
type Cookies struct {
	keys atomic.Pointer[cookieKeys]
	now  atomic.Int64
}

// NewCookies returns Cookies that are off (no secrets) with the clock set
// to now.
func NewCookies() *Cookies {
	c := new(Cookies)
	c.Tick(time.Now())
	return c
}

// Set replaces the secrets: the next packet is answered with them. nil
// turns cookies off: COOKIE options are then ignored, as by a server that
// does not implement them.
func (c *Cookies) Set(s *CookieSecrets) {
	if s == nil {
		c.keys.Store(nil)
		return
	}
	k := &cookieKeys{cur: cookieKey(&s.Current), hasPrev: s.HasPrevious, require: s.Require}
	if s.HasPrevious {
		k.prev = cookieKey(&s.Previous)
	}
	c.keys.Store(k)
}

// Enabled reports whether cookies are on.
func (c *Cookies) Enabled() bool { return c.keys.Load() != nil }

// Tick sets the clock the cookies are made and checked with.
func (c *Cookies) Tick(t time.Time) { c.now.Store(t.Unix()) }

// Now returns the clock's time in Unix seconds.
func (c *Cookies) Now() int64 { return c.now.Load() }

// cookieKey reads a secret as SipHash's two key words.
func cookieKey(s *[16]byte) [2]uint64 {
	return [2]uint64{binary.LittleEndian.Uint64(s[0:8]), binary.LittleEndian.Uint64(s[8:16])}
}

// serverCookieHash is the hash part of an RFC 9018 server cookie: SipHash-2-4
// of head (the client cookie, the version, the reserved bytes and the
// timestamp: 16 bytes) and the client's address ip (4 or 16 bytes) under
// key, as the 8 bytes the cookie carries read little-endian. It is
// sipHash24 written out for the two lengths of its message, 20 and 32
// bytes, whose words it reads where they lie rather than copying them
// together first: TestRFC9018Vectors holds it to the examples of both
// lengths, and TestServerCookieHash to sipHash24.
func serverCookieHash(key *[2]uint64, head []byte, ip []byte) uint64 {
	k0, k1 := key[0], key[1]
	v0 := k0 ^ 0x736f6d6570736575
	v1 := k1 ^ 0x646f72616e646f6d
	v2 := k0 ^ 0x6c7967656e657261
	v3 := k1 ^ 0x7465646279746573
	w := binary.LittleEndian.Uint64(head[0:8])
	v3 ^= w
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0 ^= w
	w = binary.LittleEndian.Uint64(head[8:16])
	v3 ^= w
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0 ^= w
	var last uint64
	if len(ip) == 16 {
		w = binary.LittleEndian.Uint64(ip[0:8])
		v3 ^= w
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0 ^= w
		w = binary.LittleEndian.Uint64(ip[8:16])
		v3 ^= w
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
		v0 ^= w
		last = 32 << 56
	} else {
		last = 20<<56 | uint64(binary.LittleEndian.Uint32(ip[0:4]))
	}
	v3 ^= last
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0 ^= last
	v2 ^= 0xff
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	v0, v1, v2, v3 = sipRound(v0, v1, v2, v3)
	return v0 ^ v1 ^ v2 ^ v3
}

// check judges the COOKIE option of qy from the client at address ip (4 or
// 16 bytes), and leaves in qy.cookie[:cookieReplyLen] the option the reply
// carries, setting qy.cookieReply, unless the option is malformed or
// cookies are off. It returns the verdict and whether a valid server
// cookie is required. It allocates nothing: the option was copied into qy
// when the query was parsed.
func (c *Cookies) check(qy *query, ip []byte) (CookieVerdict, bool) {
	k := c.keys.Load()
	if k == nil || len(ip) == 0 {
		return CookieNone, false
	}
	if qy.cookieLen < 0 {
		return CookieMalformed, false
	}
	now := uint32(c.now.Load())
	v := CookieClientOnly
	qy.cookieReply = true
	if qy.cookieLen > clientCookieLen {
		v = CookieInvalid
		if qy.cookieLen == cookieReplyLen && qy.cookie[clientCookieLen] == cookieVersion {
			age := int32(now - binary.BigEndian.Uint32(qy.cookie[12:16]))
			if age <= cookieMaxAge && age >= -cookieMaxAhead {
				got := binary.LittleEndian.Uint64(qy.cookie[16:24])
				switch {
				case serverCookieHash(&k.cur, qy.cookie[:16], ip) == got:
					v = CookieValid
					if age <= cookieRenewAge {
						// Echoed as it came (RFC 7873 section
						// 5.2.5 (a)), reserved bytes and all.
						return v, k.require
					}
				case k.hasPrev && serverCookieHash(&k.prev, qy.cookie[:16], ip) == got:
					v = CookieValid
				}
			}
		}
	}
	// A new server cookie over the client cookie, which stays in
	// qy.cookie[:8].
	ck := qy.cookie[:cookieReplyLen]
	ck[8], ck[9], ck[10], ck[11] = cookieVersion, 0, 0, 0
	binary.BigEndian.PutUint32(ck[12:16], now)
	binary.LittleEndian.PutUint64(ck[16:24], serverCookieHash(&k.cur, ck[:16], ip))
	return v, k.require
}

// cookieRule applies the verdict of the query's cookie to the reply the
// accept rules chose (rcode and kind): a malformed COOKIE option is
// FORMERR, a query without a valid server cookie BADCOOKIE when one is
// required (over UDP), a query handed off to the control plane keeps no
// verdict; error replies stay as they are, with the cookie.
func cookieRule(qy *query, res *Result, require, tcp bool, rcode uint16, kind Kind) (uint16, Kind) {
	v := res.CookieVerdict
	switch {
	case kind == KindHandoff:
		// The message goes to the control plane as it came, and the
		// worker writes no reply to it.
		res.CookieVerdict = CookieNone
		qy.cookieReply = false
		return rcode, kind
	case kind != KindAnswer && kind != KindChaos:
		// Errors found before the cookie (BADVERS, NOTIMP, REFUSED)
		// are answered as they are.
	case v == CookieMalformed:
		rcode, kind = rcodeFormErr, KindFormErr
	case require && !tcp && v != CookieValid:
		rcode, kind = rcodeBadCookie, KindBadCookie
	}
	res.Cookie = v == CookieValid
	return rcode, kind
}

// peerIP returns the IP address of a packet's peer (see nic.Addr for the
// layout), 4 or 16 bytes, or nil when the port gave none. An IPv4 address
// mapped into IPv6 (::ffff:0:0/96, from a dual-stack socket) is the IPv4
// address it maps, as RFC 9018 hashes an IPv4 client's, so that a client
// gets the same cookie whichever socket or path answers it.
func peerIP(a *nic.Addr) []byte {
	switch family := binary.NativeEndian.Uint16(a.Raw[0:2]); {
	case family == addrFamily4 && a.Len >= 16:
		return a.Raw[4:8]
	case family == addrFamily6 && a.Len >= 28:
		ip := a.Raw[8:24]
		if binary.LittleEndian.Uint64(ip[0:8]) == 0 && binary.BigEndian.Uint32(ip[8:12]) == 0xffff {
			return ip[12:16]
		}
		return ip
	}
	return nil
}

// The address families of nic.Addr (Linux's AF_INET and AF_INET6, on every
// system).
const (
	addrFamily4 = 2
	addrFamily6 = 10
)

// replyCookie returns the data of the COOKIE option the reply carries, nil
// when it carries none.
func (qy *query) replyCookie() []byte {
	if !qy.cookieReply {
		return nil
	}
	return qy.cookie[:cookieReplyLen]
}

// CookieAccepted reports whether c accepts now a server cookie made a
// second ago with secret for a client at 192.0.2.1: for the control
// plane's tests of rotation, which cannot see the keys.
func CookieAccepted(c *Cookies, secret [16]byte) bool {
	ip := []byte{192, 0, 2, 1}
	var qy query
	qy.cookieLen = cookieReplyLen
	ck := qy.cookie[:cookieReplyLen]
	copy(ck, "clientck")
	ck[8] = cookieVersion
	binary.BigEndian.PutUint32(ck[12:16], uint32(c.Now()-1))
	key := cookieKey(&secret)
	binary.LittleEndian.PutUint64(ck[16:24], serverCookieHash(&key, ck[:16], ip))
	v, _ := c.check(&qy, ip)
	return v == CookieValid
}
