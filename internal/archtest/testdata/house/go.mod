// The fixture module of archtest's own test: a house of the same layout as
// ringdns that breaks every rule of HouseRules, and obeys them where the
// checker must not complain. Its DNS and BPF libraries are stand-ins under
// the real import paths, replaced from third_party so that nothing is
// fetched.
module example.com/house

go 1.26

require (
	github.com/cilium/ebpf v0.0.0
	github.com/miekg/dns v0.0.0
)

replace (
	github.com/cilium/ebpf => ./third_party/ebpf
	github.com/miekg/dns => ./third_party/dns
)
