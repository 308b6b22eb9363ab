package controlplane

import (
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// notifyTarget listens on loopback UDP and answers NOTIFY after ignoring
// the first `ignore` messages; it records what it received.
type notifyTarget struct {
	conn     *net.UDPConn
	received atomic.Int32
	verified atomic.Int32 // messages whose TSIG verified with the test key
	serial   atomic.Uint32
}

func startNotifyTarget(t *testing.T, ignore int32, k *Keyring) *notifyTarget {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	nt := &notifyTarget{conn: c}
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			msg := append([]byte(nil), buf[:n]...)
			i := nt.received.Add(1)
			r := k.Verify(msg)
			var m dns.Msg
			if m.Unpack(r.Body) != nil || m.Opcode != dns.OpcodeNotify || !m.Authoritative || len(m.Answer) != 1 {
				continue
			}
			if r.Key != "" {
				nt.verified.Add(1)
			}
			nt.serial.Store(m.Answer[0].(*dns.SOA).Serial)
			if i <= ignore {
				continue
			}
			rep := new(dns.Msg)
			rep.SetReply(&m)
			b, _ := rep.Pack()
			b, _ = k.Signer(&r).Sign(b)
			c.WriteToUDP(b, from)
		}
	}()
	return nt
}

func (nt *notifyTarget) addr() netip.AddrPort {
	return nt.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

func TestNotifyOut(t *testing.T) {
	k := testKeyring()
	signed := startNotifyTarget(t, 2, k) // answers the third attempt
	plain := startNotifyTarget(t, 0, k)
	silent := startNotifyTarget(t, 100, k)
	cfg := &Config{Zones: []ZoneConfig{{Origin: "example.", NotifyTargets: []Remote{
		{Addr: signed.addr(), Key: testKeyName}, {Addr: plain.addr()}, {Addr: silent.addr()}}}}}
	n := NewNotifyOut(cfg, k, quietLog())
	// Short intervals keep the test quick; the retries are counted, not
	// timed.
	n.Attempts, n.Interval = 4, 50*time.Millisecond
	n.Zone("example.", parseTestZone(t, xfrZoneText(42, 1, "")))
	done := make(chan struct{})
	go func() { n.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("NOTIFY rounds not over within 20 s")
	}
	sent, failed, rejected := n.Counts()
	if sent != 2 || failed != 1 || rejected != 0 {
		t.Fatalf("sent %d failed %d rejected %d, want 2 1 0", sent, failed, rejected)
	}
	if got := signed.received.Load(); got != 3 {
		t.Fatalf("signed target got %d messages, want 3 (two unanswered)", got)
	}
	if signed.verified.Load() != 3 || plain.verified.Load() != 0 {
		t.Fatal("NOTIFY signed where it should not be, or not where it should")
	}
	if plain.received.Load() != 1 || silent.received.Load() != 4 {
		t.Fatalf("plain got %d, silent %d; want 1 and 4", plain.received.Load(), silent.received.Load())
	}
	if signed.serial.Load() != 42 {
		t.Fatalf("NOTIFY carried serial %d, want 42", signed.serial.Load())
	}
}

// TestNotifyOutBadReplyKey: a reply signed with another secret is rejected
// at once, not retried.
func TestNotifyOutBadReplyKey(t *testing.T) {
	wrong := NewKeyring(map[string]TSIGKey{testKeyName: {Name: testKeyName, Algorithm: dns.HmacSHA256, Secret: otherSecret}})
	target := startNotifyTarget(t, 0, wrong)
	cfg := &Config{Zones: []ZoneConfig{{Origin: "example.", NotifyTargets: []Remote{{Addr: target.addr(), Key: testKeyName}}}}}
	n := NewNotifyOut(cfg, testKeyring(), quietLog())
	n.Attempts, n.Interval = 3, 50*time.Millisecond
	n.Zone("example.", parseTestZone(t, xfrZoneText(1, 1, "")))
	n.Wait()
	if sent, failed, rejected := n.Counts(); sent != 0 || failed != 0 || rejected != 1 {
		t.Fatalf("sent %d failed %d rejected %d, want 0 0 1", sent, failed, rejected)
	}
}

// TestNotifyOutClose: Close ends the retries to a silent target after the
// attempt in flight. Without Close the round takes Attempts intervals (5
// s); with it, the one interval in flight (1 s). The bound of 4 s leaves
// 3 s for a loaded machine and still fails when the retries go on.
func TestNotifyOutClose(t *testing.T) {
	silent := startNotifyTarget(t, 100, testKeyring())
	cfg := &Config{Zones: []ZoneConfig{{Origin: "example.", NotifyTargets: []Remote{{Addr: silent.addr()}}}}}
	n := NewNotifyOut(cfg, testKeyring(), quietLog())
	n.Attempts, n.Interval = 5, time.Second
	start := time.Now()
	n.Zone("example.", parseTestZone(t, xfrZoneText(1, 1, "")))
	n.Close()
	n.Wait()
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("NOTIFY round went on for %v after Close", d)
	}
	if got := silent.received.Load(); got > 1 {
		t.Fatalf("%d attempts after Close, want at most the one in flight", got)
	}
	n.Zone("example.", parseTestZone(t, xfrZoneText(2, 1, "")))
	n.Wait()
	if got := silent.received.Load(); got > 1 {
		t.Fatal("Zone sent after Close")
	}
}
