package vmem

import (
	"fmt"

	"golang.org/x/sys/unix"
)

func reserve(size int) ([]byte, error) {
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, fmt.Errorf("vmem: reserving %d bytes: %w", size, err)
	}
	// Advice only: where the system gives huge pages to no mapping, or to
	// every one, it changes nothing, and an arena works without it.
	_ = unix.Madvise(b, unix.MADV_HUGEPAGE)
	return b, nil
}

func settle(b []byte) {
	_ = unix.Madvise(b, unix.MADV_NOHUGEPAGE)
}

func release(b []byte) error {
	if err := unix.Munmap(b); err != nil {
		return fmt.Errorf("vmem: releasing %d bytes: %w", len(b), err)
	}
	return nil
}

func trim(b []byte) {
	// Advice only: what it fails to give back stays resident, as before.
	_ = unix.Madvise(b, unix.MADV_DONTNEED)
}

func pageSize() int { return unix.Getpagesize() }

func populate(addr, size uintptr) bool {
	_, _, e := unix.Syscall(unix.SYS_MADVISE, addr, size, unix.MADV_POPULATE_WRITE)
	return e == 0
}
