package conformance

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Exchanger sends queries to one server over UDP and TCP. One Exchanger is
// used by one goroutine at a time: it keeps a connected UDP socket so that a
// late reply to an earlier query can only come from that server.
type Exchanger struct {
	addr    string
	udp     net.Conn
	timeout time.Duration
	buf     []byte
}

// NewExchanger opens a UDP socket to addr.
func NewExchanger(addr string, timeout time.Duration) (*Exchanger, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return nil, err
	}
	return &Exchanger{addr: addr, udp: c, timeout: timeout, buf: make([]byte, 65535)}, nil
}

// Close closes the UDP socket.
func (e *Exchanger) Close() error { return e.udp.Close() }

// UDP sends q and returns the reply with q's ID, or nil when none came after
// one retry (a lost datagram on a busy loopback must not count as a server's
// silence, but two in a row do).
func (e *Exchanger) UDP(q []byte) ([]byte, error) {
	id := binary.BigEndian.Uint16(q)
	for attempt := 0; attempt < 2; attempt++ {
		if _, err := e.udp.Write(q); err != nil {
			// A refused datagram (ICMP port unreachable from an earlier
			// send) is the server's absence, not a local failure.
			continue
		}
		deadline := time.Now().Add(e.timeout)
		if err := e.udp.SetReadDeadline(deadline); err != nil {
			return nil, err
		}
		for {
			n, err := e.udp.Read(e.buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				// ICMP port unreachable surfaces as a read error: no reply.
				return nil, nil
			}
			if n >= 2 && binary.BigEndian.Uint16(e.buf) == id {
				return append([]byte(nil), e.buf[:n]...), nil
			}
			// A reply to an earlier query that timed out: keep waiting.
		}
	}
	return nil, nil
}

// TCP sends q over a new TCP connection (RFC 7766 framing) and returns the
// reply, or nil when the server closed the connection or was silent.
func (e *Exchanger) TCP(q []byte) ([]byte, error) {
	d := net.Dialer{Timeout: e.timeout}
	c, err := d.Dial("tcp", e.addr)
	if err != nil {
		// A server that does not accept TCP sends no reply.
		return nil, nil
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(2 * e.timeout)); err != nil {
		return nil, err
	}
	msg := make([]byte, 2+len(q))
	binary.BigEndian.PutUint16(msg, uint16(len(q)))
	copy(msg[2:], q)
	if _, err := c.Write(msg); err != nil {
		return nil, nil
	}
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return nil, nil
	}
	reply := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, reply); err != nil {
		return nil, nil
	}
	return reply, nil
}

// Outcome is the comparison of both servers' replies to one query over one
// transport.
type Outcome struct {
	Query     *Query
	Transport string // "udp" or "tcp".
	Ref, Test []byte // nil when the server sent no reply.
	Diffs     []Difference
}

// Run sends every query to both servers with at most workers queries in
// flight, compares the replies and returns one Outcome per query and
// transport, in corpus order (UDP before the TCP retry of the same query).
// A query whose UDP reply from either server has TC set is sent again over
// TCP to both. Errors are local failures (sockets), not server behaviour.
func Run(ctx context.Context, queries []Query, refAddr, testAddr string, workers int, timeout time.Duration) ([]Outcome, error) {
	results := make([][]Outcome, len(queries))
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	for w := 0; w < workers; w++ {
		ref, err := NewExchanger(refAddr, timeout)
		if err != nil {
			return nil, err
		}
		test, err := NewExchanger(testAddr, timeout)
		if err != nil {
			ref.Close()
			return nil, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer ref.Close()
			defer test.Close()
			for i := range next {
				out, err := exchangeBoth(&queries[i], ref, test)
				if err != nil {
					fail(fmt.Errorf("query %s: %w", &queries[i], err))
					continue
				}
				results[i] = out
			}
		}()
	}
feed:
	for i := range queries {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var all []Outcome
	for _, r := range results {
		all = append(all, r...)
	}
	return all, nil
}

func exchangeBoth(q *Query, ref, test *Exchanger) ([]Outcome, error) {
	ra, err := ref.UDP(q.Wire)
	if err != nil {
		return nil, err
	}
	rb, err := test.UDP(q.Wire)
	if err != nil {
		return nil, err
	}
	out := []Outcome{{Query: q, Transport: "udp", Ref: ra, Test: rb, Diffs: Compare(ra, rb)}}
	if !truncated(ra) && !truncated(rb) {
		return out, nil
	}
	ta, err := ref.TCP(q.Wire)
	if err != nil {
		return nil, fmt.Errorf("tcp to reference: %w", err)
	}
	tb, err := test.TCP(q.Wire)
	if err != nil {
		return nil, fmt.Errorf("tcp to test server: %w", err)
	}
	return append(out, Outcome{Query: q, Transport: "tcp", Ref: ta, Test: tb, Diffs: Compare(ta, tb)}), nil
}

func truncated(reply []byte) bool {
	return len(reply) >= 4 && reply[2]&0x02 != 0
}
