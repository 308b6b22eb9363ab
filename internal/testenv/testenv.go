// Package testenv holds ringdns's one policy for tests that cannot run
// everywhere: a test that needs root, a program such as knotd or kdig, or a
// free port skips where that is missing, saying what it needs, except under
// CI=true, where it fails instead. CI runs as root and scripts/test.sh
// installs every program the tests use, so a skip there would hide a check
// that was lost, not one that could not be made.
//
// It imports nothing but the standard library, so that every package's
// tests may use it, and package netns's test adapter builds on it.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// CI reports whether the tests run under CI=true, where no test may skip
// for want of something the machine should have.
func CI() bool { return os.Getenv("CI") == "true" }

// Require returns when err is nil. Otherwise err says what the test needs
// and cannot have here, in words that stand alone in the test's log ("this
// test needs root, to chown files to another user"), and Require skips tb
// with it, or fails tb with it under CI=true. Either way tb stops.
func Require(tb testing.TB, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	if CI() {
		tb.Fatalf("%v, and CI=true forbids skipping it", err)
	}
	tb.Skipf("skipping: %v", err)
}

// RequireRoot calls Require when the process is not root. why says what
// the test needs root for: "to chown files to another user", "for
// CAP_BPF, CAP_NET_ADMIN and CAP_NET_RAW".
func RequireRoot(tb testing.TB, why string) {
	tb.Helper()
	Require(tb, rootError(os.Geteuid(), why))
}

// rootError is RequireRoot's verdict for a process of effective uid euid.
func rootError(euid int, why string) error {
	if euid == 0 {
		return nil
	}
	return fmt.Errorf("this test needs root, %s", why)
}

// sbinDirs are looked in after PATH: Debian installs knotd and nsd there,
// and a user's PATH often lacks it.
var sbinDirs = []string{"/usr/sbin", "/sbin"}

// RequireTool returns the path of the program name, found in PATH or in
// /usr/sbin or /sbin, and otherwise calls Require, saying that the test
// needs it and how to install it (install: "Debian package knot-dnsutils").
func RequireTool(tb testing.TB, name, install string) string {
	tb.Helper()
	p, err := lookTool(name, install, sbinDirs)
	Require(tb, err)
	return p
}

// lookTool finds name in PATH, then in dirs.
func lookTool(name, install string, dirs []string) (string, error) {
	p, err := exec.LookPath(name)
	if err == nil {
		return p, nil
	}
	if !strings.ContainsRune(name, filepath.Separator) {
		for _, d := range dirs {
			if p, err := exec.LookPath(filepath.Join(d, name)); err == nil {
				return p, nil
			}
		}
	}
	if !errors.Is(err, exec.ErrNotFound) {
		return "", fmt.Errorf("this test needs %s (%s), and looking for it failed: %w", name, install, err)
	}
	return "", fmt.Errorf("this test needs %s, which is not installed (%s)", name, install)
}

// ProcStatusKiB returns the named fields of /proc/PID/status (VmRSS,
// VmHWM, ...), in KiB, for process pid, or for the test's own process
// when pid is 0. A field missing or not in kB fails tb.
func ProcStatusKiB(tb testing.TB, pid int, names ...string) []int64 {
	tb.Helper()
	path := "/proc/self/status"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/status", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("reading %s: %v", path, err)
	}
	out := make([]int64, len(names))
	for i, name := range names {
		found := false
		for line := range strings.Lines(string(b)) {
			f := strings.Fields(line)
			if len(f) == 3 && f[0] == name+":" && f[2] == "kB" {
				if _, err := fmt.Sscan(f[1], &out[i]); err != nil {
					tb.Fatalf("%s in %s: %q: %v", name, path, f[1], err)
				}
				found = true
				break
			}
		}
		if !found {
			tb.Fatalf("no %s in kB in %s", name, path)
		}
	}
	return out
}
