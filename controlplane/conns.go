package controlplane

import (
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// connSet is what the TCP service and the control socket share: an accept
// loop that bounds the open connections, and a shutdown that ends every
// connection at its next read and waits for its goroutine. The zero value
// is ready to use.
type connSet struct {
	stopping atomic.Bool
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
}

// acceptLoop accepts connections from ln until it is closed. Each
// connection gets a goroutine running serve, which must call done(c) when
// it ends; one over max open connections, or arriving while the set stops,
// is closed at once and reported to refused (which may be nil).
func (s *connSet) acceptLoop(ln net.Listener, max int, log *slog.Logger, serve func(net.Conn), refused func()) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Running out of file descriptors is transient; back off a
			// little instead of spinning.
			log.Warn("accept", "addr", ln.Addr().String(), "err", err)
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if !s.admit(c, max) {
			c.Close()
			if refused != nil {
				refused()
			}
			continue
		}
		go serve(c)
	}
}

// admit adds c unless the set is stopping or already holds max connections.
// Stopping is read under the lock that stop takes after setting it, so a
// connection is either admitted before stop looks at the set, or refused.
func (s *connSet) admit(c net.Conn, max int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping.Load() || len(s.conns) >= max {
		return false
	}
	if s.conns == nil {
		s.conns = map[net.Conn]struct{}{}
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

// done removes and closes c; its goroutine ends.
func (s *connSet) done(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
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
