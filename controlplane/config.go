package controlplane

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/ringdns/ringdns/controlplane/control"
	"github.com/ringdns/ringdns/nic"
)

// Config is the whole daemon configuration: the [server] table, the [[zone]]
// entries and the optional [xdp] table of a TOML file, after flags were
// applied.
type Config struct {
	Server ServerConfig `toml:"server"`
	Keys   []KeyConfig  `toml:"key"`
	Zones  []ZoneConfig `toml:"zone"`
	XDP    *XDPConfig   `toml:"xdp"`
	// RRL is the [rrl] table: response rate limiting (rrl.go); nil: off.
	RRL *RRLConfig `toml:"rrl"`
	// Cookies is the [cookies] table: DNS cookies (cookie.go).
	Cookies CookieConfig `toml:"cookies"`
	// Dnstap is the [dnstap] table: dnstap logging (dnstap.go); nil: off.
	Dnstap *DnstapConfig `toml:"dnstap"`
	// RSSAC002 is the [rssac002] table: daily statistics (rssac.go); nil: off.
	RSSAC002 *RSSACConfig `toml:"rssac002"`

	// FS, when set, is where relative zone file names are read from instead
	// of the operating system's file system. The embedded default
	// configuration uses it to serve its example zone with no file on disk.
	FS fs.FS `toml:"-"`
	// Source names where the configuration came from, for logs and errors.
	Source string `toml:"-"`
}

// ServerConfig is the [server] table.
type ServerConfig struct {
	// Listen lists the UDP and TCP addresses to serve, "ADDR:PORT" or
	// "[ADDR6]:PORT". Port 0 picks one free port for all sockets of an
	// address.
	Listen []string `toml:"listen"`
	// CPUs is a CPU list such as "0-1,3": one socket worker per CPU and
	// listen address, pinned to it. Empty means every CPU the process may
	// run on; on macOS, which cannot pin threads, it must be empty, and
	// each listen address has one unpinned worker (see socketWorkerCPUs).
	CPUs string `toml:"cpus"`
	// UDPSize is the EDNS payload size advertised and the largest UDP reply.
	UDPSize int `toml:"udp-size"`
	// NSID is returned to queries that ask for it (RFC 5001).
	NSID string `toml:"nsid"`
	// Identity answers CHAOS id.server and hostname.bind; Version answers
	// version.bind and version.server. Empty means REFUSED.
	Identity string `toml:"identity"`
	Version  string `toml:"version"`
	// Control is the path of the control socket ringctl talks to.
	Control string `toml:"control"`
	// Metrics is the "ADDR:PORT" of the Prometheus endpoint; empty disables it.
	Metrics string `toml:"metrics"`
	// TCPIdleTimeout closes a TCP connection that has not begun a query
	// for this long; TCPMessageTimeout one whose query, begun, is not
	// complete this long after its first byte. TCPMaxConnections bounds
	// concurrent connections, TCPMaxPerAddress and TCPMaxPerPrefix those
	// of one address and of one /24 (IPv4) or /56 (IPv6); a new connection
	// over a bound takes the place of the connection idle longest within
	// it.
	TCPIdleTimeout    Duration `toml:"tcp-idle-timeout"`
	TCPMessageTimeout Duration `toml:"tcp-message-timeout"`
	TCPMaxConnections int      `toml:"tcp-max-connections"`
	TCPMaxPerAddress  int      `toml:"tcp-max-connections-per-address"`
	TCPMaxPerPrefix   int      `toml:"tcp-max-connections-per-prefix"`
	// Batch is the number of packets a socket worker handles per batch.
	Batch int `toml:"batch"`
	// TransfersMax bounds the zone transfers out (AXFR, IXFR) served at
	// once; a request over it is answered SERVFAIL, and the client
	// retries later, as Knot DNS does over its own bound.
	TransfersMax int `toml:"transfers-max"`
	// TransfersOutRate bounds the bytes per second of all transfers out
	// together (0: no bound). A transfer streams as fast as the secondary
	// takes it, and its encoding and the kernel's TCP work take CPU from
	// the workers answering queries on the same cores: on a machine with
	// few cores, a bound keeps the packet path's rate.
	TransfersOutRate int64 `toml:"transfers-out-rate"`
	// JournalVersions and JournalBytes bound each zone's journal of
	// differences kept for IXFR out: the oldest versions are dropped
	// first, and a request older than the journal gets AXFR.
	JournalVersions int   `toml:"journal-versions"`
	JournalBytes    int64 `toml:"journal-bytes"`
	// RebuildSuperseded is the percentage of a zone's memory that the
	// data its updates in place replaced may take before its table is
	// built again from its records, in the background (rebuild.go); 100
	// never rebuilds.
	RebuildSuperseded int `toml:"rebuild-superseded"`
	// UpdateMemoryHold is how long the memory an update of a large zone
	// freed is kept, for the next update to reuse, before it is given
	// back to the system when no update followed (updategc.go).
	UpdateMemoryHold Duration `toml:"update-memory-hold"`
	// UpdateAheadKeep keeps the arrays made for a large zone's next
	// update (zone.Zone.PrepareNext) when the hold gives the rest back,
	// so that an update after a quiet spell finds them resident
	// (updategc.go).
	UpdateAheadKeep bool `toml:"update-ahead-keep"`
	// User and Group, when User is set, are who ringdns runs as once its
	// sockets are open, its XDP program attached and its zones loaded:
	// started as root, it switches to them, keeping only the capabilities
	// it still needs (see cmd/ringdns and internal/privdrop). Names or
	// numbers; without Group, the user's primary group.
	User  string `toml:"user"`
	Group string `toml:"group"`
	// Seccomp, once set up, restricts ringdns to the system calls it makes
	// while running (internal/privdrop.Seccomp; linux/amd64 only).
	Seccomp bool `toml:"seccomp"`
}

// ZoneConfig is one [[zone]] entry.
type ZoneConfig struct {
	Origin string `toml:"origin"`
	// File is the master file. A relative name is relative to the directory
	// of the configuration file that names it. For a secondary zone it is
	// where the transferred copy is kept.
	File string `toml:"file"`
	// Primaries makes the zone a secondary: "ADDR" or "ADDR:PORT" (port 53
	// when none) of the servers it is transferred from, tried in order.
	Primaries []string `toml:"primaries"`
	// Key names the [[key]] that signs the transfers from the primaries,
	// the refresh queries, and the NOTIFY messages sent to Notify targets
	// that name no key of their own. Empty: unsigned.
	Key string `toml:"key"`
	// AllowNotify lists who may send NOTIFY for the zone (see ParseACL for
	// the form of an entry). The primaries may always, with Key when it is
	// set.
	AllowNotify []string `toml:"allow-notify"`
	// AllowTransfer lists who may transfer the zone out by AXFR or IXFR
	// (see ParseACL). Empty: nobody; everyone else is REFUSED.
	AllowTransfer []string `toml:"allow-transfer"`
	// Notify lists the servers sent NOTIFY on every new serial:
	// "ADDR[:PORT] [KEY]".
	Notify []string `toml:"notify"`
	// ZONEMD decides what a ZONEMD record at the apex (RFC 8976) does:
	// "verify" (the default) checks it when there is one, "require" also
	// refuses a zone without one, "ignore" never checks.
	ZONEMD string `toml:"zonemd"`
	// CatalogMembers makes a secondary zone a catalog zone (RFC 9432) that
	// ringdns consumes: the directory where the copies of its member zones
	// are kept (relative to the configuration file, like File; created
	// 0755 when missing). Every zone the catalog lists is served as a
	// secondary zone of its own, added and removed as the catalog changes.
	// A member inherits the catalog entry's primaries, key, allow-notify,
	// zonemd, allow-transfer and notify, so that a ringdns can feed a
	// further tier. A member whose name is a configured zone, or a member
	// of another catalog, is ignored with a warning (RFC 9432 section 5.4).
	CatalogMembers string `toml:"catalog-members"`
	// CatalogMembersMax bounds the members taken from the catalog, so that
	// a runaway producer cannot exhaust the daemon; the members past it,
	// in name order, are ignored with a warning. Default
	// DefaultCatalogMembersMax.
	CatalogMembersMax int `toml:"catalog-members-max"`

	// Parsed by Normalize from the settings above.
	PrimaryAddrs  []netip.AddrPort `toml:"-"`
	NotifyACL     []ACLEntry       `toml:"-"`
	TransferACL   []ACLEntry       `toml:"-"`
	NotifyTargets []Remote         `toml:"-"`
}

// Secondary reports whether the zone is transferred from primaries.
func (z *ZoneConfig) Secondary() bool { return len(z.Primaries) > 0 }

// Catalog reports whether the zone is a catalog zone whose members are
// served (catalog-members is set).
func (z *ZoneConfig) Catalog() bool { return z.CatalogMembers != "" }

// KeyConfig is one [[key]] entry: a TSIG key (RFC 8945).
type KeyConfig struct {
	// Name is the key's name as a domain name, as both ends must spell it.
	Name string `toml:"name"`
	// Algorithm is hmac-sha256 (the default), hmac-sha384, hmac-sha512,
	// hmac-sha224 or hmac-sha1.
	Algorithm string `toml:"algorithm"`
	// Secret is the shared secret in base64, as tsig-keygen and keymgr
	// print it.
	Secret string `toml:"secret"`
}

// XDPConfig is the [xdp] table.
type XDPConfig struct {
	// Interface is the network interface to attach to.
	Interface string `toml:"interface"`
	// Queues lists the RX queues to serve; empty means all of them.
	Queues []int `toml:"queues"`
	// Mode is "auto" (driver mode, else generic), "driver" (also spelled
	// "native") or "generic" (skb mode).
	Mode string `toml:"mode"`
	// ZeroCopy is "auto" (prefer zero-copy, fall back to copy mode), "on"
	// (require it) or "off".
	ZeroCopy string `toml:"zero-copy"`
	// Replace detaches an XDP program already attached to the interface.
	Replace bool `toml:"replace"`
	// BusyPoll makes the AF_XDP workers spin instead of sleeping in poll()
	// when their rings are empty: lower latency for a whole CPU each.
	BusyPoll bool `toml:"busy-poll"`
	// RxRingSize is the number of entries of each queue's fill and RX
	// rings, a power of two (DefaultXDPRxRingSize when 0). They hold the
	// queries that arrive while no worker reads the queue: a worker kept
	// off its CPU by other work, or the pause of an upgrade. Each queue's
	// UMEM has this many frames plus 2,048 (the TX ring's), of 4 KiB.
	RxRingSize int `toml:"rx-ring-size"`
}

// DefaultXDPRxRingSize is xdp.rx-ring-size's default: 8,192 queries per
// queue, 65 ms of 125,000 queries/s (about what one queue of this 2-vCPU
// VM answers at half of its saturation), for a UMEM of 40 MiB per queue.
// The 2,048 of before gave 16 ms, which an upgrade's pause or a worker
// waiting for its CPU on a loaded machine overran.
const DefaultXDPRxRingSize = 8192

// system is what the operating system offers the daemon (see package nic):
// thread pinning, the spreading of an address's datagrams over its
// sockets, AF_XDP. Normalize and NewServer read it here so that the tests
// can check on Linux the rules that apply on FreeBSD and macOS.
var system = systemTraits{runtime.GOOS, nic.CanPinThreads, nic.UDPSpreads, nic.HasXDP}

// systemTraits describes an operating system as system does.
type systemTraits struct {
	name                            string
	pinsThreads, spreadsUDP, hasXDP bool
}

// Duration is a time.Duration written in TOML as a string such as "10s".
type Duration time.Duration

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration in Go syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Defaults applied by Normalize to settings left empty.
const (
	DefaultUDPSize           = 1232
	DefaultTCPIdleTimeout    = 10 * time.Second
	DefaultTCPMaxConnections = 256
	DefaultBatch             = 64
	// DefaultTransfersMax is Knot DNS's default of concurrent transfers
	// out, as far as its xfr-workers go: a few, since each one streams a
	// whole zone over TCP while the packet path keeps its cores.
	DefaultTransfersMax    = 8
	DefaultJournalVersions = 100
	DefaultJournalBytes    = 64 << 20
	// DefaultRebuildSuperseded lets a zone updated in place hold a
	// quarter of its memory in data its updates replaced, then builds
	// its table again: a rebuild per few hundred updates of a thousand
	// delegations in a TLD.
	DefaultRebuildSuperseded = 25
	// DefaultUpdateMemoryHold keeps an update's freed memory for a minute:
	// the updates of a burst of IXFRs reuse it, while a zone published
	// every few minutes gives it back between its versions.
	DefaultUpdateMemoryHold = time.Minute
	// DefaultCatalogMembersMax bounds the members of one catalog zone:
	// each member costs a goroutine, a copy on disk and its tables, and
	// ten thousand is well above the catalogs of the hosting fleets that
	// use them, while far below what would exhaust descriptors or memory.
	DefaultCatalogMembersMax = 10000
)

// Defaults of the TCP bounds that keep one client from holding the TCP
// service.
const (
	// DefaultTCPMessageTimeout is Knot DNS's tcp-io-timeout: a client sends
	// a query of a few hundred bytes in one segment, so half a second
	// from its first byte to its last is a generous wait even over a long
	// path, and it is all a client that stalls mid-query holds its place.
	DefaultTCPMessageTimeout = 500 * time.Millisecond
	// DefaultTCPMaxPerAddress lets one address hold a sixteenth of the
	// default table: RFC 7766 section 6.2.2 asks a client for one
	// connection to a server, so sixteen leave room for a few clients
	// behind one NAT address. DefaultTCPMaxPerPrefix lets one /24 or /56,
	// which an attacker can fill with addresses, hold a quarter, so that
	// filling the table takes four of them.
	DefaultTCPMaxPerAddress = 16
	DefaultTCPMaxPerPrefix  = 64
)

// DefaultListen is where ringdns serves when nothing else is configured.
var DefaultListen = []string{"127.0.0.1:5353", "[::1]:5353"}

// ParseConfig decodes a TOML configuration. An unknown key is an error that
// names it, so a typo never silently falls back to a default. source names
// the file in errors.
func ParseConfig(data []byte, source string) (*Config, error) {
	var c Config
	md, err := toml.Decode(string(data), &c)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			if perr.LastKey != "" {
				return nil, fmt.Errorf("%s:%d: %s: %s", source, perr.Position.Line, perr.LastKey, perr.Message)
			}
			return nil, fmt.Errorf("%s:%d: %s", source, perr.Position.Line, perr.Message)
		}
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("%s: unknown configuration key %s", source, strings.Join(keys, ", "))
	}
	c.Source = source
	return &c, nil
}

// LoadConfig reads and decodes a TOML file and resolves its relative zone
// file names against the file's directory.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseConfigFile(data, path)
}

// ParseConfigFile is LoadConfig of data already read from path: the new
// process of a hand-over parses the bytes the old one read, so that both
// serve the same configuration whatever the file holds now.
func ParseConfigFile(data []byte, path string) (*Config, error) {
	c, err := ParseConfig(data, path)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	for i := range c.Zones {
		if f := c.Zones[i].File; f != "" && !filepath.IsAbs(f) {
			c.Zones[i].File = filepath.Join(dir, f)
		}
		if d := c.Zones[i].CatalogMembers; d != "" && !filepath.IsAbs(d) {
			c.Zones[i].CatalogMembers = filepath.Join(dir, d)
		}
	}
	if r := c.RSSAC002; r != nil && r.Dir != "" && !filepath.IsAbs(r.Dir) {
		r.Dir = filepath.Join(dir, r.Dir)
	}
	if d := c.Dnstap; d != nil {
		for _, p := range []*string{&d.Socket, &d.File} {
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(dir, *p)
			}
		}
	}
	return c, nil
}

// Normalize fills defaults and validates everything that can be checked
// without opening sockets or zone files. Errors name the offending setting.
func (c *Config) Normalize() error {
	s := &c.Server
	if len(s.Listen) == 0 {
		s.Listen = append([]string(nil), DefaultListen...)
	}
	var errs []error
	for _, l := range s.Listen {
		if _, err := netip.ParseAddrPort(l); err != nil {
			errs = append(errs, fmt.Errorf("server.listen %q: %v", l, err))
		}
	}
	if _, err := ParseCPUList(s.CPUs); err != nil {
		errs = append(errs, fmt.Errorf("server.cpus: %v", err))
	} else if s.CPUs != "" && !system.pinsThreads {
		// A list asks for pinned workers, which this system cannot give:
		// refused rather than ignored, so that a configuration written for
		// Linux or FreeBSD does not seem to be honoured.
		errs = append(errs, fmt.Errorf("server.cpus %q: %s cannot pin threads to CPUs; leave it empty to serve each listen address from one unpinned worker", s.CPUs, system.name))
	}
	if s.UDPSize == 0 {
		s.UDPSize = DefaultUDPSize
	}
	if s.UDPSize < 512 || s.UDPSize > 65535 {
		errs = append(errs, fmt.Errorf("server.udp-size %d: must be 512 to 65535", s.UDPSize))
	}
	if len(s.NSID) > 128 {
		errs = append(errs, fmt.Errorf("server.nsid: longer than 128 bytes"))
	}
	if s.Control == "" {
		s.Control = control.DefaultPath()
	}
	if s.Group != "" && s.User == "" {
		errs = append(errs, fmt.Errorf("server.group %q is set, but server.user is not: name the user to switch to as well", s.Group))
	}
	if s.Metrics != "" {
		if _, err := netip.ParseAddrPort(s.Metrics); err != nil {
			errs = append(errs, fmt.Errorf("server.metrics %q: %v", s.Metrics, err))
		}
	}
	if s.TCPIdleTimeout == 0 {
		s.TCPIdleTimeout = Duration(DefaultTCPIdleTimeout)
	}
	if s.TCPIdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("server.tcp-idle-timeout: negative"))
	}
	if s.TCPMessageTimeout == 0 {
		s.TCPMessageTimeout = Duration(DefaultTCPMessageTimeout)
	}
	if s.TCPMessageTimeout < 0 {
		errs = append(errs, fmt.Errorf("server.tcp-message-timeout: negative"))
	}
	for _, b := range []struct {
		key string
		v   *int
		def int
	}{
		{"tcp-max-connections", &s.TCPMaxConnections, DefaultTCPMaxConnections},
		{"tcp-max-connections-per-address", &s.TCPMaxPerAddress, DefaultTCPMaxPerAddress},
		{"tcp-max-connections-per-prefix", &s.TCPMaxPerPrefix, DefaultTCPMaxPerPrefix},
	} {
		if *b.v == 0 {
			*b.v = b.def
		}
		if *b.v < 0 {
			errs = append(errs, fmt.Errorf("server.%s: negative", b.key))
		}
	}
	if s.Batch == 0 {
		s.Batch = DefaultBatch
	}
	if s.Batch < 1 || s.Batch > 1024 {
		errs = append(errs, fmt.Errorf("server.batch %d: must be 1 to 1024", s.Batch))
	}
	if s.TransfersMax == 0 {
		s.TransfersMax = DefaultTransfersMax
	}
	if s.TransfersMax < 0 {
		errs = append(errs, fmt.Errorf("server.transfers-max: negative"))
	}
	if s.TransfersOutRate < 0 {
		errs = append(errs, fmt.Errorf("server.transfers-out-rate %d: must be bytes per second, or 0 for no bound", s.TransfersOutRate))
	} else if s.TransfersOutRate > 0 && s.TransfersOutRate < 65536 {
		errs = append(errs, fmt.Errorf("server.transfers-out-rate %d: under 65536 bytes per second (one message a second) a transfer of any size would take hours; 0 sets no bound", s.TransfersOutRate))
	}
	if s.JournalVersions == 0 {
		s.JournalVersions = DefaultJournalVersions
	}
	if s.JournalVersions < 0 {
		errs = append(errs, fmt.Errorf("server.journal-versions: negative"))
	}
	if s.JournalBytes == 0 {
		s.JournalBytes = DefaultJournalBytes
	}
	if s.JournalBytes < 0 {
		errs = append(errs, fmt.Errorf("server.journal-bytes: negative"))
	}
	if s.UpdateMemoryHold == 0 {
		s.UpdateMemoryHold = Duration(DefaultUpdateMemoryHold)
	}
	if s.UpdateMemoryHold < 0 {
		errs = append(errs, fmt.Errorf("server.update-memory-hold %v: must not be negative", time.Duration(s.UpdateMemoryHold)))
	}
	if s.RebuildSuperseded == 0 {
		s.RebuildSuperseded = DefaultRebuildSuperseded
	}
	if s.RebuildSuperseded < 0 || s.RebuildSuperseded > 100 {
		errs = append(errs, fmt.Errorf("server.rebuild-superseded %d: must be a percentage from 1 to 100 (100 never rebuilds)", s.RebuildSuperseded))
	}
	errs = append(errs, c.Cookies.normalize()...)
	errs = append(errs, c.RRL.normalize()...)
	errs = append(errs, c.Dnstap.normalize()...)
	errs = append(errs, c.RSSAC002.normalize()...)
	keys, kerrs := normalizeKeys(c.Keys)
	errs = append(errs, kerrs...)
	seen := map[string]bool{}
	for i := range c.Zones {
		z := &c.Zones[i]
		if z.Origin == "" {
			errs = append(errs, fmt.Errorf("zone %d: origin missing", i+1))
			continue
		}
		z.Origin = CanonicalOrigin(z.Origin)
		if z.File == "" {
			errs = append(errs, fmt.Errorf("zone %s: file missing", z.Origin))
		}
		if seen[z.Origin] {
			errs = append(errs, fmt.Errorf("zone %s: configured twice", z.Origin))
		}
		seen[z.Origin] = true
		errs = append(errs, z.normalizeTransfers(keys)...)
		if z.CatalogMembersMax != 0 && !z.Catalog() {
			errs = append(errs, fmt.Errorf("zone %s: catalog-members-max is set, but catalog-members is not: only a catalog zone has members", z.Origin))
		}
		if z.CatalogMembersMax == 0 && z.Catalog() {
			z.CatalogMembersMax = DefaultCatalogMembersMax
		}
		switch {
		case z.CatalogMembersMax < 0:
			errs = append(errs, fmt.Errorf("zone %s: catalog-members-max: negative", z.Origin))
		case z.Catalog() && !z.Secondary():
			errs = append(errs, fmt.Errorf("zone %s: catalog-members is set, but the zone has no primaries: only a secondary zone can be a catalog (its members are transferred from the catalog's primaries)", z.Origin))
		}
	}
	if x := c.XDP; x != nil {
		if x.Interface == "" {
			errs = append(errs, fmt.Errorf("xdp.interface missing"))
		}
		if !system.hasXDP {
			errs = append(errs, fmt.Errorf("xdp: %w, and this is %s: remove the [xdp] table and -xdp to serve UDP from kernel sockets", nic.ErrXDPNeedsLinux, system.name))
		}
		switch x.Mode {
		case "":
			x.Mode = "auto"
		case "native":
			x.Mode = "driver"
		case "auto", "driver", "generic":
		default:
			errs = append(errs, fmt.Errorf("xdp.mode %q: want auto, driver (native) or generic", x.Mode))
		}
		switch x.ZeroCopy {
		case "":
			x.ZeroCopy = "auto"
		case "auto", "on", "off":
		default:
			errs = append(errs, fmt.Errorf("xdp.zero-copy %q: want auto, on or off", x.ZeroCopy))
		}
		for _, q := range x.Queues {
			if q < 0 {
				errs = append(errs, fmt.Errorf("xdp.queues: negative queue %d", q))
			}
		}
		if x.RxRingSize == 0 {
			x.RxRingSize = DefaultXDPRxRingSize
		} else if err := nic.CheckRingSize(x.RxRingSize); err != nil {
			errs = append(errs, fmt.Errorf("xdp.rx-ring-size %d: %w", x.RxRingSize, err))
		}
	}
	return errors.Join(errs...)
}

// CanonicalOrigin lowercases a zone name and gives it a final dot, the form
// zones are named by in the configuration, ringctl and metrics.
func CanonicalOrigin(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// AddZone adds a zone or replaces the configured zone of the same origin;
// this is what the -zone flag does.
func (c *Config) AddZone(origin, file string) {
	origin = CanonicalOrigin(origin)
	for i := range c.Zones {
		if CanonicalOrigin(c.Zones[i].Origin) == origin {
			c.Zones[i].File = file
			return
		}
	}
	c.Zones = append(c.Zones, ZoneConfig{Origin: origin, File: file})
}

// ParseCPUList parses a list such as "0-1,3" into sorted, distinct CPU
// numbers. An empty list means every CPU the process may run on.
func ParseCPUList(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return AllowedCPUs(), nil
	}
	set := map[int]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(strings.TrimSpace(lo))
		if err != nil || a < 0 {
			return nil, fmt.Errorf("bad CPU %q in %q", part, s)
		}
		b := a
		if isRange {
			b, err = strconv.Atoi(strings.TrimSpace(hi))
			if err != nil || b < a {
				return nil, fmt.Errorf("bad CPU range %q in %q", part, s)
			}
		}
		if b >= 4096 {
			return nil, fmt.Errorf("CPU %d in %q is out of range", b, s)
		}
		for i := a; i <= b; i++ {
			set[i] = true
		}
	}
	cpus := make([]int, 0, len(set))
	for c := range set {
		cpus = append(cpus, c)
	}
	sort.Ints(cpus)
	return cpus, nil
}

// AllowedCPUs returns the CPUs in the process's affinity mask, or 0 to
// GOMAXPROCS-1 when the mask cannot be read (on macOS, which has none).
func AllowedCPUs() []int {
	if cpus, err := nic.AllowedCPUs(); err == nil && len(cpus) > 0 {
		return cpus
	}
	cpus := make([]int, runtime.GOMAXPROCS(0))
	for i := range cpus {
		cpus[i] = i
	}
	return cpus
}
