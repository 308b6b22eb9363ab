package controlplane

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/zone"
)

// NotifyOut sends NOTIFY (RFC 1996) to a zone's notify targets whenever a
// new serial of it is published: opcode NOTIFY, AA, the SOA as question and
// the new SOA in the answer section, signed with the target's key when it
// has one, over UDP. A target that does not answer is asked again, up to
// NotifyAttempts times NotifyInterval apart; each target has a goroutine
// of its own, so nothing waits for a target, reloads least of all. A newer
// serial of the zone ends the retries of the older one.
type NotifyOut struct {
	targets map[string][]Remote // by canonical origin
	// members, when set, returns the configuration a zone not configured
	// inherits (a catalog zone's member): its targets are the catalog's.
	members func(origin string) *ZoneConfig
	keys    *Keyring
	log     *slog.Logger

	// Attempts and Interval are NotifyAttempts and NotifyInterval;
	// tests shorten them.
	Attempts int
	Interval time.Duration

	mu   sync.Mutex
	gen  map[string]uint64 // per origin: the generation of the latest NOTIFY round
	wg   sync.WaitGroup
	stop chan struct{} // closed by Close: no more attempts
	once sync.Once

	sent, failed, rejected atomic.Uint64
}

// NotifyAttempts and NotifyInterval bound the NOTIFY of one serial to one
// target: BIND's and Knot DNS's defaults are of this order (5 attempts,
// some seconds apart). A reply of any rcode ends the attempts.
const (
	NotifyAttempts = 5
	NotifyInterval = 2 * time.Second
)

// NewNotifyOut prepares NOTIFY for the zones of the normalised
// configuration cfg, signing with keys.
func NewNotifyOut(cfg *Config, keys *Keyring, log *slog.Logger) *NotifyOut {
	n := &NotifyOut{targets: map[string][]Remote{}, keys: keys, log: log, gen: map[string]uint64{},
		Attempts: NotifyAttempts, Interval: NotifyInterval, stop: make(chan struct{})}
	for _, z := range cfg.Zones {
		if len(z.NotifyTargets) > 0 {
			n.targets[CanonicalOrigin(z.Origin)] = z.NotifyTargets
		}
	}
	return n
}

// Counts reports the NOTIFY messages answered with NOERROR, those never
// answered after every attempt, and those answered with an error rcode or
// a reply whose TSIG did not verify.
func (n *NotifyOut) Counts() (sent, failed, rejected uint64) {
	return n.sent.Load(), n.failed.Load(), n.rejected.Load()
}

// Zone sends NOTIFY for z, the new version of origin, to its targets. It
// returns at once.
func (n *NotifyOut) Zone(origin string, z *zone.Zone) {
	if n == nil {
		return
	}
	targets := n.targets[origin]
	if _, ok := n.targets[origin]; !ok && n.members != nil {
		if zc := n.members(origin); zc != nil {
			targets = zc.NotifyTargets
		}
	}
	if len(targets) == 0 {
		return
	}
	select {
	case <-n.stop:
		return
	default:
	}
	soa, err := zoneSOA(z)
	if err != nil {
		n.log.Error("NOTIFY not sent: the zone has no SOA to send", "zone", origin, "err", err)
		return
	}
	rec := zone.Record{Owner: soa.owner, Type: dns.TypeSOA, TTL: soa.ttl, Data: soa.data}
	rr, err := rec.RR()
	if err != nil {
		n.log.Error("NOTIFY not sent: the SOA does not decode", "zone", origin, "err", err)
		return
	}
	n.mu.Lock()
	n.gen[origin]++
	gen := n.gen[origin]
	n.mu.Unlock()
	for _, t := range targets {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.notify(origin, gen, rr, t)
		}()
	}
}

// Close ends the retries: a NOTIFY in flight waits out its reply, no new
// attempt starts. Zone does nothing after Close.
func (n *NotifyOut) Close() {
	if n != nil {
		n.once.Do(func() { close(n.stop) })
	}
}

// Wait waits for every NOTIFY round in progress to end, for tests and
// shutdown.
func (n *NotifyOut) Wait() {
	if n != nil {
		n.wg.Wait()
	}
}

func (n *NotifyOut) current(origin string, gen uint64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.gen[origin] == gen
}

// notify sends one serial's NOTIFY to one target until it answers.
func (n *NotifyOut) notify(origin string, gen uint64, soa dns.RR, t Remote) {
	serial := soa.(*dns.SOA).Serial
	var last error
	for attempt := 1; attempt <= n.Attempts; attempt++ {
		if !n.current(origin, gen) {
			return // a newer serial is being announced instead
		}
		rcode, err := n.send(origin, soa, t)
		switch {
		case err == nil && rcode == dns.RcodeSuccess:
			n.sent.Add(1)
			n.log.Info("NOTIFY sent", "zone", origin, "serial", serial, "target", t.Addr, "key", t.Key, "attempt", attempt)
			return
		case err == nil:
			// An answer, if not the one hoped for: asking again would get
			// the same (RFC 1996 section 4.7 ends the retries at a reply).
			n.rejected.Add(1)
			n.log.Warn("NOTIFY answered with an error", "zone", origin, "serial", serial, "target", t.Addr,
				"rcode", RcodeName(rcode))
			return
		case errors.Is(err, errNotifyReply):
			n.rejected.Add(1)
			n.log.Warn("NOTIFY reply rejected", "zone", origin, "serial", serial, "target", t.Addr, "err", err)
			return
		}
		last = err
		if attempt < n.Attempts {
			select {
			case <-n.stop:
				return
			case <-time.After(n.Interval):
			}
		}
	}
	n.failed.Add(1)
	n.log.Warn("NOTIFY not answered", "zone", origin, "serial", serial, "target", t.Addr, "attempts", n.Attempts, "err", last)
}

// errNotifyReply marks a reply that came but cannot be trusted.
var errNotifyReply = errors.New("NOTIFY reply")

// send sends one NOTIFY and waits an interval for its reply, returning the
// reply's rcode.
func (n *NotifyOut) send(origin string, soa dns.RR, t Remote) (int, error) {
	m := new(dns.Msg)
	m.SetNotify(origin)
	m.Authoritative = true
	m.Answer = []dns.RR{soa}
	q, err := m.Pack()
	if err != nil {
		return 0, err
	}
	var signer *Signer
	if t.Key != "" {
		if signer, err = n.keys.SignerFor(t.Key); err != nil {
			return 0, err
		}
		if q, err = signer.Sign(q); err != nil {
			return 0, err
		}
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(t.Addr))
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if _, err := c.Write(q); err != nil {
		return 0, err
	}
	c.SetReadDeadline(time.Now().Add(n.Interval))
	buf := make([]byte, 65535)
	for {
		l, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return 0, err
		}
		rep := buf[:l]
		var r dns.Msg
		if r.Unpack(rep) != nil || r.Id != m.Id || !r.Response || r.Opcode != dns.OpcodeNotify ||
			netip.AddrPortFrom(from.Addr().Unmap(), from.Port()) != t.Addr {
			continue // not our reply: keep waiting within the deadline
		}
		if signer != nil {
			if err := signer.VerifyReply(rep); err != nil {
				return 0, fmt.Errorf("%w: %v", errNotifyReply, err)
			}
		}
		return r.Rcode, nil
	}
}
