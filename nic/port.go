package nic

import (
	"errors"
	"time"
)

// ErrClosed is returned by Receive and Send once the Port has been closed.
var ErrClosed = errors.New("nic: port closed")

// Packet is one received DNS message, answered in place. Every Port hands
// out the UDP payload alone: the kernel-socket port as the socket delivers
// it, the AF_XDP port with the Ethernet, IP and UDP headers of its frame
// stripped (see Headers), which its Send writes back around the reply.
// Only the originating half of an Originator, and an AF_XDP port opened
// with XDPConfig.WholeFrames, deal in whole Ethernet frames.
//
// A Packet holds no pointer but Buf, so a batch of them costs the garbage
// collector one scan of its slice headers.
type Packet struct {
	// Buf is the buffer that backs this packet, starting at its first byte.
	// len(Buf) is the largest reply that may be written into it: on the
	// AF_XDP port, what both the UMEM frame and an IP packet of the
	// interface's MTU hold. The memory belongs to the Port and is valid only
	// between the Receive that filled it and the next Send. The owner writes
	// into it but does not reslice it.
	Buf []byte
	// Len is the number of bytes received into Buf. The worker overwrites it
	// with the length of the reply written into Buf, or 0 to drop the packet.
	Len int
	// Peer is the sender's address and port, in the one layout of Addr
	// on every system.
	Peer Addr
	// Sum is the partial ones'-complement sum of the reply Buf[:Len]
	// (onessum.Sum(Buf[:Len], 0), or any value that folds alike), set by the
	// worker along with Len for a port that uses it (see SumUser): the
	// AF_XDP port finishes the reply's UDP checksum from it rather than
	// read the reply again. The kernel-socket port leaves checksums to the
	// kernel and ignores it. Receive sets it to 0.
	Sum uint32
}

// SumUser is implemented by a Port whose Send finishes each reply's
// checksum from Packet.Sum when UsesSum reports true: the AF_XDP port
// handing out DNS payloads. The worker fills in Sum only for such a port,
// since building it costs the answer engine about a tenth of its time per
// reply, for nothing on a port that ignores it.
type SumUser interface {
	UsesSum() bool
}

// Port is a batch packet endpoint owned by exactly one worker goroutine.
// Receive and Send alternate: each Send hands back every packet of the
// preceding Receive. Only Close may be called from another goroutine.
type Port interface {
	// Receive fills pkts[:n] with received packets and returns n >= 1. It
	// waits for at least one packet; it may return n == 0 with a nil error
	// after an idle interval of at most 200 ms so that the caller can check
	// for shutdown, or when every packet that arrived was dropped by the
	// port itself (an AF_XDP frame that is not a query; see FrameDrops).
	// After Close it returns ErrClosed promptly.
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

// Originator is a Port that also sends packets of its own, not replies to
// packets it received: the shape of a load generator. Its owner interleaves
// the two halves freely: Poll (or Receive) then Send hands back received
// packets; Alloc then Transmit sends new ones. Each half follows its own
// contract; only Close may be called from another goroutine.
//
// The packets of Alloc and Transmit are whole Ethernet frames on every
// port: the originator writes its own headers, since only it knows the
// addresses it sends from and to. A load generator reads the replies as
// frames too, from an AF_XDP port opened with XDPConfig.WholeFrames.
type Originator interface {
	Port
	// Poll is Receive without waiting: it returns 0 at once when nothing has
	// arrived. A Send of pkts[:n] follows it, as after Receive.
	Poll(pkts []Packet) (n int, err error)
	// Alloc hands out up to len(pkts) free buffers for new packets: it sets
	// pkts[i].Buf to a whole buffer and pkts[i].Len to 0 for i < n. It
	// returns n == 0 when every buffer is in flight or the port is closed.
	// Buffers for received packets come first, so sending never starves
	// receiving. A Transmit of pkts[:n] must follow before the next Alloc.
	Alloc(pkts []Packet) (n int)
	// Transmit sends every pkts[i] whose Len is above zero and gives the
	// others back; pkts must be exactly the slice filled by the preceding
	// Alloc. After an Alloc that returned 0, Transmit(pkts[:0]) is valid.
	Transmit(pkts []Packet) error
	// Wait sleeps until a packet has arrived, d has passed, or the port is
	// closed, whichever comes first. It also pushes out transmissions
	// still queued, since the caller is about to idle.
	Wait(d time.Duration)
}

// Destinations is implemented by a Port that can tell the address and port
// each received packet was sent to: the address its reply must come from.
// The data plane asks it only for the rare packet it hands to the control
// plane, which replies outside the batch (see ReplySender).
type Destinations interface {
	// Destination returns the destination of packet i of the last
	// Receive, valid until the next Send; Len 0 when it is not known.
	Destination(i int) Addr
}

// ReplySender is implemented by a kernel-socket Port that sends single
// datagrams outside its batches: the control plane's replies to the packets
// the data plane handed it. SendFrom may be called from any goroutine,
// concurrently with Receive and Send (a sendmsg on the socket the worker
// also uses, which the kernel serialises), and after Close, when it returns
// ErrClosed.
type ReplySender interface {
	// SendFrom sends b to the address to, from the address from (the
	// query's destination, Destinations) when the port is bound to an
	// unspecified address and from.Len is not 0; otherwise from the
	// address the port is bound to. It does not block.
	SendFrom(b []byte, to, from Addr) error
}
