package controlplane

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// connSet is what the TCP service and the control socket share: an accept
// loop that bounds the open connections, and a shutdown that ends every
// connection at its next read and waits for its goroutine. The zero value
// is ready to use.
//
// The TCP service also bounds the connections of one source (an address,
// and the /24 or /56 around it), and makes room for a new connection by
// closing the one that has been idle longest. A connection is idle while
// its server waits for the first byte of a message with nothing in hand:
// no part of a message read and no reply unsent. Closing it loses nothing
// the client has not been told (RFC 7766 section 6.2.3 lets a server close
// idle connections; the client reconnects).
type connSet struct {
	stopping atomic.Bool
	mu       sync.Mutex
	conns    map[net.Conn]*connEntry
	idle     connList // every idle connection, the longest idle first
	addrs    map[netip.Addr]*connSource
	prefixes map[netip.Prefix]*connSource
	wg       sync.WaitGroup

	// retry paces the accept loop when accepting fails.
	retry acceptRetry
}

// acceptRetry paces an accept loop whose Accept fails, and keeps it from
// flooding the log. Running out of file descriptors is the usual failure
// and a transient one: the loop pauses, for longer each time up to max,
// and tries again. It warns at the first failure and then at most once
// per every, saying how many failures it did not report. The zero value
// uses the defaults below; only the accept loop's goroutine uses it.
type acceptRetry struct {
	min, max, every time.Duration

	pause    time.Duration // the pause after the last failure, 0 after a success
	warned   time.Time     // when the last warning was logged
	unlogged int           // failures since then
}

// Defaults of acceptRetry. A pause of at most 100 ms costs nothing while
// descriptors are short, and delays a connection waiting in the listen
// queue by no more than that once they are back.
const (
	acceptPauseMin   = 5 * time.Millisecond
	acceptPauseMax   = 100 * time.Millisecond
	acceptWarnPeriod = 10 * time.Second
)

// failed records a failed Accept on ln, warns when due, and pauses.
func (r *acceptRetry) failed(log *slog.Logger, ln net.Listener, err error) {
	if r.min == 0 {
		r.min, r.max, r.every = acceptPauseMin, acceptPauseMax, acceptWarnPeriod
	}
	r.pause = min(max(2*r.pause, r.min), r.max)
	r.unlogged++
	if now := time.Now(); r.warned.IsZero() || now.Sub(r.warned) >= r.every {
		log.Warn("accepting connections failed; retrying", "addr", ln.Addr().String(), "err", err,
			"failures", r.unlogged, "pause", r.pause, "next_warning_in", r.every)
		r.warned, r.unlogged = now, 0
	}
	time.Sleep(r.pause)
}

// succeeded ends a run of failures: the next one pauses briefly again.
func (r *acceptRetry) succeeded() { r.pause = 0 }

// connLimits bound a connSet's connections. A zero per-source bound is no
// bound.
type connLimits struct {
	max       int // connections open at once
	perAddr   int // from one address
	perPrefix int // from one /24 (IPv4) or /56 (IPv6)
	// evictIdle makes a new connection over a bound close the connection
	// idle longest within that bound (the source's, or the whole set's)
	// instead of being refused. It is refused only when none there is
	// idle.
	evictIdle bool
}

// Source prefixes: the blocks one operator usually holds. A /24 is the
// smallest IPv4 block routed on the Internet; a /56 is the usual IPv6
// assignment to one site (RFC 6177), where an attacker may pick any of
// 2^72 addresses.
const (
	sourcePrefix4 = 24
	sourcePrefix6 = 56
)

// admission is what admit decided about a new connection.
type admission int

const (
	admitted         admission = iota
	admittedEvicting           // admitted after closing an idle connection
	refusedFull                // the set is full of busy connections, or stopping
	refusedSource              // the source's address or prefix is at its bound, all busy
)

// connEntry is one open connection of a connSet.
type connEntry struct {
	conn    net.Conn
	addr    netip.Addr   // invalid when the peer has no IP address (Unix sockets)
	prefix  netip.Prefix // the block around addr
	idle    bool         // on the idle lists
	evicted bool         // closed to make room; no longer in the set
	// quiet is when the connection last had nothing in hand: when it was
	// admitted, or when its last reply was queued. The idle lists are in
	// its order, which is not the order in which the connections' goroutines
	// get round to marking them idle: a client may have its reply, and open
	// another connection, before the goroutine that sent the reply runs on.
	quiet time.Time
	// links are the entry's places in the idle lists: the set's, its
	// prefix's and its address's.
	links [3]connLink
}

// Indices of connEntry.links.
const (
	linkAll = iota
	linkPrefix
	linkAddr
)

type connLink struct{ prev, next *connEntry }

// connList is a list of idle entries threaded through one of their links,
// quiet longest first. Moving a connection between idle and busy allocates
// nothing.
type connList struct{ oldest, newest *connEntry }

// push inserts e in the order of quiet. It walks back from the newest
// entry, which is nearly always where e goes: only the entries that went
// quiet while e's goroutine was on its way here are passed over.
func (l *connList) push(e *connEntry, k int) {
	prev := l.newest
	for prev != nil && prev.quiet.After(e.quiet) {
		prev = prev.links[k].prev
	}
	var next *connEntry
	if prev != nil {
		next = prev.links[k].next
		prev.links[k].next = e
	} else {
		next = l.oldest
		l.oldest = e
	}
	if next != nil {
		next.links[k].prev = e
	} else {
		l.newest = e
	}
	e.links[k] = connLink{prev: prev, next: next}
}

func (l *connList) remove(e *connEntry, k int) {
	p, n := e.links[k].prev, e.links[k].next
	if p != nil {
		p.links[k].next = n
	} else {
		l.oldest = n
	}
	if n != nil {
		n.links[k].prev = p
	} else {
		l.newest = p
	}
	e.links[k] = connLink{}
}

// connSource counts the connections of one address or prefix.
type connSource struct {
	n    int
	idle connList
}

// sourceOf returns the address of c's peer, without a zone and with an
// IPv4-mapped address unmapped, and the prefix around it; ok is false when
// the peer has no IP address.
func sourceOf(c net.Conn) (addr netip.Addr, prefix netip.Prefix, ok bool) {
	ta, isTCP := c.RemoteAddr().(*net.TCPAddr)
	if !isTCP {
		return netip.Addr{}, netip.Prefix{}, false
	}
	addr = ta.AddrPort().Addr().Unmap().WithZone("")
	if !addr.IsValid() {
		return netip.Addr{}, netip.Prefix{}, false
	}
	bits := sourcePrefix6
	if addr.Is4() {
		bits = sourcePrefix4
	}
	prefix, _ = addr.Prefix(bits)
	return addr, prefix, true
}

// acceptLoop accepts connections from ln until it is closed. Each
// connection gets a goroutine running serve, which must call done(c) when
// it ends; one over max open connections, or arriving while the set stops,
// is closed at once and reported to refused (which may be nil).
func (s *connSet) acceptLoop(ln net.Listener, max int, log *slog.Logger, serve func(net.Conn), refused func()) {
	s.acceptLimited(ln, connLimits{max: max}, log, func(e *connEntry) { serve(e.conn) }, func(a admission) {
		if a >= refusedFull && refused != nil {
			refused()
		}
	})
}

// acceptLimited is acceptLoop under lim: serve gets the connection's entry,
// for setIdle, and must call done(e.conn) when it ends. Every admission is
// reported to note.
func (s *connSet) acceptLimited(ln net.Listener, lim connLimits, log *slog.Logger, serve func(*connEntry), note func(admission)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.retry.failed(log, ln, err)
			continue
		}
		s.retry.succeeded()
		e, a, victim := s.admit(c, lim)
		if victim != nil {
			victim.Close()
		}
		note(a)
		if e == nil {
			c.Close()
			continue
		}
		go serve(e)
	}
}

// admit adds c unless the set is stopping or a bound of lim refuses it,
// and returns its entry. When it closes an idle connection to make room,
// it returns that connection for the caller to close outside the lock.
// Stopping is read under the lock that stop takes after setting it, so a
// connection is either admitted before stop looks at the set, or refused.
func (s *connSet) admit(c net.Conn, lim connLimits) (e *connEntry, a admission, victim net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping.Load() {
		return nil, refusedFull, nil
	}
	e = &connEntry{conn: c}
	var addr, prefix *connSource
	if lim.perAddr > 0 || lim.perPrefix > 0 {
		var ok bool
		if e.addr, e.prefix, ok = sourceOf(c); ok {
			addr, prefix = s.addrs[e.addr], s.prefixes[e.prefix]
		}
	}
	// The narrowest bound goes first: a victim taken there frees a place
	// in the wider ones too, since it shares the new connection's address
	// (and so its prefix).
	a = admitted
	for _, b := range [...]struct {
		src   *connSource
		bound int
	}{{addr, lim.perAddr}, {prefix, lim.perPrefix}} {
		if b.src == nil || b.bound <= 0 || b.src.n < b.bound {
			continue
		}
		v := b.src.idle.oldest
		if !lim.evictIdle || v == nil {
			return nil, refusedSource, nil
		}
		s.evict(v)
		victim, a = v.conn, admittedEvicting
	}
	if len(s.conns) >= lim.max {
		v := s.idle.oldest
		if !lim.evictIdle || v == nil {
			return nil, refusedFull, nil
		}
		s.evict(v)
		victim, a = v.conn, admittedEvicting
	}

	if s.conns == nil {
		s.conns = map[net.Conn]*connEntry{}
		s.addrs = map[netip.Addr]*connSource{}
		s.prefixes = map[netip.Prefix]*connSource{}
	}
	s.conns[c] = e
	if e.addr.IsValid() {
		// The lookups above may predate the maps or the eviction of the
		// source's last connection, so they are repeated.
		if addr = s.addrs[e.addr]; addr == nil {
			addr = new(connSource)
			s.addrs[e.addr] = addr
		}
		if prefix = s.prefixes[e.prefix]; prefix == nil {
			prefix = new(connSource)
			s.prefixes[e.prefix] = prefix
		}
		addr.n++
		prefix.n++
	}
	// A new connection has nothing in hand: it is idle until its first
	// byte arrives.
	s.markIdle(e, true, time.Now())
	s.wg.Add(1)
	return e, a, victim
}

// evict takes the idle entry v out of the set; its goroutine sees that
// when it next calls setIdle, or fails on the closed connection first.
// The caller holds the lock and closes v.conn.
func (s *connSet) evict(v *connEntry) {
	s.remove(v)
	v.evicted = true
}

// remove takes e out of the set, its lists and its sources' counts. The
// caller holds the lock.
func (s *connSet) remove(e *connEntry) {
	s.markIdle(e, false, time.Time{})
	delete(s.conns, e.conn)
	if !e.addr.IsValid() {
		return
	}
	if a := s.addrs[e.addr]; a != nil {
		if a.n--; a.n == 0 {
			delete(s.addrs, e.addr)
		}
	}
	if p := s.prefixes[e.prefix]; p != nil {
		if p.n--; p.n == 0 {
			delete(s.prefixes, e.prefix)
		}
	}
}

// markIdle puts e on the idle lists, in the place its quiet time gives
// it, or takes it off them. The caller holds the lock.
func (s *connSet) markIdle(e *connEntry, idle bool, quiet time.Time) {
	if e.idle == idle {
		return
	}
	e.idle = idle
	if idle {
		e.quiet = quiet
	}
	lists := [3]*connList{linkAll: &s.idle}
	if e.addr.IsValid() {
		if p := s.prefixes[e.prefix]; p != nil {
			lists[linkPrefix] = &p.idle
		}
		if a := s.addrs[e.addr]; a != nil {
			lists[linkAddr] = &a.idle
		}
	}
	for k, l := range lists {
		if l == nil {
			continue
		}
		if idle {
			l.push(e, k)
		} else {
			l.remove(e, k)
		}
	}
}

// setIdle records whether e's connection is idle, and when idle, since
// when it has had nothing in hand (see connEntry.quiet). It returns false
// when the connection was evicted: its goroutine must end without touching
// it further.
func (s *connSet) setIdle(e *connEntry, idle bool, quiet time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.evicted {
		return false
	}
	s.markIdle(e, idle, quiet)
	return true
}

// setConnIdle is setIdle for the connection c, for a server that learns
// of its connections' state by connection (net/http's ConnState). A
// connection no longer in the set is left alone.
func (s *connSet) setConnIdle(c net.Conn, idle bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.conns[c]; e != nil {
		s.markIdle(e, idle, time.Now())
	}
}

// done removes and closes c; its goroutine ends.
func (s *connSet) done(c net.Conn) {
	s.mu.Lock()
	if e := s.conns[c]; e != nil {
		s.remove(e)
	}
	s.mu.Unlock()
	c.Close()
	s.wg.Done()
}

// stopped reports whether stop has begun. A connection checks it after
// setting its own read deadline: either stop's deadline comes later and
// wins, or the connection sees stopped here and ends, so a deadline set by
// a connection never outlasts stop.
func (s *connSet) stopped() bool { return s.stopping.Load() }

// stop refuses new connections and makes every open one end at its next
// read; a request in progress still gets its reply, written under a
// deadline of its own.
func (s *connSet) stop() {
	s.stopping.Store(true)
	s.mu.Lock()
	for c := range s.conns {
		c.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()
}

// wait waits for the connections' goroutines. After limit (none when 0) it
// closes the connections still open under them, a reply that cannot be
// written included, and waits again.
func (s *connSet) wait(limit time.Duration) {
	if limit <= 0 {
		s.wg.Wait()
		return
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		<-done
	}
}

// open is the number of open connections.
func (s *connSet) open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
