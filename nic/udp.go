package nic

import "errors"

// Sizing shared by the kernel-socket ports.
const (
	// UDPSlotSize is the size of each packet buffer of a UDPPort or
	// ConnPort. A query never needs more, and a reply over UDP never
	// exceeds the EDNS size we advertise, at most 4096; a datagram larger
	// than a slot is dropped and counted (Truncated).
	UDPSlotSize = 4096
	// udpSocketBuffer is the receive and send buffer asked of the kernel,
	// enough to ride out a scheduling hiccup of a few milliseconds at line
	// rate instead of dropping.
	udpSocketBuffer = 4 << 20
)

// ErrSendMismatch is returned by a Port's Send when it is not given the
// packets of the preceding Receive.
var ErrSendMismatch = errors.New("nic: Send was not given the packets of the preceding Receive")
