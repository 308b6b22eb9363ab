package controlplane

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/ringdns/ringdns/controlplane/control"
	"github.com/ringdns/ringdns/dataplane"
	"github.com/ringdns/ringdns/nic"
	"github.com/ringdns/ringdns/zone"
)

// Version is the daemon's version, reported by ringctl status.
var Version = "0.1.0-dev"

// Server is a running ringdns: the zone catalog, the socket workers, the TCP
// servers, the control socket and the metrics endpoint.
type Server struct {
	cfg     *Config
	log     *slog.Logger
	Catalog *Catalog
	started time.Time

	workers []*workerSlot
	tcp     []*tcpSlot
	listen  []netip.AddrPort // the addresses served, ports resolved

	xdp *nic.XDP // nil when serving from sockets only
	// xdpAddrs are the addresses the XDP program takes UDP to (on the
	// first listen address's port); nil takes every address.
	xdpAddrs []netip.Addr
	// running is closed once Run has started every worker and server.
	running chan struct{}

	// handoff answers the NOTIFYs and signed messages the workers hand
	// off; xdpReplies sends its replies to the AF_XDP workers' clients.
	handoff    *Handoff
	xdpReplies *xdpReplies

	// The transfers out: xfr serves AXFR and IXFR on the TCP servers,
	// from the journals, which tell notify of each new version.
	xfr      *XfrOut
	journals *Journals
	notify   *NotifyOut
	// cookies holds the DNS cookie secrets (cookie.go).
	cookies *cookieKeeper
	// dnstap drains the workers' dnstap rings; nil without [dnstap]
	// (dnstap.go).
	dnstap *dnstapWriter
	// rssac collects the RSSAC002 statistics (rssac.go); nil when off.
	rssac *rssacStats

	control *ControlServer
	// ho holds what hand-overs to a new binary need (upgrade.go).
	ho      *handoverState
	metrics *http.Server
	metLn   net.Listener

	wg       sync.WaitGroup
	errOnce  sync.Once
	firstErr error
	done     chan struct{}
	stopOnce sync.Once
}

// workerSlot is one data plane worker and what it serves.
type workerSlot struct {
	Name     string
	Kind     string // "udp" or "xdp"
	Listen   string
	CPU      int
	Queue    int // AF_XDP queue, -1 for sockets
	port     nic.Port
	xdpPort  *nic.XDPPort // nil for sockets
	worker   *dataplane.Worker
	counters *dataplane.Counters
	// out sends the replies to the messages the worker hands off through
	// worker.Handoff; nil, with no ring, for a port that cannot.
	out nic.ReplySender
}

type tcpSlot struct {
	Listen   string
	srv      *TCPServer
	counters *dataplane.Counters
}

// NewServer loads the zones and opens every socket, but starts no worker
// yet. cfg must have been normalised. On error everything opened is closed
// again.
func NewServer(cfg *Config, log *slog.Logger) (*Server, error) {
	return NewServerInherited(cfg, log, nil)
}

// NewServerInherited is NewServer for the new process of a hand-over: it
// serves the sockets inh holds instead of opening them (see upgrade.go).
// They stay shared with the old process, and its workers start only with
// TakeOver and Run.
func NewServerInherited(cfg *Config, log *slog.Logger, inh *Inherited) (s *Server, err error) {
	if len(cfg.Zones) == 0 {
		return nil, fmt.Errorf("no zones configured: add a [[zone]] entry or -zone ORIGIN=FILE")
	}
	cpus, err := socketWorkerCPUs(cfg.Server.CPUs, log)
	if err != nil {
		return nil, fmt.Errorf("cpus: %w", err)
	}
	s = &Server{cfg: cfg, log: log, Catalog: NewCatalog(cfg, log), started: time.Now(), done: make(chan struct{}),
		running: make(chan struct{}), ho: newHandoverState(inh)}
	// The error returns below set the result s to nil before deferred
	// calls run, so the cleanup holds the server in a variable of its own.
	opened := s
	defer func() {
		if err != nil {
			opened.closeAll()
		}
	}()

	// The journals and NOTIFY out see every publication from the first
	// load on, through the catalog's one publish hook.
	keys := NewKeyring(cfg.TSIGKeys())
	s.notify = NewNotifyOut(cfg, keys, log)
	s.journals = NewJournals(cfg, s.notify.Zone, log)
	s.Catalog.onPublish = func(origin string, _, z *zone.Zone) { s.journals.Published(origin, z) }
	s.Catalog.onReplace = s.journals.Replaced
	s.Catalog.onKnown = s.journals.Known
	s.xfr = NewXfrOut(cfg, keys, &s.Catalog.Current, s.journals, log)
	// The members of catalog zones inherit the catalog's allow-transfer
	// and notify, and their journals go when they do.
	s.xfr.members = s.Catalog.memberConfig
	s.notify.members = s.Catalog.memberConfig
	s.Catalog.onAdd = s.journals.Track
	s.Catalog.onRemove = s.journals.Forget
	if s.cookies, err = newCookieKeeper(cfg.Cookies, log); err != nil {
		return nil, err
	}
	if inh != nil && inh.Cookies != nil {
		if err := s.cookies.adopt(inh.Cookies); err != nil {
			return nil, fmt.Errorf("hand-over: %w", err)
		}
	}
	s.Catalog.cfg.Cookies = s.cookies.c
	if cfg.RSSAC002 != nil {
		if s.rssac, err = newRSSACStats(cfg.RSSAC002, log); err != nil {
			return nil, err
		}
		s.Catalog.onLoadTime = s.rssac.loadTime
	}
	res, err := s.Catalog.Load()
	if zerr := s.ho.checkZones(res); zerr != nil {
		err = zerr
	}
	if err != nil {
		return nil, err
	}
	s.handoff = NewHandoff(NewKeyring(cfg.TSIGKeys()), s.Catalog, &s.Catalog.Current, log)
	// A NOTIFY over TCP is answered as one handed off from UDP.
	s.xfr.notifyIn = s.handoff.answerNotify
	s.handoff.ixfr = s.xfr.UDPIXFR
	s.xdpReplies = &xdpReplies{}

	for _, l := range cfg.Server.Listen {
		ap, err := netip.ParseAddrPort(l)
		if err != nil {
			return nil, fmt.Errorf("listen %q: %w", l, err)
		}
		if err := s.openAddress(ap, cpus); err != nil {
			return nil, err
		}
	}

	if cfg.XDP != nil {
		if err := s.openXDP(cpus); err != nil {
			return nil, err
		}
	}
	if err := s.applyRRL(cfg.RRL); err != nil {
		return nil, err
	}
	if err := s.openDnstap(); err != nil {
		return nil, err
	}

	budget := s.shareDescriptors()
	metricsConns := 0
	if cfg.Server.Metrics != "" {
		if metricsConns, err = budget.metricsConns(); err != nil {
			return nil, err
		}
		ln, err := s.listenMetrics()
		if err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
		lim := defaultMetricsLimits
		lim.maxConns = metricsConns
		s.metLn, s.metrics = serveMetrics(ln, MetricsHandler(s), lim, log)
	}
	log.Info("file descriptors", "rlimit_nofile", budget.limit, "open", budget.open, "reserved_tcp", budget.tcp,
		"reserved_control", budget.control, "spare", descriptorMargin, "metrics_connections", metricsConns)
	// The control socket serves requests from the moment it exists, and
	// its handlers read the server's fields: it is opened last, once every
	// field they read has been set.
	if s.control, err = s.listenControl(); err != nil {
		return nil, err
	}
	return s, nil
}

// socketWorkerCPUs returns the CPU of each socket worker of a listen
// address: one per CPU of list, or of every CPU the process may run on
// when list is empty. Where threads cannot be pinned or the kernel would
// not spread an address's datagrams over several sockets (macOS, see
// nic.CanPinThreads and nic.UDPSpreads), it returns one unpinned worker
// (-1) and says so in the log, once; where threads cannot be pinned,
// Normalize has refused a list.
func socketWorkerCPUs(list string, log *slog.Logger) ([]int, error) {
	if !system.pinsThreads || !system.spreadsUDP {
		log.Info("one unpinned socket worker per listen address", "os", system.name,
			"pins_threads", system.pinsThreads, "spreads_udp_over_sockets", system.spreadsUDP)
		return []int{-1}, nil
	}
	return ParseCPUList(list)
}

// portZeroAttempts bounds the search for a port free for both UDP and TCP
// when a listen address asks for port 0.
const portZeroAttempts = 32

// openAddress opens the UDP sockets (one per CPU) and the TCP listener of
// one listen address. Port 0 asks for a free port: the first UDP socket
// gets one from the kernel and every other socket of the address uses it;
// when that port is taken for TCP, the attempt is undone and another port
// tried, since the kernel picks UDP and TCP ports independently.
func (s *Server) openAddress(ap netip.AddrPort, cpus []int) error {
	for attempt := 1; ; attempt++ {
		err := s.tryAddress(ap, cpus)
		if err == nil || ap.Port() != 0 || attempt == portZeroAttempts || !errors.Is(err, syscall.EADDRINUSE) {
			return err
		}
	}
}

// tryAddress is one attempt of openAddress; on error it closes what it
// opened and adds nothing to s.
func (s *Server) tryAddress(ap netip.AddrPort, cpus []int) (err error) {
	var slots []*workerSlot
	defer func() {
		if err != nil {
			for _, w := range slots {
				s.closePort(w)
			}
		}
	}()
	key := listenKey(ap)
	for i, cpu := range s.inheritedCPUs(key, cpus) {
		p, err := s.listenUDP(key, ap, i)
		if err != nil {
			return fmt.Errorf("listen udp %s: %w", ap, err)
		}
		if i == 0 && ap.Port() == 0 {
			ap = p.LocalAddr()
		}
		ctr := new(dataplane.Counters)
		slot := &workerSlot{
			Name: "udp" + strconv.Itoa(len(s.workers)+len(slots)), Kind: "udp", Listen: ap.String(),
			CPU: cpu, Queue: -1, port: p, counters: ctr,
		}
		slot.worker = &dataplane.Worker{Port: p, Snapshot: &s.Catalog.Current, Counters: ctr,
			CPU: cpu, Batch: s.cfg.Server.Batch, RSSAC: s.rssacCounter(false)}
		if rs, ok := any(p).(replySocket); ok {
			// The worker's own socket sends the replies to what it hands
			// off, from the address and port the query was sent to.
			slot.worker.Handoff, slot.out = dataplane.NewHandoff(0), rs
		}
		slots = append(slots, slot)
	}
	ln, err := s.listenTCP(key, ap)
	if err != nil {
		return fmt.Errorf("listen tcp %s: %w", ap, err)
	}
	ctr := new(dataplane.Counters)
	srv := NewTCPServer(ln, SnapshotAnswer(&s.Catalog.Current), s.cfg.Server.TCPLimits(), ctr, s.log)
	srv.ServeTransfers(s.xfr)
	srv.rssac = s.rssacCounter(true)
	s.workers = append(s.workers, slots...)
	for _, w := range slots {
		if rs, ok := w.out.(replySocket); ok {
			s.xdpReplies.socks = append(s.xdpReplies.socks, rs)
		}
	}
	s.tcp = append(s.tcp, &tcpSlot{Listen: ap.String(), srv: srv, counters: ctr})
	s.listen = append(s.listen, ap)
	return nil
}

// openXDP attaches the AF_XDP data path to the configured interface: one
// worker per served queue, pinned to the CPUs of the list in turn. The
// socket workers keep serving the listen addresses; the XDP program
// redirects only UDP to the first listen address's port (and, when every
// listen address is a specific, non-loopback one, only to those addresses)
// and passes everything else, TCP included, to the kernel.
func (s *Server) openXDP(cpus []int) error {
	x := s.cfg.XDP
	port := s.listen[0].Port()
	var addrs []netip.Addr
	for _, ap := range s.listen {
		a := ap.Addr()
		if a.IsUnspecified() {
			addrs = nil
			break
		}
		if !a.IsLoopback() {
			addrs = append(addrs, a.Unmap())
		}
	}
	ifi, err := net.InterfaceByName(x.Interface)
	if err != nil {
		return fmt.Errorf("xdp: interface %q: %w (ip link lists the interfaces)", x.Interface, err)
	}
	xcfg := nic.XDPConfig{Interface: x.Interface, Port: port, Addrs: addrs, Mode: x.Mode,
		ZeroCopy: x.ZeroCopy, Replace: x.Replace, BusyPoll: x.BusyPoll, MTU: ifi.MTU, RxRingSize: x.RxRingSize}
	if len(x.Queues) > 0 {
		xcfg.Queues = x.Queues
	}
	if s.xdp, err = s.openXDPPath(xcfg); err != nil {
		return err
	}
	s.xdpAddrs = addrs
	zc := 0
	for i, p := range s.xdp.Ports() {
		cpu := cpus[i%len(cpus)]
		ctr := new(dataplane.Counters)
		slot := &workerSlot{Name: "xdp" + strconv.Itoa(p.Queue()), Kind: "xdp",
			Listen: fmt.Sprintf("%s@%d", x.Interface, port), CPU: cpu, Queue: p.Queue(),
			port: p, xdpPort: p, counters: ctr}
		slot.worker = &dataplane.Worker{Port: p, Snapshot: &s.Catalog.Current, Counters: ctr,
			CPU: cpu, Batch: s.cfg.Server.Batch, Handoff: dataplane.NewHandoff(0), RSSAC: s.rssacCounter(false)}
		// The kernel's stack sends the replies to what an AF_XDP worker
		// hands off; see xdpReplies for why.
		slot.out = s.xdpReplies
		s.workers = append(s.workers, slot)
		if p.ZeroCopy() {
			zc++
		}
	}
	s.log.Info("AF_XDP attached", "interface", x.Interface, "mode", s.xdp.Mode(), "queues", len(s.xdp.Ports()),
		"zero_copy_queues", zc, "port", port, "addrs", addrs)
	return nil
}

// BindsLater reports whether the server may have to bind a UDP socket
// after NewServer, and to which port: the replies to what an AF_XDP worker
// hands off (NOTIFY, signed messages, IXFR over UDP) are sent from a
// socket worker bound to the query's destination, and when the XDP
// program takes in an address no socket worker is bound to on its port
// (an unspecified listen address of one family only, listen addresses on
// other ports, only loopback ones), from a socket bound to it when the
// first such message arrives (see xdpReplies). A port below
// net.ipv4.ip_unprivileged_port_start then takes CAP_NET_BIND_SERVICE
// after set-up.
func (s *Server) BindsLater() (uint16, bool) {
	if s.xdp == nil {
		return 0, false
	}
	port := s.listen[0].Port()
	covered := func(a netip.Addr, unspecified bool) bool {
		for _, p := range s.xdpReplies.socks {
			l := p.LocalAddr()
			if l.Port() != port {
				continue
			}
			if l.Addr().IsUnspecified() && l.Addr().Is4() == a.Is4() || !unspecified && l.Addr().Unmap() == a {
				return true
			}
		}
		return false
	}
	if len(s.xdpAddrs) == 0 {
		// Every address of both families: only unspecified sockets of
		// both cover them all.
		return port, !covered(netip.IPv4Unspecified(), true) || !covered(netip.IPv6Unspecified(), true)
	}
	for _, a := range s.xdpAddrs {
		if !covered(a.Unmap(), false) {
			return port, true
		}
	}
	return port, false
}

// WaitJournals waits, at most d, until the journals have taken in every
// publication so far: at start, each zone's journal file is read and,
// when it is unreadable, cut short or does not lead to the serial served,
// rewritten. The daemon waits for that before it switches users, so that
// the files written meanwhile can be given to the user (see cmd/ringdns).
func (s *Server) WaitJournals(d time.Duration) bool { return s.journals.Idle(d) }

// Running is closed once Run has started every worker and server, so that
// the daemon can tell its service manager it is ready.
func (s *Server) Running() <-chan struct{} { return s.running }

// Listen returns the addresses served over UDP and TCP, with ports
// resolved.
func (s *Server) Listen() []netip.AddrPort { return s.listen }

// ControlPath is the control socket's file name.
func (s *Server) ControlPath() string { return s.cfg.Server.Control }

// MetricsAddr is the metrics endpoint's address, "" when disabled.
func (s *Server) MetricsAddr() string {
	if s.metLn == nil {
		return ""
	}
	return s.metLn.Addr().String()
}

// Run starts the workers, the TCP servers and the metrics endpoint and
// waits until Shutdown. It returns the first error of any of them; a
// worker that fails shuts the whole server down, since its socket would
// otherwise silently stop answering its share of the traffic.
func (s *Server) Run() error {
	// Each packet worker spends its idle time blocked in a system call
	// (poll or recvmmsg) on a locked thread, holding a P while it does.
	// With no P left idle, the runtime's monitor takes the P back from
	// every such call after 20 µs and wakes every 20 µs to look, and the
	// worker must win a P back when its packet arrives: at low rates that
	// costs more CPU than the answers. A P per blocking worker on top of
	// the CPUs' own keeps one idle, so the monitor backs off to 10 ms and
	// a worker returns from its system call without a hand-over. An
	// operator's GOMAXPROCS is left as it is.
	s.raiseProcs()
	go s.cookies.run(s.done)
	if s.rssac != nil {
		go s.rssac.run(s.done)
	}
	for _, w := range s.workers {
		if w.worker.Handoff != nil {
			s.handoff.Attach(w.worker.Handoff, w.out)
		}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.handoff.Run(s.done)
		s.xdpReplies.Close()
	}()
	if s.dnstap != nil {
		go s.dnstap.run()
	}
	for _, w := range s.workers {
		s.startWorker(w)
	}
	for _, t := range s.tcp {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := t.srv.Serve(); err != nil {
				s.fail(fmt.Errorf("tcp %s: %w", t.Listen, err))
			}
		}()
	}
	// The secondary zones are refreshed from their primaries until
	// Shutdown; a transfer in progress is abandoned then.
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.Catalog.RunSecondaries(s.done)
	}()
	if s.metrics != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.metrics.Serve(s.metLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.fail(fmt.Errorf("metrics: %w", err))
			}
		}()
	}
	close(s.running)
	<-s.done
	s.wg.Wait()
	if s.dnstap != nil {
		// The workers have stopped: what their rings hold is written
		// before the output is closed.
		close(s.dnstap.stop)
		<-s.dnstap.done
	}
	return s.firstErr
}

// raiseProcs gives the runtime a P per blocking worker on top of the
// CPUs' own (see Run), unless the operator set GOMAXPROCS. Changing it
// stops the world, which a new process of an upgrade does before its
// workers wait for the word to go (PrestartWorkers), not after.
func (s *Server) raiseProcs() {
	if os.Getenv("GOMAXPROCS") == "" {
		if want := runtime.NumCPU() + len(s.workers); runtime.GOMAXPROCS(0) < want {
			runtime.GOMAXPROCS(want)
		}
	}
}

func (s *Server) fail(err error) {
	s.errOnce.Do(func() { s.firstErr = err })
	s.log.Error("stopping", "err", err)
	go s.Shutdown()
}

// Shutdown stops taking packets: it closes every port (each worker
// finishes the batch in hand and returns), the TCP listeners and
// connections, the metrics endpoint and the control socket, which removes
// its file. Run then returns.
func (s *Server) Shutdown() {
	s.stopOnce.Do(func() {
		s.closeAll()
		close(s.done)
	})
}

func (s *Server) closeAll() {
	if s.xdp != nil {
		// Detaching first hands new frames to the kernel, whose sockets are
		// still open, instead of to AF_XDP sockets about to close.
		if err := s.xdp.Close(); err != nil {
			s.log.Error("closing AF_XDP", "err", err)
		}
	}
	for _, w := range s.workers {
		s.closePort(w)
	}
	for _, t := range s.tcp {
		s.closeTCP(t)
	}
	s.journals.Close()
	s.notify.Close()
	if s.metrics != nil {
		s.metrics.Close()
	}
	if s.metLn != nil {
		// The server closes only a listener it serves; this one may not
		// have been served yet.
		s.metLn.Close()
	}
	if s.control != nil {
		s.control.Close()
	}
}

// HandleControl carries out one control request.
func (s *Server) HandleControl(req control.Request) control.Reply {
	switch req.Cmd {
	case control.CmdStatus:
		if len(req.Zones) > 0 {
			return control.Reply{Error: "status takes no zones"}
		}
		return control.OKReply(s.Status())
	case control.CmdZones:
		if len(req.Zones) > 0 {
			return control.Reply{Error: "zones takes no zones"}
		}
		return control.OKReply(s.Catalog.Zones())
	case control.CmdStats:
		if len(req.Zones) > 0 {
			return control.Reply{Error: "stats takes no zones"}
		}
		return control.OKReply(s.Stats())
	case control.CmdCookieRotate:
		return s.cookies.handleCookieRotate(req)
	case control.CmdRSSAC002:
		return s.handleRSSAC(req)
	case control.CmdUpgrade:
		return s.handleUpgrade(req)
	case control.CmdReload:
		s.ReloadCookies(req.Zones)
		s.ReloadRRL(req.Zones)
		s.ReloadDnstap(req.Zones)
		res, err := s.Catalog.Reload(req.Zones)
		if err != nil {
			rep := control.Reply{Error: err.Error()}
			if res != nil {
				rep = control.OKReply(res)
				rep.OK, rep.Error = false, err.Error()
			}
			return rep
		}
		rep := control.OKReply(res)
		if res.Failed > 0 {
			rep.OK = false
			rep.Error = fmt.Sprintf("%d of %d zones failed to load; their previous versions are served", res.Failed, len(res.Zones))
		}
		return rep
	case control.CmdZoneStatus:
		st, err := s.Catalog.TransferStatus(req.Zones)
		if err != nil {
			return control.Reply{Error: err.Error()}
		}
		return control.OKReply(st)
	case control.CmdRefresh, control.CmdRetransfer:
		if len(req.Zones) != 1 {
			return control.Reply{Error: req.Cmd + " takes one zone"}
		}
		axfr := req.Cmd == control.CmdRetransfer
		if err := s.Catalog.Refresh(req.Zones[0], axfr); err != nil {
			return control.Reply{Error: err.Error()}
		}
		res := control.RefreshResult{Origin: CanonicalOrigin(req.Zones[0]), Action: "refresh"}
		if axfr {
			res.Action = "AXFR"
		}
		return control.OKReply(res)
	case control.CmdNotify:
		if len(req.Zones) != 1 {
			return control.Reply{Error: "notify takes one zone"}
		}
		origin := CanonicalOrigin(req.Zones[0])
		if err := s.notifyZone(origin); err != nil {
			return control.Reply{Error: err.Error()}
		}
		return control.OKReply(control.RefreshResult{Origin: origin, Action: "notify"})
	case "":
		return control.Reply{Error: "missing cmd"}
	default:
		return control.Reply{Error: fmt.Sprintf("unknown command %q (want status, zones, reload, stats, zone-status, refresh, retransfer or notify)", req.Cmd)}
	}
}

// notifyZone sends NOTIFY for the served version of origin to its notify
// targets now, for ringctl notify; the retries go on after it returns.
func (s *Server) notifyZone(origin string) error {
	z := s.xfr.served(origin)
	switch {
	case s.xfr.zones[origin] == nil:
		return fmt.Errorf("%w: %s", ErrUnknownZone, origin)
	case z == nil:
		return fmt.Errorf("zone %s: no version served (not loaded, not yet transferred or expired)", origin)
	case len(s.notify.targets[origin]) == 0:
		return fmt.Errorf("zone %s: no notify targets configured (notify = [...])", origin)
	}
	s.notify.Zone(origin, z)
	return nil
}

// Status reports what the server is and does.
func (s *Server) Status() control.Status {
	st := control.Status{
		Version: Version, PID: os.Getpid(), Uptime: time.Since(s.started).Seconds(),
		Control: s.cfg.Server.Control, Metrics: s.MetricsAddr(), DataPlane: "sockets",
		Workers: len(s.workers), GoVersion: runtime.Version(),
	}
	if s.xdp != nil {
		zc := 0
		for _, p := range s.xdp.Ports() {
			if p.ZeroCopy() {
				zc++
			}
		}
		st.DataPlane = fmt.Sprintf("AF_XDP on %s (%s mode, %d queues, %d zero-copy) and sockets",
			s.cfg.XDP.Interface, s.xdp.Mode(), len(s.xdp.Ports()), zc)
	}
	for _, ap := range s.listen {
		st.Listen = append(st.Listen, ap.String())
	}
	seen := map[int]bool{}
	for _, w := range s.workers {
		if !seen[w.CPU] {
			seen[w.CPU] = true
			st.CPUs = append(st.CPUs, w.CPU)
		}
	}
	for _, z := range s.Catalog.Zones() {
		st.ZonesTotal++
		if z.Serving {
			st.ZonesServing++
		}
		if z.LastError != "" {
			st.ZonesFailing++
		}
	}
	var swap time.Duration
	st.Reloads, st.ReloadFailures, _, swap = s.Catalog.ReloadCounts()
	st.LastSwapMicros = float64(swap.Nanoseconds()) / 1e3
	return st
}

// NamedCounters converts counter values to their form in the control
// protocol, leaving out zero entries of the maps.
func NamedCounters(v dataplane.CounterValues) control.Counters {
	c := control.Counters{Queries: v.Queries, Replies: v.Replies, Bytes: v.Bytes, TC: v.TC, DO: v.DO, SendErrs: v.SendErrs,
		Rcodes: map[string]uint64{}, Kinds: map[string]uint64{}, Drops: map[string]uint64{},
		RRLSlipped: map[string]uint64{}, RRLDropped: map[string]uint64{}, Cookies: map[string]uint64{}}
	for i, n := range v.Rcodes {
		if n > 0 {
			c.Rcodes[RcodeName(i)] = n
		}
	}
	for i, n := range v.Kinds {
		if n > 0 && i != int(dataplane.KindDrop) {
			c.Kinds[dataplane.KindNames[i]] = n
		}
	}
	for i, n := range v.Drops {
		if n > 0 {
			c.Drops[dataplane.DropNames[i]] = n
		}
	}
	for i := range v.RRLSlipped {
		if n := v.RRLSlipped[i]; n > 0 {
			c.RRLSlipped[dataplane.RRLClassNames[i]] = n
		}
		if n := v.RRLDropped[i]; n > 0 {
			c.RRLDropped[dataplane.RRLClassNames[i]] = n
		}
	}
	for i, n := range v.Cookies {
		if n > 0 && i != int(dataplane.CookieNone) {
			c.Cookies[dataplane.CookieVerdictNames[i]] = n
		}
	}
	return c
}

// workerCounters lists every counter set with its labels: the socket
// workers and one per TCP server.
func (s *Server) workerCounters() []control.WorkerStats {
	var out []control.WorkerStats
	for _, w := range s.workers {
		ws := control.WorkerStats{Name: w.Name, Kind: w.Kind, Listen: w.Listen, CPU: w.CPU, Queue: w.Queue,
			Counters: NamedCounters(w.counters.Values())}
		if w.xdpPort != nil {
			if x, err := w.xdpPort.Stats(); err == nil {
				ws.XDP = xdpStats(x)
			}
		}
		out = append(out, ws)
	}
	for i, t := range s.tcp {
		out = append(out, control.WorkerStats{Name: "tcp" + strconv.Itoa(i), Kind: "tcp", Listen: t.Listen, CPU: -1, Queue: -1,
			Counters: NamedCounters(t.counters.Values())})
	}
	return out
}

// Stats sums the counters of every worker and reports each.
func (s *Server) Stats() control.Stats {
	var total dataplane.CounterValues
	for _, w := range s.workers {
		total.Add(w.counters.Values())
	}
	var ts control.TCPStats
	for _, t := range s.tcp {
		total.Add(t.counters.Values())
		ts.Add(t.srv.Stats())
	}
	return control.Stats{Total: NamedCounters(total), Workers: s.workerCounters(), TCP: ts}
}

// xdpStats converts an AF_XDP socket's statistics to their form in the
// control protocol.
func xdpStats(x nic.XDPStats) *control.XDPStats {
	return &control.XDPStats{
		RxDropped: x.RxDropped, RxInvalidDescs: x.RxInvalidDescs, TxInvalidDescs: x.TxInvalidDescs,
		RxRingFull: x.RxRingFull, RxFillRingEmptyDescs: x.RxFillRingEmptyDescs, TxRingEmptyDescs: x.TxRingEmptyDescs,
		RxPackets: x.RxPackets, RxNotQuery: x.RxNotQuery, TxPackets: x.TxPackets, TxRingFull: x.TxRingFull,
		TxBadLen: x.TxBadLen, KickErrors: x.KickErrors, RxBadChecksum: x.RxBadChecksum,
	}
}

var rcodeNames = [...]string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
	"YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE", "DSOTYPENI", "RCODE12", "RCODE13",
	"RCODE14", "RCODE15", "BADVERS", "BADKEY", "BADTIME", "BADMODE", "BADNAME", "BADALG", "BADTRUNC", "BADCOOKIE"}

// RcodeName is the mnemonic of an (extended) rcode.
func RcodeName(rc int) string {
	if rc >= 0 && rc < len(rcodeNames) {
		return rcodeNames[rc]
	}
	return "RCODE" + strconv.Itoa(rc)
}
