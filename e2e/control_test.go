package e2e

import (
	"net"
	"strings"
	"testing"
	"time"
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
