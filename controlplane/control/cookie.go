package control

// CmdCookieRotate rotates the DNS cookie secret: the current secret becomes
// the previous one, still accepted, and the secret given (Request.Zones[0],
// 32 hex digits) or a random one the current. Its result is a CookieStatus.
const CmdCookieRotate = "cookie-rotate"

// CookieStatus describes the DNS cookie secrets in use, each named by a
// fingerprint (the first 4 bytes of its SHA-256, in hex) rather than given
// away.
type CookieStatus struct {
	Enabled  bool   `json:"enabled"`
	Require  bool   `json:"require"`
	Current  string `json:"current"`
	Previous string `json:"previous,omitempty"`
}
