package controlplane

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/ringdns/ringdns/controlplane/control"
	"github.com/ringdns/ringdns/dataplane"
	"github.com/ringdns/ringdns/zone"
)

// This file is the secondary side of zone transfers (issue 13): the refresh
// of a zone from its primaries (an SOA query, then IXFR or AXFR over TCP),
// the copy kept on disk, the SOA timers and expiry, and NOTIFY in.

// transfersInMax bounds the zone transfers in that run at once, whatever
// the number of secondary zones: a restart of a server with thousands of
// secondaries must not open thousands of TCP connections to its primaries
// at once. soaQueriesMax bounds the SOA queries in flight the same way:
// each is a datagram, but each holds a socket until answered or timed out,
// and thousands of zones refreshing together at start must not take the
// descriptors the TCP service counts on.
const (
	transfersInMax = 4
	soaQueriesMax  = 32
)

// Timeouts of the transfer protocol. xfrMessageTimeout bounds the wait for
// each message of a transfer, not the whole transfer: a large zone takes as
// long as it takes, a primary that stops sending is given up on.
var (
	xfrDialTimeout    = 5 * time.Second
	xfrSOATimeout     = 3 * time.Second
	xfrMessageTimeout = 15 * time.Second
)

// Bounds on the SOA timers (RFC 1035 section 3.3.13) a secondary obeys. A
// primary's zone with a refresh of 0 must not make us query it in a loop,
// nor an expire of 0 expire the zone the moment it is loaded.
const (
	minRefresh = 5 * time.Second
	minRetry   = 2 * time.Second
	minExpire  = 60 * time.Second
)

// refreshKind says what a refresh request asks for.
type refreshKind uint8

const (
	refreshSOA  refreshKind = iota + 1 // query the SOA, transfer when the serial is newer
	refreshAXFR                        // transfer the whole zone, whatever the serial
)

// xfrIn is what the catalog keeps for all of its secondary zones.
type xfrIn struct {
	keys  map[string]TSIGKey
	sem   chan struct{} // one token per transfer in progress
	soa   chan struct{} // one token per SOA query in flight
	now   func() time.Time
	stats xfrInStats
}

// Kinds and results of transfers in, and results of NOTIFY in, as the
// metrics name them.
var (
	xfrInKinds    = [...]string{"axfr", "ixfr"}
	xfrInResults  = [...]string{"ok", "failed"}
	notifyResults = [...]string{"accepted", "refused", "notauth"}
)

// xfrInStats counts the transfers in of every zone, for the metrics:
// by kind (as done: an IXFR answered with the whole zone counts as AXFR)
// and result, their bytes on the wire and their time; and the NOTIFY
// messages received, by what Notify answered.
type xfrInStats struct {
	done   [len(xfrInKinds)][len(xfrInResults)]atomic.Uint64
	bytes  [len(xfrInKinds)]atomic.Uint64
	nanos  [len(xfrInKinds)]atomic.Uint64
	notify [len(notifyResults)]atomic.Uint64
	// applied counts the incremental IXFRs by how their differences
	// were applied to the served version (ixfrApplied).
	applied [len(ixfrApplied)]atomic.Uint64
}

// How the differences of an incremental IXFR were applied, as the metrics
// name it: in place (zone.Zone.Apply's copy-on-write), rebuilt by Apply
// from the served version's records, or not at all: they did not apply
// (a deletion of a record the zone does not hold, a broken zone rule, a
// serial that does not chain, ZONEMD) and the zone was transferred again
// by AXFR.
var ixfrApplied = [...]string{"incremental", "rebuilt", "axfr-fallback"}

// count records one transfer in.
func (x *xfrInStats) count(ts *control.TransferStatus, ok bool) {
	k, r := 0, 0
	if ts.Kind == "IXFR" {
		k = 1
	}
	if !ok {
		r = 1
	}
	x.done[k][r].Add(1)
	x.bytes[k].Add(uint64(ts.Bytes))
	x.nanos[k].Add(uint64(ts.Seconds * 1e9))
}

// secondary is the state of one secondary zone: its configuration, the
// SOA timers of the version served, and the record of its last refresh
// and transfer for zone-status.
type secondary struct {
	primaries []netip.AddrPort
	key       string // canonical key name, "" for unsigned
	notifyACL []ACLEntry

	// kick carries refresh requests (NOTIFY, ringctl) to the zone's loop;
	// a request made while one is pending is merged into it.
	kick chan refreshKind

	// placeholder is served while the zone has no data (never transferred,
	// no copy on disk): an SOA and NS at the apex that are never answered,
	// since the zone is marked expired and every query for it is answered
	// SERVFAIL, as Knot DNS answers for a zone it has not yet transferred.
	placeholder *zone.Zone

	mu sync.Mutex
	st secondaryState
	// expireAt is st.expires in Unix seconds, read by the answer engine
	// for the EDNS EXPIRE option (dataplane.ZoneExpire).
	expireAt atomic.Int64
	// servedExpired says whether the snapshot last published answers the
	// zone SERVFAIL; pendingStamp is the stamp of the copy a transfer has
	// just written, for its publication.
	servedExpired bool
	pendingStamp  fileStamp

	// The copy on disk of a version applied from an IXFR is written after
	// its publication (writeCopy): copying is closed once the last write
	// asked for has ended (nil when none was), copyWant is the version the
	// last write asked for (a write superseded before it starts is
	// skipped), and copyOf the version whose copy was last written, with
	// the stamp of that file.
	copying   chan struct{}
	copyWant  *zone.Zone
	copyOf    *zone.Zone
	copyStamp fileStamp

	// stop ends the zone's loop and done is closed when it has ended;
	// both nil until the loop starts (startSecondary). Set with the
	// catalog's mu held.
	stop context.CancelFunc
	done chan struct{}
}

// secondaryState is a secondary zone's timers and history, guarded by
// secondary.mu.
type secondaryState struct {
	// The SOA timers of the version served.
	refresh, retry, expire time.Duration

	lastRefresh time.Time // a primary last confirmed the serial or a transfer succeeded
	nextRefresh time.Time
	expires     time.Time // zero while the zone has no data
	expired     bool
	lastErr     string

	last      control.TransferStatus
	transfers uint64 // transfers in that succeeded
	failures  uint64 // refreshes or transfers that failed
	notifies  uint64 // NOTIFY messages accepted
}

func newSecondary(z *ZoneConfig) *secondary {
	return &secondary{
		primaries: append([]netip.AddrPort(nil), z.PrimaryAddrs...),
		key:       z.Key,
		notifyACL: append([]ACLEntry(nil), z.NotifyACL...),
		kick:      make(chan refreshKind, 1),
	}
}

// request queues a refresh of kind k; an AXFR request replaces a pending
// SOA refresh, never the other way round. It never blocks.
func (s *secondary) request(k refreshKind) {
	for {
		select {
		case s.kick <- k:
			return
		default:
		}
		select {
		case old := <-s.kick:
			if old > k {
				k = old
			}
		default:
		}
	}
}

// isExpired reports whether the zone must be answered SERVFAIL.
func (s *secondary) isExpired() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.expired
}

// Notify handles a NOTIFY for origin from addr, whose TSIG (already
// verified by the caller) named key ("" unsigned). It returns the rcode for
// the reply: dns.RcodeSuccess when accepted (a refresh starts at once,
// asynchronously), dns.RcodeRefused when the zone's allow-notify, primaries
// and key deny it, dns.RcodeNotAuth when origin is not a secondary zone
// here. It never blocks on the network.
//
// The primaries may always notify, signed with the zone's key when it has
// one (RFC 1996 section 3.10 asks that NOTIFY come from a known master);
// allow-notify adds other sources, each with its own key rule.
func (c *Catalog) Notify(origin string, from netip.Addr, key string) int {
	e := c.find(CanonicalOrigin(origin))
	if e == nil || e.sec == nil {
		c.xfr.stats.notify[2].Add(1)
		return dns.RcodeNotAuth
	}
	s := e.sec
	from = from.Unmap()
	ok := Allows(s.notifyACL, from, key)
	for _, p := range s.primaries {
		if p.Addr() == from && (s.key == "" || s.key == key) {
			ok = true
		}
	}
	if !ok {
		c.xfr.stats.notify[1].Add(1)
		c.log.Warn("NOTIFY refused", "zone", e.origin, "from", from, "key", key)
		return dns.RcodeRefused
	}
	c.xfr.stats.notify[0].Add(1)
	s.mu.Lock()
	s.st.notifies++
	s.mu.Unlock()
	c.log.Info("NOTIFY received, refreshing", "zone", e.origin, "from", from, "key", key)
	s.request(refreshSOA)
	return dns.RcodeSuccess
}

// Refresh asks for a refresh of the secondary zone origin now: an SOA query
// and a transfer when the primary's serial is newer, or, with axfr, a
// transfer of the whole zone whatever the serials. It returns at once.
func (c *Catalog) Refresh(origin string, axfr bool) error {
	e := c.find(CanonicalOrigin(origin))
	if e == nil {
		return fmt.Errorf("%w: %s", ErrUnknownZone, CanonicalOrigin(origin))
	}
	if e.sec == nil {
		return fmt.Errorf("zone %s is not a secondary (it has no primaries): reload it instead", e.origin)
	}
	k := refreshSOA
	if axfr {
		k = refreshAXFR
	}
	e.sec.request(k)
	return nil
}

// RunSecondaries refreshes the secondary zones until done is closed: each
// zone at once, then on its SOA timers, a NOTIFY or a request from ringctl.
// The members a catalog zone adds meanwhile start their loops as they are
// added (catzmembers.go). It returns once every zone's loop has stopped.
func (c *Catalog) RunSecondaries(done <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	run := &secondaryRun{ctx: ctx}
	c.mu.Lock()
	c.run = run
	for _, e := range c.entries {
		if e.sec != nil {
			c.startSecondary(e)
		}
	}
	c.mu.Unlock()
	<-done
	// No loop starts once run is gone, so the wait below is for all.
	c.mu.Lock()
	c.run = nil
	c.mu.Unlock()
	cancel()
	run.wg.Wait()
}

// secondaryRun is where the secondary zones' loops run.
type secondaryRun struct {
	ctx context.Context
	wg  sync.WaitGroup
}

// startSecondary starts the loop of secondary zone e, when RunSecondaries
// runs; the loop stops with it, or alone by e.sec.stop. c.mu must be
// held.
func (c *Catalog) startSecondary(e *zoneEntry) {
	if c.run == nil || e.sec.done != nil {
		return
	}
	ctx, stop := context.WithCancel(c.run.ctx)
	e.sec.stop, e.sec.done = stop, make(chan struct{})
	done := e.sec.done
	c.run.wg.Add(1)
	go func() {
		defer c.run.wg.Done()
		defer close(done)
		// The copy of the last version published is on disk before the
		// loop counts as ended: a shutdown, or a removed member's files
		// deleted once its loop is done, must not race with its write.
		defer e.sec.waitCopy(false)
		defer stop()
		c.runSecondary(ctx, e)
	}()
}

// runSecondary is one secondary zone's loop: it refreshes the zone at once
// (a copy loaded from disk may be old) and then whenever its refresh or
// retry timer fires or a refresh is requested, and marks it expired when
// the expire timer fires first.
func (c *Catalog) runSecondary(ctx context.Context, e *zoneEntry) {
	s := e.sec
	kind := refreshSOA
	for {
		if kind != 0 {
			c.refreshZone(ctx, e, kind)
			kind = 0
		}
		now := c.xfr.now()
		s.mu.Lock()
		next := s.st.nextRefresh
		if !s.st.expires.IsZero() && !s.st.expired && s.st.expires.Before(next) {
			next = s.st.expires
		}
		s.mu.Unlock()
		t := time.NewTimer(max(next.Sub(now), 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case kind = <-s.kick:
			t.Stop()
		case <-t.C:
			now = c.xfr.now()
			if c.expireIfDue(e, now) {
				continue
			}
			s.mu.Lock()
			due := !now.Before(s.st.nextRefresh)
			s.mu.Unlock()
			if due {
				kind = refreshSOA
			}
		}
	}
}

// expireIfDue marks the zone expired when its expire timer has passed at
// now, publishing a snapshot in which it answers SERVFAIL, and reports
// whether it did.
func (c *Catalog) expireIfDue(e *zoneEntry, now time.Time) bool {
	s := e.sec
	s.mu.Lock()
	due := !s.st.expired && !s.st.expires.IsZero() && !now.Before(s.st.expires)
	if due {
		s.st.expired = true
		s.st.lastErr = fmt.Sprintf("expired at %s: no primary confirmed the zone within its SOA expire time (%s)",
			s.st.expires.UTC().Format(time.RFC3339), s.st.expire)
	}
	s.mu.Unlock()
	if !due {
		return false
	}
	c.log.Error("zone expired, answering SERVFAIL until a transfer succeeds", "zone", e.origin)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := c.publish(); err != nil {
		c.log.Error("publishing the expired zone", "zone", e.origin, "err", err)
	}
	return true
}

// expireOption is what the answers from z, entry e's version published,
// carry in an EDNS EXPIRE option (RFC 7314 section 3): for a secondary the
// time left before it expires, for a primary its SOA expire field, read
// once per version.
func (c *Catalog) expireOption(e *zoneEntry, z *zone.Zone) dataplane.ZoneExpire {
	if e.sec != nil {
		return dataplane.ZoneExpire{At: &e.sec.expireAt}
	}
	if e.soaOf != z {
		e.soaOf, e.soaExpire = z, soaExpireOf(z)
	}
	return dataplane.ZoneExpire{SOA: e.soaExpire}
}

// errFound stops a walk.
var errFound = errors.New("found")

// soaExpireOf returns the expire field of z's SOA, which Walk gives among
// the apex's first records.
func soaExpireOf(z *zone.Zone) uint32 {
	var exp uint32
	z.Walk(func(r *zone.Record) error {
		if r.Type == dns.TypeSOA && len(r.Data) >= 20 {
			exp = binary.BigEndian.Uint32(r.Data[len(r.Data)-8:])
			return errFound
		}
		return nil
	})
	return exp
}

// jitter shortens d by up to a tenth, so that zones loaded together do not
// refresh together for ever after.
func jitter(d time.Duration) time.Duration {
	return d - time.Duration(rand.Int64N(int64(d)/10+1))
}

// setTimers takes the SOA timers of the version served, and restarts the
// expire timer: a primary has just confirmed the zone. expireOpt is the
// EDNS EXPIRE option's value (RFC 7314) when the primary sent one: the
// time left before its own copy expires, which the secondary takes instead
// of the SOA expire so that a chain of secondaries does not outlive the
// zone's first primary.
func (s *secondary) setTimers(soa *dns.SOA, now time.Time, expireOpt uint32, hasOpt bool) {
	s.st.refresh = max(time.Duration(soa.Refresh)*time.Second, minRefresh)
	s.st.retry = max(time.Duration(soa.Retry)*time.Second, minRetry)
	s.st.expire = max(time.Duration(soa.Expire)*time.Second, minExpire)
	exp := s.st.expire
	if hasOpt {
		exp = max(time.Duration(expireOpt)*time.Second, minExpire)
	}
	s.st.lastRefresh = now
	s.st.nextRefresh = now.Add(jitter(s.st.refresh))
	s.st.expires = now.Add(exp)
	s.expireAt.Store(s.st.expires.Unix())
	s.st.expired = false
	s.st.lastErr = ""
}

// refreshZone queries the primaries in order for the zone's SOA and
// transfers the zone from the first whose serial is newer than the one
// served (every time for refreshAXFR). Failures are logged and counted, and
// the retry timer is set; the served version is never touched by a failure.
func (c *Catalog) refreshZone(ctx context.Context, e *zoneEntry, kind refreshKind) {
	s := e.sec
	c.mu.Lock()
	cur := e.cur
	c.mu.Unlock()
	// expecting is the version served once a newer serial is noticed,
	// until a version applied to it is published (see expectUpdate).
	var expecting *zone.Zone
	defer func() { c.unexpected(expecting) }()
	var errs []string
	for _, p := range s.primaries {
		// A catalog zone's SOA is asked over TCP: Knot DNS refuses
		// queries for a catalog zone over UDP (RFC 9432 section 7 lets a
		// producer keep the catalog from ordinary queries), and answers
		// them over TCP, where the transfer goes anyway.
		soa, expOpt, hasOpt, err := c.querySOA(ctx, p, e.origin, s.key, e.catz != nil)
		if err != nil {
			errs = append(errs, err.Error())
			c.log.Warn("SOA query failed", "zone", e.origin, "primary", p, "err", err)
			continue
		}
		now := c.xfr.now()
		if kind == refreshSOA && cur != nil && !serialNewer(soa.Serial, cur.Serial()) {
			s.mu.Lock()
			s.setTimers(soa, now, expOpt, hasOpt)
			s.mu.Unlock()
			c.touchCopy(e, now)
			c.log.Debug("zone up to date", "zone", e.origin, "primary", p, "serial", cur.Serial(), "primary_serial", soa.Serial)
			if c.republishIfUnexpired(e) {
				c.log.Info("zone no longer expired: the primary confirmed its serial", "zone", e.origin, "serial", cur.Serial())
			}
			return
		}
		// The new serial is noticed now: RSSAC002's load-time runs from
		// here to the publication.
		noticed := now
		base := cur
		if kind == refreshAXFR {
			base = nil
		}
		if base != nil {
			// While the IXFR is asked for and read, the version served
			// makes the arrays the update will write (kept when made
			// already, as for a primary tried after another failed).
			expecting = c.expectUpdate(base)
		}
		ts, res, err := c.transferIn(ctx, e, p, base)
		s.mu.Lock()
		s.st.last = ts
		if err != nil {
			s.mu.Unlock()
			errs = append(errs, err.Error())
			c.log.Error("transfer in failed, served version kept", "zone", e.origin, "primary", p, "kind", ts.Kind, "err", err)
			continue
		}
		s.st.transfers++
		s.setTimers(soa, c.xfr.now(), expOpt, hasOpt)
		s.mu.Unlock()
		z := res.z
		if err := c.publishTransfer(e, res); err != nil {
			s.mu.Lock()
			s.st.failures++
			s.st.lastErr = err.Error()
			s.mu.Unlock()
			c.log.Error("publishing the transferred zone", "zone", e.origin, "err", err)
			return
		}
		// Published, the new version took the lineage's arrays or
		// (built afresh) leaves them to be collected with cur; its
		// collection is scheduled with its own (Catalog.publish).
		expecting = nil
		if c.onLoadTime != nil {
			c.onLoadTime(e.origin, z.Serial(), c.xfr.now().Sub(noticed))
		}
		if z.Applied() == "" {
			// Built from the transfer (AXFR, or an IXFR that did not
			// apply), as a load builds: without this a secondary that
			// received its TLD by AXFR and no IXFR after held the
			// build's garbage for good (the benchmarks' signed TLD:
			// 751 MiB after its AXFR; after 15 IXFRs and the update
			// hold, which gave it back, 682 MiB).
			c.freeBuilt(z.MemoryBytes())
		}
		if !res.copied {
			c.writeCopy(e, z)
		}
		c.log.Info("zone transferred", "zone", e.origin, "primary", p, "kind", ts.Kind, "applied", ts.Applied, "serial", z.Serial(),
			"records", z.Records(), "bytes", ts.Bytes, "duration", time.Duration(ts.Seconds*float64(time.Second)))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.failures++
	s.st.lastErr = strings.Join(errs, "; ")
	if len(s.primaries) == 0 {
		s.st.lastErr = "no primaries"
	}
	retry := s.st.retry
	if retry == 0 {
		// No version has ever been served: retry at the shortest interval.
		retry = minRetry * 5
	}
	s.st.nextRefresh = c.xfr.now().Add(jitter(retry))
}

// republishIfUnexpired publishes a snapshot in which the zone is answered
// again, when it was expired and a primary has confirmed it; it reports
// whether it did.
func (c *Catalog) republishIfUnexpired(e *zoneEntry) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.sec.mu.Lock()
	was := e.sec.servedExpired
	e.sec.mu.Unlock()
	if !was || e.cur == nil {
		return false
	}
	if _, err := c.publish(); err != nil {
		c.log.Error("publishing the zone confirmed by its primary", "zone", e.origin, "err", err)
		return false
	}
	return true
}

// touchCopy sets the modification time of the zone's copy on disk to now,
// the time a primary last confirmed it, so that after a restart the
// expire timer runs from there rather than from the restart.
func (c *Catalog) touchCopy(e *zoneEntry, now time.Time) {
	if err := os.Chtimes(e.file, now, now); err != nil && !errors.Is(err, os.ErrNotExist) {
		c.log.Warn("cannot set the time of the zone's copy on disk", "zone", e.origin, "file", e.file, "err", err)
	}
}

// serialNewer reports whether serial a is newer than b in the sequence
// space arithmetic of RFC 1982: a difference of exactly 2^31 is undefined,
// and is not newer.
func serialNewer(a, b uint32) bool { return int32(a-b) > 0 }

// tsigOf returns the key the zone's messages are signed with, or nil.
func (c *Catalog) tsigOf(name string) (*TSIGKey, error) {
	if name == "" {
		return nil, nil
	}
	k, ok := c.xfr.keys[name]
	if !ok {
		return nil, fmt.Errorf("key %s is not configured", name)
	}
	return &k, nil
}

// querySOA asks primary p for the zone's SOA over UDP (TCP when the reply
// is truncated, or with tcp at once), signed with key when set and with an empty EDNS EXPIRE
// option (RFC 7314). It returns the SOA and the EXPIRE value when the
// primary gave one.
func (c *Catalog) querySOA(ctx context.Context, p netip.AddrPort, origin, key string, tcp bool) (*dns.SOA, uint32, bool, error) {
	k, err := c.tsigOf(key)
	if err != nil {
		return nil, 0, false, err
	}
	select {
	case c.xfr.soa <- struct{}{}:
	case <-ctx.Done():
		return nil, 0, false, ctx.Err()
	}
	defer func() { <-c.xfr.soa }()
	m := new(dns.Msg)
	m.SetQuestion(origin, dns.TypeSOA)
	m.RecursionDesired = false
	m.SetEdns0(1232, false)
	opt := m.IsEdns0()
	opt.Option = append(opt.Option, &dns.EDNS0_EXPIRE{Code: dns.EDNS0EXPIRE, Empty: true})
	var r *dns.Msg
	networks := []string{"udp", "tcp"}
	if tcp {
		networks = networks[1:]
	}
	for _, network := range networks {
		r, err = exchange(ctx, network, p, m, k, xfrSOATimeout)
		if err != nil {
			return nil, 0, false, fmt.Errorf("SOA query to %s over %s: %w", p, network, err)
		}
		if !r.Truncated {
			break
		}
	}
	if r.Rcode != dns.RcodeSuccess {
		return nil, 0, false, fmt.Errorf("SOA query to %s: answered %s", p, rcodeText(r))
	}
	if !r.Authoritative {
		return nil, 0, false, fmt.Errorf("SOA query to %s: the answer is not authoritative (is the zone configured there?)", p)
	}
	var soa *dns.SOA
	for _, rr := range r.Answer {
		if s, ok := rr.(*dns.SOA); ok && strings.EqualFold(s.Hdr.Name, origin) {
			soa = s
		}
	}
	if soa == nil {
		return nil, 0, false, fmt.Errorf("SOA query to %s: no SOA for %s in the answer", p, origin)
	}
	if o := r.IsEdns0(); o != nil {
		for _, op := range o.Option {
			if x, ok := op.(*dns.EDNS0_EXPIRE); ok && !x.Empty {
				return soa, x.Expire, true, nil
			}
		}
	}
	return soa, 0, false, nil
}

// rcodeText names a reply's rcode, with the TSIG error when there is one.
func rcodeText(r *dns.Msg) string {
	s := dns.RcodeToString[r.Rcode]
	if t := r.IsTsig(); t != nil && t.Error != 0 {
		s += " (TSIG " + dns.RcodeToString[int(t.Error)] + ")"
	}
	return s
}

// exchange sends m to p over network and returns the reply: one message
// each way, the reply's ID and question checked, signed and verified with
// k when it is set (an unsigned reply to a signed query is an error: RFC
// 8945 section 5.3).
func exchange(ctx context.Context, network string, p netip.AddrPort, m *dns.Msg, k *TSIGKey, timeout time.Duration) (*dns.Msg, error) {
	m.Id = dns.Id()
	d := net.Dialer{Timeout: xfrDialTimeout}
	conn, err := d.DialContext(ctx, network, p.String())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	conn.SetDeadline(time.Now().Add(timeout))
	x := &xfrConn{conn: conn, stream: network == "tcp", key: k}
	if err := x.send(m); err != nil {
		return nil, err
	}
	r, _, err := x.recv(m)
	return r, err
}

// xfrConn carries the messages of one exchange or transfer with a primary,
// with the TSIG state of RFC 8945 section 5.3.1: each reply is verified
// against the MAC of the message before it, the first against the
// request's, and those after the first over their timers only.
type xfrConn struct {
	conn   net.Conn
	stream bool
	key    *TSIGKey
	mac    string // the MAC the next reply is verified against
	nreply int
	buf    []byte
}

func (x *xfrConn) send(m *dns.Msg) error {
	var out []byte
	var err error
	if x.key != nil {
		m.SetTsig(x.key.Name, x.key.Algorithm, 300, time.Now().Unix())
		out, x.mac, err = dns.TsigGenerate(m, x.key.Secret, "", false)
	} else {
		out, err = m.Pack()
	}
	if err != nil {
		return err
	}
	if x.stream {
		out = append(binary.BigEndian.AppendUint16(nil, uint16(len(out))), out...)
	}
	_, err = x.conn.Write(out)
	return err
}

// recv reads the next reply to q and returns it with its size on the wire.
func (x *xfrConn) recv(q *dns.Msg) (*dns.Msg, int, error) {
	var p []byte
	if x.stream {
		var l [2]byte
		if _, err := io.ReadFull(x.conn, l[:]); err != nil {
			return nil, 0, err
		}
		n := int(binary.BigEndian.Uint16(l[:]))
		if cap(x.buf) < n {
			x.buf = make([]byte, n)
		}
		p = x.buf[:n]
		if _, err := io.ReadFull(x.conn, p); err != nil {
			return nil, 0, err
		}
	} else {
		if x.buf == nil {
			x.buf = make([]byte, dns.MaxMsgSize)
		}
		n, err := x.conn.Read(x.buf)
		if err != nil {
			return nil, 0, err
		}
		p = x.buf[:n]
	}
	size := len(p)
	if x.stream {
		size += 2
	}
	r := new(dns.Msg)
	if err := r.Unpack(p); err != nil {
		return nil, size, fmt.Errorf("reply does not parse: %w", err)
	}
	if r.Id != q.Id || !r.Response {
		return nil, size, fmt.Errorf("reply has the wrong ID or is not a response")
	}
	if len(r.Question) > 0 && (len(q.Question) == 0 || !strings.EqualFold(r.Question[0].Name, q.Question[0].Name) ||
		r.Question[0].Qtype != q.Question[0].Qtype) {
		return nil, size, fmt.Errorf("reply is for another question (%s)", r.Question[0].String())
	}
	if x.key != nil {
		t := r.IsTsig()
		switch {
		case t == nil && r.Rcode != dns.RcodeSuccess:
			// The primary's error, unsigned: report what it said.
			return r, size, nil
		case t == nil:
			// RFC 8945 allows up to 99 unsigned messages between signed
			// ones; Knot, NSD and BIND sign every one, and accepting
			// unsigned ones would need the digest over all of them.
			return nil, size, fmt.Errorf("reply %d is not signed with key %s: TSIG required", x.nreply+1, x.key.Name)
		case t.Error != 0:
			// The primary could not verify our request (RFC 8945
			// section 5.3.2); whatever the rcode says, nothing in the
			// reply is vouched for.
			return nil, size, fmt.Errorf("the primary answered %s with TSIG error %s: is key %s configured there with the same secret?",
				dns.RcodeToString[r.Rcode], dns.RcodeToString[int(t.Error)], x.key.Name)
		}
		if err := dns.TsigVerify(p, x.key.Secret, x.mac, x.nreply > 0); err != nil {
			return nil, size, fmt.Errorf("reply %d fails TSIG with key %s: %w", x.nreply+1, x.key.Name, err)
		}
		x.mac = t.MAC
	}
	x.nreply++
	return r, size, nil
}

// transferred is the outcome of a transfer in: the new version, and what
// publishing it needs.
type transferred struct {
	z *zone.Zone
	// base is the version an incremental IXFR was applied to and sets its
	// differences for the journal (nil when they could not be encoded:
	// the journal then computes them).
	base *zone.Zone
	sets []*changeset
	// how is how the differences were applied: "incremental", or the
	// first "rebuilt: ..." of zone.Zone.Applied.
	how string
	// copied says the copy on disk is written already (a whole zone is
	// loaded from the file it was written to); otherwise it is written
	// after the publication (writeCopy).
	copied bool
}

// transferIn transfers the zone from primary p: IXFR from base's serial
// when base is set, AXFR otherwise or when the primary answers IXFR with
// the whole zone or cannot do IXFR (NOTIMP, FORMERR), or when its
// differences do not apply to base. A whole zone is written to a
// temporary file beside the zone's file, loaded with the same checks as
// any zone file, and only then made the zone's file; the differences of an
// incremental IXFR are applied to base with zone.Zone.Apply (applyIXFR).
// The version served is not touched. It returns what it did, for
// zone-status, and the new version.
func (c *Catalog) transferIn(ctx context.Context, e *zoneEntry, p netip.AddrPort, base *zone.Zone) (control.TransferStatus, *transferred, error) {
	ts := control.TransferStatus{Primary: p.String(), Kind: "AXFR", Started: c.xfr.now()}
	select {
	case c.xfr.sem <- struct{}{}:
	case <-ctx.Done():
		ts.Result = "cancelled"
		return ts, nil, ctx.Err()
	}
	defer func() { <-c.xfr.sem }()
	start := time.Now()
	res, err := c.transferTry(ctx, e, p, base, &ts)
	ts.Seconds = time.Since(start).Seconds()
	c.xfr.stats.count(&ts, err == nil)
	if err != nil {
		ts.Result = err.Error()
		return ts, nil, err
	}
	ts.Result = "ok"
	ts.Serial = res.z.Serial()
	return ts, res, nil
}

// errFallBack asks transferTry to retry by AXFR: the primary cannot do
// IXFR. errNotApplied does too: the primary's differences do not apply to
// the served version.
var (
	errFallBack   = errors.New("the primary cannot do IXFR")
	errNotApplied = errors.New("the IXFR's differences do not apply to the served version")
)

func (c *Catalog) transferTry(ctx context.Context, e *zoneEntry, p netip.AddrPort, base *zone.Zone, ts *control.TransferStatus) (*transferred, error) {
	if base != nil {
		ts.Kind = "IXFR"
		res, err := c.transferOnce(ctx, e, p, base, ts)
		switch {
		case errors.Is(err, errFallBack):
			c.log.Info("IXFR not possible, falling back to AXFR", "zone", e.origin, "primary", p, "reason", err)
		case errors.Is(err, errNotApplied):
			c.xfr.stats.applied[2].Add(1)
			c.log.Warn("IXFR not applied, nothing of it served; falling back to AXFR", "zone", e.origin, "primary", p, "reason", err)
			ts.Applied = "axfr-fallback: " + err.Error()
		default:
			return res, err
		}
		ts.Kind = "AXFR"
	}
	return c.transferOnce(ctx, e, p, nil, ts)
}

// transferOnce runs one AXFR (base nil) or IXFR request. An IXFR answered
// with the whole zone is taken as such and ts.Kind says AXFR.
func (c *Catalog) transferOnce(ctx context.Context, e *zoneEntry, p netip.AddrPort, base *zone.Zone, ts *control.TransferStatus) (*transferred, error) {
	k, err := c.tsigOf(e.sec.key)
	if err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	if base == nil {
		m.SetAxfr(e.origin)
	} else {
		m.SetIxfr(e.origin, base.Serial(), ".", ".")
	}
	m.Id = dns.Id()
	d := net.Dialer{Timeout: xfrDialTimeout}
	conn, err := d.DialContext(ctx, "tcp", p.String())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	x := &xfrConn{conn: conn, stream: true, key: k}
	conn.SetDeadline(time.Now().Add(xfrMessageTimeout))
	if err := x.send(m); err != nil {
		return nil, err
	}
	w, err := newZoneWriter(e.file)
	if err != nil {
		return nil, err
	}
	defer w.discard()
	var ix *ixfrApply
	if base != nil {
		ix = &ixfrApply{cur: base.Serial()}
	}
	st := xfrStream{origin: e.origin, ixfr: ix, w: w}
	for msgs := 0; !st.done; msgs++ {
		conn.SetReadDeadline(time.Now().Add(xfrMessageTimeout))
		r, n, err := x.recv(m)
		ts.Bytes += int64(n)
		if err != nil {
			if st.n > 0 {
				return nil, fmt.Errorf("%s broke off after %d records: %w", ts.Kind, st.n, err)
			}
			return nil, err
		}
		if r.Rcode != dns.RcodeSuccess {
			if base != nil && msgs == 0 && (r.Rcode == dns.RcodeNotImplemented || r.Rcode == dns.RcodeFormatError) {
				return nil, fmt.Errorf("%w: answered %s", errFallBack, rcodeText(r))
			}
			return nil, fmt.Errorf("%s answered %s", ts.Kind, rcodeText(r))
		}
		if err := st.add(r.Answer); err != nil {
			return nil, err
		}
	}
	if st.upToDate {
		return nil, fmt.Errorf("%w: it answered IXFR with its SOA alone, serial %d, not newer than %d", errFallBack, st.serial, base.Serial())
	}
	if st.ixfr != nil && st.ixfr.incremental {
		t0 := time.Now()
		res, err := c.applyIXFR(e, base, st.ixfr, st.serial)
		ts.ApplySeconds = time.Since(t0).Seconds()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errNotApplied, err)
		}
		ts.Applied = res.how
		if res.how != "incremental" {
			c.xfr.stats.applied[1].Add(1)
		} else {
			c.xfr.stats.applied[0].Add(1)
		}
		return res, nil
	}
	ts.Kind = "AXFR"
	z, err := c.commitZone(e, w)
	if err != nil {
		return nil, err
	}
	return &transferred{z: z, copied: true}, nil
}

// xfrStream follows the records of an AXFR or IXFR reply (RFC 5936 section
// 2.2, RFC 1995 section 4) across its messages. A whole zone (AXFR, or an
// IXFR answered with one) is written to w as it arrives; the differences
// of an incremental IXFR are collected in ixfr.
type xfrStream struct {
	origin string
	ixfr   *ixfrApply // nil for AXFR
	w      *zoneWriter

	n        int    // records seen
	serial   uint32 // of the first SOA: the version being transferred
	full     bool   // the reply is a whole zone
	done     bool
	upToDate bool // IXFR answered with the SOA alone
}

func (s *xfrStream) add(rrs []dns.RR) error {
	for _, rr := range rrs {
		if s.done {
			return fmt.Errorf("records after the final SOA")
		}
		h := rr.Header()
		if h.Class != dns.ClassINET {
			return fmt.Errorf("record of class %s in the transfer: %s", dns.ClassToString[h.Class], rr)
		}
		if !dns.IsSubDomain(s.origin, h.Name) {
			return fmt.Errorf("record outside the zone %s: %s", s.origin, rr)
		}
		soa, isSOA := rr.(*dns.SOA)
		if isSOA && !strings.EqualFold(h.Name, s.origin) {
			return fmt.Errorf("SOA not at the apex: %s", rr)
		}
		s.n++
		switch {
		case s.n == 1:
			if !isSOA {
				return fmt.Errorf("the transfer does not begin with the zone's SOA: %s", rr)
			}
			s.serial = soa.Serial
			if s.ixfr == nil {
				s.full = true
				if err := s.w.write(rr); err != nil {
					return err
				}
			}
		case s.n == 2 && s.ixfr != nil:
			if isSOA && soa.Serial == s.ixfr.cur {
				s.ixfr.incremental = true
				s.ixfr.add(true, rr)
				break
			}
			// A whole zone in answer to IXFR: write the first SOA, held
			// until now, and this record.
			s.full = true
			first := &dns.SOA{}
			*first = *s.ixfr.firstSOA
			if isSOA && soa.Serial == s.serial {
				// A zone of one SOA cannot be; this is the end of an
				// empty IXFR reply of the form SOA SOA.
				s.done = true
				s.upToDate = true
				break
			}
			if err := s.w.write(first); err != nil {
				return err
			}
			if err := s.w.write(rr); err != nil {
				return err
			}
		case s.full:
			if isSOA {
				if soa.Serial != s.serial {
					return fmt.Errorf("the final SOA has serial %d, the first %d", soa.Serial, s.serial)
				}
				s.done = true
				break
			}
			if err := s.w.write(rr); err != nil {
				return err
			}
		default:
			if isSOA && !s.ixfr.deleting && soa.Serial == s.serial {
				s.done = true
				break
			}
			s.ixfr.add(false, rr)
		}
		if s.n == 1 && s.ixfr != nil {
			s.ixfr.firstSOA = soa
		}
	}
	if s.n == 1 && s.ixfr != nil && !s.serialNewer() {
		// The primary has nothing newer: IXFR answered with its SOA
		// alone in one message (RFC 1995 section 4).
		s.done, s.upToDate = true, true
	}
	return nil
}

func (s *xfrStream) serialNewer() bool { return serialNewer(s.serial, s.ixfr.cur) }

// ixfrApply holds the differences of an incremental IXFR, in order: each
// a deletion or an addition of one record.
type ixfrApply struct {
	cur         uint32 // the serial asked from
	firstSOA    *dns.SOA
	incremental bool
	deleting    bool // within a deletion section
	ops         []ixfrOp
}

type ixfrOp struct {
	del bool
	rr  dns.RR
}

// add takes the next record of the differences. A SOA switches between
// the deletion and addition sections: the SOA that opens a deletion
// section is the old version's and is deleted; the one that opens an
// addition section is the new version's and is added.
func (a *ixfrApply) add(first bool, rr dns.RR) {
	if _, ok := rr.(*dns.SOA); ok {
		if first {
			a.deleting = true
		} else {
			a.deleting = !a.deleting
		}
	}
	a.ops = append(a.ops, ixfrOp{del: a.deleting, rr: rr})
}

// ixfrDelta is one difference of an incremental IXFR (RFC 1995 section
// 4): the records deleted, the old version's SOA first, and those added,
// the new version's SOA first.
type ixfrDelta struct {
	from, to uint32
	del, add []dns.RR
}

// splitDeltas cuts the records of an incremental IXFR into its
// differences, and checks that their serials chain from from, the serial
// asked from, to to, the serial of the transfer's first SOA, each one newer
// than the one before.
func splitDeltas(ops []ixfrOp, from, to uint32) ([]ixfrDelta, error) {
	var out []ixfrDelta
	cur := from
	for i := 0; i < len(ops); {
		old, ok := ops[i].rr.(*dns.SOA)
		if !ok || !ops[i].del {
			return nil, fmt.Errorf("a difference does not begin with the SOA of the version it changes: %s", ops[i].rr)
		}
		if old.Serial != cur {
			return nil, fmt.Errorf("a difference changes serial %d where %d was expected", old.Serial, cur)
		}
		d := ixfrDelta{from: cur, del: []dns.RR{old}}
		for i++; i < len(ops) && ops[i].del; i++ {
			d.del = append(d.del, ops[i].rr)
		}
		if i == len(ops) {
			return nil, fmt.Errorf("the difference from serial %d has no new SOA", cur)
		}
		// add switches sections at each SOA: this one opens the
		// additions, and the additions hold no other.
		soa := ops[i].rr.(*dns.SOA)
		d.to, d.add = soa.Serial, []dns.RR{soa}
		for i++; i < len(ops) && !ops[i].del; i++ {
			d.add = append(d.add, ops[i].rr)
		}
		if !serialNewer(d.to, d.from) {
			return nil, fmt.Errorf("a difference goes from serial %d to %d, which is not newer", d.from, d.to)
		}
		cur = d.to
		out = append(out, d)
	}
	if cur != to {
		return nil, fmt.Errorf("the differences end at serial %d, the transfer is of serial %d", cur, to)
	}
	return out, nil
}

// applyIXFR makes the new version of the zone from base and the
// differences of an incremental IXFR of serial to: each difference, in
// order, applied with zone.Zone.Apply, which checks it whole (a deletion
// of a record the version does not hold, a record that breaks a zone
// rule) and leaves the version it is applied to untouched. The result
// gets the zone's ZONEMD check, as a loaded zone does. Any failure
// leaves nothing: the caller falls back to AXFR. The differences are
// returned as changesets for the journal, which then need not compute
// them.
func (c *Catalog) applyIXFR(e *zoneEntry, base *zone.Zone, a *ixfrApply, to uint32) (*transferred, error) {
	deltas, err := splitDeltas(a.ops, base.Serial(), to)
	if err != nil {
		return nil, err
	}
	res := &transferred{z: base, base: base, how: "incremental"}
	journal := true
	for _, d := range deltas {
		// Apply takes the records as the primary sent them: it makes
		// their canonical form (the zone's walk's, zone.CanonicalRecord)
		// for itself, and so does the journal's changeset. Making it a
		// third time first, as this did, took 7-17 ms of a TLD's IXFR of
		// 1,000 delegations before Apply started.
		nz, err := res.z.Apply(d.del, d.add)
		if err != nil {
			return nil, fmt.Errorf("the difference from serial %d to %d: %w", d.from, d.to, err)
		}
		if nz.Serial() != d.to {
			return nil, fmt.Errorf("the difference from serial %d to %d makes serial %d", d.from, d.to, nz.Serial())
		}
		if h := nz.Applied(); h != "incremental" && res.how == "incremental" {
			res.how = h
		}
		res.z = nz
		if journal {
			cs, err := newChangeset(base.Apex(), d.del, d.add)
			if err != nil {
				c.log.Warn("an IXFR difference cannot be journaled as received; the journal computes the difference", "zone", e.origin, "err", err)
				journal, res.sets = false, nil
				continue
			}
			res.sets = append(res.sets, cs)
		}
	}
	if err := checkZONEMD(res.z, e.zonemd); err != nil {
		return nil, fmt.Errorf("the changed zone fails ZONEMD: %w", err)
	}
	return res, nil
}

// zoneWriter writes a transferred zone as a master file to a temporary
// file beside the zone's file, hashing it as it goes for the catalog's
// file stamp.
type zoneWriter struct {
	path string
	tmp  *os.File
	bw   *bufio.Writer
	sum  hash.Hash
	size int64
	done bool
}

func newZoneWriter(path string) (*zoneWriter, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".xfr-*")
	if err != nil {
		return nil, fmt.Errorf("creating the transfer's temporary file beside %s: %w", path, err)
	}
	w := &zoneWriter{path: path, tmp: tmp, sum: sha256.New()}
	w.bw = bufio.NewWriterSize(io.MultiWriter(tmp, w.sum, (*countWriter)(&w.size)), 64<<10)
	return w, nil
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }

func (w *zoneWriter) write(rr dns.RR) error {
	if _, err := w.bw.WriteString(rr.String()); err != nil {
		return err
	}
	return w.bw.WriteByte('\n')
}

// discard removes the temporary file unless it was committed.
func (w *zoneWriter) discard() {
	if !w.done {
		w.tmp.Close()
		os.Remove(w.tmp.Name())
	}
}

// commitZone loads the transferred zone from the temporary file with the
// checks any zone file gets and, only when it loads, makes the file the
// zone's copy on disk: fsync, rename, fsync of the directory.
func (c *Catalog) commitZone(e *zoneEntry, w *zoneWriter) (*zone.Zone, error) {
	if err := w.bw.Flush(); err != nil {
		return nil, fmt.Errorf("writing %s: %w", w.tmp.Name(), err)
	}
	if err := w.tmp.Sync(); err != nil {
		return nil, fmt.Errorf("writing %s: %w", w.tmp.Name(), err)
	}
	z, err := zone.LoadFile(e.origin, w.tmp.Name())
	if err != nil {
		return nil, fmt.Errorf("the transferred zone fails the zone checks: %w", err)
	}
	if err := checkZONEMD(z, e.zonemd); err != nil {
		return nil, fmt.Errorf("the transferred zone fails ZONEMD: %w", err)
	}
	// A copy of an earlier version still being written must not land
	// over this one.
	e.sec.waitCopy(true)
	stamp, err := w.commit()
	if err != nil {
		return nil, err
	}
	e.sec.mu.Lock()
	e.sec.pendingStamp = stamp
	e.sec.mu.Unlock()
	return z, nil
}

// commit makes the written file the zone's copy on disk: flush, fsync,
// rename over the copy, fsync of the directory, so that the copy is the
// old file or the new one whatever happens. It returns the new file's
// stamp.
func (w *zoneWriter) commit() (fileStamp, error) {
	if err := w.bw.Flush(); err != nil {
		return fileStamp{}, fmt.Errorf("writing %s: %w", w.tmp.Name(), err)
	}
	if err := w.tmp.Sync(); err != nil {
		return fileStamp{}, fmt.Errorf("writing %s: %w", w.tmp.Name(), err)
	}
	if err := w.tmp.Close(); err != nil {
		return fileStamp{}, err
	}
	if err := os.Rename(w.tmp.Name(), w.path); err != nil {
		return fileStamp{}, fmt.Errorf("replacing the copy on disk %s: %w", w.path, err)
	}
	w.done = true
	if d, err := os.Open(filepath.Dir(w.path)); err == nil {
		d.Sync()
		d.Close()
	}
	st := fileStamp{size: w.size, valid: true}
	w.sum.Sum(st.sum[:0])
	return st, nil
}

// writeCopy writes the copy on disk of z, a version just published that
// was made from differences, in the background: the publication does not
// wait for the text of a whole zone to be written. Writes run one at a
// time in the order asked; one superseded by a newer version before it
// starts is skipped. Until the copy is written the file holds an older
// version, whole (see zoneWriter.commit): a restart meanwhile serves that
// and refreshes from it, by IXFR from its serial.
func (c *Catalog) writeCopy(e *zoneEntry, z *zone.Zone) {
	s := e.sec
	done := make(chan struct{})
	s.mu.Lock()
	prev := s.copying
	s.copying, s.copyWant = done, z
	s.mu.Unlock()
	go func() {
		defer close(done)
		if prev != nil {
			<-prev
		}
		s.mu.Lock()
		superseded := s.copyWant != z
		s.mu.Unlock()
		if superseded {
			return
		}
		start := time.Now()
		stamp, err := writeZoneCopy(e.file, z)
		if err != nil {
			c.log.Error("cannot write the copy on disk of the version served; a restart serves the copy there and refreshes from it",
				"zone", e.origin, "file", e.file, "serial", z.Serial(), "err", err)
			return
		}
		s.mu.Lock()
		s.copyOf, s.copyStamp = z, stamp
		s.mu.Unlock()
		c.log.Debug("copy on disk written", "zone", e.origin, "file", e.file, "serial", z.Serial(), "duration", time.Since(start))
		// Writing a large zone's text leaves garbage of its own, and
		// may end after the update's collection and its hold: the
		// signed TLD's copy took 6-9 s, and with a hold of 2 s the
		// daemon stayed at 888 MiB, 39% over its size after the
		// AXFR, for good. The hold counts from this collection too.
		c.afterUpdate.soon(z.MemoryBytes(), nil)
	}()
}

// waitCopy waits until the copies on disk asked of writeCopy so far are
// written; with cancel, those not yet started are skipped.
func (s *secondary) waitCopy(cancel bool) {
	s.mu.Lock()
	done := s.copying
	if cancel {
		s.copyWant = nil
	}
	s.mu.Unlock()
	if done != nil {
		<-done
	}
}

// writtenCopy returns the stamp of the copy on disk when it was written
// from z, after any write in progress has ended.
func (s *secondary) writtenCopy(z *zone.Zone) (fileStamp, bool) {
	s.waitCopy(false)
	s.mu.Lock()
	defer s.mu.Unlock()
	if z == nil || s.copyOf != z {
		return fileStamp{}, false
	}
	return s.copyStamp, true
}

// writeZoneCopy writes z to path as a master file through a temporary file
// beside it (zoneWriter): the SOA first, where readCopySOA and people look
// for it, then the other records in the order of the zone's walk.
func writeZoneCopy(path string, z *zone.Zone) (fileStamp, error) {
	w, err := newZoneWriter(path)
	if err != nil {
		return fileStamp{}, err
	}
	defer w.discard()
	apex := z.Apex()
	var soa dns.RR
	err = z.Walk(func(r *zone.Record) error {
		if r.Type == dns.TypeSOA && bytes.Equal(r.Owner, apex) {
			rr, err := r.RR()
			soa = rr
			if err != nil {
				return err
			}
			return errFound
		}
		return nil
	})
	if err != errFound {
		if err == nil {
			err = fmt.Errorf("the zone has no SOA")
		}
		return fileStamp{}, err
	}
	if err := w.write(soa); err != nil {
		return fileStamp{}, err
	}
	var line []byte
	now := time.Now().Unix()
	err = z.Walk(func(r *zone.Record) error {
		if r.Type == dns.TypeSOA && bytes.Equal(r.Owner, apex) {
			return nil
		}
		var ok bool
		if line, ok = appendRecordText(line[:0], r, now); ok {
			_, err := w.bw.Write(line)
			return err
		}
		rr, err := r.RR()
		if err != nil {
			return err
		}
		return w.write(rr)
	})
	if err != nil {
		return fileStamp{}, fmt.Errorf("writing %s: %w", w.tmp.Name(), err)
	}
	return w.commit()
}

// publishTransfer makes the transferred version the one served, through
// the catalog's one publication path, with the stamp of the file just
// written (none yet when the copy is written after: see writeCopy), so
// that a reload of the unchanged file does not build it again. The
// differences of an incremental IXFR go to the journal as they are.
func (c *Catalog) publishTransfer(e *zoneEntry, res *transferred) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.gone {
		return fmt.Errorf("the zone was removed from catalog %s meanwhile", e.catalog)
	}
	var stamp fileStamp
	if res.copied {
		e.sec.mu.Lock()
		stamp = e.sec.pendingStamp
		e.sec.mu.Unlock()
	}
	old, oldStamp, oldLoaded := e.cur, e.stamp, e.loaded
	if res.sets != nil && c.onKnown != nil && old == res.base {
		c.onKnown(e.origin, old, res.z, res.sets)
	}
	e.cur, e.stamp, e.loaded = res.z, stamp, c.xfr.now()
	if _, err := c.publish(); err != nil {
		e.cur, e.stamp, e.loaded = old, oldStamp, oldLoaded
		return err
	}
	e.loads++
	e.lastErr = nil
	return nil
}

// secondaryLoaded is called by the catalog when a secondary zone's copy
// on disk has been loaded (at start or by a reload): the SOA timers come
// from it, and the expire timer runs from the file's modification time,
// which touchCopy and the transfers set to when a primary last confirmed
// the zone.
func (c *Catalog) secondaryLoaded(e *zoneEntry) {
	soa, mtime, err := readCopySOA(e.file, e.origin)
	if err != nil {
		c.log.Warn("cannot read the SOA timers of the copy on disk", "zone", e.origin, "file", e.file, "err", err)
		return
	}
	s := e.sec
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setTimers(soa, mtime, 0, false)
	// The refresh runs at once in any case (runSecondary).
	s.st.nextRefresh = c.xfr.now()
	if !c.xfr.now().Before(s.st.expires) {
		s.st.expired = true
		s.st.lastErr = "the copy on disk expired before the start: no primary confirmed it within its SOA expire time"
	}
}

// readCopySOA reads the SOA of a zone file, its first record when the file
// was written by a transfer, and the file's modification time.
func readCopySOA(path, origin string) (*dns.SOA, time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, time.Time{}, err
	}
	zp := dns.NewZoneParser(bufio.NewReader(f), origin, path)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if soa, isSOA := rr.(*dns.SOA); isSOA {
			return soa, fi.ModTime(), nil
		}
	}
	if err := zp.Err(); err != nil {
		return nil, time.Time{}, err
	}
	return nil, time.Time{}, fmt.Errorf("no SOA record")
}

// zoneExpiry is a secondary zone's time left before it expires.
type zoneExpiry struct {
	origin string
	left   time.Duration // 0 once expired
}

// expiries reports the time left before expiry of every secondary zone
// that has data, for the metrics.
func (c *Catalog) expiries() []zoneExpiry {
	now := c.xfr.now()
	var out []zoneExpiry
	c.emu.RLock()
	entries := c.entries
	c.emu.RUnlock()
	for _, e := range entries {
		if e.sec == nil {
			continue
		}
		e.sec.mu.Lock()
		exp, expired := e.sec.st.expires, e.sec.st.expired
		e.sec.mu.Unlock()
		if exp.IsZero() {
			continue
		}
		left := max(exp.Sub(now), 0)
		if expired {
			left = 0
		}
		out = append(out, zoneExpiry{e.origin, left})
	}
	return out
}

// TransferStatus reports the secondary state of each zone named, every
// zone when names is empty, for ringctl zone-status.
func (c *Catalog) TransferStatus(names []string) ([]control.ZoneTransferStatus, error) {
	var todo []*zoneEntry
	if len(names) == 0 {
		c.emu.RLock()
		todo = c.entries
		c.emu.RUnlock()
	}
	for _, n := range names {
		e := c.find(CanonicalOrigin(n))
		if e == nil {
			return nil, fmt.Errorf("%w: %s", ErrUnknownZone, CanonicalOrigin(n))
		}
		todo = append(todo, e)
	}
	out := make([]control.ZoneTransferStatus, 0, len(todo))
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range todo {
		zs := control.ZoneTransferStatus{Origin: e.origin, File: e.file, Role: "primary"}
		if e.cur != nil {
			zs.Serving = true
			zs.Serial = e.cur.Serial()
			zs.ZONEMD = zonemdState(e.cur, e.zonemd)
		}
		zs.Catalog = e.catalog
		if e.catz != nil {
			n := e.catz.members
			zs.CatalogMembers = &n
			zs.LastError = e.catz.lastErr
		}
		if s := e.sec; s != nil {
			zs.Role = "secondary"
			for _, p := range s.primaries {
				zs.Primaries = append(zs.Primaries, p.String())
			}
			zs.Key = s.key
			s.mu.Lock()
			zs.LastRefresh, zs.NextRefresh, zs.Expires = s.st.lastRefresh, s.st.nextRefresh, s.st.expires
			zs.Expired = s.st.expired || e.cur == nil
			if s.st.lastErr != "" {
				zs.LastError = s.st.lastErr
			}
			zs.Transfers, zs.Failures, zs.Notifies = s.st.transfers, s.st.failures, s.st.notifies
			if s.st.last.Kind != "" {
				last := s.st.last
				zs.LastTransfer = &last
			}
			s.mu.Unlock()
		}
		out = append(out, zs)
	}
	return out, nil
}
