package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Topology is two network namespaces joined by a veth pair: the server's
// side holds 198.18.0.1 and fd53::1, the client's 198.18.0.2 and fd53::2
// (the benchmarking ranges of RFC 2544 and our own ULA). Nothing in it can
// reach any other network.
type Topology struct {
	ServerNS, ClientNS string
	ServerIf, ClientIf string
	Queues             int
}

// Addresses of the two sides.
const (
	serverV4 = "198.18.0.1"
	clientV4 = "198.18.0.2"
	serverV6 = "fd53::1"
	clientV6 = "fd53::2"
)

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// NewTopology creates the namespaces and the veth pair with queues RX and TX
// queues on each side. Names carry the process ID, so that two runs never
// touch each other's namespaces.
func NewTopology(queues int) (*Topology, error) {
	id := os.Getpid()
	t := &Topology{
		ServerNS: fmt.Sprintf("rbench-s-%d-%dq", id, queues), ClientNS: fmt.Sprintf("rbench-c-%d-%dq", id, queues),
		ServerIf: "rbs0", ClientIf: "rbc0", Queues: queues,
	}
	steps := [][]string{
		{"ip", "netns", "add", t.ServerNS},
		{"ip", "netns", "add", t.ClientNS},
		{"ip", "link", "add", fmt.Sprintf("rbs-%d-%d", id, queues), "numtxqueues", fmt.Sprint(queues), "numrxqueues", fmt.Sprint(queues),
			"type", "veth", "peer", "name", fmt.Sprintf("rbc-%d-%d", id, queues), "numtxqueues", fmt.Sprint(queues), "numrxqueues", fmt.Sprint(queues)},
		{"ip", "link", "set", fmt.Sprintf("rbs-%d-%d", id, queues), "netns", t.ServerNS, "name", t.ServerIf},
		{"ip", "link", "set", fmt.Sprintf("rbc-%d-%d", id, queues), "netns", t.ClientNS, "name", t.ClientIf},
	}
	for _, ns := range []struct{ ns, ifc, v4, v6 string }{
		{t.ServerNS, t.ServerIf, serverV4, serverV6},
		{t.ClientNS, t.ClientIf, clientV4, clientV6},
	} {
		steps = append(steps,
			[]string{"ip", "-n", ns.ns, "link", "set", "lo", "up"},
			[]string{"ip", "-n", ns.ns, "addr", "add", ns.v4 + "/24", "dev", ns.ifc},
			[]string{"ip", "-n", ns.ns, "addr", "add", ns.v6 + "/64", "dev", ns.ifc, "nodad"},
			[]string{"ip", "-n", ns.ns, "link", "set", ns.ifc, "up"},
		)
	}
	for _, s := range steps {
		if err := run(s[0], s[1:]...); err != nil {
			t.Close()
			return nil, err
		}
	}
	// Static neighbour entries spare the first packets of every run an ARP
	// or ND exchange, which a load generator's first batch would lose.
	sm, err1 := t.mac(t.ServerNS, t.ServerIf)
	cm, err2 := t.mac(t.ClientNS, t.ClientIf)
	if err1 == nil && err2 == nil {
		run("ip", "-n", t.ServerNS, "neigh", "replace", clientV4, "lladdr", cm, "dev", t.ServerIf)
		run("ip", "-n", t.ServerNS, "neigh", "replace", clientV6, "lladdr", cm, "dev", t.ServerIf)
		run("ip", "-n", t.ClientNS, "neigh", "replace", serverV4, "lladdr", sm, "dev", t.ClientIf)
		run("ip", "-n", t.ClientNS, "neigh", "replace", serverV6, "lladdr", sm, "dev", t.ClientIf)
	}
	return t, nil
}

func (t *Topology) mac(ns, ifc string) (string, error) {
	out, err := exec.Command("ip", "netns", "exec", ns, "cat", "/sys/class/net/"+ifc+"/address").Output()
	return strings.TrimSpace(string(out)), err
}

// DetachXDP removes whatever XDP program is attached to either side. Knot
// and kxdpgun leave theirs attached when they exit (NOTES.md).
func (t *Topology) DetachXDP() {
	run("ip", "-n", t.ServerNS, "link", "set", "dev", t.ServerIf, "xdp", "off")
	run("ip", "-n", t.ClientNS, "link", "set", "dev", t.ClientIf, "xdp", "off")
}

// Close detaches XDP programs and deletes both namespaces, which deletes
// the veth pair with them.
func (t *Topology) Close() {
	t.DetachXDP()
	run("ip", "netns", "del", t.ServerNS)
	run("ip", "netns", "del", t.ClientNS)
}

// InServer and InClient wrap a command line to run in a namespace.
func (t *Topology) InServer(args ...string) []string {
	return append([]string{"ip", "netns", "exec", t.ServerNS}, args...)
}

func (t *Topology) InClient(args ...string) []string {
	return append([]string{"ip", "netns", "exec", t.ClientNS}, args...)
}
