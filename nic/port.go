package nic

import "errors"

// ErrClosed is returned by Receive and Send once the Port has been closed.
var ErrClosed = errors.New("nic: port closed")

// Framing says what the bytes of a Packet hold.
type Framing uint8

const (
	// FramingPayload ports deliver UDP payloads; the sender's address is in
	// Packet.Peer and the reply goes back to it. The kernel-socket backend
	// uses this framing.
	FramingPayload Framing = iota
	// FramingEthernet ports deliver whole Ethernet frames; the worker parses
	// and rewrites the link, network and transport headers itself. The
	// AF_XDP backend uses this framing.
	FramingEthernet
)

// Packet is one received datagram or frame, answered in place.
type Packet struct {
	// Buf is the whole buffer that backs this packet. len(Buf) is the largest
	// reply that may be written into it. The memory belongs to the Port and is
	// valid only between the Receive that filled it and the next Send.
	Buf []byte
	// Len is the number of bytes received into Buf. The worker overwrites it
	// with the length of the reply written into Buf, or 0 to drop the packet.
	Len int
	// Peer is the sender's address on FramingPayload ports. Ethernet ports
	// leave it zero.
	Peer Addr
}

// Addr is a socket address kept in raw form so that a batch of packets
// carries no pointers and needs no allocation. It holds a sockaddr_in or
// sockaddr_in6 as the kernel wrote it.
type Addr struct {
	Raw [28]byte
	Len uint32
}

// Port is a batch packet endpoint owned by exactly one worker goroutine.
// Receive and Send alternate: each Send hands back every packet of the
// preceding Receive. Only Close may be called from another goroutine.
type Port interface {
	// Framing reports what the bytes of received packets hold.
	Framing() Framing
	// Receive fills pkts[:n] with received packets and returns n >= 1. It
	// waits for at least one packet; it may return n == 0 with a nil error
	// after an idle interval of at most 200 ms so that the caller can check
	// for shutdown. After Close it returns ErrClosed promptly.
	Receive(pkts []Packet) (n int, err error)
	// Send transmits every pkts[i] whose Len is above zero as the reply to
	// the packet received in that slot, and gives every buffer in pkts back
	// to the Port. pkts must be exactly the slice filled by the preceding
	// Receive (pkts[:n]). A failure to send one reply is counted by the Port
	// and does not stop the rest of the batch. After a Receive that returned
	// n == 0, Send(pkts[:0]) is valid on every Port: it returns nil, or
	// ErrClosed once the Port is closed.
	Send(pkts []Packet) error
	// Close releases the Port's resources. It is safe to call from another
	// goroutine and more than once.
	Close() error
}
