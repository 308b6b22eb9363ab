package configs

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ringdns/ringdns/internal/testenv"
)

// maxExposure is the worst `systemd-analyze security` exposure the unit
// may score (0 is best, 10 worst); README's "systemd" gives the score it
// has, 2.1 with systemd 252, which a change to the unit must not worsen
// unnoticed.
const maxExposure = 2.1

// TestServiceUnit checks configs/ringdns.service with systemd-analyze:
// verify passes (with ExecStart pointing at an executable that exists
// here, since verify checks it) and security, offline, scores it at most
// maxExposure. It also checks that the unit's ambient capabilities are
// its bounding set, each one explained in a comment.
func TestServiceUnit(t *testing.T) {
	sa := testenv.RequireTool(t, "systemd-analyze", "Debian package systemd; scripts/test.sh installs it")
	unit, err := os.ReadFile("ringdns.service")
	if err != nil {
		t.Fatal(err)
	}
	text := string(unit)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	copyPath := filepath.Join(dir, "ringdns.service")
	if err := os.WriteFile(copyPath, []byte(strings.ReplaceAll(text, "/usr/sbin/ringdns", exe)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", copyPath).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	out, err = exec.Command(sa, "security", "--offline=true", "ringdns.service").CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security --offline=true: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for ringdns.service: ([0-9.]+)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no exposure level in\n%s", out)
	}
	score, _ := strconv.ParseFloat(m[1], 64)
	t.Logf("systemd-analyze security: exposure %.1f", score)
	if score > maxExposure {
		t.Errorf("exposure %.1f, worse than %.1f:\n%s", score, maxExposure, out)
	}

	value := func(key string) string {
		m := regexp.MustCompile(`(?m)^` + key + `=(.*)$`).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("the unit has no %s=", key)
		}
		return m[1]
	}
	ambient, bounding := value("AmbientCapabilities"), value("CapabilityBoundingSet")
	if ambient != bounding {
		t.Errorf("AmbientCapabilities=%s but CapabilityBoundingSet=%s: the bounding set should hold exactly what is granted", ambient, bounding)
	}
	for _, c := range strings.Fields(ambient) {
		if !regexp.MustCompile(`(?m)^#\s+` + c + `\s+\S`).MatchString(text) {
			t.Errorf("%s is granted but not explained in a comment of its own", c)
		}
	}
	if value("Type") != "notify" {
		t.Errorf("Type=%s, want notify", value("Type"))
	}
}
