package vmem

import (
	"errors"
	"runtime"
	"testing"
)

func TestReserve(t *testing.T) {
	const size = 64 << 20
	r, err := Reserve(size)
	if runtime.GOOS != "linux" {
		if !errors.Is(err, ErrUnsupported) {
			t.Fatalf("Reserve on %s: %v, want ErrUnsupported", runtime.GOOS, err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	n0 := Live()
	b := r.Bytes()
	if len(b) != 0 || cap(b) != size || r.Cap() != size {
		t.Fatalf("Bytes: len %d cap %d, Cap %d; want 0, %d, %d", len(b), cap(b), r.Cap(), size, size)
	}
	// Appends within the capacity write in place: the arena never moves.
	at := &b[:1][0]
	for i := 0; i < 3<<20; i++ {
		b = append(b, byte(i))
	}
	if &b[0] != at {
		t.Fatal("an append within the region's capacity moved the arena")
	}
	if b[1<<20] != 0 || b[1<<20+7] != 7 || cap(b) != size {
		t.Fatalf("read back %d %d, cap %d", b[1<<20], b[1<<20+7], cap(b))
	}
	if err := r.Release(); err != nil {
		t.Fatal(err)
	}
	if err := r.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	if Live() != n0-1 {
		t.Fatalf("Live after Release: %d, want %d", Live(), n0-1)
	}
	if _, err := Reserve(0); err == nil {
		t.Fatal("Reserve(0) succeeded")
	}
}
