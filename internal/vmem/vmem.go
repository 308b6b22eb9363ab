package vmem

import (
	"errors"
	"sync/atomic"
)

// ErrUnsupported is returned by Reserve where regions are not made.
var ErrUnsupported = errors.New("vmem: address space reservations are not supported on this system")

// Region is address space reserved for one arena.
type Region struct {
	b        []byte // the mapping, as the system call returned it
	released atomic.Bool
}

// live counts the regions reserved and not released.
var live atomic.Int64

// Live returns the number of regions reserved and not yet released.
func Live() int64 { return live.Load() }

// Reserve reserves size bytes of address space (rounded up to whole
// pages). The memory reads as zero and becomes resident as it is written.
func Reserve(size int) (*Region, error) {
	if size <= 0 {
		return nil, errors.New("vmem: reserve of no bytes")
	}
	b, err := reserve(size)
	if err != nil {
		return nil, err
	}
	live.Add(1)
	return &Region{b: b}, nil
}

// Bytes returns the region as a slice of length 0 and capacity its size:
// appends within that capacity write in place.
func (r *Region) Bytes() []byte { return r.b[:0] }

// Cap is the region's size in bytes.
func (r *Region) Cap() int { return cap(r.b) }

// Release gives the region's address space and memory back to the
// system. Nothing may read or write the region after: an access then
// faults. A second Release does nothing.
func (r *Region) Release() error {
	if r.released.Swap(true) {
		return nil
	}
	live.Add(-1)
	return release(r.b)
}
