//go:build freebsd && !386 && !arm

package nic

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// CanPinThreads reports whether PinThread can bind a thread to a CPU on
// this system: Linux (sched_setaffinity) and FreeBSD (cpuset_setaffinity)
// can; macOS has no such call.
const CanPinThreads = true

// cpuset_getaffinity and cpuset_setaffinity arguments (sys/cpuset.h):
// the actual mask (CPU_LEVEL_WHICH) of a thread or a process, id -1 meaning
// the calling one. golang.org/x/sys/unix has the system call numbers but no
// wrapper; the Go runtime reads the process's mask the same way.
const (
	cpuLevelWhich = 3
	cpuWhichTID   = 1
	cpuWhichPID   = 2
	cpuCurrent    = ^uintptr(0) // id_t -1, a 64-bit argument on the 64-bit systems this file builds for
)

// cpuMask returns an empty mask of the size the kernel takes: one bit per
// CPU of kern.smp.maxcpus (as cpuset_t), in longs, the words of FreeBSD's
// bitsets.
func cpuMask() []uint64 {
	maxcpus, err := unix.SysctlUint32("kern.smp.maxcpus")
	if err != nil || maxcpus == 0 {
		maxcpus = 256 // MAXCPU of FreeBSD 13 on amd64
	}
	return make([]uint64, (maxcpus+63)/64)
}

// cpuAffinity gets (get true) or sets the mask of the calling thread or
// process (which).
func cpuAffinity(get bool, which uintptr, mask []uint64) error {
	trap := uintptr(unix.SYS_CPUSET_SETAFFINITY)
	if get {
		trap = unix.SYS_CPUSET_GETAFFINITY
	}
	// The mask is heap memory the kernel reads or writes during the call;
	// the conversion in the argument list keeps it alive until the call
	// returns.
	_, _, e := unix.Syscall6(trap, cpuLevelWhich, which, cpuCurrent, uintptr(len(mask)*8), uintptr(unsafe.Pointer(&mask[0])), 0)
	if e != 0 {
		return e
	}
	return nil
}

// PinThread locks the calling goroutine to its OS thread and binds that
// thread to cpu, as a worker serving a queue or a socket wants. The
// returned function restores the thread's previous CPU set and unlocks it,
// so that a thread handed back to the runtime does not stay pinned.
func PinThread(cpu int) (restore func(), err error) {
	old, set := cpuMask(), cpuMask()
	if cpu < 0 || cpu >= len(set)*64 {
		return nil, fmt.Errorf("nic: pinning the thread to CPU %d: this system has at most %d CPUs", cpu, len(set)*64)
	}
	runtime.LockOSThread()
	if err := cpuAffinity(true, cpuWhichTID, old); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("nic: reading the thread's CPU set: %w", err)
	}
	set[cpu/64] = 1 << (cpu % 64)
	if err := cpuAffinity(false, cpuWhichTID, set); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("nic: pinning the thread to CPU %d (is it online and allowed?): %w", cpu, err)
	}
	return func() {
		// If the old set cannot be restored the thread must not go back to
		// the runtime pinned; exiting the goroutine locked would end the
		// thread, but the caller continues on it, so keep it locked.
		if cpuAffinity(false, cpuWhichTID, old) == nil {
			runtime.UnlockOSThread()
		}
	}, nil
}

// AllowedCPUs returns the CPUs the process may run on (its cpuset mask),
// in increasing order.
func AllowedCPUs() ([]int, error) {
	mask := cpuMask()
	if err := cpuAffinity(true, cpuWhichPID, mask); err != nil {
		return nil, fmt.Errorf("nic: reading the process's CPU set: %w", err)
	}
	var cpus []int
	for i := 0; i < len(mask)*64; i++ {
		if mask[i/64]&(1<<(i%64)) != 0 {
			cpus = append(cpus, i)
		}
	}
	return cpus, nil
}
