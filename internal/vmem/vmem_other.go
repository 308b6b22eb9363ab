//go:build !linux

package vmem

func reserve(int) ([]byte, error) { return nil, ErrUnsupported }

func settle([]byte) {}

func release([]byte) error { return nil }

func trim([]byte) {}

func pageSize() int { return 4096 }

func populate(addr, size uintptr) bool { return false }
