package privdrop

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Creds are a thread's (or a process's main thread's) credentials as
// /proc/PID/status shows them.
type Creds struct {
	UID, GID                [4]int // real, effective, saved, file system
	Groups                  []int
	Inh, Prm, Eff, Bnd, Amb CapSet
	NoNewPrivs              bool
	Seccomp                 int // 0 none, 1 strict, 2 filter
}

// ReadStatus reads the credentials from a /proc/PID/status or
// /proc/PID/task/TID/status file.
func ReadStatus(path string) (Creds, error) {
	f, err := os.Open(path)
	if err != nil {
		return Creds{}, err
	}
	defer f.Close()
	return parseStatus(bufio.NewScanner(f), path)
}

// parseStatus parses the lines of a status file; every field of Creds
// must be there.
func parseStatus(sc *bufio.Scanner, path string) (Creds, error) {
	var c Creds
	seen := map[string]bool{}
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		var err error
		switch key {
		case "Uid", "Gid":
			ids := &c.UID
			if key == "Gid" {
				ids = &c.GID
			}
			f := strings.Fields(val)
			if len(f) != 4 {
				return c, fmt.Errorf("%s: %s: %q: want four ids", path, key, val)
			}
			for i := range f {
				if ids[i], err = strconv.Atoi(f[i]); err != nil {
					return c, fmt.Errorf("%s: %s: %w", path, key, err)
				}
			}
		case "Groups":
			c.Groups = nil
			for _, s := range strings.Fields(val) {
				g, err := strconv.Atoi(s)
				if err != nil {
					return c, fmt.Errorf("%s: Groups: %w", path, err)
				}
				c.Groups = append(c.Groups, g)
			}
		case "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb":
			set := map[string]*CapSet{"CapInh": &c.Inh, "CapPrm": &c.Prm, "CapEff": &c.Eff, "CapBnd": &c.Bnd, "CapAmb": &c.Amb}[key]
			if *set, err = ParseCapSet(val); err != nil {
				return c, fmt.Errorf("%s: %s: %w", path, key, err)
			}
		case "NoNewPrivs":
			c.NoNewPrivs = val == "1"
		case "Seccomp":
			if c.Seccomp, err = strconv.Atoi(val); err != nil {
				return c, fmt.Errorf("%s: Seccomp: %w", path, err)
			}
		default:
			continue
		}
		seen[key] = true
	}
	if err := sc.Err(); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	for _, k := range []string{"Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs"} {
		if !seen[k] {
			return c, fmt.Errorf("%s: no %s line", path, k)
		}
	}
	return c, nil
}

// String describes the credentials in one line, for logs and test
// failures.
func (c Creds) String() string {
	return fmt.Sprintf("uid %v gid %v groups %v CapEff %s CapPrm %s CapInh %s CapAmb %s CapBnd %#x NoNewPrivs %v Seccomp %d",
		c.UID, c.GID, c.Groups, c.Eff, c.Prm, c.Inh, c.Amb, uint64(c.Bnd), c.NoNewPrivs, c.Seccomp)
}
