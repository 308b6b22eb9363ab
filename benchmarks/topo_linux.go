package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/ringdns/ringdns/internal/netns"
)

// Topology is two network namespaces joined by a veth pair (netns.Pair): the
// server's side holds 198.18.0.1 and fd53::1, the client's 198.18.0.2 and
// fd53::2 (the benchmarking ranges of RFC 2544 and our own ULA). Nothing in
// it can reach any other network.
type Topology struct {
	*netns.Pair
}

// The server side's addresses, which the servers listen on and the load
// generators query.
const (
	serverV4 = netns.ServerV4
	serverV6 = netns.ServerV6
)

// run runs a command to completion; its error names the command line and
// carries the output.
func run(name string, args ...string) error {
	_, err := netns.Run(name, args...)
	return err
}

// NewTopology creates the namespaces and the veth pair with queues RX and TX
// queues on each side. Names carry the process ID, so that two runs never
// touch each other's namespaces.
func NewTopology(queues int) (*Topology, error) {
	p, err := netns.NewPair(netns.Config{Name: "rbench", Queues: queues})
	if err != nil {
		return nil, err
	}
	t := &Topology{p}
	// Static neighbour entries spare the first packets of every run an ARP
	// or ND exchange, which a load generator's first batch would lose.
	if err := p.PinNeighbours(); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

// DetachXDP removes whatever XDP program is attached to either side. Knot
// and kxdpgun leave theirs attached when they exit (NOTES.md).
func (t *Topology) DetachXDP() {
	run("ip", "-n", t.ServerNS, "link", "set", "dev", t.ServerIf, "xdp", "off")
	t.DetachClientXDP()
}

// DetachClientXDP removes the XDP program from the client's side, where
// kxdpgun leaves its own.
func (t *Topology) DetachClientXDP() {
	run("ip", "-n", t.ClientNS, "link", "set", "dev", t.ClientIf, "xdp", "off")
}

// ServerXDPAttached reports whether an XDP program is attached to the
// server's side.
func (t *Topology) ServerXDPAttached() bool {
	out, err := netns.Run("ip", "-n", t.ServerNS, "link", "show", "dev", t.ServerIf)
	return err == nil && strings.Contains(out, "prog/xdp")
}

// Close detaches XDP programs and deletes both namespaces, which deletes
// the veth pair with them. A namespace it could not delete is reported,
// since it outlives the run.
func (t *Topology) Close() {
	t.DetachXDP()
	if err := t.Pair.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "benchmarks:", err)
	}
}

// InServer and InClient wrap a command line to run in a namespace.
func (t *Topology) InServer(args ...string) []string { return netns.Exec(t.ServerNS, args...) }

func (t *Topology) InClient(args ...string) []string { return netns.Exec(t.ClientNS, args...) }
