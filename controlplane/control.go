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
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ringdns/ringdns/controlplane/control"
)

// This file is the daemon's side of the control socket. The protocol, one
// JSON control.Request per line from the client and one JSON control.Reply
// per line from the daemon, and its client are package control's.

// ControlHandler carries out control requests.
type ControlHandler interface {
	HandleControl(control.Request) control.Reply
}

// Limits of the control socket. They keep a confused or hostile local
// client from holding memory or goroutines, and from locking ringctl out.
const (
	// maxControlConns is the number of control connections served at
	// once. A connection arriving when that many are open closes the one
	// idle longest (see connLimits.evictIdle), so connections left open
	// never keep ringctl out; only when every one of them is carrying out
	// a request is the newcomer closed unread, which the client reports
	// with this bound.
	maxControlConns = control.MaxConns
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
	// keepFile leaves the socket's file in place at Close: it is handed
	// over with the socket to a new process (upgrade.go).
	keepFile atomic.Bool
}

// ListenControl creates the control socket at path with mode 0600. A stale
// socket left by a crashed daemon is removed; anything else already at path
// is an error. A socket in the default directory is only put there once the
// directory is known to be the daemon's own (see
// control.PrepareSocketPath).
func ListenControl(path string, h ControlHandler, log *slog.Logger) (*ControlServer, error) {
	if err := control.PrepareSocketPath(path); err != nil {
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
	s.start()
	return s, nil
}

// start serves the socket's connections until Close.
func (s *ControlServer) start() {
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
	// quiet is when the last reply went out (see connEntry.quiet), taken
	// before the write since the client may act on the reply at once.
	quiet := time.Now()
	for {
		if r.Buffered() == 0 {
			if !s.conns.setIdle(e, true, quiet) || !s.readDeadline(c, idle) {
				return
			}
			_, err := r.Peek(1)
			if !s.conns.setIdle(e, false, time.Time{}) || err != nil {
				return
			}
		}
		if !s.readDeadline(c, controlRequestTimeout) {
			return
		}
		line, err := readLine(r, control.MaxRequest)
		if err != nil {
			if errors.Is(err, errLineTooLong) {
				c.SetWriteDeadline(time.Now().Add(controlWriteTimeout))
				enc.Encode(control.Reply{Error: err.Error()})
			}
			return
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		reply := s.handle(line)
		quiet = time.Now()
		c.SetWriteDeadline(quiet.Add(controlWriteTimeout))
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
func (s *ControlServer) handle(line []byte) (reply control.Reply) {
	var req control.Request
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return control.Reply{Error: "bad request: " + err.Error()}
	}
	if dec.More() {
		return control.Reply{Error: "bad request: one JSON object per line"}
	}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("control request panicked", "cmd", req.Cmd, "panic", p)
			reply = control.Reply{Error: fmt.Sprintf("internal error: %v", p)}
		}
	}()
	return s.handler.HandleControl(req)
}

var errLineTooLong = fmt.Errorf("request longer than %d bytes", control.MaxRequest)

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
	keep := s.keepFile.Load()
	if keep {
		s.ln.SetUnlinkOnClose(false)
	}
	err := s.ln.Close()
	s.accept.Wait()
	s.conns.wait(0)
	if keep {
		return err
	}
	if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	return err
}
