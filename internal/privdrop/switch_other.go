//go:build !linux

package privdrop

import (
	"errors"
	"fmt"
	"syscall"
)

// ErrNotAllThreads is Linux's; elsewhere ids are the process's.
var ErrNotAllThreads = errors.New("capabilities are Linux's")

// AllThreads reports true: on FreeBSD and macOS the ids are the process's,
// not each thread's, and there are no capabilities to keep.
func AllThreads() bool { return true }

// Result says what Switch did; see the Linux version.
type Result struct {
	Kept, Missing CapSet
	Bounded       bool
	AllThreads    bool
}

// Switch switches the process to id. There are no capabilities here:
// keep must be empty.
func Switch(id *Identity, keep CapSet) (Result, error) {
	res := Result{AllThreads: true}
	if keep != 0 {
		return res, fmt.Errorf("keeping %s: capabilities are Linux's", keep)
	}
	if id == nil {
		return res, nil
	}
	if syscall.Geteuid() != 0 {
		if syscall.Getuid() == id.UID && syscall.Getgid() == id.GID {
			return res, nil
		}
		return res, fmt.Errorf("switching to user %s: only root may; start ringdns as root, or as that user and without server.user", id.User)
	}
	if err := syscall.Setgroups(id.Groups); err != nil {
		return res, fmt.Errorf("setgroups %v: %w", id.Groups, err)
	}
	if err := syscall.Setgid(id.GID); err != nil {
		return res, fmt.Errorf("setgid %d: %w", id.GID, err)
	}
	if err := syscall.Setuid(id.UID); err != nil {
		return res, fmt.Errorf("setuid %d: %w", id.UID, err)
	}
	return res, nil
}

// Permitted returns nothing: capabilities are Linux's.
func Permitted() (CapSet, error) { return 0, nil }
