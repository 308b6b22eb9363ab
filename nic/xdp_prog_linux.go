package nic

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// xdpProgName is the name the kernel shows for our program (ip link, bpftool).
// It is at most 15 characters, the kernel's limit.
const xdpProgName = "ringdns_xdp"

// xdpMaxAddrs bounds the server addresses per family that the filter checks.
const xdpMaxAddrs = 64

// Return codes of an XDP program (enum xdp_action).
const (
	xdpPass     = 2
	xdpRedirect = 4
)

// xdpFilter is the XDP program and its maps: the XSKMAP that routes a receive
// queue to its AF_XDP socket and, when the server listens on chosen
// addresses, one hash set per family holding them.
type xdpFilter struct {
	prog *ebpf.Program
	xsks *ebpf.Map
	v4   *ebpf.Map // nil when any address is accepted
	v6   *ebpf.Map
}

// be16 returns the value a little-endian load of the two network-order bytes
// of v yields: BPF loads from packet memory in host byte order, so the
// program compares against byte-swapped constants instead of swapping every
// loaded field. This package builds only for little-endian Linux targets in
// practice (amd64, arm64); a big-endian port would drop the swap.
func be16(v uint16) int32 { return int32(v>>8 | v<<8&0xff00) }

// newXDPFilter builds and loads the program. It redirects to the socket of
// the receiving queue exactly the frames a DNS worker can answer: Ethernet
// with at most one 802.1Q tag, then IPv4 without options and not a fragment
// or IPv6 whose next header is UDP, then UDP to port, then (when addrs is not
// empty) a destination address in addrs. Everything else, and any frame on a
// queue without a socket, passes to the kernel, so ARP, neighbour discovery,
// ICMP, TCP and fragments keep working.
//
// With source set the program matches the other direction, as a client's
// does: UDP from port and (when addrs is not empty) from a source address in
// addrs, which is how a load generator takes in the replies to its queries.
func newXDPFilter(port uint16, addrs []netip.Addr, queues int, source bool) (*xdpFilter, error) {
	f := &xdpFilter{}
	ok := false
	defer func() {
		if !ok {
			f.close()
		}
	}()
	var err error
	f.xsks, err = ebpf.NewMap(&ebpf.MapSpec{
		Name:       "ringdns_xsks",
		Type:       ebpf.XSKMap,
		KeySize:    4,
		ValueSize:  4,
		MaxEntries: uint32(queues),
	})
	if err != nil {
		return nil, fmt.Errorf("create XSKMAP with %d entries: %w", queues, err)
	}
	filter := len(addrs) > 0
	if filter {
		var v4, v6 []netip.Addr
		for _, a := range addrs {
			a = a.Unmap()
			switch {
			case a.Is4():
				v4 = append(v4, a)
			case a.Is6():
				v6 = append(v6, a)
			default:
				return nil, fmt.Errorf("invalid server address %v", a)
			}
		}
		if len(v4) > xdpMaxAddrs || len(v6) > xdpMaxAddrs {
			return nil, fmt.Errorf("%d IPv4 and %d IPv6 server addresses: at most %d of each", len(v4), len(v6), xdpMaxAddrs)
		}
		if f.v4, err = addrSet("ringdns_v4", 4, v4); err != nil {
			return nil, err
		}
		if f.v6, err = addrSet("ringdns_v6", 16, v6); err != nil {
			return nil, err
		}
	}
	spec := &ebpf.ProgramSpec{
		Name:         xdpProgName,
		Type:         ebpf.XDP,
		License:      "Dual MIT/GPL",
		Instructions: f.instructions(port, filter, source),
	}
	f.prog, err = ebpf.NewProgram(spec)
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("load XDP program: %+v", ve)
		}
		return nil, fmt.Errorf("load XDP program: %w", err)
	}
	ok = true
	return f, nil
}

// addrSet creates a hash set of addresses, keyed by their network-order bytes
// as they appear in the packet. The value is unused.
func addrSet(name string, size uint32, addrs []netip.Addr) (*ebpf.Map, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name:       name,
		Type:       ebpf.Hash,
		KeySize:    size,
		ValueSize:  1,
		MaxEntries: max(uint32(len(addrs)), 1),
	})
	if err != nil {
		return nil, fmt.Errorf("create %s address map: %w", name, err)
	}
	for _, a := range addrs {
		if err := m.Put(a.AsSlice(), uint8(1)); err != nil {
			m.Close()
			return nil, fmt.Errorf("add %v to %s: %w", a, name, err)
		}
	}
	return m, nil
}

// instructions returns the program. Registers: R6 holds the xdp_md context
// across helper calls, R7 the start of the network header, R8 data_end.
// Every packet read is preceded by a bounds check against data_end, which
// the verifier insists on. With source the port and addresses are matched
// against the packet's source fields instead of its destination fields.
func (f *xdpFilter) instructions(port uint16, filter, source bool) asm.Instructions {
	const (
		ethHLen  = 14
		vlanHLen = 4
		ipv4HLen = 20
		ipv6HLen = 40
		udpHLen  = 8
		protoUDP = 17
	)
	const (
		ctxData      = 0  // struct xdp_md: data
		ctxDataEnd   = 4  // data_end
		ctxRxQueueID = 16 // rx_queue_index
	)
	// Offsets of the matched fields: the UDP port from the start of the
	// UDP header, the addresses from the start of the IP header.
	udpPort, v4Addr, v6Addr := int16(2), int16(16), int16(24)
	if source {
		udpPort, v4Addr, v6Addr = 0, 12, 8
	}
	p := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R2, asm.R6, ctxData, asm.Word),
		asm.LoadMem(asm.R8, asm.R6, ctxDataEnd, asm.Word),
		asm.Mov.Reg(asm.R7, asm.R2),
		asm.Add.Imm(asm.R7, ethHLen),
		asm.JGT.Reg(asm.R7, asm.R8, "pass"),
		asm.LoadMem(asm.R3, asm.R2, 12, asm.Half),
		asm.JNE.Imm(asm.R3, be16(0x8100), "l3"),
		// One 802.1Q tag: the real EtherType follows the tag.
		asm.Mov.Reg(asm.R7, asm.R2),
		asm.Add.Imm(asm.R7, ethHLen+vlanHLen),
		asm.JGT.Reg(asm.R7, asm.R8, "pass"),
		asm.LoadMem(asm.R3, asm.R2, 16, asm.Half),

		asm.JEq.Imm(asm.R3, be16(0x0800), "ipv4").WithSymbol("l3"),
		asm.JEq.Imm(asm.R3, be16(0x86dd), "ipv6"),
		asm.Ja.Label("pass"),

		// IPv4: version 4 with IHL 5 (no options), MF clear and offset 0
		// (not a fragment), protocol UDP, then the UDP destination port.
		asm.Mov.Reg(asm.R4, asm.R7).WithSymbol("ipv4"),
		asm.Add.Imm(asm.R4, ipv4HLen+udpHLen),
		asm.JGT.Reg(asm.R4, asm.R8, "pass"),
		asm.LoadMem(asm.R3, asm.R7, 0, asm.Byte),
		asm.JNE.Imm(asm.R3, 0x45, "pass"),
		asm.LoadMem(asm.R3, asm.R7, 6, asm.Half),
		asm.And.Imm(asm.R3, be16(0x3fff)),
		asm.JNE.Imm(asm.R3, 0, "pass"),
		asm.LoadMem(asm.R3, asm.R7, 9, asm.Byte),
		asm.JNE.Imm(asm.R3, protoUDP, "pass"),
		asm.LoadMem(asm.R3, asm.R7, ipv4HLen+udpPort, asm.Half),
		asm.JNE.Imm(asm.R3, be16(port), "pass"),
	}
	if filter {
		p = append(p,
			asm.LoadMem(asm.R3, asm.R7, v4Addr, asm.Word),
			asm.StoreMem(asm.RFP, -4, asm.R3, asm.Word),
			asm.LoadMapPtr(asm.R1, f.v4.FD()),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -4),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "pass"),
		)
	}
	p = append(p,
		asm.Ja.Label("redirect"),

		// IPv6: version 6 and next header UDP; any extension header makes
		// the next header something else and the frame passes.
		asm.Mov.Reg(asm.R4, asm.R7).WithSymbol("ipv6"),
		asm.Add.Imm(asm.R4, ipv6HLen+udpHLen),
		asm.JGT.Reg(asm.R4, asm.R8, "pass"),
		asm.LoadMem(asm.R3, asm.R7, 0, asm.Byte),
		asm.And.Imm(asm.R3, 0xf0),
		asm.JNE.Imm(asm.R3, 0x60, "pass"),
		asm.LoadMem(asm.R3, asm.R7, 6, asm.Byte),
		asm.JNE.Imm(asm.R3, protoUDP, "pass"),
		asm.LoadMem(asm.R3, asm.R7, ipv6HLen+udpPort, asm.Half),
		asm.JNE.Imm(asm.R3, be16(port), "pass"),
	)
	if filter {
		p = append(p,
			asm.LoadMem(asm.R3, asm.R7, v6Addr, asm.DWord),
			asm.StoreMem(asm.RFP, -16, asm.R3, asm.DWord),
			asm.LoadMem(asm.R3, asm.R7, v6Addr+8, asm.DWord),
			asm.StoreMem(asm.RFP, -8, asm.R3, asm.DWord),
			asm.LoadMapPtr(asm.R1, f.v6.FD()),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -16),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "pass"),
		)
	}
	p = append(p,
		// bpf_redirect_map returns XDP_REDIRECT when the queue has a socket
		// in the XSKMAP and its flags argument (XDP_PASS) when it has none,
		// so a queue we do not serve hands its frames to the kernel.
		asm.LoadMem(asm.R2, asm.R6, ctxRxQueueID, asm.Word).WithSymbol("redirect"),
		asm.LoadMapPtr(asm.R1, f.xsks.FD()),
		asm.Mov.Imm(asm.R3, xdpPass),
		asm.FnRedirectMap.Call(),
		asm.Return(),

		asm.Mov.Imm(asm.R0, xdpPass).WithSymbol("pass"),
		asm.Return(),
	)
	return p
}

func (f *xdpFilter) close() {
	if f.prog != nil {
		f.prog.Close()
	}
	for _, m := range []*ebpf.Map{f.xsks, f.v4, f.v6} {
		if m != nil {
			m.Close()
		}
	}
}
