package controlplane

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ringdns/ringdns/controlplane/control"
	"github.com/ringdns/ringdns/dataplane"
)

// TestCookieConfig checks the [cookies] table as parsed and normalised:
// what it accepts and the errors that name what is wrong.
func TestCookieConfig(t *testing.T) {
	const zoneTable = "[[zone]]\norigin = \"example.\"\nfile = \"example.zone\"\n"
	for _, tc := range []struct {
		name, table string
		err         string // "" for none
		enabled     bool
	}{
		{name: "absent: on, random secret", table: "", enabled: true},
		{name: "secret", table: "[cookies]\nsecret = \"000102030405060708090a0b0c0d0e0f\"\n", enabled: true},
		{name: "off", table: "[cookies]\nenabled = false\n", enabled: false},
		{name: "rotating", table: "[cookies]\nsecret = \"000102030405060708090a0b0c0d0e0f\"\nprevious-secret = \"0f0e0d0c0b0a09080706050403020100\"\nrequire = true\n", enabled: true},
		{name: "short secret", table: "[cookies]\nsecret = \"0001020304050607\"\n", err: "cookies.secret: want 32 hex digits"},
		{name: "not hex", table: "[cookies]\nsecret = \"zz0102030405060708090a0b0c0d0e0f\"\n", err: "cookies.secret: want 32 hex digits"},
		{name: "bad previous", table: "[cookies]\nsecret = \"000102030405060708090a0b0c0d0e0f\"\nprevious-secret = \"00\"\n", err: "cookies.previous-secret: want 32 hex digits"},
		{name: "previous alone", table: "[cookies]\nprevious-secret = \"000102030405060708090a0b0c0d0e0f\"\n", err: "cookies.previous-secret is set, but cookies.secret is not"},
		{name: "unknown key", table: "[cookies]\nsecrets = \"x\"\n", err: "unknown configuration key cookies.secrets"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig([]byte(tc.table+zoneTable), "test.toml")
			if err == nil {
				err = c.Normalize()
			}
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("error: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want %q", err, tc.err)
			case err == nil && c.Cookies.enabled() != tc.enabled:
				t.Errorf("enabled %v", c.Cookies.enabled())
			}
		})
	}
}

// TestCookieKeeper follows the secrets through start, reloads and
// rotations: a configured secret is used as it is and a missing one made
// at random; a reload that changes the secret keeps the one it replaces
// as the previous one (or the one the table names), and one that leaves
// it alone keeps a secret rotated since; a rotation moves the current
// secret to previous. Each state is checked on the data plane: a server
// cookie made with each secret is valid or not.
func TestCookieKeeper(t *testing.T) {
	const (
		a = "000102030405060708090a0b0c0d0e0f"
		b = "101112131415161718191a1b1c1d1e1f"
		c = "202122232425262728292a2b2c2d2e2f"
	)
	parse := func(s string) [16]byte {
		k, _, err := parseCookieSecret(s)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	// accepted reports whether the data plane of k accepts a server
	// cookie made with secret.
	accepted := func(k *cookieKeeper, secret [16]byte) bool {
		return dataplane.CookieAccepted(k.c, secret)
	}
	k, err := newCookieKeeper(CookieConfig{Secret: a}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	step := func(what string, want map[string]bool, enabled bool) {
		t.Helper()
		if k.c.Enabled() != enabled {
			t.Errorf("%s: enabled %v", what, k.c.Enabled())
		}
		for s, ok := range want {
			if got := accepted(k, parse(s)); got != ok {
				t.Errorf("%s: secret %s accepted %v, want %v", what, s[:4], got, ok)
			}
		}
	}
	step("start", map[string]bool{a: true, b: false}, true)
	k.apply(CookieConfig{Secret: a})
	step("reload, same secret", map[string]bool{a: true, b: false}, true)
	k.apply(CookieConfig{Secret: b})
	step("reload, new secret", map[string]bool{a: true, b: true, c: false}, true)
	if k.sec.Current != parse(b) {
		t.Errorf("current is not the new secret")
	}
	k.apply(CookieConfig{Secret: c, PreviousSecret: a})
	step("reload, new secret and previous named", map[string]bool{a: true, b: false, c: true}, true)
	next := parse(b)
	if _, err := k.rotate(&next); err != nil {
		t.Fatal(err)
	}
	step("rotated", map[string]bool{a: false, b: true, c: true}, true)
	k.apply(CookieConfig{Secret: c, PreviousSecret: a})
	step("reload, table unchanged since", map[string]bool{a: false, b: true, c: true}, true)
	k.apply(CookieConfig{Secret: c, PreviousSecret: a, Enabled: new(bool)})
	step("disabled", map[string]bool{}, false)
	on := true
	k.apply(CookieConfig{Secret: c, PreviousSecret: a, Enabled: &on})
	step("enabled again", map[string]bool{b: true, c: true}, true)

	r1, err := newCookieKeeper(CookieConfig{}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := newCookieKeeper(CookieConfig{}, quietLog())
	if r1.sec.Current == r2.sec.Current || r1.sec.Current == [16]byte{} || !r1.c.Enabled() {
		t.Errorf("random secrets %x and %x", r1.sec.Current, r2.sec.Current)
	}
	r1.apply(CookieConfig{})
	if r1.sec.Current == [16]byte{} || r1.sec.HasPrevious {
		t.Errorf("a reload without a secret changed the random one")
	}
}

// TestHandleCookieRotate rotates through the control protocol, with a
// secret and without, and checks the refusals.
func TestHandleCookieRotate(t *testing.T) {
	k, err := newCookieKeeper(CookieConfig{Secret: "000102030405060708090a0b0c0d0e0f"}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{cookies: k}
	old := k.sec.Current
	rep := s.HandleControl(control.Request{Cmd: control.CmdCookieRotate, Zones: []string{"ffeeddccbbaa99887766554433221100"}})
	var st control.CookieStatus
	if !rep.OK || json.Unmarshal(rep.Data, &st) != nil {
		t.Fatalf("rotate: %+v", rep)
	}
	if st.Previous != cookieFingerprint(old) || st.Current != cookieFingerprint(k.sec.Current) || k.sec.Current[0] != 0xff {
		t.Errorf("status %+v", st)
	}
	if strings.Contains(string(rep.Data), "ffeedd") {
		t.Errorf("the reply gives the secret away: %s", rep.Data)
	}
	before := k.sec.Current
	if rep := s.HandleControl(control.Request{Cmd: control.CmdCookieRotate}); !rep.OK || k.sec.Previous != before || k.sec.Current == before {
		t.Errorf("random rotation: %+v", rep)
	}
	for _, args := range [][]string{{"00"}, {""}, {"a", "b"}} {
		if rep := s.HandleControl(control.Request{Cmd: control.CmdCookieRotate, Zones: args}); rep.OK || rep.Error == "" {
			t.Errorf("cookie-rotate %q: %+v", args, rep)
		}
	}
	if rep := (&Server{}).HandleControl(control.Request{Cmd: control.CmdCookieRotate}); rep.OK {
		t.Errorf("a server without cookies rotated: %+v", rep)
	}
}

// TestReloadCookies checks that a reload naming no zones applies the
// configuration file's [cookies] table, and that one that does not parse
// keeps the secrets in use.
func TestReloadCookies(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ringdns.toml")
	write := func(table string) {
		if err := os.WriteFile(path, []byte(table+"[[zone]]\norigin = \"example.\"\nfile = \"example.zone\"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("[cookies]\nsecret = \"000102030405060708090a0b0c0d0e0f\"\n")
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	k, err := newCookieKeeper(cfg.Cookies, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{cfg: cfg, cookies: k, log: quietLog()}
	write("[cookies]\nsecret = \"101112131415161718191a1b1c1d1e1f\"\nrequire = true\n")
	s.ReloadCookies([]string{"example."})
	if k.sec.Current[0] != 0x00 {
		t.Fatalf("a reload of one zone applied the table")
	}
	s.ReloadCookies(nil)
	if k.sec.Current[0] != 0x10 || k.sec.Previous[0] != 0x00 || !k.sec.HasPrevious || !k.sec.Require {
		t.Fatalf("after reload: %+v", k.sec)
	}
	write("[cookies]\nsecret = \"nothex\"\n")
	s.ReloadCookies(nil)
	if k.sec.Current[0] != 0x10 || !k.c.Enabled() {
		t.Fatalf("a bad table changed the secrets: %+v", k.sec)
	}
}

// TestCookieKeeperAdopt hands the secrets in use to the keeper of an
// upgrade's new process, whose configuration names none: a secret made at
// random and one rotated to by ringctl are in no configuration, and
// without the hand-over every server cookie the clients hold would be
// refused after the upgrade (BADCOOKIE with require).
func TestCookieKeeperAdopt(t *testing.T) {
	old, err := newCookieKeeper(CookieConfig{}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	random := old.sec.Current
	if _, err := old.rotate(nil); err != nil {
		t.Fatal(err)
	}
	rotated := old.sec.Current
	heir, err := newCookieKeeper(CookieConfig{}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if dataplane.CookieAccepted(heir.c, rotated) || dataplane.CookieAccepted(heir.c, random) {
		t.Fatal("a new keeper accepts the old one's secrets before the hand-over")
	}
	if err := heir.adopt(old.state()); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string][16]byte{"current (rotated)": rotated, "previous (random)": random} {
		if !dataplane.CookieAccepted(heir.c, s) {
			t.Errorf("after the hand-over the %s secret is not accepted", name)
		}
	}
	// A reload of the same configuration after the upgrade keeps them, as
	// it does in the old process.
	heir.apply(CookieConfig{})
	if heir.sec.Current != rotated {
		t.Errorf("a reload after the hand-over changed the current secret")
	}
	for _, bad := range []string{`{"current":"zz"}`, `{}`, `not json`} {
		if err := heir.adopt([]byte(bad)); err == nil {
			t.Errorf("adopt(%s) accepted", bad)
		}
	}
}
