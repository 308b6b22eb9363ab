package controlplane

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"

	"github.com/ringdns/ringdns/dataplane"
)

// RRLConfig is the [rrl] table: response rate limiting (see dataplane.RRL),
// on the AF_XDP and the socket workers alike. TCP is never limited.
type RRLConfig struct {
	// Rate is the responses per second allowed to one client prefix for
	// one bucket: an answer's name and type, a referral's delegation, a
	// NODATA's name, the zone of an NXDOMAIN, or all errors. 0 (the
	// default) turns limiting off.
	Rate int `toml:"rate"`
	// Burst is how many responses a bucket allows at once after it has
	// been idle; default Rate (one second's worth).
	Burst int `toml:"burst"`
	// Slip: every Slip-th limited response goes out as an empty reply
	// with TC=1, so that a real client behind a spoofed prefix retries
	// over TCP; 0 drops them all, 1 truncates each. Default 2, BIND's.
	Slip *int `toml:"slip"`
	// IPv4Prefix and IPv6Prefix are the lengths of the prefixes whose
	// clients share buckets; default 24 and 56.
	IPv4Prefix int `toml:"ipv4-prefix"`
	IPv6Prefix int `toml:"ipv6-prefix"`
	// Whitelist lists prefixes ("192.0.2.0/24", "2001:db8::/32", or an
	// address alone) whose clients are never limited: monitoring, the
	// resolvers of the operator's own network.
	Whitelist []string `toml:"whitelist"`
	// TableSize is the number of buckets of each worker's table, rounded
	// up to a power of two; 16 bytes each. Default 65536 (1 MiB a worker).
	TableSize int `toml:"table-size"`

	whitelist []netip.Prefix
}

// Defaults and bounds of the [rrl] table.
const (
	DefaultRRLSlip       = 2
	DefaultRRLIPv4Prefix = 24
	DefaultRRLIPv6Prefix = 56
	DefaultRRLTableSize  = 1 << 16
	// MinRRLTableSize keeps a table large enough to hold the buckets of
	// the clients of a quiet server; the maximum is the data plane's.
	MinRRLTableSize = 1024
	// MaxRRLWhitelist bounds the whitelist, which the workers scan for
	// every response their buckets would limit.
	MaxRRLWhitelist = 256
)

// normalize fills the defaults and validates the table; errors name the
// setting. A nil table (no [rrl] in the file) is valid and off.
func (r *RRLConfig) normalize() []error {
	if r == nil {
		return nil
	}
	var errs []error
	if r.Rate < 0 {
		errs = append(errs, fmt.Errorf("rrl.rate %d: negative; 0 turns rate limiting off", r.Rate))
	}
	if r.Burst == 0 {
		r.Burst = r.Rate
	}
	if r.Burst < 0 {
		errs = append(errs, fmt.Errorf("rrl.burst %d: negative", r.Burst))
	}
	if r.Slip == nil {
		s := DefaultRRLSlip
		r.Slip = &s
	}
	if *r.Slip < 0 || *r.Slip > 100 {
		errs = append(errs, fmt.Errorf("rrl.slip %d: must be 0 (drop every limited response) to 100; 1 truncates every one, 2 every other", *r.Slip))
	}
	if r.IPv4Prefix == 0 {
		r.IPv4Prefix = DefaultRRLIPv4Prefix
	}
	if r.IPv4Prefix < 1 || r.IPv4Prefix > 32 {
		errs = append(errs, fmt.Errorf("rrl.ipv4-prefix %d: must be 1 to 32", r.IPv4Prefix))
	}
	if r.IPv6Prefix == 0 {
		r.IPv6Prefix = DefaultRRLIPv6Prefix
	}
	if r.IPv6Prefix < 1 || r.IPv6Prefix > 128 {
		errs = append(errs, fmt.Errorf("rrl.ipv6-prefix %d: must be 1 to 128", r.IPv6Prefix))
	}
	if r.TableSize == 0 {
		r.TableSize = DefaultRRLTableSize
	}
	if r.TableSize < MinRRLTableSize || r.TableSize > dataplane.MaxRRLTableSize {
		errs = append(errs, fmt.Errorf("rrl.table-size %d: must be %d to %d buckets per worker", r.TableSize, MinRRLTableSize, dataplane.MaxRRLTableSize))
	}
	if len(r.Whitelist) > MaxRRLWhitelist {
		errs = append(errs, fmt.Errorf("rrl.whitelist: %d entries, at most %d: whitelist wider prefixes", len(r.Whitelist), MaxRRLWhitelist))
	}
	r.whitelist = r.whitelist[:0]
	for _, w := range r.Whitelist {
		p, err := parsePrefixOrAddr(w)
		if err != nil {
			errs = append(errs, fmt.Errorf("rrl.whitelist %q: %v", w, err))
			continue
		}
		r.whitelist = append(r.whitelist, p)
	}
	return errs
}

// parsePrefixOrAddr parses "ADDR/BITS" or an address alone (a prefix of
// its full length); the address's host bits are cleared.
func parsePrefixOrAddr(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a.Zone() != "" {
		return netip.Prefix{}, errors.New("an address with a zone cannot be matched")
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// on reports whether the table turns limiting on.
func (r *RRLConfig) on() bool { return r != nil && r.Rate > 0 }

// dataplane returns the data plane's configuration for a worker that
// shares its clients' traffic with workers-1 others.
func (r *RRLConfig) dataplane(workers int) dataplane.RRLConfig {
	return dataplane.RRLConfig{Rate: r.Rate, Burst: r.Burst, Slip: *r.Slip, IPv4Prefix: r.IPv4Prefix,
		IPv6Prefix: r.IPv6Prefix, Whitelist: r.whitelist, TableSize: r.TableSize, Workers: workers}
}

// applyRRL gives every UDP worker its limiter for the normalized table r
// (nil or rate 0: none). A flood spoofed over many ports is spread over
// the workers that serve the same traffic (the AF_XDP queues of the
// interface by RSS, the sockets of one listen address by SO_REUSEPORT), so
// each of them is given Rate divided by their number (see dataplane.RRL).
// A worker's new limiter keeps its old table when the size is unchanged,
// so that a reload hands out no fresh bursts. It is called at start and on
// reload, never concurrently (ReloadRRL holds rrlReloads).
func (s *Server) applyRRL(r *RRLConfig) error {
	group := map[string]int{}
	for _, w := range s.workers {
		group[w.Listen]++
	}
	made := make([]*dataplane.RRL, len(s.workers))
	if r.on() {
		for i, w := range s.workers {
			l, err := dataplane.NewRRL(r.dataplane(group[w.Listen]), w.worker.RRL.Load())
			if err != nil {
				return fmt.Errorf("rrl: %w", err)
			}
			made[i] = l
		}
	}
	// Published only once every one was made, so that an error changes
	// nothing.
	for i, w := range s.workers {
		w.worker.RRL.Store(made[i])
	}
	return nil
}

// rrlReloads serializes ReloadRRL: a reload's limiters are made over the
// limiters in force, which another reload must not replace meanwhile.
var rrlReloads sync.Mutex

// ReloadRRL reads the [rrl] table of the configuration file again and
// applies it, as a reload of every zone does (zones names none); a table
// that does not validate is logged and the limits in force are kept.
func (s *Server) ReloadRRL(zones []string) {
	if len(zones) > 0 || s.cfg == nil {
		return
	}
	path := s.cfg.Source
	if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
		return
	}
	rrlReloads.Lock()
	defer rrlReloads.Unlock()
	c, err := LoadConfig(path)
	if err == nil {
		if errs := c.RRL.normalize(); len(errs) > 0 {
			err = errors.Join(errs...)
		}
	}
	if err == nil {
		err = s.applyRRL(c.RRL)
	}
	if err != nil {
		s.log.Error("reload: the [rrl] table was not applied; the rate limits in force are kept", "config", path, "err", err)
		return
	}
	if c.RRL.on() {
		s.log.Info("rrl", "rate", c.RRL.Rate, "burst", c.RRL.Burst, "slip", *c.RRL.Slip, "ipv4_prefix", c.RRL.IPv4Prefix,
			"ipv6_prefix", c.RRL.IPv6Prefix, "whitelist", len(c.RRL.whitelist), "table_size", c.RRL.TableSize)
	} else {
		s.log.Info("rrl off")
	}
}
