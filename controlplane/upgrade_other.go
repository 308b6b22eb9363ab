//go:build !linux

package controlplane

import (
	"fmt"
	"os"

	"github.com/ringdns/ringdns/nic"
)

// udpPortFromFile fails: the hand-over of socket workers' ports is built
// for Linux's recvmmsg port only.
func udpPortFromFile(f *os.File, batch int) (*nic.UDPPort, error) {
	return nil, fmt.Errorf("%w: taking over UDP sockets needs Linux", ErrHandoverUnsupported)
}
