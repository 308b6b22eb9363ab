package sdnotify

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listen makes the socket systemd would listen on, at a path or (on
// Linux) an abstract name, and returns its NOTIFY_SOCKET value.
func listen(t *testing.T, abstract bool) (*net.UnixConn, string) {
	t.Helper()
	name := filepath.Join(t.TempDir(), "notify")
	if abstract {
		name = fmt.Sprintf("@ringdns-sdnotify-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, name
}

// read returns the next datagram's lines.
func read(t *testing.T, c *net.UnixConn) []string {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("reading the notification: %v", err)
	}
	return strings.Split(strings.TrimSuffix(string(buf[:n]), "\n"), "\n")
}

func TestNotify(t *testing.T) {
	for _, abstract := range []bool{false, true} {
		t.Run(fmt.Sprintf("abstract=%v", abstract), func(t *testing.T) {
			if abstract && runtime.GOOS != "linux" {
				t.Skip("abstract Unix socket names are Linux's")
			}
			sock, name := listen(t, abstract)
			t.Setenv("NOTIFY_SOCKET", name)
			n, err := Open()
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			if !n.Enabled() {
				t.Fatal("Enabled() = false with NOTIFY_SOCKET set")
			}
			if err := n.Ready("serving 2 zones\nand more"); err != nil {
				t.Fatal(err)
			}
			if got, want := read(t, sock), []string{"READY=1", "STATUS=serving 2 zones and more"}; !equal(got, want) {
				t.Errorf("Ready sent %q, want %q", got, want)
			}
			if err := n.Reloading("reloading"); err != nil {
				t.Fatal(err)
			}
			got := read(t, sock)
			if len(got) != 3 || got[0] != "RELOADING=1" || got[1] != "STATUS=reloading" || !strings.HasPrefix(got[2], "MONOTONIC_USEC=") {
				t.Fatalf("Reloading sent %q, want RELOADING=1, STATUS=reloading, MONOTONIC_USEC=...", got)
			}
			// MONOTONIC_USEC is CLOCK_MONOTONIC, which counts from boot: a
			// positive number, not a wall-clock time (which would be past
			// 1.7e15 µs).
			usec, err := strconv.ParseInt(strings.TrimPrefix(got[2], "MONOTONIC_USEC="), 10, 64)
			if err != nil || usec <= 0 || usec > 1e15 {
				t.Errorf("MONOTONIC_USEC %q is not a CLOCK_MONOTONIC time in µs", got[2])
			}
			if err := n.Stopping("stopping"); err != nil {
				t.Fatal(err)
			}
			if got, want := read(t, sock), []string{"STOPPING=1", "STATUS=stopping"}; !equal(got, want) {
				t.Errorf("Stopping sent %q, want %q", got, want)
			}
			if err := n.Send("READY=1\nSTOPPING=1"); err == nil {
				t.Error("Send accepted a line with a newline in it")
			}
		})
	}
}

// TestNotifyUnset: without NOTIFY_SOCKET nothing is sent, and nothing
// fails; a relative path is refused (systemd sends only absolute ones).
func TestNotifyUnset(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n, err := Open()
	if err != nil || n.Enabled() {
		t.Fatalf("Open() with NOTIFY_SOCKET unset = enabled %v, %v", n.Enabled(), err)
	}
	if err := n.Ready("x"); err != nil {
		t.Errorf("Ready on a disabled notifier: %v", err)
	}
	var none *Notifier
	if err := none.Stopping("x"); err != nil || none.Enabled() {
		t.Errorf("a nil Notifier sent or failed: %v", err)
	}
	t.Setenv("NOTIFY_SOCKET", "relative/notify")
	if _, err := Open(); err == nil {
		t.Error("Open accepted a relative NOTIFY_SOCKET")
	}
}

func equal(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }
