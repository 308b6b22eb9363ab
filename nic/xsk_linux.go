package nic

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// This file holds the AF_XDP socket plumbing: the socket options x/sys/unix
// has no typed helpers for, the four memory-mapped rings and the UMEM. It is
// where the unsafe code of the AF_XDP backend lives; every conversion from a
// mapped address to a Go pointer is explained beside it.

// xskSetsockopt sets a SOL_XDP option whose value is the bytes at val.
// x/sys/unix has no typed setter for struct xdp_umem_reg, so the option is
// passed as a raw pointer and length, which is what the kernel reads.
func xskSetsockopt(fd, opt int, val unsafe.Pointer, size uintptr) error {
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(val), size, 0)
	if e != 0 {
		return e
	}
	return nil
}

// xskGetsockopt reads a SOL_XDP option into the bytes at val and returns the
// length the kernel wrote. The kernel may write less than size for older
// struct versions (XDP_MMAP_OFFSETS, XDP_STATISTICS), which the caller checks.
func xskGetsockopt(fd, opt int, val unsafe.Pointer, size uintptr) (uintptr, error) {
	l := uint32(size)
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(val), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return 0, e
	}
	return uintptr(l), nil
}

// xskSetRingSize sizes one of the four rings (XDP_RX_RING, XDP_TX_RING,
// XDP_UMEM_FILL_RING, XDP_UMEM_COMPLETION_RING); the value is an int.
func xskSetRingSize(fd, opt, size int) error {
	v := int32(size)
	return xskSetsockopt(fd, opt, unsafe.Pointer(&v), unsafe.Sizeof(v))
}

// xskOptions mirrors struct xdp_options, which x/sys/unix does not define.
type xskOptions struct {
	Flags uint32
}

// ring is one single-producer single-consumer ring shared with the kernel.
// The producer and consumer indices are free-running 32-bit counters; the
// slot of index i is i & mask. Whichever side we are, we keep cached copies
// of both indices so that the shared cache lines are touched once per batch:
// the other side's index is loaded (acquire) only when the cached view has
// run out, and ours is stored (release) once after the batch's descriptors
// are written or read. Go's sync/atomic loads and stores are sequentially
// consistent, which is at least the acquire/release ordering the kernel's
// smp_load_acquire/smp_store_release pairing requires.
type ring struct {
	producer *atomic.Uint32
	consumer *atomic.Uint32
	flags    *atomic.Uint32
	desc     unsafe.Pointer // first descriptor: uint64 addresses or unix.XDPDesc
	mask     uint32
	size     uint32

	// cachedProd and cachedCons are our views of the two indices. On a ring
	// we produce into, cachedCons is the consumer index plus size, so that
	// cachedCons - cachedProd is the number of free slots.
	cachedProd uint32
	cachedCons uint32

	mem []byte // the whole mapping, for munmap
}

// mapRing maps one ring of the socket fd at page offset pgoff, using the
// offsets the kernel reported. descSize is 8 for the fill and completion
// rings (one uint64 UMEM address each) and 16 for RX and TX (struct xdp_desc).
func mapRing(fd int, pgoff int64, off unix.XDPRingOffset, size uint32, descSize uintptr, producer bool) (ring, error) {
	length := int(off.Desc) + int(size)*int(descSize)
	mem, err := unix.Mmap(fd, pgoff, length, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return ring{}, err
	}
	// The kernel places the producer index, the consumer index, the flags
	// word and the descriptor array at the reported offsets of this shared
	// mapping. The mapping lives until munmap in unmap, which happens only
	// after the port's users are done (see XDPPort.Close), so pointers into
	// it stay valid for the ring's life. The indices are naturally aligned
	// 32-bit words (the kernel lays them out on separate cache lines), which
	// is what sync/atomic requires.
	base := unsafe.Pointer(&mem[0])
	r := ring{
		producer: (*atomic.Uint32)(unsafe.Add(base, off.Producer)),
		consumer: (*atomic.Uint32)(unsafe.Add(base, off.Consumer)),
		flags:    (*atomic.Uint32)(unsafe.Add(base, off.Flags)),
		desc:     unsafe.Add(base, off.Desc),
		mask:     size - 1,
		size:     size,
		mem:      mem,
	}
	r.cachedProd = r.producer.Load()
	r.cachedCons = r.consumer.Load()
	if producer {
		r.cachedCons += size
	}
	return r, nil
}

func (r *ring) unmap() {
	if r.mem != nil {
		unix.Munmap(r.mem)
		r.mem = nil
	}
}

// addr returns the UMEM address in slot i of a fill or completion ring.
// desc points at size uint64 slots in the mapping (see mapRing); i & mask is
// always below size, so the pointer stays inside the descriptor array.
func (r *ring) addr(i uint32) *uint64 {
	return (*uint64)(unsafe.Add(r.desc, uintptr(i&r.mask)*8))
}

// xdpDesc returns the descriptor in slot i of an RX or TX ring. desc points at
// size struct xdp_desc slots (16 bytes each, the layout of unix.XDPDesc).
func (r *ring) xdpDesc(i uint32) *unix.XDPDesc {
	return (*unix.XDPDesc)(unsafe.Add(r.desc, uintptr(i&r.mask)*unsafe.Sizeof(unix.XDPDesc{})))
}

// free returns how many slots a producer may fill, up to want. It reloads the
// consumer index only when the cached view shows fewer than want free slots.
func (r *ring) free(want uint32) uint32 {
	n := r.cachedCons - r.cachedProd
	if n >= want {
		return want
	}
	r.cachedCons = r.consumer.Load() + r.size
	n = r.cachedCons - r.cachedProd
	if n > want {
		n = want
	}
	return n
}

// submit publishes the slots filled since the last submit to the consumer.
// The store comes after the descriptor writes, so the kernel, which loads the
// producer index with acquire semantics, sees complete descriptors.
func (r *ring) submit() {
	r.producer.Store(r.cachedProd)
}

// available returns how many filled slots a consumer may read, up to want.
// It reloads the producer index only when the cached view is empty.
func (r *ring) available(want uint32) uint32 {
	n := r.cachedProd - r.cachedCons
	if n == 0 {
		r.cachedProd = r.producer.Load()
		n = r.cachedProd - r.cachedCons
	}
	if n > want {
		n = want
	}
	return n
}

// release hands n consumed slots back to the producer. The store comes after
// the descriptor reads, so the kernel cannot overwrite a slot still being read.
func (r *ring) release(n uint32) {
	r.cachedCons += n
	r.consumer.Store(r.cachedCons)
}

// needWakeup reports whether the kernel asked to be kicked (XDP_USE_NEED_WAKEUP).
func (r *ring) needWakeup() bool {
	return r.flags.Load()&unix.XDP_RING_NEED_WAKEUP != 0
}

// umem is the packet memory shared with the kernel: frames of frameSize
// bytes, registered on one socket. It is a memfd's pages mapped shared, so
// that another process given the descriptor maps the very pages the kernel
// has pinned (a hand-over to a new binary, xdp_inherit_linux.go); anonymous
// memory could not be reached from outside the process that mapped it.
type umem struct {
	mem       []byte
	fd        int // the memfd, -1 once closed
	frameSize uint32
	frames    uint32
	huge      bool
}

// newUMEM maps frames*frameSize bytes, on huge pages when the system has them
// reserved (fewer TLB misses at high packet rates) and on normal pages
// otherwise: a huge-page memfd fails with ENOMEM when no huge pages are free,
// which is the common case on machines nobody configured for it.
func newUMEM(frames, frameSize int) (*umem, error) {
	size := frames * frameSize
	const hugePage = 2 << 20
	if size%hugePage == 0 {
		if mem, fd, err := mapMemfd(size, true); err == nil {
			return &umem{mem: mem, fd: fd, frameSize: uint32(frameSize), frames: uint32(frames), huge: true}, nil
		}
	}
	mem, fd, err := mapMemfd(size, false)
	if err != nil {
		return nil, fmt.Errorf("%d bytes of UMEM: %w", size, err)
	}
	return &umem{mem: mem, fd: fd, frameSize: uint32(frameSize), frames: uint32(frames)}, nil
}

// mapMemfd creates a memfd of size bytes and maps it shared, populated.
func mapMemfd(size int, huge bool) ([]byte, int, error) {
	flags := unix.MFD_CLOEXEC
	if huge {
		flags |= unix.MFD_HUGETLB
	}
	fd, err := unix.MemfdCreate("ringdns-umem", flags)
	if err != nil {
		return nil, -1, fmt.Errorf("memfd_create: %w", err)
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		return nil, -1, fmt.Errorf("ftruncate memfd: %w", err)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		unix.Close(fd)
		return nil, -1, fmt.Errorf("mmap memfd: %w", err)
	}
	return mem, fd, nil
}

// register hands the UMEM to the socket fd (XDP_UMEM_REG). The kernel pins
// the pages, which counts against RLIMIT_MEMLOCK unless the process has
// CAP_IPC_LOCK.
func (u *umem) register(fd int) error {
	reg := unix.XDPUmemReg{
		// The kernel needs the user address of the mapping; the mapping is
		// not Go heap memory and never moves.
		Addr: uint64(uintptr(unsafe.Pointer(&u.mem[0]))),
		Len:  uint64(len(u.mem)),
		Size: u.frameSize,
	}
	return xskSetsockopt(fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg))
}

func (u *umem) unmap() {
	if u.mem != nil {
		unix.Munmap(u.mem)
		u.mem = nil
	}
	if u.fd >= 0 {
		unix.Close(u.fd)
		u.fd = -1
	}
}

// xskMmapOffsets reads XDP_MMAP_OFFSETS. Kernels since 5.4 report the flags
// offset too, which need-wakeup depends on; an older, shorter answer is refused.
func xskMmapOffsets(fd int) (unix.XDPMmapOffsets, error) {
	var off unix.XDPMmapOffsets
	n, err := xskGetsockopt(fd, unix.XDP_MMAP_OFFSETS, unsafe.Pointer(&off), unsafe.Sizeof(off))
	if err != nil {
		return off, err
	}
	if n != unsafe.Sizeof(off) {
		return off, fmt.Errorf("XDP_MMAP_OFFSETS returned %d bytes, want %d (kernel older than 5.4?)", n, unsafe.Sizeof(off))
	}
	return off, nil
}

// xskStatistics reads XDP_STATISTICS.
func xskStatistics(fd int) (unix.XDPStatistics, error) {
	var st unix.XDPStatistics
	_, err := xskGetsockopt(fd, unix.XDP_STATISTICS, unsafe.Pointer(&st), unsafe.Sizeof(st))
	return st, err
}

// xskZeroCopy reads XDP_OPTIONS and reports whether the bound socket runs in
// zero-copy mode.
func xskZeroCopy(fd int) (bool, error) {
	var o xskOptions
	if _, err := xskGetsockopt(fd, unix.XDP_OPTIONS, unsafe.Pointer(&o), unsafe.Sizeof(o)); err != nil {
		return false, err
	}
	return o.Flags&unix.XDP_OPTIONS_ZEROCOPY != 0, nil
}

// xskKick asks the kernel to transmit what the TX ring holds. sendto with no
// data is the documented wakeup; MSG_DONTWAIT keeps it from blocking.
func xskKick(fd int) unix.Errno {
	_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	return e
}

// xskKickFill asks the kernel to look at the fill ring again after it ran dry
// (the fill ring's NEED_WAKEUP flag); recvfrom with no buffer is the wakeup.
func xskKickFill(fd int) {
	unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
}

// frameFrom returns the UMEM bytes of the frame holding address addr, from addr
// to the frame's end. The slice aliases the mapping (no copy, no allocation).
func (u *umem) frameFrom(addr uint64) []byte {
	end := (addr &^ uint64(u.frameSize-1)) + uint64(u.frameSize)
	return u.mem[addr:end:end]
}
