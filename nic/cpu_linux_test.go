package nic

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func TestPinThread(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("pinning is only observable with 2 CPUs or more")
	}
	var before unix.CPUSet
	if err := unix.SchedGetaffinity(0, &before); err != nil {
		t.Fatal(err)
	}
	cpu := -1
	for i := 0; i < 1024; i++ {
		if before.IsSet(i) {
			cpu = i // the last allowed CPU
		}
	}
	errc := make(chan error, 1)
	go func() {
		restore, err := PinThread(cpu)
		if err != nil {
			errc <- err
			return
		}
		var now unix.CPUSet
		unix.SchedGetaffinity(0, &now)
		restore()
		var after unix.CPUSet
		unix.SchedGetaffinity(0, &after)
		switch {
		case now.Count() != 1 || !now.IsSet(cpu):
			errc <- fmt.Errorf("pinned set has %d CPUs, want only %d", now.Count(), cpu)
		case after != before:
			errc <- errors.New("restore did not bring back the thread's CPU set")
		default:
			errc <- nil
		}
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if _, err := PinThread(1 << 20); err == nil {
		t.Fatal("pinning to a CPU that does not exist succeeded")
	}
}

// TestAllowedCPUs checks AllowedCPUs against the affinity mask read
// directly.
func TestAllowedCPUs(t *testing.T) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	cpus, err := AllowedCPUs()
	if err != nil {
		t.Fatal(err)
	}
	if len(cpus) != set.Count() || !slices.IsSorted(cpus) {
		t.Fatalf("AllowedCPUs = %v, the mask has %d CPUs", cpus, set.Count())
	}
	for _, c := range cpus {
		if !set.IsSet(c) {
			t.Fatalf("AllowedCPUs = %v: CPU %d is not in the mask", cpus, c)
		}
	}
}
