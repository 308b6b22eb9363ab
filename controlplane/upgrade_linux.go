package controlplane

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/ringdns/ringdns/nic"
)

// udpPortFromFile builds a socket worker's port on an inherited UDP
// socket.
func udpPortFromFile(f *os.File, batch int) (*nic.UDPPort, error) {
	return nic.UDPPortFromFile(f, batch)
}

// openXDPPath opens the AF_XDP data path, or rebuilds the inherited one.
func (s *Server) openXDPPath(xcfg nic.XDPConfig) (*nic.XDP, error) {
	inh := s.ho.inherit
	if inh == nil || len(inh.XDP) == 0 {
		if inh != nil {
			return nil, fmt.Errorf("%w: the configuration serves AF_XDP on %s, which the old process did not hand over",
				ErrHandoverUnsupported, xcfg.Interface)
		}
		return nic.OpenXDP(xcfg)
	}
	var st nic.XDPState
	if err := json.Unmarshal(inh.XDPState, &st); err != nil {
		return nil, fmt.Errorf("hand-over: AF_XDP state: %w", err)
	}
	return nic.InheritXDP(xcfg, st, inh.XDP)
}

// XDPState describes the AF_XDP data path for an Offer; nil without one.
func (s *Server) XDPState() []byte {
	if s.xdp == nil {
		return nil
	}
	b, _ := json.Marshal(s.xdp.State())
	return b
}

// xdpFiles duplicates the AF_XDP descriptors to hand over.
func (s *Server) xdpFiles() ([]*os.File, error) { return s.xdp.Files() }

// stopXDP stops the AF_XDP workers' receiving, for PauseWorkers.
func (s *Server) stopXDP() {
	if s.xdp != nil {
		s.xdp.StopReceiving()
	}
}

// resumeXDP undoes stopXDP.
func (s *Server) resumeXDP() {
	if s.xdp != nil {
		s.xdp.ResumeReceiving()
	}
}

// XDPQueueStates reports, once PauseWorkers has stopped the workers, the
// frames each AF_XDP queue holds free (nic.XDP.QueueStates), for MsgGo.
func (s *Server) XDPQueueStates() []byte {
	if s.xdp == nil {
		return nil
	}
	b, _ := json.Marshal(s.xdp.QueueStates())
	return b
}

// AdoptXDP gives the inherited AF_XDP ports the old process's free frames,
// before TakeOver and Run.
func (s *Server) AdoptXDP(states []byte) error {
	if s.xdp == nil || s.ho.inherit == nil {
		return nil
	}
	var qs []nic.XDPQueueState
	if err := json.Unmarshal(states, &qs); err != nil {
		return fmt.Errorf("hand-over: AF_XDP queue states: %w", err)
	}
	return s.xdp.Adopt(qs)
}
