package zone

import (
	"testing"
	"unsafe" // breaks "unsafe only in nic", in a test file
)

func TestSize(t *testing.T) {
	if unsafe.Sizeof(Zone{}) == 0 {
		t.Fatal("empty")
	}
}
