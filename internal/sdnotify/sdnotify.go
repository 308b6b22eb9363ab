// Package sdnotify tells systemd how the daemon is doing, by the protocol
// of sd_notify(3): datagrams of NAME=VALUE lines sent to the Unix socket
// named by $NOTIFY_SOCKET (a path, or an abstract name written with a
// leading @). With Type=notify in the unit, systemd holds back the units
// ordered after ringdns until READY=1, shows STATUS= in systemctl status,
// and, from RELOADING=1 to the next READY=1, knows a reload is under way.
//
// It is the few lines the protocol takes, with no library: no reply is
// read, and a missing socket is no error.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Notifier sends state to systemd. Its zero value, and a nil *Notifier,
// send nothing: the daemon was not started by systemd with Type=notify.
type Notifier struct {
	conn *net.UnixConn
}

// Open connects to $NOTIFY_SOCKET and returns a Notifier, one that sends
// nothing when the variable is unset. The connection is made at once, so
// that the daemon can keep sending after it has switched to a user that
// could not open the socket any more.
func Open() (*Notifier, error) {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return &Notifier{}, nil
	}
	if name[0] != '/' && name[0] != '@' {
		return &Notifier{}, fmt.Errorf("NOTIFY_SOCKET %q: want an absolute path or an abstract name starting with @", name)
	}
	// The standard library turns a leading @ into the abstract
	// namespace's NUL byte.
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return &Notifier{}, fmt.Errorf("NOTIFY_SOCKET %s: %w", name, err)
	}
	return &Notifier{conn: c}, nil
}

// Enabled reports whether n sends anything.
func (n *Notifier) Enabled() bool { return n != nil && n.conn != nil }

// Send sends one datagram of the given NAME=VALUE lines.
func (n *Notifier) Send(lines ...string) error {
	if !n.Enabled() {
		return nil
	}
	for _, l := range lines {
		if strings.ContainsRune(l, '\n') || !strings.ContainsRune(l, '=') {
			return fmt.Errorf("sd_notify: %q is not one NAME=VALUE line", l)
		}
	}
	_, err := n.conn.Write([]byte(strings.Join(lines, "\n") + "\n"))
	return err
}

// Ready says the service is up: every zone loaded and every listener open,
// or a reload done.
func (n *Notifier) Ready(status string) error { return n.Send("READY=1", "STATUS="+oneLine(status)) }

// Reloading says a reload has begun. MONOTONIC_USEC, the time of the
// CLOCK_MONOTONIC clock, is what systemd 253 and later require of a
// Type=notify-reload service, so that it can tell this reload from an
// earlier one; older versions ignore it.
func (n *Notifier) Reloading(status string) error {
	lines := []string{"RELOADING=1", "STATUS=" + oneLine(status)}
	if usec, ok := monotonicUsec(); ok {
		lines = append(lines, "MONOTONIC_USEC="+strconv.FormatInt(usec, 10))
	}
	return n.Send(lines...)
}

// Stopping says the service is shutting down.
func (n *Notifier) Stopping(status string) error {
	return n.Send("STOPPING=1", "STATUS="+oneLine(status))
}

// Status sets the one-line status systemctl status shows.
func (n *Notifier) Status(status string) error { return n.Send("STATUS=" + oneLine(status)) }

// Close closes the connection.
func (n *Notifier) Close() error {
	if !n.Enabled() {
		return nil
	}
	return n.conn.Close()
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, the clock systemd
// compares MONOTONIC_USEC with (not Go's monotonic reading, whose origin
// is the process's own); false if the clock cannot be read.
func monotonicUsec() (int64, bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, false
	}
	return ts.Sec*1e6 + ts.Nsec/1e3, true
}

// oneLine keeps a status to one line.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }
