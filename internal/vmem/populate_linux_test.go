package vmem

import (
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// resident returns how many of the pages of b are resident.
func resident(t *testing.T, b []byte) int {
	t.Helper()
	vec := make([]byte, (len(b)+pageSize()-1)/pageSize())
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, addr, uintptr(len(b)), uintptr(unsafe.Pointer(unsafe.SliceData(vec)))); e != 0 {
		t.Fatal(e)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// TestPopulate checks that Populate maps the pages of the elements it is
// given, the first and last shared ones included, and no others, and
// leaves what they hold as it was.
func TestPopulate(t *testing.T) {
	const size = 4 << 20
	r, err := Reserve(size)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	// Small pages, so that what is mapped is what was asked for.
	_ = unix.Madvise(r.b, unix.MADV_NOHUGEPAGE)
	page := pageSize()
	type rec struct{ a, b uint32 }
	all := Slice[rec](r)[:size/8]
	if got := resident(t, r.b); got != 0 {
		t.Fatalf("%d pages resident in a region just reserved", got)
	}
	// Records 100..(3 pages and a half) in: pages 0 to 3.
	lo := 100
	hi := (3*page + page/2) / 8
	all[hi+1] = rec{7, 8} // page 3, past the slice
	s := all[lo:hi]
	s[0], s[len(s)-1] = rec{1, 2}, rec{3, 4}
	if got := resident(t, r.b); got != 2 {
		t.Fatalf("%d pages resident after writes to two, want 2", got)
	}
	if !Populate(s) {
		t.Fatal("Populate did not map the pages (MADV_POPULATE_WRITE needs Linux 5.14)")
	}
	if got := resident(t, r.b[:4*page]); got != 4 {
		t.Fatalf("%d of the slice's 4 pages resident after Populate", got)
	}
	if got := resident(t, r.b[4*page:]); got != 0 {
		t.Fatalf("%d pages past the slice's resident after Populate", got)
	}
	if s[0] != (rec{1, 2}) || s[len(s)-1] != (rec{3, 4}) || all[hi+1] != (rec{7, 8}) || s[1] != (rec{}) || all[0] != (rec{}) {
		t.Fatalf("Populate changed what the pages hold: %v %v %v %v %v", s[0], s[len(s)-1], all[hi+1], s[1], all[0])
	}
	if !Populate(s[:0]) || !Populate[rec](nil) {
		t.Fatal("Populate of no elements reported failure")
	}
}

// BenchmarkFresh times writing a 64 MiB array of memory the heap has just
// given back to the system (debug.FreeOSMemory), the way an update after
// the catalog's release writes its arrays: written whole, byte by byte
// ("write"); mapped by Populate first ("populate+write"); a byte a page
// first, as touched does, then written whole ("touch+write"); and both
// ("populate+touch+write"). The metric first-ms is the time to the end of
// the step before the whole write (0 for "write"). With
// RINGDNS_FRESH_WAIT=DURATION (say 3s) each array is made that long
// after the release, outside the time measured: a VM that reports its
// free memory to its host has handed the pages over by then, and its
// first write of each page costs the host's fault too.
func BenchmarkFresh(b *testing.B) {
	var wait time.Duration
	if v := os.Getenv("RINGDNS_FRESH_WAIT"); v != "" {
		var err error
		if wait, err = time.ParseDuration(v); err != nil {
			b.Fatalf("RINGDNS_FRESH_WAIT=%s: %v", v, err)
		}
	}
	const size = 64 << 20
	page := pageSize()
	for _, c := range []struct {
		name            string
		populate, touch bool
	}{
		{"write", false, false},
		{"populate+write", true, false},
		{"touch+write", false, true},
		{"populate+touch+write", true, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			var first time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				debug.FreeOSMemory()
				time.Sleep(wait)
				b.StartTimer()
				t0 := time.Now()
				a := make([]byte, size)
				if c.populate && !Populate(a) {
					b.Skip("Populate is not supported here")
				}
				if c.touch {
					for j := 0; j < size; j += page {
						a[j] = 0
					}
				}
				first += time.Since(t0)
				for j := range a {
					a[j] = byte(j)
				}
				runtime.KeepAlive(a)
			}
			b.ReportMetric(float64(first.Microseconds())/1000/float64(b.N), "first-ms")
		})
	}
}
