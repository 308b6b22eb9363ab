//go:build !linux

package controlplane

import (
	"fmt"
	"os"
	"time"

	"github.com/ringdns/ringdns/nic"
)

// udpPortFromFile fails: the hand-over of socket workers' ports is built
// for Linux's recvmmsg port only.
func udpPortFromFile(f *os.File, batch int) (*nic.UDPPort, error) {
	return nil, fmt.Errorf("%w: taking over UDP sockets needs Linux", ErrHandoverUnsupported)
}

// openXDPPath opens the AF_XDP data path, which nic refuses here.
func (s *Server) openXDPPath(xcfg nic.XDPConfig) (*nic.XDP, error) { return nic.OpenXDP(xcfg) }

// The AF_XDP hand-over has nothing to do where there is no AF_XDP.
func (s *Server) XDPState() []byte              { return nil }
func (s *Server) xdpFiles() ([]*os.File, error) { return nil, nil }
func (s *Server) stopXDP()                      {}
func (s *Server) resumeXDP()                    {}
func (s *Server) XDPQueueStates() []byte        { return nil }
func (s *Server) AdoptXDP(states []byte) error  { return nil }
func (s *Server) XDPDrops() uint64              { return 0 }
func (s *Server) LogXDPResumes(time.Duration)   {}
