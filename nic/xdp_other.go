//go:build !linux

package nic

import "fmt"

// HasXDP reports whether this system has AF_XDP: only Linux does.
const HasXDP = false

// XDP stands in for Linux's AF_XDP data path, which OpenXDP never opens on
// this system, so that callers build on every system.
type XDP struct{}

// OpenXDP fails with ErrXDPNeedsLinux: this system has no AF_XDP.
func OpenXDP(cfg XDPConfig) (*XDP, error) {
	return nil, fmt.Errorf("nic: serving %s from AF_XDP rings: %w; on this system UDP is served from kernel sockets only", cfg.Interface, ErrXDPNeedsLinux)
}

// Ports returns nothing: no XDP is ever opened here.
func (x *XDP) Ports() []*XDPPort { return nil }

// Mode returns "": no XDP is ever opened here.
func (x *XDP) Mode() string { return "" }

// Close does nothing: no XDP is ever opened here.
func (x *XDP) Close() error { return nil }

// XDPPort stands in for Linux's AF_XDP socket; none exists on this system.
type XDPPort struct{}

var _ Port = (*XDPPort)(nil)

// Queue returns -1: no XDPPort is ever opened here.
func (p *XDPPort) Queue() int { return -1 }

// ZeroCopy returns false: no XDPPort is ever opened here.
func (p *XDPPort) ZeroCopy() bool { return false }

// Stats fails with ErrXDPNeedsLinux.
func (p *XDPPort) Stats() (XDPStats, error) { return XDPStats{}, ErrXDPNeedsLinux }

// Receive implements Port for a port that is never open: ErrClosed.
func (p *XDPPort) Receive(pkts []Packet) (int, error) { return 0, ErrClosed }

// Send implements Port for a port that is never open: ErrClosed.
func (p *XDPPort) Send(pkts []Packet) error { return ErrClosed }

// Close implements Port: nothing to close.
func (p *XDPPort) Close() error { return nil }
