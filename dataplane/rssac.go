package dataplane

import (
	"encoding/binary"
	"math"
	"math/bits"
	"sync/atomic"

	"github.com/ringdns/ringdns/nic"
)

// This file keeps the statistics RSSAC002 (version 3, "RSSAC Advisory on
// Measurements of the Root Server System") asks of a root or TLD server
// for each 24-hour UTC period: queries received and responses sent per
// transport and address family (traffic-volume), request and response
// sizes in 16-byte bins (traffic-sizes), responses by rcode
// (rcode-volume) and the sources seen (unique-sources). Each worker keeps
// its own RSSAC; the control plane sums the counts and merges the source
// sketches when it reads them (controlplane/rssac.go), so nothing on the
// packet path is shared.

// RSSACSizeBins is the number of 16-byte size bins, enough for the
// largest DNS message (65,535 bytes): bin i counts the messages of
// 16*i to 16*i+15 bytes, which RSSAC002 writes "16i-16i+15".
const RSSACSizeBins = 65536 / 16

// RSSACRcodes is the number of rcodes counted one by one. The answer
// engine sends none above BADCOOKIE (23); a larger rcode is counted in
// the last entry, which no rcode the engine sends shares.
const RSSACRcodes = 32

// The address families of RSSAC's counts.
const (
	RSSACIPv4 = 0
	RSSACIPv6 = 1
)

// RSSAC holds one worker's RSSAC002 statistics. The counts are cumulative
// since the worker started: the control plane takes a day's counts as the
// difference of two readings, at the day's start and end, so the worker
// never resets them. The sources are counted in two sets of HyperLogLog
// sketches, one per day in turn: the worker writes into the set Day
// names, loaded once per batch, and the control plane switches Day at
// 00:00 UTC, reads the set of the day that ended once the batches in hand
// have finished with it, and clears it for the day after next (see
// controlplane/rssac.go). A worker thus never waits for the control plane.
//
// As in Counters, exactly one goroutine writes an RSSAC (the worker, or
// the TCP service under its lock), so an update is a load and a store;
// the worker counts a batch in the RSSAC's private tally and adds it to
// the shared counts once per batch, but for the size bins, which a full
// batch may leave in the tally for a few more (see rssacBinBatches).
type RSSAC struct {
	_ [64]byte
	// Queries counts the DNS queries received (messages at least a
	// header long with QR=0) by the family of their source; Responses
	// the responses sent to them.
	Queries, Responses [2]atomic.Uint64
	// Rcodes counts the responses sent by their (extended) rcode.
	Rcodes [RSSACRcodes]atomic.Uint64
	// RequestSizes and ResponseSizes count the queries received and the
	// responses sent by their DNS message's length in 16-byte bins
	// (without the TCP length prefix).
	RequestSizes, ResponseSizes [RSSACSizeBins]atomic.Uint64
	// Day is the set of Sketches the worker writes into (0 or 1).
	Day      atomic.Uint32
	Sketches [2]Sources

	key RSSACKey
	// t is the tally of the batch in hand, the writer's alone.
	t rssacTally
	_ [64]byte
}

// RSSACKey keys the hash of the source addresses, so that nobody who does
// not know it can choose addresses that land in chosen sketch registers
// with chosen ranks (and so inflate or hide a day's count of sources with
// few packets). Every RSSAC whose sketches are merged must have the same
// key; the control plane draws one at random at start.
type RSSACKey [4]uint64

// NewRSSAC returns an RSSAC whose sources are hashed under key. The
// multipliers of the hash are made odd, so that no bit of the input is
// lost in a product.
func NewRSSAC(key RSSACKey) *RSSAC {
	key[1] |= 1
	key[2] |= 1
	key[3] |= 1
	return &RSSAC{key: key}
}

// rssacTally is a batch's counts: the bins it touched, listed so that the
// flush stores only those and clears them.
type rssacTally struct {
	queries, responses [2]uint64
	req, resp          binTally
	held               int // full batches whose bins wait
}

// binTally counts sizes in bins, remembering which it touched.
type binTally struct {
	n       [RSSACSizeBins]uint32
	touched [256]uint16
	k       int
}

// add counts a message of size bytes; it adds the bins touched to the
// shared counts itself when their list is full.
func (b *binTally) add(size int, into *[RSSACSizeBins]atomic.Uint64) {
	i := uint(size) / 16
	if i >= RSSACSizeBins {
		i = RSSACSizeBins - 1
	}
	if b.n[i] == 0 {
		if b.k == len(b.touched) {
			b.flush(into)
		}
		b.touched[b.k] = uint16(i)
		b.k++
	}
	b.n[i]++
}

func (b *binTally) flush(into *[RSSACSizeBins]atomic.Uint64) {
	for _, i := range b.touched[:b.k] {
		add(&into[i], uint64(b.n[i]))
		b.n[i] = 0
	}
	b.k = 0
}

// received counts a query received in the batch in hand, its size and its
// source into src, and returns its family (RSSACIPv4 or RSSACIPv6), or -1
// for what is not a query: shorter than a header, a response (QR=1), or
// from no address of either family.
func (r *RSSAC) received(msg []byte, peer *nic.Addr, src *Sources) int {
	if len(msg) < hdrLen || msg[2]&0x80 != 0 {
		return -1
	}
	fam := src.add(&r.key, peer)
	if fam < 0 {
		return -1
	}
	r.t.queries[fam]++
	r.t.req.add(len(msg), &r.RequestSizes)
	return fam
}

// sent counts a response of size bytes to a query received counted in
// family fam; its rcode comes with the batch's tally (flush).
func (r *RSSAC) sent(fam int, size int) {
	r.t.responses[fam]++
	r.t.resp.add(size, &r.ResponseSizes)
}

// rssacBinBatches is how many full batches a worker counts before it adds
// their size bins to the shared counts. Each bin touched costs an atomic
// store, a full barrier, and the responses of a root server's mix fall in
// dozens of bins: added every batch, they cost several nanoseconds a
// packet. A batch that is not full, which means the worker is keeping up
// and about to wait for packets, adds them at once, so that below full
// load the shared counts are exact after each batch; at full load they
// lag by at most this many batches (1,024 packets by default), which at
// 00:00 UTC count in the day after.
const rssacBinBatches = 16

// flush adds the batch's counts to the shared ones, with the rcodes of
// the responses sent, which the worker's tally t counted already. full
// says the batch filled the worker's receive slice: its size bins may
// wait (see rssacBinBatches).
func (r *RSSAC) flush(t *tally, full bool) {
	for f := range r.t.queries {
		if n := r.t.queries[f]; n != 0 {
			add(&r.Queries[f], n)
			r.t.queries[f] = 0
		}
		if n := r.t.responses[f]; n != 0 {
			add(&r.Responses[f], n)
			r.t.responses[f] = 0
		}
	}
	if t.replies != 0 {
		for rc, n := range t.rcodes {
			if n != 0 {
				add(&r.Rcodes[min(rc, RSSACRcodes-1)], n)
			}
		}
	}
	if r.t.held++; full && r.t.held < rssacBinBatches {
		return
	}
	r.t.held = 0
	r.t.req.flush(&r.RequestSizes)
	r.t.resp.flush(&r.ResponseSizes)
}

// Count records one query received from peer over TCP, for the TCP
// service, which calls it under its lock: queryLen is the query's length
// and response whether it had QR set (the reply has overwritten it),
// replyLen the length of the response sent (0 for none) and res the
// engine's result.
func (r *RSSAC) Count(queryLen int, response bool, peer *nic.Addr, replyLen int, res Result) {
	if queryLen < hdrLen || response || peer == nil {
		return
	}
	fam := r.Sketches[r.Day.Load()&1].add(&r.key, peer)
	if fam < 0 {
		return
	}
	r.t.queries[fam]++
	r.t.req.add(queryLen, &r.RequestSizes)
	var t tally
	if replyLen > 0 && res.Kind != KindDrop {
		r.sent(fam, replyLen)
		t.count(res, replyLen)
	}
	r.flush(&t, false)
}

// The sketches: HyperLogLog (Flajolet et al. 2007) with 2^14 registers,
// whose relative standard error is 1.04/sqrt(2^14) = 0.81%, so that an
// estimate is within 2% of the true count with a probability of about
// 98.6% (2.5 standard errors), and the estimator of Ertl (2017), which
// is unbiased from one source to billions without the tables of
// HyperLogLog++. A register holds the largest rank seen (at most 51 with
// a 64-bit hash), one byte each, four to an atomic word: 16 KiB a sketch.
const (
	sketchP = 14
	sketchM = 1 << sketchP
	// sketchQ is the largest rank less one: 64-p bits are left of the hash.
	sketchQ = 64 - sketchP
)

// Sketch estimates how many distinct values were added to it. One
// goroutine adds; any may read.
type Sketch struct {
	w [sketchM / 4]atomic.Uint32
}

// add records a value by its 64-bit hash h: its first p bits choose the
// register, the rank is one more than the zeros that follow. A register
// is written only when the rank is larger, which after the first
// thousands of sources is rare, so a packet costs a load.
func (s *Sketch) add(h uint64) {
	idx := h >> (64 - sketchP)
	rank := uint32(bits.LeadingZeros64(h<<sketchP|1<<(sketchP-1))) + 1
	w, sh := &s.w[idx>>2], (idx&3)*8
	old := w.Load()
	if rank > (old>>sh)&0xff {
		w.Store(old&^(0xff<<sh) | rank<<sh)
	}
}

// Reset empties the sketch.
func (s *Sketch) Reset() {
	for i := range s.w {
		if s.w[i].Load() != 0 {
			s.w[i].Store(0)
		}
	}
}

// Registers is a copy of a sketch's registers, or of several merged.
type Registers [sketchM]uint8

// MergeInto merges the sketch into regs: each register the larger of the
// two, which is the sketch of the union of the values.
func (s *Sketch) MergeInto(regs *Registers) {
	for i := range s.w {
		v := s.w[i].Load()
		for j := range 4 {
			if r := uint8(v >> (8 * j)); r > regs[4*i+j] {
				regs[4*i+j] = r
			}
		}
	}
}

// Estimate returns the number of distinct values the registers saw, by
// Ertl's improved estimator ("New cardinality estimation algorithms for
// HyperLogLog sketches", 2017, algorithm 6).
func (regs *Registers) Estimate() float64 {
	var c [sketchQ + 2]int
	for _, r := range regs {
		c[r]++
	}
	m := float64(sketchM)
	z := m * ertlTau(1-float64(c[sketchQ+1])/m)
	for k := sketchQ; k >= 1; k-- {
		z = 0.5 * (z + float64(c[k]))
	}
	z += m * ertlSigma(float64(c[0])/m)
	return m * m / (2 * math.Ln2 * z)
}

func ertlSigma(x float64) float64 {
	if x == 1 {
		return math.Inf(1)
	}
	y, z := 1.0, x
	for {
		x *= x
		prev := z
		z += x * y
		y += y
		if z == prev {
			return z
		}
	}
}

func ertlTau(x float64) float64 {
	if x == 0 || x == 1 {
		return 0
	}
	y, z := 1.0, 1-x
	for {
		x = math.Sqrt(x)
		prev := z
		y *= 0.5
		z -= (1 - x) * (1 - x) * y
		if z == prev {
			return z / 3
		}
	}
}

// Sources are the sketches of one day's sources: IPv4 addresses, IPv6
// addresses, and IPv6 addresses aggregated per /64, as RSSAC002's
// unique-sources counts them. An IPv4-mapped IPv6 address (a query to a
// dual-stack socket) is an IPv4 source, as on the wire.
type Sources struct {
	IPv4, IPv6, IPv6Agg Sketch
}

// Reset empties the three sketches.
func (s *Sources) Reset() {
	s.IPv4.Reset()
	s.IPv6.Reset()
	s.IPv6Agg.Reset()
}

// add records the address of a, hashed under k, and returns its family,
// or -1 when a holds neither an IPv4 nor an IPv6 address.
func (s *Sources) add(k *RSSACKey, a *nic.Addr) int {
	switch binary.NativeEndian.Uint16(a.Raw[0:2]) {
	case addrFamily4:
		if a.Len < 16 {
			return -1
		}
		s.IPv4.add(k.hash4(binary.BigEndian.Uint32(a.Raw[4:8])))
		return RSSACIPv4
	case addrFamily6:
		if a.Len < 28 {
			return -1
		}
		hi, lo := binary.BigEndian.Uint64(a.Raw[8:16]), binary.BigEndian.Uint64(a.Raw[16:24])
		if hi == 0 && lo>>32 == 0xffff {
			s.IPv4.add(k.hash4(uint32(lo)))
			return RSSACIPv4
		}
		s.IPv6.add(k.hash16(hi, lo))
		s.IPv6Agg.add(k.hash8(hi))
		return RSSACIPv6
	}
	return -1
}

// The hashes are two rounds of mix (rrl.go), the folded 128-bit product
// of wyhash, under the key: a few nanoseconds where SipHash would cost
// several times more per packet. Such rounds are not a pseudo-random
// function, but the sketches are read once a day as three numbers, which
// gives nobody the outputs needed to learn the key.
func (k *RSSACKey) hash4(a uint32) uint64 {
	return mix(mix(uint64(a)^k[0], k[1]), k[2]^4)
}

func (k *RSSACKey) hash16(hi, lo uint64) uint64 {
	return mix(mix(hi^k[0], lo^k[1]), k[2]^16)
}

func (k *RSSACKey) hash8(hi uint64) uint64 {
	return mix(mix(hi^k[0], k[3]), k[2]^8)
}
