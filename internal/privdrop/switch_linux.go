//go:build linux

package privdrop

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrNotAllThreads reports a change Switch cannot make on every thread of
// a binary that links cgo (see the package documentation).
var ErrNotAllThreads = errors.New("this ringdns links cgo, so its capabilities cannot be changed on every thread; build it with CGO_ENABLED=0")

// AllThreads reports whether prctl and capset can be run on every thread
// of this process: false in a binary that links cgo.
func AllThreads() bool {
	_, _, e := syscall.AllThreadsSyscall(syscall.SYS_GETPID, 0, 0, 0)
	return e == 0
}

// Result says what Switch did.
type Result struct {
	// Kept are the capabilities kept; Missing those asked for that the
	// process did not have to begin with, so could not keep.
	Kept, Missing CapSet
	// Bounded is set when the bounding set was reduced to Kept (which
	// needs CAP_SETPCAP: a process started as root has it, one started
	// by systemd with ambient capabilities has not, and systemd's
	// CapabilityBoundingSet bounds it instead).
	Bounded bool
	// AllThreads is set when the prctl and capset calls ran on every
	// thread; when not (cgo), only the ids were changed, through the C
	// library, and the kernel cleared every capability of every thread.
	AllThreads bool
}

// lastCap is the highest capability the kernel knows.
func lastCap() Cap {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n >= 0 && n < 64 {
			return Cap(n)
		}
	}
	return CapBPF + 1
}

// capget reads the calling thread's effective, permitted and inheritable
// sets.
func capget() (eff, prm, inh CapSet, err error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return 0, 0, 0, fmt.Errorf("capget: %w", err)
	}
	join := func(lo, hi uint32) CapSet { return CapSet(lo) | CapSet(hi)<<32 }
	return join(data[0].Effective, data[1].Effective), join(data[0].Permitted, data[1].Permitted),
		join(data[0].Inheritable, data[1].Inheritable), nil
}

// allThreads runs a system call on every thread.
func allThreads(what string, trap, a1, a2, a3 uintptr) error {
	if _, _, e := syscall.AllThreadsSyscall(trap, a1, a2, a3); e != 0 {
		return fmt.Errorf("%s on every thread: %w", what, e)
	}
	return nil
}

// capsetAll sets the effective and permitted sets of every thread to keep
// and the inheritable set to nothing.
func capsetAll(keep CapSet) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	data[0].Effective, data[0].Permitted = uint32(keep), uint32(keep)
	data[1].Effective, data[1].Permitted = uint32(keep>>32), uint32(keep>>32)
	// The kernel only reads the two structs during the call, and they stay
	// alive (on this goroutine's stack or heap) until it returns.
	return allThreads("capset", unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0)
}

// Switch switches the process to id, when id is not nil, and keeps only
// the capabilities in keep, on every thread: in the effective and
// permitted sets, with the inheritable and ambient sets emptied, the
// bounding set reduced to keep when the process may (CAP_SETPCAP), and
// no_new_privs set so that nothing it might execute could gain more. It
// then checks every thread in /proc/self/task. Capabilities in keep the
// process does not have are reported in Result.Missing.
//
// Changing to id takes CAP_SETUID and CAP_SETGID (root has them); a
// process that already runs as id's uid and gid (started by systemd with
// User= and Group=) changes only its capabilities.
func Switch(id *Identity, keep CapSet) (Result, error) {
	var res Result
	eff, prm, _, err := capget()
	if err != nil {
		return res, err
	}
	res.Missing = keep &^ prm
	keep &= prm
	res.Kept = keep
	var ruid, euid, suid, rgid, egid, sgid int
	ruid, euid, suid = unix.Getresuid()
	rgid, egid, sgid = unix.Getresgid()
	changeIDs := id != nil && (ruid != id.UID || euid != id.UID || suid != id.UID ||
		rgid != id.GID || egid != id.GID || sgid != id.GID)
	if changeIDs && (!eff.Has(CapSetUID) || !eff.Has(CapSetGID)) {
		return res, fmt.Errorf("switching to user %s: ringdns runs as uid %d without CAP_SETUID and CAP_SETGID; start it as root, or as that user and without server.user",
			id.User, euid)
	}
	changeGroups := changeIDs
	if id != nil && !changeIDs && eff.Has(CapSetGID) {
		have, _ := syscall.Getgroups()
		slices.Sort(have)
		changeGroups = !slices.Equal(have, id.Groups)
	}

	res.AllThreads = AllThreads()
	if !res.AllThreads {
		// The C library changes the ids on every thread; when all three
		// uids leave 0, the kernel clears every capability of each one.
		// That is all that can be done here.
		fromRoot := ruid == 0 || euid == 0 || suid == 0
		switch {
		case keep == prm && !changeIDs && !changeGroups:
			// Nothing to take away.
		case changeIDs && keep == 0 && fromRoot:
			if err := setIDs(id, true); err != nil {
				return res, err
			}
		default:
			return res, fmt.Errorf("giving up %s (keeping %s): %w", prm&^keep, keep, ErrNotAllThreads)
		}
		return res, checkThreads(id, keep, false)
	}

	if eff.Has(CapSetPCap) {
		for c := Cap(0); c <= lastCap(); c++ {
			if !keep.Has(c) {
				if err := allThreads("prctl(PR_CAPBSET_DROP, "+c.String()+")", unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0); err != nil {
					return res, err
				}
			}
		}
		res.Bounded = true
	}
	keepCaps := changeIDs && keep != 0
	if keepCaps {
		// Without it the change of uid below would clear the permitted set,
		// and what is to be kept could not be had back.
		if err := allThreads("prctl(PR_SET_KEEPCAPS, 1)", unix.SYS_PRCTL, unix.PR_SET_KEEPCAPS, 1, 0); err != nil {
			return res, err
		}
	}
	if changeIDs || changeGroups {
		if err := setIDs(id, changeIDs); err != nil {
			return res, err
		}
	}
	if err := capsetAll(keep); err != nil {
		return res, err
	}
	if err := allThreads("prctl(PR_CAP_AMBIENT_CLEAR_ALL)", unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0); err != nil {
		return res, err
	}
	if keepCaps {
		if err := allThreads("prctl(PR_SET_KEEPCAPS, 0)", unix.SYS_PRCTL, unix.PR_SET_KEEPCAPS, 0, 0); err != nil {
			return res, err
		}
	}
	if err := allThreads("prctl(PR_SET_NO_NEW_PRIVS, 1)", unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); err != nil {
		return res, err
	}
	return res, checkThreads(id, keep, res.Bounded)
}

// setIDs sets the supplementary groups, then (when ids is set) the group
// and the user ids. Go makes each call on every thread (through the C
// library in a cgo binary).
func setIDs(id *Identity, ids bool) error {
	if err := syscall.Setgroups(id.Groups); err != nil {
		return fmt.Errorf("setgroups %v: %w", id.Groups, err)
	}
	if !ids {
		return nil
	}
	if err := syscall.Setresgid(id.GID, id.GID, id.GID); err != nil {
		return fmt.Errorf("setresgid %d: %w", id.GID, err)
	}
	if err := syscall.Setresuid(id.UID, id.UID, id.UID); err != nil {
		return fmt.Errorf("setresuid %d: %w", id.UID, err)
	}
	return nil
}

// checkThreads checks every thread's credentials: id's ids (when id is not
// nil), keep in the effective and permitted sets, nothing inheritable or
// ambient, and, when bounded, keep as the bounding set.
func checkThreads(id *Identity, keep CapSet, bounded bool) error {
	tasks, err := filepath.Glob("/proc/self/task/*/status")
	if err != nil || len(tasks) == 0 {
		return fmt.Errorf("checking the threads' credentials: no /proc/self/task (%v)", err)
	}
	for _, path := range tasks {
		c, err := ReadStatus(path)
		if errors.Is(err, os.ErrNotExist) {
			continue // the thread has exited
		}
		if err != nil {
			return fmt.Errorf("checking the threads' credentials: %w", err)
		}
		bad := c.Eff != keep || c.Prm != keep || c.Amb != 0 || bounded && c.Bnd != keep
		if id != nil {
			for i := 0; i < 4; i++ {
				bad = bad || c.UID[i] != id.UID || c.GID[i] != id.GID
			}
		}
		if bad {
			want := fmt.Sprintf("CapEff and CapPrm %s", keep)
			if id != nil {
				want += fmt.Sprintf(", uid %d, gid %d", id.UID, id.GID)
			}
			return fmt.Errorf("after the switch, thread %s has %s; want %s", filepath.Base(filepath.Dir(path)), c, want)
		}
	}
	return nil
}

// Permitted returns the calling thread's permitted capabilities, which
// are every thread's until Switch.
func Permitted() (CapSet, error) {
	_, prm, _, err := capget()
	return prm, err
}
