package controlplane

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ringdns/ringdns/controlplane/control"
	"github.com/ringdns/ringdns/dataplane"
)

// CookieConfig is the [cookies] table: DNS cookies (RFC 7873) with the
// interoperable server cookies of RFC 9018, which every server of a fleet
// given the same secret makes and accepts alike.
type CookieConfig struct {
	// Enabled turns cookies on (the default, as BIND answers cookies by
	// default): a query with a COOKIE option gets a server cookie in its
	// reply, and one that sends a valid server cookie back is spared
	// response rate limiting. false ignores COOKIE options.
	Enabled *bool `toml:"enabled"`
	// Secret is the 16-byte key of the server cookies, 32 hex digits;
	// every server of a fleet must have the same one for a cookie made by
	// one to be valid at another. Empty: a random secret is made at start
	// (and kept across reloads that leave it empty), good for a single
	// server.
	Secret string `toml:"secret"`
	// PreviousSecret, while the fleet rotates, is the secret being
	// replaced: server cookies it made are still accepted (and answered
	// with one made with Secret) for the hour they are valid.
	PreviousSecret string `toml:"previous-secret"`
	// Require answers a UDP query that sends a COOKIE option without a
	// valid server cookie with BADCOOKIE and a fresh cookie instead of its
	// answer (BIND's require-server-cookie); the client retries with the
	// cookie. Queries without a COOKIE option are answered as ever, so the
	// default, false, is what a root or TLD server wants.
	Require bool `toml:"require"`
}

// enabled reports whether cookies are on.
func (c *CookieConfig) enabled() bool { return c.Enabled == nil || *c.Enabled }

// normalize validates the table; errors name the setting.
func (c *CookieConfig) normalize() []error {
	var errs []error
	if _, _, err := parseCookieSecret(c.Secret); err != nil {
		errs = append(errs, fmt.Errorf("cookies.secret: %w", err))
	}
	if _, _, err := parseCookieSecret(c.PreviousSecret); err != nil {
		errs = append(errs, fmt.Errorf("cookies.previous-secret: %w", err))
	}
	if c.PreviousSecret != "" && c.Secret == "" {
		errs = append(errs, errors.New("cookies.previous-secret is set, but cookies.secret is not: name the new secret that replaces it"))
	}
	return errs
}

// errCookieSecret is what a secret that is not 32 hex digits is refused with.
var errCookieSecret = errors.New("want 32 hex digits (16 bytes), as `openssl rand -hex 16` prints")

// parseCookieSecret decodes a secret; ok is false for the empty string.
func parseCookieSecret(s string) (k [16]byte, ok bool, err error) {
	if s == "" {
		return k, false, nil
	}
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != len(k) {
		return k, false, errCookieSecret
	}
	copy(k[:], b)
	return k, true, nil
}

// cookieFingerprint names a secret in logs and ringctl without giving it
// away: the first 4 bytes of its SHA-256, in hex.
func cookieFingerprint(k [16]byte) string {
	h := sha256.Sum256(k[:])
	return hex.EncodeToString(h[:4])
}

// cookieKeeper holds the daemon's cookie secrets and publishes them to the
// data plane (dataplane.Cookies), and advances the data plane's coarse
// clock.
type cookieKeeper struct {
	c   *dataplane.Cookies
	log *slog.Logger

	mu      sync.Mutex
	sec     dataplane.CookieSecrets
	enabled bool
	// configured is the secret of the configuration last applied, so
	// that a reload that leaves it alone keeps a secret rotated by
	// ringctl, and one that changes it moves the running secret to
	// Previous.
	configured string
}

// newCookieKeeper applies the configuration's [cookies] table, which
// Normalize has validated; a missing secret is made at random.
func newCookieKeeper(cfg CookieConfig, log *slog.Logger) (*cookieKeeper, error) {
	k := &cookieKeeper{c: dataplane.NewCookies(), log: log}
	if cfg.Secret == "" {
		if _, err := rand.Read(k.sec.Current[:]); err != nil {
			return nil, fmt.Errorf("cookies: making a random secret: %w", err)
		}
	}
	if err := k.apply(cfg); err != nil {
		return nil, err
	}
	return k, nil
}

// apply takes the [cookies] table of a (re)loaded configuration. A secret
// that differs from the one last configured becomes the current one, and
// the one it replaces the previous one unless the table names it; a table
// without a secret keeps the secrets in use.
func (k *cookieKeeper) apply(cfg CookieConfig) error {
	cur, hasCur, err := parseCookieSecret(cfg.Secret)
	if err != nil {
		return fmt.Errorf("cookies.secret: %w", err)
	}
	prev, hasPrev, err := parseCookieSecret(cfg.PreviousSecret)
	if err != nil {
		return fmt.Errorf("cookies.previous-secret: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if hasCur && cfg.Secret != k.configured {
		if cur != k.sec.Current && !hasPrev && k.configured != "" {
			prev, hasPrev = k.sec.Current, true
		}
		k.sec.Current = cur
		k.sec.Previous, k.sec.HasPrevious = prev, hasPrev
		k.configured = cfg.Secret
	}
	k.sec.Require = cfg.Require
	k.enabled = cfg.enabled()
	k.publish()
	return nil
}

// cookieState is the form in which an upgrade hands the secrets in use to
// the new process (CookieState, adopt).
type cookieState struct {
	Current     string `json:"current"` // hex
	Previous    string `json:"previous,omitempty"`
	Configured  string `json:"configured,omitempty"` // the configuration's secret last applied
	HasPrevious bool   `json:"has_previous,omitempty"`
}

// CookieState returns the DNS cookie secrets in use, for the new process
// of an upgrade: a random or rotated secret is in no configuration.
func (s *Server) CookieState() []byte { return s.cookies.state() }

func (k *cookieKeeper) state() []byte {
	k.mu.Lock()
	st := cookieState{Current: hex.EncodeToString(k.sec.Current[:]), Configured: k.configured, HasPrevious: k.sec.HasPrevious}
	if k.sec.HasPrevious {
		st.Previous = hex.EncodeToString(k.sec.Previous[:])
	}
	k.mu.Unlock()
	b, err := json.Marshal(st)
	if err != nil {
		panic(err) // strings and a bool always marshal
	}
	return b
}

// adopt takes the secrets the old process of an upgrade used, which its
// configuration (the same bytes as this one's) may not name.
func (k *cookieKeeper) adopt(b []byte) error {
	var st cookieState
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("the old process's cookie secrets: %w", err)
	}
	cur, ok, err := parseCookieSecret(st.Current)
	if err != nil || !ok {
		return fmt.Errorf("the old process's current cookie secret: %v", err)
	}
	prev, hasPrev, err := parseCookieSecret(st.Previous)
	if err != nil {
		return fmt.Errorf("the old process's previous cookie secret: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.sec.Current, k.sec.Previous, k.sec.HasPrevious = cur, prev, hasPrev && st.HasPrevious
	k.configured = st.Configured
	k.publish()
	return nil
}

// publish hands the secrets to the data plane; k.mu is held.
func (k *cookieKeeper) publish() {
	if !k.enabled {
		k.c.Set(nil)
		return
	}
	sec := k.sec
	k.c.Set(&sec)
}

// rotate makes next (a random secret when nil) the current secret and the
// current one the previous, as `ringctl cookie-rotate` asks.
func (k *cookieKeeper) rotate(next *[16]byte) (control.CookieStatus, error) {
	var n [16]byte
	if next != nil {
		n = *next
	} else if _, err := rand.Read(n[:]); err != nil {
		return control.CookieStatus{}, fmt.Errorf("making a random secret: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.sec.Previous, k.sec.HasPrevious = k.sec.Current, true
	k.sec.Current = n
	k.publish()
	st := k.statusLocked()
	k.log.Info("cookie secret rotated", "current", st.Current, "previous", st.Previous)
	return st, nil
}

// statusLocked describes the secrets by fingerprint; k.mu is held.
func (k *cookieKeeper) statusLocked() control.CookieStatus {
	st := control.CookieStatus{Enabled: k.enabled, Require: k.sec.Require, Current: cookieFingerprint(k.sec.Current)}
	if k.sec.HasPrevious {
		st.Previous = cookieFingerprint(k.sec.Previous)
	}
	return st
}

// run advances the data plane's cookie clock every half second until done
// is closed: a cookie's timestamp is in seconds, and the windows it is
// checked against are minutes long, so a clock a second behind at most
// changes nothing, while a worker reads it with one load per cookie
// instead of a clock call.
func (k *cookieKeeper) run(done <-chan struct{}) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			k.c.Tick(now)
		}
	}
}

// handleCookieRotate carries out `ringctl cookie-rotate [SECRET]`.
func (k *cookieKeeper) handleCookieRotate(req control.Request) control.Reply {
	if k == nil {
		return control.Reply{Error: "cookie-rotate: this server has no DNS cookies"}
	}
	var next *[16]byte
	switch len(req.Zones) {
	case 0:
	case 1:
		n, _, err := parseCookieSecret(req.Zones[0])
		if err != nil || req.Zones[0] == "" {
			return control.Reply{Error: "cookie-rotate SECRET: " + errCookieSecret.Error()}
		}
		next = &n
	default:
		return control.Reply{Error: "cookie-rotate takes at most one secret"}
	}
	st, err := k.rotate(next)
	if err != nil {
		return control.Reply{Error: "cookie-rotate: " + err.Error()}
	}
	return control.OKReply(st)
}

// ReloadCookies reads the [cookies] table of the configuration file again
// and applies it when a reload names no zones (ringctl reload, SIGHUP),
// since such a reload is the operator's way of saying the configuration
// changed. A configuration that did not come from a file (flags, the
// embedded example) has nothing to read again. A table that does not
// parse is logged and the secrets in use are kept: the zones are reloaded
// all the same.
func (s *Server) ReloadCookies(zones []string) {
	if len(zones) > 0 || s.cookies == nil || s.cfg == nil {
		return
	}
	path := s.cfg.Source
	if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
		return
	}
	c, err := LoadConfig(path)
	if err == nil {
		if errs := c.Cookies.normalize(); len(errs) > 0 {
			err = errors.Join(errs...)
		}
	}
	if err == nil {
		err = s.cookies.apply(c.Cookies)
	}
	if err != nil {
		s.log.Error("reload: the [cookies] table was not applied; the cookie secrets in use are kept", "config", path, "err", err)
	}
}
