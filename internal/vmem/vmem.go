package vmem

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"sync/atomic"
	"unsafe"
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

// Settle withdraws the huge-page advice from the region: the huge pages
// already made stay, and the region's pages written from now on are
// faulted 4 KiB at a time. An arena written whole at a load and appended
// to a little at a time after calls it once loaded: a huge page fault
// clears 2 MiB at once (about 4 ms on this project's VM), where an append
// of some kilobytes needs a few small pages.
func (r *Region) Settle() { settle(r.b) }

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

// Slice returns the region as a slice of T of length 0 and as many
// elements as fit, for an arena of fixed-size records (bytes, or records
// of them): appends within that capacity write in place. T must hold no
// pointers (the garbage collector does not scan a region) and need no
// more alignment than a page; Slice panics otherwise.
func Slice[T any](r *Region) []T {
	t := reflect.TypeFor[T]()
	if !pointerFree(t) {
		panic(fmt.Sprintf("vmem: a region cannot hold %v, which holds pointers", t))
	}
	size := int(t.Size())
	if size == 0 || len(r.b) < size {
		return nil
	}
	// The mapping is page-aligned, which satisfies any Go type's
	// alignment, and it stays mapped until Release, which the owner
	// calls only once nothing reads it (see the package documentation).
	// Its memory holds no Go pointers, as T has none, so the collector
	// has nothing to find in it.
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(r.b))), len(r.b)/size)[:0]
}

// Trim gives back to the system the memory of r past the arena s, when s
// is the arena Slice made of r (its elements start at r's start): the
// whole pages past len(s) elements, which become resident again, reading
// as zero, when they are written. It reports whether s is r's arena.
//
// A load writes its arenas in huge pages, and the last one of each is
// resident whole, 2 MiB, however little of it the arena reached: with a
// dozen arenas that was about 6% of the 1M-delegation TLD's resident
// size (see zone/arenamap.go).
func Trim[T any](r *Region, s []T) bool {
	if unsafe.Pointer(unsafe.SliceData(s)) != unsafe.Pointer(unsafe.SliceData(r.b)) {
		return false
	}
	used := len(s) * int(reflect.TypeFor[T]().Size())
	page := pageSize()
	if from := (used + page - 1) / page * page; from < len(r.b) && !r.released.Load() {
		trim(r.b[from:])
	}
	return true
}

// pointerFree reports whether values of t hold no pointers.
func pointerFree(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return true
	case reflect.Array:
		return t.Len() == 0 || pointerFree(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if !pointerFree(t.Field(i).Type) {
				return false
			}
		}
		return true
	}
	return false
}

// Populate has the system give the pages of s's elements now, in one call,
// as writing to each page would, without changing what they hold; the
// pages it covers are s's and those its first and last elements share
// with their neighbours, all of the same mapping. It reports whether it
// did: where it cannot (systems other than Linux, kernels before 5.14),
// the caller writes to each page itself.
//
// A page taken by a write is one fault, a trap into the kernel each. On
// this project's VM, 64 MiB the heap had just given back to the system
// took 222-224 ms to write whole, and 132-134 populated first (14-15 ms
// of it the call): the rest of the cost is still taken at the first write
// to each page (BenchmarkFresh). An array written whole after it is
// allocated, from memory the heap gave back (after the catalog's
// release), takes its pages so.
func Populate[T any](s []T) bool {
	size := len(s) * int(reflect.TypeFor[T]().Size())
	if size == 0 {
		return true
	}
	page := uintptr(pageSize())
	// Addresses, not pointers: the system call is told which pages to
	// give, and s, alive below, keeps them the array's.
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
	hi := lo + uintptr(size)
	lo &^= page - 1
	hi = (hi + page - 1) &^ (page - 1)
	ok := populate(lo, hi-lo)
	runtime.KeepAlive(s)
	return ok
}
