package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/ringdns/ringdns/controlplane"
)

// nobody is the uid the tests give files to.
const nobody = 65534

// statusHandler answers status with a version the test recognises.
type statusHandler struct{}

func (statusHandler) HandleControl(r controlplane.Request) controlplane.Reply {
	return controlplane.OKReply(controlplane.Status{Version: "test-version"})
}

// TestRingctlChecksDefaultSocket serves a control socket at the default
// path in $XDG_RUNTIME_DIR and changes who owns what: ringctl must talk to
// a socket of its own user's in a directory nobody else can write, and
// refuse anything else at the default path, where another user may have put
// a listener posing as ringdns. A socket named with -s is the operator's
// choice and is not checked.
func TestRingctlChecksDefaultSocket(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root (to chown files to another user), and CI=true forbids skipping it")
		}
		t.Skip("skipping: this test needs root, to chown files to another user")
	}
	xdg := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", xdg)
	path := controlplane.DefaultControlPath()
	srv, err := controlplane.ListenControl(path, statusHandler{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	chown := func(name string) func(t *testing.T) {
		return func(t *testing.T) {
			if err := os.Lchown(name, nobody, nobody); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Lchown(name, 0, 0) })
		}
	}
	chmod := func(name string, mode os.FileMode) func(t *testing.T) {
		return func(t *testing.T) {
			if err := os.Chmod(name, mode); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(name, 0o700) })
		}
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T)
		args  []string
		code  int
		want  string // in stdout when code is 0, in stderr otherwise
	}{
		{"own socket", nil, []string{"status"}, 0, "test-version"},
		{"socket of another user", chown(path), []string{"status"}, 1,
			fmt.Sprintf("%s belongs to uid %d", path, nobody)},
		{"socket of another user named with -s", chown(path), []string{"-s", path, "status"}, 0, "test-version"},
		{"directory of another user", chown(xdg), []string{"status"}, 1,
			fmt.Sprintf("%s belongs to uid %d", xdg, nobody)},
		{"directory writable by its group", chmod(xdg, 0o770), []string{"status"}, 1,
			fmt.Sprintf("%s is writable by other users (mode 0770)", xdg)},
		{"directory writable by everyone", chmod(xdg, 0o777), []string{"status"}, 1,
			fmt.Sprintf("%s is writable by other users (mode 0777)", xdg)},
		{"directory readable by everyone", chmod(xdg, 0o755), []string{"status"}, 0, "test-version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t)
			}
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			out := stdout.String()
			if tc.code != 0 {
				out = stderr.String()
			}
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Errorf("ringctl %v: exit %d, want %d with %q\nstdout: %s\nstderr: %s",
					tc.args, code, tc.code, tc.want, stdout.String(), stderr.String())
			}
		})
	}
}
