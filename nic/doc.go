// Package nic moves packets and nothing else: AF_XDP sockets (UMEM, the fill,
// completion, RX and TX rings, the XDP program and its attachment) and the
// kernel-socket fallback, both behind the small batch interface Port, which
// hands the data plane UDP payloads and their senders' addresses. It also
// pins the threads that move them to CPUs (PinThread), since on FreeBSD that
// takes a system call given a pointer, and unsafe lives here.
//
// AF_XDP is Linux's, and so is the recvmmsg port (UDPPort). On FreeBSD and
// macOS, ListenUDP returns ConnPort, a port over the standard library's UDP
// socket, which Linux builds and tests too; OpenXDP fails there with
// ErrXDPNeedsLinux. CanPinThreads, UDPSpreads and HasXDP say what the
// system offers.
//
// On the AF_XDP path the Ethernet, IP and UDP headers are nic's too, as Knot
// DNS keeps them in libknot/xdp/protocols.h: the XDP program decides in BPF
// which frames reach the rings, ParseFrame makes the same decisions and a
// few finer ones in Go, and Headers strips each query frame to its payload
// and writes the reply's headers and checksums back around the answer.
//
// Package nic knows nothing of DNS beyond its port number. All unsafe code
// of the project lives here, next to the memory-mapped regions it describes.
package nic
