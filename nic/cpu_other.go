//go:build !linux && !(freebsd && !386 && !arm)

package nic

import (
	"fmt"
	"runtime"
)

// CanPinThreads reports whether PinThread can bind a thread to a CPU on
// this system: Linux (sched_setaffinity) and FreeBSD (cpuset_setaffinity)
// can; macOS has no such call (its thread affinity tags are hints to keep
// threads together or apart, not CPUs), so workers run unpinned there.
const CanPinThreads = false

// PinThread fails on this system: it cannot bind a thread to a CPU.
func PinThread(cpu int) (restore func(), err error) {
	return nil, fmt.Errorf("nic: pinning a thread to CPU %d: %s cannot bind threads to CPUs; run the workers unpinned", cpu, runtime.GOOS)
}

// AllowedCPUs fails on this system, which has no affinity mask to read.
func AllowedCPUs() ([]int, error) {
	return nil, fmt.Errorf("nic: %s has no CPU affinity mask to read", runtime.GOOS)
}
