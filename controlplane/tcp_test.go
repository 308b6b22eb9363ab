package controlplane

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/ringdns/ringdns/dataplane"
	"github.com/ringdns/ringdns/nic"
)

// echoAnswer stands in for the answer engine: it answers a query with the
// query itself with QR set, padded to the length asked for in its first
// two bytes after the header when that is set, and drops responses.
func echoAnswer(dst, q []byte, _ *nic.Addr, tcp bool) (int, dataplane.Result) {
	if !tcp {
		panic("TCP server called Answer with tcp=false")
	}
	if q[2]&0x80 != 0 {
		return 0, dataplane.Result{Kind: dataplane.KindDrop, Drop: dataplane.DropResponse, Zone: -1}
	}
	n := len(q)
	if len(q) >= 14 {
		if want := int(binary.BigEndian.Uint16(q[12:14])); want > n {
			if want > len(dst) {
				return 0, dataplane.Result{Kind: dataplane.KindDrop, Drop: dataplane.DropNoSpace, Zone: -1}
			}
			n = want
		}
	}
	copy(dst, q) // dst and q start at the same address; copy handles it.
	dst[2] |= 0x80
	return n, dataplane.Result{Kind: dataplane.KindAnswer, Zone: 0}
}

// startTCP serves echoAnswer on a loopback port with a message timeout
// equal to the idle timeout and no per-source bounds.
func startTCP(t *testing.T, idle time.Duration, maxConns int) (*TCPServer, *dataplane.Counters) {
	t.Helper()
	return startTCPLimits(t, TCPLimits{Idle: idle, Message: idle, MaxConns: maxConns})
}

func startTCPLimits(t *testing.T, lim TCPLimits) (*TCPServer, *dataplane.Counters) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctr := new(dataplane.Counters)
	s := NewTCPServer(ln, func() AnswerFunc { return echoAnswer }, lim, ctr, quietLog())
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, ctr
}

// query is a 12-byte header with the given ID and a 2-byte "padding"
// request read by echoAnswer.
func query(id uint16, replyLen int) []byte {
	m := make([]byte, 2+14)
	binary.BigEndian.PutUint16(m[0:], 14)
	binary.BigEndian.PutUint16(m[2:], id)
	binary.BigEndian.PutUint16(m[2+12:], uint16(replyLen))
	return m
}

func readReply(t *testing.T, c net.Conn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		t.Fatalf("reading length: %v", err)
	}
	m := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, m); err != nil {
		t.Fatalf("reading reply: %v", err)
	}
	return m
}

// expectClosed waits for the server to close c, within limit.
func expectClosed(t *testing.T, c net.Conn, limit time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(limit))
	_, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v", limit)
	}
}

func TestTCPPipelinedInOrder(t *testing.T) {
	s, ctr := startTCP(t, 5*time.Second, 4)
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var batch []byte
	for id := uint16(1); id <= 20; id++ {
		batch = append(batch, query(id, 0)...)
	}
	// One write with twenty queries, the last one asking for the largest
	// reply the protocol allows.
	batch = append(batch, query(21, 65535)...)
	if _, err := c.Write(batch); err != nil {
		t.Fatal(err)
	}
	for id := uint16(1); id <= 21; id++ {
		m := readReply(t, c)
		if got := binary.BigEndian.Uint16(m); got != id || m[2]&0x80 == 0 {
			t.Fatalf("reply %d: id %d, flags %#x", id, got, m[2])
		}
		if id == 21 && len(m) != 65535 {
			t.Errorf("large reply: %d bytes, want 65535", len(m))
		}
	}
	if v := ctr.Values(); v.Queries != 21 || v.Replies != 21 {
		t.Errorf("counters: %d queries, %d replies; want 21, 21", v.Queries, v.Replies)
	}
}

func TestTCPGarbageAndStalls(t *testing.T) {
	s, _ := startTCP(t, 300*time.Millisecond, 8)
	dial := func() net.Conn {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	short := dial()
	short.Write([]byte{0, 5, 1, 2, 3, 4, 5})
	expectClosed(t, short, 2*time.Second)

	zero := dial()
	zero.Write([]byte{0, 0})
	expectClosed(t, zero, 2*time.Second)

	response := dial()
	q := query(7, 0)
	q[4] |= 0x80 // QR=1
	response.Write(q)
	expectClosed(t, response, 2*time.Second)

	// A client that sends half a message and stops is closed after the
	// idle timeout, not waited on.
	stalled := dial()
	stalled.Write([]byte{0, 100, 1, 2, 3})
	start := time.Now()
	expectClosed(t, stalled, 3*time.Second)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("stalled client closed after %v", d)
	}

	// A client that trickles a byte at a time is closed too.
	trickle := dial()
	trickle.Write([]byte{0, 100})
	go func() {
		for i := 0; i < 40; i++ {
			if _, err := trickle.Write([]byte{0}); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	expectClosed(t, trickle, 3*time.Second)

	// A silent client is closed after the idle timeout.
	expectClosed(t, dial(), 3*time.Second)

	// The server still answers.
	c := dial()
	c.Write(query(9, 0))
	if m := readReply(t, c); binary.BigEndian.Uint16(m) != 9 {
		t.Errorf("after garbage: id %d", binary.BigEndian.Uint16(m))
	}
	st := s.Stats()
	if st.Garbage < 2 || st.Timeouts < 2 {
		t.Errorf("stats = %+v; want at least 2 garbage and 2 timeouts", st)
	}
}

func TestTCPCloseWithOpenConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewTCPServer(ln, func() AnswerFunc { return echoAnswer }, TCPLimits{Idle: time.Minute, Message: time.Minute, MaxConns: 4},
		new(dataplane.Counters), quietLog())
	go s.Serve()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(query(1, 0))
	readReply(t, c)
	start := time.Now()
	s.Close()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Close took %v with an idle connection open", d)
	}
	expectClosed(t, c, 2*time.Second)
}

// TestTCPReplyNotHeldBack checks that each query is answered on its own
// (RFC 7766 section 6.2.1): a reply must go out even when the bytes that
// follow its query are the start of a query that never completes, or a
// message that ends the connection.
func TestTCPReplyNotHeldBack(t *testing.T) {
	response := query(2, 0)
	response[4] |= 0x80 // QR=1
	for _, c := range []struct {
		name string
		next []byte // sent in the same write as a complete query
		// closes says the server ends the connection after the reply;
		// otherwise it waits for the rest of next until the idle timeout.
		closes bool
	}{
		{"partial length", []byte{0}, false},
		{"partial query", query(2, 0)[:5], false},
		{"garbage frame", []byte{0, 5, 1, 2, 3, 4, 5}, true},
		{"zero-length frame", []byte{0, 0}, true},
		{"response", response, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The idle timeout is longer than the wait for the reply, so a
			// reply held back until the connection ends is not mistaken
			// for one sent on time.
			s, _ := startTCP(t, 4*time.Second, 4)
			conn, err := net.Dial("tcp", s.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write(append(query(1, 0), c.next...)); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			var l [2]byte
			if _, err := io.ReadFull(conn, l[:]); err != nil {
				t.Fatalf("no reply to the complete query within 2 s: %v", err)
			}
			m := make([]byte, binary.BigEndian.Uint16(l[:]))
			if _, err := io.ReadFull(conn, m); err != nil || binary.BigEndian.Uint16(m) != 1 {
				t.Fatalf("reply: %x, %v; want id 1", m, err)
			}
			if c.closes {
				expectClosed(t, conn, 2*time.Second)
			}
		})
	}
}

// TestTCPReplyBeforeIdleClose sends a query and the start of another that
// never completes: the first reply must reach the client before the idle
// timeout closes the connection.
func TestTCPReplyBeforeIdleClose(t *testing.T) {
	s, _ := startTCP(t, 300*time.Millisecond, 4)
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(append(query(1, 0), 0, 14, 0)); err != nil {
		t.Fatal(err)
	}
	// Wait for the close first, reading everything sent before it.
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("connection not closed cleanly after the idle timeout: %v", err)
	}
	if len(got) != 2+14 || binary.BigEndian.Uint16(got[2:]) != 1 {
		t.Fatalf("before the close the server sent %x, want the reply to query 1", got)
	}
}

// dialFrom connects to s from the loopback address src, so that a test
// can play several sources: all of 127/8 is local.
func dialFrom(t *testing.T, s *TCPServer, src string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip asks query id on c and checks the reply.
func roundTrip(t *testing.T, c net.Conn, id uint16) {
	t.Helper()
	if _, err := c.Write(query(id, 0)); err != nil {
		t.Fatalf("query %d: %v", id, err)
	}
	if m := readReply(t, c); binary.BigEndian.Uint16(m) != id {
		t.Fatalf("reply to query %d has id %d", id, binary.BigEndian.Uint16(m))
	}
}

// idleConns counts the server's idle connections.
func idleConns(s *TCPServer) int {
	s.conns.mu.Lock()
	defer s.conns.mu.Unlock()
	n := 0
	for e := s.conns.idle.oldest; e != nil; e = e.links[linkAll].next {
		n++
	}
	return n
}

// waitIdle waits until the server counts want idle connections: a client
// has its reply a moment before the server marks the connection idle, and
// the tests need to know which connection has been idle longest.
func waitIdle(t *testing.T, s *TCPServer, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for idleConns(s) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d idle connections after 5 s, want %d", idleConns(s), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// partial is the first three bytes of query 99: a connection that has
// sent it is busy until the rest arrives.
var partial = query(99, 0)[:3]

// finish sends the rest of query 99 on a connection that sent partial and
// checks the reply.
func finish(t *testing.T, c net.Conn) {
	t.Helper()
	if _, err := c.Write(query(99, 0)[3:]); err != nil {
		t.Fatal(err)
	}
	if m := readReply(t, c); binary.BigEndian.Uint16(m) != 99 {
		t.Fatalf("reply to query 99 has id %d", binary.BigEndian.Uint16(m))
	}
}

// TestTCPMessageTimeout checks that a query begun must be complete within
// the message timeout, far shorter than the idle timeout, while a client
// that sends its query in pieces within it, or waits between queries, is
// served.
func TestTCPMessageTimeout(t *testing.T) {
	// The idle timeout is far longer than the test, so only the message
	// timeout can close a connection here. The message timeout is four
	// times the gap the slow client leaves, which a loaded machine does not
	// stretch that far.
	const message = 2 * time.Second
	s, _ := startTCPLimits(t, TCPLimits{Idle: time.Minute, Message: message, MaxConns: 8})
	silent := dialFrom(t, s, "127.0.0.1")
	roundTrip(t, silent, 1)

	slow := dialFrom(t, s, "127.0.0.1")
	q := query(2, 0)
	slow.Write(q[:1])
	time.Sleep(message / 4)
	slow.Write(q[1:7])
	time.Sleep(message / 4)
	slow.Write(q[7:])
	if m := readReply(t, slow); binary.BigEndian.Uint16(m) != 2 {
		t.Fatalf("slow client: reply id %d", binary.BigEndian.Uint16(m))
	}

	for _, c := range []struct {
		name string
		send []byte
		want int // replies before the close
	}{
		{"half a length", []byte{0}, 0},
		{"half a query", query(3, 0)[:9], 0},
		{"a query and half of the next", append(query(3, 0), query(4, 0)[:9]...), 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := s.Stats().Timeouts
			conn := dialFrom(t, s, "127.0.0.1")
			start := time.Now()
			conn.Write(c.send)
			for i := 0; i < c.want; i++ {
				readReply(t, conn)
			}
			expectClosed(t, conn, 10*time.Second)
			if d := time.Since(start); d < message/2 {
				t.Errorf("closed after %v, before the message timeout of %v", d, message)
			}
			deadline := time.Now().Add(5 * time.Second)
			for s.Stats().Timeouts == before && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if s.Stats().Timeouts != before+1 {
				t.Errorf("timeouts %d, want %d", s.Stats().Timeouts, before+1)
			}
		})
	}
	// The connection that waited between its queries all along is open.
	roundTrip(t, silent, 5)
}

// TestTCPEvictsIdleWhenFull fills the table: a new connection takes the
// place of the one idle longest, and is refused only when none is idle.
func TestTCPEvictsIdleWhenFull(t *testing.T) {
	s, _ := startTCPLimits(t, TCPLimits{Idle: time.Minute, Message: time.Minute, MaxConns: 2})
	a := dialFrom(t, s, "127.0.0.1")
	roundTrip(t, a, 1)
	waitIdle(t, s, 1)
	b := dialFrom(t, s, "127.0.0.1")
	roundTrip(t, b, 2)
	waitIdle(t, s, 2)
	// a has been idle longest; it makes room for c.
	c := dialFrom(t, s, "127.0.0.1")
	roundTrip(t, c, 3)
	expectClosed(t, a, 2*time.Second)
	roundTrip(t, b, 4)
	if st := s.Stats(); st.Evicted != 1 || st.Refused != 0 || st.Open != 2 {
		t.Errorf("stats = %+v; want 1 evicted, none refused, 2 open", st)
	}

	// With both busy mid-query, a new connection is refused at once and
	// theirs are kept.
	b.Write(partial)
	c.Write(partial)
	waitIdle(t, s, 0)
	d := dialFrom(t, s, "127.0.0.1")
	expectClosed(t, d, 2*time.Second)
	finish(t, b)
	finish(t, c)
	if st := s.Stats(); st.Evicted != 1 || st.Refused != 1 || st.Open != 2 {
		t.Errorf("stats = %+v; want 1 evicted, 1 refused, 2 open", st)
	}
}

// TestTCPPerAddressBound bounds the connections of one address: a new
// connection over it takes the place of that address's connection idle
// longest, not another address's, and is refused when all of the
// address's are busy. The prefix and table bounds are out of reach.
func TestTCPPerAddressBound(t *testing.T) {
	s, _ := startTCPLimits(t, TCPLimits{Idle: time.Minute, Message: time.Minute, MaxConns: 10, PerAddr: 2, PerPrefix: 10})
	a := dialFrom(t, s, "127.0.0.2")
	roundTrip(t, a, 1)
	waitIdle(t, s, 1)
	b := dialFrom(t, s, "127.0.0.2")
	roundTrip(t, b, 2)
	waitIdle(t, s, 2)
	c := dialFrom(t, s, "127.0.0.3")
	roundTrip(t, c, 3)
	waitIdle(t, s, 3)

	d := dialFrom(t, s, "127.0.0.2")
	roundTrip(t, d, 4)
	expectClosed(t, a, 2*time.Second)
	roundTrip(t, b, 5)
	roundTrip(t, c, 6)
	if st := s.Stats(); st.Evicted != 1 || st.PerSource != 0 || st.Open != 3 {
		t.Errorf("stats = %+v; want 1 evicted, none refused, 3 open", st)
	}

	b.Write(partial)
	d.Write(partial)
	waitIdle(t, s, 1) // c
	e := dialFrom(t, s, "127.0.0.2")
	expectClosed(t, e, 2*time.Second)
	// Another address is still welcome, and the busy connections are kept.
	roundTrip(t, dialFrom(t, s, "127.0.0.3"), 7)
	finish(t, b)
	finish(t, d)
	roundTrip(t, c, 8)
	if st := s.Stats(); st.Evicted != 1 || st.PerSource != 1 || st.Refused != 0 {
		t.Errorf("stats = %+v; want 1 evicted, 1 refused per source", st)
	}
}

// TestTCPPerPrefixBound bounds the connections of one /24, from addresses
// each under their own bound: a new connection over it takes the place of
// the /24's connection idle longest, whichever address holds it, and
// another /24 is not affected.
func TestTCPPerPrefixBound(t *testing.T) {
	s, _ := startTCPLimits(t, TCPLimits{Idle: time.Minute, Message: time.Minute, MaxConns: 10, PerAddr: 10, PerPrefix: 3})
	var conns []net.Conn
	for i, src := range []string{"127.0.0.2", "127.0.0.2", "127.0.0.3"} {
		c := dialFrom(t, s, src)
		roundTrip(t, c, uint16(i))
		waitIdle(t, s, i+1)
		conns = append(conns, c)
	}
	a, b, c := conns[0], conns[1], conns[2]

	d := dialFrom(t, s, "127.0.0.4")
	roundTrip(t, d, 10)
	expectClosed(t, a, 2*time.Second)
	other := dialFrom(t, s, "127.0.1.2")
	roundTrip(t, other, 11)
	roundTrip(t, b, 12)
	roundTrip(t, c, 13)
	if st := s.Stats(); st.Evicted != 1 || st.PerSource != 0 || st.Open != 4 {
		t.Errorf("stats = %+v; want 1 evicted, none refused, 4 open", st)
	}

	for _, busy := range []net.Conn{b, c, d} {
		busy.Write(partial)
	}
	waitIdle(t, s, 1) // other
	e := dialFrom(t, s, "127.0.0.5")
	expectClosed(t, e, 2*time.Second)
	roundTrip(t, dialFrom(t, s, "127.0.1.3"), 14)
	for _, busy := range []net.Conn{b, c, d} {
		finish(t, busy)
	}
	if st := s.Stats(); st.Evicted != 1 || st.PerSource != 1 || st.Refused != 0 {
		t.Errorf("stats = %+v; want 1 evicted, 1 refused per source", st)
	}
}

// TestSourceOf checks the source address and prefix a connection is
// counted under.
func TestSourceOf(t *testing.T) {
	for _, c := range []struct {
		remote net.Addr
		addr   string
		prefix string
	}{
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.77"), Port: 53}, "192.0.2.77", "192.0.2.0/24"},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.77"), Port: 53}, "192.0.2.77", "192.0.2.0/24"},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2ff:1::1"), Port: 53}, "2001:db8:1:2ff:1::1", "2001:db8:1:200::/56"},
		{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Zone: "eth0", Port: 53}, "fe80::1", "fe80::/56"},
		{&net.UnixAddr{Name: "/run/x.sock", Net: "unix"}, "", ""},
	} {
		addr, prefix, ok := sourceOf(fakeConn{remote: c.remote})
		if c.addr == "" {
			if ok {
				t.Errorf("%v: source %v %v, want none", c.remote, addr, prefix)
			}
			continue
		}
		if !ok || addr.String() != c.addr || prefix.String() != c.prefix {
			t.Errorf("%v: source %v %v (%v), want %s %s", c.remote, addr, prefix, ok, c.addr, c.prefix)
		}
	}
}

// fakeConn is a net.Conn with only a remote address.
type fakeConn struct {
	net.Conn
	remote net.Addr
}

func (c fakeConn) RemoteAddr() net.Addr { return c.remote }
