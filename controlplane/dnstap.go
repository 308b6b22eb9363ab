package controlplane

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/dataplane"
	"github.com/ringdns/ringdns/dnstap"
)

// DnstapConfig is the [dnstap] table: dnstap logging of the exchanges of
// the UDP workers (AF_XDP and sockets) and the TCP service.
type DnstapConfig struct {
	// Socket is the path of a Frame Streams collector's Unix socket
	// (fstrm_capture -u, or a dnstap reader), to which ringdns connects
	// with the bidirectional handshake, reconnecting when it goes away.
	Socket string `toml:"socket"`
	// File is written with the unidirectional Frame Streams format
	// instead; it is truncated when opened, and closed and opened again
	// on every reload, so that it can be rotated by renaming it first.
	File string `toml:"file"`
	// Identity and Version fill the Dnstap envelope's fields; default the
	// host name and "ringdns VERSION". An empty string leaves one out.
	Identity *string `toml:"identity"`
	Version  *string `toml:"version"`
	// SampleRate logs one exchange in SampleRate; default 1, each.
	SampleRate int `toml:"sample-rate"`
	// LogQueries and LogResponses choose the messages logged: the query
	// (AUTH_QUERY) and the response (AUTH_RESPONSE); default both.
	LogQueries   *bool `toml:"log-queries"`
	LogResponses *bool `toml:"log-responses"`
	// Rcodes and Qtypes restrict the exchanges logged to those whose
	// reply has one of these rcodes (names such as "NXDOMAIN", or
	// numbers) and whose question one of these types ("DNSKEY",
	// "TYPE65", or numbers); empty: all.
	Rcodes []string `toml:"rcodes"`
	Qtypes []string `toml:"qtypes"`
	// RingSize is the number of exchanges each worker's ring holds,
	// rounded up to a power of two; default dataplane.DefaultDnstapSlots.
	RingSize int `toml:"ring-size"`

	filter dataplane.DnstapFilter
}

// normalize fills the defaults and validates the table; errors name the
// setting. A nil table (no [dnstap] in the file) is valid and off.
func (c *DnstapConfig) normalize() []error {
	if c == nil {
		return nil
	}
	var errs []error
	switch {
	case c.Socket == "" && c.File == "":
		errs = append(errs, errors.New("dnstap: set socket (a collector's Unix socket) or file"))
	case c.Socket != "" && c.File != "":
		errs = append(errs, errors.New("dnstap: socket and file are both set; choose one"))
	}
	if c.Identity == nil {
		h, _ := os.Hostname()
		c.Identity = &h
	}
	if c.Version == nil {
		v := "ringdns " + Version
		c.Version = &v
	}
	if c.SampleRate == 0 {
		c.SampleRate = 1
	}
	if c.SampleRate < 1 || c.SampleRate > 1<<30 {
		errs = append(errs, fmt.Errorf("dnstap.sample-rate %d: must be 1 (every exchange) to %d", c.SampleRate, 1<<30))
	}
	if c.LogQueries == nil {
		t := true
		c.LogQueries = &t
	}
	if c.LogResponses == nil {
		t := true
		c.LogResponses = &t
	}
	if !*c.LogQueries && !*c.LogResponses {
		errs = append(errs, errors.New("dnstap: log-queries and log-responses are both false; remove the [dnstap] table to log nothing"))
	}
	if c.RingSize == 0 {
		c.RingSize = dataplane.DefaultDnstapSlots
	}
	if c.RingSize < 1 || c.RingSize > dataplane.MaxDnstapSlots {
		errs = append(errs, fmt.Errorf("dnstap.ring-size %d: must be 1 to %d", c.RingSize, dataplane.MaxDnstapSlots))
	}
	f := dataplane.DnstapFilter{Sample: uint32(c.SampleRate), Queries: *c.LogQueries, Responses: *c.LogResponses}
	for _, s := range c.Rcodes {
		rc, ok := parseRcode(s)
		if !ok {
			errs = append(errs, fmt.Errorf("dnstap.rcodes %q: not an rcode (a name such as NXDOMAIN, or 0 to 63)", s))
			continue
		}
		f.Rcodes |= 1 << rc
	}
	for _, s := range c.Qtypes {
		t, ok := parseQtype(s)
		if !ok {
			errs = append(errs, fmt.Errorf("dnstap.qtypes %q: not a type (a name such as AAAA, TYPE65, or a number)", s))
			continue
		}
		f.Qtypes = append(f.Qtypes, t)
	}
	c.filter = f
	return errs
}

// parseRcode reads an rcode by its mnemonic (RcodeName's) or number.
func parseRcode(s string) (uint, bool) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if n, err := strconv.ParseUint(s, 10, 8); err == nil {
		return uint(n), n < 64
	}
	for i := range rcodeNames {
		if rcodeNames[i] == s {
			return uint(i), true
		}
	}
	return 0, false
}

// parseQtype reads a query type by its mnemonic, as TYPEnnn, or as a
// number.
func parseQtype(s string) (uint16, bool) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if t, ok := dns.StringToType[s]; ok {
		return t, true
	}
	s = strings.TrimPrefix(s, "TYPE")
	n, err := strconv.ParseUint(s, 10, 16)
	return uint16(n), err == nil
}

// dnstapSlotBytes is the size of a ring slot for the largest UDP reply
// the server sends (udp-size, at least 512) and a query of up to 512
// bytes beside it; an exchange that needs more (a long query, a large
// reply over TCP) is dropped and counted rather than every slot sized for
// 64 KiB.
func dnstapSlotBytes(udpSize int) int { return max(udpSize, 512) + 512 }

// dnstapWriter drains the workers' dnstap rings in one goroutine, encodes
// each exchange as one or two dnstap messages, and writes them to the
// output in batches of up to dnstapFlushBytes.
type dnstapWriter struct {
	log   *slog.Logger
	cfg   *DnstapConfig
	wake  *dataplane.DnstapWake
	rings []*dnstapRing
	list  []*dataplane.Dnstap // the rings, for DnstapWake.Wait
	out   dnstap.Output
	// heirFile is the file an upgrade's new process opens at run, after
	// moving the old process's aside (takeFile); "" otherwise.
	heirFile string

	identity, version []byte
	buf               []byte
	// pending counts the messages of buf from each ring, added to the
	// ring's sent or lost once buf is written.
	pending []uint64

	// reopen carries a reload's request to reopen the output, answered
	// with its error.
	reopen chan chan error
	stop   chan struct{}
	done   chan struct{}
}

// dnstapRing is one worker's ring with its counts.
type dnstapRing struct {
	name string
	ring *dataplane.Dnstap
	// sent and lost count the messages written to the output and those
	// lost to it (no collector connected, a write that failed).
	sent, lost atomic.Uint64
}

// dnstapFlushBytes is how much the writer encodes before writing: large
// enough that a busy server's messages go out in few system calls, small
// enough that a message waits for nothing but the rings' drain.
const dnstapFlushBytes = 64 << 10

// dnstapIdle is how long the writer sleeps with nothing to write before
// it looks again: when the collector is away, how soon it reconnects
// without traffic.
const dnstapIdle = time.Second

// newDnstapWriter opens the output of a normalized [dnstap] table: a file
// now (an error names it), a socket at the first message or idle tick.
//
// The new process of an upgrade (heir) opens its file only when it starts
// serving (run), after moving the old process's file aside (heirFile): the
// old process writes to that file until it stops, and truncating it under
// it, as opening it at once did, lost the old process's last messages and
// left a file with two streams in it.
func newDnstapWriter(c *DnstapConfig, log *slog.Logger, heir bool) (*dnstapWriter, error) {
	w := &dnstapWriter{log: log, cfg: c, wake: dataplane.NewDnstapWake(), identity: []byte(*c.Identity),
		version: []byte(*c.Version), reopen: make(chan chan error), stop: make(chan struct{}), done: make(chan struct{})}
	if c.File != "" && heir {
		w.out, w.heirFile = dnstap.ClosedFile(c.File), c.File
	} else if c.File != "" {
		f, err := dnstap.OpenFile(c.File)
		if err != nil {
			return nil, err
		}
		w.out = f
	} else {
		w.out = dnstap.NewSocket(c.Socket, log)
	}
	return w, nil
}

// attach makes the ring of a worker (or TCP server) named name.
func (w *dnstapWriter) attach(name string, slotBytes int) (*dataplane.Dnstap, error) {
	d, err := dataplane.NewDnstap(w.cfg.RingSize, slotBytes, w.wake)
	if err != nil {
		return nil, err
	}
	f := w.cfg.filter
	d.SetFilter(&f)
	w.rings = append(w.rings, &dnstapRing{name: name, ring: d})
	w.list = append(w.list, d)
	w.pending = append(w.pending, 0)
	return d, nil
}

// run drains the rings until stop is closed, then drains them once more
// (the workers have stopped by then) and closes the output.
func (w *dnstapWriter) run() {
	defer close(w.done)
	if w.heirFile != "" {
		w.takeFile()
	}
	timer := time.NewTimer(dnstapIdle)
	defer timer.Stop()
	for {
		for w.drain() {
		}
		w.flush()
		select {
		case reply := <-w.reopen:
			reply <- w.out.Reopen()
		default:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(dnstapIdle)
		if !w.wake.Wait(w.list, w.stop, timer.C) {
			break
		}
	}
	for w.drain() {
	}
	w.flush()
	if err := w.out.Close(); err != nil {
		w.log.Warn("dnstap: closing the output", "err", err)
	}
}

// takeFile moves the file the old process of an upgrade writes aside, to
// FILE.upgraded-TIME (UTC), where it finishes its stream, and starts this
// process's file at the configured path. A failure is logged; the writes
// then fail, counted, until a reload reopens the file.
func (w *dnstapWriter) takeFile() {
	aside := w.heirFile + ".upgraded-" + time.Now().UTC().Format("20060102T150405.000")
	if err := os.Rename(w.heirFile, aside); err != nil && !errors.Is(err, fs.ErrNotExist) {
		w.log.Warn("dnstap: moving the old process's file aside", "file", w.heirFile, "err", err)
	} else if err == nil {
		w.log.Info("dnstap: the old process's file moved aside, where it finishes its stream", "file", aside)
	}
	if err := w.out.Reopen(); err != nil {
		w.log.Error("dnstap: opening the file", "err", err)
	}
}

// drain encodes what the rings hold, writing whenever dnstapFlushBytes
// are encoded. It reports whether it found anything.
func (w *dnstapWriter) drain() bool {
	found := false
	for i, r := range w.rings {
		for s := r.ring.Peek(); s != nil; s = r.ring.Peek() {
			found = true
			w.encode(i, s)
			r.ring.Release()
			if len(w.buf) >= dnstapFlushBytes {
				w.flush()
			}
		}
	}
	return found
}

// encode appends the messages of one exchange.
func (w *dnstapWriter) encode(i int, s *dataplane.DnstapSlot) {
	m := dnstap.Message{Protocol: dnstap.UDP, QueryTime: s.Time}
	if s.TCP {
		m.Protocol = dnstap.TCP
	}
	peer, dest := s.Peer.AddrPort(), s.Dest.AddrPort()
	m.QueryAddr, m.QueryPort = peer.Addr(), peer.Port()
	if a := dest.Addr(); a.IsValid() && !a.IsUnspecified() {
		// A socket bound to the wildcard address without the query's
		// destination says only its port.
		m.ResponseAddr = a
	}
	m.ResponsePort = dest.Port()
	if q := s.Query(); len(q) > 0 {
		m.Type, m.QueryMessage = dnstap.AuthQuery, q
		w.buf = dnstap.AppendFrame(w.buf, w.identity, w.version, &m)
		w.pending[i]++
	}
	if r := s.Response(); len(r) > 0 {
		m.Type, m.QueryMessage, m.ResponseMessage, m.ResponseTime = dnstap.AuthResponse, nil, r, s.Time
		w.buf = dnstap.AppendFrame(w.buf, w.identity, w.version, &m)
		w.pending[i]++
	}
}

// flush writes what was encoded (a socket output connects first if it
// must) and counts it sent or lost.
func (w *dnstapWriter) flush() {
	err := w.out.Write(w.buf)
	for i, n := range w.pending {
		if n == 0 {
			continue
		}
		if err != nil {
			w.rings[i].lost.Add(n)
		} else {
			w.rings[i].sent.Add(n)
		}
		w.pending[i] = 0
	}
	w.buf = w.buf[:0]
}

// Reopen asks the writer to reopen its output (a file is closed and
// created again, a socket retries at once) and waits for the result for
// up to twice dnstap.SocketTimeout, the longest a write in progress takes.
func (w *dnstapWriter) Reopen() error {
	reply := make(chan error, 1)
	t := time.NewTimer(2 * dnstap.SocketTimeout)
	defer t.Stop()
	w.wake.Wake()
	select {
	case w.reopen <- reply:
	case <-w.done:
		return errors.New("dnstap: the writer has stopped")
	case <-t.C:
		return errors.New("dnstap: the writer is busy writing; the output was not reopened")
	}
	return <-reply
}

// openDnstap gives every UDP worker a ring and starts nothing yet; the
// TCP servers get one each, which their connections share.
func (s *Server) openDnstap() error {
	c := s.cfg.Dnstap
	if c == nil {
		return nil
	}
	w, err := newDnstapWriter(c, s.log, s.ho != nil && s.ho.inherit != nil)
	if err != nil {
		return err
	}
	s.dnstap = w
	size := dnstapSlotBytes(s.cfg.Server.UDPSize)
	for _, ws := range s.workers {
		if ws.worker.Dnstap, err = w.attach(ws.Name, size); err != nil {
			return fmt.Errorf("dnstap: %w", err)
		}
	}
	for i, t := range s.tcp {
		d, err := w.attach("tcp"+strconv.Itoa(i), size)
		if err != nil {
			return fmt.Errorf("dnstap: %w", err)
		}
		t.srv.dnstap = d
	}
	out := c.File
	if out == "" {
		out = c.Socket
	}
	s.log.Info("dnstap", "output", out, "sample_rate", c.SampleRate, "queries", *c.LogQueries,
		"responses", *c.LogResponses, "rcodes", c.Rcodes, "qtypes", c.Qtypes, "ring_size", c.RingSize, "slot_bytes", size)
	return nil
}

// ReloadDnstap reopens the dnstap output on a reload of every zone
// (zones names none), so that a file renamed away is finished and a new
// one started, and a collector's socket is tried again at once.
func (s *Server) ReloadDnstap(zones []string) {
	if len(zones) > 0 || s.dnstap == nil {
		return
	}
	if err := s.dnstap.Reopen(); err != nil {
		s.log.Error("reload: dnstap output not reopened", "err", err)
	}
}

// dnstapCounts returns each ring's name, messages sent, lost to the
// output and dropped by the worker (full ring, exchange larger than a
// slot).
func (s *Server) dnstapCounts() []dnstapCount {
	if s.dnstap == nil {
		return nil
	}
	var out []dnstapCount
	for _, r := range s.dnstap.rings {
		out = append(out, dnstapCount{name: r.name, sent: r.sent.Load(), lost: r.lost.Load(), dropped: r.ring.Dropped()})
	}
	return out
}

type dnstapCount struct {
	name                string
	sent, lost, dropped uint64
}
