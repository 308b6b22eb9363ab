package control

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// The daemon and ringctl agree on where the socket is without flags, and
// each checks, from its own side, that no other user can have put anything
// there: the daemon before it listens (PrepareSocketPath), the client
// before it talks to the default path (CheckDefaultSocket).

// socketName is the default control socket's name in its directory.
const socketName = "ringdns.sock"

// DefaultPath is the control socket path used when none is configured:
// ringdns.sock in $XDG_RUNTIME_DIR for a user session, in /run/ringdns/ for
// root, else in a private directory /tmp/ringdns-UID/ (see defaultDir).
func DefaultPath() string {
	return filepath.Join(defaultDir(os.Getenv("XDG_RUNTIME_DIR"), os.Geteuid()).path, socketName)
}

// socketDir is the directory of the default control socket.
type socketDir struct {
	path string
	// create is set when ringdns makes the directory itself, mode 0700,
	// and then it must have that mode. A directory from the environment
	// must exist already, and may be readable by others: what would let
	// another user put a socket there is write permission.
	create bool
	// fix says what the operator can do about a directory refused.
	fix string
}

// defaultDir picks the directory of the default control socket from
// $XDG_RUNTIME_DIR (xdg) and the effective user. It is always a directory
// only its owner may enter: a socket named directly in a directory every
// user can write, such as /tmp, can be taken first by another user, who
// then keeps ringdns from starting or answers ringctl in its place.
// $XDG_RUNTIME_DIR is private by its specification (which also says to
// ignore a relative value); root's /run is writable by root only, and
// ringdns makes /run/ringdns for the socket; anyone else gets a directory
// of their own under the temporary directory, ringdns-UID. Either is made
// mode 0700.
func defaultDir(xdg string, euid int) socketDir {
	if filepath.IsAbs(xdg) {
		return socketDir{path: filepath.Clean(xdg),
			fix: "check $XDG_RUNTIME_DIR, or choose a socket elsewhere with -control or server.control"}
	}
	fix := "remove it (ringdns creates it, mode 0700), or choose a socket elsewhere with -control or server.control"
	if euid == 0 {
		return socketDir{path: "/run/ringdns", create: true, fix: fix}
	}
	return socketDir{path: filepath.Join(os.TempDir(), fmt.Sprintf("ringdns-%d", euid)), create: true, fix: fix}
}

// PrepareSocketPath readies path for the daemon's control socket, to be
// created next. A path in the default directory (see defaultDir) is only
// used once the directory is known to be the daemon's own: created mode
// 0700 when ringdns makes it, or found to be a directory of the daemon's
// user that no one else may write to. A stale socket left at path by a
// crashed daemon is removed; anything else already there is an error (see
// removeStaleSocket).
func PrepareSocketPath(path string) error {
	if d := defaultDir(os.Getenv("XDG_RUNTIME_DIR"), os.Geteuid()); filepath.Dir(filepath.Clean(path)) == d.path {
		if err := d.prepare(os.Geteuid()); err != nil {
			return err
		}
	}
	return removeStaleSocket(path)
}

// prepare makes the directory if ringdns creates it, and checks that it is
// a directory (not a symbolic link to one) owned by euid that no one else
// may write to (see create). A directory that fails is left alone: it may
// be another user's, made to catch the socket.
func (d socketDir) prepare(euid int) error {
	if d.create {
		err := os.Mkdir(d.path, 0o700)
		if err == nil {
			// A umask that takes the owner's bits must not leave a
			// directory that the check below then refuses.
			err = os.Chmod(d.path, 0o700)
		}
		if err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("control socket directory %s: %w; choose a socket elsewhere with -control or server.control", d.path, err)
		}
	}
	fi, err := os.Lstat(d.path)
	if err != nil {
		return fmt.Errorf("control socket directory %s: %w; %s", d.path, err, d.fix)
	}
	if !fi.IsDir() {
		return fmt.Errorf("control socket directory %s %s, not a directory; %s", d.path, describeFileType(fi.Mode()), d.fix)
	}
	if uid := fileOwner(fi); uid != euid {
		return fmt.Errorf("control socket directory %s belongs to uid %d, not to uid %d that ringdns runs as: another user may have made it to catch the control socket; %s",
			d.path, uid, euid, d.fix)
	}
	perm := fi.Mode().Perm()
	if d.create && perm != 0o700 {
		return fmt.Errorf("control socket directory %s has mode %#o, not the 0700 ringdns makes it with: chmod 700 %s, or %s",
			d.path, perm, d.path, d.fix)
	}
	if perm&0o022 != 0 {
		return fmt.Errorf("control socket directory %s has mode %#o: other users may write to it; chmod go-w %s, or %s",
			d.path, perm, d.path, d.fix)
	}
	return nil
}

// removeStaleSocket removes the socket file at path if nobody listens on
// it, which is what a daemon killed with SIGKILL leaves behind. Anything
// else is refused and left alone: -control naming an existing file by
// mistake must not delete it, a symbolic link may point anywhere, and a
// socket that accepts connections, or that this process may not connect to,
// belongs to someone else.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("control socket %s: the path %s, not a socket; remove it or choose another path with -control or server.control",
			path, describeFileType(fi.Mode()))
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("control socket %s: something is listening on it (another ringdns?); stop it or choose another path", path)
	}
	// Only a refused connection says nobody listens. A full backlog, a
	// timeout or a permission error says nothing of the kind.
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("control socket %s: a socket is there and connecting to it failed (%v); not removing it", path, err)
	}
	// The file removed must be the socket just probed, not something put
	// in its place meanwhile.
	if again, err := os.Lstat(path); err != nil || !os.SameFile(fi, again) {
		return fmt.Errorf("control socket %s: replaced while checking whether it was stale; not removing it", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("control socket %s: removing stale socket: %w", path, err)
	}
	return nil
}

// CheckDefaultSocket checks, for a client about to talk to the default
// control socket at path, that no other user can have put it there: the
// socket and its directory must belong to the client's own user or root,
// and the directory must not be writable by anyone else (it need not be
// private: a daemon run by root may keep its socket in a directory others
// can read). A socket named by the operator (ringctl -s) is not checked:
// that is their choice, and may well be another user's daemon.
func CheckDefaultSocket(path string) error {
	euid := os.Geteuid()
	trusted := func(uid int) bool { return uid == euid || uid == 0 }
	hint := "; if this is the daemon you mean, name it with -s PATH"
	dir := filepath.Dir(path)
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("control socket %s: %w (is ringdns running? use -s PATH)", path, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("control socket directory %s %s, not a directory: refusing to trust it%s", dir, describeFileType(fi.Mode()), hint)
	}
	if uid := fileOwner(fi); !trusted(uid) {
		return fmt.Errorf("control socket directory %s belongs to uid %d, neither you (uid %d) nor root: another user may have put a listener there posing as ringdns%s",
			dir, uid, euid, hint)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("control socket directory %s is writable by other users (mode %#o): one of them may have put a listener there posing as ringdns%s",
			dir, perm, hint)
	}
	fi, err = os.Lstat(path)
	if err != nil {
		return fmt.Errorf("control socket %s: %w (is ringdns running? use -s PATH)", path, err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("control socket %s %s, not a socket%s", path, describeFileType(fi.Mode()), hint)
	}
	if uid := fileOwner(fi); !trusted(uid) {
		return fmt.Errorf("control socket %s belongs to uid %d, neither you (uid %d) nor root: it may be another user's listener posing as ringdns%s",
			path, uid, euid, hint)
	}
	return nil
}

// fileOwner is the uid that owns the file fi describes.
func fileOwner(fi os.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// describeFileType says what kind of file a mode is, for errors.
func describeFileType(m os.FileMode) string {
	switch m.Type() {
	case 0:
		return "is a regular file"
	case os.ModeDir:
		return "is a directory"
	case os.ModeSymlink:
		return "is a symbolic link"
	case os.ModeNamedPipe:
		return "is a named pipe"
	case os.ModeSocket:
		return "is a socket"
	case os.ModeDevice, os.ModeDevice | os.ModeCharDevice:
		return "is a device"
	default:
		return "is a " + m.Type().String() + " file"
	}
}
