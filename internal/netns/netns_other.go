//go:build !linux

package netns

import (
	"errors"
	"runtime"
)

// Network namespaces and veth pairs are Linux's. On other systems the
// package keeps the names its tests' helpers (netnstest) use, so that the
// tests build everywhere, and Available says why nothing can run.

// Config says what NewPair builds; on this system it builds nothing.
type Config struct {
	Name   string
	Queues int
}

// Pair is two network namespaces joined by a veth pair; on this system
// there is none.
type Pair struct{}

var errNeedsLinux = errors.New("needs Linux network namespaces and veth pairs; this is " + runtime.GOOS)

// Available returns why no Pair can be built on this system.
func Available() error { return errNeedsLinux }

// NewPair fails on this system (see Available).
func NewPair(cfg Config) (*Pair, error) { return nil, errNeedsLinux }

// Close does nothing: no Pair is built on this system.
func (p *Pair) Close() error { return nil }
