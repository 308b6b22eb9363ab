package netns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The addresses of the two ends. The IPv4 prefix is /24 and the IPv6 prefix
// /64 on both.
const (
	ServerV4 = "198.18.0.1"
	ClientV4 = "198.18.0.2"
	ServerV6 = "fd53::1"
	ClientV6 = "fd53::2"
)

// Config says what NewPair builds.
type Config struct {
	// Name tags everything the pair creates, so that leftovers can be
	// traced to their creator: Name "rdx" gives the namespaces
	// rdx-<pid>-<n>-s and rdx-<pid>-<n>-c and the interfaces rdxs<n> and
	// rdxc<n>, where n counts the pairs of this process. It is 1 to 8 lower
	// case letters and digits, which keeps interface names within the
	// kernel's 15 characters.
	Name string
	// Queues is the number of RX and of TX queues on each end; 0 means 1.
	Queues int
}

// Pair is two network namespaces joined by a veth pair. Its fields are
// read-only.
type Pair struct {
	ServerNS, ClientNS string // names under /var/run/netns
	ServerIf, ClientIf string // the veth ends, one in each namespace
	Queues             int    // RX and TX queues on each end

	created []string // namespaces to delete on Close
}

var pairSeq, pingSeq atomic.Int32

// Available returns nil when this process can build a Pair: it runs as root
// and iproute2's ip is installed. Otherwise it returns the reason, for a
// test to skip with.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (CAP_SYS_ADMIN for network namespaces, CAP_NET_ADMIN for the veth pair)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("needs iproute2 (ip) to create network namespaces")
	}
	return nil
}

// NewPair creates the two namespaces and the veth pair between them, with
// loopback and both ends up and their addresses assigned. On error it has
// deleted whatever it created. The caller deletes the pair with Close.
func NewPair(cfg Config) (p *Pair, err error) {
	if !validName(cfg.Name) {
		return nil, fmt.Errorf("netns: name %q is not 1 to 8 lower case letters and digits", cfg.Name)
	}
	queues := cfg.Queues
	if queues == 0 {
		queues = 1
	}
	if queues < 0 {
		return nil, fmt.Errorf("netns: %d queues", queues)
	}
	n := pairSeq.Add(1)
	p = &Pair{
		ServerNS: fmt.Sprintf("%s-%d-%d-s", cfg.Name, os.Getpid(), n),
		ClientNS: fmt.Sprintf("%s-%d-%d-c", cfg.Name, os.Getpid(), n),
		ServerIf: fmt.Sprintf("%ss%d", cfg.Name, n),
		ClientIf: fmt.Sprintf("%sc%d", cfg.Name, n),
		Queues:   queues,
	}
	defer func() {
		if err != nil {
			p.Close()
			p = nil
		}
	}()
	for _, ns := range []string{p.ServerNS, p.ClientNS} {
		if _, err := Run("ip", "netns", "add", ns); err != nil {
			return p, err
		}
		p.created = append(p.created, ns)
	}
	// The veth pair is born inside the namespaces, so its names never meet
	// another process's in the caller's namespace, and deleting the
	// namespaces deletes it with whatever was attached to it.
	q := fmt.Sprint(queues)
	if _, err := Run("ip", "-n", p.ServerNS, "link", "add", p.ServerIf, "numtxqueues", q, "numrxqueues", q,
		"type", "veth", "peer", "name", p.ClientIf, "netns", p.ClientNS, "numtxqueues", q, "numrxqueues", q); err != nil {
		return p, err
	}
	for _, s := range []struct{ ns, dev, v4, v6 string }{
		{p.ServerNS, p.ServerIf, ServerV4 + "/24", ServerV6 + "/64"},
		{p.ClientNS, p.ClientIf, ClientV4 + "/24", ClientV6 + "/64"},
	} {
		for _, args := range [][]string{
			{"ip", "-n", s.ns, "addr", "add", s.v4, "dev", s.dev},
			// nodad: a server binds its address at once, which a
			// tentative IPv6 address refuses.
			{"ip", "-n", s.ns, "addr", "add", s.v6, "dev", s.dev, "nodad"},
			{"ip", "-n", s.ns, "link", "set", "lo", "up"},
			{"ip", "-n", s.ns, "link", "set", s.dev, "up"},
		} {
			if _, err := Run(args[0], args[1:]...); err != nil {
				return p, err
			}
		}
	}
	return p, nil
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 8 {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Close deletes both namespaces, which deletes the veth pair and any XDP
// program attached to it. A namespace lives on, without its name, while a
// process or a socket is still in it; ending those is the caller's part.
// Close may be called more than once.
func (p *Pair) Close() error {
	var errs []error
	for _, ns := range p.created {
		if _, err := Run("ip", "netns", "del", ns); err != nil {
			errs = append(errs, err)
		}
	}
	p.created = nil
	return errors.Join(errs...)
}

// PinNeighbours installs permanent neighbour entries on each end for the
// other end's two addresses, so that the first packets of a run wait for no
// ARP or neighbour discovery exchange (which a load generator's first batch
// would lose).
func (p *Pair) PinNeighbours() error {
	serverMAC, err := HardwareAddr(p.ServerNS, p.ServerIf)
	if err != nil {
		return err
	}
	clientMAC, err := HardwareAddr(p.ClientNS, p.ClientIf)
	if err != nil {
		return err
	}
	for _, e := range []struct{ ns, dev, addr string }{
		{p.ServerNS, p.ServerIf, ClientV4}, {p.ServerNS, p.ServerIf, ClientV6},
		{p.ClientNS, p.ClientIf, ServerV4}, {p.ClientNS, p.ClientIf, ServerV6},
	} {
		mac := clientMAC
		if e.ns == p.ClientNS {
			mac = serverMAC
		}
		if _, err := Run("ip", "-n", e.ns, "neigh", "replace", e.addr, "lladdr", mac.String(), "dev", e.dev); err != nil {
			return err
		}
	}
	return nil
}

// Counters returns the kernel's view of both namespaces, the link
// statistics and the SNMP counters, so that a test can say where a lost
// datagram went: dropped by a device, by the UDP layer (checksum, buffer),
// or never sent. Errors of the tools are part of the text.
func (p *Pair) Counters() string {
	var b strings.Builder
	for _, ns := range []string{p.ServerNS, p.ClientNS} {
		out, _ := exec.Command("ip", "-n", ns, "-s", "-s", "link", "show").CombinedOutput()
		fmt.Fprintf(&b, "ip -n %s -s -s link show:\n%s", ns, out)
		out, _ = Command(ns, "nstat", "-asz").CombinedOutput()
		fmt.Fprintf(&b, "nstat in %s:\n%s", ns, out)
	}
	return b.String()
}

// Exec returns argv wrapped to run in namespace ns. ip netns exec switches
// namespace and then execs argv, so the process started from it is argv's
// own and signals sent to its PID reach it directly.
func Exec(ns string, argv ...string) []string {
	return append([]string{"ip", "netns", "exec", ns}, argv...)
}

// Command is exec.Command for argv run in namespace ns; see Exec.
func Command(ns string, argv ...string) *exec.Cmd {
	full := Exec(ns, argv...)
	return exec.Command(full[0], full[1:]...)
}

// Do runs fn on an OS thread switched into namespace ns and returns fn's
// error. Sockets, BPF links and other objects that fn creates belong to ns
// for their whole life and stay usable from any thread afterwards. The
// thread switches back when fn returns; if it cannot, it stays locked, so
// that the runtime retires it instead of running other goroutines in ns.
func Do(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns back from %s: %w", ns, err)
			return // the thread stays locked and exits with the goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// HardwareAddr returns the MAC address of interface ifname in namespace ns.
func HardwareAddr(ns, ifname string) (net.HardwareAddr, error) {
	var mac net.HardwareAddr
	err := Do(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return fmt.Errorf("%s in namespace %s: %w", ifname, ns, err)
		}
		mac = ifi.HardwareAddr
		return nil
	})
	return mac, err
}

// Ping sends ICMP or ICMPv6 echo requests from namespace ns to dst over a
// raw socket, one at a time, until one is answered: at most tries requests,
// each given wait for its reply. It returns nil on the first reply.
func Ping(ns string, dst netip.Addr, tries int, wait time.Duration) error {
	var fd int
	err := Do(ns, func() error {
		var err error
		if dst.Is4() {
			fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
		} else {
			// The kernel fills in the checksum on raw ICMPv6 sockets.
			fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6)
		}
		return err
	})
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(wait.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return err
	}
	var sa unix.Sockaddr = &unix.SockaddrInet6{Addr: dst.As16()}
	reqType, replyType := byte(128), byte(129)
	if dst.Is4() {
		sa = &unix.SockaddrInet4{Addr: dst.As4()}
		reqType, replyType = 8, 0
	}
	// The identifier tells this call's replies from those of another
	// running in the same namespace: a raw socket receives them all.
	id := uint16(os.Getpid()) ^ uint16(pingSeq.Add(1))<<8
	buf := make([]byte, 1500)
	for seq := uint16(1); int(seq) <= tries; seq++ {
		req := []byte{reqType, 0, 0, 0, byte(id >> 8), byte(id), byte(seq >> 8), byte(seq), 'n', 'e', 't', 'n', 's', 0}
		if dst.Is4() {
			binary.BigEndian.PutUint16(req[2:4], icmpChecksum(req))
		}
		if err := unix.Sendto(fd, req, 0, sa); err != nil {
			return err
		}
		for {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				break // timed out: the next request
			}
			b := buf[:n]
			if dst.Is4() && n >= 20 {
				b = b[int(b[0]&0x0f)*4:] // raw IPv4 sockets include the IP header
			}
			if len(b) >= 8 && b[0] == replyType && binary.BigEndian.Uint16(b[4:6]) == id &&
				binary.BigEndian.Uint16(b[6:8]) == seq {
				return nil
			}
		}
	}
	return fmt.Errorf("no echo reply to %d requests", tries)
}

// icmpChecksum is the Internet checksum of b (RFC 1071).
func icmpChecksum(b []byte) uint16 {
	var s uint32
	for ; len(b) >= 2; b = b[2:] {
		s += uint32(b[0])<<8 | uint32(b[1])
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}
