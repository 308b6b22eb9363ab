package nic

import (
	"errors"
	"net/netip"
)

// This file holds the AF_XDP types every system builds, so that the
// control plane configures and reports the AF_XDP data path in one way;
// the data path itself is Linux's (xdp_linux.go), and elsewhere OpenXDP
// fails with ErrXDPNeedsLinux (xdp_other.go).

// ErrXDPNeedsLinux is returned by OpenXDP on systems other than Linux.
var ErrXDPNeedsLinux = errors.New("AF_XDP needs Linux")

// ErrXDPBusy is wrapped by OpenXDP's error when the interface already has an
// XDP program that is not ours and XDPConfig.Replace is not set.
var ErrXDPBusy = errors.New("interface already has an XDP program")

// XDPConfig configures OpenXDP.
type XDPConfig struct {
	Interface string
	Queues    []int        // nil = all RX queues of the interface (QueueCount)
	Port      uint16       // UDP destination port, default 53
	Addrs     []netip.Addr // server addresses to redirect; empty = any
	Mode      string       // "auto" (driver, then generic), "driver", "generic"; default "auto"
	ZeroCopy  string       // "auto", "on", "off"; default "auto"
	Replace   bool         // replace another XDP program already attached
	FrameSize int          // UMEM frame size, 4096 (default) or 2048
	Frames    int          // UMEM frames per socket, default RxRingSize + RingSize
	RingSize  int          // entries of the TX and completion rings, a power of two, default 2048
	// RxRingSize is the number of entries of the fill and RX rings, a
	// power of two; 0 means RingSize. These two rings are what holds the
	// queries that arrive while no worker reads (a worker kept off its CPU,
	// or the pause of a hitless upgrade): the kernel takes a frame from
	// the fill ring for each and puts it on the RX ring, and drops the
	// query when either runs out.
	RxRingSize int
	BusyPoll   bool // spin instead of poll() when the rings are empty
	// MTU bounds the IP packet of a reply: the DNS payload a port hands
	// out may grow to MTU minus the IP and UDP headers (and to the end of
	// its UMEM frame). 0 means the interface's MTU; values above 65535 are
	// taken as 65535.
	MTU int
	// WholeFrames makes the ports hand out whole Ethernet frames, and send
	// what is written into them as it is, instead of DNS payloads with the
	// headers taken care of: for a program that reads and writes headers
	// itself, such as a load generator.
	WholeFrames bool
	// MatchSource makes the program redirect UDP from Port and Addrs
	// instead of to them: the replies a client (a load generator) awaits.
	// Those are addressed to the client's own ports, which no DNS payload
	// port would take, so it needs WholeFrames.
	MatchSource bool
}

// XDPStats are the statistics of one AF_XDP socket: the kernel's
// XDP_STATISTICS and the port's own counters.
type XDPStats struct {
	// From the kernel (XDP_STATISTICS).
	RxDropped            uint64 // dropped for reasons other than invalid descriptors
	RxInvalidDescs       uint64
	TxInvalidDescs       uint64
	RxRingFull           uint64 // dropped because the RX ring was full
	RxFillRingEmptyDescs uint64 // times the kernel found the fill ring empty
	TxRingEmptyDescs     uint64
	// From the port.
	RxPackets     uint64 // frames handed to the worker
	RxNotQuery    uint64 // frames dropped by Receive as not a query to serve (see ParseFrame)
	RxBadChecksum uint64 // frames dropped by Receive because a checksum did not verify (see VerifyChecksums)
	TxPackets     uint64 // replies put on the TX ring
	TxRingFull    uint64 // replies dropped because the TX ring was full
	TxBadLen      uint64 // replies dropped because Len exceeded the frame
	KickErrors    uint64 // TX wakeups that failed with an unexpected error
}

// checkRingSize checks the size of an AF_XDP ring: the kernel takes powers
// of two; below 64 a batch would not fit, and above 65536 the rings' index
// arithmetic would still hold but the UMEM behind them (see
// XDPConfig.Frames) would take gigabytes per queue.
func checkRingSize(n int) error {
	if n < 64 || n > 1<<16 || n&(n-1) != 0 {
		return errors.New("want a power of two from 64 to 65536")
	}
	return nil
}

// CheckRingSize reports whether n is a ring size OpenXDP takes, so that a
// configuration is checked before anything is opened.
func CheckRingSize(n int) error { return checkRingSize(n) }
