package dnstap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ContentType is the Frame Streams content type of dnstap.
const ContentType = "protobuf:dnstap.Dnstap"

// Frame Streams control frame types.
const (
	ControlAccept = 0x01
	ControlStart  = 0x02
	ControlStop   = 0x03
	ControlReady  = 0x04
	ControlFinish = 0x05
)

// controlFieldContentType is the one control field type Frame Streams
// defines.
const controlFieldContentType = 0x01

// MaxControlFrame is the largest control frame fstrm accepts (its
// FSTRM_CONTROL_FRAME_LENGTH_MAX); one is refused beyond it rather than
// read, so that a peer cannot make the reader allocate at will.
const MaxControlFrame = 512

// ErrContentType is returned when the other end of a Frame Streams
// connection does not accept dnstap's content type.
var ErrContentType = errors.New("the collector does not accept content type " + ContentType)

// AppendControl appends a control frame of type typ: the escape (a data
// frame length of 0), the control frame's length and type, and a
// content-type field for each of contentTypes.
func AppendControl(dst []byte, typ uint32, contentTypes ...string) []byte {
	n := 4
	for _, ct := range contentTypes {
		n += 8 + len(ct)
	}
	dst = binary.BigEndian.AppendUint32(dst, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	dst = binary.BigEndian.AppendUint32(dst, typ)
	for _, ct := range contentTypes {
		dst = binary.BigEndian.AppendUint32(dst, controlFieldContentType)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(ct)))
		dst = append(dst, ct...)
	}
	return dst
}

// Control is a control frame read by ReadControl.
type Control struct {
	Type         uint32
	ContentTypes []string
}

// ReadControl reads one control frame, escape included. A data frame
// where a control frame must come, a frame over MaxControlFrame and
// malformed fields are errors.
func ReadControl(r io.Reader) (Control, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Control{}, err
	}
	if esc := binary.BigEndian.Uint32(hdr[0:4]); esc != 0 {
		return Control{}, fmt.Errorf("frame streams: a data frame of %d bytes where a control frame was expected", esc)
	}
	n := binary.BigEndian.Uint32(hdr[4:8])
	if n < 4 || n > MaxControlFrame {
		return Control{}, fmt.Errorf("frame streams: control frame of %d bytes (4 to %d)", n, MaxControlFrame)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return Control{}, err
	}
	c := Control{Type: binary.BigEndian.Uint32(b[0:4])}
	for b = b[4:]; len(b) > 0; {
		if len(b) < 8 {
			return Control{}, errors.New("frame streams: truncated control field")
		}
		typ, l := binary.BigEndian.Uint32(b[0:4]), binary.BigEndian.Uint32(b[4:8])
		if uint64(l) > uint64(len(b)-8) {
			return Control{}, errors.New("frame streams: control field longer than its frame")
		}
		if typ == controlFieldContentType {
			c.ContentTypes = append(c.ContentTypes, string(b[8:8+l]))
		}
		b = b[8+l:]
	}
	return c, nil
}

// hasContentType reports whether c names dnstap's content type, or names
// none (which Frame Streams reads as any).
func (c Control) hasContentType() bool {
	if len(c.ContentTypes) == 0 {
		return true
	}
	for _, ct := range c.ContentTypes {
		if ct == ContentType {
			return true
		}
	}
	return false
}

// Handshake is the writer's side of the bidirectional handshake on rw:
// READY with dnstap's content type, the collector's ACCEPT naming it, then
// START. The data frames may follow.
func Handshake(rw io.ReadWriter) error {
	if _, err := rw.Write(AppendControl(nil, ControlReady, ContentType)); err != nil {
		return fmt.Errorf("frame streams READY: %w", err)
	}
	c, err := ReadControl(rw)
	if err != nil {
		return fmt.Errorf("frame streams: waiting for ACCEPT: %w", err)
	}
	if c.Type != ControlAccept {
		return fmt.Errorf("frame streams: control frame %d where ACCEPT (1) was expected", c.Type)
	}
	if !c.hasContentType() {
		return ErrContentType
	}
	if _, err := rw.Write(AppendControl(nil, ControlStart, ContentType)); err != nil {
		return fmt.Errorf("frame streams START: %w", err)
	}
	return nil
}

// Finish is the writer's end of a bidirectional stream: STOP, then the
// collector's FINISH, read so that the collector has taken every frame
// before the connection closes.
func Finish(rw io.ReadWriter) error {
	if _, err := rw.Write(AppendControl(nil, ControlStop)); err != nil {
		return fmt.Errorf("frame streams STOP: %w", err)
	}
	c, err := ReadControl(rw)
	if err != nil {
		return fmt.Errorf("frame streams: waiting for FINISH: %w", err)
	}
	if c.Type != ControlFinish {
		return fmt.Errorf("frame streams: control frame %d where FINISH (5) was expected", c.Type)
	}
	return nil
}
