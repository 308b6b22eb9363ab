// Package vmem reserves address space for byte arenas that grow in place.
//
// A zone's largest arrays are byte arenas that its updates append to (the
// prepared wire of its answers and proofs, its names). On the Go heap an
// arena that runs out of room is copied into a larger one; for a TLD that
// is hundreds of megabytes copied, and the old copy stays in the heap's
// free memory after the versions that read it are gone. A Region instead
// reserves the address space an arena may grow to, and the system gives
// it memory page by page as it is written: the arena never moves, and
// what was never written never becomes resident.
//
// Reserve maps anonymous memory without reserving swap for it
// (MAP_NORESERVE) and advises it for transparent huge pages: an arena is
// written whole at a load and released whole, never given back page by
// page. On systems other than Linux Reserve returns ErrUnsupported, and
// callers keep their arenas on the Go heap.
//
// The memory of a Region is not the Go heap's: the garbage collector
// neither scans it nor knows who reads it. Its owner must release it only
// once nothing reads it any more (zone releases the regions of a line of
// versions when the last version is collected, and later still).
package vmem
