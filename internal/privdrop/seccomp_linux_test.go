//go:build linux

package privdrop

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSeccomp installs the filter in a child process (this test binary
// again): files and sockets still work, on every thread, while execve,
// bpf and setresuid fail with EPERM, and /proc shows the filter.
func TestSeccomp(t *testing.T) {
	if os.Getenv("PRIVDROP_SECCOMP_CHILD") != "" {
		seccompChild()
		return
	}
	if runtime.GOARCH != "amd64" {
		t.Skipf("skipping: the system call list is written for amd64, and this is %s", runtime.GOARCH)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSeccomp$")
	cmd.Env = append(os.Environ(), "PRIVDROP_SECCOMP_CHILD="+t.TempDir(), "GORACE=atexit_sleep_ms=0")
	out, err := cmd.CombinedOutput()
	t.Logf("child:\n%s", out)
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	for _, want := range []string{"file ok", "socket ok", "threads ok", "exec: operation not permitted",
		"bpf: operation not permitted", "setresuid: operation not permitted", "Seccomp 2"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the child did not say %q", want)
		}
	}
}

func seccompChild() {
	dir := os.Getenv("PRIVDROP_SECCOMP_CHILD")
	if err := Seccomp(); err != nil {
		fmt.Println("seccomp:", err)
		os.Exit(1)
	}
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path+".tmp", []byte("x"), 0o600); err == nil {
		if err := os.Rename(path+".tmp", path); err == nil {
			fmt.Println("file ok")
		}
	}
	if pc, err := net.ListenPacket("udp", "127.0.0.1:0"); err == nil {
		if _, err := pc.WriteTo([]byte("x"), pc.LocalAddr()); err == nil {
			fmt.Println("socket ok")
		}
		pc.Close()
	}
	// Goroutines on other threads make system calls too.
	done := make(chan error, 4)
	for range 4 {
		go func() {
			runtime.LockOSThread()
			_, err := os.Stat(path)
			done <- err
		}()
	}
	var errs []error
	for range 4 {
		errs = append(errs, <-done)
	}
	if errors.Join(errs...) == nil {
		fmt.Println("threads ok")
	}
	if err := exec.Command("/bin/true").Run(); err != nil {
		fmt.Println("exec:", errors.Unwrap(err))
	}
	if _, _, e := syscall.Syscall(unix.SYS_BPF, 0, 0, 0); e != 0 {
		fmt.Println("bpf:", e)
	}
	if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, ^uintptr(0), ^uintptr(0), ^uintptr(0)); e != 0 {
		fmt.Println("setresuid:", e)
	}
	if c, err := ReadStatus("/proc/self/status"); err == nil {
		fmt.Println("Seccomp", c.Seccomp)
	}
	os.Exit(0)
}
