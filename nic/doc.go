// Package nic moves packets and nothing else: AF_XDP sockets (UMEM, the fill,
// completion, RX and TX rings, the XDP program and its attachment) and the
// kernel-socket fallback, both behind the small batch interface Port.
//
// Package nic knows nothing of DNS. All unsafe code of the project lives here,
// next to the memory-mapped regions it describes.
package nic
