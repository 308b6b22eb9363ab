package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ringdns/ringdns/internal/privdrop"
)

// The new binary of an upgrade starts, loads its zones and builds its
// server while the old process's workers still serve, on the same CPUs.
// On a machine whose CPUs are over-committed that start takes CPU from the
// old workers, whose rings then overflow: a race build's start of 1.6 s on
// this 2-vCPU VM cost 18,310 queries once. So the new binary lowers its
// own CPU priority as soon as it runs (startNiceStep above the old
// process's nice) and returns to the old process's nice once it has
// loaded, before its workers start: what it does until then is done with
// the CPU the old workers leave. Going back to a lower nice value needs
// CAP_SYS_NICE or an RLIMIT_NICE that allows it; a process that has neither
// (one that runs as server.user without capabilities) does not ask the new
// binary to lower itself, which then starts at its own nice, as before.
//
// Nice values are per thread, and a thread takes its creator's: the new
// process sets every thread it has (setAllNice), and the threads its
// runtime makes later follow. The old process does not lower a thread of
// its own to fork the new one at that priority: the runtime makes threads
// from whichever thread it runs on, and one of them could be left lowered
// for good.

// capSysNice is CAP_SYS_NICE.
const capSysNice = privdrop.Cap(23)

// threadNice reads the calling thread's nice value.
func threadNice() (int, error) {
	b, err := os.ReadFile("/proc/thread-self/stat")
	if err != nil {
		return 0, err
	}
	return statNice(string(b))
}

// statNice reads the nice field (the 19th) of a /proc stat line; the
// command name, in parentheses, may hold spaces.
func statNice(stat string) (int, error) {
	i := strings.LastIndexByte(stat, ')')
	f := strings.Fields(stat[i+1:])
	// f[0] is the 3rd field (state); nice is the 19th.
	if i < 0 || len(f) < 17 {
		return 0, fmt.Errorf("unexpected stat line %q", stat)
	}
	return strconv.Atoi(f[16])
}

// canRenice reports whether a process with our credentials may set its
// nice back to nice after raising it: with CAP_SYS_NICE, or an
// RLIMIT_NICE of at least 20 - nice.
func canRenice(nice int) bool {
	if c, err := privdrop.ReadStatus("/proc/self/status"); err == nil && c.Eff.Has(capSysNice) {
		return true
	}
	var rl unix.Rlimit
	return unix.Getrlimit(unix.RLIMIT_NICE, &rl) == nil && rl.Cur >= uint64(20-nice)
}

// niceEnv is the environment entry that asks the new binary of an upgrade
// to start lowered and return to this process's nice once loaded, or nil
// when it could not return (canRenice).
func niceEnv() []string {
	nice, err := threadNice()
	if err != nil || nice+startNiceStep > 19 || !canRenice(nice) {
		return nil
	}
	return []string{envNice + "=" + strconv.Itoa(nice)}
}

// setAllNice sets every thread of this process to nice. Threads made
// meanwhile take the nice of the thread that makes them, so the threads
// are gone over until a pass finds none it has not set.
func setAllNice(nice int) error {
	done := map[int]bool{}
	for pass := 0; pass < 10; pass++ {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		changed := false
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil || done[tid] {
				continue
			}
			if err := unix.Setpriority(unix.PRIO_PROCESS, tid, nice); err != nil && err != unix.ESRCH {
				return fmt.Errorf("setting thread %d back to nice %d: %w", tid, nice, err)
			}
			done[tid] = true
			changed = true
		}
		if !changed {
			return nil
		}
	}
	return nil
}

// lowerAfterHandover lowers every thread of the old process of an upgrade,
// once it has handed over, by startNiceStep (to 19 at most): what it still
// does then is done with the CPU the new workers leave. Raising a nice
// value needs no privilege.
func lowerAfterHandover() error {
	n, err := threadNice()
	if err != nil {
		return err
	}
	return setAllNice(min(n+startNiceStep, 19))
}
