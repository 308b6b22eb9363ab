package controlplane

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/dataplane"
	"github.com/ringdns/ringdns/nic"
)

// notifier is what a NOTIFY reaches: Catalog.Notify, which checks the
// zone's ACL and key and starts the refresh.
type notifier interface {
	Notify(origin string, from netip.Addr, key string) int
}

// Handoff answers the UDP messages the data plane workers do not answer
// themselves (dataplane.KindHandoff): a NOTIFY, checked against the TSIG
// keys and then the zone's allow-notify and primaries (Catalog.Notify), and
// any message signed with TSIG, verified (RFC 8945 section 5.2), answered
// from the published snapshot without its TSIG record and signed again. It
// drains one dataplane.Handoff ring per worker, each on a goroutine of its
// own, and sends each reply through the ring's ReplySender: from the
// address and port the message was sent to, which is the only source a
// client accepts a reply from.
//
// These messages are rare (a NOTIFY per zone change, signed queries from a
// monitoring system), and answering them here costs an unpack and a few
// allocations each, which the workers never pay.
type Handoff struct {
	keys   *Keyring
	notify notifier
	snap   *atomic.Pointer[dataplane.Snapshot]
	log    *slog.Logger
	rings  []handoffRing
	// ixfr, when set, answers an IXFR query (XfrOut.UDPIXFR), which the
	// workers hand off for its allow-transfer check. Set before Run.
	ixfr func(body []byte, from netip.Addr, key string) []byte

	notifies, signed, tsigFailed, replies, sendErrs atomic.Uint64
}

// handoffRing is one worker's ring and where its replies go.
type handoffRing struct {
	ring *dataplane.Handoff
	out  nic.ReplySender
}

// NewHandoff returns a Handoff that verifies with keys, passes NOTIFYs to
// notify and answers from the snapshot published in snap.
func NewHandoff(keys *Keyring, notify notifier, snap *atomic.Pointer[dataplane.Snapshot], log *slog.Logger) *Handoff {
	return &Handoff{keys: keys, notify: notify, snap: snap, log: log}
}

// Attach adds a worker's ring, whose replies out sends. It is called before
// Run.
func (h *Handoff) Attach(ring *dataplane.Handoff, out nic.ReplySender) {
	h.rings = append(h.rings, handoffRing{ring: ring, out: out})
}

// HandoffStats are the counts of a Handoff: NOTIFYs received, signed
// messages received, those whose TSIG failed (answered NOTAUTH or
// FORMERR), replies sent and replies the system refused to send.
type HandoffStats struct {
	Notifies, Signed, TSIGFailed, Replies, SendErrors uint64
}

// Stats returns the counts so far.
func (h *Handoff) Stats() HandoffStats {
	return HandoffStats{h.notifies.Load(), h.signed.Load(), h.tsigFailed.Load(), h.replies.Load(), h.sendErrs.Load()}
}

// Run drains every attached ring until stop is closed; it returns when
// each ring's goroutine has.
func (h *Handoff) Run(stop <-chan struct{}) {
	var wg sync.WaitGroup
	for _, r := range h.rings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.drain(r, stop)
		}()
	}
	wg.Wait()
}

// drain answers the messages of one ring as they come.
func (h *Handoff) drain(r handoffRing, stop <-chan struct{}) {
	for {
		for m := r.ring.Peek(); m != nil; m = r.ring.Peek() {
			from := m.Peer.AddrPort()
			if reply := h.Answer(m.Msg(), from.Addr()); reply != nil {
				if err := r.out.SendFrom(reply, m.Peer, m.Dest); err != nil {
					h.sendErrs.Add(1)
					h.log.Debug("handed-off reply not sent", "to", from, "err", err)
				} else {
					h.replies.Add(1)
				}
			}
			r.ring.Release()
		}
		if r.ring.Wait(stop) != nil {
			return
		}
	}
}

// Answer returns the reply to msg, a message from the address from that
// the data plane handed off, or nil when it gets none. A TSIG record is
// verified first: a message that fails gets NOTAUTH with the TSIG error
// (BADKEY, BADSIG, BADTIME; RFC 8945 section 5.3.2) or FORMERR, and goes no
// further. A NOTIFY then goes to the catalog, whose rcode the reply
// carries; anything else is answered by the snapshot's engine as the
// message without its TSIG record. The reply to a signed message is
// signed.
func (h *Handoff) Answer(msg []byte, from netip.Addr) []byte {
	if len(msg) < 12 || msg[2]&0x80 != 0 {
		return nil
	}
	req := h.keys.Verify(msg)
	if req.Signed {
		h.signed.Add(1)
	}
	if req.Rcode != dns.RcodeSuccess {
		h.tsigFailed.Add(1)
		h.log.Debug("TSIG failed", "from", from, "reason", req.Reason())
		rep, err := h.keys.TSIGErrorReply(msg, &req)
		if err != nil {
			return nil
		}
		return rep
	}
	signer := h.keys.Signer(&req)
	var rep []byte
	if msg[2]>>3&0xF == dns.OpcodeNotify {
		rep = h.answerNotify(req.Body, from, req.Key)
	} else if h.ixfr != nil && questionType(req.Body) == dns.TypeIXFR {
		rep = h.answerIXFR(req.Body, from, req.Key)
	} else {
		rep = h.answerQuery(req.Body, signer, from)
	}
	if rep == nil {
		return nil
	}
	signed, err := signer.Sign(rep)
	if err != nil {
		h.log.Warn("signing a reply", "from", from, "err", err)
		return nil
	}
	return signed
}

// answerNotify answers the NOTIFY body (its TSIG, if any, verified and
// removed; key the key that signed it) with the rcode of Catalog.Notify:
// the header and the question echoed, as RFC 1996 section 4.7 shows the
// reply, AA set when the NOTIFY is accepted, and our OPT record when the
// NOTIFY had one (RFC 6891 section 7). Knot DNS 3.2 answers a NOTIFY it
// refuses alike, without AA and with its OPT; the conformance suite
// compares the two. A NOTIFY without exactly one question is FORMERR, and
// so is one whose COOKIE option has a length no cookie has (RFC 7873
// section 5.2.2); a client cookie gets its server cookie in our OPT, as
// every reply of the workers does. cookies.require does not apply: a
// NOTIFY is checked against the zone's primaries and keys, and a primary
// that got BADCOOKIE would only send it again.
func (h *Handoff) answerNotify(body []byte, from netip.Addr, key string) []byte {
	h.notifies.Add(1)
	var m dns.Msg
	if err := m.Unpack(body); err != nil || len(m.Question) != 1 {
		rep, err := bareReply(body, dns.RcodeFormatError)
		if err != nil {
			return nil
		}
		return rep
	}
	o := m.IsEdns0()
	cookie, malformed := h.replyCookie(o, from)
	if malformed {
		return h.cookieFormErr(body, o)
	}
	rcode := h.notify.Notify(m.Question[0].Name, from, key)
	rep, err := bareReply(body, rcode)
	if err != nil {
		return nil
	}
	if rcode == dns.RcodeSuccess {
		rep[2] |= 0x04 // AA
	}
	if o != nil {
		rep = h.appendOPT(rep, o.Do(), cookie)
	}
	return rep
}

// cookieFormErr is the reply to a handed-off message body whose COOKIE
// option (in its OPT record o) is malformed: FORMERR with the header and
// question, and our OPT without a cookie (RFC 7873 section 5.2.2).
func (h *Handoff) cookieFormErr(body []byte, o *dns.OPT) []byte {
	rep, err := bareReply(body, dns.RcodeFormatError)
	if err != nil {
		return nil
	}
	return h.appendOPT(rep, o.Do(), nil)
}

// replyCookie returns the data of the COOKIE option that the reply to a
// handed-off message whose OPT record is o (nil: none) carries for the
// client at from, nil when it carries none (no COOKIE option, cookies
// off), and whether the option is malformed, which is answered FORMERR
// (RFC 7873 section 5.2.2). The first COOKIE option counts, as in the
// workers.
func (h *Handoff) replyCookie(o *dns.OPT, from netip.Addr) (data []byte, malformed bool) {
	snap := h.snap.Load()
	if o == nil || snap == nil || snap.Config().Cookies == nil {
		return nil, false
	}
	for _, opt := range o.Option {
		c, ok := opt.(*dns.EDNS0_COOKIE)
		if !ok {
			continue
		}
		raw, err := hex.DecodeString(c.Cookie)
		if err != nil {
			return nil, true
		}
		v, data := snap.Config().Cookies.HandoffCookie(raw, from)
		return data, v == dataplane.CookieMalformed
	}
	return nil, false
}

// answerIXFR answers the IXFR query body (its TSIG, if any, verified and
// removed) through ixfr, with our OPT record when the query had one, and
// in it the server cookie for a client cookie (see answerNotify; a
// malformed COOKIE option is FORMERR before the allow-transfer check).
func (h *Handoff) answerIXFR(body []byte, from netip.Addr, key string) []byte {
	var m dns.Msg
	var o *dns.OPT
	if m.Unpack(body) == nil {
		o = m.IsEdns0()
	}
	cookie, malformed := h.replyCookie(o, from)
	if malformed {
		return h.cookieFormErr(body, o)
	}
	rep := h.ixfr(body, from, key)
	if rep == nil {
		return nil
	}
	if o != nil {
		rep = h.appendOPT(rep, o.Do(), cookie)
	}
	return rep
}

// questionType returns the type of the first question of the message m,
// 0 when it has none or it cannot be read.
func questionType(m []byte) uint16 {
	if len(m) < 12 || binary.BigEndian.Uint16(m[4:]) == 0 {
		return 0
	}
	off := skipWireName(m, 12)
	if off < 0 || off+4 > len(m) {
		return 0
	}
	return binary.BigEndian.Uint16(m[off:])
}

// appendOPT appends our OPT record to the reply rep: the UDP size we
// advertise (Config.UDPSize), version 0, DO copied from the query, and a
// COOKIE option with the data cookie when it is not nil.
func (h *Handoff) appendOPT(rep []byte, do bool, cookie []byte) []byte {
	size := 1232
	if s := h.snap.Load(); s != nil {
		size = s.Config().UDPSize
	}
	var flags byte
	if do {
		flags = 0x80
	}
	rdlen := 0
	if cookie != nil {
		rdlen = 4 + len(cookie)
	}
	rep = append(rep, 0, 0, 41, byte(size>>8), byte(size), 0, 0, flags, 0, byte(rdlen>>8), byte(rdlen))
	if cookie != nil {
		rep = append(rep, 0, 10, byte(len(cookie)>>8), byte(len(cookie)))
		rep = append(rep, cookie...)
	}
	binary.BigEndian.PutUint16(rep[10:], binary.BigEndian.Uint16(rep[10:])+1)
	return rep
}

// answerQuery answers body, a message without TSIG from the client at
// from, from the published snapshot, leaving room for the TSIG record
// signer appends within the UDP size the client offered (512 without
// EDNS, bounded by the server's UDPSize). The engine judges its COOKIE
// option as the workers do (AnswerFrom): the reply carries the server
// cookie, and cookies.require answers BADCOOKIE to a signed query without
// a valid one, as to any other over UDP.
func (h *Handoff) answerQuery(body []byte, signer *Signer, from netip.Addr) []byte {
	snap := h.snap.Load()
	if snap == nil {
		return nil
	}
	limit := 512
	if ar := binary.BigEndian.Uint16(body[10:]); ar > 0 {
		var m dns.Msg
		if m.Unpack(body) == nil {
			if o := m.IsEdns0(); o != nil {
				limit = min(max(int(o.UDPSize()), 512), snap.Config().UDPSize)
			}
		}
	}
	dst := make([]byte, max(limit-signerRoom(signer), 12))
	peer := nic.AddrFrom(netip.AddrPortFrom(from, 0))
	n, res := snap.AnswerFrom(dst, body, &peer, false)
	if n == 0 || res.Kind == dataplane.KindDrop || res.Kind == dataplane.KindHandoff {
		return nil
	}
	return dst[:n]
}

// signerRoom bounds the length of the TSIG record s appends: its key and
// algorithm names, the fixed fields, the longest MAC (HMAC-SHA512's 64
// bytes) and the six bytes of other data of a BADTIME reply. 0 for a nil
// Signer, which appends nothing.
func signerRoom(s *Signer) int {
	if s == nil {
		return 0
	}
	return len(s.key.Name) + 1 + len(s.key.Algorithm) + 1 + 10 + 16 + 64 + 6
}

// xdpReplies sends the replies to the messages the AF_XDP workers hand off.
// An AF_XDP port cannot send outside its worker's batch (its TX ring has one
// producer), and a return ring that the worker drains into free frames
// would put the control plane's replies, and their checksums, on the
// per-packet path. The kernel's stack sends them instead, from a UDP socket
// bound to the address and port the query was sent to: that of a socket
// worker when one serves it (the socket workers keep serving the listen
// addresses in XDP mode, and the XDP program takes the port's UDP away
// from them only on the interface it is attached to), or else one bound
// for these replies alone, with IP_FREEBIND, since the AF_XDP path may
// serve an address the host does not hold as its own. Such a socket gets
// no queries (the XDP program redirects every one to the address and port
// on its interface), and any the kernel delivers to it elsewhere are not
// read: its receive buffer is kept at the minimum. The kernel routes the
// reply; on the AF_XDP interface it needs the same neighbour and route the
// host would use for any other traffic to the client.
type xdpReplies struct {
	socks []replySocket // the socket workers' ports

	mu  sync.Mutex
	own map[netip.AddrPort]*net.UDPConn
}

// replySocket is a socket worker's port as xdpReplies uses it.
type replySocket interface {
	nic.ReplySender
	LocalAddr() netip.AddrPort
}

// SendFrom implements nic.ReplySender.
func (x *xdpReplies) SendFrom(b []byte, to, from nic.Addr) error {
	src := from.AddrPort()
	if !src.IsValid() {
		return errors.New("AF_XDP reply without the query's destination")
	}
	srcAddr := src.Addr().Unmap()
	for _, p := range x.socks {
		l := p.LocalAddr()
		if l.Port() == src.Port() && (l.Addr().Unmap() == srcAddr || l.Addr().IsUnspecified() && l.Addr().Is4() == srcAddr.Is4()) {
			return p.SendFrom(b, to, from)
		}
	}
	c, err := x.socket(netip.AddrPortFrom(srcAddr, src.Port()))
	if err != nil {
		return err
	}
	_, err = c.WriteToUDPAddrPort(b, to.AddrPort())
	return err
}

// socket returns the socket of its own bound to src, opening it on first
// use.
func (x *xdpReplies) socket(src netip.AddrPort) (*net.UDPConn, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if c := x.own[src]; c != nil {
		return c, nil
	}
	network := "udp4"
	if src.Addr().Is6() {
		network = "udp6"
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = freebind(int(fd), src.Addr().Is6()) })
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), network, src.String())
	if err != nil {
		return nil, fmt.Errorf("socket for AF_XDP replies from %s: %w", src, err)
	}
	c := pc.(*net.UDPConn)
	_ = c.SetReadBuffer(1)
	if x.own == nil {
		x.own = map[netip.AddrPort]*net.UDPConn{}
	}
	x.own[src] = c
	return c, nil
}

// Close closes the sockets of its own.
func (x *xdpReplies) Close() {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, c := range x.own {
		c.Close()
	}
	x.own = nil
}
