package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/ringdns/ringdns/controlplane/control"
	"github.com/ringdns/ringdns/internal/testenv"
)

// nobody is the uid the tests give files to.
const nobody = 65534

// serveStatus listens on path and answers every request with a status of a
// version the test recognises: the daemon's side of the protocol, without
// the daemon, whose own tests are controlplane's.
func serveStatus(t *testing.T, path string) {
	t.Helper()
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	reply, err := json.Marshal(control.OKReply(control.Status{Version: "test-version"}))
	if err != nil {
		t.Fatal(err)
	}
	reply = append(reply, '\n')
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					if _, err := r.ReadBytes('\n'); err != nil {
						return
					}
					if _, err := c.Write(reply); err != nil {
						return
					}
				}
			}()
		}
	}()
}

// TestRingctlChecksDefaultSocket serves a control socket at the default
// path in $XDG_RUNTIME_DIR and changes who owns what: ringctl must talk to
// a socket of its own user's in a directory nobody else can write, and
// refuse anything else at the default path, where another user may have put
// a listener posing as ringdns. A socket named with -s is the operator's
// choice and is not checked.
func TestRingctlChecksDefaultSocket(t *testing.T) {
	testenv.RequireRoot(t, "to chown files to another user")
	xdg := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", xdg)
	path := control.DefaultPath()
	serveStatus(t, path)

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

// TestStatsPrintsRRLAndCookies: ringctl stats shows what rate limiting
// held back, by class, and the cookies seen, from the total's maps.
func TestStatsPrintsRRLAndCookies(t *testing.T) {
	st := control.Stats{Total: control.Counters{Queries: 100, Replies: 60,
		Drops:      map[string]uint64{"rrl": 40},
		RRLSlipped: map[string]uint64{"answer": 30, "nxdomain": 5},
		RRLDropped: map[string]uint64{"answer": 40},
		Cookies:    map[string]uint64{"valid": 7, "client-only": 2}}}
	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := printHuman(&out, control.CmdStats, data); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"rrl:    limited 75 (slipped answer=30 nxdomain=5; dropped answer=40)",
		"cookies: client-only=2 valid=7",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stats output lacks %q:\n%s", want, out.String())
		}
	}
}
