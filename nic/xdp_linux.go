package nic

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// HasXDP reports whether this system has AF_XDP: only Linux does.
const HasXDP = true

// XDP is the AF_XDP data path of one interface: the XDP program, its
// attachment (a bpf_link, so the kernel detaches it when the process dies,
// even by SIGKILL) and one XDPPort per served receive queue.
type XDP struct {
	iface   string
	ifindex int
	filter  *xdpFilter
	link    link.Link
	// linkFile holds the link's descriptor instead of link when the data
	// path was handed over from another process (xdp_inherit_linux.go).
	linkFile *os.File
	mode     string
	ports    []*XDPPort
	// geometryNote says that an inherited data path keeps sizes other
	// than its configuration's (InheritXDP).
	geometryNote string

	closeOnce sync.Once
	closeErr  error
}

// OpenXDP loads the XDP program, opens one AF_XDP socket per queue and
// attaches the program to cfg.Interface. Interface names and indexes are
// resolved in the calling thread's network namespace, and the sockets and
// the attachment belong to it: a caller serving an interface of another
// namespace calls OpenXDP on a thread locked into that namespace.
func OpenXDP(cfg XDPConfig) (*XDP, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("AF_XDP on %q: %w", cfg.Interface, err)
	}
	nq, err := QueueCount(cfg.Interface)
	if err != nil {
		return nil, err
	}
	queues := cfg.Queues
	if queues == nil {
		for q := 0; q < nq; q++ {
			queues = append(queues, q)
		}
	}
	if len(queues) == 0 {
		return nil, fmt.Errorf("AF_XDP on %s: no queues to serve", cfg.Interface)
	}
	seen := map[int]bool{}
	for _, q := range queues {
		if q < 0 || q >= nq {
			return nil, fmt.Errorf("AF_XDP on %s: queue %d does not exist (the interface has %d RX queues)", cfg.Interface, q, nq)
		}
		if seen[q] {
			return nil, fmt.Errorf("AF_XDP on %s: queue %d listed twice", cfg.Interface, q)
		}
		seen[q] = true
	}

	// Refuse early, before building anything, when another program holds
	// the interface and we may not replace it.
	cur, err := xdpAttached(ifi.Index)
	if err != nil {
		return nil, fmt.Errorf("query XDP state of %s: %w", cfg.Interface, err)
	}
	if cur.progID != 0 && !cfg.Replace {
		return nil, busyError(cfg.Interface, cur)
	}

	x := &XDP{iface: cfg.Interface, ifindex: ifi.Index}
	ok := false
	defer func() {
		if !ok {
			x.Close()
		}
	}()
	if x.filter, err = newXDPFilter(cfg.Port, cfg.Addrs, nq, cfg.MatchSource); err != nil {
		return nil, fmt.Errorf("XDP program for %s: %w", cfg.Interface, err)
	}
	mtu := cfg.MTU
	if mtu <= 0 {
		mtu = ifi.MTU
	}
	o := xskOpts{frameSize: cfg.FrameSize, frames: cfg.Frames, ringSize: cfg.RingSize, rxRingSize: cfg.RxRingSize,
		busyPoll: cfg.BusyPoll, port: cfg.Port, mtu: mtu, wholeFrames: cfg.WholeFrames}
	for _, q := range queues {
		p, err := openXDPPortMode(ifi.Index, q, o, cfg)
		if err != nil {
			return nil, err
		}
		x.ports = append(x.ports, p)
		if err := x.filter.xsks.Put(uint32(q), uint32(p.fd)); err != nil {
			return nil, fmt.Errorf("AF_XDP on %s: add queue %d socket to XSKMAP: %w", cfg.Interface, q, err)
		}
	}

	if cfg.Replace {
		// Look again: the program may have changed since the first query.
		if cur, err = xdpAttached(ifi.Index); err != nil {
			return nil, fmt.Errorf("query XDP state of %s: %w", cfg.Interface, err)
		}
		if cur.progID != 0 {
			if err := detachXDP(ifi.Index, cur); err != nil {
				return nil, fmt.Errorf("replace XDP program %s on %s: %w", cur.describe(), cfg.Interface, err)
			}
		}
	}
	if err := x.attach(cfg.Mode); err != nil {
		return nil, err
	}
	ok = true
	return x, nil
}

func (cfg *XDPConfig) setDefaults() error {
	if cfg.Interface == "" {
		return errors.New("AF_XDP: no interface given")
	}
	if cfg.Port == 0 {
		cfg.Port = 53
	}
	if cfg.Mode == "" {
		cfg.Mode = "auto"
	}
	if cfg.ZeroCopy == "" {
		cfg.ZeroCopy = "auto"
	}
	if cfg.FrameSize == 0 {
		cfg.FrameSize = 4096
	}
	if cfg.RingSize == 0 {
		cfg.RingSize = 2048
	}
	if cfg.RxRingSize == 0 {
		cfg.RxRingSize = cfg.RingSize
	}
	if cfg.Frames == 0 {
		// A fill ring's worth waiting for queries and a TX ring's worth
		// of replies in flight: the fill ring stays full while the
		// worker keeps up, so that all of it is there to take a burst.
		cfg.Frames = cfg.RxRingSize + cfg.RingSize
	}
	switch cfg.Mode {
	case "auto", "driver", "generic":
	default:
		return fmt.Errorf("AF_XDP on %s: mode %q: want auto, driver or generic", cfg.Interface, cfg.Mode)
	}
	switch cfg.ZeroCopy {
	case "auto", "on", "off":
	default:
		return fmt.Errorf("AF_XDP on %s: zero-copy %q: want auto, on or off", cfg.Interface, cfg.ZeroCopy)
	}
	if cfg.FrameSize != 2048 && cfg.FrameSize != 4096 {
		return fmt.Errorf("AF_XDP on %s: frame size %d: want 2048 or 4096", cfg.Interface, cfg.FrameSize)
	}
	if err := checkRingSize(cfg.RingSize); err != nil {
		return fmt.Errorf("AF_XDP on %s: TX ring size %d: %w", cfg.Interface, cfg.RingSize, err)
	}
	if err := checkRingSize(cfg.RxRingSize); err != nil {
		return fmt.Errorf("AF_XDP on %s: RX ring size %d: %w", cfg.Interface, cfg.RxRingSize, err)
	}
	if cfg.MatchSource && !cfg.WholeFrames {
		return fmt.Errorf("AF_XDP on %s: MatchSource takes in replies addressed to the client's own ports, which only a WholeFrames port hands out; set WholeFrames", cfg.Interface)
	}
	if cfg.Frames < cfg.RxRingSize || cfg.Frames > 1<<20 {
		return fmt.Errorf("AF_XDP on %s: %d frames: want at least the RX ring size (%d) and at most 2^20; the RX ring size plus the TX ring size keeps the fill ring full while replies are in flight",
			cfg.Interface, cfg.Frames, cfg.RxRingSize)
	}
	return nil
}

// openXDPPortMode opens the socket of one queue in the zero-copy mode cfg
// asks for, falling back from zero-copy to copy under "auto".
func openXDPPortMode(ifindex, q int, o xskOpts, cfg XDPConfig) (*XDPPort, error) {
	var zcErr error
	if cfg.ZeroCopy != "off" {
		p, err := openXDPPort(ifindex, q, o, unix.XDP_ZEROCOPY)
		if err == nil {
			return p, nil
		}
		if cfg.ZeroCopy == "on" {
			return nil, fmt.Errorf("AF_XDP on %s queue %d: zero-copy bind refused (the driver may not support it; set zero-copy to auto or off): %w", cfg.Interface, q, err)
		}
		zcErr = err
	}
	p, err := openXDPPort(ifindex, q, o, unix.XDP_COPY)
	if err != nil {
		if zcErr != nil {
			return nil, fmt.Errorf("AF_XDP on %s queue %d: zero-copy bind: %v; copy-mode bind: %w", cfg.Interface, q, zcErr, err)
		}
		return nil, fmt.Errorf("AF_XDP on %s queue %d: copy-mode bind: %w", cfg.Interface, q, err)
	}
	return p, nil
}

// attach links the program to the interface in the requested mode, trying
// driver mode and then generic mode under "auto".
func (x *XDP) attach(mode string) error {
	modes := []string{mode}
	if mode == "auto" {
		modes = []string{"driver", "generic"}
	}
	var errs []error
	for _, m := range modes {
		flags := link.XDPDriverMode
		if m == "generic" {
			flags = link.XDPGenericMode
		}
		l, err := link.AttachXDP(link.XDPOptions{Program: x.filter.prog, Interface: x.ifindex, Flags: flags})
		if err == nil {
			x.link, x.mode = l, m
			return nil
		}
		if errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EEXIST) {
			// Someone attached a program between our check and now.
			if cur, qerr := xdpAttached(x.ifindex); qerr == nil && cur.progID != 0 {
				return busyError(x.iface, cur)
			}
		}
		errs = append(errs, fmt.Errorf("%s mode: %w", m, err))
	}
	hint := "try mode generic, which every driver supports"
	if mode == "generic" || mode == "auto" {
		hint = "check that the interface is up, that its MTU fits one page, and that the process has CAP_NET_ADMIN and CAP_BPF"
	}
	return fmt.Errorf("attach XDP program to %s: %w (%s)", x.iface, errors.Join(errs...), hint)
}

// Ports returns the sockets, one per served queue, in the order of
// XDPConfig.Queues (ascending queue number when it was nil).
func (x *XDP) Ports() []*XDPPort { return x.ports }

// Mode returns the attach mode in effect: "driver" or "generic".
func (x *XDP) Mode() string { return x.mode }

// Close detaches the program and closes every port. Detaching first sends
// new frames to the kernel instead of into sockets about to close.
func (x *XDP) Close() error {
	x.closeOnce.Do(func() {
		var errs []error
		if x.link != nil {
			if err := x.link.Close(); err != nil {
				errs = append(errs, fmt.Errorf("detach XDP program from %s: %w", x.iface, err))
			}
		}
		if x.linkFile != nil {
			x.linkFile.Close()
		}
		for _, p := range x.ports {
			if err := p.Close(); err != nil {
				errs = append(errs, err)
			}
		}
		if x.filter != nil {
			x.filter.close()
		}
		x.closeErr = errors.Join(errs...)
	})
	return x.closeErr
}

// xdpState is what the kernel reports about an interface's XDP attachment.
type xdpState struct {
	attached uint8 // XDP_ATTACHED_NONE, _DRV, _SKB, _HW or _MULTI
	progID   uint32
	progName string
}

const (
	xdpAttachedDrv   = 1
	xdpAttachedSKB   = 2
	xdpAttachedHW    = 3
	xdpAttachedMulti = 4
)

func (s xdpState) describe() string {
	mode := map[uint8]string{xdpAttachedDrv: "driver", xdpAttachedSKB: "generic", xdpAttachedHW: "offload", xdpAttachedMulti: "several"}[s.attached]
	if s.progName != "" {
		return fmt.Sprintf("id %d name %q (%s mode)", s.progID, s.progName, mode)
	}
	return fmt.Sprintf("id %d (%s mode)", s.progID, mode)
}

func busyError(iface string, cur xdpState) error {
	return fmt.Errorf("AF_XDP on %s: %w: program %s; detach it (ip link set dev %s xdp off, or stop its owner) or set Replace",
		iface, ErrXDPBusy, cur.describe(), iface)
}

// xdpAttached asks rtnetlink which XDP program the interface runs.
func xdpAttached(ifindex int) (xdpState, error) {
	var st xdpState
	req := nlIfinfoRequest(unix.RTM_GETLINK, unix.NLM_F_REQUEST, ifindex, nil)
	msgs, err := nlRoundTrip(req)
	if err != nil {
		return st, err
	}
	for _, m := range msgs {
		if m.hdrType != unix.RTM_NEWLINK || len(m.data) < unix.SizeofIfInfomsg {
			continue
		}
		for a := range nlAttrs(m.data[unix.SizeofIfInfomsg:]) {
			if a.typ != unix.IFLA_XDP {
				continue
			}
			for n := range nlAttrs(a.val) {
				switch n.typ {
				case unix.IFLA_XDP_ATTACHED:
					if len(n.val) >= 1 {
						st.attached = n.val[0]
					}
				case unix.IFLA_XDP_PROG_ID:
					if len(n.val) >= 4 {
						st.progID = nativeUint32(n.val)
					}
				case unix.IFLA_XDP_DRV_PROG_ID, unix.IFLA_XDP_SKB_PROG_ID:
					if st.progID == 0 && len(n.val) >= 4 {
						st.progID = nativeUint32(n.val)
					}
				}
			}
		}
	}
	if st.progID != 0 {
		if p, err := ebpf.NewProgramFromID(ebpf.ProgramID(st.progID)); err == nil {
			if info, err := p.Info(); err == nil {
				st.progName = info.Name
			}
			p.Close()
		}
	}
	return st, nil
}

// detachXDP removes the program described by cur from the interface. A
// program attached through a bpf_link can only be removed through that link,
// found by its program and interface; one attached through netlink (ip link,
// older libraries) is removed through netlink.
func detachXDP(ifindex int, cur xdpState) error {
	var it link.Iterator
	for it.Next() {
		info, err := it.Link.Info()
		if err != nil || info.Type != unix.BPF_LINK_TYPE_XDP || uint32(info.Program) != cur.progID {
			continue
		}
		if xi := info.XDP(); xi == nil || int(xi.Ifindex) != ifindex {
			continue
		}
		l := it.Take()
		defer l.Close()
		return l.Detach()
	}
	if err := it.Err(); err != nil {
		return err
	}
	var flags []uint32
	switch cur.attached {
	case xdpAttachedDrv:
		flags = []uint32{unix.XDP_FLAGS_DRV_MODE}
	case xdpAttachedSKB:
		flags = []uint32{unix.XDP_FLAGS_SKB_MODE}
	case xdpAttachedHW:
		flags = []uint32{unix.XDP_FLAGS_HW_MODE}
	default:
		flags = []uint32{unix.XDP_FLAGS_DRV_MODE, unix.XDP_FLAGS_SKB_MODE, unix.XDP_FLAGS_HW_MODE}
	}
	for _, f := range flags {
		if err := setXDPNetlink(ifindex, -1, f); err != nil && cur.attached != xdpAttachedMulti {
			return err
		}
	}
	return nil
}

// setXDPNetlink attaches the program fd (or detaches with fd -1) through
// rtnetlink in the mode given by flags. Only detachXDP and the tests use it:
// our own attachment is always a bpf_link.
func setXDPNetlink(ifindex, fd int, flags uint32) error {
	var xdp []byte
	xdp = nlAppendAttr(xdp, unix.IFLA_XDP_FD, nativeBytes32(uint32(int32(fd))))
	xdp = nlAppendAttr(xdp, unix.IFLA_XDP_FLAGS, nativeBytes32(flags))
	attrs := nlAppendAttr(nil, unix.IFLA_XDP|unix.NLA_F_NESTED, xdp)
	req := nlIfinfoRequest(unix.RTM_SETLINK, unix.NLM_F_REQUEST|unix.NLM_F_ACK, ifindex, attrs)
	_, err := nlRoundTrip(req)
	return err
}

// QueueCount returns the number of receive queues of iface: the RX-only plus
// combined channels ethtool reports, or, for drivers without the channels
// operation, the rx-N entries under /sys/class/net/IFACE/queues (which shows
// the namespace sysfs was mounted in, not necessarily the calling thread's).
func QueueCount(iface string) (int, error) {
	n, err := ethtoolRxQueues(iface)
	if err == nil && n > 0 {
		return n, nil
	}
	if err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
		return 0, fmt.Errorf("count RX queues of %s: %w", iface, err)
	}
	m, gerr := filepath.Glob(filepath.Join("/sys/class/net", iface, "queues", "rx-*"))
	if gerr != nil || len(m) == 0 {
		return 1, nil
	}
	return len(m), nil
}

// ethtoolChannels mirrors struct ethtool_channels.
type ethtoolChannels struct {
	Cmd                                         uint32
	MaxRx, MaxTx, MaxOther, MaxCombined         uint32
	RxCount, TxCount, OtherCount, CombinedCount uint32
}

// ifreqData mirrors struct ifreq with its union holding a data pointer, the
// form SIOCETHTOOL takes.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [16]byte
}

func ethtoolRxQueues(iface string) (int, error) {
	if len(iface) >= unix.IFNAMSIZ {
		return 0, fmt.Errorf("interface name %q too long", iface)
	}
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, os.NewSyscallError("socket", err)
	}
	defer unix.Close(s)
	ch := ethtoolChannels{Cmd: unix.ETHTOOL_GCHANNELS}
	var ifr ifreqData
	copy(ifr.name[:], iface)
	// The kernel reads the ethtool command from the user address in the
	// ifreq union and writes the answer back there; ch outlives the call.
	ifr.data = unsafe.Pointer(&ch)
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(s), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	if e != 0 {
		return 0, e
	}
	return int(ch.RxCount + ch.CombinedCount), nil
}
