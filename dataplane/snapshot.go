package dataplane

import (
	"strings"
	"sync/atomic"

	"github.com/ringdns/ringdns/zone"
)

// Config holds the answer engine's settings that are not zone data.
type Config struct {
	// UDPSize is the EDNS UDP payload size we advertise and the most we send
	// over UDP whatever the client offers (RFC 6891). 0 means 1232.
	UDPSize int
	// NSID is returned in an NSID option (RFC 5001) to queries that ask for
	// it. Empty means NSID is not configured.
	NSID []byte
	// Identity answers CHAOS TXT id.server and hostname.bind; Version answers
	// version.bind and version.server. Empty means REFUSED.
	Identity string
	Version  string
	// Cookies, when set, are the DNS cookies (RFC 7873) of queries
	// answered with their client's address (Worker, AnswerFrom); the
	// same Cookies are shared by every snapshot, so that rotating the
	// secrets needs no new one. nil ignores COOKIE options.
	Cookies *Cookies
}

// Snapshot is an immutable view of everything the answer engine needs. The
// control plane builds a new one on every reload and publishes it with an
// atomic pointer swap; workers never lock it.
type Snapshot struct {
	zones    *zone.Set
	cfg      Config
	chaosTab []chaosEntry
	// expired has an entry per zone of the set, true for a secondary zone
	// that has expired or not yet been transferred: every query for it
	// is answered SERVFAIL (RFC 1035 section 4.3.5 has a zone whose
	// expire time has passed no longer be answered). nil when none is.
	expired []bool
	// expire has an entry per zone of the set, what the EDNS EXPIRE
	// option is answered with for it; nil when it is never answered.
	expire []ZoneExpire
}

// ZoneExpire is what the EDNS EXPIRE option (RFC 7314) of an
// authoritative answer from one zone holds.
type ZoneExpire struct {
	// At is, for a secondary zone, the Unix time in seconds at which it
	// expires: the control plane moves it on each time a primary
	// confirms the zone, without publishing a new snapshot, and the
	// answer holds the seconds left. nil for a primary zone.
	At *atomic.Int64
	// SOA is a primary zone's SOA expire field, which RFC 7314 section 3
	// has a primary answer with.
	SOA uint32
}

// chaosEntry is a CHAOS TXT identity answer prepared at snapshot creation.
type chaosEntry struct {
	name  []byte // lowercase wire format
	rdata []byte // TXT rdata: the text split into strings of at most 255 bytes
}

// NewSnapshotZones prepares a snapshot over a zone set in which the zones
// i with expired[i] set answer SERVFAIL to every query, and whose
// authoritative answers to a query with the EDNS EXPIRE option carry
// expire[i] (none when expire is nil). Both are indexed as set.Zones() and
// copied.
func NewSnapshotZones(set *zone.Set, cfg Config, expired []bool, expire []ZoneExpire) *Snapshot {
	s := NewSnapshot(set, cfg)
	if expire != nil {
		s.expire = make([]ZoneExpire, len(set.Zones()))
		copy(s.expire, expire)
	}
	for _, x := range expired {
		if x {
			s.expired = make([]bool, len(set.Zones()))
			copy(s.expired, expired)
			break
		}
	}
	return s
}

// Expired reports whether zone i of the set is answered SERVFAIL.
func (s *Snapshot) Expired(i int) bool { return s.expired != nil && s.expired[i] }

// NewSnapshot prepares a snapshot over a zone set.
func NewSnapshot(set *zone.Set, cfg Config) *Snapshot {
	if cfg.UDPSize == 0 {
		cfg.UDPSize = 1232
	}
	if cfg.UDPSize < 512 {
		cfg.UDPSize = 512
	}
	if cfg.UDPSize > 65535 {
		cfg.UDPSize = 65535
	}
	s := &Snapshot{zones: set, cfg: cfg}
	add := func(text string, names ...string) {
		if text == "" {
			return
		}
		var rd []byte
		for t := []byte(text); len(t) > 0; {
			n := min(len(t), 255)
			rd = append(rd, byte(n))
			rd = append(rd, t[:n]...)
			t = t[n:]
		}
		for _, nm := range names {
			var w []byte
			for _, l := range strings.Split(nm, ".") {
				w = append(w, byte(len(l)))
				w = append(w, l...)
			}
			s.chaosTab = append(s.chaosTab, chaosEntry{name: append(w, 0), rdata: rd})
		}
	}
	add(cfg.Identity, "id.server", "hostname.bind")
	add(cfg.Version, "version.bind", "version.server")
	return s
}

// chaos answers CHAOS-class queries: TXT for the identity names that are
// configured, REFUSED for everything else.
func (s *Snapshot) chaos(qy *query, r *reply, res *Result) {
	r.rcode, res.Kind = rcodeRefused, KindRefused
	// Only TXT is answered: ANY gets REFUSED like any other type, as Knot
	// DNS answers it.
	if qy.qtype != typeTXT {
		return
	}
	for i := range s.chaosTab {
		e := &s.chaosTab[i]
		if string(e.name) != string(qy.name.b[:qy.name.n]) {
			continue
		}
		need := 12 + len(e.rdata)
		if r.n+need > len(r.buf) {
			r.full = true
			return
		}
		b := r.buf[r.n:]
		put16(b, 0xC000|hdrLen)
		put16(b[2:], typeTXT)
		put16(b[4:], classCH)
		b[6], b[7], b[8], b[9] = 0, 0, 0, 0
		put16(b[10:], uint16(len(e.rdata)))
		copy(b[12:], e.rdata)
		r.addBytes(r.n, r.n+need)
		r.n += need
		// No AA: the identity is not data of any zone we are
		// authoritative for (Knot DNS leaves AA clear here too).
		r.an = 1
		r.rcode, res.Kind = rcodeNoError, KindChaos
		return
	}
}

// Zones returns the snapshot's zone set.
func (s *Snapshot) Zones() *zone.Set { return s.zones }

// Config returns the snapshot's engine settings.
func (s *Snapshot) Config() Config { return s.cfg }
