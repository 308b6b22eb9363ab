package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ringdns/ringdns/controlplane"
	"github.com/ringdns/ringdns/internal/privdrop"
)

// ringdns drops its privileges once NewServer has opened everything that
// needs them: the UDP and TCP sockets on port 53, the AF_XDP sockets and
// their UMEMs, the XDP program and its attachment, the control socket and
// the metrics listener. What it still does after that needs none of
// them: AF_XDP sockets already bound are served with poll, sendto (the TX
// wake-up) and getsockopt (XDP_STATISTICS), none of which checks a
// capability; the UMEM's pages were charged to the locked-memory limit
// when they were registered; the XDP program stays attached through its
// link, which is detached by closing it; a reload reads zone files and
// swaps a pointer. The one exception is a UDP socket some AF_XDP replies
// may need bound later (Server.BindsLater). README's "Least privilege"
// gives the measurements.

// lookupIdentity resolves server.user and server.group; nil when no user
// is configured.
func lookupIdentity(cfg *controlplane.Config) (*privdrop.Identity, error) {
	if cfg.Server.User == "" {
		return nil, nil
	}
	id, err := privdrop.Lookup(cfg.Server.User, cfg.Server.Group)
	if err != nil {
		return nil, err
	}
	return &id, nil
}

// prepareDirs creates, as root, the directories ringdns itself creates
// later (catalog zones' member directories) and gives them to id, so that
// the user it switches to can write the copies and journals in them.
func prepareDirs(cfg *controlplane.Config, id *privdrop.Identity) error {
	if id == nil || os.Geteuid() != 0 {
		return nil
	}
	for _, z := range cfg.Zones {
		d := z.CatalogMembers
		if d == "" {
			continue
		}
		if _, err := os.Lstat(d); err == nil {
			continue
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("zone %s: catalog-members directory %s: %w", z.Origin, d, err)
		}
		if err := os.Chown(d, id.UID, id.GID); err != nil {
			return fmt.Errorf("zone %s: catalog-members directory %s: giving it to %s: %w", z.Origin, d, id.User, err)
		}
	}
	return nil
}

// journalSettle bounds the wait for the journals' start (reading each
// journal file, rewriting one that does not lead to the serial served)
// before the switch: milliseconds for the journals of most zones, and a
// generous bound for the rewrite of a 64 MiB one on a loaded machine.
const journalSettle = 30 * time.Second

// giveFiles gives id the files ringdns itself writes and will write again
// as id: each zone's journal (FILE.journal), a secondary zone's
// transferred copy, and the files of a catalog's member directory (copies
// and journals). A primary zone's own file, which the operator writes, is
// left alone. They may be root's from a run without server.user, or from
// this start: the journals are read, and rewritten when stale, before the
// switch. It runs as root, once the journals have settled.
func giveFiles(cfg *controlplane.Config, id *privdrop.Identity, log *slog.Logger) error {
	var paths []string
	for _, z := range cfg.Zones {
		if z.File == "" {
			continue
		}
		paths = append(paths, z.File+".journal")
		if z.Secondary() {
			paths = append(paths, z.File)
		}
		if d := z.CatalogMembers; d != "" {
			entries, _ := os.ReadDir(d)
			for _, e := range entries {
				if e.Type().IsRegular() {
					paths = append(paths, filepath.Join(d, e.Name()))
				}
			}
		}
	}
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || int(st.Uid) == id.UID {
			continue
		}
		if err := os.Lchown(p, id.UID, id.GID); err != nil {
			return fmt.Errorf("giving %s to %s: %w", p, id.User, err)
		}
		log.Info("file given to the user ringdns switches to", "file", p, "user", id.User, "was_uid", st.Uid)
	}
	return nil
}

// unprivilegedPortStart is the lowest port a process may bind without
// CAP_NET_BIND_SERVICE in its network namespace.
func unprivilegedPortStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		return 1024
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 1024
	}
	return n
}

// capsAfterSetup are the capabilities the server still needs once
// NewServer has returned: CAP_NET_BIND_SERVICE when it may bind a
// privileged port later (see Server.BindsLater), else none.
func capsAfterSetup(srv *controlplane.Server) privdrop.CapSet {
	if port, later := srv.BindsLater(); later && int(port) < unprivilegedPortStart() {
		return privdrop.Caps(privdrop.CapNetBindService)
	}
	return 0
}

// dropPrivileges switches to id (when not nil) keeping only what the
// server still needs, or, started without root but with capabilities
// (systemd's AmbientCapabilities), gives up all but those. It reports
// whether anything was done: a process started as root without
// server.user keeps everything, and says so. Started as root, it first
// waits for the journals' start and gives id the files ringdns writes
// (giveFiles).
func dropPrivileges(srv *controlplane.Server, cfg *controlplane.Config, id *privdrop.Identity, log *slog.Logger) (bool, error) {
	keep := capsAfterSetup(srv)
	if id == nil {
		if os.Geteuid() == 0 {
			log.Warn("running as root with every capability: set server.user to switch to an unprivileged user once the sockets are open")
			return false, nil
		}
		if prm, err := privdrop.Permitted(); err != nil || prm == 0 {
			return false, err
		}
	}
	if id != nil && os.Geteuid() == 0 && cfg.FS == nil {
		if !srv.WaitJournals(journalSettle) {
			log.Warn("the journals did not settle before the switch; a journal rewritten meanwhile may stay root's", "waited", journalSettle)
		}
		if err := giveFiles(cfg, id, log); err != nil {
			return false, err
		}
	}
	res, err := privdrop.Switch(id, keep)
	if err != nil {
		return false, err
	}
	if res.Missing != 0 {
		port, _ := srv.BindsLater()
		log.Warn("ringdns was started without a capability it needs after set-up: replies to NOTIFY, signed messages and IXFR over UDP that reach AF_XDP at an address no socket worker listens on cannot be sent",
			"missing", res.Missing.String(), "port", port)
	}
	attrs := []any{"uid", os.Getuid(), "gid", os.Getgid(), "capabilities", res.Kept.String(),
		"bounding_set_reduced", res.Bounded, "all_threads", res.AllThreads}
	if id != nil {
		attrs = append(attrs, "user", id.User, "group", id.Group, "groups", fmt.Sprint(id.Groups))
	}
	log.Info("privileges dropped", attrs...)
	return true, nil
}

// checkWritable checks that the user ringdns now runs as may write where
// it writes: the directory of each zone file (its journal, FILE.journal,
// and for a secondary zone the transferred copy, both written through a
// temporary file renamed over them), an existing journal, a secondary
// zone's existing copy (whose modification time the expiry timer sets,
// which only its owner may), and a catalog's member directory and the
// files in it. Every problem is reported at once, with the fix.
func checkWritable(cfg *controlplane.Config) error {
	if cfg.FS != nil {
		return nil // zones embedded in the binary: nothing is written
	}
	uid := os.Geteuid()
	var errs []error
	bad := func(origin, path, what string, err error) {
		errs = append(errs, fmt.Errorf("zone %s: %s %s is not writable by uid %d that ringdns runs as (%v): chown it to that user, or keep the zone where it may write (under systemd, also in ReadWritePaths=)",
			origin, what, path, uid, err))
	}
	writable := func(path string) error { return syscall.Access(path, 2|1) } // W_OK|X_OK for a directory
	owned := func(origin, path, what string) {
		fi, err := os.Lstat(path)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				bad(origin, path, what, err)
			}
			return
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != uid {
			bad(origin, path, what, fmt.Errorf("it belongs to uid %d", st.Uid))
		}
	}
	for _, z := range cfg.Zones {
		if z.File == "" {
			continue
		}
		if err := writable(filepath.Dir(z.File)); err != nil {
			bad(z.Origin, filepath.Dir(z.File), "the directory of its file (journal, transferred copies)", err)
		}
		if _, err := os.Lstat(z.File + ".journal"); err == nil {
			if err := syscall.Access(z.File+".journal", 2); err != nil {
				bad(z.Origin, z.File+".journal", "the journal", err)
			}
		}
		if z.Secondary() {
			owned(z.Origin, z.File, "the transferred copy")
		}
		if d := z.CatalogMembers; d != "" {
			if err := writable(d); err != nil && !errors.Is(err, os.ErrNotExist) {
				bad(z.Origin, d, "the catalog's member directory", err)
			} else if err == nil {
				entries, _ := os.ReadDir(d)
				for _, e := range entries {
					if e.Type().IsRegular() {
						owned(z.Origin, filepath.Join(d, e.Name()), "the member file")
					}
				}
			}
		}
	}
	return errors.Join(errs...)
}
