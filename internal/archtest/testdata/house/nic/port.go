// Package nic moves packets. It breaks "nic imports no DNS code" (dns.go)
// and, on its per-packet path, calls log and a library that links fmt.
package nic

import (
	"errors"
	"fmt"
	"log"
	"unsafe" // allowed: nic is where unsafe lives

	"github.com/cilium/ebpf"
)

// Packet is one packet of a batch.
type Packet struct {
	Buf []byte
	Len int
}

// Port is what the worker receives from and sends to.
type Port interface {
	Receive(pkts []Packet) (int, error)
	Send(pkts []Packet) error
}

// XDPPort is the AF_XDP port.
type XDPPort struct{ fd int }

// OpenXDP uses fmt and the BPF library at setup, which is allowed.
func OpenXDP() (*XDPPort, error) {
	if err := ebpf.Load("filter"); err != nil {
		return nil, fmt.Errorf("nic: %w", err)
	}
	return &XDPPort{fd: int(unsafe.Sizeof(0))}, nil
}

// Receive logs per batch: a violation, reached from the worker through
// Port.
func (p *XDPPort) Receive(pkts []Packet) (int, error) {
	log.Printf("receive on %d", p.fd)
	return 0, nil
}

// Send calls into a library that links fmt: a violation, since what the
// library does is not followed.
func (p *XDPPort) Send(pkts []Packet) error {
	p.fd += ebpf.Kick()
	return nil
}

func (p *XDPPort) Poll(pkts []Packet) (int, error) { return 0, nil }
func (p *XDPPort) Alloc(pkts []Packet) int         { return 0 }
func (p *XDPPort) Transmit(pkts []Packet) error    { return nil }
func (p *XDPPort) Wait(ms int)                     {}

// UDPPort is the kernel-socket port.
type UDPPort struct{ fd int }

// errFatal stands in for a socket error.
var errFatal = errors.New("fatal")

// Receive wraps a fatal error with fmt once, which HouseRules allows.
func (p *UDPPort) Receive(pkts []Packet) (int, error) {
	if p.fd < 0 {
		return 0, fmt.Errorf("nic: recvmmsg: %w", errFatal)
	}
	return 0, nil
}

func (p *UDPPort) Send(pkts []Packet) error { return nil }
