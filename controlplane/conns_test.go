package controlplane

import (
	"net"
	"testing"
	"time"
)

// TestConnSetEvictsQuietLongest: the connection evicted to make room is
// the one that has had nothing in hand longest, even when its goroutine
// marked it idle after a newer connection was admitted. A TCP client gets
// its reply before the goroutine that flushed it marks the connection
// idle, and may open its next connection in between; on a loaded machine
// the e2e TCP test saw the newer connection evicted in its place.
func TestConnSetEvictsQuietLongest(t *testing.T) {
	pipe := func() net.Conn {
		c, peer := net.Pipe()
		t.Cleanup(func() { c.Close(); peer.Close() })
		return c
	}
	var s connSet
	lim := connLimits{max: 3, evictIdle: true}
	a, b, c, d := pipe(), pipe(), pipe(), pipe()
	ea, _, _ := s.admit(a, lim)
	s.setIdle(ea, false, time.Time{}) // a query arrives on a
	replied := time.Now().Add(-time.Millisecond)
	// The client has a's reply and opens b and c; only then does a's
	// goroutine mark a idle, as quiet since its reply.
	s.admit(b, lim)
	s.admit(c, lim)
	if !s.setIdle(ea, true, replied) {
		t.Fatal("a was evicted")
	}
	_, adm, victim := s.admit(d, lim)
	if adm != admittedEvicting || victim != a {
		t.Fatalf("admission %v evicted %v; want a (%v), quiet since before b and c were opened", adm, victim, a)
	}
	// The lists stay whole: b and c go next, in their order.
	for _, want := range []net.Conn{b, c} {
		if _, _, victim := s.admit(pipe(), lim); victim != want {
			t.Fatalf("evicted %v, want %v", victim, want)
		}
	}
}
