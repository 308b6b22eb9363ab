package e2e

import (
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// notifyWait bounds the wait for each message from the daemon: it loads
// the example zone and opens its sockets in milliseconds, and the bound
// covers the race detector on a loaded two-core machine.
const notifyWait = 20 * time.Second

// TestSystemdNotify stands in for systemd: it listens on a datagram socket
// named by NOTIFY_SOCKET and checks what ringdns tells it, as Type=notify
// expects: READY=1 once serving, RELOADING=1 (with MONOTONIC_USEC, which
// Type=notify-reload requires) then READY=1 around a SIGHUP reload, and
// STOPPING=1 on SIGTERM.
func TestSystemdNotify(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sockPath := filepath.Join(dir, "notify")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	// next returns the next message that has one of the given states
	// (READY=1, ...), skipping STATUS-only ones.
	next := func(states ...string) []string {
		t.Helper()
		deadline := time.Now().Add(notifyWait)
		buf := make([]byte, 4096)
		for {
			sock.SetReadDeadline(deadline)
			n, err := sock.Read(buf)
			if err != nil {
				t.Fatalf("waiting for %v: %v", states, err)
			}
			lines := strings.Split(strings.TrimSuffix(string(buf[:n]), "\n"), "\n")
			for _, l := range lines {
				for _, s := range states {
					if l == s {
						return lines
					}
				}
			}
			t.Logf("notification %q", lines)
		}
	}
	has := func(lines []string, prefix string) bool {
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return true
			}
		}
		return false
	}

	d := &daemon{t: t, dir: dir, control: filepath.Join(dir, "control.sock"), out: &syncBuffer{}, exited: make(chan struct{})}
	d.start([]string{"-zone", "example.=" + exampleZone(), "-listen", "127.0.0.1:0", "-control", d.control},
		[]string{"NOTIFY_SOCKET=" + sockPath, "XDG_RUNTIME_DIR=" + dir})

	ready := next("READY=1", "RELOADING=1", "STOPPING=1")
	if ready[0] != "READY=1" || !has(ready, "STATUS=serving 1 of 1 zones") {
		t.Fatalf("first state message %q, want READY=1 with STATUS=serving 1 of 1 zones ...", ready)
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	reloading := next("READY=1", "RELOADING=1", "STOPPING=1")
	if reloading[0] != "RELOADING=1" || !has(reloading, "MONOTONIC_USEC=") {
		t.Fatalf("after SIGHUP: %q, want RELOADING=1 with MONOTONIC_USEC=", reloading)
	}
	if again := next("READY=1", "RELOADING=1", "STOPPING=1"); again[0] != "READY=1" {
		t.Fatalf("after the reload: %q, want READY=1", again)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	if stopping := next("READY=1", "RELOADING=1", "STOPPING=1"); stopping[0] != "STOPPING=1" {
		t.Fatalf("after SIGTERM: %q, want STOPPING=1", stopping)
	}
	if code := d.waitExit(10 * time.Second); code != 0 {
		t.Errorf("exit status %d after SIGTERM", code)
	}
}
