//go:build linux

package privdrop

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrSeccompArch reports an architecture whose system call list ringdns
// does not have.
var ErrSeccompArch = errors.New("server.seccomp: the system call list is written for linux/amd64 only")

// Seccomp installs a filter on every thread (SECCOMP_FILTER_FLAG_TSYNC)
// that allows the system calls a running ringdns makes (seccompAllowed)
// and fails every other with EPERM, so that code taken over after set-up
// cannot execute a program, mount, trace, load BPF or change its ids or
// capabilities. A call of another architecture's ABI (x32, i386) kills the
// process. It needs no_new_privs, which Switch sets; the filter cannot be
// removed.
func Seccomp() error {
	if len(seccompAllowed) == 0 || runtime.GOARCH != "amd64" {
		return ErrSeccompArch
	}
	prog := seccompProgram(seccompAllowed)
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("server.seccomp: prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	// The kernel copies the program during the call.
	r, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC,
		uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if e != 0 {
		return fmt.Errorf("server.seccomp: seccomp(SECCOMP_SET_MODE_FILTER): %w", e)
	}
	if r != 0 {
		return fmt.Errorf("server.seccomp: thread %d could not take the filter", r)
	}
	return nil
}

// Offsets in struct seccomp_data and the values the filter returns.
const (
	seccompDataNr   = 0
	seccompDataArch = 4
	auditArchX86_64 = 0xc000003e
	x32SyscallBit   = 0x40000000
	retAllow        = unix.SECCOMP_RET_ALLOW
	retErrnoEPERM   = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	retKillProcess  = unix.SECCOMP_RET_KILL_PROCESS
)

// seccompProgram builds the classic BPF filter: check the architecture,
// refuse x32 numbers, allow each listed call, and fail the rest.
func seccompProgram(allowed []uintptr) []unix.SockFilter {
	stmt := func(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
	jump := func(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
		return unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
	}
	p := []unix.SockFilter{
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, seccompDataArch),
		jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, auditArchX86_64, 1, 0),
		stmt(unix.BPF_RET|unix.BPF_K, retKillProcess),
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, seccompDataNr),
		jump(unix.BPF_JMP|unix.BPF_JGE|unix.BPF_K, x32SyscallBit, 0, 1),
		stmt(unix.BPF_RET|unix.BPF_K, retKillProcess),
	}
	for _, nr := range allowed {
		p = append(p,
			jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, uint32(nr), 0, 1),
			stmt(unix.BPF_RET|unix.BPF_K, retAllow))
	}
	return append(p, stmt(unix.BPF_RET|unix.BPF_K, retErrnoEPERM))
}
