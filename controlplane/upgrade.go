package controlplane

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringdns/ringdns/controlplane/control"
	"github.com/ringdns/ringdns/internal/handover"
	"github.com/ringdns/ringdns/nic"
)

// This file is the server's side of the hitless upgrade (issue 17): what
// the old process hands over (its listening sockets, by descriptor), how it
// stops its workers without touching the sockets, and how the new process
// builds its server on the descriptors it inherits. The protocol is
// internal/handover's; starting the new binary is cmd/ringdns's.

// TCPDrain bounds how long the old process goes on serving the TCP
// connections it had accepted once the new one serves: each may send
// queries until it closes or this passes, and is then closed after the
// query in hand. New connections go to the new process from the moment it
// serves, since the listening socket is the same.
const TCPDrain = 2 * time.Second

// Inherited holds the descriptors a new process takes over, by what they
// serve. The server takes its own duplicates; the caller closes these.
type Inherited struct {
	// UDP and TCP hold each configured listen address's sockets, keyed by
	// the address as netip.ParseAddrPort reads it from the configuration
	// (port 0 included), since the new process reads the same
	// configuration.
	UDP     map[string][]*os.File
	TCP     map[string]*os.File
	Control *os.File
	Metrics *os.File
	// MustServe are the zones the old process serves: the new one takes
	// over only when it loads every one of them.
	MustServe []string
	// XDPState describes the AF_XDP data path (nic.XDPState, as JSON);
	// XDP holds its descriptors: the link, then each queue's socket and
	// UMEM.
	XDPState []byte
	XDP      []*os.File
	// Cookies are the old process's DNS cookie secrets (CookieState), which
	// the new one takes over so that the server cookies its clients hold
	// stay valid; nil keeps the configuration's.
	Cookies []byte
}

// NewInherited sorts the descriptors of a hand-over by their description.
func NewInherited(files []handover.File, fds []*os.File) (*Inherited, error) {
	if len(files) != len(fds) {
		return nil, fmt.Errorf("hand-over: %d descriptors described, %d received", len(files), len(fds))
	}
	inh := &Inherited{UDP: map[string][]*os.File{}, TCP: map[string]*os.File{}}
	for i, f := range files {
		switch f.Role {
		case "udp":
			inh.UDP[f.Listen] = append(inh.UDP[f.Listen], fds[i])
		case "tcp":
			inh.TCP[f.Listen] = fds[i]
		case "control":
			inh.Control = fds[i]
		case "metrics":
			inh.Metrics = fds[i]
		case "xdp":
			inh.XDP = append(inh.XDP, fds[i])
		default:
			return nil, fmt.Errorf("hand-over: descriptor %d has unknown role %q", i, f.Role)
		}
	}
	return inh, nil
}

// Close closes every descriptor.
func (inh *Inherited) Close() {
	if inh == nil {
		return
	}
	for _, fs := range inh.UDP {
		for _, f := range fs {
			f.Close()
		}
	}
	for _, f := range inh.TCP {
		f.Close()
	}
	if inh.Control != nil {
		inh.Control.Close()
	}
	if inh.Metrics != nil {
		inh.Metrics.Close()
	}
	for _, f := range inh.XDP {
		f.Close()
	}
}

// checkZones refuses the hand-over when a zone the old process serves
// failed to load here: the old process, which still serves it, goes on.
func (h *handoverState) checkZones(res *control.ReloadResult) error {
	if h.inherit == nil || res == nil {
		return nil
	}
	must := map[string]bool{}
	for _, o := range h.inherit.MustServe {
		must[CanonicalOrigin(o)] = true
	}
	var errs []error
	for _, z := range res.Zones {
		if z.Status == control.StatusFailed && must[CanonicalOrigin(z.Origin)] {
			errs = append(errs, fmt.Errorf("zone %s, which the running ringdns serves, failed to load: %s", z.Origin, z.Error))
		}
	}
	return errors.Join(errs...)
}

// ServedZones lists the zones a version of which is served, for an Offer.
func (s *Server) ServedZones() []string {
	var out []string
	for _, z := range s.Catalog.Zones() {
		if z.Serving {
			out = append(out, z.Origin)
		}
	}
	return out
}

// handoverState is what the server keeps for hand-overs.
type handoverState struct {
	inherit *Inherited
	// sharing is set while another process holds the sockets too: the
	// old one from the hand-over on, the new one until it takes over.
	// Ports are then released without shutdown(2), which would act on
	// the socket the other process serves, and the control socket's
	// file is left in place.
	sharing atomic.Bool
	// finishing is set once the new process serves: the old one's TCP
	// connections drain (closeTCP).
	finishing atomic.Bool
	// metricsLn is the metrics endpoint's own listener, under the
	// connection-bounding wrapper.
	metricsLn net.Listener

	mu sync.Mutex
	// exited holds, per running worker, a channel closed when its Run
	// returns.
	exited map[*workerSlot]chan struct{}
	// upgrader carries out ringctl upgrade (cmd/ringdns sets it).
	upgrader func(path string) (control.UpgradeResult, error)
	// gate, in a new process, holds the workers PrestartWorkers started
	// until ReleaseWorkers closes it.
	gate     chan struct{}
	gateOnce sync.Once
	// prestarted marks the workers PrestartWorkers started, until Run's
	// startWorker has passed over them.
	prestarted map[*workerSlot]bool
}

func newHandoverState(inh *Inherited) *handoverState {
	h := &handoverState{inherit: inh, exited: map[*workerSlot]chan struct{}{}, prestarted: map[*workerSlot]bool{}}
	h.sharing.Store(inh != nil)
	return h
}

// listenKey is the key of a configured listen address in Inherited.
func listenKey(ap netip.AddrPort) string { return ap.String() }

// inheritedCPUs is the CPU of each socket worker of the listen address key:
// cpus when nothing was inherited for it, else one per inherited socket,
// given cpus in turn, so that every socket handed over is read (a socket
// of the SO_REUSEPORT group that nobody read would lose its share of the
// traffic).
func (s *Server) inheritedCPUs(key string, cpus []int) []int {
	inh := s.ho.inherit
	if inh == nil || len(inh.UDP[key]) == 0 {
		return cpus
	}
	out := make([]int, len(inh.UDP[key]))
	for i := range out {
		out[i] = cpus[i%len(cpus)]
	}
	return out
}

// listenUDP opens the i-th UDP socket of the listen address key, or takes
// the inherited one.
func (s *Server) listenUDP(key string, ap netip.AddrPort, i int) (*nic.UDPPort, error) {
	if inh := s.ho.inherit; inh != nil && i < len(inh.UDP[key]) {
		return udpPortFromFile(inh.UDP[key][i], s.cfg.Server.Batch)
	}
	return nic.ListenUDP(ap.String(), s.cfg.Server.Batch)
}

// listenTCP opens the TCP listener of the listen address key, or takes the
// inherited one.
func (s *Server) listenTCP(key string, ap netip.AddrPort) (net.Listener, error) {
	if inh := s.ho.inherit; inh != nil && inh.TCP[key] != nil {
		ln, err := net.FileListener(inh.TCP[key])
		if err != nil {
			return nil, fmt.Errorf("inherited TCP listener of %s: %w", key, err)
		}
		return ln, nil
	}
	return net.Listen("tcp", ap.String())
}

// listenMetrics opens the metrics listener, or takes the inherited one.
func (s *Server) listenMetrics() (net.Listener, error) {
	var ln net.Listener
	var err error
	if inh := s.ho.inherit; inh != nil && inh.Metrics != nil {
		ln, err = net.FileListener(inh.Metrics)
	} else {
		ln, err = net.Listen("tcp", s.cfg.Server.Metrics)
	}
	s.ho.metricsLn = ln
	return ln, err
}

// listenControl opens the control socket, or takes the inherited one,
// which serves only once the new process takes over (TakeOver): until
// then the old process answers on it.
func (s *Server) listenControl() (*ControlServer, error) {
	inh := s.ho.inherit
	if inh == nil || inh.Control == nil {
		return ListenControl(s.cfg.Server.Control, s, s.log)
	}
	fl, err := net.FileListener(inh.Control)
	if err != nil {
		return nil, fmt.Errorf("inherited control socket: %w", err)
	}
	ln, ok := fl.(*net.UnixListener)
	if !ok {
		fl.Close()
		return nil, fmt.Errorf("inherited control socket: a %T, not a Unix socket", fl)
	}
	c := &ControlServer{path: s.cfg.Server.Control, ln: ln, handler: s, log: s.log}
	c.keepFile.Store(true)
	return c, nil
}

// startWorker runs w's worker until its port closes or stops receiving.
// Run starts every worker with it; one PrestartWorkers started already
// runs, or waits for ReleaseWorkers, and is left alone.
func (s *Server) startWorker(w *workerSlot) {
	s.startWorkerGated(w, nil)
}

// startWorkerGated is startWorker, with the worker held until gate closes
// when gate is not nil: its goroutine locks its thread and pins it to the
// worker's CPU first, so that once the gate opens it is a thread woken
// that reads the port, not one to create, schedule and pin. It returns
// without running the worker when the server shuts down before the gate
// opens (a hand-over that failed), so that it never touches a port the
// old process still serves.
func (s *Server) startWorkerGated(w *workerSlot, gate chan struct{}) {
	s.ho.mu.Lock()
	if gate == nil && s.ho.prestarted[w] {
		// Run's start of a worker PrestartWorkers started: the only one
		// skipped, so that ResumeWorkers, later, restarts it as any.
		delete(s.ho.prestarted, w)
		s.ho.mu.Unlock()
		return
	}
	if gate != nil {
		s.ho.prestarted[w] = true
	}
	done := make(chan struct{})
	s.ho.exited[w] = done
	s.ho.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(done)
		if gate != nil {
			if w.worker.CPU >= 0 {
				// Worker.Run pins again, which costs one system call
				// on a thread already where it should be.
				restore, err := nic.PinThread(w.worker.CPU)
				if err != nil {
					s.fail(fmt.Errorf("worker %s (%s, cpu %d): %w", w.Name, w.Listen, w.CPU, err))
					return
				}
				defer restore()
			}
			select {
			case <-gate:
			case <-s.done:
				return
			}
		}
		if err := w.worker.Run(); err != nil {
			s.fail(fmt.Errorf("worker %s (%s, cpu %d): %w", w.Name, w.Listen, w.CPU, err))
		}
	}()
}

// PrestartWorkers, in the new process of an upgrade, starts every worker
// held at a gate, before the old process is told this one is ready: the
// threads are made, locked and pinned while the old workers still serve,
// so that between the old workers' last batch and the new ones' first
// there is only the hand-over's last message and a wake-up per worker.
// ReleaseWorkers opens the gate; Run then starts no worker again.
func (s *Server) PrestartWorkers() {
	s.raiseProcs()
	s.ho.mu.Lock()
	if s.ho.gate != nil {
		s.ho.mu.Unlock()
		return
	}
	s.ho.gate = make(chan struct{})
	s.ho.mu.Unlock()
	for _, w := range s.workers {
		s.startWorkerGated(w, s.ho.gate)
	}
}

// ReleaseWorkers lets the workers PrestartWorkers holds run, once the old
// process has stopped its own and the AF_XDP ports have adopted its frames
// (AdoptXDP).
func (s *Server) ReleaseWorkers() {
	s.ho.mu.Lock()
	gate := s.ho.gate
	s.ho.mu.Unlock()
	if gate != nil {
		s.ho.gateOnce.Do(func() { close(gate) })
	}
}

// closePort closes a worker's port, or, while the socket is shared with
// another process, releases it without shutdown(2).
func (s *Server) closePort(w *workerSlot) {
	if s.ho.sharing.Load() {
		if r, ok := w.port.(handoverPort); ok {
			r.Release()
			return
		}
	}
	w.port.Close()
}

// closeTCP stops a TCP server; after a hand-over, the connections it had
// accepted are served for up to TCPDrain first.
func (s *Server) closeTCP(t *tcpSlot) {
	if !s.ho.finishing.Load() {
		t.srv.Close()
		return
	}
	t.srv.ln.Close()
	deadline := time.Now().Add(TCPDrain)
	for t.srv.conns.open() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	t.srv.Close()
}

// handoverPort is a port that can be handed to another process: the
// kernel-socket port of Linux (nic/udp_inherit_linux.go).
type handoverPort interface {
	File() (*os.File, error)
	StopReceiving()
	ResumeReceiving()
	Release() error
}

// SetUpgrader installs the function that carries out ringctl upgrade.
func (s *Server) SetUpgrader(f func(path string) (control.UpgradeResult, error)) {
	s.ho.mu.Lock()
	s.ho.upgrader = f
	s.ho.mu.Unlock()
}

func (s *Server) handleUpgrade(req control.Request) control.Reply {
	if len(req.Zones) > 1 {
		return control.Reply{Error: "upgrade takes at most one path, the new binary's"}
	}
	s.ho.mu.Lock()
	f := s.ho.upgrader
	s.ho.mu.Unlock()
	if f == nil {
		return control.Reply{Error: "this daemon cannot upgrade (no upgrader: not started by cmd/ringdns)"}
	}
	path := ""
	if len(req.Zones) == 1 {
		path = req.Zones[0]
	}
	res, err := f(path)
	if err != nil {
		return control.Reply{Error: err.Error()}
	}
	return control.OKReply(res)
}

// ErrHandoverUnsupported is returned for a server whose data plane cannot
// be handed over yet.
var ErrHandoverUnsupported = errors.New("hand-over not supported")

// HandoverFiles returns duplicates of every listening socket, described,
// for an Offer: each socket worker's UDP socket, each TCP listener, the
// control socket and the metrics listener. The caller closes the files.
// With AF_XDP, the XDP link and each queue's socket and UMEM follow
// (xdpFiles), described by XDPState.
func (s *Server) HandoverFiles() ([]handover.File, []*os.File, error) {
	var files []handover.File
	var fds []*os.File
	fail := func(err error) ([]handover.File, []*os.File, error) {
		for _, f := range fds {
			f.Close()
		}
		return nil, nil, err
	}
	// s.listen holds the configured addresses in order, resolved.
	keys := map[string]string{}
	for i, l := range s.cfg.Server.Listen {
		ap, err := netip.ParseAddrPort(l)
		if err != nil || i >= len(s.listen) {
			return fail(fmt.Errorf("listen %q: not opened", l))
		}
		keys[s.listen[i].String()] = listenKey(ap)
	}
	for _, w := range s.workers {
		if w.xdpPort != nil {
			continue // handed over with the XDP data path below
		}
		hp, ok := w.port.(handoverPort)
		if !ok {
			return fail(fmt.Errorf("%w: worker %s's port cannot be handed over on this system", ErrHandoverUnsupported, w.Name))
		}
		f, err := hp.File()
		if err != nil {
			return fail(err)
		}
		fds = append(fds, f)
		files = append(files, handover.File{Role: "udp", Listen: keys[w.Listen], Local: w.Listen})
	}
	for _, t := range s.tcp {
		f, err := listenerFile(t.srv.ln)
		if err != nil {
			return fail(fmt.Errorf("TCP listener %s: %w", t.Listen, err))
		}
		fds = append(fds, f)
		files = append(files, handover.File{Role: "tcp", Listen: keys[t.Listen], Local: t.Listen})
	}
	if s.control != nil {
		f, err := s.control.ln.File()
		if err != nil {
			return fail(fmt.Errorf("control socket: %w", err))
		}
		fds = append(fds, f)
		files = append(files, handover.File{Role: "control", Local: s.control.path})
	}
	if s.ho.metricsLn != nil {
		f, err := listenerFile(s.ho.metricsLn)
		if err != nil {
			return fail(fmt.Errorf("metrics listener: %w", err))
		}
		fds = append(fds, f)
		files = append(files, handover.File{Role: "metrics", Local: s.ho.metricsLn.Addr().String()})
	}
	if s.xdp != nil {
		xf, err := s.xdpFiles()
		if err != nil {
			return fail(err)
		}
		for _, f := range xf {
			fds = append(fds, f)
			files = append(files, handover.File{Role: "xdp", Local: f.Name()})
		}
	}
	return files, fds, nil
}

// listenerFile duplicates a listener's descriptor.
func listenerFile(ln net.Listener) (*os.File, error) {
	type filer interface{ File() (*os.File, error) }
	f, ok := ln.(filer)
	if !ok {
		return nil, fmt.Errorf("a %T has no descriptor to pass", ln)
	}
	return f.File()
}

// PauseWorkers stops every worker after the batch in hand, leaving the
// sockets open and unread, and waits (at most limit) for the AF_XDP
// workers, whose rings only one process may use at a time. The socket
// workers are not waited for: one idle in recvmmsg notices only at its
// receive timeout (100 ms), and the new process may read a UDP socket
// meanwhile, since each datagram goes to one reader, which answers it
// itself. The TCP, control and metrics sockets go on being served. The
// sockets are from now on treated as shared: closing them later releases
// them without shutdown.
func (s *Server) PauseWorkers(limit time.Duration) error {
	s.ho.sharing.Store(true)
	s.stopXDP()
	var waits []chan struct{}
	s.ho.mu.Lock()
	for _, w := range s.workers {
		if hp, ok := w.port.(handoverPort); ok {
			hp.StopReceiving()
		}
		if ch := s.ho.exited[w]; ch != nil && w.xdpPort != nil {
			waits = append(waits, ch)
		}
	}
	s.ho.mu.Unlock()
	deadline := time.After(limit)
	for _, ch := range waits {
		select {
		case <-ch:
		case <-deadline:
			return fmt.Errorf("the AF_XDP workers did not stop within %v", limit)
		}
	}
	return nil
}

// ResumeWorkers restarts the workers PauseWorkers stopped, after a
// hand-over that failed once they had stopped. A socket worker still in
// its idle wait is waited for first: it sees the stop when it wakes.
func (s *Server) ResumeWorkers() {
	s.ho.sharing.Store(false)
	s.resumeXDP()
	for _, w := range s.workers {
		s.ho.mu.Lock()
		ch := s.ho.exited[w]
		s.ho.mu.Unlock()
		if ch == nil {
			continue
		}
		if w.xdpPort == nil {
			select {
			case <-ch:
			case <-time.After(2 * time.Second):
				// Still serving: it read before the stop and is busy.
			}
		}
		if hp, ok := w.port.(handoverPort); ok {
			hp.ResumeReceiving()
		}
		select {
		case <-ch:
			s.startWorker(w)
		default:
		}
	}
}

// FinishHandover ends the old process's service once the new one serves:
// the ports are released without shutdown, the TCP listeners closed and
// their connections served for up to TCPDrain, the control socket closed
// with its file left to the new process. Run then returns nil.
func (s *Server) FinishHandover() {
	s.ho.sharing.Store(true)
	s.ho.finishing.Store(true)
	// A socket worker that read a batch just before it stopped still
	// sends its replies: the ports are released only once every worker
	// has returned, which the receive timeout bounds.
	s.ho.mu.Lock()
	var waits []chan struct{}
	for _, ch := range s.ho.exited {
		waits = append(waits, ch)
	}
	s.ho.mu.Unlock()
	deadline := time.After(2 * time.Second)
	for _, ch := range waits {
		select {
		case <-ch:
		case <-deadline:
		}
	}
	if s.control != nil {
		s.control.keepFile.Store(true)
	}
	s.Shutdown()
}

// TakeOver makes the new process the sockets' owner, once the old one has
// stopped its workers: from now on closing a port shuts it down as usual
// and the control socket is served, and its file removed at exit.
func (s *Server) TakeOver() {
	s.ho.sharing.Store(false)
	if s.control != nil && s.ho.inherit != nil && s.ho.inherit.Control != nil {
		s.control.keepFile.Store(false)
		s.control.start()
	}
}
