package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// fakeTB records how Require ended a test. Like testing.T's, its Skip and
// Fatal stop the goroutine that calls them, so a Require that went on
// after either would be seen doing so. The embedded testing.TB is nil:
// a method Require is not expected to call panics.
type fakeTB struct {
	testing.TB
	calls []string // "skip: msg" or "fatal: msg", in order
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Skipf(format string, args ...any) {
	f.calls = append(f.calls, "skip: "+fmt.Sprintf(format, args...))
	runtime.Goexit()
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.calls = append(f.calls, "fatal: "+fmt.Sprintf(format, args...))
	runtime.Goexit()
}

// run calls body with a fresh fakeTB on a goroutine of its own, as the
// testing package runs a test, and returns what the fake recorded and
// whether body returned (false when it was stopped).
func run(body func(tb testing.TB)) (calls []string, returned bool) {
	f := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		body(f)
		returned = true
	}()
	<-done
	return f.calls, returned
}

// TestRequire checks the policy: nothing happens when err is nil; a skip
// that names the reason otherwise; a failure that names it under CI=true,
// and only under CI=true exactly, as scripts/test.sh and CI set it.
func TestRequire(t *testing.T) {
	missing := errors.New("this test needs knotd, which is not installed (Debian package knot)")
	for _, tc := range []struct {
		ci   string
		err  error
		want string // the one call recorded, or "" for none
	}{
		{"", nil, ""},
		{"true", nil, ""},
		{"", missing, "skip: skipping: " + missing.Error()},
		{"false", missing, "skip: skipping: " + missing.Error()},
		{"1", missing, "skip: skipping: " + missing.Error()},
		{"true", missing, "fatal: " + missing.Error() + ", and CI=true forbids skipping it"},
	} {
		t.Setenv("CI", tc.ci)
		calls, returned := run(func(tb testing.TB) { Require(tb, tc.err) })
		switch {
		case tc.want == "" && (len(calls) != 0 || !returned):
			t.Errorf("CI=%q, err %v: got %q (returned %v), want nothing", tc.ci, tc.err, calls, returned)
		case tc.want != "" && (len(calls) != 1 || calls[0] != tc.want || returned):
			t.Errorf("CI=%q, err %v: got %q (returned %v), want [%q] and stop", tc.ci, tc.err, calls, returned, tc.want)
		}
	}
}

// TestRootError checks what RequireRoot says to a process that is not
// root, and that it lets root through.
func TestRootError(t *testing.T) {
	if err := rootError(0, "to chown files"); err != nil {
		t.Errorf("uid 0: %v, want nil", err)
	}
	err := rootError(1000, "to chown files to another user")
	if err == nil || err.Error() != "this test needs root, to chown files to another user" {
		t.Errorf("uid 1000: %v", err)
	}
}

// TestLookTool checks where RequireTool looks: PATH first, then the sbin
// directories it is given, and that what it says when the program is
// nowhere names the program and how to install it.
func TestLookTool(t *testing.T) {
	bin, sbin := t.TempDir(), t.TempDir()
	write := func(dir, name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	inPath := write(bin, "inpath")
	inSbin := write(sbin, "insbin")
	t.Setenv("PATH", bin)
	for _, tc := range []struct {
		name, want, err string
	}{
		{"inpath", inPath, ""},
		{"insbin", inSbin, ""},
		{"nowhere", "", "this test needs nowhere, which is not installed (Debian package nowhere)"},
	} {
		got, err := lookTool(tc.name, "Debian package "+tc.name, []string{sbin})
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && err.Error() != tc.err) {
			t.Errorf("lookTool(%q) = %q, %v; want %q, %q", tc.name, got, err, tc.want, tc.err)
		}
	}
	// RequireTool stops the test with that reason.
	t.Setenv("CI", "")
	calls, returned := run(func(tb testing.TB) { RequireTool(tb, "ringdns-no-such-tool", "nowhere") })
	if returned || len(calls) != 1 || !strings.HasPrefix(calls[0], "skip: skipping: this test needs ringdns-no-such-tool") {
		t.Errorf("RequireTool of a missing program: %q (returned %v)", calls, returned)
	}
}

func TestProcStatusKiB(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	st := ProcStatusKiB(t, 0, "VmRSS", "VmHWM")
	if st[0] <= 0 || st[1] < st[0] {
		t.Errorf("VmRSS %d KiB, VmHWM %d KiB: want 0 < RSS <= HWM", st[0], st[1])
	}
	if other := ProcStatusKiB(t, os.Getpid(), "VmRSS"); other[0] <= 0 {
		t.Errorf("VmRSS of pid %d: %d KiB", os.Getpid(), other[0])
	}
	calls, _ := run(func(tb testing.TB) { ProcStatusKiB(tb, 0, "NoSuchField") })
	if len(calls) != 1 || !strings.HasPrefix(calls[0], "fatal: no NoSuchField") {
		t.Errorf("a missing field: %q, want one Fatalf", calls)
	}
}
