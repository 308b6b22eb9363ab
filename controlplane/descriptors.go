package controlplane

import (
	"fmt"
	"os"
	"syscall"
)

// descriptorMargin is the number of file descriptors kept free beyond the
// bounds counted by shareDescriptors: for the zone files a reload reads
// (with their $INCLUDEs), the runtime's own and the odd descriptor a
// library opens.
const descriptorMargin = 64

// descriptorBudget is how the process's file descriptors are shared out.
// The DNS service's bounds are reserved first, whatever they need; the
// metrics endpoint gets at most what is left, so that its clients can
// never leave DNS over TCP or the control socket without a descriptor.
type descriptorBudget struct {
	limit   int // RLIMIT_NOFILE, the soft limit in force
	open    int // descriptors open when counted
	tcp     int // reserved for the TCP listeners' connections
	control int // reserved for the control socket and its connections
	// left is what remains after the reservations and the margin; the
	// metrics endpoint's listener and connections must fit in it.
	left int
}

// shareDescriptors raises RLIMIT_NOFILE's soft limit to the hard limit and
// reserves descriptors for what the server has opened and for the bounds
// of its TCP listeners and control socket. It is called once the sockets
// of the listen addresses and AF_XDP are open, before the metrics and
// control sockets are.
func (s *Server) shareDescriptors() descriptorBudget {
	var b descriptorBudget
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		// Nothing can be reserved without the limit; the bounds alone
		// apply.
		s.log.Warn("reading RLIMIT_NOFILE; the metrics endpoint gets its default bound", "err", err)
		b.left = 1 + defaultMetricsLimits.maxConns
		return b
	}
	if lim.Cur < lim.Max {
		// Go raises the soft limit this way when a program starts; doing it
		// here keeps the reservation below right whatever started the
		// process.
		raised := lim
		raised.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			s.log.Warn("raising the RLIMIT_NOFILE soft limit to the hard limit", "soft", lim.Cur, "hard", lim.Max, "err", err)
		} else {
			s.log.Info("raised the RLIMIT_NOFILE soft limit to the hard limit", "from", lim.Cur, "to", lim.Max)
			lim = raised
		}
	}
	b.limit = int(min(lim.Cur, 1<<30))
	b.open = openDescriptors(len(s.workers) + len(s.tcp))
	for range s.tcp {
		b.tcp += s.cfg.Server.TCPMaxConnections
	}
	b.control = 1 + controlAcceptLimit
	b.left = b.limit - b.open - b.tcp - b.control - descriptorMargin
	if b.left < 0 {
		s.log.Warn("RLIMIT_NOFILE is below what the TCP and control connection bounds may need: "+
			"connections over it wait in the listen queue until descriptors are free; raise the limit "+
			"(ulimit -n, systemd LimitNOFILE=) or lower server.tcp-max-connections",
			"rlimit_nofile", b.limit, "open", b.open, "reserved_tcp", b.tcp, "reserved_control", b.control,
			"margin", descriptorMargin)
	}
	return b
}

// metricsConns is the metrics endpoint's connection bound under b: its
// default, or what is left beside its listener when that is less. It
// fails when nothing is left, naming what to change.
func (b descriptorBudget) metricsConns() (int, error) {
	n := min(defaultMetricsLimits.maxConns, b.left-1)
	if n < 1 {
		return 0, fmt.Errorf("metrics: no file descriptors left for the endpoint: RLIMIT_NOFILE is %d, %d are open, "+
			"%d are kept for DNS over TCP (server.tcp-max-connections per listen address), %d for the control socket "+
			"and %d spare; raise the limit (ulimit -n, systemd LimitNOFILE=) or lower server.tcp-max-connections",
			b.limit, b.open, b.tcp, b.control, descriptorMargin)
	}
	return n, nil
}

// openDescriptors counts the process's open file descriptors, or estimates
// them from its sockets where /proc is not mounted.
func openDescriptors(sockets int) int {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		// Standard input, output and error, the runtime's poller and its
		// wakeup, and the sockets.
		return 5 + sockets
	}
	// The directory being read was open too.
	return len(fds) - 1
}
