//go:build !linux

package hugepage

func madviseMode() bool  { return false }
func adviseHeap(on bool) {}
