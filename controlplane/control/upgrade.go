package control

// CmdUpgrade starts a new ringdns binary and hands it the daemon's sockets
// and configuration (issue 17): the request's one argument is the binary's
// absolute path, none means the path the daemon was started from, read
// from disk again. The reply, once the new process serves, is an
// UpgradeResult; a new binary that fails changes nothing, and the error
// carries what it said.
const CmdUpgrade = "upgrade"

// UpgradeResult reports a hand-over.
type UpgradeResult struct {
	Binary     string `json:"binary"`
	OldPID     int    `json:"old_pid"`
	OldVersion string `json:"old_version"`
	NewPID     int    `json:"new_pid"`
	NewVersion string `json:"new_version"`
	// Protocol is the hand-over protocol version both spoke.
	Protocol int `json:"protocol"`
	// Sockets is the number of descriptors handed over.
	Sockets int `json:"sockets"`
	// PausedMillis is how long no worker read the UDP sockets: from the
	// old workers' stop to the new ones' start. Datagrams arriving then
	// wait in the sockets' buffers.
	PausedMillis float64 `json:"paused_ms"`
}
