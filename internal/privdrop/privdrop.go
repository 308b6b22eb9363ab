package privdrop

import (
	"errors"
	"fmt"
	"os/user"
	"sort"
	"strconv"
	"strings"
)

// Identity is the user, group and supplementary groups a process switches
// to.
type Identity struct {
	User, Group string // as configured, for messages
	UID, GID    int
	// Groups are the supplementary groups: the user's groups as initgroups
	// would set them (so that a reload reads zone files readable by a group
	// the operator put the user in), always including GID.
	Groups []int
}

// String describes id as id(1) does, briefly.
func (id Identity) String() string {
	return fmt.Sprintf("uid %d (%s), gid %d (%s), groups %v", id.UID, id.User, id.GID, id.Group, id.Groups)
}

// ErrUnknownUser and ErrUnknownGroup report a configured user or group that
// the system does not know.
var (
	ErrUnknownUser  = errors.New("unknown user")
	ErrUnknownGroup = errors.New("unknown group")
)

// Lookup resolves a user and an optional group, each a name or a number.
// Without group, the user's primary group is used. A numeric user that
// the system does not know is accepted when group is given (a numeric id
// needs no entry in /etc/passwd), and then has that group alone; a user
// name must exist. Root (uid 0) is refused: switching to it keeps nothing
// from anyone.
func Lookup(userName, groupName string) (Identity, error) {
	id := Identity{User: userName, Group: groupName}
	if userName == "" {
		return id, errors.New("server.user is empty")
	}
	u, uerr := lookupUser(userName)
	switch {
	case uerr == nil:
		id.UID, _ = strconv.Atoi(u.Uid)
		id.GID, _ = strconv.Atoi(u.Gid)
		id.User = u.Username
	case isNumber(userName) && groupName != "":
		id.UID, _ = strconv.Atoi(userName)
	case isNumber(userName):
		return id, fmt.Errorf("server.user %s: %w: uid %s has no entry in the user database, so its group is unknown: set server.group too",
			userName, ErrUnknownUser, userName)
	default:
		return id, fmt.Errorf("server.user %q: %w (%v): create it (for example useradd --system --no-create-home --shell /usr/sbin/nologin %s) or name an existing one",
			userName, ErrUnknownUser, uerr, userName)
	}
	if id.UID == 0 {
		return id, fmt.Errorf("server.user %q is root (uid 0): name an unprivileged user, or leave server.user out to stay root", userName)
	}
	if groupName != "" {
		g, err := lookupGroup(groupName)
		switch {
		case err == nil:
			id.GID, _ = strconv.Atoi(g.Gid)
			id.Group = g.Name
		case isNumber(groupName):
			id.GID, _ = strconv.Atoi(groupName)
		default:
			return id, fmt.Errorf("server.group %q: %w (%v): create it (groupadd --system %s) or name an existing one",
				groupName, ErrUnknownGroup, err, groupName)
		}
	} else if g, err := user.LookupGroupId(strconv.Itoa(id.GID)); err == nil {
		id.Group = g.Name
	} else {
		id.Group = strconv.Itoa(id.GID)
	}
	set := map[int]bool{id.GID: true}
	if u != nil {
		if gids, err := u.GroupIds(); err == nil {
			for _, s := range gids {
				if n, err := strconv.Atoi(s); err == nil {
					set[n] = true
				}
			}
		}
	}
	for g := range set {
		id.Groups = append(id.Groups, g)
	}
	sort.Ints(id.Groups)
	return id, nil
}

// lookupUser finds a user by name, or by number when the name is one.
func lookupUser(s string) (*user.User, error) {
	u, err := user.Lookup(s)
	if err != nil && isNumber(s) {
		u, err = user.LookupId(s)
	}
	return u, err
}

// lookupGroup finds a group by name, or by number when the name is one.
func lookupGroup(s string) (*user.Group, error) {
	g, err := user.LookupGroup(s)
	if err != nil && isNumber(s) {
		g, err = user.LookupGroupId(s)
	}
	return g, err
}

func isNumber(s string) bool {
	_, err := strconv.ParseUint(s, 10, 31)
	return err == nil
}

// Cap is a Linux capability number (capabilities(7)).
type Cap uint

// The capabilities ringdns may hold or meets in tests.
const (
	CapChown          Cap = 0
	CapDACOverride    Cap = 1
	CapSetGID         Cap = 6
	CapSetUID         Cap = 7
	CapSetPCap        Cap = 8
	CapNetBindService Cap = 10
	CapNetAdmin       Cap = 12
	CapNetRaw         Cap = 13
	CapIPCLock        Cap = 14
	CapSysAdmin       Cap = 21
	CapSysResource    Cap = 24
	CapBPF            Cap = 39
)

var capNames = map[Cap]string{
	0: "CAP_CHOWN", 1: "CAP_DAC_OVERRIDE", 2: "CAP_DAC_READ_SEARCH", 3: "CAP_FOWNER", 4: "CAP_FSETID",
	5: "CAP_KILL", 6: "CAP_SETGID", 7: "CAP_SETUID", 8: "CAP_SETPCAP", 9: "CAP_LINUX_IMMUTABLE",
	10: "CAP_NET_BIND_SERVICE", 11: "CAP_NET_BROADCAST", 12: "CAP_NET_ADMIN", 13: "CAP_NET_RAW",
	14: "CAP_IPC_LOCK", 15: "CAP_IPC_OWNER", 16: "CAP_SYS_MODULE", 17: "CAP_SYS_RAWIO", 18: "CAP_SYS_CHROOT",
	19: "CAP_SYS_PTRACE", 20: "CAP_SYS_PACCT", 21: "CAP_SYS_ADMIN", 22: "CAP_SYS_BOOT", 23: "CAP_SYS_NICE",
	24: "CAP_SYS_RESOURCE", 25: "CAP_SYS_TIME", 26: "CAP_SYS_TTY_CONFIG", 27: "CAP_MKNOD", 28: "CAP_LEASE",
	29: "CAP_AUDIT_WRITE", 30: "CAP_AUDIT_CONTROL", 31: "CAP_SETFCAP", 32: "CAP_MAC_OVERRIDE",
	33: "CAP_MAC_ADMIN", 34: "CAP_SYSLOG", 35: "CAP_WAKE_ALARM", 36: "CAP_BLOCK_SUSPEND",
	37: "CAP_AUDIT_READ", 38: "CAP_PERFMON", 39: "CAP_BPF", 40: "CAP_CHECKPOINT_RESTORE",
}

func (c Cap) String() string {
	if n, ok := capNames[c]; ok {
		return n
	}
	return "CAP_" + strconv.Itoa(int(c))
}

// CapSet is a set of capabilities, bit n for capability n, as
// /proc/PID/status shows them in hexadecimal.
type CapSet uint64

// Caps makes a set of the capabilities given.
func Caps(cs ...Cap) CapSet {
	var s CapSet
	for _, c := range cs {
		s |= 1 << c
	}
	return s
}

// Has reports whether c is in s.
func (s CapSet) Has(c Cap) bool { return c < 64 && s&(1<<c) != 0 }

// String lists the names in s, "none" when empty.
func (s CapSet) String() string {
	var names []string
	for c := Cap(0); c < 64; c++ {
		if s.Has(c) {
			names = append(names, c.String())
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, " ")
}

// ParseCapSet parses a set as /proc/PID/status writes it (CapEff:
// 000001ffffffffff).
func ParseCapSet(hex string) (CapSet, error) {
	v, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
	return CapSet(v), err
}
