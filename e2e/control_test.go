package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringdns/ringdns/internal/testenv"
)

// controlConnLimit is the control socket's bound on connections served at
// once (controlplane's maxControlConns).
const controlConnLimit = 16

// TestControlIdleConnectionsDoNotLockOut holds the control socket's whole
// bound of connections open and idle, some that never spoke and some that
// sent one request: ringctl must still get its answer at once (the daemon
// closes the connection idle longest to make room), not fail or wait for an
// idle timeout.
func TestControlIdleConnectionsDoNotLockOut(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "-zone", "example.="+exampleZone())
	for i := 0; i < controlConnLimit; i++ {
		c, err := net.DialTimeout("unix", d.control, queryTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if i%2 == 1 {
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write([]byte(`{"cmd":"status"}` + "\n")); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Read(make([]byte, 4096)); err != nil {
				t.Fatalf("idle connection %d: no reply: %v", i, err)
			}
		}
	}
	// The daemon accepts connections in the order they arrived, so each
	// ringctl below finds the bound already full.
	for i := 0; i < 3; i++ {
		out, code := d.ringctl("status")
		if code != 0 || !strings.Contains(out, "1 serving") {
			t.Fatalf("ringctl status %d with %d idle control connections open: exit %d\n%s", i, controlConnLimit, code, out)
		}
	}
	d.alive()
}

// TestControlPathRefusals starts ringdns where its control socket cannot
// safely go: it must exit with an error naming the path and what is wrong,
// and leave what it found untouched.
func TestControlPathRefusals(t *testing.T) {
	t.Parallel()
	const nobody = 65534
	for _, tc := range []struct {
		name  string
		root  bool                                    // needs root, to chown
		setup func(t *testing.T, dir string) []string // returns the arguments
		want  func(dir string) string                 // in the output
	}{
		{"-control names a regular file", false, func(t *testing.T, dir string) []string {
			f := filepath.Join(dir, "precious.txt")
			if err := os.WriteFile(f, []byte("precious data\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			return []string{"-control", f}
		}, func(dir string) string {
			return filepath.Join(dir, "precious.txt") + ": the path is a regular file, not a socket"
		}},
		{"default directory of another user", true, func(t *testing.T, dir string) []string {
			if err := os.Chown(dir, nobody, nobody); err != nil {
				t.Fatal(err)
			}
			return nil
		}, func(dir string) string {
			return fmt.Sprintf("control socket directory %s belongs to uid %d", dir, nobody)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root {
				testenv.RequireRoot(t, "to chown a directory to another user")
			}
			dir := filepath.Join(t.TempDir(), "run")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			args := append(tc.setup(t, dir), "-zone", "example.="+exampleZone(), "-listen", "127.0.0.1:0")
			before := snapshotDir(t, dir)
			// ringdns refuses before it serves, in milliseconds; one that
			// serves instead is killed after 20 s, and the exit status
			// (-1) fails the test.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, ringdnsBin, args...)
			cmd.Env = childEnv("XDG_RUNTIME_DIR=" + dir)
			out, err := cmd.CombinedOutput()
			if code := exitCode(t, "ringdns", err); code != 1 || !strings.Contains(string(out), tc.want(dir)) {
				t.Errorf("ringdns %v: exit %d, want 1 and %q in\n%s", args, code, tc.want(dir), out)
			}
			if after := snapshotDir(t, dir); after != before {
				t.Errorf("the directory changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// snapshotDir describes dir and its entries: names, modes and sizes.
func snapshotDir(t *testing.T, dir string) string {
	t.Helper()
	fi, err := os.Lstat(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := fmt.Sprintf("%v", fi.Mode())
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		s += fmt.Sprintf(" %s %v %d", e.Name(), info.Mode(), info.Size())
	}
	return s
}
