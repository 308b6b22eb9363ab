package archtest

// HouseRules are the rules of README's "The house" for the module whose
// path is mod: the arrows between the layers, and what the per-packet code
// may call. They are written against mod so that the same rules run on
// ringdns and on the fixture module that breaks each of them
// (testdata/house).
func HouseRules(mod string) Rules {
	nic, zone, dataplane := mod+"/nic", mod+"/zone", mod+"/dataplane"
	return Rules{
		Imports: []ImportRule{
			{
				// DNS code: the DNS library, the zone tables, the answer
				// engine, the daemon's control plane (TCP service, zone
				// loading, the control protocol) and the conformance
				// harness. nic moves packets and knows nothing of what
				// they carry.
				Name:   "nic imports no DNS code",
				From:   []string{nic + "/..."},
				Forbid: []string{"github.com/miekg/dns/...", zone + "/...", dataplane + "/...", mod + "/controlplane/...", mod + "/conformance/..."},
			},
			{
				// Packet code: the packages of the module that receive,
				// send or build packets (nic, dataplane, the load
				// generator and the test namespaces), and the BPF
				// library. The Internet checksum (internal/onessum) is
				// arithmetic, not packet code: zone sums each prepared
				// answer once so that no reply is summed again.
				Name:   "zone imports no packet code",
				From:   []string{zone + "/..."},
				Forbid: []string{nic + "/...", dataplane + "/...", mod + "/internal/loadgen/...", mod + "/internal/netns/...", "github.com/cilium/ebpf/..."},
			},
			{
				// The socket interfaces are packet code too, but
				// miekg/dns links them (net for its client and server,
				// x/net and x/sys/unix for its UDP session data), so
				// for zone only its own files can be held to them: zone
				// reads zone files through os and parses them with
				// miekg, and opens no socket.
				Name:   "zone opens no socket",
				From:   []string{zone + "/..."},
				Forbid: []string{"net", "syscall", "golang.org/x/sys/...", "golang.org/x/net/..."},
				Direct: true,
			},
			{
				Name:   "dataplane imports no controlplane",
				From:   []string{dataplane + "/..."},
				Forbid: []string{mod + "/controlplane/..."},
			},
			{
				// fmt may serve the packet path's packages at setup
				// (their error messages); the hot path rule below keeps
				// it off the per-packet code. log and miekg/dns have no
				// place in either package at all.
				Name:   "the packet path imports no log or miekg/dns",
				From:   []string{dataplane + "/...", nic + "/..."},
				Forbid: []string{"log/...", "github.com/miekg/dns/..."},
				Direct: true,
			},
		},
		// internal/privdrop passes capset's header and data to every
		// thread through syscall.AllThreadsSyscall, which takes uintptrs,
		// and seccomp its filter program. internal/vmem views the
		// address space it maps for zone's arenas as arrays of their
		// pointer-free records, as nic views its UMEM as frames.
		Unsafe: []string{nic + "/...", mod + "/internal/privdrop", mod + "/internal/vmem"},
		Hot: HotPath{
			Name: "the packet path calls no fmt, log or miekg/dns",
			Roots: []string{
				// The worker's loop: Receive, ServeBatch and Send, the
				// port's methods reached through nic.Port on every port
				// of the module.
				"(*" + dataplane + ".Worker).turn",
				"(*" + dataplane + ".Worker).ServeBatch",
				// The answer engine as TCP and the tests call it.
				"(*" + dataplane + ".Snapshot).Answer",
				"(*" + nic + ".XDPPort).Receive",
				"(*" + nic + ".XDPPort).Send",
				"(*" + nic + ".UDPPort).Receive",
				"(*" + nic + ".UDPPort).Send",
				// The originating half the load generator runs per packet.
				"(*" + nic + ".XDPPort).Poll",
				"(*" + nic + ".XDPPort).Alloc",
				"(*" + nic + ".XDPPort).Transmit",
				"(*" + nic + ".XDPPort).Wait",
			},
			Forbid: []string{"fmt", "log/...", "github.com/miekg/dns/..."},
			Allow: []Allowed{{
				Caller: "(*" + nic + ".UDPPort).Receive",
				Callee: "fmt.Errorf",
				Count:  1,
				Why:    "a recvmmsg error other than EAGAIN or EINTR ends the port and its worker: once per port, not per packet",
			}},
		},
	}
}
