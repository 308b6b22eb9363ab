//go:build unix

package dataplane

import (
	"syscall"
	"time"
)

// processCPU is the CPU time the process has spent, all its threads (the
// garbage collector's included), in user and system mode. The update
// benchmarks report it beside the wall time: on a shared machine the
// wall time of an update includes the time other processes held the
// cores.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
