package controlplane

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringdns/ringdns/dataplane"
)

// AnswerFunc answers one query into dst; it has the signature of
// dataplane.(*Snapshot).Answer without the receiver.
type AnswerFunc func(dst, q []byte, tcp bool) (int, dataplane.Result)

// TCPServer serves DNS over TCP (RFC 7766) from kernel sockets. Each
// connection has one goroutine and one 65537-byte buffer in which queries
// are read and answered in place, so pipelined queries are answered in
// order and nothing is allocated per query.
type TCPServer struct {
	ln       net.Listener
	answer   func() AnswerFunc
	idle     time.Duration
	maxConns int
	log      *slog.Logger

	// counters is written by every connection goroutine; Counters allow one
	// writer at a time, so countMu serialises the writes. Readers load the
	// values without the lock. TCP is not the per-packet UDP path.
	countMu  sync.Mutex
	counters *dataplane.Counters

	accepted atomic.Uint64
	refused  atomic.Uint64 // connections closed at once: over the bound
	garbage  atomic.Uint64 // connections closed for a malformed length
	timeouts atomic.Uint64 // connections closed idle or stalled

	conns connSet
}

// TCPStats are the TCP server's connection counters.
type TCPStats struct {
	Accepted uint64 `json:"accepted"`
	Refused  uint64 `json:"refused"`
	Garbage  uint64 `json:"garbage"`
	Timeouts uint64 `json:"timeouts"`
	Open     int    `json:"open"`
}

// NewTCPServer serves on ln. answer returns the AnswerFunc of the snapshot
// to use for the next query; it is called once per query so that a reload
// takes effect on open connections too.
func NewTCPServer(ln net.Listener, answer func() AnswerFunc, idle time.Duration, maxConns int,
	counters *dataplane.Counters, log *slog.Logger) *TCPServer {
	return &TCPServer{ln: ln, answer: answer, idle: idle, maxConns: maxConns, counters: counters,
		log: log}
}

// SnapshotAnswer adapts the published snapshot pointer to the TCP server.
func SnapshotAnswer(p *atomic.Pointer[dataplane.Snapshot]) func() AnswerFunc {
	return func() AnswerFunc {
		s := p.Load()
		if s == nil {
			return nil
		}
		return s.Answer
	}
}

// Addr is the listening address.
func (s *TCPServer) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts connections until Close. It returns nil after Close.
func (s *TCPServer) Serve() error {
	// RFC 7766 section 6.2.2 lets a server close connections it cannot
	// serve; the client retries or falls back.
	s.conns.acceptLoop(s.ln, s.maxConns, s.log, func(c net.Conn) {
		s.accepted.Add(1)
		s.serveConn(c)
	}, func() { s.refused.Add(1) })
	return nil
}

// serveConn answers the queries of one connection in order. A query's
// whole message must arrive within the idle timeout that starts when the
// server begins waiting for it, so a client that trickles bytes is closed
// just like a silent one.
//
// Replies are written through a buffer so that the replies to queries
// pipelined in one segment leave together, but each query is answered on
// its own (RFC 7766 section 6.2.1): whatever is buffered is flushed before
// the server waits for bytes that have not arrived, and before the
// connection ends for any reason, so a reply is never held hostage by the
// query after it.
func (s *TCPServer) serveConn(c net.Conn) {
	defer s.conns.done(c)
	r := bufio.NewReaderSize(c, 4096)
	w := bufio.NewWriterSize(c, 4096)
	defer s.flush(c, w)
	buf := make([]byte, 2+65535)
	for {
		c.SetReadDeadline(time.Now().Add(s.idle))
		if s.conns.stopped() { // see connSet.stopped
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
		answer := s.answer()
		if answer == nil {
			return
		}
		m, res := answer(buf[2:], buf[2:2+n], true)
		s.countMu.Lock()
		s.counters.Count(res, m)
		s.countMu.Unlock()
		if m == 0 {
			// A message the engine would not answer (a response, or
			// nonsense) ends the conversation: there is no way to skip to a
			// next query the client may trust.
			return
		}
		binary.BigEndian.PutUint16(buf[:2], uint16(m))
		c.SetWriteDeadline(time.Now().Add(s.idle))
		if _, err := w.Write(buf[:2+m]); err != nil {
			return
		}
	}
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
	c.SetWriteDeadline(time.Now().Add(s.idle))
	return w.Flush() == nil
}

func (s *TCPServer) noteReadErr(err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		s.timeouts.Add(1)
	}
}

// Stats reads the connection counters.
func (s *TCPServer) Stats() TCPStats {
	return TCPStats{Accepted: s.accepted.Load(), Refused: s.refused.Load(), Garbage: s.garbage.Load(),
		Timeouts: s.timeouts.Load(), Open: s.conns.open()}
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
