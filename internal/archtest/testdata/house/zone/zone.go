// Package zone holds zone tables. It breaks "zone imports no packet code"
// (it imports nic and, in bpf.go, the BPF library) and "zone opens no
// socket" (net).
package zone

import (
	"net"

	"example.com/house/nic"
)

// Zone is a table.
type Zone struct{ names [][]byte }

// Find is clean, and on the hot path.
func (z *Zone) Find(name []byte) int {
	for i, n := range z.names {
		if string(n) == string(name) {
			return i
		}
	}
	return -1
}

// Listen is the packet code zone must not have.
func Listen() (net.Listener, *nic.XDPPort) { return nil, nil }
