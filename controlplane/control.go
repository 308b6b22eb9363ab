package controlplane

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// The control protocol is one JSON Request per line from the client and
// one JSON Reply per line from the server, any number per connection.

// Control commands.
const (
	CmdStatus = "status"
	CmdZones  = "zones"
	CmdReload = "reload"
	CmdStats  = "stats"
)

// Request is one control command.
type Request struct {
	Cmd   string   `json:"cmd"`
	Zones []string `json:"zones,omitempty"` // reload: the zones to reload, all when empty
}

// Reply is the answer to one Request. Error is set when the request could
// not be carried out; Data holds the command's result otherwise (and, for a
// reload with failed zones, both are set).
type Reply struct {
	OK    bool            `json:"ok"`
	Error string          `json:"error,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
}

// ControlHandler carries out control requests.
type ControlHandler interface {
	HandleControl(Request) Reply
}

// Limits of the control socket. They keep a confused or hostile local
// client from holding memory or goroutines, and from locking ringctl out.
const (
	MaxControlRequest = 64 << 10

	// maxControlConns is the number of control connections served at
	// once. A connection arriving when that many are open closes the one
	// idle longest (see connLimits.evictIdle), so connections left open
	// never keep ringctl out; only when every one of them is carrying out
	// a request is the newcomer closed unread, which the client reports
	// (see closedErr).
	maxControlConns = 16
	// controlAcceptLimit is the most connections the control socket holds
	// at once, for the file descriptors reserved for it: the bound, and a
	// newcomer accepted before it is refused or the connection it displaces
	// is closed.
	controlAcceptLimit = maxControlConns + 1

	controlWriteTimeout = 10 * time.Second
)

// Read timeouts of the control socket, variables so that tests can shorten
// them. A connection must begin its first request within
// controlFirstRequestTimeout: ringctl sends its request as soon as it
// connects, and a client that connects and says nothing is stuck or
// leaking connections. Between requests a client may wait longer. A
// request must be complete within controlRequestTimeout of its first byte:
// ringctl writes it at once, and a connection in the middle of a request
// is not idle, so one that stalls there holds its place no longer than
// this.
var (
	controlFirstRequestTimeout = 5 * time.Second
	controlIdleTimeout         = 60 * time.Second
	controlRequestTimeout      = 5 * time.Second
)

// ControlServer serves the control socket.
type ControlServer struct {
	path    string
	ln      *net.UnixListener
	handler ControlHandler
	log     *slog.Logger

	conns  connSet
	accept sync.WaitGroup // the accept loop
}

// ListenControl creates the control socket at path with mode 0600. A stale
// socket left by a crashed daemon is removed; anything else already at path
// is an error (see removeStaleSocket).
//
// A socket in the default directory (see defaultControlDir) is only put
// there once the directory is known to be the daemon's own: created mode
// 0700 when ringdns makes it, or found to be a directory of the daemon's
// user that no one else may write to.
func ListenControl(path string, h ControlHandler, log *slog.Logger) (*ControlServer, error) {
	if d := defaultControlDir(os.Getenv("XDG_RUNTIME_DIR"), os.Geteuid()); filepath.Dir(filepath.Clean(path)) == d.path {
		if err := d.prepare(os.Geteuid()); err != nil {
			return nil, err
		}
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	// The umask makes the kernel create the socket file with mode 0600, so
	// there is no moment in which another user could connect. The umask is
	// process-wide; this runs at startup before any other file is created.
	old := syscall.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	s := &ControlServer{path: path, ln: ln, handler: h, log: log}
	s.accept.Add(1)
	go func() {
		defer s.accept.Done()
		lim := connLimits{max: maxControlConns, evictIdle: true}
		s.conns.acceptLimited(s.ln, lim, s.log, s.serveConn, func(a admission) {
			if a == refusedFull && !s.conns.stopped() {
				s.log.Warn("control connection refused: every one open is carrying out a request", "limit", maxControlConns)
			}
		})
	}()
	return s, nil
}

// controlDir is the directory of the default control socket.
type controlDir struct {
	path string
	// create is set when ringdns makes the directory itself, mode 0700,
	// and then it must have that mode. A directory from the environment
	// must exist already, and may be readable by others: what would let
	// another user put a socket there is write permission.
	create bool
	// fix says what the operator can do about a directory refused.
	fix string
}

// controlSocketName is the default control socket's name in its directory.
const controlSocketName = "ringdns.sock"

// defaultControlDir picks the directory of the default control socket from
// $XDG_RUNTIME_DIR (xdg) and the effective user. It is always a directory
// only its owner may enter: a socket named directly in a directory every
// user can write, such as /tmp, can be taken first by another user, who
// then keeps ringdns from starting or answers ringctl in its place.
// $XDG_RUNTIME_DIR is private by its specification (which also says to
// ignore a relative value); root's /run is writable by root only, and
// ringdns makes /run/ringdns for the socket; anyone else gets a directory
// of their own under the temporary directory, ringdns-UID. Either is made
// mode 0700.
func defaultControlDir(xdg string, euid int) controlDir {
	if filepath.IsAbs(xdg) {
		return controlDir{path: filepath.Clean(xdg),
			fix: "check $XDG_RUNTIME_DIR, or choose a socket elsewhere with -control or server.control"}
	}
	fix := "remove it (ringdns creates it, mode 0700), or choose a socket elsewhere with -control or server.control"
	if euid == 0 {
		return controlDir{path: "/run/ringdns", create: true, fix: fix}
	}
	return controlDir{path: filepath.Join(os.TempDir(), fmt.Sprintf("ringdns-%d", euid)), create: true, fix: fix}
}

// prepare makes the directory if ringdns creates it, and checks that it is
// a directory (not a symbolic link to one) owned by euid that no one else
// may write to (see create). A directory that fails is left alone: it may
// be another user's, made to catch the socket.
func (d controlDir) prepare(euid int) error {
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

// fileOwner is the uid that owns the file fi describes.
func fileOwner(fi os.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}

// CheckDefaultControl checks, for a client about to talk to the default
// control socket at path, that no other user can have put it there: the
// socket and its directory must belong to the client's own user or root,
// and the directory must not be writable by anyone else (it need not be
// private: a daemon run by root may keep its socket in a directory others
// can read). A socket named by the operator (ringctl -s) is not checked:
// that is their choice, and may well be another user's daemon.
func CheckDefaultControl(path string) error {
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

// Path is the socket's file name.
func (s *ControlServer) Path() string { return s.path }

// serveConn serves one control connection. While it waits for the first
// byte of a request with nothing read, the connection is idle: a newcomer
// over the bound may close it, which loses nothing the client was not
// told.
func (s *ControlServer) serveConn(e *connEntry) {
	c := e.conn
	defer s.conns.done(c)
	r := bufio.NewReaderSize(c, 4096)
	enc := json.NewEncoder(c)
	idle := controlFirstRequestTimeout
	for {
		if r.Buffered() == 0 {
			if !s.conns.setIdle(e, true) || !s.readDeadline(c, idle) {
				return
			}
			_, err := r.Peek(1)
			if !s.conns.setIdle(e, false) || err != nil {
				return
			}
		}
		if !s.readDeadline(c, controlRequestTimeout) {
			return
		}
		line, err := readLine(r, MaxControlRequest)
		if err != nil {
			if errors.Is(err, errLineTooLong) {
				c.SetWriteDeadline(time.Now().Add(controlWriteTimeout))
				enc.Encode(Reply{Error: err.Error()})
			}
			return
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		reply := s.handle(line)
		c.SetWriteDeadline(time.Now().Add(controlWriteTimeout))
		if err := enc.Encode(reply); err != nil {
			return
		}
		idle = controlIdleTimeout
	}
}

// readDeadline sets c's read deadline d from now and reports whether the
// connection may go on: it may not once Close has begun (see
// connSet.stopped).
func (s *ControlServer) readDeadline(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	return !s.conns.stopped()
}

// handle decodes and carries out one request. A panic in a handler is
// turned into an error reply: the control socket must not take the
// daemon down.
func (s *ControlServer) handle(line []byte) (reply Reply) {
	var req Request
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return Reply{Error: "bad request: " + err.Error()}
	}
	if dec.More() {
		return Reply{Error: "bad request: one JSON object per line"}
	}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("control request panicked", "cmd", req.Cmd, "panic", p)
			reply = Reply{Error: fmt.Sprintf("internal error: %v", p)}
		}
	}()
	return s.handler.HandleControl(req)
}

var errLineTooLong = fmt.Errorf("request longer than %d bytes", MaxControlRequest)

// readLine reads one newline-terminated line of at most max bytes. A line
// cut by end of file is returned as a line.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		// A full buffer without a newline at max bytes means the line,
		// newline included, is longer than max: it is refused now rather
		// than when the client sends more or the idle timeout strikes.
		if len(line)+len(frag) > max || (errors.Is(err, bufio.ErrBufferFull) && len(line)+len(frag) >= max) {
			return nil, errLineTooLong
		}
		line = append(line, frag...)
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return line, nil
		default:
			return nil, err
		}
	}
}

// Close stops accepting, closes every connection and removes the socket
// file.
func (s *ControlServer) Close() error {
	s.conns.stop()
	err := s.ln.Close()
	s.accept.Wait()
	s.conns.wait(0)
	if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	return err
}

// OKReply wraps a command result in a successful Reply.
func OKReply(v any) Reply {
	b, err := json.Marshal(v)
	if err != nil {
		return Reply{Error: "encoding reply: " + err.Error()}
	}
	return Reply{OK: true, Data: b}
}

// ControlClient is a connection to a daemon's control socket.
type ControlClient struct {
	path    string
	conn    net.Conn
	r       *bufio.Reader
	timeout time.Duration
}

// DialControl connects to the control socket at path. timeout bounds each
// request's round trip.
func DialControl(path string, timeout time.Duration) (*ControlClient, error) {
	c, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w (is ringdns running? use -s PATH)", path, err)
	}
	return &ControlClient{path: path, conn: c, r: bufio.NewReaderSize(c, 64<<10), timeout: timeout}, nil
}

// closedErr turns an error from writing a request or reading its reply
// into one that says what happened. A daemon closes a connection without
// a reply when it is over its bound of connections or stopping; the
// client sees that as a broken pipe, a reset or an end of file.
func (c *ControlClient) closedErr(err error) error {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNRESET):
		return fmt.Errorf("ringdns at %s closed the connection before replying: too many control connections open (limit %d), or is it stopping?",
			c.path, maxControlConns)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("no reply from ringdns at %s within %s", c.path, c.timeout)
	default:
		return fmt.Errorf("ringdns at %s: %w", c.path, err)
	}
}

// Do sends one request and waits for its reply. When the reply carries
// data and out is not nil, the data is decoded into out.
func (c *ControlClient) Do(req Request, out any) (Reply, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return Reply{}, err
	}
	c.conn.SetDeadline(time.Now().Add(c.timeout))
	// A write that finds the connection closed may still leave a reply to
	// read: a daemon that refuses a connection replies and closes it
	// without waiting for the request.
	if _, err := c.conn.Write(append(b, '\n')); err != nil && !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
		return Reply{}, c.closedErr(err)
	}
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		return Reply{}, c.closedErr(err)
	}
	var rep Reply
	if err := json.Unmarshal(line, &rep); err != nil {
		return Reply{}, fmt.Errorf("bad reply: %w", err)
	}
	if out != nil && len(rep.Data) > 0 {
		if err := json.Unmarshal(rep.Data, out); err != nil {
			return rep, fmt.Errorf("bad reply data: %w", err)
		}
	}
	return rep, nil
}

// Close closes the connection.
func (c *ControlClient) Close() error { return c.conn.Close() }
