package controlplane

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringdns/ringdns/controlplane/control"
	"github.com/ringdns/ringdns/dataplane"
	"github.com/ringdns/ringdns/nic"
)

// AnswerFunc answers one query from peer (nil when unknown) into dst; it
// has the signature of dataplane.(*Snapshot).AnswerFrom without the
// receiver. The peer's address is what DNS cookies are made with.
type AnswerFunc func(dst, q []byte, peer *nic.Addr, tcp bool) (int, dataplane.Result)

// TCPServer serves DNS over TCP (RFC 7766) from kernel sockets. Each
// connection has one goroutine and one 65537-byte buffer in which queries
// are read and answered in place, so pipelined queries are answered in
// order and nothing is allocated per query.
type TCPServer struct {
	ln     net.Listener
	answer func() AnswerFunc
	lim    TCPLimits
	log    *slog.Logger

	// counters is written by every connection goroutine; Counters allow one
	// writer at a time, so countMu serialises the writes. Readers load the
	// values without the lock. TCP is not the per-packet UDP path.
	countMu  sync.Mutex
	counters *dataplane.Counters
	// rssac, when not nil, counts the RSSAC002 statistics of TCP, under
	// countMu too (rssac.go).
	rssac *dataplane.RSSAC

	accepted  atomic.Uint64
	refused   atomic.Uint64 // connections closed at once: the table full of busy ones
	perSource atomic.Uint64 // connections closed at once: their source's bound full of busy ones
	evicted   atomic.Uint64 // idle connections closed to make room for a new one
	garbage   atomic.Uint64 // connections closed for a malformed length
	timeouts  atomic.Uint64 // connections closed idle, or with a message incomplete

	conns connSet

	// xfr serves zone transfers and TSIG-signed queries; nil: every query
	// goes to the answer engine.
	xfr *XfrOut
	// dnstap, when not nil, is the ring the connections log their
	// exchanges to, one at a time under countMu (dnstap.go).
	dnstap *dataplane.Dnstap
}

// ServeTransfers hands the zone transfers (AXFR, IXFR) and the TSIG-signed
// queries of this server's connections to x. Call it before Serve.
func (s *TCPServer) ServeTransfers(x *XfrOut) { s.xfr = x }

// TCPLimits bound a TCP server's connections and how long it waits for
// its clients. A zero per-source bound is no bound.
type TCPLimits struct {
	// Idle is how long a connection may wait for the first byte of its
	// next query; Message how long from a query's first byte to its last.
	// A reply's write may take Idle.
	Idle, Message time.Duration
	// MaxConns bounds the connections open at once. When that many are
	// open, a new one takes the place of the connection idle longest, and
	// is refused only when none is idle.
	MaxConns int
	// PerAddr and PerPrefix bound the connections from one address and
	// from one /24 (IPv4) or /56 (IPv6) in the same way: a new connection
	// over the bound takes the place of the source's connection idle
	// longest, and is refused when none of the source's is idle.
	PerAddr, PerPrefix int
}

// TCPLimits are the TCP limits of a normalised configuration.
func (c *ServerConfig) TCPLimits() TCPLimits {
	return TCPLimits{Idle: time.Duration(c.TCPIdleTimeout), Message: time.Duration(c.TCPMessageTimeout),
		MaxConns: c.TCPMaxConnections, PerAddr: c.TCPMaxPerAddress, PerPrefix: c.TCPMaxPerPrefix}
}

// NewTCPServer serves on ln. answer returns the AnswerFunc of the snapshot
// to use for the next query; it is called once per query so that a reload
// takes effect on open connections too.
func NewTCPServer(ln net.Listener, answer func() AnswerFunc, lim TCPLimits,
	counters *dataplane.Counters, log *slog.Logger) *TCPServer {
	return &TCPServer{ln: ln, answer: answer, lim: lim, counters: counters, log: log}
}

// SnapshotAnswer adapts the published snapshot pointer to the TCP server.
func SnapshotAnswer(p *atomic.Pointer[dataplane.Snapshot]) func() AnswerFunc {
	return func() AnswerFunc {
		s := p.Load()
		if s == nil {
			return nil
		}
		return s.AnswerFrom
	}
}

// Addr is the listening address.
func (s *TCPServer) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts connections until Close. It returns nil after Close.
func (s *TCPServer) Serve() error {
	// RFC 7766 section 6.2.2 lets a server close connections it cannot
	// serve; the client retries or falls back. Closing the connection idle
	// longest instead of refusing a new one keeps a client that holds
	// connections open without using them from locking others out.
	lim := connLimits{max: s.lim.MaxConns, perAddr: s.lim.PerAddr, perPrefix: s.lim.PerPrefix, evictIdle: true}
	s.conns.acceptLimited(s.ln, lim, s.log, s.serveConn, func(a admission) {
		switch a {
		case admittedEvicting:
			s.evicted.Add(1)
			fallthrough
		case admitted:
			s.accepted.Add(1)
		case refusedSource:
			s.perSource.Add(1)
		default:
			s.refused.Add(1)
		}
	})
	return nil
}

// serveConn answers the queries of one connection in order. Between
// queries the connection is idle and may wait for the idle timeout; from
// a query's first byte, the rest of it must arrive within the message
// timeout, so a client that trickles bytes or stops mid-query holds its
// place for no longer than that.
//
// Replies are written through a buffer so that the replies to queries
// pipelined in one segment leave together, but each query is answered on
// its own (RFC 7766 section 6.2.1): whatever is buffered is flushed before
// the server waits for bytes that have not arrived, and before the
// connection ends for any reason, so a reply is never held hostage by the
// query after it.
func (s *TCPServer) serveConn(e *connEntry) {
	c := e.conn
	defer s.conns.done(c)
	r := bufio.NewReaderSize(c, 4096)
	w := bufio.NewWriterSize(c, 4096)
	defer s.flush(c, w)
	buf := make([]byte, 2+65535)
	// The client's address, for DNS cookies: over TCP a query gets a
	// server cookie in its reply, never BADCOOKIE (the connection proves
	// the address).
	var peer *nic.Addr
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		a := nic.AddrFrom(netip.AddrPortFrom(ta.AddrPort().Addr().Unmap(), ta.AddrPort().Port()))
		peer = &a
	}
	// For dnstap: the address the client connected to, and a copy of the
	// query, which the reply overwrites.
	var local *nic.Addr
	var tq []byte
	if ta, ok := c.LocalAddr().(*net.TCPAddr); ok && s.dnstap != nil {
		a := nic.AddrFrom(netip.AddrPortFrom(ta.AddrPort().Addr().Unmap(), ta.AddrPort().Port()))
		local = &a
	}
	// quiet is when the last reply was queued (see connEntry.quiet): the
	// connection has had nothing in hand since, though the goroutine marks
	// it idle only after the flush, by which time the client may have the
	// reply and have opened another connection.
	quiet := time.Now()
	for {
		if r.Buffered() == 0 {
			// Nothing in hand once the replies are out: the connection is
			// idle, and may be closed to make room for another, until the
			// first byte of the next query arrives.
			if !s.flush(c, w) || !s.conns.setIdle(e, true, quiet) || !s.readDeadline(c, s.lim.Idle) {
				return
			}
			_, err := r.Peek(1)
			if !s.conns.setIdle(e, false, time.Time{}) {
				return // evicted
			}
			if err != nil {
				s.noteReadErr(err)
				return
			}
		}
		if !s.readDeadline(c, s.lim.Message) {
			return
		}
		if !frameBuffered(r) && !s.flush(c, w) {
			return
		}
		if _, err := io.ReadFull(r, buf[:2]); err != nil {
			s.noteReadErr(err)
			return
		}
		n := int(binary.BigEndian.Uint16(buf[:2]))
		if n < 12 {
			s.garbage.Add(1)
			return
		}
		if _, err := io.ReadFull(r, buf[2:2+n]); err != nil {
			s.noteReadErr(err)
			return
		}
		if s.dnstap != nil {
			tq = append(tq[:0], buf[2:2+n]...)
		}
		answer := s.answer()
		if answer == nil {
			return
		}
		if s.xfr != nil && s.xfr.Handles(buf[2:2+n]) {
			// A transfer may be many messages, written as they are made;
			// what is buffered is written first, in order.
			if !s.serveTransfer(c, w, buf[2:2+n], answer) {
				return
			}
			quiet = time.Now()
			continue
		}
		qr := buf[4]&0x80 != 0 // the reply overwrites the query
		m, res := answer(buf[2:], buf[2:2+n], peer, true)
		s.countMu.Lock()
		s.counters.Count(res, m)
		if s.dnstap != nil && m > 0 {
			s.dnstap.Push(time.Now(), peer, local, tq, buf[2:2+m], res.Rcode)
		}
		if s.rssac != nil {
			s.rssac.Count(n, qr, peer, m, res)
		}
		s.countMu.Unlock()
		if m == 0 {
			// A message the engine would not answer (a response, or
			// nonsense) ends the conversation: there is no way to skip to a
			// next query the client may trust.
			return
		}
		binary.BigEndian.PutUint16(buf[:2], uint16(m))
		quiet = time.Now()
		c.SetWriteDeadline(quiet.Add(s.lim.Idle))
		if _, err := w.Write(buf[:2+m]); err != nil {
			return
		}
	}
}

// serveTransfer hands the query q to the transfer service, which writes
// its reply messages through w, each under the idle timeout as every write
// is. It reports whether the connection may go on.
func (s *TCPServer) serveTransfer(c net.Conn, w *bufio.Writer, q []byte, answer AnswerFunc) bool {
	var addr netip.Addr
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		addr = ta.AddrPort().Addr().Unmap()
	}
	var l [2]byte
	return s.xfr.Serve(q, addr, answer, func(msg []byte) error {
		binary.BigEndian.PutUint16(l[:], uint16(len(msg)))
		c.SetWriteDeadline(time.Now().Add(s.lim.Idle))
		if _, err := w.Write(l[:]); err != nil {
			return err
		}
		_, err := w.Write(msg)
		return err
	})
}

// readDeadline sets c's read deadline d from now and reports whether the
// connection may go on: it may not once Close has begun (see
// connSet.stopped).
func (s *TCPServer) readDeadline(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	return !s.conns.stopped()
}

// frameBuffered reports whether r holds a whole length-prefixed message,
// which can be read without waiting for the client.
func frameBuffered(r *bufio.Reader) bool {
	if r.Buffered() < 2 {
		return false
	}
	l, _ := r.Peek(2)
	return r.Buffered() >= 2+int(binary.BigEndian.Uint16(l))
}

// flush sends the replies buffered in w, under the idle timeout as every
// write is. It reports whether the connection may go on.
func (s *TCPServer) flush(c net.Conn, w *bufio.Writer) bool {
	if w.Buffered() == 0 {
		return true
	}
	c.SetWriteDeadline(time.Now().Add(s.lim.Idle))
	return w.Flush() == nil
}

func (s *TCPServer) noteReadErr(err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		s.timeouts.Add(1)
	}
}

// Stats reads the connection counters.
func (s *TCPServer) Stats() control.TCPStats {
	return control.TCPStats{Accepted: s.accepted.Load(), Refused: s.refused.Load(), PerSource: s.perSource.Load(),
		Evicted: s.evicted.Load(), Garbage: s.garbage.Load(), Timeouts: s.timeouts.Load(), Open: s.conns.open()}
}

// Close stops accepting and ends every connection after the query in hand.
// A connection whose reply cannot be written within a second is closed
// under it.
func (s *TCPServer) Close() error {
	s.conns.stop()
	err := s.ln.Close()
	s.conns.wait(time.Second)
	return err
}
