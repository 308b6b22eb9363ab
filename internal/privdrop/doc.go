// Package privdrop takes away what ringdns no longer needs once its sockets
// are open and its XDP program attached: it switches the process to an
// unprivileged user and group (Lookup, Switch) and keeps only the
// capabilities named, on every thread.
//
// Every thread matters on Linux. User and group ids, capabilities, the
// bounding set, the keep-capabilities flag and no_new_privs belong to each
// thread, not to the process, and a Go program runs on many threads. Go
// changes the ids of all threads at once (since Go 1.16, syscall.Setresuid
// and its kin), and syscall.AllThreadsSyscall runs the prctl and capset
// calls on every thread too. AllThreadsSyscall is not available in a binary
// that links cgo (the race detector does, and so does the standard
// library's net package in a default build with a C compiler): there the C
// library still changes the ids on every thread, and the kernel then drops
// every capability of each one, but nothing can keep some or reduce the
// capabilities of a process that does not change its user. Switch refuses
// what it cannot do on every thread, and Threads checks the result from
// /proc/self/task.
//
// Seccomp then restricts the running daemon to the system calls it makes
// while serving (server.seccomp).
//
// The package uses unsafe for system calls that take pointers as uintptr
// arguments only: capset's header and data through AllThreadsSyscall, and
// seccomp's filter program.
package privdrop
