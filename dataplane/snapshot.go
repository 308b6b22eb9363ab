package dataplane

import "github.com/ringdns/ringdns/zone"

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
}

// Snapshot is an immutable view of everything the answer engine needs. The
// control plane builds a new one on every reload and publishes it with an
// atomic pointer swap; workers never lock it.
type Snapshot struct {
	zones *zone.Set
	cfg   Config
}

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
	return &Snapshot{zones: set, cfg: cfg}
}

// Zones returns the snapshot's zone set.
func (s *Snapshot) Zones() *zone.Set { return s.zones }

// Config returns the snapshot's engine settings.
func (s *Snapshot) Config() Config { return s.cfg }
