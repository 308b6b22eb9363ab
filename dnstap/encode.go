package dnstap

import (
	"encoding/binary"
	"net/netip"
)

// MessageType is dnstap.proto's Message.Type.
type MessageType uint8

// The message types an authoritative server sends.
const (
	AuthQuery    MessageType = 1 // a query received, from the server's side
	AuthResponse MessageType = 2 // a response sent, from the server's side
)

// Protocol is dnstap.proto's SocketProtocol.
type Protocol uint8

// The transports ringdns serves.
const (
	UDP Protocol = 1
	TCP Protocol = 2
)

// Socket families (dnstap.proto's SocketFamily).
const (
	familyINET  = 1
	familyINET6 = 2
)

// Message is one dnstap Message. Times are in nanoseconds since the Unix
// epoch, 0 for a time not given; a zero address, port or empty message is
// left out of the encoding.
type Message struct {
	Type     MessageType
	Protocol Protocol
	// QueryAddr and QueryPort are the initiator's (the client's);
	// ResponseAddr and ResponsePort the responder's (the server's). The
	// socket family is QueryAddr's, else ResponseAddr's.
	QueryAddr, ResponseAddr netip.Addr
	QueryPort, ResponsePort uint16
	QueryTime, ResponseTime int64
	// QueryMessage and ResponseMessage are the DNS messages in wire
	// format, verbatim.
	QueryMessage, ResponseMessage []byte
}

// Field numbers of dnstap.proto's Dnstap.
const (
	fieldIdentity = 1
	fieldVersion  = 2
	fieldMessage  = 14
	fieldType     = 15
	typeMessage   = 1 // Dnstap.Type MESSAGE
)

// Field numbers of dnstap.proto's Message.
const (
	fieldMsgType          = 1
	fieldSocketFamily     = 2
	fieldSocketProtocol   = 3
	fieldQueryAddress     = 4
	fieldResponseAddress  = 5
	fieldQueryPort        = 6
	fieldResponsePort     = 7
	fieldQueryTimeSec     = 8
	fieldQueryTimeNsec    = 9
	fieldQueryMessage     = 10
	fieldResponseTimeSec  = 12
	fieldResponseTimeNsec = 13
	fieldResponseMessage  = 14
)

// Protobuf wire types.
const (
	wireVarint  = 0
	wireBytes   = 2
	wireFixed32 = 5
)

// AppendFrame appends m, wrapped in a Dnstap with identity and version
// (each left out when empty), as one Frame Streams data frame: the
// payload's length as four bytes in network order, then the payload. It
// allocates only when dst must grow.
func AppendFrame(dst []byte, identity, version []byte, m *Message) []byte {
	at := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = Append(dst, identity, version, m)
	binary.BigEndian.PutUint32(dst[at:], uint32(len(dst)-at-4))
	return dst
}

// Append appends the protobuf encoding of a Dnstap of type MESSAGE holding
// m, with identity and version when not empty.
func Append(dst []byte, identity, version []byte, m *Message) []byte {
	if len(identity) > 0 {
		dst = appendBytes(dst, fieldIdentity, identity)
	}
	if len(version) > 0 {
		dst = appendBytes(dst, fieldVersion, version)
	}
	// The nested message's length comes before it: it is encoded once to
	// the end of dst, its length measured, and moved up by the length's
	// size, which saves a second encoder that only counts.
	dst = appendTag(dst, fieldMessage, wireBytes)
	at := len(dst)
	dst = appendMessage(dst, m)
	n := len(dst) - at
	var lb [binary.MaxVarintLen64]byte
	l := binary.PutUvarint(lb[:], uint64(n))
	dst = append(dst, lb[:l]...)
	copy(dst[at+l:], dst[at:at+n])
	copy(dst[at:], lb[:l])
	dst = appendTag(dst, fieldType, wireVarint)
	return binary.AppendUvarint(dst, typeMessage)
}

// appendMessage appends m's fields, in field order as protobuf encoders
// write them.
func appendMessage(dst []byte, m *Message) []byte {
	dst = appendVarint(dst, fieldMsgType, uint64(m.Type))
	fam := m.QueryAddr
	if !fam.IsValid() {
		fam = m.ResponseAddr
	}
	if fam.IsValid() {
		f := uint64(familyINET6)
		if fam.Unmap().Is4() {
			f = familyINET
		}
		dst = appendVarint(dst, fieldSocketFamily, f)
	}
	if m.Protocol != 0 {
		dst = appendVarint(dst, fieldSocketProtocol, uint64(m.Protocol))
	}
	dst = appendAddr(dst, fieldQueryAddress, m.QueryAddr)
	dst = appendAddr(dst, fieldResponseAddress, m.ResponseAddr)
	if m.QueryPort != 0 {
		dst = appendVarint(dst, fieldQueryPort, uint64(m.QueryPort))
	}
	if m.ResponsePort != 0 {
		dst = appendVarint(dst, fieldResponsePort, uint64(m.ResponsePort))
	}
	if m.QueryTime != 0 {
		dst = appendVarint(dst, fieldQueryTimeSec, uint64(m.QueryTime/1e9))
		dst = appendFixed32(dst, fieldQueryTimeNsec, uint32(m.QueryTime%1e9))
	}
	if len(m.QueryMessage) > 0 {
		dst = appendBytes(dst, fieldQueryMessage, m.QueryMessage)
	}
	if m.ResponseTime != 0 {
		dst = appendVarint(dst, fieldResponseTimeSec, uint64(m.ResponseTime/1e9))
		dst = appendFixed32(dst, fieldResponseTimeNsec, uint32(m.ResponseTime%1e9))
	}
	if len(m.ResponseMessage) > 0 {
		dst = appendBytes(dst, fieldResponseMessage, m.ResponseMessage)
	}
	return dst
}

// appendAddr appends a as 4 bytes (IPv4, also when mapped into IPv6) or
// 16, as dnstap.proto asks for the two families; nothing when a is the
// zero Addr.
func appendAddr(dst []byte, field int, a netip.Addr) []byte {
	if !a.IsValid() {
		return dst
	}
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return appendBytes(dst, field, b[:])
	}
	b := a.As16()
	return appendBytes(dst, field, b[:])
}

func appendTag(dst []byte, field, wire int) []byte {
	return binary.AppendUvarint(dst, uint64(field)<<3|uint64(wire))
}

func appendVarint(dst []byte, field int, v uint64) []byte {
	return binary.AppendUvarint(appendTag(dst, field, wireVarint), v)
}

func appendFixed32(dst []byte, field int, v uint32) []byte {
	return binary.LittleEndian.AppendUint32(appendTag(dst, field, wireFixed32), v)
}

func appendBytes(dst []byte, field int, b []byte) []byte {
	dst = binary.AppendUvarint(appendTag(dst, field, wireBytes), uint64(len(b)))
	return append(dst, b...)
}
