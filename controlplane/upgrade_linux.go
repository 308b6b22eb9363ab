package controlplane

import (
	"os"

	"github.com/ringdns/ringdns/nic"
)

// udpPortFromFile builds a socket worker's port on an inherited UDP
// socket.
func udpPortFromFile(f *os.File, batch int) (*nic.UDPPort, error) {
	return nic.UDPPortFromFile(f, batch)
}
