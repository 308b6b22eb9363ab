package nic

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// CanPinThreads reports whether PinThread can bind a thread to a CPU on
// this system: Linux (sched_setaffinity) and FreeBSD (cpuset_setaffinity)
// can; macOS has no such call.
const CanPinThreads = true

// PinThread locks the calling goroutine to its OS thread and binds that
// thread to cpu, as a worker serving a queue or a socket wants. The
// returned function restores the thread's previous CPU set and unlocks it,
// so that a thread handed back to the runtime does not stay pinned.
func PinThread(cpu int) (restore func(), err error) {
	runtime.LockOSThread()
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("nic: reading the thread's CPU set: %w", err)
	}
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("nic: pinning the thread to CPU %d (is it online and allowed?): %w", cpu, err)
	}
	return func() {
		// If the old set cannot be restored the thread must not go back to
		// the runtime pinned; exiting the goroutine locked would end the
		// thread, but the caller continues on it, so keep it locked.
		if unix.SchedSetaffinity(0, &old) == nil {
			runtime.UnlockOSThread()
		}
	}, nil
}

// AllowedCPUs returns the CPUs the process may run on (its affinity mask),
// in increasing order.
func AllowedCPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("nic: reading the process's CPU set: %w", err)
	}
	var cpus []int
	for i := 0; i < len(set)*64; i++ {
		if set.IsSet(i) {
			cpus = append(cpus, i)
		}
	}
	return cpus, nil
}
