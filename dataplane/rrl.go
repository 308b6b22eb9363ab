package dataplane

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"math/bits"
	"net/netip"
	"time"

	"github.com/ringdns/ringdns/internal/onessum"
	"github.com/ringdns/ringdns/nic"
)

// RRLClass is the class of a reply as response rate limiting counts it,
// after BIND (lib/dns/rrl.c) and Knot DNS (modules/rrl): each class has
// buckets of its own, keyed by what makes its replies alike, so that an
// attacker cannot spend a name's budget by asking for another.
type RRLClass uint8

const (
	// RRLAnswer: data or CNAME/DNAME chains, CHAOS identity answers;
	// counted per query name and type.
	RRLAnswer RRLClass = iota
	// RRLReferral: counted per delegation (the owner of the NS set in
	// the authority section), not per name below it, which a reflector
	// would otherwise vary at will.
	RRLReferral
	// RRLNoData: counted per query name.
	RRLNoData
	// RRLNXDomain: counted per zone, since every name that does not exist
	// gets the same denial, and random names are free to make up.
	RRLNXDomain
	// RRLError: REFUSED, FORMERR, NOTIMP, BADVERS, SERVFAIL; counted per
	// client prefix alone, the name of a query to a zone not served here
	// meaning nothing.
	RRLError
	NumRRLClasses
)

// RRLClassNames label the classes in metrics.
var RRLClassNames = [NumRRLClasses]string{"answer", "referral", "nodata", "nxdomain", "error"}

// rrlClassOf maps an answer's kind to its class: every kind not named here
// is an error (a kind added later too), KindDrop and KindHandoff never
// reach the limiter.
var rrlClassOf = func() (c [NumKinds]RRLClass) {
	for k := range c {
		c[k] = RRLError
	}
	c[KindAnswer], c[KindChaos] = RRLAnswer, RRLAnswer
	c[KindReferral] = RRLReferral
	c[KindNoData] = RRLNoData
	c[KindNXDomain] = RRLNXDomain
	return c
}()

// RRLConfig is the configuration of response rate limiting as the data
// plane takes it. The control plane validates it (controlplane.RRLConfig).
type RRLConfig struct {
	// Rate is the responses per second allowed to one client prefix for
	// one bucket (class and name, see RRLClass), over all the workers
	// sharing the traffic; 0 turns limiting off.
	Rate int
	// Burst is how many responses over the rate a bucket allows at once,
	// after it has been idle: the bucket holds Burst responses.
	Burst int
	// Slip: every Slip-th limited response goes out as an empty reply
	// with TC=1 (the question alone), so that a real client behind a
	// spoofed prefix retries over TCP; 0 drops them all, 1 truncates
	// every one.
	Slip int
	// IPv4Prefix and IPv6Prefix are the lengths of the client prefixes
	// counted as one client.
	IPv4Prefix, IPv6Prefix int
	// Whitelist lists prefixes never limited.
	Whitelist []netip.Prefix
	// TableSize is the number of buckets in each worker's table, rounded
	// up to a power of two.
	TableSize int
	// Workers is the number of workers across which the traffic of one
	// client is spread (RSS over the AF_XDP queues, SO_REUSEPORT over the
	// sockets of an address): each worker limits to Rate/Workers; see RRL.
	Workers int
}

// rrlEntry is one bucket: the tag of its key and its theoretical arrival
// time (GCRA): the time at which the bucket is idle again, in nanoseconds
// of rrlClock. A tag of 0 marks an empty entry.
type rrlEntry struct {
	tag uint64
	tat int64
}

// RRL is the response rate limiter of one worker. Only that worker reads
// and writes its table, so the packet path takes no lock, allocates
// nothing, and writes no cache line that another core writes.
//
// A flood with spoofed sources is spread by RSS (and by SO_REUSEPORT on
// the socket path) over every queue, so each worker sees about 1/Workers
// of it: each worker's buckets allow Rate/Workers responses per second and
// a burst of Burst/Workers (at least one), so that the sum over the
// workers stays within Rate and Burst(+Workers, the rounding). The
// alternative, a table shared by the workers and written only when a
// worker takes a share of a bucket's tokens, would hold the limit however
// unevenly the traffic is spread, but every worker would read a line that
// the others write while a bucket is limited, which is exactly while the
// flood is on. The price of per-worker tables: a client whose queries all
// hash to one queue (one address and port; a resolver varies its port) is
// allowed only Rate/Workers, and a flood spread unevenly by the NIC's hash
// gets up to the share of its busiest queue times Workers.
// TestRRLWorkersSpread measures the spread of a spoofed /24 over the
// queues.
//
// The table has a fixed size whatever the number of sources: each key
// maps to two adjacent entries of one cache line, by a hash keyed with a
// secret drawn at start, so that an attacker cannot aim keys at one
// bucket. A new key takes the entry of the two that will be idle first
// (the smaller arrival time): an idle bucket is the same as a new one, so
// only when both are busy does a key lose its state to another.
type RRL struct {
	interval  int64 // nanoseconds between responses of one bucket, in this worker
	tolerance int64 // the burst in nanoseconds: Burst/Workers intervals
	slip      uint32
	mask4     uint32
	mask6     [2]uint64
	white4    []prefix4
	white6    []prefix6
	k         [4]uint64 // the hash's secret
	table     []rrlEntry
	// frozen stops the limiter's clock at 0, for tests that count a burst
	// however long they run. A flag rather than a function value, which
	// the house rules' call-graph check could not follow on the packet path.
	frozen bool
	// slips counts the limited responses of this worker, for Slip. It,
	// touched and pending are the fields written after NewRRL, by the
	// worker alone.
	slips uint32
	// touched is the sum of the tags touch loaded, which it stores only
	// so that the compiler keeps the loads.
	touched uint64
	// pending holds the replies of the batch being served that the
	// worker has keyed and not yet counted (Worker.settleRRL). It lives
	// here rather than on the worker's stack, which would clear its 2 KiB
	// for every batch, RRL on or off.
	pending rrlBatch
}

type prefix4 struct{ addr, mask uint32 }
type prefix6 struct{ addr, mask [2]uint64 }

// MaxRRLTableSize bounds RRLConfig.TableSize: 16 M entries of 16 bytes,
// 256 MiB per worker.
const MaxRRLTableSize = 1 << 24

// NewRRL makes the limiter of one worker. prev, when not nil, is the
// limiter it replaces (a reload): its table and secret are kept when the
// table size is unchanged, so that the buckets keep their state. The new
// limiter must be published to the worker (Worker.RRL) only after prev's
// last use by NewRRL, never to two workers.
func NewRRL(c RRLConfig, prev *RRL) (*RRL, error) {
	if c.Rate <= 0 || c.Workers <= 0 || c.Burst < 0 || c.Slip < 0 || c.TableSize <= 0 || c.TableSize > MaxRRLTableSize ||
		c.IPv4Prefix < 0 || c.IPv4Prefix > 32 || c.IPv6Prefix < 0 || c.IPv6Prefix > 128 {
		return nil, errors.New("dataplane: RRL configuration out of range")
	}
	// Each key has two entries, an even one and the next.
	size := max(1<<bits.Len(uint(c.TableSize-1)), 2)
	l := &RRL{
		interval: int64(time.Second) * int64(c.Workers) / int64(c.Rate),
		slip:     uint32(c.Slip),
		mask4:    ^uint32(0) << (32 - c.IPv4Prefix),
		mask6:    mask128(c.IPv6Prefix),
	}
	if c.IPv4Prefix == 0 {
		l.mask4 = 0
	}
	l.interval = max(l.interval, 1)
	burst := max((c.Burst+c.Workers-1)/c.Workers, 1)
	l.tolerance = int64(burst) * l.interval
	for _, p := range c.Whitelist {
		a := p.Addr().Unmap()
		n := p.Bits()
		if a.Is4() {
			if p.Addr().Is4In6() {
				n -= 96
			}
			m := uint32(0)
			if n > 0 {
				m = ^uint32(0) << (32 - n)
			}
			v := a.As4()
			l.white4 = append(l.white4, prefix4{binary.BigEndian.Uint32(v[:]) & m, m})
			continue
		}
		v := a.As16()
		m := mask128(n)
		l.white6 = append(l.white6, prefix6{[2]uint64{binary.BigEndian.Uint64(v[:8]) & m[0], binary.BigEndian.Uint64(v[8:]) & m[1]}, m})
	}
	if prev != nil && len(prev.table) == size {
		l.table, l.k = prev.table, prev.k
		return l, nil
	}
	l.table = make([]rrlEntry, size)
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		return nil, err
	}
	for i := range l.k {
		l.k[i] = binary.LittleEndian.Uint64(k[8*i:])
	}
	return l, nil
}

// mask128 is the mask of an IPv6 prefix of n bits, as two big-endian
// halves.
func mask128(n int) (m [2]uint64) {
	switch {
	case n <= 0:
	case n <= 64:
		m[0] = ^uint64(0) << (64 - n)
	default:
		m[0] = ^uint64(0)
		m[1] = ^uint64(0) << (128 - n)
	}
	return m
}

// TableLen is the number of buckets in the limiter's table.
func (l *RRL) TableLen() int { return len(l.table) }

// rrlEpoch starts rrlClock, so that its times fit an int64 of nanoseconds
// and never go backwards (Go's monotonic clock).
var rrlEpoch = time.Now()

// rrlClock is the limiter's time: nanoseconds since rrlEpoch. The worker
// reads it once per batch.
func rrlClock() int64 { return int64(time.Since(rrlEpoch)) }

// clock is the time the worker reads once per batch: rrlClock, or 0 when
// a test froze it.
func (l *RRL) clock() int64 {
	if l.frozen {
		return 0
	}
	return rrlClock()
}

// Verdicts of RRL.check.
const (
	rrlPass = iota
	rrlSlip
	rrlDrop
)

// mix is the round of the keyed hash: the 128-bit product of two words
// folded to 64 bits, as wyhash does. Each operand has a secret word added
// in (by xor), so that neither can be made zero, nor the product
// steered, without knowing the secret; a difference in any bit of either
// spreads over the whole result.
func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// key returns the bucket key of a reply to peer: its class, the client's
// prefix, and what the class is counted by, read from the query qy the
// reply answers, as the engine parsed it (Snapshot.answerWith), and from
// the reply, n bytes at the start of buf: the query name and type for
// answers, the delegation for referrals, the query name for NODATA, the
// zone for NXDOMAIN, nothing more for errors. ok is false when peer is no
// IPv4 or IPv6 address; such a reply is not limited.
//
// The prefix and the name are hashed apart, each keyed, and joined by a
// last round with the class, the type or zone and the family: three
// rounds, the first two independent, for a name of up to 16 bytes (every
// TLD but a few). What differs by family and class is chosen by
// conditional moves rather than branches, which the processor could not
// learn: the replies of a batch come from both families and in every
// class in no order. A reply without a name to count by (NXDOMAIN, an
// error) hashes the root's in its place.
func (l *RRL) key(qy *query, buf []byte, n int, r *Result, class RRLClass, peer *nic.Addr) (uint64, bool) {
	// The family and the address's length in one word, compared once
	// for each family.
	fl := uint64(binary.NativeEndian.Uint16(peer.Raw[0:2])) | uint64(peer.Len)<<16
	v6 := fl == 28<<16|10
	if !v6 && fl != 16<<16|2 {
		return 0, false
	}
	t := uint64(class)
	a := uint64(binary.BigEndian.Uint32(peer.Raw[4:8]) & l.mask4)
	b := uint64(0)
	a6 := binary.BigEndian.Uint64(peer.Raw[8:16]) & l.mask6[0]
	b6 := binary.BigEndian.Uint64(peer.Raw[16:24]) & l.mask6[1]
	if v6 {
		a, b, t = a6, b6, t|1<<8
	}
	hp := mix(a^l.k[0], b^l.k[1])
	// The name is the query's, lowered as the engine parsed it, which
	// the reply's question copies after the header. A reply to a query
	// without a question (a FORMERR) is an error, which counts by no
	// name.
	nm := &qy.name
	e := nm.n
	if qy.qsize == 0 || e == 0 {
		return mix(hp^t, l.k[3]^l.k[1]), true
	}
	s := 0
	if class == RRLAnswer {
		t |= uint64(qy.qtype) << 16
	}
	// The NS set's owner of a referral is a compression pointer into
	// the question's name, the first record after the question (a
	// referral has no answers); the delegation is the suffix it points
	// to. The first record of other replies starts with such a pointer
	// too, which is read and not used.
	if at := hdrLen + qy.qsize; at+2 <= n {
		ptr := be16(buf[at : at+2])
		p := int(ptr&0x3FFF) - hdrLen
		if ptr >= 0xC000+hdrLen && p < e && class == RRLReferral {
			s = p
		}
	}
	if class == RRLNXDomain {
		t |= uint64(uint32(r.Zone)) << 32
	}
	if class >= RRLNXDomain {
		s = e - 1
	}
	// The name's bytes nm.b[s:e]: 16 bytes per round of mix, the last 1
	// to 16 read in two whole words and masked to the name, without a
	// branch on its length (a wire name ends where its labels say, so
	// that no name is another padded with zeros). That reads up to 15
	// bytes past the name, which nm.b has but for a name at its very
	// end, which hashName hashes from a copy, as it does a name of more
	// than one round.
	var hn uint64
	if e-s <= 16 && s+16 <= len(nm.b) {
		m := &nameMasks[(e-s)&15] // 1 to 16 bytes, 16 at index 0
		w := nm.b[s : s+16]
		hn = mix(binary.LittleEndian.Uint64(w[0:8])&m[0]^l.k[2], binary.LittleEndian.Uint64(w[8:16])&m[1]^l.k[3])
	} else {
		hn = l.hashName(nm, s, e)
	}
	if class >= RRLNXDomain {
		hn = l.k[3]
	}
	return mix(hp^t, hn^l.k[1]), true
}

// hashName is key's hash of the name's bytes nm.b[s:e] when they are
// more than 16 or end less than 16 bytes before the end of nm.b, rare
// among a root or TLD server's replies: the same rounds as key's for a
// short name (see there), on the chunks of 16 bytes before the last 1 to
// 16, over a copy of the name with room after it. It is a function of its
// own so that key, which calls it only then, keeps neither the copy nor
// what the call would save across it on its own stack.
func (l *RRL) hashName(nm *name, s, e int) uint64 {
	var c [255 + 16]byte
	e = copy(c[:255], nm.b[s:e])
	h, i := l.k[3], 0
	for ; e-i > 16; i += 16 {
		h = mix(binary.LittleEndian.Uint64(c[i:])^l.k[2], binary.LittleEndian.Uint64(c[i+8:])^h)
	}
	m := &nameMasks[(e-i)&15] // 1 to 16 bytes left, 16 at index 0
	w := c[i : i+16]
	return mix(binary.LittleEndian.Uint64(w[0:8])&m[0]^l.k[2], binary.LittleEndian.Uint64(w[8:16])&m[1]^h)
}

// nameMasks[n&15] masks two little-endian words to their first n bytes,
// for n from 1 to 16: key's masks for the last bytes of a name, read from
// a table rather than made by shifts of a length that Go must check for
// 64 and over.
var nameMasks = func() (t [16][2]uint64) {
	for n := 1; n <= 16; n++ {
		for j := range 2 {
			switch k := n - 8*j; {
			case k >= 8:
				t[n&15][j] = ^uint64(0)
			case k > 0:
				t[n&15][j] = 1<<(8*k) - 1
			}
		}
	}
	return t
}()

// line is the index of the first of key's two entries, which share a
// cache line: the table is 64-byte aligned (a Go allocation that large
// is page-aligned) and an even entry starts a half line.
func (l *RRL) line(key uint64) int { return int(key>>1) & (len(l.table) - 2) }

// pass is check's common case, small enough to be inlined: the key's
// bucket is the first of its two entries, and the response passes, which
// it counts. When it reports false nothing is changed, and check (by
// verdict) decides.
func (l *RRL) pass(key uint64, now int64) bool {
	e := &l.table[l.line(key)]
	tat := max(e.tat, now)
	if e.tag != key|1 || tat+l.interval-now > l.tolerance {
		return false
	}
	e.tat = tat + l.interval
	return true
}

// check counts one response to the bucket of key at time now and says
// whether it passes, slips or is dropped. A limited response does not
// count against the bucket.
func (l *RRL) check(key uint64, now int64) int {
	tag := key | 1
	i := l.line(key)
	e := &l.table[i]
	if e.tag != tag {
		if f := &l.table[i+1]; f.tag == tag {
			e = f
		} else {
			// A new key: it takes the entry of the two idle first, and
			// starts idle.
			if f.tat < e.tat {
				e = f
			}
			e.tag, e.tat = tag, now
		}
	}
	tat := max(e.tat, now)
	if tat+l.interval-now <= l.tolerance {
		e.tat = tat + l.interval
		return rrlPass
	}
	if l.slip == 0 {
		return rrlDrop
	}
	l.slips++
	if l.slips >= l.slip {
		l.slips = 0
		return rrlSlip
	}
	return rrlDrop
}

// verdict is check followed, for a response the bucket would limit, by
// the whitelist: rrlPass, rrlSlip or rrlDrop for the response with key to
// peer at time now.
func (l *RRL) verdict(key uint64, now int64, peer *nic.Addr) int {
	v := l.check(key, now)
	if v != rrlPass && l.whitelisted(peer) {
		return rrlPass
	}
	return v
}

// rrlBatchLen is the most replies ServeBatch keys before it counts them
// in their buckets (settleRRL): a batch of the default size at once. It
// is a power of two, so that ServeBatch indexes the pending replies with
// a mask instead of a bounds check.
const rrlBatchLen = 64

// rrlPending is a reply keyed and not yet counted in its bucket, sent as
// if it passed: what settleRRL needs to take it back when it does not.
type rrlPending struct {
	key   uint64
	r     Result // the reply's, as counted (tally.count)
	i     int32  // the packet's index in the batch
	class RRLClass
	fam   int8 // the RSSAC002 family, -1 when not counted
}

// rrlBatch holds the replies of a batch keyed and not yet counted.
type rrlBatch struct {
	n int
	e [rrlBatchLen]rrlPending
}

// touch loads the cache line of each bucket of b's keys, one after the
// other with nothing in between that waits for them, so that the
// processor has them all in flight at once (Go has no prefetch
// instruction to call); the checks that follow find them in the cache.
// With the buckets of a batch's 64 clients spread over a table of a
// megabyte, most lines are misses: one at a time, each check waited for
// its own.
func (l *RRL) touch() {
	b := &l.pending
	var x uint64
	for k := range b.e[:b.n] {
		x += l.table[l.line(b.e[k].key)].tag
	}
	// The sum is stored so that the compiler keeps the loads.
	l.touched = x
}

// whitelisted reports whether peer is in a prefix never limited. It is
// asked only of a response the buckets would limit, so its scan costs
// nothing while no client is over its rate.
func (l *RRL) whitelisted(peer *nic.Addr) bool {
	switch peer.Len {
	case 16:
		a := binary.BigEndian.Uint32(peer.Raw[4:8])
		for _, p := range l.white4 {
			if a&p.mask == p.addr {
				return true
			}
		}
	case 28:
		hi, lo := binary.BigEndian.Uint64(peer.Raw[8:16]), binary.BigEndian.Uint64(peer.Raw[16:24])
		for _, p := range l.white6 {
			if hi&p.mask[0] == p.addr[0] && lo&p.mask[1] == p.addr[1] {
				return true
			}
		}
	}
	return false
}

// slipReply cuts the reply in msg to its header, question and OPT record
// with TC set and AA clear, in place, and returns its length: the empty
// reply that tells a real client to ask again over TCP. The rcode stays,
// the other sections go. The OPT record stays (RFC 6891 section 7: a
// reply to a query with OPT has one), with its extended rcode bits and
// its COOKIE option, the first the engine writes, when it has one (RFC
// 7873 section 5.2: a reply to a query with a COOKIE option carries the
// client cookie and a server cookie, with which a real client's next
// query passes the limit); its other options (NSID, EXPIRE) go, so that
// the slipped reply stays no larger than the query but for the server
// cookie. The OPT is the last record of a reply the worker sends (no
// TSIG: signed messages are handed off), found by walking the records
// before it, which costs only a slipped reply.
func slipReply(msg []byte) int {
	n := hdrLen
	if be16(msg[4:]) == 1 {
		for n < len(msg) && msg[n] != 0 {
			n += int(msg[n]) + 1
		}
		n += 5
		if n > len(msg) {
			n = hdrLen
		}
	}
	if n == hdrLen {
		put16(msg[4:], 0)
	}
	ar := 0
	if opt := lastOPT(msg, n); opt >= 0 {
		keep := 11
		rdlen := int(be16(msg[opt+9:]))
		if rdlen >= 4 && be16(msg[opt+11:]) == optCookie && 4+int(be16(msg[opt+13:])) <= rdlen {
			keep += 4 + int(be16(msg[opt+13:]))
		}
		copy(msg[n:], msg[opt:opt+keep])
		put16(msg[n+9:], uint16(keep-11))
		n += keep
		ar = 1
	}
	msg[2] = msg[2]&^0x04 | 0x02
	put16(msg[6:], 0)
	put16(msg[8:], 0)
	put16(msg[10:], uint16(ar))
	return n
}

// lastOPT returns the offset in msg of its last record when that is an
// OPT record, or -1: it walks the records from offset p, the end of the
// question, as the header counts them.
func lastOPT(msg []byte, p int) int {
	total := int(be16(msg[6:])) + int(be16(msg[8:])) + int(be16(msg[10:]))
	if total == 0 || be16(msg[10:]) == 0 {
		return -1
	}
	for i := 0; ; i++ {
		s := p
		if p = skipName(msg, p); p < 0 || p+10 > len(msg) {
			return -1
		}
		end := p + 10 + int(be16(msg[p+8:]))
		if end > len(msg) {
			return -1
		}
		if i == total-1 {
			if p != s+1 || be16(msg[p:]) != typeOPT || end != len(msg) {
				return -1
			}
			return s
		}
		p = end
	}
}

// slipSum is the ones'-complement sum of a slipped reply for a port that
// uses it (nic.SumUser); a slipped reply is rare enough to be summed anew.
func slipSum(msg []byte) uint32 { return onessum.Sum(msg, 0) }
