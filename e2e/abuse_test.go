package e2e

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/controlplane/control"
)

// TestControlGarbage writes garbage to the control socket: every bad line
// gets an error reply on the same connection, which keeps working, and the
// daemon keeps serving.
func TestControlGarbage(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "-zone", "example.="+exampleZone())
	c, err := net.DialTimeout("unix", d.control, queryTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	roundTrip := func(line []byte) control.Reply {
		t.Helper()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(append(line, '\n')); err != nil {
			t.Fatalf("writing %q: %v", line, err)
		}
		reply, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatalf("no reply to %q: %v", line, err)
		}
		var rep control.Reply
		if err := json.Unmarshal(reply, &rep); err != nil {
			t.Fatalf("reply to %q is not JSON: %v: %q", line, err, reply)
		}
		return rep
	}
	for _, c := range []struct {
		line string
		want string
	}{
		{"hello", "bad request"},
		{"{", "bad request"},
		{`{"cmd":"status","extra":1}`, "unknown field"},
		{`{"cmd":42}`, "bad request"},
		{`{"cmd":"status"} {"cmd":"zones"}`, "one JSON object per line"},
		{`{"cmd":""}`, "missing cmd"},
		{`{"cmd":"shutdown"}`, "unknown command"},
		{`{"cmd":"stats","zones":["x."]}`, "stats takes no zones"},
		{"\x00\x01\x02\xff\xfe", "bad request"},
		{`[1,2,3]`, "bad request"},
		{`null`, "missing cmd"},
	} {
		rep := roundTrip([]byte(c.line))
		if rep.OK || !strings.Contains(rep.Error, c.want) {
			t.Errorf("%q: reply %+v, want an error with %q", c.line, rep, c.want)
		}
	}
	if rep := roundTrip([]byte(`{"cmd":"status"}`)); !rep.OK {
		t.Errorf("status after the garbage: %+v", rep)
	}

	// A line over the limit gets an error and the connection is closed.
	big, err := net.DialTimeout("unix", d.control, queryTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	big.SetDeadline(time.Now().Add(10 * time.Second))
	go big.Write(bytes.Repeat([]byte("x"), control.MaxRequest+10))
	reply, _ := bufio.NewReader(big).ReadBytes('\n')
	if !strings.Contains(string(reply), "longer than") {
		t.Errorf("oversized request: reply %q", reply)
	}
	// A client that connects and closes at once bothers nobody.
	for i := 0; i < 20; i++ {
		if c, err := net.Dial("unix", d.control); err == nil {
			c.Close()
		}
	}
	if out, code := d.ringctl("status"); code != 0 {
		t.Errorf("ringctl status after the garbage: exit %d\n%s", code, out)
	}
	mustExchange(t, d.addr(false), false, "example.", dns.TypeSOA)
	d.alive()
}

// TestUDPGarbage sends malformed datagrams: none may get a reply that is
// not a DNS message, and the daemon keeps answering.
func TestUDPGarbage(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "-zone", "example.="+exampleZone())
	rng := rand.New(rand.NewPCG(1, 2))
	q := new(dns.Msg)
	q.SetQuestion("www.example.", dns.TypeA)
	valid, _ := q.Pack()
	resp := append([]byte(nil), valid...)
	resp[2] |= 0x80 // QR: a response, which a server must not answer
	var datagrams [][]byte
	datagrams = append(datagrams, []byte{}, []byte{0}, valid[:11], valid[:12], valid[:len(valid)-1], resp,
		bytes.Repeat([]byte{0xff}, 512), bytes.Repeat([]byte{0xc0, 0x0c}, 300))
	for i := 0; i < 200; i++ {
		b := make([]byte, rng.IntN(600))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		datagrams = append(datagrams, b)
	}
	// Valid queries with random bytes flipped exercise the parser deeper
	// than pure noise does.
	for i := 0; i < 200; i++ {
		b := append([]byte(nil), valid...)
		for k := 0; k < 1+rng.IntN(4); k++ {
			b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
		}
		datagrams = append(datagrams, b)
	}
	for _, v6 := range []bool{false, true} {
		addr := d.addr(v6)
		conn, err := net.DialUDP(netOf(false, v6), nil, net.UDPAddrFromAddrPort(addr))
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range datagrams {
			if _, err := conn.Write(b); err != nil {
				t.Fatal(err)
			}
		}
		// Whatever came back must be a DNS response.
		buf := make([]byte, 65536)
		for {
			conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			n, err := conn.Read(buf)
			if err != nil {
				break
			}
			var m dns.Msg
			if n < 12 || buf[2]&0x80 == 0 {
				t.Errorf("reply of %d bytes that is not a DNS response: %x", n, buf[:n])
			} else if err := m.Unpack(buf[:n]); err != nil && n >= 12 && buf[3]&0xf != dns.RcodeFormatError {
				t.Errorf("reply that does not parse (%v): %x", err, buf[:n])
			}
		}
		conn.Close()
		if err := exampleCases[1].check(mustExchange(t, addr, false, "www.example.", dns.TypeA)); err != nil {
			t.Error(err)
		}
	}
	var s control.Stats
	d.ctlJSON(&s, "stats")
	if s.Total.Queries < 400 {
		t.Errorf("stats count %d queries after %d garbage datagrams per address", s.Total.Queries, len(datagrams))
	}
	d.alive()
}

// tcpConfig writes a configuration with short TCP limits, so that the idle
// timeout and the connection bound can be seen within the test's time.
func tcpConfig(t *testing.T, idle string, maxConns int) string {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "tcp.toml")
	writeFileAtomic(t, conf, fmt.Sprintf("[server]\ntcp-idle-timeout = %q\ntcp-max-connections = %d\n"+
		"[[zone]]\norigin = \"example.\"\nfile = %q\n", idle, maxConns, exampleZone()))
	return conf
}

// expectClosedWithin reads from c until the server closes it and fails the
// test when that takes longer than limit or data arrives.
func expectClosedWithin(t *testing.T, c net.Conn, limit time.Duration, what string) time.Duration {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(start.Add(limit))
	var b [1]byte
	n, err := c.Read(b[:])
	took := time.Since(start)
	var ne net.Error
	switch {
	case n > 0:
		t.Errorf("%s: the server sent data instead of closing", what)
	case errors.As(err, &ne) && ne.Timeout():
		t.Errorf("%s: still open after %v", what, limit)
	case err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset"):
		t.Errorf("%s: %v", what, err)
	}
	return took
}

// TestTCP checks RFC 7766 behaviour on the daemon: pipelined queries
// answered in order, idle clients closed after the idle timeout and
// stalled ones after the message timeout, garbage closed at once, and the
// connection bound.
func TestTCP(t *testing.T) {
	t.Parallel()
	const idle = time.Second
	d := startDaemon(t, "-config", tcpConfig(t, "1s", 4))
	addr := d.addr(false).String()
	dial := func() net.Conn {
		t.Helper()
		c, err := net.DialTimeout("tcp", addr, queryTimeout)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	t.Run("pipelined", func(t *testing.T) {
		c := dial()
		var batch []byte
		var ids []uint16
		for i := 0; i < 30; i++ {
			cs := exampleCases[i%len(exampleCases)]
			q := new(dns.Msg)
			q.SetQuestion(cs.name, cs.qtype)
			q.Id = uint16(1000 + i)
			b, _ := q.Pack()
			batch = binary.BigEndian.AppendUint16(batch, uint16(len(b)))
			batch = append(batch, b...)
			ids = append(ids, q.Id)
		}
		// Written in odd-sized pieces, so that messages and even length
		// fields straddle reads.
		c.SetDeadline(time.Now().Add(10 * time.Second))
		for off := 0; off < len(batch); off += 37 {
			if _, err := c.Write(batch[off:min(off+37, len(batch))]); err != nil {
				t.Fatal(err)
			}
		}
		r := bufio.NewReader(c)
		for i, id := range ids {
			var l [2]byte
			if _, err := io.ReadFull(r, l[:]); err != nil {
				t.Fatalf("reply %d: %v", i, err)
			}
			b := make([]byte, binary.BigEndian.Uint16(l[:]))
			if _, err := io.ReadFull(r, b); err != nil {
				t.Fatalf("reply %d: %v", i, err)
			}
			var m dns.Msg
			if err := m.Unpack(b); err != nil {
				t.Fatalf("reply %d: %v", i, err)
			}
			if m.Id != id {
				t.Fatalf("reply %d has id %d, want %d: replies out of order", i, m.Id, id)
			}
			if err := exampleCases[i%len(exampleCases)].check(&m); err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("idle", func(t *testing.T) {
		c := dial()
		if took := expectClosedWithin(t, c, idle+5*time.Second, "idle connection"); took < idle/2 {
			t.Errorf("idle connection closed after %v, before the %v timeout", took, idle)
		}
	})
	t.Run("stalled", func(t *testing.T) {
		c := dial()
		// Half a query, then silence.
		c.Write([]byte{0, 40, 0x12, 0x34, 0, 0, 0})
		expectClosedWithin(t, c, idle+5*time.Second, "connection stalled mid-query")
	})
	t.Run("trickle", func(t *testing.T) {
		// A byte every 300 ms keeps the connection busy but never completes
		// a query within the timeout.
		c := dial()
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			tick := time.NewTicker(300 * time.Millisecond)
			defer tick.Stop()
			c.Write([]byte{0, 100})
			for i := 0; i < 30; i++ {
				select {
				case <-stop:
					return
				case <-tick.C:
					if _, err := c.Write([]byte{0}); err != nil {
						return
					}
				}
			}
		}()
		expectClosedWithin(t, c, idle+5*time.Second, "trickling connection")
	})
	t.Run("garbage", func(t *testing.T) {
		// Garbage is closed at once, which the counter tells apart from
		// the idle timeout that would close the connection anyway.
		var before control.Stats
		d.ctlJSON(&before, "stats")
		garbage := [][]byte{
			{0, 3, 1, 2, 3}, // shorter than a header
			{0, 0},          // an empty message
			append([]byte{0, 12}, bytes.Repeat([]byte{0xff}, 12)...), // a response
		}
		for _, g := range garbage {
			c := dial()
			c.Write(g)
			expectClosedWithin(t, c, idle+5*time.Second, fmt.Sprintf("garbage %x", g))
		}
		var after control.Stats
		d.ctlJSON(&after, "stats")
		// The answer engine's refusal of the response is counted as a
		// drop, not as TCP garbage.
		if n := after.TCP.Garbage - before.TCP.Garbage; n != 2 {
			t.Errorf("%d connections counted as garbage, want 2 (the bad lengths)", n)
		}
		if n := after.TCP.Timeouts - before.TCP.Timeouts; n != 0 {
			t.Errorf("%d garbage connections were closed by the idle timeout instead of at once", n)
		}
	})
	t.Run("bound", func(t *testing.T) {
		// Each earlier subtest's connections are closed by now, but the
		// server may not have noticed yet: wait until none is open.
		if !poll(10*time.Second, func() bool {
			var s control.Stats
			d.ctlJSON(&s, "stats")
			return s.TCP.Open == 0
		}) {
			t.Fatal("TCP connections still open after 10 s")
		}
		// The counters are read before the connections are made, since
		// the test must come to the connection over the bound before the
		// first one held reaches the idle timeout.
		var before control.Stats
		d.ctlJSON(&before, "stats")
		var held []*dns.Conn
		for i := 0; i < 4; i++ {
			c, err := dns.DialTimeout("tcp", addr, queryTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// A query answered proves the server took the connection.
			if _, err := connExchange(c, "example.", dns.TypeSOA); err != nil {
				t.Fatalf("connection %d of 4: %v", i+1, err)
			}
			held = append(held, c)
		}
		// The table is full of idle connections: a new one takes the place
		// of the one idle longest instead of being refused.
		over, err := dns.DialTimeout("tcp", addr, queryTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer over.Close()
		if _, err := connExchange(over, "example.", dns.TypeSOA); err != nil {
			t.Fatalf("connection over the bound: %v", err)
		}
		if _, err := connExchange(held[0], "example.", dns.TypeSOA); err == nil {
			t.Error("the connection idle longest still answers after a new one took its place")
		}
		var s control.Stats
		d.ctlJSON(&s, "stats")
		if s.TCP.Evicted != before.TCP.Evicted+1 || s.TCP.Refused != before.TCP.Refused {
			t.Errorf("tcp counters %+v: want one more evicted and none refused", s.TCP)
		}
		if s.TCP.Timeouts < 3 {
			t.Errorf("tcp counters %+v: want the idle, stalled and trickling connections counted as timeouts", s.TCP)
		}
	})
	// Every misbehaving client is gone; the daemon still answers on both
	// transports.
	for _, tcp := range []bool{false, true} {
		if err := exampleCases[0].check(mustExchange(t, d.addr(true), tcp, "example.", dns.TypeSOA)); err != nil {
			t.Error(err)
		}
	}
	d.alive()
}
