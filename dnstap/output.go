package dnstap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"
)

// Output is where a writer sends its data frames. One goroutine uses an
// Output at a time.
type Output interface {
	// Write writes whole data frames. An error means they were lost; a
	// later Write may succeed (a socket reconnects).
	Write(frames []byte) error
	// Reopen closes and reopens a file, so that the old one can be
	// rotated away, or makes a socket that is waiting between attempts
	// to reconnect try at once.
	Reopen() error
	// Close ends the stream (STOP) and closes the output.
	Close() error
}

// ErrNotConnected is returned by Socket.Write while no collector is
// connected; the frames are lost.
var ErrNotConnected = errors.New("dnstap: no collector connected")

// File is a Frame Streams file: START with dnstap's content type, data
// frames, and STOP when closed or reopened. Opening truncates the file, as
// fstrm's file writer does: a second stream appended to the first would be
// hidden from readers, which stop at the first STOP.
type File struct {
	path string
	f    *os.File
}

// ClosedFile is a File at path not yet opened: its writes fail until
// Reopen opens it.
func ClosedFile(path string) *File { return &File{path: path} }

// OpenFile creates or truncates path (mode 0640) and writes START.
func OpenFile(path string) (*File, error) {
	o := &File{path: path}
	if err := o.open(); err != nil {
		return nil, err
	}
	return o, nil
}

func (o *File) open() error {
	f, err := os.OpenFile(o.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("dnstap file: %w", err)
	}
	if _, err := f.Write(AppendControl(nil, ControlStart, ContentType)); err != nil {
		f.Close()
		return fmt.Errorf("dnstap file %s: %w", o.path, err)
	}
	o.f = f
	return nil
}

// Write implements Output.
func (o *File) Write(frames []byte) error {
	if o.f == nil {
		return fmt.Errorf("dnstap file %s is not open (it failed to reopen; the next reload tries again)", o.path)
	}
	_, err := o.f.Write(frames)
	return err
}

// Reopen implements Output: STOP ends the old file, which stays whole
// under whatever name it was given meanwhile, and a new one is created at
// the path.
func (o *File) Reopen() error {
	err := o.Close()
	if oerr := o.open(); oerr != nil {
		return oerr
	}
	return err
}

// Close implements Output.
func (o *File) Close() error {
	if o.f == nil {
		return nil
	}
	_, err := o.f.Write(AppendControl(nil, ControlStop))
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	o.f = nil
	return err
}

// Reconnection pauses of Socket: the first after a failure, doubled on
// each failure after it up to the last.
const (
	MinBackoff = 100 * time.Millisecond
	MaxBackoff = 5 * time.Second
)

// SocketTimeout bounds the handshake with a collector and each write to
// it: a collector that stops reading is given up on, and reconnected,
// rather than stalling the writer while the rings fill.
const SocketTimeout = 5 * time.Second

// Socket is a Frame Streams Unix stream socket with the bidirectional
// handshake. It connects when first written to, and when the collector
// goes away (a write fails) it reconnects on a later Write, waiting
// MinBackoff after the loss and twice as long after each attempt that
// fails, up to MaxBackoff; the frames of a Write that finds no collector
// are lost (ErrNotConnected).
type Socket struct {
	path string
	log  *slog.Logger
	conn net.Conn
	// wait is the pause before the next attempt after one more failure;
	// retry is when the next attempt may be made.
	wait  time.Duration
	retry time.Time
	// down is set once a failure was logged at warning level; the next
	// ones are logged at debug level until a connection succeeds.
	down bool
}

// NewSocket returns a Socket for the collector listening at path. It
// logs to log when the collector is connected, lost and unreachable.
func NewSocket(path string, log *slog.Logger) *Socket {
	return &Socket{path: path, log: log, wait: MinBackoff}
}

// Connected reports whether a collector is connected.
func (o *Socket) Connected() bool { return o.conn != nil }

// connect makes one attempt when the pause since the last has passed.
func (o *Socket) connect() error {
	now := time.Now()
	if now.Before(o.retry) {
		return ErrNotConnected
	}
	c, err := net.DialTimeout("unix", o.path, SocketTimeout)
	if err == nil {
		c.SetDeadline(now.Add(SocketTimeout))
		if err = Handshake(c); err != nil {
			c.Close()
		}
	}
	if err != nil {
		level := slog.LevelDebug
		if !o.down {
			level, o.down = slog.LevelWarn, true
		}
		o.log.Log(context.Background(), level, "dnstap collector unreachable; messages are dropped until it is back", "socket", o.path,
			"err", err, "retry_in", o.wait)
		o.retry = now.Add(o.wait)
		o.wait = min(2*o.wait, MaxBackoff)
		return fmt.Errorf("%w: %v", ErrNotConnected, err)
	}
	c.SetDeadline(time.Time{})
	o.conn, o.down, o.wait = c, false, MinBackoff
	o.log.Info("dnstap collector connected", "socket", o.path)
	return nil
}

// Write implements Output. Without frames it only connects when not
// connected, so that a collector sees the connection before the first
// message.
func (o *Socket) Write(frames []byte) error {
	if o.conn == nil {
		if err := o.connect(); err != nil {
			return err
		}
	}
	if len(frames) == 0 {
		return nil
	}
	o.conn.SetWriteDeadline(time.Now().Add(SocketTimeout))
	if _, err := o.conn.Write(frames); err != nil {
		o.conn.Close()
		o.conn = nil
		o.retry = time.Now().Add(MinBackoff)
		o.down = true
		o.log.Warn("dnstap collector lost; reconnecting", "socket", o.path, "err", err, "retry_in", MinBackoff)
		return err
	}
	return nil
}

// Reopen implements Output: a socket waiting to reconnect tries at the
// next Write; a connected one stays.
func (o *Socket) Reopen() error {
	o.retry, o.wait = time.Time{}, MinBackoff
	return nil
}

// Close implements Output: STOP, and the collector's FINISH awaited for
// up to SocketTimeout.
func (o *Socket) Close() error {
	if o.conn == nil {
		return nil
	}
	o.conn.SetDeadline(time.Now().Add(SocketTimeout))
	err := Finish(o.conn)
	if cerr := o.conn.Close(); err == nil {
		err = cerr
	}
	o.conn = nil
	return err
}
