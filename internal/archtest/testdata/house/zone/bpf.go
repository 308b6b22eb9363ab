package zone

import "github.com/cilium/ebpf"

// load is BPF in zone, which breaks "zone imports no packet code" without
// nic's help.
func load() error { return ebpf.Load("zone") }
