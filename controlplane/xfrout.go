package controlplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/dataplane"
	"github.com/ringdns/ringdns/zone"
)

// XfrOut serves zone transfers out (AXFR, RFC 5936; IXFR, RFC 1995) and
// every TSIG-signed query over TCP. The TCP server hands it the queries
// for which Handles is true; each is served on its connection's goroutine,
// so a transfer streams a zone without touching the UDP path, and at most
// TransfersMax transfers run at once.
type XfrOut struct {
	snap  *atomic.Pointer[dataplane.Snapshot]
	zones map[string]*ZoneConfig // by canonical origin
	// members, when set, returns the configuration a zone not configured
	// inherits (a catalog zone's member): its allow-transfer is the
	// catalog's. Set before the TCP servers serve.
	members func(origin string) *ZoneConfig
	keys    *Keyring
	journal *Journals // nil: IXFR is answered by AXFR
	sem     chan struct{}
	pace    *xfrPacer // nil: no bound on the transfers' bytes per second
	log     *slog.Logger

	// notifyIn, when set, answers a NOTIFY (its TSIG verified and removed;
	// key the key that signed it, "" for none), as the UDP hand-off does
	// (Handoff.answerNotify): RFC 1996 allows NOTIFY over TCP too. Set
	// before the TCP servers serve.
	notifyIn func(body []byte, from netip.Addr, key string) []byte

	stats xfrStats
}

// xfrStats counts transfers out and TSIG outcomes for the metrics.
type xfrStats struct {
	// done counts transfers by kind and result (see xfrKinds and
	// xfrResults).
	done  [len(xfrKinds)][len(xfrResults)]atomic.Uint64
	bytes [len(xfrKinds)]atomic.Uint64
	// tsigFail counts signed messages that failed verification, by TSIG
	// error: see tsigFailNames.
	tsigFail [len(tsigFailNames)]atomic.Uint64
	signed   atomic.Uint64 // signed queries that verified
}

// Kinds of transfer out: an AXFR asked for; an IXFR answered from the
// journal; an IXFR answered with the current SOA alone (the client is up
// to date); an IXFR answered with the whole zone (RFC 1995 section 4); an
// IXFR over UDP, answered with the current SOA alone (see UDPIXFR).
const (
	kindAXFR = iota
	kindIXFR
	kindIXFRUpToDate
	kindIXFRAsAXFR
	kindIXFRUDP
)

var xfrKinds = [...]string{"axfr", "ixfr", "ixfr-up-to-date", "ixfr-as-axfr", "ixfr-udp"}

// Results of a transfer out.
const (
	resultOK       = iota
	resultRefused  // the ACL denies it
	resultNotAuth  // not a zone served here, or TSIG failed
	resultBusy     // TransfersMax reached: SERVFAIL
	resultFormErr  // an IXFR without an SOA to start from
	resultAborted  // the connection failed mid-way
	resultInternal // a zone that cannot be walked: SERVFAIL
)

var xfrResults = [...]string{"ok", "refused", "notauth", "busy", "formerr", "aborted", "servfail"}

var tsigFailNames = [...]string{"BADKEY", "BADSIG", "BADTIME", "BADTRUNC", "FORMERR"}

// NewXfrOut serves transfers of the zones of the normalised configuration
// cfg from the snapshots published in snap, verifying and signing with
// keys, and answering IXFR from journal.
func NewXfrOut(cfg *Config, keys *Keyring, snap *atomic.Pointer[dataplane.Snapshot], journal *Journals, log *slog.Logger) *XfrOut {
	x := &XfrOut{snap: snap, zones: map[string]*ZoneConfig{}, keys: keys,
		journal: journal, sem: make(chan struct{}, max(cfg.Server.TransfersMax, 1)), log: log}
	if r := cfg.Server.TransfersOutRate; r > 0 {
		x.pace = &xfrPacer{rate: float64(r)}
	}
	for i := range cfg.Zones {
		z := &cfg.Zones[i]
		x.zones[CanonicalOrigin(z.Origin)] = z
	}
	return x
}

// Keyring is the keyring the transfers verify and sign with.
func (x *XfrOut) Keyring() *Keyring { return x.keys }

// Handles reports whether the TCP query q goes to Serve rather than to the
// answer engine: a query whose type is AXFR or IXFR, or any message that
// carries a TSIG record, or a NOTIFY when notifyIn is set. It reads the header and walks the records' framing
// without parsing them, and allocates nothing.
func (x *XfrOut) Handles(q []byte) bool {
	if len(q) < 12 || q[2]&0x80 != 0 {
		return false
	}
	if q[2]>>3&0xF == dns.OpcodeNotify && x.notifyIn != nil {
		return true
	}
	qd := binary.BigEndian.Uint16(q[4:])
	off := 12
	for i := 0; i < int(qd); i++ {
		off = skipWireName(q, off)
		if off < 0 || off+4 > len(q) {
			return false
		}
		if i == 0 && q[2]>>3&0xF == 0 {
			if t := binary.BigEndian.Uint16(q[off:]); t == dns.TypeAXFR || t == dns.TypeIXFR {
				return true
			}
		}
		off += 4
	}
	n := int(binary.BigEndian.Uint16(q[6:])) + int(binary.BigEndian.Uint16(q[8:])) + int(binary.BigEndian.Uint16(q[10:]))
	for i := 0; i < n; i++ {
		off = skipWireName(q, off)
		if off < 0 || off+10 > len(q) {
			return false
		}
		if binary.BigEndian.Uint16(q[off:]) == dns.TypeTSIG {
			return true
		}
		off += 10 + int(binary.BigEndian.Uint16(q[off+8:]))
	}
	return false
}

// skipWireName returns the offset after the name at m[off:], -1 when it
// runs off the end.
func skipWireName(m []byte, off int) int {
	for off < len(m) {
		l := int(m[off])
		switch {
		case l == 0:
			return off + 1
		case l&0xC0 == 0xC0:
			if off+2 > len(m) {
				return -1
			}
			return off + 2
		case l&0xC0 != 0:
			return -1
		}
		off += 1 + l
	}
	return -1
}

// xfrSend writes one message of a reply to the client, with its length
// prefix; it returns an error when the connection failed.
type xfrSend func(msg []byte) error

// Serve answers the query q from addr, which Handles accepted, with one
// message or, for a transfer, a stream of them, through send. answer is
// the answer engine for a signed query that is not a transfer. It returns
// false when the connection cannot go on.
func (x *XfrOut) Serve(q []byte, addr netip.Addr, answer AnswerFunc, send xfrSend) bool {
	r := x.keys.Verify(q)
	if r.Signed {
		if r.Rcode == dns.RcodeSuccess {
			x.stats.signed.Add(1)
		} else {
			x.countTSIGFailure(&r)
		}
	}
	if r.Rcode != dns.RcodeSuccess {
		x.log.Info("TSIG verification failed", "client", addr, "reason", r.Reason())
		rep, err := x.keys.TSIGErrorReply(q, &r)
		if err != nil {
			return false
		}
		return send(rep) == nil
	}
	signer := x.keys.Signer(&r)
	body := r.Body
	if body[2]>>3&0xF == dns.OpcodeNotify && x.notifyIn != nil {
		rep := x.notifyIn(body, addr, r.Key)
		if rep == nil {
			return false
		}
		rep, err := signer.Sign(rep)
		return err == nil && send(rep) == nil
	}
	var m dns.Msg
	if err := m.Unpack(body); err != nil || len(m.Question) != 1 || m.Opcode != dns.OpcodeQuery ||
		(m.Question[0].Qtype != dns.TypeAXFR && m.Question[0].Qtype != dns.TypeIXFR) {
		return x.answerSigned(body, answer, signer, send)
	}
	qq := m.Question[0]
	kind := kindAXFR
	if qq.Qtype == dns.TypeIXFR {
		kind = kindIXFR
	}
	origin := strings.ToLower(dns.CanonicalName(qq.Name))
	reply := func(rcode, result int) bool {
		x.stats.done[kind][result].Add(1)
		rep, err := bareReply(body, rcode)
		if err != nil {
			return false
		}
		if rcode == dns.RcodeNotAuth || rcode == dns.RcodeRefused {
			x.log.Info("transfer denied", "zone", origin, "kind", xfrKinds[kind], "client", addr, "key", r.Key,
				"rcode", RcodeName(rcode))
		}
		if rep, err = signer.Sign(rep); err != nil {
			return false
		}
		return send(rep) == nil
	}
	zc, z := x.zones[origin], x.served(origin)
	if zc == nil && x.members != nil {
		zc = x.members(origin)
	}
	if zc == nil || z == nil || qq.Qclass != dns.ClassINET {
		// Not a zone served here (or one expired or not yet transferred):
		// NOTAUTH, as Knot DNS answers it.
		return reply(dns.RcodeNotAuth, resultNotAuth)
	}
	if !Allows(zc.TransferACL, addr, r.Key) {
		// Issue 13 asks for REFUSED for everyone allow-transfer does not
		// list. Knot DNS answers NOTAUTH there (and the answer engine did
		// before transfers were served); REFUSED is what BIND and NSD
		// answer and says plainly that the server will not, rather than
		// that it is no authority for the zone.
		return reply(dns.RcodeRefused, resultRefused)
	}
	var clientSerial uint32
	if kind == kindIXFR {
		soa, ok := ixfrSOA(&m)
		if !ok {
			// RFC 1995 section 3: an IXFR query carries the client's SOA in
			// its authority section; without one there is nothing to
			// answer from. Knot DNS answers FORMERR.
			return reply(dns.RcodeFormatError, resultFormErr)
		}
		clientSerial = soa
	}
	select {
	case x.sem <- struct{}{}:
		defer func() { <-x.sem }()
	default:
		// Over the bound: SERVFAIL at once, and the secondary retries
		// later, as Knot DNS does when its transfer workers are busy.
		return reply(dns.RcodeServerFailure, resultBusy)
	}
	start := time.Now()
	if x.pace != nil {
		unpaced := send
		send = func(msg []byte) error {
			x.pace.wait(len(msg))
			return unpaced(msg)
		}
	}
	w := newXfrWriter(body, signer, send)
	var err error
	switch {
	case kind == kindAXFR:
		err = writeAXFR(w, z)
	case serialCompare(clientSerial, z.Serial()) >= 0:
		// The client has this version or a newer one: the SOA alone says
		// so (RFC 1995 section 2).
		kind = kindIXFRUpToDate
		err = writeSOAOnly(w, z)
	default:
		var sets []*changeset
		if x.journal != nil {
			sets = x.journal.Chain(origin, clientSerial, z.Serial())
		}
		if sets == nil || chainRecords(sets) > z.Records() {
			// The journal does not reach back to the client's serial, or
			// has a gap: the whole zone (RFC 1995 section 4). So too when
			// the differences hold more records than the zone, as BIND's
			// max-ixfr-ratio of 100% has it: the whole zone is then the
			// shorter answer.
			kind = kindIXFRAsAXFR
			err = writeAXFR(w, z)
		} else {
			err = writeIXFR(w, z, sets)
		}
	}
	result := resultOK
	if err != nil {
		result = resultAborted
		if errors.Is(err, errXfrZone) {
			result = resultInternal
		}
	}
	x.stats.done[kind][result].Add(1)
	x.stats.bytes[kind].Add(uint64(w.bytes))
	x.log.Info("transfer out", "zone", origin, "kind", xfrKinds[kind], "client", addr, "key", r.Key,
		"serial", z.Serial(), "from_serial", clientSerial, "messages", w.msgs, "bytes", w.bytes,
		"duration", time.Since(start), "result", xfrResults[result], "err", err)
	if result == resultInternal {
		// The stream was cut off; the client sees an incomplete transfer
		// and the connection must end, as no reply can follow.
		return false
	}
	return err == nil
}

// xfrPacer spaces the messages of the transfers out so that together they
// send at most rate bytes a second (server.transfers-out-rate), a message
// of up to 64 KiB ahead: each message reserves its share of time after the
// last one's, and its sender sleeps until its turn. Transfers are the one
// bulk work of the control plane, and on a machine with few cores their
// CPU (the messages' encoding, the kernel's TCP) is the workers'.
type xfrPacer struct {
	rate float64 // bytes per second
	mu   sync.Mutex
	next time.Time // when the bytes reserved so far will have been sent at rate
}

// xfrPaceAhead is how far ahead of its turn a message may go: one message
// of the largest size, so that a transfer starts at once.
const xfrPaceAhead = 65535

// wait blocks until n more bytes may be sent.
func (p *xfrPacer) wait(n int) {
	p.mu.Lock()
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	p.next = p.next.Add(time.Duration(float64(n) / p.rate * float64(time.Second)))
	d := p.next.Sub(now) - time.Duration(xfrPaceAhead/p.rate*float64(time.Second))
	p.mu.Unlock()
	if d > 0 {
		time.Sleep(d)
	}
}

// UDPIXFR answers body, an IXFR query that came over UDP (handed off by
// the data plane; its TSIG, if any, verified and removed, key the key that
// signed it), with the zone's current SOA alone, AA set. RFC 1995 section 2
// lets a server answer so when the differences do not fit in a datagram:
// the client compares the serial and, when it is behind, asks again over
// TCP. Knot DNS 3.2 answers every allowed IXFR over UDP this way, and so
// do we, without a look at the journal: a UDP reply never carries
// differences. The ACL and the zone are checked as over TCP: REFUSED when
// allow-transfer does not admit the client, NOTAUTH for a zone not served
// here, FORMERR without the client's SOA in the authority section. The
// reply has no OPT record; the caller adds it.
func (x *XfrOut) UDPIXFR(body []byte, addr netip.Addr, key string) []byte {
	reply := func(rcode, result int) []byte {
		x.stats.done[kindIXFRUDP][result].Add(1)
		rep, err := bareReply(body, rcode)
		if err != nil {
			return nil
		}
		return rep
	}
	var m dns.Msg
	if err := m.Unpack(body); err != nil || len(m.Question) != 1 {
		return reply(dns.RcodeFormatError, resultFormErr)
	}
	qq := m.Question[0]
	origin := strings.ToLower(dns.CanonicalName(qq.Name))
	zc, z := x.zones[origin], x.served(origin)
	if zc == nil && x.members != nil {
		zc = x.members(origin)
	}
	if zc == nil || z == nil || qq.Qclass != dns.ClassINET {
		return reply(dns.RcodeNotAuth, resultNotAuth)
	}
	if !Allows(zc.TransferACL, addr, key) {
		return reply(dns.RcodeRefused, resultRefused)
	}
	if _, ok := ixfrSOA(&m); !ok {
		return reply(dns.RcodeFormatError, resultFormErr)
	}
	soa, err := zoneSOA(z)
	if err != nil {
		return reply(dns.RcodeServerFailure, resultInternal)
	}
	rep := reply(dns.RcodeSuccess, resultOK)
	if rep == nil || rep[5] != 1 {
		return nil
	}
	rep[2] |= 0x04 // AA
	rep = append(rep, soa.owner...)
	rep = binary.BigEndian.AppendUint16(rep, dns.TypeSOA)
	rep = binary.BigEndian.AppendUint16(rep, dns.ClassINET)
	rep = binary.BigEndian.AppendUint32(rep, soa.ttl)
	rep = binary.BigEndian.AppendUint16(rep, uint16(len(soa.data)))
	rep = append(rep, soa.data...)
	rep[7] = 1 // ANCOUNT
	x.stats.bytes[kindIXFRUDP].Add(uint64(len(rep)))
	return rep
}

// chainRecords counts the records of the differences sets, the SOAs
// apart.
func chainRecords(sets []*changeset) int {
	n := 0
	for _, cs := range sets {
		n += cs.records
	}
	return n
}

// answerSigned answers a signed query that is no transfer through the
// answer engine, on the query without its TSIG, and signs the reply.
func (x *XfrOut) answerSigned(body []byte, answer AnswerFunc, signer *Signer, send xfrSend) bool {
	if answer == nil {
		return false
	}
	// Room for the TSIG record within the 65535 bytes of a TCP message.
	dst := make([]byte, 65535-tsigRoom)
	n, _ := answer(dst, body, nil, true)
	if n == 0 {
		return false
	}
	rep, err := signer.Sign(dst[:n])
	if err != nil {
		return false
	}
	return send(rep) == nil
}

// tsigRoom is the room left in a message for its TSIG record: the key and
// algorithm names (at most 255 bytes each), a 64-byte MAC, and the fixed
// fields, rounded up.
const tsigRoom = 640

// served returns the version of the zone origin in the published snapshot,
// nil when there is none or it is a secondary zone's that has expired.
func (x *XfrOut) served(origin string) *zone.Zone {
	s := x.snap.Load()
	if s == nil {
		return nil
	}
	for i, z := range s.Zones().Zones() {
		if z.Origin() == origin {
			if s.Expired(i) {
				return nil
			}
			return z
		}
	}
	return nil
}

func (x *XfrOut) countTSIGFailure(r *TSIGRequest) {
	name := TSIGErrorName(r)
	for i, n := range tsigFailNames {
		if n == name {
			x.stats.tsigFail[i].Add(1)
			return
		}
	}
}

// ixfrSOA returns the serial of the SOA in an IXFR query's authority
// section.
func ixfrSOA(m *dns.Msg) (uint32, bool) {
	for _, rr := range m.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return soa.Serial, true
		}
	}
	return 0, false
}

// serialCompare compares serials a and b in RFC 1982 arithmetic: -1 when a
// is older, 0 when equal, 1 when newer (or undefined, which the caller
// treats as not older).
func serialCompare(a, b uint32) int {
	switch {
	case a == b:
		return 0
	case int32(a-b) < 0:
		return -1
	}
	return 1
}

// errXfrZone marks a zone that could not be walked: a defect, logged.
var errXfrZone = errors.New("walking the zone")

// xfrMaxMessage bounds one message of a transfer: 64 KiB less the room for
// its TSIG record and length prefix.
const xfrMaxMessage = 65535 - tsigRoom

// xfrWriter packs records into the messages of a transfer: each message
// up to xfrMaxMessage bytes, owner names compressed against the names
// already in the message, the question in the first message only (RFC 5936
// section 2.2.1), each message signed when the query was.
type xfrWriter struct {
	hdr      [12]byte
	question []byte
	signer   *Signer
	send     xfrSend

	buf   []byte
	count int
	names map[string]int // a suffix's wire form (lowercase) -> its offset in buf

	msgs, bytes int
}

// newXfrWriter prepares the messages answering the query q: its ID, opcode
// and RD, QR and AA set.
func newXfrWriter(q []byte, signer *Signer, send xfrSend) *xfrWriter {
	w := &xfrWriter{signer: signer, send: send, buf: make([]byte, 0, 65535), names: map[string]int{}}
	copy(w.hdr[:4], q[:4])
	w.hdr[2] = 0x80 | q[2]&0x79 | 0x04
	w.hdr[3] = 0
	if off := skipWireName(q, 12); off > 0 && off+4 <= len(q) {
		w.question = append([]byte(nil), q[12:off+4]...)
	}
	w.start()
	return w
}

func (w *xfrWriter) start() {
	w.buf = append(w.buf[:0], w.hdr[:]...)
	clear(w.names)
	w.count = 0
	if w.msgs == 0 && w.question != nil {
		// The question is the query's, copied: a compressed name in a
		// query's first question could only point into the header, which
		// skipWireName does not follow, so it is taken as written.
		w.buf = append(w.buf, w.question...)
		binary.BigEndian.PutUint16(w.buf[4:], 1)
	}
}

// add appends one record, first sending the message in hand when the
// record does not fit in it.
func (w *xfrWriter) add(owner []byte, typ uint16, ttl uint32, data []byte) error {
	need := len(owner) + 10 + len(data)
	if len(w.buf)+need > xfrMaxMessage && w.count > 0 {
		if err := w.flush(); err != nil {
			return err
		}
	}
	if len(w.buf)+need > xfrMaxMessage {
		return fmt.Errorf("%w: a record of %d bytes does not fit in a message", errXfrZone, need)
	}
	w.putName(owner)
	w.buf = binary.BigEndian.AppendUint16(w.buf, typ)
	w.buf = binary.BigEndian.AppendUint16(w.buf, dns.ClassINET)
	w.buf = binary.BigEndian.AppendUint32(w.buf, ttl)
	w.buf = binary.BigEndian.AppendUint16(w.buf, uint16(len(data)))
	w.buf = append(w.buf, data...)
	w.count++
	return nil
}

// putName appends the uncompressed wire name name, compressed against the
// names of the message: the longest suffix already written becomes a
// pointer, and each new suffix is remembered where it starts.
func (w *xfrWriter) putName(name []byte) {
	for off := 0; off < len(name) && name[off] != 0; off += 1 + int(name[off]) {
		if p, ok := w.names[string(name[off:])]; ok {
			w.buf = append(w.buf, name[:off]...)
			w.buf = append(w.buf, 0xC0|byte(p>>8), byte(p))
			w.rememberSuffixes(name[:off], len(w.buf)-off-2, name[off:])
			return
		}
	}
	at := len(w.buf)
	w.buf = append(w.buf, name...)
	w.rememberSuffixes(name, at, nil)
}

// rememberSuffixes notes where the suffixes of the labels written at
// offset at start, for the names that follow; rest is the part of the name
// that a pointer stands for (already known).
func (w *xfrWriter) rememberSuffixes(labels []byte, at int, rest []byte) {
	for off := 0; off < len(labels) && labels[off] != 0; off += 1 + int(labels[off]) {
		if at+off >= 0x4000 {
			return // beyond a pointer's reach
		}
		key := string(labels[off:])
		if rest != nil {
			key = string(labels[off:]) + string(rest)
		}
		if _, ok := w.names[key]; !ok {
			w.names[key] = at + off
		}
	}
}

// flush signs and sends the message in hand, if it holds any record.
func (w *xfrWriter) flush() error {
	if w.count == 0 {
		return nil
	}
	binary.BigEndian.PutUint16(w.buf[6:], uint16(w.count))
	msg, err := w.signer.Sign(w.buf)
	if err != nil {
		return err
	}
	if err := w.send(msg); err != nil {
		return err
	}
	w.msgs++
	w.bytes += len(msg)
	w.buf = msg[:0]
	w.start()
	return nil
}

// soaRecord is a copy of a zone's SOA record.
type soaRecord struct {
	owner []byte
	ttl   uint32
	data  []byte
}

var errStopWalk = errors.New("stop")

// zoneSOA finds the SOA record of z, the first of the apex's records in
// the canonical order, so that the walk stops within the first node.
func zoneSOA(z *zone.Zone) (soaRecord, error) {
	var soa soaRecord
	err := z.Walk(func(r *zone.Record) error {
		if r.Type == dns.TypeSOA {
			soa = soaRecord{owner: append([]byte(nil), r.Owner...), ttl: r.TTL, data: append([]byte(nil), r.Data...)}
			return errStopWalk
		}
		return nil
	})
	if err != errStopWalk {
		return soa, fmt.Errorf("%w %s: no SOA record found (%v)", errXfrZone, z.Origin(), err)
	}
	return soa, nil
}

// writeAXFR sends the zone: its SOA, every other record, the SOA again
// (RFC 5936 section 2.2).
func writeAXFR(w *xfrWriter, z *zone.Zone) error {
	soa, err := zoneSOA(z)
	if err != nil {
		return err
	}
	if err := w.add(soa.owner, dns.TypeSOA, soa.ttl, soa.data); err != nil {
		return err
	}
	err = z.Walk(func(r *zone.Record) error {
		if r.Type == dns.TypeSOA {
			return nil
		}
		return w.add(r.Owner, r.Type, r.TTL, r.Data)
	})
	if err != nil {
		return err
	}
	if err := w.add(soa.owner, dns.TypeSOA, soa.ttl, soa.data); err != nil {
		return err
	}
	return w.flush()
}

// writeSOAOnly sends the zone's SOA alone: the reply to an IXFR from a
// client that is up to date.
func writeSOAOnly(w *xfrWriter, z *zone.Zone) error {
	soa, err := zoneSOA(z)
	if err != nil {
		return err
	}
	if err := w.add(soa.owner, dns.TypeSOA, soa.ttl, soa.data); err != nil {
		return err
	}
	return w.flush()
}

// writeIXFR sends the differences sets, which lead from the client's
// version to z's, in the form of RFC 1995 section 4: the new SOA, then for
// each difference the old SOA, the records deleted, the new SOA and the
// records added, and the new SOA last.
func writeIXFR(w *xfrWriter, z *zone.Zone, sets []*changeset) error {
	soa, err := zoneSOA(z)
	if err != nil {
		return err
	}
	if err := w.add(soa.owner, dns.TypeSOA, soa.ttl, soa.data); err != nil {
		return err
	}
	for _, cs := range sets {
		if err := w.add(soa.owner, dns.TypeSOA, cs.fromSOA.ttl, cs.fromSOA.data); err != nil {
			return err
		}
		if err := cs.each(cs.del, w.add); err != nil {
			return err
		}
		if err := w.add(soa.owner, dns.TypeSOA, cs.toSOA.ttl, cs.toSOA.data); err != nil {
			return err
		}
		if err := cs.each(cs.add, w.add); err != nil {
			return err
		}
	}
	if err := w.add(soa.owner, dns.TypeSOA, soa.ttl, soa.data); err != nil {
		return err
	}
	return w.flush()
}
