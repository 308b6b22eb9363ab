package control

import "time"

// Status is the result of the status command: what the daemon is and does.
type Status struct {
	Version        string   `json:"version"`
	PID            int      `json:"pid"`
	Uptime         float64  `json:"uptime_seconds"`
	Listen         []string `json:"listen"`
	Control        string   `json:"control"`
	Metrics        string   `json:"metrics,omitempty"`
	DataPlane      string   `json:"dataplane"`
	Workers        int      `json:"workers"`
	CPUs           []int    `json:"cpus"`
	ZonesServing   int      `json:"zones_serving"`
	ZonesFailing   int      `json:"zones_failing"`
	ZonesTotal     int      `json:"zones_total"`
	Reloads        uint64   `json:"reloads"`
	ReloadFailures uint64   `json:"reload_failures"`
	LastSwapMicros float64  `json:"last_swap_us"`
	GoVersion      string   `json:"go_version"`
}

// ZoneStatus describes one configured zone; the zones command replies
// with one per zone.
type ZoneStatus struct {
	Origin  string `json:"origin"`
	File    string `json:"file"`
	Serving bool   `json:"serving"`
	Serial  uint32 `json:"serial"`
	Records int    `json:"records"`
	Bytes   int    `json:"bytes"`
	// AheadBytes is what the zone holds made ahead for its next update
	// (zone.Zone.AheadBytes), beside Bytes.
	AheadBytes int       `json:"ahead_bytes,omitempty"`
	Loaded     time.Time `json:"loaded"`
	Seconds    float64   `json:"load_seconds"`
	LastError  string    `json:"last_error,omitempty"`
	Loads      uint64    `json:"loads"`
	Failures   uint64    `json:"failures"`
	// ZONEMD is the served version's ZONEMD state (RFC 8976):
	// "verified sha384", "absent", "unsupported: ...", or "ignored".
	ZONEMD string `json:"zonemd,omitempty"`
}

// ZoneResult is the outcome of loading one zone, for a reload's reply,
// the daemon's log and `ringdns check`.
type ZoneResult struct {
	Origin   string   `json:"origin"`
	File     string   `json:"file"`
	Status   string   `json:"status"` // StatusLoaded, StatusUnchanged or StatusFailed
	Error    string   `json:"error,omitempty"`
	Line     int      `json:"line,omitempty"`
	Serving  bool     `json:"serving"` // a version of the zone is served
	Serial   uint32   `json:"serial"`
	Records  int      `json:"records"`
	Bytes    int      `json:"bytes"`
	Seconds  float64  `json:"seconds"`
	Warnings []string `json:"warnings,omitempty"`
	// ZONEMD is the served version's ZONEMD state, as in ZoneStatus; a
	// version that failed ZONEMD is not served, and Error says why.
	ZONEMD string `json:"zonemd,omitempty"`
	// Applied says how a changed file was loaded: "incremental" (its
	// difference to the version served applied in place), "rebuilt: "
	// and why, or "built: " and why the difference was not applied; ""
	// for a zone loaded for the first time.
	Applied string `json:"applied,omitempty"`
}

// Zone load statuses, ZoneResult.Status.
const (
	StatusLoaded    = "loaded"
	StatusUnchanged = "unchanged"
	StatusFailed    = "failed"
	// StatusNoCopy is a secondary zone with no copy on disk yet: it is
	// served once transferred from its primaries.
	StatusNoCopy = "no copy yet"
)

// ZoneTransferStatus is a zone's role and transfer state, for the
// zone-status command. The times are zero when they do not apply (a
// primary zone has no refresh; a secondary with no data has no expiry).
type ZoneTransferStatus struct {
	Origin    string   `json:"origin"`
	File      string   `json:"file"`
	Role      string   `json:"role"` // "primary" or "secondary"
	Serving   bool     `json:"serving"`
	Serial    uint32   `json:"serial"`
	Primaries []string `json:"primaries,omitempty"`
	Key       string   `json:"key,omitempty"`
	// Expired is set for a secondary zone answered SERVFAIL: expired, or
	// never transferred.
	Expired      bool            `json:"expired"`
	LastRefresh  time.Time       `json:"last_refresh"`
	NextRefresh  time.Time       `json:"next_refresh"`
	Expires      time.Time       `json:"expires"`
	LastError    string          `json:"last_error,omitempty"`
	Transfers    uint64          `json:"transfers"`
	Failures     uint64          `json:"failures"`
	Notifies     uint64          `json:"notifies"`
	LastTransfer *TransferStatus `json:"last_transfer,omitempty"`
	// ZONEMD is the served version's ZONEMD state, as in ZoneStatus.
	ZONEMD string `json:"zonemd,omitempty"`
	// Catalog is, for a member zone of a catalog zone (RFC 9432), the
	// catalog's origin; CatalogMembers is, for a catalog zone, the number
	// of its members served (nil for any other zone).
	Catalog        string `json:"catalog,omitempty"`
	CatalogMembers *int   `json:"catalog_members,omitempty"`
}

// RefreshResult is the reply to refresh, retransfer and notify: what was
// started. The work itself goes on in the background; zone-status shows
// its outcome.
type RefreshResult struct {
	Origin string `json:"origin"`
	Action string `json:"action"` // "refresh", "AXFR" or "notify"
}

// TransferStatus describes one transfer in.
type TransferStatus struct {
	Kind    string    `json:"kind"` // AXFR or IXFR, as done (an IXFR answered with the whole zone is AXFR)
	Primary string    `json:"primary"`
	Started time.Time `json:"started"`
	Seconds float64   `json:"seconds"`
	Bytes   int64     `json:"bytes"` // on the wire, length prefixes included
	Serial  uint32    `json:"serial,omitempty"`
	Result  string    `json:"result"` // "ok" or the error
	// Applied says how an incremental IXFR was applied to the version
	// served: "incremental" (in place), "rebuilt: " and why, or
	// "axfr-fallback: " and why it did not apply (the zone was then
	// transferred by AXFR).
	Applied string `json:"applied,omitempty"`
	// ApplySeconds is, of Seconds, the time an incremental IXFR's
	// differences took to apply to the version served (zone.Zone.Apply
	// and the checks after it), once the last message was received.
	ApplySeconds float64 `json:"apply_seconds,omitempty"`
}

// ReloadResult is the result of the reload command.
type ReloadResult struct {
	Zones       []ZoneResult `json:"zones"`
	Failed      int          `json:"failed"`
	BuildMicros float64      `json:"build_us"` // building the zone set and its snapshot
	SwapMicros  float64      `json:"swap_us"`  // the pointer swap itself
	Seconds     float64      `json:"seconds"`  // the whole reload
}

// Stats is the result of the stats command.
type Stats struct {
	Total   Counters      `json:"total"`
	Workers []WorkerStats `json:"workers"`
	TCP     TCPStats      `json:"tcp"`
}

// WorkerStats are one worker's counters.
type WorkerStats struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"` // udp, tcp or xdp
	Listen   string `json:"listen"`
	CPU      int    `json:"cpu"`   // -1 when not pinned
	Queue    int    `json:"queue"` // the AF_XDP queue, -1 for others
	Counters `json:"counters"`
	// XDP holds the AF_XDP socket's statistics for xdp workers, nil for
	// others and when the daemon could not read them.
	XDP *XDPStats `json:"xdp,omitempty"`
}

// Counters are the data plane's counters of one worker or of all, with
// rcodes, kinds of answer and drop reasons named. Entries that are zero are
// left out of the maps.
type Counters struct {
	Queries  uint64            `json:"queries"`
	Replies  uint64            `json:"replies"`
	Bytes    uint64            `json:"bytes"`
	TC       uint64            `json:"truncated"`
	DO       uint64            `json:"do"`
	SendErrs uint64            `json:"send_errors"`
	Rcodes   map[string]uint64 `json:"rcodes,omitempty"`
	Kinds    map[string]uint64 `json:"kinds,omitempty"`
	Drops    map[string]uint64 `json:"drops,omitempty"`
	// RRLSlipped and RRLDropped count by class (answer, referral, nodata,
	// nxdomain, error) the replies response rate limiting sent as an empty
	// TC=1 reply or did not send; their sum is what it limited.
	RRLSlipped map[string]uint64 `json:"rrl_slipped,omitempty"`
	RRLDropped map[string]uint64 `json:"rrl_dropped,omitempty"`
	// Cookies counts the queries answered with a COOKIE option (RFC 7873)
	// by what it held: client-only, valid, invalid, malformed.
	Cookies map[string]uint64 `json:"cookies,omitempty"`
}

// TCPStats are the TCP service's connection counters.
type TCPStats struct {
	Accepted  uint64 `json:"accepted"`
	Refused   uint64 `json:"refused"`
	PerSource uint64 `json:"per_source"`
	Evicted   uint64 `json:"evicted"`
	Garbage   uint64 `json:"garbage"`
	Timeouts  uint64 `json:"timeouts"`
	Open      int    `json:"open"`
}

// Add adds the counters of o to t.
func (t *TCPStats) Add(o TCPStats) {
	t.Accepted += o.Accepted
	t.Refused += o.Refused
	t.PerSource += o.PerSource
	t.Evicted += o.Evicted
	t.Garbage += o.Garbage
	t.Timeouts += o.Timeouts
	t.Open += o.Open
}

// XDPStats are the statistics of one AF_XDP socket: the kernel's
// XDP_STATISTICS and the port's own counters. The daemon converts them from
// nic.XDPStats. Their JSON names are the Go names, as they were when the
// reply carried nic's struct, which has no tags.
type XDPStats struct {
	// From the kernel (XDP_STATISTICS).
	RxDropped            uint64 `json:"RxDropped"` // dropped for reasons other than invalid descriptors
	RxInvalidDescs       uint64 `json:"RxInvalidDescs"`
	TxInvalidDescs       uint64 `json:"TxInvalidDescs"`
	RxRingFull           uint64 `json:"RxRingFull"`           // dropped because the RX ring was full
	RxFillRingEmptyDescs uint64 `json:"RxFillRingEmptyDescs"` // times the kernel found the fill ring empty
	TxRingEmptyDescs     uint64 `json:"TxRingEmptyDescs"`
	// From the port.
	RxPackets  uint64 `json:"RxPackets"`  // frames handed to the worker
	RxNotQuery uint64 `json:"RxNotQuery"` // frames dropped as not a query to serve
	TxPackets  uint64 `json:"TxPackets"`  // replies put on the TX ring
	TxRingFull uint64 `json:"TxRingFull"` // replies dropped because the TX ring was full
	// RxBadChecksum counts frames dropped because their UDP or IPv4 header
	// checksum did not verify (RFC 7720 section 3).
	RxBadChecksum uint64 `json:"RxBadChecksum"`
	TxBadLen      uint64 `json:"TxBadLen"`   // replies dropped because their length exceeded the frame
	KickErrors    uint64 `json:"KickErrors"` // TX wakeups that failed with an unexpected error
}
