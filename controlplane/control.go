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
// client from holding memory or goroutines.
const (
	MaxControlRequest   = 64 << 10
	maxControlConns     = 16
	controlIdleTimeout  = 60 * time.Second
	controlWriteTimeout = 10 * time.Second
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
func ListenControl(path string, h ControlHandler, log *slog.Logger) (*ControlServer, error) {
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
		s.conns.acceptLoop(s.ln, maxControlConns, s.log, s.serveConn, nil)
	}()
	return s, nil
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

func (s *ControlServer) serveConn(c net.Conn) {
	defer s.conns.done(c)
	r := bufio.NewReaderSize(c, 4096)
	enc := json.NewEncoder(c)
	for {
		c.SetReadDeadline(time.Now().Add(controlIdleTimeout))
		if s.conns.stopped() { // see connSet.stopped
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
	}
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
	return &ControlClient{conn: c, r: bufio.NewReaderSize(c, 64<<10), timeout: timeout}, nil
}

// Do sends one request and waits for its reply. When the reply carries
// data and out is not nil, the data is decoded into out.
func (c *ControlClient) Do(req Request, out any) (Reply, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return Reply{}, err
	}
	c.conn.SetDeadline(time.Now().Add(c.timeout))
	if _, err := c.conn.Write(append(b, '\n')); err != nil {
		return Reply{}, err
	}
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		return Reply{}, fmt.Errorf("reading reply: %w", err)
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
