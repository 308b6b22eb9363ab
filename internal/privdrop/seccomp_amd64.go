//go:build linux && amd64

package privdrop

import "golang.org/x/sys/unix"

// seccompAllowed are the system calls a running ringdns makes on
// linux/amd64, as strace -f showed them serving over sockets and AF_XDP,
// reloading, transferring zones in and out, answering ringctl and the
// metrics endpoint and shutting down, with those of the same kind the Go
// runtime and standard library may make on another path (timers, pipes,
// renames of transferred copies). Absent on purpose: execve, ptrace,
// mount, bpf, the set*id calls, capset, seccomp itself, kexec, reboot,
// module loading, keyrings, and whatever else only set-up needs.
var seccompAllowed = []uintptr{
	// Memory and the runtime.
	unix.SYS_BRK, unix.SYS_MMAP, unix.SYS_MUNMAP, unix.SYS_MPROTECT, unix.SYS_MREMAP, unix.SYS_MADVISE,
	unix.SYS_MINCORE, unix.SYS_MEMBARRIER, unix.SYS_FUTEX, unix.SYS_SCHED_YIELD, unix.SYS_NANOSLEEP,
	unix.SYS_CLOCK_NANOSLEEP, unix.SYS_CLOCK_GETTIME, unix.SYS_CLOCK_GETRES, unix.SYS_GETTIMEOFDAY,
	unix.SYS_CLONE, unix.SYS_CLONE3, unix.SYS_EXIT, unix.SYS_EXIT_GROUP, unix.SYS_SET_TID_ADDRESS,
	unix.SYS_SET_ROBUST_LIST, unix.SYS_RSEQ, unix.SYS_ARCH_PRCTL, unix.SYS_PRCTL, unix.SYS_SIGALTSTACK,
	unix.SYS_RT_SIGACTION, unix.SYS_RT_SIGPROCMASK, unix.SYS_RT_SIGRETURN, unix.SYS_RESTART_SYSCALL,
	unix.SYS_TGKILL, unix.SYS_TKILL, unix.SYS_KILL, unix.SYS_GETPID, unix.SYS_GETTID, unix.SYS_GETPPID,
	unix.SYS_GETUID, unix.SYS_GETEUID, unix.SYS_GETGID, unix.SYS_GETEGID, unix.SYS_GETRESUID, unix.SYS_GETRESGID,
	unix.SYS_GETGROUPS, unix.SYS_CAPGET, unix.SYS_GETRANDOM, unix.SYS_UNAME, unix.SYS_SCHED_GETAFFINITY,
	unix.SYS_SCHED_SETAFFINITY, unix.SYS_GETRLIMIT, unix.SYS_PRLIMIT64, unix.SYS_SETRLIMIT, unix.SYS_UMASK,
	unix.SYS_TIMER_CREATE, unix.SYS_TIMER_SETTIME, unix.SYS_TIMER_DELETE, unix.SYS_SETITIMER,
	// Files: zone files, journals, transferred copies, catalog members.
	unix.SYS_READ, unix.SYS_WRITE, unix.SYS_PREAD64, unix.SYS_PWRITE64, unix.SYS_READV, unix.SYS_WRITEV,
	unix.SYS_OPEN, unix.SYS_OPENAT, unix.SYS_CLOSE, unix.SYS_LSEEK, unix.SYS_FSTAT, unix.SYS_STAT, unix.SYS_LSTAT,
	unix.SYS_NEWFSTATAT, unix.SYS_STATX, unix.SYS_STATFS, unix.SYS_FSTATFS, unix.SYS_ACCESS, unix.SYS_FACCESSAT,
	unix.SYS_FACCESSAT2, unix.SYS_GETDENTS64, unix.SYS_READLINKAT, unix.SYS_GETCWD, unix.SYS_FCNTL, unix.SYS_DUP,
	unix.SYS_DUP3, unix.SYS_PIPE2, unix.SYS_FSYNC, unix.SYS_FDATASYNC, unix.SYS_FTRUNCATE, unix.SYS_RENAME,
	unix.SYS_RENAMEAT, unix.SYS_RENAMEAT2, unix.SYS_UNLINK, unix.SYS_UNLINKAT, unix.SYS_MKDIR, unix.SYS_MKDIRAT,
	unix.SYS_FCHMOD, unix.SYS_FCHMODAT, unix.SYS_UTIMENSAT, unix.SYS_IOCTL, unix.SYS_SENDFILE, unix.SYS_SPLICE,
	unix.SYS_COPY_FILE_RANGE,
	// Sockets and waiting on them: UDP and TCP service, AF_XDP rings
	// (poll, sendto for the TX wake-up, getsockopt for statistics),
	// transfers, NOTIFY, the control socket and the metrics endpoint.
	unix.SYS_SOCKET, unix.SYS_BIND, unix.SYS_LISTEN, unix.SYS_ACCEPT4, unix.SYS_CONNECT, unix.SYS_SHUTDOWN,
	unix.SYS_GETSOCKNAME, unix.SYS_GETPEERNAME, unix.SYS_SETSOCKOPT, unix.SYS_GETSOCKOPT, unix.SYS_SENDTO,
	unix.SYS_RECVFROM, unix.SYS_SENDMSG, unix.SYS_RECVMSG, unix.SYS_SENDMMSG, unix.SYS_RECVMMSG,
	unix.SYS_POLL, unix.SYS_PPOLL, unix.SYS_EPOLL_CREATE1, unix.SYS_EPOLL_CTL, unix.SYS_EPOLL_WAIT,
	unix.SYS_EPOLL_PWAIT, unix.SYS_EPOLL_PWAIT2, unix.SYS_EVENTFD2,
}
