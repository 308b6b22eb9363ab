// Package handover is the protocol by which a running ringdns hands its
// sockets and configuration to the binary that replaces it (ringctl upgrade,
// SIGUSR2), over a Unix stream socket the old process creates with
// socketpair and passes to the new one as a file descriptor.
//
// Every message is a frame: a 12-byte header, then a JSON payload.
//
//	magic   4 bytes  "RDHO"
//	version 2 bytes  big endian, the protocol version of the sender
//	type    2 bytes  big endian, one of the Msg* constants
//	length  4 bytes  big endian, the payload's length, at most MaxPayload
//
// File descriptors travel as SCM_RIGHTS with the frame's first bytes. A
// frame whose magic is not "RDHO" ends the exchange; one of another
// version is answered with MsgRefused in the receiver's own version and
// ends it too, so that both sides report the mismatch and neither goes on.
//
// The exchange, old (O) and new (N):
//
//	O -> N  MsgOffer   the configuration and the listening sockets
//	N -> O  MsgReady   every zone loaded, every socket taken over
//	        (or MsgFailed with the error, and N exits)
//	O       stops its workers after the batch in hand
//	O -> N  MsgGo      with the AF_XDP queues' free frames
//	N -> O  MsgServing N's workers run on the sockets
//	O       stops accepting, finishes its connections and exits 0
package handover

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Version is the hand-over protocol version this build speaks. Version 1
// is the first: a ringdns older than it cannot hand over or take over.
const Version = 1

// pretendVersion, set at link time (-ldflags "-X
// github.com/ringdns/ringdns/internal/handover.pretendVersion=2"), makes a
// test binary speak another version, so that the refusal of a mismatch can
// be tested end to end. A link-time setting cannot be turned on by
// accident in the environment of a production daemon.
var pretendVersion string

// ownVersion is the version this process puts in its frames.
func ownVersion() uint16 {
	var v uint16
	if pretendVersion != "" {
		if _, err := fmt.Sscan(pretendVersion, &v); err == nil {
			return v
		}
	}
	return Version
}

// Magic begins every frame.
const Magic = "RDHO"

// Message types.
const (
	MsgOffer   = 1
	MsgReady   = 2
	MsgFailed  = 3
	MsgGo      = 4
	MsgServing = 5
	MsgRefused = 6
)

// MaxPayload bounds a frame's payload, and with it what a confused peer
// can make the other allocate: the configuration file is the largest part.
const MaxPayload = 16 << 20

// MaxFiles bounds the descriptors one frame carries.
const MaxFiles = 1024

const headerLen = 12

// EnvFD names the environment variable that tells a starting ringdns the
// number of the descriptor of the hand-over socket; EnvStderrFD the
// descriptor of the daemon's real standard error, which the new process
// takes as its own once it serves (until then its stderr is a pipe the
// old process reads, so that its errors reach ringctl).
const (
	EnvFD       = "RINGDNS_HANDOVER_FD"
	EnvStderrFD = "RINGDNS_HANDOVER_STDERR_FD"
)

// ErrVersion is wrapped by the error of a frame of another protocol
// version.
var ErrVersion = errors.New("hand-over protocol version mismatch")

// File describes one descriptor of an Offer, in the order of the
// descriptors passed with it.
type File struct {
	// Role is "udp", "tcp", "control" or "metrics".
	Role string `json:"role"`
	// Listen is the configured listen address the socket serves (udp,
	// tcp), as written in the configuration: the new process finds its
	// sockets by it, port 0 included.
	Listen string `json:"listen,omitempty"`
	// Local is the address the socket is bound to, for the logs.
	Local string `json:"local,omitempty"`
}

// Offer is what the old process hands over.
type Offer struct {
	PID     int    `json:"pid"`
	Version string `json:"version"` // the old daemon's version string
	// ConfigSource is the configuration file's path, or the old daemon's
	// name for a configuration without one; Config its bytes as the old
	// daemon read them, so that the new one serves the same configuration
	// even when the file has changed since.
	ConfigSource string `json:"config_source"`
	Config       []byte `json:"config"`
	Files        []File `json:"files"`
	// Zones are the zones the old daemon serves: the new one takes over
	// only when it loads every one of them.
	Zones []string `json:"zones"`
	// XDP describes the AF_XDP data path whose descriptors (role "xdp")
	// are passed: the interface, the UMEM's and rings' sizes, the queues.
	XDP json.RawMessage `json:"xdp,omitempty"`
	// Cookies are the DNS cookie secrets in use (controlplane's form, as
	// JSON): a secret made at random or rotated by ringctl is in no
	// configuration, and the clients hold server cookies made with it.
	Cookies json.RawMessage `json:"cookies,omitempty"`
}

// Go tells the new process to start its workers: the old ones have
// stopped. XDP holds, per AF_XDP queue, the frames the old process held
// free; every other frame is on one of the rings.
type Go struct {
	XDP json.RawMessage `json:"xdp,omitempty"`
}

// Ready says the new process has loaded every zone and taken every socket.
type Ready struct {
	PID     int    `json:"pid"`
	Version string `json:"version"`
}

// Failed carries the error that stops the new process.
type Failed struct {
	Error string `json:"error"`
}

// Conn is one side of the hand-over socket.
type Conn struct {
	c *net.UnixConn
}

// Pair makes the hand-over socket: the old process keeps the Conn and
// passes the *os.File to the new process.
func Pair() (*Conn, *os.File, error) {
	// Both ends are close-on-exec, set under ForkLock as the standard
	// library does where SOCK_CLOEXEC is missing, so that no other child
	// inherits them; os/exec passes the new process its end explicitly.
	syscall.ForkLock.RLock()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err == nil {
		unix.CloseOnExec(fds[0])
		unix.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, fmt.Errorf("hand-over socket: %w", err)
	}
	mine := os.NewFile(uintptr(fds[0]), "handover")
	theirs := os.NewFile(uintptr(fds[1]), "handover-peer")
	c, err := FromFile(mine)
	mine.Close()
	if err != nil {
		theirs.Close()
		return nil, nil, err
	}
	return c, theirs, nil
}

// FromFile makes a Conn of a descriptor (the new process's end); f may be
// closed afterwards.
func FromFile(f *os.File) (*Conn, error) {
	nc, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("hand-over socket: %w", err)
	}
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		nc.Close()
		return nil, fmt.Errorf("hand-over socket: descriptor is a %T, not a Unix socket", nc)
	}
	return &Conn{c: uc}, nil
}

// Close closes the socket.
func (c *Conn) Close() error { return c.c.Close() }

// SetDeadline bounds the next reads and writes.
func (c *Conn) SetDeadline(t time.Time) error { return c.c.SetDeadline(t) }

// Send writes one frame of type typ with v as its JSON payload (nil for
// none) and files passed with it.
func (c *Conn) Send(typ uint16, v any, files []*os.File) error {
	return c.send(ownVersion(), typ, v, files)
}

func (c *Conn) send(version, typ uint16, v any, files []*os.File) error {
	var payload []byte
	if v != nil {
		var err error
		if payload, err = json.Marshal(v); err != nil {
			return err
		}
	}
	if len(payload) > MaxPayload {
		return fmt.Errorf("hand-over: message of %d bytes, more than %d", len(payload), MaxPayload)
	}
	if len(files) > MaxFiles {
		return fmt.Errorf("hand-over: %d descriptors, more than %d", len(files), MaxFiles)
	}
	buf := make([]byte, headerLen+len(payload))
	copy(buf, Magic)
	binary.BigEndian.PutUint16(buf[4:], version)
	binary.BigEndian.PutUint16(buf[6:], typ)
	binary.BigEndian.PutUint32(buf[8:], uint32(len(payload)))
	copy(buf[headerLen:], payload)
	var oob []byte
	if len(files) > 0 {
		// The numbers are read through SyscallConn, not Fd: Fd puts a
		// socket the net package made into blocking mode, and that mode
		// belongs to the socket, shared by every process holding it. A
		// listener left blocking hangs its accept loop's Close in the
		// old process and in the new one alike.
		fds := make([]int, len(files))
		for i, f := range files {
			rc, err := f.SyscallConn()
			if err != nil {
				return fmt.Errorf("hand-over: descriptor %s: %w", f.Name(), err)
			}
			if err := rc.Control(func(fd uintptr) { fds[i] = int(fd) }); err != nil {
				return fmt.Errorf("hand-over: descriptor %s: %w", f.Name(), err)
			}
		}
		oob = unix.UnixRights(fds...)
	}
	// The descriptors go with the first write; the rest of a long
	// payload follows as plain bytes.
	n, _, err := c.c.WriteMsgUnix(buf, oob, nil)
	if err != nil {
		return fmt.Errorf("hand-over: sending: %w", err)
	}
	if n < len(buf) {
		if _, err := c.c.Write(buf[n:]); err != nil {
			return fmt.Errorf("hand-over: sending: %w", err)
		}
	}
	return nil
}

// Frame is one received message.
type Frame struct {
	Version uint16
	Type    uint16
	Payload []byte
	Files   []*os.File
}

// Decode unmarshals the payload into v.
func (f *Frame) Decode(v any) error {
	if err := json.Unmarshal(f.Payload, v); err != nil {
		return fmt.Errorf("hand-over: message type %d: %w", f.Type, err)
	}
	return nil
}

// CloseFiles closes the descriptors the frame carried.
func (f *Frame) CloseFiles() {
	for _, fl := range f.Files {
		fl.Close()
	}
	f.Files = nil
}

// Receive reads one frame. A frame of another version is refused: the
// peer gets MsgRefused in this side's version, and the error wraps
// ErrVersion and says both versions; its payload's text, when it is a
// refusal or failure, is part of the error. io.EOF means the peer closed
// the socket between frames.
func (c *Conn) Receive() (*Frame, error) {
	f := &Frame{}
	hdr := make([]byte, headerLen)
	oob := make([]byte, unix.CmsgSpace(MaxFiles*4))
	got := 0
	for got < headerLen {
		n, oobn, _, _, err := c.c.ReadMsgUnix(hdr[got:], oob)
		if oobn > 0 {
			files, perr := parseRights(oob[:oobn])
			f.Files = append(f.Files, files...)
			if perr != nil {
				f.CloseFiles()
				return nil, perr
			}
		}
		got += n
		if err != nil {
			f.CloseFiles()
			if errors.Is(err, io.EOF) && got == 0 {
				return nil, io.EOF
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("hand-over: reading a message: %w", err)
		}
		if n == 0 {
			f.CloseFiles()
			return nil, io.EOF
		}
	}
	if string(hdr[:4]) != Magic {
		f.CloseFiles()
		return nil, fmt.Errorf("hand-over: the peer does not speak the hand-over protocol (got %q where %q begins a message)", hdr[:4], Magic)
	}
	f.Version = binary.BigEndian.Uint16(hdr[4:])
	f.Type = binary.BigEndian.Uint16(hdr[6:])
	size := binary.BigEndian.Uint32(hdr[8:])
	if size > MaxPayload {
		f.CloseFiles()
		return nil, fmt.Errorf("hand-over: message of %d bytes, more than %d", size, MaxPayload)
	}
	f.Payload = make([]byte, size)
	if _, err := io.ReadFull(c.c, f.Payload); err != nil {
		f.CloseFiles()
		return nil, fmt.Errorf("hand-over: reading a message: %w", err)
	}
	if own := ownVersion(); f.Version != own {
		f.CloseFiles()
		what := ""
		var fl Failed
		if (f.Type == MsgRefused || f.Type == MsgFailed) && json.Unmarshal(f.Payload, &fl) == nil && fl.Error != "" {
			what = ": the peer said: " + fl.Error
		} else {
			_ = c.send(own, MsgRefused, Failed{Error: fmt.Sprintf("this side speaks hand-over protocol version %d, not %d", own, f.Version)}, nil)
		}
		return nil, fmt.Errorf("%w: the peer speaks version %d, this side %d%s", ErrVersion, f.Version, own, what)
	}
	return f, nil
}

// parseRights turns SCM_RIGHTS control messages into files.
func parseRights(oob []byte) ([]*os.File, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("hand-over: control message: %w", err)
	}
	var files []*os.File
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			unix.CloseOnExec(fd)
			files = append(files, os.NewFile(uintptr(fd), "inherited"))
		}
	}
	return files, nil
}

// Expect reads one frame and checks its type; a MsgFailed or MsgRefused
// in its place becomes an error carrying the peer's text.
func (c *Conn) Expect(typ uint16, v any) (*Frame, error) {
	f, err := c.Receive()
	if err != nil {
		return nil, err
	}
	switch f.Type {
	case typ:
		if v != nil {
			if err := f.Decode(v); err != nil {
				f.CloseFiles()
				return nil, err
			}
		}
		return f, nil
	case MsgFailed, MsgRefused:
		f.CloseFiles()
		var fl Failed
		_ = f.Decode(&fl)
		if f.Type == MsgRefused {
			return nil, fmt.Errorf("%w: the peer refused: %s", ErrVersion, fl.Error)
		}
		return nil, &PeerError{Msg: fl.Error}
	default:
		f.CloseFiles()
		return nil, fmt.Errorf("hand-over: message type %d where %d was expected", f.Type, typ)
	}
}

// PeerError is the error the other side reported (MsgFailed).
type PeerError struct{ Msg string }

func (e *PeerError) Error() string { return e.Msg }
