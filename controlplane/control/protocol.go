package control

import "encoding/json"

// Commands.
const (
	CmdStatus = "status" // Status
	CmdZones  = "zones"  // []ZoneStatus
	CmdReload = "reload" // ReloadResult
	CmdStats  = "stats"  // Stats

	// Zone transfers (issue 13).
	CmdZoneStatus = "zone-status" // []ZoneTransferStatus; zones: the zones to report, all when empty
	CmdRefresh    = "refresh"     // RefreshResult; zones: exactly one secondary zone
	CmdRetransfer = "retransfer"  // RefreshResult; zones: exactly one secondary zone, transferred by AXFR
	CmdNotify     = "notify"      // RefreshResult; zones: exactly one zone, NOTIFY sent to its notify targets
)

// Limits both sides rely on.
const (
	// MaxRequest is the longest request line the daemon reads, newline
	// included; a longer one gets an error reply and the connection is
	// closed.
	MaxRequest = 64 << 10

	// MaxConns is the number of control connections the daemon serves at
	// once. A connection arriving when that many are open closes the one
	// idle longest, so connections left open never keep ringctl out; only
	// when every one of them is carrying out a request is the newcomer
	// closed unread, which the client reports with this bound.
	MaxConns = 16
)

// Request is one control command.
type Request struct {
	Cmd   string   `json:"cmd"`
	Zones []string `json:"zones,omitempty"` // reload, zone-status: the zones, all when empty; refresh, retransfer, notify: one zone
}

// Reply is the answer to one Request. Error is set when the request could
// not be carried out; Data holds the command's result otherwise (and, for a
// reload with failed zones, both are set).
type Reply struct {
	OK    bool            `json:"ok"`
	Error string          `json:"error,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// OKReply wraps a command result in a successful Reply.
func OKReply(v any) Reply {
	b, err := json.Marshal(v)
	if err != nil {
		return Reply{Error: "encoding reply: " + err.Error()}
	}
	return Reply{OK: true, Data: b}
}
