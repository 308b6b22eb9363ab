package controlplane

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/ringdns/ringdns/dataplane"
)

// echoAnswer stands in for the answer engine: it answers a query with the
// query itself with QR set, padded to the length asked for in its first
// two bytes after the header when that is set, and drops responses.
func echoAnswer(dst, q []byte, tcp bool) (int, dataplane.Result) {
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

func startTCP(t *testing.T, idle time.Duration, maxConns int) (*TCPServer, *dataplane.Counters) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctr := new(dataplane.Counters)
	s := NewTCPServer(ln, func() AnswerFunc { return echoAnswer }, idle, maxConns, ctr, quietLog())
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

func TestTCPConnectionBound(t *testing.T) {
	s, _ := startTCP(t, 5*time.Second, 2)
	var open []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// A round trip makes sure the server has accepted the connection.
		c.Write(query(uint16(i), 0))
		readReply(t, c)
		open = append(open, c)
	}
	over, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	expectClosed(t, over, 2*time.Second)
	if st := s.Stats(); st.Refused != 1 || st.Open != 2 {
		t.Errorf("stats = %+v; want 1 refused, 2 open", st)
	}

	// Closing one makes room for another.
	open[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().Open != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(query(5, 0))
	readReply(t, c)
}

func TestTCPCloseWithOpenConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewTCPServer(ln, func() AnswerFunc { return echoAnswer }, time.Minute, 4, new(dataplane.Counters), quietLog())
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
