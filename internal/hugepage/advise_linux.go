package hugepage

import (
	"bufio"
	"bytes"
	"os"
	"reflect"
	"runtime"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

var madviseMode = sync.OnceValue(func() bool {
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	return err == nil && bytes.Contains(b, []byte("[madvise]"))
})

// adviseHeap advises (on) or withdraws the advice from (off) the writable
// mappings of the Go heap: the run of adjacent anonymous mappings that
// holds an object just allocated, which is the heap's reservation, mapped
// and not (the runtime maps it in pieces as the heap grows, each its own
// mapping until advised alike).
func adviseHeap(on bool) {
	probe := make([]byte, 64<<10)
	// The address only, read without package unsafe (which this
	// project keeps to nic): reflect gives a slice's array as a number.
	at := reflect.ValueOf(probe).Pointer()
	run, ok := heapMappings(at)
	runtime.KeepAlive(probe)
	if !ok {
		return
	}
	advice := unix.MADV_HUGEPAGE
	if !on {
		advice = unix.MADV_NOHUGEPAGE
	}
	for _, m := range run {
		if m.writable {
			// Addresses, not pointers: the advice is for the pages of
			// the heap's mappings whatever objects they hold, and no Go
			// pointer is made of them.
			_, _, _ = unix.Syscall(unix.SYS_MADVISE, m.lo, m.hi-m.lo, uintptr(advice))
		}
	}
}

// mapping is one line of /proc/self/maps.
type mapping struct {
	lo, hi   uintptr
	writable bool
}

// heapMappings returns the run of adjacent anonymous mappings of the
// process that holds the address at.
func heapMappings(at uintptr) ([]mapping, bool) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return nil, false
	}
	defer f.Close()
	return anonymousRun(bufio.NewScanner(f), at)
}

// anonymousRun reads lines of /proc/PID/maps from sc and returns the run
// of adjacent anonymous mappings that holds the address at.
func anonymousRun(sc *bufio.Scanner, at uintptr) ([]mapping, bool) {
	var run []mapping
	found := false
	for sc.Scan() {
		// ADDR-ADDR PERMS OFFSET DEV INODE [PATH]
		fields := bytes.Fields(sc.Bytes())
		var m mapping
		anon := false
		if len(fields) == 5 && string(fields[4]) == "0" {
			lo, hi, ok := bytes.Cut(fields[0], []byte("-"))
			l, err1 := strconv.ParseUint(string(lo), 16, 64)
			h, err2 := strconv.ParseUint(string(hi), 16, 64)
			if ok && err1 == nil && err2 == nil {
				m = mapping{lo: uintptr(l), hi: uintptr(h), writable: bytes.HasPrefix(fields[1], []byte("rw"))}
				anon = true
			}
		}
		if !anon || len(run) > 0 && run[len(run)-1].hi != m.lo {
			if found {
				break
			}
			run = run[:0]
			if !anon {
				continue
			}
		}
		run = append(run, m)
		if m.lo <= at && at < m.hi {
			found = true
		}
	}
	return run, found
}
