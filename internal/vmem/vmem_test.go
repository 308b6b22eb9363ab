package vmem

import (
	"errors"
	"reflect"
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
	b := Slice[byte](r)
	if len(b) != 0 || cap(b) != size {
		t.Fatalf("Slice[byte]: len %d cap %d, want 0, %d", len(b), cap(b), size)
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

func TestSlice(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("regions are reserved on Linux only")
	}
	type rec struct {
		A uint32
		B uint16
		C [3]uint8
	}
	r, err := Reserve(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	s := Slice[rec](r)
	if size := int(reflect.TypeFor[rec]().Size()); len(s) != 0 || cap(s) != (1<<20)/size {
		t.Fatalf("Slice: len %d cap %d, want 0, %d", len(s), cap(s), (1<<20)/size)
	}
	s = append(s, rec{A: 7, B: 8, C: [3]uint8{1, 2, 3}})
	// A second view reads the record back from the region's memory.
	if got := Slice[rec](r)[:1][0]; got != s[0] || r.b[6] != 1 || r.b[8] != 3 {
		t.Fatalf("read back %+v, bytes % x", got, r.b[:12])
	}
	for _, f := range []func(){
		func() { Slice[*int](r) },
		func() { Slice[struct{ s []byte }](r) },
		func() { Slice[string](r) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("Slice of a type that holds pointers did not panic")
				}
			}()
			f()
		}()
	}
}

// TestTrim: Trim gives back the whole pages of a region past its arena,
// which then read as zero, and keeps the arena's bytes and the rest of
// its last page; a slice that is not the region's arena is left alone.
func TestTrim(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("regions are made on Linux only")
	}
	const size = 8 << 20
	r, err := Reserve(size)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	type rec struct{ a, b uint32 }
	s := Slice[rec](r)
	all := s[:cap(s)]
	for i := range all {
		all[i] = rec{uint32(i), 1}
	}
	page := pageSize()
	n := (3<<20+100)/8 + 1 // ends inside a page
	s = s[:n]
	if Trim(r, make([]rec, n)) || Trim(r, s[1:]) {
		t.Fatal("Trim took a slice that is not the region's arena")
	}
	if all[n] != (rec{uint32(n), 1}) {
		t.Fatal("a foreign slice's Trim changed the region")
	}
	if !Trim(r, s) {
		t.Fatal("Trim did not take the region's arena")
	}
	for i := range s {
		if s[i] != (rec{uint32(i), 1}) {
			t.Fatalf("arena record %d is %v after Trim", i, s[i])
		}
	}
	firstFree := (n*8 + page - 1) / page * page / 8
	for i := n; i < firstFree; i++ {
		if all[i] != (rec{uint32(i), 1}) {
			t.Fatalf("record %d, in the arena's last page, is %v after Trim", i, all[i])
		}
	}
	for i := firstFree; i < len(all); i++ {
		if all[i] != (rec{}) {
			t.Fatalf("record %d, past the arena's last page, is %v after Trim, want zero", i, all[i])
		}
	}
}
