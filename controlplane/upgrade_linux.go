package controlplane

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

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
	x, err := nic.InheritXDP(xcfg, st, inh.XDP)
	if err == nil && x.GeometryNote() != "" {
		s.log.Warn(x.GeometryNote())
	}
	return x, err
}

// XDPDrops is the number of queries the kernel has dropped on the AF_XDP
// sockets so far (XDP_STATISTICS rx_dropped and rx_ring_full, summed over
// the queues: the fill ring was empty or the RX ring full), for the log of
// an upgrade, which reads it before and after each of its steps. It counts
// for every process that served the sockets.
func (s *Server) XDPDrops() uint64 {
	if s.xdp == nil {
		return 0
	}
	var n uint64
	for _, p := range s.xdp.Ports() {
		if st, err := p.Stats(); err == nil {
			n += st.RxDropped + st.RxRingFull
		}
	}
	return n
}

// LogXDPResumes logs, in the new process of an upgrade, how each AF_XDP
// queue resumed (nic.XDPResume): the pause from the old worker's stop to
// the new one's first look at the rings, the frames waiting then, what the
// kernel dropped from the hand-over to then, and what it dropped in the
// second after, while the new process finished its start beside its
// workers. It waits for every queue's worker, up to limit, and is meant to
// run on a goroutine of its own once the workers are released.
func (s *Server) LogXDPResumes(limit time.Duration) {
	if s.xdp == nil || s.ho.inherit == nil {
		return
	}
	deadline := time.Now().Add(limit)
	var rs []nic.XDPResume
	for {
		rs = s.xdp.Resumes()
		all := true
		for _, r := range rs {
			all = all && r.Resumed
		}
		if all || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(time.Second)
	later := s.xdp.Resumes()
	for i, r := range rs {
		var after uint64
		if later[i].Dropped > r.Dropped { // 0 once the ports have closed
			after = later[i].Dropped - r.Dropped
		}
		if !r.Resumed {
			s.log.Warn("upgrade: AF_XDP queue not read yet", "queue", r.Queue, "after", limit, "dropped", r.Dropped, "dropped_next_second", after)
			continue
		}
		s.log.Info("upgrade: AF_XDP queue resumed", "queue", r.Queue,
			"pause_ms", float64(r.Pause.Microseconds())/1e3, "backlog", r.Backlog, "fill_left", r.Fill,
			"rx_ring", r.RxRing, "dropped", r.Dropped, "dropped_next_second", after)
	}
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
