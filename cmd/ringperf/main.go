//go:build linux

// Command ringperf is a DNS load generator over AF_XDP, built on the same
// nic package as ringdns's data plane. It reads queries in dnsperf's format,
// builds each query's frame once, and sends copies from one AF_XDP socket
// and one pinned thread per queue of the client interface, with no system
// call per packet. Replies come back through its own XDP program, which
// takes in UDP from the server's address and port and passes everything else
// to the kernel; they are matched to queries by (source port, ID) without
// locks. It reports what was sent and answered, the rcodes, truncation,
// reply bytes and the latency distribution.
//
// Usage:
//
//	ringperf -i IFACE -s SERVER -d QUERYFILE [-l SECONDS] [-n COUNT] [-rate N]
//	         [-queues LIST|all] [-cpus LIST] [-do SHARE] [-edns SIZE] [-rd] [-random] [-json]
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"

	"github.com/ringdns/ringdns/controlplane"
	"github.com/ringdns/ringdns/internal/loadgen"
	"github.com/ringdns/ringdns/nic"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// maxSeconds bounds a run, so that no load runs away.
const maxSeconds = 3600

type options struct {
	iface, server, queryFile, queues, cpus, src, dstMAC, mode string
	spoof                                                     string
	ownEvery                                                  uint64
	ownCookie                                                 bool
	port                                                      uint
	seconds, rate, doShare                                    float64
	count                                                     uint64
	edns                                                      uint
	rd, random, json                                          bool
	timeout                                                   time.Duration
	seed                                                      uint64
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ringperf", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.iface, "i", "", "client `IFACE` to send from (AF_XDP sockets and an XDP program on it)")
	fs.StringVar(&o.server, "s", "", "server `ADDR`, IPv4 or IPv6, inside a prefix of the interface")
	fs.UintVar(&o.port, "p", 53, "server UDP `PORT`")
	fs.StringVar(&o.queryFile, "d", "", "query `FILE`: \"NAME TYPE [E|D]\" per line (dnsperf's format; E asks for EDNS, D for DO)")
	fs.Float64Var(&o.seconds, "l", 10, "send for at most `SECONDS`")
	fs.Uint64Var(&o.count, "n", 0, "send at most `COUNT` queries (0: only -l bounds the run)")
	fs.Float64Var(&o.rate, "rate", 0, "queries per `second` over all queues (0: flat out)")
	fs.StringVar(&o.queues, "queues", "all", "client RX/TX queues to use, one socket and thread each: `LIST` such as 0,2-3, or all")
	fs.StringVar(&o.cpus, "cpus", "", "CPU `LIST` to pin the queue threads to, in turn (default: not pinned)")
	fs.Float64Var(&o.doShare, "do", 0, "`share` of the queries without a flag that set DO (0 to 1)")
	fs.UintVar(&o.edns, "edns", 1232, "EDNS UDP payload `size` (0: no OPT record, except on lines with E or D)")
	fs.BoolVar(&o.rd, "rd", false, "set RD")
	fs.BoolVar(&o.random, "random", false, "pick queries at random (default: in file order)")
	fs.Uint64Var(&o.seed, "seed", 1, "`seed` for the DO draw and the random order")
	fs.DurationVar(&o.timeout, "timeout", time.Second, "wait this long for replies after the last send")
	fs.BoolVar(&o.json, "json", false, "print the result as JSON")
	fs.StringVar(&o.src, "src", "", "source `ADDR` (default: the interface's address in the server's prefix)")
	fs.StringVar(&o.dstMAC, "dst-mac", "", "next-hop `MAC` (default: from the neighbour table, resolved first if needed)")
	fs.StringVar(&o.mode, "mode", "auto", "XDP attach `mode`: auto (driver, else generic), driver or generic")
	fs.StringVar(&o.spoof, "spoof", "", "send from random addresses of `PREFIX` (of the server's family, on the link) instead of the own address: a reflection attack on that network, whose replies still come back to this interface and are counted apart")
	fs.Uint64Var(&o.ownEvery, "own-every", 0, "with -spoof, send every `N`th query from the own address, a real client beside the flood (0: none)")
	fs.BoolVar(&o.ownCookie, "own-cookie", false, "with -own-every, the own queries carry a DNS cookie (RFC 7873), the server's asked for first over a kernel socket")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ringperf -i IFACE -s SERVER -d QUERYFILE [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := o.check(fs); err != nil {
		fmt.Fprintf(stderr, "ringperf: %v\n", err)
		fs.Usage()
		return 2
	}
	res, err := o.generate(stderr)
	if err != nil {
		fmt.Fprintf(stderr, "ringperf: %v\n", err)
		return 1
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(res)
	} else {
		err = res.WriteTable(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "ringperf: %v\n", err)
		return 1
	}
	return 0
}

func (o *options) check(fs *flag.FlagSet) error {
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.iface == "" || o.server == "" || o.queryFile == "":
		return errors.New("-i, -s and -d are required")
	case o.port == 0 || o.port > 65535:
		return fmt.Errorf("-p %d: want a port from 1 to 65535", o.port)
	case !(o.seconds > 0 && o.seconds <= maxSeconds):
		return fmt.Errorf("-l %v: want a duration above 0 and at most %d seconds", o.seconds, maxSeconds)
	case o.rate < 0:
		return fmt.Errorf("-rate %v: want 0 (flat out) or more", o.rate)
	case o.doShare < 0 || o.doShare > 1:
		return fmt.Errorf("-do %v: want a share from 0 to 1", o.doShare)
	case o.edns > 65535 || (o.edns > 0 && o.edns < 512):
		return fmt.Errorf("-edns %d: want 0 or a size from 512 to 65535", o.edns)
	case o.timeout <= 0 || o.timeout > time.Minute:
		return fmt.Errorf("-timeout %v: want above 0 and at most a minute", o.timeout)
	case o.ownEvery > 0 && o.spoof == "":
		return errors.New("-own-every needs -spoof")
	case o.ownCookie && o.ownEvery == 0:
		return errors.New("-own-cookie needs -own-every")
	}
	return nil
}

// generate sets up the link, runs the load and tears everything down.
func (o *options) generate(stderr io.Writer) (loadgen.Result, error) {
	var res loadgen.Result
	f, err := os.Open(o.queryFile)
	if err != nil {
		return res, err
	}
	qs, err := loadgen.ParseQueries(f, o.queryFile)
	f.Close()
	if err != nil {
		return res, err
	}
	link, err := o.link()
	if err != nil {
		return res, err
	}
	frames, err := loadgen.BuildFrames(qs, link, loadgen.Options{
		EDNSSize: uint16(o.edns), DOShare: o.doShare, RD: o.rd, Seed: o.seed,
	})
	if err != nil {
		return res, err
	}
	var ownFrames *loadgen.Frames
	if o.spoof != "" {
		if err := o.spoofFrames(frames, link); err != nil {
			return res, err
		}
		if o.ownCookie {
			// Asked before the XDP program is attached, which would
			// take the reply.
			cookie, err := serverCookie(link.Src, netip.AddrPortFrom(link.Dst, uint16(o.port)))
			if err != nil {
				return res, err
			}
			if ownFrames, err = loadgen.BuildFrames(qs, link, loadgen.Options{
				EDNSSize: uint16(o.edns), DOShare: o.doShare, RD: o.rd, Seed: o.seed, Cookie: cookie,
			}); err != nil {
				return res, err
			}
			fmt.Fprintf(stderr, "ringperf: the own queries carry the cookie %x\n", cookie)
		}
	}
	nq, err := nic.QueueCount(o.iface)
	if err != nil {
		return res, err
	}
	var queues []int
	if o.queues != "all" {
		if queues, err = controlplane.ParseCPUList(o.queues); err != nil || len(queues) == 0 {
			return res, fmt.Errorf("-queues %q: want a list such as 0,2-3, or all", o.queues)
		}
		if len(queues) < nq {
			fmt.Fprintf(stderr, "ringperf: %s has %d RX queues and %d are served: replies that arrive on the others go to the kernel and count as lost\n", o.iface, nq, len(queues))
		}
	}
	var cpus []int
	if o.cpus != "" {
		if cpus, err = controlplane.ParseCPUList(o.cpus); err != nil {
			return res, fmt.Errorf("-cpus: %v", err)
		}
	}
	x, err := nic.OpenXDP(nic.XDPConfig{
		Interface:   o.iface,
		Queues:      queues,
		Port:        uint16(o.port),
		Addrs:       []netip.Addr{link.Dst},
		Mode:        o.mode,
		MatchSource: true,
		WholeFrames: true, // loadgen writes and reads the headers itself
	})
	if err != nil {
		return res, err
	}
	defer x.Close()
	var ports []nic.Originator
	for _, p := range x.Ports() {
		ports = append(ports, p)
	}
	cfg := loadgen.Config{
		Rate:      o.rate,
		Count:     o.count,
		Duration:  time.Duration(o.seconds * float64(time.Second)),
		Timeout:   o.timeout,
		Random:    o.random,
		Seed:      o.seed,
		OwnEvery:  o.ownEvery,
		OwnFrames: ownFrames,
	}
	if len(cpus) > 0 {
		cfg.Pin = func(i int) error {
			var set unix.CPUSet
			set.Set(cpus[i%len(cpus)])
			if err := unix.SchedSetaffinity(0, &set); err != nil {
				return fmt.Errorf("pin to CPU %d: %w", cpus[i%len(cpus)], err)
			}
			return nil
		}
	}
	r, err := loadgen.NewRun(cfg, frames, ports)
	if err != nil {
		return res, err
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	var out struct {
		res loadgen.Result
		err error
	}
	r.Start()
	go func() {
		out.res, out.err = r.Wait()
		close(done)
	}()
	fmt.Fprintf(stderr, "ringperf: %d queries to %v port %d from %s (%s mode, %d queues)\n",
		frames.Len(), link.Dst, o.port, o.iface, x.Mode(), len(ports))
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	start := time.Now()
	var lastSent, lastAnswered uint64
	for {
		select {
		case <-done:
			res = out.res
			res.Mode = x.Mode()
			res.ZeroCopy = x.Ports()[0].ZeroCopy()
			for i := range res.Queues {
				p := x.Ports()[i]
				if st, err := p.Stats(); err == nil {
					res.Ring.RxDropped += st.RxDropped
					res.Ring.RxRingFull += st.RxRingFull
					res.Ring.FillEmpty += st.RxFillRingEmptyDescs
					res.Ring.TxInvalid += st.TxInvalidDescs
					res.Ring.KickErrors += st.KickErrors
					res.Ring.TxRingFull += st.TxRingFull
				}
				res.Queues[i].Queue = p.Queue()
				if len(cpus) > 0 {
					res.Queues[i].CPU = cpus[i%len(cpus)]
				}
			}
			return res, out.err
		case <-sigs:
			fmt.Fprintln(stderr, "ringperf: interrupted; waiting for the replies in flight")
			r.Stop()
		case <-tick.C:
			s, a := r.Progress()
			fmt.Fprintf(stderr, "ringperf: %4.0fs sent %d (%d/s) answered %d (%d/s)\n",
				time.Since(start).Seconds(), s, s-lastSent, a, a-lastAnswered)
			lastSent, lastAnswered = s, a
		}
	}
}

// link works out the addresses of every layer: the server's, the source
// in the same prefix of the interface, and both MACs.
func (o *options) link() (loadgen.Link, error) {
	var l loadgen.Link
	dst, err := netip.ParseAddr(o.server)
	if err != nil {
		return l, fmt.Errorf("-s %q: %v", o.server, err)
	}
	l.Dst, l.DstPort = dst.Unmap(), uint16(o.port)
	ifi, err := net.InterfaceByName(o.iface)
	if err != nil {
		return l, fmt.Errorf("-i %q: %w", o.iface, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return l, fmt.Errorf("%s has no Ethernet address: ringperf sends Ethernet frames", o.iface)
	}
	l.SrcMAC = ifi.HardwareAddr
	addrs, err := ifi.Addrs()
	if err != nil {
		return l, fmt.Errorf("addresses of %s: %w", o.iface, err)
	}
	var want netip.Addr
	if o.src != "" {
		if want, err = netip.ParseAddr(o.src); err != nil {
			return l, fmt.Errorf("-src %q: %v", o.src, err)
		}
		want = want.Unmap()
	}
	var prefixes []string
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		p, err := netip.ParsePrefix(ipn.String())
		if err != nil {
			continue
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		prefixes = append(prefixes, p.String())
		if !p.Contains(l.Dst) || p.Addr() == l.Dst {
			continue
		}
		if want.IsValid() && p.Addr() != want {
			continue
		}
		l.Src = p.Addr()
		break
	}
	if !l.Src.IsValid() {
		what := "no address of " + o.iface
		if want.IsValid() {
			what = fmt.Sprintf("-src %v is not an address of %s whose prefix", want, o.iface)
		}
		return l, fmt.Errorf("%s holds %v (prefixes: %s): ringperf sends on one link and refuses a target outside it",
			what, l.Dst, strings.Join(prefixes, ", "))
	}
	if o.dstMAC != "" {
		if l.DstMAC, err = net.ParseMAC(o.dstMAC); err != nil || len(l.DstMAC) != 6 {
			return l, fmt.Errorf("-dst-mac %q: want an Ethernet address", o.dstMAC)
		}
	} else if l.DstMAC, err = nic.ResolveNeighbour(o.iface, l.Dst, 2*time.Second); err != nil {
		return l, fmt.Errorf("%w (give the next hop with -dst-mac)", err)
	}
	return l, nil
}

// spoofFrames makes the frames leave from -spoof's prefix, which must lie
// within a prefix of the interface that holds the server too: spoofed
// traffic stays on the link ringperf refuses to leave, and the replies to
// the spoofed sources come back to it, whatever their address, since the
// server sends them to the MAC address they came from.
func (o *options) spoofFrames(f *loadgen.Frames, l loadgen.Link) error {
	p, err := netip.ParsePrefix(o.spoof)
	if err != nil {
		return fmt.Errorf("-spoof %q: %v", o.spoof, err)
	}
	ifi, err := net.InterfaceByName(o.iface)
	if err != nil {
		return err
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return err
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		q, err := netip.ParsePrefix(ipn.String())
		if err != nil {
			continue
		}
		if q.Addr().Is4In6() {
			q = netip.PrefixFrom(q.Addr().Unmap(), q.Bits()-96)
		}
		if q.Contains(l.Dst) && q.Bits() <= p.Bits() && q.Contains(p.Addr()) {
			return f.Spoof(p)
		}
	}
	return fmt.Errorf("-spoof %v: not within a prefix of %s that holds %v: ringperf spoofs only on its own link", p, o.iface, l.Dst)
}

// serverCookie asks the server, over a kernel UDP socket from src, for the
// SOA of the root with a client cookie, and returns the COOKIE option the
// reply carries: the client cookie and the server cookie, which the own
// queries then send back (RFC 7873 section 5.3).
func serverCookie(src netip.Addr, server netip.AddrPort) ([]byte, error) {
	var cc [8]byte
	if _, err := rand.Read(cc[:]); err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	m.SetQuestion(".", dns.TypeSOA)
	m.SetEdns0(1232, false)
	opt := m.IsEdns0()
	opt.Option = append(opt.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: hex.EncodeToString(cc[:])})
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second, Dialer: &net.Dialer{LocalAddr: net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0))}}
	var last error
	for range 3 {
		r, _, err := c.Exchange(m, server.String())
		if err != nil {
			last = err
			continue
		}
		if o := r.IsEdns0(); o != nil {
			for _, e := range o.Option {
				if ck, ok := e.(*dns.EDNS0_COOKIE); ok {
					b, err := hex.DecodeString(ck.Cookie)
					if err != nil || len(b) < 16 || string(b[:8]) != string(cc[:]) {
						return nil, fmt.Errorf("-own-cookie: the server's COOKIE option %q does not answer ours", ck.Cookie)
					}
					return b, nil
				}
			}
		}
		return nil, fmt.Errorf("-own-cookie: %v answered without a COOKIE option (are cookies on?)", server)
	}
	return nil, fmt.Errorf("-own-cookie: asking %v for a cookie from %v: %w", server, src, last)
}
