//go:build linux && !amd64

package privdrop

// seccompAllowed is empty where no list has been written: Seccomp refuses.
var seccompAllowed []uintptr
